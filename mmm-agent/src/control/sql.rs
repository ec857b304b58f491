//! The pure decisions around the agent's SQL: which connections a demoted writer kills. The
//! dialect SQL itself (fence, catch-up waits, repointing) lives in `mmm_common::sql`, shared
//! with the monitor's checks. No I/O here; `mysql.rs` runs it.

pub use mmm_common::sql::{quote, Dialect};
use std::net::{IpAddr, Ipv4Addr};

/// One row of `SHOW PROCESSLIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub id: u64,
    pub user: String,
    pub command: String,
    /// The client's address as the server shows it (`198.18.0.12:48692`, `localhost`).
    pub host: String,
    pub info: Option<String>,
}

impl Proc {
    /// A source's thread serving a replica (`Binlog Dump`, `Binlog Dump GTID`).
    fn is_binlog_dump(&self) -> bool {
        self.command.starts_with("Binlog Dump")
    }

    /// The client part of `host` without its port (`198.18.0.12`, `db2.lan`, `localhost`).
    fn client(&self) -> &str {
        self.host.rsplit_once(':').map_or(&self.host, |(a, _)| a)
    }
}

/// Statements that change data: a demoted writer lets these finish until the last pass.
fn is_write(info: &str) -> bool {
    let first = info
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "INSERT"
            | "UPDATE"
            | "DELETE"
            | "REPLACE"
            | "CREATE"
            | "DROP"
            | "ALTER"
            | "TRUNCATE"
            | "RENAME"
            | "LOAD"
            | "COMMIT"
            | "CALL"
    )
}

/// Which connections to kill on a demoted writer: everything but our own user, replication
/// (`system user`, `Binlog Dump`, `Binlog Dump GTID`, `Slave_*`) and daemons; running writes
/// are spared until `last_pass` so they can commit or fail on their own.
pub fn kill_plan(procs: &[Proc], own_user: &str, last_pass: bool) -> Vec<u64> {
    procs
        .iter()
        .filter(|p| p.user != own_user)
        .filter(|p| {
            p.user != "system user"
                && p.user != "event_scheduler"
                && p.user != "unauthenticated user"
        })
        .filter(|p| {
            !p.is_binlog_dump() && !p.command.starts_with("Slave_") && p.command != "Daemon"
        })
        .filter(|p| last_pass || !p.info.as_deref().is_some_and(is_write))
        .map(|p| p.id)
        .collect()
}

/// The IPv4 address of a processlist `Host`'s client part (`198.18.0.12`,
/// `[::ffff:198.18.0.12]`, `::ffff:198.18.0.12`); `None` for a socket client (`localhost`), a
/// name, or anything else.
fn client_ip(client: &str) -> Option<Ipv4Addr> {
    match client
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?
    {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped(),
    }
}

/// The binlog dump threads serving the replica at `peer` (`Binlog Dump`, `Binlog Dump GTID`).
/// The agent closes them when the peer stops answering pings: a semi-sync dump thread left
/// behind for a silently cut replica makes MariaDB 10.11 stall the whole server when that
/// replica reconnects (`kill_zombie_dump_threads` waits, holding the thread list, for the
/// semi-sync ACK receiver, which sleeps in `poll` until a replica socket stirs: new logins
/// hang for seconds, the stall seen in the `writer-isolated` fault class). Closing the thread
/// while the peer is away shuts its socket, which wakes the receiver.
pub fn dump_threads_of(procs: &[Proc], peer: Ipv4Addr) -> Vec<u64> {
    procs
        .iter()
        .filter(|p| p.is_binlog_dump() && client_ip(p.client()) == Some(peer))
        .map(|p| p.id)
        .collect()
}

/// The binlog dump threads whose client the server shows by name, not address (MariaDB
/// resolves client names unless `skip_name_resolve`): (thread id, name), for the caller to
/// resolve.
pub fn named_dump_threads(procs: &[Proc]) -> Vec<(u64, String)> {
    procs
        .iter()
        .filter(|p| p.is_binlog_dump() && client_ip(p.client()).is_none())
        .filter_map(|p| {
            let name = p.client();
            (!name.is_empty() && name != "localhost").then(|| (p.id, name.to_string()))
        })
        .collect()
}

/// Who can still write on a MariaDB server made read-only (it has no `super_read_only`):
/// holders of READ ONLY ADMIN, and before MariaDB 10.11 of SUPER too (MariaDB KB,
/// "read_only" and "GRANT: READ_ONLY ADMIN"). `grants` are (grantee, privilege) rows of
/// `information_schema.USER_PRIVILEGES`; the agent's own user (`'own_user'@…`) needs the
/// privilege to switch `read_only` and is left out. Empty for MySQL (`super_read_only`).
pub fn read_only_bypass(version: &str, grants: &[(String, String)], own_user: &str) -> Vec<String> {
    if !version.contains("MariaDB") {
        return vec![];
    }
    let n: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .filter_map(|s| s.parse().ok())
        .collect();
    let super_bypasses = matches!(n.as_slice(), [a, b] if (*a, *b) < (10, 11));
    let own = format!("'{own_user}'@");
    let mut who: Vec<String> = grants
        .iter()
        .filter(|(g, p)| {
            !g.starts_with(&own)
                && (p.eq_ignore_ascii_case("READ_ONLY ADMIN")
                    || (super_bypasses && p.eq_ignore_ascii_case("SUPER")))
        })
        .map(|(g, _)| g.clone())
        .collect();
    who.sort();
    who.dedup();
    who
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_bypasses_read_only_on_mariadb() {
        let g = |u: &str, p: &str| (u.to_string(), p.to_string());
        let grants = [
            g("'root'@'localhost'", "READ_ONLY ADMIN"),
            g("'mmm_agent'@'%'", "READ_ONLY ADMIN"),
            g("'dba'@'%'", "SUPER"),
            g("'app'@'%'", "INSERT"),
        ];
        assert_eq!(
            read_only_bypass("10.11.19-MariaDB-0+deb12u1", &grants, "mmm_agent"),
            ["'root'@'localhost'"]
        );
        assert_eq!(
            read_only_bypass("10.6.18-MariaDB", &grants, "mmm_agent"),
            ["'dba'@'%'", "'root'@'localhost'"]
        );
        assert!(read_only_bypass("8.0.36", &grants, "mmm_agent").is_empty());
    }

    #[test]
    fn kill_plan_spares_replication_ourselves_and_running_writes_until_the_end() {
        let p = |id, user: &str, command: &str, info: Option<&str>| Proc {
            id,
            user: user.into(),
            command: command.into(),
            host: "198.18.0.250:4000".into(),
            info: info.map(str::to_string),
        };
        let procs = vec![
            p(1, "system user", "Slave_IO", None),
            p(2, "repl", "Binlog Dump GTID", None),
            p(3, "mmm_agent", "Query", Some("SHOW PROCESSLIST")),
            p(4, "app", "Sleep", None),
            p(5, "app", "Query", Some("  insert into t values (1)")),
            p(6, "app", "Query", Some("SELECT * FROM t")),
            p(7, "root", "Query", Some("UPDATE t SET x = 1")),
            p(8, "event_scheduler", "Daemon", None),
        ];
        assert_eq!(kill_plan(&procs, "mmm_agent", false), [4, 6]);
        assert_eq!(kill_plan(&procs, "mmm_agent", true), [4, 5, 6, 7]);
    }

    #[test]
    fn the_dump_threads_of_a_peer_are_found_by_its_address() {
        let p = |id, command: &str, host: &str| Proc {
            id,
            user: "repl".into(),
            command: command.into(),
            host: host.into(),
            info: None,
        };
        let procs = vec![
            p(1, "Binlog Dump", "198.18.0.12:48692"),
            p(2, "Binlog Dump GTID", "[::ffff:198.18.0.12]:5000"),
            p(3, "Binlog Dump", "198.18.0.13:40000"),
            p(4, "Query", "198.18.0.12:40001"),
            p(5, "Binlog Dump", "localhost"),
            p(6, "Binlog Dump", "198.18.0.120:1"),
        ];
        assert_eq!(
            dump_threads_of(&procs, Ipv4Addr::new(198, 18, 0, 12)),
            [1, 2]
        );
        assert!(dump_threads_of(&procs, Ipv4Addr::new(198, 18, 0, 99)).is_empty());
        // Names (skip_name_resolve off) are left to the caller to resolve; never localhost.
        let named = vec![
            p(7, "Binlog Dump", "db2.lan:4000"),
            p(8, "Binlog Dump", "localhost"),
            p(9, "Query", "db2:1"),
        ];
        assert_eq!(named_dump_threads(&named), [(7, "db2.lan".to_string())]);
        assert!(named_dump_threads(&procs).is_empty());
        assert_eq!(client_ip("garbage"), None);
    }
}
