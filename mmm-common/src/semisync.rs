//! Semi-synchronous replication's SQL for both server families: MariaDB's built-in semisync
//! (MariaDB Knowledge Base, "Semisynchronous Replication": `rpl_semi_sync_master_*` /
//! `rpl_semi_sync_slave_*`, built in since 10.3.3) and MySQL's plugins (MySQL 8.0 Reference
//! Manual 17.4.10: `rpl_semi_sync_source`/`replica` since 8.0.26, `master`/`slave` before).
//! The wait point is always `AFTER_SYNC` (lossless: a transaction becomes visible on the
//! source only once a replica acknowledged it). Pure strings, unit-tested for both families.

use crate::sql::{Dialect, Version};
use std::time::Duration;

/// `rpl_semi_sync_source`/`replica` names (MySQL 8.0.26).
const SOURCE_WORDS: Version = Version(8, 0, 26);

/// The longest wait the servers accept (ms), used for "never fall back".
pub const NEVER_MS: u64 = 4_294_967_295;

/// Semi-synchronous replication's two switches on one server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemiSync {
    /// The source side: commits wait for a replica's acknowledgement (the writer).
    pub source: bool,
    /// The replica side: this server acknowledges what it receives (the standby master).
    pub replica: bool,
}

/// The variables' prefixes: (source, replica).
fn names(d: Dialect) -> (&'static str, &'static str) {
    match d {
        Dialect::MySql(v) if v >= SOURCE_WORDS => ("rpl_semi_sync_source", "rpl_semi_sync_replica"),
        _ => ("rpl_semi_sync_master", "rpl_semi_sync_slave"),
    }
}

/// `SELECT @@…source_enabled AS source, @@…replica_enabled AS replica` (0 or 1 each).
pub fn state_query(d: Dialect) -> String {
    let (s, r) = names(d);
    format!("SELECT @@{s}_enabled AS source, @@{r}_enabled AS replica")
}

/// `SHOW GLOBAL STATUS LIKE '…_status'` of the replica side: `ON` while this server's IO
/// thread acknowledges as a semi-sync replica. The IO thread negotiates that when it connects
/// and keeps it after `…_enabled` is switched off (MariaDB KB "Semisynchronous Replication":
/// `Rpl_semi_sync_slave_status`; MySQL manual: `Rpl_semi_sync_replica_status` from 8.0.26).
/// One row of `Variable_name`, `Value` (none without the plugin).
pub fn replica_status_query(d: Dialect) -> String {
    let (_, r) = names(d);
    let mut name = r.to_string();
    name[..1].make_ascii_uppercase();
    format!("SHOW GLOBAL STATUS LIKE '{name}_status'")
}

/// The plugins MySQL needs, as `(PLUGIN_NAME, INSTALL PLUGIN statement)`; none for MariaDB.
pub fn plugins(d: Dialect) -> Vec<(&'static str, &'static str)> {
    match d {
        Dialect::MariaDb => vec![],
        Dialect::MySql(v) if v >= SOURCE_WORDS => vec![
            (
                "rpl_semi_sync_source",
                "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'",
            ),
            (
                "rpl_semi_sync_replica",
                "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'",
            ),
        ],
        Dialect::MySql(_) => vec![
            (
                "rpl_semi_sync_master",
                "INSTALL PLUGIN rpl_semi_sync_master SONAME 'semisync_master.so'",
            ),
            (
                "rpl_semi_sync_slave",
                "INSTALL PLUGIN rpl_semi_sync_slave SONAME 'semisync_slave.so'",
            ),
        ],
    }
}

/// Turns the source side on (lossless, `timeout` before falling back; `None`: never, and it
/// keeps waiting with no replica connected) or off.
pub fn source(d: Dialect, on: bool, timeout: Option<Duration>) -> Vec<String> {
    let (s, _) = names(d);
    if !on {
        return vec![format!("SET GLOBAL {s}_enabled = 0")];
    }
    let ms = timeout.map_or(NEVER_MS, |t| (t.as_millis() as u64).min(NEVER_MS));
    // With a bound, a writer whose every replica is gone falls back at once instead of
    // holding each commit for the whole timeout.
    let wait_alone = if timeout.is_none() { 1 } else { 0 };
    let no_replica = match d {
        Dialect::MySql(v) if v >= SOURCE_WORDS => "rpl_semi_sync_source_wait_no_replica",
        _ => "rpl_semi_sync_master_wait_no_slave",
    };
    vec![
        format!("SET GLOBAL {s}_wait_point = 'AFTER_SYNC'"),
        format!("SET GLOBAL {s}_timeout = {ms}"),
        format!("SET GLOBAL {no_replica} = {wait_alone}"),
        format!("SET GLOBAL {s}_enabled = 1"),
    ]
}

/// Turns the replica side on or off; the IO thread must reconnect for it to count
/// ([`restart_io_thread`]).
pub fn replica(d: Dialect, on: bool) -> Vec<String> {
    let (_, r) = names(d);
    vec![format!("SET GLOBAL {r}_enabled = {}", u8::from(on))]
}

/// Reconnects the replication IO thread (the replica side is negotiated at connect).
pub fn restart_io_thread(d: Dialect) -> [&'static str; 2] {
    match d {
        Dialect::MySql(v) if v >= Version(8, 0, 22) => {
            ["STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD"]
        }
        _ => ["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"],
    }
}

/// The status variables that say whether the source side protects commits: `…_status`
/// (`OFF`: it fell back after the timeout), `…_clients` (0: no replica acknowledges) and
/// `…_no_tx` (commits acknowledged to their client without a replica's acknowledgement,
/// counted since the server started; MariaDB KB "Semisynchronous Replication", MySQL manual
/// "Semisynchronous Replication Monitoring"). Rows of `Variable_name`, `Value`.
pub fn status_query(d: Dialect) -> String {
    let p = match names(d).0 {
        "rpl_semi_sync_source" => "Rpl_semi_sync_source",
        _ => "Rpl_semi_sync_master",
    };
    format!("SHOW GLOBAL STATUS WHERE Variable_name IN ('{p}_status', '{p}_clients', '{p}_no_tx')")
}

/// Whether the writer has committed anything that no replica acknowledged since its source
/// side last protected commits (on, not fallen back, an acknowledging replica connected).
/// When it protects them again the replica has caught up (the source switches back on only
/// once a replica acknowledged its current position), so the count starts over. Fed with
/// each status read; pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unprotected {
    /// `…_no_tx` when commits were last seen protected (`None`: never seen so).
    protected_at: Option<u64>,
}

impl Unprotected {
    /// Takes one reading (`on`: `…_status`; `clients`; `no_tx`) and says whether commits went
    /// unacknowledged since protection was last seen. Never seen protected: any unacknowledged
    /// commit since the server started counts.
    pub fn observe(&mut self, on: bool, clients: u64, no_tx: u64) -> bool {
        if on && clients > 0 {
            self.protected_at = Some(no_tx);
            return false;
        }
        no_tx > self.protected_at.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MYSQL_8_4: Dialect = Dialect::MySql(Version(8, 4, 0));
    const MYSQL_8_0_20: Dialect = Dialect::MySql(Version(8, 0, 20));

    #[test]
    fn mariadb_uses_its_built_in_master_and_slave_names() {
        let d = Dialect::MariaDb;
        assert!(plugins(d).is_empty());
        assert_eq!(
            state_query(d),
            "SELECT @@rpl_semi_sync_master_enabled AS source, @@rpl_semi_sync_slave_enabled AS replica"
        );
        assert_eq!(
            source(d, true, Some(Duration::from_secs(10))),
            [
                "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'",
                "SET GLOBAL rpl_semi_sync_master_timeout = 10000",
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = 0",
                "SET GLOBAL rpl_semi_sync_master_enabled = 1",
            ]
        );
        assert_eq!(
            replica(d, true),
            ["SET GLOBAL rpl_semi_sync_slave_enabled = 1"]
        );
        assert_eq!(
            status_query(d),
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_master_no_tx')"
        );
    }

    #[test]
    fn the_replica_side_status_follows_the_server_words() {
        assert_eq!(
            replica_status_query(Dialect::MariaDb),
            "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'"
        );
        assert_eq!(
            replica_status_query(MYSQL_8_4),
            "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_replica_status'"
        );
        assert_eq!(
            replica_status_query(MYSQL_8_0_20),
            "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'"
        );
    }

    #[test]
    fn never_falling_back_waits_without_replicas_for_the_longest_time() {
        let s = source(Dialect::MariaDb, true, None);
        assert!(s.contains(&"SET GLOBAL rpl_semi_sync_master_timeout = 4294967295".to_string()));
        assert!(s.contains(&"SET GLOBAL rpl_semi_sync_master_wait_no_slave = 1".to_string()));
        assert_eq!(
            source(Dialect::MariaDb, false, None),
            ["SET GLOBAL rpl_semi_sync_master_enabled = 0"]
        );
    }

    #[test]
    fn mysql_names_follow_its_version() {
        assert_eq!(
            plugins(MYSQL_8_4)[0].1,
            "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'"
        );
        assert_eq!(
            source(MYSQL_8_4, true, Some(Duration::from_millis(1500)))[2],
            "SET GLOBAL rpl_semi_sync_source_wait_no_replica = 0"
        );
        assert_eq!(restart_io_thread(MYSQL_8_4)[0], "STOP REPLICA IO_THREAD");
        assert_eq!(plugins(MYSQL_8_0_20)[1].0, "rpl_semi_sync_slave");
        assert_eq!(restart_io_thread(MYSQL_8_0_20)[1], "START SLAVE IO_THREAD");
        assert_eq!(
            status_query(MYSQL_8_4),
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_source_status', 'Rpl_semi_sync_source_clients', 'Rpl_semi_sync_source_no_tx')"
        );
    }

    #[test]
    fn unacknowledged_commits_count_from_the_last_protected_reading() {
        let mut u = Unprotected::default();
        // Protected: nothing at risk, whatever happened before.
        assert!(!u.observe(true, 1, 7));
        // The standby left (no client): at risk only once a commit went unacknowledged.
        assert!(!u.observe(true, 0, 7));
        assert!(u.observe(false, 0, 8));
        assert!(
            u.observe(false, 1, 9),
            "fallen back, a client back but not caught up"
        );
        // Caught up: the source switched back on; the count starts over.
        assert!(!u.observe(true, 1, 9));
        assert!(!u.observe(true, 0, 9));
        // An agent that never saw it protected counts from the server's start.
        assert!(!Unprotected::default().observe(false, 0, 0));
        assert!(Unprotected::default().observe(false, 0, 3));
    }
}
