//! mmm monitor: MMM config, checks, the host state machine and role distribution (pure, in
//! [`core`]), the daemon that drives them ([`daemon`]), and the `mmm_control` CLI
//! ([`control`]).

pub mod checks;
pub mod control;
pub mod core;
pub mod daemon;
pub mod sanity;

use mmm_common::config::{CheckKind, Config, RoleMode};
use std::fmt::Write;

/// Default TCP port of the Monitor gRPC service (MMM's monitor port).
pub const DEFAULT_MONITOR_PORT: u16 = 9988;

/// The summary `mmm-monitor config check` prints.
pub fn summary(c: &Config) -> String {
    let mut s = String::from("OK: configuration is valid\n");
    let _ = writeln!(
        s,
        "monitor: {}:{} (status file {})",
        c.monitor.ip,
        c.monitor.port,
        c.monitor.status_path.display()
    );
    for h in &c.hosts {
        let _ = writeln!(
            s,
            "host {}: {} {}{} mysql :{} agent :{} interface {}",
            h.name,
            h.ip,
            h.mode,
            h.peer
                .as_deref()
                .map(|p| format!(" (peer {p})"))
                .unwrap_or_default(),
            h.mysql_port,
            h.agent_port,
            h.cluster_interface
        );
    }
    for r in &c.roles {
        let ips: Vec<String> = r.ips.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(
            s,
            "role {}: {} on {} ips {}{}{}",
            r.name,
            if r.mode == RoleMode::Exclusive {
                "exclusive"
            } else {
                "balanced"
            },
            r.hosts.join(","),
            ips.join(","),
            r.prefer
                .as_deref()
                .map(|p| format!(" prefer {p}"))
                .unwrap_or_default(),
            if r.name == c.active_master_role {
                " (active master role)"
            } else {
                ""
            }
        );
    }
    for k in CheckKind::ALL {
        let ch = c.check(k);
        let _ = writeln!(
            s,
            "check {}: every {:?}, trap {:?}, timeout {:?}{}",
            k.name(),
            ch.check_period,
            ch.trap_period,
            ch.timeout,
            if k == CheckKind::RepBacklog {
                format!(", max_backlog {} s", ch.max_backlog)
            } else {
                String::new()
            }
        );
    }
    let lease = if c.writer_lease.is_zero() {
        "off".to_string()
    } else if c.monitor.kill_host_fences {
        format!(
            "{:?} (a dead host's writer moves once kill_host_bin fenced it: kill_host_fences)",
            c.writer_lease
        )
    } else {
        format!(
            "{:?} (a dead host's writer moves {:?} after its peers lose it)",
            c.writer_lease,
            c.writer_lease + core::lease_margin(c.peer_ping_interval)
        )
    };
    let _ = writeln!(
        s,
        "peers: pinged every {:?}, lost after {} failed probes, {} neighbours each way; writer lease {lease}",
        c.peer_ping_interval, c.peer_ping_misses, c.peer_neighbours
    );
    let _ = writeln!(
        s,
        "semisync: {}; catchup_strict: {}, catchup_timeout {:?}",
        match (c.semisync, c.semisync_timeout) {
            (false, _) => "off".to_string(),
            (true, Some(t)) => format!("on, falls back after {t:?}"),
            (true, None) => "on, never falls back".to_string(),
        },
        if c.catchup_strict { "yes" } else { "no" },
        c.catchup_timeout
    );
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if c.socket.ssl {
        s += "control plane: mutual TLS (<socket> type ssl)\n";
    } else {
        s += "WARNING: the control plane is unauthenticated (<socket> type plain): anyone who reaches the monitor can command it, and agents trust it by address only (monitor_ips); turn on mutual TLS with `mmm-monitor tls init`\n";
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_of_the_seed_config() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seed");
        // The two files inlined and parsed from text: git does not keep their 600 mode, and a
        // password file readable by others is refused when read from disk.
        let common = std::fs::read_to_string(dir.join("mmm_common.conf")).unwrap();
        let mon = std::fs::read_to_string(dir.join("mmm_mon.conf")).unwrap();
        let text = common + &mon.replace("include mmm_common.conf", "");
        let c = mmm_common::config::Config::parse_str(&dir.join("mmm_mon.conf"), &text).unwrap();
        insta::assert_snapshot!(super::summary(&c));
        // With a fence the lease is no longer what a dead host's writer waits for.
        let fenced = text.replace(
            "<monitor>",
            "<monitor>\n kill_host_bin /usr/lib/mysql-mmm/fence\n kill_host_fences yes",
        );
        let c = mmm_common::config::Config::parse_str(&dir.join("mmm_mon.conf"), &fenced).unwrap();
        assert!(super::summary(&c).contains(
            "writer lease 2s (a dead host's writer moves once kill_host_bin fenced it: kill_host_fences)"
        ));
    }
}
