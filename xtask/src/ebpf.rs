//! Builds and lints the eBPF crate with nightly for `bpfel-unknown-none`.

use crate::setup;
use anyhow::{Context, Result};
use std::{path::PathBuf, process::Command};

/// Where the agent's build script looks for the object.
pub fn object() -> PathBuf {
    crate::root().join("target").join("ebpf").join("mmm-ebpf.o")
}

/// `cargo <sub> …` for the eBPF crate with nightly, bpf-linker on PATH, BTF on.
fn nightly_cargo(sub: &str, release: bool) -> Result<Command> {
    let linker_dir = setup::ebpf_toolchain()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![linker_dir];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        sub,
        "-Z",
        "build-std=core",
        "--target",
        "bpfel-unknown-none",
    ])
    .arg("--target-dir")
    .arg(crate::root().join("target").join("ebpf"))
    .current_dir(crate::root().join("mmm-ebpf"))
    .env("PATH", std::env::join_paths(paths)?)
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        [
            "--cfg=bpf_target_arch=\"x86_64\"",
            "-Cdebuginfo=2",
            "-Clink-arg=--btf",
        ]
        .join("\x1f"),
    );
    for v in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(v);
    }
    if release {
        cmd.arg("--release");
    }
    Ok(cmd)
}

/// Builds the program; returns the object's path.
pub fn build(release: bool) -> Result<PathBuf> {
    setup::run(&mut nightly_cargo("build", release)?).context("building the eBPF crate")?;
    let profile = if release { "release" } else { "debug" };
    let built = crate::root()
        .join("target/ebpf/bpfel-unknown-none")
        .join(profile)
        .join("mmm-ebpf");
    let obj = object();
    std::fs::copy(&built, &obj)
        .with_context(|| format!("copying {} to {}", built.display(), obj.display()))?;
    eprintln!("eBPF object: {}", obj.display());
    Ok(obj)
}

/// clippy -D warnings on the eBPF crate.
pub fn clippy() -> Result<()> {
    let mut cmd = nightly_cargo("clippy", true)?;
    cmd.args(["--", "-D", "warnings"]);
    setup::run(&mut cmd).context("clippy on the eBPF crate")
}
