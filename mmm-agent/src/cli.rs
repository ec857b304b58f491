//! The `mmm-agent` command line: operator subcommands over the data plane.
//!
//! Parsing and rendering are pure (snapshot-tested); [`run`] does the I/O.

use crate::dataplane::{self, AttachMode, Attached, DataPlane, Netlink, Release, VipRow};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

/// mmm agent: the host side of mmm (XDP data plane, VIPs, role tables).
#[derive(Debug, Parser)]
#[command(name = "mmm-agent", version = env!("MMM_VERSION"), about)]
pub struct Cli {
    /// Root of the bpffs pins (one directory per interface below it).
    #[arg(long, global = true, env = "MMM_PIN_ROOT", default_value = dataplane::DEFAULT_PIN_ROOT)]
    pub pin_root: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Operator subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load, attach and pin the XDP data plane on an interface (idempotent: re-opens existing pins).
    Attach {
        #[command(flatten)]
        iface: IfaceArg,
        /// XDP mode: native with SKB fallback (auto), native only, or SKB only.
        #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
        mode: ModeArg,
        /// Stay in the foreground after attaching until SIGINT/SIGTERM. Exiting, or being
        /// killed, never detaches: the pins keep the data plane running.
        #[arg(long)]
        wait: bool,
    },
    /// Remove the data plane from an interface: VIP addresses, XDP link, pins.
    Detach {
        #[command(flatten)]
        iface: IfaceArg,
    },
    /// Work with the VIP table.
    #[command(subcommand)]
    Vip(VipCommand),
    /// Per-VIP counters (alias of `vip list`).
    Stats {
        #[command(flatten)]
        iface: IfaceArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Turn the program's per-decision logging on or off (read it with `bpftool prog tracelog`-
    /// style readers or aya-log; off by default: it costs time on every frame).
    Log {
        #[command(flatten)]
        iface: IfaceArg,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Run the agent daemon: data plane, Agent gRPC service (role tables, status, health).
    Serve {
        /// The agent's MMM configuration (mmm_agent.conf, with `this HOST`).
        #[arg(long, short = 'c', default_value = "/etc/mysql-mmm/mmm_agent.conf")]
        config: PathBuf,
        /// Directory of the persisted state (highest applied epoch, roles).
        #[arg(long, default_value = "/var/lib/mmm")]
        state_dir: PathBuf,
        /// Listen address (default: the host's ip and agent_port from the config).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print the program's per-decision records (ARP replies, steering, conflicts) as they
    /// happen: turns logging on, streams, turns it off again on exit.
    Trace {
        #[command(flatten)]
        iface: IfaceArg,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Attach a pass-everything XDP program to the bridge side of a veth pair (lab use: native
    /// `XDP_TX` on veth is only delivered when the peer has an XDP program).
    #[command(hide = true)]
    PeerPass {
        #[command(flatten)]
        iface: IfaceArg,
    },
    /// Validate an agent configuration FILE (and its includes, and its TLS files) and say
    /// what it sets up.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Write the man page (`mmm-agent.8`) and shell completions (bash, zsh, fish) into DIR
    /// (packaging).
    #[command(hide = true)]
    Generate { dir: PathBuf },
}

/// `mmm-agent config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check FILE as `mmm-agent serve --config FILE` would read it.
    Check { file: PathBuf },
}

/// VIP subcommands.
#[derive(Debug, Subcommand)]
pub enum VipCommand {
    /// Take a VIP: `/32` on lo, map LOCAL, gratuitous ARP.
    Acquire {
        #[command(flatten)]
        iface: IfaceArg,
        vip: Ipv4Addr,
        /// Gratuitous ARP rounds (request + reply each).
        #[arg(long, default_value_t = 3)]
        garp_rounds: u32,
        /// Milliseconds between gratuitous ARP rounds.
        #[arg(long, default_value_t = 100)]
        garp_interval_ms: u64,
    },
    /// Give a VIP up: map STEER (to --steer MAC) or FENCE, then remove the `/32`.
    Release {
        #[command(flatten)]
        iface: IfaceArg,
        vip: Ipv4Addr,
        /// MAC address of the new owner (aa:bb:cc:dd:ee:ff).
        #[arg(long, value_parser = parse_mac, conflicts_with = "fence", required_unless_present = "fence")]
        steer: Option<[u8; 6]>,
        /// Drop the VIP's traffic instead.
        #[arg(long)]
        fence: bool,
    },
    /// Forget a VIP (its traffic then passes untouched). Does not touch addresses.
    Remove {
        #[command(flatten)]
        iface: IfaceArg,
        vip: Ipv4Addr,
    },
    /// The VIP table with counters.
    List {
        #[command(flatten)]
        iface: IfaceArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The interface argument shared by every subcommand.
#[derive(Debug, Args)]
pub struct IfaceArg {
    /// Cluster interface.
    #[arg(long, short = 'i')]
    pub iface: String,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Auto,
    Native,
    Skb,
}

/// on/off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "'{s}' is not a MAC address (want six hex pairs like 02:00:00:00:00:01)"
        ));
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(format!(
                "'{s}' is not a MAC address: '{p}' is not two hex digits"
            ));
        }
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| format!("'{s}' is not a MAC address: '{p}' is not hex"))?;
    }
    Ok(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The VIP table as an aligned text table.
pub fn render_table(rows: &[VipRow]) -> String {
    let mut out = format!(
        "{:<15}  {:<6}  {:<17}  {:>11}  {:>10}  {:>10}  {:>10}  {:>9}\n",
        "VIP", "ACTION", "OWNER", "ARP_REPLIES", "PASSED", "STEERED", "DROPPED", "CONFLICTS"
    );
    for r in rows {
        let action = r.action.map_or("?".to_string(), |a| a.to_string());
        let owner = match r.action {
            Some(mmm_common::Action::Fence) => "-".to_string(),
            _ => fmt_mac(&r.owner_mac),
        };
        out += &format!(
            "{:<15}  {:<6}  {:<17}  {:>11}  {:>10}  {:>10}  {:>10}  {:>9}\n",
            r.vip.to_string(),
            action,
            owner,
            r.stats.arp_replies,
            r.stats.passed,
            r.stats.steered,
            r.stats.dropped,
            r.stats.conflicts
        );
    }
    out
}

/// The VIP table as JSON (one object per VIP).
pub fn render_json(rows: &[VipRow]) -> String {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "vip": r.vip.to_string(),
                "action": r.action.map(|a| a.to_string()),
                "owner_mac": fmt_mac(&r.owner_mac),
                "arp_replies": r.stats.arp_replies,
                "passed": r.stats.passed,
                "steered": r.stats.steered,
                "dropped": r.stats.dropped,
                "conflicts": r.stats.conflicts,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

fn list(cli: &Cli, iface: &str, json: bool) -> Result<()> {
    let dp = DataPlane::open(&cli.pin_root, iface)?;
    let rows = dp.list()?;
    if json {
        println!("{}", render_json(&rows));
    } else {
        print!("{}", render_table(&rows));
    }
    Ok(())
}

/// Streams aya-log records of the program on `iface` (through the `log` → tracing bridge).
async fn trace(root: &std::path::Path, iface: &str, seconds: Option<u64>) -> Result<()> {
    let mut dp = DataPlane::open(root, iface)?;
    let id = dp.program_id()?;
    let logger = aya_log::EbpfLogger::init_from_id(id).context("opening the program's log ring")?;
    // SAFETY: the AsyncFd owns the logger (and so its fd) for its whole life.
    let mut fd =
        unsafe { tokio::io::unix::AsyncFd::register(logger) }.context("watching the log ring")?;
    dp.set_log(true)?;
    eprintln!("tracing decisions on {iface} (program {id}); logging is off again on exit");
    let until = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => mmm_proto::shutdown_signal().await,
        }
    };
    tokio::pin!(until);
    let r = loop {
        tokio::select! {
            _ = &mut until => break Ok(()),
            g = fd.readable_mut() => match g {
                Ok(mut g) => {
                    g.get_inner_mut().flush();
                    g.clear_ready();
                }
                Err(e) => break Err(anyhow::Error::from(e)),
            }
        }
    };
    dp.set_log(false)?;
    r
}

/// Runs one subcommand.
pub async fn run(cli: Cli) -> Result<()> {
    let root = cli.pin_root.clone();
    match &cli.command {
        Command::Attach { iface, mode, wait } => {
            let nl = Netlink::new()?;
            let mode = match mode {
                ModeArg::Auto => AttachMode::Auto,
                ModeArg::Native => AttachMode::Native,
                ModeArg::Skb => AttachMode::Skb,
            };
            let (dp, how) = DataPlane::attach(&nl, &root, &iface.iface, mode)
                .await
                .with_context(|| format!("attaching the data plane to '{}'", iface.iface))?;
            match how {
                Attached::Fresh(m) => println!(
                    "attached to {} ({m:?} mode), pinned under {}",
                    iface.iface,
                    dp.pins().dir().display()
                ),
                Attached::Reopened => println!(
                    "already attached to {}: re-opened pins under {}",
                    iface.iface,
                    dp.pins().dir().display()
                ),
            }
            if *wait {
                use std::io::Write;
                std::io::stdout().flush()?;
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
        }
        Command::Detach { iface } => {
            let nl = Netlink::new()?;
            let removed = DataPlane::detach(&nl, &root, &iface.iface)
                .await
                .with_context(|| format!("detaching from '{}'", iface.iface))?;
            println!(
                "detached from {}; VIP addresses removed: {}",
                iface.iface,
                if removed.is_empty() {
                    "none".to_string()
                } else {
                    removed
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
        Command::Serve {
            config,
            state_dir,
            listen,
        } => {
            crate::control::serve(config, &root, state_dir, *listen).await?;
        }
        Command::Config(ConfigCmd::Check { file }) => {
            let cfg = mmm_common::config::Config::load(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let me = cfg.validate_for_agent().context("agent configuration")?;
            mmm_proto::TlsFiles::for_socket(&cfg.socket).context("<socket> type ssl")?;
            println!(
                "OK: configuration is valid\nthis host: {} {} interface {} agent :{} mysql :{}",
                me.name, me.ip, me.cluster_interface, me.agent_port, me.mysql_port
            );
            for n in &cfg.notes {
                println!("note: {n}");
            }
            if !cfg.socket.ssl {
                let from: Vec<String> = cfg
                    .monitor_sources()
                    .iter()
                    .map(|i| i.to_string())
                    .collect();
                println!("WARNING: the control plane is unauthenticated (<socket> type plain): role tables are taken from {} only, by address; turn on mutual TLS with `mmm-monitor tls init`", from.join(", "));
            }
        }
        Command::Generate { dir } => {
            use clap::CommandFactory;
            mmm_common::man::generate(Cli::command(), "mmm-agent", "8", dir)?;
        }
        Command::PeerPass { iface } => {
            let m = dataplane::attach_pass(&root, &iface.iface)
                .with_context(|| format!("attaching the pass program to '{}'", iface.iface))?;
            println!("pass program on {} ({m:?} mode)", iface.iface);
        }
        Command::Trace { iface, seconds } => trace(&root, &iface.iface, *seconds).await?,
        Command::Log { iface, state } => {
            let mut dp = DataPlane::open(&root, &iface.iface)?;
            dp.set_log(*state == OnOff::On)?;
        }
        Command::Stats { iface, json } => list(&cli, &iface.iface, *json)?,
        Command::Vip(v) => match v {
            VipCommand::List { iface, json } => list(&cli, &iface.iface, *json)?,
            VipCommand::Acquire {
                iface,
                vip,
                garp_rounds,
                garp_interval_ms,
            } => {
                let nl = Netlink::new()?;
                let mut dp = DataPlane::open(&root, &iface.iface)?;
                dataplane::acquire(
                    &mut dp,
                    &nl,
                    *vip,
                    *garp_rounds,
                    Duration::from_millis(*garp_interval_ms),
                    true,
                )
                .await
                .with_context(|| format!("acquiring {vip} on '{}'", iface.iface))?;
                println!("{vip} is local on {}", iface.iface);
            }
            VipCommand::Release {
                iface,
                vip,
                steer,
                fence,
            } => {
                let nl = Netlink::new()?;
                let mut dp = DataPlane::open(&root, &iface.iface)?;
                let how = match (steer, fence) {
                    (Some(mac), false) => Release::Steer(*mac),
                    _ => Release::Fence,
                };
                dataplane::release(&mut dp, &nl, *vip, how)
                    .await
                    .with_context(|| format!("releasing {vip} on '{}'", iface.iface))?;
                match how {
                    Release::Steer(mac) => {
                        println!(
                            "{vip} released on {}: steering to {}",
                            iface.iface,
                            fmt_mac(&mac)
                        )
                    }
                    Release::Fence => println!("{vip} released on {}: fenced", iface.iface),
                }
            }
            VipCommand::Remove { iface, vip } => {
                let mut dp = DataPlane::open(&root, &iface.iface)?;
                dp.remove(*vip)?;
                println!("{vip} removed from the table of {}", iface.iface);
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::{Action, VipStats};

    #[test]
    fn serve_reads_mmm_s_agent_config_by_default() {
        let cli = Cli::try_parse_from(["mmm-agent", "serve"]).unwrap();
        let Command::Serve {
            config, state_dir, ..
        } = cli.command
        else {
            panic!("not serve")
        };
        assert_eq!(config, PathBuf::from("/etc/mysql-mmm/mmm_agent.conf"));
        assert_eq!(state_dir, PathBuf::from("/var/lib/mmm"));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:0a:0B:ff:01"), Ok([2, 0, 10, 11, 255, 1]));
        assert_eq!(parse_mac("02-00-0a-0b-ff-01"), Ok([2, 0, 10, 11, 255, 1]));
        insta::assert_snapshot!(parse_mac("02:00:0a").unwrap_err(), @"'02:00:0a' is not a MAC address (want six hex pairs like 02:00:00:00:00:01)");
        insta::assert_snapshot!(parse_mac("02:00:0a:0b:ff:zz").unwrap_err(), @"'02:00:0a:0b:ff:zz' is not a MAC address: 'zz' is not hex");
        insta::assert_snapshot!(parse_mac("2:00:0a:0b:ff:01").unwrap_err(), @"'2:00:0a:0b:ff:01' is not a MAC address: '2' is not two hex digits");
    }

    fn rows() -> Vec<VipRow> {
        vec![
            VipRow {
                vip: Ipv4Addr::new(198, 18, 0, 100),
                action: Some(Action::Local),
                owner_mac: [2, 0, 0, 0, 0, 1],
                stats: VipStats {
                    arp_replies: 3,
                    passed: 120,
                    ..Default::default()
                },
            },
            VipRow {
                vip: Ipv4Addr::new(198, 18, 0, 101),
                action: Some(Action::Steer),
                owner_mac: [2, 0, 0, 0, 0, 2],
                stats: VipStats {
                    steered: 7,
                    ..Default::default()
                },
            },
            VipRow {
                vip: Ipv4Addr::new(198, 18, 0, 102),
                action: Some(Action::Fence),
                owner_mac: [0; 6],
                stats: VipStats {
                    dropped: 2,
                    conflicts: 1,
                    ..Default::default()
                },
            },
        ]
    }

    #[test]
    fn table_output() {
        insta::assert_snapshot!(render_table(&rows()));
    }

    #[test]
    fn json_output() {
        insta::assert_snapshot!(render_json(&rows()));
    }

    #[test]
    fn cli_errors_name_the_problem() {
        let e = Cli::try_parse_from(["mmm-agent", "vip", "release", "-i", "eth0", "198.18.0.1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--steer"), "{e}");
        let e = Cli::try_parse_from(["mmm-agent", "vip", "acquire", "-i", "eth0", "198.18.0.999"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("198.18.0.999"), "{e}");
        let e = Cli::try_parse_from([
            "mmm-agent",
            "vip",
            "release",
            "-i",
            "eth0",
            "198.18.0.1",
            "--steer",
            "nope",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("'nope' is not a MAC address"), "{e}");
    }
}
