//! Files written so that a crash never leaves half of one: the status file (monitor) and the
//! applied state (agent) both go through [`write_atomic`].

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

#[cfg(test)]
mod tests {
    use super::*;

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
