//! SQL for both server families (MariaDB, MySQL 8), shared by the agent (fencing, catch-up,
//! repointing) and the monitor (replica status): pure string generation, unit-tested for both
//! dialects; only MariaDB runs here.

/// A MySQL server version `major.minor.patch`, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

/// The server family and, for MySQL, its exact version (statements are chosen by it; MySQL
/// 8.0 Reference Manual, "Changes in MySQL 8.0.22/23/26", and 8.4's removals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    MariaDb,
    MySql(Version),
}

/// The largest packet the agent's and the monitor's connections accept, bytes (16 MiB, the
/// servers' default `max_allowed_packet`; their statements and results are small). Given to
/// the client library so that a login costs no `SELECT @@max_allowed_packet` round trip.
pub const CLIENT_MAX_PACKET: usize = 16 * 1024 * 1024;

/// The idle timeout the client library assumes, seconds (the servers' default `wait_timeout`):
/// like [`CLIENT_MAX_PACKET`], saves a round trip per login; each connection lives for one
/// operation.
pub const CLIENT_WAIT_TIMEOUT_S: usize = 28_800;

/// `SHOW REPLICA STATUS`, `START/STOP REPLICA` (MySQL 8.0.22).
const REPLICA_WORDS: Version = Version(8, 0, 22);
/// `CHANGE REPLICATION SOURCE TO` (MySQL 8.0.23).
const CHANGE_SOURCE: Version = Version(8, 0, 23);
/// `SOURCE_POS_WAIT()` (MySQL 8.0.26).
const SOURCE_POS_WAIT: Version = Version(8, 0, 26);
/// `SHOW BINARY LOG STATUS` (MySQL 8.2.0; `SHOW MASTER STATUS` is gone in 8.4).
const BINARY_LOG_STATUS: Version = Version(8, 2, 0);
/// `super_read_only` (MySQL 5.7.8).
const SUPER_READ_ONLY: Version = Version(5, 7, 8);

impl Dialect {
    /// Detects the dialect of a server reporting `version` (`SELECT VERSION()`); an
    /// unparsable MySQL version counts as 5.7.0 (the oldest statements).
    pub fn detect(version: &str) -> Dialect {
        if version.contains("MariaDB") {
            return Dialect::MariaDb;
        }
        let n: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(3)
            .filter_map(|s| s.parse().ok())
            .collect();
        match n.as_slice() {
            [a, b, c, ..] => Dialect::MySql(Version(*a, *b, *c)),
            _ => Dialect::MySql(Version(5, 7, 0)),
        }
    }

    /// Whether this is MySQL at `v` or later.
    fn mysql_since(self, v: Version) -> bool {
        matches!(self, Dialect::MySql(have) if have >= v)
    }

    /// Statements that make the server refuse client writes. MySQL's `super_read_only` also
    /// stops SUPER users (MMM's weakness: read_only alone does not); MariaDB 10.11's
    /// `read_only` already applies to SUPER users without READ_ONLY ADMIN.
    pub fn deny_writes(self) -> Vec<&'static str> {
        if self.mysql_since(SUPER_READ_ONLY) {
            vec!["SET GLOBAL read_only = 1", "SET GLOBAL super_read_only = 1"]
        } else {
            vec!["SET GLOBAL read_only = 1"]
        }
    }

    /// Statements that make the server writable.
    pub fn allow_writes(self) -> Vec<&'static str> {
        if self.mysql_since(SUPER_READ_ONLY) {
            vec!["SET GLOBAL super_read_only = 0", "SET GLOBAL read_only = 0"]
        } else {
            vec!["SET GLOBAL read_only = 0"]
        }
    }

    /// Whether the server has `super_read_only` (MySQL 5.7.8+; MariaDB has none: holders of
    /// READ ONLY ADMIN still write on a read-only server).
    pub fn has_super_read_only(self) -> bool {
        self.mysql_since(SUPER_READ_ONLY)
    }

    /// The binary log's current file and position (`File`, `Position` columns).
    pub fn binlog_status(self) -> &'static str {
        if self.mysql_since(BINARY_LOG_STATUS) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    pub fn replica_status(self) -> &'static str {
        if self.mysql_since(REPLICA_WORDS) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    pub fn stop_replica(self) -> &'static str {
        if self.mysql_since(REPLICA_WORDS) {
            "STOP REPLICA"
        } else {
            "STOP SLAVE"
        }
    }

    pub fn start_replica(self) -> &'static str {
        if self.mysql_since(REPLICA_WORDS) {
            "START REPLICA"
        } else {
            "START SLAVE"
        }
    }

    /// Starts the IO thread only (the SQL thread stays as it is).
    pub fn start_io_thread(self) -> &'static str {
        if self.mysql_since(REPLICA_WORDS) {
            "START REPLICA IO_THREAD"
        } else {
            "START SLAVE IO_THREAD"
        }
    }

    pub fn start_sql_thread(self) -> &'static str {
        if self.mysql_since(REPLICA_WORDS) {
            "START REPLICA SQL_THREAD"
        } else {
            "START SLAVE SQL_THREAD"
        }
    }

    /// The variable that holds the applied GTID position.
    pub fn gtid_executed_var(self) -> &'static str {
        match self {
            Dialect::MariaDb => "@@gtid_current_pos",
            _ => "@@gtid_executed",
        }
    }

    /// The query of a server's GTID state and of the origin of the transactions it commits
    /// first, as the columns `state` and `origin`: MariaDB `@@gtid_binlog_state` (the last GTID
    /// of each domain and server in its binary log) and `@@server_id`; MySQL `@@gtid_executed`
    /// and `@@server_uuid` (both manuals, "Global Transaction ID"). Compared by
    /// [`crate::gtid::GtidSet::errant_against`].
    pub fn gtid_state_query(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SELECT @@gtid_binlog_state AS state, @@server_id AS origin",
            _ => "SELECT @@gtid_executed AS state, @@server_uuid AS origin",
        }
    }

    /// Waits (bounded) until the SQL thread has applied up to the IO thread's read position
    /// `file:pos` of the current source: the relay log is applied. Returns -1 on timeout.
    pub fn wait_relay_applied(self, file: &str, pos: u64, timeout_s: f64) -> String {
        let f = quote(file);
        if self.mysql_since(SOURCE_POS_WAIT) {
            format!("SELECT SOURCE_POS_WAIT({f}, {pos}, {timeout_s:.3})")
        } else {
            format!("SELECT MASTER_POS_WAIT({f}, {pos}, {timeout_s:.3})")
        }
    }

    /// Waits (bounded) until `gtid` is applied. Returns 0 when reached, -1 (MariaDB) or 1
    /// (MySQL) on timeout.
    pub fn wait_gtid(self, gtid: &str, timeout_s: f64) -> String {
        let g = quote(gtid);
        match self {
            Dialect::MariaDb => format!("SELECT MASTER_GTID_WAIT({g}, {timeout_s:.3})"),
            _ => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({g}, {timeout_s:.3})"),
        }
    }

    /// Repoints replication at `host:port`. With GTID the position is exact (MariaDB
    /// `MASTER_USE_GTID=slave_pos`, MySQL `SOURCE_AUTO_POSITION=1`); without, `coords` is the
    /// new source's current binlog position (MMM's method: events can be lost or repeated).
    pub fn change_source(
        self,
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        coords: Option<(&str, u64)>,
    ) -> String {
        let (h, u, p) = (quote(host), quote(user), quote(password));
        match (self, coords) {
            (d, None) if d.mysql_since(CHANGE_SOURCE) => format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST={h}, SOURCE_PORT={port}, SOURCE_USER={u}, SOURCE_PASSWORD={p}, SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1"
            ),
            (d, Some((f, pos))) if d.mysql_since(CHANGE_SOURCE) => format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST={h}, SOURCE_PORT={port}, SOURCE_USER={u}, SOURCE_PASSWORD={p}, SOURCE_AUTO_POSITION=0, SOURCE_LOG_FILE={}, SOURCE_LOG_POS={pos}, SOURCE_CONNECT_RETRY=1",
                quote(f)
            ),
            (Dialect::MariaDb, None) => format!(
                "CHANGE MASTER TO MASTER_HOST={h}, MASTER_PORT={port}, MASTER_USER={u}, MASTER_PASSWORD={p}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
            ),
            (Dialect::MySql(_), None) => format!(
                "CHANGE MASTER TO MASTER_HOST={h}, MASTER_PORT={port}, MASTER_USER={u}, MASTER_PASSWORD={p}, MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1"
            ),
            (Dialect::MariaDb, Some((f, pos))) => format!(
                "CHANGE MASTER TO MASTER_HOST={h}, MASTER_PORT={port}, MASTER_USER={u}, MASTER_PASSWORD={p}, MASTER_USE_GTID=no, MASTER_LOG_FILE={}, MASTER_LOG_POS={pos}, MASTER_CONNECT_RETRY=1",
                quote(f)
            ),
            (Dialect::MySql(_), Some((f, pos))) => format!(
                "CHANGE MASTER TO MASTER_HOST={h}, MASTER_PORT={port}, MASTER_USER={u}, MASTER_PASSWORD={p}, MASTER_LOG_FILE={}, MASTER_LOG_POS={pos}, MASTER_CONNECT_RETRY=1",
                quote(f)
            ),
        }
    }
}

/// What stands for a secret in anything shown.
pub const REDACTED: &str = "<redacted>";

/// The secrets of `sql`: the values of `PASSWORD='…'` clauses (`MASTER_PASSWORD`,
/// `SOURCE_PASSWORD`, …), unquoted as [`quote`] wrote them.
fn secrets(sql: &str) -> Vec<String> {
    let upper = sql.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = upper[from..].find("PASSWORD=") {
        let start = from + i + "PASSWORD=".len();
        let mut chars = sql[start..].char_indices();
        from = start;
        if !matches!(chars.next(), Some((_, '\''))) {
            continue;
        }
        let mut value = String::new();
        while let Some((j, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '\'' if sql[start + j + 1..].starts_with('\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => {
                    from = start + j + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push(value);
    }
    out
}

/// `text` (a statement, or an error about `sql`) with every secret of `sql` replaced by
/// [`REDACTED`]: a password never reaches a log line, a gRPC status or a report step, even
/// when the server quotes the statement back in its error, or quotes the password cut short
/// (MariaDB: `String 'Sekritxxx...' is too long for MASTER_PASSWORD`).
pub fn redact(sql: &str, text: &str) -> String {
    let secrets: Vec<String> = secrets(sql).into_iter().filter(|s| !s.is_empty()).collect();
    let mut t = text.to_string();
    for s in &secrets {
        t = t.replace(&quote(s), REDACTED).replace(s.as_str(), REDACTED);
    }
    // Quoted fragments that are the start of a secret (3 characters or more).
    let mut out = String::with_capacity(t.len());
    let mut rest = t.as_str();
    while let Some(open) = rest.find('\'') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find('\'') else { break };
        let inner = &rest[..close];
        let cut = inner.strip_suffix("...").unwrap_or(inner);
        let secret = cut.chars().count() >= 3 && secrets.iter().any(|s| s.starts_with(cut));
        out.push_str(if secret { REDACTED } else { inner });
        out.push('\'');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A single-quoted SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M8: Dialect = Dialect::MySql(Version(8, 0, 36));
    const M57: Dialect = Dialect::MySql(Version(5, 7, 44));

    fn my(a: u32, b: u32, c: u32) -> Dialect {
        Dialect::MySql(Version(a, b, c))
    }

    #[test]
    fn mysql_statements_follow_the_exact_version() {
        assert_eq!(my(8, 0, 21).replica_status(), "SHOW SLAVE STATUS");
        assert_eq!(my(8, 0, 22).replica_status(), "SHOW REPLICA STATUS");
        assert_eq!(my(8, 0, 21).stop_replica(), "STOP SLAVE");
        assert_eq!(my(8, 0, 22).stop_replica(), "STOP REPLICA");
        let change = |d: Dialect| d.change_source("h", 1, "u", "p", None);
        assert!(change(my(8, 0, 22)).starts_with("CHANGE MASTER TO MASTER_HOST="));
        assert!(change(my(8, 0, 23)).starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST="));
        let wait = |d: Dialect| d.wait_relay_applied("b.1", 4, 1.0);
        assert!(wait(my(8, 0, 25)).starts_with("SELECT MASTER_POS_WAIT("));
        assert!(wait(my(8, 0, 26)).starts_with("SELECT SOURCE_POS_WAIT("));
        assert_eq!(my(8, 1, 0).binlog_status(), "SHOW MASTER STATUS");
        assert_eq!(my(8, 2, 0).binlog_status(), "SHOW BINARY LOG STATUS");
        assert_eq!(my(8, 4, 3).binlog_status(), "SHOW BINARY LOG STATUS");
        assert_eq!(Dialect::MariaDb.binlog_status(), "SHOW MASTER STATUS");
        assert_eq!(my(5, 7, 7).deny_writes(), ["SET GLOBAL read_only = 1"]);
        assert!(my(5, 7, 8).has_super_read_only());
        assert!(!Dialect::MariaDb.has_super_read_only());
    }

    #[test]
    fn dialects() {
        assert_eq!(
            Dialect::detect("10.11.19-MariaDB-0+deb12u1"),
            Dialect::MariaDb
        );
        assert_eq!(Dialect::detect("8.0.36"), M8);
        assert_eq!(Dialect::detect("8.0.21-log"), my(8, 0, 21));
        assert_eq!(Dialect::detect("5.7.44"), M57);
        assert_eq!(Dialect::detect("8.4.0-commercial"), my(8, 4, 0));
        assert_eq!(Dialect::detect("junk"), my(5, 7, 0));
    }

    #[test]
    fn fencing_statements() {
        assert_eq!(Dialect::MariaDb.deny_writes(), ["SET GLOBAL read_only = 1"]);
        assert_eq!(
            M8.deny_writes(),
            ["SET GLOBAL read_only = 1", "SET GLOBAL super_read_only = 1"]
        );
        assert_eq!(
            M8.allow_writes(),
            ["SET GLOBAL super_read_only = 0", "SET GLOBAL read_only = 0"]
        );
        assert_eq!(M8.stop_replica(), "STOP REPLICA");
        assert_eq!(Dialect::MariaDb.start_replica(), "START SLAVE");
        assert_eq!(M8.start_sql_thread(), "START REPLICA SQL_THREAD");
    }

    #[test]
    fn waits() {
        assert_eq!(
            Dialect::MariaDb.wait_relay_applied("binlog.000003", 1234, 5.0),
            "SELECT MASTER_POS_WAIT('binlog.000003', 1234, 5.000)"
        );
        assert_eq!(
            M8.wait_relay_applied("binlog.000003", 1234, 0.5),
            "SELECT SOURCE_POS_WAIT('binlog.000003', 1234, 0.500)"
        );
        assert_eq!(
            Dialect::MariaDb.wait_gtid("0-1-42", 2.0),
            "SELECT MASTER_GTID_WAIT('0-1-42', 2.000)"
        );
        assert_eq!(
            M8.wait_gtid("uuid:1-42", 2.0),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-42', 2.000)"
        );
    }

    #[test]
    fn repointing() {
        insta::assert_snapshot!(Dialect::MariaDb.change_source("198.18.0.12", 3306, "repl", "re'pl", None), @"CHANGE MASTER TO MASTER_HOST='198.18.0.12', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='re''pl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1");
        insta::assert_snapshot!(M8.change_source("198.18.0.12", 3306, "repl", "pw", None), @"CHANGE REPLICATION SOURCE TO SOURCE_HOST='198.18.0.12', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='pw', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1");
        insta::assert_snapshot!(Dialect::MariaDb.change_source("h", 3307, "u", "p", Some(("binlog.000009", 107))), @"CHANGE MASTER TO MASTER_HOST='h', MASTER_PORT=3307, MASTER_USER='u', MASTER_PASSWORD='p', MASTER_USE_GTID=no, MASTER_LOG_FILE='binlog.000009', MASTER_LOG_POS=107, MASTER_CONNECT_RETRY=1");
        insta::assert_snapshot!(M57.change_source("h", 3306, "u", "p", Some(("binlog.000009", 107))), @"CHANGE MASTER TO MASTER_HOST='h', MASTER_PORT=3306, MASTER_USER='u', MASTER_PASSWORD='p', MASTER_LOG_FILE='binlog.000009', MASTER_LOG_POS=107, MASTER_CONNECT_RETRY=1");
        insta::assert_snapshot!(M8.change_source("h", 3306, "u", "p", Some(("binlog.000009", 107))), @"CHANGE REPLICATION SOURCE TO SOURCE_HOST='h', SOURCE_PORT=3306, SOURCE_USER='u', SOURCE_PASSWORD='p', SOURCE_AUTO_POSITION=0, SOURCE_LOG_FILE='binlog.000009', SOURCE_LOG_POS=107, SOURCE_CONNECT_RETRY=1");
    }

    #[test]
    fn passwords_never_show() {
        for pw in ["s3cret", "it's", r"back\slash", "PASSWORD='x'"] {
            let sql = Dialect::MariaDb.change_source("h", 3306, "repl", pw, None);
            let shown = redact(&sql, &sql);
            assert!(!shown.contains(pw), "{shown}");
            assert!(shown.contains("MASTER_PASSWORD=<redacted>"), "{shown}");
            let err = format!("You have an error near '{pw}, MASTER_USE_GTID' at line 1");
            assert!(!redact(&sql, &err).contains(pw));
        }
        // MariaDB quotes a password too long for MASTER_PASSWORD cut short.
        let long = format!("Sekrit{}", "x".repeat(200));
        let sql = Dialect::MariaDb.change_source("h", 3306, "repl", &long, None);
        let err = format!(
            "ERROR 1470 (HY000): String '{}...' is too long for MASTER_PASSWORD (should be no longer than 96)",
            &long[..64]
        );
        let shown = redact(&sql, &err);
        assert!(!shown.contains("Sekrit"), "{shown}");
        assert_eq!(
            shown,
            "ERROR 1470 (HY000): String '<redacted>' is too long for MASTER_PASSWORD (should be no longer than 96)"
        );
        assert_eq!(redact(&sql, "a 'quoted' word"), "a 'quoted' word");
        let m8 = M8.change_source("h", 3306, "repl", "pw9", None);
        assert!(!redact(&m8, &m8).contains("pw9"));
        assert_eq!(redact("SET GLOBAL read_only = 1", "x"), "x");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r"a'b\c"), r"'a''b\\c'");
    }
}
