//! The core under simulated time: the seed's HA walk-through, each transition of `docs/mmm-2.2.1.md` §1,
//! modes, commands, and property tests of the invariants.

use super::*;
use mmm_common::config::{CheckKind, Config};
use proptest::prelude::*;
use std::path::Path;

const SEC: Duration = Duration::from_secs(1);

/// MMM 2.2.1's check defaults, written out as an MMM config would.
const MMM_CHECKS: &str =
    "<check default>\n check_period 5\n trap_period 10\n timeout 2\n</check>\n";

fn config(extra_monitor: &str) -> Config {
    config_with(extra_monitor, "")
}

fn config_with(extra_monitor: &str, checks: &str) -> Config {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seed");
    let common = std::fs::read_to_string(dir.join("mmm_common.conf")).unwrap();
    let text = format!(
        "{common}\n{checks}<monitor>\n ping_ips 192.168.8.32\n{extra_monitor}\n</monitor>\n"
    );
    Config::parse_str(&dir.join("test.conf"), &text).unwrap()
}

struct Sim {
    c: Cluster,
    now: Time,
    logs: Vec<String>,
    pushes: Vec<RoleTable>,
    kills: Vec<String>,
    kill_pings: Vec<bool>,
    confirms: Vec<String>,
    repairs: Vec<String>,
}

impl Sim {
    fn new(extra: &str) -> Sim {
        Sim::with(extra, "")
    }
    fn with(extra: &str, checks: &str) -> Sim {
        let mut s = Sim::cold(extra, checks);
        for h in ["db1", "db2", "db3"] {
            s.agent(h, 1000);
        }
        s
    }
    /// No agent has reported yet (start-up pending).
    fn cold(extra: &str, checks: &str) -> Sim {
        let mut s = Sim {
            c: Cluster::new(&config_with(extra, checks), 0),
            now: Time::ZERO,
            logs: vec![],
            pushes: vec![],
            kills: vec![],
            kill_pings: vec![],
            confirms: vec![],
            repairs: vec![],
        };
        s.step(Input::Network { up: true });
        s
    }
    fn view(&mut self, host: &str, v: AgentView) {
        self.step(Input::AgentStatus {
            host: host.into(),
            view: v,
        });
    }
    fn step(&mut self, i: Input) -> Option<Result<String, CommandError>> {
        let mut reply = None;
        for a in self.c.step(i, self.now) {
            match a {
                Action::Log(l) => self.logs.push(l.message),
                Action::Push(t) => self.pushes.push(t),
                Action::KillHost { host, ping_ok } => {
                    self.kill_pings.push(ping_ok);
                    self.kills.push(host)
                }
                Action::Network { .. } => {}
                Action::Repair { host } => self.repairs.push(host),
                Action::Confirm { host, check } => {
                    self.confirms.push(format!("{host}/{}", check.name()))
                }
                Action::Reply(r) => reply = Some(r),
                Action::Event(_) | Action::Persist(_) => {}
            }
        }
        reply
    }
    fn cmd(&mut self, c: Command) -> Result<String, CommandError> {
        self.step(Input::Command(c)).unwrap()
    }
    fn agent(&mut self, host: &str, uptime: u64) {
        self.step(Input::AgentStatus {
            host: host.into(),
            view: AgentView {
                uptime_s: Some(uptime),
                ..Default::default()
            },
        });
    }
    fn check(&mut self, host: &str, k: CheckKind, r: Report) {
        self.step(Input::Check {
            host: host.into(),
            check: k,
            report: r,
        });
    }
    fn all_ok(&mut self, host: &str) {
        for k in CheckKind::ALL {
            self.check(host, k, Report::ok("OK"));
        }
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.step(Input::Tick);
    }
    /// Reports `r` for `k` on `host` every second for `secs` seconds.
    fn keep(&mut self, host: &str, k: CheckKind, r: Report, secs: u64) {
        for _ in 0..secs {
            self.now += SEC;
            self.check(host, k, r.clone());
        }
    }
    fn state(&self, h: &str) -> HostState {
        self.c.host(h).unwrap().state
    }
    fn roles(&self, h: &str) -> String {
        self.c
            .host(h)
            .unwrap()
            .roles
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn logged(&self, m: &str) -> bool {
        self.logs.iter().any(|l| l == m)
    }
    fn online_all(&mut self) {
        for h in ["db1", "db2", "db3"] {
            self.all_ok(h);
        }
        for h in ["db1", "db2", "db3"] {
            self.cmd(Command::SetOnline(h.into())).unwrap();
        }
    }
}

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
    // stop db1: the writer moves to db2.
    let epoch = s.c.epoch;
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
    });
    s.check("db1", CheckKind::Mysql, Report::ok("OK"));
    assert_eq!(s.state("db1"), HostState::Online);
}

#[test]
fn a_host_down_is_confirmed_by_a_peer_agent() {
    let peer_says = |s: &mut Sim, reporter: &str, down: &[&str]| {
        s.step(Input::AgentHealth {
            host: reporter.into(),
            up: true,
            hard: false,
            peers_down: down.iter().map(|d| d.to_string()).collect(),
        });
    };
    // Our own ping fails first (pending its trap period), then db2's agent cannot reach db1
    // either: HARD_OFFLINE at once, the writer moves.
    let mut s = Sim::new("");
    s.online_all();
    s.now += SEC;
    s.check(
        "db1",
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    assert_eq!(s.state("db1"), HostState::Online);
    peer_says(&mut s, "db2", &["db1"]);
    assert_eq!(s.state("db1"), HostState::HardOffline);
    assert!(s.roles("db2").contains("writer"), "{}", s.roles("db2"));
    // The peer's report first: a confirming check is asked for, and our first failing result
    // counts at once.
    let mut s = Sim::new("");
    s.online_all();
    peer_says(&mut s, "db3", &["db1"]);
    assert_eq!(s.confirms, ["db1/ping", "db1/mysql"]);
    assert_eq!(s.state("db1"), HostState::Online);
    s.now += Duration::from_millis(200);
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
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
    });
    assert_eq!(s.kills, ["db3"]);
    assert!(s.logged("Can't send offline status notification to 'db3' - killing it!"));
    s.step(Input::Pushed {
        host: "db3".into(),
        ok: false,
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

// ------------------------------------------------------------------ properties

#[derive(Clone, Debug)]
enum Op {
    Check(usize, usize, u8),
    Health(usize, bool),
    Reach(usize, bool),
    Online(usize),
    Offline(usize),
    MoveWriter(usize),
    Advance(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..4usize, 0..3u8).prop_map(|(h, k, o)| Op::Check(h, k, o)),
        1 => (0..3usize, any::<bool>()).prop_map(|(h, u)| Op::Health(h, u)),
        1 => (0..3usize, any::<bool>()).prop_map(|(h, u)| Op::Reach(h, u)),
        2 => (0..3usize).prop_map(Op::Online),
        1 => (0..3usize).prop_map(Op::Offline),
        1 => (0..3usize).prop_map(Op::MoveWriter),
        2 => (0..30u8).prop_map(Op::Advance),
    ]
}

fn check_invariants(c: &Cluster, last_epoch: &mut u64) -> Result<(), TestCaseError> {
    let writers = c
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| r.role == c.active_master_role))
        .count();
    prop_assert!(writers <= 1, "writer on {writers} hosts");
    prop_assert!(c.epoch >= *last_epoch, "epoch went back");
    *last_epoch = c.epoch;
    for role in &c.roles {
        let eligible = role.hosts.iter().any(|n| {
            let h = c.host(n).unwrap();
            h.state == HostState::Online && h.agent.reachable
        });
        for ip in &role.ips {
            let holders: Vec<&Host> = c
                .hosts
                .iter()
                .filter(|h| h.roles.iter().any(|r| r.ip == *ip))
                .collect();
            prop_assert!(holders.len() <= 1, "{ip} on {} hosts", holders.len());
            if c.mode == Mode::Active {
                prop_assert!(
                    holders.iter().all(|h| h.state == HostState::Online),
                    "{ip} on a host not ONLINE"
                );
                if eligible {
                    prop_assert_eq!(
                        holders.len(),
                        1,
                        "{} has an eligible host but is on none",
                        ip
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..120), manual in any::<bool>()) {
        let mut s = Sim::new(if manual { "mode manual" } else { "" });
        let names = ["db1", "db2", "db3"];
        let mut epoch = 0;
        for o in ops {
            match o {
                Op::Check(h, k, out) => {
                    s.now += Duration::from_millis(500);
                    let r = match out { 0 => Report::ok("OK"), 1 => Report::error("ERROR: x"), _ => Report::unknown("UNKNOWN: x") };
                    s.check(names[h], CheckKind::ALL[k], r);
                }
                Op::Health(h, up) => { s.step(Input::AgentHealth { host: names[h].into(), up, hard: !up, peers_down: vec![] }); }
                Op::Reach(h, ok) => {
                    if ok { s.agent(names[h], 1000) } else { s.step(Input::AgentUnreachable { host: names[h].into() }); }
                }
                Op::Online(h) => { let _ = s.cmd(Command::SetOnline(names[h].into())); }
                Op::Offline(h) => { let _ = s.cmd(Command::SetOffline(names[h].into())); }
                Op::MoveWriter(h) => { let _ = s.cmd(Command::MoveRole { role: "writer".into(), host: names[h].into(), force: h == 0 }); }
                Op::Advance(secs) => s.advance(Duration::from_secs(secs.into())),
            }
            check_invariants(&s.c, &mut epoch)?;
        }
    }
}

// ------------------------------------------------------------------ start-up (§5)

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

// ------------------------------------------------------------------ MMM's rules, exactly

#[test]
fn a_monitor_network_outage_never_counts_against_the_hosts() {
    let mut s = Sim::new("");
    s.online_all();
    s.step(Input::Network { up: false });
    for _ in 0..5 {
        s.now += SEC;
        for h in ["db1", "db2", "db3"] {
            s.check(h, CheckKind::Ping, Report::error("ERROR: Could not ping"));
            s.check(h, CheckKind::Mysql, Report::error("ERROR: Connect error"));
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
    });
    assert_eq!(s.state("db1"), HostState::Online);
    assert_eq!(s.c.active_master(), Some("db1"));
    // The process exiting is hard evidence: at once.
    s.step(Input::AgentHealth {
        host: "db1".into(),
        up: false,
        hard: true,
        peers_down: vec![],
    });
    s.now += Duration::from_millis(30);
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
}
