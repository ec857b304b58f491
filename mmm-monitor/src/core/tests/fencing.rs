//! `kill_host_fences`: a failed-over writer nobody can confirm is fenced by `kill_host_bin`
//! (`holistic.rs` `start_fence_wait`, `on_fenced`), under simulated time.

use super::*;

const FENCES: &str = "kill_host_bin /usr/lib/mysql-mmm/fence\nkill_host_fences yes";

/// db1's host vanishes: its agent is unreachable, both peers lose it, the monitor's own
/// ping and mysql checks fail (two observers): it is HARD_OFFLINE and failed over.
fn host_down(s: &mut Sim) {
    s.online_all();
    s.step(Input::AgentUnreachable { host: "db1".into() });
    s.peer_says("db2", &["db1"], &["db1"]);
    s.peer_says("db3", &["db1"], &["db1"]);
    s.now += Duration::from_millis(100);
    s.unreachable("db1");
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert_eq!(s.c.active_master(), None, "no writer before the fence");
}

fn fenced(s: &mut Sim, run: u64, ok: bool) {
    s.step(Input::Fenced {
        host: "db1".into(),
        run,
        ok,
    });
}

#[test]
fn a_fenced_writer_hands_over_at_once_without_the_lease_wait() {
    let mut s = Sim::new(FENCES);
    host_down(&mut s);
    assert_eq!(s.fences, vec![("db1".to_string(), false, 1)]);
    assert!(s
        .logs
        .iter()
        .any(|l| l.starts_with("Fencing old writer 'db1'")));
    // Its agent cannot be told: the fence was the kill, kill_host_bin does not run again.
    let epoch = s.c.epoch;
    s.step(Input::Pushed {
        host: "db1".into(),
        ok: false,
        epoch,
        gtid: None,
    });
    assert!(s.kills.is_empty(), "{:?}", s.kills);
    fenced(&mut s, 1, true);
    assert_eq!(s.c.active_master(), Some("db2"), "at the same instant");
    assert!(
        s.logged("Old writer 'db1' is fenced (kill_host_bin fenced it): the writer role may move")
    );
}

#[test]
fn a_failed_or_stale_fence_leaves_the_lease_wait() {
    let mut s = Sim::new(FENCES);
    host_down(&mut s);
    // Another run's answer (an earlier fence wait's) ends nothing.
    fenced(&mut s, 7, true);
    assert_eq!(s.c.active_master(), None);
    fenced(&mut s, 1, false);
    assert_eq!(s.c.active_master(), None);
    assert!(s
        .logs
        .iter()
        .any(|l| l.starts_with("kill_host_bin could not fence old writer 'db1'")));
    // The lease still ends the wait.
    let until = s.now + s.c.writer_lease + s.c.lease_margin;
    while s.now < until {
        s.advance(Duration::from_millis(100));
    }
    s.advance(Duration::from_millis(100));
    assert_eq!(s.c.active_master(), Some("db2"));
}

#[test]
fn without_kill_host_fences_kill_host_bin_fences_nothing() {
    for extra in [
        "kill_host_bin /usr/lib/mysql-mmm/fence",
        "kill_host_fences no",
    ] {
        let mut s = Sim::new(extra);
        host_down(&mut s);
        assert!(s.fences.is_empty(), "{extra}");
        fenced(&mut s, 1, true);
        assert_eq!(s.c.active_master(), None, "{extra}");
    }
}

#[test]
fn a_writer_whose_agent_saw_mysqld_die_needs_no_fence() {
    let mut s = Sim::new(FENCES);
    s.online_all();
    s.mysqld("db1", false, true);
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.c.active_master(), Some("db2"));
    assert!(s.fences.is_empty());
}

#[test]
fn with_the_lease_off_the_role_waits_for_the_fence_a_margin_at_most() {
    let mut s = Sim::new(&format!("{FENCES}\n"));
    s.c.writer_lease = Duration::ZERO;
    host_down(&mut s);
    assert_eq!(s.fences.len(), 1);
    let until = s.c.fence.as_ref().unwrap().renewable_at + s.c.lease_margin;
    while s.now + Duration::from_millis(100) < until {
        s.advance(Duration::from_millis(100));
        assert_eq!(s.c.active_master(), None, "at {:?}", s.now);
    }
    s.advance(Duration::from_millis(200));
    assert_eq!(s.c.active_master(), Some("db2"));
}

#[test]
fn a_new_term_forgets_its_fencing_run() {
    let mut s = Sim::new(FENCES);
    host_down(&mut s);
    s.c.stand_by();
    s.c.take_office(s.now, true);
    fenced(&mut s, 1, true);
    assert_eq!(s.c.active_master(), None, "the old term's run ends nothing");
}
