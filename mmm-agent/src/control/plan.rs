//! The agent's planner: a pure function from what was applied, the new role table, this host's
//! configuration and a few facts read up front to the ordered operations that make the table
//! real (`docs/mmm-2.2.1.md` §3 "Agent applying a status", with the §8 weaknesses fixed).
//! `apply.rs` executes the operations and times them; nothing here does I/O.
//!
//! The order, and why:
//! 1. lost VIPs: a VIP with a new owner that is LOCAL here is *handed over* (step 5); any other
//!    is redirected at once (STEER to the new owner, or FENCE when nobody has it);
//! 2. a host without the writer role is read-only (a demoted writer at once; any other when
//!    its server is writable: only the writer is writable);
//! 3. entering ADMIN_OFFLINE stops replication, leaving it starts it; semi-synchronous
//!    replication follows the role (the writer is the source, a possible writer acknowledges);
//! 4. gaining the writer: promotion (bounded catch-up, then writable) before the VIPs are
//!    acquired; kept roles are re-asserted (a kept writer on a read-only server is promoted
//!    again, a kept VIP not LOCAL is acquired again), so re-applying converges after a crash;
//! 5. hand-overs come after this host's own acquisitions (two hosts swapping VIPs would each
//!    wait for the other's announcement); then a demoted writer's clients are killed, then the
//!    `/32`s of lost VIPs go (last, so that the killed clients' FIN/RST still leave from them);
//!    the writer's IO thread, still acknowledging as a semi-sync replica (negotiated while it
//!    was the standby), reconnects as a plain one in the background;
//! 6. a slave is pointed at the active master (with `semisync`, at the standby master while it
//!    is ONLINE: `Config::slave_source`) — after every VIP is settled, so a slow or
//!    broken replica never leaves a VIP unowned (a failed repoint is retried by the next push);
//! 7. the applied state is persisted.

use super::{
    sql::Dialect,
    state::AgentState,
    validate::{validate, Invalid},
};
use mmm_common::{
    config::{Config, HostMode},
    roles::{Assignment, HostState, RoleIp, RoleTable},
    semisync::SemiSync,
};
use std::{collections::BTreeSet, net::Ipv4Addr};

/// What the executor reads before planning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The local server's family; `None` when it cannot be reached.
    pub dialect: Option<Dialect>,
    /// `@@read_only`; `None` when the server cannot be reached, or when it was not asked
    /// ([`wants_read_only`]).
    pub read_only: Option<bool>,
    /// VIPs the data plane has LOCAL now (all of them).
    pub local: BTreeSet<Ipv4Addr>,
    /// LOCAL VIPs whose `/32` is missing from the interface (removed by hand, say): the
    /// kernel would drop their traffic; a kept role is acquired again.
    pub unconfigured: BTreeSet<Ipv4Addr>,
    /// MACs of cluster hosts as this host knows them (its own, resolved neighbours).
    pub macs: std::collections::BTreeMap<String, [u8; 6]>,
    /// Semi-synchronous replication's switches now; read only with `semisync` on and a
    /// server that answers.
    pub semisync: Option<SemiSync>,
    /// The server's IO thread acknowledges as a semi-sync replica
    /// (`Rpl_semi_sync_slave_status`); read only with `semisync` on for the writer.
    pub acknowledging: bool,
}

/// Where a released VIP's traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// To the new owner `host` (its cluster interface's `mac`).
    Steer { host: String, mac: [u8; 6] },
    /// Nobody may receive it.
    Fence,
}

/// A VIP kept LOCAL here until its new owner answers for it, then steered there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOver {
    pub role: RoleIp,
    pub host: String,
    pub mac: [u8; 6],
}

/// One operation of an apply, in the order the planner emits them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Rewrite the VIP's map entry now.
    Release { role: RoleIp, to: Redirect },
    /// `read_only=1` (+ `super_read_only` where the server has it).
    DenyWrites,
    /// Point replication at the active master `master` (if it is not already); a failure is
    /// reported, not fatal.
    Repoint { master: String },
    /// `START SLAVE` (true) or `STOP SLAVE` (false): leaving or entering ADMIN_OFFLINE.
    Replication { start: bool },
    /// Semi-synchronous replication's switches to `want`; `restart_io`: the replica side
    /// changed, the IO thread reconnects for it to count.
    SemiSync { want: SemiSync, restart_io: bool },
    /// The writer's IO thread stops acknowledging as a semi-sync replica: it reconnects (in
    /// the background, once its relay log is applied), so that its source counts no
    /// acknowledging client that would vanish with this host.
    StopAcknowledging,
    /// Bounded catch-up of the relay log (and, after a planned switchover, of the old
    /// writer's final GTID set `catch_up`), then writable.
    Promote { catch_up: Option<String> },
    /// Add the `/32`, map LOCAL, gratuitous ARP. `again`: a kept VIP that was not LOCAL.
    Acquire { role: RoleIp, again: bool },
    /// Hand these VIPs over (bounded by `catchup_timeout`).
    HandOver(Vec<HandOver>),
    /// Kill client connections (bounded by `kill_timeout`).
    KillClients,
    /// Remove the VIP's `/32`.
    RemoveAddress(Ipv4Addr),
    /// Persist the new applied state.
    Persist(AgentState),
}

/// Why a table cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("role table epoch {got} is older than the applied epoch {have}: refused (a stale or partitioned monitor?)")]
    Stale { have: u64, got: u64 },
    #[error("host '{0}' is not in the role table")]
    NotInTable(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Whether `table` may be applied at all on `me` after `applied` (checked before any fact is
/// read): not older than the applied epoch (the same epoch again is idempotent), valid
/// against this agent's configuration (`validate.rs`), and naming this host. Returns this
/// host's line.
pub fn admit<'t>(
    applied: &AgentState,
    table: &'t RoleTable,
    cfg: &Config,
    me: &str,
    known_macs: &std::collections::BTreeMap<String, [u8; 6]>,
) -> Result<&'t Assignment, PlanError> {
    if table.epoch < applied.epoch {
        return Err(PlanError::Stale {
            have: applied.epoch,
            got: table.epoch,
        });
    }
    validate(table, cfg, applied.epoch, known_macs)?;
    table
        .host(me)
        .ok_or_else(|| PlanError::NotInTable(me.into()))
}

/// The active-master role's name: the table's, or the configuration's when the table has none.
fn writer_role<'a>(table: &'a RoleTable, cfg: &'a Config) -> &'a str {
    if table.active_master_role.is_empty() {
        &cfg.active_master_role
    } else {
        &table.active_master_role
    }
}

/// Whether [`plan`] needs [`Facts::read_only`] for `table` on `me`: not when this host gains
/// or loses the writer role (the answer is decided either way), so a failover's critical path
/// spends no query on it.
pub fn wants_read_only(applied: &AgentState, table: &RoleTable, cfg: &Config, me: &str) -> bool {
    let Some(mine) = table.host(me) else {
        return false;
    };
    let writer = writer_role(table, cfg);
    let had = applied.roles.iter().any(|r| r.role == writer);
    let has = mine.roles.iter().any(|r| r.role == writer);
    had == has
}

/// What semi-synchronous replication should be on `me` (`semisync` on): the writer is the
/// source; a host that may take the writer role acknowledges (so an acknowledged write is
/// always on a host that can be promoted); others neither. Everything off with `semisync` off.
pub fn wanted_semisync(cfg: &Config, me: &str, has_writer: bool) -> SemiSync {
    if !cfg.semisync {
        return SemiSync::default();
    }
    let may_write = cfg.may_write(me);
    SemiSync {
        source: has_writer,
        replica: !has_writer && may_write,
    }
}

/// The name of the role `ip` belongs to in `cfg` (`unknown` for an address no role has).
fn role_named(cfg: &Config, ip: Ipv4Addr) -> String {
    cfg.roles
        .iter()
        .find(|r| r.ips.contains(&ip))
        .map_or_else(|| "unknown".into(), |r| r.name.clone())
}

/// The operations that take this host (`me`) from `applied` to `table`.
pub fn plan(
    applied: &AgentState,
    table: &RoleTable,
    cfg: &Config,
    me: &str,
    facts: &Facts,
) -> Result<Vec<Op>, PlanError> {
    let mine = admit(applied, table, cfg, me, &facts.macs)?;
    let writer = writer_role(table, cfg);
    let lost: Vec<&RoleIp> = applied
        .roles
        .iter()
        .filter(|r| !mine.roles.contains(r))
        .collect();
    let gained: Vec<&RoleIp> = mine
        .roles
        .iter()
        .filter(|r| !applied.roles.contains(r))
        .collect();
    let lost_writer = lost.iter().any(|r| r.role == writer);
    let has_writer = mine.roles.iter().any(|r| r.role == writer);
    let gained_writer = gained.iter().any(|r| r.role == writer);
    let mut ops = Vec::new();

    // 1. Lost VIPs.
    let mut handover = Vec::new();
    for r in &lost {
        let owner = table.owner_of(r.ip);
        match owner.and_then(|o| o.mac.map(|m| (o.host.clone(), m))) {
            Some((host, mac)) if facts.local.contains(&r.ip) => handover.push(HandOver {
                role: (*r).clone(),
                host,
                mac,
            }),
            Some((host, mac)) => ops.push(Op::Release {
                role: (*r).clone(),
                to: Redirect::Steer { host, mac },
            }),
            None => ops.push(Op::Release {
                role: (*r).clone(),
                to: Redirect::Fence,
            }),
        }
    }
    // A VIP LOCAL here that this host neither held nor is to hold (made by hand, or left by
    // an apply that failed half-way) is released the same way, at once.
    let stray: Vec<RoleIp> = facts
        .local
        .iter()
        .filter(|ip| {
            !applied
                .roles
                .iter()
                .chain(&mine.roles)
                .any(|r| r.ip == **ip)
        })
        .map(|ip| RoleIp::new(role_named(cfg, *ip), *ip))
        .collect();
    for r in &stray {
        let to = match table
            .owner_of(r.ip)
            .and_then(|o| o.mac.map(|m| (o.host.clone(), m)))
        {
            Some((host, mac)) => Redirect::Steer { host, mac },
            None => Redirect::Fence,
        };
        ops.push(Op::Release {
            role: r.clone(),
            to,
        });
    }
    // 2. Only the writer is writable.
    let demote = !has_writer && (lost_writer || facts.read_only != Some(true));
    if demote {
        ops.push(Op::DenyWrites);
    }
    // 3. ADMIN_OFFLINE stops replication, leaving it starts it.
    if facts.dialect.is_some() {
        let was = applied.host_state == HostState::AdminOffline;
        let is = mine.state == HostState::AdminOffline;
        if was != is {
            ops.push(Op::Replication { start: was });
        }
    }
    // 3b. Semi-synchronous replication follows the role: the source side before a promotion
    //     makes the server writable (its first write already waits for an acknowledgement).
    if let Some(now) = facts.semisync {
        let want = wanted_semisync(cfg, me, has_writer);
        if want != now {
            // Only turning the replica side on needs the IO thread to reconnect. Never the
            // other way: a candidate's restarted IO thread (GTID mode) drops its relay log —
            // received transactions a dead writer can no longer send again.
            ops.push(Op::SemiSync {
                want,
                restart_io: want.replica && !now.replica,
            });
        }
    }
    // 4. Gains, then what is kept.
    if gained_writer {
        ops.push(Op::Promote {
            catch_up: table.catch_up.clone(),
        });
    }
    for r in &gained {
        ops.push(Op::Acquire {
            role: (*r).clone(),
            again: false,
        });
    }
    if has_writer && !gained_writer && facts.read_only == Some(true) {
        ops.push(Op::Promote {
            catch_up: table.catch_up.clone(),
        });
    }
    for r in mine.roles.iter().filter(|r| !gained.contains(r)) {
        if !facts.local.contains(&r.ip) || facts.unconfigured.contains(&r.ip) {
            ops.push(Op::Acquire {
                role: r.clone(),
                again: true,
            });
        }
    }
    // 5. Hand-overs, clients, addresses.
    if !handover.is_empty() {
        ops.push(Op::HandOver(handover));
    }
    if demote && lost_writer {
        ops.push(Op::KillClients);
    }
    ops.extend(
        lost.iter()
            .chain(&stray.iter().collect::<Vec<_>>())
            .map(|r| Op::RemoveAddress(r.ip)),
    );
    // 5b. The writer acknowledges as nobody's semi-sync replica (an IO thread negotiated
    //     while it was the standby keeps acknowledging after 3b switched the side off).
    //     (`wanted_semisync` never wants the writer's replica side on.)
    if has_writer && facts.acknowledging && facts.semisync.is_some() {
        ops.push(Op::StopAcknowledging);
    }
    // 6. Replication follows the active master — after every VIP is settled: a slow or
    //    broken replica never holds a VIP (repointing waits for its SQL thread, and may fail).
    if let (Some(source), Some(_)) = (cfg.slave_source(table), facts.dialect) {
        let slave = cfg.host(me).is_some_and(|h| h.mode == HostMode::Slave);
        if slave && source != me && mine.state != HostState::AdminOffline {
            ops.push(Op::Repoint {
                master: source.into(),
            });
        }
    }
    // 7. Persist.
    ops.push(Op::Persist(AgentState {
        epoch: table.epoch,
        roles: mine.roles.clone(),
        active_master: table.active_master.clone(),
        host_state: mine.state,
        lease_fenced: false,
    }));
    Ok(ops)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "plan_semisync_tests.rs"]
mod semisync_tests;
