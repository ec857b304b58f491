//! The core under simulated time: the seed's HA walk-through, each transition of `docs/mmm-2.2.1.md` §1,
//! modes, commands, and property tests of the invariants.

use super::*;
use mmm_common::config::{CheckKind, Config};
use proptest::prelude::*;
use std::path::Path;

mod fencing;
mod gtids;
mod holistic;
mod promotion;
mod properties;
mod rules;
mod seed;
mod shared;
mod startup;
mod transitions;

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
    /// Fencing runs asked for: host, ping_ok, run.
    fences: Vec<(String, bool, u64)>,
    confirms: Vec<String>,
    repairs: Vec<String>,
    events: Vec<Event>,
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
            fences: vec![],
            confirms: vec![],
            repairs: vec![],
            events: vec![],
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
                Action::Fence { host, ping_ok, run } => self.fences.push((host, ping_ok, run)),
                Action::Network { .. } => {}
                Action::Repair { host } => self.repairs.push(host),
                Action::Confirm { host, check } => {
                    self.confirms.push(format!("{host}/{}", check.name()))
                }
                Action::Reply(r) => reply = Some(r),
                Action::Event(e) => self.events.push(e),
                Action::Persist(_) => {}
            }
        }
        reply
    }
    /// Runs an admin command; every reachable agent then acknowledges what was pushed (a
    /// planned switchover waits for the old writer's word).
    fn cmd(&mut self, c: Command) -> Result<String, CommandError> {
        let r = self.step(Input::Command(c)).unwrap();
        self.ack_all();
        r
    }
    /// Every reachable agent acknowledges the last table pushed.
    fn ack_all(&mut self) {
        let Some(epoch) = self.pushes.last().map(|t| t.epoch) else {
            return;
        };
        let hosts: Vec<String> = self
            .c
            .hosts
            .iter()
            .filter(|h| h.agent.reachable && h.agent.applied_epoch < epoch)
            .map(|h| h.name.clone())
            .collect();
        for host in hosts {
            self.step(Input::Pushed {
                host,
                ok: true,
                epoch,
                gtid: None,
            });
        }
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
    /// The agent on `reporter` cannot reach `ping` by ICMP nor log in to `mysqld`.
    fn peer_says(&mut self, reporter: &str, ping: &[&str], mysqld: &[&str]) {
        let names = |l: &[&str]| l.iter().map(|d| d.to_string()).collect();
        self.step(Input::AgentHealth {
            host: reporter.into(),
            up: true,
            hard: false,
            peers_down: names(ping),
            peers_mysqld_down: names(mysqld),
        });
    }
    /// The agent on `host` reports its mysqld `up` or down (`hard`: with hard evidence).
    fn mysqld(&mut self, host: &str, up: bool, hard: bool) {
        self.step(Input::AgentHealth {
            host: host.into(),
            up,
            hard,
            peers_down: vec![],
            peers_mysqld_down: vec![],
        });
    }
    /// Every other host's agent cannot log in to `host`'s mysqld (holistic detection agrees
    /// it is dead).
    fn peers_lose_mysqld(&mut self, host: &str) {
        for r in ["db1", "db2", "db3"].into_iter().filter(|r| *r != host) {
            self.peer_says(r, &[], &[host]);
        }
    }
    fn check(&mut self, host: &str, k: CheckKind, r: Report) {
        self.step(Input::Check {
            host: host.into(),
            check: k,
            report: r,
        });
    }
    /// The monitor's own ping and mysql checks of `host` both fail.
    fn unreachable(&mut self, host: &str) {
        self.check(
            host,
            CheckKind::Ping,
            Report::error("ERROR: Could not ping"),
        );
        self.check(
            host,
            CheckKind::Mysql,
            Report::error("ERROR: Connect error"),
        );
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

/// db1's mysqld is killed (hard evidence), every peer loses it, and our check agrees.
fn kill_db1(s: &mut Sim) {
    s.mysqld("db1", false, true);
    s.peers_lose_mysqld("db1");
    s.now += SEC;
    s.check(
        "db1",
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
    assert_eq!(s.state("db1"), HostState::HardOffline);
}

/// Our own ping and mysql checks of `host` fail: the host is gone from the monitor's view
/// (a lost ping alone is no evidence while mysql answers).
fn host_gone(s: &mut Sim, host: &str) {
    s.check(
        host,
        CheckKind::Ping,
        Report::error("ERROR: Could not ping"),
    );
    s.check(
        host,
        CheckKind::Mysql,
        Report::error("ERROR: Connect error"),
    );
}
