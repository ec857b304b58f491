//! End to end: the seed's HA walk-through (shared/seeds/000 steps 8-12) on a full lab — real
//! MariaDB, real agents with XDP, the real monitor — asserting every state and role placement,
//! db3's replication source after the failover, and that the rows written through the writer
//! VIP before and after are on every live server.

use mmm_tests::{
    lab::{Bins, Lab},
    walkthrough,
};
use std::{path::Path, time::Duration};

#[test]
fn seed_walk_through() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
    let prefix = format!("mmmw{}", std::process::id());
    let mut lab = Lab::up(&prefix, &cfg, Bins::workspace()).expect("lab up");
    let rows = match walkthrough::run(&mut lab, &mut walkthrough::Quiet) {
        Ok(r) => r,
        Err(e) => panic!(
            "{e:#}\n--- monitor log ---\n{}\n--- db2 agent log ---\n{}",
            lab.monitor_log(),
            std::fs::read_to_string(lab.run.join("db2/agent.log")).unwrap_or_default()
        ),
    };
    assert_eq!(rows, ["before failures", "after failover"]);
    // Every live server has both rows (db1 is down; db3 replicates from db2 now).
    for h in ["db2", "db3"] {
        let ok = mmm_tests::Net::wait_for(Duration::from_secs(10), || {
            lab.sql(h, "SELECT GROUP_CONCAT(step ORDER BY id) FROM app.walk")
                .map(|s| s.trim() == "before failures,after failover")
                .unwrap_or(false)
        });
        assert!(
            ok,
            "{h} lacks rows: {:?}",
            lab.sql(h, "SELECT * FROM app.walk")
        );
    }
    // Only the writer is writable.
    assert_eq!(lab.sql("db2", "SELECT @@read_only").unwrap().trim(), "0");
    // The history tells both failures: db2's reader moved, then the writer failover, each
    // with what the agents did.
    let told = |h: &str| {
        let (Some(db2_down), Some(db1_down)) = (
            h.find("db2 ONLINE → HARD_OFFLINE"),
            h.find("db1 ONLINE → HARD_OFFLINE"),
        ) else {
            return false;
        };
        db2_down < db1_down
            && h[db1_down..].contains("writer(198.18.0.100) on db2")
            && h.contains("failover (epoch")
            && h[db1_down..].contains("writable")
    };
    assert!(
        mmm_tests::Net::wait_for(Duration::from_secs(30), || lab
            .ctl(&["history", "50"])
            .is_ok_and(|(h, _)| told(&h))),
        "{}",
        lab.ctl(&["history", "50"]).unwrap().0
    );
    assert_eq!(lab.sql("db3", "SELECT @@read_only").unwrap().trim(), "1");
}
