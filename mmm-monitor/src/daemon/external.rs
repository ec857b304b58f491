//! The operator's programs the monitor runs (`kill_host_bin`, `notify_bin`): one way to run
//! them — bounded in time and stopped (SIGKILL) when the bound passes, stdin given or closed,
//! stdout and stderr kept for the log.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::io::AsyncWriteExt;

/// A finished run.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    /// stdout then stderr, lossily decoded, trailing whitespace trimmed.
    pub output: String,
}

/// Why a run gave no exit status.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not be started or waited for (not found, not executable, …).
    #[error("{}: {source}", bin.display())]
    Io {
        bin: PathBuf,
        source: std::io::Error,
    },
    /// It was still running after `limit` and was stopped.
    #[error("{} did not finish within {limit:?} (stopped)", bin.display())]
    Timeout { bin: PathBuf, limit: Duration },
}

/// Runs `bin args…` with `stdin` (closed when `None`), for at most `limit`.
pub async fn run_bounded(
    bin: &Path,
    args: &[impl AsRef<std::ffi::OsStr>],
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Ran, RunError> {
    let io = |source| RunError::Io {
        bin: bin.to_path_buf(),
        source,
    };
    let run = async {
        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io)?;
        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), stdin) {
            // A program that does not read its stdin is not an error.
            let _ = pipe.write_all(bytes).await;
        }
        child.wait_with_output().await.map_err(io)
    };
    let o = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| RunError::Timeout {
            bin: bin.to_path_buf(),
            limit,
        })??;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
    .trim_end()
    .to_string();
    Ok(Ran {
        status: o.status,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdin_arguments_output_and_the_bound() {
        let sh = Path::new("/bin/sh");
        let limit = Duration::from_millis(500);
        let r = run_bounded(
            sh,
            &["-c", "cat; echo \" $0\" >&2", "arg"],
            Some(b"in"),
            limit,
        )
        .await
        .unwrap();
        assert!(r.status.success());
        assert_eq!(r.output, "in arg");
        let r = run_bounded(sh, &["-c", "cat; exit 3"], None, limit)
            .await
            .unwrap();
        assert_eq!((r.status.code(), r.output.as_str()), (Some(3), ""));
        let e = run_bounded(sh, &["-c", "sleep 30"], None, limit)
            .await
            .unwrap_err();
        assert!(matches!(e, RunError::Timeout { .. }), "{e}");
        let e = run_bounded(Path::new("/nonexistent/mmm"), &[] as &[&str], None, limit)
            .await
            .unwrap_err();
        assert!(matches!(e, RunError::Io { .. }), "{e}");
    }
}
