//! The driver's half of monitor high availability (`<etcd>`): what it does when the etcd task
//! reports an election, a deposition or the leader's stored state, and the leader's store
//! before every push. A leader stores each changed state in etcd (a transaction guarded by
//! its office) *before* any table of that state reaches an agent: every epoch an agent ever
//! saw is in etcd, so a new leader — which starts above the stored epoch — is above them all.

use super::Driver;
use crate::core::{Event, Input};
use crate::daemon::{etcd::HaEvent, snapshot};

impl Driver {
    /// Handles what the etcd task saw.
    pub(super) async fn on_ha(&mut self, e: HaEvent) {
        let now = self.start.elapsed();
        let Some(ha) = self.ha.as_mut() else { return };
        match e {
            HaEvent::Elected { office, stored } => {
                let from = stored.as_ref().map_or(0, |s| s.epoch);
                if let Some(s) = &stored {
                    if let Err(e) = self.cluster.adopt(s, now, self.start_wall_ms) {
                        tracing::error!("the state stored in etcd was not taken over: {e}");
                    }
                }
                self.cluster.take_office(now, stored.is_some());
                ha.office = Some(*office);
                ha.stored = stored;
                ha.leader = Some(ha.parts.me.clone());
                ha.etcd_error = None;
                tracing::warn!(
                    "This monitor ({}) leads now; taking over at epoch {from}",
                    ha.parts.me.name
                );
                self.leader_changed();
                self.step(Input::Tick, None).await;
            }
            HaEvent::Deposed { why } => {
                if ha.office.is_some() {
                    tracing::error!("This monitor ({}) no longer leads: {why}", ha.parts.me.name);
                    self.stand_down();
                }
            }
            HaEvent::Follow { leader, stored } => {
                if ha.office.is_some() {
                    return;
                }
                let changed = ha.leader != leader;
                ha.leader = leader;
                ha.etcd_error = None;
                if let Some(s) = stored.filter(|s| ha.stored.as_ref() != Some(s)) {
                    match self.cluster.adopt(&s, now, self.start_wall_ms) {
                        Ok(()) => ha.stored = Some(s),
                        Err(e) => tracing::error!("the leader's state in etcd: {e}; not adopted"),
                    }
                }
                if changed {
                    self.leader_changed();
                }
            }
            HaEvent::Reach(why) => {
                if let (Some(w), None) = (&why, &ha.etcd_error) {
                    tracing::error!("etcd does not answer: {w}");
                }
                ha.etcd_error = why;
            }
        }
    }

    /// Gives the office up: the core stops deciding, the pushers stop (the status polls then
    /// carry epoch 0, which renews no writer's lease), the etcd task starts a new session.
    fn stand_down(&mut self) {
        let Some(ha) = self.ha.as_mut() else { return };
        ha.office = None;
        ha.leader = None;
        ha.parts.lease.lose();
        let _ = ha.parts.resign.try_send(());
        self.cluster.stand_by();
        self.pushers.latest.send_replace(None);
        self.leader_changed();
    }

    fn leader_changed(&self) {
        let leader = self
            .ha
            .as_ref()
            .and_then(|h| h.leader.as_ref().map(|m| m.describe()));
        let _ = self.events.send(snapshot::Published {
            at_unix_ms: snapshot::unix_ms(),
            epoch: self.cluster.epoch,
            event: Event::LeaderChanged { leader },
        });
    }

    /// Whether this monitor may act now, after storing the state if it changed: always
    /// without `<etcd>`; with it, only as the leader with a current lease whose store
    /// succeeded (a failed store gives the office up).
    pub(super) async fn store_shared(&mut self) -> bool {
        let Some(ha) = self.ha.as_mut() else {
            return true;
        };
        let Some(office) = ha.office.clone() else {
            return false;
        };
        if !ha.parts.lease.acting() {
            tracing::error!(
                "This monitor ({}) stops acting: its leader lease ran out",
                ha.parts.me.name
            );
            self.stand_down();
            return false;
        }
        let s = self.cluster.shared(self.start_wall_ms);
        if ha.stored.as_ref() == Some(&s) {
            return true;
        }
        match office.store(&s).await {
            Ok(()) => {
                ha.stored = Some(s);
                // The store took time: the lease must still hold for what follows.
                ha.parts.lease.acting()
            }
            Err(e) => {
                tracing::error!("storing the state in etcd failed ({e}): giving the office up");
                self.stand_down();
                false
            }
        }
    }
}
