//! Conversions between the core's types and `mmm.v1` protobuf (the only monitor code, with
//! `grpc.rs`, that sees prost types).

use crate::core::{self, HostState, Mode, RoleIp, RoleTable};
use mmm_proto::v1 as pb;

pub fn state_to_pb(s: HostState) -> pb::HostState {
    match s {
        HostState::Unknown => pb::HostState::Unknown,
        HostState::Online => pb::HostState::Online,
        HostState::AdminOffline => pb::HostState::AdminOffline,
        HostState::HardOffline => pb::HostState::HardOffline,
        HostState::AwaitingRecovery => pb::HostState::AwaitingRecovery,
        HostState::ReplicationDelay => pb::HostState::ReplicationDelay,
        HostState::ReplicationFail => pb::HostState::ReplicationFail,
    }
}

pub fn state_from_pb(s: i32) -> HostState {
    match pb::HostState::try_from(s) {
        Ok(pb::HostState::Online) => HostState::Online,
        Ok(pb::HostState::AdminOffline) => HostState::AdminOffline,
        Ok(pb::HostState::HardOffline) => HostState::HardOffline,
        Ok(pb::HostState::AwaitingRecovery) => HostState::AwaitingRecovery,
        Ok(pb::HostState::ReplicationDelay) => HostState::ReplicationDelay,
        Ok(pb::HostState::ReplicationFail) => HostState::ReplicationFail,
        _ => HostState::Unknown,
    }
}

pub fn mode_to_pb(m: Mode) -> pb::Mode {
    match m {
        Mode::Active => pb::Mode::Active,
        Mode::Manual => pb::Mode::Manual,
        Mode::Wait => pb::Mode::Wait,
        Mode::Passive => pb::Mode::Passive,
    }
}

pub fn mode_from_pb(m: i32) -> Option<Mode> {
    match pb::Mode::try_from(m) {
        Ok(pb::Mode::Active) => Some(Mode::Active),
        Ok(pb::Mode::Manual) => Some(Mode::Manual),
        Ok(pb::Mode::Wait) => Some(Mode::Wait),
        Ok(pb::Mode::Passive) => Some(Mode::Passive),
        _ => None,
    }
}

pub fn role_to_pb(r: &RoleIp) -> pb::Role {
    pb::Role {
        name: r.role.clone(),
        ip: r.ip.to_string(),
    }
}

pub fn table_to_pb(t: &RoleTable) -> pb::RoleTable {
    pb::RoleTable {
        epoch: t.epoch,
        active_master: t.active_master.clone().unwrap_or_default(),
        active_master_role: t.active_master_role.clone(),
        hosts: t
            .hosts
            .iter()
            .map(|a| pb::HostAssignment {
                host: a.host.clone(),
                state: state_to_pb(a.state) as i32,
                roles: a.roles.iter().map(role_to_pb).collect(),
                mac: a.mac.map(|m| m.to_vec()).unwrap_or_default(),
            })
            .collect(),
    }
}

/// What the core needs from an agent's status.
pub fn agent_view(st: &pb::AgentStatus) -> core::AgentView {
    let progress = mmm_common::gtid_progress(&st.gtid_executed);
    core::AgentView {
        reachable: true,
        // MMM's short-downtime rule used the machine's uptime; ours uses mysqld's: a restart
        // of the server (or a reboot) resets it, a network blip does not.
        uptime_s: (st.mysqld_uptime_s > 0).then_some(st.mysqld_uptime_s),
        mysqld_down: !st.mysqld_up,
        // Reported on the health stream, not in the status; the core keeps its own copy.
        peers_down: vec![],
        progress,
        writable: Some(st.writable),
        configured_ips: st
            .vips_configured
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect(),
        owned_ips: st
            .vips_owned
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect(),
        source_ip: st
            .replication_source
            .split(':')
            .next()
            .and_then(|h| h.parse().ok()),
        mac: (st.mac.len() == 6).then(|| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&st.mac);
            m
        }),
    }
}

/// The epoch an agent says it applied, from its FAILED_PRECONDITION message.
pub fn applied_epoch_in(msg: &str) -> Option<u64> {
    let rest = &msg[msg.find("applied epoch ")? + "applied epoch ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agent_epoch_and_progress() {
        assert_eq!(
            applied_epoch_in("role table epoch 3 is older than the applied epoch 17: refused"),
            Some(17)
        );
        assert_eq!(applied_epoch_in("nothing"), None);
        for s in [
            HostState::Online,
            HostState::ReplicationFail,
            HostState::Unknown,
        ] {
            assert_eq!(state_from_pb(state_to_pb(s) as i32), s);
        }
    }
}
