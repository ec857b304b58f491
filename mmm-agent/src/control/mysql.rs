//! The agent's connection to its local server (agent_user over TCP, as MMM), every operation
//! under a timeout. A fresh connection per operation: agent operations are rare, and a server
//! restart never leaves a dead pooled connection behind.

use super::sql::{Dialect, Proc};
use mmm_common::replica::{row_of, value_text, ReplicaStatus, ReplicaStatusError, Row};
use mmm_common::sql::redact;
use mysql_async::prelude::Queryable;
use std::{net::Ipv4Addr, time::Duration};

/// A failed database operation; names what was attempted, never a password (statements and
/// the server's errors about them go through `mmm_common::sql::redact`).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connecting to {addr} as {user}: {err}")]
    Connect {
        addr: String,
        user: String,
        err: String,
        /// The connection was refused: nothing listens (hard evidence the server is down).
        refused: bool,
        /// The server answered at the protocol level and refused the login (e.g. access
        /// denied): it is alive.
        answered: bool,
    },
    #[error("{sql}: {err}")]
    Query { sql: String, err: String },
    #[error("{what}: no answer within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error(transparent)]
    ReplicaStatus(#[from] ReplicaStatusError),
}

/// Where the local server is and how to log in.
#[derive(Clone, Debug)]
pub struct Db {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub timeout: Duration,
}

impl DbError {
    /// Hard evidence that the server is down (its connection refused), as opposed to a
    /// suspicion (a timeout: it may be hung, or the network slow).
    pub fn server_down(&self) -> bool {
        matches!(self, DbError::Connect { refused: true, .. })
    }

    /// Whether the server answered at the protocol level although the operation failed (a
    /// refused login, a failed statement): it is alive.
    pub fn server_answered(&self) -> bool {
        matches!(
            self,
            DbError::Connect { answered: true, .. } | DbError::Query { .. }
        )
    }
}

impl Db {
    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, DbError>>,
    ) -> Result<T, DbError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| DbError::Timeout {
                what: redact(what, what),
                timeout: self.timeout,
            })?
    }

    /// A new connection.
    pub async fn conn(&self) -> Result<mysql_async::Conn, DbError> {
        let opts: mysql_async::Opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.ip.to_string())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(Some(false))
            .max_allowed_packet(Some(mmm_common::sql::CLIENT_MAX_PACKET))
            .wait_timeout(Some(mmm_common::sql::CLIENT_WAIT_TIMEOUT_S))
            .into();
        let addr = format!("{}:{}", self.ip, self.port);
        self.timed("connecting", async {
            mysql_async::Conn::new(opts)
                .await
                .map_err(|e| DbError::Connect {
                    addr,
                    user: self.user.clone(),
                    answered: matches!(&e, mysql_async::Error::Server(_)),
                    refused: matches!(&e, mysql_async::Error::Io(mysql_async::IoError::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused),
                    err: e.to_string(),
                })
        })
        .await
    }

    /// Runs `sql` (no result).
    pub async fn exec(&self, sql: &str) -> Result<(), DbError> {
        self.exec_all(&[sql]).await
    }

    /// Runs `sql` on `c` (no result), bounded by the timeout.
    async fn exec_on(&self, c: &mut mysql_async::Conn, sql: &str) -> Result<(), DbError> {
        self.timed(sql, async {
            c.query_drop(sql).await.map_err(|e| DbError::Query {
                sql: redact(sql, sql),
                err: redact(sql, &e.to_string()),
            })
        })
        .await
    }

    /// Closes `c` in the background, for at most the timeout: the `COM_QUIT` round trip is no
    /// part of any step (a demotion or promotion does not wait for it), and a hung server
    /// never holds one.
    async fn close(&self, c: mysql_async::Conn) {
        let limit = self.timeout;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(limit, c.disconnect()).await;
        });
    }

    /// Runs `sqls` in order on one connection (each bounded), stopping at the first that
    /// fails: a dialect's fencing or unfencing statements. One connection, not one per
    /// statement: a login costs milliseconds, and these run while the writer is unavailable.
    pub async fn exec_all(&self, sqls: &[&str]) -> Result<(), DbError> {
        let mut c = self.conn().await?;
        let mut r = Ok(());
        for sql in sqls {
            r = self.exec_on(&mut c, sql).await;
            if r.is_err() {
                break;
            }
        }
        self.close(c).await;
        r
    }

    /// Runs each of `sqls` on one connection whatever the others gave (a `KILL` of a session
    /// that already ended fails alone); stops only when the connection is lost or times out.
    /// Returns how many succeeded.
    pub async fn exec_each(&self, sqls: &[String]) -> Result<usize, DbError> {
        let mut c = self.conn().await?;
        let mut ok = 0;
        for sql in sqls {
            match self.exec_on(&mut c, sql).await {
                Ok(()) => ok += 1,
                Err(DbError::Query { .. }) => {}
                Err(e) => {
                    self.close(c).await;
                    return Err(e);
                }
            }
        }
        self.close(c).await;
        Ok(ok)
    }

    /// Runs `sql` with a longer bound (waits for catch-up): `limit` instead of the default.
    pub async fn value_within(
        &self,
        sql: &str,
        limit: Duration,
    ) -> Result<Option<String>, DbError> {
        let me = Db {
            timeout: limit + self.timeout,
            ..self.clone()
        };
        me.value(sql).await
    }

    /// The first column of the first row of `sql`.
    pub async fn value(&self, sql: &str) -> Result<Option<String>, DbError> {
        self.timed(sql, async {
            let mut c = self.conn().await?;
            let r: Result<Option<mysql_async::Row>, _> = c.query_first(sql).await;
            let _ = c.disconnect().await;
            let row = r.map_err(|e| DbError::Query {
                sql: redact(sql, sql),
                err: redact(sql, &e.to_string()),
            })?;
            Ok(row.and_then(|r| r.as_ref(0).and_then(value_text)))
        })
        .await
    }

    /// All rows of `sql`.
    pub async fn rows(&self, sql: &str) -> Result<Vec<Row>, DbError> {
        self.timed(sql, async {
            let mut c = self.conn().await?;
            let r: Result<Vec<mysql_async::Row>, _> = c.query(sql).await;
            let _ = c.disconnect().await;
            Ok(r.map_err(|e| DbError::Query {
                sql: redact(sql, sql),
                err: redact(sql, &e.to_string()),
            })?
            .iter()
            .map(row_of)
            .collect())
        })
        .await
    }

    pub async fn dialect(&self) -> Result<Dialect, DbError> {
        Ok(Dialect::detect(
            &self.value("SELECT VERSION()").await?.unwrap_or_default(),
        ))
    }

    /// The applied GTID set (`gtid_current_pos` / `gtid_executed`).
    pub async fn gtid_executed(&self, d: Dialect) -> Result<Option<String>, DbError> {
        self.value(&format!("SELECT {}", d.gtid_executed_var()))
            .await
    }

    /// The replica status, typed (`None`: not a replica).
    pub async fn replica_status(&self, d: Dialect) -> Result<Option<ReplicaStatus>, DbError> {
        match self.rows(d.replica_status()).await?.first() {
            Some(r) => Ok(Some(ReplicaStatus::from_row(r)?)),
            None => Ok(None),
        }
    }

    pub async fn read_only(&self) -> Result<bool, DbError> {
        Ok(self.value("SELECT @@read_only").await?.as_deref() == Some("1"))
    }

    /// `SHOW MASTER STATUS` (`SHOW BINARY LOG STATUS` on MySQL 8.2+): the binlog file and
    /// position, if binary logging is on.
    pub async fn binlog_position(&self) -> Result<Option<(String, u64)>, DbError> {
        let d = self.dialect().await?;
        let rows = self.rows(d.binlog_status()).await?;
        Ok(rows.into_iter().next().and_then(|r| {
            let f = r.get("File").cloned().flatten()?;
            let p = r.get("Position").cloned().flatten()?.parse().ok()?;
            Some((f, p))
        }))
    }

    pub async fn processlist(&self) -> Result<Vec<Proc>, DbError> {
        let rows = self.rows("SHOW FULL PROCESSLIST").await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Proc {
                    id: r.get("Id")?.as_deref()?.parse().ok()?,
                    user: r.get("User").cloned().flatten().unwrap_or_default(),
                    command: r.get("Command").cloned().flatten().unwrap_or_default(),
                    host: r.get("Host").cloned().flatten().unwrap_or_default(),
                    info: r.get("Info").cloned().flatten(),
                })
            })
            .collect())
    }
}
