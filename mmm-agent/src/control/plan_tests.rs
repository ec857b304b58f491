//! The planner's cases, without root or a server: the lab's cluster (db1, db2 masters; db3 a
//! slave; writer 198.18.0.100; readers .101 and .102).

use super::*;
use std::path::Path;

pub(super) const W: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub(super) const R1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);
pub(super) const R2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 102);

/// The lab's configuration with `semisync` off (MMM's topology: slaves follow the active
/// master); the semisync cases turn it on.
pub(super) fn cfg() -> Config {
    let text = include_str!("../../../examples/lab/mmm_common.conf");
    let mut c = Config::parse_str(Path::new("mmm_common.conf"), text).unwrap();
    c.semisync = false;
    c
}

pub(super) fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

pub(super) fn writer() -> RoleIp {
    RoleIp::new("writer", W)
}

pub(super) fn reader(ip: Ipv4Addr) -> RoleIp {
    RoleIp::new("reader", ip)
}

/// A table at `epoch`: `(host, state, roles)` for db1..db3, MACs 1..3.
pub(super) fn table(epoch: u64, lines: [(HostState, Vec<RoleIp>); 3]) -> RoleTable {
    let hosts: Vec<Assignment> = lines
        .into_iter()
        .enumerate()
        .map(|(i, (state, roles))| Assignment {
            host: format!("db{}", i + 1),
            state,
            roles,
            mac: Some(mac(i as u8 + 1)),
        })
        .collect();
    let active_master = hosts
        .iter()
        .find(|a| a.roles.iter().any(|r| r.role == "writer"))
        .map(|a| a.host.clone());
    RoleTable {
        epoch,
        active_master,
        active_master_role: "writer".into(),
        catch_up: None,
        hosts,
    }
}

/// Epoch 5: db1 HARD_OFFLINE, the writer and reader .101 on db2, reader .102 on db3.
pub(super) fn db1_failed_over() -> RoleTable {
    table(
        5,
        [
            (HardOffline, vec![]),
            (Online, vec![writer(), reader(R1)]),
            (Online, vec![reader(R2)]),
        ],
    )
}

pub(super) fn applied(epoch: u64, roles: Vec<RoleIp>, state: HostState, am: &str) -> AgentState {
    AgentState {
        epoch,
        roles,
        active_master: Some(am.into()),
        host_state: state,
        lease_fenced: false,
    }
}

pub(super) fn facts(read_only: bool, local: &[Ipv4Addr]) -> Facts {
    Facts {
        dialect: Some(Dialect::MariaDb),
        read_only: Some(read_only),
        local: local.iter().copied().collect(),
        unconfigured: Default::default(),
        macs: Default::default(),
        semisync: None,
        acknowledging: false,
    }
}

use HostState::*;

/// The ops without the final Persist (checked separately).
pub(super) fn ops(a: &AgentState, t: &RoleTable, me: &str, f: &Facts) -> Vec<Op> {
    let mut ops = plan(a, t, &cfg(), me, f).unwrap();
    match ops.pop() {
        Some(Op::Persist(s)) => {
            assert_eq!(s.epoch, t.epoch);
            assert_eq!(s.roles, t.host(me).unwrap().roles);
        }
        other => panic!("last op is not Persist: {other:?}"),
    }
    ops
}

#[test]
fn demoted_writer_hands_over_is_read_only_and_kills_clients_then_drops_the_address() {
    let a = applied(4, vec![writer(), reader(R1)], Online, "db1");
    let t = db1_failed_over();
    let got = ops(&a, &t, "db1", &facts(false, &[W, R1]));
    let hand = |r: RoleIp| HandOver {
        role: r,
        host: "db2".into(),
        mac: mac(2),
    };
    assert_eq!(
        got,
        [
            Op::DenyWrites,
            Op::HandOver(vec![hand(writer()), hand(reader(R1))]),
            Op::KillClients,
            Op::RemoveAddress(W),
            Op::RemoveAddress(R1),
        ]
    );
}

#[test]
fn a_vip_with_no_new_owner_is_fenced_and_one_not_local_is_steered_at_once() {
    let a = applied(4, vec![reader(R1), reader(R2)], Online, "db1");
    let t = table(
        5,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1)]),
            (HardOffline, vec![]),
        ],
    );
    // R1 is not LOCAL here (a crash left it steering): released at once, not handed over;
    // R2 is on nobody: fenced.
    let got = ops(&a, &t, "db3", &facts(true, &[R2]));
    assert_eq!(
        got,
        [
            Op::Release {
                role: reader(R1),
                to: Redirect::Steer {
                    host: "db2".into(),
                    mac: mac(2)
                }
            },
            Op::Release {
                role: reader(R2),
                to: Redirect::Fence
            },
            Op::RemoveAddress(R1),
            Op::RemoveAddress(R2),
            // A slave is always pointed at the active master (a no-op when it already is).
            Op::Repoint {
                master: "db1".into()
            },
        ]
    );
}

#[test]
fn promoted_standby_catches_up_before_taking_the_vip() {
    let a = applied(4, vec![reader(R1)], Online, "db1");
    let t = db1_failed_over();
    let got = ops(&a, &t, "db2", &facts(true, &[R1]));
    assert_eq!(
        got,
        [
            Op::Promote { catch_up: None },
            Op::Acquire {
                role: writer(),
                again: false
            },
        ]
    );
}

#[test]
fn a_slave_follows_the_new_active_master() {
    let a = applied(4, vec![reader(R2)], Online, "db1");
    let t = db1_failed_over();
    let got = ops(&a, &t, "db3", &facts(true, &[R2]));
    assert_eq!(
        got,
        [Op::Repoint {
            master: "db2".into()
        }]
    );
    // Unknown dialect (server down): nothing to repoint with.
    let down = Facts {
        dialect: None,
        read_only: None,
        local: [R2].into(),
        unconfigured: Default::default(),
        macs: Default::default(),
        semisync: None,
        acknowledging: false,
    };
    let got = ops(&a, &t, "db3", &down);
    assert_eq!(got, [Op::DenyWrites]);
}

#[test]
fn two_hosts_swapping_vips_acquire_before_handing_over() {
    // db2 gives R1 to db3 and takes R2 from it.
    let a = applied(4, vec![reader(R1)], Online, "db1");
    let t = table(
        5,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R2)]),
            (Online, vec![reader(R1)]),
        ],
    );
    let got = ops(&a, &t, "db2", &facts(true, &[R1]));
    assert_eq!(
        got,
        [
            Op::Acquire {
                role: reader(R2),
                again: false
            },
            Op::HandOver(vec![HandOver {
                role: reader(R1),
                host: "db3".into(),
                mac: mac(3)
            }]),
            Op::RemoveAddress(R1),
        ]
    );
}

#[test]
fn entering_and_leaving_admin_offline_stop_and_start_replication() {
    let a = applied(4, vec![reader(R2)], Online, "db1");
    let t = table(
        5,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1), reader(R2)]),
            (AdminOffline, vec![]),
        ],
    );
    let got = ops(&a, &t, "db3", &facts(true, &[R2]));
    assert!(got.contains(&Op::Replication { start: false }), "{got:?}");
    assert!(!got.iter().any(|o| matches!(o, Op::Repoint { .. })));
    let back = applied(5, vec![], AdminOffline, "db1");
    let mut t2 = t.clone();
    t2.epoch = 6;
    t2.hosts[2].state = Online;
    let got = ops(&back, &t2, "db3", &facts(true, &[]));
    assert_eq!(
        got,
        [
            Op::Replication { start: true },
            Op::Repoint {
                master: "db1".into()
            },
        ]
    );
}

#[test]
fn reapplying_after_a_crash_half_way_converges() {
    // The agent died after acquiring the writer VIP and before persisting: the applied state
    // still says nothing, the data plane has it LOCAL, the server is still read-only.
    let a = applied(4, vec![], Online, "db1");
    let t = table(
        5,
        [
            (HardOffline, vec![]),
            (Online, vec![writer()]),
            (Online, vec![reader(R1), reader(R2)]),
        ],
    );
    let got = ops(&a, &t, "db2", &facts(true, &[W]));
    assert_eq!(
        got,
        [
            Op::Promote { catch_up: None },
            Op::Acquire {
                role: writer(),
                again: false
            }
        ]
    );
    // Died after persisting a demotion's table half-applied elsewhere: the same table again
    // with everything already in place plans nothing but the persist.
    let done = applied(5, vec![writer()], Online, "db2");
    assert_eq!(ops(&done, &t, "db2", &facts(false, &[W])), []);
}

#[test]
fn a_kept_writer_role_on_a_read_only_server_is_promoted_again() {
    let a = applied(5, vec![writer()], Online, "db1");
    let t = table(
        6,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1)]),
            (Online, vec![reader(R2)]),
        ],
    );
    assert_eq!(
        ops(&a, &t, "db1", &facts(true, &[W])),
        [Op::Promote { catch_up: None }]
    );
    // A kept VIP that is not LOCAL is acquired again.
    assert_eq!(
        ops(&a, &t, "db1", &facts(false, &[])),
        [Op::Acquire {
            role: writer(),
            again: true
        }]
    );
    // So is one still LOCAL whose /32 is gone from the interface (the kernel would drop its
    // traffic; the monitor reports it as drift and pushes again).
    let gone = Facts {
        unconfigured: [W].into(),
        ..facts(false, &[W])
    };
    assert_eq!(
        ops(&a, &t, "db1", &gone),
        [Op::Acquire {
            role: writer(),
            again: true
        }]
    );
}

#[test]
fn a_writer_fenced_by_its_lease_takes_the_role_back_from_the_same_table() {
    // The lease ran out: the writer role left the applied state, the VIP is FENCEd (not
    // LOCAL) and the server read-only. The monitor pushes the same epoch again.
    let mut a = applied(6, vec![], Online, "db1");
    a.lease_fenced = true;
    let t = table(
        6,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1)]),
            (Online, vec![reader(R2)]),
        ],
    );
    let got = ops(&a, &t, "db1", &facts(true, &[]));
    assert!(got.contains(&Op::Promote { catch_up: None }), "{got:?}");
    assert!(
        got.iter()
            .any(|o| matches!(o, Op::Acquire { role, .. } if *role == writer())),
        "{got:?}"
    );
    match plan(&a, &t, &cfg(), "db1", &facts(true, &[]))
        .unwrap()
        .pop()
    {
        Some(Op::Persist(s)) => assert!(!s.lease_fenced, "a current table clears the fence"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_writer_is_writable() {
    let a = applied(5, vec![reader(R2)], Online, "db1");
    let t = table(
        6,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1)]),
            (Online, vec![reader(R2)]),
        ],
    );
    let repoint = Op::Repoint {
        master: "db1".into(),
    };
    assert_eq!(
        ops(&a, &t, "db3", &facts(false, &[R2])),
        [Op::DenyWrites, repoint.clone()]
    );
    assert_eq!(ops(&a, &t, "db3", &facts(true, &[R2])), [repoint]);
    // A master without the writer role is never repointed by the agent.
    let a2 = applied(5, vec![reader(R1)], Online, "db1");
    assert_eq!(ops(&a2, &t, "db2", &facts(false, &[R1])), [Op::DenyWrites]);
}

#[test]
fn stale_tables_and_strangers_are_refused() {
    let a = applied(9, vec![], Online, "db1");
    let t = table(5, [(Online, vec![]), (Online, vec![]), (Online, vec![])]);
    assert_eq!(
        plan(&a, &t, &cfg(), "db1", &facts(true, &[])),
        Err(PlanError::Stale { have: 9, got: 5 })
    );
    let t = table(9, [(Online, vec![]), (Online, vec![]), (Online, vec![])]);
    assert_eq!(
        plan(&a, &t, &cfg(), "db4", &facts(true, &[])),
        Err(PlanError::NotInTable("db4".into()))
    );
}

#[test]
fn read_only_is_asked_only_when_the_plan_depends_on_it() {
    let c = cfg();
    let t = db1_failed_over();
    let writer_before = applied(4, vec![writer()], Online, "db1");
    let reader_before = applied(4, vec![reader(R1)], Online, "db1");
    // Losing or gaining the writer: decided either way.
    assert!(!wants_read_only(&writer_before, &t, &c, "db1"));
    assert!(!wants_read_only(&reader_before, &t, &c, "db2"));
    // Neither: only the writer is writable, so it must be checked.
    assert!(wants_read_only(&reader_before, &t, &c, "db3"));
}

#[test]
fn a_vip_local_here_that_nobody_gave_this_host_is_released() {
    // R2 LOCAL on db2 (made by hand, or left by a failed apply): steered to its owner db3.
    let a = applied(5, vec![writer(), reader(R1)], Online, "db2");
    let t = db1_failed_over();
    let got = ops(&a, &t, "db2", &facts(false, &[W, R1, R2]));
    assert_eq!(
        got,
        [
            Op::Release {
                role: reader(R2),
                to: Redirect::Steer {
                    host: "db3".into(),
                    mac: mac(3)
                }
            },
            Op::RemoveAddress(R2),
        ]
    );
}

#[test]
fn a_slow_replica_takes_its_vips_before_it_repoints() {
    // db3 gains reader .101 while the active master moves to db2: the VIP first, the
    // repoint (which waits for the SQL thread, and may fail) last.
    let a = applied(4, vec![reader(R2)], Online, "db1");
    let t = table(
        5,
        [
            (HardOffline, vec![]),
            (Online, vec![writer()]),
            (Online, vec![reader(R1), reader(R2)]),
        ],
    );
    assert_eq!(
        ops(&a, &t, "db3", &facts(true, &[R2])),
        [
            Op::Acquire {
                role: reader(R1),
                again: false
            },
            Op::Repoint {
                master: "db2".into()
            },
        ]
    );
}

#[test]
fn a_hand_over_stops_waiting_only_for_a_newer_table_moving_the_vip_again() {
    use super::super::apply::moved_again;
    use HostState::*;
    // db2 hands reader .102 to db3 (epoch 5).
    let current = db1_failed_over();
    let again = |epoch, owner_of_r2: usize| {
        let mut lines = [
            (Online, vec![]),
            (Online, vec![writer(), reader(R1)]),
            (Online, vec![]),
        ];
        lines[owner_of_r2].1.push(reader(R2));
        table(epoch, lines)
    };
    assert_eq!(moved_again(&current, None, R2), None);
    // A newer table keeping .102 on db3: the hand-over still waits for db3.
    assert_eq!(moved_again(&current, Some(&again(6, 2)), R2), None);
    // A newer table giving .102 back to db2: stop waiting.
    assert_eq!(moved_again(&current, Some(&again(6, 1)), R2), Some(6));
    // An older one decides nothing.
    assert_eq!(moved_again(&current, Some(&again(4, 1)), R2), None);
}
