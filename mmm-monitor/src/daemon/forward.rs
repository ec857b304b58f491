//! A follower's commands go to the leader (monitor high availability): `mmm_control` and
//! grpcurl work against any monitor. The follower calls the leader's `mmm.v1.Monitor` with
//! the same request (over mutual TLS with its own monitor certificate when `<socket> type
//! ssl`) and answers with the leader's reply or error. Reads (`show`, `checks`, `mode`,
//! `history`) are answered by the follower from the state it adopted.

use super::snapshot::HaSnap;
use crate::core::Command;
use mmm_proto::{
    convert,
    v1::{self as pb, monitor_client::MonitorClient},
    TlsFiles,
};
use std::time::Duration;
use tonic::{Response, Status};

/// Bound of a forwarded command (a `move_role` waits for the leader's table).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls the leader with command `c`.
pub async fn command(
    ha: &HaSnap,
    tls: Option<&TlsFiles>,
    c: Command,
) -> Result<Response<pb::CommandReply>, Status> {
    let Some((leader, addr)) = ha.leader.clone().filter(|_| !ha.leading) else {
        let why = match &ha.etcd_error {
            Some(e) => format!("etcd does not answer this monitor ({e})"),
            None => "an election is under way".into(),
        };
        return Err(convert::answered(Status::unavailable(format!(
            "ERROR: no monitor leads at the moment: {why}; try again"
        ))));
    };
    let unreachable = |e: String| {
        convert::answered(Status::unavailable(format!(
            "ERROR: this monitor ({}) follows {leader}, which it could not reach: {e}",
            ha.me
        )))
    };
    let ep = mmm_proto::endpoint(&addr, tls)
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(FORWARD_TIMEOUT);
    let ch = ep.connect().await.map_err(|e| unreachable(e.to_string()))?;
    let mut m = MonitorClient::new(ch).max_decoding_message_size(mmm_proto::MAX_MESSAGE_BYTES);
    let r = match c {
        Command::Ping => m.ping(pb::PingRequest {}).await,
        Command::SetOnline(host) => m.set_online(pb::HostRequest { host }).await,
        Command::SetOffline(host) => m.set_offline(pb::HostRequest { host }).await,
        Command::SetMode(mode) => {
            m.set_mode(pb::SetModeRequest {
                mode: pb::Mode::from(mode) as i32,
            })
            .await
        }
        Command::MoveRole { role, host, force } => {
            m.move_role(pb::MoveRoleRequest { role, host, force }).await
        }
        Command::SetIp { ip, host } => {
            m.set_ip(pb::SetIpRequest {
                ip: ip.to_string(),
                host,
            })
            .await
        }
    };
    match r {
        Ok(reply) => Ok(Response::new(reply.into_inner())),
        // The leader's own answer (refused, not found…) is passed on as it is; a transport
        // failure is this monitor's answer.
        Err(s) if s.code() != tonic::Code::Unavailable || convert::is_answered(&s) => Err(s),
        Err(s) => Err(unreachable(s.message().to_string())),
    }
}
