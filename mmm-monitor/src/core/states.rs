//! Host state transitions, MySQL-MMM 2.2.1's `_check_host_states` (`docs/mmm-2.2.1.md` §1).

use super::{Action, Cluster, Event, HostState, Log, Mode, RoleIp, Time};
use mmm_common::config::{CheckKind, HostMode};
use std::time::Duration;

/// A peer that came ONLINE less than this long ago is not used to judge replication.
const PEER_GRACE: Duration = Duration::from_secs(60);
/// MMM's short-downtime rule: back within this many seconds of uptime → ONLINE at once.
const SHORT_DOWNTIME_S: u64 = 60;

fn ok_word(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "not OK"
    }
}

impl Cluster {
    /// The host whose replication judges `i`: its configured peer, or for a slave without
    /// one, the active master.
    fn peer_of(&self, i: usize) -> Option<usize> {
        let h = &self.hosts[i];
        let name = match (&h.peer, h.mode) {
            (Some(p), _) => Some(p.as_str()),
            (None, HostMode::Slave) => self.active_master(),
            (None, HostMode::Master) => None,
        }?;
        self.idx(name).filter(|p| *p != i)
    }

    /// ` (ping: OK|not OK, mysql: OK|not OK)`, MMM's reason for HARD_OFFLINE.
    fn why_down(&self, i: usize) -> String {
        let h = &self.hosts[i];
        format!(
            " (ping: {}, mysql: {})",
            ok_word(!h.failed(CheckKind::Ping)),
            ok_word(!h.failed(CheckKind::Mysql))
        )
    }

    fn demote_with_roles(&mut self, i: usize, to: HostState, now: Time, reason: &str, kill: bool) {
        self.change_state(i, to, now, reason, false);
        if !matches!(self.mode, Mode::Manual | Mode::Wait) {
            self.clear_roles(i, kill);
        }
    }

    /// Runs the transitions until nothing changes (a transition can enable another, e.g.
    /// HARD_OFFLINE → AWAITING_RECOVERY → ONLINE by the short-downtime rule): a decision never
    /// waits for the next pass. Bounded: every chain is shorter than the number of states.
    pub(super) fn check_states(&mut self, now: Time) {
        for _ in 0..7 {
            let before: Vec<HostState> = self.hosts.iter().map(|h| h.state).collect();
            for i in 0..self.hosts.len() {
                self.check_host(i, now);
            }
            if self.hosts.iter().map(|h| h.state).eq(before) {
                break;
            }
        }
    }

    fn check_host(&mut self, i: usize, now: Time) {
        let h = &self.hosts[i];
        let (alive, down) = (h.alive(), h.down());
        let rep_threads_failed = h.failed(CheckKind::RepThreads);
        let rep_backlog_failed = h.failed(CheckKind::RepBacklog);
        let rep_ok = h.ok(CheckKind::RepThreads) && h.ok(CheckKind::RepBacklog);
        let flapping = h.flapping;
        let peer = self.peer_of(i).map(|p| &self.hosts[p]);
        let peer_online = peer.is_some_and(|p| p.state == HostState::Online);
        let peer_usable = peer.is_some_and(|p| p.state == HostState::Online && p.alive());
        let peer_fresh = peer.is_some_and(|p| {
            p.state == HostState::Online
                && p.online_since
                    .is_some_and(|t| now.saturating_sub(t) < PEER_GRACE)
        });
        let is_active_master = self.active_master() == Some(self.hosts[i].name.as_str());
        if !down {
            self.set_analysis(i, None);
        }
        match self.hosts[i].state {
            HostState::AdminOffline => {}
            HostState::Unknown => {
                if down {
                    self.change_state(i, HostState::HardOffline, now, "", false);
                } else if alive {
                    self.change_state(i, HostState::AwaitingRecovery, now, "", false);
                }
            }
            HostState::Online => {
                if down && is_active_master {
                    // Holistic detection: the other hosts are asked before a failover.
                    let a = self.analyse_writer(i);
                    let dead = a == super::Analysis::DeadWriter;
                    self.set_analysis(i, Some(a));
                    if !dead {
                        return;
                    }
                }
                if down {
                    let reason = self.why_down(i);
                    self.demote_with_roles(i, HostState::HardOffline, now, &reason, true);
                    if is_active_master && self.active_master().is_none() {
                        self.start_fence_wait(i, now);
                        self.writer_lost(i, now);
                    }
                    return;
                }
                // Errant transactions keep a host out at once (no grace for a fresh peer: it
                // would only diverge further).
                if !is_active_master && rep_threads_failed && self.is_errant(i) {
                    self.demote_with_roles(i, HostState::ReplicationFail, now, "", true);
                    return;
                }
                if is_active_master || peer_fresh {
                    return;
                }
                if rep_threads_failed && peer_usable {
                    self.demote_with_roles(i, HostState::ReplicationFail, now, "", true);
                } else if rep_backlog_failed && !rep_threads_failed && peer_usable {
                    self.demote_with_roles(i, HostState::ReplicationDelay, now, "", false);
                }
            }
            HostState::AwaitingRecovery => {
                if down {
                    self.change_state(i, HostState::HardOffline, now, "", false);
                    return;
                }
                if !(alive && rep_ok) {
                    return;
                }
                let auto = self.auto_set_online;
                let h = &self.hosts[i];
                if flapping {
                    let newest_change = h
                        .checks
                        .values()
                        .map(|c| c.last_change)
                        .max()
                        .unwrap_or_default();
                    if !auto.is_zero() && now.saturating_sub(newest_change) >= self.flap_duration {
                        let msg = format!(
                            "State of flapping host '{}' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online and flap_duration({}) seconds passed without another failure. It was in state AWAITING_RECOVERY for {} seconds",
                            h.name,
                            self.flap_duration.as_secs(),
                            now.saturating_sub(h.state_since).as_secs()
                        );
                        self.hosts[i].flapping = false;
                        let why = "flapping host stable for flap_duration (auto_set_online)";
                        self.change_state_logged(i, HostState::Online, now, msg, why);
                    }
                    return;
                }
                if let (Some(then), Some(up)) = (h.uptime_when_online, h.agent.uptime_s) {
                    if up > then && up - then < SHORT_DOWNTIME_S {
                        let reason = format!(" because it was down for only {} seconds", up - then);
                        self.change_state(i, HostState::Online, now, &reason, false);
                        return;
                    }
                }
                let waited = now.saturating_sub(h.state_since);
                if !auto.is_zero() && waited >= auto {
                    let reason = format!(
                        " because of auto_set_online({} seconds). It was in state AWAITING_RECOVERY for {} seconds",
                        auto.as_secs(),
                        waited.as_secs()
                    );
                    self.change_state(i, HostState::Online, now, &reason, false);
                }
            }
            HostState::HardOffline => {
                if !alive {
                    return;
                }
                let name = self.hosts[i].name.clone();
                let other_master = self.active_master().is_some_and(|m| m != name);
                if other_master || !self.can_be_master(&name) {
                    if rep_threads_failed {
                        self.change_state(i, HostState::ReplicationFail, now, "", false);
                        return;
                    }
                    if rep_backlog_failed {
                        self.change_state(i, HostState::ReplicationDelay, now, "", false);
                        return;
                    }
                }
                self.change_state(i, HostState::AwaitingRecovery, now, "", false);
            }
            HostState::ReplicationDelay | HostState::ReplicationFail => {
                if down {
                    // As from ONLINE: its agent is told, and the host killed if it cannot be.
                    let reason = self.why_down(i);
                    self.demote_with_roles(i, HostState::HardOffline, now, &reason, true);
                    return;
                }
                if !alive {
                    return;
                }
                // MMM: back ONLINE when its peer is not — never with errant transactions.
                if rep_ok || (!peer_online && !self.is_errant(i)) {
                    let to = if flapping {
                        HostState::AwaitingRecovery
                    } else {
                        HostState::Online
                    };
                    self.change_state(i, to, now, "", false);
                } else if rep_threads_failed {
                    self.change_state(i, HostState::ReplicationFail, now, "", false);
                } else if rep_backlog_failed {
                    self.change_state(i, HostState::ReplicationDelay, now, "", false);
                }
            }
        }
    }

    pub(super) fn change_state(
        &mut self,
        i: usize,
        to: HostState,
        now: Time,
        reason: &str,
        admin: bool,
    ) {
        let from = self.hosts[i].state;
        if from == to {
            return;
        }
        let name = self.hosts[i].name.clone();
        let msg = if admin {
            format!("Admin changed state of '{name}' from {from} to {to}")
        } else {
            format!("State of host '{name}' changed from {from} to {to}{reason}")
        };
        self.change_state_logged(i, to, now, msg, reason);
    }

    /// [`Cluster::change_state`] with the log line `msg` as given (MMM words a few
    /// transitions its own way); `reason` goes into the published event.
    pub(super) fn change_state_logged(
        &mut self,
        i: usize,
        to: HostState,
        now: Time,
        msg: String,
        reason: &str,
    ) {
        let from = self.hosts[i].state;
        if from == to {
            return;
        }
        let name = self.hosts[i].name.clone();
        self.log(Log::fatal(msg));
        // Flap detection: transitions out of ONLINE, except to ADMIN_OFFLINE.
        if from == HostState::Online && to != HostState::AdminOffline {
            let window = self.flap_duration;
            let h = &mut self.hosts[i];
            h.flaps.push_back(now);
            while h
                .flaps
                .front()
                .is_some_and(|t| now.saturating_sub(*t) > window)
            {
                h.flaps.pop_front();
            }
            if h.flaps.len() as u32 > self.flap_count && !h.flapping {
                h.flapping = true;
                self.log(Log::error(format!("Host {name} is flapping!")));
            }
        }
        let h = &mut self.hosts[i];
        h.state = to;
        h.state_since = now;
        if to == HostState::Online {
            h.online_since = Some(now);
            h.uptime_when_online = h.agent.uptime_s;
        }
        self.out.push(Action::Event(Event::State {
            host: name,
            from,
            to,
            reason: reason.trim().to_string(),
        }));
    }

    /// Removes every role of host `i` (with MMM's log lines). `notify`: kill the host if the
    /// agent cannot be told.
    pub(super) fn clear_roles(&mut self, i: usize, notify: bool) {
        // MMM tells the agent whether or not it had roles, and kills the host when it cannot.
        if notify {
            self.hosts[i].kill_pending = true;
        }
        if self.hosts[i].roles.is_empty() {
            return;
        }
        let name = self.hosts[i].name.clone();
        self.log(Log::info(format!("Removing all roles from host '{name}':")));
        let roles: Vec<RoleIp> = std::mem::take(&mut self.hosts[i].roles)
            .into_iter()
            .collect();
        for r in roles {
            self.log(Log::info(format!("Removed role '{r}' from host '{name}'")));
            self.out.push(Action::Event(Event::RoleMoved {
                role: r,
                from: Some(name.clone()),
                to: None,
            }));
        }
        if notify {
            self.hosts[i].kill_pending = true;
        }
    }
}
