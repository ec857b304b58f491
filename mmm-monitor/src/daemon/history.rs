//! The failover history: every decision of the monitor (state changes, role moves, mode
//! changes, admin commands) as one entry, with — when a role table was pushed for it — each
//! agent's timed steps. Entries are kept in memory (the last [`KEEP`]) and appended as JSON
//! lines to `<status_path>.history` (rotated to `.history.1` past [`MAX_BYTES`]), so they
//! survive a restart. An entry waits for the agents' answers at most [`WAIT_FOR_AGENTS`].

use crate::core::{Event, HostState};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Entries kept in memory (and read back at start).
pub const KEEP: usize = 1000;
/// Size past which the history file is rotated (bytes).
pub const MAX_BYTES: u64 = 10 << 20;
/// How long an entry waits for every agent's answer.
pub const WAIT_FOR_AGENTS: Duration = Duration::from_secs(60);

/// One step an agent took (as its report says).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRec {
    pub name: String,
    pub micros: u64,
    pub ok: bool,
    pub detail: String,
}

/// One agent's part in a decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentApply {
    pub host: String,
    pub ok: bool,
    /// Push to answer, in ms.
    pub took_ms: u64,
    pub steps: Vec<StepRec>,
    pub error: String,
    /// The server's applied GTID set after the apply (empty: not known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gtid_executed: String,
}

/// One decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at_unix_ms: i64,
    pub epoch: u64,
    /// failover, switchover, state, roles, mode, admin.
    pub kind: String,
    pub changes: Vec<String>,
    pub agents: Vec<AgentApply>,
    /// Decision to the last agent's answer, in ms (0: nothing pushed).
    pub applied_ms: u64,
}

/// What the gRPC service reads.
pub type Recent = Arc<Mutex<VecDeque<Entry>>>;

struct Open {
    entry: Entry,
    waiting: BTreeSet<String>,
    since: Instant,
}

/// The history being written.
pub struct History {
    path: Option<PathBuf>,
    recent: Recent,
    open: BTreeMap<u64, Open>,
}

/// A readable line for an event (`db1 ONLINE → HARD_OFFLINE (mysql: not OK)`).
pub fn describe(e: &Event) -> String {
    match e {
        Event::State {
            host,
            from,
            to,
            reason,
        } => {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" {reason}")
            };
            format!("{host} {from} → {to}{why}")
        }
        Event::RoleMoved { role, from, to } => match (from, to) {
            (Some(f), Some(t)) => format!("{role} {f} → {t}"),
            (Some(f), None) => format!("{role} removed from {f}"),
            (None, Some(t)) => format!("{role} on {t}"),
            (None, None) => format!("{role} on no host"),
        },
        Event::ModeChanged { from, to } => format!("mode {from} → {to}"),
        Event::PromotionRefused { host, role, reason } => {
            format!("{role} not given to {host}: {reason}")
        }
        Event::LeaderChanged { leader: Some(l) } => format!("monitor {l} leads"),
        Event::LeaderChanged { leader: None } => "no monitor leads".into(),
    }
}

/// The kind of a decision made of `events` (and an admin command, if any): a move of the
/// active-master role is a failover when its former holder left ONLINE in the same decision,
/// else a switchover.
pub fn kind(events: &[Event], writer_role: &str, admin: bool) -> String {
    let moved_to = events.iter().any(
        |e| matches!(e, Event::RoleMoved { role, to: Some(_), .. } if role.role == writer_role),
    );
    let left = events.iter().find_map(|e| match e {
        Event::RoleMoved {
            role,
            from: Some(f),
            ..
        } if role.role == writer_role => Some(f.clone()),
        _ => None,
    });
    let went_down = |h: &str| {
        events.iter().any(|e| matches!(e, Event::State { host, to, .. } if host == h && !matches!(to, HostState::Online | HostState::AdminOffline)))
    };
    let k = match (moved_to, left) {
        (true, Some(f)) if went_down(&f) => "failover",
        (true, _) if admin => "switchover",
        (true, Some(_)) => "switchover",
        _ if admin => "admin",
        _ if events.iter().any(|e| matches!(e, Event::State { .. })) => "state",
        _ if events
            .iter()
            .any(|e| matches!(e, Event::PromotionRefused { .. })) =>
        {
            "refused"
        }
        _ if events
            .iter()
            .any(|e| matches!(e, Event::ModeChanged { .. })) =>
        {
            "mode"
        }
        _ => "roles",
    };
    k.into()
}

impl History {
    /// A history kept in `path` (JSON lines; `None`: memory only); the last [`KEEP`] entries
    /// already there are read back.
    pub fn open(path: Option<PathBuf>) -> History {
        let mut recent = VecDeque::new();
        if let Some(p) = &path {
            for f in [p.with_extension("history.1"), p.clone()] {
                if let Ok(text) = std::fs::read_to_string(&f) {
                    for line in text.lines() {
                        if let Ok(e) = serde_json::from_str::<Entry>(line) {
                            recent.push_back(e);
                        }
                    }
                }
            }
            while recent.len() > KEEP {
                recent.pop_front();
            }
        }
        History {
            path,
            recent: Arc::new(Mutex::new(recent)),
            open: BTreeMap::new(),
        }
    }

    /// The entries, for the gRPC service.
    pub fn recent(&self) -> Recent {
        self.recent.clone()
    }

    /// A decision: `entry` (changes, kind, epoch) waits for the agents of `pushed_to` (empty:
    /// nothing was pushed, it is final now). It is visible at once; the agents' answers are
    /// added as they come.
    pub fn record(&mut self, entry: Entry, pushed_to: Vec<String>, now: Instant) {
        self.show(&entry, true);
        if pushed_to.is_empty() {
            self.finish(entry);
            return;
        }
        // A newer table supersedes an older one still waiting: the older is final as is.
        let older: Vec<u64> = self.open.keys().copied().collect();
        for e in older {
            if let Some(o) = self.open.remove(&e) {
                self.finish(o.entry);
            }
        }
        self.open.insert(
            entry.epoch,
            Open {
                waiting: pushed_to.into_iter().collect(),
                entry,
                since: now,
            },
        );
    }

    /// An agent answered the push of `epoch`. Returns the entry when it is complete.
    pub fn agent_done(&mut self, epoch: u64, a: AgentApply, now: Instant) -> Option<Entry> {
        let o = self.open.get_mut(&epoch)?;
        if !o.waiting.remove(&a.host) {
            return None;
        }
        o.entry.agents.push(a);
        o.entry.agents.sort_by(|a, b| a.host.cmp(&b.host));
        o.entry.applied_ms = now.duration_since(o.since).as_millis() as u64;
        let (done, entry) = (o.waiting.is_empty(), o.entry.clone());
        self.show(&entry, false);
        if !done {
            return None;
        }
        self.open.remove(&epoch);
        self.finish(entry.clone());
        Some(entry)
    }

    /// Entries that waited too long are final as they are.
    pub fn expire(&mut self, now: Instant) {
        let old: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| now.duration_since(o.since) >= WAIT_FOR_AGENTS)
            .map(|(e, _)| *e)
            .collect();
        for e in old {
            if let Some(o) = self.open.remove(&e) {
                self.finish(o.entry);
            }
        }
    }

    /// Puts `entry` in the visible list: as a new one (`new`), or in place of the one with
    /// its epoch and time.
    fn show(&self, entry: &Entry, new: bool) {
        let Ok(mut r) = self.recent.lock() else {
            return;
        };
        let same = |e: &Entry| e.epoch == entry.epoch && e.at_unix_ms == entry.at_unix_ms;
        match r.iter_mut().rev().find(|e| same(e)) {
            Some(e) if !new => *e = entry.clone(),
            _ => {
                r.push_back(entry.clone());
                while r.len() > KEEP {
                    r.pop_front();
                }
            }
        }
    }

    /// Writes a final entry (and updates it where it is shown).
    fn finish(&mut self, mut entry: Entry) {
        entry.agents.sort_by(|a, b| a.host.cmp(&b.host));
        self.show(&entry, false);
        if let Some(p) = &self.path {
            if let Err(e) = append(p, &entry) {
                tracing::error!("writing the history {}: {e}", p.display());
            }
        }
    }
}

fn append(path: &Path, e: &Entry) -> std::io::Result<()> {
    append_rotating(path, e, MAX_BYTES)
}

/// Appends `e` to `path`, first renaming a file already past `max` bytes to `.history.1`
/// (which replaces an older one).
fn append_rotating(path: &Path, e: &Entry, max: u64) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > max) {
        std::fs::rename(path, path.with_extension("history.1"))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(e).map_err(std::io::Error::other)?;
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::RoleIp;

    fn writer_moved() -> Vec<Event> {
        let w = RoleIp::new("writer", "198.18.0.100".parse().unwrap());
        vec![
            Event::State {
                host: "db1".into(),
                from: HostState::Online,
                to: HostState::HardOffline,
                reason: "(ping: OK, mysql: not OK)".into(),
            },
            Event::RoleMoved {
                role: w.clone(),
                from: Some("db1".into()),
                to: None,
            },
            Event::RoleMoved {
                role: w,
                from: None,
                to: Some("db2".into()),
            },
        ]
    }

    #[test]
    fn kinds_and_lines() {
        let ev = writer_moved();
        assert_eq!(kind(&ev, "writer", false), "failover");
        assert_eq!(kind(&ev[1..], "writer", true), "switchover");
        assert_eq!(kind(&ev[..1], "writer", false), "state");
        assert_eq!(
            describe(&ev[0]),
            "db1 ONLINE → HARD_OFFLINE (ping: OK, mysql: not OK)"
        );
        assert_eq!(describe(&ev[2]), "writer(198.18.0.100) on db2");
    }

    #[test]
    fn entries_wait_for_agents_and_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mmm_mond.history");
        let t0 = Instant::now();
        let mut h = History::open(Some(p.clone()));
        let e = Entry {
            epoch: 5,
            kind: "failover".into(),
            changes: vec!["db1 ONLINE → HARD_OFFLINE".into()],
            ..Default::default()
        };
        h.record(e, vec!["db1".into(), "db2".into()], t0);
        let shown = h.recent().lock().unwrap().clone();
        assert_eq!(shown.len(), 1, "visible at once");
        assert!(shown[0].agents.is_empty(), "no answer yet");
        assert!(std::fs::read_to_string(&p).is_err(), "written once final");
        let a = |host: &str| AgentApply {
            host: host.into(),
            ok: true,
            took_ms: 12,
            steps: vec![StepRec {
                name: "writable".into(),
                micros: 900,
                ok: true,
                detail: "SET GLOBAL read_only = 0".into(),
            }],
            error: String::new(),
            gtid_executed: String::new(),
        };
        assert!(h
            .agent_done(5, a("db2"), t0 + Duration::from_millis(30))
            .is_none());
        let done = h
            .agent_done(5, a("db1"), t0 + Duration::from_millis(41))
            .unwrap();
        assert_eq!(done.applied_ms, 41);
        assert_eq!(done.agents.len(), 2);
        // Read back by a restarted monitor.
        let again = History::open(Some(p.clone()));
        assert_eq!(again.recent().lock().unwrap().back(), Some(&done));
        // An entry nobody answers is final after the wait.
        h.record(
            Entry {
                epoch: 6,
                ..Default::default()
            },
            vec!["db3".into()],
            t0,
        );
        h.expire(t0 + WAIT_FOR_AGENTS);
        assert_eq!(h.recent().lock().unwrap().len(), 2);
    }

    #[test]
    fn the_file_is_rotated_past_its_size_and_both_halves_are_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mmm_mond.history");
        let entry = |epoch| Entry {
            epoch,
            kind: "state".into(),
            changes: vec!["db3 ONLINE → HARD_OFFLINE".into()],
            ..Default::default()
        };
        let line = serde_json::to_string(&entry(1)).unwrap().len() as u64 + 1;
        // Rotated once the file is past three lines: entries 1-4 go to .history.1.
        for epoch in 1..=6 {
            append_rotating(&p, &entry(epoch), 3 * line).unwrap();
        }
        let old = std::fs::read_to_string(p.with_extension("history.1")).unwrap();
        assert_eq!(old.lines().count(), 4, "{old}");
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        let epochs: Vec<u64> = History::open(Some(p))
            .recent()
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.epoch)
            .collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5, 6], "oldest first, nothing lost");
    }
}
