//! The writer lease (ARCHITECTURE.md "The writer lease"): the writer's agent keeps write
//! permission only while it has heard from the monitor, or reached a majority of its peers
//! (the hosts it probes, `Config::peers_of`; itself counted), within `writer_lease`. When
//! neither happened for that long it fences itself — XDP FENCE on the writer VIP,
//! `read_only`, client sessions killed, the `/32` removed — and drops the writer role from its
//! applied state, so that it stays fenced (also across an agent restart) until a current role
//! table gives it the role again.
//!
//! [`WriterLease::step`] is the pure decision, `(state, input, now) → action`; [`run`] feeds it
//! the health watcher's peer reachability, the monitor's calls and the applied state, and
//! asks the apply worker for the fence.
//!
//! Why a majority of hosts and not the monitor alone: a dead monitor must never stop writes
//! (Patroni's leader lease renewed through one DCS does exactly that); a writer that still
//! reaches most of the cluster is where the clients are.

use super::{health::Health, queue::ApplyQueue, state::AgentState};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Time since the agent started (simulated in tests).
pub type Time = Duration;

/// What the lease hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Whether this host holds the writer role in its applied state (after every apply).
    Writer(bool),
    /// The monitor called at `Time` with the epoch this agent applied.
    MonitorHeard(Time),
    /// Of `others` other hosts, `reachable` answer this agent's pings.
    Peers { reachable: usize, others: usize },
    /// Time passes.
    Tick,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The lease ran out `silent_for` after its last renewal: fence this host now.
    Fence { silent_for: Duration },
}

pub use mmm_common::roles::majority;

/// The lease's state.
#[derive(Clone, Debug)]
pub struct WriterLease {
    /// `writer_lease`; zero: off.
    lease: Duration,
    writer: bool,
    /// Whether a majority answered at the last peer report (renews at every input).
    majority: bool,
    renewed_at: Time,
    /// A fence was asked for since this host last became the writer.
    fenced: bool,
}

impl WriterLease {
    /// A lease of `lease` (zero: off), renewed at `now`, for a host that is not the writer.
    pub fn new(lease: Duration, now: Time) -> WriterLease {
        WriterLease {
            lease,
            writer: false,
            majority: true,
            renewed_at: now,
            fenced: false,
        }
    }

    /// When the lease runs out unless renewed (`None`: not the writer, or the lease is off).
    pub fn expires_at(&self) -> Option<Time> {
        (self.writer && !self.lease.is_zero()).then_some(self.renewed_at + self.lease)
    }

    /// Takes `input` at `now`; returns the fence when the lease has just run out.
    pub fn step(&mut self, input: Input, now: Time) -> Option<Action> {
        match input {
            Input::Writer(w) => {
                if w && !self.writer {
                    // The table that made it the writer came from the monitor just now.
                    self.renewed_at = self.renewed_at.max(now);
                    self.fenced = false;
                }
                self.writer = w;
            }
            Input::MonitorHeard(at) => self.renewed_at = self.renewed_at.max(at.min(now)),
            Input::Peers { reachable, others } => self.majority = majority(reachable, others),
            Input::Tick => {}
        }
        if self.majority {
            self.renewed_at = self.renewed_at.max(now);
        }
        let expires = self.expires_at()?;
        if now < expires || self.fenced {
            return None;
        }
        self.fenced = true;
        Some(Action::Fence {
            silent_for: now.saturating_sub(self.renewed_at),
        })
    }
}

/// How often the lease is judged (a fifth of the shortest lease accepted).
pub const TICK: Duration = Duration::from_millis(100);

/// Runs the lease for ever: judges it every [`TICK`] from the peers in `health`, the last
/// monitor call in `heard` and the writer role in `applied`; a run-out lease asks `queue` for
/// the fence.
pub async fn run(
    lease: Duration,
    others: usize,
    writer_role: String,
    mut health: watch::Receiver<Health>,
    applied: watch::Receiver<AgentState>,
    heard: watch::Receiver<Option<Instant>>,
    queue: ApplyQueue,
) {
    if lease.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut l = WriterLease::new(lease, Duration::ZERO);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = health.changed() => if r.is_err() { return },
        }
        let now = start.elapsed();
        let writer = applied.borrow().roles.iter().any(|r| r.role == writer_role);
        let down = health.borrow().peers_down.len();
        let inputs = [
            Input::Writer(writer),
            Input::Peers {
                reachable: others.saturating_sub(down),
                others,
            },
        ];
        let mut fence = None;
        for i in inputs {
            fence = fence.or(l.step(i, now));
        }
        if let Some(at) = *heard.borrow() {
            fence = fence.or(l.step(Input::MonitorHeard(at.duration_since(start)), now));
        }
        if let Some(Action::Fence { silent_for }) = fence {
            tracing::error!(
                "writer lease of {lease:?} ran out: no word from the monitor and no majority of the hosts for {silent_for:?}; fencing this host (the writer VIP, read_only, client sessions)"
            );
            queue.fence();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    fn cut_off() -> Input {
        Input::Peers {
            reachable: 0,
            others: 2,
        }
    }

    #[test]
    fn majorities_count_this_host() {
        assert!(majority(1, 2));
        assert!(!majority(0, 2));
        assert!(
            majority(1, 1),
            "two masters alone: each is half plus itself"
        );
        assert!(!majority(0, 1));
        assert!(majority(2, 3) && !majority(1, 3));
        assert!(majority(2, 4) && !majority(1, 4));
        assert!(majority(9, 2), "more reachable than configured is capped");
    }

    #[test]
    fn an_isolated_writer_fences_once_when_the_lease_runs_out() {
        let mut l = WriterLease::new(LEASE, ms(0));
        assert_eq!(l.step(Input::Writer(true), ms(0)), None);
        assert_eq!(l.step(cut_off(), ms(500)), None);
        assert_eq!(
            l.expires_at(),
            Some(ms(2000)),
            "renewed by the last majority"
        );
        assert_eq!(l.step(Input::Tick, ms(1999)), None);
        assert_eq!(
            l.step(Input::Tick, ms(2000)),
            Some(Action::Fence {
                silent_for: ms(2000)
            })
        );
        assert_eq!(l.step(Input::Tick, ms(3000)), None, "asked once");
        // A new table giving it the role again starts a new lease.
        l.step(Input::Writer(false), ms(3100));
        assert_eq!(l.step(Input::Writer(true), ms(3200)), None);
        assert_eq!(l.expires_at(), Some(ms(5200)));
    }

    #[test]
    fn the_monitor_alone_or_a_majority_alone_keeps_the_lease() {
        let mut l = WriterLease::new(LEASE, ms(0));
        l.step(Input::Writer(true), ms(0));
        l.step(cut_off(), ms(0));
        for t in (0..10_000).step_by(1000) {
            assert_eq!(l.step(Input::MonitorHeard(ms(t)), ms(t)), None, "{t}");
        }
        // The monitor dies; the peers answer again: writes go on.
        let back = Input::Peers {
            reachable: 1,
            others: 2,
        };
        assert_eq!(l.step(back, ms(10_500)), None);
        for t in (10_500..60_000).step_by(100) {
            assert_eq!(l.step(Input::Tick, ms(t)), None, "{t}");
        }
    }

    #[test]
    fn readers_and_a_lease_of_zero_never_fence() {
        let mut reader = WriterLease::new(LEASE, ms(0));
        reader.step(cut_off(), ms(0));
        assert_eq!(reader.step(Input::Tick, ms(60_000)), None);
        let mut off = WriterLease::new(Duration::ZERO, ms(0));
        off.step(Input::Writer(true), ms(0));
        off.step(cut_off(), ms(0));
        assert_eq!(off.step(Input::Tick, ms(60_000)), None);
    }

    #[test]
    fn a_monitor_call_is_never_taken_from_the_future() {
        let mut l = WriterLease::new(LEASE, ms(0));
        l.step(Input::Writer(true), ms(0));
        l.step(cut_off(), ms(0));
        l.step(Input::MonitorHeard(ms(99_000)), ms(1000));
        assert_eq!(l.expires_at(), Some(ms(3000)));
    }
}
