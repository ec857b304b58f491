//! Every check's OK, ERROR and UNKNOWN paths against real MariaDB servers, each in its own
//! network namespace, checked from a monitor namespace. Needs root; never skipped.

use mmm_common::config::{CheckConfig, CheckKind};
use mmm_monitor::{
    checks::{self, Pinger, Target},
    core::{Outcome, Report},
    sanity,
};
use mmm_tests::{
    mariadb::{seed_accounts, Opts, Server},
    Net,
};
use std::{net::Ipv4Addr, time::Duration};

struct Lab {
    net: Net,
    db1: Server,
    db2: Server,
    _dir: tempfile::TempDir,
}

const DB1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const DB2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);

fn lab(tag: &str) -> Lab {
    let mut net = Net::new(tag).unwrap();
    net.add_host("mon", "eth0", Ipv4Addr::new(198, 18, 0, 2), 2)
        .unwrap();
    let h1 = net.add_host("db1", "eth0", DB1, 0x11).unwrap();
    let h2 = net.add_host("db2", "eth0", DB2, 0x12).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str, ns: &str, ip, id| {
        Server::start(
            &dir.path().join(name),
            Opts {
                server_id: id,
                bind: ip,
                port: 3306,
                netns: Some(ns.into()),
                auto_increment: None,
            },
        )
        .unwrap()
    };
    let db1 = start("db1", &h1.ns, DB1, 1);
    let db2 = start("db2", &h2.ns, DB2, 2);
    for s in [&db1, &db2] {
        seed_accounts(s).unwrap();
    }
    Lab {
        net,
        db1,
        db2,
        _dir: dir,
    }
}

fn target(ip: Ipv4Addr, user: &str, pw: &str) -> Target {
    Target {
        ip,
        port: 3306,
        user: user.into(),
        password: pw.into(),
    }
}

impl Lab {
    /// Runs one check from the monitor's namespace.
    fn check(&self, kind: CheckKind, t: Target, cfg: CheckConfig) -> Report {
        let ns = self.net.host("mon").ns.clone();
        mmm_tests::netns::block_on_in(&ns, move || async move {
            let pinger = Pinger::new();
            checks::run(kind, &t, &cfg, &pinger).await
        })
        .unwrap()
    }
    /// The start-up master-master facts of the server at `ip` (`sanity::read`).
    fn facts(&self, name: &str, ip: Ipv4Addr) -> Result<sanity::MasterFacts, String> {
        let ns = self.net.host("mon").ns.clone();
        let name = name.to_string();
        mmm_tests::netns::block_on_in(&ns, move || async move {
            sanity::read(&name, &target(ip, "mmm_monitor", "mmm_monitor")).await
        })
        .unwrap()
    }
    fn mon(&self, kind: CheckKind, ip: Ipv4Addr) -> Report {
        self.check(
            kind,
            target(ip, "mmm_monitor", "mmm_monitor"),
            CheckConfig::default(),
        )
    }
}

fn assert_report(r: &Report, outcome: Outcome, prefix: &str) {
    assert_eq!(r.outcome, outcome, "{r:?}");
    assert!(
        r.message.starts_with(prefix),
        "want '{prefix}…', got '{}'",
        r.message
    );
}

#[test]
fn ping_and_mysql() {
    let mut l = lab("chk");
    assert_report(&l.mon(CheckKind::Ping, DB1), Outcome::Ok, "OK");
    assert_report(
        &l.mon(CheckKind::Ping, Ipv4Addr::new(198, 18, 0, 99)),
        Outcome::Error,
        "ERROR: Could not ping 198.18.0.99",
    );
    assert_report(&l.mon(CheckKind::Mysql, DB1), Outcome::Ok, "OK");
    let bad = l.check(
        CheckKind::Mysql,
        target(DB1, "mmm_monitor", "wrong"),
        CheckConfig::default(),
    );
    assert_report(
        &bad,
        Outcome::Error,
        "ERROR: Connect error (host = 198.18.0.11:3306, user = mmm_monitor)! ",
    );
    assert!(bad.message.contains("Access denied"), "{}", bad.message);
    // A hung server (SIGSTOP) hits the hard timeout instead of hanging the check.
    l.db1.pause(true);
    let hung = l.check(
        CheckKind::Mysql,
        target(DB1, "mmm_monitor", "mmm_monitor"),
        CheckConfig {
            timeout: Duration::from_millis(500),
            ..Default::default()
        },
    );
    assert_report(&hung, Outcome::Error, "ERROR: Timeout");
    let hung = l.check(
        CheckKind::RepThreads,
        target(DB1, "mmm_monitor", "mmm_monitor"),
        CheckConfig {
            timeout: Duration::from_millis(500),
            ..Default::default()
        },
    );
    assert_report(&hung, Outcome::Unknown, "UNKNOWN: Timeout");
    l.db1.pause(false);
    assert_report(&l.mon(CheckKind::Mysql, DB1), Outcome::Ok, "OK");
    // Stopped server: connection refused.
    l.db1.stop().unwrap();
    assert_report(
        &l.mon(CheckKind::Mysql, DB1),
        Outcome::Error,
        "ERROR: Connect error (host = 198.18.0.11:3306, user = mmm_monitor)! ",
    );
    assert_report(
        &l.mon(CheckKind::RepThreads, DB1),
        Outcome::Unknown,
        "UNKNOWN: Connect error",
    );
    assert_report(
        &l.mon(CheckKind::RepBacklog, DB1),
        Outcome::Unknown,
        "UNKNOWN: Connect error",
    );
    assert_report(&l.mon(CheckKind::Ping, DB1), Outcome::Ok, "OK");
}

#[test]
fn replication_checks() {
    let l = lab("rep");
    assert_report(
        &l.mon(CheckKind::RepThreads, DB2),
        Outcome::Error,
        "ERROR: Replication is not set up",
    );
    assert_report(
        &l.mon(CheckKind::RepBacklog, DB2),
        Outcome::Ok,
        "OK: Backlog is null",
    );
    l.db2.replicate_from(&l.db1, "repl", "repl").unwrap();
    l.db1
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")
        .unwrap();
    l.db2.sync_with(&l.db1, Duration::from_secs(10)).unwrap();
    // The start-up master-master sanity reads the same servers: db2 replicates from db1,
    // db1 from nobody (named), auto-increment settings as the servers have them.
    let f2 = l.facts("db2", DB2).unwrap();
    assert_eq!(f2.source_host.as_deref(), Some("198.18.0.11"), "{f2:?}");
    assert_eq!((f2.increment, f2.offset), (1, 1));
    let f1 = l.facts("db1", DB1).unwrap();
    assert_eq!(f1.source_host, None);
    assert!(sanity::warnings(&f1, &f2)
        .iter()
        .any(|w| w.starts_with("Master 'db1' does not replicate from its peer 'db2'")));
    assert_report(&l.mon(CheckKind::RepThreads, DB2), Outcome::Ok, "OK");
    assert_report(
        &l.mon(CheckKind::RepBacklog, DB2),
        Outcome::Ok,
        "OK: Backlog is null",
    );
    // STOP SLAVE: broken.
    l.db2.sql("STOP SLAVE").unwrap();
    assert_report(
        &l.mon(CheckKind::RepThreads, DB2),
        Outcome::Error,
        "ERROR: Replication is broken",
    );
    // Wrong replication password: the IO thread keeps "Connecting" with error 1045: broken.
    l.db2
        .sql("CHANGE MASTER TO MASTER_PASSWORD='nope'; START SLAVE")
        .unwrap();
    let ok = Net::wait_for(Duration::from_secs(10), || {
        l.mon(CheckKind::RepThreads, DB2).outcome == Outcome::Error
    });
    assert!(
        ok,
        "wrong replication password not detected: {:?}",
        l.mon(CheckKind::RepThreads, DB2)
    );
    // Lag above max_backlog: an event 1000 s old held back by MASTER_DELAY. Serial apply for
    // this: a parallel replica (the lab's default) waiting out MASTER_DELAY reports
    // Seconds_Behind_Master 0 (seen with MariaDB 10.11), so no check could see the delay.
    l.db2
        .sql("STOP SLAVE; SET GLOBAL slave_parallel_threads = 0; CHANGE MASTER TO MASTER_PASSWORD='repl', MASTER_DELAY=3600; START SLAVE")
        .unwrap();
    l.db1
        .sql("SET TIMESTAMP = UNIX_TIMESTAMP() - 1000; INSERT INTO app.t VALUES (1)")
        .unwrap();
    let lagging = Net::wait_for(Duration::from_secs(10), || {
        l.mon(CheckKind::RepBacklog, DB2).message == "ERROR: Backlog is too big"
    });
    assert!(
        lagging,
        "lag not detected: {:?}",
        l.mon(CheckKind::RepBacklog, DB2)
    );
    // Missing privilege: a monitor user without REPLICATION CLIENT.
    l.db2
        .sql("SET sql_log_bin=0; CREATE USER 'weak'@'%' IDENTIFIED BY 'weak'")
        .unwrap();
    let r = l.check(
        CheckKind::RepThreads,
        target(DB2, "weak", "weak"),
        CheckConfig::default(),
    );
    assert_report(&r, Outcome::Error, "ERROR: The monitor user 'weak' lacks the REPLICATION CLIENT privilege (SLAVE MONITOR on MariaDB 10.5 and later)!");
}

#[test]
fn ping_and_mysql_checks_survive_lost_packets() {
    let l = lab("chkloss");
    // db2 drops every other echo request it receives (nftables, its namespace only): with one
    // echo per check, every other check would fail; the check sends up to three.
    let ns = l.net.host("db2").ns.clone();
    let nft = |args: &[&str]| l.net.exec(&ns, "nft", args).map(drop);
    nft(&["add", "table", "inet", "mmmloss"]).unwrap();
    nft(&[
        "add",
        "chain",
        "inet",
        "mmmloss",
        "input",
        "{ type filter hook input priority raw ; }",
    ])
    .unwrap();
    let rule = |r: &str| nft(&["add", "rule", "inet", "mmmloss", "input", r]).unwrap();
    rule("icmp type echo-request numgen inc mod 2 == 0 drop");
    for _ in 0..6 {
        assert_report(&l.mon(CheckKind::Ping, DB2), Outcome::Ok, "OK");
    }
    // Every echo lost: the check fails within its limit.
    let flush = || nft(&["flush", "chain", "inet", "mmmloss", "input"]).unwrap();
    flush();
    rule("icmp type echo-request drop");
    assert_report(
        &l.mon(CheckKind::Ping, DB2),
        Outcome::Error,
        "ERROR: Could not ping 198.18.0.12",
    );
    // Every other login's SYN lost: a single login would wait out TCP's 1 s retransmission
    // (the whole timeout); the mysql check starts up to three.
    flush();
    let syn = "tcp dport 3306 tcp flags & (syn | ack) == syn";
    rule(&format!("{syn} numgen inc mod 2 == 0 drop"));
    for _ in 0..6 {
        assert_report(&l.mon(CheckKind::Mysql, DB2), Outcome::Ok, "OK");
    }
    // Every SYN lost: the check fails within its limit.
    flush();
    rule(&format!("{syn} drop"));
    assert_report(
        &l.mon(CheckKind::Mysql, DB2),
        Outcome::Error,
        "ERROR: Timeout",
    );
}
