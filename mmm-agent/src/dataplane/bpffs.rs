//! bpffs: mount it at `/sys/fs/bpf` when missing, and make pin directories on it.

use super::{DataPlaneError, Result};
use std::{ffi::CString, path::Path};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const DEFAULT_MOUNT: &str = "/sys/fs/bpf";

fn is_bpffs(path: &Path) -> Result<bool> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| DataPlaneError::Io {
        what: "path with a NUL byte",
        path: path.into(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a properly sized out-parameter.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(DataPlaneError::Io {
            what: "statfs",
            path: path.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_default() -> Result<()> {
    let target = Path::new(DEFAULT_MOUNT);
    if is_bpffs(target)? {
        return Ok(());
    }
    let src = c"bpf";
    let tgt = c"/sys/fs/bpf";
    // SAFETY: constant C strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(DataPlaneError::Io {
            what: "mounting bpffs",
            path: target.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    tracing::info!("mounted bpffs at {DEFAULT_MOUNT}");
    Ok(())
}

/// Creates `dir` (and its parents) on a bpf filesystem, mounting `/sys/fs/bpf` first when `dir`
/// is below it and it is not mounted yet. A `dir` on any other filesystem is an error.
pub(super) fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.starts_with(DEFAULT_MOUNT) {
        mount_default()?;
    }
    let mut existing = dir;
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    if !is_bpffs(existing)? {
        return Err(DataPlaneError::Io {
            what: "pin directory is not on a bpf filesystem",
            path: dir.into(),
            source: std::io::ErrorKind::Unsupported.into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| DataPlaneError::Io {
        what: "creating the pin directory",
        path: dir.into(),
        source,
    })
}
