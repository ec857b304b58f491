//! Holistic detection and the writer lease's wait (`holistic.rs`), under simulated time.

use super::*;

fn fail_writer(s: &mut Sim, secs: u64) {
    for _ in 0..secs {
        s.now += SEC;
        s.unreachable("db1");
    }
}

/// db1's mysql check fails for 3 s; `polled`: its agent keeps answering the status poll.
fn mysql_fails(s: &mut Sim, polled: bool) {
    let view = AgentView {
        uptime_s: Some(1000),
        ..Default::default()
    };
    mysql_fails_answering(s, polled.then_some(view));
}

/// db1's mysql check fails for 3 s while its agent answers each status poll with `view`.
fn mysql_fails_answering(s: &mut Sim, view: Option<AgentView>) {
    for _ in 0..3 {
        s.now += SEC;
        s.check(
            "db1",
            CheckKind::Mysql,
            Report::error("ERROR: Connect error"),
        );
        if let Some(v) = &view {
            s.view("db1", v.clone());
        }
    }
}

fn writer_on(s: &Sim) -> Option<String> {
    s.c.active_master().map(str::to_string)
}

#[test]
fn a_writer_only_the_monitor_cannot_reach_is_not_failed_over() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::AgentUnreachable { host: "db1".into() });
    fail_writer(&mut s, 30);
    assert_eq!(s.state("db1"), HostState::Online);
    assert_eq!(writer_on(&s).as_deref(), Some("db1"));
    let a = s.c.host("db1").unwrap().analysis.clone();
    assert_eq!(
        a,
        Some(Analysis::UnreachableWriter {
            via: vec!["db2".into(), "db3".into()]
        })
    );
    assert_eq!(
        s.logs
            .iter()
            .filter(|l| l.contains("UNREACHABLE_WRITER"))
            .count(),
        1,
        "logged once"
    );
    // Its link comes back: the analysis goes, nothing moved.
    s.now += SEC;
    s.check("db1", CheckKind::Ping, Report::ok("OK"));
    s.check("db1", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(s.c.host("db1").unwrap().analysis, None);
    assert!(s.logged("Writer 'db1' is reachable from the monitor again"));
}

#[test]
fn a_writer_nobody_reaches_is_failed_over_once_its_lease_must_have_run_out() {
    // The margin over the lease grows with the peers' probe period (default 200 ms: 500 ms).
    for (extra, margin_ms) in [
        ("", 500),
        ("peer_ping_interval 1s\nwriter_lease 5s\n", 1300),
    ] {
        let s = Sim::with("", extra);
        assert_eq!(
            s.c.lease_margin,
            Duration::from_millis(margin_ms),
            "{extra}"
        );
    }
    let mut s = Sim::new("");
    s.online_all();
    let last_heard = s.now;
    s.step(Input::AgentUnreachable { host: "db1".into() });
    s.peer_says("db2", &["db1"], &["db1"]);
    s.peer_says("db3", &["db1"], &["db1"]);
    let lost_at = s.now;
    fail_writer(&mut s, 2);
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert_eq!(
        s.c.host("db1").unwrap().analysis,
        Some(Analysis::DeadWriter)
    );
    // The table without a writer went out first (db1, if alive, is told to fence).
    assert!(s.pushes.last().unwrap().active_master.is_none());
    // db1 may have renewed its lease until the peers lost it.
    let until = lost_at.max(last_heard) + s.c.writer_lease + s.c.lease_margin;
    while s.now + Duration::from_millis(100) < until {
        s.advance(Duration::from_millis(100));
        assert_eq!(writer_on(&s), None, "at {:?}", s.now);
    }
    s.advance(Duration::from_millis(200));
    assert_eq!(writer_on(&s).as_deref(), Some("db2"));
    assert!(s
        .logs
        .iter()
        .any(|l| l.starts_with("Old writer 'db1' is fenced (its writer lease")));
}

#[test]
fn a_hung_writer_whose_agent_confirms_the_demotion_hands_over_at_once() {
    let mut s = Sim::new("");
    s.online_all();
    // The agent answers; its mysqld does not (a timeout: no hard evidence), nor the peers'.
    s.mysqld("db1", false, false);
    s.peers_lose_mysqld("db1");
    mysql_fails(&mut s, true);
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert_eq!(writer_on(&s), None, "its lease is renewed while it answers");
    s.advance(Duration::from_secs(10));
    s.agent("db1", 1000);
    assert_eq!(writer_on(&s), None);
    let epoch = s.pushes.last().unwrap().epoch;
    s.step(Input::Pushed {
        host: "db1".into(),
        ok: true,
        epoch,
        gtid: Some("0-1-99".into()),
    });
    assert_eq!(writer_on(&s).as_deref(), Some("db2"));
    assert!(s.logged("Old writer 'db1' is fenced (its agent confirmed it gave the role up): the writer role may move"));
    // It is alive: the new writer applies its final position first (what it acknowledged
    // after its last report, or after a semisync fallback, is not lost).
    let t = s.pushes.last().unwrap();
    assert_eq!(t.active_master.as_deref(), Some("db2"));
    assert_eq!(t.catch_up.as_deref(), Some("0-1-99"));
}

#[test]
fn a_fallen_back_writer_that_confirms_its_final_position_hands_over_under_catchup_strict() {
    // A live writer (its agent answers, saying semi-sync fell back: what it acknowledged may
    // be on no other host) is failed over on the monitor's failing mysql check — a lossy link.
    for (extra, promoted) in [
        ("semisync yes\n", true),
        ("semisync yes\ncatchup_strict no\n", false),
    ] {
        let mut s = Sim::with("", extra);
        s.online_all();
        s.mysqld("db1", false, false);
        s.peers_lose_mysqld("db1");
        let fell_back = AgentView {
            uptime_s: Some(1000),
            semisync_fell_back: true,
            ..Default::default()
        };
        mysql_fails_answering(&mut s, Some(fell_back));
        assert_eq!(s.state("db1"), HostState::HardOffline, "{extra}");
        let epoch = s.pushes.last().unwrap().epoch;
        s.step(Input::Pushed {
            host: "db1".into(),
            ok: true,
            epoch,
            gtid: Some("0-1-1244".into()),
        });
        if promoted {
            // Strict: db2 applies db1's final position (which holds every write db1
            // acknowledged) before it becomes writable, or refuses and is asked again.
            assert_eq!(writer_on(&s).as_deref(), Some("db2"), "{:?}", s.logs);
            let t = s.pushes.last().unwrap();
            assert_eq!(t.catch_up.as_deref(), Some("0-1-1244"));
        } else {
            // Not strict, a catch-up that times out would promote anyway: nobody is promoted.
            assert_eq!(writer_on(&s), None, "{:?}", s.logs);
            assert!(s
                .logs
                .iter()
                .any(|l| l.contains("Host 'db2' is not promoted")));
        }
    }
}

#[test]
fn hard_evidence_or_no_lease_hands_over_at_once() {
    for (checks, hard) in [("", true), ("writer_lease 0\n", false)] {
        let mut s = Sim::with("", checks);
        s.online_all();
        s.step(Input::AgentHealth {
            host: "db1".into(),
            up: !hard,
            hard,
            peers_down: vec![],
            peers_mysqld_down: vec![],
        });
        s.peers_lose_mysqld("db1");
        mysql_fails(&mut s, false);
        assert_eq!(s.state("db1"), HostState::HardOffline, "{checks}");
        assert_eq!(writer_on(&s).as_deref(), Some("db2"), "{checks}");
    }
}

#[test]
fn a_planned_switchover_waits_until_the_old_writer_is_read_only() {
    let mut s = Sim::new("");
    s.online_all();
    let before = s.pushes.len();
    let r = s.step(Input::Command(Command::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    }));
    assert!(matches!(r, Some(Ok(_))), "{r:?}");
    // First a table without a writer: db1 becomes read-only and closes its clients.
    let first = s.pushes[before].clone();
    assert_eq!(first.active_master, None);
    assert_eq!(writer_on(&s), None);
    // db2 and db3 answer at once; db1 takes its time: nothing moves before it answers, even
    // past its lease (its agent answers the status polls: it is alive and may still write).
    for h in ["db2", "db3"] {
        s.step(Input::Pushed {
            host: h.into(),
            ok: true,
            epoch: first.epoch,
            gtid: None,
        });
    }
    s.advance(Duration::from_secs(5));
    s.agent("db1", 1000);
    assert_eq!(writer_on(&s), None);
    s.step(Input::Pushed {
        host: "db1".into(),
        ok: true,
        epoch: first.epoch,
        gtid: Some("0-1-4711".into()),
    });
    assert_eq!(writer_on(&s).as_deref(), Some("db2"));
    // The new writer applies the old one's final position before it becomes writable.
    let t = s.pushes.last().unwrap();
    assert_eq!(t.active_master.as_deref(), Some("db2"));
    assert_eq!(t.catch_up.as_deref(), Some("0-1-4711"));
}

#[test]
fn a_lost_ping_a_peer_also_lost_is_no_evidence_while_mysql_answers() {
    // A lossy network (#18): our ping of db3 fails once and db2's agent misses two pings of
    // it too, but our mysql check of db3 succeeds. No shortcut: the ping's trap period runs.
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    s.check("db3", CheckKind::Mysql, Report::ok("OK"));
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    s.peer_says("db2", &["db3"], &[]);
    assert_eq!(s.state("db3"), HostState::Online);
    s.now += SEC;
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    s.peer_says("db2", &[], &[]);
    s.advance(10 * SEC);
    assert_eq!(s.state("db3"), HostState::Online);
    // A ping that keeps failing for its whole trap period still counts (MMM), mysql or not.
    s.keep(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
        30,
    );
    assert_eq!(s.state("db3"), HostState::HardOffline);
}

#[test]
fn a_peer_confirms_a_lost_ping_at_once_when_mysql_does_not_answer_either() {
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    s.check(
        "db3",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    s.peer_says("db2", &["db3"], &["db3"]);
    assert_eq!(s.state("db3"), HostState::HardOffline);
}

#[test]
fn a_failed_mysql_check_a_peer_seems_to_confirm_waits_while_ping_answers() {
    // Our mysql check of db3 times out once (a lost SYN) while our ping answers, and db2's
    // agent misses two pings of db3 at the same moment: a lossy network, not a dead host.
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    s.check(
        "db3",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    s.peer_says("db2", &["db3"], &[]);
    assert_eq!(s.state("db3"), HostState::Online);
    s.now += SEC;
    s.all_ok("db3");
    assert_eq!(s.state("db3"), HostState::Online);
}

#[test]
fn only_the_hosts_probing_the_writer_judge_its_lease() {
    // Two masters and eight slaves, one neighbour each side (`Config::peers_of`): db1 is
    // probed by db2 (its neighbour and the other candidate) and db10 (the ring wraps) only.
    let mut text = "peer_neighbours 1\n".to_string();
    for i in 1..=10 {
        let mode = match i {
            1 => "master\n peer db2",
            2 => "master\n peer db1",
            _ => "slave",
        };
        text += &format!(
            "<host db{i}>\n ip 198.18.0.{}\n mode {mode}\n</host>\n",
            10 + i
        );
    }
    text += "<role writer>\n hosts db1, db2\n ips 198.18.0.100\n mode exclusive\n</role>\n";
    let cfg = Config::parse_str(Path::new("ten.conf"), &text).unwrap();
    let mut c = Cluster::new(&cfg, 0);
    let i = c.idx("db1").unwrap();
    let names: Vec<&str> = c.hosts[i]
        .probed_by
        .iter()
        .map(|j| c.hosts[*j].name.as_str())
        .collect();
    assert_eq!(names, ["db2", "db10"]);
    let says = |c: &mut Cluster, host: &str, down: &[&str]| {
        let j = c.idx(host).unwrap();
        c.hosts[j].agent.reachable = true;
        c.hosts[j].agent.peers_down = down.iter().map(|d| d.to_string()).collect();
    };
    // Slaves that do not probe db1 say nothing about it, however many they are.
    for h in ["db4", "db5", "db6", "db7"] {
        says(&mut c, h, &[]);
    }
    says(&mut c, "db2", &["db1"]);
    says(&mut c, "db10", &["db1"]);
    assert!(!c.majority_may_reach(i), "db1's probers all lost it");
    // One of its two probers still reaches it: with itself, a majority of three.
    says(&mut c, "db10", &[]);
    assert!(c.majority_may_reach(i));
}

#[test]
fn the_same_check_result_again_runs_no_pass_and_reachability_ends_at_the_input() {
    let mut s = Sim::new("");
    s.online_all();
    s.now += Duration::from_millis(10);
    let again = s.c.step(
        Input::Check {
            host: "db1".into(),
            check: CheckKind::Ping,
            report: Report::ok("OK"),
        },
        s.now,
    );
    assert!(again.is_empty(), "{again:?}");
    // Passes skip inputs, so the last pass before the peers' reports may be long gone: the
    // report that ended "a majority may reach db1" is when it may last have renewed.
    s.advance(Duration::from_millis(250));
    s.now += Duration::from_millis(200);
    s.peer_says("db2", &["db1"], &[]);
    s.peer_says("db3", &["db1"], &[]);
    assert_eq!(s.c.host("db1").unwrap().majority_reach_at, Some(s.now));
    s.advance(Duration::from_millis(250));
    assert_eq!(
        s.c.host("db1").unwrap().majority_reach_at,
        Some(s.now - Duration::from_millis(250))
    );
}
