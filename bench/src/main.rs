//! `mmm-bench` (run through `cargo xtask bench [NAME…]`): failover, vip-move, arp, overhead,
//! keepalived, zero-loss, flaky-net, monitor-ha, scale.
//! Each prints a table and `BENCHMARKS.md` gets them all with the machine, date and commit.
//! Performance targets are judged here, never by timed assertions in tests.

mod arp;
mod cpu;
mod dataplane;
mod failover;
mod flaky;
mod keepalived;
mod monitor_ha;
mod progcost;
mod scale;
mod scale_agent;
mod stats;
mod veth;
mod zeroloss;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::{path::PathBuf, process::Command};

const ALL: &[&str] = &[
    "failover",
    "vip-move",
    "arp",
    "overhead",
    "keepalived",
    "zero-loss",
    "flaky-net",
    "monitor-ha",
    "scale",
];

#[derive(Parser)]
#[command(name = "mmm-bench")]
struct Cli {
    /// Trials per failover variant and VIP moves.
    #[arg(long, default_value_t = 20)]
    trials: u64,
    /// zero-loss: the fault classes to run (default: all three), e.g. `--variants
    /// switchover` or `--variants kill-writer,switchover`; failover: kill9, clean-stop,
    /// host-down, host-down-fenced (default: all four). Run the two benchmarks apart when
    /// choosing variants.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// scale only: the cluster sizes (default 16, 64, 256; at most 256).
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<usize>,
    /// Where to write the tables.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Benchmarks to run (default: all): failover, vip-move, arp, overhead, keepalived,
    /// zero-loss, flaky-net, monitor-ha, scale.
    names: Vec<String>,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let names: Vec<&str> = if cli.names.is_empty() {
        ALL.to_vec()
    } else {
        cli.names.iter().map(String::as_str).collect()
    };
    for n in &names {
        if !ALL.contains(n) {
            bail!("unknown benchmark '{n}' (known: {})", ALL.join(", "));
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut doc = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench` ({}).\n\n- machine: {} cores, {cpu}, Linux {}\n- date: {}\n- commit: {}\n- trials: {} per failover variant, {} VIP moves\n\n",
        names.join(", "),
        sh("nproc", &[]),
        sh("uname", &["-r"]),
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        sh("git", &["rev-parse", "--short", "HEAD"]),
        cli.trials,
        cli.trials
    );
    let mut tables = Vec::new();
    let mut kill9 = Vec::new();
    if names.contains(&"failover") {
        eprintln!("failover: {} trials per variant…", cli.trials);
        let (t, k) = failover::run(cli.trials, &cli.variants)?;
        tables.extend(t);
        kill9 = k;
    }
    let dp: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| ["vip-move", "overhead"].contains(n))
        .collect();
    if !dp.is_empty() {
        eprintln!("data plane: {}…", dp.join(", "));
        tables.extend(dataplane::run(&dp, cli.trials)?);
    }
    if names.contains(&"arp") {
        eprintln!("arp…");
        tables.push(arp::run().context("arp")?);
    }
    if names.contains(&"zero-loss") {
        eprintln!(
            "zero-loss: {} trials per variant, semisync on and off…",
            cli.trials
        );
        tables.push(zeroloss::run(cli.trials, &cli.variants).context("zero-loss")?);
    }
    if names.contains(&"flaky-net") {
        eprintln!("flaky-net: {} trials per profile…", cli.trials);
        tables.push(flaky::run(cli.trials).context("flaky-net")?);
    }
    if names.contains(&"monitor-ha") {
        eprintln!("monitor-ha: {} trials…", cli.trials);
        tables.push(monitor_ha::run(cli.trials).context("monitor-ha")?);
    }
    if names.contains(&"scale") {
        let sizes = if cli.hosts.is_empty() {
            scale::SIZES.to_vec()
        } else {
            cli.hosts.clone()
        };
        eprintln!(
            "scale: {sizes:?} hosts, {} trials each…",
            cli.trials.min(scale::MAX_TRIALS)
        );
        tables.push(scale::run(&sizes, cli.trials).context("scale")?);
    }
    for t in &tables {
        let r = t.render();
        println!("{r}");
        doc += &r;
        doc += "\n";
    }
    if names.contains(&"keepalived") {
        eprintln!("keepalived: {} trials per setting…", cli.trials);
        let t = keepalived::run(cli.trials, &kill9)?;
        let r = t.render();
        println!("{r}");
        doc += &r;
    }
    std::fs::write(&cli.out, doc)?;
    eprintln!("written to {}", cli.out.display());
    Ok(())
}
