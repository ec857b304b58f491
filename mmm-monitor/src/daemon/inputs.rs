//! The monitor's own observations, each a task sending [`Input`]s to the driver: every check
//! of every host in its `check_period`, the network check over `ping_ips`
//! (`docs/mmm-2.2.1.md` §2), a tick every 250 ms (time-driven rules), and the one-off
//! confirming checks the core asks for. Every task ends when the driver's channel closes.

use super::{
    driver::Msg,
    metrics::{CheckLabel, MonitorMetrics},
};
use crate::{
    checks::{self, Pinger, Target},
    core::{Input, Outcome},
};
use mmm_common::config::{CheckKind, Config, HostConfig};
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;

/// How often time alone is fed to the core.
pub const TICK: Duration = Duration::from_millis(250);

/// Where and as whom the monitor checks `h`.
pub fn target(h: &HostConfig) -> Target {
    Target {
        ip: h.ip,
        port: h.mysql_port,
        user: h.monitor_user.clone(),
        password: h.monitor_password.clone(),
    }
}

/// Starts the check loops, the network check (with `ping_ips`) and the ticker.
pub fn spawn_all(
    cfg: &Arc<Config>,
    pinger: &Arc<Pinger>,
    tx: &mpsc::Sender<Msg>,
    metrics: &Arc<MonitorMetrics>,
) {
    for h in &cfg.hosts {
        for kind in CheckKind::ALL {
            let (tx, t, check, pinger, host) = (
                tx.clone(),
                target(h),
                cfg.check(kind),
                pinger.clone(),
                h.name.clone(),
            );
            let duration = metrics
                .check_duration
                .get_or_create(&CheckLabel {
                    host: h.name.clone(),
                    check: kind.name().into(),
                })
                .clone();
            tokio::spawn(async move {
                loop {
                    let t0 = std::time::Instant::now();
                    let report = checks::run(kind, &t, &check, &pinger).await;
                    duration.observe(t0.elapsed().as_secs_f64());
                    let input = Input::Check {
                        host: host.clone(),
                        check: kind,
                        report,
                    };
                    if tx.send(Msg::Input(input)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(check.check_period).await;
                }
            });
        }
    }
    if !cfg.monitor.ping_ips.is_empty() {
        let (tx, ips, every, pinger) = (
            tx.clone(),
            cfg.monitor.ping_ips.clone(),
            cfg.monitor.ping_interval,
            pinger.clone(),
        );
        tokio::spawn(async move {
            loop {
                let mut up = false;
                for ip in &ips {
                    if pinger.ping(*ip, Duration::from_millis(500)).await.outcome == Outcome::Ok {
                        up = true;
                        break;
                    }
                }
                if tx.send(Msg::Input(Input::Network { up })).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    let tx = tx.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            if tx.send(Msg::Input(Input::Tick)).await.is_err() {
                return;
            }
        }
    });
}

/// Runs `check` on `host` once, now (the core wants its own view of a reported failure).
pub fn confirm(
    cfg: &Config,
    pinger: &Arc<Pinger>,
    tx: &mpsc::Sender<Msg>,
    host: String,
    check: CheckKind,
) {
    let Some(h) = cfg.host(&host) else { return };
    let (t, c, pinger, tx) = (target(h), cfg.check(check), pinger.clone(), tx.clone());
    tokio::spawn(async move {
        let report = checks::run(check, &t, &c, &pinger).await;
        let _ = tx
            .send(Msg::Input(Input::Check {
                host,
                check,
                report,
            }))
            .await;
    });
}
