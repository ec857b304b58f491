//! Property tests: random checks, health reports, commands and time never break the
//! invariants (one writer, roles only on ONLINE hosts, the epoch only grows).

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Check(usize, usize, u8),
    Health(usize, bool),
    Reach(usize, bool),
    /// The agent on the first host reports whether it reaches the second.
    PeerReach(usize, usize, bool),
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
        2 => (0..3usize, 0..3usize, any::<bool>()).prop_map(|(r, t, u)| Op::PeerReach(r, t, u)),
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
    // While a failed-over writer may still hold its lease, nobody else is the writer.
    if let Some(f) = &c.fence {
        prop_assert!(
            writers == 0,
            "writer assigned while '{}' may hold its lease",
            f.host
        );
    }
    // The allocation-free comparison agrees with the table's own.
    let same = c
        .last_table
        .as_ref()
        .is_some_and(|t| t.same_assignment(&c.table()));
    prop_assert_eq!(c.assignment_changed(), !same);
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
                let waits = c.fence.is_some() && role.name == c.active_master_role;
                if eligible && !waits {
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
                Op::Health(h, up) => { s.step(Input::AgentHealth { host: names[h].into(), up, hard: !up, peers_down: vec![], peers_mysqld_down: vec![] }); }
                Op::Reach(h, ok) => {
                    if ok { s.agent(names[h], 1000) } else { s.step(Input::AgentUnreachable { host: names[h].into() }); }
                }
                Op::PeerReach(r, t, ok) => {
                    let lost: &[&str] = if ok { &[] } else { &names[t..=t] };
                    s.peer_says(names[r], lost, lost);
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
