//! The role-table vocabulary shared by the monitor's core, the agent and the protocol adapter:
//! host states with MMM's names, monitor modes, role IPs, and the epoch-numbered role table
//! every agent receives (`docs/mmm-2.2.1.md` §1 states, §3 roles, §5 modes).
//!
//! One shape only: the monitor's core builds a [`RoleTable`], `mmm-proto` converts it to and
//! from protobuf (`From`/`TryFrom`), and the agent plans from the same type. Names are MMM's
//! spelling (`ONLINE`, `ADMIN_OFFLINE`, …) wherever they are printed or persisted.

use std::{fmt, net::Ipv4Addr, str::FromStr};

/// MMM's host states (`docs/mmm-2.2.1.md` §1). `Unknown` is the state before the first checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostState {
    Unknown,
    Online,
    AdminOffline,
    HardOffline,
    AwaitingRecovery,
    ReplicationDelay,
    ReplicationFail,
}

impl HostState {
    /// Every state, in MMM's order.
    pub const ALL: [HostState; 7] = [
        HostState::Unknown,
        HostState::Online,
        HostState::AdminOffline,
        HostState::HardOffline,
        HostState::AwaitingRecovery,
        HostState::ReplicationDelay,
        HostState::ReplicationFail,
    ];

    /// MMM's spelling (`ONLINE`, `HARD_OFFLINE`, …).
    pub fn name(self) -> &'static str {
        match self {
            HostState::Unknown => "UNKNOWN",
            HostState::Online => "ONLINE",
            HostState::AdminOffline => "ADMIN_OFFLINE",
            HostState::HardOffline => "HARD_OFFLINE",
            HostState::AwaitingRecovery => "AWAITING_RECOVERY",
            HostState::ReplicationDelay => "REPLICATION_DELAY",
            HostState::ReplicationFail => "REPLICATION_FAIL",
        }
    }

    /// Parses MMM's spelling; `None` for anything else.
    pub fn from_name(s: &str) -> Option<HostState> {
        HostState::ALL.into_iter().find(|h| h.name() == s)
    }
}

impl Default for HostState {
    /// Nothing is known before the first check (or the first table).
    fn default() -> Self {
        HostState::Unknown
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of MMM's host states or modes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a known name")]
pub struct UnknownName(pub String);

impl FromStr for HostState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostState::from_name(s).ok_or_else(|| UnknownName(s.into()))
    }
}

impl serde::Serialize for HostState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for HostState {
    /// MMM's spelling; an empty string (a state file written before any table) is `Unknown`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(HostState::Unknown);
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Monitor modes (`docs/mmm-2.2.1.md` §5): the configuration's `mode` directive, the core's
/// current mode and the protocol's `Mode` are this one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Active,
    Manual,
    Wait,
    Passive,
}

impl Mode {
    /// MMM's spelling as `mmm_control mode` prints it (`ACTIVE`, …).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Active => "ACTIVE",
            Mode::Manual => "MANUAL",
            Mode::Wait => "WAIT",
            Mode::Passive => "PASSIVE",
        }
    }

    /// The configuration's spelling (`active`, `manual`, `wait`, `passive`; lower case only,
    /// as MMM).
    pub fn from_config(s: &str) -> Option<Mode> {
        [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive]
            .into_iter()
            .find(|m| m.name().to_ascii_lowercase() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One role IP held by a host, printed as MMM does: `writer(198.18.0.100)`. Persisted as the
/// pair `["writer", "198.18.0.100"]` (the agent's state-file format since the first release).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(from = "(String, Ipv4Addr)", into = "(String, Ipv4Addr)")]
pub struct RoleIp {
    /// The role's name from the configuration (`<role NAME>`).
    pub role: String,
    /// One of the role's `ips`.
    pub ip: Ipv4Addr,
}

impl RoleIp {
    /// `role(ip)`.
    pub fn new(role: impl Into<String>, ip: Ipv4Addr) -> RoleIp {
        RoleIp {
            role: role.into(),
            ip,
        }
    }
}

impl From<(String, Ipv4Addr)> for RoleIp {
    fn from((role, ip): (String, Ipv4Addr)) -> Self {
        RoleIp { role, ip }
    }
}

impl From<RoleIp> for (String, Ipv4Addr) {
    fn from(r: RoleIp) -> Self {
        (r.role, r.ip)
    }
}

impl fmt::Display for RoleIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.role, self.ip)
    }
}

/// The largest step above an agent's applied epoch that a role table may take: 2^32 (a
/// monitor changing its table every millisecond needs 50 days to get there). Agents refuse
/// larger jumps, so one forged or corrupt epoch (`u64::MAX`) cannot lock the monitor out; the
/// monitor never adopts an epoch that leaves less than this much room below `u64::MAX`.
pub const MAX_EPOCH_STEP: u64 = 1 << 32;

/// One host's line of a role table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Host name from the configuration.
    pub host: String,
    /// Its state as the monitor sees it.
    pub state: HostState,
    /// The role IPs it must hold.
    pub roles: Vec<RoleIp>,
    /// Its cluster interface's MAC (6 bytes), when its agent reported one: where other hosts
    /// steer stale clients of its VIPs.
    pub mac: Option<[u8; 6]>,
}

/// The writer lease's quorum: whether a host that `reachable` of its `others` peers (the hosts
/// it probes, `Config::peers_of`) answer is in a majority of them (`others + 1` hosts, itself
/// counted): 2 of 3, 2 of 2, 3 of 4, 3 of 5. The agent renews its lease by it; the monitor
/// judges by it whether the old writer may still renew (ARCHITECTURE.md "No split brain").
pub fn majority(reachable: usize, others: usize) -> bool {
    2 * (1 + reachable.min(others)) > others + 1
}

/// What every agent receives: the whole cluster's assignment under one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleTable {
    /// Grows with every change; agents refuse a table older than the one they applied.
    pub epoch: u64,
    /// The host holding the active-master role, if any.
    pub active_master: Option<String>,
    /// The active-master role's name (`active_master_role`, usually `writer`).
    pub active_master_role: String,
    /// One line per host.
    pub hosts: Vec<Assignment>,
    /// After a planned switchover: the old writer's final GTID set, which the new writer
    /// applies before it becomes writable (`None`: its relay log as received).
    pub catch_up: Option<String>,
}

impl RoleTable {
    /// Where slaves replicate from (`Config::slave_source` explains the rule): the active
    /// master, or with `semisync` its peer (`peer_of`) while that is ONLINE here.
    pub fn slave_source<'p>(
        &self,
        semisync: bool,
        peer_of: impl Fn(&str) -> Option<&'p str>,
    ) -> Option<&str> {
        let am = self.active_master.as_deref()?;
        if semisync {
            let standby = peer_of(am)
                .and_then(|p| self.host(p))
                .filter(|p| p.state == HostState::Online);
            if let Some(p) = standby {
                return Some(p.host.as_str());
            }
        }
        Some(am)
    }

    /// The line of `host`.
    pub fn host(&self, host: &str) -> Option<&Assignment> {
        self.hosts.iter().find(|a| a.host == host)
    }

    /// The host that must hold `ip`, if any.
    pub fn owner_of(&self, ip: Ipv4Addr) -> Option<&Assignment> {
        self.hosts
            .iter()
            .find(|a| a.roles.iter().any(|r| r.ip == ip))
    }

    /// The same assignment, ignoring the epoch and the MACs: whether a new epoch is needed.
    pub fn same_assignment(&self, other: &RoleTable) -> bool {
        self.assigns(
            other.active_master.as_deref(),
            other
                .hosts
                .iter()
                .map(|b| (b.host.as_str(), b.state, b.roles.iter())),
        )
    }

    /// Whether this table assigns what `active_master` and `hosts` — (name, state, role IPs)
    /// in table order — say, ignoring the epoch and the MACs ([`RoleTable::same_assignment`]
    /// without a second table: the monitor asks at every input, without building one).
    pub fn assigns<'a, R>(
        &self,
        active_master: Option<&str>,
        hosts: impl ExactSizeIterator<Item = (&'a str, HostState, R)>,
    ) -> bool
    where
        R: ExactSizeIterator<Item = &'a RoleIp>,
    {
        self.active_master.as_deref() == active_master
            && self.hosts.len() == hosts.len()
            && self
                .hosts
                .iter()
                .zip(hosts)
                .all(|(a, (host, state, roles))| {
                    a.host == host
                        && a.state == state
                        && a.roles.len() == roles.len()
                        && a.roles.iter().zip(roles).all(|(x, y)| x == y)
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_mmm_spells_them() {
        for s in HostState::ALL {
            assert_eq!(HostState::from_name(s.name()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<HostState>(&json).unwrap(), s);
        }
        assert_eq!(
            serde_json::from_str::<HostState>("\"\"").unwrap(),
            HostState::Unknown
        );
        assert!(serde_json::from_str::<HostState>("\"ONLIN\"").is_err());
        assert_eq!(Mode::from_config("passive"), Some(Mode::Passive));
        assert_eq!(Mode::from_config("sleepy"), None);
    }

    #[test]
    fn role_ips_persist_as_pairs() {
        let r = RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"["writer","198.18.0.100"]"#);
        assert_eq!(serde_json::from_str::<RoleIp>(&json).unwrap(), r);
        assert_eq!(r.to_string(), "writer(198.18.0.100)");
    }
}
