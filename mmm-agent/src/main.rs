//! `mmm-agent`: operator commands over the XDP data plane (see [`mmm_agent::cli`]).

use anyhow::Result;
use clap::Parser;
use mmm_agent::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // `debug 1` in the agent's config raises the level, as MMM's does; MMM_LOG wins.
    let level = match &cli.command {
        cli::Command::Serve { config, .. } => {
            mmm_common::config::Config::load(config).map_or("info", |c| c.log_level())
        }
        _ => "info",
    };
    let filter = EnvFilter::try_from_env("MMM_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => sub.init(),
        LogFormat::Json => sub.json().init(),
    }
    cli::run(cli).await
}
