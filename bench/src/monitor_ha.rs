//! `cargo xtask bench monitor-ha` (issue 14): three monitors on a three-member etcd cluster;
//! each trial SIGKILLs the leading monitor and, right after, the writer's mysqld, then measures
//! until the writer VIP answers again from a writable server — a writer failover that starts
//! while the leader dies, completed by a new leader. Target: within the leader lease's TTL +
//! 1 s. (Not a write: with `semisync` and the old writer dead, the new writer's first commit
//! waits `semisync_timeout` for an acknowledgement, which is no part of the failover.)

use crate::stats::{ms, Table};
use anyhow::{bail, Context, Result};
use mmm_tests::{
    lab::Lab,
    walkthrough::{roles_of, state_of},
};
use std::time::{Duration, Instant};

/// How long one failover may take before the trial counts as failed.
const BOUND: Duration = Duration::from_secs(30);

/// The leader, asked of any live monitor.
fn leader(lab: &Lab) -> Option<usize> {
    (1..=lab.monitors).find_map(|n| lab.leader_via(n).ok().flatten())
}

/// The master holding the writer role, from `show`.
fn writer(lab: &Lab) -> Result<String> {
    let (show, _) = lab.ctl(&["show"])?;
    ["db1", "db2"]
        .into_iter()
        .find(|h| roles_of(&show, h).contains("writer"))
        .map(str::to_string)
        .with_context(|| format!("no writer:\n{show}"))
}

/// Waits until standby master `w` replicates, every monitor has seen it so, and semi-sync
/// protects the writer's commits: only then may a new leader promote `w`.
fn settle(lab: &Lab, vip: std::net::Ipv4Addr, w: &str) -> Result<()> {
    // The standby replicates: a new leader never promotes a master whose IO
    // thread it did not see receiving (`core/promotion.rs`).
    let replicating = || {
        lab.sql(w, "SHOW STATUS LIKE 'Slave_running'")
            .is_ok_and(|r| r.contains("ON"))
    };
    let end = Instant::now() + BOUND;
    while !replicating() {
        if Instant::now() > end {
            bail!("{w} does not replicate again within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // …and every monitor has a status report that says so (polled every 1 s; a candidate
    // last seen receiving more than 2.5 s before the writer failed is not promoted).
    std::thread::sleep(Duration::from_secs(3));
    // A commit the returned standby acknowledges: semi-sync protects the writer again (until
    // then the writer counts as fallen back and nobody else may be promoted).
    lab.client_sql(vip, "INSERT INTO app.ha_bench VALUES ()")?;
    lab.wait_show(BOUND, |s| {
        s.matches("/ONLINE").count() == 3 && !s.contains("SEMISYNC_FALLBACK")
    })?;
    Ok(())
}

/// One trial: the time from the kills to the VIP answering from a writable server.
fn trial(lab: &mut Lab, vip: std::net::Ipv4Addr) -> Result<Duration> {
    let lead = leader(lab).context("no monitor leads")?;
    let w = writer(lab)?;
    let t0 = Instant::now();
    lab.kill_monitor_n(lead);
    lab.servers.get_mut(&w).context("writer server")?.kill();
    let took = loop {
        if lab
            .client_sql(vip, "SELECT @@read_only")
            .is_ok_and(|r| r.trim() == "0")
        {
            break t0.elapsed();
        }
        if t0.elapsed() > BOUND {
            let logs: String = (1..=lab.monitors)
                .flat_map(|n| {
                    lab.monitor_log_n(n)
                        .lines()
                        .filter(|l| l.contains("not promoted") || l.contains("leads now"))
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
                .join("\n");
            bail!("the VIP did not answer from a writable server within {BOUND:?}:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Back to three monitors and three ONLINE hosts.
    lab.start_monitor_n(lead)?;
    lab.servers
        .get_mut(&w)
        .context("writer server")?
        .start_again()?;
    lab.wait_show(BOUND, |s| state_of(s, &w) == "AWAITING_RECOVERY")?;
    lab.set_online(&w, BOUND)?;
    lab.wait_show(BOUND, |s| s.matches("/ONLINE").count() == 3)?;
    settle(lab, vip, &w)?;
    Ok(took)
}

pub fn run(trials: u64) -> Result<Table> {
    let prefix = format!("mmmbha{}", std::process::id());
    let mut lab = Lab::up_online_ha(&prefix).context("lab up --monitors 3")?;
    let vip = lab
        .cfg
        .roles
        .iter()
        .find(|r| r.name == lab.cfg.active_master_role)
        .and_then(|r| r.ips.first().copied())
        .context("no writer VIP")?;
    let first = writer(&lab)?;
    lab.sql(
        &first,
        "CREATE TABLE IF NOT EXISTS app.ha_bench (id INT AUTO_INCREMENT PRIMARY KEY)",
    )?;
    // The first trial starts as every later one: a monitor that took office at once could
    // not know that the standby master had received anything.
    let standby = if first == "db1" { "db2" } else { "db1" };
    settle(&lab, vip, standby)?;
    let ttl = lab
        .cfg
        .etcd
        .as_ref()
        .map_or(Duration::from_secs(2), |e| e.lease_ttl);
    let mut t = Table::new(
        "Monitor HA: leader SIGKILLed, then the writer's mysqld",
        &["", "n", "p50", "p90", "p99", "max", "target", "verdict"],
    );
    let mut xs = Vec::new();
    let mut failed = 0;
    for n in 1..=trials {
        match trial(&mut lab, vip) {
            Ok(d) => {
                eprintln!(
                    "  trial {n}: a writable server behind the VIP after {:.0} ms",
                    ms(d)
                );
                xs.push(ms(d));
            }
            Err(e) => {
                eprintln!("  trial {n} failed: {e:#}");
                failed += 1;
            }
        }
    }
    let target = ms(ttl + Duration::from_secs(1));
    t.dist(
        "kill leader + writer's mysqld → writable server behind the VIP",
        &xs,
        "ms",
        Some((target, "≤ TTL + 1 s")),
    );
    t.notes.push(format!(
        "Three monitors on a three-member etcd cluster (lease TTL {ttl:?}). Each trial SIGKILLs the leading monitor and at once the writer's mysqld; the time runs until `SELECT @@read_only` through the writer VIP (a new client each 10 ms, 2 s connect timeout) answers 0. A new leader is elected once etcd expires the dead leader's lease (up to the TTL after its last keepalive), then fails the writer over from its warm checks. {failed} of {trials} trials failed."
    ));
    Ok(t)
}
