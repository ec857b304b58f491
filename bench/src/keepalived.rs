//! keepalived side by side: the same two MariaDB masters (master-master, as the lab) in
//! namespaces on a bridge, keepalived (Debian's package) on each moving the same writer VIP
//! with a mysqld check script, the same client writing through the VIP, the same `kill -9`
//! and the same outage measure as the mmm failover benchmark. VRRP runs with unicast peers:
//! no packet leaves 198.18.0.0/15.

use crate::{
    failover::outage,
    stats::{ms, summary, Table, DIST_HEAD},
};
use anyhow::{bail, Context, Result};
use mmm_tests::{
    load::Writer,
    mariadb::{Opts, Server},
    netns::command_in,
    Host, Net,
};
use std::{
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

struct Settings {
    name: &'static str,
    version: u8,
    advert: &'static str,
}

const SETTINGS: [Settings; 2] = [
    Settings {
        name: "keepalived, defaults (VRRPv2, advert_int 1 s; check every 1 s, fall 1)",
        version: 2,
        advert: "1",
    },
    Settings {
        name: "keepalived, fastest sane (VRRPv3, advert_int 0.1 s; check every 1 s, fall 1)",
        version: 3,
        advert: "0.1",
    },
];

fn config(
    dir: &Path,
    me: &Host,
    peer: &Host,
    prio: u32,
    s: &Settings,
    sock: &Path,
) -> Result<std::path::PathBuf> {
    let check = dir.join(format!("check-{}.sh", me.name));
    std::fs::write(&check, format!("#!/bin/sh\nexec mariadb-admin --no-defaults --connect-timeout=1 -S {} -uroot ping >/dev/null 2>&1\n", sock.display()))?;
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let conf = dir.join(format!("keepalived-{}.conf", me.name));
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  router_id {name}\n  script_user root\n  vrrp_version {v}\n  vrrp_garp_master_delay 0\n}}\n\
             vrrp_script chk_mysql {{\n  script \"{check}\"\n  interval 1\n  timeout 1\n  fall 1\n  rise 1\n}}\n\
             vrrp_instance writer {{\n  state BACKUP\n  nopreempt\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int {adv}\n\
               unicast_src_ip {src}\n  unicast_peer {{\n    {peer}\n  }}\n  virtual_ipaddress {{\n    {VIP}/32 dev eth0\n  }}\n  track_script {{\n    chk_mysql\n  }}\n}}\n",
            name = me.name,
            v = s.version,
            check = check.display(),
            adv = s.advert,
            src = me.ip,
            peer = peer.ip,
        ),
    )?;
    Ok(conf)
}

fn holder(net: &Net, hosts: &[&Host]) -> Option<usize> {
    hosts.iter().position(|h| {
        net.exec(&h.ns, "ip", &["-4", "addr", "show", "dev", "eth0"])
            .map(|o| o.contains(&format!("{VIP}/32")))
            .unwrap_or(false)
    })
}

fn run_one(s: &Settings, trials: u64) -> Result<Vec<f64>> {
    let mut net = Net::new("ka")?;
    let client = net.add_host("client", "eth0", Ipv4Addr::new(198, 18, 0, 50), 0x50)?;
    let h1 = net.add_host("db1", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)?;
    let h2 = net.add_host("db2", "eth0", Ipv4Addr::new(198, 18, 0, 12), 0x12)?;
    let guard = mmm_tests::lab::tempdir()?;
    let dir = guard.path().to_path_buf();
    let start = |h: &Host, id: u32| {
        Server::start(
            &dir.join(&h.name),
            Opts {
                server_id: id,
                bind: h.ip,
                port: 3306,
                netns: Some(h.ns.clone()),
                auto_increment: Some((2, id)),
            },
        )
    };
    let mut servers = vec![start(&h1, 1)?, start(&h2, 2)?];
    for sv in &servers {
        sv.sql("SET sql_log_bin=0; CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; CREATE USER 'app'@'%' IDENTIFIED BY 'app'; GRANT ALL ON app.* TO 'app'@'%'")?;
    }
    servers[0].sql("CREATE DATABASE app; CREATE TABLE app.bench (seq BIGINT PRIMARY KEY)")?;
    servers[1].replicate_from(&servers[0], "repl", "repl")?;
    servers[0].replicate_from(&servers[1], "repl", "repl")?;
    servers[1].sync_with(&servers[0], Duration::from_secs(20))?;
    let hosts = [&h1, &h2];
    for (i, h) in hosts.iter().enumerate() {
        let conf = config(
            &dir,
            h,
            hosts[1 - i],
            100 - 10 * i as u32,
            s,
            &servers[i].socket(),
        )?;
        let mut cmd = command_in(&h.ns, "keepalived")?;
        cmd.args(["-n", "-l", "--vrrp", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.join(format!("ka-{}.pid", h.name)))
            .arg("-r")
            .arg(dir.join(format!("vrrp-{}.pid", h.name)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        net.spawn(cmd)?;
    }
    let end = Instant::now() + Duration::from_secs(30);
    while holder(&net, &hosts).is_none() {
        if Instant::now() > end {
            bail!("keepalived elected no master within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = Vec::new();
    for n in 0..trials {
        let old = holder(&net, &hosts).context("no VIP holder")?;
        let new = 1 - old;
        let w = Writer::start(&client.ns, VIP, "bench", (n + 1) * 1_000_000)?;
        std::thread::sleep(Duration::from_millis(300));
        w.pause();
        servers[new].sync_with(&servers[old], Duration::from_secs(20))?;
        let t0 = Instant::now();
        servers[old].kill();
        w.resume();
        if !w.wait_resumed(t0, 20, Duration::from_secs(60)) {
            bail!("writes did not resume within 60 s with {}", s.name);
        }
        let acked = w.stop();
        let (a, b) = outage(&acked, t0).context("no write after the failure")?;
        eprintln!(
            "  {}: trial {}: unavailable {:.0} ms",
            s.name,
            n + 1,
            ms(b - a)
        );
        out.push(ms(b - a));
        // Back as a backup (nopreempt keeps the VIP where it is).
        servers[old].start_again()?;
        servers[old].sync_with(&servers[new], Duration::from_secs(30))?;
        std::thread::sleep(Duration::from_millis(1500));
    }
    drop(servers);
    drop(net);
    drop(guard);
    Ok(out)
}

/// Runs both keepalived settings; `mmm_kill9` is mmm's kill -9 outage from the same run.
pub fn run(trials: u64, mmm_kill9: &[f64]) -> Result<Table> {
    let mut t = Table::new(
        &format!("keepalived side by side: kill -9 of the writer's mysqld ({trials} trials each)"),
        DIST_HEAD,
    );
    let mmm = summary(mmm_kill9).map(|s| s[0]);
    for s in &SETTINGS {
        let xs = run_one(s, trials).with_context(|| s.name)?;
        t.dist(s.name, &xs, "ms", None);
        if let (Some(m), Some([p50, ..])) = (mmm, summary(&xs)) {
            t.notes.push(format!(
                "{}: p50 {p50:.0} ms = {:.1}× mmm's p50 ({m:.0} ms) measured in the same run.",
                s.name,
                p50 / m
            ));
        }
    }
    if mmm.is_some() {
        t.dist(
            "mmm (same run, from the failover table)",
            mmm_kill9,
            "ms",
            None,
        );
    }
    t.notes.push("keepalived: two masters both writable (keepalived does not manage read_only), VRRP with unicast peers, a `mariadb-admin ping` check script, nopreempt; the same client and the same outage measure as mmm's failover benchmark.".into());
    Ok(t)
}
