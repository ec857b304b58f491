//! Never promote a master known to be behind (Patroni's `maximum_lag_on_failover` and
//! orchestrator's refusal to promote a lagging replica are the anchors). When the writer fails,
//! a candidate whose replication IO thread had already stopped receiving from it before the
//! failure (`STOP SLAVE`, `Connecting` for longer than [`IO_SLACK`]), whose agent had been
//! unable to reach the writer for longer than that (the masters cut off from each other: an IO
//! thread notices a silent cut only after `slave_net_timeout`), or that holds errant
//! transactions lacks acknowledged writes that no catch-up can fetch from a dead writer: it is
//! not promoted. Nor is anyone when the writer's agent last said it was committing without a
//! semi-sync acknowledgement (`semisync_fell_back`): what it acknowledged since may be on no
//! other host (a former writer that fenced itself and came back, say, lacks everything its
//! successor wrote while it was away) — unless that writer was alive to confirm its demotion
//! with its final GTID position and `catchup_strict` makes the new writer apply exactly that
//! before it becomes writable (its agent refuses the promotion, and the monitor pushes again,
//! until it has). The writer role stays unassigned, an ERROR says why and
//! since when, and `move_role writer <host>` lets an operator accept the loss. (Right after the
//! writer dies every replica's IO thread goes `Connecting`; only what was seen *before* the
//! failure counts.)

use super::{Action, Cluster, Event, Log, Time};
use std::time::Duration;

/// How long before the writer's failure a candidate's IO thread must last have been seen
/// receiving: one status poll (1 s), its call, and one check period of detection.
pub const IO_SLACK: Duration = Duration::from_millis(2500);

/// How recent the lost writer's agent's last status must be for its `semisync_fell_back` to
/// count (ten status polls).
pub const FELL_BACK_FRESH: Duration = Duration::from_secs(10);

/// How long before the writer's failure a candidate may already have been cut off from it: a
/// whole host that dies is lost to its peers' pings (0.4 s) before the monitor decides (its own
/// failing ping, up to 2 s more). A cut that old is not the writer's death.
pub const CUT_SLACK: Duration = Duration::from_secs(5);

impl Cluster {
    /// Records what the agent of host `i` said about its replication IO thread at `now`.
    pub(super) fn note_replica_io(&mut self, i: usize, running: Option<bool>, now: Time) {
        if running == Some(true) {
            self.hosts[i].io_seen_at = Some(now);
        }
    }

    /// Host `host`'s agent reported which hosts it reaches: whether it is cut off from the
    /// active master (by ping or by login), and since when.
    pub(super) fn note_cut_from_writer(&mut self, host: &str, now: Time) {
        let (Some(i), Some(am)) = (self.idx(host), self.active_master().map(str::to_string)) else {
            return;
        };
        let a = &self.hosts[i].agent;
        // By ping only: a login that fails is the writer's mysqld dying or hanging (the
        // candidate's replication has everything up to then), not a cut between them.
        let cut = a.peers_down.contains(&am);
        let h = &mut self.hosts[i];
        h.cut_from_writer_since = match (cut, h.cut_from_writer_since) {
            (true, since) => since.or(Some(now)),
            (false, _) => None,
        };
    }

    /// The writer was failed over at `now`: candidates are judged against the moment it
    /// failed — when its ping or mysql check began to fail (the decision may come much later:
    /// after the trap period, or when a new monitor takes office after an etcd outage), else
    /// `now` — until a new writer is chosen.
    pub(super) fn writer_lost(&mut self, i: usize, now: Time) {
        let since = self.failing_for(&self.hosts[i].name, now);
        self.writer_lost_at = Some(since.map_or(now, |d| now.saturating_sub(d)));
        // Only a recent word counts: an agent silent for longer says nothing about now.
        let h = &self.hosts[i];
        let fresh = h.last_contact.is_some_and(|t| t + FELL_BACK_FRESH >= now);
        self.writer_fell_back =
            (self.semisync && fresh && h.agent.semisync_fell_back).then(|| h.name.clone());
        self.veto_logged.clear();
        self.catch_up = None;
    }

    /// Why host `i` may not take the writer role after the writer was lost (`None`: it may).
    pub(super) fn promotion_veto(&self, i: usize) -> Option<String> {
        let lost = self.writer_lost_at?;
        // The lost writer itself holds everything it acknowledged, and so does a successor
        // that must apply its confirmed final position first.
        let final_position_applied = self.catchup_strict && self.catch_up.is_some();
        if !final_position_applied
            && self
                .writer_fell_back
                .as_ref()
                .is_some_and(|w| *w != self.hosts[i].name)
        {
            return Some(
                "the writer's agent last reported it committing without a semi-sync acknowledgement (fallen back to asynchronous replication), so no host is known to hold everything it acknowledged".into(),
            );
        }
        let h = &self.hosts[i];
        if self.is_errant(i) {
            return Some("it holds transactions the writer never had (errant transactions)".into());
        }
        if let Some(why) = self.lag_veto(i) {
            return Some(why);
        }
        if let Some(since) = h.cut_from_writer_since.filter(|t| *t + CUT_SLACK < lost) {
            return Some(format!(
                "its agent could not reach the writer for {:?} before the writer failed (its IO thread notices a silent cut only after slave_net_timeout)",
                lost.saturating_sub(since)
            ));
        }
        match h.io_seen_at {
            _ if h.agent.source_ip.is_none() && h.io_seen_at.is_none() => None,
            Some(t) if t + IO_SLACK >= lost => None,
            Some(t) => Some(format!(
                "its replication IO thread had stopped receiving {:?} before the writer failed",
                lost.saturating_sub(t)
            )),
            None => Some("its replication IO thread was never seen receiving".into()),
        }
    }

    /// The candidates of the writer role without a veto; the vetoes are logged once each.
    pub(super) fn promotable(&mut self, candidates: Vec<usize>) -> Vec<usize> {
        let mut ok = Vec::new();
        for i in candidates {
            match self.promotion_veto(i) {
                None => ok.push(i),
                Some(why) => {
                    let name = self.hosts[i].name.clone();
                    if self.veto_logged.insert(name.clone()) {
                        self.log(Log::error(format!(
                            "Host '{name}' is not promoted: {why}; it would lose acknowledged writes. The writer role stays unassigned; `move_role {} {name}` accepts the loss",
                            self.active_master_role
                        )));
                        self.out.push(Action::Event(Event::PromotionRefused {
                            host: name,
                            role: self.active_master_role.clone(),
                            reason: why,
                        }));
                    }
                }
            }
        }
        ok
    }
}
