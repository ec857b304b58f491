//! The pure decisions around the agent's SQL: which connections a demoted writer kills. The
//! dialect SQL itself (fence, catch-up waits, repointing) lives in `mmm_common::sql`, shared
//! with the monitor's checks. No I/O here; `mysql.rs` runs it.

pub use mmm_common::sql::{quote, Dialect};

/// One row of `SHOW PROCESSLIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub id: u64,
    pub user: String,
    pub command: String,
    pub info: Option<String>,
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
            !p.command.starts_with("Binlog Dump")
                && !p.command.starts_with("Slave_")
                && p.command != "Daemon"
        })
        .filter(|p| last_pass || !p.info.as_deref().is_some_and(is_write))
        .map(|p| p.id)
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
}
