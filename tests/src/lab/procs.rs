//! Starting and stopping the lab's agents and monitor: each in its host's namespace, its
//! output appended to a log in the run directory, its pid recorded for `Lab::down`.

use super::Lab;
use crate::netns::command_in;
use anyhow::{bail, Context, Result};
use std::{net::Ipv4Addr, path::Path, process::Command, time::Duration};

impl Lab {
    /// Starts (or restarts) the agent of `host`.
    pub fn start_agent(&mut self, host: &str) -> Result<u32> {
        let dir = self.run.join(host);
        let ns = format!("{}-{host}", self.prefix);
        let mut cmd = command_in(&ns, &self.bins.agent)?;
        cmd.arg("--pin-root")
            .arg(self.pin_root(host))
            .arg("serve")
            .arg("--config")
            .arg(dir.join("mmm_agent.conf"))
            .arg("--state-dir")
            .arg(dir.join("state"));
        let log = dir.join("agent.log");
        let pid = self.spawn_logged(cmd, "mmm-agent", &log)?;
        self.agents.insert(host.into(), pid);
        let h = self.cfg.host(host).context("unknown host")?.clone();
        wait_started(&ns, h.ip, h.agent_port, &format!("agent of {host}"), &log)?;
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
        let mut cmd = command_in(&ns, &self.bins.monitor)?;
        cmd.arg("--config")
            .arg(dir.join("mmm_mon.conf"))
            .arg("serve");
        let log = dir.join("monitor.log");
        let pid = self.spawn_logged(cmd, "mmm-monitor", &log)?;
        self.monitor = Some(pid);
        let (ip, port) = (self.cfg.monitor.ip, self.cfg.monitor.port);
        wait_started(&ns, ip, port, "monitor", &log)?;
        Ok(pid)
    }

    /// Spawns a daemon at log level info, its stdout and stderr appended to `log`, and
    /// records its pid as `what` (for `Lab::down`). Its systemd notifications go to
    /// `notify.sock` next to the log (`$NOTIFY_SOCKET`; nobody listens unless a test binds it).
    pub(super) fn spawn_logged(&mut self, mut cmd: Command, what: &str, log: &Path) -> Result<u32> {
        if let Some(dir) = log.parent() {
            cmd.env("NOTIFY_SOCKET", dir.join("notify.sock"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.env("MMM_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log);
        let pid = self.net.spawn(cmd)?;
        self.record_pid(pid, what)?;
        Ok(pid)
    }

    /// SIGKILLs the monitor (monitor 1 with etcd).
    pub fn kill_monitor(&mut self) {
        if let Some(pid) = self.monitor.take() {
            self.net.kill(pid);
        }
    }

    /// The monitor's log so far.
    pub fn monitor_log(&self) -> String {
        std::fs::read_to_string(self.run.join("monitor/monitor.log")).unwrap_or_default()
    }

    /// Copies the monitor's and every agent's log to `target/<kind>-logs/<name>-<unix
    /// seconds>/` (a failed fault trial, a benchmark trial beyond its target) and says where.
    pub fn keep_logs(&self, kind: &str, name: &str) {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../target/{kind}-logs"))
            .join(format!("{name}-{unix}"));
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let mut logs = vec![(
            "monitor.log".to_string(),
            self.run.join("monitor/monitor.log"),
        )];
        for h in &self.cfg.hosts {
            let from = self.run.join(&h.name).join("agent.log");
            logs.push((format!("{}-agent.log", h.name), from));
        }
        for (file, from) in logs {
            let _ = std::fs::copy(from, dir.join(file));
        }
        eprintln!("{name}: logs kept in {}", dir.display());
    }
}

/// Waits (15 s at most) until daemon `who` listens on `ip:port` in `ns`; else an error
/// pointing at its log.
pub(super) fn wait_started(ns: &str, ip: Ipv4Addr, port: u16, who: &str, log: &Path) -> Result<()> {
    wait_port(ns, ip, port, Duration::from_secs(15))
        .with_context(|| format!("{who} did not start; see {}", log.display()))
}

/// Waits until `ip:port` accepts TCP connections from inside `ns`.
pub(super) fn wait_port(ns: &str, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<()> {
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
