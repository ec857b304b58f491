//! `cargo xtask lab`: a whole cluster on this machine (see `mmm_tests::lab`), left running
//! between commands. Every subcommand takes the lab's prefix (`--prefix`, `MMM_LAB_PREFIX`,
//! default `mmm`), so several labs never collide.

use crate::setup;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use mmm_tests::{
    lab::{self, ha, Bins, Lab},
    netns::command_in,
};
use std::{path::PathBuf, process::Command};

#[derive(Subcommand)]
pub enum LabCmd {
    /// Build the lab from DIR's mmm_common.conf and mmm_mon.conf (default examples/lab).
    Up {
        #[arg(long)]
        config: Option<PathBuf>,
        /// 3: three monitors on a three-member etcd cluster (monitor high availability).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
        monitors: u8,
    },
    /// Remove every namespace, pin, process and directory of the lab (also after a crash).
    Down,
    /// Namespaces, processes and `mmm_control show`.
    Status,
    /// Run an mmm_control command against the lab's monitor.
    Ctl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a command inside a host's namespace (db hosts, `monitor`, `client`).
    Exec {
        host: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Stop (clean shutdown), start, or kill (SIGKILL) a host's mysqld.
    Mysql { host: String, action: MysqlAction },
    /// Run SQL on a host's server as root and print the result.
    Sql { host: String, sql: String },
    /// Kill (SIGKILL), start, cut off (link down) or heal monitor N (labs with --monitors 3).
    Monitor {
        #[arg(value_parser = clap::value_parser!(u8).range(1..=3))]
        n: u8,
        action: NodeAction,
    },
    /// Kill (SIGKILL) or start etcd member N (labs with --monitors 3).
    Etcd {
        #[arg(value_parser = clap::value_parser!(u8).range(1..=3))]
        n: u8,
        action: NodeAction,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeAction {
    Kill,
    Start,
    Cut,
    Heal,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MysqlAction {
    Stop,
    Start,
    Kill,
}

/// Builds what the lab runs (eBPF object, all binaries).
pub fn build_all() -> Result<()> {
    setup::all()?;
    crate::ebpf::build(true)?;
    setup::run(Command::new("cargo").current_dir(crate::root()).args([
        "build",
        "--workspace",
        "--bins",
    ]))
}

pub fn run(prefix: &str, cmd: LabCmd) -> Result<()> {
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) || prefix.len() > 12
    {
        bail!("lab prefix '{prefix}' must be 1-12 letters or digits");
    }
    match cmd {
        LabCmd::Up { config, monitors } => {
            let dir = config.unwrap_or_else(|| crate::root().join("examples/lab"));
            // A malformed config is refused before anything is built or created.
            lab::check_config(&dir)?;
            build_all()?;
            let l = Lab::up_full(
                prefix,
                &dir,
                Bins::workspace(),
                lab::Transport::Tls,
                monitors.into(),
            )?;
            println!("lab '{prefix}' is up (run directory {})", l.run.display());
            for h in &l.cfg.hosts {
                println!(
                    "  {:<8} {:<15} namespace {}-{}",
                    h.name,
                    h.ip.to_string(),
                    prefix,
                    h.name
                );
            }
            println!(
                "  monitor  {:<15} namespace {prefix}-monitor",
                l.cfg.monitor.ip.to_string()
            );
            for n in 2..=l.monitors {
                println!(
                    "  mon{n}     {:<15} namespace {prefix}-{}",
                    ha::monitor_ip(l.cfg.monitor.ip, n).to_string(),
                    ha::monitor_name(n)
                );
            }
            for n in (1..=l.monitors).filter(|_| l.monitors > 1) {
                println!(
                    "  etcd{n}    {:<15} namespace {prefix}-etcd{n}",
                    ha::etcd_ip(n).to_string()
                );
            }
            println!(
                "  client   {:<15} namespace {prefix}-client",
                lab::CLIENT_IP.to_string()
            );
            println!("try: cargo xtask lab ctl show");
            l.detach();
        }
        LabCmd::Down => {
            for line in Lab::down(prefix)? {
                println!("{line}");
            }
        }
        LabCmd::Status => {
            let ns: Vec<String> = lab::existing_namespaces(prefix)?.collect();
            if ns.is_empty() {
                println!("no lab with prefix '{prefix}'");
                return Ok(());
            }
            println!("namespaces: {}", ns.join(" "));
            if let Ok(p) = std::fs::read_to_string(lab::run_dir(prefix).join("pids")) {
                for l in p.lines() {
                    let pid = l.split_whitespace().next().unwrap_or("");
                    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
                    println!("  {l} {}", if alive { "running" } else { "gone" });
                }
            }
            let st = lab::ctl_command(prefix, &Bins::workspace(), &["show".into()])?.status()?;
            std::process::exit(st.code().unwrap_or(1));
        }
        LabCmd::Ctl { args } => {
            let st = lab::ctl_command(prefix, &Bins::workspace(), &args)?.status()?;
            std::process::exit(st.code().unwrap_or(1));
        }
        LabCmd::Exec { host, cmd } => {
            let ns = format!("{prefix}-{host}");
            if !lab::existing_namespaces(prefix)?.any(|n| n == ns) {
                bail!("no namespace {ns}: is the lab up, and is '{host}' one of its hosts?");
            }
            let st = command_in(&ns, &cmd[0])?
                .args(&cmd[1..])
                .stdin(std::process::Stdio::inherit())
                .status()?;
            std::process::exit(st.code().unwrap_or(1));
        }
        LabCmd::Mysql { host, action } => {
            let mut s = lab::lab_server(prefix, &host)?;
            match action {
                MysqlAction::Stop => s.stop()?,
                MysqlAction::Kill => s.kill(),
                MysqlAction::Start => {
                    s.start_again().context("starting mysqld")?;
                    if let Some(pid) = s.pid() {
                        lab::record_pid(prefix, pid, "mariadbd")?;
                    }
                }
            }
            s.leak();
            println!(
                "{host}: mysqld {}",
                match action {
                    MysqlAction::Stop => "stopped",
                    MysqlAction::Start => "started",
                    MysqlAction::Kill => "killed",
                }
            );
        }
        LabCmd::Sql { host, sql } => {
            let s = lab::lab_server(prefix, &host)?;
            print!("{}", s.sql_shown(&sql)?);
            s.leak();
        }
        LabCmd::Monitor { n, action } => node(prefix, "monitor", n.into(), action)?,
        LabCmd::Etcd { n, action } => node(prefix, "etcd", n.into(), action)?,
    }
    Ok(())
}

/// `lab monitor|etcd N ACTION` on a running lab with three monitors.
fn node(prefix: &str, what: &str, n: usize, action: NodeAction) -> Result<()> {
    if ha::monitors_of(prefix) < 2 {
        bail!("lab '{prefix}' runs one monitor and no etcd: start it with `cargo xtask lab up --monitors 3`");
    }
    let done = match (what, action) {
        ("monitor", NodeAction::Kill) => {
            if !ha::kill_monitor(prefix, n) {
                bail!("monitor {n} is not running");
            }
            "killed"
        }
        ("monitor", NodeAction::Start) => {
            if ha::monitor_alive(prefix, n) {
                bail!("monitor {n} is already running");
            }
            ha::start_monitor(prefix, &Bins::workspace(), n)?;
            "started"
        }
        ("monitor", NodeAction::Cut) => {
            ha::set_monitor_link(prefix, n, false)?;
            "cut off (link down)"
        }
        ("monitor", NodeAction::Heal) => {
            ha::set_monitor_link(prefix, n, true)?;
            "healed (link up)"
        }
        ("etcd", NodeAction::Kill) => {
            if !ha::kill_etcd(prefix, n) {
                bail!("etcd member {n} is not running");
            }
            "killed"
        }
        ("etcd", NodeAction::Start) => {
            ha::start_etcd(prefix, n)?;
            "started"
        }
        (_, a) => bail!(
            "{what} {n}: only kill and start apply to an etcd member, not {}",
            if a == NodeAction::Cut { "cut" } else { "heal" }
        ),
    };
    println!("{what} {n}: {done}");
    Ok(())
}
