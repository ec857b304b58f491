//! The agent's control side: the `Agent` gRPC service that applies epoch-fenced role tables,
//! switches MySQL between writable and read-only, repoints replication and streams local
//! health (ARCHITECTURE.md "A writer failover, through the code").
//!
//! - `validate.rs`: a table checked against this agent's configuration (pure);
//! - `plan.rs`: the pure planner — applied state + table + config + facts → operations;
//! - `apply.rs`: the executor — reads the facts, runs the operations, times each step;
//! - `queue.rs`: one table waits at most (newest wins), one worker applies, fences and guards;
//! - `fence.rs`: the fencing steps, the lease's self-fence, the read-only guard;
//! - `lease.rs`: the writer lease (pure decision + its task);
//! - `promote.rs`: promotion (bounded catch-up, writable) and repointing, decisions pure;
//! - `sql.rs`: the kill plan (pure); the dialect SQL is `mmm_common::sql`;
//! - `semisync.rs`: semi-synchronous replication's switches (read, set, fallback);
//! - `mysql.rs`: the connection to the local server, every operation bounded;
//! - `state.rs`: the persisted highest epoch and applied roles (atomic file);
//! - `health.rs`: pidfd + local ping → instant up/down; peer pings;
//! - `metrics.rs`: the Prometheus endpoint (XDP counters, status, step durations);
//! - `service.rs`: the gRPC adapter; [`serve`] wires it all and runs the server.

pub mod apply;
pub mod fence;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod mysql;
pub mod plan;
pub mod promote;
pub mod queue;
pub mod semisync;
pub mod service;
pub mod sql;
pub mod state;
pub mod validate;

use crate::dataplane::{AttachMode, DataPlane, Netlink};
use anyhow::{Context, Result};
use mmm_common::config::Config;
use mmm_proto::auth::{Authorizer, Kind, Policy};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};
use tonic::service::interceptor::InterceptedService;

/// Default TCP port of the Agent gRPC service (MMM's agent port).
pub const DEFAULT_AGENT_PORT: u16 = 9989;

/// Warns once at start-up when the local server is MariaDB (no `super_read_only`) and users
/// other than the agent's can write while it is read-only (`sql::read_only_bypass`).
async fn warn_read_only_bypass(db: mysql::Db) {
    let Ok(Some(version)) = db.value("SELECT VERSION()").await else {
        return;
    };
    let q = "SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ('READ_ONLY ADMIN', 'SUPER')";
    let Ok(rows) = db.rows(q).await else { return };
    let grants: Vec<(String, String)> = rows
        .iter()
        .filter_map(|r| {
            let g = r.get("GRANTEE").cloned().flatten()?;
            let p = r.get("PRIVILEGE_TYPE").cloned().flatten()?;
            Some((g, p))
        })
        .collect();
    // Without SELECT on the `mysql` schema an account sees only its own privileges there.
    if version.contains("MariaDB")
        && db
            .value("SELECT 1 FROM mysql.global_priv LIMIT 1")
            .await
            .is_err()
    {
        tracing::warn!(
            "who can write past read_only on this MariaDB server was not checked: the agent user sees only its own privileges (GRANT SELECT ON mysql.* TO it for the check, or make sure no account but the agent's holds READ ONLY ADMIN, and SUPER before 10.11)"
        );
        return;
    }
    let who = sql::read_only_bypass(&version, &grants, &db.user);
    if !who.is_empty() {
        tracing::warn!(
            "MariaDB has no super_read_only: {} can still write while this server is read-only (a demoted writer); revoke READ ONLY ADMIN (and SUPER before 10.11) from every account but the agent's, or keep such accounts off the database network",
            who.join(", ")
        );
    }
}

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
    let _pid = match &me.pid_path {
        Some(p) => Some(mmm_common::fsutil::PidFile::create(p).context("pid_path")?),
        None => None,
    };
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
    // The hosts this agent probes: bounded (`peer_neighbours`), and the writer lease's
    // population (the monitor counts the same hosts' reports, `Config::peers_of`).
    let peers: Vec<health::Peer> = cfg
        .peers_of(&me.name)
        .into_iter()
        .map(|h| health::Peer {
            name: h.name.clone(),
            ip: h.ip,
            db: mysql::Db {
                ip: h.ip,
                port: h.mysql_port,
                user: h.agent_user.clone(),
                password: h.agent_password.clone(),
                timeout: Duration::from_millis(500),
            },
        })
        .collect();
    let probed = peers.len();
    let probing = health::Probing {
        interval: cfg.peer_ping_interval,
        misses: cfg.peer_ping_misses,
    };
    let health = health::spawn(db.clone(), peers, probing);
    tokio::spawn(warn_read_only_bypass(db.clone()));
    let (applied, _) = tokio::sync::watch::channel(st.clone());
    let step_metrics = metrics::AgentMetrics::default();
    let applier = apply::Applier {
        health: health.clone(),
        metrics: step_metrics.clone(),
        cfg: cfg.clone(),
        me: me.name.clone(),
        db: db.clone(),
        dp,
        nl: nl.clone(),
        state: st,
        state_path,
        known_dialect: None,
        reconnect: None,
        applying: None,
        newer: Default::default(),
    };
    let queue = queue::ApplyQueue::default();
    tokio::spawn(queue.clone().run(applier, applied.clone(), health.clone()));
    let (heard, heard_rx) = tokio::sync::watch::channel(None);
    tokio::spawn(lease::run(
        cfg.writer_lease,
        probed,
        cfg.active_master_role.clone(),
        health.clone(),
        applied.subscribe(),
        heard_rx,
        queue.clone(),
    ));
    let svc = service::AgentService {
        queue,
        status_cache: tokio::sync::Mutex::new(None),
        unprotected: Default::default(),
        applied,
        health,
        started: Instant::now(),
        db,
        pin_root: pin_root.into(),
        iface: me.cluster_interface.clone(),
        nl,
        me: me.name.clone(),
        recovered,
        metrics: step_metrics,
        heard,
    };
    let svc = Arc::new(svc);
    if me.metrics_port != 0 {
        let svc = svc.clone();
        mmm_proto::metrics::spawn(
            SocketAddr::from((me.ip, me.metrics_port)),
            Arc::new(move || Box::pin(metrics::render(svc.clone()))),
        );
    }
    let addr = listen.unwrap_or(SocketAddr::from((me.ip, me.agent_port)));
    tracing::info!(%addr, host = %me.name, "agent serving");
    let tls = mmm_proto::TlsFiles::for_socket(&cfg.socket).context("<socket> type ssl")?;
    let policy = match tls {
        Some(_) => Policy::Tls(vec![Kind::Monitor]),
        None => {
            let from = cfg.monitor_sources();
            tracing::warn!(
                "the control plane is unauthenticated (<socket> type plain): role tables are taken from {} only, but nothing proves who is behind an address; turn on mutual TLS with `mmm-monitor tls init`",
                from.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")
            );
            Policy::Addresses(from.into_iter().map(Into::into).collect())
        }
    };
    let agent = mmm_proto::v1::agent_server::AgentServer::from_arc(svc)
        .max_decoding_message_size(mmm_proto::MAX_MESSAGE_BYTES);
    let router = mmm_proto::standard_router("mmm.v1.Agent", tls.as_ref())
        .await
        .context("starting the gRPC server")?
        .add_service(InterceptedService::new(
            agent,
            Authorizer::new("mmm.v1.Agent", policy),
        ));
    mmm_proto::serve(router, addr).await?;
    tracing::info!("agent stopped; the data plane stays pinned and keeps serving VIPs");
    Ok(())
}
