//! The four checks against real servers — ping (ICMP), mysql (`SELECT NOW()`), rep_threads and
//! rep_backlog (`SHOW SLAVE STATUS` / `SHOW REPLICA STATUS`) — each under a hard timeout, with
//! MMM's messages. The verdicts are pure functions of the replica-status row (unit-tested for
//! MariaDB's and MySQL 8's column names); only [`run`] and its helpers do I/O.

use crate::core::Report;
use mmm_common::{
    config::{CheckConfig, CheckKind},
    replica::{row_of, ReplicaStatus, Row, ThreadState},
};
use mysql_async::prelude::Queryable;
use std::{net::Ipv4Addr, time::Duration};

/// Where and as whom to check one host.
#[derive(Clone, Debug)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// Runs `kind` against `t` within `cfg.timeout`.
pub async fn run(kind: CheckKind, t: &Target, cfg: &CheckConfig, pinger: &Pinger) -> Report {
    let work = async {
        match kind {
            CheckKind::Ping => pinger.ping(t.ip, cfg.timeout).await,
            CheckKind::Mysql => mysql(t, cfg.timeout).await,
            CheckKind::RepThreads => match replica_status(t).await {
                Ok(s) => threads_verdict(s.as_ref()),
                Err(r) => r,
            },
            CheckKind::RepBacklog => match replica_status(t).await {
                Ok(s) => backlog_verdict(s.as_ref(), cfg.max_backlog),
                Err(r) => r,
            },
        }
    };
    match tokio::time::timeout(cfg.timeout, work).await {
        Ok(r) => r,
        Err(_) => match kind {
            CheckKind::Ping => Report::error(&format!("ERROR: Could not ping {}", t.ip)),
            CheckKind::Mysql => Report::error("ERROR: Timeout"),
            _ => Report::unknown("UNKNOWN: Timeout"),
        },
    }
}

/// How many echo requests one ping check may send.
pub const ECHOES: u16 = 3;

/// ICMP echo with one shared raw socket.
pub struct Pinger {
    client: Option<surge_ping::Client>,
    error: String,
}

impl Pinger {
    /// Opens the ICMP socket (needs CAP_NET_RAW); a failure is reported by every ping.
    pub fn new() -> Pinger {
        match surge_ping::Client::new(&surge_ping::Config::default()) {
            Ok(c) => Pinger {
                client: Some(c),
                error: String::new(),
            },
            Err(e) => Pinger {
                client: None,
                error: e.to_string(),
            },
        }
    }

    /// Up to [`ECHOES`] echo requests to `ip`, a third of the limit apart, all answered within
    /// `timeout` (held to 50–500 ms): OK at the first reply, an error when none came. A lossy
    /// link loses pings, not hosts: one lost packet is no failed check (at 5 % loss a single
    /// echo fails one check in twenty, three fail one in eight thousand), while a host that
    /// is down still fails within the limit. Later echoes go only while none was answered.
    pub async fn ping(&self, ip: Ipv4Addr, timeout: Duration) -> Report {
        let Some(client) = &self.client else {
            return Report::unknown(&format!("UNKNOWN: No ICMP socket: {}", self.error));
        };
        let limit = timeout.clamp(Duration::from_millis(50), Duration::from_millis(500));
        let spacing = limit / ECHOES as u32;
        let echo = |n: u16| {
            Box::pin(async move {
                let start = spacing * u32::from(n);
                tokio::time::sleep(start).await;
                let mut p = client
                    .pinger(ip.into(), surge_ping::PingIdentifier(rand_id()))
                    .await;
                p.timeout(limit.saturating_sub(start));
                p.ping(surge_ping::PingSequence(n), &[0u8; 16])
                    .await
                    .map(|_| ())
            })
        };
        match futures::future::select_ok((0..ECHOES).map(echo)).await {
            Ok(_) => Report::ok("OK"),
            Err(_) => Report::error(&format!("ERROR: Could not ping {ip}")),
        }
    }
}

impl Default for Pinger {
    fn default() -> Self {
        Pinger::new()
    }
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0);
    (std::process::id() as u16).wrapping_add(N.fetch_add(1, Ordering::Relaxed))
}

fn opts(t: &Target) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(t.ip.to_string())
        .tcp_port(t.port)
        .user(Some(t.user.clone()))
        .pass(Some(t.password.clone()))
        .prefer_socket(Some(false))
        .max_allowed_packet(Some(mmm_common::sql::CLIENT_MAX_PACKET))
        .wait_timeout(Some(mmm_common::sql::CLIENT_WAIT_TIMEOUT_S))
        .into()
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn connect_error(t: &Target, e: &mysql_async::Error) -> String {
    format!(
        "Connect error (host = {}:{}, user = {})! {}",
        t.ip,
        t.port,
        t.user,
        client_error(t, e)
    )
}

/// An error as the MySQL client words it where MMM's DBI did: a failed connection is
/// `Can't connect to MySQL server on 'IP' (errno)` (client error 2003), not the driver's
/// `Input/output error: … (os error 111)`.
pub fn client_error(t: &Target, e: &mysql_async::Error) -> String {
    use mysql_async::{Error, IoError};
    match e {
        Error::Io(IoError::Io(io)) => match io.raw_os_error() {
            Some(n) => format!("Can't connect to MySQL server on '{}' ({n})", t.ip),
            None => format!("Can't connect to MySQL server on '{}' ({io})", t.ip),
        },
        other => other.to_string(),
    }
}

pub(crate) async fn connect(t: &Target) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(opts(t)).await
}

/// How many logins one mysql check may start.
pub const LOGINS: u32 = 3;

/// The mysql check: a login and `SELECT NOW()`, with up to [`LOGINS`] logins a third of
/// `limit` apart while none has answered — the first answer, good or bad, is the verdict. A
/// lost SYN costs a TCP client 1 s before it tries again (RFC 6298's initial RTO), the whole
/// default timeout: on a lossy link a single login fails checks of a server that is up, and
/// a failure that lasts the trap period fails the host over. A server that is down still
/// fails at once (refused) or within the limit. A login that lost the race is not abandoned
/// mid-handshake (MariaDB counts interrupted handshakes against `max_connect_errors`): it runs
/// on, bounded by `limit`, and closes properly.
async fn mysql(t: &Target, limit: Duration) -> Report {
    let (tx, mut rx) = tokio::sync::mpsc::channel(LOGINS as usize);
    let spacing = limit / LOGINS;
    for _ in 0..LOGINS {
        let (t, tx) = (t.clone(), tx.clone());
        tokio::spawn(tokio::time::timeout(limit, async move {
            let Some(mut c) = login(&t, &tx).await else {
                return;
            };
            let r = match c.query_drop("SELECT NOW()").await {
                Ok(()) => Report::ok("OK"),
                Err(e) => Report::error(&format!("ERROR: SQL Query Error: {e}")),
            };
            let _ = tx.try_send(r);
            let _ = c.disconnect().await;
        }));
        if let Ok(Some(r)) = tokio::time::timeout(spacing, rx.recv()).await {
            return r;
        }
    }
    drop(tx);
    rx.recv()
        .await
        .unwrap_or_else(|| Report::error("ERROR: Timeout"))
}

/// One login of the mysql check; a failure is sent as the check's verdict.
async fn login(
    t: &Target,
    verdict: &tokio::sync::mpsc::Sender<Report>,
) -> Option<mysql_async::Conn> {
    match connect(t).await {
        Ok(c) => Some(c),
        Err(e) => {
            let r = if server_code(&e) == Some(1040) {
                Report::unknown(&format!("UNKNOWN: Too many connections! {e}"))
            } else {
                Report::error(&format!("ERROR: {}", connect_error(t, &e)))
            };
            let _ = verdict.try_send(r);
            None
        }
    }
}

/// The statement that lists replica status on a server reporting `version`
/// (`SELECT VERSION()`): MySQL 8.0.22+ has `SHOW REPLICA STATUS`; MariaDB and older MySQL use
/// `SHOW SLAVE STATUS`.
pub fn replica_status_query(version: &str) -> &'static str {
    mmm_common::sql::Dialect::detect(version).replica_status()
}

async fn replica_status(t: &Target) -> Result<Option<ReplicaStatus>, Report> {
    let mut c = connect(t)
        .await
        .map_err(|e| Report::unknown(&format!("UNKNOWN: {}", connect_error(t, &e))))?;
    let version: Option<String> = c
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| Report::unknown(&format!("UNKNOWN: SQL Query Error: {e}")))?;
    let q = replica_status_query(version.as_deref().unwrap_or(""));
    let rows: Result<Vec<mysql_async::Row>, _> = c.query(q).await;
    let _ = c.disconnect().await;
    let rows = rows.map_err(|e| {
        if server_code(&e) == Some(1227) {
            Report::error(&format!(
                "ERROR: The monitor user '{}' lacks the REPLICATION CLIENT privilege (SLAVE MONITOR on MariaDB 10.5 and later)! {e}",
                t.user
            ))
        } else {
            Report::error(&format!("ERROR: SQL Query Error: {e}"))
        }
    })?;
    parsed(rows.first().map(row_of).as_ref())
}

/// The typed status of a replica-status row; a value the server sent that does not parse is
/// UNKNOWN, naming the column.
pub fn parsed(row: Option<&Row>) -> Result<Option<ReplicaStatus>, Report> {
    row.map(ReplicaStatus::from_row)
        .transpose()
        .map_err(|e| Report::unknown(&format!("UNKNOWN: {e}")))
}

/// rep_threads from a replica status (`None`: no row, replication not set up).
/// `Connecting` counts as running (the master may be the one failing over), except when the
/// IO thread's last error is an authentication failure (1045): that never heals by itself.
pub fn threads_verdict(s: Option<&ReplicaStatus>) -> Report {
    let Some(s) = s else {
        return Report::error("ERROR: Replication is not set up");
    };
    if let Some(why) = s.errant() {
        return Report::error(&format!(
            "ERROR: Replication is broken: this server has transactions its source never had (errant transactions, committed here while it was the writer and never shipped: {why}). It stays out of rotation; rebuild it from the writer (README, \"Errant transactions\")"
        ));
    }
    let bad_password = s.io == ThreadState::Connecting && s.last_io_errno == 1045;
    if !s.io.running() || !s.sql.running() || bad_password {
        return Report::error("ERROR: Replication is broken");
    }
    Report::ok("OK")
}

/// rep_backlog from a replica status.
pub fn backlog_verdict(s: Option<&ReplicaStatus>, max_backlog: u64) -> Report {
    match s.and_then(|s| s.seconds_behind) {
        None | Some(0) => Report::ok("OK: Backlog is null"),
        Some(n) if n > max_backlog => Report::error("ERROR: Backlog is too big"),
        Some(_) => Report::ok("OK"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_read_like_the_mysql_client() {
        let t = Target {
            ip: "198.18.0.12".parse().unwrap(),
            port: 3306,
            user: "mmm_monitor".into(),
            password: String::new(),
        };
        let refused = mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::from_raw_os_error(111),
        ));
        assert_eq!(
            connect_error(&t, &refused),
            "Connect error (host = 198.18.0.12:3306, user = mmm_monitor)! Can't connect to MySQL server on '198.18.0.12' (111)"
        );
    }
    use crate::core::Outcome;

    fn row(pairs: &[(&str, Option<&str>)]) -> ReplicaStatus {
        let r: Row = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        ReplicaStatus::from_row(&r).unwrap()
    }

    #[test]
    fn dialect_query() {
        assert_eq!(
            replica_status_query("10.11.19-MariaDB-0+deb12u1"),
            "SHOW SLAVE STATUS"
        );
        assert_eq!(replica_status_query("8.0.36"), "SHOW REPLICA STATUS");
        assert_eq!(
            replica_status_query("8.4.0-commercial"),
            "SHOW REPLICA STATUS"
        );
        assert_eq!(replica_status_query("8.0.21"), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_query("5.7.44-log"), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_query(""), "SHOW SLAVE STATUS");
    }

    #[test]
    fn threads_in_both_dialects() {
        let maria = row(&[
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("Yes")),
        ]);
        assert_eq!(threads_verdict(Some(&maria)).outcome, Outcome::Ok);
        let mysql8 = row(&[
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("Yes")),
        ]);
        assert_eq!(threads_verdict(Some(&mysql8)).outcome, Outcome::Ok);
        let stopped = row(&[
            ("Slave_IO_Running", Some("No")),
            ("Slave_SQL_Running", Some("Yes")),
        ]);
        assert_eq!(
            threads_verdict(Some(&stopped)).message,
            "ERROR: Replication is broken"
        );
        let sql_dead = row(&[
            ("Replica_IO_Running", Some("Yes")),
            ("Replica_SQL_Running", Some("No")),
        ]);
        assert_eq!(threads_verdict(Some(&sql_dead)).outcome, Outcome::Error);
        let bad_pw = row(&[
            ("Slave_IO_Running", Some("Connecting")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Last_IO_Errno", Some("1045")),
        ]);
        assert_eq!(
            threads_verdict(Some(&bad_pw)).message,
            "ERROR: Replication is broken"
        );
        let master_down = row(&[
            ("Slave_IO_Running", Some("Connecting")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Last_IO_Errno", Some("2003")),
        ]);
        assert_eq!(threads_verdict(Some(&master_down)).outcome, Outcome::Ok);
        assert_eq!(
            threads_verdict(None).message,
            "ERROR: Replication is not set up"
        );
        // A former writer with a transaction the writer never had: named, kept out.
        let errant = row(&[
            ("Slave_IO_Running", Some("No")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Using_Gtid", Some("Slave_Pos")),
            ("Last_IO_Errno", Some("1236")),
            ("Last_IO_Error", Some("Got fatal error 1236 from master when reading data from binary log: 'Error: connecting slave requested to start from GTID 0-1-2470, which is not in the master's binlog'")),
        ]);
        let m = threads_verdict(Some(&errant)).message;
        assert!(
            m.contains("errant transactions") && m.contains("GTID 0-1-2470"),
            "{m}"
        );
        // By file and position 1236 is a purged binlog: broken, not errant (the number and
        // the mode decide, never the text).
        let purged = row(&[
            ("Slave_IO_Running", Some("No")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Using_Gtid", Some("No")),
            ("Last_IO_Errno", Some("1236")),
            ("Last_IO_Error", Some("Got fatal error 1236 from master when reading data from binary log: 'Could not find first log file name in binary log index file'")),
        ]);
        assert_eq!(
            threads_verdict(Some(&purged)).message,
            "ERROR: Replication is broken"
        );
        let out_of_order = row(&[
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("No")),
            ("Last_SQL_Errno", Some("1950")),
            ("Last_SQL_Error", Some("An attempt was made to binlog GTID 0-2-2470 which would create an out-of-order sequence number with existing GTID 0-1-2470")),
        ]);
        let m = threads_verdict(Some(&out_of_order)).message;
        assert!(
            m.contains("errant transactions") && m.contains("0-1-2470"),
            "{m}"
        );
    }

    #[test]
    fn backlog_in_both_dialects() {
        let r = |v: Option<&str>| row(&[("Seconds_Behind_Master", v)]);
        assert_eq!(
            backlog_verdict(Some(&r(None)), 60).message,
            "OK: Backlog is null"
        );
        assert_eq!(
            backlog_verdict(Some(&r(Some("0"))), 60).message,
            "OK: Backlog is null"
        );
        assert_eq!(backlog_verdict(Some(&r(Some("60"))), 60).message, "OK");
        assert_eq!(
            backlog_verdict(Some(&r(Some("61"))), 60).message,
            "ERROR: Backlog is too big"
        );
        let m8 = row(&[("Seconds_Behind_Source", Some("500"))]);
        assert_eq!(backlog_verdict(Some(&m8), 60).outcome, Outcome::Error);
        assert_eq!(backlog_verdict(None, 60).message, "OK: Backlog is null");
        let garbage: Row = [("Seconds_Behind_Master".to_string(), Some("x".to_string()))].into();
        let e = parsed(Some(&garbage)).unwrap_err();
        assert_eq!(e.outcome, Outcome::Unknown);
        assert!(e.message.contains("Seconds_Behind_Master"), "{}", e.message);
    }
}
