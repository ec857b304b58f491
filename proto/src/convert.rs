//! The one place where the role-table vocabulary (`mmm_common::roles`) meets protobuf:
//! `From` one way, `TryFrom` the other where the wire can carry what the type cannot (an IP
//! that does not parse, a MAC of the wrong length, a mode of 0). Also the typed metadata of a
//! stale-epoch refusal, so that the monitor reads the agent's applied epoch as data.

use crate::v1 as pb;
use mmm_common::roles::{Assignment, HostState, Mode, RoleIp, RoleTable};
use std::net::Ipv4Addr;

/// Why a protobuf message does not convert.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("host '{host}': role '{role}' has ip '{ip}', not an IPv4 address")]
    RoleIp {
        host: String,
        role: String,
        ip: String,
    },
    #[error("host '{host}': mac has {len} bytes, want 6")]
    Mac { host: String, len: usize },
    #[error("mode {0} is not active, manual, wait or passive")]
    Mode(i32),
    #[error("catch_up_gtid '{0}' is not a GTID set (MariaDB d-s-n lists or MySQL uuid:n-m sets, at most 64 KiB)")]
    Gtid(String),
}

/// Whether `s` looks like a GTID set of either family: hex digits, `-`, `:`, `,` (no quote,
/// space or other SQL), at most 64 KiB.
fn gtid_set(s: &str) -> bool {
    s.len() <= 65_536
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '-' | ':' | ','))
}

impl From<HostState> for pb::HostState {
    fn from(s: HostState) -> Self {
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
}

impl From<pb::HostState> for HostState {
    /// `UNSPECIFIED` is `Unknown` (nothing is known of such a host).
    fn from(s: pb::HostState) -> Self {
        match s {
            pb::HostState::Unspecified | pb::HostState::Unknown => HostState::Unknown,
            pb::HostState::Online => HostState::Online,
            pb::HostState::AdminOffline => HostState::AdminOffline,
            pb::HostState::HardOffline => HostState::HardOffline,
            pb::HostState::AwaitingRecovery => HostState::AwaitingRecovery,
            pb::HostState::ReplicationDelay => HostState::ReplicationDelay,
            pb::HostState::ReplicationFail => HostState::ReplicationFail,
        }
    }
}

/// A host state as the wire carries it (`i32`); a number no version of the protocol defines
/// is `Unknown`.
pub fn host_state(v: i32) -> HostState {
    pb::HostState::try_from(v)
        .map(HostState::from)
        .unwrap_or(HostState::Unknown)
}

impl From<Mode> for pb::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Active => pb::Mode::Active,
            Mode::Manual => pb::Mode::Manual,
            Mode::Wait => pb::Mode::Wait,
            Mode::Passive => pb::Mode::Passive,
        }
    }
}

/// A mode as the wire carries it; `UNSPECIFIED` and unknown numbers are errors.
pub fn mode(v: i32) -> Result<Mode, ConvertError> {
    match pb::Mode::try_from(v) {
        Ok(pb::Mode::Active) => Ok(Mode::Active),
        Ok(pb::Mode::Manual) => Ok(Mode::Manual),
        Ok(pb::Mode::Wait) => Ok(Mode::Wait),
        Ok(pb::Mode::Passive) => Ok(Mode::Passive),
        _ => Err(ConvertError::Mode(v)),
    }
}

impl From<&RoleIp> for pb::Role {
    fn from(r: &RoleIp) -> Self {
        pb::Role {
            name: r.role.clone(),
            ip: r.ip.to_string(),
        }
    }
}

impl From<&RoleTable> for pb::RoleTable {
    fn from(t: &RoleTable) -> Self {
        pb::RoleTable {
            epoch: t.epoch,
            active_master: t.active_master.clone().unwrap_or_default(),
            active_master_role: t.active_master_role.clone(),
            hosts: t
                .hosts
                .iter()
                .map(|a| pb::HostAssignment {
                    host: a.host.clone(),
                    state: pb::HostState::from(a.state) as i32,
                    roles: a.roles.iter().map(pb::Role::from).collect(),
                    mac: a.mac.map(|m| m.to_vec()).unwrap_or_default(),
                })
                .collect(),
            catch_up_gtid: t.catch_up.clone().unwrap_or_default(),
        }
    }
}

/// A MAC from its bytes: empty is none, six bytes is one, anything else an error.
pub fn mac(host: &str, bytes: &[u8]) -> Result<Option<[u8; 6]>, ConvertError> {
    match bytes.len() {
        0 => Ok(None),
        6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(bytes);
            Ok(Some(m))
        }
        len => Err(ConvertError::Mac {
            host: host.into(),
            len,
        }),
    }
}

impl TryFrom<pb::HostAssignment> for Assignment {
    type Error = ConvertError;
    fn try_from(h: pb::HostAssignment) -> Result<Self, ConvertError> {
        let roles = h
            .roles
            .into_iter()
            .map(|r| match r.ip.parse::<Ipv4Addr>() {
                Ok(ip) => Ok(RoleIp::new(r.name, ip)),
                Err(_) => Err(ConvertError::RoleIp {
                    host: h.host.clone(),
                    role: r.name,
                    ip: r.ip,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Assignment {
            mac: mac(&h.host, &h.mac)?,
            state: host_state(h.state),
            roles,
            host: h.host,
        })
    }
}

impl TryFrom<pb::RoleTable> for RoleTable {
    type Error = ConvertError;
    fn try_from(t: pb::RoleTable) -> Result<Self, ConvertError> {
        if !gtid_set(&t.catch_up_gtid) {
            return Err(ConvertError::Gtid(
                t.catch_up_gtid.chars().take(80).collect(),
            ));
        }
        Ok(RoleTable {
            epoch: t.epoch,
            catch_up: Some(t.catch_up_gtid).filter(|s| !s.is_empty()),
            active_master: Some(t.active_master).filter(|s| !s.is_empty()),
            active_master_role: t.active_master_role,
            hosts: t
                .hosts
                .into_iter()
                .map(Assignment::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The metadata key under which an agent's FAILED_PRECONDITION refusal of a stale table
/// carries the epoch it has applied (decimal ASCII).
pub const APPLIED_EPOCH_KEY: &str = "mmm-applied-epoch";

/// The refusal of a table older than the applied one: FAILED_PRECONDITION with `message` and
/// the applied epoch `applied` as metadata ([`APPLIED_EPOCH_KEY`]).
pub fn stale_epoch_status(message: String, applied: u64) -> tonic::Status {
    let mut s = tonic::Status::failed_precondition(message);
    if let Ok(v) = applied.to_string().parse() {
        s.metadata_mut().insert(APPLIED_EPOCH_KEY, v);
    }
    s
}

/// The applied epoch a stale-epoch refusal carries; `None` for any other status.
pub fn applied_epoch(s: &tonic::Status) -> Option<u64> {
    if s.code() != tonic::Code::FailedPrecondition {
        return None;
    }
    s.metadata()
        .get(APPLIED_EPOCH_KEY)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The metadata key the monitor sets on an UNAVAILABLE status it answers itself (an agent it
/// cannot reach, shutting down), so that a client tells it from a monitor it cannot reach.
pub const ANSWERED_KEY: &str = "mmm-answered";

/// `s`, marked as the monitor's own answer ([`ANSWERED_KEY`]).
pub fn answered(mut s: tonic::Status) -> tonic::Status {
    s.metadata_mut().insert(
        ANSWERED_KEY,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    s
}

/// Whether the monitor answered `s` itself (rather than the transport failing to reach it).
pub fn is_answered(s: &tonic::Status) -> bool {
    s.metadata().get(ANSWERED_KEY).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoleTable {
        RoleTable {
            epoch: 7,
            active_master: Some("db1".into()),
            active_master_role: "writer".into(),
            catch_up: None,
            hosts: vec![
                Assignment {
                    host: "db1".into(),
                    state: HostState::Online,
                    roles: vec![RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100))],
                    mac: Some([2, 0, 0, 0, 0, 1]),
                },
                Assignment {
                    host: "db2".into(),
                    state: HostState::ReplicationFail,
                    roles: vec![],
                    mac: None,
                },
            ],
        }
    }

    #[test]
    fn catch_up_gtid_sets_of_both_families_pass_and_anything_else_is_refused() {
        for ok in [
            "0-1-2470",
            "0-1-2470,1-2-7",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11",
        ] {
            let mut t = table();
            t.catch_up = Some(ok.into());
            assert_eq!(RoleTable::try_from(pb::RoleTable::from(&t)), Ok(t), "{ok}");
        }
        for bad in ["0-1-1', 0); DROP TABLE x; --", "0-1-1 ", &"é".repeat(100)] {
            let mut p = pb::RoleTable::from(&table());
            p.catch_up_gtid = bad.into();
            match RoleTable::try_from(p) {
                Err(ConvertError::Gtid(shown)) => assert!(shown.chars().count() <= 80),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn role_table_round_trips() {
        let t = table();
        assert_eq!(RoleTable::try_from(pb::RoleTable::from(&t)), Ok(t));
        for s in HostState::ALL {
            assert_eq!(host_state(pb::HostState::from(s) as i32), s);
        }
        for m in [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive] {
            assert_eq!(mode(pb::Mode::from(m) as i32), Ok(m));
        }
        assert_eq!(mode(0), Err(ConvertError::Mode(0)));
        assert_eq!(host_state(99), HostState::Unknown);
    }

    #[test]
    fn bad_ips_and_macs_are_named() {
        let mut p = pb::RoleTable::from(&table());
        p.hosts[0].roles[0].ip = "gateway".into();
        let e = RoleTable::try_from(p.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host 'db1': role 'writer' has ip 'gateway', not an IPv4 address"
        );
        p.hosts[0].roles[0].ip = "198.18.0.100".into();
        p.hosts[1].mac = vec![1, 2, 3];
        assert_eq!(
            RoleTable::try_from(p),
            Err(ConvertError::Mac {
                host: "db2".into(),
                len: 3
            })
        );
    }

    #[test]
    fn the_applied_epoch_travels_as_metadata() {
        let s = stale_epoch_status("whatever the words".into(), 17);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert_eq!(applied_epoch(&s), Some(17));
        assert_eq!(
            applied_epoch(&tonic::Status::failed_precondition("epoch 17")),
            None
        );
        assert_eq!(applied_epoch(&tonic::Status::aborted("x")), None);
        assert!(is_answered(&answered(tonic::Status::unavailable("x"))));
        assert!(!is_answered(&tonic::Status::unavailable("ERROR: x")));
    }
}
