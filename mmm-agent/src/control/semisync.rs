//! Semi-synchronous replication on this host (`semisync` on): reading its switches for the
//! planner, setting them as planned (`Op::SemiSync`), and the source side's fallback for the
//! status. The SQL is `mmm_common::semisync`'s; MySQL's plugins are installed when missing.

use super::{
    apply::{Applier, ApplyError, Steps},
    mysql::Db,
    sql::Dialect,
};
use mmm_common::semisync::{self, SemiSync};
use std::time::{Duration, Instant};

/// The switches now (`None`: the server does not answer, or has no semisync).
pub async fn read(db: &Db, d: Dialect) -> Option<SemiSync> {
    let rows = db.rows(&semisync::state_query(d)).await.ok()?;
    let row = rows.first()?;
    let on = |col: &str| {
        row.get(col)
            .cloned()
            .flatten()
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"))
    };
    Some(SemiSync {
        source: on("source"),
        replica: on("replica"),
    })
}

/// Whether this server's IO thread acknowledges as a semi-sync replica now (`false` when not
/// known).
pub async fn acknowledging(db: &Db, d: Dialect) -> bool {
    let Ok(rows) = db.rows(&semisync::replica_status_query(d)).await else {
        return false;
    };
    rows.first()
        .and_then(|r| r.get("Value").cloned().flatten())
        .is_some_and(|v| v.eq_ignore_ascii_case("ON"))
}

/// The source side's reading for [`semisync::Unprotected::observe`]: (`…_status` on,
/// `…_clients`, `…_no_tx`); `None` when not known.
pub async fn source_reading(db: &Db, d: Dialect) -> Option<(bool, u64, u64)> {
    let rows = db.rows(&semisync::status_query(d)).await.ok()?;
    let value = |suffix: &str| {
        rows.iter()
            .find(|r| {
                r.get("Variable_name")
                    .cloned()
                    .flatten()
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(suffix))
            })
            .and_then(|r| r.get("Value").cloned().flatten())
    };
    let on = value("_status")?.eq_ignore_ascii_case("ON");
    let clients: u64 = value("_clients")?.parse().ok()?;
    let no_tx: u64 = value("_no_tx")?.parse().ok()?;
    Some((on, clients, no_tx))
}

/// An IO-thread reconnect under way in the background, started by
/// [`Applier::set_semisync`] and awaited by [`Applier::reconnected`].
pub(super) struct Reconnect {
    said: String,
    /// The reconnect's outcome and how long it ran.
    task: tokio::task::JoinHandle<(Result<(), super::mysql::DbError>, Duration)>,
}

impl Applier {
    /// Sets the switches to `want` (installing MySQL's plugins first when missing); with
    /// `restart_io`, the IO thread reconnects so that the replica side counts (a host that
    /// replicates from nobody has no IO thread: that failure is recorded, not fatal). The
    /// reconnect runs in the background, returned to be awaited with [`Applier::reconnected`]
    /// before the next operation on the server: a demoted writer kills its clients, drops its
    /// addresses and acknowledges the table meanwhile, so the new writer is not kept waiting
    /// for a replication restart (its first commits wait for this host's acknowledgement
    /// instead, which comes once the IO thread is back: milliseconds).
    pub(super) async fn set_semisync(
        &self,
        d: Dialect,
        want: SemiSync,
        restart_io: bool,
        steps: &mut Steps,
    ) -> Result<Option<Reconnect>, ApplyError> {
        let t0 = Instant::now();
        let mut sqls: Vec<String> = Vec::new();
        for (name, install) in semisync::plugins(d) {
            let q = format!(
                "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = '{name}'"
            );
            if self.db.value(&q).await.ok().flatten().as_deref() == Some("0") {
                sqls.push(install.into());
            }
        }
        sqls.extend(semisync::source(d, want.source, self.cfg.semisync_timeout));
        sqls.extend(semisync::replica(d, want.replica));
        let refs: Vec<&str> = sqls.iter().map(String::as_str).collect();
        if let Err(e) = self.db.exec_all(&refs).await {
            return Err(steps.fail("semisync", t0, e.to_string()));
        }
        let said = format!(
            "source {}, replica {}",
            if want.source { "on" } else { "off" },
            if want.replica { "on" } else { "off" }
        );
        steps.record("semisync", t0, true, said.clone());
        Ok(restart_io.then(|| self.reconnect_io(d, said)))
    }

    /// The writer's IO thread still acknowledges as a semi-sync replica (negotiated while this
    /// host was the standby; switching the replica side off does not end it): its source
    /// counts it as an acknowledging client, and were this host to die, that source —
    /// promoted — would hold its first commit for `semisync_timeout` waiting for it. The IO
    /// thread reconnects in the background, as a plain replica — but only once everything it
    /// received is applied (a restarted IO thread drops the relay log in GTID mode).
    pub(super) async fn stop_acknowledging(
        &self,
        d: Dialect,
        steps: &mut Steps,
    ) -> Option<Reconnect> {
        let t0 = Instant::now();
        match self.db.replica_status(d).await {
            Ok(Some(s)) if s.read.is_some() && !s.relay_log_applied() => {
                steps.record(
                    "semisync",
                    t0,
                    false,
                    "the IO thread still acknowledges as a semi-sync replica; not reconnected: its relay log is not applied yet".into(),
                );
                None
            }
            Err(e) => {
                steps.record("semisync", t0, false, format!("replica status: {e}"));
                None
            }
            Ok(_) => Some(self.reconnect_io(
                d,
                "the IO thread stops acknowledging as a semi-sync replica".into(),
            )),
        }
    }

    /// Reconnects the IO thread in the background (recorded by [`Applier::reconnected`]).
    fn reconnect_io(&self, d: Dialect, said: String) -> Reconnect {
        let db = self.db.clone();
        Reconnect {
            said,
            task: tokio::spawn(async move {
                let t0 = Instant::now();
                let sqls = semisync::restart_io_thread(d);
                let r = db.exec_all(&sqls).await;
                // Said here too: nobody may wait for it before the agent stops.
                if let Err(e) = &r {
                    tracing::warn!(
                        "the IO thread did not reconnect after the semisync switch: {e}"
                    );
                }
                (r, t0.elapsed())
            }),
        }
    }

    /// Waits for the reconnect `r` and records it.
    pub(super) async fn reconnected(&self, r: Reconnect, steps: &mut Steps) {
        let (ok, took, detail) = match r.task.await {
            Ok((Ok(()), took)) => (true, took, format!("{}; IO thread reconnected", r.said)),
            Ok((Err(e), took)) => (
                false,
                took,
                format!("{}; IO thread not reconnected: {e}", r.said),
            ),
            Err(e) => (
                false,
                Duration::ZERO,
                format!("{}; IO thread not reconnected: {e}", r.said),
            ),
        };
        steps.record_took("semisync", took, ok, detail);
    }
}
