//! Monitor high availability in the lab (`lab up --monitors 3`): a three-member etcd cluster
//! (Debian's `etcd`, one member per namespace `<prefix>-etcdN` at 198.18.0.2N) and three
//! monitors (`<prefix>-monitor`, `-monitor2`, `-monitor3` at the `<monitor>` ip and the next
//! two), each with an `<etcd>` section naming it `monN`; `monitor_ips` lists all three so that
//! the agents take calls from each, and one monitor certificate names them all. Members and
//! monitors can be killed, started again, and monitors cut off (their link down) and healed;
//! the free functions work on a lab another process left running (`cargo xtask lab`).

use super::{etcd_tls, run_dir, write_private, Bins, Lab};
use crate::netns::command_in;
use anyhow::{bail, Context, Result};
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// The etcd members' client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// The most monitors (and etcd members) a lab runs.
pub const MAX_MONITORS: usize = 3;

/// Address of etcd member `n` (1-based): 198.18.0.2n.
pub fn etcd_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 20 + n as u8)
}

/// Address of monitor `n` (1-based): the `<monitor>` ip, then the next addresses.
pub fn monitor_ip(first: Ipv4Addr, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(first) + n as u32 - 1)
}

/// The host name (namespace suffix and run directory) of monitor `n`.
pub fn monitor_name(n: usize) -> String {
    match n {
        1 => "monitor".into(),
        n => format!("monitor{n}"),
    }
}

/// The run directory of monitor `n` of lab `prefix`.
pub fn monitor_dir(prefix: &str, n: usize) -> PathBuf {
    run_dir(prefix).join(monitor_name(n))
}

/// How many monitors lab `prefix` runs (1 without etcd).
pub fn monitors_of(prefix: &str) -> usize {
    (2..=MAX_MONITORS)
        .filter(|n| monitor_dir(prefix, *n).exists())
        .max()
        .unwrap_or(1)
}

/// `mmm_common.conf` with `monitor_ips` naming every monitor.
pub(super) fn common_for(common: &str, ips: &[Ipv4Addr]) -> String {
    let line = format!(
        "monitor_ips {}",
        ips.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut out: Vec<String> = common
        .lines()
        .filter(|l| l.split_whitespace().next() != Some("monitor_ips"))
        .map(str::to_string)
        .collect();
    out.push(line);
    out.join("\n") + "\n"
}

/// The `<etcd>` section of monitor 1 (the others get theirs by [`monitor_conf`]); `tls`:
/// the lines of [`etcd_tls::section_lines`].
pub(super) fn etcd_section(prefix: &str, members: usize, tls: &str) -> String {
    let eps: Vec<String> = (1..=members)
        .map(|n| format!("{}:{ETCD_CLIENT_PORT}", etcd_ip(n)))
        .collect();
    format!(
        "\n<etcd>\n    endpoints {}\n    prefix /mmm/{prefix}\n    name mon1\n{tls}</etcd>\n",
        eps.join(", ")
    )
}

/// Monitor `n`'s config from monitor 1's: its address, name and paths.
pub(super) fn monitor_conf(mon1: &str, dir1: &Path, dir: &Path, ip: Ipv4Addr, n: usize) -> String {
    mon1.lines()
        .map(|l| match l.split_whitespace().next() {
            Some("ip") => format!("    ip {ip}"),
            Some("name") => format!("    name mon{n}"),
            _ => l.replace(&dir1.display().to_string(), &dir.display().to_string()),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The command that runs etcd member `n` of a lab with `members` members.
fn etcd_command(prefix: &str, n: usize, members: usize) -> Result<(Command, PathBuf)> {
    let dir = run_dir(prefix).join(format!("etcd{n}"));
    std::fs::create_dir_all(&dir)?;
    let ip = etcd_ip(n);
    let tls = etcd_tls::enabled(prefix);
    let scheme = if tls { "https" } else { "http" };
    let cluster: Vec<String> = (1..=members)
        .map(|m| format!("etcd{m}={scheme}://{}:2380", etcd_ip(m)))
        .collect();
    let mut c = command_in(&format!("{prefix}-etcd{n}"), "etcd")?;
    if tls {
        // Mutual TLS on both ports: clients and peers must present a certificate of etcd's CA.
        let ca = etcd_tls::ca_file(prefix);
        let (cert, key) = etcd_tls::member_files(&etcd_tls::pki_dir(prefix), n);
        for (flag, file) in [
            ("--cert-file", &cert),
            ("--key-file", &key),
            ("--trusted-ca-file", &ca),
            ("--peer-cert-file", &cert),
            ("--peer-key-file", &key),
            ("--peer-trusted-ca-file", &ca),
        ] {
            c.arg(flag).arg(file);
        }
        c.args(["--client-cert-auth", "--peer-client-cert-auth"]);
    }
    c.args([
        "--name",
        &format!("etcd{n}"),
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--listen-client-urls",
        &format!("{scheme}://{ip}:{ETCD_CLIENT_PORT}"),
        "--advertise-client-urls",
        &format!("{scheme}://{ip}:{ETCD_CLIENT_PORT}"),
        "--listen-peer-urls",
        &format!("{scheme}://{ip}:2380"),
        "--initial-advertise-peer-urls",
        &format!("{scheme}://{ip}:2380"),
        "--initial-cluster",
        &cluster.join(","),
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        &format!("mmm-lab-{prefix}"),
        "--logger",
        "zap",
        "--log-level",
        "warn",
    ]);
    Ok((c, dir.join("etcd.log")))
}

/// The command that runs monitor `n`.
fn monitor_command(prefix: &str, bins: &Bins, n: usize) -> Result<(Command, PathBuf)> {
    let dir = monitor_dir(prefix, n);
    let mut c = command_in(&format!("{prefix}-{}", monitor_name(n)), &bins.monitor)?;
    c.arg("--config").arg(dir.join("mmm_mon.conf")).arg("serve");
    Ok((c, dir.join("monitor.log")))
}

/// The pid in `file` if it still runs `comm` with `needle` on its command line.
fn live_pid(file: &Path, comm: &str, needle: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (c.trim() == comm && String::from_utf8_lossy(&line).contains(needle)).then_some(pid)
}

fn etcd_pidfile(prefix: &str, n: usize) -> PathBuf {
    run_dir(prefix).join(format!("etcd{n}/pid"))
}

fn monitor_pidfile(prefix: &str, n: usize) -> PathBuf {
    monitor_dir(prefix, n).join("mmm_mond.pid")
}

/// The pid of monitor `n` of lab `prefix`, while it runs.
fn monitor_pid(prefix: &str, n: usize) -> Option<i32> {
    let conf = monitor_dir(prefix, n).join("mmm_mon.conf");
    live_pid(
        &monitor_pidfile(prefix, n),
        "mmm-monitor",
        &conf.display().to_string(),
    )
}

/// The pid of etcd member `n` of lab `prefix`, while it runs.
fn etcd_pid(prefix: &str, n: usize) -> Option<i32> {
    let data = run_dir(prefix).join(format!("etcd{n}/data"));
    live_pid(
        &etcd_pidfile(prefix, n),
        "etcd",
        &data.display().to_string(),
    )
}

/// SIGKILLs `pid` (a process the lab started, found by [`live_pid`]); false: none.
fn sigkill(pid: Option<i32>) -> bool {
    let Some(pid) = pid else { return false };
    // SAFETY: a process the lab started, checked by name and command line.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    true
}

/// Whether monitor `n` of lab `prefix` runs.
pub fn monitor_alive(prefix: &str, n: usize) -> bool {
    monitor_pid(prefix, n).is_some()
}

/// Kills monitor `n` of a running lab (SIGKILL).
pub fn kill_monitor(prefix: &str, n: usize) -> bool {
    sigkill(monitor_pid(prefix, n))
}

/// Kills etcd member `n` of a running lab (SIGKILL).
pub fn kill_etcd(prefix: &str, n: usize) -> bool {
    sigkill(etcd_pid(prefix, n))
}

/// Spawns `cmd` for a lab another process owns: its output appended to `log`, its pid
/// recorded (for `down`) and in `pidfile` when given; it outlives this process.
fn spawn_detached(
    prefix: &str,
    mut cmd: Command,
    what: &str,
    log: &Path,
    pidfile: Option<&Path>,
) -> Result<u32> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    cmd.env("MMM_LOG", "info").stdout(f.try_clone()?).stderr(f);
    let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    super::record_pid(prefix, pid, what)?;
    if let Some(p) = pidfile {
        std::fs::write(p, pid.to_string())?;
    }
    Ok(pid)
}

/// Starts etcd member `n` of a running lab again.
pub fn start_etcd(prefix: &str, n: usize) -> Result<u32> {
    let (c, log) = etcd_command(prefix, n, MAX_MONITORS)?;
    spawn_detached(prefix, c, "etcd", &log, Some(&etcd_pidfile(prefix, n)))
}

/// Starts monitor `n` of a running lab again.
pub fn start_monitor(prefix: &str, bins: &Bins, n: usize) -> Result<u32> {
    let (c, log) = monitor_command(prefix, bins, n)?;
    spawn_detached(prefix, c, "mmm-monitor", &log, None)
}

/// Cuts monitor `n` off (its namespace's link down) or heals it.
pub fn set_monitor_link(prefix: &str, n: usize, up: bool) -> Result<()> {
    let ns = format!("{prefix}-{}", monitor_name(n));
    let st = Command::new("ip")
        .args([
            "-n",
            &ns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ])
        .status()?;
    if !st.success() {
        bail!("ip -n {ns} link set eth0: {st}");
    }
    Ok(())
}

/// The monitor `mmm_control` should talk to: the first one running (monitor 1 if none).
pub fn live_monitor(prefix: &str) -> usize {
    (1..=monitors_of(prefix))
        .find(|n| monitor_alive(prefix, *n))
        .unwrap_or(1)
}

impl Lab {
    /// Makes the etcd members' and the extra monitors' namespaces, configs and etcd itself
    /// (monitor 1's config is in place, TLS included).
    pub(super) fn build_ha(&mut self, monitors: usize) -> Result<()> {
        let dir1 = self.run.join("monitor");
        let dirs: Vec<PathBuf> = (1..=monitors)
            .map(|n| self.run.join(monitor_name(n)))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d)?;
        }
        // etcd over mutual TLS when the control plane is (the lab's default).
        let tls = if self.cfg.socket.ssl {
            let ips: Vec<Ipv4Addr> = (1..=monitors).map(etcd_ip).collect();
            etcd_tls::make(&etcd_tls::pki_dir(&self.prefix), &ips, &dirs)?;
            etcd_tls::section_lines(&self.prefix, &dir1)
        } else {
            String::new()
        };
        let mon1 = std::fs::read_to_string(dir1.join("mmm_mon.conf"))?
            + &etcd_section(&self.prefix, monitors, &tls);
        write_private(&dir1.join("mmm_mon.conf"), &mon1)?;
        let common = std::fs::read_to_string(dir1.join("mmm_common.conf"))?;
        for (n, dir) in dirs.iter().enumerate().skip(1) {
            let n = n + 1;
            write_private(&dir.join("mmm_common.conf"), &common)?;
            let ip = monitor_ip(self.cfg.monitor.ip, n);
            write_private(
                &dir.join("mmm_mon.conf"),
                &monitor_conf(&mon1, &dir1, dir, ip, n),
            )?;
            self.net
                .add_host(&monitor_name(n), "eth0", ip, 0x05 + n as u8)?;
        }
        for n in 1..=monitors {
            self.net
                .add_host(&format!("etcd{n}"), "eth0", etcd_ip(n), 0x20 + n as u8)?;
        }
        for n in 1..=monitors {
            let (c, log) = etcd_command(&self.prefix, n, monitors)?;
            let pid = self.spawn_logged(c, "etcd", &log)?;
            std::fs::write(etcd_pidfile(&self.prefix, n), pid.to_string())?;
        }
        for n in 1..=monitors {
            super::procs::wait_port(
                &format!("{}-etcd{n}", self.prefix),
                etcd_ip(n),
                ETCD_CLIENT_PORT,
                Duration::from_secs(20),
            )
            .with_context(|| format!("etcd member {n} did not start; see its etcd.log"))?;
        }
        self.cfg = mmm_common::config::Config::load(&dir1.join("mmm_mon.conf"))
            .context("the lab's configuration with <etcd>")?;
        self.monitors = monitors;
        Ok(())
    }

    /// Starts monitor `n` (1: [`Lab::start_monitor`]).
    pub fn start_monitor_n(&mut self, n: usize) -> Result<u32> {
        if n == 1 {
            return self.start_monitor();
        }
        let (c, log) = monitor_command(&self.prefix, &self.bins, n)?;
        let pid = self.spawn_logged(c, "mmm-monitor", &log)?;
        self.extra.insert(monitor_name(n), pid);
        let ns = format!("{}-{}", self.prefix, monitor_name(n));
        let ip = monitor_ip(self.cfg.monitor.ip, n);
        super::procs::wait_started(&ns, ip, self.cfg.monitor.port, &monitor_name(n), &log)?;
        Ok(pid)
    }

    /// SIGKILLs monitor `n`.
    pub fn kill_monitor_n(&mut self, n: usize) {
        if n == 1 {
            return self.kill_monitor();
        }
        if let Some(pid) = self.extra.remove(&monitor_name(n)) {
            self.net.kill(pid);
        }
    }

    /// The log of monitor `n` so far.
    pub fn monitor_log_n(&self, n: usize) -> String {
        std::fs::read_to_string(monitor_dir(&self.prefix, n).join("monitor.log"))
            .unwrap_or_default()
    }

    /// SIGKILLs etcd member `n` (started by this lab).
    pub fn kill_etcd(&mut self, n: usize) {
        kill_etcd(&self.prefix, n);
    }

    /// Starts etcd member `n` again.
    pub fn start_etcd(&mut self, n: usize) -> Result<u32> {
        let (c, log) = etcd_command(&self.prefix, n, self.monitors)?;
        let pid = self.spawn_logged(c, "etcd", &log)?;
        std::fs::write(etcd_pidfile(&self.prefix, n), pid.to_string())?;
        Ok(pid)
    }

    /// The monitor that leads, by `show` against monitor `ask` (`# Monitor leader: monN`).
    pub fn leader_via(&self, ask: usize) -> Result<Option<usize>> {
        let out = ctl_output(&self.prefix, &self.bins, ask, &["show".into()])?;
        Ok(parse_leader(&out))
    }
}

/// `mmm_control args…` against monitor `n`; its stdout and stderr.
pub fn ctl_output(prefix: &str, bins: &Bins, n: usize, args: &[String]) -> Result<String> {
    let out = ctl_command_n(prefix, bins, n, args)?.output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// `mmm_control args…` against monitor `n` of lab `prefix`.
pub fn ctl_command_n(prefix: &str, bins: &Bins, n: usize, args: &[String]) -> Result<Command> {
    let mut c = command_in(&format!("{prefix}-{}", monitor_name(n)), &bins.control)?;
    c.arg("--config")
        .arg(monitor_dir(prefix, n).join("mmm_mon.conf"))
        .args(args);
    Ok(c)
}

/// The leading monitor's number from `show` (`# Monitor leader: monN (…)`).
pub fn parse_leader(show: &str) -> Option<usize> {
    show.lines()
        .find_map(|l| l.strip_prefix("# Monitor leader: mon"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_for_three_monitors() {
        let c = common_for(
            "a 1\nmonitor_ips 198.18.0.5\n",
            &[
                monitor_ip(Ipv4Addr::new(198, 18, 0, 5), 1),
                monitor_ip(Ipv4Addr::new(198, 18, 0, 5), 3),
            ],
        );
        assert_eq!(c, "a 1\nmonitor_ips 198.18.0.5, 198.18.0.7\n");
        let s = etcd_section("t1", 3, "");
        assert!(
            s.contains("endpoints 198.18.0.21:2379, 198.18.0.22:2379, 198.18.0.23:2379"),
            "{s}"
        );
        let m = monitor_conf(
            &format!("<monitor>\n    ip 198.18.0.5\n    status_path /r/monitor/s\n</monitor>{s}"),
            Path::new("/r/monitor"),
            Path::new("/r/monitor2"),
            Ipv4Addr::new(198, 18, 0, 6),
            2,
        );
        assert!(
            m.contains("    ip 198.18.0.6\n    status_path /r/monitor2/s\n")
                && m.contains("name mon2"),
            "{m}"
        );
        // Each monitor presents its own etcd client certificate.
        let tls = etcd_section("t1", 1, "    cert_file /r/monitor/etcd-client.crt\n");
        let m = monitor_conf(
            &tls,
            Path::new("/r/monitor"),
            Path::new("/r/monitor3"),
            Ipv4Addr::new(198, 18, 0, 7),
            3,
        );
        assert!(
            m.contains("    cert_file /r/monitor3/etcd-client.crt\n</etcd>"),
            "{m}"
        );
        assert_eq!(
            parse_leader("# Monitor leader: mon2 (198.18.0.6)\n  db1"),
            Some(2)
        );
        assert_eq!(parse_leader("# Warning: no monitor leads"), None);
    }
}
