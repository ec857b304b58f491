//! End to end: continuous writes through the writer VIP while the writer's mysqld is killed
//! (kill -9). Writes resume through the same VIP with no client change; no acknowledged write
//! is lost (replication was caught up at the kill); at no moment are two servers writable.

use mmm_tests::lab::Lab;
use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

fn lab(tag: &str) -> Lab {
    Lab::up_online(&format!("mmm{tag}{}", std::process::id())).expect("lab up")
}

#[test]
fn writes_resume_through_the_vip_after_the_writer_is_killed() {
    let mut lab = lab("f");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    lab.client_sql(
        vip,
        "CREATE TABLE w (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))",
    )
    .unwrap();

    let writer = mmm_tests::load::Writer::start(&lab.ns("client"), vip, "w", 1).unwrap();

    // Writable servers are polled all along: never two at once.
    let watching = Arc::new(AtomicBool::new(true));
    let max_writable = Arc::new(AtomicU64::new(0));
    let servers: Vec<(String, std::path::PathBuf)> = lab
        .servers
        .iter()
        .map(|(h, s)| (h.clone(), s.socket()))
        .collect();
    let watcher = {
        let (w, m) = (watching.clone(), max_writable.clone());
        std::thread::spawn(move || {
            while w.load(Ordering::SeqCst) {
                let n = servers
                    .iter()
                    .filter(|(_, sock)| {
                        std::process::Command::new("mariadb")
                            .args([
                                "--no-defaults",
                                &format!("--socket={}", sock.display()),
                                "-uroot",
                                "-N",
                                "-B",
                                "--connect-timeout=1",
                                "-e",
                                "SELECT @@read_only",
                            ])
                            .output()
                            .map(|o| {
                                o.status.success()
                                    && String::from_utf8_lossy(&o.stdout).trim() == "0"
                            })
                            .unwrap_or(false)
                    })
                    .count() as u64;
                m.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    std::thread::sleep(Duration::from_secs(1));
    // Catch replication up (writes held for a moment), then kill -9 db1's mysqld.
    writer.pause();
    for h in ["db2", "db3"] {
        lab.servers[h]
            .sync_with(&lab.servers["db1"], Duration::from_secs(10))
            .unwrap();
    }
    let before = writer.acked().len();
    let killed_at = Instant::now();
    lab.servers.get_mut("db1").unwrap().kill();
    writer.resume();

    // Writes resume through the same VIP.
    let resumed = mmm_tests::Net::wait_for(Duration::from_secs(30), || {
        writer.acked().len() >= before + 20
    });
    let failures = writer.failures();
    let acked = writer.stop();
    watching.store(false, Ordering::SeqCst);
    watcher.join().unwrap();
    assert!(
        resumed,
        "writes did not resume; monitor log:\n{}",
        lab.monitor_log()
    );
    let first_after = acked
        .iter()
        .find(|(_, t)| *t > killed_at)
        .map(|(_, t)| *t)
        .unwrap();
    eprintln!(
        "unavailability after kill -9: {:?} ({} failed attempts)",
        first_after - killed_at,
        failures
    );

    // Every acknowledged write is on the new master and on the slave.
    let want: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    lab.servers["db3"]
        .sync_with(&lab.servers["db2"], Duration::from_secs(10))
        .unwrap();
    for h in ["db2", "db3"] {
        let got = lab.seqs(h, "w").unwrap();
        let lost: Vec<_> = want.difference(&got).collect();
        assert!(lost.is_empty(), "{h} lost acknowledged writes {lost:?}");
    }
    assert_eq!(
        max_writable.load(Ordering::SeqCst),
        1,
        "two servers were writable at once"
    );
    let show = lab.ctl(&["show"]).unwrap().0;
    assert!(
        show.contains("db1(198.18.0.11) master/HARD_OFFLINE"),
        "{show}"
    );
    assert!(
        show.contains("writer(198.18.0.100)")
            && mmm_tests::walkthrough::roles_of(&show, "db2").contains("writer"),
        "{show}"
    );
    // The old writer handed the VIP over: it steered stale clients to db2 only once db2 had
    // it (until then its own kernel refused them at once).
    let log = std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap_or_default();
    assert!(
        log.contains("writer(198.18.0.100) released, steering to db2 once the new owner had it"),
        "{log}"
    );
}

#[test]
fn a_whole_host_down_is_confirmed_by_the_other_hosts_agents() {
    use mmm_tests::walkthrough::{roles_of, state_of};
    let mut lab = lab("hd");
    let iface = lab.cfg.host("db1").unwrap().cluster_interface.clone();
    // The host vanishes: link down (its agent can no longer report) and mysqld gone.
    lab.net
        .exec(&lab.ns("db1"), "ip", &["link", "set", &iface, "down"])
        .unwrap();
    lab.servers.get_mut("db1").unwrap().kill();
    lab.wait_show(Duration::from_secs(30), |s| {
        state_of(s, "db1") == "HARD_OFFLINE" && roles_of(s, "db2").contains("writer")
    })
    .unwrap();
    let log = lab.monitor_log();
    assert!(log.contains("cannot reach 'db1'"), "{log}");
    // The monitor's own failing check and a peer's report agreed: no trap period waited.
    assert!(
        log.contains("on 'db1' has failed (confirmed by the agent on 'db"),
        "{log}"
    );
}
