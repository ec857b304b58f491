//! Never promote a master known to be behind (`promotion.rs`), under simulated time.

use super::*;

/// db2's agent reports its replication from db1, receiving (`io`) or not.
fn db2_replicates(s: &mut Sim, io: bool) {
    s.view(
        "db2",
        AgentView {
            uptime_s: Some(1000),
            source_ip: Some(Ipv4Addr::new(192, 168, 8, 32)),
            replica_io_running: Some(io),
            ..Default::default()
        },
    );
}

#[test]
fn a_standby_whose_replication_had_stopped_is_not_promoted_until_an_admin_accepts() {
    let mut s = Sim::new("");
    s.online_all();
    db2_replicates(&mut s, true);
    s.now += Duration::from_secs(10);
    db2_replicates(&mut s, false);
    s.now += Duration::from_secs(10);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), None);
    let veto = "Host 'db2' is not promoted: its replication IO thread had stopped receiving 21s before the writer failed; it would lose acknowledged writes. The writer role stays unassigned; `move_role writer db2` accepts the loss";
    assert!(s.logged(veto), "{:?}", s.logs);
    s.advance(Duration::from_secs(5));
    assert_eq!(
        s.logs.iter().filter(|l| *l == veto).count(),
        1,
        "logged once"
    );
    assert_eq!(s.c.active_master(), None);
    s.cmd(Command::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    })
    .unwrap();
    assert_eq!(s.c.active_master(), Some("db2"));
}

#[test]
fn a_standby_receiving_until_the_failure_is_promoted_at_once() {
    let mut s = Sim::new("");
    s.online_all();
    s.now += Duration::from_secs(10);
    db2_replicates(&mut s, true);
    // Its IO thread goes `Connecting` the moment db1 dies: that does not count.
    s.now += Duration::from_millis(900);
    db2_replicates(&mut s, false);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), Some("db2"));
}

#[test]
fn the_writer_role_cannot_be_moved_while_the_old_writer_may_hold_its_lease() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentUnreachable { host: "db1".into() });
    s.peer_says("db2", &["db1"], &["db1"]);
    s.peer_says("db3", &["db1"], &["db1"]);
    for _ in 0..2 {
        s.now += SEC;
        host_gone(&mut s, "db1");
    }
    assert_eq!(s.state("db1"), HostState::HardOffline);
    let e = s
        .cmd(Command::MoveRole {
            role: "writer".into(),
            host: "db2".into(),
            force: false,
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("waits until the old writer 'db1' is fenced"),
        "{e}"
    );
    s.advance(s.c.writer_lease + s.c.lease_margin);
    assert_eq!(s.c.active_master(), Some("db2"));
}

#[test]
fn a_master_with_errant_transactions_is_kept_out_and_never_promoted() {
    let mut s = Sim::new("");
    s.online_all();
    // db2 reports errant transactions; its replication check fails: REPLICATION_FAIL at once
    // (no grace although its peer came ONLINE moments ago).
    s.view(
        "db2",
        AgentView {
            uptime_s: Some(1000),
            errant: true,
            ..Default::default()
        },
    );
    s.now += SEC;
    s.check(
        "db2",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
    );
    s.keep(
        "db2",
        CheckKind::RepThreads,
        Report::error("ERROR: Replication is broken"),
        3,
    );
    assert_eq!(s.state("db2"), HostState::ReplicationFail);
    // The writer dies: db2 stays out (MMM would bring it back ONLINE, its peer gone), nobody
    // is promoted.
    kill_db1(&mut s);
    s.advance(Duration::from_secs(5));
    assert_eq!(s.state("db2"), HostState::ReplicationFail);
    assert_eq!(s.c.active_master(), None);
    // Were it ONLINE (an admin's set_online), it would still not be promoted.
    assert!(s.c.promotion_veto(1).is_some_and(|w| w.contains("errant")));
}

#[test]
fn a_standby_cut_off_from_the_writer_before_it_died_is_not_promoted() {
    let mut s = Sim::new("");
    s.online_all();
    db2_replicates(&mut s, true);
    // The masters lose each other (db2's IO thread still says Yes: a silent cut).
    s.peer_says("db2", &["db1"], &["db1"]);
    for _ in 0..10 {
        s.now += SEC;
        db2_replicates(&mut s, true);
    }
    // db1's mysqld dies (hard evidence); db2 still cannot reach it, db3 can't log in.
    s.mysqld("db1", false, true);
    s.peer_says("db3", &[], &["db1"]);
    s.now += SEC;
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert_eq!(s.c.active_master(), None);
    assert!(
        s.logs
            .iter()
            .any(|l| l.contains("Host 'db2' is not promoted: its agent could not reach the writer")),
        "{:?}",
        s.logs
    );
    // A whole host that dies is lost to the peers' pings moments before the decision: that
    // is no reason to refuse.
    let mut s = Sim::new("");
    s.online_all();
    db2_replicates(&mut s, true);
    s.peer_says("db2", &["db1"], &[]);
    s.peer_says("db3", &["db1"], &[]);
    s.step(Input::AgentUnreachable { host: "db1".into() });
    s.now += SEC;
    host_gone(&mut s, "db1");
    s.advance(s.c.writer_lease + s.c.lease_margin);
    assert_eq!(s.c.active_master(), Some("db2"), "{:?}", s.logs);
}

#[test]
fn nobody_is_promoted_when_the_writer_last_said_it_committed_without_an_acknowledgement() {
    // db2 catches up after a cut and db1's agent says semi-sync fell back (db2 was away):
    // what db1 acknowledged meanwhile is on db1 alone.
    let fell_back = |s: &mut Sim, yes: bool| {
        s.view(
            "db1",
            AgentView {
                uptime_s: Some(1000),
                semisync_fell_back: yes,
                ..Default::default()
            },
        )
    };
    let mut s = Sim::with("", "semisync yes\n");
    s.online_all();
    db2_replicates(&mut s, true);
    fell_back(&mut s, true);
    s.now += SEC;
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), None);
    assert!(
        s.logs.iter().any(|l| l.contains(
            "Host 'db2' is not promoted: the writer's agent last reported it committing without a semi-sync acknowledgement"
        )),
        "{:?}",
        s.logs
    );
    // Semi-sync back on (db2 acknowledges again) before db1 dies: db2 has it all.
    let mut s = Sim::with("", "semisync yes\n");
    s.online_all();
    db2_replicates(&mut s, true);
    fell_back(&mut s, true);
    s.now += SEC;
    fell_back(&mut s, false);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), Some("db2"));
    // A status built while db1's server did not answer (the flag unreadable) keeps the last
    // word; a word older than FELL_BACK_FRESH says nothing.
    let mut s = Sim::with("", "semisync yes\n");
    s.online_all();
    db2_replicates(&mut s, true);
    fell_back(&mut s, true);
    s.view(
        "db1",
        AgentView {
            uptime_s: Some(1000),
            mysqld_down: true,
            ..Default::default()
        },
    );
    assert!(s.c.host("db1").unwrap().agent.semisync_fell_back);
    let mut s = Sim::with("", "semisync yes\n");
    s.online_all();
    fell_back(&mut s, true);
    s.now += crate::core::promotion::FELL_BACK_FRESH + SEC;
    db2_replicates(&mut s, true);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), Some("db2"), "{:?}", s.logs);
    // Without semi-sync the flag means nothing (nobody would ever be promoted).
    let mut s = Sim::new("");
    s.online_all();
    db2_replicates(&mut s, true);
    fell_back(&mut s, true);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), Some("db2"));
}
