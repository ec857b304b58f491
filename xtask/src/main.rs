//! `cargo xtask`: the project's tasks. Each one installs what it needs by itself on a fresh
//! machine (Debian packages, nightly's `rust-src`, a `bpf-linker` cached under `target/tools`).
//!
//! - `setup`: only the installs;
//! - `build-ebpf [--release]`: the XDP program, into `target/ebpf/mmm-ebpf.o` (the agent embeds it);
//! - `test`: everything CI checks, in order: fmt, eBPF build, clippy (user space, eBPF), all tests;
//! - `demo [--keep]`: the product on a throw-away lab: the seed's HA test, narrated;
//! - `lab [--prefix P] up|down|status|ctl|exec|mysql|sql`: a cluster left running;
//! - `bench [--trials N] [NAME…]`: benchmarks, tables into BENCHMARKS.md;
//! - `faults [CLASS…]`: the fault matrix under load, the table into FAULTS.md;
//! - `deb`: the Debian packages into target/debian/.

mod deb;
mod demo;
mod ebpf;
mod lab;
mod setup;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "mmm project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (Debian packages, rust-src, bpf-linker).
    Setup,
    /// Build the XDP program with the nightly toolchain into target/ebpf/mmm-ebpf.o.
    BuildEbpf {
        /// Use the release profile (both profiles are optimised; release keeps debug info).
        #[arg(long)]
        release: bool,
    },
    /// Run every check and test (what CI runs).
    Test {
        /// Random frames fed to the XDP program by the randomized packet test.
        #[arg(long, default_value_t = 5000)]
        fuzz_frames: u64,
    },
    /// Show the product on a throw-away lab: the seed's HA test, narrated.
    Demo {
        /// Leave the lab running at the end (remove it with `cargo xtask lab down`).
        #[arg(long)]
        keep: bool,
    },
    /// Benchmarks (failover, vip-move, arp, overhead, keepalived); tables into BENCHMARKS.md.
    Bench {
        /// Trials per failover variant and VIP moves.
        #[arg(long, default_value_t = 20)]
        trials: u64,
        /// zero-loss only: which fault classes (kill-writer, writer-host-down, switchover).
        #[arg(long, value_delimiter = ',')]
        variants: Vec<String>,
        /// Where the tables go (default: BENCHMARKS.md, replaced).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Which benchmarks (default: all).
        names: Vec<String>,
    },
    /// The fault matrix under load (kill -9 writer, monitor cut off, writer isolated, hung,
    /// …): one table row per class; all classes: the table into FAULTS.md.
    Faults {
        /// Which classes (default: all; `mmm-faults --help` is not needed: an unknown class
        /// is refused with the list).
        classes: Vec<String>,
    },
    /// Build the Debian packages mmm-agent and mmm-monitor into target/debian/.
    Deb,
    /// A whole cluster on this machine: up, down, status, ctl, exec, mysql, sql.
    Lab {
        /// Prefix of every namespace, interface pin and directory of this lab.
        #[arg(long, env = "MMM_LAB_PREFIX", default_value = "mmm")]
        prefix: String,
        #[command(subcommand)]
        cmd: lab::LabCmd,
    },
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup::all(),
        Cmd::BuildEbpf { release } => {
            setup::ebpf_toolchain()?;
            ebpf::build(release).map(drop)
        }
        Cmd::Test { fuzz_frames } => test::run(fuzz_frames),
        Cmd::Deb => deb::build().map(drop),
        Cmd::Faults { classes } => {
            lab::build_all()?;
            setup::run(
                std::process::Command::new("cargo")
                    .current_dir(root())
                    .args(["run", "-p", "mmm-tests", "--bin", "mmm-faults", "--"])
                    .args(&classes),
            )
        }
        Cmd::Demo { keep } => demo::run(keep),
        Cmd::Lab { prefix, cmd } => lab::run(&prefix, cmd),
        Cmd::Bench {
            trials,
            variants,
            out,
            names,
        } => {
            lab::build_all()?;
            setup::apt(&["keepalived"])?;
            let _ = mmm_tests::lab::Lab::down("mmmbench");
            setup::run(
                std::process::Command::new("cargo")
                    .current_dir(root())
                    .args(["run", "--release", "-p", "mmm-bench", "--", "--trials"])
                    .arg(trials.to_string())
                    .args(variants.iter().flat_map(|v| ["--variants", v.as_str()]))
                    .args(
                        out.iter()
                            .flat_map(|o| [std::ffi::OsStr::new("--out"), o.as_os_str()]),
                    )
                    .args(&names),
            )
        }
    }
}
