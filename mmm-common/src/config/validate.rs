//! Validation across sections: peers and hosts exist, role IPs are unique and never a host's
//! address, exclusive roles have one IP, TLS files are named; and the checks of each daemon
//! (MMM refuses a monitor with more than two active-master candidates, `docs/mmm-2.2.1.md` §5;
//! an agent needs `this`).

use super::{model::*, ConfigError};
use std::collections::BTreeMap;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        if self.socket.ssl {
            let s = &self.socket;
            let missing: Vec<&str> = [
                ("cert_file", s.cert_file.is_none()),
                ("key_file", s.key_file.is_none()),
                ("ca_file", s.ca_file.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(k, _)| *k)
            .collect();
            if !missing.is_empty() {
                return inv(format!(
                    "<socket> type ssl needs cert_file, key_file and ca_file; missing: {}",
                    missing.join(", ")
                ));
            }
        }
        if self.hosts.len() > MAX_HOSTS {
            return inv(format!(
                "{} hosts are defined; a cluster has at most {MAX_HOSTS} (the monitor checks every host every period): split the fleet into several clusters",
                self.hosts.len()
            ));
        }
        if self.peer_neighbours > MAX_PEER_NEIGHBOURS {
            return inv(format!(
                "peer_neighbours {} is more than {MAX_PEER_NEIGHBOURS}: each agent probes that many hosts on each side",
                self.peer_neighbours
            ));
        }
        if let Some(why) = outside(
            "peer_ping_interval",
            &self.peer_ping_interval,
            &PEER_PING_INTERVALS,
        )
        .or_else(|| {
            outside(
                "peer_ping_misses",
                &self.peer_ping_misses,
                &PEER_PING_MISSES,
            )
        }) {
            return inv(why);
        }
        let min_lease = self.peer_ping_interval * MIN_WRITER_LEASE_PINGS;
        if !self.writer_lease.is_zero() && self.writer_lease < min_lease {
            return inv(format!(
                "writer_lease {:?} is shorter than {MIN_WRITER_LEASE_PINGS} peer_ping_interval ({min_lease:?}): the writer would fence itself after a few lost pings; use 0 to turn the lease off",
                self.writer_lease
            ));
        }
        // Names go into the status file's `host|STATE|role(ip),…` lines and MMM's texts.
        let names = self
            .hosts
            .iter()
            .map(|h| ("host", &h.name))
            .chain(self.roles.iter().map(|r| ("role", &r.name)));
        for (what, name) in names {
            if let Some(c) = name
                .chars()
                .find(|c| "|,()".contains(*c) || c.is_whitespace())
            {
                return inv(format!(
                    "{what} name '{name}' contains '{c}', which the status file uses as a separator"
                ));
            }
        }
        let mut seen_ips = BTreeMap::new();
        for h in &self.hosts {
            if let Some(p) = &h.peer {
                if self.host(p).is_none() {
                    return inv(format!(
                        "host '{}' has peer '{p}', which is not a defined host",
                        h.name
                    ));
                }
                if p == &h.name {
                    return inv(format!("host '{}' is its own peer", h.name));
                }
            } else if h.mode == HostMode::Master {
                return inv(format!(
                    "host '{}' is a master without a peer (set 'peer' to the other master)",
                    h.name
                ));
            }
            if let Some(other) = seen_ips.insert(h.ip, &h.name) {
                return inv(format!(
                    "hosts '{other}' and '{}' have the same ip {}",
                    h.name, h.ip
                ));
            }
        }
        let mut role_ips = BTreeMap::new();
        for r in &self.roles {
            for hn in &r.hosts {
                if self.host(hn).is_none() {
                    return inv(format!(
                        "role '{}' names host '{hn}', which is not defined",
                        r.name
                    ));
                }
            }
            if r.hosts.is_empty() {
                return inv(format!("role '{}' has no hosts", r.name));
            }
            if r.ips.is_empty() {
                return inv(format!("role '{}' has no ips", r.name));
            }
            if r.mode == RoleMode::Exclusive && r.ips.len() != 1 {
                return inv(format!(
                    "exclusive role '{}' must have exactly one ip, not {}",
                    r.name,
                    r.ips.len()
                ));
            }
            if let Some(p) = &r.prefer {
                if r.mode != RoleMode::Exclusive {
                    return inv(format!(
                        "role '{}': prefer is only for exclusive roles",
                        r.name
                    ));
                }
                if !r.hosts.contains(p) {
                    return inv(format!(
                        "role '{}' prefers '{p}', which is not among its hosts",
                        r.name
                    ));
                }
            }
            for ip in &r.ips {
                if let Some(other) = role_ips.insert(*ip, &r.name) {
                    return inv(format!(
                        "ip {ip} belongs to roles '{other}' and '{}'",
                        r.name
                    ));
                }
                if let Some(h) = self.hosts.iter().find(|h| h.ip == *ip) {
                    return inv(format!(
                        "role ip {ip} of '{}' is the address of host '{}'",
                        r.name, h.name
                    ));
                }
            }
        }
        if let Some(amr) = self.role(&self.active_master_role) {
            if amr.mode != RoleMode::Exclusive {
                return inv(format!(
                    "active_master_role '{}' must be an exclusive role",
                    amr.name
                ));
            }
        } else if !self.roles.is_empty() {
            return inv(format!(
                "active_master_role '{}' is not a defined role",
                self.active_master_role
            ));
        }
        if let Some(t) = &self.this {
            if self.host(t).is_none() {
                return inv(format!("this '{t}' is not a defined host"));
            }
        }
        Ok(())
    }

    /// Hosts that may hold the active-master role.
    pub fn master_candidates(&self) -> Vec<&str> {
        self.role(&self.active_master_role)
            .map(|r| r.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Monitor-specific validation (MMM refuses to start with more than two hosts able to hold
    /// the active-master role).
    pub fn validate_for_monitor(&self) -> Result<(), ConfigError> {
        if !self.has_monitor {
            return Err(ConfigError::Invalid(
                "no <monitor> section: is this the monitor's config (mmm_mon.conf)?".into(),
            ));
        }
        let c = self.master_candidates();
        if c.len() > 2 {
            return Err(ConfigError::Invalid(format!(
                "more than two hosts can hold the active master role '{}': {}",
                self.active_master_role,
                c.join(", ")
            )));
        }
        if self.hosts.is_empty() {
            return Err(ConfigError::Invalid("no hosts defined".into()));
        }
        if self.monitor.kill_host_fences && self.monitor.kill_host_bin.is_none() {
            return Err(ConfigError::Invalid(
                "kill_host_fences is set but no kill_host_bin is: name the fencing program (it runs as `kill_host_bin HOST 1|0`; exit 0 means the host is fenced)".into(),
            ));
        }
        Ok(())
    }

    /// The addresses an agent accepts plaintext control calls from: `monitor_ips`, else the
    /// `<monitor>` ip when the agent's files have a `<monitor>` section.
    pub fn monitor_sources(&self) -> Vec<std::net::Ipv4Addr> {
        if !self.monitor_ips.is_empty() {
            self.monitor_ips.clone()
        } else if self.has_monitor {
            vec![self.monitor.ip]
        } else {
            vec![]
        }
    }

    /// Agent-specific validation: `this` must be set, and in plaintext mode the monitor's
    /// addresses must be known ([`Config::monitor_sources`]): nobody else may change the
    /// agent's host.
    pub fn validate_for_agent(&self) -> Result<&HostConfig, ConfigError> {
        let t = self.this.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "no 'this' directive: the agent's config must say which host it runs on".into(),
            )
        })?;
        let me = self
            .host(t)
            .ok_or_else(|| ConfigError::Invalid(format!("this '{t}' is not a defined host")))?;
        if !self.socket.ssl && self.monitor_sources().is_empty() {
            return Err(ConfigError::Invalid(
                "plaintext control (<socket> type plain) needs the monitor's addresses: set monitor_ips (e.g. in mmm_common.conf), or turn on TLS (mmm-monitor tls init)".into(),
            ));
        }
        Ok(me)
    }
}

/// `key value is outside start – end` when `value` is not in `range`.
fn outside<T: PartialOrd + std::fmt::Debug>(
    key: &str,
    value: &T,
    range: &std::ops::RangeInclusive<T>,
) -> Option<String> {
    (!range.contains(value)).then(|| {
        format!(
            "{key} {value:?} is outside {:?} – {:?}",
            range.start(),
            range.end()
        )
    })
}
