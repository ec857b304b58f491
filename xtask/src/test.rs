//! `cargo xtask test`: what CI runs, in order; the first failure stops it.

use crate::{ebpf, setup};
use anyhow::{bail, Context, Result};
use std::process::Command;

fn cargo() -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(crate::root());
    c
}

/// Runs every check and test.
pub fn run(fuzz_frames: u64) -> Result<()> {
    setup::all()?;
    let euid = Command::new("id")
        .arg("-u")
        .output()
        .context("running id -u")?;
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        bail!("the tests load XDP programs and build network namespaces: run them as root (they are never skipped)");
    }
    // What earlier runs that were killed left behind (their teardown never ran).
    for done in mmm_tests::lab::sweep_dead().context("sweeping dead test runs")? {
        eprintln!("swept: {done}");
    }
    setup::run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting (run `cargo fmt`)")?;
    setup::run(cargo().args([
        "fmt",
        "--manifest-path",
        "mmm-ebpf/Cargo.toml",
        "--",
        "--check",
    ]))
    .context("formatting of the eBPF crate")?;
    ebpf::build(true)?;
    setup::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
        // No function over clippy's cognitive-complexity limit (25): split it along its seams.
        "-D",
        "clippy::cognitive_complexity",
    ]))
    .context("clippy on the user-space crates")?;
    ebpf::clippy()?;
    setup::run(cargo().args(["build", "--workspace", "--bins"]))?;
    // The Debian packages, inspected and installed into a throw-away root by deb_packages.
    crate::deb::build().context("building the Debian packages")?;
    setup::run(
        cargo()
            .args(["test", "--workspace"])
            .env("MMM_FUZZ_FRAMES", fuzz_frames.to_string()),
    )
    .context("tests")?;
    eprintln!("xtask test: all checks passed");
    Ok(())
}
