//! The monitor's Prometheus metrics (`<monitor> metrics_port`, default 9990; names in the
//! README). Gauges that describe the cluster are set from each snapshot; counters and
//! histograms are updated where things happen (checks in `inputs.rs`, pushes in `agents.rs`,
//! failovers in the driver).

use super::snapshot::Snapshot;
use crate::core::{HostState, Mode, Outcome};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabel {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub host: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub host: String,
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckResultLabel {
    pub host: String,
    pub check: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: String,
    pub ip: String,
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    pub mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// A fencing run's host and how it ended (`fenced` or `failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FenceLabel {
    pub host: String,
    pub result: String,
}

const CHECK_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0];
const PUSH_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
const FAILOVER_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn check_histogram() -> Histogram {
    Histogram::new(CHECK_BUCKETS.iter().copied())
}

fn failover_histogram() -> Histogram {
    Histogram::new(FAILOVER_BUCKETS.iter().copied())
}

fn push_histogram() -> Histogram {
    Histogram::new(PUSH_BUCKETS.iter().copied())
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the monitor.
pub struct MonitorMetrics {
    registry: Mutex<Registry>,
    /// `mmm_host_state{host,state}`: 1 for the host's state, 0 for the others.
    pub host_state: Family<StateLabel, Gauge>,
    /// `mmm_check_result{host,check,result}`: 1 for the counted result.
    pub check_result: Family<CheckResultLabel, Gauge>,
    /// `mmm_check_duration_seconds{host,check}`.
    pub check_duration: HistogramFamily<CheckLabel>,
    /// `mmm_role_owner{role,ip,host}`: 1 where a role IP is.
    pub role_owner: Family<RoleLabel, Gauge>,
    /// `mmm_mode{mode}`: 1 for the current mode.
    pub mode: Family<ModeLabel, Gauge>,
    /// `mmm_epoch`: the role table's epoch.
    pub epoch: Gauge,
    /// `mmm_agent_reachable{host}`.
    pub agent_reachable: Family<HostLabel, Gauge>,
    /// `mmm_pushes_total{host}`, `mmm_push_failures_total{host}`,
    /// `mmm_push_duration_seconds{host}`.
    pub pushes: Family<HostLabel, Counter>,
    pub push_failures: Family<HostLabel, Counter>,
    pub push_duration: HistogramFamily<HostLabel>,
    /// `mmm_failovers_total{reason}`: the writer role moved (reason: the former writer's
    /// state, or `switchover`).
    pub failovers: Family<ReasonLabel, Counter>,
    /// `mmm_failover_duration_seconds{stage}`: `detection` (the former writer's first failing
    /// check → the decision) and `applied` (the decision → every agent answered).
    pub failover_duration: HistogramFamily<StageLabel>,
    /// `mmm_network_up`: the monitor's own network check (`ping_ips`).
    pub network_up: Gauge,
    /// `mmm_fences_total{host,result}`: `kill_host_bin` runs as a fence (`kill_host_fences`),
    /// `fenced` (exit 0 within its bound) or `failed` — alert on the second.
    pub fences: Family<FenceLabel, Counter>,
}

impl MonitorMetrics {
    pub fn new() -> MonitorMetrics {
        let m = MonitorMetrics {
            registry: Mutex::new(Registry::default()),
            host_state: Family::default(),
            check_result: Family::default(),
            check_duration: Family::new_with_constructor(check_histogram),
            role_owner: Family::default(),
            mode: Family::default(),
            epoch: Gauge::default(),
            agent_reachable: Family::default(),
            pushes: Family::default(),
            push_failures: Family::default(),
            push_duration: Family::new_with_constructor(push_histogram),
            failovers: Family::default(),
            failover_duration: Family::new_with_constructor(failover_histogram),
            network_up: Gauge::default(),
            fences: Family::default(),
        };
        // Both stages exist from the start (at 0), for dashboards and rate().
        for stage in ["detection", "applied"] {
            let _ = m.failover_duration.get_or_create(&StageLabel {
                stage: stage.into(),
            });
        }
        if let Ok(mut r) = m.registry.lock() {
            let r = r.sub_registry_with_prefix("mmm");
            r.register(
                "host_state",
                "Host state (1: current)",
                m.host_state.clone(),
            );
            r.register(
                "check_result",
                "Counted check result (1: current)",
                m.check_result.clone(),
            );
            r.register_with_unit(
                "check_duration",
                "Duration of checks",
                Unit::Seconds,
                m.check_duration.clone(),
            );
            r.register(
                "role_owner",
                "Where each role IP is (1)",
                m.role_owner.clone(),
            );
            r.register("mode", "Monitor mode (1: current)", m.mode.clone());
            r.register("epoch", "Role table epoch", m.epoch.clone());
            r.register(
                "agent_reachable",
                "Whether the last call to the agent succeeded",
                m.agent_reachable.clone(),
            );
            r.register("pushes", "Role tables pushed to agents", m.pushes.clone());
            r.register(
                "push_failures",
                "Role table pushes that failed",
                m.push_failures.clone(),
            );
            r.register_with_unit(
                "push_duration",
                "Duration of role table pushes",
                Unit::Seconds,
                m.push_duration.clone(),
            );
            r.register(
                "failovers",
                "Moves of the writer role, by reason",
                m.failovers.clone(),
            );
            r.register_with_unit(
                "failover_duration",
                "Writer failover stages: detection (first failing check to decision), applied (decision to every agent's answer)",
                Unit::Seconds,
                m.failover_duration.clone(),
            );
            r.register(
                "network_up",
                "The monitor's own network check (ping_ips)",
                m.network_up.clone(),
            );
            r.register(
                "fences",
                "kill_host_bin runs fencing a failed-over writer (kill_host_fences), by result",
                m.fences.clone(),
            );
        }
        m
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        match self.registry.lock() {
            Ok(r) => mmm_proto::metrics::encode(&r),
            Err(_) => String::new(),
        }
    }

    /// Sets the gauges that describe the cluster from a snapshot.
    pub fn observe(&self, s: &Snapshot, network_up: bool) {
        self.epoch.set(s.epoch as i64);
        self.network_up.set(i64::from(network_up));
        for m in [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive] {
            self.mode
                .get_or_create(&ModeLabel {
                    mode: m.name().into(),
                })
                .set(i64::from(s.mode == Some(m)));
        }
        self.role_owner.clear();
        for h in &s.hosts {
            for st in HostState::ALL {
                let l = StateLabel {
                    host: h.name.clone(),
                    state: st.name().into(),
                };
                self.host_state
                    .get_or_create(&l)
                    .set(i64::from(h.state == st));
            }
            self.agent_reachable
                .get_or_create(&HostLabel {
                    host: h.name.clone(),
                })
                .set(i64::from(h.agent_reachable));
            for r in &h.roles {
                let l = RoleLabel {
                    role: r.role.clone(),
                    ip: r.ip.to_string(),
                    host: h.name.clone(),
                };
                self.role_owner.get_or_create(&l).set(1);
            }
            for c in &h.checks {
                for (name, o) in [
                    ("ok", Outcome::Ok),
                    ("error", Outcome::Error),
                    ("unknown", Outcome::Unknown),
                ] {
                    let l = CheckResultLabel {
                        host: h.name.clone(),
                        check: c.kind.name().into(),
                        result: name.into(),
                    };
                    self.check_result
                        .get_or_create(&l)
                        .set(i64::from(c.outcome == Some(o)));
                }
            }
        }
    }
}

impl Default for MonitorMetrics {
    fn default() -> Self {
        MonitorMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::snapshot::HostSnap;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = MonitorMetrics::new();
        m.observe(
            &Snapshot {
                hosts: vec![HostSnap {
                    name: "db1".into(),
                    ip: "198.18.0.11".parse().unwrap(),
                    mode: "master".into(),
                    state: HostState::HardOffline,
                    roles: vec![],
                    agent_reachable: false,
                    checks: vec![],
                    drift: None,
                    repairs: 0,
                    analysis: None,
                }],
                mode: Some(Mode::Active),
                epoch: 7,
                ..Default::default()
            },
            true,
        );
        m.failovers
            .get_or_create(&ReasonLabel {
                reason: "HARD_OFFLINE".into(),
            })
            .inc();
        m.fences
            .get_or_create(&FenceLabel {
                host: "db1".into(),
                result: "fenced".into(),
            })
            .inc();
        let text = m.render();
        for want in [
            "mmm_host_state{host=\"db1\",state=\"HARD_OFFLINE\"} 1",
            "mmm_host_state{host=\"db1\",state=\"ONLINE\"} 0",
            "mmm_epoch 7",
            "mmm_mode{mode=\"ACTIVE\"} 1",
            "mmm_failovers_total{reason=\"HARD_OFFLINE\"} 1",
            "mmm_network_up 1",
            "mmm_fences_total{host=\"db1\",result=\"fenced\"} 1",
            "# TYPE mmm_failover_duration_seconds histogram",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }
}
