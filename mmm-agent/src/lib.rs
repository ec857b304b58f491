//! mmm agent library: everything the `mmm-agent` binary does, usable from tests.
//!
//! - [`dataplane`]: the XDP program (embedded), its pins under bpffs, the VIP table, addresses,
//!   gratuitous ARP and sysctls: the host-local half of moving a VIP.
//! - [`control`]: the Agent gRPC service (role tables, epochs, MySQL) — built on the data plane.

pub mod cli;
pub mod control;
pub mod dataplane;

/// The XDP object built by `cargo xtask build-ebpf`, embedded at compile time.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("MMM_EBPF_OBJ"));
