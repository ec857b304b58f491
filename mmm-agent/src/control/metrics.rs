//! The agent's Prometheus metrics (`<host> metrics_port`, default 9991; names in the README):
//! the XDP per-VIP counters read from the pinned maps at every scrape, the status the monitor
//! also sees (applied epoch, writable, VIPs, replication), the health stream's state, and the
//! duration of every apply step.

use super::service::AgentService;
use crate::dataplane::DataPlane;
use mmm_common::Action;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VipLabel {
    pub vip: String,
}

/// A host the agent cannot reach, and how it tried (`ping`, `mysqld`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
    pub by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    pub step: String,
}

/// One counter of a VIP's XDP statistics.
type Field = fn(&mmm_common::VipStats) -> u64;

const STEP_BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

fn step_histogram() -> Histogram {
    Histogram::new(STEP_BUCKETS.iter().copied())
}

/// What lives between scrapes: the apply steps' durations.
#[derive(Clone)]
pub struct AgentMetrics {
    /// `mmm_apply_step_duration_seconds{step}`.
    pub steps: Family<StepLabel, Histogram, fn() -> Histogram>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            steps: Family::new_with_constructor(step_histogram),
        }
    }
}

impl AgentMetrics {
    /// Records one apply step of `secs` seconds.
    pub fn step(&self, name: &str, secs: f64) {
        self.steps
            .get_or_create(&StepLabel { step: name.into() })
            .observe(secs);
    }
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    r.register(name, help, g);
}

/// The metrics now, as OpenMetrics text.
pub async fn render(svc: Arc<AgentService>) -> String {
    let st = svc.current_status().await;
    let mut registry = Registry::default();
    {
        let r = registry.sub_registry_with_prefix("mmm");
        gauge(
            r,
            "applied_epoch",
            "Highest role table epoch applied",
            st.applied_epoch as i64,
        );
        gauge(
            r,
            "writable",
            "The local server takes writes (read_only=0)",
            i64::from(st.writable),
        );
        gauge(
            r,
            "mysqld_up",
            "The health watcher's view of the local mysqld",
            i64::from(st.mysqld_up),
        );
        gauge(
            r,
            "vips_owned",
            "VIPs the data plane has LOCAL",
            st.vips_owned.len() as i64,
        );
        gauge(
            r,
            "replication_io_running",
            "The replica IO thread runs",
            i64::from(st.io_running),
        );
        gauge(
            r,
            "replication_sql_running",
            "The replica SQL thread runs",
            i64::from(st.sql_running),
        );
        if st.seconds_behind >= 0 {
            let g: Gauge = Gauge::default();
            g.set(st.seconds_behind);
            r.register_with_unit("replication_lag", "Seconds_Behind_Master", Unit::Seconds, g);
        }
        r.register_with_unit(
            "apply_step_duration",
            "Duration of apply steps",
            Unit::Seconds,
            svc.metrics.steps.clone(),
        );
        let families: [(&str, &str, Field); 5] = [
            ("xdp_arp_replies", "ARP requests answered by XDP", |s| {
                s.arp_replies
            }),
            (
                "xdp_passed_packets",
                "IPv4 frames to a LOCAL VIP passed up",
                |s| s.passed,
            ),
            (
                "xdp_steered_packets",
                "Frames of stale clients steered to the owner",
                |s| s.steered,
            ),
            (
                "xdp_dropped_packets",
                "Frames to a FENCE VIP dropped",
                |s| s.dropped,
            ),
            (
                "xdp_arp_conflicts",
                "ARP from another MAC claiming a LOCAL VIP",
                |s| s.conflicts,
            ),
        ];
        let rows = DataPlane::open(&svc.pin_root, &svc.iface)
            .and_then(|dp| dp.list())
            .unwrap_or_default();
        for (name, help, field) in families {
            let f: Family<VipLabel, Counter> = Family::default();
            for row in &rows {
                f.get_or_create(&VipLabel {
                    vip: row.vip.to_string(),
                })
                .inc_by(field(&row.stats));
            }
            r.register(name, help, f);
        }
        let local: Family<VipLabel, Gauge> = Family::default();
        for row in &rows {
            local
                .get_or_create(&VipLabel {
                    vip: row.vip.to_string(),
                })
                .set(i64::from(row.action == Some(Action::Local)));
        }
        r.register(
            "vip_local",
            "The VIP is LOCAL here (1) or steered/fenced (0)",
            local,
        );
        // The health stream's view of the other hosts: one series per host this agent
        // cannot reach, by ICMP (`ping`) or by a login to its mysqld (`mysqld`).
        let h = svc.health.borrow().clone();
        let unreachable: Family<PeerLabel, Gauge> = Family::default();
        for (by, peers) in [("ping", &h.peers_down), ("mysqld", &h.peers_mysqld_down)] {
            for peer in peers {
                unreachable
                    .get_or_create(&PeerLabel {
                        peer: peer.clone(),
                        by: by.into(),
                    })
                    .set(1);
            }
        }
        r.register(
            "peer_unreachable",
            "Another host this agent cannot reach (by ping, or a login to its mysqld)",
            unreachable,
        );
    }
    mmm_proto::metrics::encode(&registry)
}
