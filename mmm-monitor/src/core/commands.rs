//! Admin commands (`mmm_control`), with MMM's exact reply texts (`docs/mmm-2.2.1.md` §4).

use super::{Cluster, Event, HostState, Log, Mode, RoleIp, Time};
use std::net::Ipv4Addr;

impl std::fmt::Display for Command {
    /// MMM's words for the command (`set_online db1`, `move_role --force writer db2`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Ping => f.write_str("ping"),
            Command::SetOnline(h) => write!(f, "set_online {h}"),
            Command::SetOffline(h) => write!(f, "set_offline {h}"),
            Command::SetMode(m) => write!(f, "set_{}", m.name().to_lowercase()),
            Command::MoveRole { role, host, force } => {
                let force = if *force { "--force " } else { "" };
                write!(f, "move_role {force}{role} {host}")
            }
            Command::SetIp { ip, host } => write!(f, "set_ip {ip} {host}"),
        }
    }
}

/// A command from an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ping,
    SetOnline(String),
    SetOffline(String),
    SetMode(Mode),
    MoveRole {
        role: String,
        host: String,
        force: bool,
    },
    SetIp {
        ip: Ipv4Addr,
        host: String,
    },
}

/// Why a command was refused; the text is MMM's `ERROR: ...` line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Unknown host, role, ip or check.
    #[error("{0}")]
    NotFound(String),
    /// Malformed arguments.
    #[error("{0}")]
    InvalidArgument(String),
    /// Not allowed in the current state or mode.
    #[error("{0}")]
    FailedPrecondition(String),
    /// An agent could not be reached.
    #[error("{0}")]
    Unavailable(String),
}

use CommandError::*;

impl Cluster {
    fn known(&self, host: &str) -> Result<usize, CommandError> {
        self.idx(host)
            .ok_or_else(|| NotFound(format!("ERROR: Unknown host name '{host}'!")))
    }

    pub(super) fn command(&mut self, c: Command, now: Time) -> Result<String, CommandError> {
        let changes = !matches!(c, Command::Ping);
        if changes && !self.network_up {
            return Err(FailedPrecondition(
                "ERROR: The monitor's network is down (no ping_ips answer): commands that change the cluster wait until it is back.".into(),
            ));
        }
        match c {
            Command::Ping => Ok("OK: Pinged successfully!".into()),
            Command::SetOnline(host) => self.set_online(&host, now),
            Command::SetOffline(host) => self.set_offline(&host, now),
            Command::SetMode(m) => {
                if m == Mode::Wait {
                    return Err(InvalidArgument(
                        "ERROR: WAIT mode can only be set in the configuration".into(),
                    ));
                }
                if m == Mode::Passive {
                    self.passive_cause = Some("Switched into passive mode by an admin.".into());
                }
                self.set_mode(m);
                Ok(format!(
                    "OK: Switched into {} mode.",
                    m.name().to_lowercase()
                ))
            }
            Command::MoveRole { role, host, force } => self.move_role(&role, &host, force, now),
            Command::SetIp { ip, host } => self.set_ip(ip, &host),
        }
    }

    fn set_online(&mut self, host: &str, now: Time) -> Result<String, CommandError> {
        let i = self.known(host)?;
        let h = &self.hosts[i];
        match h.state {
            HostState::Online => {
                return Ok("OK: This host is already ONLINE. Skipping command.".into())
            }
            HostState::AdminOffline | HostState::AwaitingRecovery => {}
            s => {
                return Err(FailedPrecondition(format!(
                    "ERROR: Host '{host}' is '{s}' at the moment. It can't be switched to ONLINE."
                )))
            }
        }
        if !h.alive() {
            return Err(FailedPrecondition(format!(
                "ERROR: Checks ping and/or mysql are not ok for host '{host}'. It can't be switched to ONLINE."
            )));
        }
        if let Some(p) = h.peer.as_deref().and_then(|p| self.host(p)) {
            use mmm_common::config::CheckKind::{RepBacklog, RepThreads};
            if p.state == HostState::Online && (p.failed(RepThreads) || p.failed(RepBacklog)) {
                return Err(FailedPrecondition(format!(
                    "ERROR: Some replication checks failed on peer '{}'. We can't set '{host}' online now. Please, wait some time.",
                    p.name
                )));
            }
        }
        if !h.agent.reachable {
            return Err(Unavailable(format!(
                "ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!"
            )));
        }
        self.hosts[i].flapping = false;
        self.change_state(i, HostState::Online, now, "", true);
        Ok(format!(
            "OK: State of '{host}' changed to ONLINE. Now you can wait some time and check its new roles!"
        ))
    }

    fn set_offline(&mut self, host: &str, now: Time) -> Result<String, CommandError> {
        let i = self.known(host)?;
        let h = &self.hosts[i];
        match h.state {
            HostState::AdminOffline => {
                return Ok("OK: This host is already ADMIN_OFFLINE. Skipping command.".into())
            }
            HostState::Online | HostState::ReplicationDelay | HostState::ReplicationFail => {}
            s => {
                return Err(FailedPrecondition(format!(
                    "ERROR: Host '{host}' is '{s}' at the moment. It can't be switched to ADMIN_OFFLINE."
                )))
            }
        }
        if !h.agent.reachable {
            return Err(Unavailable(format!(
                "ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!"
            )));
        }
        self.change_state(i, HostState::AdminOffline, now, "", true);
        self.clear_roles(i, false);
        Ok(format!(
            "OK: State of '{host}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
        ))
    }

    fn move_role(
        &mut self,
        role: &str,
        host: &str,
        force: bool,
        now: super::Time,
    ) -> Result<String, CommandError> {
        let r = self
            .roles
            .iter()
            .position(|x| x.name == role)
            .ok_or_else(|| NotFound(format!("ERROR: Unknown role name '{role}'!")))?;
        let i = self.known(host)?;
        if self.mode == Mode::Passive {
            return Err(FailedPrecondition(
                "ERROR: The monitor is in PASSIVE mode: roles are not moved. Use set_ip, or switch modes first.".into(),
            ));
        }
        let spec = self.roles[r].clone();
        let state = self.hosts[i].state;
        // MMM's forced move (`docs/mmm-2.2.1.md` §4), in its order of checks.
        if force && spec.name != self.active_master_role {
            return Err(FailedPrecondition(
                "ERROR: move_role --forced may be used for the active master role only!".into(),
            ));
        }
        if force
            && !matches!(
                state,
                HostState::ReplicationFail | HostState::ReplicationDelay
            )
        {
            return Err(FailedPrecondition(format!(
                "ERROR: Can't force move of role to host with state {state}."
            )));
        }
        if force && self.mode == Mode::Active {
            return Err(FailedPrecondition(format!(
                "ERROR: --force needs MANUAL mode: in ACTIVE mode a role never stays on a host that is not ONLINE (host '{host}' is {state}). Run set_manual first."
            )));
        }
        if !spec.exclusive {
            return Err(FailedPrecondition(format!(
                "ERROR: Role '{role}' is balanced: move_role moves exclusive roles only (balanced IPs are spread over the ONLINE hosts automatically)."
            )));
        }
        if state != HostState::Online && !force {
            return Err(FailedPrecondition(format!(
                "ERROR: Can't move role to host with state {state}."
            )));
        }
        if !spec.hosts.iter().any(|h| h == host) {
            return Err(FailedPrecondition(format!(
                "ERROR: Host '{host}' can't handle role '{role}'. Only following hosts could: {}",
                spec.hosts.join(", ")
            )));
        }
        let rip = RoleIp {
            role: spec.name.clone(),
            ip: spec.ips[0],
        };
        let from = self.hosts.iter().position(|h| h.roles.contains(&rip));
        if from == Some(i) {
            return Ok(format!(
                "OK: Role is on '{host}' already. Skipping command."
            ));
        }
        if spec.name == self.active_master_role {
            if let Some(f) = self.fence.clone().filter(|f| f.host != host) {
                if self.fence_holds(now) {
                    return Err(FailedPrecondition(format!(
                        "ERROR: The writer role waits until the old writer '{}' is fenced (its agent confirms, or its writer lease runs out): moving it now could leave two writers.",
                        f.host
                    )));
                }
            }
            // The admin accepts what a vetoed candidate lacks (`promotion.rs`).
            self.writer_lost_at = None;
        }
        let from_name = from.map(|f| self.hosts[f].name.clone()).unwrap_or_default();
        self.log(Log::info(format!(
            "Moving role '{rip}' from host '{from_name}' to host '{host}'"
        )));
        // A planned switchover of the writer: in two steps, the old writer read-only first
        // (`holistic.rs` `begin_switchover`). MMM's --force moves at once.
        if let (Some(f), false, true) = (from, force, spec.name == self.active_master_role) {
            self.begin_switchover(f, i, now);
            return Ok(format!(
                "OK: Role '{role}' has been moved from '{from_name}' to '{host}'. Now you can wait some time and check new roles info!"
            ));
        }
        if let Some(f) = from {
            self.hosts[f].roles.remove(&rip);
        }
        self.hosts[i].roles.insert(rip.clone());
        self.out.push(super::Action::Event(Event::RoleMoved {
            role: rip,
            from: from.map(|_| from_name.clone()),
            to: Some(host.into()),
        }));
        // ACTIVE mode would move a preferred role straight back: the admin's choice wins by
        // switching to MANUAL, as MMM users learned to do.
        Ok(format!(
            "OK: Role '{role}' has been moved from '{from_name}' to '{host}'. Now you can wait some time and check new roles info!"
        ))
    }

    fn set_ip(&mut self, ip: Ipv4Addr, host: &str) -> Result<String, CommandError> {
        if self.mode != Mode::Passive {
            return Err(FailedPrecondition(
                "ERROR: This command is only allowed in passive mode".into(),
            ));
        }
        let r = self
            .roles
            .iter()
            .position(|x| x.ips.contains(&ip))
            .ok_or_else(|| NotFound(format!("ERROR: Unknown ip {ip}!")))?;
        let i = self.known(host)?;
        let spec = self.roles[r].clone();
        if !spec.hosts.iter().any(|h| h == host) {
            return Err(FailedPrecondition(format!(
                "ERROR: Host '{host}' can't handle role '{}'. Only following hosts could: {}",
                spec.name,
                spec.hosts.join(", ")
            )));
        }
        let rip = RoleIp {
            role: spec.name.clone(),
            ip,
        };
        for h in &mut self.hosts {
            h.roles.remove(&rip);
        }
        self.hosts[i].roles.insert(rip.clone());
        Ok(format!("OK: Set role '{rip}' to host '{host}'."))
    }
}
