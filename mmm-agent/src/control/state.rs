//! What the agent has applied, persisted atomically (`mmm_common::fsutil::write_atomic`) so
//! that a restarted agent keeps refusing role tables older than the newest it applied.
//! The file is JSON: `{"epoch":7,"roles":[["writer","198.18.0.100"]],"active_master":"db1",
//! "host_state":"ONLINE"}`.

use mmm_common::roles::{HostState, RoleIp};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The agent's persisted state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Highest role-table epoch applied.
    pub epoch: u64,
    /// Role IPs this host holds.
    pub roles: Vec<RoleIp>,
    /// Host holding the active-master role in the applied table.
    pub active_master: Option<String>,
    /// This host's state in the applied table (persisted as MMM's name).
    pub host_state: HostState,
    /// The writer lease ran out and this host fenced itself (the writer role was dropped);
    /// cleared by the next applied table.
    #[serde(default)]
    pub lease_fenced: bool,
}

/// Reading or writing the state file failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error(
        "{path} is corrupt ({err}); it was moved to {moved} and the agent starts from epoch 0"
    )]
    Corrupt {
        path: String,
        err: String,
        moved: String,
    },
}

impl AgentState {
    /// Loads `path`; a missing file is a fresh state. A corrupt one is moved aside and reported
    /// (the caller logs it and starts fresh: the monitor's own persisted epoch still fences).
    pub fn load(path: &Path) -> Result<AgentState, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AgentState::default()),
            Err(err) => {
                return Err(StateError::Io {
                    path: path.display().to_string(),
                    err,
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| {
            let moved = path.with_extension("corrupt");
            let _ = std::fs::rename(path, &moved);
            StateError::Corrupt {
                path: path.display().to_string(),
                err: e.to_string(),
                moved: moved.display().to_string(),
            }
        })
    }

    /// Writes atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |err| StateError::Io {
            path: path.display().to_string(),
            err,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        mmm_common::fsutil::write_atomic(path, text.as_bytes()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn reads_the_format_of_earlier_releases() {
        let text = r#"{"epoch":3,"roles":[["writer","198.18.0.100"]],"active_master":"db1","host_state":"ADMIN_OFFLINE"}"#;
        let s: AgentState = serde_json::from_str(text).unwrap();
        assert_eq!(s.host_state, HostState::AdminOffline);
        assert_eq!(
            s.roles,
            [RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100))]
        );
        let fresh: AgentState =
            serde_json::from_str(r#"{"epoch":0,"roles":[],"active_master":null,"host_state":""}"#)
                .unwrap();
        assert_eq!(fresh, AgentState::default());
    }

    #[test]
    fn round_trip_missing_and_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("agent.state");
        assert_eq!(AgentState::load(&p).unwrap(), AgentState::default());
        let s = AgentState {
            epoch: 7,
            roles: vec![RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100))],
            active_master: Some("db1".into()),
            host_state: HostState::Online,
            lease_fenced: true,
        };
        s.save(&p).unwrap();
        assert_eq!(AgentState::load(&p).unwrap(), s);
        std::fs::write(&p, "{ not json").unwrap();
        let e = AgentState::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("is corrupt") && e.contains("agent.corrupt"),
            "{e}"
        );
        assert!(!p.exists());
    }
}
