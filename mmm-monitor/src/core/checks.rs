//! Check results over time: MMM's trap semantics, with the fast path.
//!
//! - OK counts at once; UNKNOWN is only logged; ERROR counts once it has repeated for at least
//!   `trap_period` — or at once when a second observer also reports it (the host's agent saw
//!   its mysqld die, or another host's agent cannot reach it): the fast path;
//! - the first result after start-up sets the status directly (MMM's synchronous first round).

use super::{Log, Time};
use mmm_common::config::CheckKind;
use std::time::Duration;

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    Unknown,
}

/// One raw result from a checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    /// MMM's message, e.g. `ERROR: Connect error (host = ...)! ...` or `OK: Backlog is null`.
    pub message: String,
}

impl Report {
    pub fn ok(msg: &str) -> Self {
        Report {
            outcome: Outcome::Ok,
            message: msg.into(),
        }
    }
    pub fn error(msg: &str) -> Self {
        Report {
            outcome: Outcome::Error,
            message: msg.into(),
        }
    }
    pub fn unknown(msg: &str) -> Self {
        Report {
            outcome: Outcome::Unknown,
            message: msg.into(),
        }
    }
}

/// The effective status of one check on one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `None` until the first result.
    pub effective: Option<Outcome>,
    pub message: String,
    pub last_change: Time,
    failing_since: Option<Time>,
    last_raw: Option<Outcome>,
    /// The message of the last failing result (while a failure is pending).
    last_error: String,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            effective: None,
            message: String::new(),
            last_change: Time::ZERO,
            failing_since: None,
            last_raw: None,
            last_error: String::new(),
        }
    }
}

impl Status {
    /// Whether the check counts as passing.
    pub fn ok(&self) -> bool {
        self.effective == Some(Outcome::Ok)
    }

    /// Passing with no failure pending: the last result was OK too. Recovery decisions use
    /// this, not [`Status::ok`]: a check failing for less than its trap period still counts as
    /// OK for keeping a host, but must not bring one back.
    pub fn healthy(&self) -> bool {
        self.ok() && self.failing_since.is_none()
    }

    /// Whether the check counts as failing.
    pub fn failed(&self) -> bool {
        self.effective == Some(Outcome::Error)
    }

    /// A second observer (`by`) reports the failure this check sees but still holds back for
    /// its trap period: the last failing result is applied again, confirmed, so it counts now.
    /// Returns log lines (none when nothing is pending).
    pub fn confirm_pending(
        &mut self,
        host: &str,
        check: CheckKind,
        by: &str,
        trap: Duration,
        now: Time,
    ) -> Vec<Log> {
        if !self.failing() || self.failed() {
            return vec![];
        }
        let last = Report::error(&self.last_error);
        self.apply(host, check, &last, trap, Some(by), now)
    }

    /// Since when the check has been failing (`None`: its last result was not a failure).
    pub fn failing_since(&self) -> Option<Time> {
        self.failing_since
    }

    /// A failure still held back starts its trap period again at `now` (the monitor's own
    /// network was down: that time must not count against the host).
    pub fn restart_trap(&mut self, now: Time) {
        if self.failing_since.is_some() && !self.failed() {
            self.failing_since = Some(now);
        }
    }

    /// Whether a failure is pending or counted (the last result failed).
    pub fn failing(&self) -> bool {
        self.last_raw == Some(Outcome::Error)
    }

    /// Whether the last raw result was a success.
    pub fn answering(&self) -> bool {
        self.last_raw == Some(Outcome::Ok)
    }

    /// Applies a raw result at `now`. `confirmed` names another observer that already reports
    /// the failure (the host's agent, a peer's agent), so the trap period is skipped. Returns
    /// log lines.
    pub fn apply(
        &mut self,
        host: &str,
        check: CheckKind,
        r: &Report,
        trap: Duration,
        confirmed: Option<&str>,
        now: Time,
    ) -> Vec<Log> {
        let mut logs = Vec::new();
        let name = check.name();
        let first = self.effective.is_none();
        match r.outcome {
            Outcome::Ok => {
                self.failing_since = None;
                if self.effective != Some(Outcome::Ok) {
                    if !first {
                        logs.push(Log::info(format!("Check '{name}' on '{host}' is ok!")));
                    }
                    self.effective = Some(Outcome::Ok);
                    self.last_change = now;
                }
                self.message = r.message.clone();
            }
            Outcome::Unknown => {
                if self.last_raw != Some(Outcome::Unknown) {
                    logs.push(Log::warn(format!(
                        "Check '{name}' on '{host}' is in unknown state! Message: {}",
                        r.message
                    )));
                }
                if first {
                    self.effective = Some(Outcome::Unknown);
                    self.last_change = now;
                    self.message = r.message.clone();
                }
            }
            Outcome::Error => {
                self.last_error = r.message.clone();
                let since = *self.failing_since.get_or_insert(now);
                let failed_for = now.saturating_sub(since);
                if self.effective != Some(Outcome::Error)
                    && (first || confirmed.is_some() || failed_for >= trap)
                {
                    self.effective = Some(Outcome::Error);
                    self.last_change = now;
                    let how = match confirmed {
                        Some(by) if failed_for < trap => format!("has failed (confirmed by {by})"),
                        _ => format!("has failed for {} seconds", failed_for.as_secs()),
                    };
                    if !first || confirmed.is_some() {
                        logs.push(Log::error(format!(
                            "Check '{name}' on '{host}' {how}! Message: {}",
                            r.message
                        )));
                    }
                }
                if self.effective == Some(Outcome::Error) {
                    self.message = r.message.clone();
                }
            }
        }
        self.last_raw = Some(r.outcome);
        logs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAP: Duration = Duration::from_secs(10);

    fn t(s: u64) -> Time {
        Duration::from_secs(s)
    }

    #[test]
    fn first_result_counts_at_once() {
        let mut s = Status::default();
        assert!(s
            .apply(
                "db1",
                CheckKind::Mysql,
                &Report::error("ERROR: x"),
                TRAP,
                None,
                t(0)
            )
            .is_empty());
        assert!(s.failed());
    }

    #[test]
    fn errors_need_the_trap_period_oks_count_at_once() {
        let mut s = Status::default();
        s.apply("db1", CheckKind::Mysql, &Report::ok("OK"), TRAP, None, t(0));
        for sec in [1, 5, 10] {
            s.apply(
                "db1",
                CheckKind::Mysql,
                &Report::error("ERROR: Timeout"),
                TRAP,
                None,
                t(sec),
            );
            assert!(s.ok(), "failed after {} s only", sec - 1);
        }
        let logs = s.apply(
            "db1",
            CheckKind::Mysql,
            &Report::error("ERROR: Timeout"),
            TRAP,
            None,
            t(11),
        );
        assert!(s.failed());
        assert_eq!(
            logs[0].message,
            "Check 'mysql' on 'db1' has failed for 10 seconds! Message: ERROR: Timeout"
        );
        assert_eq!(s.last_change, t(11));
        let logs = s.apply(
            "db1",
            CheckKind::Mysql,
            &Report::ok("OK"),
            TRAP,
            None,
            t(12),
        );
        assert!(s.ok());
        assert_eq!(logs[0].message, "Check 'mysql' on 'db1' is ok!");
    }

    #[test]
    fn an_ok_in_between_restarts_the_trap() {
        let mut s = Status::default();
        s.apply("h", CheckKind::Ping, &Report::ok("OK"), TRAP, None, t(0));
        s.apply("h", CheckKind::Ping, &Report::error("E"), TRAP, None, t(1));
        s.apply("h", CheckKind::Ping, &Report::ok("OK"), TRAP, None, t(8));
        s.apply("h", CheckKind::Ping, &Report::error("E"), TRAP, None, t(9));
        s.apply("h", CheckKind::Ping, &Report::error("E"), TRAP, None, t(15));
        assert!(s.ok());
        s.apply("h", CheckKind::Ping, &Report::error("E"), TRAP, None, t(19));
        assert!(s.failed());
    }

    #[test]
    fn unknown_is_only_logged_once_per_change() {
        let mut s = Status::default();
        s.apply(
            "h",
            CheckKind::RepThreads,
            &Report::ok("OK"),
            TRAP,
            None,
            t(0),
        );
        let l = s.apply(
            "h",
            CheckKind::RepThreads,
            &Report::unknown("UNKNOWN: Connect error"),
            TRAP,
            None,
            t(1),
        );
        assert_eq!(
            l[0].message,
            "Check 'rep_threads' on 'h' is in unknown state! Message: UNKNOWN: Connect error"
        );
        assert!(s
            .apply(
                "h",
                CheckKind::RepThreads,
                &Report::unknown("UNKNOWN: x"),
                TRAP,
                None,
                t(2)
            )
            .is_empty());
        assert!(s.ok(), "unknown never changes the status");
    }

    #[test]
    fn a_confirmed_error_skips_the_trap() {
        let mut s = Status::default();
        s.apply("h", CheckKind::Mysql, &Report::ok("OK"), TRAP, None, t(0));
        let l = s.apply(
            "h",
            CheckKind::Mysql,
            &Report::error("ERROR: Connect error"),
            TRAP,
            Some("the host\'s agent"),
            t(1),
        );
        assert!(s.failed());
        assert!(
            l[0].message.contains("confirmed by the host's agent"),
            "{:?}",
            l
        );
    }
}
