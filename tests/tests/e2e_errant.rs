//! End to end: a former writer holding a transaction the writer never had (committed on it
//! while the new writer did not replicate from it, by an account that bypasses `read_only`:
//! what an isolated writer leaves behind) is caught by the GTID comparison while its
//! replication still runs: `checks` names the GTID as an errant transaction, and it stays out
//! of rotation (REPLICATION_FAIL) instead of rejoining — also once its replication from the
//! new writer stops on the GTID conflict.

use mmm_tests::{
    lab::Lab,
    walkthrough::{roles_of, state_of},
    Net,
};
use std::time::Duration;

#[test]
fn a_former_writer_with_an_errant_transaction_stays_out_with_the_gtid_named() {
    let lab = Lab::up_online(&format!("mmmer{}", std::process::id())).expect("lab up");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    lab.client_sql(vip, "CREATE TABLE e (id INT PRIMARY KEY)")
        .unwrap();
    let show = |lab: &Lab| lab.ctl(&["show"]).unwrap().0;
    assert_eq!(lab.ctl(&["move_role", "writer", "db2"]).unwrap().1, 0);
    assert!(
        Net::wait_for(Duration::from_secs(15), || roles_of(&show(&lab), "db2")
            .contains("writer")),
        "{}",
        lab.monitor_log()
    );
    // db1 cut off from db2 (as when it was isolated), and root — which bypasses read_only on
    // MariaDB — writes on it: a transaction db2 never sees.
    lab.sql("db2", "STOP SLAVE").unwrap();
    lab.sql("db1", "INSERT INTO app.e VALUES (1)").unwrap();
    let errant = lab.servers["db1"]
        .sql("SELECT @@gtid_binlog_pos")
        .unwrap_or_default();
    // Caught by the GTID comparison, the errant GTID named, before the writer writes again.
    let named = Net::wait_for(Duration::from_secs(20), || {
        let checks = lab.ctl(&["checks", "db1", "rep_threads"]).unwrap().0;
        checks.contains("errant transactions")
            && checks.contains(errant.trim())
            && state_of(&show(&lab), "db1") == "REPLICATION_FAIL"
    });
    assert!(
        named,
        "{errant}\n{}\n{}",
        lab.ctl(&["checks", "db1", "rep_threads"]).unwrap().0,
        show(&lab)
    );
    // The writer moves on: its next GTID collides with db1's errant one.
    assert!(Net::wait_for(Duration::from_secs(10), || lab
        .client_sql(vip, "INSERT INTO e VALUES (2)")
        .is_ok()));
    let caught = Net::wait_for(Duration::from_secs(30), || {
        let checks = lab.ctl(&["checks", "db1", "rep_threads"]).unwrap().0;
        checks.contains("errant transactions") && state_of(&show(&lab), "db1") == "REPLICATION_FAIL"
    });
    assert!(
        caught,
        "{}\n{}\n{}",
        lab.ctl(&["checks", "db1", "rep_threads"]).unwrap().0,
        show(&lab),
        lab.servers["db1"]
            .sql_shown("SHOW SLAVE STATUS\\G")
            .unwrap_or_default()
    );
    assert!(
        !roles_of(&show(&lab), "db1").contains("reader"),
        "{}",
        show(&lab)
    );
}
