//! Real `mariadbd` servers for tests and the lab: each with its own data directory, socket and
//! port, optionally inside a network namespace. Data directories are copied from one template
//! made by `mariadb-install-db` once per MariaDB version and shared by all test processes. Dropping a
//! [`Server`] kills its process (by pid).

use crate::netns::command_in;
use anyhow::{bail, Context, Result};
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// How to start one server.
#[derive(Clone, Debug)]
pub struct Opts {
    pub server_id: u32,
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Network namespace to run in (`None`: the caller's).
    pub netns: Option<String>,
    /// `(increment, offset)` for masters.
    pub auto_increment: Option<(u32, u32)>,
}

/// A running (or stopped) server.
pub struct Server {
    pub dir: PathBuf,
    pub opts: Opts,
    child: Option<Child>,
}

static TEMPLATE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The template data directory: one per MariaDB version, shared by every test process and
/// kept between runs (`$TMPDIR/mmm-mariadb-template-<version>`, about 26 MB: an 8 MiB redo
/// log, as every server here runs with). It is built under a per-process name and renamed into
/// place, so concurrent test binaries never see a half-made one and a killed build leaves only
/// a `.building-<pid>` directory, removed by the next build.
fn template() -> Result<PathBuf> {
    TEMPLATE
        .get_or_init(|| build_template().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_template() -> Result<PathBuf> {
    let version = Command::new("mariadbd")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .context("running mariadbd --version (is mariadb-server installed?)")?;
    let version = String::from_utf8_lossy(&version.stdout);
    let key: String = version
        .split_whitespace()
        .nth(2)
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tmp = std::env::temp_dir();
    let dir = tmp.join(format!("mmm-mariadb-template-{key}"));
    if dir.join("mysql").is_dir() {
        return Ok(dir);
    }
    remove_dead_builds(&tmp);
    let building = tmp.join(format!(
        "mmm-mariadb-template-{key}.building-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&building);
    let out = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
            "--innodb-log-file-size=8M",
        ])
        .arg(format!("--datadir={}", building.display()))
        .stdin(Stdio::null())
        .output()
        .context("running mariadb-install-db (is mariadb-server installed?)")?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        bail!(
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if std::fs::rename(&building, &dir).is_err() {
        // Another process got there first: use its template.
        let _ = std::fs::remove_dir_all(&building);
    }
    if !dir.join("mysql").is_dir() {
        bail!(
            "the template data directory {} is incomplete",
            dir.display()
        );
    }
    Ok(dir)
}

/// Removes `.building-<pid>` directories whose process is gone.
fn remove_dead_builds(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name
            .strip_prefix("mmm-mariadb-template-")
            .and_then(|r| r.rsplit_once(".building-"))
        else {
            continue;
        };
        if pid
            .parse::<u32>()
            .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Server {
    /// Creates a data directory under `dir` and starts the server.
    pub fn start(dir: &Path, opts: Opts) -> Result<Server> {
        let data = dir.join("data");
        if !data.exists() {
            std::fs::create_dir_all(dir)?;
            let st = Command::new("cp")
                .args(["-a"])
                .arg(template()?)
                .arg(&data)
                .status()?;
            if !st.success() {
                bail!("copying the template data directory to {}", data.display());
            }
        }
        let mut s = Server {
            dir: dir.into(),
            opts,
            child: None,
        };
        s.launch()?;
        Ok(s)
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// The server's pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn launch(&mut self) -> Result<()> {
        let o = &self.opts;
        let d = &self.dir;
        let mut cmd = match &o.netns {
            Some(ns) => command_in(ns, "mariadbd")?,
            None => Command::new("mariadbd"),
        };
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            // Inside its own namespace a server listens on every address, as the seed's my.cnf
            // does (VIPs are local addresses too); on a shared network only on its own.
            .arg(format!(
                "--bind-address={}",
                if o.netns.is_some() {
                    "0.0.0.0".to_string()
                } else {
                    o.bind.to_string()
                }
            ))
            .arg(format!("--port={}", o.port))
            .arg(format!("--server-id={}", o.server_id))
            .arg(format!("--log-bin={}", d.join("binlog").display()))
            .arg(format!("--relay-log={}", d.join("relay").display()))
            .args([
                "--log-slave-updates",
                // As MMM's manual asks: every server starts read-only; the agent makes the
                // writer writable (a restarted server never takes a write by surprise).
                "--read-only=1",
                "--skip-name-resolve",
                "--user=root",
                "--gtid-strict-mode=1",
            ])
            .args([
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                "--performance-schema=0",
            ])
            .args(["--max-connections=60", "--slave-net-timeout=5"])
            // Parallel apply (MariaDB's optimistic mode, its default): a replica keeps up with
            // several concurrent writers, so a promotion finds little left to apply — what a
            // DBA running semi-synchronous replication under load configures.
            .arg("--slave-parallel-threads=4");
        if let Some((inc, off)) = o.auto_increment {
            cmd.arg(format!("--auto-increment-increment={inc}"))
                .arg(format!("--auto-increment-offset={off}"));
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        self.child = Some(cmd.spawn().context("starting mariadbd")?);
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if self.sql("SELECT 1").is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log =
                        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                    bail!("mariadbd exited ({st}) during start-up:\n{log}");
                }
            }
            if Instant::now() > end {
                bail!(
                    "mariadbd in {} did not start within 60 s",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs SQL as root over the socket; returns tab-separated rows without headers.
    pub fn sql(&self, q: &str) -> Result<String> {
        self.client(q, &["-N", "-B"])
    }

    /// Runs `q` as the `mariadb` client prints it to a person: column names, tables, and
    /// `\G` rows as `name: value` (what `cargo xtask lab sql` shows).
    pub fn sql_shown(&self, q: &str) -> Result<String> {
        self.client(q, &[])
    }

    fn client(&self, q: &str, flags: &[&str]) -> Result<String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .arg("-uroot")
            .args(flags)
            .args(["-e", q])
            .stdin(Stdio::null())
            .output()
            .context("running the mariadb client")?;
        if !out.status.success() {
            bail!(
                "SQL failed on {}: {q}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Clean shutdown; waits for the process to exit.
    pub fn stop(&mut self) -> Result<()> {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.signal_and_wait(libc::SIGKILL);
    }

    fn signal_and_wait(&mut self, sig: i32) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, sig) };
            c.wait()?;
        } else if let Some(pid) = self.pid_from_file() {
            // A server of a lab left running: its pid file names it.
            // SAFETY: signalling the lab's own server by pid.
            unsafe { libc::kill(pid, sig) };
            let end = Instant::now() + Duration::from_secs(60);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(self.dir.join("mysqld.pid"));
        }
        Ok(())
    }

    /// SIGSTOP / SIGCONT: a hung server.
    pub fn pause(&self, paused: bool) {
        if let Some(pid) = self.pid().or(self.pid_from_file().map(|p| p as u32)) {
            let sig = if paused { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }

    /// Starts it again on the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// Gives up ownership: the server keeps running after this process exits (a lab left up).
    pub fn leak(mut self) {
        self.child = None;
    }

    /// A handle on a server of a lab left running (its pid from the pid file).
    pub fn existing(dir: &Path, opts: Opts) -> Server {
        Server {
            dir: dir.into(),
            opts,
            child: None,
        }
    }

    /// The pid in the pid file, if the server runs.
    pub fn pid_from_file(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("mysqld.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Starts it (after a stop or kill), in the background.
    pub fn start_again(&mut self) -> Result<()> {
        self.launch()
    }

    /// Makes this server replicate from `master` with GTID (`MASTER_USE_GTID=slave_pos`).
    pub fn replicate_from(&self, master: &Server, user: &str, password: &str) -> Result<()> {
        self.sql(&format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{user}', MASTER_PASSWORD='{password}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;",
            master.opts.bind, master.opts.port
        ))
        .map(drop)
    }

    /// Waits until this replica has applied everything `master` has written.
    pub fn sync_with(&self, master: &Server, timeout: Duration) -> Result<()> {
        let pos = master.sql("SELECT @@gtid_binlog_pos")?.trim().to_string();
        let r = self.sql(&format!(
            "SELECT MASTER_GTID_WAIT('{pos}', {})",
            timeout.as_secs_f64()
        ))?;
        if r.trim() != "0" {
            bail!(
                "{} did not reach {pos} within {timeout:?}",
                self.dir.display()
            );
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only a process this handle started (never one found through a pid file).
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid (SIGCONT first: it may be paused).
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates the seed's accounts (`docs/mmm-2.2.1.md` §7, the seed walk-through step 6) on `s`.
pub fn seed_accounts(s: &Server) -> Result<()> {
    s.sql(
        "SET sql_log_bin=0;
         CREATE USER IF NOT EXISTS 'mmm_monitor'@'%' IDENTIFIED BY 'mmm_monitor';
         GRANT REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'mmm_monitor'@'%';
         CREATE USER IF NOT EXISTS 'mmm_agent'@'%' IDENTIFIED BY 'mmm_agent';
         GRANT SUPER, REPLICATION CLIENT, PROCESS, RELOAD, REPLICATION SLAVE ADMIN, BINLOG MONITOR, READ_ONLY ADMIN, CONNECTION ADMIN, SLAVE MONITOR ON *.* TO 'mmm_agent'@'%';
         CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';",
    )
    .map(drop)
}
