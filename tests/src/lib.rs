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

pub mod lab;
pub mod load;
pub mod mariadb;
pub mod netns;
pub mod walkthrough;

pub use netns::{require_root, Host, Net};
