//! The XDP program's packet logic, run in the kernel through `BPF_PROG_TEST_RUN` (no network
//! needed, root needed): exact reply bytes, steering, fencing (a TCP reset for a segment to a
//! fenced VIP, its checksums verified), every truncation, VLAN, and a randomized comparison
//! against a reference model written here in plain Rust.
//!
//! `MMM_FUZZ_FRAMES` (default 5000) sets how many random frames the randomized test feeds;
//! `MMM_FUZZ_SEED` replays a run.

use aya::{
    maps::{Array, HashMap, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use mmm_common::{
    local_filter_bit, Action, IfaceInfo, VipEntry, VipStats, MAP_IFACE, MAP_LOCALS, MAP_STATS,
    MAP_VIPS, PROG_BENCH_DROP, PROG_BENCH_TX, PROG_MAIN,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap as StdMap;

#[path = "support/tcp_reset.rs"]
mod tcp_reset;
use tcp_reset::{checksums_verify, reset_model};
#[path = "support/frames.rs"]
mod frames;
use frames::{arp, arp_request, eth, ipv4, tcp, vlan, CLIENT};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const ME: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const OWNER_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const VIP_LOCAL: [u8; 4] = [198, 18, 0, 100];
const VIP_STEER: [u8; 4] = [198, 18, 0, 101];
const VIP_FENCE: [u8; 4] = [198, 18, 0, 102];
const CLIENT_IP: [u8; 4] = [198, 18, 0, 50];
const OTHER_IP: [u8; 4] = [198, 18, 0, 7];

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests load XDP programs and need root (CAP_BPF); run them as root — they are not skipped"
    );
}

struct Prog {
    ebpf: Ebpf,
    table: StdMap<[u8; 4], (Action, [u8; 6])>,
}

impl Prog {
    fn new() -> Prog {
        require_root();
        let mut ebpf = Ebpf::load(mmm_agent::EBPF_OBJECT).expect("load the embedded object");
        let prog: &mut Xdp = ebpf.program_mut(PROG_MAIN).unwrap().try_into().unwrap();
        prog.load().expect("verifier accepts the program");
        {
            let mut iface: Array<_, IfaceInfo> =
                Array::try_from(ebpf.map_mut(MAP_IFACE).unwrap()).unwrap();
            iface
                .set(
                    0,
                    IfaceInfo {
                        mac: ME,
                        ..Default::default()
                    },
                    0,
                )
                .unwrap();
        }
        let mut p = Prog {
            ebpf,
            table: StdMap::new(),
        };
        p.set(VIP_LOCAL, Action::Local, ME);
        p.set(VIP_STEER, Action::Steer, OWNER_B);
        p.set(VIP_FENCE, Action::Fence, [0; 6]);
        p
    }

    fn set(&mut self, vip: [u8; 4], a: Action, mac: [u8; 6]) {
        // As the agent does: a counter slot per VIP, the LOCALS bit set for a LOCAL one (left
        // set otherwise: the filter is only a hint).
        let key = u32::from_ne_bytes(vip);
        let slot = self.table.len() as u32;
        let mut vips: HashMap<_, u32, VipEntry> =
            HashMap::try_from(self.ebpf.map_mut(MAP_VIPS).unwrap()).unwrap();
        let slot = vips.get(&key, 0).map_or(slot, |e| e.slot);
        vips.insert(key, VipEntry::new(a, mac, slot), 0).unwrap();
        if a == Action::Local {
            let (word, mask) = local_filter_bit(key);
            let mut locals: Array<_, u64> =
                Array::try_from(self.ebpf.map_mut(MAP_LOCALS).unwrap()).unwrap();
            let w = locals.get(&word, 0).unwrap();
            locals.set(word, w | mask, 0).unwrap();
        }
        self.table.insert(vip, (a, mac));
    }

    fn stats(&self, vip: [u8; 4]) -> VipStats {
        let vips: HashMap<_, u32, VipEntry> =
            HashMap::try_from(self.ebpf.map(MAP_VIPS).unwrap()).unwrap();
        let slot = vips.get(&u32::from_ne_bytes(vip), 0).unwrap().slot;
        let stats: PerCpuArray<_, VipStats> =
            PerCpuArray::try_from(self.ebpf.map(MAP_STATS).unwrap()).unwrap();
        stats
            .get(&slot, 0)
            .unwrap()
            .iter()
            .fold(VipStats::default(), |a, s| a.add(*s))
    }

    /// Runs one frame; `None` when the kernel refuses the input (shorter than an Ethernet header).
    fn run(&self, frame: &[u8]) -> Option<(u32, Vec<u8>)> {
        let prog: &Xdp = self.ebpf.program(PROG_MAIN).unwrap().try_into().unwrap();
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        match prog.test_run(opts) {
            Ok(r) => {
                let n = r.data_size_out as usize;
                out.truncate(n);
                Some((r.return_value, out))
            }
            Err(e) => {
                assert!(
                    frame.len() < 14,
                    "test run of a {}-byte frame failed: {e}",
                    frame.len()
                );
                None
            }
        }
    }
}

/// What the program must do with `f`, written independently of it.
fn model(table: &StdMap<[u8; 4], (Action, [u8; 6])>, f: &[u8]) -> (u32, Vec<u8>) {
    let pass = (XDP_PASS, f.to_vec());
    if f.len() < 14 {
        return pass;
    }
    let mut et = u16::from_be_bytes([f[12], f[13]]);
    let mut off = 14;
    if et == 0x8100 {
        if f.len() < 18 {
            return pass;
        }
        et = u16::from_be_bytes([f[16], f[17]]);
        off = 18;
    }
    let quad = |o: usize| -> [u8; 4] { [f[o], f[o + 1], f[o + 2], f[o + 3]] };
    let lookup = |ip: [u8; 4]| table.get(&ip).copied();
    match et {
        0x0806 => {
            if f.len() < off + 28 || f[off..off + 6] != [0, 1, 8, 0, 6, 4] {
                return pass;
            }
            let op = u16::from_be_bytes([f[off + 6], f[off + 7]]);
            let (spa, tpa) = (quad(off + 14), quad(off + 24));
            if op != 1
                || spa == tpa
                || spa == [0; 4]
                || lookup(tpa).map(|e| e.0) != Some(Action::Local)
            {
                return pass;
            }
            let mut o = f.to_vec();
            let sha: Vec<u8> = f[off + 8..off + 14].to_vec();
            let src: Vec<u8> = f[6..12].to_vec();
            o[0..6].copy_from_slice(&src);
            o[6..12].copy_from_slice(&ME);
            o[off + 6..off + 8].copy_from_slice(&[0, 2]);
            o[off + 8..off + 14].copy_from_slice(&ME);
            o[off + 14..off + 18].copy_from_slice(&tpa);
            o[off + 18..off + 24].copy_from_slice(&sha);
            o[off + 24..off + 28].copy_from_slice(&spa);
            (XDP_TX, o)
        }
        0x0800 => {
            if f.len() < off + 20 || f[off] >> 4 != 4 {
                return pass;
            }
            match lookup(quad(off + 16)) {
                Some((Action::Local, _)) | None => pass,
                Some((Action::Fence, _)) => match reset_model(f, off, ME) {
                    Some(o) if f[0..6] == ME => (XDP_TX, o),
                    _ => (XDP_DROP, f.to_vec()),
                },
                Some((Action::Steer, owner)) => {
                    if f[0..6] != ME || owner == [0; 6] || f[6..12] == owner {
                        return pass;
                    }
                    let mut o = f.to_vec();
                    o[0..6].copy_from_slice(&owner);
                    o[6..12].copy_from_slice(&ME);
                    (XDP_TX, o)
                }
            }
        }
        _ => pass,
    }
}

#[test]
fn arp_request_for_local_vip_gets_exact_reply() {
    let p = Prog::new();
    let req = arp_request(CLIENT_IP, VIP_LOCAL);
    let (rc, out) = p.run(&req).unwrap();
    assert_eq!(rc, XDP_TX);
    let mut want = eth(CLIENT, ME, 0x0806);
    want.extend(arp(2, ME, VIP_LOCAL, CLIENT, CLIENT_IP));
    assert_eq!(out, want);
    assert_eq!(p.stats(VIP_LOCAL).arp_replies, 1);
}

#[test]
fn arp_for_other_addresses_passes_untouched() {
    let p = Prog::new();
    for tpa in [OTHER_IP, VIP_STEER, VIP_FENCE] {
        let req = arp_request(CLIENT_IP, tpa);
        assert_eq!(
            p.run(&req).unwrap(),
            (XDP_PASS, req.clone()),
            "ARP for {tpa:?}"
        );
    }
    // A reply (op 2) to a local VIP is not answered either.
    let mut rep = eth(ME, CLIENT, 0x0806);
    rep.extend(arp(2, CLIENT, CLIENT_IP, ME, VIP_LOCAL));
    assert_eq!(p.run(&rep).unwrap(), (XDP_PASS, rep.clone()));
}

#[test]
fn gratuitous_arp_and_probes_are_never_answered() {
    let p = Prog::new();
    let garp = arp_request(VIP_LOCAL, VIP_LOCAL);
    assert_eq!(p.run(&garp).unwrap(), (XDP_PASS, garp.clone()));
    let probe = arp_request([0; 4], VIP_LOCAL);
    assert_eq!(p.run(&probe).unwrap(), (XDP_PASS, probe.clone()));
    assert_eq!(p.stats(VIP_LOCAL).arp_replies, 0);
}

#[test]
fn foreign_claim_of_local_vip_is_counted() {
    let p = Prog::new();
    // Another host announces our VIP (gratuitous ARP from CLIENT's MAC).
    let claim = arp_request(VIP_LOCAL, VIP_LOCAL);
    assert_eq!(p.run(&claim).unwrap().0, XDP_PASS);
    assert_eq!(p.stats(VIP_LOCAL).conflicts, 1);
    // Our own MAC claiming it is no conflict.
    let mut own = eth([0xff; 6], ME, 0x0806);
    own.extend(arp(1, ME, VIP_LOCAL, [0; 6], VIP_LOCAL));
    p.run(&own).unwrap();
    assert_eq!(p.stats(VIP_LOCAL).conflicts, 1);
}

#[test]
fn malformed_arp_headers_pass() {
    let p = Prog::new();
    let good = arp_request(CLIENT_IP, VIP_LOCAL);
    for (idx, val) in [
        (14, 9u8),
        (15, 2),
        (16, 0x86),
        (17, 0xdd),
        (18, 8),
        (19, 16),
        (21, 3),
    ] {
        let mut f = good.clone();
        f[idx] = val;
        assert_eq!(
            p.run(&f).unwrap(),
            (XDP_PASS, f.clone()),
            "byte {idx} = {val}"
        );
    }
}

#[test]
fn every_truncation_passes_untouched() {
    let p = Prog::new();
    // (frame, where its headers end)
    let frames = [
        (arp_request(CLIENT_IP, VIP_LOCAL), 14 + 28),
        (vlan(arp_request(CLIENT_IP, VIP_LOCAL), 42), 18 + 28),
        (ipv4(ME, CLIENT_IP, VIP_STEER), 14 + 20),
        (ipv4(ME, CLIENT_IP, VIP_FENCE), 14 + 20),
        (vlan(ipv4(ME, CLIENT_IP, VIP_FENCE), 7), 18 + 20),
    ];
    for (full, headers) in &frames {
        for len in 0..=64.min(full.len()) {
            let f = &full[..len];
            let Some((rc, out)) = p.run(f) else {
                // The kernel refuses test input shorter than an Ethernet header: such a frame
                // never reaches an XDP program.
                assert!(len < 14);
                continue;
            };
            assert_ne!(rc, XDP_ABORTED);
            if len < *headers {
                assert_eq!(
                    (rc, out.as_slice()),
                    (XDP_PASS, f),
                    "len {len} of {full:02x?}"
                );
            } else {
                assert_eq!((rc, out), model(&p.table, f), "len {len} of {full:02x?}");
            }
        }
    }
}

#[test]
fn vlan_tagged_arp_is_answered_with_the_tag_kept() {
    let p = Prog::new();
    let req = vlan(arp_request(CLIENT_IP, VIP_LOCAL), 0x0123);
    let (rc, out) = p.run(&req).unwrap();
    assert_eq!(rc, XDP_TX);
    let mut want = eth(CLIENT, ME, 0x0806);
    want.extend(arp(2, ME, VIP_LOCAL, CLIENT, CLIENT_IP));
    assert_eq!(out, vlan(want, 0x0123));
}

#[test]
fn steer_rewrites_only_frames_sent_to_us() {
    let p = Prog::new();
    let f = ipv4(ME, CLIENT_IP, VIP_STEER);
    let (rc, out) = p.run(&f).unwrap();
    assert_eq!(rc, XDP_TX);
    let mut want = f.clone();
    want[0..6].copy_from_slice(&OWNER_B);
    want[6..12].copy_from_slice(&ME);
    assert_eq!(out, want);
    assert_eq!(p.stats(VIP_STEER).steered, 1);
    // Addressed to someone else (e.g. already to the owner): not ours to touch.
    let f = ipv4(OWNER_B, CLIENT_IP, VIP_STEER);
    assert_eq!(p.run(&f).unwrap(), (XDP_PASS, f.clone()));
    // Tagged frames are steered with the tag kept.
    let f = vlan(ipv4(ME, CLIENT_IP, VIP_STEER), 9);
    let (rc, out) = p.run(&f).unwrap();
    assert_eq!(rc, XDP_TX);
    assert_eq!(&out[0..6], &OWNER_B);
    assert_eq!(&out[12..], &f[12..]);
}

#[test]
fn a_frame_from_the_owner_is_never_steered_back_to_it() {
    let p = Prog::new();
    // The owner itself still steers to us (it has not taken the VIP yet): passing the frame
    // to our stack ends what would be a loop between the two hosts.
    let mut f = ipv4(ME, CLIENT_IP, VIP_STEER);
    f[6..12].copy_from_slice(&OWNER_B);
    assert_eq!(p.run(&f).unwrap(), (XDP_PASS, f.clone()));
    assert_eq!(p.stats(VIP_STEER).steered, 0);
}

#[test]
fn fence_resets_tcp_sent_to_us_drops_the_rest_and_local_passes() {
    let p = Prog::new();
    // A connection attempt: RST+ACK acknowledging the SYN, trailing bytes cut off.
    let syn = tcp(ME, CLIENT_IP, VIP_FENCE, 0x02, &[]);
    let (rc, out) = p.run(&syn).unwrap();
    assert_eq!(rc, XDP_TX);
    assert_eq!(out.len(), 14 + 40);
    assert_eq!((&out[0..6], &out[6..12]), (&CLIENT[..], &ME[..]));
    assert_eq!(
        (&out[26..30], &out[30..34]),
        (&VIP_FENCE[..], &CLIENT_IP[..])
    );
    assert_eq!(&out[34..38], &[0x0c, 0xea, 0x30, 0x39], "ports swapped");
    assert_eq!(
        &out[38..46],
        &[0, 0, 0, 0, 0, 0, 0, 2],
        "seq 0, ack = SYN's seq + 1"
    );
    assert_eq!(out[47], 0x14, "RST+ACK");
    assert!(checksums_verify(&out, 14), "{out:02x?}");
    assert_eq!((rc, out), model(&p.table, &syn));
    // An established connection's data (ACK set): RST with seq = its ACK, payload dropped.
    let data = tcp(ME, CLIENT_IP, VIP_FENCE, 0x18, b"INSERT INTO t VALUES (1)");
    let (rc, out) = p.run(&data).unwrap();
    assert_eq!((rc, out.len(), out[47]), (XDP_TX, 54, 0x04));
    assert_eq!(&out[38..42], &[0, 0, 0, 7]);
    assert!(checksums_verify(&out, 14));
    // VLAN-tagged: the tag is kept.
    let tagged = vlan(tcp(ME, CLIENT_IP, VIP_FENCE, 0x02, &[]), 7);
    let (rc, out) = p.run(&tagged).unwrap();
    assert_eq!((rc, &out[12..16]), (XDP_TX, &[0x81, 0, 0, 7][..]));
    assert!(checksums_verify(&out, 18));
    // Never answered: a reset, a frame flooded to us (not our MAC), UDP.
    for f in [
        tcp(ME, CLIENT_IP, VIP_FENCE, 0x04, &[]),
        tcp(OWNER_B, CLIENT_IP, VIP_FENCE, 0x02, &[]),
        {
            let mut u = tcp(ME, CLIENT_IP, VIP_FENCE, 0x02, &[]);
            u[23] = 17;
            u
        },
    ] {
        assert_eq!(p.run(&f).unwrap(), (XDP_DROP, f.clone()));
    }
    assert_eq!(p.stats(VIP_FENCE).dropped, 6);
    let f = ipv4(ME, CLIENT_IP, VIP_LOCAL);
    assert_eq!(p.run(&f).unwrap(), (XDP_PASS, f.clone()));
    assert_eq!(p.stats(VIP_LOCAL).passed, 1);
}

#[test]
fn non_ipv4_and_non_vip_traffic_is_untouched() {
    let p = Prog::new();
    let mut v6 = eth(ME, CLIENT, 0x86dd);
    v6.extend_from_slice(&[0x60; 40]);
    assert_eq!(p.run(&v6).unwrap(), (XDP_PASS, v6.clone()));
    let f = ipv4(ME, CLIENT_IP, OTHER_IP);
    assert_eq!(p.run(&f).unwrap(), (XDP_PASS, f.clone()));
    // IPv4 ethertype but not version 4.
    let mut f = ipv4(ME, CLIENT_IP, VIP_FENCE);
    f[14] = 0x65;
    assert_eq!(p.run(&f).unwrap(), (XDP_PASS, f.clone()));
}

#[test]
fn unconfigured_interface_passes_everything() {
    let mut p = Prog::new();
    let mut iface: Array<_, IfaceInfo> =
        Array::try_from(p.ebpf.map_mut(MAP_IFACE).unwrap()).unwrap();
    iface.set(0, IfaceInfo::default(), 0).unwrap();
    let req = arp_request(CLIENT_IP, VIP_LOCAL);
    assert_eq!(p.run(&req).unwrap(), (XDP_PASS, req.clone()));
}

fn random_frame(rng: &mut StdRng) -> Vec<u8> {
    let ips = [VIP_LOCAL, VIP_STEER, VIP_FENCE, CLIENT_IP, OTHER_IP, [0; 4]];
    let macs = [ME, OWNER_B, CLIENT, [0xff; 6]];
    let mut f = match rng.random_range(0..6) {
        0 => {
            let n = rng.random_range(0..128);
            (0..n).map(|_| rng.random()).collect()
        }
        1 | 2 => {
            let spa = ips[rng.random_range(0..ips.len())];
            let tpa = ips[rng.random_range(0..ips.len())];
            arp_request(spa, tpa)
        }
        3 | 4 => {
            let dst = macs[rng.random_range(0..macs.len())];
            let ip = ips[rng.random_range(0..ips.len())];
            let payload: Vec<u8> = (0..rng.random_range(0..3) * 7)
                .map(|_| rng.random())
                .collect();
            let mut f = tcp(dst, CLIENT_IP, ip, rng.random(), &payload);
            f[6..12].copy_from_slice(&macs[rng.random_range(0..macs.len())]);
            f
        }
        _ => {
            let mut f = eth(macs[rng.random_range(0..macs.len())], CLIENT, 0x0806);
            let op = rng.random_range(0..4u16);
            f.extend(arp(
                op,
                CLIENT,
                ips[rng.random_range(0..ips.len())],
                [0; 6],
                ips[rng.random_range(0..ips.len())],
            ));
            f
        }
    };
    if f.len() >= 12 && rng.random_bool(0.3) {
        f = vlan(f, rng.random_range(0..4096));
    }
    // Mutate: flip bytes and/or truncate.
    for _ in 0..rng.random_range(0..3) {
        if !f.is_empty() {
            let i = rng.random_range(0..f.len());
            f[i] = rng.random();
        }
    }
    if rng.random_bool(0.3) && !f.is_empty() {
        let n = rng.random_range(0..=f.len());
        f.truncate(n);
    }
    f
}

#[test]
fn random_frames_match_the_reference_model() {
    let p = Prog::new();
    let n: usize = std::env::var("MMM_FUZZ_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed: u64 = std::env::var("MMM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = StdMap::new();
    for i in 0..n {
        let f = random_frame(&mut rng);
        let Some((rc, out)) = p.run(&f) else { continue };
        assert_ne!(rc, XDP_ABORTED, "seed {seed} frame {i}");
        let want = model(&p.table, &f);
        assert_eq!(
            (rc, out),
            want,
            "seed {seed} frame {i}: {f:02x?} (replay with MMM_FUZZ_SEED={seed})"
        );
        *seen.entry(rc).or_insert(0usize) += 1;
    }
    // The generator must exercise every verdict, or the test proves little.
    for rc in [XDP_PASS, XDP_TX, XDP_DROP] {
        assert!(
            seen.get(&rc).copied().unwrap_or(0) > 0 || n < 500,
            "seed {seed}: verdict {rc} never produced: {seen:?}"
        );
    }
    eprintln!("{n} random frames, seed {seed}, verdicts {seen:?}");
}

/// Runs harness program `name` (loaded into `ebpf`) on `frame`.
fn run_harness(ebpf: &mut Ebpf, name: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let prog: &mut Xdp = ebpf.program_mut(name).unwrap().try_into().unwrap();
    if prog.fd().is_err() {
        prog.load().expect("verifier accepts the program");
    }
    let mut out = vec![0u8; frame.len() + 256];
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.data_out = Some(&mut out);
    let r = prog.test_run(opts).expect("test run");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

#[test]
fn benchmark_harness_programs() {
    require_root();
    let mut ebpf = Ebpf::load(mmm_agent::EBPF_OBJECT).expect("load the embedded object");
    let req = arp_request(CLIENT_IP, VIP_LOCAL);
    let mut reply = eth(CLIENT, ME, 0x0806);
    reply.extend(arp(2, ME, VIP_LOCAL, CLIENT, CLIENT_IP));
    let other = ipv4(ME, CLIENT_IP, OTHER_IP);
    // The generator sends everything back out, a reply turned back into its request.
    assert_eq!(
        run_harness(&mut ebpf, PROG_BENCH_TX, &req),
        (XDP_TX, req.clone())
    );
    assert_eq!(
        run_harness(&mut ebpf, PROG_BENCH_TX, &reply),
        (XDP_TX, req.clone())
    );
    assert_eq!(
        run_harness(&mut ebpf, PROG_BENCH_TX, &other),
        (XDP_TX, other.clone())
    );
    assert_eq!(
        run_harness(&mut ebpf, PROG_BENCH_TX, &req[..20]),
        (XDP_TX, req[..20].to_vec())
    );
    // The sink drops everything.
    assert_eq!(run_harness(&mut ebpf, PROG_BENCH_DROP, &reply).0, XDP_DROP);
}
