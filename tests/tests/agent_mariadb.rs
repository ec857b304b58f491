//! The agent on real MariaDB, driven directly over gRPC (the monitor is PASSIVE: it sends
//! nothing): epoch fencing, demotion (read-only, clients killed, replication kept), promotion
//! waiting for the relay log, GTID repointing without loss or duplicates, a slave that cannot
//! catch up never holding the writer's move, and an agent restart keeping epoch and VIPs.

use mmm_proto::v1::{self as pb, agent_client::AgentClient};
use mmm_tests::{
    lab::{Bins, Lab},
    netns::block_on_in,
    Net,
};
use std::time::{Duration, Instant};

/// A lab whose monitor sends nothing, with MMM's topology (`semisync no`: slaves follow the
/// active master; `e2e_semisync` covers the other).
fn passive_lab(tag: &str) -> Lab {
    passive_lab_with(tag, false)
}

/// [`passive_lab`], with semi-synchronous replication on or off.
fn passive_lab_with(tag: &str, semisync: bool) -> Lab {
    let (_g, dir) = Lab::example_with("mode passive").unwrap();
    if !semisync {
        let common = dir.join("mmm_common.conf");
        let text = std::fs::read_to_string(&common).unwrap();
        std::fs::write(&common, text.replace("semisync yes", "semisync no")).unwrap();
    }
    Lab::up(
        &format!("mmm{tag}{}", std::process::id()),
        &dir,
        Bins::workspace(),
    )
    .expect("lab up")
}

/// A table: `writer` holds the writer VIP, db3 (and db2 unless it is the writer) a reader each.
fn table(lab: &Lab, epoch: u64, writer: &str, state_db3: pb::HostState) -> pb::RoleTable {
    let macs: Vec<(String, Vec<u8>)> = lab
        .net
        .hosts()
        .iter()
        .map(|h| (h.name.clone(), h.mac.to_vec()))
        .collect();
    let mac = |h: &str| {
        macs.iter()
            .find(|(n, _)| n == h)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    };
    let role = |n: &str, ip: &str| pb::Role {
        name: n.into(),
        ip: ip.into(),
    };
    let line = |h: &str, roles: Vec<pb::Role>, st: pb::HostState| pb::HostAssignment {
        host: h.into(),
        state: st as i32,
        roles,
        mac: mac(h),
    };
    let on = pb::HostState::Online;
    let (w, other) = if writer == "db1" {
        ("db1", "db2")
    } else {
        ("db2", "db1")
    };
    let mut hosts = vec![
        line(w, vec![role("writer", "198.18.0.100")], on),
        line(
            other,
            if other == "db2" {
                vec![role("reader", "198.18.0.101")]
            } else {
                vec![]
            },
            on,
        ),
        line(
            "db3",
            if state_db3 == on {
                vec![role("reader", "198.18.0.102")]
            } else {
                vec![]
            },
            state_db3,
        ),
    ];
    if other == "db1" {
        hosts[2].roles.push(role("reader", "198.18.0.101"));
    }
    pb::RoleTable {
        epoch,
        active_master: writer.into(),
        active_master_role: "writer".into(),
        hosts,
        catch_up_gtid: String::new(),
    }
}

/// Applies `t` on `host`'s agent (from the monitor's namespace); (result, how long it took).
fn apply(
    lab: &Lab,
    host: &str,
    t: pb::RoleTable,
) -> (Result<pb::AgentReport, tonic::Status>, Duration) {
    let ep = lab.agent_endpoint(host).unwrap();
    block_on_in(&lab.ns("monitor"), move || async move {
        let mut c = AgentClient::new(ep.connect().await.unwrap());
        let t0 = Instant::now();
        let r = c.apply_roles(t).await.map(|r| r.into_inner());
        (r, t0.elapsed())
    })
    .unwrap()
}

fn steps(r: &pb::AgentReport) -> String {
    r.steps
        .iter()
        .map(|s| format!("{}:{}:{}", s.name, s.ok, s.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn start(lab: &Lab) {
    for h in ["db1", "db2", "db3"] {
        let (r, _) = apply(lab, h, table(lab, 1, "db1", pb::HostState::Online));
        r.unwrap_or_else(|e| panic!("{h}: {e}"));
    }
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "0");
    assert_eq!(
        lab.client_sql("198.18.0.100".parse().unwrap(), "SELECT @@server_id")
            .unwrap()
            .trim(),
        "1"
    );
}

#[test]
fn epochs_are_fenced_and_survive_an_agent_restart() {
    let mut lab = passive_lab("ae");
    start(&lab);
    let (r, _) = apply(&lab, "db1", table(&lab, 10, "db1", pb::HostState::Online));
    r.unwrap();
    let e = apply(&lab, "db1", table(&lab, 5, "db1", pb::HostState::Online))
        .0
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message()
            .contains("epoch 5 is older than the applied epoch 10"),
        "{}",
        e.message()
    );
    apply(&lab, "db1", table(&lab, 10, "db1", pb::HostState::Online))
        .0
        .expect("the same epoch again is idempotent");
    // The agent says it refused the stale table (it did not "apply" it).
    let log = std::fs::read_to_string(lab.run.join("db1/agent.log")).unwrap();
    assert!(
        log.contains("refused role table: role table epoch 5 is older than the applied epoch 10"),
        "{log}"
    );
    // At start-up the agent checks who can write past read_only (MariaDB has no
    // super_read_only); the lab's agent user cannot read the others' privileges: it says so.
    let log_path = lab.run.join("db1/agent.log");
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let unchecked = "who can write past read_only on this MariaDB server was not checked";
    assert!(
        Net::wait_for(Duration::from_secs(10), || agent_log().contains(unchecked)),
        "{}",
        agent_log()
    );
    // Restarted agent: still refuses epoch 5, and the VIP never stopped answering.
    lab.kill_agent("db1");
    assert_eq!(
        lab.client_sql("198.18.0.100".parse().unwrap(), "SELECT @@server_id")
            .unwrap()
            .trim(),
        "1"
    );
    // Allowed to read them (SELECT on `mysql`), the restarted agent names root, which holds
    // READ ONLY ADMIN — never the agent itself.
    lab.sql(
        "db1",
        "SET sql_log_bin = 0; GRANT SELECT ON mysql.* TO 'mmm_agent'@'%'",
    )
    .unwrap();
    lab.start_agent("db1").unwrap();
    let bypass = Net::wait_for(Duration::from_secs(10), || {
        agent_log().lines().any(|l| {
            l.contains("MariaDB has no super_read_only")
                && l.contains("'root'@'localhost'")
                && !l.contains("'mmm_agent'@")
        })
    });
    assert!(bypass, "root not named as bypassing read_only");
    let e = apply(&lab, "db1", table(&lab, 5, "db1", pb::HostState::Online))
        .0
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        lab.client_sql("198.18.0.100".parse().unwrap(), "SELECT @@server_id")
            .unwrap()
            .trim(),
        "1"
    );
    // A writer left read-only (an agent stopped half-way through a demotion that a newer table
    // undid) is made writable again by the next table that keeps the role.
    lab.sql("db1", "SET GLOBAL read_only = 1").unwrap();
    let (r, _) = apply(&lab, "db1", table(&lab, 12, "db1", pb::HostState::Online));
    let r = r.unwrap();
    assert!(steps(&r).contains("writable:true"), "{}", steps(&r));
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "0");
    // A malformed table is INVALID_ARGUMENT.
    let mut bad = table(&lab, 13, "db1", pb::HostState::Online);
    bad.hosts[0].roles[0].ip = "not-an-ip".into();
    assert_eq!(
        apply(&lab, "db1", bad).0.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    // A message beyond the limit (1 MiB, mmm_proto::MAX_MESSAGE_BYTES) is refused undecoded.
    let mut huge = table(&lab, 13, "db1", pb::HostState::Online);
    huge.hosts[0].roles[0].name = "x".repeat(2 << 20);
    let e = apply(&lab, "db1", huge).0.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{e:?}"
    );
}

#[test]
fn demotion_fences_and_kills_clients_but_not_replication_and_promotion_waits_for_the_relay_log() {
    let lab = passive_lab("ad");
    start(&lab);
    lab.sql("db1", "CREATE TABLE app.t (id INT PRIMARY KEY)")
        .unwrap();
    // A client connection on db1 (a long query through the writer VIP).
    let ns = lab.ns("client");
    let mut client = mmm_tests::netns::command_in(&ns, "mariadb")
        .unwrap()
        .args([
            "--no-defaults",
            "-h",
            "198.18.0.100",
            "-uapp",
            "-papp",
            "app",
            "-e",
            "SELECT SLEEP(20)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // db2 has received rows it cannot apply yet: its SQL thread waits on a table lock for 1.5 s.
    let db2 = lab.servers["db2"].socket();
    let locker = std::thread::spawn(move || {
        std::process::Command::new("mariadb")
            .args([
                "--no-defaults",
                &format!("--socket={}", db2.display()),
                "-uroot",
                "-e",
                "LOCK TABLES app.t WRITE; SELECT SLEEP(1.5); UNLOCK TABLES",
            ])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    lab.sql("db1", "INSERT INTO app.t VALUES (1), (2), (3)")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Demote db1 first, then promote db2, as the monitor's one table does.
    let (r1, _) = apply(&lab, "db1", table(&lab, 2, "db2", pb::HostState::Online));
    let r1 = r1.unwrap();
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "1");
    assert!(
        steps(&r1).contains("kill:true:1 client connection(s) killed"),
        "{}",
        steps(&r1)
    );
    // The client sees its connection closed at once (not after its 20 s query).
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = client.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = client.kill();
            let _ = client.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        matches!(status, Some(st) if !st.success()),
        "the client connection was not closed: {status:?}"
    );
    // Replication from db1 survived: db3 still reads from it.
    assert!(lab
        .sql("db3", "SHOW SLAVE STATUS")
        .unwrap()
        .contains("\tYes\tYes\t"));
    let (r2, took) = apply(&lab, "db2", table(&lab, 2, "db2", pb::HostState::Online));
    let r2 = r2.unwrap();
    locker.join().unwrap();
    assert!(
        steps(&r2).contains("catch-up:true:relay log applied"),
        "{}",
        steps(&r2)
    );
    assert!(
        took >= Duration::from_millis(500),
        "promotion did not wait for the relay log ({took:?})"
    );
    // Everything db1 had was applied before db2 became writable.
    assert_eq!(
        lab.sql("db2", "SELECT COUNT(*) FROM app.t").unwrap().trim(),
        "3"
    );
    assert_eq!(lab.sql("db2", "SELECT @@read_only").unwrap().trim(), "0");
    assert_eq!(
        lab.client_sql("198.18.0.100".parse().unwrap(), "SELECT @@server_id")
            .unwrap()
            .trim(),
        "2"
    );
}

#[test]
fn repointing_by_gtid_loses_and_repeats_nothing_and_a_lagging_slave_never_blocks_the_writer() {
    let lab = passive_lab("ar");
    start(&lab);
    lab.sql("db1", "CREATE TABLE app.g (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO app.g VALUES (1,'a'),(2,'b')").unwrap();
    for h in ["db2", "db3"] {
        lab.servers[h]
            .sync_with(&lab.servers["db1"], Duration::from_secs(10))
            .unwrap();
    }
    // db3 cannot catch up in time: its SQL thread waits on a table lock longer than the
    // agent's catch-up bound (5 s).
    let db3 = lab.servers["db3"].socket();
    let locker = std::thread::spawn(move || {
        std::process::Command::new("mariadb")
            .args([
                "--no-defaults",
                &format!("--socket={}", db3.display()),
                "-uroot",
                "-e",
                "LOCK TABLES app.g WRITE; SELECT SLEEP(5.5); UNLOCK TABLES",
            ])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    lab.sql("db1", "INSERT INTO app.g VALUES (3,'c'),(4,'d')")
        .unwrap();
    lab.servers["db2"]
        .sync_with(&lab.servers["db1"], Duration::from_secs(10))
        .unwrap();
    // The writer moves to db2 while db3 waits (bounded) for its relay log.
    let t = table(&lab, 2, "db2", pb::HostState::Online);
    let l = &lab;
    let (a, b, c) = std::thread::scope(|s| {
        let a = s.spawn(|| apply(l, "db1", t.clone()));
        let b = s.spawn(|| apply(l, "db2", t.clone()));
        let c = s.spawn(|| apply(l, "db3", t.clone()));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    a.0.unwrap();
    let (b, tb) = (b.0.unwrap(), b.1);
    let (c, tc) = (c.0.unwrap(), c.1);
    assert!(
        tb < tc,
        "the writer's move ({tb:?}) waited for the lagging slave ({tc:?})"
    );
    assert!(
        steps(&c).contains("replica catch-up:false"),
        "{}",
        steps(&c)
    );
    assert!(
        steps(&c).contains("repoint:true:replicating from db2 (198.18.0.12:3306) by GTID"),
        "{}",
        steps(&c)
    );
    let _ = b;
    locker.join().unwrap();
    // More writes on the new master; db3 ends up identical: nothing lost, nothing doubled.
    lab.client_sql(
        "198.18.0.100".parse().unwrap(),
        "INSERT INTO g VALUES (5,'e'),(6,'f')",
    )
    .unwrap();
    lab.servers["db3"]
        .sync_with(&lab.servers["db2"], Duration::from_secs(10))
        .unwrap();
    let rows = |h: &str| {
        lab.sql(
            h,
            "SELECT GROUP_CONCAT(id ORDER BY id), COUNT(*) FROM app.g",
        )
        .unwrap()
    };
    assert_eq!(rows("db2").trim(), "1,2,3,4,5,6\t6");
    assert_eq!(rows("db3"), rows("db2"));
    let sum = |h: &str| {
        lab.sql(h, "CHECKSUM TABLE app.g")
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(sum("db3"), sum("db2"));
    assert!(lab
        .sql("db3", "SHOW SLAVE STATUS")
        .unwrap()
        .contains("198.18.0.12"));
}

#[test]
fn a_stopped_sql_thread_is_not_caught_up_and_catchup_strict_refuses() {
    let mut lab = passive_lab("ans");
    start(&lab);
    // db1's and db2's agents run with catchup_strict.
    for h in ["db1", "db2"] {
        let conf = lab.run.join(format!("{h}/mmm_common.conf"));
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("catchup_strict yes\n{text}")).unwrap();
        lab.kill_agent(h);
        lab.start_agent(h).unwrap();
    }
    // Break db2's SQL thread with a duplicate key while events wait in its relay log.
    lab.sql(
        "db1",
        "CREATE TABLE app.k (id INT PRIMARY KEY) ENGINE=InnoDB",
    )
    .unwrap();
    let applied = || {
        lab.sql("db2", "SHOW TABLES IN app LIKE 'k'")
            .unwrap()
            .contains('k')
    };
    assert!(mmm_tests::Net::wait_for(Duration::from_secs(10), applied));
    lab.sql("db2", "SET sql_log_bin = 0; INSERT INTO app.k VALUES (1)")
        .unwrap();
    lab.sql(
        "db1",
        "INSERT INTO app.k VALUES (1); INSERT INTO app.k VALUES (2)",
    )
    .unwrap();
    let broken = || {
        lab.sql("db2", "SHOW SLAVE STATUS\\G")
            .unwrap()
            .contains("1062")
    };
    assert!(
        mmm_tests::Net::wait_for(Duration::from_secs(10), broken),
        "db2's SQL thread did not stop"
    );
    // Moving the writer to db2: the wait for its relay log returns NULL (SQL thread not
    // running) — not "caught up" — and catchup_strict refuses the promotion.
    let e = apply(&lab, "db2", table(&lab, 2, "db2", pb::HostState::Online))
        .0
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Aborted, "{}", e.message());
    assert!(
        e.message().contains("catchup_strict: promotion refused")
            && e.message().contains("SQL thread is not running"),
        "{}",
        e.message()
    );
    assert_eq!(lab.sql("db2", "SELECT @@read_only").unwrap().trim(), "1");
    // The old writer takes the role back after confirming its demotion: its final GTID
    // position is its own commits, which MariaDB's MASTER_GTID_WAIT (on gtid_slave_pos)
    // never sees applied — it holds them, so the promotion goes through at once.
    let (r, _) = apply(&lab, "db1", table(&lab, 2, "db2", pb::HostState::Online));
    r.expect("db1 demoted");
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "1");
    let own = lab.sql("db1", "SELECT @@gtid_current_pos").unwrap();
    let mut back = table(&lab, 3, "db1", pb::HostState::Online);
    back.catch_up_gtid = own.trim().to_string();
    let report = apply(&lab, "db1", back).0.expect("db1 promoted again");
    let catch_up: Vec<&pb::Step> = report
        .steps
        .iter()
        .filter(|s| s.name == "catch-up")
        .collect();
    assert!(
        !catch_up.is_empty() && catch_up.iter().all(|s| s.ok),
        "{}",
        steps(&report)
    );
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "0");
}

#[test]
fn a_standby_whose_server_restarts_acknowledges_as_a_semi_sync_replica_again() {
    // The table reached db2's agent while its server was down (the semi-sync replica side
    // could not be set); when the server answers again the agent applies that table again,
    // without waiting for the next one: otherwise db2 replicates as a plain replica and the
    // writer falls back to asynchronous replication after semisync_timeout.
    let mut lab = passive_lab_with("asr", true);
    start(&lab);
    let status = |lab: &Lab| {
        lab.sql("db2", "SHOW STATUS LIKE 'Rpl_semi_sync_slave_status'")
            .unwrap_or_default()
    };
    assert!(status(&lab).contains("ON"), "{}", status(&lab));
    lab.servers.get_mut("db2").unwrap().stop().unwrap();
    let (r, _) = apply(&lab, "db2", table(&lab, 2, "db1", pb::HostState::Online));
    r.unwrap();
    lab.servers.get_mut("db2").unwrap().start_again().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !status(&lab).contains("ON") {
        assert!(
            Instant::now() < end,
            "db2 is no semi-sync replica again: {}",
            status(&lab)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
