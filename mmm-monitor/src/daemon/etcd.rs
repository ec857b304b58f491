//! The etcd adapter of monitor high availability (`<etcd>`): one task per monitor that keeps a
//! session — a lease with TTL `lease_ttl`, renewed every third of it — campaigns in etcd's
//! election service under `<prefix>/leader`, and tells the driver what happens
//! ([`HaEvent`]): elected (with the state etcd holds, read after winning), deposed, or, while
//! following, who leads and what state the leader stored (polled every 250 ms). The leader's
//! writes are transactions guarded by its election key ([`Office::store`]): a deposed leader's
//! write fails. Only this module and the driver talk to etcd.

use super::{driver::Msg, leadership::SharedLease};
use crate::core::shared::Shared;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, LeaderKey,
    SortOrder, SortTarget, TlsOptions, Txn, TxnOp,
};
use mmm_common::config::EtcdConfig;
use serde::{Deserialize, Serialize};
use std::{sync::Arc, time::Duration, time::Instant};
use tokio::sync::mpsc;

/// How often a follower reads the leader and the shared state.
pub const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Bound of each etcd call other than the campaign (which waits for the office).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A monitor as the election knows it: its name and the address of its gRPC service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// `ip:port` of its `mmm.v1.Monitor` service.
    pub addr: String,
}

impl Member {
    /// `mon2 (198.18.0.6)`, as `show` writes it.
    pub fn describe(&self) -> String {
        let ip = self.addr.rsplit_once(':').map_or(&*self.addr, |(ip, _)| ip);
        format!("{} ({ip})", self.name)
    }
}

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("reading {what}: {why}")]
    Tls { what: String, why: std::io::Error },
    #[error("etcd granted no lease")]
    NoLease,
    #[error("the leader lease ran out (etcd answered TTL 0)")]
    LeaseGone,
    #[error("this monitor is no longer the leader (its election key is gone)")]
    Deposed,
}

impl std::fmt::Debug for Office {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Office")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("rev", &self.rev)
            .finish()
    }
}

/// What the driver is told.
#[derive(Debug)]
pub enum HaEvent {
    /// This monitor leads from now on; `stored`: the state etcd held when it won.
    Elected {
        office: Box<Office>,
        stored: Option<Shared>,
    },
    /// It no longer leads (or never did in this session): `why`.
    Deposed { why: String },
    /// A follower's view: who leads, the state stored (sent when either changed).
    Follow {
        leader: Option<Member>,
        stored: Option<Shared>,
    },
    /// etcd answers (`None`) or not (why).
    Reach(Option<String>),
}

/// The proof of leadership: the election key and its creation revision, compared by every
/// write of the leader.
#[derive(Clone)]
pub struct Office {
    client: Client,
    key: Vec<u8>,
    rev: i64,
    state_key: String,
}

impl Office {
    /// Stores `s` if this monitor still leads (one transaction: the election key still has
    /// the revision it was created with). `Err(Deposed)` when it does not.
    pub async fn store(&self, s: &Shared) -> Result<(), HaError> {
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                self.rev,
            )])
            .and_then(vec![TxnOp::put(self.state_key.clone(), s.encode(), None)]);
        let mut c = self.client.clone();
        let r = bounded(c.txn(txn)).await?;
        if r.succeeded() {
            Ok(())
        } else {
            Err(HaError::Deposed)
        }
    }
}

async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, HaError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map_err(HaError::from),
        Err(_) => Err(HaError::Timeout(CALL_TIMEOUT)),
    }
}

/// Connects to etcd (TLS when configured).
pub async fn connect(cfg: &EtcdConfig) -> Result<Client, HaError> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_keep_alive(Duration::from_secs(1), CALL_TIMEOUT)
        .with_keep_alive_while_idle(true);
    if let Some(t) = &cfg.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|why| HaError::Tls {
                what: p.display().to_string(),
                why,
            })
        };
        opts = opts.with_tls(
            TlsOptions::new()
                .ca_certificate(Certificate::from_pem(read(&t.ca_file)?))
                .identity(Identity::from_pem(read(&t.cert_file)?, read(&t.key_file)?)),
        );
    }
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let eps: Vec<String> = cfg
        .endpoints
        .iter()
        .map(|e| format!("{scheme}://{e}"))
        .collect();
    bounded(Client::connect(eps, Some(opts))).await
}

/// The key the leader stores the shared state under.
pub fn state_key(cfg: &EtcdConfig) -> String {
    format!("{}/state", cfg.prefix)
}

/// The election's name.
pub fn election(cfg: &EtcdConfig) -> String {
    format!("{}/leader", cfg.prefix)
}

/// Reads the shared state (`None`: nothing stored yet; an unreadable value is logged and
/// treated as none — the new leader starts over from its own view, above the agents' epoch).
async fn read_state(c: &mut Client, key: &str) -> Result<Option<Shared>, HaError> {
    let r = bounded(c.get(key, None)).await?;
    Ok(r.kvs()
        .first()
        .and_then(|kv| match Shared::decode(kv.value()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("{key} in etcd: {e}; ignored");
                None
            }
        }))
}

/// Runs the sessions until the driver is gone. `resign` asks the current session to give
/// the office up (a failed store) and start over.
pub async fn run(
    cfg: EtcdConfig,
    me: Member,
    tx: mpsc::Sender<Msg>,
    lease: Arc<SharedLease>,
    mut resign: mpsc::Receiver<()>,
) {
    let mut was_down = false;
    loop {
        let r = session(&cfg, &me, &tx, &lease, &mut resign).await;
        lease.lose();
        let why = match &r {
            Ok(()) => "resigned".to_string(),
            Err(e) => e.to_string(),
        };
        if tx.send(Msg::Ha(HaEvent::Deposed { why })).await.is_err() {
            return;
        }
        match r {
            // Resigned (a failed store): campaign again at once.
            Ok(()) => was_down = false,
            Err(e) => {
                let why = e.to_string();
                if !was_down {
                    tracing::warn!("etcd session ended: {why}; starting a new one");
                }
                was_down = true;
                let _ = tx.send(Msg::Ha(HaEvent::Reach(Some(why)))).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One session: a lease, renewed; a campaign; while it waits, the follower's polls.
async fn session(
    cfg: &EtcdConfig,
    me: &Member,
    tx: &mpsc::Sender<Msg>,
    lease: &SharedLease,
    resign: &mut mpsc::Receiver<()>,
) -> Result<(), HaError> {
    let mut client = connect(cfg).await?;
    let ttl = cfg.lease_ttl.as_secs() as i64;
    let sent = Instant::now();
    let grant = bounded(client.lease_grant(ttl, None)).await?;
    if grant.ttl() <= 0 {
        return Err(HaError::NoLease);
    }
    let id = grant.id();
    let granted = Duration::from_secs(grant.ttl() as u64);
    lease.renewed(sent, granted);
    let _ = tx.send(Msg::Ha(HaEvent::Reach(None))).await;
    let (mut keeper, mut answers) = bounded(client.lease_keep_alive(id)).await?;
    let value = serde_json::to_vec(me).unwrap_or_default();
    let mut ec = client.election_client();
    let name = election(cfg);
    let campaign = async move { ec.campaign(name, value, id).await };
    tokio::pin!(campaign);
    let mut renew = tokio::time::interval_at((sent + granted / 3).into(), granted / 3);
    let mut poll = tokio::time::interval(FOLLOW_POLL);
    let mut leading: Option<LeaderKey> = None;
    let mut seen: Option<(Option<Member>, Option<Shared>)> = None;
    let state_key = state_key(cfg);
    let result = loop {
        tokio::select! {
            _ = renew.tick() => {
                let sent = Instant::now();
                if let Err(e) = bounded(keeper.keep_alive()).await {
                    break Err(e);
                }
                match tokio::time::timeout(CALL_TIMEOUT, answers.message()).await {
                    Ok(Ok(Some(a))) if a.ttl() > 0 => {
                        lease.renewed(sent, Duration::from_secs(a.ttl() as u64));
                    }
                    Ok(Ok(Some(_))) => break Err(HaError::LeaseGone),
                    Ok(Ok(None)) => break Err(HaError::LeaseGone),
                    Ok(Err(e)) => break Err(e.into()),
                    Err(_) => break Err(HaError::Timeout(CALL_TIMEOUT)),
                }
            }
            won = &mut campaign, if leading.is_none() => {
                let key = match won {
                    Ok(mut r) => r.take_leader(),
                    Err(e) => break Err(e.into()),
                };
                let Some(key) = key else { break Err(HaError::Deposed) };
                // The lease covers the campaign's whole wait: renewals went on meanwhile.
                let stored = match read_state(&mut client, &state_key).await {
                    Ok(s) => s,
                    Err(e) => break Err(e),
                };
                let office = Office {
                    client: client.clone(),
                    key: key.key().to_vec(),
                    rev: key.rev(),
                    state_key: state_key.clone(),
                };
                leading = Some(key);
                let office = Box::new(office);
                if tx.send(Msg::Ha(HaEvent::Elected { office, stored })).await.is_err() {
                    return Ok(());
                }
            }
            _ = poll.tick(), if leading.is_none() => {
                let now = follow(&mut client, cfg, &state_key).await;
                match now {
                    Ok(view) => {
                        if seen.as_ref() != Some(&view) {
                            seen = Some(view.clone());
                            let (leader, stored) = view;
                            if tx.send(Msg::Ha(HaEvent::Follow { leader, stored })).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
            r = resign.recv() => {
                if r.is_none() {
                    return Ok(());
                }
                break Ok(());
            }
        }
    };
    // Give the office up at once (the next leader need not wait for the TTL); the lease
    // is revoked, so its election key goes with it. Best effort: etcd may be unreachable.
    lease.lose();
    let _ = bounded(client.lease_revoke(id)).await;
    result
}

/// A follower's poll: who leads, what it stored.
async fn follow(
    c: &mut Client,
    cfg: &EtcdConfig,
    state_key: &str,
) -> Result<(Option<Member>, Option<Shared>), HaError> {
    // The leader is the campaign key created first under the election's prefix (etcd's
    // election rule), read as a plain range: no leader is an empty answer, not an error.
    let opts = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let r = bounded(c.get(format!("{}/", election(cfg)), Some(opts))).await?;
    let leader = r
        .kvs()
        .first()
        .and_then(|kv| serde_json::from_slice::<Member>(kv.value()).ok());
    Ok((leader, read_state(c, state_key).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_described_by_name_and_address() {
        let m = Member {
            name: "mon2".into(),
            addr: "198.18.0.6:9988".into(),
        };
        assert_eq!(m.describe(), "mon2 (198.18.0.6)");
    }
}
