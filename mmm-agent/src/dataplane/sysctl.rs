//! ARP sysctls: the kernel must never answer ARP for a VIP itself; XDP does.

use super::{DataPlaneError, Result};
use std::path::PathBuf;

fn write(iface: &str, key: &str, value: &str) -> Result<()> {
    let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{iface}/{key}"));
    std::fs::write(&path, value).map_err(|source| DataPlaneError::Io {
        what: "setting an ARP sysctl",
        path,
        source,
    })
}

/// `arp_ignore=1` (answer only for addresses configured on the interface itself — VIPs live on
/// `lo`) and `arp_announce=2` (never use a VIP as the source of our own ARP requests).
pub(super) fn quiet_arp(iface: &str) -> Result<()> {
    write(iface, "arp_ignore", "1")?;
    write(iface, "arp_announce", "2")
}
