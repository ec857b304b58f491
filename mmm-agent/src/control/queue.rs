//! At most one role table waits to be applied (a hostile or buggy caller cannot queue work
//! without bound): a newer table supersedes the waiting one, whose caller is told so; an older
//! one is turned away at once. One worker task applies the tables one at a time, each to the
//! end even when its caller has gone (stopping half-way would leave the server, the data plane
//! and the persisted state disagreeing).

use super::apply::{moved_again, Applier, ApplyError, Step};
use super::{fence::GUARD_PERIOD, health::Health, state::AgentState};
use mmm_common::roles::RoleTable;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};
use tokio::sync::{oneshot, watch, Notify};

/// What the caller of a table learns.
pub type Outcome = Result<Vec<Step>, ApplyError>;

/// A table waiting, and its caller.
struct Pending {
    table: RoleTable,
    reply: oneshot::Sender<Outcome>,
}

/// The queue's one slot, shared with the applier, which only reads the waiting table
/// (`Applier::newer`).
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Option<Pending>>>);

impl Slot {
    /// [`moved_again`] against the table waiting now, read in place.
    pub fn moved_again(&self, current: &RoleTable, ip: std::net::Ipv4Addr) -> Option<u64> {
        let slot = self.0.lock().ok()?;
        moved_again(current, slot.as_ref().map(|p| &p.table), ip)
    }
}

/// The one-slot queue in front of the worker.
#[derive(Clone, Default)]
pub struct ApplyQueue {
    slot: Slot,
    wake: Arc<Notify>,
    /// The writer lease ran out: fence before anything else.
    fence: Arc<AtomicBool>,
}

impl ApplyQueue {
    /// Queues `table`; the receiver gets its outcome. A waiting table with a lower or equal
    /// epoch is superseded (its caller gets [`ApplyError::Superseded`]); a waiting table with
    /// a higher epoch turns this one away at once.
    pub fn submit(&self, table: RoleTable) -> oneshot::Receiver<Outcome> {
        let (reply, rx) = oneshot::channel();
        let Ok(mut slot) = self.slot.0.lock() else {
            let _ = reply.send(Err(ApplyError::Superseded { by: table.epoch }));
            return rx;
        };
        match slot.take() {
            Some(waiting) if waiting.table.epoch > table.epoch => {
                let by = waiting.table.epoch;
                *slot = Some(waiting);
                let _ = reply.send(Err(ApplyError::Superseded { by }));
                return rx;
            }
            Some(waiting) => {
                let _ = waiting
                    .reply
                    .send(Err(ApplyError::Superseded { by: table.epoch }));
            }
            None => {}
        }
        *slot = Some(Pending { table, reply });
        drop(slot);
        self.wake.notify_one();
        rx
    }

    /// Asks the worker to fence this host (the writer lease ran out), before any table.
    pub fn fence(&self) {
        self.fence.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn take(&self) -> Option<Pending> {
        self.slot.0.lock().ok()?.take()
    }

    /// The worker, for ever: fences when the lease asks, applies what is queued one table at
    /// a time (publishing each applied state on `applied`), and between them guards that a
    /// non-writer's server is read-only — every [`GUARD_PERIOD`], and the moment `health`
    /// changes (a hung or restarted server answers again; a non-writer's last table is then
    /// applied again). One task does all three, so a promotion's writable step and the guard
    /// never race.
    pub async fn run(
        self,
        mut applier: Applier,
        applied: watch::Sender<AgentState>,
        mut health: watch::Receiver<Health>,
    ) {
        applier.newer = self.slot.clone();
        let mut guard = tokio::time::interval(GUARD_PERIOD);
        guard.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_up = false;
        loop {
            let mut back = false;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = guard.tick() => {}
                r = health.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let up = health.borrow_and_update().up;
                    back = up && !was_up;
                    was_up = up;
                    if !back {
                        continue;
                    }
                }
            }
            loop {
                // The lease's fence goes first — also between tables waiting one behind the
                // other (the monitor sends a newer table without waiting for the last).
                if self.fence.swap(false, Ordering::SeqCst) && applier.is_writer() {
                    applier.self_fence().await;
                    applied.send_replace(applier.state.clone());
                }
                let Some(p) = self.take() else { break };
                let r = applier.apply(&p.table).await;
                if r.is_ok() {
                    applied.send_replace(applier.state.clone());
                }
                let _ = p.reply.send(r);
            }
            if back && !applier.is_writer() {
                // The server answers again (restarted): what the last table set on a server
                // that was down — the semi-sync replica side, its source — is set now, not at
                // the next table (a standby left a plain replica had the writer fall back to
                // asynchronous replication). Never for the writer role: a restarted writer's
                // server stays read-only until a current table says otherwise.
                let last = applier.applying.clone();
                if let Some(t) = last.filter(|t| t.active_master.as_deref() != Some(&applier.me)) {
                    if applier.apply(&t).await.is_ok() {
                        applied.send_replace(applier.state.clone());
                    }
                }
            }
            applier.guard().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(epoch: u64) -> RoleTable {
        RoleTable {
            epoch,
            active_master: None,
            active_master_role: "writer".into(),
            catch_up: None,
            hosts: vec![],
        }
    }

    fn superseded_by(rx: &mut oneshot::Receiver<Outcome>) -> Option<u64> {
        match rx.try_recv() {
            Ok(Err(ApplyError::Superseded { by })) => Some(by),
            _ => None,
        }
    }

    #[test]
    fn one_table_waits_and_the_newest_wins() {
        let q = ApplyQueue::default();
        let mut first = q.submit(table(5));
        let mut second = q.submit(table(7));
        assert_eq!(superseded_by(&mut first), Some(7));
        let mut older = q.submit(table(6));
        assert_eq!(superseded_by(&mut older), Some(7));
        assert_eq!(superseded_by(&mut second), None, "still waiting");
        let waiting = || q.slot.0.lock().unwrap().as_ref().map(|p| p.table.epoch);
        assert_eq!(waiting(), Some(7), "the applier sees it waiting");
        assert_eq!(q.take().map(|p| p.table.epoch), Some(7));
        assert_eq!(waiting(), None);
        assert!(q.take().is_none());
    }
}
