//! What the monitor hears, before any decision: its own check results (with the trap period
//! of `checks.rs`, shortened only when a second observer agrees) and its agents' reports —
//! health (a dead mysqld, unreachable peers), status, and whether a push got through
//! (`docs/mmm-2.2.1.md` §1 "killing it!", §2).

use super::{Action, AgentView, Cluster, HostState, Log, Mode, Report, Time};
use mmm_common::config::{CheckKind, HostMode};
use std::time::Duration;

impl Cluster {
    /// The host's agent reports its mysqld `up` or down, and the other hosts it cannot reach.
    /// Only a down with hard evidence (`hard`: process exited, connection refused) is a
    /// second observer for the fast path; a down from a timeout is a suspicion: a confirming
    /// check runs, and the trap period applies to it.
    pub(super) fn on_agent_health(
        &mut self,
        host: &str,
        up: bool,
        hard: bool,
        peers_down: Vec<String>,
        now: Time,
    ) {
        let Some(i) = self.idx(host) else { return };
        let was = self.hosts[i].agent.mysqld_down;
        self.hosts[i].agent.mysqld_down = !up && hard;
        if !up && hard && !was {
            self.log(Log::warn(format!(
                "Agent on '{host}' reports its mysqld down"
            )));
        } else if !up && !hard {
            self.log(Log::warn(format!(
                "Agent on '{host}' cannot reach its mysqld (a timeout, not hard evidence: the trap period applies)"
            )));
        }
        if !up {
            self.out.push(Action::Confirm {
                host: host.to_string(),
                check: CheckKind::Mysql,
            });
        }
        let before = std::mem::replace(&mut self.hosts[i].agent.peers_down, peers_down);
        let newly: Vec<String> = self.hosts[i]
            .agent
            .peers_down
            .iter()
            .filter(|p| !before.contains(p) && *p != host)
            .cloned()
            .collect();
        for target in newly {
            self.peer_reports_down(host, &target, now);
        }
    }

    /// The monitor's own network (`ping_ips`) went down or came back. While it is down no
    /// check failure counts (MMM's checkers stop); when it is back, a failure pending from
    /// before starts its trap period again, so an outage never counts against the hosts.
    pub(super) fn on_network(&mut self, up: bool, now: Time) {
        if up == self.network_up {
            return;
        }
        self.network_up = up;
        if up {
            for h in &mut self.hosts {
                for st in h.checks.values_mut() {
                    st.restart_trap(now);
                }
            }
            self.log(Log::info("Network is reachable".into()));
        } else {
            self.log(Log::fatal("Network is unreachable".into()));
        }
        self.out.push(Action::Network { up });
    }

    /// A call to host `host`'s agent failed: logged once while its host answers pings (MMM:
    /// when the ping fails too, the host is down, not its agent).
    pub(super) fn on_agent_unreachable(&mut self, host: &str) {
        let Some(i) = self.idx(host) else { return };
        let h = &mut self.hosts[i];
        h.agent.reachable = false;
        h.agent_seen = true;
        if !h.agent_down && !h.failed(CheckKind::Ping) {
            h.agent_down = true;
            self.log(Log::fatal(format!("Can't reach agent on host '{host}'")));
        }
    }

    /// A successful status call; what the health stream said is kept. The report is compared
    /// with the table the agent applied (drift).
    pub(super) fn on_agent_status(&mut self, host: &str, view: AgentView, now: Time) {
        let Some(i) = self.idx(host) else { return };
        let down = self.hosts[i].agent.mysqld_down;
        let peers_down = std::mem::take(&mut self.hosts[i].agent.peers_down);
        let peers_mysqld_down = std::mem::take(&mut self.hosts[i].agent.peers_mysqld_down);
        // A status built while its server did not answer cannot say whether semi-sync had
        // fallen back: the last word from a server that answered stands.
        let fell_back = match view.mysqld_down {
            true => self.hosts[i].agent.semisync_fell_back,
            false => view.semisync_fell_back,
        };
        self.hosts[i].agent = AgentView {
            reachable: true,
            mysqld_down: down,
            peers_down,
            peers_mysqld_down,
            semisync_fell_back: fell_back,
            ..view
        };
        self.hosts[i].agent_seen = true;
        self.hosts[i].last_contact = Some(now);
        let io = self.hosts[i].agent.replica_io_running;
        self.note_replica_io(i, io, now);
        if std::mem::take(&mut self.hosts[i].agent_down) {
            self.log(Log::fatal(format!(
                "Agent on host '{host}' is reachable again"
            )));
        }
        // MMM's short-downtime rule compares with the uptime last seen while ONLINE.
        if self.hosts[i].state == HostState::Online {
            self.hosts[i].uptime_when_online = self.hosts[i].agent.uptime_s;
        }
        self.check_drift(i);
        self.note_gtids(i, now);
    }

    /// How host `i`'s agent report differs from the last published table, once the agent says
    /// it applied that table: writable without the writer role (or read-only with it), a VIP
    /// LOCAL that is not assigned (or assigned and not LOCAL), a slave replicating from
    /// another host than the active master. Not judged in PASSIVE mode (nothing is pushed) nor
    /// while the agent reports its server down.
    fn drift(&self, i: usize) -> Option<String> {
        let t = self.last_table.as_ref()?;
        let (h, v) = (&self.hosts[i], &self.hosts[i].agent);
        if self.mode == Mode::Passive || v.applied_epoch != t.epoch || v.mysqld_down {
            return None;
        }
        let line = t.host(&h.name)?;
        let mut diffs = Vec::new();
        let writer = line.roles.iter().any(|r| r.role == self.active_master_role);
        match v.writable {
            Some(true) if !writer => diffs.push("writable without the writer role".to_string()),
            Some(false) if writer => diffs.push("read-only with the writer role".to_string()),
            _ => {}
        }
        for ip in &v.owned_ips {
            if !line.roles.iter().any(|r| r.ip == *ip) {
                diffs.push(format!("VIP {ip} is LOCAL but not assigned to it"));
            }
        }
        for r in &line.roles {
            if !v.owned_ips.contains(&r.ip) {
                diffs.push(format!("{r} is assigned but not LOCAL"));
            }
            if !v.configured_ips.contains(&r.ip) {
                diffs.push(format!("{r} is assigned but its /32 is not configured"));
            }
        }

        let source = t
            .slave_source(self.semisync, |m| {
                self.host(m).and_then(|x| x.peer.as_deref())
            })
            .and_then(|m| self.host(m));
        if let Some(src) =
            source.filter(|_| h.mode == HostMode::Slave && line.state != HostState::AdminOffline)
        {
            if v.source_ip != Some(src.ip) {
                let from = v.source_ip.map_or("nowhere".into(), |ip| ip.to_string());
                let what = if t.active_master.as_deref() == Some(src.name.as_str()) {
                    "the active master"
                } else {
                    "the standby master"
                };
                diffs.push(format!(
                    "replicating from {from}, not {what} {} ({})",
                    src.name, src.ip
                ));
            }
        }
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }

    /// Logs a new or changed drift at ERROR and asks for the table to be pushed again; logs
    /// its end.
    fn check_drift(&mut self, i: usize) {
        let now = self.drift(i);
        let name = self.hosts[i].name.clone();
        match (&self.hosts[i].drift, &now) {
            (Some(_), None) => {
                self.log(Log::info(format!(
                    "Host '{name}' agrees with its role table again"
                )));
            }
            (was, Some(d)) => {
                if was.as_ref() != Some(d) {
                    self.log(Log::error(format!(
                        "Host '{name}' differs from its role table (epoch {}): {d}; pushing it again",
                        self.epoch
                    )));
                }
                self.hosts[i].repairs += 1;
                self.out.push(Action::Repair { host: name });
            }
            (None, None) => {}
        }
        self.hosts[i].drift = now;
    }

    /// A push finished: a demoted host whose agent could not be told is killed (MMM), but
    /// never while the monitor's own network is down (it would be the monitor's fault).
    pub(super) fn on_pushed(&mut self, host: String, ok: bool, epoch: u64, now: Time) {
        let Some(i) = self.idx(&host) else { return };
        self.hosts[i].agent.reachable = ok;
        if ok {
            let a = &mut self.hosts[i].agent;
            a.applied_epoch = a.applied_epoch.max(epoch);
            self.hosts[i].last_contact = Some(now);
        }
        if self.hosts[i].kill_pending {
            self.hosts[i].kill_pending = false;
            if !ok && self.network_up {
                self.log(Log::error(format!(
                    "Can't send offline status notification to '{host}' - killing it!"
                )));
                let ping_ok = !self.hosts[i].failed(CheckKind::Ping);
                self.out.push(Action::KillHost { host, ping_ok });
            }
        }
    }

    /// The trap period of `check` (how long a failure is held back alone).
    pub(super) fn trap(&self, check: CheckKind) -> Duration {
        self.checks
            .get(&check)
            .map(|c| c.trap_period)
            .unwrap_or_default()
    }

    pub(super) fn on_check(&mut self, host: &str, check: CheckKind, report: &Report, now: Time) {
        let Some(i) = self.idx(host) else { return };
        // While the monitor's own network is down, only good news counts.
        if !self.network_up && report.outcome != super::Outcome::Ok {
            return;
        }
        // Errant transactions the GTID reports prove fail rep_threads, named (`gtids.rs`).
        let errant;
        let report = match self.gtids.errant.get(host) {
            Some(g) if check == CheckKind::RepThreads && report.outcome == super::Outcome::Ok => {
                errant = Report::error(&format!(
                    "ERROR: Replication is broken: this server has transactions the writer never had (errant transactions, committed here and never shipped: {g}). It stays out of rotation; rebuild it from the writer (README, \"Errant transactions\")"
                ));
                &errant
            }
            _ => report,
        };
        let trap = self.trap(check);
        // Two observers agree: our own check fails and the agent saw mysqld die, or another
        // host's agent cannot reach this host either — unless our other reachability check
        // still reaches it (then the failure keeps its trap period).
        let confirmed = if check == CheckKind::Mysql && self.hosts[i].agent.mysqld_down {
            Some("the host's agent".to_string())
        } else if other_reach_check(check).is_some_and(|o| !self.answers(i, o)) {
            self.peer_reporter(i).map(|r| format!("the agent on '{r}'"))
        } else {
            None
        };
        let h = &mut self.hosts[i];
        let logs = h.checks.entry(check).or_default().apply(
            host,
            check,
            report,
            trap,
            confirmed.as_deref(),
            now,
        );
        for l in logs {
            self.log(l);
        }
    }

    /// Whether our own `check` of host `i` succeeded last. While one of our ping and mysql
    /// checks reaches the host, a failure of the other that a peer's lost pings seem to
    /// confirm (both at once: a lossy network, #18) is no evidence that it is down: it keeps
    /// its trap period (MMM's rule, docs/mmm-2.2.1.md §4).
    pub(super) fn answers(&self, i: usize, check: CheckKind) -> bool {
        self.hosts[i]
            .checks
            .get(&check)
            .is_some_and(|c| c.answering())
    }

    /// A reachable agent on another host that reports host `i` unreachable, if any.
    fn peer_reporter(&self, i: usize) -> Option<&str> {
        let name = &self.hosts[i].name;
        self.hosts
            .iter()
            .enumerate()
            .find(|(j, h)| *j != i && h.agent.reachable && h.agent.peers_down.contains(name))
            .map(|(_, h)| h.name.as_str())
    }

    /// The agent on `reporter` cannot reach `target`: a failure our own ping or mysql check
    /// sees but holds back for its trap period counts now (two observers agree); with none
    /// pending, our ping and mysql checks are run at once to look for ourselves.
    fn peer_reports_down(&mut self, reporter: &str, target: &str, now: Time) {
        let Some(t) = self.idx(target) else { return };
        let reachable = self
            .idx(reporter)
            .is_some_and(|r| self.hosts[r].agent.reachable);
        self.log(Log::warn(format!(
            "Agent on '{reporter}' cannot reach '{target}'"
        )));
        if !reachable {
            return;
        }
        let by = format!("the agent on '{reporter}'");
        let mut logs = vec![];
        let mut pending = false;
        for check in [CheckKind::Ping, CheckKind::Mysql] {
            if other_reach_check(check).is_some_and(|o| self.answers(t, o)) {
                continue;
            }
            let trap = self.trap(check);
            if let Some(st) = self.hosts[t].checks.get_mut(&check) {
                pending |= st.failing();
                logs.extend(st.confirm_pending(target, check, &by, trap, now));
            }
        }
        for l in logs {
            self.log(l);
        }
        if !pending {
            // Whichever answers first: a host that vanished fails the ping sooner.
            for check in [CheckKind::Ping, CheckKind::Mysql] {
                self.out.push(Action::Confirm {
                    host: target.to_string(),
                    check,
                });
            }
        }
    }
}

/// The other of the two checks that tell whether a host is reachable at all (ping, mysql);
/// `None` for the replication checks, which peers never confirm.
fn other_reach_check(check: CheckKind) -> Option<CheckKind> {
    match check {
        CheckKind::Ping => Some(CheckKind::Mysql),
        CheckKind::Mysql => Some(CheckKind::Ping),
        _ => None,
    }
}
