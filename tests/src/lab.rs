//! The lab: a whole mmm cluster on one machine, built from MMM configuration files.
//!
//! One network namespace per database host (interface named after its `cluster_interface`,
//! address from the config) on a private bridge; its own `mariadbd` with the seed's my.cnf
//! settings (server_id, log_bin, log_slave_updates, auto_increment on masters, GTID), the
//! seed's accounts plus `app`/`app` on database `app`; masters replicating from their peer and
//! slaves from the first master; an agent per host; the monitor in its own namespace; a
//! `client` namespace. Addresses must be in 198.18.0.0/15. Every path a config names is placed
//! under the lab's run directory. [`Lab::down`] removes everything by prefix, also after a
//! crash of `up`.

use crate::{
    mariadb::{Opts, Server},
    netns::{command_in, Host, Net},
};
use anyhow::{bail, Context, Result};
use mmm_common::config::{Config, HostMode};
use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod check;
pub mod etcd_tls;
mod fence;
pub use fence::FENCED_COMMON;
pub mod ha;
mod procs;
mod teardown;

pub use check::check_config;
pub use teardown::{existing_namespaces, sweep_dead};

/// Address of the client namespace.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

/// The binaries the lab runs.
#[derive(Clone, Debug)]
pub struct Bins {
    pub agent: PathBuf,
    pub monitor: PathBuf,
    pub control: PathBuf,
}

impl Bins {
    /// The workspace's debug binaries (built by `cargo build --workspace --bins`).
    pub fn workspace() -> Bins {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug");
        Bins {
            agent: dir.join("mmm-agent"),
            monitor: dir.join("mmm-monitor"),
            control: dir.join("mmm_control"),
        }
    }
}

/// A running lab.
pub struct Lab {
    pub prefix: String,
    pub run: PathBuf,
    pub cfg: Config,
    pub net: Net,
    pub servers: BTreeMap<String, Server>,
    pub bins: Bins,
    agents: BTreeMap<String, u32>,
    monitor: Option<u32>,
    /// How many monitors run (3 with etcd: `ha.rs`).
    pub monitors: usize,
    /// Monitors 2 and 3 by name (`monitor2`…).
    extra: BTreeMap<String, u32>,
}

/// The run directory of lab `prefix`.
pub fn run_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mmm-lab-{prefix}"))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// How the lab runs `host`'s server: server_id by position, masters with
/// auto_increment_increment 2 (or the number of masters) and offsets 1, 2, …
pub fn server_opts(prefix: &str, cfg: &Config, host: &str) -> Result<Opts> {
    let i = cfg
        .hosts
        .iter()
        .position(|h| h.name == host)
        .with_context(|| format!("no host '{host}' in the lab"))?;
    let h = &cfg.hosts[i];
    let masters: Vec<&str> = cfg
        .hosts
        .iter()
        .filter(|h| h.mode == HostMode::Master)
        .map(|h| h.name.as_str())
        .collect();
    let auto = masters
        .iter()
        .position(|m| *m == h.name)
        .map(|k| (2.max(masters.len() as u32), k as u32 + 1));
    Ok(Opts {
        server_id: i as u32 + 1,
        bind: h.ip,
        port: h.mysql_port,
        netns: Some(format!("{prefix}-{host}")),
        auto_increment: auto,
    })
}

/// Remembers a process of lab `prefix` so that `down` stops it (by pid) even after a crash.
pub fn record_pid(prefix: &str, pid: u32, what: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir(prefix).join("pids"))?;
    writeln!(f, "{pid} {what}")?;
    Ok(())
}

/// The configuration of a running lab (from its run directory).
pub fn running_config(prefix: &str) -> Result<Config> {
    let p = run_dir(prefix).join("monitor/mmm_mon.conf");
    Config::load(&p).with_context(|| {
        format!(
            "no lab with prefix '{prefix}' is up ({} unreadable)",
            p.display()
        )
    })
}

/// A handle on `host`'s server in a running lab (not owned: dropping it leaves the server).
pub fn lab_server(prefix: &str, host: &str) -> Result<Server> {
    let cfg = running_config(prefix)?;
    Ok(Server::existing(
        &run_dir(prefix).join(host).join("mysql"),
        server_opts(prefix, &cfg, host)?,
    ))
}

/// `mmm_control args…` against the monitor of a running lab.
/// With several monitors (etcd), the first one running: any monitor answers.
pub fn ctl_command(prefix: &str, bins: &Bins, args: &[String]) -> Result<Command> {
    ha::ctl_command_n(prefix, bins, ha::live_monitor(prefix), args)
}

/// How a lab's control plane runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// Mutual TLS with certificates from `mmm-monitor tls init`'s code (the default), unless
    /// the configuration already has a `<socket>` section.
    #[default]
    Tls,
    /// Plaintext, MMM-compatible (agents trust `monitor_ips`).
    Plain,
}

impl Lab {
    /// Builds the lab from `config_dir` over mutual TLS. On any failure everything made so far
    /// is removed.
    pub fn up(prefix: &str, config_dir: &Path, bins: Bins) -> Result<Lab> {
        Lab::up_with(prefix, config_dir, bins, Transport::Tls)
    }

    /// Builds the lab from `config_dir` with the control plane over `transport`.
    pub fn up_with(
        prefix: &str,
        config_dir: &Path,
        bins: Bins,
        transport: Transport,
    ) -> Result<Lab> {
        Lab::up_full(prefix, config_dir, bins, transport, 1)
    }

    /// Builds the lab with `monitors` monitors: 1 as MMM, or 3 on a three-member etcd
    /// cluster (`ha.rs`).
    pub fn up_full(
        prefix: &str,
        config_dir: &Path,
        bins: Bins,
        transport: Transport,
        monitors: usize,
    ) -> Result<Lab> {
        if !matches!(monitors, 1 | ha::MAX_MONITORS) {
            bail!(
                "a lab runs 1 or {} monitors, not {monitors}",
                ha::MAX_MONITORS
            );
        }
        let cfg = check_config(config_dir)?;
        for b in [&bins.agent, &bins.monitor, &bins.control] {
            if !b.is_file() {
                bail!(
                    "{} is missing: build the workspace first (cargo build --workspace --bins)",
                    b.display()
                );
            }
        }
        let run = run_dir(prefix);
        if run.exists() || existing_namespaces(prefix)?.next().is_some() {
            bail!("a lab with prefix '{prefix}' already exists: run `cargo xtask lab --prefix {prefix} down` first");
        }
        std::fs::create_dir_all(&run)?;
        // Whose lab this is: a lab whose owner died without tearing it down (SIGKILL) is
        // swept by the next `cargo xtask test` ([`sweep_dead`]); `detach` gives it up.
        std::fs::write(run.join("owner"), std::process::id().to_string())?;
        let net = match Net::with_prefix(prefix) {
            Ok(n) => n,
            Err(e) => {
                let _ = Lab::down(prefix);
                return Err(e);
            }
        };
        let mut lab = Lab {
            prefix: prefix.into(),
            run,
            cfg,
            net,
            servers: BTreeMap::new(),
            bins,
            agents: BTreeMap::new(),
            monitor: None,
            monitors: 1,
            extra: BTreeMap::new(),
        };
        match lab.build(config_dir, transport, monitors) {
            Ok(()) => Ok(lab),
            Err(e) => {
                drop(lab);
                let _ = Lab::down(prefix);
                Err(e)
            }
        }
    }

    /// Certificates for every party (`run/pki`), `<socket>` sections appended to the monitor's
    /// and every agent's config; the lab's configuration is read again.
    fn use_tls(&mut self) -> Result<()> {
        use std::io::Write;
        let pki = mmm_proto::pki::init(&self.cfg, &self.run.join("pki"))?;
        let append = |path: PathBuf, text: String| -> Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))
        };
        let mon = self.run.join("monitor/mmm_mon.conf");
        append(mon.clone(), pki.monitor_socket())?;
        for h in &self.cfg.hosts {
            let socket = pki
                .agent_socket(&h.name)
                .context("a host without a certificate")?;
            append(self.run.join(&h.name).join("mmm_agent.conf"), socket)?;
        }
        self.cfg = Config::load(&mon).context("the lab's configuration with TLS")?;
        Ok(())
    }

    fn pin_root(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/mmm/{}-{name}", self.prefix))
    }

    fn record_pid(&self, pid: u32, what: &str) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run.join("pids"))?;
        writeln!(f, "{pid} {what}")?;
        Ok(())
    }

    fn build(&mut self, config_dir: &Path, transport: Transport, monitors: usize) -> Result<()> {
        // Configs, with every path under the run directory.
        let mut common = std::fs::read_to_string(config_dir.join("mmm_common.conf"))?;
        if monitors > 1 {
            let first = self.cfg.monitor.ip;
            let ips: Vec<Ipv4Addr> = (1..=monitors).map(|n| ha::monitor_ip(first, n)).collect();
            common = ha::common_for(&common, &ips);
        }
        let mon = std::fs::read_to_string(config_dir.join("mmm_mon.conf"))?;
        let mondir = self.run.join("monitor");
        std::fs::create_dir_all(&mondir)?;
        write_private(&mondir.join("mmm_common.conf"), &common)?;
        let status = mondir.join("mmm_mond.status");
        let mon = mon
            .lines()
            .map(|l| match l.split_whitespace().next() {
                Some("status_path") => format!("    status_path {}", status.display()),
                Some("pid_path") => {
                    format!("    pid_path {}", mondir.join("mmm_mond.pid").display())
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        write_private(&mondir.join("mmm_mon.conf"), &(mon + "\n"))?;
        let hosts = self.cfg.hosts.clone();
        let mut host_ns = BTreeMap::new();
        for (i, h) in hosts.iter().enumerate() {
            let nh = self
                .net
                .add_host(&h.name, &h.cluster_interface, h.ip, 0x11 + i as u8)?;
            host_ns.insert(h.name.clone(), nh);
            let dir = self.run.join(&h.name);
            std::fs::create_dir_all(&dir)?;
            write_private(&dir.join("mmm_common.conf"), &common)?;
            write_private(
                &dir.join("mmm_agent.conf"),
                // Each agent its own pid file (the example's is one path for every host).
                &format!(
                    "include mmm_common.conf\nthis {0}\n<host {0}>\n    pid_path {1}\n</host>\n",
                    h.name,
                    dir.join("agent.pid").display()
                ),
            )?;
        }
        self.write_fence()?;
        if monitors > 1 {
            self.cfg = Config::load(&mondir.join("mmm_mon.conf"))
                .context("the lab's configuration for several monitors")?;
        }
        if transport == Transport::Tls && !self.cfg.socket.ssl {
            self.use_tls()?;
        }
        if monitors > 1 {
            self.build_ha(monitors)?;
        }
        self.net
            .add_host("monitor", "eth0", self.cfg.monitor.ip, 0x05)?;
        self.net.add_host("client", "eth0", CLIENT_IP, 0x50)?;
        // MariaDB per host, with the seed's settings.
        let masters: Vec<&str> = hosts
            .iter()
            .filter(|h| h.mode == HostMode::Master)
            .map(|h| h.name.as_str())
            .collect();
        for h in &hosts {
            let opts = server_opts(&self.prefix, &self.cfg, &h.name)?;
            let s = Server::start(&self.run.join(&h.name).join("mysql"), opts)?;
            if let Some(pid) = s.pid() {
                self.record_pid(pid, "mariadbd")?;
            }
            s.sql(&format!(
                "SET sql_log_bin=0;
                 CREATE USER IF NOT EXISTS '{mu}'@'%' IDENTIFIED BY '{mp}';
                 GRANT REPLICATION CLIENT, SLAVE MONITOR ON *.* TO '{mu}'@'%';
                 CREATE USER IF NOT EXISTS '{au}'@'%' IDENTIFIED BY '{ap}';
                 GRANT SUPER, REPLICATION CLIENT, PROCESS, RELOAD, REPLICATION SLAVE ADMIN, BINLOG MONITOR, READ_ONLY ADMIN, CONNECTION ADMIN, SLAVE MONITOR ON *.* TO '{au}'@'%';
                 CREATE USER IF NOT EXISTS '{ru}'@'%' IDENTIFIED BY '{rp}';
                 GRANT REPLICATION SLAVE ON *.* TO '{ru}'@'%';
                 CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app';
                 GRANT ALL ON app.* TO 'app'@'%';
                 SET GLOBAL read_only = 1;",
                mu = h.monitor_user, mp = h.monitor_password, au = h.agent_user, ap = h.agent_password,
                ru = h.replication_user, rp = h.replication_password,
            ))?;
            self.servers.insert(h.name.clone(), s);
        }
        // Replication: masters from their peer, slaves from the first master.
        let first = masters.first().map(|s| s.to_string());
        if let Some(f) = &first {
            self.servers[f].sql("CREATE DATABASE IF NOT EXISTS app")?;
        }
        for h in &hosts {
            let src = match (&h.peer, h.mode) {
                (Some(p), _) => Some(p.clone()),
                (None, HostMode::Slave) => first.clone(),
                _ => None,
            };
            if let Some(src) = src {
                self.servers[&h.name].replicate_from(
                    &self.servers[&src],
                    &h.replication_user,
                    &h.replication_password,
                )?;
            }
        }
        if let Some(f) = &first {
            for h in &hosts {
                if &h.name != f {
                    self.servers[&h.name].sync_with(&self.servers[f], Duration::from_secs(30))?;
                }
            }
        }
        // XDP pass programs on the bridge side, then agents.
        let br = self.net.bridge_ns().to_string();
        for h in &hosts {
            let nh: &Host = &host_ns[&h.name];
            let out = command_in(&br, &self.bins.agent)?
                .arg("--pin-root")
                .arg(self.pin_root("br"))
                .args(["peer-pass", "-i", &nh.peer])
                .output()?;
            if !out.status.success() {
                bail!(
                    "attaching the pass program to {}: {}",
                    nh.peer,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        for h in &hosts {
            self.start_agent(&h.name)?;
        }
        self.start_monitor()?;
        for n in 2..=monitors {
            self.start_monitor_n(n)?;
        }
        Ok(())
    }

    /// Runs `mmm_control args…` against the lab's monitor; (stdout and stderr, exit code).
    pub fn ctl(&self, args: &[&str]) -> Result<(String, i32)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = ctl_command(&self.prefix, &self.bins, &args)?.output()?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            out.status.code().unwrap_or(-1),
        ))
    }

    /// Polls `mmm_control show` until `cond` holds; returns the last output.
    pub fn wait_show(&self, timeout: Duration, cond: impl Fn(&str) -> bool) -> Result<String> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let (out, _) = self.ctl(&["show"])?;
            if cond(&out) {
                return Ok(out);
            }
            if std::time::Instant::now() > end {
                bail!("waited {timeout:?}; `show` is still:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL from the client namespace through `ip` as `app`/`app` on database `app`.
    pub fn client_sql(&self, ip: Ipv4Addr, q: &str) -> Result<String> {
        let out = command_in(&self.ns("client"), "mariadb")?
            .args([
                "--no-defaults",
                "-h",
                &ip.to_string(),
                "-uapp",
                "-papp",
                "--connect-timeout=2",
                "-N",
                "-B",
                "app",
                "-e",
                q,
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "SQL through {ip} failed: {q}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The default lab (examples/lab) up with every host set ONLINE and the roles placed
    /// (writer on db1, a reader on db2 and one on db3).
    pub fn up_online(prefix: &str) -> Result<Lab> {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
        Lab::up_online_with(prefix, &cfg)
    }

    /// [`Lab::up_online`] with the configuration in `config_dir` (hosts and roles as in
    /// examples/lab).
    pub fn up_online_with(prefix: &str, config_dir: &Path) -> Result<Lab> {
        Lab::up_online_as(prefix, config_dir, Transport::Tls)
    }

    /// [`Lab::up_online`] with the control plane in plaintext (MMM-compatible).
    pub fn up_online_plain(prefix: &str) -> Result<Lab> {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
        Lab::up_online_as(prefix, &cfg, Transport::Plain)
    }

    /// [`Lab::up_online_with`] over `transport`.
    pub fn up_online_as(prefix: &str, config_dir: &Path, transport: Transport) -> Result<Lab> {
        Lab::up_with(prefix, config_dir, Bins::workspace(), transport)?.online()
    }

    /// [`Lab::up_online`] with three monitors on a three-member etcd cluster (`ha.rs`).
    pub fn up_online_ha(prefix: &str) -> Result<Lab> {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
        Lab::up_full(
            prefix,
            &cfg,
            Bins::workspace(),
            Transport::Tls,
            ha::MAX_MONITORS,
        )?
        .online()
    }

    /// Every host set ONLINE and the roles placed (writer on db1, readers on db2 and db3).
    fn online(self) -> Result<Lab> {
        let lab = self;
        let names: Vec<String> = lab.cfg.hosts.iter().map(|h| h.name.clone()).collect();
        let bound = Duration::from_secs(30);
        lab.wait_show(bound, |s| {
            // …and every agent heard from: set_online needs a reachable agent.
            s.matches("AWAITING_RECOVERY").count() == names.len() && !s.contains("# Warning")
        })?;
        for h in &names {
            lab.set_online(h, bound)?;
        }
        lab.wait_show(bound, |s| {
            use crate::walkthrough::roles_of;
            roles_of(s, "db1").contains("writer")
                && roles_of(s, "db2").contains("reader")
                && roles_of(s, "db3").contains("reader")
        })?;
        Ok(lab)
    }

    /// `set_online host`, retried while refused (e.g. its agent not heard from yet) within
    /// `bound`; the last refusal is the error.
    pub fn set_online(&self, host: &str, bound: Duration) -> Result<String> {
        let end = std::time::Instant::now() + bound;
        loop {
            let (out, code) = self.ctl(&["set_online", host])?;
            if code == 0 {
                return Ok(out);
            }
            if std::time::Instant::now() > end {
                bail!("set_online {host}: {out}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The lab's example configuration with extra `<monitor>` lines (e.g. `mode passive`),
    /// written to a private directory that lives as long as the returned guard.
    pub fn example_with(monitor_extra: &str) -> Result<(tempfile::TempDir, PathBuf)> {
        Lab::example_tuned(monitor_extra, "")
    }

    /// The lab's example configuration with extra `<monitor>` lines and extra lines at the end
    /// of the common file (e.g. `peer_ping_interval 50ms`).
    pub fn example_tuned(
        monitor_extra: &str,
        common_extra: &str,
    ) -> Result<(tempfile::TempDir, PathBuf)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
        let g = tempdir()?;
        let common = std::fs::read_to_string(src.join("mmm_common.conf"))?;
        std::fs::write(
            g.path().join("mmm_common.conf"),
            format!("{common}\n{common_extra}\n"),
        )?;
        let mon = std::fs::read_to_string(src.join("mmm_mon.conf"))?
            .replace("</monitor>", &format!("    {monitor_extra}\n</monitor>"));
        std::fs::write(g.path().join("mmm_mon.conf"), mon)?;
        let dir = g.path().to_path_buf();
        Ok((g, dir))
    }

    /// The `seq` column of table `app.<table>` on `host` (the load's acknowledged ids).
    pub fn seqs(&self, host: &str, table: &str) -> Result<std::collections::BTreeSet<u64>> {
        Ok(self
            .sql(host, &format!("SELECT seq FROM app.{table}"))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Runs SQL on `host`'s server as root.
    pub fn sql(&self, host: &str, q: &str) -> Result<String> {
        self.servers.get(host).context("unknown host")?.sql(q)
    }

    /// The namespace of `host` (`client` and `monitor` included).
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }
}

/// A fresh private directory under the temp dir, removed when the returned value is dropped.
pub fn tempdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("mmm-cfg-").tempdir()
}
