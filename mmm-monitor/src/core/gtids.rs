//! What the agents' GTID reports prove (#13 items 4 and 5), kept by the core:
//! - **Errant transactions**: a host other than the writer whose GTID state holds transactions
//!   the writer never had (committed on it while it was the writer and never shipped, or by an
//!   account that bypasses `read_only`) is kept out of rotation at once (REPLICATION_FAIL, its
//!   `rep_threads` check failing with the GTIDs named), instead of rejoining and diverging. Only
//!   a writer report taken while it was writable counts (a writer is writable only after it
//!   applied everything its promotion waited for), and only transactions first committed by
//!   others than the writer (a replica may hold the writer's newest before the writer's report).
//! - **The lag bound** (Patroni's `maximum_lag_on_failover`): the active master's recent GTID
//!   states are kept with the time each report arrived. A candidate whose latest report lacked
//!   transactions the writer had reported more than `max_lag_on_failover` before is behind by
//!   at least that much, whatever the two polls' phase: it is not promoted (`promotion.rs`).

use super::{Cluster, Log, Time};
use mmm_common::gtid::GtidSet;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How many of the writer's reports are kept (one a second: ten minutes at most).
const HISTORY: usize = 600;

/// What the core keeps of GTIDs.
#[derive(Clone, Debug, Default)]
pub struct GtidWatch {
    /// The active master's name and its recent GTID states, oldest first.
    writer: Option<(String, VecDeque<(Time, GtidSet)>)>,
    /// Hosts holding transactions the writer never had → the GTIDs named.
    pub errant: BTreeMap<String, String>,
    /// `max_lag_on_failover`.
    pub max_lag: Duration,
}

impl GtidWatch {
    /// Nothing known yet; `max_lag` is `max_lag_on_failover`.
    pub fn new(max_lag: Duration) -> GtidWatch {
        GtidWatch {
            max_lag,
            ..Default::default()
        }
    }
}

impl Cluster {
    /// Host `i`'s status arrived at `now`: the writer's history and the errant verdicts are
    /// brought up to date.
    pub(super) fn note_gtids(&mut self, i: usize, now: Time) {
        let name = self.hosts[i].name.clone();
        if self.active_master() == Some(name.as_str()) {
            if let Some(state) = self.hosts[i].agent.gtid_state.clone() {
                let keep = self.gtids.max_lag * 2 + Duration::from_secs(10);
                let hist = match &mut self.gtids.writer {
                    Some((w, h)) if *w == name => h,
                    slot => &mut slot.insert((name.clone(), VecDeque::new())).1,
                };
                hist.push_back((now, state));
                while hist.len() > HISTORY || hist.front().is_some_and(|(t, _)| *t + keep < now) {
                    hist.pop_front();
                }
            }
            for j in 0..self.hosts.len() {
                self.judge_errant(j);
            }
        } else {
            self.judge_errant(i);
        }
    }

    /// The transactions host `i` holds that the writer never had, named (empty: none), as
    /// far as the GTID reports prove; `None` when they cannot tell (no writable writer, a
    /// state unknown, the two servers of different families).
    fn errant_gtids(&self, i: usize) -> Option<Vec<String>> {
        let w = self.idx(self.active_master()?)?;
        let (h, wv) = (&self.hosts[i], &self.hosts[w].agent);
        if i == w {
            return Some(vec![]);
        }
        if wv.writable != Some(true) || wv.gtid_origin.trim().is_empty() {
            return None;
        }
        h.agent
            .gtid_state
            .as_ref()?
            .errant_against(wv.gtid_state.as_ref()?, &wv.gtid_origin)
    }

    /// Brings host `i`'s errant verdict up to date; a verdict stands until the reports prove
    /// the host clean.
    fn judge_errant(&mut self, i: usize) {
        let name = self.hosts[i].name.clone();
        match self.errant_gtids(i) {
            None => {}
            Some(named) if named.is_empty() => {
                self.gtids.errant.remove(&name);
            }
            Some(named) => {
                let more = match named.len() {
                    n if n > 3 => format!(" and {} more", n - 3),
                    _ => String::new(),
                };
                let g = format!("{}{more}", named[..named.len().min(3)].join(", "));
                if self.gtids.errant.get(&name) != Some(&g) {
                    self.log(Log::error(format!(
                        "Host '{name}' holds transactions the writer never had (errant transactions: {g}): it stays out of rotation; rebuild it from the writer (README, \"Errant transactions\")"
                    )));
                }
                self.gtids.errant.insert(name, g);
            }
        }
    }

    /// Host `i` holds transactions its source or the writer never had: its replication
    /// error says so, or the GTID reports prove it.
    pub(super) fn is_errant(&self, i: usize) -> bool {
        self.hosts[i].agent.errant || self.gtids.errant.contains_key(&self.hosts[i].name)
    }

    /// Why candidate `i` is too far behind the lost writer to be promoted (`None`: it is not,
    /// or the reports cannot tell).
    pub(super) fn lag_veto(&self, i: usize) -> Option<String> {
        let (writer, hist) = self.gtids.writer.as_ref()?;
        let h = &self.hosts[i];
        if *writer == h.name {
            return None;
        }
        let at = h.last_contact?;
        let have = match (&h.agent.gtid_received, &h.agent.gtid_state) {
            (Some(r), Some(s)) => r.union(s)?,
            (Some(g), None) | (None, Some(g)) => g.clone(),
            (None, None) => return None,
        };
        // The oldest writer report, taken no later than the candidate's, that holds
        // something the candidate had not received.
        let (first, _) = hist
            .iter()
            .take_while(|(t, _)| *t <= at)
            .find(|(_, w)| w.missing_from(&have).is_some_and(|n| n > 0))?;
        let lag = at.saturating_sub(*first);
        if lag <= self.gtids.max_lag {
            return None;
        }
        let missing = hist.back()?.1.missing_from(&have).unwrap_or(0);
        Some(format!(
            "its replication lacked {missing} transaction(s) of the writer's last report, some reported by the writer {:.1} s before (max_lag_on_failover {:?})",
            lag.as_secs_f64(),
            self.gtids.max_lag
        ))
    }
}
