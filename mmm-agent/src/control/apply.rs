//! Applying a role table on this host (DESIGN.md "Failover of the writer", reference §3 with
//! the §8 weaknesses fixed): diff against what is applied, then
//! - lost IPs: data plane first (STEER to the new owner or FENCE), and for the writer role
//!   `read_only=1` (+`super_read_only`) and a bounded kill of client connections;
//! - a replica whose active master changed: bounded wait for its SQL thread, repoint (GTID-exact
//!   where the servers use GTID), verify both threads;
//! - gained writer: bounded wait until the relay log is applied, then `read_only=0`, then the
//!   data plane; on timeout promote and log the possible loss, or refuse when strict;
//! - other gained IPs: data plane only; ADMIN_OFFLINE stops replication, leaving it starts it.
//!
//! Every step is timed and reported; a failing step stops the apply with an error that names it
//! (re-applying the same table converges).

use super::{
    mysql::{col, Db, DbError},
    sql::{kill_plan, Dialect},
    state::AgentState,
};
use crate::dataplane::{self, garp, DataPlane, DataPlaneError, Netlink, Release};
use mmm_common::config::{Config, HostMode};
use std::{
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, Instant},
};

/// One host's line of a role table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLine {
    pub host: String,
    pub state: String,
    pub roles: Vec<(String, Ipv4Addr)>,
    pub mac: Option<[u8; 6]>,
}

/// A role table as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub epoch: u64,
    pub active_master: Option<String>,
    pub active_master_role: String,
    pub hosts: Vec<HostLine>,
}

/// A timed step of an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub micros: u64,
    pub ok: bool,
    pub detail: String,
}

/// Why a table was not (fully) applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("role table epoch {got} is older than the applied epoch {have}: refused (a stale or partitioned monitor?)")]
    Stale { have: u64, got: u64 },
    #[error("host '{0}' is not in the role table")]
    NotInTable(String),
    #[error("step '{step}' failed: {detail}")]
    Step {
        step: String,
        detail: String,
        steps: Vec<Step>,
    },
}

impl From<(String, DbError, Vec<Step>)> for ApplyError {
    fn from((step, e, steps): (String, DbError, Vec<Step>)) -> Self {
        ApplyError::Step {
            step,
            detail: e.to_string(),
            steps,
        }
    }
}

/// Everything an apply needs.
pub struct Applier {
    pub cfg: Config,
    pub me: String,
    pub db: Db,
    pub dp: DataPlane,
    pub nl: Netlink,
    pub state: AgentState,
    pub state_path: PathBuf,
}

struct Steps {
    done: Vec<Step>,
}

impl Steps {
    fn record(&mut self, name: &str, t0: Instant, ok: bool, detail: String) {
        let micros = t0.elapsed().as_micros() as u64;
        if ok {
            tracing::info!(step = name, micros, "{detail}");
        } else {
            tracing::error!(step = name, micros, "{detail}");
        }
        self.done.push(Step {
            name: name.into(),
            micros,
            ok,
            detail,
        });
    }
    /// Records the failed step and turns everything recorded into the apply's error.
    fn fail(&mut self, name: &str, t0: Instant, detail: String) -> ApplyError {
        self.record(name, t0, false, detail.clone());
        ApplyError::Step {
            step: name.into(),
            detail,
            steps: std::mem::take(&mut self.done),
        }
    }
}

fn dp_err(e: DataPlaneError) -> String {
    e.to_string()
}

/// A VIP this host gives up to a new owner, redirected once the new owner has it.
struct Handover {
    ip: Ipv4Addr,
    how: Release,
    /// What the release step says (`role(ip) released, steering to host`).
    released: String,
    /// The VIP's `conflicts` counter when the hand-over began.
    claims: u64,
}

impl Applier {
    fn writer_role(&self, t: &Table) -> String {
        if t.active_master_role.is_empty() {
            self.cfg.active_master_role.clone()
        } else {
            t.active_master_role.clone()
        }
    }

    /// Applies `t`; returns the steps taken.
    pub async fn apply(&mut self, t: &Table) -> Result<Vec<Step>, ApplyError> {
        if t.epoch < self.state.epoch {
            return Err(ApplyError::Stale {
                have: self.state.epoch,
                got: t.epoch,
            });
        }
        let mine = t
            .hosts
            .iter()
            .find(|h| h.host == self.me)
            .ok_or_else(|| ApplyError::NotInTable(self.me.clone()))?
            .clone();
        let writer = self.writer_role(t);
        let mut steps = Steps { done: Vec::new() };
        let old: Vec<(String, Ipv4Addr)> = self.state.roles.clone();
        let lost: Vec<(String, Ipv4Addr)> = old
            .iter()
            .filter(|r| !mine.roles.contains(r))
            .cloned()
            .collect();
        let gained: Vec<(String, Ipv4Addr)> = mine
            .roles
            .iter()
            .filter(|r| !old.contains(r))
            .cloned()
            .collect();
        let dialect = self.db.dialect().await.ok();

        // 1. Give up what we lost. A VIP with a new owner is handed over (step 5): it stays
        //    LOCAL here until the new owner has it (see `hand_over`), bounded by
        //    catchup_timeout; steering earlier would send clients' SYNs to a host that cannot
        //    take them yet (it is still catching up), and they would wait for their
        //    retransmission. A VIP with no new owner is fenced at once. A writer losing its
        //    role is read-only at once; its clients are killed after the redirect, so that
        //    they reconnect to the new owner; the /32s go last.
        let lost_writer = lost.iter().any(|(r, _)| *r == writer);
        let has_writer = mine.roles.iter().any(|(r, _)| *r == writer);
        let mut handover = Vec::new();
        for (role, ip) in &lost {
            let owner = t
                .hosts
                .iter()
                .find(|h| h.roles.iter().any(|(_, x)| x == ip));
            let how = match owner.and_then(|o| o.mac) {
                Some(mac) => Release::Steer(mac),
                None => Release::Fence,
            };
            let to = match (how, owner) {
                (Release::Steer(_), Some(o)) => format!("steering to {}", o.host),
                _ => "fenced".into(),
            };
            if matches!(how, Release::Steer(_)) && self.dp.is_local(*ip) {
                handover.push(Handover {
                    ip: *ip,
                    how,
                    released: format!("{role}({ip}) released, {to}"),
                    claims: self.dp.stats(*ip).map(|s| s.conflicts).unwrap_or(0),
                });
                continue;
            }
            let t0 = Instant::now();
            if let Err(e) = dataplane::redirect(&mut self.dp, *ip, how) {
                return Err(steps.fail("release", t0, dp_err(e)));
            }
            steps.record("release", t0, true, format!("{role}({ip}) released, {to}"));
        }
        // Only the writer may be writable: a host without the role is made read-only (checked
        // first, so this converges cheaply), and one that just lost it also drops its clients.
        let demote = !has_writer && (lost_writer || !matches!(self.db.read_only().await, Ok(true)));
        let d = dialect.unwrap_or(Dialect::MariaDb);
        if demote {
            self.deny_writes(d, &mut steps).await;
        }
        // 2. Replica of a changed active master: repoint.
        if let (Some(am), Some(d)) = (t.active_master.as_deref(), dialect) {
            let is_slave = self
                .cfg
                .host(&self.me)
                .is_some_and(|h| h.mode == HostMode::Slave);
            if is_slave && am != self.me && mine.state != "ADMIN_OFFLINE" {
                self.repoint(d, am, &mut steps).await?;
            }
        }

        // 3. ADMIN_OFFLINE: replication off; leaving it: on.
        if let Some(d) = dialect {
            let entering =
                mine.state == "ADMIN_OFFLINE" && self.state.host_state != "ADMIN_OFFLINE";
            let leaving = mine.state != "ADMIN_OFFLINE" && self.state.host_state == "ADMIN_OFFLINE";
            if entering || leaving {
                let t0 = Instant::now();
                let sql = if entering {
                    d.stop_replica()
                } else {
                    d.start_replica()
                };
                match self.db.exec(sql).await {
                    Ok(()) => steps.record("replication", t0, true, sql.into()),
                    Err(e) => return Err(steps.fail("replication", t0, e.to_string())),
                }
            }
        }

        // 4. Gain the writer: catch up (bounded), writable, then the data plane.
        if gained.iter().any(|(r, _)| *r == writer) {
            self.promote(dialect.unwrap_or(Dialect::MariaDb), &mut steps)
                .await?;
        }
        for (role, ip) in &gained {
            let t0 = Instant::now();
            if let Err(e) = self.take_vip(*ip).await {
                return Err(steps.fail("acquire", t0, dp_err(e)));
            }
            steps.record("acquire", t0, true, format!("{role}({ip}) is local"));
        }
        // Re-assert what we keep (converges after a crash between steps): a kept writer role
        // on a read-only server (the agent stopped between making it read-only and giving the
        // role up) is promoted again.
        if has_writer
            && !gained.iter().any(|(r, _)| *r == writer)
            && matches!(self.db.read_only().await, Ok(true))
        {
            self.promote(dialect.unwrap_or(Dialect::MariaDb), &mut steps)
                .await?;
        }
        // Re-assert the data plane of what we keep.
        for (_, ip) in mine.roles.iter().filter(|r| !gained.contains(r)) {
            if !self.dp.is_local(*ip) {
                let t0 = Instant::now();
                if let Err(e) = self.take_vip(*ip).await {
                    return Err(steps.fail("acquire", t0, dp_err(e)));
                }
                steps.record("acquire", t0, true, format!("{ip} re-acquired"));
            }
        }

        // 5. Hand over what we lost, after our own acquisitions: two hosts swapping VIPs
        //    each wait for the other's announcement, which comes from those acquisitions.
        if !handover.is_empty() {
            self.hand_over(handover, &mut steps).await?;
        }
        if demote && lost_writer {
            self.kill_clients(&mut steps).await;
        }
        for (_, ip) in &lost {
            let t0 = Instant::now();
            if let Err(e) = self.nl.del_vip_address(*ip).await {
                return Err(steps.fail("release", t0, dp_err(e)));
            }
            steps.record("release", t0, true, format!("{ip}/32 removed"));
        }

        // 6. Persist.
        let t0 = Instant::now();
        self.state = AgentState {
            epoch: t.epoch,
            roles: mine.roles.clone(),
            active_master: t.active_master.clone(),
            host_state: mine.state.clone(),
        };
        if let Err(e) = self.state.save(&self.state_path) {
            return Err(steps.fail("persist", t0, e.to_string()));
        }
        steps.record("persist", t0, true, format!("epoch {} applied", t.epoch));
        Ok(steps.done)
    }

    /// The data-plane half of gaining `ip`: the first gratuitous ARP round is sent before this
    /// returns, later rounds in the background.
    async fn take_vip(&mut self, ip: Ipv4Addr) -> Result<(), DataPlaneError> {
        let (rounds, gap) = (self.cfg.garp_rounds, Duration::from_millis(100));
        dataplane::acquire(&mut self.dp, &self.nl, ip, rounds, gap, false).await
    }

    /// Redirects each VIP of `handover` once its new owner has it, bounded by catchup_timeout:
    /// every 2 ms this host asks who has the VIP (from its own address); the new owner's XDP
    /// answers once the VIP is LOCAL there, and that answer — or the new owner's gratuitous
    /// ARP — reaches our XDP as a claim on a VIP still LOCAL here (its `conflicts` counter).
    /// Until then this host keeps the VIP, so clients are refused here at once (server down or
    /// read-only) instead of being steered to a host that drops them.
    async fn hand_over(
        &mut self,
        handover: Vec<Handover>,
        steps: &mut Steps,
    ) -> Result<(), ApplyError> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.catchup_timeout;
        // Probes leave from this host's own address; without one (or without the link) the
        // new owner's gratuitous ARP is the only word we get.
        let me_ip = self.cfg.host(&self.me).map(|h| h.ip);
        let link = self.nl.link(self.dp.iface()).await.ok();
        let mut waiting: Vec<(Handover, Option<(garp::Announcer, Ipv4Addr)>)> = handover
            .into_iter()
            .map(|h| {
                let prober = link.as_ref().zip(me_ip).and_then(|(l, me)| {
                    garp::Announcer::open(l.index, l.mac, h.ip)
                        .ok()
                        .map(|a| (a, me))
                });
                (h, prober)
            })
            .collect();
        while !waiting.is_empty() {
            let now = Instant::now();
            let mut still = Vec::new();
            for (h, prober) in waiting {
                let announced = self
                    .dp
                    .stats(h.ip)
                    .map(|s| s.conflicts > h.claims)
                    .unwrap_or(true);
                if !announced && now < deadline {
                    if let Some((p, me)) = &prober {
                        let _ = p.probe(*me);
                    }
                    still.push((h, prober));
                    continue;
                }
                if let Err(e) = dataplane::redirect(&mut self.dp, h.ip, h.how) {
                    return Err(steps.fail("release", t0, dp_err(e)));
                }
                let when = if announced {
                    "once the new owner had it"
                } else {
                    "without word from the new owner (timeout)"
                };
                steps.record("release", t0, true, format!("{} {when}", h.released));
                // Closing a packet socket waits for an RCU grace period: not on this path.
                if let Some((p, _)) = prober {
                    tokio::task::spawn_blocking(move || drop(p));
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(())
    }

    /// read_only (+super_read_only). A server that cannot be reached cannot take writes
    /// either: recorded, not an error.
    async fn deny_writes(&self, d: Dialect, steps: &mut Steps) {
        let t0 = Instant::now();
        for sql in d.deny_writes() {
            if let Err(e) = self.db.exec(sql).await {
                steps.record("read_only", t0, false, format!("{sql}: {e}"));
                return;
            }
        }
        steps.record("read_only", t0, true, d.deny_writes().join("; "));
    }

    /// Kills client connections, bounded by kill_timeout: running writes get until the
    /// deadline, everything else goes at once.
    async fn kill_clients(&self, steps: &mut Steps) {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.kill_timeout;
        let mut killed = 0;
        loop {
            let last = Instant::now() + Duration::from_millis(100) >= deadline;
            let procs = match self.db.processlist().await {
                Ok(p) => p,
                Err(e) => {
                    steps.record("kill", t0, false, e.to_string());
                    return;
                }
            };
            let ids = kill_plan(&procs, &self.db.user, last);
            for id in &ids {
                if self.db.exec(&format!("KILL {id}")).await.is_ok() {
                    killed += 1;
                }
            }
            let left = kill_plan(&procs, &self.db.user, true).len() - ids.len();
            if left == 0 || last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        steps.record(
            "kill",
            t0,
            true,
            format!("{killed} client connection(s) killed"),
        );
    }

    /// Bounded wait for the relay log, then writable.
    async fn promote(&self, d: Dialect, steps: &mut Steps) -> Result<(), ApplyError> {
        let t0 = Instant::now();
        let limit = self.cfg.catchup_timeout;
        match self.db.replica_status(d).await {
            Ok(Some(row)) => {
                let file = col(&row, &["Master_Log_File", "Source_Log_File"])
                    .unwrap_or("")
                    .to_string();
                let read: u64 = col(&row, &["Read_Master_Log_Pos", "Read_Source_Log_Pos"])
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let exec: u64 = col(&row, &["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"])
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let same_file = col(&row, &["Relay_Master_Log_File", "Relay_Source_Log_File"])
                    == Some(file.as_str());
                // A stopped SQL thread would make the wait return at once with events still
                // unapplied: a master about to take writes applies what it has first.
                let sql_running =
                    col(&row, &["Slave_SQL_Running", "Replica_SQL_Running"]) == Some("Yes");
                let behind = !same_file || read > exec;
                if !file.is_empty() && !sql_running && behind {
                    let t1 = Instant::now();
                    let ok = self.db.exec(d.start_sql_thread()).await;
                    steps.record(
                        "catch-up",
                        t1,
                        ok.is_ok(),
                        match ok {
                            Ok(()) => {
                                "SQL thread was stopped with relay log unapplied: started it".into()
                            }
                            Err(e) => format!("cannot start the SQL thread: {e}"),
                        },
                    );
                }
                let r = if file.is_empty() {
                    Ok(Some("0".into()))
                } else {
                    self.db
                        .value_within(
                            &d.wait_relay_applied(&file, read, limit.as_secs_f64()),
                            limit,
                        )
                        .await
                };
                match r {
                    Ok(Some(v)) if v != "-1" => steps.record(
                        "catch-up",
                        t0,
                        true,
                        format!("relay log applied up to {file}:{read}"),
                    ),
                    Ok(None) => steps.record(
                        "catch-up",
                        t0,
                        true,
                        "replication SQL thread not running: nothing to apply".into(),
                    ),
                    other => {
                        let behind = if same_file {
                            format!("{} bytes", read.saturating_sub(exec))
                        } else {
                            "at least one binlog file".into()
                        };
                        let detail = format!(
                            "relay log not applied within {limit:?}: {behind} of {file} received but not applied ({})",
                            match other { Err(e) => e.to_string(), _ => "timeout".into() }
                        );
                        if self.cfg.catchup_strict {
                            return Err(steps.fail(
                                "catch-up",
                                t0,
                                format!("{detail}; catchup_strict: promotion refused"),
                            ));
                        }
                        tracing::warn!("promoting anyway: transactions in the unapplied relay log may be lost or applied late: {detail}");
                        steps.record(
                            "catch-up",
                            t0,
                            false,
                            format!("{detail}; promoting anyway (catchup_strict off)"),
                        );
                    }
                }
            }
            Ok(None) => steps.record(
                "catch-up",
                t0,
                true,
                "not a replica: nothing to apply".into(),
            ),
            Err(e) => steps.record(
                "catch-up",
                t0,
                false,
                format!("cannot read replica status: {e}"),
            ),
        }
        let t0 = Instant::now();
        for sql in d.allow_writes() {
            if let Err(e) = self.db.exec(sql).await {
                return Err(steps.fail("writable", t0, e.to_string()));
            }
        }
        steps.record("writable", t0, true, d.allow_writes().join("; "));
        Ok(())
    }

    /// Repoints this replica at `master` if it is not already replicating from it.
    async fn repoint(&self, d: Dialect, master: &str, steps: &mut Steps) -> Result<(), ApplyError> {
        let Some(m) = self.cfg.host(master).cloned() else {
            return Ok(());
        };
        let me = self.cfg.host(&self.me).cloned();
        let Some(me) = me else { return Ok(()) };
        let t0 = Instant::now();
        let row = self
            .db
            .replica_status(d)
            .await
            .map_err(|e| steps.fail("repoint", t0, e.to_string()))?;
        let current = row
            .as_ref()
            .and_then(|r| col(r, &["Master_Host", "Source_Host"]))
            .unwrap_or("")
            .to_string();
        if current == m.ip.to_string() {
            return Ok(());
        }
        // Let the SQL thread apply what the IO thread already fetched (bounded).
        if let Some(r) = &row {
            let file = col(r, &["Master_Log_File", "Source_Log_File"]).unwrap_or("");
            let read: u64 = col(r, &["Read_Master_Log_Pos", "Read_Source_Log_Pos"])
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if !file.is_empty() {
                let limit = self.cfg.catchup_timeout;
                let r = self
                    .db
                    .value_within(
                        &d.wait_relay_applied(file, read, limit.as_secs_f64()),
                        limit,
                    )
                    .await;
                let ok = matches!(&r, Ok(Some(v)) if v != "-1");
                steps.record(
                    "replica catch-up",
                    t0,
                    ok,
                    format!(
                        "{file}:{read} {}",
                        if ok {
                            "applied"
                        } else {
                            "not applied in time; repointing anyway"
                        }
                    ),
                );
            }
        }
        let t0 = Instant::now();
        let gtid = row
            .as_ref()
            .map(|r| {
                col(r, &["Using_Gtid"]).is_some_and(|v| v != "No")
                    || col(r, &["Auto_Position"]) == Some("1")
            })
            .unwrap_or(true);
        let coords = if gtid {
            None
        } else {
            let peer = Db {
                ip: m.ip,
                port: m.mysql_port,
                ..self.db.clone()
            };
            let pos = peer
                .binlog_position()
                .await
                .map_err(|e| steps.fail("repoint", t0, e.to_string()))?;
            tracing::warn!(
                "repointing without GTID, MMM's coordinate method: events can be lost or repeated"
            );
            pos
        };
        let change = d.change_source(
            &m.ip.to_string(),
            m.mysql_port,
            &me.replication_user,
            &me.replication_password,
            coords.as_ref().map(|(f, p)| (f.as_str(), *p)),
        );
        for sql in [d.stop_replica(), change.as_str(), d.start_replica()] {
            self.db.exec(sql).await.map_err(|e| {
                let shown = if sql.contains("PASSWORD") {
                    "CHANGE MASTER"
                } else {
                    sql
                };
                steps.fail("repoint", t0, format!("{shown}: {e}"))
            })?;
        }
        // Verify both threads run (Connecting is fine: the new master may still be starting).
        let mut ok = false;
        for _ in 0..20 {
            if let Ok(Some(r)) = self.db.replica_status(d).await {
                let io = col(&r, &["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or("No");
                let sqlt = col(&r, &["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or("No");
                if io == "Yes" && sqlt == "Yes" {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        steps.record(
            "repoint",
            t0,
            ok,
            format!(
                "replicating from {master} ({}:{}){}{}",
                m.ip,
                m.mysql_port,
                if gtid { " by GTID" } else { " by coordinates" },
                if ok {
                    ""
                } else {
                    "; threads not both running yet"
                }
            ),
        );
        Ok(())
    }
}
