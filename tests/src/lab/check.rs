//! A lab's configuration checked before anything is made: it loads, passes the monitor's
//! validation, and every address it names is in 198.18.0.0/15.

use super::{tempdir, write_private};
use crate::netns::in_lab_range;
use anyhow::{bail, Context, Result};
use mmm_common::config::Config;
use std::{net::Ipv4Addr, path::Path};

/// Reads and checks a config directory (mmm_common.conf + mmm_mon.conf) before anything is made.
pub fn check_config(dir: &Path) -> Result<Config> {
    // One directory per call: tests in one process check configs concurrently.
    let guard = tempdir()?;
    let tmp = guard.path().to_path_buf();
    let r = (|| {
        for f in ["mmm_common.conf", "mmm_mon.conf"] {
            let text = std::fs::read_to_string(dir.join(f))
                .with_context(|| format!("reading {}", dir.join(f).display()))?;
            write_private(&tmp.join(f), &text)?;
        }
        let cfg = Config::load(&tmp.join("mmm_mon.conf")).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.to_string()
                    .replace(&tmp.display().to_string(), &dir.display().to_string())
            )
        })?;
        cfg.validate_for_monitor()?;
        let mut addrs: Vec<(String, Ipv4Addr)> = cfg
            .hosts
            .iter()
            .map(|h| (format!("host {}", h.name), h.ip))
            .collect();
        addrs.push(("monitor ip".into(), cfg.monitor.ip));
        addrs.extend(cfg.monitor.ping_ips.iter().map(|i| ("ping_ips".into(), *i)));
        for r in &cfg.roles {
            addrs.extend(r.ips.iter().map(|i| (format!("role {}", r.name), *i)));
        }
        for (what, ip) in addrs {
            if !in_lab_range(ip) {
                bail!("{what} has address {ip}, outside 198.18.0.0/15: the lab uses no other addresses");
            }
        }
        Ok(cfg)
    })();
    drop(guard);
    r
}
