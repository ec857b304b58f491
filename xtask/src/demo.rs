//! `cargo xtask demo`: the data plane on a throw-away lab, narrated. Until the lab and the
//! monitor land, it shows a VIP answered by XDP, moved between two hosts by map writes (with a
//! stale client steered), fenced, and everything removed again.

use crate::setup;
use anyhow::{bail, Context, Result};
use mmm_tests::{netns::fmt_mac, Host, Net};
use std::{net::Ipv4Addr, path::PathBuf, process::Command, time::Duration};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PORT: u16 = 3306;

struct Demo {
    net: Net,
    agent: PathBuf,
}

impl Demo {
    fn pin_root(&self, h: &Host) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/mmm/{}-{}", self.net.prefix(), h.name))
    }

    fn agent(&self, h: &Host, args: &[&str]) -> Result<String> {
        println!("\n[{}]$ mmm-agent {}", h.name, args.join(" "));
        let out = self
            .net
            .command(&h.ns, &self.agent)?
            .arg("--pin-root")
            .arg(self.pin_root(h))
            .args(args)
            .output()
            .context("running mmm-agent")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        if !out.status.success() {
            bail!("mmm-agent failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(text)
    }

    fn connect(&self, client: &Host) -> Result<()> {
        println!("\n[client]$ connect {VIP}:{PORT}");
        match self
            .net
            .tcp_get(&client.ns, VIP, PORT, Duration::from_secs(1))
        {
            Ok(s) => println!("{s}"),
            Err(e) => println!("no answer: {e:#}"),
        }
        let n = self.net.neighbour(&client.ns, "eth0", VIP)?;
        println!(
            "[client] ARP cache: {VIP} is-at {}",
            n.unwrap_or_else(|| "(none)".into())
        );
        Ok(())
    }
}

fn step(title: &str) {
    println!("\n==== {title}");
}

/// Runs the demo.
pub fn run(keep: bool) -> Result<()> {
    setup::all()?;
    crate::ebpf::build(true)?;
    setup::run(Command::new("cargo").current_dir(crate::root()).args([
        "build",
        "-p",
        "mmm-agent",
    ]))?;
    let agent = crate::root().join("target/debug/mmm-agent");

    step("A lab: a client and two database hosts on one bridge, each in its own network namespace");
    let mut net = Net::new("demo")?;
    let client = net.add_host("client", "eth0", Ipv4Addr::new(198, 18, 0, 50), 0x50)?;
    let db1 = net.add_host("db1", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)?;
    let db2 = net.add_host("db2", "eth0", Ipv4Addr::new(198, 18, 0, 12), 0x12)?;
    for h in [&client, &db1, &db2] {
        println!(
            "  {:<7} {:<13} {}  (namespace {})",
            h.name,
            h.ip,
            fmt_mac(&h.mac),
            h.ns
        );
    }
    net.tcp_server(&db1.ns, PORT, "hello from db1 (pretending to be mysqld)")?;
    net.tcp_server(&db2.ns, PORT, "hello from db2 (pretending to be mysqld)")?;
    let demo = Demo { net, agent };
    let d = &demo;
    let mut pin_roots = vec![d.pin_root(&db1), d.pin_root(&db2)];

    step("Attach the XDP data plane on both hosts (pinned: survives the agent)");
    d.agent(&db1, &["attach", "-i", "eth0"])?;
    d.agent(&db2, &["attach", "-i", "eth0"])?;
    let br_root = PathBuf::from(format!("/sys/fs/bpf/mmm/{}-br", d.net.prefix()));
    pin_roots.push(br_root.clone());
    for h in [&db1, &db2] {
        let out = d
            .net
            .command(d.net.bridge_ns(), &d.agent)?
            .arg("--pin-root")
            .arg(&br_root)
            .args(["peer-pass", "-i", &h.peer])
            .output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }

    step("db1 takes the writer VIP: /32 on lo, map LOCAL, gratuitous ARP");
    d.agent(&db1, &["vip", "acquire", "-i", "eth0", &VIP.to_string()])?;
    d.connect(&client)?;
    d.agent(&db1, &["vip", "list", "-i", "eth0"])?;

    step("Failover: db2 takes the VIP; db1 steers clients whose ARP cache still says db1");
    d.net.exec(
        &client.ns,
        "ip",
        &[
            "neigh",
            "replace",
            &VIP.to_string(),
            "lladdr",
            &fmt_mac(&db1.mac),
            "dev",
            "eth0",
            "nud",
            "permanent",
        ],
    )?;
    println!(
        "(the client's ARP cache is pinned to db1's MAC: a client that missed the gratuitous ARP)"
    );
    d.agent(
        &db2,
        &[
            "vip",
            "acquire",
            "-i",
            "eth0",
            &VIP.to_string(),
            "--garp-rounds",
            "0",
        ],
    )?;
    d.agent(
        &db1,
        &[
            "vip",
            "release",
            "-i",
            "eth0",
            &VIP.to_string(),
            "--steer",
            &fmt_mac(&db2.mac),
        ],
    )?;
    d.connect(&client)?;
    d.agent(&db1, &["vip", "list", "-i", "eth0"])?;
    d.agent(&db2, &["vip", "list", "-i", "eth0"])?;

    step("Fence: nobody may receive the VIP (e.g. while no master is safe to write to)");
    d.agent(
        &db2,
        &["vip", "release", "-i", "eth0", &VIP.to_string(), "--fence"],
    )?;
    d.connect(&client)?;
    d.agent(&db2, &["vip", "list", "-i", "eth0"])?;

    if keep {
        println!(
            "\nThe lab stays up (--keep). Remove it with:\n  for n in $(ip netns list | awk '/^{}/{{print $1}}'); do ip netns del $n; done; rm -rf {}",
            d.net.prefix(),
            pin_roots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
        );
        std::mem::forget(demo);
        return Ok(());
    }
    step("Detach: addresses, XDP links and pins removed; namespaces deleted");
    d.agent(&db1, &["detach", "-i", "eth0"])?;
    d.agent(&db2, &["detach", "-i", "eth0"])?;
    let mut net = demo.net;
    for r in pin_roots {
        net.track_pins(r);
    }
    drop(net);
    println!("\ndemo finished, nothing left behind");
    Ok(())
}
