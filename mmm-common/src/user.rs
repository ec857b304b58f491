//! User-space additions (feature `user`): `aya::Pod` impls and helpers for the map types.

#[cfg(test)]
use crate::{local_filter_bit, LOCAL_FILTER_WORDS};
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

/// Sum of the sequence numbers of a MariaDB GTID position (`domain-server-seq,...`): a scalar
/// that orders the positions of hosts replicating the same source (the monitor promotes the
/// largest). `None` for an empty or malformed position.
pub fn gtid_progress(pos: &str) -> Option<u64> {
    let mut sum = 0u64;
    let mut any = false;
    for part in pos.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        sum = sum.checked_add(part.rsplit('-').next()?.parse().ok()?)?;
        any = true;
    }
    any.then_some(sum)
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
        assert_eq!(std::mem::size_of::<VipEntry>(), 12);
        assert_eq!(std::mem::size_of::<IfaceInfo>(), 16);
        assert_eq!(std::mem::size_of::<VipStats>(), 40);
    }

    #[test]
    fn local_filter_bits_spread_a_subnet_and_stay_in_range() {
        let mut seen = std::collections::HashSet::new();
        for last in 0..=255u8 {
            let (w, m) = local_filter_bit(vip_key(Ipv4Addr::new(198, 18, 0, last)));
            assert!(w < LOCAL_FILTER_WORDS);
            assert_eq!(m.count_ones(), 1);
            assert!(seen.insert((w, m)), "two VIPs of one /24 share a bit");
        }
        // 4,096 bits: addresses 4,096 apart share one.
        assert_eq!(
            local_filter_bit(vip_key(Ipv4Addr::new(198, 18, 0, 7))),
            local_filter_bit(vip_key(Ipv4Addr::new(198, 18, 16, 7)))
        );
    }

    #[test]
    fn progress_of_gtid_positions() {
        assert_eq!(gtid_progress("0-1-42"), Some(42));
        assert_eq!(gtid_progress("0-1-42,1-2-8"), Some(50));
        assert_eq!(gtid_progress(""), None);
        assert_eq!(gtid_progress("junk"), None);
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
