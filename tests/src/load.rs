//! A client that writes through a VIP as fast as it can, from inside a namespace: short
//! connect and query timeouts, reconnecting after every error, recording each acknowledged
//! write with its time. Used by the failover test and the failover benchmark.

use anyhow::Result;
use mysql_async::prelude::Queryable;
use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// A running writer.
pub struct Writer {
    stop: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(u64, Instant)>>>,
    failures: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Connect timeout and query timeout of the writer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

impl Writer {
    /// Starts writing `INSERT INTO <table> (seq) VALUES (n)` (n = first, first+1, …) through
    /// `ip` as `app`/`app` on database `app`, from namespace `ns`.
    pub fn start(ns: &str, ip: Ipv4Addr, table: &str, first: u64) -> Result<Writer> {
        let mut w = Writer {
            stop: Arc::default(),
            hold: Arc::default(),
            held: Arc::default(),
            acked: Arc::default(),
            failures: Arc::default(),
            thread: None,
        };
        let (stop, hold, held, acked, failures) = (
            w.stop.clone(),
            w.hold.clone(),
            w.held.clone(),
            w.acked.clone(),
            w.failures.clone(),
        );
        let (ns, sql) = (
            ns.to_string(),
            format!("INSERT INTO {table} (seq) VALUES (?)"),
        );
        let thread = std::thread::spawn(move || {
            let _ = crate::netns::block_on_in(&ns, move || async move {
                let opts: mysql_async::Opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname(ip.to_string())
                    .user(Some("app"))
                    .pass(Some("app"))
                    .db_name(Some("app"))
                    .prefer_socket(Some(false))
                    .into();
                let mut conn: Option<mysql_async::Conn> = None;
                let mut seq = first;
                while !stop.load(Ordering::SeqCst) {
                    if hold.load(Ordering::SeqCst) {
                        held.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    held.store(false, Ordering::SeqCst);
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            mysql_async::Conn::new(opts.clone()),
                        )
                        .await
                        {
                            Ok(Ok(c)) => conn.insert(c),
                            _ => {
                                failures.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        },
                    };
                    match tokio::time::timeout(QUERY_TIMEOUT, c.exec_drop(sql.as_str(), (seq,)))
                        .await
                    {
                        Ok(Ok(())) => {
                            if let Ok(mut a) = acked.lock() {
                                a.push((seq, Instant::now()));
                            }
                            seq += 1;
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::SeqCst);
                            seq += 1;
                            conn = None;
                        }
                    }
                }
            });
        });
        w.thread = Some(thread);
        Ok(w)
    }

    /// Stops issuing writes and waits until none is in flight.
    pub fn pause(&self) {
        self.hold.store(true, Ordering::SeqCst);
        while !self.held.load(Ordering::SeqCst)
            && self.thread.as_ref().is_some_and(|t| !t.is_finished())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Writes again.
    pub fn resume(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    /// The acknowledged writes so far.
    pub fn acked(&self) -> Vec<(u64, Instant)> {
        self.acked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Waits (at most `bound`) until writes have resumed after a failure at `t0`: `n` writes
    /// acknowledged more than 50 ms after it (a write in flight at `t0` does not count).
    pub fn wait_resumed(&self, t0: Instant, n: usize, bound: Duration) -> bool {
        let end = t0 + bound;
        loop {
            let after = self
                .acked()
                .iter()
                .filter(|(_, t)| *t > t0 + Duration::from_millis(50))
                .count();
            if after >= n {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// Stops and returns the acknowledged writes.
    pub fn stop(mut self) -> Vec<(u64, Instant)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.acked()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Several [`Writer`]s on one table at once, each on its own connection and its own range
/// of ids (client `k` writes `1 + k·10⁹`, `2 + k·10⁹`, …), so a failure meets transactions in
/// flight on several sessions and every acknowledged id is still unique (the checker of
/// `faults` and the zero-loss tests).
pub struct Writers(Vec<Writer>);

/// The gap between two clients' first ids.
const CLIENT_STRIDE: u64 = 1_000_000_000;

impl Writers {
    /// Starts `clients` writers of `table` through `ip` from namespace `ns`.
    pub fn start(ns: &str, ip: Ipv4Addr, table: &str, clients: u64) -> Result<Writers> {
        (0..clients)
            .map(|k| Writer::start(ns, ip, table, 1 + k * CLIENT_STRIDE))
            .collect::<Result<Vec<_>>>()
            .map(Writers)
    }

    /// The acknowledged writes of all clients so far, in no particular order.
    pub fn acked(&self) -> Vec<(u64, Instant)> {
        self.0.iter().flat_map(Writer::acked).collect()
    }

    /// Whether every client has failed at least once (each met the fault).
    pub fn all_failed(&self) -> bool {
        self.0.iter().all(|w| w.failures() > 0)
    }

    /// Stops every client; returns all acknowledged writes.
    pub fn stop(self) -> Vec<(u64, Instant)> {
        self.0.into_iter().flat_map(Writer::stop).collect()
    }
}
