//! Start-up (`docs/mmm-2.2.1.md` §5): waiting for the agents, adopting the running writer,
//! conflicts, repairs of drifted agents and epoch bounds.

use super::*;

fn serving(ips: &[&str], writable: bool) -> AgentView {
    AgentView {
        writable: Some(writable),
        configured_ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
        owned_ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
        uptime_s: Some(1000),
        ..Default::default()
    }
}

#[test]
fn startup_waits_for_the_agents_then_keeps_the_running_writer() {
    // No status file; db2 is the running writer (writable, holds the writer IP, db3 reads
    // from it). Roles wait for the agents' reports, then db2 keeps the role and is ONLINE.
    let mut s = Sim::cold("", "");
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
    }
    s.view("db1", serving(&[], false));
    assert!(
        s.pushes.is_empty(),
        "distributed before every agent reported"
    );
    s.view("db2", serving(&["192.168.8.30"], true));
    s.view(
        "db3",
        AgentView {
            source_ip: Some("192.168.8.33".parse().unwrap()),
            uptime_s: Some(5),
            ..Default::default()
        },
    );
    assert!(
        s.logs
            .iter()
            .any(|l| l.starts_with("Start-up vote for the active master: db1=0, db2=8")),
        "{:#?}",
        s.logs
    );
    assert_eq!(s.state("db2"), HostState::Online);
    assert!(
        s.roles("db2").contains("writer(192.168.8.30)"),
        "{}",
        s.roles("db2")
    );
    assert_eq!(s.state("db1"), HostState::AwaitingRecovery);
    assert_eq!(
        s.pushes.last().unwrap().active_master.as_deref(),
        Some("db2")
    );
}

#[test]
fn startup_without_evidence_assigns_nothing_and_after_the_window_goes_on() {
    let mut s = Sim::cold("", "");
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
    }
    s.view("db1", serving(&[], false));
    // db2 and db3 never answer: the start-up window (2 × agent_timeout) ends the wait.
    s.advance(Duration::from_secs(5));
    assert!(
        s.logs.iter().any(|l| l.contains("no host serves it")),
        "{:#?}",
        s.logs
    );
    for h in ["db1", "db2", "db3"] {
        assert_eq!(s.state(h), HostState::AwaitingRecovery);
    }
}

#[test]
fn startup_conflict_goes_passive_with_careful_startup() {
    let mut s = Sim::cold("", "");
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
    }
    s.view("db1", serving(&["192.168.8.30"], true));
    s.view("db2", serving(&["192.168.8.30"], true));
    s.view("db3", serving(&[], false));
    assert_eq!(s.c.mode, Mode::Passive);
    assert_eq!(s.c.passive_cause.as_deref(), Some("Conflicting roles at start-up (careful_startup): 192.168.8.30 is configured on db1 and db2"));
    assert!(s.pushes.is_empty());
    // Without careful_startup the vote decides (db1: earlier in the list on a tie).
    let mut s = Sim::cold("careful_startup 0", "");
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
    }
    s.view("db1", serving(&["192.168.8.30"], true));
    s.view("db2", serving(&["192.168.8.30"], true));
    s.view("db3", serving(&[], false));
    assert_eq!(s.c.mode, Mode::Active);
    assert_eq!(s.roles("db1"), "writer(192.168.8.30)");
    assert_eq!(s.roles("db2"), "");
}

#[test]
fn a_check_failing_within_its_trap_period_does_not_bring_a_host_back() {
    let mut s = Sim::new("");
    s.online_all();
    s.keep("db3", CheckKind::Mysql, Report::error("ERROR: Timeout"), 3);
    assert_eq!(s.state("db3"), HostState::HardOffline);
    // mysqld is back, but the last ping failed (for less than the trap period).
    s.now += SEC;
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping 192.168.8.40"),
    );
    s.check("db3", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(
        s.state("db3"),
        HostState::HardOffline,
        "recovered on a failing ping"
    );
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    assert_eq!(s.state("db3"), HostState::AwaitingRecovery);
    // set_online is refused while a failure is pending.
    s.check(
        "db3",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping 192.168.8.40"),
    );
    let e = s
        .cmd(Command::SetOnline("db3".into()))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "ERROR: Checks ping and/or mysql are not ok for host 'db3'. It can't be switched to ONLINE.");
    s.check("db3", CheckKind::Ping, Report::ok("OK"));
    s.cmd(Command::SetOnline("db3".into())).unwrap();
}

#[test]
fn an_agent_that_differs_from_its_applied_table_is_repaired() {
    let mut s = Sim::new("");
    s.online_all();
    let t = s.pushes.last().unwrap().clone();
    let line = t.host("db3").unwrap().clone();
    let owned: Vec<_> = line.roles.iter().map(|r| r.ip).collect();
    let view = |writable, owned: Vec<std::net::Ipv4Addr>, epoch| AgentView {
        uptime_s: Some(1000),
        writable: Some(writable),
        configured_ips: owned.clone(),
        owned_ips: owned,
        source_ip: Some("192.168.8.32".parse().unwrap()),
        applied_epoch: epoch,
        ..Default::default()
    };
    // Not yet applied: nothing judged.
    s.view("db3", view(true, owned.clone(), t.epoch - 1));
    assert!(s.repairs.is_empty());
    // Applied, but writable behind our back: ERROR, pushed again, counted, shown.
    s.view("db3", view(true, owned.clone(), t.epoch));
    assert_eq!(s.repairs, ["db3"]);
    let msg = format!(
        "Host 'db3' differs from its role table (epoch {}): writable without the writer role; pushing it again",
        t.epoch
    );
    assert!(s.logged(&msg), "{:#?}", s.logs);
    assert_eq!(s.c.host("db3").unwrap().repairs, 1);
    // Still drifting: pushed again, logged once.
    s.view("db3", view(true, owned.clone(), t.epoch));
    assert_eq!(s.repairs.len(), 2);
    assert_eq!(s.logs.iter().filter(|l| **l == msg).count(), 1);
    // Repaired.
    s.view("db3", view(false, owned.clone(), t.epoch));
    assert!(s.logged("Host 'db3' agrees with its role table again"));
    assert_eq!(s.c.host("db3").unwrap().drift, None);
    // A VIP it does not own, and a wrong replication source, are drift too.
    s.view(
        "db3",
        AgentView {
            source_ip: Some("192.168.8.99".parse().unwrap()),
            ..view(false, vec![], t.epoch)
        },
    );
    let d = s.c.host("db3").unwrap().drift.clone().unwrap();
    assert!(
        d.contains("is assigned but not LOCAL") && d.contains("replicating from 192.168.8.99"),
        "{d}"
    );
    // A LOCAL VIP whose /32 is gone (removed by hand): drift, pushed again (the agent's
    // planner acquires it again).
    s.view(
        "db3",
        AgentView {
            configured_ips: owned[1..].to_vec(),
            ..view(false, owned.clone(), t.epoch)
        },
    );
    let d = s.c.host("db3").unwrap().drift.clone().unwrap();
    assert!(
        d.contains("is assigned but its /32 is not configured"),
        "{d}"
    );
}

#[test]
fn an_absurd_epoch_from_an_agent_is_not_adopted_and_epochs_never_wrap() {
    let mut s = Sim::new("");
    s.online_all();
    let before = s.c.epoch;
    s.step(Input::StaleEpoch { applied: u64::MAX });
    assert_eq!(s.c.epoch, before);
    assert!(s
        .logs
        .iter()
        .any(|l| l.contains("too close to the largest epoch")));
    // At the very top, a change publishes nothing rather than wrapping to 0.
    s.c.epoch = u64::MAX;
    let pushed = s.pushes.len();
    s.cmd(Command::SetOffline("db3".into())).unwrap();
    assert_eq!(s.pushes.len(), pushed);
    assert_eq!(s.c.epoch, u64::MAX);
}
