//! The monitor's own observations, each a task sending [`Input`]s to the driver: every check
//! of every host in its `check_period`, the network check over `ping_ips`
//! (`docs/mmm-2.2.1.md` §2), a tick every 100 ms (time-driven rules), and the one-off
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

/// How often time alone is fed to the core (time-driven rules: trap periods, the fence
/// wait's lease, auto_set_online, WAIT mode, flapping windows; and the snapshot rebuild).
pub const TICK: Duration = Duration::from_millis(100);

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

/// The bound of a confirming check (`Action::Confirm`): as long as a peer took to report
/// the failure — `peer_ping_misses` × `peer_ping_interval` (400 ms by default) — at least
/// 50 ms (the ping check's own floor), never more than the check's own `timeout`. A peer already failed to reach the host
/// that long; the monitor's own look decides within the same time instead of the check's
/// full timeout (#18: host down in ≤ 300 ms with fast peer probing). Ping and mysql keep
/// their hedging (3 echoes, 3 logins) within it. The same bound serves the confirming login
/// after a host's own agent reported its mysqld not answering: a timeout there is a
/// suspicion, and the trap period still applies to it (`core/observe.rs`).
pub fn confirm_timeout(cfg: &Config, check: CheckKind) -> Duration {
    let peers = cfg.peer_ping_interval * cfg.peer_ping_misses;
    peers
        .max(Duration::from_millis(50))
        .min(cfg.check(check).timeout)
}

/// Runs `check` on `host` once, now (the core wants its own view of a reported failure),
/// within [`confirm_timeout`].
pub fn confirm(
    cfg: &Config,
    pinger: &Arc<Pinger>,
    tx: &mpsc::Sender<Msg>,
    host: String,
    check: CheckKind,
) {
    let Some(h) = cfg.host(&host) else { return };
    let mut c = cfg.check(check);
    c.timeout = confirm_timeout(cfg, check);
    let (t, pinger, tx) = (target(h), pinger.clone(), tx.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirming_check_is_as_patient_as_the_peers_within_its_check_s_timeout() {
        let cfg = |common: &str| {
            let text = format!(
                "{common}\n<host db1>\n ip 198.18.0.11\n mode slave\n</host>\n<check mysql>\n timeout 300ms\n</check>\n<monitor>\n</monitor>\n"
            );
            Config::parse_str(std::path::Path::new("x.conf"), &text).unwrap()
        };
        let ms = Duration::from_millis;
        // 2 × 200 ms by default; the ping check's timeout is 1 s, mysql's here 300 ms.
        assert_eq!(confirm_timeout(&cfg(""), CheckKind::Ping), ms(400));
        assert_eq!(confirm_timeout(&cfg(""), CheckKind::Mysql), ms(300));
        // Fast peers: 2 × 20 ms, held to the 50 ms floor.
        let fast = cfg("peer_ping_interval 20ms");
        assert_eq!(confirm_timeout(&fast, CheckKind::Ping), ms(50));
        let slow = cfg("peer_ping_interval 1s\npeer_ping_misses 3\nwriter_lease 5s");
        assert_eq!(confirm_timeout(&slow, CheckKind::Ping), ms(1000));
    }
}
