//! The leader's side of its etcd lease, as a clock (pure; `Instant`s are given): a leader acts
//! only while `now < sent + TTL − margin` for the latest keepalive it *sent* whose answer
//! granted `TTL`. etcd expires the lease no sooner than `received + TTL ≥ sent + TTL` (its
//! own clock; a new etcd leader even extends leases), and only then may another monitor win
//! the election; so this monitor has stopped pushing and killing before another can start
//! (ARCHITECTURE.md "Monitor high availability", the timing argument).

use std::time::{Duration, Instant};

/// Taken off the lease before the deadline: the driver's 100 ms tick (it checks the clock
/// before each push and kill, and the check and the send are one step), scheduling, and the
/// rate difference of two monotonic clocks over a lease (≤ 0.1 % of 60 s = 60 ms).
pub const LEASE_SAFETY: Duration = Duration::from_millis(250);

/// The leader's lease deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaderLease {
    until: Option<Instant>,
}

impl LeaderLease {
    /// A keepalive sent at `sent` was answered with `granted` TTL (a TTL of 0: the lease is
    /// gone). The deadline never moves back while the lease lives.
    pub fn renewed(&mut self, sent: Instant, granted: Duration) {
        if granted.is_zero() {
            self.until = None;
            return;
        }
        let until = (sent + granted).checked_sub(LEASE_SAFETY).unwrap_or(sent);
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }

    /// The lease is lost (keepalive failed, deposed, etcd said so).
    pub fn lose(&mut self) {
        self.until = None;
    }

    /// Whether the leader may act at `now`.
    pub fn acting(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// How long it may still act at `now` (zero: not at all).
    pub fn left(&self, now: Instant) -> Duration {
        self.until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}

/// The lease shared by the etcd task (renews) and the driver (checks before acting).
#[derive(Debug, Default)]
pub struct SharedLease(std::sync::Mutex<LeaderLease>);

impl SharedLease {
    fn with<T>(&self, f: impl FnOnce(&mut LeaderLease) -> T) -> T {
        match self.0.lock() {
            Ok(mut l) => f(&mut l),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
    pub fn renewed(&self, sent: Instant, granted: Duration) {
        self.with(|l| l.renewed(sent, granted))
    }
    pub fn lose(&self) {
        self.with(|l| l.lose())
    }
    pub fn acting(&self) -> bool {
        self.with(|l| l.acting(Instant::now()))
    }
    pub fn left(&self) -> Duration {
        self.with(|l| l.left(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_leader_acts_until_the_ttl_of_its_last_answered_keepalive_minus_the_safety() {
        let t0 = Instant::now();
        let mut l = LeaderLease::default();
        assert!(!l.acting(t0), "no lease: no acting");
        l.renewed(t0, 2 * S);
        assert!(l.acting(t0 + S));
        assert!(!l.acting(t0 + 2 * S - LEASE_SAFETY));
        // A later keepalive moves the deadline; an answer to an older one never moves it back.
        l.renewed(t0 + S, 2 * S);
        assert!(l.acting(t0 + 2 * S));
        l.renewed(t0, 2 * S);
        assert!(l.acting(t0 + 2 * S));
        assert_eq!(l.left(t0 + 3 * S), Duration::ZERO);
        // etcd answering TTL 0 means the lease is gone.
        l.renewed(t0 + S, Duration::ZERO);
        assert!(!l.acting(t0 + S));
    }

    #[test]
    fn a_lost_lease_stops_acting_at_once() {
        let t0 = Instant::now();
        let s = SharedLease::default();
        s.renewed(t0, 10 * S);
        assert!(s.acting());
        s.lose();
        assert!(!s.acting());
        assert_eq!(s.left(), Duration::ZERO);
    }
}
