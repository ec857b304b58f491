//! The monitor's brain, with no I/O and no clock: `(state, input, now) → (state, actions)`.
//!
//! [`Cluster::step`] takes one [`Input`] (a check result, an agent's health or status, a
//! network change, an admin command, a tick) at a simulated time and returns [`Action`]s for a
//! driver to carry out (push a role table to the agents, write the status file, log, publish an
//! event, kill a host, run a confirming check, answer a command). After every input it runs
//! MMM's pass: host states (`states.rs`), then role distribution (`roles.rs`).
//!
//! Invariants (property-tested in `tests/properties.rs`): the active-master role is on at most one host;
//! in ACTIVE mode no role sits on a host that is not ONLINE; every role IP is on exactly one
//! ONLINE host whenever an eligible host exists; the role-table epoch never decreases and
//! grows whenever the table changes.

pub mod checks;
mod commands;
mod gtids;
mod holistic;
mod log;
mod messages;
mod modes;
mod observe;
mod promotion;
mod roles;
pub mod shared;
mod startup;
mod states;
pub mod status_file;
#[cfg(test)]
mod tests;

pub use checks::{Outcome, Report};
pub use commands::{Command, CommandError};
pub use holistic::{lease_margin, Analysis, FenceWait};
pub use log::{Level, Log};
pub use messages::{Action, Event, Input};

pub use mmm_common::roles::{Assignment, HostState, Mode, RoleIp, RoleTable, MAX_EPOCH_STEP};

use mmm_common::config::{CheckKind, Config, HostMode, RoleMode};
use mmm_common::gtid::GtidSet;
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::Ipv4Addr,
    time::Duration,
};

/// Monotonic time since the monitor started (simulated in tests).
pub type Time = Duration;

/// What the agent of a host last told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentView {
    /// Whether the last call to the agent succeeded.
    pub reachable: bool,
    /// The host's uptime in seconds (for MMM's short-downtime rule).
    pub uptime_s: Option<u64>,
    /// The agent reports its mysqld down (fast path).
    pub mysqld_down: bool,
    /// The other hosts this agent cannot reach (they do not answer its ICMP pings).
    pub peers_down: Vec<String>,
    /// The other hosts whose mysqld does not answer this agent's logins.
    pub peers_mysqld_down: Vec<String>,
    /// Its writer lease ran out and it fenced itself.
    pub lease_fenced: bool,
    /// Whether its replication IO thread runs (`None`: not a replica).
    pub replica_io_running: Option<bool>,
    /// Its semi-synchronous source side committed without a replica's acknowledgement since
    /// it last protected commits (fallen back; `mmm_common::semisync::Unprotected`).
    pub semisync_fell_back: bool,
    /// It holds transactions its replication source never had (`ReplicaStatus::errant`).
    pub errant: bool,
    /// How far the host has applied replication (comparable between master candidates).
    pub progress: Option<u64>,
    /// Whether its MySQL is writable.
    pub writable: Option<bool>,
    /// The role IPs it has configured (`/32`s).
    pub configured_ips: Vec<Ipv4Addr>,
    /// The role IPs its data plane answers for (LOCAL).
    pub owned_ips: Vec<Ipv4Addr>,
    /// The address its replication reads from.
    pub source_ip: Option<Ipv4Addr>,
    /// Its interface MAC.
    pub mac: Option<[u8; 6]>,
    /// The highest role-table epoch it has applied.
    pub applied_epoch: u64,
    /// Its GTID state (MariaDB `gtid_binlog_state`, MySQL `gtid_executed`; `None`: unknown).
    pub gtid_state: Option<GtidSet>,
    /// What names the transactions it commits first (`server_id`, `server_uuid`).
    pub gtid_origin: String,
    /// What its replication IO thread has received (`None`: not a replica, or unknown).
    pub gtid_received: Option<GtidSet>,
}

/// Everything known about one host.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub ip: Ipv4Addr,
    pub mode: HostMode,
    pub peer: Option<String>,
    pub state: HostState,
    pub roles: BTreeSet<RoleIp>,
    pub checks: BTreeMap<CheckKind, checks::Status>,
    pub state_since: Time,
    /// When it last became ONLINE.
    pub online_since: Option<Time>,
    pub flapping: bool,
    flaps: VecDeque<Time>,
    pub agent: AgentView,
    uptime_when_online: Option<u64>,
    /// Demoted with roles removed: kill it if the agent cannot be told.
    kill_pending: bool,
    /// How the agent's last status differs from the table it applied (see `observe.rs`);
    /// `None` when it agrees.
    pub drift: Option<String>,
    /// Repairs pushed since start-up (a table pushed again because of a drift).
    pub repairs: u64,
    /// Its agent answered or failed at least once since start-up.
    agent_seen: bool,
    /// "Can't reach agent" was logged and "reachable again" not yet.
    agent_down: bool,
    /// When its agent last answered the monitor (a status or an acknowledged push).
    pub last_contact: Option<Time>,
    /// Why it is failing, while it holds (or just lost) the writer role (`holistic.rs`).
    pub analysis: Option<Analysis>,
    /// The last time a majority of the hosts may still have reached it by ping (its writer
    /// lease's other source), as far as the monitor can tell: the last pass that judged so,
    /// or the pass that learned otherwise (the input it runs for ended it, not the pass
    /// before).
    pub majority_reach_at: Option<Time>,
    /// Whether the last pass judged that a majority may still reach it.
    pub majority_reached: bool,
    /// When its agent last said its replication IO thread was receiving (`promotion.rs`).
    pub io_seen_at: Option<Time>,
    /// Since when its agent has been unable to ping the active master:
    /// cut off from the writer, it may lack what the writer acknowledged (`promotion.rs`).
    pub cut_from_writer_since: Option<Time>,
    /// The hosts whose agents probe it — the same it probes (`Config::peers_of`, symmetric):
    /// only their reports say anything about it, and they are its writer lease's population.
    pub probed_by: Vec<usize>,
}

impl Host {
    fn check(&self, k: CheckKind) -> &checks::Status {
        static EMPTY: std::sync::OnceLock<checks::Status> = std::sync::OnceLock::new();
        self.checks
            .get(&k)
            .unwrap_or_else(|| EMPTY.get_or_init(checks::Status::default))
    }
    fn ok(&self, k: CheckKind) -> bool {
        self.check(k).ok()
    }
    fn failed(&self, k: CheckKind) -> bool {
        self.check(k).failed()
    }
    /// ping and mysql both pass, with no failure pending (see [`checks::Status::healthy`]).
    fn alive(&self) -> bool {
        self.check(CheckKind::Ping).healthy() && self.check(CheckKind::Mysql).healthy()
    }
    /// ping or mysql counts as failed.
    fn down(&self) -> bool {
        self.failed(CheckKind::Ping) || self.failed(CheckKind::Mysql)
    }
}

/// A role as configured.
#[derive(Clone, Debug)]
pub struct Role {
    pub name: String,
    pub exclusive: bool,
    pub hosts: Vec<String>,
    pub ips: Vec<Ipv4Addr>,
    pub prefer: Option<String>,
}

/// The whole cluster as the monitor sees it.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub hosts: Vec<Host>,
    pub roles: Vec<Role>,
    pub active_master_role: String,
    pub mode: Mode,
    pub passive_cause: Option<String>,
    pub epoch: u64,
    pub network_up: bool,
    pub checks: BTreeMap<CheckKind, mmm_common::config::CheckConfig>,
    /// `writer_lease` (zero: off).
    pub writer_lease: Duration,
    /// What the fence wait adds to `writer_lease` ([`lease_margin`] of `peer_ping_interval`).
    pub lease_margin: Duration,
    /// `semisync`: slaves replicate from the standby master (`RoleTable::slave_source`).
    pub semisync: bool,
    /// `catchup_strict`: the new writer's agent refuses a promotion whose catch-up did not
    /// finish, so a handed-over final GTID position is applied or nobody writes
    /// (`promotion.rs`).
    pub catchup_strict: bool,
    /// A failed-over writer whose fence is not confirmed yet (`holistic.rs`).
    pub fence: Option<FenceWait>,
    /// `kill_host_fences` with a `kill_host_bin`: a failed-over writer is fenced by it.
    pub kill_host_fences: bool,
    /// How many fencing runs of `kill_host_bin` were asked for (numbers them).
    fence_runs: u64,
    /// When the writer was lost, until a new one is chosen (`promotion.rs`).
    pub writer_lost_at: Option<Time>,
    /// The lost writer, when its agent's last (recent) status said it was committing without
    /// a semi-sync acknowledgement (`promotion.rs`).
    writer_fell_back: Option<String>,
    /// A planned switchover's target, once the old writer is read-only (`holistic.rs`).
    switchover_to: Option<String>,
    /// The old writer's final GTID set after a planned switchover, which the new writer
    /// applies before it becomes writable (in every table until the writer changes again).
    pub catch_up: Option<String>,
    /// What the GTID reports prove: errant transactions, the lag bound (`gtids.rs`).
    pub gtids: gtids::GtidWatch,
    /// Candidates whose veto was logged since the writer was lost.
    veto_logged: BTreeSet<String>,
    flap_duration: Duration,
    flap_count: u32,
    auto_set_online: Duration,
    wait_for_other_master: Duration,
    /// Until this time (or until every agent was heard from) roles are not distributed:
    /// the start-up vote needs the agents' view first.
    startup_until: Option<Time>,
    careful_startup: bool,
    last_table: Option<RoleTable>,
    /// Whether this core decides: false on an etcd follower (`shared.rs`).
    acting: bool,
    /// When this monitor took office as the etcd leader (`shared.rs`).
    office_since: Option<Time>,
    out: Vec<Action>,
}

impl Cluster {
    /// A cluster from a validated config. Every host starts in `state` (MMM: UNKNOWN →
    /// decided by the first checks) with no roles, at epoch `epoch` (from the status file).
    pub fn new(cfg: &Config, epoch: u64) -> Cluster {
        let mode = cfg.monitor.mode;
        Cluster {
            hosts: cfg
                .hosts
                .iter()
                .map(|h| Host {
                    name: h.name.clone(),
                    ip: h.ip,
                    mode: h.mode,
                    peer: h.peer.clone(),
                    state: HostState::Unknown,
                    roles: BTreeSet::new(),
                    checks: BTreeMap::new(),
                    state_since: Time::ZERO,
                    online_since: None,
                    flapping: false,
                    flaps: VecDeque::new(),
                    agent: AgentView::default(),
                    uptime_when_online: None,
                    kill_pending: false,
                    drift: None,
                    repairs: 0,
                    agent_seen: false,
                    agent_down: false,
                    last_contact: None,
                    analysis: None,
                    majority_reach_at: None,
                    majority_reached: false,
                    io_seen_at: None,
                    cut_from_writer_since: None,
                    probed_by: cfg
                        .peers_of(&h.name)
                        .iter()
                        .filter_map(|p| cfg.hosts.iter().position(|x| x.name == p.name))
                        .collect(),
                })
                .collect(),
            roles: cfg
                .roles
                .iter()
                .map(|r| Role {
                    name: r.name.clone(),
                    exclusive: r.mode == RoleMode::Exclusive,
                    hosts: r.hosts.clone(),
                    ips: r.ips.clone(),
                    prefer: r.prefer.clone(),
                })
                .collect(),
            active_master_role: cfg.active_master_role.clone(),
            mode,
            passive_cause: (mode == Mode::Passive)
                .then(|| "mode passive in the configuration".into()),
            epoch,
            network_up: cfg.monitor.ping_ips.is_empty(),
            checks: CheckKind::ALL
                .into_iter()
                .map(|k| (k, cfg.check(k)))
                .collect(),
            writer_lease: cfg.writer_lease,
            lease_margin: lease_margin(cfg.peer_ping_interval),
            semisync: cfg.semisync,
            catchup_strict: cfg.catchup_strict,
            fence: None,
            kill_host_fences: cfg.monitor.kill_host_fences && cfg.monitor.kill_host_bin.is_some(),
            fence_runs: 0,
            writer_lost_at: None,
            writer_fell_back: None,
            switchover_to: None,
            catch_up: None,
            gtids: gtids::GtidWatch::new(cfg.max_lag_on_failover),
            veto_logged: BTreeSet::new(),
            flap_duration: cfg.monitor.flap_duration,
            flap_count: cfg.monitor.flap_count,
            auto_set_online: cfg.monitor.auto_set_online,
            wait_for_other_master: cfg.monitor.wait_for_other_master,
            startup_until: Some(cfg.monitor.agent_timeout * 2),
            careful_startup: cfg.monitor.careful_startup,
            last_table: None,
            acting: true,
            office_since: None,
            out: Vec::new(),
        }
    }

    /// Restores states and roles from a status file (see [`status_file`]).
    /// The file is input, not truth: a role that the configuration no longer has, an IP
    /// that is not the role's, a host that may not hold it, or an exclusive role (or any IP)
    /// on a second host is dropped with a warning (logged with the first step's actions).
    pub fn restore(&mut self, saved: &status_file::Saved) {
        self.epoch = self.epoch.max(saved.epoch);
        let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        for (name, (state, roles)) in &saved.hosts {
            let Some(i) = self.idx(name) else {
                self.log(Log::warn(format!(
                    "Status file: host '{name}' is not in the configuration: ignored"
                )));
                continue;
            };
            self.hosts[i].state = *state;
            for r in roles {
                let why = match self.roles.iter().find(|c| c.name == r.role) {
                    None => Some("the role is not in the configuration".to_string()),
                    Some(c) if !c.ips.contains(&r.ip) => {
                        Some(format!("{} is not an ip of the role", r.ip))
                    }
                    Some(c) if !c.hosts.contains(name) => {
                        Some(format!("'{name}' may not hold the role"))
                    }
                    Some(_) => taken
                        .get(&r.ip)
                        .map(|other| format!("'{other}' already holds it")),
                };
                match why {
                    Some(why) => self.log(Log::warn(format!(
                        "Status file: role {r} of host '{name}' dropped: {why}"
                    ))),
                    None => {
                        taken.insert(r.ip, name.clone());
                        self.hosts[i].roles.insert(r.clone());
                    }
                }
            }
        }
    }

    /// How long `name`'s ping or mysql check has been failing at `now` (the longer of the
    /// two): the detection time of a failover.
    pub fn failing_for(&self, name: &str, now: Time) -> Option<Duration> {
        let h = self.host(name)?;
        [CheckKind::Ping, CheckKind::Mysql]
            .into_iter()
            .filter_map(|k| h.checks.get(&k)?.failing_since())
            .map(|since| now.saturating_sub(since))
            .max()
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    fn log(&mut self, l: Log) {
        self.out.push(Action::Log(l));
    }

    /// The host holding the active-master role.
    pub fn active_master(&self) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.roles.iter().any(|r| r.role == self.active_master_role))
            .map(|h| h.name.as_str())
    }

    /// The status of `check` on `host` (`None`: no result yet, or no such host).
    fn check_status(&self, host: &str, check: CheckKind) -> Option<checks::Status> {
        let i = self.idx(host)?;
        self.hosts[i].checks.get(&check).cloned()
    }

    fn can_be_master(&self, host: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.name == self.active_master_role && r.hosts.iter().any(|h| h == host))
    }

    /// The one entry point: apply `input` at `now`, run a pass, return the actions.
    pub fn step(&mut self, input: Input, now: Time) -> Vec<Action> {
        match input {
            Input::Check {
                host,
                check,
                report,
            } => {
                let before = self.check_status(&host, check);
                self.on_check(&host, check, &report, now);
                if self.out.is_empty() && self.check_status(&host, check) == before {
                    // The same result again (OK after OK, a failure still in its trap)
                    // changes nothing a pass decides on, and time-driven rules run at the
                    // next tick: no pass, so the hundreds of results a second at 256 hosts
                    // cost the core each O(1), not a pass over every host (#18).
                    return Vec::new();
                }
            }
            Input::AgentHealth {
                host,
                up,
                hard,
                peers_down,
                peers_mysqld_down,
            } => {
                if let Some(i) = self.idx(&host) {
                    self.hosts[i].agent.peers_mysqld_down = peers_mysqld_down;
                }
                self.on_agent_health(&host, up, hard, peers_down, now);
                self.note_cut_from_writer(&host, now);
            }
            Input::AgentStatus { host, view } => self.on_agent_status(&host, view, now),
            Input::AgentUnreachable { host } => self.on_agent_unreachable(&host),
            Input::Pushed {
                host,
                ok,
                epoch,
                gtid,
            } => {
                self.note_final_gtid(&host, ok, epoch, gtid);
                self.on_pushed(host, ok, epoch, now)
            }
            Input::Network { up } => self.on_network(up, now),
            Input::Fenced { host, run, ok } => self.on_fenced(&host, run, ok),
            Input::Command(c) => {
                let r = self.command(c, now);
                self.out.push(Action::Reply(r));
            }
            Input::StaleEpoch { applied } if applied > u64::MAX - MAX_EPOCH_STEP => {
                self.log(Log::error(format!(
                    "An agent reports epoch {applied}, too close to the largest epoch to continue from: ignored"
                )));
            }
            Input::StaleEpoch { applied } => {
                if applied >= self.epoch {
                    self.log(Log::warn(format!(
                        "An agent has applied epoch {applied}, newer than ours ({}): continuing from there",
                        self.epoch
                    )));
                    self.epoch = applied;
                    self.last_table = None;
                }
            }
            Input::Tick => {}
        }
        self.pass(now);
        std::mem::take(&mut self.out)
    }

    /// MMM's pass: host states, then (not in PASSIVE) roles; then the table if it changed.
    fn pass(&mut self, now: Time) {
        if !self.network_up {
            return;
        }
        self.note_reachability(now);
        if !self.acting {
            return;
        }
        self.check_states(now);
        if let Some(until) = self.startup_until {
            if now < until && !self.hosts.iter().all(|h| h.agent_seen) {
                return;
            }
            self.startup_until = None;
            self.startup_vote(now);
        }
        self.update_wait_mode(now);
        if self.mode != Mode::Passive {
            self.distribute(now);
            self.publish_table();
        }
    }

    /// The table the agents should have now.
    pub fn table(&self) -> RoleTable {
        RoleTable {
            epoch: self.epoch,
            catch_up: self.catch_up.clone(),
            active_master: self.active_master().map(str::to_string),
            active_master_role: self.active_master_role.clone(),
            hosts: self
                .hosts
                .iter()
                .map(|h| Assignment {
                    host: h.name.clone(),
                    state: h.state,
                    roles: h.roles.iter().cloned().collect(),
                    mac: h.agent.mac,
                })
                .collect(),
        }
    }

    /// Whether the hosts' assignment differs from the last published table
    /// (`RoleTable::assigns`, without building a table: this runs at every input, hundreds a
    /// second with many hosts).
    fn assignment_changed(&self) -> bool {
        !self.last_table.as_ref().is_some_and(|old| {
            old.assigns(
                self.active_master(),
                self.hosts
                    .iter()
                    .map(|h| (h.name.as_str(), h.state, h.roles.iter())),
            )
        })
    }

    fn publish_table(&mut self) {
        if self.assignment_changed() {
            let mut t = self.table();
            // Epochs never wrap: agents bound every step (MAX_EPOCH_STEP), so this only
            // fails after a corrupt status file; then nothing is published.
            let Some(next) = self.epoch.checked_add(1) else {
                self.log(Log::fatal(format!(
                    "Role table epoch {} cannot grow any further: nothing is published",
                    self.epoch
                )));
                return;
            };
            self.epoch = next;
            t.epoch = self.epoch;
            if let Some(f) = self.fence.as_mut().filter(|f| f.epoch.is_none()) {
                f.epoch = Some(next);
            }
            self.out.push(Action::Persist(status_file::render(self)));
            self.out.push(Action::Push(t.clone()));
            self.last_table = Some(t);
        }
    }
}
