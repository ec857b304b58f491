//! Promotion (a host gaining the writer role) and repointing (a slave following a new active
//! master), `docs/mmm-2.2.1.md` §3 with the §8 weaknesses fixed: every wait bounded, repointing
//! by GTID where the servers use it. The decisions are pure functions of the typed replica
//! status ([`catch_up`], [`wait_verdict`], [`needs_repoint`]); [`promote`] and [`repoint`] do
//! the I/O and record timed steps.

use super::{
    apply::{ApplyError, Steps},
    mysql::{Db, DbError},
    sql::Dialect,
};
use mmm_common::{
    config::Config,
    gtid::GtidSet,
    replica::{LogPos, ReplicaStatus, ThreadState},
};
use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

/// What a promotion waits for before the server is made writable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Not a replica: nothing to apply.
    NotReplica,
    /// The IO thread has read nothing from its source: nothing to apply.
    NothingRead,
    /// Everything read is applied already (`read == executed`): nothing to wait for.
    Applied(LogPos),
    /// Wait until the SQL thread has applied `until` (what the IO thread has read).
    Wait {
        until: LogPos,
        /// The SQL thread is stopped with events unapplied: start it first (a wait on a stopped
        /// SQL thread returns at once).
        start_sql: bool,
        /// How far behind the SQL thread is, for the log (`120 bytes`, `at least one binlog
        /// file`).
        behind: String,
    },
}

/// The catch-up a promotion needs, from the replica status read just before.
pub fn catch_up(status: Option<&ReplicaStatus>) -> CatchUp {
    let Some(s) = status else {
        return CatchUp::NotReplica;
    };
    let Some(read) = &s.read else {
        return CatchUp::NothingRead;
    };
    if s.relay_log_applied() {
        return CatchUp::Applied(read.clone());
    }
    let same_file = s.executed.as_ref().is_some_and(|e| e.file == read.file);
    let exec = s.executed.as_ref().map(|e| e.pos).unwrap_or(0);
    let is_behind = !same_file || read.pos > exec;
    CatchUp::Wait {
        until: read.clone(),
        start_sql: s.sql == ThreadState::Stopped && is_behind,
        behind: if same_file {
            format!("{} bytes", read.pos.saturating_sub(exec))
        } else {
            "at least one binlog file".into()
        },
    }
}

/// What a `MASTER_POS_WAIT`/`SOURCE_POS_WAIT` answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitVerdict {
    /// Reached the position (0 or more events waited for).
    Applied,
    /// NULL: the SQL thread is not running (MariaDB/MySQL manuals): the relay log is *not*
    /// applied, whatever it holds.
    SqlThreadNotRunning,
    /// -1 (timeout) or an error: `why`.
    NotApplied(String),
}

/// Reads a position wait's answer.
pub fn wait_verdict(r: &Result<Option<String>, DbError>) -> WaitVerdict {
    match r {
        Ok(Some(v)) if v != "-1" && !v.is_empty() => WaitVerdict::Applied,
        Ok(None) => WaitVerdict::SqlThreadNotRunning,
        Ok(Some(_)) => WaitVerdict::NotApplied("timeout".into()),
        Err(e) => WaitVerdict::NotApplied(e.to_string()),
    }
}

/// Whether a replica with `status` must be pointed at `master_ip` (it reads from elsewhere,
/// or is no replica at all).
pub fn needs_repoint(status: Option<&ReplicaStatus>, master_ip: Ipv4Addr) -> bool {
    status.map(|s| s.source_host.as_str()).unwrap_or("") != master_ip.to_string()
}

/// The replication threads a repoint starts again after `CHANGE MASTER`. A thread stopped
/// without an error was stopped by an operator (`STOP SLAVE`, `STOP SLAVE SQL_THREAD`) and
/// stays stopped: such a replica holds no reader role (its `rep_threads` check fails), and a
/// failover must not set it applying again behind the operator's back (#13 item 4). A thread
/// an error stopped is started again (the new source may heal it), as MMM's `START SLAVE` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    /// Start the IO thread.
    pub io: bool,
    /// Start the SQL thread.
    pub sql: bool,
}

impl Restart {
    /// What a replica with `status` (`None`: not a replica yet) gets started.
    pub fn after_repoint(status: Option<&ReplicaStatus>) -> Restart {
        let held = |t: ThreadState, errno: u32| t == ThreadState::Stopped && errno == 0;
        status.map_or(
            Restart {
                io: true,
                sql: true,
            },
            |s| Restart {
                io: !held(s.io, s.last_io_errno),
                sql: !held(s.sql, s.last_sql_errno),
            },
        )
    }

    /// The statement that starts them (`None`: neither).
    pub fn statement(self, d: Dialect) -> Option<&'static str> {
        match (self.io, self.sql) {
            (true, true) => Some(d.start_replica()),
            (true, false) => Some(d.start_io_thread()),
            (false, true) => Some(d.start_sql_thread()),
            (false, false) => None,
        }
    }

    /// Whether `s` shows the started threads running.
    fn running(self, s: &ReplicaStatus) -> bool {
        (!self.io || s.io == ThreadState::Running) && (!self.sql || s.sql == ThreadState::Running)
    }
}

/// Bounded wait until the relay log is applied up to `until`.
async fn wait_applied(db: &Db, d: Dialect, until: &LogPos, limit: Duration) -> WaitVerdict {
    let sql = d.wait_relay_applied(&until.file, until.pos, limit.as_secs_f64());
    wait_verdict(&db.value_within(&sql, limit).await)
}

/// Bounded wait for the relay log, then writable. With `catchup_strict` a catch-up that does
/// not finish refuses the promotion; without, it promotes and logs the possible loss.
pub async fn promote(
    db: &Db,
    d: Dialect,
    cfg: &Config,
    catch_up_to: Option<&str>,
    steps: &mut Steps,
) -> Result<(), ApplyError> {
    let t0 = Instant::now();
    let limit = cfg.catchup_timeout;
    match db.replica_status(d).await {
        Err(e) => steps.record(
            "catch-up",
            t0,
            false,
            format!("cannot read replica status: {e}"),
        ),
        Ok(status) => match catch_up(status.as_ref()) {
            CatchUp::NotReplica => steps.record(
                "catch-up",
                t0,
                true,
                "not a replica: nothing to apply".into(),
            ),
            CatchUp::NothingRead => steps.record(
                "catch-up",
                t0,
                true,
                "nothing received from the source: nothing to apply".into(),
            ),
            CatchUp::Applied(at) => steps.record(
                "catch-up",
                t0,
                true,
                format!("relay log applied up to {at} (nothing left to wait for)"),
            ),
            CatchUp::Wait {
                until,
                start_sql,
                behind,
            } => {
                if start_sql {
                    let t1 = Instant::now();
                    let r = db.exec(d.start_sql_thread()).await;
                    let detail = match &r {
                        Ok(()) => {
                            "SQL thread was stopped with relay log unapplied: started it".into()
                        }
                        Err(e) => format!("cannot start the SQL thread: {e}"),
                    };
                    steps.record("catch-up", t1, r.is_ok(), detail);
                }
                match wait_applied(db, d, &until, limit).await {
                    WaitVerdict::Applied => steps.record(
                        "catch-up",
                        t0,
                        true,
                        format!("relay log applied up to {until}"),
                    ),
                    verdict @ (WaitVerdict::SqlThreadNotRunning | WaitVerdict::NotApplied(_)) => {
                        let why = match verdict {
                            WaitVerdict::NotApplied(why) => why,
                            _ => "the SQL thread is not running (the wait returned NULL)".into(),
                        };
                        let detail = format!(
                            "relay log not applied within {limit:?}: {behind} of {} received but not applied ({why})",
                            until.file
                        );
                        if cfg.catchup_strict {
                            return Err(steps.fail(
                                "catch-up",
                                t0,
                                format!("{detail}; catchup_strict: promotion refused"),
                            ));
                        }
                        tracing::warn!("promoting anyway: transactions in the unapplied relay log may be lost or applied late: {detail}");
                        steps.record(
                            "catch-up",
                            t0,
                            false,
                            format!("{detail}; promoting anyway (catchup_strict off)"),
                        );
                    }
                }
            }
        },
    }
    if let Some(gtid) = catch_up_to {
        final_position(db, d, cfg, gtid, steps).await?;
    }
    let t0 = Instant::now();
    let sqls = d.allow_writes();
    if let Err(e) = db.exec_all(&sqls).await {
        return Err(steps.fail("writable", t0, e.to_string()));
    }
    steps.record("writable", t0, true, sqls.join("; "));
    Ok(())
}

/// Before repointing by GTID: waits (bounded by `limit`) until the new source `peer` holds
/// every transaction this replica has. A source that lacks the replica's GTID position refuses
/// to serve it (error 1236, "requested to start from GTID …, which is not in the master's
/// binlog") and the IO thread stops for good — which is what a slave following the standby
/// meets after a switchover: it received the new writer's first transactions directly,
/// before the standby (now its source) did. Recorded as a step; a timeout (or an error)
/// repoints anyway (the replica may hold transactions nobody else has: errant, reported by
/// the monitor).
async fn source_holds_mine(db: &Db, peer: &Db, d: Dialect, limit: Duration, steps: &mut Steps) {
    let t0 = Instant::now();
    let mine = match db.gtid_executed(d).await {
        Ok(Some(g)) if !g.trim().is_empty() => g,
        _ => return,
    };
    loop {
        if let Ok(Some(theirs)) = peer.gtid_executed(d).await {
            if holds(&theirs, &mine) {
                if t0.elapsed() >= Duration::from_millis(50) {
                    let detail = format!("the new source holds {mine}");
                    steps.record("source catch-up", t0, true, detail);
                }
                return;
            }
        }
        if t0.elapsed() >= limit {
            let detail =
                format!("the new source does not hold {mine} within {limit:?}; repointing anyway");
            steps.record("source catch-up", t0, false, detail);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `have` (this server's executed GTID set) holds every transaction of `want` (the
/// old writer's final set); `false` when either cannot be read or they are of different
/// families (then the server's own wait decides).
pub fn holds(have: &str, want: &str) -> bool {
    match (GtidSet::parse(have), GtidSet::parse(want)) {
        (Ok(have), Ok(want)) => want.missing_from(&have) == Some(0),
        _ => false,
    }
}

/// After the old writer confirmed its demotion (a planned switchover, or the failover of a
/// writer that was alive): waits (bounded by `catchup_timeout`) until its final GTID set
/// `gtid` is applied here, so the new writer starts with every write the old one took. A set
/// this server already holds is applied at once — its own transactions above all, when the
/// old writer takes the role back: MariaDB's `MASTER_GTID_WAIT` waits on `gtid_slave_pos`,
/// which never holds a server's own commits (MariaDB KB "MASTER_GTID_WAIT"). A timeout (or
/// NULL, or an error) refuses the promotion under `catchup_strict`, and is recorded as a
/// possible loss otherwise.
async fn final_position(
    db: &Db,
    d: Dialect,
    cfg: &Config,
    gtid: &str,
    steps: &mut Steps,
) -> Result<(), ApplyError> {
    let t0 = Instant::now();
    let limit = cfg.catchup_timeout;
    if let Ok(Some(have)) = db.gtid_executed(d).await {
        if holds(&have, gtid) {
            steps.record(
                "catch-up",
                t0,
                true,
                format!("the old writer's final position {gtid} is applied (held already: {have})"),
            );
            return Ok(());
        }
    }
    let q = d.wait_gtid(gtid, limit.as_secs_f64());
    let r = db.value_within(&q, limit + Duration::from_secs(2)).await;
    if matches!(&r, Ok(Some(v)) if v == "0") {
        steps.record(
            "catch-up",
            t0,
            true,
            format!("the old writer's final position {gtid} is applied"),
        );
        return Ok(());
    }
    let why = match r {
        Ok(Some(v)) => format!("the wait returned {v}"),
        Ok(None) => "the wait returned NULL".into(),
        Err(e) => e.to_string(),
    };
    let detail =
        format!("the old writer's final position {gtid} not applied within {limit:?} ({why})");
    if cfg.catchup_strict {
        return Err(steps.fail(
            "catch-up",
            t0,
            format!("{detail}; catchup_strict: promotion refused"),
        ));
    }
    tracing::warn!("promoting anyway: {detail}");
    steps.record(
        "catch-up",
        t0,
        false,
        format!("{detail}; promoting anyway (catchup_strict off)"),
    );
    Ok(())
}

/// Repoints this replica (`me`) at `master` if it is not already replicating from it: bounded
/// wait for what the IO thread fetched, then `CHANGE MASTER` (GTID-exact where the replica
/// uses GTID; otherwise the new source's current coordinates, MMM's lossy method, with a
/// warning), then a short check that both threads run.
///
/// A failure is recorded as a failed step and does not fail the apply (the VIPs were taken
/// before, and must stay): the monitor sees the replica read from elsewhere than the active
/// master in the next status (drift) and pushes the table again, which retries.
pub async fn repoint(db: &Db, d: Dialect, cfg: &Config, me: &str, master: &str, steps: &mut Steps) {
    let t0 = Instant::now();
    if let Err(detail) = try_repoint(db, d, cfg, me, master, steps).await {
        steps.record(
            "repoint",
            t0,
            false,
            format!("{detail}; retried when the table is pushed again"),
        );
    }
}

async fn try_repoint(
    db: &Db,
    d: Dialect,
    cfg: &Config,
    me: &str,
    master: &str,
    steps: &mut Steps,
) -> Result<(), String> {
    let (Some(m), Some(me)) = (cfg.host(master), cfg.host(me)) else {
        return Ok(());
    };
    let t0 = Instant::now();
    let status = db.replica_status(d).await.map_err(|e| e.to_string())?;
    if !needs_repoint(status.as_ref(), m.ip) {
        return Ok(());
    }
    // Let the SQL thread apply what the IO thread already fetched (bounded).
    if let Some(read) = status.as_ref().and_then(|s| s.read.clone()) {
        let ok = wait_applied(db, d, &read, cfg.catchup_timeout).await == WaitVerdict::Applied;
        let how = if ok {
            "applied"
        } else {
            "not applied in time; repointing anyway"
        };
        steps.record("replica catch-up", t0, ok, format!("{read} {how}"));
    }
    let gtid = status.as_ref().map(|s| s.gtid).unwrap_or(true);
    let peer = Db {
        ip: m.ip,
        port: m.mysql_port,
        ..db.clone()
    };
    if gtid {
        source_holds_mine(db, &peer, d, cfg.catchup_timeout, steps).await;
    }
    let t0 = Instant::now();
    let coords = if gtid {
        None
    } else {
        let pos = peer.binlog_position().await.map_err(|e| e.to_string())?;
        tracing::warn!(
            "repointing without GTID, MMM's coordinate method: events can be lost or repeated"
        );
        pos
    };
    let change = d.change_source(
        &m.ip.to_string(),
        m.mysql_port,
        &me.replication_user,
        &me.replication_password,
        coords.as_ref().map(|(f, p)| (f.as_str(), *p)),
    );
    let restart = Restart::after_repoint(status.as_ref());
    for sql in [
        Some(d.stop_replica()),
        Some(change.as_str()),
        restart.statement(d),
    ]
    .into_iter()
    .flatten()
    {
        // The error names the statement, its password redacted (`Db`).
        db.exec(sql).await.map_err(|e| e.to_string())?;
    }
    // Verify the started threads run (Connecting is fine: the new master may still be
    // starting); threads an operator stopped stay stopped.
    let mut ok = false;
    for _ in 0..20 {
        if let Ok(Some(s)) = db.replica_status(d).await {
            if restart.running(&s) {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut how = if gtid { "by GTID" } else { "by coordinates" }.to_string();
    if !(restart.io && restart.sql) {
        how += match restart.statement(d) {
            Some(s) => format!("; only `{s}`: a thread an operator stopped stays stopped"),
            None => "; both threads stay stopped, as an operator left them".into(),
        }
        .as_str();
    }
    let warn = if ok {
        ""
    } else {
        "; threads not both running yet"
    };
    steps.record(
        "repoint",
        t0,
        ok,
        format!(
            "replicating from {master} ({}:{}) {how}{warn}",
            m.ip, m.mysql_port
        ),
    );
    Ok(())
}

#[cfg(test)]
#[path = "promote_tests.rs"]
mod tests;
