//! The monitor daemon (`mmm-monitor serve`): configuration, status file, the [`driver`] task,
//! and the gRPC server (Monitor service, reflection v1 and v1alpha, grpc.health.v1).
//!
//! - `driver.rs`: the actor that owns the core and carries out its actions;
//! - `inputs.rs`: the check loops, the network check, the ticker, confirming checks;
//! - `agents.rs`: the agents' connections (status polls, health streams, pushes);
//! - `snapshot.rs`: what `show`/`checks`/`Watch` read;
//! - `history.rs`, `journal.rs`: the failover history, failover metrics, notify_bin;
//! - `metrics.rs`: the Prometheus metrics (served by `mmm_proto::metrics`);
//! - `grpc.rs`: the Monitor service adapter; `forward.rs`: a follower's commands to the leader;
//! - `etcd.rs`, `leadership.rs`, `driver_ha.rs`: monitor high availability on etcd.

pub mod agents;
pub mod driver;
pub mod etcd;
pub mod external;
mod forward;
pub mod grpc;
pub mod history;
pub mod inputs;
pub mod journal;
pub mod leadership;
pub mod metrics;
pub mod snapshot;

use crate::core::{status_file, Cluster};
use anyhow::{Context, Result};
use mmm_common::config::Config;
use mmm_proto::auth::{Authorizer, Kind, Policy};
use std::{net::SocketAddr, path::Path, sync::Arc};
use tokio::sync::{broadcast, mpsc, watch};
use tonic::service::interceptor::InterceptedService;

/// Loads the status file; missing or corrupt → a clear log line and a safe start (no roles;
/// a corrupt file is moved aside; the epoch is recovered from the agents if they are ahead).
pub fn load_status(path: &Path) -> Option<status_file::Saved> {
    match std::fs::read_to_string(path) {
        Ok(text) => match status_file::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                let moved = path.with_extension("corrupt");
                let _ = std::fs::rename(path, &moved);
                tracing::error!(
                    "status file {} is corrupt ({e}); moved to {}; starting with no roles",
                    path.display(),
                    moved.display()
                );
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!("no status file at {}: first start", path.display());
            None
        }
        Err(e) => {
            tracing::error!(
                "cannot read status file {}: {e}; starting with no roles",
                path.display()
            );
            None
        }
    }
}

/// Runs the monitor for `config` until SIGINT/SIGTERM.
pub async fn serve(config: &Path, listen: Option<SocketAddr>) -> Result<()> {
    let cfg = Config::load(config).with_context(|| format!("reading {}", config.display()))?;
    cfg.validate_for_monitor()
        .context("monitor configuration")?;
    let tls = mmm_proto::TlsFiles::for_socket(&cfg.socket).context("<socket> type ssl")?;
    let _pid = match &cfg.monitor.pid_path {
        Some(p) => Some(mmm_common::fsutil::PidFile::create(p).context("pid_path")?),
        None => None,
    };
    let cfg = Arc::new(cfg);
    let status_path = cfg.monitor.status_path.clone();
    let mut cluster = Cluster::new(&cfg, 0);
    let addr = listen.unwrap_or(SocketAddr::from((cfg.monitor.ip, cfg.monitor.port)));
    let (tx, rx) = mpsc::channel(1024);
    let ha = cfg.etcd.clone().map(|etcd| {
        let me = etcd::Member {
            name: etcd.name.clone(),
            addr: SocketAddr::from((cfg.monitor.ip, addr.port())).to_string(),
        };
        let lease = Arc::new(leadership::SharedLease::default());
        let (resign, resign_rx) = mpsc::channel(1);
        tracing::info!(
            "monitor high availability on etcd ({}), prefix {}, as '{}': following until elected; the status file is not used",
            etcd.endpoints.join(", "),
            etcd.prefix,
            me.name
        );
        tokio::spawn(etcd::run(etcd, me.clone(), tx.clone(), lease.clone(), resign_rx));
        driver::HaParts { me, lease, resign }
    });
    let saved = match ha {
        None => load_status(&status_path),
        Some(_) => None,
    };
    if let Some(saved) = saved {
        tracing::info!(
            epoch = saved.epoch,
            "restored host states and roles from {}",
            status_path.display()
        );
        cluster.restore(&saved);
    }
    let (snap_tx, snap_rx) = watch::channel(snapshot::Snapshot::default());
    let (events, _) = broadcast::channel(1024);
    let history = history::History::open(Some(status_path.with_extension("history")));
    let recent = history.recent();
    let metrics = Arc::new(metrics::MonitorMetrics::new());
    if cfg.monitor.metrics_port != 0 {
        let m = metrics.clone();
        mmm_proto::metrics::spawn(
            SocketAddr::from((cfg.monitor.ip, cfg.monitor.metrics_port)),
            Arc::new(move || {
                let text = m.render();
                Box::pin(async move { text })
            }),
        );
    }
    let d = driver::Driver::start(
        cluster,
        cfg.clone(),
        tx.clone(),
        driver::Parts {
            snap: snap_tx,
            events: events.clone(),
            status_path,
            tls: tls.clone(),
            history,
            metrics,
            ha,
        },
    );
    let driver = tokio::spawn(d.run(rx));
    tokio::spawn(master_master_sanity(cfg.clone()));

    let svc = grpc::MonitorService {
        tx,
        snap: snap_rx.clone(),
        events,
        history: recent,
        tls: tls.clone(),
    };
    tracing::info!(%addr, "monitor serving");
    let policy = match tls {
        Some(_) => Policy::Tls(vec![Kind::Operator, Kind::Monitor]),
        None => {
            tracing::warn!(
                "the control plane is unauthenticated (<socket> type plain): anyone who reaches {addr} can command this monitor, and agents trust it by address only; turn on mutual TLS with `mmm-monitor tls init`"
            );
            Policy::Anyone
        }
    };
    let monitor = mmm_proto::v1::monitor_server::MonitorServer::new(svc)
        .max_decoding_message_size(mmm_proto::MAX_MESSAGE_BYTES);
    let (router, health) = mmm_proto::standard_router_reporting("mmm.v1.Monitor", tls.as_ref())
        .await
        .context("starting the gRPC server")?;
    if cfg.etcd.is_some() {
        tokio::spawn(report_health(health, snap_rx));
    }
    let router = router.add_service(InterceptedService::new(
        monitor,
        Authorizer::new("mmm.v1.Monitor", policy),
    ));
    let server = mmm_proto::serve(router, addr);
    // A monitor whose core task died must not go on answering from a frozen snapshot: the
    // process exits non-zero (systemd restarts it) with the reason logged.
    tokio::select! {
        r = server => r.map_err(Into::into),
        r = driver => Err(driver_stopped(r)),
    }
}

/// With `<etcd>`: `grpc.health.v1` says SERVING while etcd answers (leader or follower) and
/// NOT_SERVING while it does not (this monitor can then neither lead nor follow).
async fn report_health(
    reporter: tonic_health::server::HealthReporter,
    mut snap: watch::Receiver<snapshot::Snapshot>,
) {
    let mut was = None;
    loop {
        let up = snap
            .borrow_and_update()
            .ha
            .as_ref()
            .is_none_or(|h| h.etcd_error.is_none());
        if was != Some(up) {
            let status = if up {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            reporter.set_service_status("mmm.v1.Monitor", status).await;
            was = Some(up);
        }
        if snap.changed().await.is_err() {
            return;
        }
    }
}

/// Why the driver task ended (it only ends by a panic: its channel outlives it).
pub fn driver_stopped(r: Result<(), tokio::task::JoinError>) -> anyhow::Error {
    let why = match r {
        Ok(()) => "it returned".to_string(),
        Err(e) if e.is_panic() => {
            let p = e.into_panic();
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into())
        }
        Err(e) => e.to_string(),
    };
    tracing::error!("FATAL the monitor's core task stopped ({why}): exiting");
    anyhow::anyhow!("the monitor's core task stopped: {why}")
}

/// Logs MMM's master-master warnings once at start-up (`crate::sanity`).
async fn master_master_sanity(cfg: Arc<Config>) {
    let masters: Vec<_> = cfg
        .hosts
        .iter()
        .filter(|h| h.mode == mmm_common::config::HostMode::Master)
        .collect();
    let [a, b] = masters.as_slice() else { return };
    let read = |h: &mmm_common::config::HostConfig| {
        let t = inputs::target(h);
        let name = h.name.clone();
        async move {
            let limit = std::time::Duration::from_secs(5);
            match tokio::time::timeout(limit, crate::sanity::read(&name, &t)).await {
                Ok(r) => r,
                Err(_) => Err("no answer within 5 s".into()),
            }
        }
    };
    match tokio::join!(read(a), read(b)) {
        (Ok(fa), Ok(fb)) => {
            for w in crate::sanity::warnings(&fa, &fb) {
                tracing::warn!("{w}");
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("master-master settings not checked at start-up: {e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_core_task_is_reported_not_ignored() {
        let h = tokio::spawn(async { panic!("invariant broken") });
        let e = driver_stopped(h.await);
        assert!(e.to_string().contains("invariant broken"), "{e}");
    }
}
