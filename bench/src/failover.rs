//! Failover benchmark: a client writes through the writer VIP as fast as it can; the writer's
//! mysqld is killed (`kill -9`), stopped cleanly, or its whole host goes down (link down and
//! mysqld killed). Unavailability = last acknowledged write before → first acknowledged write
//! after; lost = acknowledged writes missing on the new master. Stages come from the monitor's
//! Watch stream: detection (kill → HARD_OFFLINE), decision (→ writer role moved), and
//! switch + first write (role moved → first acknowledged write). The fenced host-down
//! variant runs on a lab of its own with `kill_host_fences` (the lab's bridge-port fence,
//! `mmm_tests::lab` `fence.rs`) and faster peer probing ([`FENCED_COMMON`]).

use crate::stats::{ms, Table, DIST_HEAD};
use anyhow::{bail, Context, Result};
use mmm_proto::v1 as pb;
use mmm_tests::{
    lab::{Lab, FENCED_COMMON},
    load::Writer,
    netns::block_on_in,
    walkthrough::{roles_of, state_of},
};
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Clone, Copy, Debug)]
pub enum Variant {
    Kill9,
    CleanStop,
    HostDown,
    /// The same fault with `kill_host_fences` and [`FENCED_COMMON`] (#18 item 1).
    HostDownFenced,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Kill9,
        Variant::CleanStop,
        Variant::HostDown,
        Variant::HostDownFenced,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Kill9 => "kill -9 mysqld",
            Variant::CleanStop => "clean stop of mysqld",
            Variant::HostDown => "host down (link down + mysqld killed)",
            Variant::HostDownFenced => {
                "host down, fenced by kill_host_bin (kill_host_fences, peer_ping_interval 20ms)"
            }
        }
    }

    /// Its name in `--variants`.
    fn key(self) -> &'static str {
        match self {
            Variant::Kill9 => "kill9",
            Variant::CleanStop => "clean-stop",
            Variant::HostDown => "host-down",
            Variant::HostDownFenced => "host-down-fenced",
        }
    }

    fn host_down(self) -> bool {
        matches!(self, Variant::HostDown | Variant::HostDownFenced)
    }
}

type Events = Arc<Mutex<Vec<(Instant, pb::ClusterEvent)>>>;

fn watch(lab: &Lab) -> Events {
    let events: Events = Arc::default();
    let (e, ns) = (events.clone(), lab.ns("monitor"));
    let Ok(ep) = lab.monitor_endpoint() else {
        return events;
    };
    std::thread::spawn(move || {
        let _ = block_on_in(&ns, move || async move {
            let Ok(ch) = ep.connect().await else {
                return;
            };
            let mut c = pb::monitor_client::MonitorClient::new(ch);
            let Ok(s) = c.watch(pb::WatchRequest {}).await else {
                return;
            };
            let mut s = s.into_inner();
            while let Ok(Some(ev)) = s.message().await {
                if let Ok(mut v) = e.lock() {
                    v.push((Instant::now(), ev));
                }
            }
        });
    });
    events
}

fn writer_host(lab: &Lab) -> Result<String> {
    let show = lab.ctl(&["show"])?.0;
    ["db1", "db2"]
        .iter()
        .find(|h| roles_of(&show, h).contains("writer"))
        .map(|h| h.to_string())
        .context("no writer")
}

/// The outage around a failure at `t0`: the longest gap between consecutive acknowledged
/// writes that ends after `t0` (a write in flight at `t0` may still be acknowledged).
pub fn outage(acked: &[(u64, Instant)], t0: Instant) -> Option<(Instant, Instant)> {
    acked
        .windows(2)
        .filter(|p| p[1].1 > t0)
        .map(|p| (p[0].1, p[1].1))
        .max_by_key(|(a, b)| *b - *a)
}

/// One trial's figures.
struct Trial {
    window: Duration,
    detection: Option<Duration>,
    decision: Option<Duration>,
    switch: Option<Duration>,
    lost: usize,
}

fn trial(lab: &mut Lab, v: Variant, n: u64, events: &Events) -> Result<Trial> {
    let vip = lab.cfg.role("writer").context("writer role")?.ips[0];
    let old = writer_host(lab)?;
    let new = if old == "db1" { "db2" } else { "db1" };
    let w = Writer::start(&lab.ns("client"), vip, "bench", n * 1_000_000)?;
    // More than one status poll (1 s) after the last trial's recovery: the monitor has seen
    // the standby's IO thread receiving again, or it would rightly not promote it.
    std::thread::sleep(Duration::from_millis(1500));
    w.pause();
    for h in [new, "db3"] {
        lab.servers[h].sync_with(&lab.servers[&old], Duration::from_secs(20))?;
    }
    // The failure happens with no write in flight (writes are held for the instant it takes):
    // a transaction committed on the failing master but never replicated would be an errant
    // transaction there, and the host could not rejoin for the next trial without a DBA.
    let iface = lab
        .cfg
        .host(&old)
        .context("host")?
        .cluster_interface
        .clone();
    let t0 = Instant::now();
    match v {
        Variant::Kill9 => lab.servers.get_mut(&old).context("server")?.kill(),
        Variant::CleanStop => {
            // A clean shutdown replicates what it committed; clients write all along.
            w.resume();
            lab.servers.get_mut(&old).context("server")?.stop()?
        }
        Variant::HostDown | Variant::HostDownFenced => {
            lab.net
                .exec(&lab.ns(&old), "ip", &["link", "set", &iface, "down"])?;
            lab.servers.get_mut(&old).context("server")?.kill();
        }
    }
    w.resume();
    if !w.wait_resumed(t0, 20, Duration::from_secs(60)) {
        let mut logs = String::new();
        for h in &lab.cfg.hosts {
            let l = std::fs::read_to_string(lab.run.join(&h.name).join("agent.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = l.lines().rev().take(40).collect();
            logs += &format!("--- {} agent.log (last 40 lines)\n", h.name);
            for line in tail.into_iter().rev() {
                logs += line;
                logs += "\n";
            }
        }
        bail!(
            "writes did not resume within 60 s after {}\n{logs}",
            v.name()
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    let acked = w.stop();
    // Unavailability: the longest gap between consecutive acknowledged writes that ends after
    // the failure began (a write in flight at that moment may still be acknowledged).
    let (before, first_after) = outage(&acked, t0).context("no write after the failure")?;
    let window = first_after - before;
    let evs = events.lock().map(|e| e.clone()).unwrap_or_default();
    let after = |pred: &dyn Fn(&pb::ClusterEvent) -> bool| {
        evs.iter()
            .find(|(t, e)| *t >= t0 && pred(e))
            .map(|(t, _)| *t - t0)
    };
    let detection = after(
        &|e| matches!(&e.event, Some(pb::cluster_event::Event::StateChange(s)) if s.host == old && s.to == pb::HostState::HardOffline as i32),
    );
    let decision = after(
        &|e| matches!(&e.event, Some(pb::cluster_event::Event::RoleMove(m)) if m.to_host == new && m.role.as_ref().is_some_and(|r| r.name == "writer")),
    );
    let switch = decision.map(|d| (first_after - t0).saturating_sub(d));
    // Lost: acknowledged writes missing on the new master.
    let present: BTreeSet<u64> = lab
        .sql(
            new,
            &format!("SELECT seq FROM app.bench WHERE seq >= {}", n * 1_000_000),
        )?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost = acked.iter().filter(|(s, _)| !present.contains(s)).count();
    // Bring the old writer back as a replica for the next trial.
    if v.host_down() {
        lab.net
            .exec(&lab.ns(&old), "ip", &["link", "set", &iface, "up"])?;
    }
    if let Variant::HostDownFenced = v {
        lab.unfence(&old)?;
    }
    lab.servers.get_mut(&old).context("server")?.start_again()?;
    let bound = Duration::from_secs(60);
    lab.wait_show(bound, |s| {
        state_of(s, &old) == "AWAITING_RECOVERY" || state_of(s, &old) == "ONLINE"
    })?;
    // set_online may be refused for a moment (e.g. the peer's replication check still
    // failing while the host reconnects): retried within the bound.
    lab.set_online(&old, bound)?;
    lab.wait_show(bound, |s| {
        state_of(s, &old) == "ONLINE"
            && !s.contains("# Warning")
            && roles_of(s, new).contains("writer")
    })?;
    // The old writer's agent may still be demoting it (a fenced host is back before its
    // lease ran out), killing client sessions — this wait's among them: tried again.
    let mut tries = 0;
    while let Err(e) = lab.servers[&old].sync_with(&lab.servers[new], Duration::from_secs(30)) {
        tries += 1;
        if tries == 3 {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(Trial {
        window,
        detection,
        decision,
        switch,
        lost,
    })
}

/// Runs `trials` trials of each variant named in `keys` (all when empty): the unfenced ones
/// on one fresh lab, the fenced one on another.
pub fn run(trials: u64, keys: &[String]) -> Result<(Vec<Table>, Vec<f64>)> {
    for k in keys {
        if !Variant::ALL.iter().any(|v| v.key() == k) {
            let known: Vec<&str> = Variant::ALL.iter().map(|v| v.key()).collect();
            bail!(
                "unknown failover variant '{k}' (known: {})",
                known.join(", ")
            );
        }
    }
    let chosen: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| keys.is_empty() || keys.iter().any(|k| k == v.key()))
        .collect();
    let (fenced, plain): (Vec<Variant>, Vec<Variant>) = chosen
        .into_iter()
        .partition(|v| matches!(v, Variant::HostDownFenced));
    let mut tables = Vec::new();
    let mut kill9 = Vec::new();
    let mut n = 0;
    for (variants, prefix) in [(plain, "mmmbench"), (fenced, "mmmbenchf")] {
        if variants.is_empty() {
            continue;
        }
        let (_guard, dir) = match variants[0] {
            Variant::HostDownFenced => Lab::example_fenced(prefix)?,
            _ => Lab::example_with("")?,
        };
        let mut lab = Lab::up_online_with(prefix, &dir)?;
        let vip = lab.cfg.role("writer").context("writer role")?.ips[0];
        lab.client_sql(vip, "CREATE TABLE bench (seq BIGINT PRIMARY KEY)")?;
        let events = watch(&lab);
        for v in variants {
            let (t, win) = measure(&mut lab, v, trials, &mut n, &events)?;
            if matches!(v, Variant::Kill9) {
                kill9 = win;
            }
            tables.push(t);
        }
    }
    Ok((tables, kill9))
}

/// `trials` trials of `v` on `lab`, numbered on from `n`: its table and unavailabilities.
fn measure(
    lab: &mut Lab,
    v: Variant,
    trials: u64,
    n: &mut u64,
    events: &Events,
) -> Result<(Table, Vec<f64>)> {
    // Said in the table: except for the clean stop, the client's writes are held at the
    // instant of the failure (no transaction in flight); e2e_semisync and `cargo xtask
    // faults` measure losses with writers that are never paused.
    let held = match v {
        Variant::CleanStop => "writes never paused",
        _ => "writes held at the fault: no transaction in flight",
    };
    let mut t = Table::new(
        &format!("failover: {} ({trials} trials; {held})", v.name()),
        DIST_HEAD,
    );
    let target = match v {
        Variant::Kill9 | Variant::CleanStop => Some((1000.0, 2000.0)),
        Variant::HostDownFenced => Some((300.0, 600.0)),
        Variant::HostDown => None,
    };
    let (mut win, mut det, mut dec, mut sw, mut lost) = (vec![], vec![], vec![], vec![], 0);
    for _ in 0..trials {
        *n += 1;
        let r = trial(lab, v, *n, events).with_context(|| {
            format!(
                "trial {n} ({})\n--- monitor log ---\n{}",
                v.name(),
                lab.monitor_log()
            )
        })?;
        eprintln!(
            "  {}: trial {n}: unavailable {:.0} ms",
            v.name(),
            ms(r.window)
        );
        if target.is_some_and(|(_, p99)| ms(r.window) > p99) {
            lab.keep_logs("bench", &format!("failover-{}-trial-{n}", v.key()));
        }
        win.push(ms(r.window));
        det.extend(r.detection.map(ms));
        dec.extend(r.decision.map(ms));
        sw.extend(r.switch.map(ms));
        lost += r.lost;
    }
    t.dist(
        "unavailability (last ack before → first ack after)",
        &win,
        "ms",
        target.map(|(p50, _)| (p50, "p50")),
    );
    if let Some((_, p99)) = target {
        t.dist("unavailability, p99 target", &win, "ms", Some((p99, "p99")));
    }
    t.dist("stage: detection (kill → HARD_OFFLINE)", &det, "ms", None);
    t.dist(
        "stage: decision (kill → writer role moved)",
        &dec,
        "ms",
        None,
    );
    t.dist(
        "stage: switch + first write (role moved → first ack)",
        &sw,
        "ms",
        None,
    );
    t.notes.push(format!("Acknowledged writes lost: {lost}. Replication was caught up at each failure, and for kill -9 and host down the client's writes were held for the instant the failure took (no transaction in flight): with asynchronous replication a transaction committed on the failing master but not yet replicated is lost to the new master and stays behind as an errant transaction on the old one, which then needs a DBA before it rejoins (mmm keeps such a host out of rotation; MMM 2.2.1 would not notice). Client: connect timeout {:?}, query timeout {:?}, reconnect after every error.", mmm_tests::load::CONNECT_TIMEOUT, mmm_tests::load::QUERY_TIMEOUT));
    if let Variant::HostDown = v {
        t.notes.push("With the host's link down its own agent cannot report; the other hosts' agents ping it every 200 ms and report it unreachable after two misses, and the monitor's own ping and login, run at once on that report and bounded by the peers' own patience (2 × 200 ms), fail and count at once as a second observer instead of after the trap period (2 s by default). Nobody can confirm that the old writer stopped writing, so the writer role moves only once its lease must have run out: `writer_lease` (2 s) + 0.5 s after the peers lost it (ARCHITECTURE.md \"No split brain\"); a fencing `kill_host_bin` (`kill_host_fences`) ends that wait, the fourth table; `writer_lease 0` gives the wait up without that guarantee.".into());
    }
    if let Variant::HostDownFenced = v {
        t.notes.push(format!("The same fault with `kill_host_fences yes`, `kill_host_bin` the lab's fence (it shuts the host's port on the lab's bridge, as a managed switch's port shutdown would) and `{FENCED_COMMON}` (two misses). The peers report the host within ~2 probe periods, the monitor's confirming ping and login (bounded by the peers' own patience, here 50 ms) agree, the fence runs at once and its exit 0 moves the writer role without waiting out the writer lease (2 s, still in force: it fences an old writer nobody could fence). The clients reconnect through the VIP on their own (connect timeout {:?}).", mmm_tests::load::CONNECT_TIMEOUT));
    }
    Ok((t, win))
}
