// Shared by the build scripts of mmm-agent and mmm-monitor (`include!`d, so no inner doc).

/// Sets `MMM_VERSION` for `--version`: the package version and the commit it was built from
/// (`git rev-parse --short=12 HEAD`, "unknown commit" outside a git checkout), rebuilt when
/// HEAD or the index changes.
fn version_env() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for f in [".git/HEAD", ".git/index"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let commit = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown commit".into());
    println!(
        "cargo:rustc-env=MMM_VERSION={} ({commit})",
        env!("CARGO_PKG_VERSION")
    );
}
