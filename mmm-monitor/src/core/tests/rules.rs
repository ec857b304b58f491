//! MMM's rules, exactly: network outages, kills, short downtime, wait mode, flapping, the
//! status file as input, and suspicion versus hard evidence.

use super::*;

#[test]
fn a_monitor_network_outage_never_counts_against_the_hosts() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::Network { up: false });
    for _ in 0..5 {
        s.now += SEC;
        for h in ["db1", "db2", "db3"] {
            s.unreachable(h);
        }
    }
    // Commands that change the cluster wait; a failed push kills nobody.
    let e = s.cmd(Command::SetOffline("db3".into())).unwrap_err();
    assert!(e.to_string().contains("network is down"), "{e}");
    s.step(Input::Network { up: true });
    for h in ["db1", "db2", "db3"] {
        assert_eq!(s.state(h), HostState::Online, "{h} after the outage");
    }
    // A failure after the outage needs its whole trap period (2 s) again.
    s.now += SEC;
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    s.now += SEC;
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    assert_eq!(s.state("db3"), HostState::Online);
    s.now += SEC;
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    assert_eq!(s.state("db3"), HostState::HardOffline);
}

#[test]
fn no_kill_while_the_monitor_network_is_down() {
    let mut s = Sim::new("");
    s.online_all();
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    s.step(Input::Network { up: false });
    s.step(Input::Pushed {
        host: "db3".into(),
        ok: false,
        epoch: 0,
        gtid: None,
    });
    assert!(s.kills.is_empty());
}

#[test]
fn the_short_downtime_baseline_follows_the_uptime_while_online() {
    let mut s = Sim::new("");
    s.online_all();
    // ONLINE for 70 s, its agent answering every second.
    for t in 1..=70 {
        s.now += SEC;
        s.agent("db3", 1000 + t);
    }
    // A 3 s link blip: HARD_OFFLINE, then back with its mysqld still running.
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    assert_eq!(s.state("db3"), HostState::HardOffline);
    s.now += SEC;
    s.agent("db3", 1074);
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    assert_eq!(s.state("db3"), HostState::Online);
    assert!(
        s.logged("State of host 'db3' changed from AWAITING_RECOVERY to ONLINE because it was down for only 4 seconds"),
        "{:#?}",
        s.logs
    );
}

#[test]
fn wait_mode_counts_from_when_the_living_master_came_online() {
    let mut s = Sim::new("mode wait\n wait_for_other_master 120");
    s.advance(Duration::from_secs(100));
    s.all_ok("db1");
    s.cmd(Command::SetOnline("db1".into())).unwrap();
    s.advance(Duration::from_secs(30));
    assert_eq!(
        s.c.mode,
        Mode::Wait,
        "the 100 s before db1 was ONLINE do not count"
    );
    s.advance(Duration::from_secs(91));
    assert_eq!(s.c.mode, Mode::Active);
    assert!(s.logged("Master db2 did not come online for 120(wait_for_other_master) seconds. Switching from mode 'WAIT' to 'ACTIVE'"), "{:#?}", s.logs);
    // 0: wait for ever for the other master.
    let mut s = Sim::new("mode wait\n wait_for_other_master 0");
    s.all_ok("db1");
    s.cmd(Command::SetOnline("db1".into())).unwrap();
    s.advance(Duration::from_secs(100_000));
    assert_eq!(s.c.mode, Mode::Wait);
    s.all_ok("db2");
    s.cmd(Command::SetOnline("db2".into())).unwrap();
    assert_eq!(s.c.mode, Mode::Active);
    assert!(s.logged("Nodes db1 and db2 are ONLINE, switching from mode 'WAIT' to 'ACTIVE'."));
}

#[test]
fn a_flapping_host_comes_back_with_auto_set_online_after_flap_duration() {
    let mut s = Sim::new("flap_count 2\n flap_duration 60\n auto_set_online 10");
    s.online_all();
    for _ in 0..3 {
        s.keep(
            "db3",
            CheckKind::Ping,
            Report::error("ERROR: Could not ping"),
            3,
        );
        s.agent("db3", 5); // a restart each time: no short-downtime shortcut
        s.now += SEC;
        s.check("db3", CheckKind::Ping, Report::ok("OK"));
        if s.state("db3") == HostState::AwaitingRecovery && !s.c.host("db3").unwrap().flapping {
            s.advance(Duration::from_secs(10));
        }
    }
    assert!(s.logged("Host db3 is flapping!"), "{:#?}", s.logs);
    assert_eq!(s.state("db3"), HostState::AwaitingRecovery);
    s.advance(Duration::from_secs(50));
    assert_eq!(
        s.state("db3"),
        HostState::AwaitingRecovery,
        "flap_duration not over"
    );
    s.advance(Duration::from_secs(10));
    assert_eq!(s.state("db3"), HostState::Online);
    assert!(
        s.logs.iter().any(|l| l.starts_with("State of flapping host 'db3' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online and flap_duration(60) seconds passed without another failure. It was in state AWAITING_RECOVERY for ")),
        "{:#?}",
        s.logs
    );
}

#[test]
fn a_replication_failed_host_going_down_is_killed_when_its_agent_cannot_be_told() {
    let mut s = Sim::new("");
    s.online_all();
    s.advance(Duration::from_secs(61)); // the peer is not fresh any more
    s.keep(
        "db3",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        3,
    );
    assert_eq!(s.state("db3"), HostState::ReplicationFail);
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    assert_eq!(s.state("db3"), HostState::HardOffline);
    assert!(s.logged("State of host 'db3' changed from REPLICATION_FAIL to HARD_OFFLINE (ping: not OK, mysql: OK)"), "{:#?}", s.logs);
    s.step(Input::Pushed {
        host: "db3".into(),
        ok: false,
        epoch: 0,
        gtid: None,
    });
    assert_eq!(s.kills, ["db3"]);
    assert_eq!(
        s.kill_pings,
        [false],
        "the ping result is the second argument"
    );
}

#[test]
fn an_agent_that_stops_answering_is_logged_at_the_time() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentUnreachable { host: "db3".into() });
    s.step(Input::AgentUnreachable { host: "db3".into() });
    let n = s
        .logs
        .iter()
        .filter(|l| *l == "Can't reach agent on host 'db3'")
        .count();
    assert_eq!(n, 1);
    s.agent("db3", 1000);
    assert!(s.logged("Agent on host 'db3' is reachable again"));
}

#[test]
fn the_startup_vote_never_hands_the_writer_to_a_dead_mysqld() {
    let mut s = Sim::cold("careful_startup 0", "");
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
    }
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    // db1 says it is writable and holds the IP, but its mysqld is down.
    s.view(
        "db1",
        AgentView {
            writable: Some(true),
            configured_ips: vec!["192.168.8.30".parse().unwrap()],
            ..Default::default()
        },
    );
    s.agent("db2", 100);
    s.agent("db3", 100);
    assert_eq!(s.roles("db1"), "");
}

#[test]
fn the_status_file_is_input_not_truth() {
    let saved = status_file::parse(
        "#epoch 9\ndb1|ONLINE|writer(192.168.8.30)\ndb2|ONLINE|writer(192.168.8.30),reader(192.168.8.36)\ndb3|ONLINE|backup(192.168.8.99),writer(192.168.8.31),reader(192.168.8.37)\n",
    )
    .unwrap();
    let mut c = Cluster::new(&config(""), 0);
    c.restore(&saved);
    let roles = |h: &str| {
        c.host(h)
            .unwrap()
            .roles
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(roles("db1"), ["writer(192.168.8.30)"]);
    assert_eq!(
        roles("db2"),
        ["reader(192.168.8.36)"],
        "the writer once only"
    );
    assert_eq!(roles("db3"), ["reader(192.168.8.37)"]);
    let logs: Vec<String> = c
        .step(Input::Tick, Time::ZERO)
        .into_iter()
        .filter_map(|a| match a {
            Action::Log(l) => Some(l.message),
            _ => None,
        })
        .collect();
    for want in [
        "Status file: role writer(192.168.8.30) of host 'db2' dropped: 'db1' already holds it",
        "Status file: role backup(192.168.8.99) of host 'db3' dropped: the role is not in the configuration",
        "Status file: role writer(192.168.8.31) of host 'db3' dropped: 192.168.8.31 is not an ip of the role",
    ] {
        assert!(logs.iter().any(|l| l == want), "missing {want}: {logs:#?}");
    }
}

#[test]
fn a_timeout_is_a_suspicion_not_a_second_observer() {
    // The writer's mysqld stalls (1.5 s, shorter than the 2 s trap period): its agent's
    // quick ping times out — no hard evidence — and our own check fails: no failover.
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: false,
        hard: false,
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    assert!(s.logs.iter().any(|l| l.contains("not hard evidence")));
    assert_eq!(s.confirms, ["db1/mysql"], "still looks for itself");
    s.now += Duration::from_millis(300);
    s.check("db1", CheckKind::Mysql, Report::error("ERROR: Timeout"));
    assert_eq!(
        s.state("db1"),
        HostState::Online,
        "no fast path on a timeout"
    );
    s.now += Duration::from_millis(1200);
    s.check("db1", CheckKind::Mysql, Report::ok("OK"));
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: true,
        hard: false,
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    assert_eq!(s.state("db1"), HostState::Online);
    assert_eq!(s.c.active_master(), Some("db1"));
    // The process exiting is hard evidence: at once.
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: false,
        hard: true,
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    s.now += Duration::from_millis(30);
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
}
