//! `zero-loss` (#13): the writer killed (kill -9), its whole host down, and a planned
//! switchover, each under writes that are never paused (`mmm_tests::faults::CLIENTS`
//! concurrent clients writing unique ids through the writer VIP at full speed, every
//! acknowledged id logged), with semi-synchronous
//! replication on and, for contrast, off. After each trial every server that can catch up is
//! compared with the log (`mmm_tests::faults`, the same checker as the fault matrix). Per
//! variant: `acknowledged writes lost: N of M` and the unavailability the client saw (the
//! longest time between two acknowledged writes from the fault on).

use crate::stats::{ms, Table, DIST_HEAD};
use anyhow::Result;

/// The variants: (fault class, what the table calls it).
const VARIANTS: [(&str, &str); 3] = [
    ("kill-writer", "kill -9 of the writer's mysqld"),
    ("writer-host-down", "the writer's whole host down"),
    ("switchover", "planned switchover (move_role writer db2)"),
];

/// Runs `trials` trials of every variant (or of the classes in `only`, when given), semi-sync
/// on then off; one table.
pub fn run(trials: u64, only: &[String]) -> Result<Table> {
    for o in only {
        if !VARIANTS.iter().any(|(c, _)| c == o) {
            anyhow::bail!(
                "unknown zero-loss variant '{o}' (known: {})",
                VARIANTS.map(|(c, _)| c).join(", ")
            );
        }
    }
    let mut t = Table::new(
        &format!("zero-loss: acknowledged writes under faults, writes never paused ({trials} trials per variant)"),
        DIST_HEAD,
    );
    for semisync in [true, false] {
        let mode = if semisync {
            "semisync on"
        } else {
            "semisync off"
        };
        for (class, what) in VARIANTS
            .into_iter()
            .filter(|(c, _)| only.is_empty() || only.iter().any(|o| o == c))
        {
            let (mut lost, mut acked, mut failed) = (0usize, 0usize, 0u64);
            let mut gaps = Vec::new();
            for n in 1..=trials {
                let prefix = format!("mmmzl{}", std::process::id());
                match mmm_tests::faults::run_with(class, &prefix, semisync) {
                    Ok(row) => {
                        eprintln!(
                            "  {what}, {mode}: trial {n}: {} of {} acknowledged writes lost, unavailable {:.0} ms{}",
                            row.lost,
                            row.acked,
                            ms(row.longest_gap),
                            if row.survived { String::new() } else { format!(" ({})", row.why.trim()) }
                        );
                        lost += row.lost;
                        acked += row.acked;
                        gaps.push(ms(row.longest_gap));
                    }
                    Err(e) => {
                        eprintln!("  {what}, {mode}: trial {n} failed: {e:#}");
                        failed += 1;
                    }
                }
            }
            let target = match (semisync, class) {
                (true, "kill-writer") => Some((200.0, "p50")),
                (true, "switchover") => Some((100.0, "p50")),
                _ => None,
            };
            t.dist(
                &format!("{what}, {mode}: unavailability"),
                &gaps,
                "ms",
                target,
            );
            let line = format!(
                "{what}, {mode}: acknowledged writes lost: {lost} of {acked}{}",
                if failed > 0 {
                    format!(" ({failed} trial(s) could not run)")
                } else {
                    String::new()
                }
            );
            println!("{line}");
            t.notes.push(line);
        }
    }
    t.notes.push(format!(
        "{} clients write at once through the writer VIP, never paused. Target with semisync: 0 lost in every trial, kill -9 p50 ≤ 200 ms, planned switchover p50 ≤ 100 ms. Without semisync a write the dying writer acknowledged but had not shipped is lost by design (the contrast). The whole-host variant waits out the writer lease (2 s) before promoting.",
        mmm_tests::faults::CLIENTS
    ));
    Ok(t)
}
