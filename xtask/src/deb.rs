//! `cargo xtask deb`: the Debian packages `mmm-agent` and `mmm-monitor`, built by cargo-deb
//! (installed once into `target/tools/`) from the release binaries, with man pages and
//! completions the binaries generate from their clap definitions. Output: `target/debian/`.

use crate::{ebpf, setup};
use anyhow::{Context, Result};
use std::{path::PathBuf, process::Command};

/// The cargo-deb version installed (builds on stable 1.95).
pub const CARGO_DEB_VERSION: &str = "3.8.0";

/// cargo-deb in `target/tools/cargo-deb-<version>/bin/`, built once.
fn cargo_deb() -> Result<PathBuf> {
    let dir = crate::root()
        .join("target/tools")
        .join(format!("cargo-deb-{CARGO_DEB_VERSION}"));
    let bin = dir.join("bin/cargo-deb");
    if !bin.is_file() {
        setup::run(
            Command::new("cargo")
                .args([
                    "install",
                    "cargo-deb",
                    "--locked",
                    "--version",
                    CARGO_DEB_VERSION,
                    "--root",
                ])
                .arg(&dir)
                .env_remove("CARGO_TARGET_DIR"),
        )
        .context("building cargo-deb from crates.io")?;
    }
    Ok(bin)
}

/// Builds both packages; returns their paths.
pub fn build() -> Result<Vec<PathBuf>> {
    setup::all()?;
    let cargo_deb = cargo_deb()?;
    ebpf::build(true)?;
    let root = crate::root();
    setup::run(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "mmm-agent",
        "-p",
        "mmm-monitor",
        "--bins",
    ]))?;
    let man = root.join("target/assets/man");
    let _ = std::fs::remove_dir_all(&man);
    let release = root.join("target/release");
    setup::run(
        Command::new(release.join("mmm-agent"))
            .arg("generate")
            .arg(&man),
    )?;
    setup::run(
        Command::new(release.join("mmm-monitor"))
            .arg("generate")
            .arg(&man),
    )?;
    // Every page: each command's and each subcommand's (`mmm-agent-serve.8`, …), and mmm.conf(5).
    for entry in std::fs::read_dir(&man)? {
        let page = entry?.path();
        if matches!(page.extension().and_then(|e| e.to_str()), Some("8" | "5")) {
            setup::run(Command::new("gzip").args(["-9nf"]).arg(&page))?;
        }
    }
    let mut out = Vec::new();
    for pkg in ["mmm-agent", "mmm-monitor"] {
        let o = Command::new(&cargo_deb)
            .current_dir(&root)
            .args(["--no-build", "--no-strip", "-p", pkg])
            .output()
            .with_context(|| format!("running {}", cargo_deb.display()))?;
        anyhow::ensure!(
            o.status.success(),
            "cargo-deb -p {pkg} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string());
        eprintln!("built {}", path.display());
        out.push(path);
    }
    Ok(out)
}
