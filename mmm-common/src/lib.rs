//! Types shared by the XDP program (`mmm-ebpf`, `no_std`) and user space.
//!
//! Everything here is `#[repr(C)]` plain data whose layout is the contract between the
//! kernel-side program and the agent: map keys, map values and map names. With the `user`
//! feature the types also implement [`aya::Pod`] so user space can read and write the maps.
//!
//! Byte order: IPv4 addresses used as map keys are the four address octets in network order,
//! read as a native `u32` (`u32::from_ne_bytes(octets)`), which is exactly what the XDP program
//! reads out of a packet without any swapping.
#![cfg_attr(not(feature = "user"), no_std)]

#[cfg(feature = "user")]
pub mod config;
#[cfg(feature = "user")]
pub mod fsutil;
#[cfg(feature = "user")]
pub mod gtid;
#[cfg(feature = "man")]
pub mod man;
#[cfg(feature = "user")]
pub mod replica;
#[cfg(feature = "user")]
pub mod roles;
#[cfg(feature = "user")]
pub mod semisync;
#[cfg(feature = "user")]
pub mod sql;
#[cfg(feature = "user")]
mod user;
#[cfg(feature = "user")]
pub use user::*;

/// Name of the VIP table: `HashMap<u32 (IPv4, network order), VipEntry>`.
pub const MAP_VIPS: &str = "VIPS";
/// Name of the interface table: `Array<IfaceInfo>` with one entry, index 0.
pub const MAP_IFACE: &str = "IFACE";
/// Name of the per-CPU counters: `PerCpuArray<VipStats>`, indexed by [`VipEntry::slot`].
pub const MAP_STATS: &str = "STATS";
/// Name of the filter of `LOCAL` VIPs: `Array<u64>` of [`LOCAL_FILTER_WORDS`] words, see
/// [`local_filter_bit`].
pub const MAP_LOCALS: &str = "LOCALS";
/// Name of the XDP program that implements the data plane.
pub const PROG_MAIN: &str = "mmm_xdp";
/// Name of a trivial `XDP_PASS` program, for the far side of a veth pair: native-mode
/// `XDP_TX` on a veth is only delivered when the peer has an XDP program attached.
pub const PROG_PASS: &str = "mmm_pass";
/// Name of the benchmark's packet generator (`XDP_TX` on everything, run in live-frames mode).
pub const PROG_BENCH_TX: &str = "mmm_bench_tx";
/// Name of the benchmark's sink (`XDP_DROP` on everything).
pub const PROG_BENCH_DROP: &str = "mmm_bench_drop";
/// Most VIPs one interface can carry.
pub const MAX_VIPS: u32 = 1024;

/// What the XDP program does with traffic for one VIP.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// This host owns the VIP: answer ARP, pass IPv4 up the stack.
    Local = 1,
    /// Another host (`VipEntry::owner_mac`) owns it: forward frames a stale client sent to us.
    Steer = 2,
    /// Nobody may receive it: drop.
    Fence = 3,
}

impl Action {
    /// Decodes the action byte stored in a [`VipEntry`].
    pub const fn from_u8(v: u8) -> Option<Action> {
        match v {
            1 => Some(Action::Local),
            2 => Some(Action::Steer),
            3 => Some(Action::Fence),
            _ => None,
        }
    }
}

/// Value of the `VIPS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipEntry {
    /// MAC address of the owner; meaningful for [`Action::Steer`].
    pub owner_mac: [u8; 6],
    /// An [`Action`] as `u8`.
    pub action: u8,
    /// Padding, always zero.
    pub _pad: u8,
    /// Index of the VIP's counters in the `STATS` per-CPU array (below [`MAX_VIPS`]).
    pub slot: u32,
}

impl VipEntry {
    /// An entry with the given action, owner and counter slot.
    pub const fn new(action: Action, owner_mac: [u8; 6], slot: u32) -> Self {
        VipEntry {
            owner_mac,
            action: action as u8,
            _pad: 0,
            slot,
        }
    }
}

/// Words of the `LOCALS` filter (64 bits each: 4,096 bits).
pub const LOCAL_FILTER_WORDS: u32 = 64;

/// Where a VIP key falls in the `LOCALS` filter: `(word index, bit mask)`. The filter has the
/// bit of every `LOCAL` VIP set (and possibly others: it is only ever a hint), so a clear bit
/// proves an address is no `LOCAL` VIP without a hash lookup. The low 12 bits of the address
/// select the bit: the VIPs of one subnet never share one.
#[inline(always)]
pub const fn local_filter_bit(key: u32) -> (u32, u64) {
    let bit = u32::from_be(key) & (LOCAL_FILTER_WORDS * 64 - 1);
    (bit / 64, 1u64 << (bit % 64))
}

/// Flag in [`IfaceInfo::flags`]: emit aya-log records for every decision (debugging only).
pub const IFACE_FLAG_LOG: u32 = 1;

/// Value of the `IFACE` map (index 0): the interface the program is attached to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IfaceInfo {
    /// The interface's MAC address; all zero means "not configured": the program passes everything.
    pub mac: [u8; 6],
    /// Padding, always zero.
    pub _pad: [u8; 2],
    /// `IFACE_FLAG_*` bits.
    pub flags: u32,
    /// The interface's own IPv4 address (network order), informational.
    pub ipv4: u32,
}

/// Value of the `STATS` map: per-CPU counters for one VIP.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VipStats {
    /// ARP requests for a `LOCAL` VIP answered by XDP.
    pub arp_replies: u64,
    /// IPv4 frames to a `LOCAL` VIP passed to the stack.
    pub passed: u64,
    /// IPv4 frames to a `STEER` VIP forwarded to the owner.
    pub steered: u64,
    /// IPv4 frames to a `FENCE` VIP dropped.
    pub dropped: u64,
    /// ARP frames from another MAC claiming a VIP that is `LOCAL` here.
    pub conflicts: u64,
}

impl VipStats {
    /// Field-wise sum (used to fold the per-CPU values).
    pub const fn add(self, o: VipStats) -> VipStats {
        VipStats {
            arp_replies: self.arp_replies + o.arp_replies,
            passed: self.passed + o.passed,
            steered: self.steered + o.steered,
            dropped: self.dropped + o.dropped,
            conflicts: self.conflicts + o.conflicts,
        }
    }
}
