//! Fencing this host: the steps that take write permission away (`read_only`, a hung
//! mysqld stopped, client sessions killed), used by a table's apply, by the writer lease's
//! self-fence and by the guard that keeps a non-writer read-only. Fences never give up: a
//! step that fails leaves the table not applied (the monitor pushes it again), and the guard
//! re-asserts `read_only` the moment the local server answers again (hung and resumed, or
//! restarted) and every [`GUARD_PERIOD`] after.

use super::{
    apply::{Applier, Step, Steps},
    mysql::DbError,
    sql::{kill_plan, Dialect},
};
use crate::dataplane::{self, Release};
use std::time::{Duration, Instant};

/// How often the guard checks that a host without the writer role is read-only.
pub const GUARD_PERIOD: Duration = Duration::from_millis(500);

impl Applier {
    /// Whether the applied state gives this host the writer role.
    pub fn is_writer(&self) -> bool {
        self.state
            .roles
            .iter()
            .any(|r| r.role == self.cfg.active_master_role)
    }

    /// The writer lease ran out: the writer VIP is fenced in XDP first (nothing reaches the
    /// server through it from now on), the server made read-only (a hung one stopped), client
    /// sessions killed, the `/32` removed; the writer role leaves the applied state, which is
    /// persisted with `lease_fenced` (it stays fenced until a current table). Returns the
    /// steps; nothing to do when this host is not the writer.
    pub async fn self_fence(&mut self) -> Vec<Step> {
        let role = self.cfg.active_master_role.clone();
        let vips: Vec<_> = self
            .state
            .roles
            .iter()
            .filter(|r| r.role == role)
            .cloned()
            .collect();
        if vips.is_empty() {
            return Vec::new();
        }
        let mut steps = Steps::new(Some(self.metrics.clone()));
        for r in &vips {
            let t0 = Instant::now();
            match dataplane::redirect(&mut self.dp, r.ip, Release::Fence) {
                Ok(()) => steps.record("release", t0, true, format!("{r} fenced (lease)")),
                Err(e) => steps.record("release", t0, false, e.to_string()),
            }
        }
        let d = self.known_dialect.unwrap_or(Dialect::MariaDb);
        let _ = self.deny_writes(d, &mut steps).await;
        self.kill_clients(&mut steps).await;
        for r in &vips {
            let t0 = Instant::now();
            match self.nl.del_vip_address(r.ip).await {
                Ok(_) => steps.record("release", t0, true, format!("{}/32 removed", r.ip)),
                Err(e) => steps.record("release", t0, false, e.to_string()),
            }
        }
        let t0 = Instant::now();
        self.state.roles.retain(|r| r.role != role);
        self.state.lease_fenced = true;
        match self.state.save(&self.state_path) {
            Ok(()) => steps.record("persist", t0, true, "writer role dropped (lease)".into()),
            Err(e) => steps.record("persist", t0, false, e.to_string()),
        }
        steps.into_done()
    }

    /// Keeps a host without the writer role read-only: when the local server is up and
    /// writable, `read_only` is set again (logged at WARN). A no-op for the writer, and
    /// while the server is down.
    pub async fn guard(&mut self) {
        if self.is_writer() || !self.health.borrow().up {
            return;
        }
        let Ok(false) = self.db.read_only().await else {
            return;
        };
        let d = self.db.dialect().await.unwrap_or(Dialect::MariaDb);
        let mut steps = Steps::new(Some(self.metrics.clone()));
        match self.deny_writes(d, &mut steps).await {
            Ok(()) => tracing::warn!(
                "the local server was writable while this host is not the writer: made read-only"
            ),
            Err(e) => tracing::error!(
                "the local server is writable while this host is not the writer, and could not be made read-only: {e} (tried again in {GUARD_PERIOD:?})"
            ),
        }
    }

    /// read_only (+super_read_only): a fencing step that never gives up. A server that
    /// refuses connections is down and takes no writes (fenced). A server that does not answer
    /// within the bound is hung and could take writes when it resumes: its mysqld is stopped
    /// (SIGKILL of the watched pid, as MMM's kill_host intended). Anything else fails the
    /// fence: the table is then not applied, and the monitor pushes it again.
    pub(super) async fn deny_writes(&self, d: Dialect, steps: &mut Steps) -> Result<(), String> {
        let t0 = Instant::now();
        let sqls = d.deny_writes();
        let (ok, detail) = match self.db.exec_all(&sqls).await {
            Ok(()) => (true, sqls.join("; ")),
            Err(e) if e.server_down() => (true, format!("server down, it takes no writes ({e})")),
            Err(e @ DbError::Timeout { .. }) => match self.kill_mysqld().await {
                Ok(pid) => (true, format!("{e}: the hung mysqld (pid {pid}) was killed")),
                Err(why) => (
                    false,
                    format!("{e}; and its mysqld could not be stopped: {why}"),
                ),
            },
            Err(e) => (false, e.to_string()),
        };
        steps.record("read_only", t0, ok, detail.clone());
        if ok {
            Ok(())
        } else {
            Err(detail)
        }
    }

    /// SIGKILLs the local mysqld the health watcher watches (its pid checked to still be a
    /// mysqld: pids are reused), and waits (1 s at most) until it is gone. Returns the pid.
    async fn kill_mysqld(&self) -> Result<i32, String> {
        let pid = self.health.borrow().pid.ok_or("its pid is not known")?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !matches!(comm.trim(), "mariadbd" | "mysqld") {
            return Err(format!(
                "pid {pid} is not a mysqld any more ({})",
                comm.trim()
            ));
        }
        // SAFETY: a plain syscall on a pid just checked to be the server's.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        for _ in 0..100 {
            let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
                .unwrap_or(true);
            if gone {
                tracing::warn!(
                    pid,
                    "killed the local mysqld: it could not be made read-only"
                );
                return Ok(pid);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("pid {pid} still runs after SIGKILL"))
    }

    /// Kills client connections, bounded by kill_timeout: running writes get until the
    /// deadline, everything else goes at once.
    pub(super) async fn kill_clients(&self, steps: &mut Steps) {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.kill_timeout;
        let mut killed = 0;
        loop {
            let last = Instant::now() + Duration::from_millis(100) >= deadline;
            let procs = match self.db.processlist().await {
                Ok(p) => p,
                Err(e) => {
                    steps.record("kill", t0, false, e.to_string());
                    return;
                }
            };
            let ids = kill_plan(&procs, &self.db.user, last);
            if !ids.is_empty() {
                let kills: Vec<String> = ids.iter().map(|id| format!("KILL {id}")).collect();
                match self.db.exec_each(&kills).await {
                    Ok(n) => killed += n,
                    Err(e) => {
                        steps.record("kill", t0, false, e.to_string());
                        return;
                    }
                }
            }
            let left = kill_plan(&procs, &self.db.user, true).len() - ids.len();
            if left == 0 || last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        steps.record(
            "kill",
            t0,
            true,
            format!("{killed} client connection(s) killed"),
        );
    }
}
