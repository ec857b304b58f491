//! The `mmm.v1.Agent` gRPC adapter: converts protobuf to the shared vocabulary
//! (`mmm_proto::convert`) and back, and maps errors to status codes (stale epoch →
//! FAILED_PRECONDITION with the applied epoch as metadata, bad table → INVALID_ARGUMENT,
//! failed step → ABORTED naming the step). Only this file sees prost types.

use super::{
    apply::ApplyError, health::Health, mysql::Db, plan::PlanError, queue::ApplyQueue,
    state::AgentState,
};
use crate::dataplane::{DataPlane, Netlink};
use mmm_common::roles::RoleTable;
use mmm_proto::{
    convert,
    v1::{self as pb, agent_server::Agent},
};
use std::{path::PathBuf, pin::Pin, time::Instant};
use tokio::sync::{watch, Mutex};
use tokio_stream::{wrappers::WatchStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Shared state of the running agent.
pub struct AgentService {
    /// Where role tables wait for the apply worker (one at a time, newest wins).
    pub queue: ApplyQueue,
    /// The last status built, and when (a burst of calls opens one set of connections).
    pub status_cache: Mutex<Option<(Instant, pb::AgentStatus)>>,
    /// Whether the writer committed without a semi-sync acknowledgement since its source
    /// side last protected commits (`semisync_fell_back` in the status).
    pub unprotected: std::sync::Mutex<mmm_common::semisync::Unprotected>,
    pub applied: watch::Sender<AgentState>,
    pub health: watch::Receiver<Health>,
    pub started: Instant,
    pub db: Db,
    pub pin_root: PathBuf,
    pub iface: String,
    pub nl: Netlink,
    pub me: String,
    pub recovered: bool,
    /// The apply steps' durations (shared with the applier).
    pub metrics: super::metrics::AgentMetrics,
    /// When the monitor last called with the epoch this agent applied (renews the writer
    /// lease, `lease.rs`).
    pub heard: watch::Sender<Option<Instant>>,
}

fn uptime() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split('.').next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// How long a built status is served again.
const STATUS_TTL: std::time::Duration = std::time::Duration::from_millis(250);

impl AgentService {
    /// The status, at most [`STATUS_TTL`] old (one caller builds, the others wait and share
    /// it: bounded MySQL connections).
    pub async fn current_status(&self) -> pb::AgentStatus {
        let mut cache = self.status_cache.lock().await;
        if let Some((at, st)) = cache.as_ref() {
            if at.elapsed() < STATUS_TTL {
                return st.clone();
            }
        }
        let st = self.build_status().await;
        *cache = Some((Instant::now(), st.clone()));
        st
    }

    /// The status now: applied epoch, writable, VIPs, replication, uptimes.
    async fn build_status(&self) -> pb::AgentStatus {
        let applied = self.applied.borrow().clone();
        let mut st = pb::AgentStatus {
            host: self.me.clone(),
            applied_epoch: applied.epoch,
            agent_uptime_s: self.started.elapsed().as_secs(),
            system_uptime_s: uptime(),
            mysqld_up: self.health.borrow().up,
            state_recovered: self.recovered,
            lease_fenced: applied.lease_fenced,
            ..Default::default()
        };
        if let Ok(dp) = DataPlane::open(&self.pin_root, &self.iface) {
            if let Ok(info) = dp.iface_info() {
                st.mac = info.mac.to_vec();
            }
            for row in dp.list().unwrap_or_default() {
                if row.action == Some(mmm_common::Action::Local) {
                    st.vips_owned.push(row.vip.to_string());
                    if self.nl.has_vip_address(row.vip).await.unwrap_or(false) {
                        st.vips_configured.push(row.vip.to_string());
                    }
                }
            }
        }
        if let Ok(d) = self.db.dialect().await {
            st.writable = matches!(self.db.read_only().await, Ok(false));
            if super::semisync::read(&self.db, d)
                .await
                .is_some_and(|s| s.source)
            {
                if let Some((on, clients, no_tx)) =
                    super::semisync::source_reading(&self.db, d).await
                {
                    st.semisync_fell_back = self
                        .unprotected
                        .lock()
                        .map(|mut u| u.observe(on, clients, no_tx))
                        .unwrap_or(true);
                }
            }
            st.gtid_executed = self
                .db
                .gtid_executed(d)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            if let Some(r) = self
                .db
                .rows(d.gtid_state_query())
                .await
                .ok()
                .and_then(|r| r.into_iter().next())
            {
                let col = |c: &str| r.get(c).cloned().flatten().unwrap_or_default();
                st.gtid_state = col("state");
                st.gtid_origin = col("origin");
            }
            if let Ok(Some((f, p))) = self.db.binlog_position().await {
                st.binlog_file = f;
                st.binlog_pos = p;
            }
            st.mysqld_uptime_s = self
                .db
                .rows("SHOW GLOBAL STATUS LIKE 'Uptime'")
                .await
                .ok()
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.get("Value").cloned().flatten())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if let Ok(Some(r)) = self.db.replica_status(d).await {
                st.replication_source = r.source();
                if let Some(e) = &r.executed {
                    st.exec_source_file = e.file.clone();
                    st.exec_source_pos = e.pos;
                }
                st.relay_log_applied = r.relay_log_applied();
                st.seconds_behind = r.seconds_behind.map_or(-1, |s| s as i64);
                st.io_running = r.io == mmm_common::replica::ThreadState::Running;
                st.errant_transactions = r.errant().unwrap_or_default().to_string();
                st.gtid_received = r.gtid_received.clone().unwrap_or_default();
                st.sql_running = r.sql == mmm_common::replica::ThreadState::Running;
            }
        }
        st
    }
}

impl AgentService {
    /// The server's applied GTID set now; empty while the health watcher finds it down (a
    /// hung server would cost a timeout on the acknowledgement's path).
    async fn gtid_now(&self) -> String {
        if !self.health.borrow().up {
            return String::new();
        }
        let Ok(d) = self.db.dialect().await else {
            return String::new();
        };
        self.db
            .gtid_executed(d)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn apply_roles(
        &self,
        req: Request<pb::RoleTable>,
    ) -> Result<Response<pb::AgentReport>, Status> {
        let table = RoleTable::try_from(req.into_inner())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let epoch = table.epoch;
        let at = Instant::now();
        // Applied to the end by the queue's worker even when this caller gives up.
        let r = self
            .queue
            .submit(table)
            .await
            .map_err(|_| Status::internal("the apply worker stopped"))?;
        match r {
            Ok(steps) => {
                self.heard.send_replace(Some(at));
                let gtid_executed = self.gtid_now().await;
                Ok(Response::new(pb::AgentReport {
                    gtid_executed,
                    epoch,
                    steps: steps
                        .into_iter()
                        .map(|s| pb::Step {
                            name: s.name,
                            micros: s.micros,
                            ok: s.ok,
                            detail: s.detail,
                        })
                        .collect(),
                }))
            }
            Err(ApplyError::Plan(e @ PlanError::Stale { have, .. })) => {
                Err(convert::stale_epoch_status(e.to_string(), have))
            }
            Err(ApplyError::Plan(e @ (PlanError::NotInTable(_) | PlanError::Invalid(_)))) => {
                Err(Status::invalid_argument(e.to_string()))
            }
            Err(e @ (ApplyError::Step { .. } | ApplyError::Superseded { .. })) => {
                Err(Status::aborted(e.to_string()))
            }
        }
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let at = Instant::now();
        if req.get_ref().epoch == self.applied.borrow().epoch {
            self.heard.send_replace(Some(at));
        }
        let st = self.current_status().await;
        Ok(Response::new(st))
    }

    type HealthStream = Pin<Box<dyn Stream<Item = Result<pb::HealthEvent, Status>> + Send>>;

    async fn health(
        &self,
        _req: Request<pb::HealthRequest>,
    ) -> Result<Response<Self::HealthStream>, Status> {
        Ok(Response::new(Box::pin(health_events(self.health.clone()))))
    }
}

/// The health stream: the current state, then every change; nothing before the first real
/// check ("not checked yet" is not "down": saying so would make the monitor suspect a
/// healthy server at every agent start).
pub fn health_events(
    rx: watch::Receiver<Health>,
) -> impl Stream<Item = Result<pb::HealthEvent, Status>> + Send {
    WatchStream::new(rx).filter(|h| h.checked).map(|h| {
        Ok(pb::HealthEvent {
            at_unix_ms: h.at_unix_ms,
            mysqld_up: h.up,
            detail: h.detail,
            peers_down: h.peers_down,
            peers_mysqld_down: h.peers_mysqld_down,
            hard_evidence: !h.up && h.hard,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_says_nothing_before_the_first_check() {
        let h = |checked, up| Health {
            checked,
            up,
            hard: !up,
            pid: None,
            detail: String::new(),
            at_unix_ms: 0,
            peers_down: vec![],
            peers_mysqld_down: vec![],
        };
        let (tx, rx) = watch::channel(h(false, false));
        let mut s = Box::pin(health_events(rx));
        let first = tokio::time::timeout(std::time::Duration::from_millis(50), s.next()).await;
        assert!(first.is_err(), "an unchecked state was streamed: {first:?}");
        tx.send_replace(h(true, true));
        let ev = s.next().await.unwrap().unwrap();
        assert!(ev.mysqld_up);
        tx.send_replace(h(true, false));
        assert!(!s.next().await.unwrap().unwrap().mysqld_up);
    }
}
