//! mmm_control parsing and rendering: MMM's texts, snapshot-tested.
use super::*;

#[test]
fn an_unavailable_monitor_is_told_from_its_own_unavailable_answer() {
    let own = mmm_proto::convert::answered(tonic::Status::unavailable(
        "ERROR: Can't reach agent daemon on 'db1'! Can't switch its state!",
    ));
    assert_eq!(
        render(Err(own), false),
        (
            "ERROR: Can't reach agent daemon on 'db1'! Can't switch its state!\n".into(),
            1
        )
    );
    let transport = tonic::Status::unavailable("ERROR: looks like an answer, is not one");
    assert_eq!(
        render(Err(transport), false),
        ("ERROR: Can't connect to monitor daemon!\n".into(), 1)
    );
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn parsing() {
    assert_eq!(
        parse(&words("checks db1 mysql")),
        Ok(ControlCmd::Checks {
            host: "db1".into(),
            check: "mysql".into()
        })
    );
    assert_eq!(
        parse(&words("move_role --force writer db2")),
        Ok(ControlCmd::MoveRole {
            role: "writer".into(),
            host: "db2".into(),
            force: true
        })
    );
    assert_eq!(
        parse(&words("set_passive")),
        Ok(ControlCmd::SetMode(pb::Mode::Passive))
    );
    insta::assert_snapshot!(parse(&words("set_online")).unwrap_err());
}

fn host(
    name: &str,
    ip: &str,
    mode: &str,
    state: pb::HostState,
    roles: &[(&str, &str)],
    reachable: bool,
) -> pb::HostStatus {
    pb::HostStatus {
        name: name.into(),
        ip: ip.into(),
        mode: mode.into(),
        state: state as i32,
        roles: roles
            .iter()
            .map(|(n, i)| pb::Role {
                name: n.to_string(),
                ip: i.to_string(),
            })
            .collect(),
        agent_reachable: reachable,
        ..Default::default()
    }
}

#[test]
fn history_as_a_timeline() {
    let r = pb::HistoryReply {
        entries: vec![pb::HistoryEntry {
            at_unix_ms: 1_351_889_840_118,
            epoch: 7,
            kind: "failover".into(),
            changes: vec![
                "db1 ONLINE → HARD_OFFLINE (ping: OK, mysql: not OK)".into(),
                "writer(198.18.0.100) on db2".into(),
            ],
            agents: vec![
                pb::AgentApply {
                    host: "db1".into(),
                    ok: false,
                    took_ms: 2000,
                    error: "no answer within 2s".into(),
                    ..Default::default()
                },
                pb::AgentApply {
                    host: "db2".into(),
                    ok: true,
                    took_ms: 41,
                    steps: vec![pb::Step {
                        name: "writable".into(),
                        micros: 900,
                        ok: true,
                        detail: String::new(),
                    }],
                    error: String::new(),
                },
            ],
            applied_ms: 2000,
        }],
    };
    insta::assert_snapshot!(render_history_in(&r, &chrono::Utc), @r"
    2012/11/02 20:57:20.118  failover (epoch 7)
        db1 ONLINE → HARD_OFFLINE (ping: OK, mysql: not OK)
        writer(198.18.0.100) on db2
        db1      +2000 ms  not applied: no answer within 2s
        db2      +41 ms  writable 0.9 ms
        applied by every agent in 2000 ms
    ");
}

#[test]
fn show_like_mmm() {
    let r = pb::ShowReply {
        hosts: vec![
            host(
                "db3",
                "192.168.8.40",
                "slave",
                pb::HostState::Online,
                &[("reader", "192.168.8.36")],
                true,
            ),
            host(
                "db1",
                "192.168.8.32",
                "master",
                pb::HostState::HardOffline,
                &[],
                false,
            ),
            host(
                "db2",
                "192.168.8.33",
                "master",
                pb::HostState::Online,
                &[("writer", "192.168.8.30"), ("reader", "192.168.8.37")],
                true,
            ),
        ],
        mode: pb::Mode::Active as i32,
        preferences: vec![pb::RolePreference {
            role: "writer".into(),
            preferred_host: "db1".into(),
            current_host: "db2".into(),
        }],
        ..Default::default()
    };
    insta::assert_snapshot!(render_show(&r));
    let passive = pb::ShowReply {
        mode: pb::Mode::Passive as i32,
        passive_cause: "Switched into passive mode by an admin.".into(),
        hosts: r.hosts[..1].to_vec(),
        ..Default::default()
    };
    insta::assert_snapshot!(render_show(&passive));
    let mut drifted = r.clone();
    drifted.hosts[0].drift = "writable without the writer role".into();
    drifted.hosts[0].repairs = 2;
    assert!(render_show(&drifted).starts_with(
        "# Warning: agent on host db1 is not reachable\n# Warning: host db3 differs from its role table (writable without the writer role); pushed again 2 time(s)\n"
    ), "{}", render_show(&drifted));
    let mut unreachable = r.clone();
    unreachable.hosts[0].analysis = "UNREACHABLE_WRITER: the monitor cannot reach it, but the agent(s) on db2 still reach its mysqld; no failover".into();
    insta::assert_snapshot!(render_show(&unreachable));
    // Monitor high availability: who leads, and a monitor that lost etcd.
    let mut ha = r.clone();
    ha.ha = true;
    ha.leader = "mon2 (198.18.0.6)".into();
    assert!(
        render_show(&ha)
            .starts_with("# Monitor leader: mon2 (198.18.0.6)\n# Warning: agent on host db1"),
        "{}",
        render_show(&ha)
    );
    ha.leader.clear();
    ha.etcd_error = "etcd did not answer within 1s".into();
    assert!(render_show(&ha).starts_with("# Warning: no monitor leads at the moment\n# Warning: etcd does not answer this monitor (etcd did not answer within 1s): it can neither lead nor follow; what it shows may be stale\n"), "{}", render_show(&ha));
}

#[test]
fn checks_like_mmm() {
    let t = 1_351_889_840_000; // 2012/11/02 20:57:20 UTC
    let c = |h: &str, k: &str, m: &str| pb::CheckStatus {
        host: h.into(),
        check: k.into(),
        result: 1,
        last_change_unix_ms: t,
        message: m.into(),
    };
    let r = pb::ChecksReply { checks: vec![c("db2", "ping", "OK"), c("db2", "rep_backlog", "OK: Backlog is null"), c("db10", "mysql", "ERROR: Connect error (host = 192.168.8.33:3306, user = mmm_monitor)! Connection refused")] };
    insta::assert_snapshot!(render_checks_in(&r, &chrono::Utc));
    // Local time, as MMM prints it.
    let utc = chrono::Utc;
    assert_eq!(fmt_time_in(t, &utc), "2012/11/02 20:57:20");
    assert_eq!(fmt_time_in(0, &utc), "1970/01/01 00:00:00");
    assert_eq!(fmt_time_in(951_782_400_000, &utc), "2000/02/29 00:00:00");
    let cet = chrono::FixedOffset::east_opt(3600).unwrap();
    assert_eq!(fmt_time_in(t, &cet), "2012/11/02 21:57:20");
    assert_eq!(fmt_time(t), fmt_time_in(t, &chrono::Local));
}
