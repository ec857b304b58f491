//! Instant local health: the agent watches its mysqld and publishes "down"/"up" the moment it
//! happens — a pidfd on the server's pid fires when the process exits (crash, kill -9, clean
//! stop), and a short local ping catches a hung server. It also watches the other hosts of the
//! cluster and publishes which it cannot reach: their machines by ICMP every
//! `peer_ping_interval` (200 ms by default), up to three echoes a probe (when a whole host goes
//! down its own agent is silent, and the peers' reports are the monitor's second observer; the
//! writer lease counts them), and their mysqld by a full login every 500 ms, up to three
//! logins a probe (holistic detection: a writer whose mysqld its peers still reach is
//! unreachable from the monitor, not dead). Never a half-open connection to a peer's port: handshakes left
//! unfinished count against MySQL's `max_connect_errors` and would end with the prober's host
//! blocked.

use super::mysql::Db;
use std::{net::Ipv4Addr, os::fd::FromRawFd, sync::Arc, time::Duration};
use tokio::sync::watch;

/// The current health of the local mysqld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// False until the first check finished.
    pub checked: bool,
    pub up: bool,
    /// Down with hard evidence: the process exited, or its port refuses connections. A
    /// timeout is only a suspicion (a hung or slow server), never this.
    pub hard: bool,
    /// The server's pid, once known (the watched process).
    pub pid: Option<i32>,
    pub detail: String,
    pub at_unix_ms: i64,
    /// Other hosts this agent cannot reach, sorted.
    pub peers_down: Vec<String>,
    /// Other hosts whose mysqld does not answer this agent at the protocol level, sorted.
    pub peers_mysqld_down: Vec<String>,
}

/// Another host of the cluster, pinged by the agent.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: String,
    pub ip: Ipv4Addr,
    /// How to log in to its mysqld (its agent_user), for the protocol-level probe.
    pub db: Db,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Ping period and the number of consecutive failures that count as down.
const PERIOD: Duration = Duration::from_millis(200);
const FAILURES: u32 = 2;

/// Opens a pidfd for `pid` (Linux >= 5.3).
fn pidfd(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd from the kernel.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

async fn server_pid(db: &Db) -> Option<i32> {
    let file = db.value("SELECT @@pid_file").await.ok()??;
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Consecutive failed peer mysqld logins that count as unreachable.
const PEER_FAILURES: u32 = 2;

/// How the agent pings its peers (`peer_ping_interval`, `peer_ping_misses`).
#[derive(Clone, Copy, Debug)]
pub struct Probing {
    /// One probe per interval; each probe's echoes are answered within it or not at all.
    pub interval: Duration,
    /// Failed probes in a row that make a peer unreachable.
    pub misses: u32,
}

impl Probing {
    /// Failed probes in a row (at least 1 s of them, and at least `misses`) after which the
    /// local server's binlog dump threads serving the peer are closed. Not at the first sign:
    /// on a lossy link that would cut a live replica's stream again and again (its IO thread
    /// reconnecting, never catching up). Soon enough: the zombie thread only matters when the
    /// replica reconnects, which its IO thread does only after `slave_net_timeout` (≥ 1 s) of
    /// silence.
    fn dump_close_failures(self) -> u32 {
        let per_second = Duration::from_secs(1).as_micros() / self.interval.as_micros().max(1);
        u32::try_from(per_second)
            .unwrap_or(u32::MAX)
            .max(self.misses)
            .max(1)
    }
}

/// Echo requests per peer probe, a third of the probe interval apart while none was answered
/// (the monitor's ping check does the same): on a link losing 30 % each way one echo fails a
/// probe in two, three one in eight.
const PEER_ECHOES: u16 = 3;

/// Starts the watcher and the peer prober; the receiver always holds the latest health.
pub fn spawn(db: Db, peers: Vec<Peer>, probing: Probing) -> watch::Receiver<Health> {
    let (tx, rx) = watch::channel(Health {
        checked: false,
        up: false,
        hard: false,
        pid: None,
        detail: "not checked yet".into(),
        at_unix_ms: now_ms(),
        peers_down: vec![],
        peers_mysqld_down: vec![],
    });
    let tx = Arc::new(tx);
    spawn_peer_mysqld(tx.clone(), peers.clone());
    spawn_peers(tx.clone(), peers, db.clone(), probing);
    tokio::spawn(async move {
        let quick = Db {
            timeout: Duration::from_millis(300),
            ..db
        };
        let mut failures = 0;
        let mut pid_seen: Option<i32> = None;
        let mut watched: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> = None;
        loop {
            let exited = async {
                match &watched {
                    Some(fd) => {
                        let _ = fd.readable().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let ping = async {
                tokio::time::sleep(PERIOD).await;
                quick.value("SELECT 1").await
            };
            tokio::select! {
                _ = exited => {
                    watched = None;
                    failures = FAILURES;
                    publish(&tx, false, true, None, "mysqld process exited");
                }
                r = ping => match r {
                    Ok(_) => {
                        failures = 0;
                        if watched.is_none() {
                            if let Some(pid) = server_pid(&quick).await {
                                // SAFETY: the AsyncFd owns the pidfd for its whole life.
                                watched = pidfd(pid)
                                    .ok()
                                    .and_then(|fd| unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok());
                                if watched.is_some() {
                                    pid_seen = Some(pid);
                                }
                            }
                        }
                        publish(&tx, true, false, pid_seen, "mysqld answers");
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= FAILURES {
                            let hard = e.server_down();
                            let why = if hard { "refuses connections" } else { "does not answer" };
                            publish(&tx, false, hard, pid_seen, &format!("mysqld {why}: {e}"));
                        }
                    }
                }
            }
        }
    });
    rx
}

fn publish(tx: &watch::Sender<Health>, up: bool, hard: bool, pid: Option<i32>, detail: &str) {
    tx.send_if_modified(|h| {
        h.pid = pid.or(h.pid);
        if h.checked && h.up == up && h.hard == hard {
            return false;
        }
        if up {
            tracing::info!("local mysqld is up: {detail}");
        } else {
            tracing::warn!("local mysqld is down: {detail}");
        }
        h.checked = true;
        h.up = up;
        h.hard = hard;
        h.detail = detail.into();
        h.at_unix_ms = now_ms();
        true
    });
}

/// One task per peer: a probe of up to [`PEER_ECHOES`] echoes starting every
/// `probing.interval`; the peer's name joins `peers_down` after `probing.misses` failed probes
/// in a row and leaves it at the first answer. After [`Probing::dump_close_failures`] the
/// local server's binlog dump threads serving it are closed (`sql::dump_threads_of`).
fn spawn_peers(tx: Arc<watch::Sender<Health>>, peers: Vec<Peer>, local: Db, probing: Probing) {
    if peers.is_empty() {
        return;
    }
    let client = match surge_ping::Client::new(&surge_ping::Config::default()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("no ICMP socket, peers are not watched: {e}");
            return;
        }
    };
    for (n, peer) in peers.into_iter().enumerate() {
        let (tx, client, local) = (tx.clone(), client.clone(), local.clone());
        tokio::spawn(async move {
            let base = (std::process::id() as u16).wrapping_add((n as u16) * PEER_ECHOES);
            let mut pingers = Vec::new();
            for e in 0..PEER_ECHOES {
                let id = surge_ping::PingIdentifier(base.wrapping_add(e));
                pingers.push(client.pinger(peer.ip.into(), id).await);
            }
            let (mut failures, mut seq) = (0u32, 0u16);
            let close_after = probing.dump_close_failures();
            // A probe starts every interval: an unanswered one lasts the whole interval, so
            // the next starts at once and `misses` failed probes take `misses` intervals
            // (the lease's timing argument, ARCHITECTURE.md), not twice that.
            let mut ticks = tokio::time::interval(probing.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                seq = seq.wrapping_add(1);
                let ok = probe(&mut pingers, seq, probing.interval).await;
                failures = if ok { 0 } else { failures.saturating_add(1) };
                let down = failures >= probing.misses;
                tx.send_if_modified(|h| {
                    let changed = mark(&mut h.peers_down, &peer.name, down);
                    if changed && down {
                        tracing::warn!(peer = %peer.name, ip = %peer.ip, "peer does not answer ping");
                    } else if changed {
                        tracing::info!(peer = %peer.name, "peer answers ping again");
                    }
                    changed
                });
                if failures == close_after {
                    // In a task of its own: the pings go on meanwhile.
                    let (local, peer) = (local.clone(), peer.clone());
                    tokio::spawn(async move { close_dump_threads(&local, &peer).await });
                }
            }
        });
    }
}

/// One probe: echo `seq` from each pinger, spread evenly over `limit` while none was
/// answered, each waiting until the probe's end; whether any was answered.
async fn probe(pingers: &mut [surge_ping::Pinger], seq: u16, limit: Duration) -> bool {
    let spacing = limit / u32::from(PEER_ECHOES);
    let echoes = pingers.iter_mut().enumerate().map(|(n, p)| {
        Box::pin(async move {
            let start = spacing * n as u32;
            tokio::time::sleep(start).await;
            p.timeout(limit.saturating_sub(start));
            p.ping(surge_ping::PingSequence(seq), &[0u8; 16])
                .await
                .map(drop)
        })
    });
    futures::future::select_ok(echoes).await.is_ok()
}

/// Closes the local server's binlog dump threads serving `peer` (see `sql::dump_threads_of`
/// for why); failures are logged, never fatal (the server may be down or the thread gone).
async fn close_dump_threads(local: &Db, peer: &Peer) {
    let procs = match local.processlist().await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(peer = %peer.name, "no processlist to close dump threads: {e}");
            return;
        }
    };
    let mut ids = super::sql::dump_threads_of(&procs, peer.ip);
    for (id, name) in super::sql::named_dump_threads(&procs) {
        let resolved = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::lookup_host((name.as_str(), 0)),
        )
        .await;
        match resolved {
            Ok(Ok(mut addrs)) => {
                if addrs.any(|a| a.ip() == std::net::IpAddr::V4(peer.ip)) {
                    ids.push(id);
                }
            }
            _ => tracing::warn!(
                peer = %peer.name,
                "cannot tell whether binlog dump thread {id} (client '{name}') serves it: the name does not resolve; set skip_name_resolve"
            ),
        }
    }
    for id in ids {
        match local.exec(&format!("KILL CONNECTION {id}")).await {
            Ok(()) => tracing::info!(
                peer = %peer.name,
                thread = id,
                "binlog dump thread of the unreachable peer closed"
            ),
            Err(e) => {
                tracing::warn!(peer = %peer.name, thread = id, "closing its binlog dump thread: {e}")
            }
        }
    }
}

/// Logins one peer probe may start.
const PEER_LOGINS: u32 = 3;

/// One probe of a peer's mysqld: up to [`PEER_LOGINS`] logins a third of its period apart
/// while none has answered; alive at the first answer (a refused login too), down at once
/// when the connection is refused (nothing listens), else when every login failed. A lost
/// SYN costs a TCP client 1 s (RFC 6298's initial RTO), twice the login's bound: on a lossy
/// link one login at a time reports a live server down. A login
/// that lost the race runs on to its own bound rather than being cut mid-handshake (see the
/// module doc on `max_connect_errors`).
async fn peer_login(db: &Db) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::channel(PEER_LOGINS as usize);
    let spacing = db.timeout / PEER_LOGINS;
    for _ in 0..PEER_LOGINS {
        let (db, tx) = (db.clone(), tx.clone());
        tokio::spawn(async move {
            // (alive, refused)
            let verdict = match db.value("SELECT 1").await {
                Ok(_) => (true, false),
                Err(e) => (e.server_answered(), e.server_down()),
            };
            let _ = tx.try_send(verdict);
        });
        match tokio::time::timeout(spacing, rx.recv()).await {
            Ok(Some((alive, refused))) if alive || refused => return alive,
            _ => {}
        }
    }
    drop(tx);
    while let Some((alive, refused)) = rx.recv().await {
        if alive || refused {
            return alive;
        }
    }
    false
}

/// Puts `name` in the sorted `list` (`down`) or takes it out; whether the list changed.
fn mark(list: &mut Vec<String>, name: &str, down: bool) -> bool {
    let listed = list.iter().any(|p| p == name);
    if down == listed {
        return false;
    }
    if down {
        list.push(name.to_string());
        list.sort();
    } else {
        list.retain(|p| p != name);
    }
    true
}

/// Peer mysqld probe period; its bound is the same.
const PEER_MYSQL_PERIOD: Duration = Duration::from_millis(500);

/// One task per peer: a full login to its mysqld every [`PEER_MYSQL_PERIOD`] — a refused
/// login (access denied) also proves the server alive, and neither counts against
/// `max_connect_errors`, which only counts handshakes left unfinished. The peer joins
/// `peers_mysqld_down` after [`PEER_FAILURES`] failures in a row (refused or no answer).
fn spawn_peer_mysqld(tx: Arc<watch::Sender<Health>>, peers: Vec<Peer>) {
    for peer in peers {
        let tx = tx.clone();
        tokio::spawn(async move {
            let db = Db {
                timeout: PEER_MYSQL_PERIOD,
                ..peer.db
            };
            let mut failures = 0u32;
            loop {
                tokio::time::sleep(PEER_MYSQL_PERIOD).await;
                let ok = peer_login(&db).await;
                failures = if ok { 0 } else { failures + 1 };
                let down = failures >= PEER_FAILURES;
                tx.send_if_modified(|h| {
                    let changed = mark(&mut h.peers_mysqld_down, &peer.name, down);
                    if changed && down {
                        tracing::warn!(peer = %peer.name, "peer's mysqld does not answer");
                    } else if changed {
                        tracing::info!(peer = %peer.name, "peer's mysqld answers again");
                    }
                    changed
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_threads_close_after_a_second_of_failed_probes_never_before_a_peer_is_down() {
        let p = |ms: u64, misses: u32| Probing {
            interval: Duration::from_millis(ms),
            misses,
        };
        assert_eq!(p(200, 2).dump_close_failures(), 5);
        assert_eq!(p(50, 2).dump_close_failures(), 20);
        assert_eq!(p(1000, 2).dump_close_failures(), 2);
        assert_eq!(p(1000, 1).dump_close_failures(), 1);
        assert_eq!(p(200, 8).dump_close_failures(), 8);
    }
}
