//! The state monitors share through etcd (`<etcd>`, ARCHITECTURE.md "Monitor high
//! availability"): what the leader publishes after every change, what followers adopt, and
//! what a new leader starts from. Pure: times are given (the core's monotonic `now`, and Unix
//! ms for flap times, which must mean the same on every monitor).
//!
//! A follower's core does not decide (`Cluster::acting` is false): its checks and agent views
//! stay warm, its host states, roles, mode and epoch are the leader's. A monitor that takes
//! office starts from the state in etcd, above its epoch, and treats every writer as possibly
//! renewed by the old leader until that moment (the old leader's calls renew writer leases).

use super::{status_file, Cluster, FenceWait, HostState, Mode, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the leader keeps under `<prefix>/state` (JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// The epoch of the last table published (every pushed table was stored first).
    pub epoch: u64,
    /// Host states and roles as the status file writes them (`host|STATE|role(ip),…`).
    pub hosts: String,
    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE`.
    pub mode: String,
    #[serde(default)]
    pub passive_cause: Option<String>,
    /// The GTID set the writer applies before it becomes writable (`RoleTable.catch_up_gtid`).
    #[serde(default)]
    pub catch_up: Option<String>,
    /// A failed-over writer whose fence is not confirmed (its role waits), and a planned
    /// switchover's target.
    #[serde(default)]
    pub fence: Option<String>,
    #[serde(default)]
    pub fence_target: Option<String>,
    /// Recent flaps per host, Unix ms; and the hosts marked flapping.
    #[serde(default)]
    pub flaps: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    pub flapping: Vec<String>,
}

/// Why a shared state was not adopted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    #[error("the shared state is not valid JSON: {0}")]
    Json(String),
    #[error("the shared state's hosts: {0}")]
    Hosts(String),
    #[error("the shared state's mode '{0}' is not ACTIVE, MANUAL, WAIT or PASSIVE")]
    Mode(String),
}

impl Shared {
    /// The JSON stored in etcd.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses what etcd holds.
    pub fn decode(bytes: &[u8]) -> Result<Shared, SharedError> {
        serde_json::from_slice(bytes).map_err(|e| SharedError::Json(e.to_string()))
    }
}

fn mode_named(s: &str) -> Option<Mode> {
    [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive]
        .into_iter()
        .find(|m| m.to_string() == s)
}

impl Cluster {
    /// The state to share; `wall0_ms` is the Unix time (ms) of the core's time zero.
    pub fn shared(&self, wall0_ms: i64) -> Shared {
        let unix = |t: Time| wall0_ms + t.as_millis() as i64;
        Shared {
            epoch: self.epoch,
            hosts: status_file::render(self)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect(),
            mode: self.mode.to_string(),
            passive_cause: self.passive_cause.clone(),
            catch_up: self.catch_up.clone(),
            fence: self.fence.as_ref().map(|f| f.host.clone()),
            fence_target: self.fence.as_ref().and_then(|f| f.target.clone()),
            flaps: self
                .hosts
                .iter()
                .filter(|h| !h.flaps.is_empty())
                .map(|h| (h.name.clone(), h.flaps.iter().map(|t| unix(*t)).collect()))
                .collect(),
            flapping: self
                .hosts
                .iter()
                .filter(|h| h.flapping)
                .map(|h| h.name.clone())
                .collect(),
        }
    }

    /// Takes the leader's state `s` at `now` (`wall0_ms`: the Unix ms of time zero): host
    /// states, roles, mode, epoch (never lower than ours), catch-up, fence and flaps. Checks,
    /// agent views and traps stay ours. An invalid state changes nothing.
    pub fn adopt(&mut self, s: &Shared, now: Time, wall0_ms: i64) -> Result<(), SharedError> {
        let saved = status_file::parse(&s.hosts).map_err(SharedError::Hosts)?;
        let mode = mode_named(&s.mode).ok_or_else(|| SharedError::Mode(s.mode.clone()))?;
        let before: BTreeMap<String, HostState> = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.state))
            .collect();
        for h in &mut self.hosts {
            h.roles.clear();
        }
        self.restore(&status_file::Saved {
            epoch: s.epoch,
            hosts: saved.hosts,
        });
        for h in &mut self.hosts {
            if before.get(&h.name) != Some(&h.state) {
                h.state_since = now;
                if h.state == HostState::Online {
                    h.online_since = Some(now);
                }
            }
            h.flapping = s.flapping.contains(&h.name);
            h.flaps = s
                .flaps
                .get(&h.name)
                .into_iter()
                .flatten()
                .filter_map(|ms| {
                    let t = ms.checked_sub(wall0_ms)?;
                    Some(Time::from_millis(t.try_into().ok()?).min(now))
                })
                .collect();
        }
        self.mode = mode;
        self.passive_cause = s.passive_cause.clone();
        self.catch_up = s.catch_up.clone();
        self.fence = s.fence.as_ref().map(|host| FenceWait {
            host: host.clone(),
            epoch: None,
            renewable_at: now,
            target: s.fence_target.clone(),
            final_gtid: None,
            // The old leader's fencing run is not this leader's: the lease is waited out.
            fencing: None,
            fenced: false,
        });
        self.switchover_to = None;
        self.last_table = Some(self.table());
        Ok(())
    }

    /// Whether this core decides (a leader, or a monitor without `<etcd>`).
    pub fn acting(&self) -> bool {
        self.acting
    }

    /// Stops deciding (a follower, or a leader that lost its lease): checks and agent
    /// views go on, host states and roles change only by [`Cluster::adopt`].
    pub fn stand_by(&mut self) {
        self.acting = false;
        self.startup_until = None;
    }

    /// Takes office at `now` after adopting the stored state (`stored`: etcd held one; none
    /// on a new cluster, when the start-up vote decides as at a first start). The next pass
    /// publishes a table above the stored epoch. Until `now` the old leader may have renewed
    /// any writer's lease: a fence wait counts from here at the earliest.
    pub fn take_office(&mut self, now: Time, stored: bool) {
        self.acting = true;
        self.office_since = Some(now);
        self.last_table = None;
        if let Some(f) = &mut self.fence {
            f.epoch = None;
            f.renewable_at = f.renewable_at.max(now);
            // A fencing run of an earlier term is not this term's: the lease is waited out.
            f.fencing = None;
            f.fenced = false;
        }
        if !stored && self.startup_until.is_none() {
            self.startup_until = Some(now);
        }
    }

    /// The last moment host `i`'s agent may have heard a monitor renew its writer lease:
    /// our last contact, or taking office (the old leader's calls).
    pub(super) fn monitor_contact(&self, i: usize) -> Option<Time> {
        self.hosts[i].last_contact.max(self.office_since)
    }
}
