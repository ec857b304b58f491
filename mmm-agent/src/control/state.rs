//! What the agent has applied, persisted atomically (temp file, fsync, rename, fsync of the
//! directory) so that a restarted agent keeps refusing role tables older than the newest it
//! applied.

use serde::{Deserialize, Serialize};
use std::{io::Write, net::Ipv4Addr, path::Path};

/// The agent's persisted state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Highest role-table epoch applied.
    pub epoch: u64,
    /// Role IPs this host holds: (role, ip).
    pub roles: Vec<(String, Ipv4Addr)>,
    /// Host holding the active-master role in the applied table.
    pub active_master: Option<String>,
    /// This host's state in the applied table (MMM's name).
    pub host_state: String,
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
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("agent.state");
        assert_eq!(AgentState::load(&p).unwrap(), AgentState::default());
        let s = AgentState {
            epoch: 7,
            roles: vec![("writer".into(), Ipv4Addr::new(198, 18, 0, 100))],
            active_master: Some("db1".into()),
            host_state: "ONLINE".into(),
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
