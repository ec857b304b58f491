//! A typed replica status, parsed once for both server families from the row of
//! `SHOW SLAVE STATUS` (MariaDB, MySQL before 8.0.22) or `SHOW REPLICA STATUS` (MySQL 8.0.22+,
//! `Source_*`/`Replica_*` column names). Used by the agent (promotion, repointing, status) and
//! by the monitor's checks (rep_threads, rep_backlog).
//!
//! Column names: MariaDB 10.11 "SHOW SLAVE STATUS" and MySQL 8.0 "SHOW REPLICA STATUS" in the
//! servers' manuals. A value that is present but unparsable is an error naming the column; an
//! absent or NULL value is `None` — never 0.

use std::collections::HashMap;

/// One result row by column name; `None` is SQL NULL.
pub type Row = HashMap<String, Option<String>>;

/// A replication thread's state (`Slave_IO_Running`, `Replica_SQL_Running`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// `Yes`.
    Running,
    /// `Connecting` (IO thread only): running but not connected to its source.
    Connecting,
    /// `No`, or the column is missing.
    Stopped,
}

impl ThreadState {
    fn parse(v: Option<&str>) -> ThreadState {
        match v {
            Some("Yes") => ThreadState::Running,
            Some("Connecting") => ThreadState::Connecting,
            _ => ThreadState::Stopped,
        }
    }

    /// `Yes` or `Connecting` (MMM counts `Connecting` as running, `docs/mmm-2.2.1.md` §2).
    pub fn running(self) -> bool {
        self != ThreadState::Stopped
    }
}

/// A coordinate in the source's binary log: `file:pos`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPos {
    /// The source's binlog file name (`binlog.000003`).
    pub file: String,
    /// Byte offset in it.
    pub pos: u64,
}

impl std::fmt::Display for LogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// What a replica reports about its replication from one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Master_Host`/`Source_Host` (as configured: an address or a name).
    pub source_host: String,
    /// `Master_Port`/`Source_Port`.
    pub source_port: Option<u16>,
    /// `Slave_IO_Running`/`Replica_IO_Running`.
    pub io: ThreadState,
    /// `Slave_SQL_Running`/`Replica_SQL_Running`.
    pub sql: ThreadState,
    /// How far the IO thread has read from the source (`Master_Log_File`,
    /// `Read_Master_Log_Pos`); `None` before it read anything.
    pub read: Option<LogPos>,
    /// How far the SQL thread has applied, in the source's coordinates
    /// (`Relay_Master_Log_File`, `Exec_Master_Log_Pos`).
    pub executed: Option<LogPos>,
    /// Replication by GTID (MariaDB `Using_Gtid` other than `No`; MySQL `Auto_Position` 1).
    pub gtid: bool,
    /// MariaDB `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`: what the IO thread has received.
    pub gtid_received: Option<String>,
    /// `Seconds_Behind_Master`/`Seconds_Behind_Source`; NULL when the SQL thread is not running.
    pub seconds_behind: Option<u64>,
    /// `Last_IO_Errno` (0: none).
    pub last_io_errno: u32,
    /// `Last_SQL_Errno` (0: none).
    pub last_sql_errno: u32,
    /// `Last_IO_Error` (empty: none).
    pub last_io_error: String,
    /// `Last_SQL_Error` (empty: none).
    pub last_sql_error: String,
}

/// The source refused to send from this replica's position because its binary log lacks a
/// GTID the replica has (`ER_MASTER_FATAL_ERROR_READING_BINLOG`, both families).
pub const ERRNO_SOURCE_LACKS_GTID: u32 = 1236;
/// MariaDB's `gtid_strict_mode` refused an event older than what the replica already has
/// (`ER_GTID_STRICT_OUT_OF_ORDER`).
pub const ERRNO_GTID_OUT_OF_ORDER: u32 = 1950;

impl ReplicaStatus {
    /// The replica holds transactions its source never had (errant transactions: committed
    /// here while it was a writer, never shipped), as its threads' error numbers say: 1236
    /// while replicating by GTID (the source's binary log lacks the position this replica's
    /// GTID state asks for — by file and position the same number means a purged binlog, not
    /// this), or 1950 (`gtid_strict_mode` met an event older than one the replica has). The
    /// error text, which names the GTID, is returned for the DBA, never inspected. A source
    /// that is merely behind the replica would say the same; the agent repoints only to a
    /// source that holds the replica's GTID state (`promote.rs` `source_holds_mine`).
    pub fn errant(&self) -> Option<&str> {
        if self.gtid && self.last_io_errno == ERRNO_SOURCE_LACKS_GTID {
            return Some(&self.last_io_error);
        }
        (self.last_sql_errno == ERRNO_GTID_OUT_OF_ORDER).then_some(self.last_sql_error.as_str())
    }
}

/// A replica-status value that is present but cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("replica status column {column} is '{value}', not a number")]
pub struct ReplicaStatusError {
    /// The column's name as the server sent it.
    pub column: String,
    /// Its text.
    pub value: String,
}

/// The value of the first of `names` present in `row` (NULL and absent are `None`).
fn text<'a>(row: &'a Row, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
    names
        .iter()
        .find_map(|n| row.get(*n).map(|v| (*n, v.as_deref())))
        .and_then(|(n, v)| v.map(|v| (n, v)))
}

fn number<T: std::str::FromStr>(
    row: &Row,
    names: &[&'static str],
) -> Result<Option<T>, ReplicaStatusError> {
    match text(row, names) {
        None => Ok(None),
        Some((_, "")) => Ok(None),
        Some((column, value)) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ReplicaStatusError {
                column: column.into(),
                value: value.into(),
            }),
    }
}

fn log_pos(
    row: &Row,
    file: &[&'static str],
    pos: &[&'static str],
) -> Result<Option<LogPos>, ReplicaStatusError> {
    let Some((_, file)) = text(row, file).filter(|(_, f)| !f.is_empty()) else {
        return Ok(None);
    };
    Ok(number(row, pos)?.map(|pos| LogPos {
        file: file.into(),
        pos,
    }))
}

impl ReplicaStatus {
    /// Parses a replica-status row of either dialect.
    pub fn from_row(row: &Row) -> Result<ReplicaStatus, ReplicaStatusError> {
        let s = |names| text(row, names).map(|(_, v)| v);
        Ok(ReplicaStatus {
            source_host: s(&["Master_Host", "Source_Host"]).unwrap_or("").into(),
            source_port: number(row, &["Master_Port", "Source_Port"])?,
            io: ThreadState::parse(s(&["Slave_IO_Running", "Replica_IO_Running"])),
            sql: ThreadState::parse(s(&["Slave_SQL_Running", "Replica_SQL_Running"])),
            read: log_pos(
                row,
                &["Master_Log_File", "Source_Log_File"],
                &["Read_Master_Log_Pos", "Read_Source_Log_Pos"],
            )?,
            executed: log_pos(
                row,
                &["Relay_Master_Log_File", "Relay_Source_Log_File"],
                &["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"],
            )?,
            gtid: s(&["Using_Gtid"]).is_some_and(|v| v != "No")
                || s(&["Auto_Position"]) == Some("1"),
            gtid_received: s(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"])
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            seconds_behind: number(row, &["Seconds_Behind_Master", "Seconds_Behind_Source"])?,
            last_io_errno: number(row, &["Last_IO_Errno"])?.unwrap_or(0),
            last_sql_errno: number(row, &["Last_SQL_Errno"])?.unwrap_or(0),
            last_io_error: s(&["Last_IO_Error"]).unwrap_or("").into(),
            last_sql_error: s(&["Last_SQL_Error"]).unwrap_or("").into(),
        })
    }

    /// The source as `host:port` (`host:` when the port is unknown).
    pub fn source(&self) -> String {
        match self.source_port {
            Some(p) => format!("{}:{p}", self.source_host),
            None => format!("{}:", self.source_host),
        }
    }

    /// Everything the IO thread read has been applied (same file, same position).
    pub fn relay_log_applied(&self) -> bool {
        self.read == self.executed
    }
}

/// The text of a `mysql_async` value (`None` for NULL); numbers in decimal.
#[cfg(feature = "mysql")]
pub fn value_text(v: &mysql_async::Value) -> Option<String> {
    use mysql_async::Value::*;
    match v {
        NULL => None,
        Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Int(i) => Some(i.to_string()),
        UInt(u) => Some(u.to_string()),
        Float(f) => Some(f.to_string()),
        Double(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A `mysql_async` row as a [`Row`] by column name.
#[cfg(feature = "mysql")]
pub fn row_of(r: &mysql_async::Row) -> Row {
    let cols = r.columns_ref();
    (0..r.len())
        .map(|i| {
            (
                cols[i].name_str().into_owned(),
                r.as_ref(i).and_then(value_text),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn mariadb_row() {
        let r = row(&[
            ("Master_Host", Some("198.18.0.11")),
            ("Master_Port", Some("3306")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("No")),
            ("Master_Log_File", Some("binlog.000003")),
            ("Read_Master_Log_Pos", Some("1234")),
            ("Relay_Master_Log_File", Some("binlog.000003")),
            ("Exec_Master_Log_Pos", Some("1000")),
            ("Using_Gtid", Some("Slave_Pos")),
            ("Gtid_IO_Pos", Some("0-1-42")),
            ("Seconds_Behind_Master", None),
            ("Last_IO_Errno", Some("0")),
            ("Last_SQL_Errno", Some("1062")),
        ]);
        let s = ReplicaStatus::from_row(&r).unwrap();
        assert_eq!(s.source(), "198.18.0.11:3306");
        assert_eq!((s.io, s.sql), (ThreadState::Running, ThreadState::Stopped));
        assert_eq!(s.read.as_ref().unwrap().to_string(), "binlog.000003:1234");
        assert_eq!(s.executed.as_ref().unwrap().pos, 1000);
        assert!(!s.relay_log_applied());
        assert!(s.gtid);
        assert_eq!(s.gtid_received.as_deref(), Some("0-1-42"));
        assert_eq!(s.seconds_behind, None);
        assert_eq!(s.last_sql_errno, 1062);
    }

    #[test]
    fn mysql8_row() {
        let r = row(&[
            ("Source_Host", Some("db1")),
            ("Source_Port", Some("3307")),
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Source_Log_File", Some("binlog.000009")),
            ("Read_Source_Log_Pos", Some("107")),
            ("Relay_Source_Log_File", Some("binlog.000009")),
            ("Exec_Source_Log_Pos", Some("107")),
            ("Auto_Position", Some("1")),
            ("Seconds_Behind_Source", Some("500")),
        ]);
        let s = ReplicaStatus::from_row(&r).unwrap();
        assert_eq!(s.source(), "db1:3307");
        assert!(s.io.running() && s.io == ThreadState::Connecting);
        assert!(s.relay_log_applied());
        assert!(s.gtid);
        assert_eq!(s.seconds_behind, Some(500));
    }

    #[test]
    fn nothing_read_yet_and_garbage() {
        let empty = ReplicaStatus::from_row(&row(&[("Master_Log_File", Some(""))])).unwrap();
        assert_eq!(empty.read, None);
        assert!(empty.relay_log_applied());
        assert_eq!(empty.io, ThreadState::Stopped);
        let bad = ReplicaStatus::from_row(&row(&[
            ("Master_Log_File", Some("binlog.000001")),
            ("Read_Master_Log_Pos", Some("12x")),
        ]))
        .unwrap_err();
        assert_eq!(bad.column, "Read_Master_Log_Pos");
        let lag = ReplicaStatus::from_row(&row(&[("Seconds_Behind_Master", Some("x"))]));
        assert!(lag.is_err(), "an unparsable lag must not become 0");
    }
}
