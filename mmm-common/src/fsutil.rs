//! Files written so that a crash never leaves half of one: the status file (monitor) and the
//! applied state (agent) both go through [`write_atomic`]. And the one rule for secrets on
//! disk: [`open_to_others`].

use std::{io::Write, path::Path};

/// Writes `bytes` to `path` atomically: a temporary file beside it (`<path>.tmp`), fsync,
/// rename over `path`, fsync of the directory (rename(2) is atomic on one file system; the
/// directory fsync makes the rename durable). Creates the directory when missing.
///
/// Errors: any I/O error of those steps, unchanged; `path` then still holds its old content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Whether a file's mode lets users outside its owner and group read or write it (`o+r`
/// or `o+w`). Such a config file (it may hold passwords and names programs run as root) or
/// private key is refused, as MMM refuses its config files.
pub fn open_to_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o006 != 0
}

/// A daemon's pid file (`pid_path`): written at start, removed when dropped (at exit).
#[derive(Debug)]
pub struct PidFile {
    path: std::path::PathBuf,
}

/// Why a pid file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{path}: another instance runs (pid {pid}); stop it first")]
    Running { path: String, pid: i32 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PidFile {
    /// Writes this process's pid to `path` (atomically). A file naming a process that still
    /// runs refuses (as MMM's agent and monitor do); a stale one is replaced.
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let shown = path.display().to_string();
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                // A zombie (state Z: exited, not yet reaped by its parent) runs no more.
                let alive = pid > 0
                    && pid != std::process::id() as i32
                    && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                        st.rsplit_once(") ")
                            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
                    });
                if alive {
                    return Err(PidFileError::Running { path: shown, pid });
                }
            }
        }
        write_atomic(path, format!("{}\n", std::process::id()).as_bytes()).map_err(|source| {
            PidFileError::Io {
                path: shown,
                source,
            }
        })?;
        Ok(PidFile { path: path.into() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_written_removed_and_guard_a_running_instance() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("run").join("x.pid");
        let f = PidFile::create(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(f);
        assert!(!p.exists());
        // A live process (pid 1) owns it: refused. A dead one's file is replaced.
        std::fs::write(&p, "1\n").unwrap();
        assert!(matches!(
            PidFile::create(&p),
            Err(PidFileError::Running { pid: 1, .. })
        ));
        std::fs::write(&p, "999999999\n").unwrap();
        PidFile::create(&p).unwrap();
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join("state");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!p.with_extension("tmp").exists());
    }
}
