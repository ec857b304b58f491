//! The driver: the one task that owns the [`Cluster`]. Everything else (checkers, agent status
//! pollers, health subscriptions, the network check, the gRPC service) sends it messages over a
//! channel — no shared locks. It steps the core and carries out the actions: pushes role tables
//! to every agent in parallel (per-agent timeout, retried with backoff until acknowledged),
//! writes the status file atomically, logs, publishes events and snapshots.

use super::convert;
use crate::{
    checks::{self, Pinger, Target},
    core::{Action, Cluster, Command, CommandError, Event, Input, Level, RoleIp, RoleTable},
};
use mmm_common::config::{CheckKind, Config};
use mmm_proto::v1::agent_client::AgentClient;
use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tonic::transport::Channel;

/// A message to the driver.
pub enum Msg {
    Input(Input),
    Command(Command, oneshot::Sender<Result<String, CommandError>>),
    /// A push of `epoch` to `host` finished; `stale`: the agent had applied a newer epoch.
    Acked {
        host: String,
        epoch: u64,
        ok: bool,
        stale: Option<u64>,
    },
}

/// One check's status as shown by `checks`.
#[derive(Clone, Debug)]
pub struct CheckSnap {
    pub kind: CheckKind,
    pub outcome: Option<crate::core::Outcome>,
    pub last_change_unix_ms: i64,
    pub message: String,
}

/// One host as shown by `show`.
#[derive(Clone, Debug)]
pub struct HostSnap {
    pub name: String,
    pub ip: std::net::Ipv4Addr,
    pub mode: String,
    pub state: crate::core::HostState,
    pub roles: Vec<RoleIp>,
    pub agent_reachable: bool,
    pub checks: Vec<CheckSnap>,
}

/// The cluster as the gRPC service reports it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub hosts: Vec<HostSnap>,
    pub mode: Option<crate::core::Mode>,
    pub passive_cause: Option<String>,
    pub epoch: u64,
    /// (role, preferred host, current host)
    pub preferences: Vec<(String, String, Option<String>)>,
}

/// A published event with its time and epoch.
#[derive(Clone, Debug)]
pub struct Published {
    pub at_unix_ms: i64,
    pub epoch: u64,
    pub event: Event,
}

#[derive(Default)]
struct PushState {
    acked: u64,
    in_flight: bool,
    failures: u32,
    next_try: Option<Instant>,
}

/// The driver's state.
pub struct Driver {
    cluster: Cluster,
    cfg: Arc<Config>,
    tx: mpsc::Sender<Msg>,
    snap: watch::Sender<Snapshot>,
    events: broadcast::Sender<Published>,
    start: Instant,
    start_wall_ms: i64,
    clients: BTreeMap<String, AgentClient<Channel>>,
    pushes: BTreeMap<String, PushState>,
    latest: Option<RoleTable>,
    pinger: Arc<Pinger>,
    status_path: PathBuf,
}

pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long one apply may take on an agent: its own bounds plus the call timeout.
fn apply_timeout(cfg: &Config) -> Duration {
    cfg.monitor.agent_timeout + cfg.catchup_timeout + cfg.kill_timeout + Duration::from_secs(2)
}

impl Driver {
    /// A driver for `cluster`; `tx` is the sender side of its own channel (for feedback).
    pub fn new(
        cluster: Cluster,
        cfg: Arc<Config>,
        tx: mpsc::Sender<Msg>,
        snap: watch::Sender<Snapshot>,
        events: broadcast::Sender<Published>,
        status_path: PathBuf,
        tls: Option<mmm_proto::TlsFiles>,
    ) -> Driver {
        let clients = cfg
            .hosts
            .iter()
            .filter_map(|h| {
                let ep = match mmm_proto::endpoint(
                    &format!("{}:{}", h.ip, h.agent_port),
                    tls.as_ref(),
                ) {
                    Ok(ep) => ep,
                    Err(e) => {
                        tracing::error!(host = %h.name, "agent endpoint: {e}");
                        return None;
                    }
                };
                let ch = ep.connect_timeout(cfg.monitor.agent_timeout).connect_lazy();
                Some((h.name.clone(), AgentClient::new(ch)))
            })
            .collect();
        Driver {
            cluster,
            cfg,
            tx,
            snap,
            events,
            start: Instant::now(),
            start_wall_ms: unix_ms(),
            clients,
            pushes: BTreeMap::new(),
            latest: None,
            pinger: Arc::new(Pinger::new()),
            status_path,
        }
    }

    /// Starts the checkers, agent pollers, health subscriptions, network check and ticker.
    pub fn spawn_inputs(&self) {
        for h in &self.cfg.hosts {
            let target = Target {
                ip: h.ip,
                port: h.mysql_port,
                user: h.monitor_user.clone(),
                password: h.monitor_password.clone(),
            };
            for kind in CheckKind::ALL {
                let (tx, t, cfg, pinger, host) = (
                    self.tx.clone(),
                    target.clone(),
                    self.cfg.check(kind),
                    self.pinger.clone(),
                    h.name.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let report = checks::run(kind, &t, &cfg, &pinger).await;
                        if tx
                            .send(Msg::Input(Input::Check {
                                host: host.clone(),
                                check: kind,
                                report,
                            }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        tokio::time::sleep(cfg.check_period).await;
                    }
                });
            }
            if let Some(client) = self.clients.get(&h.name).cloned() {
                let (tx, host, timeout) = (
                    self.tx.clone(),
                    h.name.clone(),
                    self.cfg.monitor.agent_timeout,
                );
                let mut c = client.clone();
                tokio::spawn(async move {
                    loop {
                        let r = tokio::time::timeout(
                            timeout,
                            c.status(mmm_proto::v1::StatusRequest {}),
                        )
                        .await;
                        let input = match r {
                            Ok(Ok(st)) => Input::AgentStatus {
                                host: host.clone(),
                                view: convert::agent_view(st.get_ref()),
                            },
                            _ => Input::AgentUnreachable { host: host.clone() },
                        };
                        if tx.send(Msg::Input(input)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                let (tx, host) = (self.tx.clone(), h.name.clone());
                let mut c = client;
                tokio::spawn(async move {
                    loop {
                        if let Ok(resp) = c.health(mmm_proto::v1::HealthRequest {}).await {
                            let mut s = resp.into_inner();
                            while let Ok(Some(ev)) = s.message().await {
                                if tx
                                    .send(Msg::Input(Input::AgentHealth {
                                        host: host.clone(),
                                        up: ev.mysqld_up,
                                        peers_down: ev.peers_down,
                                    }))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                });
            }
        }
        if !self.cfg.monitor.ping_ips.is_empty() {
            let (tx, ips, every, pinger) = (
                self.tx.clone(),
                self.cfg.monitor.ping_ips.clone(),
                self.cfg.monitor.ping_interval,
                self.pinger.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let mut up = false;
                    for ip in &ips {
                        if pinger.ping(*ip, Duration::from_millis(500)).await.outcome
                            == crate::core::Outcome::Ok
                        {
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
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if tx.send(Msg::Input(Input::Tick)).await.is_err() {
                    return;
                }
            }
        });
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
                    epoch,
                    ok,
                    stale,
                } => {
                    self.on_ack(&host, epoch, ok);
                    if let Some(applied) = stale {
                        let now = self.start.elapsed();
                        let actions = self.cluster.step(Input::StaleEpoch { applied }, now);
                        self.execute(actions, None);
                    }
                    (Input::Pushed { host, ok }, None)
                }
            };
            let tick = matches!(input, Input::Tick);
            let now = self.start.elapsed();
            let actions = self.cluster.step(input, now);
            self.execute(actions, reply);
            if tick {
                self.retry_pushes();
            }
            self.publish_snapshot();
        }
    }

    fn execute(
        &mut self,
        actions: Vec<Action>,
        mut reply: Option<oneshot::Sender<Result<String, CommandError>>>,
    ) {
        for a in actions {
            match a {
                Action::Log(l) => match l.level {
                    Level::Fatal => tracing::error!("FATAL {}", l.message),
                    Level::Error => tracing::error!("{}", l.message),
                    Level::Warn => tracing::warn!("{}", l.message),
                    Level::Info => tracing::info!("{}", l.message),
                },
                Action::Event(event) => {
                    let _ = self.events.send(Published {
                        at_unix_ms: unix_ms(),
                        epoch: self.cluster.epoch,
                        event,
                    });
                }
                Action::Persist(text) => {
                    if let Err(e) = write_atomic(&self.status_path, &text) {
                        tracing::error!(
                            "writing the status file {}: {e}",
                            self.status_path.display()
                        );
                    }
                }
                Action::Push(t) => {
                    self.latest = Some(t);
                    let hosts: Vec<String> = self.clients.keys().cloned().collect();
                    for h in hosts {
                        let p = self.pushes.entry(h.clone()).or_default();
                        p.failures = 0;
                        p.next_try = None;
                        self.push(&h);
                    }
                }
                Action::KillHost { host } => self.kill_host(&host),
                Action::Confirm { host, check } => {
                    if let Some(h) = self.cfg.host(&host) {
                        let t = Target {
                            ip: h.ip,
                            port: h.mysql_port,
                            user: h.monitor_user.clone(),
                            password: h.monitor_password.clone(),
                        };
                        let (tx, cfg, pinger) =
                            (self.tx.clone(), self.cfg.check(check), self.pinger.clone());
                        tokio::spawn(async move {
                            let report = checks::run(check, &t, &cfg, &pinger).await;
                            let _ = tx
                                .send(Msg::Input(Input::Check {
                                    host,
                                    check,
                                    report,
                                }))
                                .await;
                        });
                    }
                }
                Action::Reply(r) => {
                    if let Some(tx) = reply.take() {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }

    /// Sends the latest table to `host` unless a push is in flight or it already has it.
    fn push(&mut self, host: &str) {
        let (Some(t), Some(client)) = (self.latest.clone(), self.clients.get(host).cloned()) else {
            return;
        };
        let p = self.pushes.entry(host.into()).or_default();
        if p.in_flight || p.acked >= t.epoch {
            return;
        }
        p.in_flight = true;
        let (tx, host, timeout, epoch) = (
            self.tx.clone(),
            host.to_string(),
            apply_timeout(&self.cfg),
            t.epoch,
        );
        let msg = convert::table_to_pb(&t);
        let mut c = client;
        tokio::spawn(async move {
            let r = tokio::time::timeout(timeout, c.apply_roles(msg)).await;
            let (ok, stale) = match r {
                Ok(Ok(rep)) => {
                    for s in &rep.get_ref().steps {
                        tracing::debug!(host = %host, step = %s.name, micros = s.micros, ok = s.ok, "{}", s.detail);
                    }
                    (true, None)
                }
                Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                    (false, convert::applied_epoch_in(status.message()))
                }
                Ok(Err(status)) => {
                    tracing::warn!(host = %host, "agent refused the role table: {}", status.message());
                    (false, None)
                }
                Err(_) => (false, None),
            };
            let _ = tx
                .send(Msg::Acked {
                    host,
                    epoch,
                    ok,
                    stale,
                })
                .await;
        });
    }

    fn retry_pushes(&mut self) {
        let Some(epoch) = self.latest.as_ref().map(|t| t.epoch) else {
            return;
        };
        let now = Instant::now();
        let due: Vec<String> = self
            .pushes
            .iter()
            .filter(|(_, p)| !p.in_flight && p.acked < epoch && p.next_try.is_none_or(|t| t <= now))
            .map(|(h, _)| h.clone())
            .collect();
        for h in due {
            self.push(&h);
        }
    }

    /// Records the result of pushing `epoch` to `host`.
    fn on_ack(&mut self, host: &str, epoch: u64, ok: bool) {
        let p = self.pushes.entry(host.into()).or_default();
        p.in_flight = false;
        if ok {
            p.acked = p.acked.max(epoch);
            p.failures = 0;
            p.next_try = None;
        } else {
            p.failures += 1;
            let backoff = Duration::from_millis(250 * (1u64 << p.failures.min(4)));
            p.next_try = Some(Instant::now() + backoff.min(Duration::from_secs(5)));
        }
    }

    fn kill_host(&self, host: &str) {
        match &self.cfg.monitor.kill_host_bin {
            None => tracing::error!(
                "FATAL Could not kill host '{host}' - there may be some duplicate ips now! (There's no binary configured for killing hosts.)"
            ),
            Some(bin) => {
                let (bin, host) = (bin.clone(), host.to_string());
                tokio::spawn(async move {
                    match tokio::process::Command::new(&bin).arg(&host).arg("1").status().await {
                        Ok(s) if s.success() => tracing::warn!("Killed host '{host}' with {}", bin.display()),
                        Ok(s) => tracing::error!("FATAL Could not kill host '{host}' - there may be some duplicate ips now! ({} exited with {s})", bin.display()),
                        Err(e) => tracing::error!("FATAL Could not kill host '{host}' - there may be some duplicate ips now! ({}: {e})", bin.display()),
                    }
                });
            }
        }
    }

    fn publish_snapshot(&self) {
        let c = &self.cluster;
        let wall = |t: Duration| self.start_wall_ms + t.as_millis() as i64;
        let hosts = c
            .hosts
            .iter()
            .map(|h| HostSnap {
                name: h.name.clone(),
                ip: h.ip,
                mode: h.mode.to_string(),
                state: h.state,
                roles: h.roles.iter().cloned().collect(),
                agent_reachable: h.agent.reachable,
                checks: CheckKind::ALL
                    .into_iter()
                    .map(|k| {
                        let s = h.checks.get(&k);
                        CheckSnap {
                            kind: k,
                            outcome: s.and_then(|s| s.effective),
                            last_change_unix_ms: s
                                .map(|s| wall(s.last_change))
                                .unwrap_or(self.start_wall_ms),
                            message: s.map(|s| s.message.clone()).unwrap_or_default(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let preferences = c
            .roles
            .iter()
            .filter_map(|r| {
                let p = r.prefer.clone()?;
                let cur = c
                    .hosts
                    .iter()
                    .find(|h| h.roles.iter().any(|x| x.role == r.name))
                    .map(|h| h.name.clone());
                Some((r.name.clone(), p, cur))
            })
            .collect();
        self.snap.send_replace(Snapshot {
            hosts,
            mode: Some(c.mode),
            passive_cause: c.passive_cause.clone(),
            epoch: c.epoch,
            preferences,
        });
    }
}

/// Writes `text` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
