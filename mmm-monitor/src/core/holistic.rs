//! Holistic detection and the monitor's half of the writer lease (ARCHITECTURE.md "No split
//! brain"). Before the writer is failed over on the monitor's own failing checks, the other
//! hosts' agents are asked: if one still reaches the writer — its machine by ICMP and its
//! mysqld by a full login — the writer is unreachable *from the monitor*, not dead, and stays
//! ([`Analysis::UnreachableWriter`], in the manner of orchestrator's `UnreachableMaster`).
//! When it is failed over and its agent cannot confirm the demotion, no other host gets the
//! writer role until the old writer's lease must have run out: [`FenceWait`] — or, with
//! `kill_host_fences`, until `kill_host_bin` fenced it (STONITH, MHA's `shutdown_script`).

use super::{Cluster, Host, Log, Time};
use std::time::Duration;

/// Why the writer is failing, as named values (orchestrator's analysis codes are the model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Analysis {
    /// The monitor's checks fail and no other host reaches its mysqld (or its own agent saw
    /// mysqld exit or refuse connections): failed over.
    DeadWriter,
    /// The monitor's checks fail but the agents on `via` still reach its machine and log in to
    /// its mysqld: no failover (the monitor's own path is broken).
    UnreachableWriter { via: Vec<String> },
}

impl std::fmt::Display for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Analysis::DeadWriter => f.write_str("DEAD_WRITER"),
            Analysis::UnreachableWriter { via } => write!(
                f,
                "UNREACHABLE_WRITER: the monitor cannot reach it, but the agent(s) on {} still reach its mysqld; no failover",
                via.join(", ")
            ),
        }
    }
}

/// A failed-over writer whose demotion is not confirmed: the writer role goes to no host until
/// its agent acknowledges a table without it, or its lease must have run out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceWait {
    pub host: String,
    /// The first table published without its writer role (set when published).
    pub epoch: Option<u64>,
    /// The last moment the old writer could have renewed its lease, as far as the monitor can
    /// tell: its agent answered the monitor, or a majority of the hosts may still have
    /// reached it.
    pub renewable_at: Time,
    /// A planned switchover's target (`move_role`, a preferred master's return): it gets the
    /// role once the old writer confirmed it is read-only, no sooner (lossless: it then has
    /// every write the old writer acknowledged, with `semisync`).
    pub target: Option<String>,
    /// The old writer's applied GTID set when it acknowledged a table without the role: its
    /// final position, which the new writer (the target, or a failover's candidate) applies
    /// before it becomes writable.
    pub final_gtid: Option<String>,
    /// The `kill_host_bin` run fencing the old writer (`kill_host_fences`): its number, as in
    /// [`super::Action::Fence`] and [`super::Input::Fenced`]; a late answer of an earlier
    /// run never ends this wait.
    pub fencing: Option<u64>,
    /// `kill_host_bin` exited 0 for this run: the old writer takes no more writes.
    pub fenced: bool,
}

/// Added to the lease before promoting (ARCHITECTURE.md "Timing argument"): the agent's
/// 100 ms judging tick, one peer-ping period (`peer_ping_interval`, 200 ms by default) of
/// asymmetry between the writer losing its peers and the peers reporting it, the monitor's
/// own 100 ms tick, and 100 ms for the rate difference of two monotonic clocks (≤ 0.1 %) and
/// scheduling: 500 ms by default.
pub fn lease_margin(peer_ping_interval: Duration) -> Duration {
    Duration::from_millis(300) + peer_ping_interval
}

impl Cluster {
    /// The hosts probing host `i` (`Host::probed_by`), with their agents' views.
    fn probers(&self, i: usize) -> impl Iterator<Item = &Host> {
        self.hosts[i].probed_by.iter().map(|j| &self.hosts[*j])
    }

    /// The hosts probing host `i` whose agents answer the monitor and still reach it: its
    /// machine answers their pings and its mysqld their logins.
    fn reaching(&self, i: usize) -> Vec<String> {
        let name = &self.hosts[i].name;
        self.probers(i)
            .filter(|h| {
                h.agent.reachable
                    && !h.agent.peers_down.contains(name)
                    && !h.agent.peers_mysqld_down.contains(name)
            })
            .map(|h| h.name.clone())
            .collect()
    }

    /// Whether a majority of the hosts probing host `i` (host `i` counted) may still reach it
    /// by ping — its lease's other source: its agent counts the answers of the same hosts. A
    /// host whose agent the monitor cannot hear may.
    pub(super) fn majority_may_reach(&self, i: usize) -> bool {
        let name = &self.hosts[i].name;
        let may = self
            .probers(i)
            .filter(|h| !(h.agent.reachable && h.agent.peers_down.contains(name)))
            .count();
        mmm_common::roles::majority(may, self.hosts[i].probed_by.len())
    }

    /// Records, for every host a majority may still reach, that it may at `now` — and for one
    /// it no longer may, that it still might until `now`: the input this pass runs for told
    /// the monitor so, and passes do not run for every input (`Cluster::step`).
    pub(super) fn note_reachability(&mut self, now: Time) {
        for i in 0..self.hosts.len() {
            let may = self.majority_may_reach(i);
            if may || self.hosts[i].majority_reached {
                self.hosts[i].majority_reach_at = Some(now);
            }
            self.hosts[i].majority_reached = may;
        }
    }

    /// The analysis of writer `i` whose ping or mysql check failed: dead, unless its own agent
    /// has no hard evidence and another host still reaches it.
    pub(super) fn analyse_writer(&self, i: usize) -> Analysis {
        let h = &self.hosts[i];
        if h.agent.reachable && h.agent.mysqld_down {
            return Analysis::DeadWriter;
        }
        let via = self.reaching(i);
        if via.is_empty() {
            Analysis::DeadWriter
        } else {
            Analysis::UnreachableWriter { via }
        }
    }

    /// Records `a` for host `i`, logging a change (WARN for an unreachable writer).
    pub(super) fn set_analysis(&mut self, i: usize, a: Option<Analysis>) {
        if self.hosts[i].analysis == a {
            return;
        }
        let name = self.hosts[i].name.clone();
        match &a {
            Some(a @ Analysis::UnreachableWriter { .. }) => {
                self.log(Log::warn(format!("Writer '{name}': {a}")))
            }
            Some(a) => self.log(Log::error(format!("Writer '{name}': {a}"))),
            None if matches!(
                self.hosts[i].analysis,
                Some(Analysis::UnreachableWriter { .. })
            ) =>
            {
                self.log(Log::info(format!(
                    "Writer '{name}' is reachable from the monitor again"
                )))
            }
            None => {}
        }
        self.hosts[i].analysis = a;
    }

    /// Writer `i` was failed over at `now`: unless the lease is off (and no `kill_host_fences`)
    /// or its agent answers and saw its mysqld gone (nothing left to write to), the writer
    /// role waits for the fence. With the lease off and a fencing `kill_host_bin` it waits for
    /// that — `lease_margin` at most.
    pub(super) fn start_fence_wait(&mut self, i: usize, now: Time) {
        let h = &self.hosts[i];
        let lease_off = self.writer_lease.is_zero() && !self.kill_host_fences;
        if lease_off || (h.agent.reachable && h.agent.mysqld_down) {
            return;
        }
        let renewable_at = self
            .monitor_contact(i)
            .max(h.majority_reach_at)
            .unwrap_or_default()
            .min(now);
        let host = h.name.clone();
        let ping_ok = self.answers(i, mmm_common::config::CheckKind::Ping);
        let fencing = self.kill_host_fences.then(|| {
            self.fence_runs += 1;
            self.fence_runs
        });
        self.fence = Some(FenceWait {
            host: host.clone(),
            epoch: None,
            renewable_at,
            target: None,
            final_gtid: None,
            fencing,
            fenced: false,
        });
        if let Some(run) = fencing {
            // The fence is the kill: MMM's kill of a demoted host its agent cannot be told
            // would run kill_host_bin a second time (a power cycle twice, say).
            self.hosts[i].kill_pending = false;
            self.log(Log::warn(format!(
                "Fencing old writer '{host}' with kill_host_bin (kill_host_fences): the writer role moves once it succeeds, or once its writer lease ran out"
            )));
            self.out.push(super::Action::Fence { host, ping_ok, run });
        }
    }

    /// `kill_host_bin` run `run` on `host` ended, `ok` when it exited 0: the old writer of the
    /// current fence wait, if that run fences it, is fenced; a failure leaves the lease wait.
    pub(super) fn on_fenced(&mut self, host: &str, run: u64, ok: bool) {
        let Some(f) = self.fence.as_mut() else { return };
        if f.host != host || f.fencing != Some(run) {
            return;
        }
        f.fenced = ok;
        if !ok {
            self.log(Log::error(format!(
                "kill_host_bin could not fence old writer '{host}': the writer role waits for its agent or its writer lease"
            )));
        }
    }

    /// A planned switchover of the writer role from host `from` to host `to` at `now`, in two
    /// steps: a table without a writer (the old writer becomes read-only, its clients are
    /// closed), then — once its agent acknowledged that table — one giving `to` the role. The
    /// new writer never takes a write while the old one still can.
    pub(super) fn begin_switchover(&mut self, from: usize, to: usize, now: Time) {
        let role = self.active_master_role.clone();
        self.hosts[from].roles.retain(|r| r.role != role);
        self.fence = Some(FenceWait {
            host: self.hosts[from].name.clone(),
            epoch: None,
            renewable_at: self.monitor_contact(from).unwrap_or_default().max(now),
            target: Some(self.hosts[to].name.clone()),
            final_gtid: None,
            fencing: None,
            fenced: false,
        });
    }

    /// The old writer of a fence wait acknowledged the table of `epoch` (without its role):
    /// its server's applied GTID set then is its final position.
    pub(super) fn note_final_gtid(
        &mut self,
        host: &str,
        ok: bool,
        epoch: u64,
        gtid: Option<String>,
    ) {
        if let Some(f) = self.fence.as_mut() {
            if ok && f.host == host && f.epoch.is_some_and(|e| epoch >= e) && gtid.is_some() {
                f.final_gtid = gtid;
            }
        }
    }

    /// Whether the writer role must still wait at `now`; ends the wait (logged) when the old
    /// writer acknowledged a table without the role, or its lease has run out.
    pub(super) fn fence_holds(&mut self, now: Time) -> bool {
        let Some(w) = self.fence.clone() else {
            return false;
        };
        let Some(i) = self.idx(&w.host) else {
            self.fence = None;
            return false;
        };
        let h = &self.hosts[i];
        let confirmed = w.epoch.is_some_and(|e| h.agent.applied_epoch >= e);
        let mut renewable_at = w
            .renewable_at
            .max(self.monitor_contact(i).unwrap_or_default());
        if self.majority_may_reach(i) {
            renewable_at = now;
        }
        let until = renewable_at + self.writer_lease + self.lease_margin;
        // A planned switchover waits for the old writer's word while its agent answers.
        let timed_out = now >= until && (w.target.is_none() || !h.agent.reachable);
        if confirmed || w.fenced || timed_out {
            let why = if confirmed {
                "its agent confirmed it gave the role up".to_string()
            } else if w.fenced {
                "kill_host_bin fenced it".to_string()
            } else {
                format!(
                    "its writer lease ({:?}) ran out {:?} after the monitor last could tell it renewed",
                    self.writer_lease,
                    now.saturating_sub(renewable_at)
                )
            };
            self.log(Log::info(format!(
                "Old writer '{}' is fenced ({why}): the writer role may move",
                w.host
            )));
            self.fence = None;
            // Whenever the old writer acknowledged with its final position — a switchover,
            // or a failover of a writer that is alive (hung, cut off from the monitor, a
            // false alarm) — its successor applies exactly that first: what it acknowledged
            // after a semisync fallback, or after its last status report, is not lost.
            self.catch_up = w.final_gtid;
            self.switchover_to = w.target;
            return false;
        }
        if let Some(f) = &mut self.fence {
            f.renewable_at = renewable_at;
        }
        true
    }
}
