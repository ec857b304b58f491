//! mmm's XDP data plane.
//!
//! Per frame (Ethernet, optionally one 802.1Q tag):
//! 1. an ARP request whose target is a `LOCAL` VIP is rewritten in place into the reply and sent
//!    back out of the same interface (`XDP_TX`); gratuitous ARP (spa == tpa) and probes
//!    (spa 0.0.0.0) are never answered; an ARP frame from another MAC whose sender address is one
//!    of our `LOCAL` VIPs is counted as a conflict;
//! 2. IPv4 to a VIP: `LOCAL` → pass; `STEER` and the frame was sent to our MAC (a client with a
//!    stale ARP cache) by anyone but the owner → re-address to the owner and `XDP_TX`;
//!    `FENCE` → a TCP segment sent to our MAC is answered with a reset (so a client retries at
//!    once instead of waiting out its connect timeout while the writer moves), anything else
//!    is dropped;
//! 3. anything else → `XDP_PASS`, untouched.
//!
//! Malformed or truncated frames always pass untouched: the program never returns `XDP_ABORTED`.
//! Decision logging (aya-log) costs one flag test unless `IFACE_FLAG_LOG` is set.
//!
//! Cost per frame (profiled with `cargo xtask bench arp`): one hash lookup (the target or
//! destination address in `VIPS`); counters live in a per-CPU array at the entry's slot (an
//! inlined index, no second lookup); the conflict check consults the `LOCALS` bit filter first
//! and looks the sender up only when its bit is set.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_tail,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray},
    programs::XdpContext,
};
use aya_log_ebpf::info;
use core::mem;
use mmm_common::{
    local_filter_bit, Action, IfaceInfo, VipEntry, VipStats, IFACE_FLAG_LOG, LOCAL_FILTER_WORDS,
    MAX_VIPS,
};
use network_types::{
    arp::ArpHdr,
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
    vlan::VlanHdr,
};

#[map]
static VIPS: HashMap<u32, VipEntry> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map]
static IFACE: Array<IfaceInfo> = Array::with_max_entries(1, 0);

#[map]
static STATS: PerCpuArray<VipStats> = PerCpuArray::with_max_entries(MAX_VIPS, 0);

#[map]
static LOCALS: Array<u64> = Array::with_max_entries(LOCAL_FILTER_WORDS, 0);

const ETH_P_ARP: u16 = EtherType::Arp as u16;
const ETH_P_IPV4: u16 = EtherType::Ipv4 as u16;
const ETH_P_8021Q: u16 = EtherType::Ieee8021q as u16;
const ARP_HTYPE_ETHERNET: [u8; 2] = 1u16.to_be_bytes();
const ARP_PTYPE_IPV4: [u8; 2] = 0x0800u16.to_be_bytes();
const ARP_OP_REQUEST: [u8; 2] = 1u16.to_be_bytes();
const ARP_OP_REPLY: [u8; 2] = 2u16.to_be_bytes();

/// The data plane attached to the cluster interface.
#[xdp]
pub fn mmm_xdp(ctx: XdpContext) -> u32 {
    match try_mmm_xdp(&ctx) {
        Ok(action) => action,
        Err(()) => xdp_action::XDP_PASS,
    }
}

/// A program that passes everything: attached to a veth's peer so that native-mode `XDP_TX`
/// frames from the data plane are delivered.
#[xdp]
pub fn mmm_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Benchmark harness, never attached by the agent: sends every frame back out of the interface
/// it came in on. Run through `BPF_PROG_TEST_RUN` in live-frames mode it is a packet generator
/// (`cargo xtask bench arp`). Live frames recycle their pages without re-initialising the
/// content, and a responder answering in place (as `mmm_xdp` does) turns a request into its
/// reply: an ARP reply is therefore turned back into the request it answers before it leaves.
#[xdp]
pub fn mmm_bench_tx(ctx: XdpContext) -> u32 {
    let (Ok(eth), Ok(a)) = (
        ptr_at::<EthHdr>(&ctx, 0),
        ptr_at::<ArpHdr>(&ctx, EthHdr::LEN),
    ) else {
        return xdp_action::XDP_TX;
    };
    // SAFETY: both bounds checked by ptr_at; the headers are byte arrays (alignment 1).
    let (eth, a) = unsafe { (&mut *eth, &mut *a) };
    if eth.ether_type == ETH_P_ARP && a.oper == ARP_OP_REPLY {
        let (asker, asker_ip, asked_ip) = (a.tha, a.tpa, a.spa);
        eth.dst_addr = [0xff; 6];
        eth.src_addr = asker;
        a.oper = ARP_OP_REQUEST;
        a.sha = asker;
        a.spa = asker_ip;
        a.tha = [0; 6];
        a.tpa = asked_ip;
    }
    xdp_action::XDP_TX
}

/// Benchmark harness, never attached by the agent: drops every frame. A sink whose count the
/// veth reports (`xdp_drops`), costing the receiving side next to nothing.
#[xdp]
pub fn mmm_bench_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

/// A pointer to a `T` at `offset` in the frame, or `Err` when the frame is too short.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + mem::size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

/// Whether `ip` may be a `LOCAL` VIP (false: certainly not), from the `LOCALS` filter.
#[inline(always)]
fn maybe_local(ip: u32) -> bool {
    let (word, mask) = local_filter_bit(ip);
    LOCALS.get(word).is_some_and(|w| w & mask != 0)
}

#[inline(always)]
fn bump(e: &VipEntry, f: impl FnOnce(&mut VipStats)) {
    if let Some(s) = STATS.get_ptr_mut(e.slot) {
        // SAFETY: per-CPU value, no other writer on this CPU while we run.
        unsafe { f(&mut *s) }
    }
}

#[inline(always)]
fn try_mmm_xdp(ctx: &XdpContext) -> Result<u32, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds checked by ptr_at.
    let mut ether_type = unsafe { (*eth).ether_type };
    let mut off = EthHdr::LEN;
    if ether_type == ETH_P_8021Q {
        let vlan: *const VlanHdr = ptr_at(ctx, off)?;
        // SAFETY: bounds checked by ptr_at.
        ether_type = unsafe { (*vlan).ether_type };
        off += VlanHdr::LEN;
    }
    if ether_type == ETH_P_ARP {
        arp(ctx, eth, off)
    } else if ether_type == ETH_P_IPV4 {
        ipv4(ctx, eth, off)
    } else {
        Ok(xdp_action::XDP_PASS)
    }
}

#[inline(always)]
fn iface() -> Option<IfaceInfo> {
    let info = *IFACE.get(0)?;
    if info.mac == [0; 6] {
        None
    } else {
        Some(info)
    }
}

#[inline(always)]
fn arp(ctx: &XdpContext, eth: *mut EthHdr, off: usize) -> Result<u32, ()> {
    let arp: *mut ArpHdr = ptr_at(ctx, off)?;
    // SAFETY: bounds checked by ptr_at; ArpHdr is all byte arrays (alignment 1).
    let a = unsafe { &mut *arp };
    if a.htype != ARP_HTYPE_ETHERNET || a.ptype != ARP_PTYPE_IPV4 || a.hlen != 6 || a.plen != 4 {
        return Ok(xdp_action::XDP_PASS);
    }
    let Some(me) = iface() else {
        return Ok(xdp_action::XDP_PASS);
    };
    let spa = u32::from_ne_bytes(a.spa);
    let tpa = u32::from_ne_bytes(a.tpa);

    // Somebody else announcing or asking from one of our VIPs: a duplicate address. The
    // filter spares the hash lookup for senders that cannot be a LOCAL VIP (nearly all).
    if let Some(e) = if maybe_local(spa) {
        VIPS.get_ptr(spa)
    } else {
        None
    } {
        // SAFETY: map value pointer returned by the kernel.
        let e = unsafe { *e };
        if e.action == Action::Local as u8 && a.sha != me.mac {
            bump(&e, |s| s.conflicts += 1);
            if me.flags & IFACE_FLAG_LOG != 0 {
                info!(
                    ctx,
                    "conflict: {:mac} claims our VIP {:i}",
                    a.sha,
                    u32::from_be(spa)
                );
            }
        }
    }

    if a.oper != ARP_OP_REQUEST || spa == tpa || spa == 0 {
        return Ok(xdp_action::XDP_PASS);
    }
    let Some(e) = VIPS.get_ptr(tpa) else {
        return Ok(xdp_action::XDP_PASS);
    };
    // SAFETY: map value pointer returned by the kernel.
    let e = unsafe { *e };
    if e.action != Action::Local as u8 {
        return Ok(xdp_action::XDP_PASS);
    }

    // SAFETY: eth was bounds checked by the caller.
    let eth = unsafe { &mut *eth };
    eth.dst_addr = eth.src_addr;
    eth.src_addr = me.mac;
    a.oper = ARP_OP_REPLY;
    a.tha = a.sha;
    a.tpa = a.spa;
    a.sha = me.mac;
    a.spa = tpa.to_ne_bytes();
    bump(&e, |s| s.arp_replies += 1);
    if me.flags & IFACE_FLAG_LOG != 0 {
        info!(
            ctx,
            "arp reply: {:i} is-at {:mac} to {:mac}",
            u32::from_be(tpa),
            me.mac,
            a.tha
        );
    }
    Ok(xdp_action::XDP_TX)
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, eth: *mut EthHdr, off: usize) -> Result<u32, ()> {
    let ip: *const Ipv4Hdr = ptr_at(ctx, off)?;
    // SAFETY: bounds checked by ptr_at.
    let (vihl, dst) = unsafe { ((*ip).vihl, u32::from_ne_bytes((*ip).dst_addr)) };
    if vihl >> 4 != 4 {
        return Ok(xdp_action::XDP_PASS);
    }
    let Some(e) = VIPS.get_ptr(dst) else {
        return Ok(xdp_action::XDP_PASS);
    };
    // SAFETY: map value pointer returned by the kernel.
    let e = unsafe { *e };
    match Action::from_u8(e.action) {
        Some(Action::Local) => {
            bump(&e, |s| s.passed += 1);
            Ok(xdp_action::XDP_PASS)
        }
        Some(Action::Fence) => {
            bump(&e, |s| s.dropped += 1);
            Ok(fence(ctx, eth, off))
        }
        Some(Action::Steer) => {
            let Some(me) = iface() else {
                return Ok(xdp_action::XDP_PASS);
            };
            // SAFETY: eth was bounds checked by the caller.
            let eth = unsafe { &mut *eth };
            // Only frames sent to us, and never one the owner itself sent here: two hosts
            // that each still steer to the other (the new owner before it takes the VIP)
            // would bounce it between them at line rate.
            if eth.dst_addr != me.mac || e.owner_mac == [0; 6] || eth.src_addr == e.owner_mac {
                return Ok(xdp_action::XDP_PASS);
            }
            eth.dst_addr = e.owner_mac;
            eth.src_addr = me.mac;
            bump(&e, |s| s.steered += 1);
            if me.flags & IFACE_FLAG_LOG != 0 {
                info!(ctx, "steer: {:i} to {:mac}", u32::from_be(dst), e.owner_mac);
            }
            Ok(xdp_action::XDP_TX)
        }
        None => Ok(xdp_action::XDP_PASS),
    }
}

/// IPv4's protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// TCP header flags (RFC 9293 §3.1).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// The reset's IPv4 header (no options) and TCP header (no options), in bytes.
const RESET_LEN: usize = 40;

/// A frame to a `FENCE` VIP: dropped, except a TCP segment sent to our MAC, answered with a
/// reset in place (`XDP_TX`). Frames flooded to every port (not sent to our MAC) are never
/// answered: the VIP's owner may be serving that connection.
#[inline(always)]
fn fence(ctx: &XdpContext, eth: *mut EthHdr, off: usize) -> u32 {
    let Some(me) = iface() else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: eth was bounds checked by the caller.
    let eth = unsafe { &mut *eth };
    if eth.dst_addr != me.mac {
        return xdp_action::XDP_DROP;
    }
    let Some(reset) = reset_for(ctx, off) else {
        return xdp_action::XDP_DROP;
    };
    eth.dst_addr = eth.src_addr;
    eth.src_addr = me.mac;
    let len = ctx.data_end() - ctx.data();
    if len > off + RESET_LEN {
        let delta = (off + RESET_LEN) as i32 - len as i32;
        // SAFETY: the program's own context; every packet pointer is derived again below.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
            return xdp_action::XDP_DROP;
        }
    }
    match ptr_at::<[u8; RESET_LEN]>(ctx, off) {
        Ok(p) => {
            // SAFETY: bounds checked by ptr_at (after the tail moved).
            unsafe { *p = reset };
            xdp_action::XDP_TX
        }
        Err(()) => xdp_action::XDP_DROP,
    }
}

/// The IPv4 and TCP headers of the reset answering the segment at `off` (RFC 9293 §3.10.7.1,
/// a segment to a closed port: with ACK, `<SEQ=SEG.ACK><CTL=RST>`; without,
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`), or `None` for anything that is not a whole
/// unfragmented TCP segment without IP options, and for a reset (never answered).
#[inline(always)]
fn reset_for(ctx: &XdpContext, off: usize) -> Option<[u8; RESET_LEN]> {
    let ip: *const [u8; 20] = ptr_at(ctx, off).ok()?;
    let tcp: *const [u8; 20] = ptr_at(ctx, off + 20).ok()?;
    // SAFETY: bounds checked by ptr_at; byte arrays (alignment 1).
    let (ip, tcp) = unsafe { (*ip, *tcp) };
    // Version 4, 20-byte header; not a fragment (MF clear, offset 0).
    if ip[0] != 0x45 || ip[9] != IPPROTO_TCP || (ip[6] & 0x3f) != 0 || ip[7] != 0 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let doff = (tcp[12] >> 4) as usize * 4;
    let flags = tcp[13];
    if doff < 20 || total < 20 + doff || off + total > ctx.data_end() - ctx.data() {
        return None;
    }
    if flags & TCP_RST != 0 {
        return None;
    }
    let mut r = [0u8; RESET_LEN];
    r[0] = 0x45;
    r[3] = RESET_LEN as u8;
    r[6] = 0x40; // DF
    r[8] = 64;
    r[9] = IPPROTO_TCP;
    r[12..16].copy_from_slice(&ip[16..20]);
    r[16..20].copy_from_slice(&ip[12..16]);
    r[20..22].copy_from_slice(&tcp[2..4]);
    r[22..24].copy_from_slice(&tcp[0..2]);
    if flags & TCP_ACK != 0 {
        r[24..28].copy_from_slice(&tcp[8..12]);
        r[33] = TCP_RST;
    } else {
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let len = (total - 20 - doff) as u32
            + u32::from(flags & TCP_SYN != 0)
            + u32::from(flags & TCP_FIN != 0);
        r[28..32].copy_from_slice(&seq.wrapping_add(len).to_be_bytes());
        r[33] = TCP_RST | TCP_ACK;
    }
    r[32] = 0x50; // data offset: 5 words
    let ip_sum = fold(sum16(&r[0..20], 0));
    r[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    // The pseudo-header (RFC 9293 §3.1): addresses, protocol, TCP length.
    let pseudo = sum16(&r[12..20], u32::from(IPPROTO_TCP) + 20);
    let tcp_sum = fold(sum16(&r[20..40], pseudo));
    r[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    Some(r)
}

/// `acc` plus the big-endian 16-bit words of `b` (even length), unfolded.
#[inline(always)]
fn sum16(b: &[u8], acc: u32) -> u32 {
    let mut s = acc;
    let mut i = 0;
    while i + 1 < b.len() {
        s += u32::from(u16::from_be_bytes([b[i], b[i + 1]]));
        i += 2;
    }
    s
}

/// The one's complement of the folded one's-complement sum (RFC 1071).
#[inline(always)]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
