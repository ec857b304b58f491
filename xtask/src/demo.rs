//! `cargo xtask demo`: the README's first command. Installs and builds what it needs, brings
//! the default lab up (examples/lab: the seed's deployment on 198.18.0.0/24) and runs the
//! seed's HA test narrated step by step — `show`, `checks all` and the monitor's log lines as
//! the seed document prints them. Tears the lab down at the end unless `--keep`.

use anyhow::Result;
use mmm_tests::{
    lab::{Bins, Lab},
    walkthrough,
};

const PREFIX: &str = "mmmdemo";

/// Runs the demo.
pub fn run(keep: bool) -> Result<()> {
    crate::lab::build_all()?;
    // A demo left behind by an earlier --keep or crash is removed first.
    let _ = Lab::down(PREFIX);
    let dir = crate::root().join("examples/lab");
    println!("==== Bringing up the lab: db1, db2 (masters), db3 (slave), monitor, client — each in its own network namespace");
    let mut lab = Lab::up(PREFIX, &dir, Bins::workspace())?;
    for h in &lab.cfg.hosts {
        println!(
            "  {:<4} {:<13} {} (MariaDB {}, mmm-agent with XDP on {})",
            h.name,
            h.ip.to_string(),
            h.mode,
            h.mysql_port,
            h.cluster_interface
        );
    }
    println!(
        "  monitor {}:{}; writer VIP {}; reader VIPs {}",
        lab.cfg.monitor.ip,
        lab.cfg.monitor.port,
        lab.cfg
            .role("writer")
            .map(|r| r.ips[0].to_string())
            .unwrap_or_default(),
        lab.cfg
            .role("reader")
            .map(|r| r
                .ips
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    let r = walkthrough::run(&mut lab, &mut walkthrough::Print);
    if let Err(e) = &r {
        println!(
            "\nThe demo failed: {e:#}\n--- monitor log ---\n{}",
            lab.monitor_log()
        );
    }
    if keep {
        println!("\nThe lab stays up (--keep): `cargo xtask lab --prefix {PREFIX} ctl show`; remove it with `cargo xtask lab --prefix {PREFIX} down`.");
        lab.detach();
    } else {
        drop(lab);
        println!("\nDemo finished; the lab was removed.");
    }
    r.map(drop)
}
