//! What a killed test run leaves behind is swept by the next run, and nothing else is: a dead
//! owner's lab and a dead process's `Net` segment go; a live owner's lab and a lab left
//! running on purpose (no owner) stay.

use std::process::Command;

fn ns_add(name: &str) {
    assert!(Command::new("ip")
        .args(["netns", "add", name])
        .status()
        .unwrap()
        .success());
}

fn ns_exists(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// A pid no process has (the highest possible is below 2^22).
const DEAD: u32 = 4_194_999;

#[test]
fn dead_runs_are_swept_and_live_or_kept_labs_are_not() {
    mmm_tests::netns::require_root();
    let me = std::process::id();
    let dead_net = format!("mmmt{DEAD}sweep0-br");
    let (dead_lab, live_lab, kept_lab) = (
        format!("mmmsweepd{me}"),
        format!("mmmsweepl{me}"),
        format!("mmmsweepk{me}"),
    );
    for (prefix, owner) in [
        (&dead_lab, Some(DEAD)),
        (&live_lab, Some(me)),
        (&kept_lab, None),
    ] {
        let run = mmm_tests::lab::run_dir(prefix);
        std::fs::create_dir_all(&run).unwrap();
        if let Some(o) = owner {
            std::fs::write(run.join("owner"), o.to_string()).unwrap();
        }
        ns_add(&format!("{prefix}-db1"));
    }
    ns_add(&dead_net);
    let done = mmm_tests::lab::sweep_dead().unwrap();
    let gone = |n: &str| !ns_exists(n);
    let (dl, ll, kl) = (
        format!("{dead_lab}-db1"),
        format!("{live_lab}-db1"),
        format!("{kept_lab}-db1"),
    );
    let (dead_gone, lab_gone, live_kept, kept_kept) =
        (gone(&dead_net), gone(&dl), !gone(&ll), !gone(&kl));
    // Clean up what this test made, whatever the outcome.
    for p in [&live_lab, &kept_lab, &dead_lab] {
        let _ = mmm_tests::lab::Lab::down(p);
    }
    let _ = Command::new("ip")
        .args(["netns", "del", &dead_net])
        .status();
    assert!(dead_gone && lab_gone, "not swept: {done:?}");
    assert!(live_kept && kept_kept, "swept too much: {done:?}");
}
