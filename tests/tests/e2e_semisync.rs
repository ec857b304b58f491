//! End to end, semi-synchronous replication managed by the agents (the lab runs with
//! `semisync yes`, `semisync_timeout 2s`): the writer is the lossless source (`AFTER_SYNC`),
//! the standby master acknowledges, the slave does neither; three clients write through the
//! writer VIP at full speed, never paused, while the writer's mysqld is killed (kill -9):
//! every acknowledged write is on the new writer and on the slave, and the new writer is the
//! source from its first write. A standby that stops acknowledging makes `show` warn.

use mmm_tests::{lab::Lab, load::Writers, Net};
use std::{collections::BTreeSet, time::Duration};

fn var(lab: &Lab, host: &str, q: &str) -> String {
    lab.sql(host, q).unwrap().trim().to_string()
}

/// Status variable `name` (upper case) of `host`'s server.
fn status(lab: &Lab, host: &str, name: &str) -> String {
    var(
        lab,
        host,
        &format!(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"
        ),
    )
}

#[test]
fn kill_9_under_concurrent_writes_loses_no_acknowledged_write() {
    let mut lab = Lab::up_online(&format!("mmmss{}", std::process::id())).expect("lab up");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    assert_eq!(
        var(&lab, "db1", "SELECT @@rpl_semi_sync_master_enabled"),
        "1"
    );
    assert_eq!(
        var(&lab, "db1", "SELECT @@rpl_semi_sync_master_wait_point"),
        "AFTER_SYNC"
    );
    assert_eq!(
        var(&lab, "db2", "SELECT @@rpl_semi_sync_slave_enabled"),
        "1"
    );
    assert_eq!(
        var(&lab, "db3", "SELECT @@rpl_semi_sync_slave_enabled"),
        "0"
    );
    // db2's IO thread reconnected as a semi-synchronous replica.
    assert!(
        Net::wait_for(Duration::from_secs(10), || {
            var(
            &lab,
            "db1",
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'"
        ) == "1"
        }),
        "db2 is not a semi-synchronous replica of db1"
    );
    // …and db1, the standby while the lab came up, no longer acknowledges db2 as one: its
    // IO thread reconnected when it took the writer role. Otherwise db2, promoted, would
    // count db1's dead connection as a client and hold its first commit for the whole
    // semisync_timeout, then fall back.
    assert!(
        Net::wait_for(Duration::from_secs(10), || {
            status(&lab, "db1", "RPL_SEMI_SYNC_SLAVE_STATUS") == "OFF"
                && status(&lab, "db2", "RPL_SEMI_SYNC_MASTER_CLIENTS") == "0"
        }),
        "the writer db1 still acknowledges db2 as a semi-synchronous replica"
    );
    lab.client_sql(
        vip,
        "CREATE TABLE w (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))",
    )
    .unwrap();
    let writers = Writers::start(&lab.ns("client"), vip, "w", 3).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    lab.servers.get_mut("db1").unwrap().kill();
    let resumed = Net::wait_for(Duration::from_secs(30), || {
        writers.all_failed()
            && lab
                .sql("db2", "SELECT @@read_only")
                .is_ok_and(|r| r.trim() == "0")
    });
    std::thread::sleep(Duration::from_secs(2));
    let acked: BTreeSet<u64> = writers.stop().into_iter().map(|(s, _)| s).collect();
    assert!(resumed, "no failover:\n{}", lab.monitor_log());
    assert_eq!(
        var(&lab, "db2", "SELECT @@rpl_semi_sync_master_enabled"),
        "1"
    );
    // No commit of db2 waited out semisync_timeout for a dead acknowledger.
    assert_eq!(status(&lab, "db2", "RPL_SEMI_SYNC_MASTER_NO_TIMES"), "0");
    if let Err(e) = lab.servers["db3"].sync_with(&lab.servers["db2"], Duration::from_secs(30)) {
        panic!(
            "{e}\n{}\n{}",
            lab.servers["db3"]
                .sql_shown("SHOW SLAVE STATUS\\G")
                .unwrap_or_default(),
            lab.monitor_log()
        );
    }
    all_on(&lab, "w", &acked, &["db2", "db3"]);
}

/// Every id of `acked` is in `app.<table>` on each of `hosts`.
fn all_on(lab: &Lab, table: &str, acked: &BTreeSet<u64>, hosts: &[&str]) {
    for h in hosts {
        let got = lab.seqs(h, table).unwrap();
        let lost: Vec<_> = acked.difference(&got).collect();
        eprintln!("{h}: {} acknowledged, {} lost", acked.len(), lost.len());
        assert!(
            lost.is_empty(),
            "{h} lost {} acknowledged writes {lost:?}; db1's agent:\n{}",
            lost.len(),
            std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap_or_default()
        );
    }
}

/// Both replication threads of each of `hosts` run (no GTID conflict).
fn replicating(lab: &Lab, hosts: &[&str]) {
    for h in hosts {
        let st = lab.servers[*h].sql_shown("SHOW SLAVE STATUS\\G").unwrap();
        assert!(
            st.contains("Slave_SQL_Running: Yes") && st.contains("Slave_IO_Running: Yes"),
            "{h}: {st}"
        );
    }
}

#[test]
fn a_writer_that_fell_back_to_asynchronous_replication_is_shown() {
    let lab = Lab::up_online(&format!("mmmsf{}", std::process::id())).expect("lab up");
    lab.sql("db2", "STOP SLAVE IO_THREAD").unwrap();
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    // A commit with no acknowledging replica left: the writer falls back.
    lab.client_sql(vip, "CREATE TABLE f (x INT)").unwrap();
    assert!(
        Net::wait_for(Duration::from_secs(10), || lab
            .ctl(&["show"])
            .unwrap()
            .0
            .contains("# Warning: host db1: SEMISYNC_FALLBACK")),
        "{}\n{}",
        lab.ctl(&["show"]).unwrap().0,
        lab.sql("db1", "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
            .unwrap_or_default()
    );
    lab.sql("db2", "START SLAVE IO_THREAD").unwrap();
    lab.client_sql(vip, "INSERT INTO f VALUES (1)").unwrap();
    assert!(
        Net::wait_for(Duration::from_secs(10), || !lab
            .ctl(&["show"])
            .unwrap()
            .0
            .contains("SEMISYNC_FALLBACK")),
        "the warning stayed"
    );
}

#[test]
fn a_planned_switchover_under_writes_loses_and_duplicates_nothing() {
    let lab = Lab::up_online(&format!("mmmsw{}", std::process::id())).expect("lab up");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    lab.client_sql(
        vip,
        "CREATE TABLE s (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))",
    )
    .unwrap();
    let writers = Writers::start(&lab.ns("client"), vip, "s", 3).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (out, code) = lab.ctl(&["move_role", "writer", "db2"]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        Net::wait_for(Duration::from_secs(10), || {
            mmm_tests::walkthrough::roles_of(&lab.ctl(&["show"]).unwrap().0, "db2")
                .contains("writer")
        }),
        "{}",
        lab.monitor_log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let acked: Vec<u64> = writers.stop().into_iter().map(|(s, _)| s).collect();
    let unique: BTreeSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acknowledged twice");
    for h in ["db1", "db3"] {
        if let Err(e) = lab.servers[h].sync_with(&lab.servers["db2"], Duration::from_secs(30)) {
            // Once in ~30 runs db3 (following db1, the standby) stopped short: keep the
            // replication state of the chain db2 → db1 → db3 and the agents' words.
            let status = |h: &str| lab.sql(h, "SHOW SLAVE STATUS\\G").unwrap_or_default();
            let log = |h: &str| {
                std::fs::read_to_string(lab.run.join(format!("{h}/agent.log"))).unwrap_or_default()
            };
            panic!(
                "{h}: {e}\n--- db1 SHOW SLAVE STATUS ---\n{}\n--- db3 SHOW SLAVE STATUS ---\n{}\n--- db1 agent ---\n{}\n--- db3 agent ---\n{}\n--- monitor ---\n{}",
                status("db1"),
                status("db3"),
                log("db1"),
                log("db3"),
                lab.monitor_log()
            );
        }
    }
    all_on(&lab, "s", &unique, &["db1", "db2", "db3"]);
    // Both masters replicate again (no GTID conflict).
    replicating(&lab, &["db1", "db3"]);
}

#[test]
fn a_returning_master_takes_the_writer_role_only_with_everything_the_writer_has() {
    let lab = Lab::up_online(&format!("mmmsr{}", std::process::id())).expect("lab up");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    let writer_is = |h: &str| {
        Net::wait_for(Duration::from_secs(15), || {
            mmm_tests::walkthrough::roles_of(&lab.ctl(&["show"]).unwrap().0, h).contains("writer")
        })
    };
    lab.client_sql(vip, "CREATE TABLE b (seq BIGINT PRIMARY KEY)")
        .unwrap();
    assert_eq!(lab.ctl(&["set_offline", "db1"]).unwrap().1, 0);
    assert!(writer_is("db2"), "{}", lab.monitor_log());
    // A backlog db1 has not received (its replication is stopped while ADMIN_OFFLINE).
    let writers = Writers::start(&lab.ns("client"), vip, "b", 3).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // db1 comes back and is asked for the writer role at once, its IO thread still fetching.
    assert_eq!(lab.ctl(&["set_online", "db1"]).unwrap().1, 0);
    let (out, code) = lab.ctl(&["move_role", "writer", "db1"]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(writer_is("db1"), "{}", lab.monitor_log());
    // Writes resume once db1 is writable (after it applied db2's final position).
    assert!(
        Net::wait_for(Duration::from_secs(20), || var(
            &lab,
            "db1",
            "SELECT @@read_only"
        ) == "0"),
        "db1 never became writable:\n{}",
        std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap_or_default()
    );
    let log = std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap_or_default();
    assert!(
        log.contains("the old writer's final position") && log.contains("is applied"),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let acked: BTreeSet<u64> = writers.stop().into_iter().map(|(s, _)| s).collect();
    for h in ["db2", "db3"] {
        lab.servers[h]
            .sync_with(&lab.servers["db1"], Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{h}: {e}"));
    }
    all_on(&lab, "b", &acked, &["db1", "db2", "db3"]);
    replicating(&lab, &["db1", "db2", "db3"]);
}
