//! End to end, what a DBA watches: a real Prometheus server (Debian's) in the lab's monitor
//! namespace scrapes the monitor and every agent; after a writer failover PromQL answers the
//! failover questions and the new writer's VIP counters grow under client traffic; every
//! metric the Grafana dashboard queries exists; `mmm_control history` tells the failover with
//! every agent's steps, also after a monitor restart; `notify_bin` receives the events, and a
//! script that hangs does not hold the failover.

use mmm_tests::{lab::Lab, netns::Net, walkthrough::roles_of};
use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command},
    time::Duration,
};

const T: Duration = Duration::from_secs(30);
const WRITER_VIP: &str = "198.18.0.100";

/// Prometheus running in the monitor's namespace, stopped (by its pid) on drop.
struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
    ns: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(lab: &Lab) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let mut targets = vec![format!(
            "'{}:{}'",
            lab.cfg.monitor.ip, lab.cfg.monitor.metrics_port
        )];
        targets.extend(
            lab.cfg
                .hosts
                .iter()
                .map(|h| format!("'{}:{}'", h.ip, h.metrics_port)),
        );
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: mmm\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let listen = format!("{}:9090", lab.cfg.monitor.ip);
        let child = mmm_tests::netns::command_in(&lab.ns("monitor"), "prometheus")
            .unwrap()
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect(
                "starting prometheus (Debian package `prometheus`, installed by the set-up step)",
            );
        Prometheus {
            child,
            _dir: dir,
            url: format!("http://{listen}"),
            ns: lab.ns("monitor"),
        }
    }

    /// `GET path` of the HTTP API (from the monitor's namespace), as JSON.
    fn get(&self, path: &str, query: &str) -> serde_json::Value {
        let out = mmm_tests::netns::command_in(&self.ns, "curl")
            .unwrap()
            .args(["-s", "-m", "3", "-G", &format!("{}{path}", self.url)])
            .args(if query.is_empty() {
                vec![]
            } else {
                vec!["--data-urlencode".to_string(), format!("query={query}")]
            })
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The values of an instant query.
    fn query(&self, q: &str) -> Vec<f64> {
        let v = self.get("/api/v1/query", q);
        v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| s["value"][1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `q` returns a value satisfying `ok`.
    fn wait(&self, q: &str, ok: impl Fn(&[f64]) -> bool) -> bool {
        Net::wait_for(T, || ok(&self.query(q)))
    }
}

/// A notify_bin that records its arguments and stdin, then hangs for 30 s for a state change
/// to HARD_OFFLINE (writing `done` only when it finishes).
fn notify_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@ $(cat)\" >> {log}\ncase \"$*\" in *HARD_OFFLINE*) sleep 30; touch {done};; esac\n",
            log = dir.join("notify.log").display(),
            done = dir.join("done").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn prometheus_history_and_notifications_tell_the_failover() {
    let notes = tempfile::tempdir().unwrap();
    let script = notify_script(notes.path());
    let (_g, dir) = Lab::example_with(&format!("notify_bin {}", script.display())).unwrap();
    let mut lab =
        Lab::up_online_with(&format!("mmmobs{}", std::process::id()), &dir).expect("lab up");
    let prom = Prometheus::start(&lab);
    assert!(
        prom.wait("up", |v| v.len() == 4 && v.iter().all(|x| *x == 1.0)),
        "prometheus did not scrape the monitor and the three agents: {}",
        prom.get("/api/v1/query", "up")
    );
    let before = prom
        .query("sum(mmm_failovers_total)")
        .first()
        .copied()
        .unwrap_or(0.0);

    // The writer's mysqld dies.
    let killed = std::time::Instant::now();
    lab.servers.get_mut("db1").unwrap().kill();
    assert!(
        Net::wait_for(T, || roles_of(&lab.ctl(&["show"]).unwrap().0, "db2")
            .contains("writer")),
        "no failover:\n{}",
        lab.monitor_log()
    );
    let vip: std::net::Ipv4Addr = WRITER_VIP.parse().unwrap();
    assert!(Net::wait_for(T, || lab
        .client_sql(vip, "SELECT @@server_id")
        .is_ok_and(|s| s.trim() == "2")));
    // The notify script for db1's HARD_OFFLINE still hangs: it held nothing. Measured: from
    // the kill to writes on db2, against the script's 30 s.
    let took = killed.elapsed();
    eprintln!("failover with a hanging notify_bin: {took:?} from the kill to writes on db2 (the script hangs 30 s)");
    assert!(
        !notes.path().join("done").exists() && took < Duration::from_secs(30),
        "the failover waited for notify_bin ({took:?})"
    );
    for _ in 0..20 {
        let _ = lab.client_sql(vip, "SELECT 1");
    }

    assert!(prom.wait(
        "mmm_host_state{host=\"db1\",state=\"HARD_OFFLINE\"} == 1",
        |v| v == [1.0]
    ));
    assert!(prom.wait("sum(mmm_failovers_total)", |v| v
        .first()
        .is_some_and(|x| *x >= before + 1.0)));
    for stage in ["detection", "applied"] {
        assert!(
            prom.wait(
                &format!("mmm_failover_duration_seconds_count{{stage=\"{stage}\"}}"),
                |v| v.first().is_some_and(|x| *x >= 1.0)
            ),
            "no {stage} stage observed"
        );
    }
    assert!(prom.wait(
        &format!("mmm_role_owner{{role=\"writer\",host=\"db2\",ip=\"{WRITER_VIP}\"}}"),
        |v| v == [1.0]
    ));
    let db2 = lab.cfg.host("db2").unwrap();
    assert!(
        prom.wait(
            &format!(
                "mmm_xdp_passed_packets_total{{vip=\"{WRITER_VIP}\",instance=\"{}:{}\"}}",
                db2.ip, db2.metrics_port
            ),
            |v| v.first().is_some_and(|x| *x > 0.0)
        ),
        "the new writer's VIP counters did not grow"
    );
    assert!(prom.wait("mmm_writable{instance=~\".*:9991\"} == 1", |v| v.len() == 1));
    // The checks, the pushes and the VIPs are there too; the other agents cannot reach db1's
    // dead mysqld (the health stream).
    for (query, what) in [
        (
            "mmm_check_result{host=\"db1\",check=\"mysql\",result=\"error\"}".to_string(),
            "db1's failed mysql check",
        ),
        (
            "mmm_push_duration_seconds_count{host=\"db2\"}".into(),
            "timed pushes to db2",
        ),
        (
            format!(
                "mmm_vip_local{{vip=\"{WRITER_VIP}\",instance=\"{}:{}\"}}",
                db2.ip, db2.metrics_port
            ),
            "the writer VIP LOCAL on db2",
        ),
        (
            "mmm_peer_unreachable{peer=\"db1\",by=\"mysqld\"}".into(),
            "db1's mysqld unreachable from the other agents",
        ),
    ] {
        assert!(
            prom.wait(&query, |v| v.first().is_some_and(|x| *x >= 1.0)),
            "no {what}: {query} = {}",
            prom.get("/api/v1/query", &query)
        );
    }
    // Every agent's answer is one INFO line in the monitor's log, with its timed steps.
    let log = lab.monitor_log();
    assert!(
        log.lines().any(|l| l.contains("INFO")
            && l.contains("agent applied epoch")
            && l.contains("writable")
            && l.contains("db2")),
        "no INFO line with db2's steps:\n{log}"
    );

    // Every metric the dashboard asks for exists.
    let names = prom.get("/api/v1/label/__name__/values", "");
    let names: Vec<String> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let dashboard =
        std::fs::read_to_string(mmm_tests::workspace_root().join("dashboards/mmm.json")).unwrap();
    let mut asked: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("mmm_") && !w.starts_with("mmm_overview"))
        .collect();
    asked.sort();
    asked.dedup();
    assert!(asked.len() > 10, "{asked:?}");
    for name in asked {
        assert!(
            names.iter().any(|n| n == name),
            "the dashboard asks for {name}, which no daemon exports"
        );
    }

    // The history tells the failover, with the agents' steps, and survives a restart.
    let (h, code) = lab.ctl(&["history"]).unwrap();
    assert_eq!(code, 0, "{h}");
    assert!(
        h.contains("failover (epoch") && h.contains("db1 ONLINE → HARD_OFFLINE"),
        "{h}"
    );
    assert!(h.contains("writable") && h.contains("db2"), "{h}");
    lab.kill_monitor();
    lab.start_monitor().unwrap();
    assert!(Net::wait_for(T, || lab
        .ctl(&["history"])
        .is_ok_and(|(h, _)| h.contains("db1 ONLINE → HARD_OFFLINE"))));

    // notify_bin got the events, as arguments and JSON.
    let log = std::fs::read_to_string(notes.path().join("notify.log")).unwrap();
    assert!(log.contains("state db1 ONLINE HARD_OFFLINE"), "{log}");
    assert!(
        log.contains("role writer(198.18.0.100) - db2") && log.contains("\"event\":\"role\""),
        "{log}"
    );
    let _ = Command::new("true").status();
}
