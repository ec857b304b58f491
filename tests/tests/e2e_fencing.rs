//! End to end, fences that never give up (no split brain): a writer whose mysqld stalls for
//! less than the trap period is not failed over (its agent's timeout is a suspicion, not
//! evidence); a writer hung for longer is failed over and its mysqld, which cannot be made
//! read-only, is stopped by its own agent — nothing can commit there when it would resume;
//! a server that restarts is read-only before it takes any client write.

use mmm_tests::{
    lab::Lab,
    netns::Net,
    walkthrough::{roles_of, state_of},
};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn signal(pid: u32, sig: i32) {
    // SAFETY: a signal to the lab's own mariadbd, whose pid the harness recorded.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

#[test]
fn a_short_stall_is_no_failover_and_a_hung_writer_is_stopped_by_its_agent() {
    let lab = Lab::up_online(&format!("mmmfence{}", std::process::id())).expect("lab up");
    let pid = lab.servers["db1"].pid().expect("db1's mysqld pid");
    // 1.5 s stall, shorter than the 2 s trap period.
    signal(pid, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1500));
    signal(pid, libc::SIGCONT);
    std::thread::sleep(Duration::from_secs(4));
    let (show, _) = lab.ctl(&["show"]).unwrap();
    assert_eq!(state_of(&show, "db1"), "ONLINE", "{show}");
    assert!(roles_of(&show, "db1").contains("writer"), "{show}");
    assert!(
        !lab.monitor_log().contains("to HARD_OFFLINE"),
        "a 1.5 s stall failed the writer over:\n{}",
        lab.monitor_log()
    );

    // Hung for good: failed over, and its agent stops it (it cannot be made read-only).
    signal(pid, libc::SIGSTOP);
    assert!(
        Net::wait_for(T, || roles_of(&lab.ctl(&["show"]).unwrap().0, "db2")
            .contains("writer")),
        "no failover from a hung writer:\n{}",
        lab.monitor_log()
    );
    let agent_log = || std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap();
    assert!(
        Net::wait_for(T, || agent_log().contains("was killed")),
        "db1's agent did not stop its hung mysqld:\n{}",
        agent_log()
    );
    let gone = || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
    };
    assert!(Net::wait_for(T, gone), "db1's mysqld still runs");
}

#[test]
fn a_restarted_server_is_read_only_before_any_client_write() {
    let mut lab = Lab::up_online(&format!("mmmrestart{}", std::process::id())).expect("lab up");
    let s = lab.servers.get_mut("db3").unwrap();
    s.stop().unwrap();
    s.start_again().unwrap();
    // The first thing anyone can ask it.
    assert_eq!(lab.sql("db3", "SELECT @@read_only").unwrap().trim(), "1");
}
