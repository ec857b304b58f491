//! User-space additions (feature `user`): `aya::Pod` impls and helpers for the map types.

use crate::{Action, IfaceInfo, VipEntry, VipStats};
use std::net::Ipv4Addr;

// SAFETY: all three are `#[repr(C)]`, contain only integers and byte arrays, have explicit
// padding fields and no invalid bit patterns.
unsafe impl aya::Pod for VipEntry {}
unsafe impl aya::Pod for IfaceInfo {}
unsafe impl aya::Pod for VipStats {}

/// The map key for an IPv4 address (octets in network order, read as a native `u32`).
pub fn vip_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The IPv4 address of a map key.
pub fn key_vip(key: u32) -> Ipv4Addr {
    Ipv4Addr::from(key.to_ne_bytes())
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Local => "local",
            Action::Steer => "steer",
            Action::Fence => "fence",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_is_network_order_in_memory() {
        let ip = Ipv4Addr::new(198, 18, 0, 100);
        let k = vip_key(ip);
        assert_eq!(k.to_ne_bytes(), [198, 18, 0, 100]);
        assert_eq!(key_vip(k), ip);
    }

    #[test]
    fn layouts_are_what_the_program_expects() {
        assert_eq!(std::mem::size_of::<VipEntry>(), 8);
        assert_eq!(std::mem::size_of::<IfaceInfo>(), 16);
        assert_eq!(std::mem::size_of::<VipStats>(), 40);
    }

    #[test]
    fn action_bytes_decode() {
        for a in [Action::Local, Action::Steer, Action::Fence] {
            assert_eq!(Action::from_u8(a as u8), Some(a));
        }
        assert_eq!(Action::from_u8(0), None);
        assert_eq!(Action::from_u8(9), None);
    }
}
