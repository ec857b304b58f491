//! `mmm-monitor`: the monitor daemon (`serve`), config validation (`config check`), and every
//! `mmm_control` command as a subcommand (`mmm-monitor show`, `mmm-monitor set_online db1`, …).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mmm_common::config::Config;
use mmm_monitor::control;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mmm-monitor",
    version = env!("MMM_VERSION"),
    about = "mmm monitor daemon and control commands"
)]
struct Cli {
    /// The monitor's configuration (for the address of the monitor to talk to).
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "/etc/mysql-mmm/mmm_mon.conf"
    )]
    config: PathBuf,
    /// Monitor address (host:port), instead of the one in the configuration.
    #[arg(long, global = true, env = "MMM_MONITOR")]
    monitor: Option<String>,
    /// JSON output for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Log lines as JSON (serve).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the monitor daemon.
    Serve {
        /// Listen address (default: <monitor> ip and port of the configuration).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration file and print a summary.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Write the man pages (mmm-monitor.8, mmm_control.8, mmm.conf.5) and shell completions
    /// into DIR (packaging).
    #[command(hide = true)]
    Generate { dir: PathBuf },
    /// Certificates for mutual TLS.
    #[command(subcommand)]
    Tls(TlsCmd),
    /// An mmm_control command: help, ping, show, checks, set_online, set_offline, mode,
    /// set_active, set_manual, set_passive, move_role, set_ip.
    #[command(external_subcommand)]
    Control(Vec<String>),
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Make a cluster CA and a key and certificate for the monitor, mmm_control and every
    /// host of --config (identities and IP addresses from it) in OUT, and print the <socket>
    /// sections to add.
    Init {
        /// The directory to write (created mode 0700; an existing CA is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Check FILE (and its includes).
    Check { file: PathBuf },
}

/// Logs to stderr at `level` (`Config::log_level`); MMM_LOG wins.
fn init_logs(json: bool, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MMM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        sub.json().init()
    } else {
        sub.init()
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve { listen } => {
            init_logs(
                cli.log_json,
                Config::load(&cli.config).map_or("info", |c| c.log_level()),
            );
            mmm_monitor::daemon::serve(&cli.config, listen).await
        }
        Cmd::Config(ConfigCmd::Check { file }) => {
            match Config::load(&file).and_then(|c| c.validate_for_monitor().map(|_| c)) {
                Ok(c) => {
                    if let Err(e) = mmm_proto::TlsFiles::for_socket(&c.socket) {
                        eprintln!("ERROR: <socket> type ssl: {e}");
                        std::process::exit(1);
                    }
                    print!("{}", mmm_monitor::summary(&c));
                    Ok(())
                }
                Err(e) => {
                    eprintln!("ERROR: {e}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Generate { dir } => {
            use clap::CommandFactory;
            // The mmm_control words are an external subcommand, which completion generators
            // cannot describe: they are in mmm_control's own page and completions.
            let cmd = Cli::command().allow_external_subcommands(false);
            mmm_common::man::generate(cmd, "mmm-monitor", "8", &dir)?;
            mmm_common::man::generate(control::command(), "mmm_control", "8", &dir)?;
            std::fs::write(dir.join("mmm.conf.5"), mmm_common::config::doc::man_page())?;
            Ok(())
        }
        Cmd::Tls(TlsCmd::Init { out }) => {
            let cfg = Config::load(&cli.config)
                .with_context(|| format!("reading {}", cli.config.display()))?;
            let pki = mmm_proto::pki::init(&cfg, &out)
                .with_context(|| format!("making certificates in {}", out.display()))?;
            print!("{}", pki.instructions());
            Ok(())
        }
        Cmd::Control(words) => {
            let cmd = match control::parse(&words) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    std::process::exit(2);
                }
            };
            let target = match control::Target::resolve(&cli.config, cli.monitor) {
                Ok(t) => t,
                Err(e) => {
                    eprint!("{e}");
                    std::process::exit(2);
                }
            };
            let (out, code) = control::run(&target, cmd, cli.json).await;
            print!("{out}");
            std::process::exit(code);
        }
    }
}
