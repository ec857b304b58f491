//! Executing a role table on this host: the facts are read, [`plan`](super::plan::plan)
//! decides the operations (pure, unit-tested), and this executor runs them in order, timing
//! and recording each as a [`Step`]. A failing step stops the apply with an error that names
//! it (re-applying the same table converges); read-only and kill failures are recorded and the
//! apply goes on (a server that cannot be reached cannot take writes either).

use super::{
    mysql::Db,
    plan::{self, Facts, HandOver as PlannedHandOver, Op, PlanError, Redirect},
    promote,
    sql::Dialect,
    state::AgentState,
};
use crate::dataplane::{self, garp, DataPlane, DataPlaneError, Netlink, Release};
use mmm_common::{config::Config, roles::RoleTable};
use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, Instant},
};

/// A timed step of an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `release`, `read_only`, `repoint`, `replication`, `catch-up`, `writable`, `acquire`,
    /// `kill`, `persist`, …
    pub name: String,
    /// How long it took, in µs.
    pub micros: u64,
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
}

/// Why a table was not (fully) applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refused before anything was done (stale epoch, host not in the table).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A newer table (epoch `by`) arrived before this one was applied.
    #[error("superseded by the role table of epoch {by} before it was applied")]
    Superseded { by: u64 },
    #[error("step '{step}' failed: {detail}")]
    Step {
        step: String,
        detail: String,
        steps: Vec<Step>,
    },
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
    /// Where step durations go (Prometheus).
    pub metrics: super::metrics::AgentMetrics,
    /// The health watcher (the server's pid, for stopping a hung one).
    pub health: tokio::sync::watch::Receiver<super::health::Health>,
    /// The local server's dialect, once it answered (used while it does not: a hung server
    /// is not asked, each question would cost a timeout).
    pub known_dialect: Option<Dialect>,
    /// An IO-thread reconnect still under way (`set_semisync`): the next operation on the
    /// server's replication or state waits for it first.
    pub(super) reconnect: Option<super::semisync::Reconnect>,
    /// The table being applied.
    pub(super) applying: Option<RoleTable>,
    /// The queue's slot (`queue.rs`), where a table may wait behind it: a hand-over stops
    /// waiting for a new owner that table gives the VIP to no longer ([`moved_again`]).
    pub(super) newer: super::queue::Slot,
}

/// The steps recorded so far.
pub struct Steps {
    done: Vec<Step>,
    /// Where each step's duration is observed (none in unit tests).
    metrics: Option<super::metrics::AgentMetrics>,
}

impl Steps {
    /// No steps yet; durations observed into `metrics` (none in unit tests).
    pub fn new(metrics: Option<super::metrics::AgentMetrics>) -> Steps {
        Steps {
            done: Vec::new(),
            metrics,
        }
    }
    /// The steps recorded.
    pub fn into_done(self) -> Vec<Step> {
        self.done
    }
    /// Records a step that began at `t0` (and logs it).
    pub fn record(&mut self, name: &str, t0: Instant, ok: bool, detail: String) {
        self.record_took(name, t0.elapsed(), ok, detail);
    }

    /// Records a step that took `took` (one that ran in the background: the time it ran, not
    /// the time until it was awaited).
    pub fn record_took(&mut self, name: &str, took: std::time::Duration, ok: bool, detail: String) {
        let micros = took.as_micros() as u64;
        if let Some(m) = &self.metrics {
            m.step(name, micros as f64 / 1e6);
        }
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
    pub fn fail(&mut self, name: &str, t0: Instant, detail: String) -> ApplyError {
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
    /// The VIP's `conflicts` counter when the apply began.
    claims: u64,
}

/// Whether `newer`, a table waiting behind `current`, gives `ip` to another host than
/// `current` does (`None` as the owner counts: nobody): then its epoch, and a hand-over of
/// `ip` under `current` need not wait for `current`'s new owner.
pub(super) fn moved_again(
    current: &RoleTable,
    newer: Option<&RoleTable>,
    ip: Ipv4Addr,
) -> Option<u64> {
    let n = newer.filter(|n| n.epoch > current.epoch)?;
    let owner = |t: &RoleTable| t.owner_of(ip).map(|a| a.host.clone());
    (owner(n) != owner(current)).then_some(n.epoch)
}

impl Applier {
    /// What the planner needs to know about `t`, read now. The server's `read_only` is asked
    /// only when the plan depends on it and the server answered the version query (a hung
    /// server would cost a second timeout).
    async fn facts(&mut self, t: &RoleTable) -> Facts {
        // A server the health watcher finds down or hung is not asked (a timeout each).
        let answers = {
            let h = self.health.borrow();
            h.up || !h.checked
        };
        let dialect = match answers {
            true => self.db.dialect().await.ok(),
            false => None,
        };
        self.known_dialect = dialect.or(self.known_dialect);
        let wanted = plan::wants_read_only(&self.state, t, &self.cfg, &self.me);
        // Both asked at once: each is a login, and a demotion waits for them.
        let writer = t.active_master.as_deref() == Some(self.me.as_str());
        let (read_only, semisync, acknowledging) = tokio::join!(
            async {
                match dialect {
                    Some(_) if wanted => self.db.read_only().await.ok(),
                    _ => None,
                }
            },
            async {
                match dialect {
                    Some(d) if self.cfg.semisync => super::semisync::read(&self.db, d).await,
                    _ => None,
                }
            },
            async {
                match dialect {
                    Some(d) if self.cfg.semisync && writer => {
                        super::semisync::acknowledging(&self.db, d).await
                    }
                    _ => false,
                }
            }
        );
        let local: BTreeSet<Ipv4Addr> = self.dp.locals().unwrap_or_default().into_iter().collect();
        let mut unconfigured = BTreeSet::new();
        for ip in &local {
            if matches!(self.nl.has_vip_address(*ip).await, Ok(false)) {
                unconfigured.insert(*ip);
            }
        }
        Facts {
            dialect,
            read_only,
            local,
            unconfigured,
            macs: Default::default(),
            semisync,
            acknowledging,
        }
    }

    /// The MACs this host knows of cluster hosts: its own interface's, and the kernel's
    /// resolved neighbours of the others (fresh: the health watcher pings every peer).
    async fn known_macs(&self) -> std::collections::BTreeMap<String, [u8; 6]> {
        let mut known = std::collections::BTreeMap::new();
        let Ok(link) = self.nl.link(self.dp.iface()).await else {
            return known;
        };
        known.insert(self.me.clone(), link.mac);
        for (ip, mac) in self.nl.neighbours(link.index).await.unwrap_or_default() {
            if let Some(h) = self.cfg.hosts.iter().find(|h| h.ip == ip) {
                known.insert(h.name.clone(), mac);
            }
        }
        known
    }

    /// Applies `t`; returns the steps taken.
    pub async fn apply(&mut self, t: &RoleTable) -> Result<Vec<Step>, ApplyError> {
        let macs = self.known_macs().await;
        if let Err(e) = plan::admit(&self.state, t, &self.cfg, &self.me, &macs) {
            tracing::warn!(epoch = t.epoch, "refused role table: {e}");
            return Err(e.into());
        }
        tracing::info!(epoch = t.epoch, "applying role table");
        self.applying = Some(t.clone());
        let mut facts = self.facts(t).await;
        facts.macs = macs;
        let ops = plan::plan(&self.state, t, &self.cfg, &self.me, &facts)?;
        // A hand-over recognises the new owner's claim against the counter as it was before
        // anything moved (its gratuitous ARP may come at any time from now on).
        let claims = |ip| self.dp.stats(ip).map(|s| s.conflicts).unwrap_or(0);
        let baselines: Vec<(Ipv4Addr, u64)> = ops
            .iter()
            .filter_map(|o| match o {
                Op::HandOver(h) => Some(h),
                _ => None,
            })
            .flatten()
            .map(|h| (h.role.ip, claims(h.role.ip)))
            .collect();
        let d = facts
            .dialect
            .or(self.known_dialect)
            .unwrap_or(Dialect::MariaDb);
        let mut steps = Steps::new(Some(self.metrics.clone()));
        // A failed fencing step does not stop the others (the data plane, the kills, the
        // addresses still go), but the table is then not applied.
        let mut fence_failed = None;
        for op in ops {
            // A demoted writer's replication reconnect (`set_semisync`) overlaps its kills,
            // its address removals and its acknowledgement only (it is not part of giving the
            // role up); anything else that touches the server waits for it, in this apply or
            // the next.
            if !matches!(op, Op::KillClients | Op::RemoveAddress(_) | Op::Persist(_)) {
                if let Some(r) = self.reconnect.take() {
                    self.reconnected(r, &mut steps).await;
                }
            }
            self.run(op, d, &baselines, &mut steps, &mut fence_failed)
                .await?;
        }
        Ok(steps.done)
    }

    /// Runs one operation.
    async fn run(
        &mut self,
        op: Op,
        d: Dialect,
        baselines: &[(Ipv4Addr, u64)],
        steps: &mut Steps,
        fence_failed: &mut Option<String>,
    ) -> Result<(), ApplyError> {
        let t0 = Instant::now();
        match op {
            Op::Release { role, to } => {
                let (how, said) = match &to {
                    Redirect::Steer { host, mac } => {
                        (Release::Steer(*mac), format!("steering to {host}"))
                    }
                    Redirect::Fence => (Release::Fence, "fenced".into()),
                };
                if let Err(e) = dataplane::redirect(&mut self.dp, role.ip, how) {
                    return Err(steps.fail("release", t0, dp_err(e)));
                }
                steps.record("release", t0, true, format!("{role} released, {said}"));
            }
            Op::DenyWrites => {
                if let Err(why) = self.deny_writes(d, steps).await {
                    *fence_failed = Some(why);
                }
            }
            Op::Repoint { master } => {
                promote::repoint(&self.db, d, &self.cfg, &self.me, &master, steps).await
            }
            Op::Replication { start } => {
                let sql = if start {
                    d.start_replica()
                } else {
                    d.stop_replica()
                };
                match self.db.exec(sql).await {
                    Ok(()) => steps.record("replication", t0, true, sql.into()),
                    Err(e) => return Err(steps.fail("replication", t0, e.to_string())),
                }
            }
            Op::SemiSync { want, restart_io } => {
                self.reconnect = self.set_semisync(d, want, restart_io, steps).await?;
            }
            Op::StopAcknowledging => {
                self.reconnect = self.stop_acknowledging(d, steps).await;
            }
            Op::Promote { catch_up } => {
                promote::promote(&self.db, d, &self.cfg, catch_up.as_deref(), steps).await?
            }
            Op::Acquire { role, again } => {
                if let Err(e) = self.take_vip(role.ip).await {
                    return Err(steps.fail("acquire", t0, dp_err(e)));
                }
                let detail = if again {
                    format!("{} re-acquired", role.ip)
                } else {
                    format!("{role} is local")
                };
                steps.record("acquire", t0, true, detail);
            }
            Op::HandOver(list) => {
                let handover = list
                    .into_iter()
                    .map(|PlannedHandOver { role, host, mac }| Handover {
                        ip: role.ip,
                        how: Release::Steer(mac),
                        released: format!("{role} released, steering to {host}"),
                        claims: baselines
                            .iter()
                            .find(|(ip, _)| *ip == role.ip)
                            .map(|(_, c)| *c)
                            .unwrap_or(0),
                    })
                    .collect();
                self.hand_over(handover, steps).await?;
            }
            Op::KillClients => self.kill_clients(steps).await,
            Op::RemoveAddress(ip) => {
                if let Err(e) = self.nl.del_vip_address(ip).await {
                    return Err(steps.fail("release", t0, dp_err(e)));
                }
                steps.record("release", t0, true, format!("{ip}/32 removed"));
            }
            Op::Persist(_) if fence_failed.is_some() => {
                let why = fence_failed.take().unwrap_or_default();
                return Err(steps.fail(
                    "fence",
                    t0,
                    format!("{why}; the table is not applied (it will be pushed again)"),
                ));
            }
            Op::Persist(state) => {
                let epoch = state.epoch;
                self.state = state;
                if let Err(e) = self.state.save(&self.state_path) {
                    return Err(steps.fail("persist", t0, e.to_string()));
                }
                steps.record("persist", t0, true, format!("epoch {epoch} applied"));
            }
        }
        Ok(())
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
    /// read-only) instead of being steered to a host that drops them. A newer table waiting
    /// that gives the VIP to another host ends the wait at once ([`moved_again`]): this
    /// table's new owner may never claim it (a host back from a fence before its lease ran
    /// out is first sent the demotion it missed), and the newer table decides.
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
                let superseded = self
                    .applying
                    .as_ref()
                    .and_then(|cur| self.newer.moved_again(cur, h.ip));
                if !announced && now < deadline && superseded.is_none() {
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
                    "once the new owner had it".to_string()
                } else if let Some(epoch) = superseded {
                    format!(
                        "without word from the new owner (epoch {epoch}, waiting, moves it again)"
                    )
                } else {
                    "without word from the new owner (timeout)".to_string()
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
}
