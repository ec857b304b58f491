//! Instant local health: the agent watches its mysqld and publishes "down"/"up" the moment it
//! happens — a pidfd on the server's pid fires when the process exits (crash, kill -9, clean
//! stop), and a short local ping catches a hung server.

use super::mysql::Db;
use std::{os::fd::FromRawFd, time::Duration};
use tokio::sync::watch;

/// The current health of the local mysqld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// False until the first check finished.
    pub checked: bool,
    pub up: bool,
    pub detail: String,
    pub at_unix_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Ping period and the number of consecutive failures that count as down.
const PERIOD: Duration = Duration::from_millis(200);
const FAILURES: u32 = 2;

/// Opens a pidfd for `pid` (Linux >= 5.3).
fn pidfd(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd from the kernel.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

async fn server_pid(db: &Db) -> Option<i32> {
    let file = db.value("SELECT @@pid_file").await.ok()??;
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Starts the watcher; the receiver always holds the latest health.
pub fn spawn(db: Db) -> watch::Receiver<Health> {
    let (tx, rx) = watch::channel(Health {
        checked: false,
        up: false,
        detail: "not checked yet".into(),
        at_unix_ms: now_ms(),
    });
    tokio::spawn(async move {
        let quick = Db {
            timeout: Duration::from_millis(300),
            ..db
        };
        let mut failures = 0;
        let mut watched: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> = None;
        loop {
            let exited = async {
                match &watched {
                    Some(fd) => {
                        let _ = fd.readable().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let ping = async {
                tokio::time::sleep(PERIOD).await;
                quick.value("SELECT 1").await
            };
            tokio::select! {
                _ = exited => {
                    watched = None;
                    failures = FAILURES;
                    publish(&tx, false, "mysqld process exited");
                }
                r = ping => match r {
                    Ok(_) => {
                        failures = 0;
                        if watched.is_none() {
                            if let Some(pid) = server_pid(&quick).await {
                                // SAFETY: the AsyncFd owns the pidfd for its whole life.
                                watched = pidfd(pid)
                                    .ok()
                                    .and_then(|fd| unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok());
                            }
                        }
                        publish(&tx, true, "mysqld answers");
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= FAILURES {
                            publish(&tx, false, &format!("mysqld does not answer: {e}"));
                        }
                    }
                }
            }
        }
    });
    rx
}

fn publish(tx: &watch::Sender<Health>, up: bool, detail: &str) {
    tx.send_if_modified(|h| {
        if h.checked && h.up == up {
            return false;
        }
        if up {
            tracing::info!("local mysqld is up: {detail}");
        } else {
            tracing::warn!("local mysqld is down: {detail}");
        }
        *h = Health {
            checked: true,
            up,
            detail: detail.into(),
            at_unix_ms: now_ms(),
        };
        true
    });
}
