//! The `mmm.v1.Monitor` gRPC adapter: commands go to the driver and come back as MMM's
//! `OK: ...` texts or errors whose message is MMM's `ERROR: ...` text (NOT_FOUND,
//! INVALID_ARGUMENT, FAILED_PRECONDITION, UNAVAILABLE); `Show`/`Checks` read the latest
//! snapshot; `Watch` streams published events.

use super::{
    driver::Msg,
    snapshot::{Published, Snapshot},
};
use crate::core::{Command, CommandError, Event};
use mmm_common::config::CheckKind;
use mmm_proto::{
    convert,
    v1::{self as pb, monitor_server::Monitor},
};
use std::pin::Pin;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::{wrappers::BroadcastStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

/// The service.
pub struct MonitorService {
    pub tx: mpsc::Sender<Msg>,
    pub snap: watch::Receiver<Snapshot>,
    pub events: broadcast::Sender<Published>,
    /// The failover history (the driver appends).
    pub history: super::history::Recent,
    /// `<socket> type ssl` files, for a follower's calls to the leader.
    pub tls: Option<mmm_proto::TlsFiles>,
}

/// A history entry as the wire carries it.
fn entry_to_pb(e: &super::history::Entry) -> pb::HistoryEntry {
    pb::HistoryEntry {
        at_unix_ms: e.at_unix_ms,
        epoch: e.epoch,
        kind: e.kind.clone(),
        changes: e.changes.clone(),
        agents: e
            .agents
            .iter()
            .map(|a| pb::AgentApply {
                host: a.host.clone(),
                ok: a.ok,
                took_ms: a.took_ms,
                steps: a
                    .steps
                    .iter()
                    .map(|s| pb::Step {
                        name: s.name.clone(),
                        micros: s.micros,
                        ok: s.ok,
                        detail: s.detail.clone(),
                    })
                    .collect(),
                error: a.error.clone(),
            })
            .collect(),
        applied_ms: e.applied_ms,
    }
}

fn to_status(e: CommandError) -> Status {
    match e {
        CommandError::NotFound(m) => Status::not_found(m),
        CommandError::InvalidArgument(m) => Status::invalid_argument(m),
        CommandError::FailedPrecondition(m) => Status::failed_precondition(m),
        CommandError::Unavailable(m) => convert::answered(Status::unavailable(m)),
    }
}

fn need(what: &str, v: &str) -> Result<(), Status> {
    if v.trim().is_empty() {
        Err(Status::invalid_argument(format!(
            "ERROR: {what} is missing"
        )))
    } else {
        Ok(())
    }
}

fn shutting_down() -> Status {
    convert::answered(Status::unavailable("ERROR: the monitor is shutting down"))
}

impl MonitorService {
    async fn command(&self, c: Command) -> Result<Response<pb::CommandReply>, Status> {
        let ha = self.snap.borrow().ha.clone();
        if let Some(ha) = ha.filter(|h| !h.leading && !matches!(c, Command::Ping)) {
            return super::forward::command(&ha, self.tls.as_ref(), c).await;
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Command(c, tx))
            .await
            .map_err(|_| shutting_down())?;
        let r = rx.await.map_err(|_| shutting_down())?;
        r.map(|message| Response::new(pb::CommandReply { message }))
            .map_err(to_status)
    }
}

/// Converts a snapshot to `ShowReply`.
pub fn show_reply(s: &Snapshot) -> pb::ShowReply {
    pb::ShowReply {
        hosts: s
            .hosts
            .iter()
            .map(|h| pb::HostStatus {
                name: h.name.clone(),
                ip: h.ip.to_string(),
                mode: h.mode.clone(),
                state: pb::HostState::from(h.state) as i32,
                roles: h.roles.iter().map(pb::Role::from).collect(),
                agent_reachable: h.agent_reachable,
                drift: h.drift.clone().unwrap_or_default(),
                repairs: h.repairs,
                analysis: h.analysis.clone().unwrap_or_default(),
            })
            .collect(),
        mode: s.mode.map(|m| pb::Mode::from(m) as i32).unwrap_or(0),
        passive_cause: s.passive_cause.clone().unwrap_or_default(),
        preferences: s
            .preferences
            .iter()
            .map(|(role, p, cur)| pb::RolePreference {
                role: role.clone(),
                preferred_host: p.clone(),
                current_host: cur.clone().unwrap_or_default(),
            })
            .collect(),
        epoch: s.epoch,
        leader: s
            .ha
            .as_ref()
            .and_then(|h| h.leader.as_ref().map(|l| l.0.clone()))
            .unwrap_or_default(),
        etcd_error: s
            .ha
            .as_ref()
            .and_then(|h| h.etcd_error.clone())
            .unwrap_or_default(),
        ha: s.ha.is_some(),
    }
}

fn event_to_pb(p: Published) -> pb::ClusterEvent {
    use pb::cluster_event::Event as E;
    let event = match p.event {
        Event::State {
            host,
            from,
            to,
            reason,
        } => E::StateChange(pb::StateChange {
            host,
            from: pb::HostState::from(from) as i32,
            to: pb::HostState::from(to) as i32,
            reason,
        }),
        Event::RoleMoved { role, from, to } => E::RoleMove(pb::RoleMove {
            role: Some(pb::Role::from(&role)),
            from_host: from.unwrap_or_default(),
            to_host: to.unwrap_or_default(),
        }),
        Event::ModeChanged { from, to } => E::ModeChange(pb::ModeChange {
            from: pb::Mode::from(from) as i32,
            to: pb::Mode::from(to) as i32,
        }),
        Event::PromotionRefused { host, role, reason } => {
            E::PromotionRefused(pb::PromotionRefused { host, role, reason })
        }
        Event::LeaderChanged { leader } => E::LeaderChange(pb::LeaderChange {
            leader: leader.unwrap_or_default(),
        }),
    };
    pb::ClusterEvent {
        at_unix_ms: p.at_unix_ms,
        epoch: p.epoch,
        event: Some(event),
    }
}

#[tonic::async_trait]
impl Monitor for MonitorService {
    async fn ping(
        &self,
        _: Request<pb::PingRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(Command::Ping).await
    }

    async fn show(&self, _: Request<pb::ShowRequest>) -> Result<Response<pb::ShowReply>, Status> {
        Ok(Response::new(show_reply(&self.snap.borrow())))
    }

    async fn checks(
        &self,
        req: Request<pb::ChecksRequest>,
    ) -> Result<Response<pb::ChecksReply>, Status> {
        let r = req.into_inner();
        let snap = self.snap.borrow().clone();
        let host = Some(r.host.trim()).filter(|h| !h.is_empty() && *h != "all");
        let check = Some(r.check.trim()).filter(|c| !c.is_empty() && *c != "all");
        if let Some(h) = host {
            if !snap.hosts.iter().any(|x| x.name == h) {
                return Err(Status::not_found(format!(
                    "ERROR: Unknown host name '{h}'!"
                )));
            }
        }
        if let Some(c) = check {
            if CheckKind::from_name(c).is_none() {
                return Err(Status::not_found(format!("ERROR: Unknown check '{c}'!")));
            }
        }
        let mut out = Vec::new();
        for h in snap
            .hosts
            .iter()
            .filter(|x| host.is_none_or(|n| x.name == n))
        {
            for c in h
                .checks
                .iter()
                .filter(|c| check.is_none_or(|n| c.kind.name() == n))
            {
                out.push(pb::CheckStatus {
                    host: h.name.clone(),
                    check: c.kind.name().into(),
                    result: match c.outcome {
                        Some(crate::core::Outcome::Ok) => pb::CheckResult::Ok,
                        Some(crate::core::Outcome::Error) => pb::CheckResult::Error,
                        Some(crate::core::Outcome::Unknown) => pb::CheckResult::Unknown,
                        None => pb::CheckResult::Unspecified,
                    } as i32,
                    last_change_unix_ms: c.last_change_unix_ms,
                    message: c.message.clone(),
                });
            }
        }
        Ok(Response::new(pb::ChecksReply { checks: out }))
    }

    async fn set_online(
        &self,
        req: Request<pb::HostRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let h = req.into_inner().host;
        need("host name", &h)?;
        self.command(Command::SetOnline(h)).await
    }

    async fn set_offline(
        &self,
        req: Request<pb::HostRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let h = req.into_inner().host;
        need("host name", &h)?;
        self.command(Command::SetOffline(h)).await
    }

    async fn get_mode(
        &self,
        _: Request<pb::GetModeRequest>,
    ) -> Result<Response<pb::ModeReply>, Status> {
        let m = self
            .snap
            .borrow()
            .mode
            .map(|m| pb::Mode::from(m) as i32)
            .unwrap_or(0);
        Ok(Response::new(pb::ModeReply { mode: m }))
    }

    async fn set_mode(
        &self,
        req: Request<pb::SetModeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let m = req.into_inner().mode;
        let mode = convert::mode(m).map_err(|_| {
            Status::invalid_argument(format!(
                "ERROR: mode {m} is not one of MODE_ACTIVE, MODE_MANUAL, MODE_PASSIVE"
            ))
        })?;
        self.command(Command::SetMode(mode)).await
    }

    async fn move_role(
        &self,
        req: Request<pb::MoveRoleRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        need("role name", &r.role)?;
        need("host name", &r.host)?;
        self.command(Command::MoveRole {
            role: r.role,
            host: r.host,
            force: r.force,
        })
        .await
    }

    async fn set_ip(
        &self,
        req: Request<pb::SetIpRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let r = req.into_inner();
        need("host name", &r.host)?;
        let ip = r.ip.trim().parse().map_err(|_| {
            Status::invalid_argument(format!("ERROR: '{}' is not an IPv4 address", r.ip))
        })?;
        self.command(Command::SetIp { ip, host: r.host }).await
    }

    async fn history(
        &self,
        req: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryReply>, Status> {
        let n = match req.into_inner().limit {
            0 => 20,
            n => n.min(super::history::KEEP as u32) as usize,
        };
        let entries = match self.history.lock() {
            Ok(h) => h.iter().rev().take(n).rev().map(entry_to_pb).collect(),
            Err(_) => vec![],
        };
        Ok(Response::new(pb::HistoryReply { entries }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::ClusterEvent, Status>> + Send>>;

    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let s = BroadcastStream::new(self.events.subscribe())
            .filter_map(|r| r.ok().map(|p| Ok(event_to_pb(p))));
        Ok(Response::new(Box::pin(s)))
    }
}
