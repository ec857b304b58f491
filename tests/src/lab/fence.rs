//! The lab's fencing device for `kill_host_fences` (#18): `run/fence HOST 1|0` shuts the
//! host's port on the lab's bridge, as a managed switch's port shutdown would (Pacemaker's
//! `fence_ifmib`); `Lab::unfence` opens it again, as the DBA does once the host is repaired.

use super::{write_private, Lab};
use anyhow::{Context, Result};
use std::{os::unix::fs::PermissionsExt, path::PathBuf};

/// The common configuration a fenced lab adds to the example's: peers probe every 20 ms (two
/// misses: a host is lost to them within ~50 ms), as a DBA tuning for a fast host-down
/// failover would (#18 item 1).
pub const FENCED_COMMON: &str = "peer_ping_interval 20ms";

impl Lab {
    /// The lab's example configuration for a lab named `prefix` with `kill_host_fences yes`,
    /// `kill_host_bin` its [`Lab::fence_bin`], and [`FENCED_COMMON`].
    pub fn example_fenced(prefix: &str) -> Result<(tempfile::TempDir, PathBuf)> {
        Lab::example_tuned(
            &format!(
                "kill_host_bin {}\n    kill_host_fences yes",
                Lab::fence_bin(prefix).display()
            ),
            FENCED_COMMON,
        )
    }

    /// The lab's `kill_host_bin` for `kill_host_fences`: `run_dir/fence`.
    pub fn fence_bin(prefix: &str) -> PathBuf {
        super::run_dir(prefix).join("fence")
    }

    /// Writes the fencing script for the hosts added so far (mode 700): exit 0 once the
    /// host's bridge port is down, 2 for a host it does not know.
    pub(super) fn write_fence(&self) -> Result<()> {
        let mut cases = String::new();
        for h in &self.cfg.hosts {
            let port = &self.net.host(&h.name).peer;
            cases += &format!("{}) port={port} ;;\n", h.name);
        }
        let script = format!(
            "#!/bin/sh\n# kill_host_bin HOST 1|0: shuts HOST's port on the lab's bridge.\ncase \"$1\" in\n{cases}*) echo \"no such lab host: $1\" >&2; exit 2 ;;\nesac\nexec ip -n {} link set \"$port\" down\n",
            self.net.bridge_ns()
        );
        let path = Lab::fence_bin(&self.prefix);
        write_private(&path, &script)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} executable", path.display()))
    }

    /// Opens `host`'s bridge port again after a fence.
    pub fn unfence(&self, host: &str) -> Result<()> {
        let port = self.net.host(host).peer.clone();
        self.net
            .exec(self.net.bridge_ns(), "ip", &["link", "set", &port, "up"])
            .map(|_| ())
    }
}
