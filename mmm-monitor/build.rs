//! Sets `MMM_VERSION` (package version and commit) for `--version`.

/// `MMM_VERSION`: the package version and the commit it was built from (`git describe`),
/// for `--version`.
fn main() {
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
