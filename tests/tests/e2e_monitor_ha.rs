//! End to end, monitor high availability on etcd (issue 14): three monitors on a three-member
//! etcd cluster; one leads. The leader killed → another leads, the roles stay where they are
//! and no epoch goes backwards; the writer's mysqld killed while the leader is being replaced
//! → the writer moves once, to the right host; a majority of etcd down → nobody changes
//! anything (the agents keep their roles), and the monitors resume when etcd is back. etcd
//! speaks mutual TLS to its members and to the monitors, each with its own client certificate.

use mmm_tests::{
    grpc::Party,
    lab::{etcd_tls, ha, Lab},
    netns::Net,
    walkthrough::roles_of,
};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The leader, asked of any live monitor.
fn leader(lab: &Lab, live: &[usize]) -> Option<usize> {
    live.iter().find_map(|n| lab.leader_via(*n).ok().flatten())
}

/// Every host's roles in `show`, asked of monitor `via`, are those of `before`.
fn same_roles(lab: &Lab, via: usize, before: &str) {
    let after = ha::ctl_output(&lab.prefix, &lab.bins, via, &["show".into()]).unwrap();
    for h in ["db1", "db2", "db3"] {
        assert_eq!(
            roles_of(&after, h),
            roles_of(before, h),
            "roles moved:\n{before}\n{after}"
        );
    }
}

/// The epoch each agent applied (from its state file).
fn applied_epochs(lab: &Lab) -> Vec<(String, u64)> {
    lab.cfg
        .hosts
        .iter()
        .map(|h| {
            let text = std::fs::read_to_string(
                lab.run
                    .join(&h.name)
                    .join(format!("state/mmm_agent-{}.state", h.name)),
            )
            .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            (h.name.clone(), v["epoch"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// grpcurl from the client namespace, as the operator, against monitor `n`: (stdout+stderr,
/// success).
fn grpcurl(lab: &Lab, n: usize, data: Option<&str>, method: &str) -> (String, bool) {
    let addr = format!(
        "{}:{}",
        ha::monitor_ip(lab.cfg.monitor.ip, n),
        lab.cfg.monitor.port
    );
    let out = lab
        .grpcurl("client", Party::Control, &addr, data, &[method])
        .expect("grpcurl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success())
}

/// Monitor `n`'s health as grpc.health.v1 reports it (`SERVING`, `NOT_SERVING`).
fn health(lab: &Lab, n: usize) -> String {
    grpcurl(
        lab,
        n,
        Some(r#"{"service":"mmm.v1.Monitor"}"#),
        "grpc.health.v1.Health/Check",
    )
    .0
}

/// Every (host, epoch) an agent applied, by the monitor whose log reports it: no epoch may
/// have been pushed by two monitors (each new leader publishes above the stored epoch).
fn epochs_by_monitor(lab: &Lab) -> std::collections::BTreeMap<(String, u64), usize> {
    let mut seen = std::collections::BTreeMap::new();
    for n in 1..=lab.monitors {
        for l in lab.monitor_log_n(n).lines() {
            let Some(rest) = l.split("agent applied epoch ").nth(1) else {
                continue;
            };
            let epoch: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            // `… host=db1` at the end, the `=` and name maybe wrapped in colour codes.
            let host = l.rsplit('=').next().unwrap_or_default();
            let host = host.rsplit("\u{1b}[0m").next().unwrap_or_default().trim();
            assert!(lab.cfg.host(host).is_some(), "no host in: {l}");
            if let Some(other) = seen.insert((host.to_string(), epoch), n) {
                assert_eq!(
                    other, n,
                    "epoch {epoch} reached {host} from mon{other} and mon{n}"
                );
            }
        }
    }
    seen
}

#[test]
fn the_leader_killed_another_leads_the_roles_stay_and_a_writer_failure_still_moves_once() {
    let mut lab = Lab::up_online_ha(&format!("mmmha{}", std::process::id())).expect("lab up");
    let first = leader(&lab, &[1, 2, 3]).expect("a leader");
    let (before, _) = lab.ctl(&["show"]).unwrap();
    let epochs = applied_epochs(&lab);

    // A follower passes a command to the leader and reports who leads (grpcurl, as the README
    // promises for any monitor).
    let follower = (1..=3).find(|n| *n != first).unwrap();
    let (out, ok) = grpcurl(
        &lab,
        follower,
        Some(r#"{"mode":"MODE_MANUAL"}"#),
        "mmm.v1.Monitor/SetMode",
    );
    assert!(
        ok && out.contains("OK: Switched into manual mode."),
        "{out}"
    );
    assert!(
        Net::wait_for(T, || lab.ctl(&["mode"]).unwrap().0.contains("MANUAL")),
        "the follower's command did not reach the leader"
    );
    let (out, ok) = grpcurl(
        &lab,
        follower,
        Some(r#"{"mode":"MODE_ACTIVE"}"#),
        "mmm.v1.Monitor/SetMode",
    );
    assert!(
        ok && out.contains("OK: Switched into active mode."),
        "{out}"
    );
    let (out, _) = grpcurl(&lab, follower, None, "mmm.v1.Monitor/Show");
    assert!(
        out.contains(&format!("\"leader\": \"mon{first} (")),
        "{out}"
    );
    assert!(health(&lab, follower).contains("\"SERVING\""));
    assert!(Net::wait_for(T, || lab
        .ctl(&["mode"])
        .unwrap()
        .0
        .contains("ACTIVE")));

    // The follower's Watch stream reports the change of leader (grpcurl streams for 5 s).
    let watched = std::thread::scope(|sc| {
        let w = sc.spawn(|| grpcurl(&lab, follower, None, "mmm.v1.Monitor/Watch").0);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            ha::kill_monitor(&lab.prefix, first),
            "mon{first} was not running"
        );
        w.join().unwrap()
    });
    assert!(watched.contains("leaderChange"), "{watched}");
    let live: Vec<usize> = (1..=3).filter(|n| *n != first).collect();
    assert!(
        Net::wait_for(T, || leader(&lab, &live).is_some_and(|l| l != first)),
        "no new leader after mon{first} was killed:\n{}",
        live.iter()
            .map(|n| lab.monitor_log_n(*n))
            .collect::<String>()
    );
    let second = leader(&lab, &live).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    same_roles(&lab, second, &before);
    for ((h, was), (_, now)) in epochs.iter().zip(applied_epochs(&lab)) {
        assert!(now >= *was, "{h}'s epoch went back from {was} to {now}");
    }

    // The new leader publishes a table above the stored epoch (once it heard the agents;
    // on a loaded machine that can take longer than the 2 s above).
    assert!(
        Net::wait_for(T, || epochs_by_monitor(&lab).values().any(|m| *m == second)),
        "mon{second} leads but never pushed a table:\n{}",
        lab.monitor_log_n(second)
    );

    // The writer's mysqld dies while the new leader is replaced again.
    let other = *live.iter().find(|n| **n != second).unwrap();
    lab.kill_monitor_n(second);
    lab.servers.get_mut("db1").unwrap().kill();
    assert!(
        Net::wait_for(T, || roles_of(&lab.ctl(&["show"]).unwrap().0, "db2")
            .contains("writer")),
        "the writer did not move to db2:\n{}",
        lab.monitor_log_n(other)
    );
    let log = lab.monitor_log_n(other);
    assert!(log.contains("leads now"), "mon{other} never led:\n{log}");
    let (show, _) = lab.ctl(&["show"]).unwrap();
    assert!(
        show.contains(&format!("# Monitor leader: mon{other} ")),
        "{show}"
    );
    // Three leaders in turn, and no epoch was pushed by two of them.
    let seen = epochs_by_monitor(&lab);
    let leaders: std::collections::BTreeSet<usize> = seen.values().copied().collect();
    assert_eq!(leaders.len(), 3, "{seen:?}");
}

/// `curl` from monitor 2's namespace to etcd member 1's `/health` with `args` (TLS files):
/// whether etcd answered that it is healthy.
fn etcd_health(lab: &Lab, scheme: &str, args: &[&std::path::Path]) -> bool {
    let mut c = mmm_tests::netns::command_in(&format!("{}-monitor2", lab.prefix), "curl").unwrap();
    c.args(["-sS", "--max-time", "5"]);
    for (flag, file) in ["--cacert", "--cert", "--key"].iter().zip(args) {
        c.arg(flag).arg(file);
    }
    c.arg(format!(
        "{scheme}://{}:{}/health",
        ha::etcd_ip(1),
        ha::ETCD_CLIENT_PORT
    ));
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(r#""health":"true""#)
}

#[test]
fn without_an_etcd_majority_nobody_changes_anything_until_etcd_is_back() {
    let mut lab = Lab::up_online_ha(&format!("mmmhaq{}", std::process::id())).expect("lab up");
    // The monitors lead over mutual TLS: etcd answers a monitor's own client certificate and
    // nothing else — not plaintext, not TLS without a certificate, not an agent's certificate
    // (signed by the mmm cluster's CA, not etcd's).
    let ca = etcd_tls::ca_file(&lab.prefix);
    let (cert, key) = etcd_tls::client_files(&ha::monitor_dir(&lab.prefix, 2));
    assert!(etcd_health(&lab, "https", &[&ca, &cert, &key]));
    assert!(!etcd_health(&lab, "http", &[]));
    assert!(!etcd_health(&lab, "https", &[&ca]));
    let pki = lab.run.join("pki");
    assert!(!etcd_health(
        &lab,
        "https",
        &[&ca, &pki.join("db1.crt"), &pki.join("db1.key")]
    ));
    // Every agent has applied the last table.
    let settled = || {
        let e = applied_epochs(&lab);
        e.iter().all(|(_, x)| *x == e[0].1)
    };
    assert!(Net::wait_for(T, settled), "{:?}", applied_epochs(&lab));
    let epochs = applied_epochs(&lab);
    lab.kill_etcd(1);
    lab.kill_etcd(2);
    // The leader stops acting within its lease; db1's mysqld dies meanwhile: nobody may move
    // the writer (no monitor leads), the agents keep their roles, XDP keeps answering.
    std::thread::sleep(Duration::from_secs(3));
    lab.servers.get_mut("db1").unwrap().kill();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        applied_epochs(&lab),
        epochs,
        "a table was applied without an etcd majority"
    );
    // The readers still serve through their VIPs (the agents keep their roles, XDP answers).
    for ip in ["198.18.0.101", "198.18.0.102"] {
        let r = lab.client_sql(ip.parse().unwrap(), "SELECT 1");
        assert_eq!(r.unwrap().trim(), "1", "reader VIP {ip}");
    }
    let out = ha::ctl_output(&lab.prefix, &lab.bins, 1, &["show".into()]).unwrap();
    assert!(
        out.contains("# Warning: etcd does not answer this monitor"),
        "{out}"
    );

    // etcd back: a monitor leads again and moves the writer.
    lab.start_etcd(1).unwrap();
    lab.start_etcd(2).unwrap();
    assert!(
        Net::wait_for(T, || roles_of(&lab.ctl(&["show"]).unwrap().0, "db2")
            .contains("writer")),
        "no failover once etcd was back:\n{}",
        lab.monitor_log_n(1)
    );
    assert!(Net::wait_for(T, || health(&lab, 1).contains("\"SERVING\"")));
}

#[test]
fn a_leader_cut_off_stops_acting_a_follower_leads_and_when_healed_it_follows() {
    let mut lab = Lab::up_online_ha(&format!("mmmhac{}", std::process::id())).expect("lab up");
    let first = leader(&lab, &[1, 2, 3]).expect("a leader");
    let (before, _) = lab.ctl(&["show"]).unwrap();
    ha::set_monitor_link(&lab.prefix, first, false).unwrap();
    let live: Vec<usize> = (1..=3).filter(|n| *n != first).collect();
    assert!(
        Net::wait_for(T, || leader(&lab, &live).is_some_and(|l| l != first)),
        "no new leader after mon{first} was cut off"
    );
    let log = lab.monitor_log_n(first);
    assert!(
        log.contains("no longer leads") || log.contains("stops acting"),
        "mon{first} did not step down (its lease, or its etcd session):\n{log}"
    );
    same_roles(&lab, live[0], &before);
    // With one monitor cut off, a writer failure still moves the writer (asked of a monitor
    // that reaches etcd: the cut-off one only shows what it last knew).
    lab.servers.get_mut("db1").unwrap().kill();
    let show = |n: usize| ha::ctl_output(&lab.prefix, &lab.bins, n, &["show".into()]).unwrap();
    assert!(
        Net::wait_for(T, || roles_of(&show(live[0]), "db2").contains("writer")),
        "no failover while mon{first} is cut off:\n{}",
        show(live[0])
    );
    ha::set_monitor_link(&lab.prefix, first, true).unwrap();
    let second = leader(&lab, &live).unwrap();
    assert!(
        Net::wait_for(T, || lab.leader_via(first).ok().flatten() == Some(second)),
        "healed mon{first} does not follow mon{second}:\n{}",
        lab.monitor_log_n(first)
    );
}
