//! End to end: a replica whose SQL thread an operator stopped is not restarted when a
//! switchover repoints it, and gets no reader role (#13 item 4).

use mmm_tests::{
    lab::Lab,
    walkthrough::{roles_of, state_of},
    Net,
};
use std::time::Duration;

/// `column: value` of db3's `SHOW SLAVE STATUS\G`.
fn slave_status(lab: &Lab, column: &str) -> String {
    let shown = lab.servers["db3"]
        .sql_shown("SHOW SLAVE STATUS\\G")
        .unwrap_or_default();
    shown
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{column}: "))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[test]
fn a_replica_whose_sql_thread_an_operator_stopped_gets_no_reader_role_nor_a_restart() {
    let lab = Lab::up_online(&format!("mmmrp{}", std::process::id())).expect("lab up");
    let show = |lab: &Lab| lab.ctl(&["show"]).unwrap().0;
    let source = slave_status(&lab, "Master_Host");
    lab.sql("db3", "STOP SLAVE SQL_THREAD").unwrap();
    // A switchover repoints db3 at its new source: the IO thread follows, the SQL thread
    // stays as the operator left it.
    assert_eq!(lab.ctl(&["move_role", "writer", "db2"]).unwrap().1, 0);
    let repointed = Net::wait_for(Duration::from_secs(20), || {
        slave_status(&lab, "Master_Host") != source
            && slave_status(&lab, "Slave_IO_Running") == "Yes"
    });
    let status = || {
        lab.servers["db3"]
            .sql_shown("SHOW SLAVE STATUS\\G")
            .unwrap_or_default()
    };
    assert!(repointed, "{}\n{}", status(), lab.monitor_log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        slave_status(&lab, "Slave_SQL_Running"),
        "No",
        "{}",
        status()
    );
    // Out of rotation once MMM's grace for a freshly ONLINE peer (60 s) is over.
    let out = Net::wait_for(Duration::from_secs(90), || {
        let s = show(&lab);
        state_of(&s, "db3") == "REPLICATION_FAIL" && !roles_of(&s, "db3").contains("reader")
    });
    assert!(
        out,
        "{}\n{}\n{}",
        show(&lab),
        lab.ctl(&["checks", "db3"]).unwrap().0,
        status()
    );
    assert_eq!(
        slave_status(&lab, "Slave_SQL_Running"),
        "No",
        "{}",
        status()
    );
}
