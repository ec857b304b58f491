//! The seed's HA walk-through (`000_*.txt` steps 9–12) under simulated time.

use super::*;

const CONNECT_ERR: &str = "ERROR: Connect error (host = 192.168.8.33:3306, user = mmm_monitor)! Can't connect to MySQL server on '192.168.8.33' (111)";

#[test]
fn seed_walk_through() {
    // The seed ran MMM's defaults; written in a config, they are honoured.
    let mut s = Sim::with("", MMM_CHECKS);
    seed_start(&mut s);
    seed_db2_stops_and_returns(&mut s);
    seed_db1_stops(&mut s);
}

/// Seed steps 9–11: first start, set_online, roles given out.
fn seed_start(s: &mut Sim) {
    // (9) first start: every host AWAITING_RECOVERY, no roles.
    for h in ["db1", "db2", "db3"] {
        s.all_ok(h);
        assert_eq!(s.state(h), HostState::AwaitingRecovery);
    }
    // (10) set_online every host.
    assert_eq!(
        s.cmd(Command::SetOnline("db1".into())).unwrap(),
        "OK: State of 'db1' changed to ONLINE. Now you can wait some time and check its new roles!"
    );
    s.cmd(Command::SetOnline("db2".into())).unwrap();
    s.cmd(Command::SetOnline("db3".into())).unwrap();
    // (11) writer on db1, one reader each on db2 and db3.
    assert_eq!(s.roles("db1"), "writer(192.168.8.30)");
    assert_eq!(s.roles("db2"), "reader(192.168.8.36)");
    assert_eq!(s.roles("db3"), "reader(192.168.8.37)");
}

/// Seed step 12: db2's mysqld stops (reader moves to db3), starts, set_online.
fn seed_db2_stops_and_returns(s: &mut Sim) {
    // (12) stop db2's mysqld: after the trap period HARD_OFFLINE, its reader moves to db3.
    s.keep("db2", CheckKind::Mysql, Report::error(CONNECT_ERR), 9);
    assert_eq!(
        s.state("db2"),
        HostState::Online,
        "trap period not over yet"
    );
    s.keep("db2", CheckKind::Mysql, Report::error(CONNECT_ERR), 2);
    assert_eq!(s.state("db2"), HostState::HardOffline);
    for line in [
        "State of host 'db2' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)",
        "Removing all roles from host 'db2':",
        "Removed role 'reader(192.168.8.36)' from host 'db2'",
        "Orphaned role 'reader(192.168.8.36)' has been assigned to 'db3'",
    ] {
        assert!(s.logged(line), "missing log line: {line}\n{:#?}", s.logs);
    }
    assert!(s.logs.iter().any(|l| l.starts_with(
        "Check 'mysql' on 'db2' has failed for 10 seconds! Message: ERROR: Connect error"
    )));
    assert_eq!(s.roles("db3"), "reader(192.168.8.36), reader(192.168.8.37)");
    // start it again: AWAITING_RECOVERY, no roles.
    s.now += SEC;
    s.check("db2", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(s.state("db2"), HostState::AwaitingRecovery);
    assert!(s.logged("State of host 'db2' changed from HARD_OFFLINE to AWAITING_RECOVERY"));
    assert!(s.logged("Check 'mysql' on 'db2' is ok!"));
    assert_eq!(s.roles("db2"), "");
    // set_online: the reader comes back.
    s.cmd(Command::SetOnline("db2".into())).unwrap();
    assert!(s.logged("Admin changed state of 'db2' from AWAITING_RECOVERY to ONLINE"));
    assert!(s.logged("Moving role 'reader(192.168.8.37)' from host 'db3' to host 'db2'"));
    assert_eq!(s.roles("db2"), "reader(192.168.8.37)");
    assert_eq!(s.roles("db3"), "reader(192.168.8.36)");
}

/// Seed step 12, second half: db1 stops, the writer moves to db2.
fn seed_db1_stops(s: &mut Sim) {
    // stop db1: the writer moves to db2 (its agent saw mysqld exit: nothing to fence).
    let epoch = s.c.epoch;
    s.mysqld("db1", false, true);
    s.keep(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
        11,
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert!(s.logged("Orphaned role 'writer(192.168.8.30)' has been assigned to 'db2'"));
    assert_eq!(s.roles("db2"), "reader(192.168.8.37), writer(192.168.8.30)");
    assert_eq!(s.roles("db1"), "");
    let t = s.pushes.last().unwrap();
    assert!(t.epoch > epoch);
    assert_eq!(t.active_master.as_deref(), Some("db2"));
}
