//! `flaky-net` (#18 item 2): no false failover on a bad network. Each trial runs a fresh lab
//! under [`mmm_tests::faults::CLIENTS`] concurrent writers, makes the network lossy
//! (`mmm_tests::faults` classes `flaky-net`: 5 % of the packets every namespace receives are
//! dropped; `flaky-writer-link`: 30 % of what the writer sends, as `tc netem loss 30%` on its
//! interface would; `flaky-writer-link-both`: 30 % each way), lets it run for
//! [`SOAK`], counts writer moves and hosts leaving ONLINE (both must be 0: every server is
//! up), then kills the writer's mysqld and measures that the failover still happens and how
//! long the clients saw no acknowledgement. Loss only: the lab's kernel has no `netem` (see
//! the classes' `lossy`).

use crate::stats::{ms, Table, DIST_HEAD};
use anyhow::Result;
use std::time::Duration;

/// How long each trial runs on the lossy network before the writer is killed.
pub const SOAK: Duration = Duration::from_secs(60);

/// The profiles: (fault class, what the table calls it).
const PROFILES: [(&str, &str); 3] = [
    ("flaky-net", "5 % loss on every link"),
    (
        "flaky-writer-link",
        "30 % loss on the writer's link (what it sends, as netem)",
    ),
    (
        "flaky-writer-link-both",
        "30 % loss each way on the writer's link",
    ),
];

/// Runs `trials` trials of each profile; one table.
pub fn run(trials: u64) -> Result<Table> {
    let mut t = Table::new(
        &format!(
            "flaky-net: {trials} trials per profile, {} s on the lossy network each, then kill -9 of the writer's mysqld",
            SOAK.as_secs()
        ),
        DIST_HEAD,
    );
    for (class, what) in PROFILES {
        let (mut moves, mut left, mut missed, mut failed) = (0usize, 0usize, 0u64, 0u64);
        let mut gaps = Vec::new();
        for n in 1..=trials {
            let prefix = format!("mmmfl{}", std::process::id());
            match mmm_tests::faults::run_soak(class, &prefix, true, SOAK) {
                Ok(row) => {
                    eprintln!(
                        "  {what}: trial {n}: {} false failovers, {} hosts left ONLINE, failover after the kill: {}, unavailable {:.0} ms{}",
                        row.false_failovers,
                        row.left_online,
                        if row.time_to_writes.is_some() { "yes" } else { "no" },
                        ms(row.longest_gap),
                        if row.survived { String::new() } else { format!(" ({})", row.why.trim()) }
                    );
                    moves += row.false_failovers;
                    left += row.left_online;
                    if row.time_to_writes.is_none() {
                        missed += 1;
                    } else {
                        gaps.push(ms(row.longest_gap));
                    }
                }
                Err(e) => {
                    eprintln!("  {what}: trial {n} failed: {e:#}");
                    failed += 1;
                }
            }
        }
        t.dist(
            &format!("{what}: unavailability after the kill"),
            &gaps,
            "ms",
            None,
        );
        let line = format!(
            "{what}: false failovers: {moves} in {} s of soak; hosts that left ONLINE: {left}; kills not failed over: {missed} of {}{}",
            SOAK.as_secs() * (trials - failed),
            trials - failed,
            if failed > 0 { format!(" ({failed} trials could not run)") } else { String::new() }
        );
        println!("{line}");
        t.notes.push(line);
    }
    t.notes.push(format!(
        "Target: 0 false failovers and 0 hosts leaving ONLINE while every server is up; every kill still failed over. {} clients write through the writer VIP throughout; their unavailability includes the loss itself (TCP retransmissions, the 500 ms query timeout). Loss by nftables `numgen random`; no delay or jitter: the lab's kernel has neither netem nor fq.",
        mmm_tests::faults::CLIENTS
    ));
    Ok(t)
}
