//! Each transition of `docs/mmm-2.2.1.md` §1, the modes and the commands, one test each.

use super::*;

#[test]
fn fast_path_needs_two_observers() {
    let mut s = Sim::new("");
    s.online_all();
    // The agent alone: nothing changes, but a confirming check is asked for at once.
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: false,
        hard: true,
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    assert_eq!(s.confirms, ["db1/mysql"]);
    assert_eq!(s.state("db1"), HostState::Online);
    // Our own check agrees: HARD_OFFLINE at once, no trap period.
    s.now += Duration::from_millis(30);
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert_eq!(s.roles("db2"), "reader(192.168.8.36), writer(192.168.8.30)");
    // Our check alone (no agent report): the trap period applies.
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::Online);
    // The agent says down but our check passes: no failover.
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: false,
        hard: true,
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    s.check("db1", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(s.state("db1"), HostState::Online);
}

#[test]
fn a_host_down_is_confirmed_by_a_peer_agent() {
    let peer_says = |s: &mut Sim, reporter: &str, down: &[&str]| s.peer_says(reporter, down, &[]);
    // Our own ping and mysql checks fail first (pending their trap periods), then db3's
    // agent cannot reach db1 either (two observers: the failure counts at once), but db2's
    // still does: holistic detection keeps the writer (unreachable from the monitor, not dead).
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    host_gone(&mut s, "db1");
    assert_eq!(s.state("db1"), HostState::Online);
    peer_says(&mut s, "db3", &["db1"]);
    assert_eq!(s.state("db1"), HostState::Online);
    assert!(s.logged("Writer 'db1': UNREACHABLE_WRITER: the monitor cannot reach it, but the agent(s) on db2 still reach its mysqld; no failover"));
    // db2 loses it too: dead. Its agent silent, the writer role waits out db1's lease.
    peer_says(&mut s, "db2", &["db1"]);
    s.step(Input::AgentUnreachable { host: "db1".into() });
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert!(!s.roles("db2").contains("writer"), "{}", s.roles("db2"));
    s.advance(s.c.writer_lease + s.c.lease_margin);
    assert!(s.roles("db2").contains("writer"), "{}", s.roles("db2"));
    // The peer's report first: confirming checks are asked for, and once both of ours fail
    // (the ping first: a vanished host fails it sooner) the failure counts at once.
    let mut s = Sim::new("");
    s.online_all();
    peer_says(&mut s, "db3", &["db2"]);
    assert_eq!(s.confirms, ["db2/ping", "db2/mysql"]);
    assert_eq!(s.state("db2"), HostState::Online);
    s.now += Duration::from_millis(200);
    s.check(
        "db2",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    assert_eq!(s.state("db2"), HostState::Online);
    s.check(
        "db2",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db2"), HostState::HardOffline);
    // A peer that cannot reach db1 while our own checks pass changes nothing.
    let mut s = Sim::new("");
    s.online_all();
    peer_says(&mut s, "db2", &["db1"]);
    s.check("db1", CheckKind::Ping, Report::ok("OK"));
    s.check("db1", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(s.state("db1"), HostState::Online);
    // A report from an agent the monitor cannot reach does not count as an observer.
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentUnreachable { host: "db2".into() });
    s.now += SEC;
    s.check(
        "db1",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    peer_says(&mut s, "db2", &["db1"]);
    assert_eq!(s.state("db1"), HostState::Online);
}

#[test]
fn replication_states() {
    let mut s = Sim::new("");
    s.online_all();
    s.advance(Duration::from_secs(61)); // past the peer grace period
                                        // db3's replication breaks (its peer is the active master db1).
    s.keep(
        "db3",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        3,
    );
    assert_eq!(s.state("db3"), HostState::ReplicationFail);
    assert_eq!(s.roles("db3"), "");
    assert_eq!(s.roles("db2"), "reader(192.168.8.36), reader(192.168.8.37)");
    // Threads run again but it lags: REPLICATION_DELAY.
    s.check("db3", CheckKind::RepThreads, Report::ok("OK"));
    s.keep(
        "db3",
        CheckKind::RepBacklog,
        Report::error("ERROR: Backlog is too big"),
        3,
    );
    // Leaving REPLICATION_FAIL goes via the failing check directly.
    assert_eq!(s.state("db3"), HostState::ReplicationDelay);
    s.check(
        "db3",
        CheckKind::RepBacklog,
        Report::ok("OK: Backlog is null"),
    );
    assert_eq!(s.state("db3"), HostState::Online);
    // The active master never enters a REPLICATION_* state.
    s.keep(
        "db1",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        5,
    );
    assert_eq!(s.state("db1"), HostState::Online);
    // db2 (peer db1 ONLINE and fine) does.
    s.keep(
        "db2",
        CheckKind::RepBacklog,
        Report::error("ERROR: Backlog is too big"),
        5,
    );
    assert_eq!(s.state("db2"), HostState::ReplicationDelay);
}

#[test]
fn peer_grace_period() {
    let mut s = Sim::new("");
    s.online_all();
    // db1 (db2's peer) came ONLINE less than 60 s ago: db2's replication is not judged.
    s.keep(
        "db2",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        5,
    );
    assert_eq!(s.state("db2"), HostState::Online);
    s.advance(Duration::from_secs(60));
    s.keep(
        "db2",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        1,
    );
    assert_eq!(s.state("db2"), HostState::ReplicationFail);
}

#[test]
fn manual_mode_keeps_roles_of_failed_hosts_but_assigns_orphans() {
    let mut s = Sim::new("mode manual");
    s.online_all();
    s.keep("db2", CheckKind::Mysql, Report::error("ERROR: x"), 11);
    assert_eq!(s.state("db2"), HostState::HardOffline);
    assert_eq!(s.roles("db2"), "reader(192.168.8.36)");
    assert_eq!(
        s.cmd(Command::SetMode(Mode::Active)).unwrap(),
        "OK: Switched into active mode."
    );
    assert_eq!(s.roles("db2"), "");
}

#[test]
fn passive_mode_distributes_and_sends_nothing_and_set_ip_works_only_there() {
    let mut s = Sim::new("mode passive");
    s.online_all();
    assert!(s.pushes.is_empty());
    assert_eq!(s.roles("db1"), "");
    assert_eq!(
        s.cmd(Command::SetIp {
            ip: "192.168.8.30".parse().unwrap(),
            host: "db2".into()
        })
        .unwrap(),
        "OK: Set role 'writer(192.168.8.30)' to host 'db2'."
    );
    let e = s
        .cmd(Command::SetIp {
            ip: "192.168.8.99".parse().unwrap(),
            host: "db2".into(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "ERROR: Unknown ip 192.168.8.99!");
    s.cmd(Command::SetMode(Mode::Active)).unwrap();
    assert!(
        s.roles("db2").contains("writer(192.168.8.30)"),
        "an existing assignment is kept"
    );
    assert!(!s.pushes.is_empty());
    let e = s
        .cmd(Command::SetIp {
            ip: "192.168.8.30".parse().unwrap(),
            host: "db1".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ERROR: This command is only allowed in passive mode"
    );
}

#[test]
fn wait_mode_becomes_active_when_both_masters_are_online_or_after_the_wait() {
    let mut s = Sim::new("mode wait\n wait_for_other_master 120");
    s.all_ok("db1");
    s.cmd(Command::SetOnline("db1".into())).unwrap();
    assert_eq!(s.c.mode, Mode::Wait);
    s.advance(Duration::from_secs(121));
    assert_eq!(s.c.mode, Mode::Active);
    assert!(s.logged("Switched into active mode"));
    let mut s = Sim::new("mode wait");
    s.online_all();
    assert_eq!(s.c.mode, Mode::Active);
}

#[test]
fn flapping_hosts_stay_awaiting_recovery_until_set_online() {
    let mut s = Sim::new("flap_count 2\n flap_duration 3600");
    s.online_all();
    for _ in 0..3 {
        s.keep(
            "db3",
            CheckKind::Ping,
            Report::error("ERROR: Could not ping 192.168.8.40"),
            3,
        );
        assert_eq!(s.state("db3"), HostState::HardOffline);
        s.now += SEC;
        s.check("db3", CheckKind::Ping, Report::ok("OK"));
        assert_eq!(s.state("db3"), HostState::AwaitingRecovery);
        let _ = s.cmd(Command::SetOnline("db3".into()));
    }
    assert!(s.logged("Host db3 is flapping!"));
    // set_online clears flapping.
    assert_eq!(s.state("db3"), HostState::Online);
    assert!(!s.c.host("db3").unwrap().flapping);
}

#[test]
fn short_downtime_and_auto_set_online() {
    let mut s = Sim::new("");
    s.online_all();
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    assert_eq!(s.state("db3"), HostState::HardOffline);
    s.agent("db3", 1020); // uptime grew by 20 s: it was not rebooted, down only briefly
    s.now += SEC;
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    assert_eq!(s.state("db3"), HostState::Online);
    assert!(s.logged("State of host 'db3' changed from AWAITING_RECOVERY to ONLINE because it was down for only 20 seconds"));
    // A reboot (uptime reset) never qualifies; auto_set_online does after its delay.
    let mut s = Sim::new("auto_set_online 30");
    s.online_all();
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    s.agent("db3", 5);
    s.now += SEC;
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    assert_eq!(s.state("db3"), HostState::AwaitingRecovery);
    s.advance(Duration::from_secs(29));
    assert_eq!(s.state("db3"), HostState::AwaitingRecovery);
    s.advance(Duration::from_secs(1));
    assert_eq!(s.state("db3"), HostState::Online);
    assert!(s
        .logs
        .iter()
        .any(|l| l.contains("because of auto_set_online(30 seconds)")));
}

#[test]
fn network_down_freezes_state_changes() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::Network { up: false });
    assert!(s.logged("Network is unreachable"));
    s.keep(
        "db1",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        20,
    );
    assert_eq!(s.state("db1"), HostState::Online);
    s.step(Input::Network { up: true });
    assert!(s.logged("Network is reachable"));
    // The outage never counted: a failure now needs its trap period (2 s).
    s.peers_lose_mysqld("db1");
    s.keep(
        "db1",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        1,
    );
    assert_eq!(s.state("db1"), HostState::Online);
    s.keep(
        "db1",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        2,
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
}

#[test]
fn an_unreachable_demoted_host_is_killed() {
    let mut s = Sim::new("");
    s.online_all();
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        3,
    );
    s.step(Input::Pushed {
        host: "db3".into(),
        ok: false,
        epoch: 0,
        gtid: None,
    });
    assert_eq!(s.kills, ["db3"]);
    assert!(s.logged("Can't send offline status notification to 'db3' - killing it!"));
    s.step(Input::Pushed {
        host: "db3".into(),
        ok: false,
        epoch: 0,
        gtid: None,
    });
    assert_eq!(s.kills.len(), 1, "killed once");
}

#[test]
fn commands_reply_with_mmm_texts() {
    let mut s = Sim::new("");
    let e = |r: Result<String, CommandError>| r.unwrap_err().to_string();
    assert_eq!(s.cmd(Command::Ping).unwrap(), "OK: Pinged successfully!");
    assert_eq!(
        e(s.cmd(Command::SetOnline("db9".into()))),
        "ERROR: Unknown host name 'db9'!"
    );
    assert_eq!(
        e(s.cmd(Command::SetOnline("db1".into()))),
        "ERROR: Host 'db1' is 'UNKNOWN' at the moment. It can't be switched to ONLINE."
    );
    s.check("db1", CheckKind::Ping, Report::ok("OK"));
    s.check("db1", CheckKind::Mysql, Report::error("ERROR: x"));
    assert_eq!(s.state("db1"), HostState::HardOffline);
    s.online_all();
    assert_eq!(
        s.cmd(Command::SetOnline("db1".into())).unwrap(),
        "OK: This host is already ONLINE. Skipping command."
    );
    assert_eq!(s.cmd(Command::SetOffline("db3".into())).unwrap(), "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!");
    assert_eq!(
        s.cmd(Command::SetOffline("db3".into())).unwrap(),
        "OK: This host is already ADMIN_OFFLINE. Skipping command."
    );
    assert_eq!(s.roles("db3"), "");
    assert_eq!(s.roles("db2"), "reader(192.168.8.36), reader(192.168.8.37)");
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db3".into(),
            force: false
        })),
        "ERROR: Can't move role to host with state ADMIN_OFFLINE."
    );
    s.cmd(Command::SetOnline("db3".into())).unwrap();
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db3".into(),
            force: false
        })),
        "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2"
    );
    assert_eq!(
        s.cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db1".into(),
            force: false
        })
        .unwrap(),
        "OK: Role is on 'db1' already. Skipping command."
    );
    assert_eq!(s.cmd(Command::MoveRole { role: "writer".into(), host: "db2".into(), force: false }).unwrap(), "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!");
    assert_eq!(s.roles("db2"), "reader(192.168.8.36), writer(192.168.8.30)");
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "boss".into(),
            host: "db2".into(),
            force: false
        })),
        "ERROR: Unknown role name 'boss'!"
    );
    assert!(e(s.cmd(Command::MoveRole {
        role: "reader".into(),
        host: "db2".into(),
        force: false
    }))
    .contains("is balanced"));
    forced_moves_and_modes(&mut s);
}

/// The rest of [`commands_reply_with_mmm_texts`]: `move_role --force` as MMM checks it, and
/// mode commands (the writer is on db2).
fn forced_moves_and_modes(s: &mut Sim) {
    let e = |r: Result<String, CommandError>| r.unwrap_err().to_string();
    // --force: the writer onto a host in REPLICATION_DELAY.
    s.advance(Duration::from_secs(61));
    s.keep(
        "db1",
        CheckKind::RepBacklog,
        Report::error("ERROR: Backlog is too big"),
        3,
    );
    assert_eq!(s.state("db1"), HostState::ReplicationDelay);
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db1".into(),
            force: false
        })),
        "ERROR: Can't move role to host with state REPLICATION_DELAY."
    );
    assert!(e(s.cmd(Command::MoveRole {
        role: "writer".into(),
        host: "db1".into(),
        force: true
    }))
    .contains("--force needs MANUAL mode"));
    s.cmd(Command::SetMode(Mode::Manual)).unwrap();
    s.cmd(Command::MoveRole {
        role: "writer".into(),
        host: "db1".into(),
        force: true,
    })
    .unwrap();
    assert_eq!(s.c.active_master(), Some("db1"));
    assert_eq!(s.roles("db1"), "writer(192.168.8.30)");
    s.cmd(Command::SetOffline("db2".into())).unwrap();
    let msg = e(s.cmd(Command::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: true,
    }));
    assert_eq!(
        msg,
        "ERROR: Can't force move of role to host with state ADMIN_OFFLINE."
    );
    // MMM checks the target's state before "already there", and forces the active master
    // role only.
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db3".into(),
            force: true,
        })),
        "ERROR: Can't force move of role to host with state ONLINE."
    );
    assert_eq!(
        e(s.cmd(Command::MoveRole {
            role: "reader".into(),
            host: "db2".into(),
            force: true,
        })),
        "ERROR: move_role --forced may be used for the active master role only!"
    );
    assert_eq!(
        e(s.cmd(Command::SetMode(Mode::Wait))),
        "ERROR: WAIT mode can only be set in the configuration"
    );
    assert_eq!(
        s.cmd(Command::SetMode(Mode::Active)).unwrap(),
        "OK: Switched into active mode."
    );
}

#[test]
fn an_orphaned_writer_goes_to_the_most_up_to_date_master() {
    let mut s = Sim::new("");
    for (h, p) in [("db1", 100), ("db2", 250), ("db3", 300)] {
        s.step(Input::AgentStatus {
            host: h.into(),
            view: AgentView {
                progress: Some(p),
                uptime_s: Some(1),
                ..Default::default()
            },
        });
    }
    s.cmd(Command::SetMode(Mode::Manual)).unwrap();
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
        s.cmd(Command::SetOnline(h.into())).unwrap();
    }
    // db1 came ONLINE first and took it (sole candidate then). Fail it: db2 is the only other.
    assert_eq!(s.c.active_master(), Some("db1"));
    let mut s2 = Sim::new("mode manual");
    for (h, p) in [("db1", 100), ("db2", 250)] {
        s2.step(Input::AgentStatus {
            host: h.into(),
            view: AgentView {
                progress: Some(p),
                uptime_s: Some(1),
                ..Default::default()
            },
        });
        s2.all_ok(h);
    }
    // Both become eligible in the same pass (passive → manual): db2 is further ahead.
    s2.cmd(Command::SetMode(Mode::Passive)).unwrap();
    s2.cmd(Command::SetOnline("db1".into())).unwrap();
    s2.cmd(Command::SetOnline("db2".into())).unwrap();
    s2.cmd(Command::SetMode(Mode::Manual)).unwrap();
    assert_eq!(s2.c.active_master(), Some("db2"));
}

#[test]
fn status_file_round_trips_and_epoch_only_grows() {
    let mut s = Sim::new("");
    s.online_all();
    let text = status_file::render(&s.c);
    assert!(text.starts_with(&format!("#epoch {}\n", s.c.epoch)));
    assert!(text.contains("db1|ONLINE|writer(192.168.8.30)\n"));
    let saved = status_file::parse(&text).unwrap();
    let mut c2 = Cluster::new(&config(""), 0);
    c2.restore(&saved);
    assert_eq!(c2.epoch, s.c.epoch);
    assert_eq!(
        c2.host("db2").unwrap().roles,
        s.c.host("db2").unwrap().roles
    );
    assert!(status_file::parse("db1|SLEEPY|")
        .unwrap_err()
        .contains("line 1: unknown state"));
    assert!(status_file::parse("#epoch x").is_err());
    assert!(status_file::parse("db1|ONLINE|writer(1.2.3)").is_err());
    // A restored epoch never goes back.
    let mut c3 = Cluster::new(&config(""), 500);
    c3.restore(&saved);
    assert_eq!(c3.epoch, 500);
}
