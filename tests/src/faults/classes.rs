//! The fault classes of the matrix: what each does to a lab under load, and what it calls
//! for ([`Expect`]).

use super::{Expect, Row, Trial};
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Every class, in the order the matrix prints them.
pub const CLASSES: &[&str] = &[
    "kill-writer",
    "reader-stopped",
    "writer-agent-killed",
    "writer-agent-restarted",
    "monitor-killed",
    "monitor-killed-mid-failover",
    "monitor-cut-from-writer",
    "monitor-link-down",
    "writer-hung",
    "writer-stalled",
    "standby-replication-broken-then-writer-dies",
    "slave-lagging-during-failover",
    "flapping-reader",
    "masters-cut",
    "masters-cut-then-writer-dies",
    "writer-host-down",
    "writer-host-down-fenced",
    "writer-isolated",
    "flaky-net",
    "flaky-writer-link",
    "flaky-writer-link-both",
];

/// How long the flaky-network classes run on the lossy network before the writer is killed,
/// in the matrix and the tests (`cargo xtask bench flaky-net` soaks longer: [`run_soak`]).
pub const FLAKY_SOAK: Duration = Duration::from_secs(20);

/// Runs `class` on a fresh lab named `prefix`.
pub fn run(class: &str, prefix: &str) -> Result<Row> {
    run_with(class, prefix, true)
}

/// [`run`] with semi-synchronous replication on or off (`cargo xtask bench zero-loss` runs
/// both; the matrix runs the lab's default, on). Besides [`CLASSES`], `switchover`: a planned
/// `move_role writer db2` under the same writes.
pub fn run_with(class: &str, prefix: &str, semisync: bool) -> Result<Row> {
    run_soak(class, prefix, semisync, FLAKY_SOAK)
}

/// [`run_with`], the flaky-network classes soaking for `soak` before the writer is killed.
pub fn run_soak(class: &str, prefix: &str, semisync: bool, soak: Duration) -> Result<Row> {
    let mut t = Trial::start(prefix, semisync, class == "writer-host-down-fenced")?;
    let iface = t
        .lab
        .cfg
        .host("db1")
        .context("no db1")?
        .cluster_interface
        .clone();
    let db1_ip = t.lab.cfg.host("db1").context("no db1")?.ip.to_string();
    // Classes that prepare first (a stopped replica) mark the fault again at the kill.
    let mut fault = t.fault();
    let sleep = std::thread::sleep;
    let expect = match class {
        "kill-writer" => {
            server(&mut t, "db1")?.kill();
            Expect::Failover
        }
        "switchover" => {
            let (out, code) = t.lab.ctl(&["move_role", "writer", "db2"])?;
            if code != 0 {
                bail!("move_role writer db2: {out}");
            }
            Expect::Failover
        }
        "reader-stopped" => {
            server(&mut t, "db3")?.stop()?;
            sleep(Duration::from_secs(5));
            server(&mut t, "db3")?.start_again()?;
            Expect::Stay
        }
        "writer-agent-killed" => {
            t.lab.kill_agent("db1");
            sleep(Duration::from_secs(6));
            t.lab.start_agent("db1")?;
            Expect::Stay
        }
        "writer-agent-restarted" => {
            t.lab.kill_agent("db1");
            t.lab.start_agent("db1")?;
            Expect::Stay
        }
        "monitor-killed" => {
            t.lab.kill_monitor();
            sleep(Duration::from_secs(6));
            t.lab.start_monitor()?;
            Expect::Stay
        }
        "monitor-killed-mid-failover" => {
            server(&mut t, "db1")?.kill();
            sleep(Duration::from_millis(30));
            t.lab.kill_monitor();
            sleep(Duration::from_secs(3));
            t.lab.start_monitor()?;
            Expect::Failover
        }
        "standby-replication-broken-then-writer-dies" => {
            t.lab.sql("db2", "STOP SLAVE")?;
            sleep(Duration::from_secs(3));
            fault = t.fault();
            server(&mut t, "db1")?.kill();
            Expect::NoWriter
        }
        "slave-lagging-during-failover" => {
            t.lab.sql("db3", "STOP SLAVE SQL_THREAD")?;
            sleep(Duration::from_secs(2));
            fault = t.fault();
            server(&mut t, "db1")?.kill();
            sleep(Duration::from_secs(3));
            t.lab.sql("db3", "START SLAVE SQL_THREAD")?;
            Expect::Failover
        }
        "flapping-reader" => {
            for _ in 0..4 {
                server(&mut t, "db3")?.kill();
                sleep(Duration::from_millis(1500));
                server(&mut t, "db3")?.start_again()?;
                sleep(Duration::from_millis(1500));
            }
            Expect::Stay
        }
        "monitor-cut-from-writer" => {
            let route = format!("{db1_ip}/32");
            t.ip("monitor", &["route", "add", "blackhole", &route])?;
            sleep(Duration::from_secs(10));
            t.ip("monitor", &["route", "del", "blackhole", &route])?;
            Expect::Stay
        }
        "monitor-link-down" => {
            t.ip("monitor", &["link", "set", "eth0", "down"])?;
            sleep(Duration::from_secs(10));
            t.ip("monitor", &["link", "set", "eth0", "up"])?;
            Expect::Stay
        }
        "writer-hung" => {
            server(&mut t, "db1")?.pause(true);
            sleep(Duration::from_secs(8));
            server(&mut t, "db1")?.pause(false);
            Expect::Failover
        }
        "writer-stalled" => {
            server(&mut t, "db1")?.pause(true);
            sleep(Duration::from_millis(1500));
            server(&mut t, "db1")?.pause(false);
            Expect::Stay
        }
        "masters-cut" => {
            cut_masters(&t, "add")?;
            sleep(Duration::from_secs(10));
            cut_masters(&t, "del")?;
            Expect::Stay
        }
        "masters-cut-then-writer-dies" => {
            // The lab case (b): db1 keeps acknowledging writes db2 never receives
            // (semi-sync falls back after its timeout), then dies.
            cut_masters(&t, "add")?;
            sleep(Duration::from_secs(10));
            fault = t.fault();
            server(&mut t, "db1")?.kill();
            Expect::NoWriter
        }
        // The same on a lab with `kill_host_fences` (its bridge-port fence) and peers probing
        // every 20 ms: the writer moves without waiting out its lease (#18 item 1).
        "writer-host-down" | "writer-host-down-fenced" => {
            t.ip("db1", &["link", "set", &iface, "down"])?;
            server(&mut t, "db1")?.kill();
            if class == "writer-host-down-fenced" {
                fenced_not_waited(&t)?;
            }
            Expect::Failover
        }
        "writer-isolated" => {
            t.ip("db1", &["link", "set", &iface, "down"])?;
            sleep(Duration::from_secs(10));
            t.ip("db1", &["link", "set", &iface, "up"])?;
            // Writes keep going for a while with the old writer back on the network.
            sleep(Duration::from_secs(3));
            Expect::Failover
        }
        // #18 item 2: random loss on every link (5 % of the packets each namespace
        // receives), then on the writer's own link only: 30 % of what it sends (`tc netem
        // loss 30%` on its interface: netem acts on egress), and the harsher 30 % each way
        // (51 % of round trips); none may fail anything over while every server is up, and a
        // writer killed afterwards still moves.
        "flaky-net" => {
            for h in ["db1", "db2", "db3", "monitor", "client"] {
                lossy(&t, h, 50, &["input"])?;
            }
            fault = soak_then_kill(&mut t, soak)?;
            Expect::Failover
        }
        "flaky-writer-link" => {
            lossy(&t, "db1", 300, &["output"])?;
            fault = soak_then_kill(&mut t, soak)?;
            Expect::Failover
        }
        "flaky-writer-link-both" => {
            lossy(&t, "db1", 300, &["input", "output"])?;
            fault = soak_then_kill(&mut t, soak)?;
            Expect::Failover
        }
        other => bail!(
            "unknown fault class '{other}' (known: {})",
            CLASSES.join(", ")
        ),
    };
    sleep(Duration::from_secs(2));
    t.finish(class, fault, expect)
}

/// The monitor moved the writer role because the lab's fence succeeded, not because the
/// writer lease ran out (10 s at most for the failover to happen at all).
fn fenced_not_waited(t: &Trial) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = t.lab.monitor_log();
        if log.contains("Old writer 'db1' is fenced (kill_host_bin fenced it)") {
            let m = monitor_metrics(t)?;
            if !m.contains("mmm_fences_total{host=\"db1\",result=\"fenced\"} 1") {
                bail!("the fence is not counted in the monitor's metrics:\n{m}");
            }
            return Ok(());
        }
        if log.contains("Old writer 'db1' is fenced (") || std::time::Instant::now() > deadline {
            bail!("the writer role did not move on the fence's word:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The monitor's Prometheus text, fetched from its namespace (HTTP/1.0 GET /metrics).
fn monitor_metrics(t: &Trial) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = &t.lab.cfg.monitor;
    let addr = std::net::SocketAddr::from((m.ip, m.metrics_port));
    crate::netns::block_on_in(&t.lab.ns("monitor"), move || async move {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    })?
    .context("fetching the monitor's metrics")
}

fn server<'a>(t: &'a mut Trial, host: &str) -> Result<&'a mut crate::mariadb::Server> {
    t.lab
        .servers
        .get_mut(host)
        .with_context(|| format!("no server {host}"))
}

/// Adds (`add`) or removes (`del`) blackhole routes between db1 and db2, both ways: the
/// masters lose each other silently (no RST: their IO threads keep saying Yes).
fn cut_masters(t: &Trial, op: &str) -> Result<()> {
    let ip = |h: &str| -> Result<String> {
        Ok(format!(
            "{}/32",
            t.lab.cfg.host(h).context("no such host")?.ip
        ))
    };
    t.ip("db1", &["route", op, "blackhole", &ip("db2")?])?;
    t.ip("db2", &["route", op, "blackhole", &ip("db1")?])
}

/// Drops `per_mille` ‰ of the packets `host`'s link receives (`input`) and/or sends
/// (`output`), at random: nftables' `numgen random` in those hooks. Random loss only:
/// the lab's kernel has neither `netem` nor `fq` (`CONFIG_NET_SCH_NETEM`, `CONFIG_NET_SCH_FQ`),
/// so no delay or jitter can be added.
fn lossy(t: &Trial, host: &str, per_mille: u32, hooks: &[&str]) -> Result<()> {
    let ns = t.lab.ns(host);
    let nft = |args: &[&str]| t.lab.net.exec(&ns, "nft", args).map(drop);
    nft(&["add", "table", "inet", "mmmflaky"])?;
    for hook in hooks {
        // The link only: a host's own loopback (an agent and its mysqld) never loses.
        let dev = if *hook == "input" {
            "iifname"
        } else {
            "oifname"
        };
        let rule = format!("{dev} != \"lo\" numgen random mod 1000 < {per_mille} drop");
        nft(&[
            "add",
            "chain",
            "inet",
            "mmmflaky",
            hook,
            &format!("{{ type filter hook {hook} priority raw ; }}"),
        ])?;
        nft(&["add", "rule", "inet", "mmmflaky", hook, &rule])?;
    }
    Ok(())
}

/// Lets a flaky class run for `soak` under writes, notes every host that left ONLINE (none
/// may: every server is up), then kills the writer's mysqld; returns the kill's instant.
fn soak_then_kill(t: &mut Trial, soak: Duration) -> Result<std::time::Instant> {
    let before = super::left_online(&t.lab).len();
    std::thread::sleep(soak);
    let changed = super::left_online(&t.lab);
    t.before_fault.extend(changed.into_iter().skip(before));
    let fault = t.fault();
    server(t, "db1")?.kill();
    Ok(fault)
}
