//! `cargo xtask faults [CLASS…]`: runs fault classes (default: all of
//! `mmm_tests::faults::CLASSES`) one after the other, each on a fresh lab under continuous
//! writes, prints a table row per class and writes the table to FAULTS.md (all classes) or
//! prints it only (a subset). Exits non-zero when a class did not survive.

use anyhow::{bail, Result};
use mmm_tests::faults::{self, Row, CLASSES};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for a in &args {
        if !CLASSES.contains(&a.as_str()) {
            bail!("unknown fault class '{a}' (known: {})", CLASSES.join(", "));
        }
    }
    let classes: Vec<&str> = if args.is_empty() {
        CLASSES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let _ = mmm_tests::lab::sweep_dead();
    let mut table = String::from(Row::HEADER);
    print!("{table}");
    let mut failed = Vec::new();
    for (n, class) in classes.iter().enumerate() {
        let prefix = format!("mmmx{n}{}", std::process::id() % 10_000);
        let row = faults::run(class, &prefix).unwrap_or_else(|e| Row {
            class: class.to_string(),
            why: format!("the trial failed: {e:#}"),
            ..Default::default()
        });
        print!("{}", row.markdown());
        if !row.survived {
            eprintln!("{class}: {}", row.why);
            failed.push(class.to_string());
        }
        table += &row.markdown();
    }
    if args.is_empty() {
        let doc = format!(
            "# Fault matrix\n\nWritten by `cargo xtask faults` on {} (commit {}): each class on a fresh lab (3 MariaDB servers, agents with XDP, one monitor, mutual TLS) under continuous writes through the writer VIP by {clients} concurrent clients, never paused; `@@read_only` sampled on every server every 50 ms; afterwards every acknowledged write is looked up on every server that could catch up with the writer, and every row on any server is looked up on the writer (errant rows). Time to writes is the longest gap between acknowledged writes from just before the fault on (a few ms when nothing interrupted them; never: writes did not resume). writer-host-down-fenced runs with `kill_host_fences` (the lab's bridge-port fence) and `peer_ping_interval 20ms`. writer_lease is the default 2 s; the lab runs semi-synchronous replication (`semisync yes`, `semisync_timeout 2s`). A class that calls for no writer (the only candidate lacks acknowledged writes) survives when nobody is promoted.\n\n{table}",
            sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            sh("git", &["rev-parse", "--short", "HEAD"]),
            clients = mmm_tests::faults::CLIENTS,
        );
        std::fs::write(mmm_tests::workspace_root().join("FAULTS.md"), doc)?;
    }
    if !failed.is_empty() {
        bail!("did not survive: {}", failed.join(", "));
    }
    Ok(())
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
