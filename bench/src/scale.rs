//! `cargo xtask bench scale` (issue 18 item 4): one real monitor (`mmm-monitor serve`, release
//! build) watching 16, 64 and 256 hosts at its default 1 s checks. The checks are real: two
//! MariaDB servers in master-master replication, each in a namespace of its own, answer for
//! all the hosts — db1 and db2 (the masters) and half of the slaves each, as extra addresses
//! of their namespace — so every ping, login and replica-status query is real. The agents are
//! [`crate::scale_agent`] stubs served in the same namespaces. Per size: the monitor's CPU
//! (cores, over 20 s once every host is ONLINE), its memory (resident, and the peak), and the
//! decision latency of a writer failover: the writer's address (db1's or db2's, wherever the
//! monitor placed the role) disappears, the stubs of the hosts that probe it report it lost
//! at once, and the time runs until the other master's stub receives the table making it the
//! writer (the writer lease is off: the monitor's own decision only).

use crate::{
    scale_agent::{Served, Stub},
    stats::Table,
};
use anyhow::{bail, Context, Result};
use mmm_common::config::Config;
use mmm_proto::v1::agent_server::AgentServer;
use mmm_tests::{
    mariadb::{seed_accounts, Opts, Server},
    netns::{block_on_in, command_in},
    Net,
};
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

/// The cluster sizes measured.
pub const SIZES: [usize; 3] = [16, 64, 256];

const MON: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 5);
/// The two servers' own addresses (their namespaces' /24).
const SERVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 21), Ipv4Addr::new(198, 18, 0, 22)];
const AGENT_PORT: u16 = 9989;

/// Host `i`'s (0-based) address: db1 and db2 198.18.0.11–12, slaves 198.19.x.y.
fn host_ip(i: usize) -> Ipv4Addr {
    match i {
        0 | 1 => Ipv4Addr::new(198, 18, 0, 11 + i as u8),
        i => Ipv4Addr::new(198, 19, 1 + (i / 200) as u8, 1 + (i % 200) as u8),
    }
}

/// The server (0 or 1) answering for host `i`.
fn server_of(i: usize) -> usize {
    i % 2
}

/// The monitor's configuration for `n` hosts (no TLS: the stubs serve plaintext).
fn config_text(n: usize, dir: &Path) -> String {
    let mut t = format!(
        "active_master_role writer\nwriter_lease 0\n<host default>\n cluster_interface eth0\n replication_user repl\n replication_password repl\n agent_user mmm_agent\n agent_password mmm_agent\n monitor_user mmm_monitor\n monitor_password mmm_monitor\n</host>\n<monitor>\n ip {MON}\n pid_path {0}/mon.pid\n status_path {0}/mon.status\n ping_ips {1}, {2}\n auto_set_online 1\n</monitor>\n",
        dir.display(),
        SERVERS[0],
        SERVERS[1]
    );
    for i in 0..n {
        let mode = match i {
            0 => "master\n peer db2".to_string(),
            1 => "master\n peer db1".to_string(),
            _ => "slave".to_string(),
        };
        t += &format!(
            "<host db{}>\n ip {}\n mode {mode}\n</host>\n",
            i + 1,
            host_ip(i)
        );
    }
    t += "<role writer>\n hosts db1, db2\n ips 198.18.0.100\n mode exclusive\n</role>\n";
    t
}

/// What one size measured.
struct Measure {
    cores: f64,
    rss_mb: f64,
    peak_mb: f64,
    decision_ms: f64,
}

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| -> Result<f64> {
        f.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .context("an unreadable /proc stat")
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// `VmRSS` and `VmHWM` of `pid`, MB.
fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> Result<f64> {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no {key} in /proc/{pid}/status"))
    };
    Ok((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// How many hosts the monitor's status file says are ONLINE.
fn online(status: &Path) -> usize {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split('|').nth(1) == Some("ONLINE"))
        .count()
}

/// Builds the release monitor (the lab's debug build would measure the debug build).
fn release_monitor() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = std::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "mmm-monitor",
            "--bin",
            "mmm-monitor",
        ])
        .status()?;
    if !st.success() {
        bail!("building the release monitor failed");
    }
    Ok(root.join("target/release/mmm-monitor"))
}

/// Serves `stubs` (host index, stub) in namespace `ns` until `stop` fires.
fn serve(ns: String, stubs: Vec<(usize, Arc<Stub>)>, stop: tokio::sync::watch::Receiver<bool>) {
    std::thread::spawn(move || {
        let _ = block_on_in(&ns, move || async move {
            let mut tasks = Vec::new();
            for (i, s) in stubs {
                let mut stop = stop.clone();
                let addr = std::net::SocketAddr::from((host_ip(i), AGENT_PORT));
                tasks.push(tokio::spawn(
                    tonic::transport::Server::builder()
                        .add_service(AgentServer::new(Served(s)))
                        .serve_with_shutdown(addr, async move {
                            let _ = stop.wait_for(|s| *s).await;
                        }),
                ));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    });
}

/// One size: `n` hosts.
fn one(n: usize, monitor: &Path) -> Result<Measure> {
    let mut net = Net::new(&format!("sc{n}"))?;
    let mon_ns = net.add_host("mon", "eth0", MON, 0x05)?.ns;
    // The slaves' 198.19.0.0/16 is on the same segment.
    net.exec(
        &mon_ns,
        "ip",
        &["route", "add", "198.19.0.0/16", "dev", "eth0"],
    )?;
    let dir = tempfile::tempdir()?;
    let mut servers = Vec::new();
    let mut nss = Vec::new();
    for (k, ip) in SERVERS.iter().enumerate() {
        let ns = net
            .add_host(&format!("s{k}"), "eth0", *ip, 0x21 + k as u8)?
            .ns;
        net.exec(&ns, "ip", &["route", "add", "198.19.0.0/16", "dev", "eth0"])?;
        let s = Server::start(
            &dir.path().join(format!("s{k}")),
            Opts {
                server_id: 1 + k as u32,
                bind: *ip,
                port: 3306,
                netns: Some(ns.clone()),
                auto_increment: None,
            },
        )?;
        seed_accounts(&s)?;
        s.sql("SET GLOBAL max_connections = 2000")?;
        servers.push(s);
        nss.push(ns);
    }
    // Every host's address on its server's namespace (ip -batch: one process per server).
    for (k, ns) in nss.iter().enumerate() {
        let batch: String = (0..n)
            .filter(|i| server_of(*i) == k)
            .map(|i| format!("addr add {}/32 dev eth0\n", host_ip(i)))
            .collect();
        let file = dir.path().join(format!("addrs{k}"));
        std::fs::write(&file, batch)?;
        net.exec(ns, "ip", &["-batch", &file.display().to_string()])?;
    }
    // Master-master through db1's and db2's addresses (the monitor's start-up check reads
    // each master's source and expects its peer).
    for (k, peer) in [(0, host_ip(1)), (1, host_ip(0))] {
        servers[k].sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='{peer}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;"
        ))?;
    }
    let conf = dir.path().join("mmm_mon.conf");
    std::fs::write(&conf, config_text(n, dir.path()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600))?;
    let cfg = Arc::new(Config::load(&conf).context("the benchmark's configuration")?);
    let stubs: Vec<Arc<Stub>> = cfg
        .hosts
        .iter()
        .map(|h| Stub::new(&h.name, cfg.clone()))
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for (k, ns) in nss.iter().enumerate() {
        let mine = (0..n)
            .filter(|i| server_of(*i) == k)
            .map(|i| (i, stubs[i].clone()))
            .collect();
        serve(ns.clone(), mine, stop_rx.clone());
    }
    let log = std::fs::File::create(dir.path().join("monitor.log"))?;
    let mut cmd = command_in(&mon_ns, monitor)?;
    cmd.arg("--config")
        .arg(&conf)
        .arg("serve")
        .stdout(log.try_clone()?)
        .stderr(log);
    let pid = net.spawn(cmd)?;
    let status = dir.path().join("mon.status");
    let r = measure(n, pid, &status, &net, &nss, &cfg, &stubs);
    let _ = stop_tx.send(true);
    if r.is_err() {
        let log = std::fs::read_to_string(dir.path().join("monitor.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        eprintln!(
            "  monitor log (last lines, newest first):\n{}",
            tail.join("\n")
        );
    }
    drop(servers);
    drop(net);
    r
}

/// Waits for every host ONLINE, samples CPU and memory, then fails the writer over.
fn measure(
    n: usize,
    pid: u32,
    status: &Path,
    net: &Net,
    nss: &[String],
    cfg: &Config,
    stubs: &[Arc<Stub>],
) -> Result<Measure> {
    let up = Net::wait_for(Duration::from_secs(120), || online(status) == n);
    if !up {
        bail!("{} of {n} hosts ONLINE after 120 s", online(status));
    }
    std::thread::sleep(Duration::from_secs(5));
    let (c0, t0) = (cpu_seconds(pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let cores = (cpu_seconds(pid)? - c0) / t0.elapsed().as_secs_f64();
    let (rss_mb, peak_mb) = memory_mb(pid)?;
    // The writer (db1 or db2, as the monitor placed it) fails: its address goes, and the
    // hosts probing it say so at once.
    let w = (0..2)
        .find(|i| stubs[*i].is_writer())
        .context("neither master holds the writer role")?;
    let (name, other) = (cfg.hosts[w].name.clone(), &stubs[1 - w]);
    let t = Instant::now();
    net.exec(
        &nss[server_of(w)],
        "ip",
        &["addr", "del", &format!("{}/32", host_ip(w)), "dev", "eth0"],
    )?;
    for p in cfg.peers_of(&name) {
        if let Some(i) = cfg.hosts.iter().position(|h| h.name == p.name) {
            stubs[i].lose(std::slice::from_ref(&name));
        }
    }
    let became = || {
        other
            .became_writer
            .lock()
            .ok()
            .and_then(|w| *w)
            .filter(|at| *at > t)
    };
    if !Net::wait_for(Duration::from_secs(30), || became().is_some()) {
        bail!("the other master did not become the writer within 30 s");
    }
    let decision_ms = became().map_or(0.0, |at| (at - t).as_secs_f64() * 1000.0);
    Ok(Measure {
        cores,
        rss_mb,
        peak_mb,
        decision_ms,
    })
}

/// The most trials per size (each a fresh monitor, servers and stubs, about a minute at 256
/// hosts).
pub const MAX_TRIALS: u64 = 5;

/// Measures each of `sizes` (2 to 256 hosts), `trials` times each (at most [`MAX_TRIALS`]).
pub fn run(sizes: &[usize], trials: u64) -> Result<Table> {
    if let Some(bad) = sizes.iter().find(|n| !(2..=256).contains(*n)) {
        bail!("--hosts {bad}: a size from 2 to 256");
    }
    let trials = trials.clamp(1, MAX_TRIALS);
    let monitor = release_monitor()?;
    let mut t = Table::new(
        &format!("scale: one monitor, 1 s checks, real MariaDB checks, stub agents ({trials} trials per size)"),
        &[
            "hosts",
            "monitor CPU (cores, median)",
            "memory (MB, resident / peak, largest)",
            "failover decision (ms, median / max)",
            "growth from the first size (CPU, decision)",
        ],
    );
    let mut first: Option<(f64, f64)> = None;
    let mut last = None;
    for &n in sizes {
        let mut ms = Vec::new();
        for k in 1..=trials {
            eprintln!("  scale: {n} hosts, trial {k}…");
            ms.push(one(n, &monitor).with_context(|| format!("{n} hosts"))?);
        }
        let med =
            |f: fn(&Measure) -> f64| crate::stats::median(&ms.iter().map(f).collect::<Vec<_>>());
        let top = |f: fn(&Measure) -> f64| ms.iter().map(f).fold(0.0, f64::max);
        let (cores, decision) = (med(|m| m.cores), med(|m| m.decision_ms));
        let (c0, d0) = *first.get_or_insert((cores, decision));
        t.rows.push(vec![
            n.to_string(),
            format!("{cores:.3}"),
            format!("{:.1} / {:.1}", top(|m| m.rss_mb), top(|m| m.peak_mb)),
            format!("{decision:.0} / {:.0}", top(|m| m.decision_ms)),
            format!(
                "×{:.1}, ×{:.2}",
                cores / c0.max(1e-6),
                decision / d0.max(1e-6)
            ),
        ]);
        last = Some((cores, top(|m| m.peak_mb), decision, d0));
    }
    if let Some((cores, peak, decision, d0)) = last {
        t.notes.push(format!(
            "Targets at the largest size (256 hosts by default): under 0.25 core ({}), under 150 MB ({}), decision within 2× the first size's ({}). Each trial a fresh monitor, servers and stubs; CPU over 20 s of steady state once every host is ONLINE. The decision runs from the removal of the writer's address to the other master's stub receiving the table that makes it the writer: the stubs of the writer's peers report it lost at once (real agents need two missed 200 ms pings), the monitor confirms with its own ping and mysql checks (bounded by `peer_ping_misses` × `peer_ping_interval`, 400 ms: most of it), `writer_lease 0`. The agents are stubs and the control plane is plaintext (no TLS).",
            if cores < 0.25 { "met" } else { "missed" },
            if peak < 150.0 { "met" } else { "missed" },
            if decision <= 2.0 * d0 { "met" } else { "missed" },
        ));
    }
    Ok(t)
}
