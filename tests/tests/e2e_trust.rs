//! End to end, the trust boundary in plaintext (MMM-compatible) mode and whatever the
//! transport: a role table forged from the client network is refused by address and changes
//! nothing; a server made writable behind the monitor's back is read-only again soon after
//! (drift repaired); a failing `CHANGE MASTER` never shows the replication password in any
//! log, status or report.

use mmm_tests::{
    grpc::Party,
    lab::Lab,
    netns::Net,
    walkthrough::{roles_of, state_of},
};
use std::{process::Output, time::Duration};

const T: Duration = Duration::from_secs(30);

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read_only(lab: &Lab, host: &str) -> String {
    lab.sql(host, "SELECT @@read_only")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn plaintext_tables_from_strangers_are_refused_and_drift_is_repaired() {
    let lab = Lab::up_online_plain(&format!("mmmtrust{}", std::process::id())).expect("lab up");
    assert!(!lab.cfg.socket.ssl);
    let (show, _) = lab.ctl(&["show"]).unwrap();
    let db3 = lab.cfg.host("db3").unwrap();
    let agent = format!("{}:{}", db3.ip, db3.agent_port);
    // The attack of the issue, from the client network: db3 (a slave) as writer.
    let forged = r#"{"epoch":"1000000","active_master":"db3","active_master_role":"writer","hosts":[{"host":"db3","state":"HOST_STATE_ONLINE","roles":[{"name":"writer","ip":"198.18.0.100"}]}]}"#;
    for (method, data) in [
        ("mmm.v1.Agent/ApplyRoles", forged),
        ("mmm.v1.Agent/Status", "{}"),
    ] {
        let o = lab
            .grpcurl("client", Party::Nobody, &agent, Some(data), &[method])
            .unwrap();
        let said = text(&o);
        assert!(
            !o.status.success()
                && said.contains("PermissionDenied")
                && said.contains("monitor_ips"),
            "{method}: {said}"
        );
    }
    assert_eq!(read_only(&lab, "db3"), "1");
    // The writer VIP still reaches db1 (the data plane was not touched).
    let vip: std::net::Ipv4Addr = "198.18.0.100".parse().unwrap();
    assert_eq!(
        lab.client_sql(vip, "SELECT @@server_id").unwrap().trim(),
        "1"
    );
    // What `cargo xtask lab sql db3 "SHOW SLAVE STATUS\G"` prints names its columns.
    let shown = lab.servers["db3"]
        .sql_shown("SHOW SLAVE STATUS\\G")
        .unwrap();
    assert!(shown.contains("Slave_IO_Running: Yes"), "{shown}");
    let (after, _) = lab.ctl(&["show"]).unwrap();
    assert_eq!(roles_of(&after, "db1"), roles_of(&show, "db1"), "{after}");
    assert_eq!(roles_of(&after, "db3"), roles_of(&show, "db3"), "{after}");
    // The monitor's log says at start-up that its control plane is unauthenticated.
    assert!(lab
        .monitor_log()
        .contains("the control plane is unauthenticated"));

    // Made writable by hand: its agent's guard (every 500 ms) makes it read-only again
    // before the monitor's drift repair would have to.
    lab.sql("db3", "SET GLOBAL read_only = 0").unwrap();
    assert!(
        Net::wait_for(T, || read_only(&lab, "db3") == "1"),
        "db3 stayed writable:\n{}",
        lab.monitor_log()
    );
    let agent_log = std::fs::read_to_string(lab.run.join("db3/agent.log")).unwrap_or_default();
    assert!(
        agent_log.contains(
            "the local server was writable while this host is not the writer: made read-only"
        ),
        "{agent_log}"
    );
    assert!(
        Net::wait_for(T, || !lab
            .ctl(&["show"])
            .unwrap()
            .0
            .contains("differs from")),
        "show kept warning"
    );
}

#[test]
fn a_failing_change_master_never_shows_the_password() {
    let mut lab = Lab::up_online(&format!("mmmpw{}", std::process::id())).expect("lab up");
    // db3's agent gets a replication password MariaDB refuses (too long for
    // MASTER_PASSWORD), so its next CHANGE MASTER fails; the server may quote it back.
    let secret = format!("Sekrit{}", "x".repeat(300));
    let conf = lab.run.join("db3/mmm_common.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let text = text.replace(
        "replication_password    repl",
        &format!("replication_password    {secret}"),
    );
    assert!(text.contains(&secret), "the lab config changed shape");
    std::fs::write(&conf, text).unwrap();
    lab.kill_agent("db3");
    lab.start_agent("db3").unwrap();
    // Moving the writer repoints db3.
    let (out, code) = lab.ctl(&["move_role", "writer", "db2"]).unwrap();
    assert_eq!(code, 0, "{out}");
    let agent_log = || std::fs::read_to_string(lab.run.join("db3/agent.log")).unwrap();
    assert!(
        Net::wait_for(T, || agent_log().contains("repoint")),
        "db3 never tried to repoint:\n{}",
        agent_log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let (show, _) = lab.ctl(&["show"]).unwrap();
    assert_eq!(state_of(&show, "db2"), "ONLINE", "{show}");
    let (history, _) = lab.ctl(&["--json", "history"]).unwrap();
    let everything = [agent_log(), history, lab.monitor_log(), show];
    for (what, out) in [
        "db3's agent log",
        "the history (with the agents' step details)",
        "the monitor's log",
        "show",
    ]
    .iter()
    .zip(&everything)
    {
        assert!(!out.contains("Sekrit"), "{what} shows the password:\n{out}");
    }
    // The failing statement was reported — in the agent's log and, through the report of
    // the push, in the monitor's history — with the password redacted.
    for out in &everything[..2] {
        assert!(
            out.contains("<redacted>"),
            "the failing statement was not reported:\n{out}"
        );
    }
}
