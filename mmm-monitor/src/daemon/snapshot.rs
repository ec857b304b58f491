//! What the gRPC service reads: a snapshot of the cluster the driver publishes after every
//! input (`show`, `checks`), and the events it publishes as they happen (`Watch`).

use crate::core::{Cluster, Event, HostState, Mode, Outcome, RoleIp};
use mmm_common::config::CheckKind;
use std::{net::Ipv4Addr, time::Duration};

/// One check's status as shown by `checks`.
#[derive(Clone, Debug)]
pub struct CheckSnap {
    pub kind: CheckKind,
    /// The result that counts (after the trap period); `None` before the first check.
    pub outcome: Option<Outcome>,
    /// Unix time in ms of the last change of result.
    pub last_change_unix_ms: i64,
    pub message: String,
}

/// One host as shown by `show`.
#[derive(Clone, Debug)]
pub struct HostSnap {
    pub name: String,
    pub ip: Ipv4Addr,
    /// `master` or `slave`.
    pub mode: String,
    pub state: HostState,
    pub roles: Vec<RoleIp>,
    pub agent_reachable: bool,
    pub checks: Vec<CheckSnap>,
    /// How its agent differs from its applied table (`None`: it agrees).
    pub drift: Option<String>,
    /// Tables pushed again because of a drift.
    pub repairs: u64,
    /// Holistic detection's analysis, or the writer role's wait for its fence.
    pub analysis: Option<String>,
}

/// The cluster as the gRPC service reports it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub hosts: Vec<HostSnap>,
    pub mode: Option<Mode>,
    pub passive_cause: Option<String>,
    pub epoch: u64,
    /// (role, preferred host, current host)
    pub preferences: Vec<(String, String, Option<String>)>,
    /// Monitor high availability (`<etcd>`); `None` without it.
    pub ha: Option<HaSnap>,
}

/// A monitor's place in the etcd election.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaSnap {
    /// This monitor's name.
    pub me: String,
    /// Whether this monitor leads (and its lease is current).
    pub leading: bool,
    /// The leader, as `show` writes it (`mon2 (198.18.0.6)`), and its gRPC address.
    pub leader: Option<(String, String)>,
    /// Why etcd does not answer, while it does not.
    pub etcd_error: Option<String>,
}

/// A published event with its time and epoch.
#[derive(Clone, Debug)]
pub struct Published {
    /// Unix time in ms.
    pub at_unix_ms: i64,
    pub epoch: u64,
    pub event: Event,
}

/// Unix time now, in ms.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The snapshot of `c`; `start_wall_ms` is the Unix time (ms) of the core's time zero.
pub fn of(c: &Cluster, start_wall_ms: i64) -> Snapshot {
    let wall = |t: Duration| start_wall_ms + t.as_millis() as i64;
    let hosts = c
        .hosts
        .iter()
        .map(|h| HostSnap {
            name: h.name.clone(),
            ip: h.ip,
            mode: h.mode.to_string(),
            state: h.state,
            roles: h.roles.iter().cloned().collect(),
            agent_reachable: h.agent.reachable,
            drift: h.drift.clone(),
            repairs: h.repairs,
            analysis: match (&c.fence, &h.analysis) {
                (Some(f), _) if f.host == h.name => Some(format!(
                    "FENCE_WAIT: failed over; the writer role moves once its agent confirms it gave it up, or its writer lease ({:?}) has run out",
                    c.writer_lease
                )),
                (_, Some(a)) => Some(a.to_string()),
                _ if h.agent.semisync_fell_back => Some(
                    "SEMISYNC_FALLBACK: the writer committed without a standby's acknowledgement (semi-synchronous replication fell back after semisync_timeout, or no standby acknowledges); a failover now can lose acknowledged writes".into(),
                ),
                _ => None,
            },
            checks: CheckKind::ALL
                .into_iter()
                .map(|k| {
                    let s = h.checks.get(&k);
                    CheckSnap {
                        kind: k,
                        outcome: s.and_then(|s| s.effective),
                        last_change_unix_ms: s
                            .map(|s| wall(s.last_change))
                            .unwrap_or(start_wall_ms),
                        message: s.map(|s| s.message.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect();
    let preferences = c
        .roles
        .iter()
        .filter_map(|r| {
            let p = r.prefer.clone()?;
            let cur = c
                .hosts
                .iter()
                .find(|h| h.roles.iter().any(|x| x.role == r.name))
                .map(|h| h.name.clone());
            Some((r.name.clone(), p, cur))
        })
        .collect();
    Snapshot {
        hosts,
        mode: Some(c.mode),
        passive_cause: c.passive_cause.clone(),
        epoch: c.epoch,
        preferences,
        ha: None,
    }
}
