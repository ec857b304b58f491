//! The planner's semi-synchronous replication cases: the switches follow the writer role (the
//! source side before a promotion makes the server writable), and slaves follow the standby
//! master while it is ONLINE.

use super::tests::*;
use super::*;
use mmm_common::semisync::SemiSync;
use HostState::*;

/// The ops without Persist, with `semisync` on and the switches `now` read from the server.
fn semisync_ops(
    a: &AgentState,
    t: &RoleTable,
    me: &str,
    read_only: bool,
    local: &[Ipv4Addr],
    now: SemiSync,
) -> Vec<Op> {
    let mut c = cfg();
    c.semisync = true;
    let f = Facts {
        semisync: Some(now),
        ..facts(read_only, local)
    };
    let mut ops = plan(a, t, &c, me, &f).unwrap();
    ops.pop();
    ops
}

const STANDBY: SemiSync = SemiSync {
    source: false,
    replica: true,
};
const SOURCE: SemiSync = SemiSync {
    source: true,
    replica: false,
};

#[test]
fn semisync_follows_the_writer_role_before_it_becomes_writable() {
    // The promoted standby becomes the source before it is made writable — without
    // reconnecting its IO thread (that would drop the relay log a dead writer cannot resend).
    let a = applied(4, vec![reader(R1)], Online, "db1");
    let t = db1_failed_over();
    let got = semisync_ops(&a, &t, "db2", true, &[R1], STANDBY);
    let ss = got.iter().position(|o| {
        *o == Op::SemiSync {
            want: SOURCE,
            restart_io: false,
        }
    });
    let promote = got
        .iter()
        .position(|o| *o == Op::Promote { catch_up: None });
    assert!(ss.is_some() && ss < promote, "{got:?}");
    // The demoted writer acknowledges from now on (after it stopped taking writes).
    let a = applied(4, vec![writer(), reader(R2)], Online, "db1");
    let got = semisync_ops(&a, &t, "db1", false, &[W, R2], SOURCE);
    let deny = got.iter().position(|o| *o == Op::DenyWrites);
    let ss = got.iter().position(|o| {
        *o == Op::SemiSync {
            want: STANDBY,
            restart_io: true,
        }
    });
    assert!(deny.is_some() && deny < ss, "{got:?}");
}

#[test]
fn the_writer_stops_acknowledging_as_a_replica_after_it_took_the_role() {
    // db2 promoted while its IO thread acknowledges db1 as a semi-sync replica: the side is
    // switched off before it becomes writable, and its IO thread reconnects after every
    // VIP is settled (a dead db1's acknowledging client would hold db2's first commit).
    let a = applied(4, vec![reader(R1)], Online, "db1");
    let t = db1_failed_over();
    let mut c = cfg();
    c.semisync = true;
    let f = Facts {
        semisync: Some(STANDBY),
        acknowledging: true,
        ..facts(true, &[R1])
    };
    let got = plan(&a, &t, &c, "db2", &f).unwrap();
    let ss = got.iter().position(|o| matches!(o, Op::SemiSync { .. }));
    let acquire = got.iter().rposition(|o| matches!(o, Op::Acquire { .. }));
    let stop = got.iter().position(|o| *o == Op::StopAcknowledging);
    assert!(ss < acquire && acquire < stop, "{got:?}");
    // Later tables: once it no longer acknowledges, nothing more.
    let a = applied(5, vec![writer(), reader(R1)], Online, "db2");
    let f = Facts {
        semisync: Some(SOURCE),
        ..facts(false, &[W, R1])
    };
    assert!(!plan(&a, &t, &c, "db2", &f)
        .unwrap()
        .contains(&Op::StopAcknowledging));
    // The standby and slaves acknowledge, or not, as their side says: never planned there.
    let f = Facts {
        semisync: Some(STANDBY),
        acknowledging: true,
        ..facts(true, &[R2])
    };
    let a = applied(5, vec![reader(R2)], Online, "db2");
    assert!(!plan(&a, &t, &c, "db3", &f)
        .unwrap()
        .contains(&Op::StopAcknowledging));
}

#[test]
fn semisync_leaves_slaves_and_settled_hosts_alone() {
    let t = db1_failed_over();
    // db3 may never be the writer: neither side; already so, nothing to do.
    let a = applied(5, vec![reader(R2)], Online, "db2");
    let got = semisync_ops(&a, &t, "db3", true, &[R2], SemiSync::default());
    assert!(
        !got.iter().any(|o| matches!(o, Op::SemiSync { .. })),
        "{got:?}"
    );
    // A writer whose server restarted (its switches reset) turns the source side on again.
    let a = applied(5, vec![writer(), reader(R1)], Online, "db2");
    let got = semisync_ops(&a, &t, "db2", false, &[W, R1], SemiSync::default());
    assert_eq!(
        got,
        [Op::SemiSync {
            want: SOURCE,
            restart_io: false
        }]
    );
    // semisync off: nothing is read, nothing planned.
    let got = ops(&a, &t, "db2", &facts(false, &[W, R1]));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn with_semisync_slaves_follow_the_standby_master_while_it_is_online() {
    // db1 writer, db2 the ONLINE standby: db3 replicates from db2 (never ahead of it).
    let t = table(
        6,
        [
            (Online, vec![writer()]),
            (Online, vec![reader(R1)]),
            (Online, vec![reader(R2)]),
        ],
    );
    let a = applied(6, vec![reader(R2)], Online, "db1");
    let got = semisync_ops(&a, &t, "db3", true, &[R2], SemiSync::default());
    assert_eq!(
        got,
        [Op::Repoint {
            master: "db2".into()
        }]
    );
    // db2 the writer now (db1 down): from db2.
    let a4 = applied(4, vec![reader(R2)], Online, "db1");
    let got = semisync_ops(
        &a4,
        &db1_failed_over(),
        "db3",
        true,
        &[R2],
        SemiSync::default(),
    );
    assert_eq!(
        got,
        [Op::Repoint {
            master: "db2".into()
        }]
    );
    // The standby down: from the writer itself.
    let t = table(
        7,
        [
            (Online, vec![writer()]),
            (HardOffline, vec![]),
            (Online, vec![reader(R1), reader(R2)]),
        ],
    );
    let got = semisync_ops(&a, &t, "db3", true, &[R2], SemiSync::default());
    assert!(
        got.contains(&Op::Repoint {
            master: "db1".into()
        }),
        "{got:?}"
    );
}
