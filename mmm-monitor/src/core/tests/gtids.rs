//! What the GTID reports prove (`gtids.rs`): errant transactions named and kept out, and the
//! lag bound of a promotion, under simulated time.

use super::*;
use mmm_common::gtid::GtidSet;

fn gtids(s: &str) -> Option<GtidSet> {
    Some(GtidSet::parse(s).unwrap())
}

/// `host` reports its GTID state `state` (origin: its server id), receiving `received`.
fn report(s: &mut Sim, host: &str, writable: bool, state: &str, received: &str) {
    let origin = host.trim_start_matches("db").to_string();
    s.view(
        host,
        AgentView {
            uptime_s: Some(1000),
            writable: Some(writable),
            replica_io_running: Some(true),
            source_ip: (!writable).then_some(Ipv4Addr::new(192, 168, 8, 32)),
            gtid_state: gtids(state),
            gtid_origin: origin,
            gtid_received: (!received.is_empty()).then(|| gtids(received)).flatten(),
            ..Default::default()
        },
    );
}

fn refused(s: &Sim, host: &str) -> Option<String> {
    s.events.iter().find_map(|e| match e {
        Event::PromotionRefused {
            host: h, reason, ..
        } if h == host => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn a_host_holding_gtids_the_writer_never_had_is_kept_out_with_them_named() {
    let mut s = Sim::new("");
    s.online_all();
    assert_eq!(s.c.active_master(), Some("db1"));
    report(&mut s, "db1", true, "0-1-100,0-2-50", "");
    // db2 received db1's newest (0-1-120, after db1's report was taken): not errant.
    report(&mut s, "db2", false, "0-1-120,0-2-50", "0-1-120");
    s.keep("db2", CheckKind::RepThreads, Report::ok("OK"), 3);
    assert_eq!(s.state("db2"), HostState::Online);
    // db2 commits a transaction of its own (an account bypassing read_only): errant, named,
    // although its replication threads run.
    report(&mut s, "db2", false, "0-1-120,0-2-57", "0-1-120");
    s.keep("db2", CheckKind::RepThreads, Report::ok("OK"), 3);
    let c = s.c.host("db2").unwrap().checks[&CheckKind::RepThreads]
        .message
        .clone();
    assert!(
        c.contains("errant transactions") && c.contains("0-2-57"),
        "{c}"
    );
    assert!(c.contains("0-2-50"), "the writer's last of the pair: {c}");
    assert!(s
        .logs
        .iter()
        .any(|l| l.contains("Host 'db2' holds transactions the writer never had")));
    assert_eq!(s.state("db2"), HostState::ReplicationFail);
    assert!(!s.roles("db2").contains("reader"), "{}", s.roles("db2"));
    // The writer dies: db2 is not promoted, and the refusal is an event (notify_bin).
    kill_db1(&mut s);
    s.advance(Duration::from_secs(5));
    assert_eq!(s.c.active_master(), None);
    assert!(s.c.promotion_veto(1).is_some_and(|w| w.contains("errant")));
}

#[test]
fn the_verdict_needs_a_writable_writers_report_and_clears_when_the_writer_has_them() {
    let mut s = Sim::new("");
    s.online_all();
    // db1's report from before it was writable proves nothing.
    report(&mut s, "db1", false, "0-1-100", "");
    report(&mut s, "db2", false, "0-1-100,0-2-9", "0-1-100");
    assert!(s.c.gtids.errant.is_empty());
    report(&mut s, "db1", true, "0-1-100", "");
    assert!(s.c.gtids.errant.contains_key("db2"));
    // A report that cannot tell (unknown state) keeps the verdict; one that proves it clean
    // (the writer now has 0-2-9) clears it.
    s.view(
        "db2",
        AgentView {
            uptime_s: Some(1000),
            ..Default::default()
        },
    );
    assert!(s.c.gtids.errant.contains_key("db2"));
    report(&mut s, "db2", false, "0-1-100,0-2-9", "0-1-100");
    assert!(s.c.gtids.errant.contains_key("db2"));
    report(&mut s, "db1", true, "0-1-100,0-2-9", "");
    assert!(s.c.gtids.errant.is_empty());
}

/// db1 writes 100 transactions a second for `secs` seconds; db2's replication receives only
/// up to what db1 had `behind` seconds earlier.
fn write_with_db2_behind(s: &mut Sim, secs: u64, behind: u64) {
    for k in 0..secs {
        s.now += SEC;
        let at = |k: u64| format!("0-1-{}", 1000 + 100 * k);
        report(s, "db1", true, &at(k), "");
        report(s, "db2", false, "0-1-1000", &at(k.saturating_sub(behind)));
    }
}

#[test]
fn a_candidate_proven_behind_by_more_than_max_lag_on_failover_is_not_promoted() {
    let mut s = Sim::new("");
    s.online_all();
    write_with_db2_behind(&mut s, 12, 7);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), None);
    let why = refused(&s, "db2").expect("a refusal event");
    assert!(
        why.contains("lacked 700 transaction(s)") && why.contains("max_lag_on_failover 5s"),
        "{why}"
    );
    assert!(
        s.logs
            .iter()
            .any(|l| l.starts_with("Host 'db2' is not promoted: its replication lacked 700")),
        "{:?}",
        s.logs
    );
}

#[test]
fn a_candidate_behind_by_less_than_max_lag_on_failover_is_promoted() {
    let mut s = Sim::new("");
    s.online_all();
    // Two seconds behind (a slow link): within the 5 s bound.
    write_with_db2_behind(&mut s, 12, 2);
    kill_db1(&mut s);
    assert_eq!(s.c.active_master(), Some("db2"));
    assert_eq!(refused(&s, "db2"), None);
}
