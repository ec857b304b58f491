//! The core's inputs and outputs: what a driver feeds [`super::Cluster::step`] ([`Input`]),
//! the changes it publishes ([`Event`]) and what it must carry out ([`Action`]).

use super::{
    AgentView, CheckKind, Command, CommandError, HostState, Log, Mode, Report, RoleIp, RoleTable,
};

/// Inputs to the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A checker's raw result.
    Check {
        host: String,
        check: CheckKind,
        report: Report,
    },
    /// The host's agent reports its mysqld down (`up == false`) or back up, and which other
    /// hosts it cannot reach.
    AgentHealth {
        host: String,
        up: bool,
        /// Down with hard evidence (process exited, connection refused): only then does it
        /// shorten the trap period. A timeout is a suspicion.
        hard: bool,
        /// Hosts that do not answer its pings.
        peers_down: Vec<String>,
        /// Hosts whose mysqld does not answer its logins.
        peers_mysqld_down: Vec<String>,
    },
    /// A successful status call to the agent.
    AgentStatus { host: String, view: AgentView },
    /// A call to the agent failed.
    AgentUnreachable { host: String },
    /// Result of pushing the table of `epoch` to one agent; `gtid`: its server's applied GTID
    /// set after the apply, when known.
    Pushed {
        host: String,
        ok: bool,
        epoch: u64,
        gtid: Option<String>,
    },
    /// The monitor's own network check (ping_ips).
    Network { up: bool },
    /// The fencing run `run` of `kill_host_bin` on `host` ([`Action::Fence`]) ended; `ok`:
    /// it exited 0 (the host is fenced).
    Fenced { host: String, run: u64, ok: bool },
    /// An admin command; answered with [`Action::Reply`].
    Command(Command),
    /// An agent refused a table as older than the epoch it applied (e.g. the status file was
    /// lost): jump past it and publish again.
    StaleEpoch { applied: u64 },
    /// Time passes (drives auto_set_online, WAIT mode, flapping windows).
    Tick,
}

/// A change worth publishing (gRPC `Watch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    State {
        host: String,
        from: HostState,
        to: HostState,
        reason: String,
    },
    RoleMoved {
        role: RoleIp,
        from: Option<String>,
        to: Option<String>,
    },
    ModeChanged {
        from: Mode,
        to: Mode,
    },
    /// Monitor high availability: `leader` leads now (`None`: no monitor leads). Published by
    /// the driver, never by the core.
    LeaderChanged {
        leader: Option<String>,
    },
    /// After the writer failed, `host` was not promoted to `role`: it would lose acknowledged
    /// writes, for `reason` (`promotion.rs`).
    PromotionRefused {
        host: String,
        role: String,
        reason: String,
    },
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Log(Log),
    Event(Event),
    /// Push this table to every agent (in parallel).
    Push(RoleTable),
    /// The monitor's own network went down (`false`: nothing may be sent to agents) or came
    /// back (`docs/mmm-2.2.1.md` §2).
    Network {
        up: bool,
    },
    /// Persist the status (status file + epoch).
    Persist(String),
    /// Push the current table to `host` again, although it acknowledged it: its agent's
    /// status differs from it (drift).
    Repair {
        host: String,
    },
    /// Run `kill_host_bin <host> <1|0>` (the second argument: whether the host's ping check
    /// passes, as MMM passes it).
    KillHost {
        host: String,
        ping_ok: bool,
    },
    /// Fence `host`, a failed-over writer (`kill_host_fences`): run `kill_host_bin <host>
    /// <1|0>` now and answer with [`Input::Fenced`] carrying `run`.
    Fence {
        host: String,
        ping_ok: bool,
        run: u64,
    },
    /// Run `check` on `host` now (an agent reported a failure: our own view is wanted).
    Confirm {
        host: String,
        check: CheckKind,
    },
    /// The answer to the last command.
    Reply(Result<String, CommandError>),
}
