//! The HA test of shared/seeds/000, steps (8)–(12), on a lab: the scenario `cargo xtask demo`
//! narrates and the end-to-end test asserts. Every expectation is checked here (a step that
//! does not reach its expected state within its bound is an error), so the demo is tested too.

use crate::lab::Lab;
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// How long a state change may take before the step counts as failed (generous: these are
/// correctness bounds, not performance targets).
const BOUND: Duration = Duration::from_secs(30);

/// Receives each step's title and what it printed.
pub trait Narrator {
    fn step(&mut self, title: &str);
    fn show(&mut self, what: &str, text: &str);
}

/// Prints to stdout.
pub struct Print;

impl Narrator for Print {
    fn step(&mut self, title: &str) {
        println!("\n==== {title}");
    }
    fn show(&mut self, what: &str, text: &str) {
        println!("\n$ {what}\n{}", text.trim_end());
    }
}

/// Says nothing.
pub struct Quiet;

impl Narrator for Quiet {
    fn step(&mut self, _: &str) {}
    fn show(&mut self, _: &str, _: &str) {}
}

fn line<'a>(show: &'a str, host: &str) -> &'a str {
    show.lines()
        .find(|l| l.trim_start().starts_with(&format!("{host}(")))
        .unwrap_or("")
}

/// The roles of `host` in a `show` output ("" when none).
pub fn roles_of(show: &str, host: &str) -> String {
    line(show, host)
        .split("Roles: ")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The state of `host` in a `show` output.
pub fn state_of(show: &str, host: &str) -> String {
    let l = line(show, host);
    l.split('/')
        .nth(1)
        .and_then(|s| s.split('.').next())
        .unwrap_or("")
        .to_string()
}

/// Runs the walk-through; returns the rows written through the writer VIP.
pub fn run(lab: &mut Lab, n: &mut dyn Narrator) -> Result<Vec<String>> {
    let writer_vip = lab.cfg.role("writer").context("no writer role")?.ips[0];
    let log_mark = lab.monitor_log().len();
    let ctl = |lab: &Lab, n: &mut dyn Narrator, args: &[&str]| -> Result<String> {
        let (out, code) = lab.ctl(args)?;
        n.show(&format!("mmm_control {}", args.join(" ")), &out);
        if code != 0 {
            bail!("mmm_control {} failed ({code}): {out}", args.join(" "));
        }
        Ok(out)
    };
    let show = |lab: &Lab,
                n: &mut dyn Narrator,
                what: &str,
                cond: &dyn Fn(&str) -> bool|
     -> Result<String> {
        let out = lab
            .wait_show(BOUND, cond)
            .with_context(|| format!("waiting for: {what}"))?;
        n.show("mmm_control show", &out);
        Ok(out)
    };
    let new_log = |lab: &Lab, mark: &mut usize| -> String {
        let log = lab.monitor_log();
        let new: String = log.get(*mark..).unwrap_or("").to_string();
        *mark = log.len();
        new.lines()
            .filter(|l| {
                l.contains("State of host")
                    || l.contains("role")
                    || l.contains("Check '")
                    || l.contains("Admin changed")
            })
            .map(|l| {
                l.split("driver: ")
                    .nth(1)
                    .or(l.split("driver\u{1b}[0m\u{1b}[2m:\u{1b}[0m ").nth(1))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut mark = log_mark;

    n.step("(8) The monitor checks every host");
    show(
        lab,
        n,
        "every host AWAITING_RECOVERY, every agent heard from",
        &|s| {
            ["db1", "db2", "db3"]
                .iter()
                .all(|h| state_of(s, h) == "AWAITING_RECOVERY")
                && !s.contains("# Warning")
        },
    )?;
    ctl(lab, n, &["checks", "all"])?;

    n.step("(9)-(10) A first start leaves every host AWAITING_RECOVERY: set them online");
    for h in ["db1", "db2", "db3"] {
        ctl(lab, n, &["set_online", h])?;
    }
    n.step("(11) The cluster is configured: writer on db1, one reader each on db2 and db3");
    let s = show(lab, n, "roles assigned", &|s| {
        roles_of(s, "db1").contains("writer")
            && roles_of(s, "db2").contains("reader")
            && roles_of(s, "db3").contains("reader")
    })?;
    if roles_of(&s, "db1").contains("reader") {
        bail!("db1 should hold only the writer role:\n{s}");
    }
    n.show("monitor log", &new_log(lab, &mut mark));

    n.step("Writes through the writer VIP from the client");
    lab.client_sql(writer_vip, "CREATE TABLE IF NOT EXISTS walk (id INT AUTO_INCREMENT PRIMARY KEY, step VARCHAR(40)) ENGINE=InnoDB")?;
    lab.client_sql(
        writer_vip,
        "INSERT INTO walk (step) VALUES ('before failures')",
    )?;
    n.show(
        &format!("client: INSERT through {writer_vip}; SELECT @@server_id, COUNT(*) FROM walk"),
        &lab.client_sql(writer_vip, "SELECT @@server_id, COUNT(*) FROM walk")?,
    );

    n.step("(12) Stop db2's mysqld: db2 goes HARD_OFFLINE and its reader VIP moves to db3");
    lab.servers.get_mut("db2").context("db2")?.stop()?;
    let s = show(lab, n, "db2 HARD_OFFLINE, db3 with both readers", &|s| {
        state_of(s, "db2") == "HARD_OFFLINE" && roles_of(s, "db3").matches("reader").count() == 2
    })?;
    let _ = s;
    n.show("monitor log", &new_log(lab, &mut mark));

    n.step("Start db2's mysqld again: it comes back AWAITING_RECOVERY, without roles");
    lab.servers.get_mut("db2").context("db2")?.start_again()?;
    show(lab, n, "db2 AWAITING_RECOVERY", &|s| {
        state_of(s, "db2") == "AWAITING_RECOVERY" && roles_of(s, "db2").is_empty()
    })?;
    n.show("monitor log", &new_log(lab, &mut mark));

    n.step("set_online db2: a reader VIP moves back to it");
    ctl(lab, n, &["set_online", "db2"])?;
    show(lab, n, "db2 ONLINE with a reader", &|s| {
        state_of(s, "db2") == "ONLINE"
            && roles_of(s, "db2").contains("reader")
            && roles_of(s, "db3").matches("reader").count() == 1
    })?;
    n.show("monitor log", &new_log(lab, &mut mark));

    n.step("Stop db1's mysqld (the active master): the writer VIP moves to db2, db3 follows db2");
    lab.servers.get_mut("db1").context("db1")?.stop()?;
    show(lab, n, "db1 HARD_OFFLINE, writer on db2", &|s| {
        state_of(s, "db1") == "HARD_OFFLINE" && roles_of(s, "db2").contains("writer")
    })?;
    n.show("monitor log", &new_log(lab, &mut mark));
    let db2_ip = lab.cfg.host("db2").context("db2")?.ip.to_string();
    let end = std::time::Instant::now() + BOUND;
    let source = loop {
        let st = lab.sql("db3", "SHOW SLAVE STATUS")?;
        if st.contains(&db2_ip) || std::time::Instant::now() > end {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !source.contains(&db2_ip) {
        bail!("db3 does not replicate from db2 ({db2_ip}):\n{source}");
    }
    n.show(
        "db3: SHOW SLAVE STATUS (Master_Host)",
        &format!("Master_Host: {db2_ip}"),
    );

    n.step("Writes through the same writer VIP still succeed, with no client change");
    let end = std::time::Instant::now() + BOUND;
    loop {
        match lab.client_sql(
            writer_vip,
            "INSERT INTO walk (step) VALUES ('after failover')",
        ) {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() > end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let rows = lab.client_sql(writer_vip, "SELECT step FROM walk ORDER BY id")?;
    n.show(
        "client: SELECT step FROM walk (through the writer VIP, now on db2)",
        &rows,
    );
    Ok(rows.lines().map(str::to_string).collect())
}
