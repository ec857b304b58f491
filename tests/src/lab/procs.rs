//! Starting and stopping the lab's agents and monitor: each in its host's namespace, its
//! output appended to a log in the run directory, its pid recorded for `Lab::down`.

use super::Lab;
use crate::netns::command_in;
use anyhow::{bail, Context, Result};
use std::{net::Ipv4Addr, time::Duration};

impl Lab {
    /// Starts (or restarts) the agent of `host`.
    pub fn start_agent(&mut self, host: &str) -> Result<u32> {
        let dir = self.run.join(host);
        let ns = format!("{}-{host}", self.prefix);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))?;
        let mut cmd = command_in(&ns, &self.bins.agent)?;
        cmd.arg("--pin-root")
            .arg(self.pin_root(host))
            .arg("serve")
            .arg("--config")
            .arg(dir.join("mmm_agent.conf"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("MMM_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log);
        let pid = self.net.spawn(cmd)?;
        self.record_pid(pid, "mmm-agent")?;
        self.agents.insert(host.into(), pid);
        let h = self.cfg.host(host).context("unknown host")?.clone();
        wait_port(&ns, h.ip, h.agent_port, Duration::from_secs(15)).with_context(|| {
            format!(
                "agent of {host} did not start; see {}",
                dir.join("agent.log").display()
            )
        })?;
        Ok(pid)
    }

    /// SIGKILLs the agent of `host` (the data plane keeps running: pinned).
    pub fn kill_agent(&mut self, host: &str) {
        if let Some(pid) = self.agents.remove(host) {
            self.net.kill(pid);
        }
    }

    /// Starts (or restarts) the monitor.
    pub fn start_monitor(&mut self) -> Result<u32> {
        let dir = self.run.join("monitor");
        let ns = format!("{}-monitor", self.prefix);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("monitor.log"))?;
        let mut cmd = command_in(&ns, &self.bins.monitor)?;
        cmd.arg("--config")
            .arg(dir.join("mmm_mon.conf"))
            .arg("serve")
            .env("MMM_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log);
        let pid = self.net.spawn(cmd)?;
        self.record_pid(pid, "mmm-monitor")?;
        self.monitor = Some(pid);
        wait_port(
            &ns,
            self.cfg.monitor.ip,
            self.cfg.monitor.port,
            Duration::from_secs(15),
        )
        .with_context(|| {
            format!(
                "monitor did not start; see {}",
                dir.join("monitor.log").display()
            )
        })?;
        Ok(pid)
    }

    /// SIGKILLs the monitor.
    pub fn kill_monitor(&mut self) {
        if let Some(pid) = self.monitor.take() {
            self.net.kill(pid);
        }
    }

    /// The monitor's log so far.
    pub fn monitor_log(&self) -> String {
        std::fs::read_to_string(self.run.join("monitor/monitor.log")).unwrap_or_default()
    }
}

/// Waits until `ip:port` accepts TCP connections from inside `ns`.
fn wait_port(ns: &str, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<()> {
    let ns = ns.to_string();
    let ok = crate::netns::in_ns_blocking(&ns, move || {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_millis(200))
                .is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    })?;
    if !ok {
        bail!("{ip}:{port} not reachable within {timeout:?}");
    }
    Ok(())
}
