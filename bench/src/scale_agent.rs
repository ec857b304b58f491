//! The light in-process agent of `bench scale` (issue 18 item 4: "agents simulated by a light
//! in-process gRPC stub where a real agent is not needed"): a real gRPC agent service per host
//! that does no I/O. It acknowledges every role table, and its status says what a real agent
//! that applied the table would say — writable with the writer role, its VIPs LOCAL and
//! configured, replicating (a master from its peer, a slave from the active master), mysqld up
//! — so that the monitor sees no drift and pushes nothing again. Its health stream reports the
//! peers the benchmark says it lost. It records when a table moving the writer role arrives.

use mmm_common::config::{Config, HostMode};
use mmm_proto::v1::{self as pb, agent_server::Agent};
use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::Instant,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// What a stub applied last.
#[derive(Default)]
struct Applied {
    epoch: u64,
    active_master: String,
    vips: Vec<String>,
    writer: bool,
}

/// One host's stub agent.
pub struct Stub {
    host: String,
    cfg: Arc<Config>,
    applied: Mutex<Applied>,
    health: watch::Sender<pb::HealthEvent>,
    /// When a table naming this host the active master arrived (the failover's decision).
    pub became_writer: Mutex<Option<Instant>>,
}

impl Stub {
    pub fn new(host: &str, cfg: Arc<Config>) -> Arc<Stub> {
        let (health, _) = watch::channel(pb::HealthEvent {
            mysqld_up: true,
            ..Default::default()
        });
        Arc::new(Stub {
            host: host.into(),
            cfg,
            applied: Mutex::default(),
            health,
            became_writer: Mutex::new(None),
        })
    }

    /// Whether the last table it applied gave it the writer role.
    pub fn is_writer(&self) -> bool {
        self.applied.lock().is_ok_and(|a| a.writer)
    }

    /// From now on its health stream says it cannot reach `peers` (ping and login).
    pub fn lose(&self, peers: &[String]) {
        self.health.send_replace(pb::HealthEvent {
            mysqld_up: true,
            peers_down: peers.to_vec(),
            peers_mysqld_down: peers.to_vec(),
            ..Default::default()
        });
    }

    fn ip_of(&self, host: &str) -> Option<Ipv4Addr> {
        self.cfg.host(host).map(|h| h.ip)
    }

    /// `ip:3306` of the host this one replicates from: a master from its peer, a slave from
    /// the active master.
    fn source(&self, active_master: &str) -> String {
        let Some(me) = self.cfg.host(&self.host) else {
            return String::new();
        };
        let from = match me.mode {
            HostMode::Master => me.peer.clone().unwrap_or_default(),
            HostMode::Slave => active_master.to_string(),
        };
        self.ip_of(&from)
            .map(|ip| format!("{ip}:3306"))
            .unwrap_or_default()
    }
}

/// The served handle of a [`Stub`].
pub struct Served(pub Arc<Stub>);

type HealthStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::HealthEvent, Status>> + Send + 'static>,
>;

#[tonic::async_trait]
impl Agent for Served {
    async fn apply_roles(
        &self,
        req: Request<pb::RoleTable>,
    ) -> Result<Response<pb::AgentReport>, Status> {
        let t = req.into_inner();
        let s = &self.0;
        let mine = t.hosts.iter().find(|h| h.host == s.host);
        let vips: Vec<String> = mine
            .map(|h| h.roles.iter().map(|r| r.ip.clone()).collect())
            .unwrap_or_default();
        let writer = t.active_master == s.host;
        if let Ok(mut a) = s.applied.lock() {
            if writer && !a.writer {
                if let Ok(mut w) = s.became_writer.lock() {
                    *w = Some(Instant::now());
                }
            }
            *a = Applied {
                epoch: t.epoch,
                active_master: t.active_master.clone(),
                vips,
                writer,
            };
        }
        Ok(Response::new(pb::AgentReport {
            epoch: t.epoch,
            ..Default::default()
        }))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let s = &self.0;
        let (epoch, am, vips, writer) = match s.applied.lock() {
            Ok(a) => (a.epoch, a.active_master.clone(), a.vips.clone(), a.writer),
            Err(_) => return Err(Status::internal("stub state poisoned")),
        };
        Ok(Response::new(pb::AgentStatus {
            host: s.host.clone(),
            applied_epoch: epoch,
            writable: writer,
            vips_owned: vips.clone(),
            vips_configured: vips,
            replication_source: s.source(&am),
            relay_log_applied: true,
            mysqld_uptime_s: 100_000,
            agent_uptime_s: 100_000,
            system_uptime_s: 100_000,
            mac: vec![2, 0, 0, 0, 0, 1],
            mysqld_up: true,
            io_running: true,
            sql_running: true,
            ..Default::default()
        }))
    }

    type HealthStream = HealthStream;

    async fn health(
        &self,
        _: Request<pb::HealthRequest>,
    ) -> Result<Response<HealthStream>, Status> {
        use tokio_stream::StreamExt;
        let rx = self.0.health.subscribe();
        let s = tokio_stream::wrappers::WatchStream::new(rx).map(Ok);
        Ok(Response::new(Box::pin(s)))
    }
}
