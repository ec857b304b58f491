//! Promotion's and repointing's pure decisions (`promote.rs`), without root or a server.

use super::*;

fn status(read: Option<(&str, u64)>, exec: Option<(&str, u64)>, sql: ThreadState) -> ReplicaStatus {
    let pos = |p: Option<(&str, u64)>| {
        p.map(|(f, pos)| LogPos {
            file: f.into(),
            pos,
        })
    };
    ReplicaStatus {
        source_host: "198.18.0.11".into(),
        source_port: Some(3306),
        io: ThreadState::Running,
        sql,
        read: pos(read),
        executed: pos(exec),
        gtid: true,
        gtid_received: None,
        seconds_behind: None,
        last_io_errno: 0,
        last_sql_errno: 0,
        last_io_error: String::new(),
        last_sql_error: String::new(),
    }
}

#[test]
fn catch_up_decisions() {
    assert_eq!(catch_up(None), CatchUp::NotReplica);
    assert_eq!(
        catch_up(Some(&status(None, None, ThreadState::Running))),
        CatchUp::NothingRead
    );
    let behind = status(Some(("b.1", 900)), Some(("b.1", 700)), ThreadState::Stopped);
    assert_eq!(
        catch_up(Some(&behind)),
        CatchUp::Wait {
            until: LogPos {
                file: "b.1".into(),
                pos: 900
            },
            start_sql: true,
            behind: "200 bytes".into()
        }
    );
    let other_file = status(Some(("b.2", 10)), Some(("b.1", 700)), ThreadState::Running);
    assert!(matches!(
        catch_up(Some(&other_file)),
        CatchUp::Wait { start_sql: false, ref behind, .. } if behind == "at least one binlog file"
    ));
    // Stopped but nothing unapplied: nothing to wait for (a wait would return NULL).
    let applied = status(Some(("b.1", 700)), Some(("b.1", 700)), ThreadState::Stopped);
    assert!(matches!(catch_up(Some(&applied)), CatchUp::Applied(_)));
}

#[test]
fn a_repoint_restarts_no_thread_an_operator_stopped() {
    let d = Dialect::MariaDb;
    let both = Restart {
        io: true,
        sql: true,
    };
    assert_eq!(Restart::after_repoint(None), both);
    // Running, or Connecting to a failed writer: both started.
    let mut s = status(None, None, ThreadState::Running);
    s.io = ThreadState::Connecting;
    assert_eq!(
        Restart::after_repoint(Some(&s)).statement(d),
        Some("START SLAVE")
    );
    // STOP SLAVE SQL_THREAD by an operator: only the IO thread.
    let sql_held = status(None, None, ThreadState::Stopped);
    let r = Restart::after_repoint(Some(&sql_held));
    assert_eq!(r.statement(d), Some("START SLAVE IO_THREAD"));
    assert_eq!(
        r.statement(Dialect::detect("8.0.36")),
        Some("START REPLICA IO_THREAD")
    );
    assert!(r.running(&status(None, None, ThreadState::Stopped)));
    // STOP SLAVE: neither.
    let mut all_held = sql_held.clone();
    all_held.io = ThreadState::Stopped;
    assert_eq!(Restart::after_repoint(Some(&all_held)).statement(d), None);
    // Stopped by an error: started again.
    let mut broken = sql_held;
    broken.last_sql_errno = 1062;
    assert_eq!(Restart::after_repoint(Some(&broken)), both);
}

#[test]
fn wait_answers() {
    assert_eq!(wait_verdict(&Ok(Some("0".into()))), WaitVerdict::Applied);
    assert_eq!(wait_verdict(&Ok(Some("12".into()))), WaitVerdict::Applied);
    assert_eq!(wait_verdict(&Ok(None)), WaitVerdict::SqlThreadNotRunning);
    assert_eq!(
        wait_verdict(&Ok(Some("-1".into()))),
        WaitVerdict::NotApplied("timeout".into())
    );
}

#[test]
fn repoint_only_when_reading_from_elsewhere() {
    let s = status(None, None, ThreadState::Running);
    assert!(!needs_repoint(Some(&s), Ipv4Addr::new(198, 18, 0, 11)));
    assert!(needs_repoint(Some(&s), Ipv4Addr::new(198, 18, 0, 12)));
    assert!(needs_repoint(None, Ipv4Addr::new(198, 18, 0, 12)));
}

#[test]
fn a_final_position_already_held_needs_no_wait() {
    // The old writer taking the role back holds its own commits (server 1).
    assert!(holds("0-1-1244", "0-1-1244"));
    assert!(holds("0-2-1300", "0-1-1244"));
    assert!(holds("0-1-1244,1-3-7", "0-1-1244"));
    assert!(!holds("0-2-1243", "0-1-1244"));
    assert!(!holds("", "0-1-1244"));
    assert!(holds("0-1-5", ""));
    let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    assert!(holds(&format!("{u}:1-10"), &format!("{u}:1-9")));
    assert!(!holds(&format!("{u}:1-8"), &format!("{u}:1-9")));
    // Unreadable or mixed: the server's own wait decides.
    assert!(!holds("garbage", "0-1-1"));
    assert!(!holds(&format!("{u}:1-10"), "0-1-1"));
}
