//! The status file: MMM's `host|STATE|role(ip),role(ip)` lines, plus our `#epoch N` line.
//! Written atomically by the driver (temp file, fsync, rename).

use super::{Cluster, HostState, RoleIp};
use std::collections::BTreeMap;

/// What a status file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub epoch: u64,
    pub hosts: BTreeMap<String, (HostState, Vec<RoleIp>)>,
}

/// The file's text for the cluster now.
pub fn render(c: &Cluster) -> String {
    let mut s = format!("#epoch {}\n", c.epoch);
    for h in &c.hosts {
        let roles: Vec<String> = h.roles.iter().map(|r| r.to_string()).collect();
        s += &format!("{}|{}|{}\n", h.name, h.state, roles.join(","));
    }
    s
}

/// Parses a status file; an error names the line.
pub fn parse(text: &str) -> Result<Saved, String> {
    let mut saved = Saved::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let bad = |why: &str| format!("line {}: {why}: '{line}'", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(e) = line.strip_prefix("#epoch ") {
            saved.epoch = e.trim().parse().map_err(|_| bad("bad epoch"))?;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.split('|');
        let (Some(host), Some(state), Some(roles), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("want host|STATE|roles"));
        };
        let state = HostState::from_name(state).ok_or_else(|| bad("unknown state"))?;
        let mut list = Vec::new();
        for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (name, rest) = r.split_once('(').ok_or_else(|| bad("bad role"))?;
            let ip = rest
                .strip_suffix(')')
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| bad("bad role ip"))?;
            list.push(RoleIp {
                role: name.to_string(),
                ip,
            });
        }
        saved.hosts.insert(host.to_string(), (state, list));
    }
    Ok(saved)
}
