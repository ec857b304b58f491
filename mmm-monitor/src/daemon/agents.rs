//! The monitor's connections to its agents (the `mmm.v1.Agent` client adapter; with
//! `grpc.rs`, the only monitor code that sees prost types). Per agent, three tasks share one
//! lazily connected channel:
//! - a status poll every second → [`Input::AgentStatus`] / [`Input::AgentUnreachable`];
//! - a `Health` subscription, re-subscribed [`RESUBSCRIBE`] after it ends or fails (kept
//!   short: this stream is the fast path of failure detection) → [`Input::AgentHealth`];
//! - a pusher that watches the latest role table (one `Arc` shared by every agent, never
//!   cloned per agent) and applies it until the agent acknowledges that epoch, retrying with
//!   [`Backoff`] and starting over at once when a newer table arrives → [`Msg::Acked`]; asked
//!   by the driver ([`Pushers::repair`]), it pushes an acknowledged table again (drift).
//!
//! Every task ends when the driver's channel closes.

use super::{
    driver::Msg,
    history::{AgentApply, StepRec},
    metrics::{HostLabel, MonitorMetrics},
};
use crate::core::{AgentView, Input, RoleTable};
use mmm_common::{config::Config, gtid::GtidSet};
use mmm_proto::{
    convert,
    v1::{self as pb, agent_client::AgentClient},
};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::{mpsc, watch, Notify};
use tonic::transport::Channel;

/// The latest table to push (`None` before the first one).
pub type Latest = watch::Receiver<Option<Arc<RoleTable>>>;

/// Retry delays after consecutive failures: 500 ms, 1 s, 2 s, 4 s, then 4 s (250 ms × 2^n,
/// n ≤ 4, at most 5 s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Records a failure; returns how long to wait before the next try.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let d = Duration::from_millis(250 * (1u64 << self.failures.min(4)));
        d.min(Duration::from_secs(5))
    }
    /// A success (or a new reason to try at once): the next failure starts over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// How long one apply may take on an agent: its own bounds plus the call timeout.
pub fn apply_timeout(cfg: &Config) -> Duration {
    cfg.monitor.agent_timeout + cfg.catchup_timeout + cfg.kill_timeout + Duration::from_secs(2)
}

/// What the core needs from an agent's status.
pub fn agent_view(st: &pb::AgentStatus) -> AgentView {
    AgentView {
        reachable: true,
        // MMM's short-downtime rule used the machine's uptime; ours uses mysqld's: a restart
        // of the server (or a reboot) resets it, a network blip does not.
        uptime_s: (st.mysqld_uptime_s > 0).then_some(st.mysqld_uptime_s),
        mysqld_down: !st.mysqld_up,
        // Reported on the health stream, not in the status; the core keeps its own copy.
        peers_down: vec![],
        peers_mysqld_down: vec![],
        lease_fenced: st.lease_fenced,
        replica_io_running: (!st.replication_source.is_empty()).then_some(st.io_running),
        semisync_fell_back: st.semisync_fell_back,
        errant: !st.errant_transactions.is_empty(),
        progress: mmm_common::gtid_progress(&st.gtid_executed),
        writable: Some(st.writable),
        configured_ips: st
            .vips_configured
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect(),
        owned_ips: st
            .vips_owned
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect(),
        source_ip: st
            .replication_source
            .split(':')
            .next()
            .and_then(|h| h.parse().ok()),
        mac: convert::mac(&st.host, &st.mac).ok().flatten(),
        applied_epoch: st.applied_epoch,
        gtid_state: gtid_set(&st.host, "gtid_state", &st.gtid_state),
        gtid_origin: st.gtid_origin.clone(),
        gtid_received: gtid_set(&st.host, "gtid_received", &st.gtid_received),
    }
}

/// A GTID set an agent reported (`None`: empty, or unreadable — logged).
fn gtid_set(host: &str, field: &str, text: &str) -> Option<GtidSet> {
    match GtidSet::parse(text) {
        Ok(g) if g.is_empty() => None,
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!("agent on host '{host}' reported {field}: {e}");
            None
        }
    }
}

/// The pushers of every agent: the latest table for all, and a way to have one push again.
pub struct Pushers {
    /// The latest table, watched by every pusher.
    pub latest: watch::Sender<Option<Arc<RoleTable>>>,
    repair: BTreeMap<String, Arc<Notify>>,
    /// Whether the monitor's own network is up: nothing is pushed while it is down.
    network: watch::Sender<bool>,
}

impl Pushers {
    /// The monitor's network went down (pushes wait) or came back (they resume at once).
    pub fn set_network(&self, up: bool) {
        self.network.send_replace(up);
    }

    /// Has `host`'s pusher push the latest table again although it was acknowledged (its
    /// agent's status differs from it). Repeated requests before it runs are one.
    pub fn repair(&self, host: &str) {
        if let Some(n) = self.repair.get(host) {
            n.notify_one();
        }
    }
}

/// Starts the three tasks of every agent in `cfg`; tables sent on the returned pushers go to
/// all of them.
pub fn spawn_all(
    cfg: &Arc<Config>,
    tls: Option<&mmm_proto::TlsFiles>,
    tx: &mpsc::Sender<Msg>,
    metrics: &Arc<MonitorMetrics>,
) -> Pushers {
    let (latest_tx, latest) = watch::channel(None);
    let (network_tx, network) = watch::channel(true);
    let mut repair = BTreeMap::new();
    for h in &cfg.hosts {
        let ep = match mmm_proto::endpoint(&format!("{}:{}", h.ip, h.agent_port), tls) {
            Ok(ep) => ep,
            Err(e) => {
                tracing::error!(host = %h.name, "agent endpoint: {e}");
                continue;
            }
        };
        let client = AgentClient::new(ep.connect_timeout(cfg.monitor.agent_timeout).connect_lazy());
        let again = Arc::new(Notify::new());
        tokio::spawn(poll_status(
            StatusPoll {
                host: h.name.clone(),
                client: client.clone(),
                timeout: cfg.monitor.agent_timeout,
                again: again.clone(),
                latest: latest.clone(),
            },
            tx.clone(),
        ));
        tokio::spawn(subscribe_health(h.name.clone(), client.clone(), tx.clone()));
        // Every host's series exist from the start (at 0), for dashboards and rate().
        let label = HostLabel {
            host: h.name.clone(),
        };
        let _ = metrics.pushes.get_or_create(&label);
        let _ = metrics.push_failures.get_or_create(&label);
        let _ = metrics.push_duration.get_or_create(&label);
        repair.insert(h.name.clone(), again.clone());
        tokio::spawn(push(
            Pusher {
                host: h.name.clone(),
                client,
                latest: latest.clone(),
                again,
                network: network.clone(),
                metrics: metrics.clone(),
            },
            tx.clone(),
            apply_timeout(cfg),
        ));
    }
    Pushers {
        latest: latest_tx,
        repair,
        network: network_tx,
    }
}

/// One agent's status poll: its client, its pusher's signal, the latest table (whose epoch
/// each call carries: a call with the epoch the agent applied renews its writer lease).
struct StatusPoll {
    host: String,
    client: AgentClient<Channel>,
    timeout: Duration,
    again: Arc<Notify>,
    latest: Latest,
}

async fn poll_status(p: StatusPoll, tx: mpsc::Sender<Msg>) {
    let StatusPoll {
        host,
        client: mut c,
        timeout,
        again,
        latest,
    } = p;
    let mut was_down = false;
    loop {
        let epoch = latest.borrow().as_ref().map_or(0, |t| t.epoch);
        let r = tokio::time::timeout(timeout, c.status(pb::StatusRequest { epoch })).await;
        let input = match r {
            Ok(Ok(st)) => {
                // Back after a cut: its pusher retries at once, no backoff left to run.
                if std::mem::take(&mut was_down) {
                    again.notify_one();
                }
                Input::AgentStatus {
                    host: host.clone(),
                    view: agent_view(st.get_ref()),
                }
            }
            _ => {
                was_down = true;
                Input::AgentUnreachable { host: host.clone() }
            }
        };
        if tx.send(Msg::Input(input)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How soon a `Health` subscription that ended or failed is made again.
pub const RESUBSCRIBE: Duration = Duration::from_millis(500);

async fn subscribe_health(host: String, mut c: AgentClient<Channel>, tx: mpsc::Sender<Msg>) {
    loop {
        if let Ok(resp) = c.health(pb::HealthRequest {}).await {
            let mut s = resp.into_inner();
            while let Ok(Some(ev)) = s.message().await {
                let input = Input::AgentHealth {
                    host: host.clone(),
                    up: ev.mysqld_up,
                    hard: ev.hard_evidence,
                    peers_down: ev.peers_down,
                    peers_mysqld_down: ev.peers_mysqld_down,
                };
                if tx.send(Msg::Input(input)).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE).await;
        if tx.is_closed() {
            return;
        }
    }
}

/// The outcome of one push: acknowledged, refused as stale (with the agent's applied epoch),
/// or failed; and the agent's report for the history (its timed steps, logged at INFO in one
/// line).
fn outcome(host: &str, r: CallResult, took: Duration) -> (bool, Option<u64>, AgentApply) {
    let mut a = AgentApply {
        host: host.into(),
        took_ms: took.as_millis() as u64,
        ..Default::default()
    };
    let (ok, stale) = match r {
        Ok(Ok(rep)) => {
            let rep = rep.into_inner();
            a.gtid_executed = rep.gtid_executed.clone();
            a.steps = rep
                .steps
                .into_iter()
                .map(|s| StepRec {
                    name: s.name,
                    micros: s.micros,
                    ok: s.ok,
                    detail: s.detail,
                })
                .collect();
            if !a.steps.is_empty() {
                let steps: Vec<String> = a
                    .steps
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {:.1} ms{}",
                            s.name,
                            s.micros as f64 / 1000.0,
                            if s.ok { "" } else { " (failed)" }
                        )
                    })
                    .collect();
                tracing::info!(host = %host, "agent applied epoch {} in {} ms: {}", rep.epoch, a.took_ms, steps.join(", "));
            }
            (true, None)
        }
        Ok(Err(status)) => {
            a.error = status.message().to_string();
            match convert::applied_epoch(&status) {
                Some(applied) => (false, Some(applied)),
                None => {
                    tracing::warn!(host = %host, "agent refused the role table: {}", status.message());
                    (false, None)
                }
            }
        }
        Err(_) => {
            a.error = format!("no answer within {took:?}");
            (false, None)
        }
    };
    a.ok = ok;
    (ok, stale, a)
}

/// What one apply call ended with: the gRPC answer, or no answer within its bound.
type CallResult =
    Result<Result<tonic::Response<pb::AgentReport>, tonic::Status>, tokio::time::error::Elapsed>;

/// A call's task's result: a task that did not finish (the runtime shutting down) is a
/// failed call.
fn joined(r: Result<CallResult, tokio::task::JoinError>) -> CallResult {
    r.unwrap_or_else(|e| {
        Ok(Err(tonic::Status::unknown(format!(
            "the call's task ended: {e}"
        ))))
    })
}

/// Counts a push to `host` of `epoch` that ended with `r` after `took`, and tells the driver
/// (`Msg::Acked`); whether it succeeded, `None` when the driver is gone.
async fn report(
    host: &str,
    epoch: u64,
    r: CallResult,
    took: Duration,
    metrics: &MonitorMetrics,
    tx: &mpsc::Sender<Msg>,
) -> Option<bool> {
    let (ok, stale, report) = outcome(host, r, took);
    let label = HostLabel { host: host.into() };
    metrics.pushes.get_or_create(&label).inc();
    metrics
        .push_duration
        .get_or_create(&label)
        .observe(took.as_secs_f64());
    if !ok {
        metrics.push_failures.get_or_create(&label).inc();
    }
    let msg = Msg::Acked {
        host: host.into(),
        epoch,
        ok,
        stale,
        report,
    };
    tx.send(msg).await.ok().map(|()| ok)
}

/// One agent's pusher: its client, the latest table, and its repair signal.
struct Pusher {
    host: String,
    client: AgentClient<Channel>,
    latest: Latest,
    again: Arc<Notify>,
    network: watch::Receiver<bool>,
    metrics: Arc<MonitorMetrics>,
}

async fn push(p: Pusher, tx: mpsc::Sender<Msg>, timeout: Duration) {
    let Pusher {
        host,
        client: c,
        mut latest,
        again,
        mut network,
        metrics,
    } = p;
    let mut acked = 0u64;
    let mut backoff = Backoff::default();
    loop {
        let table = latest.borrow_and_update().clone();
        let Some(t) = table.filter(|t| t.epoch > acked) else {
            tokio::select! {
                r = latest.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                _ = again.notified() => acked = 0,
            }
            continue;
        };
        // MMM: nothing is sent to agents while the monitor's own network is down.
        if network.wait_for(|up| *up).await.is_err() {
            return;
        }
        let t0 = std::time::Instant::now();
        let (mut cc, table) = (c.clone(), pb::RoleTable::from(&*t));
        let mut call =
            tokio::spawn(async move { tokio::time::timeout(timeout, cc.apply_roles(table)).await });
        // A newer table does not wait for this call: the agent applies this one to its end
        // anyway (its queue), and the newer one waits there behind it — where a hand-over of
        // this one sees it and stops waiting for a new owner the newer table may have
        // changed (`Applier::newer`). This call's answer is still reported when it comes
        // (it renewed the writer's lease when the agent received it: the core must hear it).
        let r = loop {
            tokio::select! {
                r = &mut call => break Some(r),
                changed = latest.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if latest.borrow().as_ref().is_some_and(|n| n.epoch > t.epoch) {
                        break None;
                    }
                }
            }
        };
        let Some(r) = r else {
            let (host, tx, metrics, epoch) = (host.clone(), tx.clone(), metrics.clone(), t.epoch);
            tokio::spawn(async move {
                let r = call.await;
                report(&host, epoch, joined(r), t0.elapsed(), &metrics, &tx).await;
            });
            continue;
        };
        let Some(ok) = report(&host, t.epoch, joined(r), t0.elapsed(), &metrics, &tx).await else {
            return;
        };
        if ok {
            acked = t.epoch;
            backoff.reset();
            continue;
        }
        // Failed: try again after the backoff, or at once when a newer table arrives or the
        // agent answers again.
        tokio::select! {
            _ = tokio::time::sleep(backoff.fail()) => {}
            r = latest.changed() => {
                if r.is_err() {
                    return;
                }
                backoff.reset();
            }
            _ = again.notified() => backoff.reset(),
        }
    }
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
