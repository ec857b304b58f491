//! The driver: the one task that owns the [`Cluster`] (an actor: no shared locks). Inputs
//! arrive on its channel from the check loops (`inputs.rs`), the agents' connections
//! (`agents.rs`) and the gRPC service (`grpc.rs`); it steps the core and carries out the
//! actions — the latest table goes to every agent's pusher, the status file is written
//! atomically, logs and events are published, `kill_host_bin` is run — then publishes a
//! snapshot for `show` and `checks`. It runs until every sender is gone.

use super::{
    agents,
    etcd::{HaEvent, Member, Office},
    external::run_bounded,
    history::History,
    inputs,
    journal::Journal,
    leadership::SharedLease,
    metrics::MonitorMetrics,
    snapshot,
};
use crate::core::shared::Shared;
use crate::{
    checks::Pinger,
    core::{Action, Cluster, Command, CommandError, Event, Input, Level},
};
use mmm_common::config::Config;
use std::{path::PathBuf, sync::Arc, time::Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

#[path = "driver_ha.rs"]
mod ha;

/// How long `kill_host_bin` may run before it is stopped.
pub const KILL_HOST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The kill binary of `cfg`: `kill_host_bin`, a relative name resolved under the monitor's
/// `bin_path` (as MMM's `bin_path` is meant); `None` when none is configured.
pub fn kill_host_bin(cfg: &Config) -> Option<std::path::PathBuf> {
    let bin = cfg.monitor.kill_host_bin.as_ref()?;
    Some(match (&cfg.monitor.bin_path, bin.is_relative()) {
        (Some(dir), true) => dir.join(bin),
        _ => bin.clone(),
    })
}

/// Runs `bin HOST 1|0` (MMM's kill: the second argument says whether the host answers
/// ping), bounded by `limit`. Returns its output, or why it failed (exit status and output,
/// or the timeout — the process is then stopped).
pub async fn run_kill_host(
    bin: &std::path::Path,
    host: &str,
    ping_ok: bool,
    limit: std::time::Duration,
) -> Result<String, String> {
    let ping = if ping_ok { "1" } else { "0" };
    tracing::info!(
        "Killing host using command '{} {host} {ping}'",
        bin.display()
    );
    let ran = run_bounded(bin, &[host, ping], None, limit)
        .await
        .map_err(|e| e.to_string())?;
    if ran.status.success() {
        Ok(ran.output)
    } else {
        Err(format!(
            "kill_host binary exited with '{}'. Output was: {}",
            ran.status
                .code()
                .map_or("a signal".into(), |c| c.to_string()),
            ran.output
        ))
    }
}

/// A message to the driver.
pub enum Msg {
    Input(Input),
    Command(Command, oneshot::Sender<Result<String, CommandError>>),
    /// A push of `epoch` to `host` finished; `stale`: the agent had applied a newer epoch;
    /// `report`: what it did, for the history.
    Acked {
        host: String,
        epoch: u64,
        ok: bool,
        stale: Option<u64>,
        report: super::history::AgentApply,
    },
    /// Monitor high availability: what the etcd task saw.
    Ha(HaEvent),
}

/// The driver's link to the etcd task (`<etcd>`).
pub struct HaParts {
    /// This monitor in the election.
    pub me: Member,
    /// The leader lease, renewed by the etcd task.
    pub lease: Arc<SharedLease>,
    /// Asks the etcd task to give the office up and start a new session.
    pub resign: mpsc::Sender<()>,
}

/// The driver's view of the election.
struct Ha {
    parts: HaParts,
    /// Set while this monitor leads.
    office: Option<Office>,
    leader: Option<Member>,
    /// The state last stored (leader) or seen (follower).
    stored: Option<Shared>,
    etcd_error: Option<String>,
}

/// What the driver publishes to and reads from, besides the core and its channel.
pub struct Parts {
    /// Where `show`/`checks` read the cluster.
    pub snap: watch::Sender<snapshot::Snapshot>,
    /// Where `Watch` reads events.
    pub events: broadcast::Sender<snapshot::Published>,
    /// The status file.
    pub status_path: PathBuf,
    /// `<socket> type ssl` files for the agents' connections.
    pub tls: Option<mmm_proto::TlsFiles>,
    pub history: History,
    pub metrics: Arc<MonitorMetrics>,
    /// With `<etcd>`: the election (the status file is then not used).
    pub ha: Option<HaParts>,
}

/// The driver's state.
pub struct Driver {
    cluster: Cluster,
    cfg: Arc<Config>,
    /// Its own channel's sender, for the tasks it starts.
    tx: mpsc::Sender<Msg>,
    snap: watch::Sender<snapshot::Snapshot>,
    events: broadcast::Sender<snapshot::Published>,
    /// The core's time zero (monotonic) and its Unix time in ms.
    start: Instant,
    start_wall_ms: i64,
    /// The agents' pushers (the latest table, repairs).
    pushers: agents::Pushers,
    pinger: Arc<Pinger>,
    status_path: PathBuf,
    /// History, failover metrics, notify_bin.
    journal: Journal,
    metrics: Arc<MonitorMetrics>,
    ha: Option<Ha>,
}

impl Driver {
    /// A driver for `cluster`, with its inputs and agent connections started; `tx` is the
    /// sender side of its own channel.
    pub fn start(
        cluster: Cluster,
        cfg: Arc<Config>,
        tx: mpsc::Sender<Msg>,
        parts: Parts,
    ) -> Driver {
        let Parts {
            snap,
            events,
            status_path,
            tls,
            history,
            metrics,
            ha,
        } = parts;
        let mut cluster = cluster;
        if ha.is_some() {
            // A monitor on etcd follows until it wins the election.
            cluster.stand_by();
        }
        let pinger = Arc::new(Pinger::new());
        inputs::spawn_all(&cfg, &pinger, &tx, &metrics);
        let pushers = agents::spawn_all(&cfg, tls.as_ref(), &tx, &metrics);
        let journal = Journal::new(
            history,
            metrics.clone(),
            cfg.active_master_role.clone(),
            cfg.hosts.iter().map(|h| h.name.clone()).collect(),
            cfg.monitor.notify_bin.clone(),
        );
        Driver {
            cluster,
            cfg,
            tx,
            snap,
            events,
            start: Instant::now(),
            start_wall_ms: snapshot::unix_ms(),
            pushers,
            pinger,
            status_path,
            journal,
            metrics,
            ha: ha.map(|parts| Ha {
                parts,
                office: None,
                leader: None,
                stored: None,
                etcd_error: None,
            }),
        }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        self.publish_snapshot();
        while let Some(msg) = rx.recv().await {
            let (input, reply) = match msg {
                Msg::Input(i) => (i, None),
                Msg::Command(c, r) => (Input::Command(c), Some(r)),
                Msg::Acked {
                    host,
                    ok,
                    stale,
                    epoch,
                    report,
                } => {
                    let gtid = Some(report.gtid_executed.clone()).filter(|g| !g.is_empty());
                    self.journal.acked(epoch, report);
                    if let Some(applied) = stale {
                        self.step(Input::StaleEpoch { applied }, None).await;
                    }
                    (
                        Input::Pushed {
                            host,
                            ok,
                            epoch,
                            gtid,
                        },
                        None,
                    )
                }
                Msg::Ha(e) => {
                    self.on_ha(e).await;
                    self.publish_snapshot();
                    continue;
                }
            };
            let tick = matches!(input, Input::Tick);
            if tick {
                self.journal.tick();
            }
            let command = reply.is_some();
            // The snapshot (Show, Watch, the metrics) is rebuilt from every host: after a step
            // that did something, after a command, and at every tick (100 ms) — not after
            // each of the hundreds of check results a second that change no state, which
            // would make the monitor's cost grow with the square of its hosts (bench scale).
            if self.step(input, reply).await || tick || command {
                self.publish_snapshot();
            }
        }
    }

    /// Runs one input through the core and executes its actions; whether there were any.
    async fn step(
        &mut self,
        input: Input,
        reply: Option<oneshot::Sender<Result<String, CommandError>>>,
    ) -> bool {
        let admin = match &input {
            Input::Command(c) if !matches!(c, Command::Ping) => Some(c.to_string()),
            _ => None,
        };
        let writer_before = self.cluster.active_master().map(str::to_string);
        let now = self.start.elapsed();
        let actions = self.cluster.step(input, now);
        let events: Vec<Event> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let pushed = actions.iter().find_map(|a| match a {
            Action::Push(t) => Some(t.epoch),
            _ => None,
        });
        let answer = actions.iter().find_map(|a| match a {
            Action::Reply(r) => Some(match r {
                Ok(m) => m.clone(),
                Err(e) => e.to_string(),
            }),
            _ => None,
        });
        let admin = admin.map(|c| format!("{c} → {}", answer.unwrap_or_default()));
        // Only commands that changed something, or were refused, are worth a history entry.
        let detection = writer_before.and_then(|w| self.cluster.failing_for(&w, now));
        self.journal
            .decided(&events, admin, pushed, self.cluster.epoch, detection);
        let acting = self.store_shared().await;
        let any = !actions.is_empty();
        self.execute(actions, reply, acting);
        any
    }

    fn execute(
        &mut self,
        actions: Vec<Action>,
        mut reply: Option<oneshot::Sender<Result<String, CommandError>>>,
        acting: bool,
    ) {
        for a in actions {
            // Without the office (etcd), nothing reaches the agents or the hosts.
            if !acting
                && matches!(
                    a,
                    Action::Push(_)
                        | Action::Repair { .. }
                        | Action::KillHost { .. }
                        | Action::Fence { .. }
                )
            {
                continue;
            }
            match a {
                Action::Log(l) => match l.level {
                    Level::Fatal => tracing::error!("FATAL {}", l.message),
                    Level::Error => tracing::error!("{}", l.message),
                    Level::Warn => tracing::warn!("{}", l.message),
                    Level::Info => tracing::info!("{}", l.message),
                },
                Action::Event(event) => {
                    let _ = self.events.send(snapshot::Published {
                        at_unix_ms: snapshot::unix_ms(),
                        epoch: self.cluster.epoch,
                        event,
                    });
                }
                Action::Persist(_) if self.ha.is_some() => {}
                Action::Persist(text) => {
                    if let Err(e) =
                        mmm_common::fsutil::write_atomic(&self.status_path, text.as_bytes())
                    {
                        tracing::error!(
                            "writing the status file {}: {e}",
                            self.status_path.display()
                        );
                    }
                }
                Action::Push(t) => {
                    self.pushers.latest.send_replace(Some(Arc::new(t)));
                }
                Action::Repair { host } => self.pushers.repair(&host),
                Action::KillHost { host, ping_ok } => self.kill_host(&host, ping_ok),
                Action::Fence { host, ping_ok, run } => self.fence(host, ping_ok, run),
                Action::Network { up } => self.pushers.set_network(up),
                Action::Confirm { host, check } => {
                    inputs::confirm(&self.cfg, &self.pinger, &self.tx, host, check)
                }
                Action::Reply(r) => {
                    if let Some(tx) = reply.take() {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }

    /// Runs `kill_host_bin <host> <1|0>` (MMM's kill; `docs/mmm-2.2.1.md` §1) in the
    /// background, bounded by [`KILL_HOST_TIMEOUT`], its output and exit status logged.
    fn kill_host(&self, host: &str, ping_ok: bool) {
        let Some(bin) = kill_host_bin(&self.cfg) else {
            tracing::error!(
                "FATAL Could not kill host '{host}' - there may be some duplicate ips now! (There's no binary configured for killing hosts.)"
            );
            return;
        };
        let host = host.to_string();
        tokio::spawn(async move {
            match run_kill_host(&bin, &host, ping_ok, KILL_HOST_TIMEOUT).await {
                Ok(out) if out.is_empty() => {}
                Ok(out) => tracing::info!("Output of kill host command was: {out}"),
                Err(why) => tracing::error!(
                    "FATAL Could not kill host '{host}' - there may be some duplicate ips now! {why}"
                ),
            }
        });
    }

    /// Fences `host` with `kill_host_bin <host> <1|0>` (`kill_host_fences`) in the
    /// background, bounded by [`KILL_HOST_TIMEOUT`]; the core hears how it ended
    /// ([`Input::Fenced`]): only exit status 0 within the bound fences.
    fn fence(&self, host: String, ping_ok: bool, run: u64) {
        let (bin, tx, metrics) = (
            kill_host_bin(&self.cfg),
            self.tx.clone(),
            self.metrics.clone(),
        );
        tokio::spawn(async move {
            let ok = match bin {
                None => false,
                Some(bin) => match run_kill_host(&bin, &host, ping_ok, KILL_HOST_TIMEOUT).await {
                    Ok(out) => {
                        tracing::info!("kill_host_bin fenced '{host}'. Output was: {out}");
                        true
                    }
                    Err(why) => {
                        tracing::error!("kill_host_bin could not fence '{host}': {why}");
                        false
                    }
                },
            };
            let result = if ok { "fenced" } else { "failed" };
            metrics
                .fences
                .get_or_create(&super::metrics::FenceLabel {
                    host: host.clone(),
                    result: result.into(),
                })
                .inc();
            let _ = tx.send(Msg::Input(Input::Fenced { host, run, ok })).await;
        });
    }

    fn publish_snapshot(&self) {
        let mut s = snapshot::of(&self.cluster, self.start_wall_ms);
        s.ha = self.ha.as_ref().map(|h| snapshot::HaSnap {
            me: h.parts.me.name.clone(),
            leading: h.office.is_some() && h.parts.lease.acting(),
            leader: h.leader.as_ref().map(|m| (m.describe(), m.addr.clone())),
            etcd_error: h.etcd_error.clone(),
        });
        self.metrics.observe(&s, self.cluster.network_up);
        self.snap.send_replace(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[tokio::test]
    async fn kill_host_bin_gets_host_and_ping_is_bounded_and_its_output_kept() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let limit = std::time::Duration::from_millis(500);
        let ok = script("ok", "echo killing $1 ping=$2");
        assert_eq!(
            run_kill_host(&ok, "db3", false, limit).await,
            Ok("killing db3 ping=0".into())
        );
        let fails = script("fails", "echo no power; exit 3");
        let e = run_kill_host(&fails, "db3", true, limit).await.unwrap_err();
        assert_eq!(e, "kill_host binary exited with '3'. Output was: no power");
        let hangs = script("hangs", "sleep 30");
        let e = run_kill_host(&hangs, "db3", true, limit).await.unwrap_err();
        assert!(e.contains("did not finish within 500ms"), "{e}");
    }

    #[test]
    fn kill_host_bin_is_found_under_bin_path_when_relative() {
        let text = |extra: &str| {
            format!(
                "<host db1>\n ip 198.18.0.11\n mode slave\n</host>\n<monitor>\n{extra}\n</monitor>\n"
            )
        };
        let cfg = |extra: &str| Config::parse_str(Path::new("x.conf"), &text(extra)).unwrap();
        assert_eq!(kill_host_bin(&cfg("")), None);
        assert_eq!(
            kill_host_bin(&cfg(
                " bin_path /usr/lib/mysql-mmm\n kill_host_bin monitor/kill_host"
            )),
            Some("/usr/lib/mysql-mmm/monitor/kill_host".into())
        );
        assert_eq!(
            kill_host_bin(&cfg(
                " bin_path /usr/lib/mysql-mmm\n kill_host_bin /sbin/stonith"
            )),
            Some("/sbin/stonith".into())
        );
    }
}
