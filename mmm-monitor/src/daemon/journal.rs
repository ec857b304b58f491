//! What the driver tells the outside after each decision: the failover history
//! (`history.rs`), the failover metrics, and `notify_bin` (our addition: an executable run on
//! every state change and role move with the event as arguments and as JSON on stdin,
//! bounded by [`NOTIFY_TIMEOUT`], its output and exit status logged, at most
//! [`NOTIFY_AT_ONCE`] at a time — never blocking a decision).

use super::{
    external::run_bounded,
    history::{self, AgentApply, Entry, History},
    metrics::{MonitorMetrics, ReasonLabel, StageLabel},
    snapshot::unix_ms,
};
use crate::core::{Event, HostState};
use std::{path::PathBuf, sync::Arc, time::Instant};
use tokio::sync::Semaphore;

/// Longest a `notify_bin` run may take before it is stopped.
pub const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Runs of `notify_bin` at once; an event beyond that is logged and not notified.
pub const NOTIFY_AT_ONCE: usize = 4;

/// The driver's journal.
pub struct Journal {
    pub history: History,
    metrics: Arc<MonitorMetrics>,
    writer_role: String,
    hosts: Vec<String>,
    notify_bin: Option<PathBuf>,
    notify_slots: Arc<Semaphore>,
}

impl Journal {
    pub fn new(
        history: History,
        metrics: Arc<MonitorMetrics>,
        writer_role: String,
        hosts: Vec<String>,
        notify_bin: Option<PathBuf>,
    ) -> Journal {
        Journal {
            history,
            metrics,
            writer_role,
            hosts,
            notify_bin,
            notify_slots: Arc::new(Semaphore::new(NOTIFY_AT_ONCE)),
        }
    }

    /// A decision: its events, the admin command behind it (`words → answer`), the epoch
    /// of the table pushed for it, if one was, and (`detection`) how long the former writer
    /// had been failing.
    pub fn decided(
        &mut self,
        events: &[Event],
        admin: Option<String>,
        pushed: Option<u64>,
        epoch: u64,
        detection: Option<std::time::Duration>,
    ) {
        if events.is_empty() && admin.is_none() {
            return;
        }
        for e in events {
            self.notify(e, epoch);
        }
        let kind = history::kind(events, &self.writer_role, admin.is_some());
        if kind == "failover" || kind == "switchover" {
            let reason = events
                .iter()
                .find_map(|e| match e {
                    Event::State { to, .. }
                        if kind == "failover"
                            && !matches!(to, HostState::Online | HostState::AdminOffline) =>
                    {
                        Some(to.name().to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "switchover".into());
            self.metrics
                .failovers
                .get_or_create(&ReasonLabel { reason })
                .inc();
            if let (Some(d), true) = (detection, kind == "failover") {
                self.stage("detection", d.as_secs_f64());
            }
        }
        let mut changes: Vec<String> = admin.into_iter().map(|a| format!("admin: {a}")).collect();
        changes.extend(events.iter().map(history::describe));
        let entry = Entry {
            at_unix_ms: unix_ms(),
            epoch,
            kind,
            changes,
            ..Default::default()
        };
        let to = if pushed.is_some() {
            self.hosts.clone()
        } else {
            vec![]
        };
        self.history.record(entry, to, Instant::now());
    }

    /// An agent answered a push.
    pub fn acked(&mut self, epoch: u64, report: AgentApply) {
        if let Some(done) = self.history.agent_done(epoch, report, Instant::now()) {
            if done.kind == "failover" || done.kind == "switchover" {
                self.stage("applied", done.applied_ms as f64 / 1000.0);
            }
        }
    }

    fn stage(&self, stage: &str, secs: f64) {
        self.metrics
            .failover_duration
            .get_or_create(&StageLabel {
                stage: stage.into(),
            })
            .observe(secs);
    }

    /// Time passes: entries whose agents never answered become final.
    pub fn tick(&mut self) {
        self.history.expire(Instant::now());
    }

    /// Runs `notify_bin` for `e` in the background.
    fn notify(&self, e: &Event, epoch: u64) {
        let Some(bin) = self.notify_bin.clone() else {
            return;
        };
        let Ok(slot) = self.notify_slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "notify_bin: {NOTIFY_AT_ONCE} runs still busy; not notified: {}",
                history::describe(e)
            );
            return;
        };
        let (args, json) = notify_args(e, epoch);
        tokio::spawn(async move {
            let _slot = slot;
            let r = run_bounded(&bin, &args, Some(json.as_bytes()), NOTIFY_TIMEOUT).await;
            match r {
                Ok(ran) if ran.status.success() => {
                    if !ran.output.is_empty() {
                        tracing::info!("notify_bin {}: {}", args.join(" "), ran.output);
                    }
                }
                Ok(ran) => tracing::error!(
                    "notify_bin {} exited with {}: {}",
                    args.join(" "),
                    ran.status,
                    ran.output
                ),
                Err(why) => tracing::error!("notify_bin {}: {why}", args.join(" ")),
            }
        });
    }
}

/// `notify_bin`'s arguments and stdin for `e`: `state HOST FROM TO`, `role ROLE(IP) FROM TO`
/// (`-` for no host), `mode FROM TO`, `leader NAME` (monitor high availability; `-`: none) or
/// `refused HOST ROLE` (a promotion refused: the JSON's
/// `reason` says why); the JSON carries the same and the epoch.
pub fn notify_args(e: &Event, epoch: u64) -> (Vec<String>, String) {
    let (args, mut json) = match e {
        Event::State {
            host,
            from,
            to,
            reason,
        } => (
            vec![
                "state".into(),
                host.clone(),
                from.to_string(),
                to.to_string(),
            ],
            serde_json::json!({"event": "state", "host": host, "from": from.name(), "to": to.name(), "reason": reason}),
        ),
        Event::RoleMoved { role, from, to } => {
            let h = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
            (
                vec!["role".into(), role.to_string(), h(from), h(to)],
                serde_json::json!({"event": "role", "role": role.role, "ip": role.ip.to_string(), "from": from, "to": to}),
            )
        }
        Event::ModeChanged { from, to } => (
            vec!["mode".into(), from.to_string(), to.to_string()],
            serde_json::json!({"event": "mode", "from": from.name(), "to": to.name()}),
        ),
        Event::PromotionRefused { host, role, reason } => (
            vec!["refused".into(), host.clone(), role.clone()],
            serde_json::json!({"event": "refused", "host": host, "role": role, "reason": reason}),
        ),
        Event::LeaderChanged { leader } => {
            let l = leader.clone().unwrap_or_else(|| "-".into());
            (
                vec!["leader".into(), l],
                serde_json::json!({"event": "leader", "leader": leader}),
            )
        }
    };
    json["epoch"] = epoch.into();
    json["at_unix_ms"] = unix_ms().into();
    (args, json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::RoleIp;

    #[test]
    fn notify_arguments_and_json() {
        let e = Event::RoleMoved {
            role: RoleIp::new("writer", "198.18.0.100".parse().unwrap()),
            from: Some("db1".into()),
            to: None,
        };
        let (args, json) = notify_args(&e, 9);
        assert_eq!(args, ["role", "writer(198.18.0.100)", "db1", "-"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"], "role");
        assert_eq!(v["epoch"], 9);
        assert_eq!(v["to"], serde_json::Value::Null);
    }
}
