//! The agent's control side: the `Agent` gRPC service that applies epoch-fenced role tables,
//! switches MySQL between writable and read-only, repoints replication and streams local
//! health (ARCHITECTURE.md "A writer failover, through the code").
//!
//! - `plan.rs`: the pure planner — applied state + table + config + facts → operations;
//! - `apply.rs`: the executor — reads the facts, runs the operations, times each step;
//! - `promote.rs`: promotion (bounded catch-up, writable) and repointing, decisions pure;
//! - `sql.rs`: the kill plan (pure); the dialect SQL is `mmm_common::sql`;
//! - `mysql.rs`: the connection to the local server, every operation bounded;
//! - `state.rs`: the persisted highest epoch and applied roles (atomic file);
//! - `health.rs`: pidfd + local ping → instant up/down; peer pings;
//! - `service.rs`: the gRPC adapter; [`serve`] wires it all and runs the server.

pub mod apply;
pub mod health;
pub mod mysql;
pub mod plan;
pub mod promote;
pub mod service;
pub mod sql;
pub mod state;

use crate::dataplane::{AttachMode, DataPlane, Netlink};
use anyhow::{Context, Result};
use mmm_common::config::Config;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

/// Default TCP port of the Agent gRPC service (MMM's agent port).
pub const DEFAULT_AGENT_PORT: u16 = 9989;

/// Runs the agent daemon for `config` until SIGINT/SIGTERM.
pub async fn serve(
    config: &Path,
    pin_root: &Path,
    state_dir: &Path,
    listen: Option<SocketAddr>,
) -> Result<()> {
    let cfg = Config::load(config).with_context(|| format!("reading {}", config.display()))?;
    let me = cfg
        .validate_for_agent()
        .context("agent configuration")?
        .clone();
    let nl = Netlink::new()?;
    let (dp, how) = DataPlane::attach(&nl, pin_root, &me.cluster_interface, AttachMode::Auto)
        .await
        .with_context(|| format!("attaching the data plane to '{}'", me.cluster_interface))?;
    tracing::info!(iface = %me.cluster_interface, ?how, "data plane ready");
    let db = mysql::Db {
        ip: me.ip,
        port: me.mysql_port,
        user: me.agent_user.clone(),
        password: me.agent_password.clone(),
        timeout: Duration::from_secs(2),
    };
    let state_path: PathBuf = state_dir.join(format!("mmm_agent-{}.state", me.name));
    let (st, recovered) = match state::AgentState::load(&state_path) {
        Ok(s) => (s, false),
        Err(e @ state::StateError::Corrupt { .. }) => {
            tracing::error!("{e}");
            (state::AgentState::default(), true)
        }
        Err(e) => return Err(e).context("reading the agent state"),
    };
    tracing::info!(epoch = st.epoch, path = %state_path.display(), "agent state loaded");
    let peers = cfg
        .hosts
        .iter()
        .filter(|h| h.name != me.name)
        .map(|h| health::Peer {
            name: h.name.clone(),
            ip: h.ip,
        })
        .collect();
    let health = health::spawn(db.clone(), peers);
    let (applied, _) = tokio::sync::watch::channel(st.clone());
    let applier = apply::Applier {
        cfg: cfg.clone(),
        me: me.name.clone(),
        db: db.clone(),
        dp,
        nl: nl.clone(),
        state: st,
        state_path,
    };
    let svc = service::AgentService {
        applier: Arc::new(tokio::sync::Mutex::new(applier)),
        applied,
        health,
        started: Instant::now(),
        db,
        pin_root: pin_root.into(),
        iface: me.cluster_interface.clone(),
        nl,
        me: me.name.clone(),
        recovered,
    };
    let addr = listen.unwrap_or(SocketAddr::from((me.ip, me.agent_port)));
    tracing::info!(%addr, host = %me.name, "agent serving");
    let tls = mmm_proto::TlsFiles::for_socket(&cfg.socket).context("<socket> type ssl")?;
    mmm_proto::standard_router("mmm.v1.Agent", tls.as_ref())
        .await
        .context("starting the gRPC server")?
        .add_service(mmm_proto::v1::agent_server::AgentServer::new(svc))
        .serve_with_shutdown(addr, mmm_proto::shutdown_signal())
        .await
        .with_context(|| format!("serving gRPC on {addr}"))?;
    tracing::info!("agent stopped; the data plane stays pinned and keeps serving VIPs");
    Ok(())
}
