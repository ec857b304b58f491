//! The XDP program's own cost per frame: `BPF_PROG_TEST_RUN` with a large repeat count runs the
//! program in a loop inside the kernel and reports the mean time per run — no driver, no
//! network, no noise from the rest of the machine. Compared with `mmm_pass` (which does nothing)
//! run the same way, the difference is what mmm's logic adds to each frame.

use anyhow::{Context, Result};
use aya::{
    maps::{Array, HashMap},
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use mmm_common::{
    local_filter_bit, vip_key, Action, IfaceInfo, VipEntry, MAP_IFACE, MAP_LOCALS, MAP_VIPS,
    PROG_MAIN, PROG_PASS,
};
use std::net::Ipv4Addr;

const ME: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0xcc];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 50);
/// VIPs in the table (a cluster with many reader VIPs).
const VIPS: u8 = 64;
/// Runs per measurement.
const REPEAT: u32 = 5_000_000;

/// The VIP the frames address (`LOCAL`, the first of the table).
fn vip() -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 3, 100)
}

/// The frames measured, by name.
pub fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let eth = |dst: [u8; 6], ty: u16| {
        let mut f = dst.to_vec();
        f.extend_from_slice(&CLIENT);
        f.extend_from_slice(&ty.to_be_bytes());
        f
    };
    let mut arp = mmm_agent::dataplane::garp::probe(CLIENT, CLIENT_IP, vip()).to_vec();
    arp.resize(60, 0);
    let tcp = |dst: Ipv4Addr| {
        let mut f = eth(ME, 0x0800);
        // IPv4 (20 bytes, TCP) + a TCP header; contents beyond the addresses do not matter.
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&CLIENT_IP.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&[0x1f, 0x90, 0x0c, 0xea, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10]);
        f.resize(1514, 0);
        f
    };
    vec![
        // Test runs repeat on the same buffer: after the first run the program sees its own
        // reply (checked for conflicts, passed), so this measures the ARP parse + filter path.
        ("ARP frame for a LOCAL VIP (parse, filter, lookup)", arp),
        (
            "TCP to a non-VIP address (passed)",
            tcp(Ipv4Addr::new(198, 18, 3, 7)),
        ),
        ("TCP to a LOCAL VIP (passed)", tcp(vip())),
    ]
}

/// Mean nanoseconds per run of `mmm_pass` and of `mmm_xdp` for each of [`frames`], with an
/// interface set up and [`VIPS`] VIPs in the table.
pub fn measure() -> Result<(f64, Vec<(&'static str, f64)>)> {
    let mut ebpf = Ebpf::load(mmm_agent::EBPF_OBJECT).context("loading the eBPF object")?;
    for name in [PROG_MAIN, PROG_PASS] {
        let p: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name}"))?
            .try_into()?;
        p.load()?;
    }
    let mut iface: Array<_, IfaceInfo> =
        Array::try_from(ebpf.map_mut(MAP_IFACE).context("no IFACE map")?)?;
    iface.set(
        0,
        IfaceInfo {
            mac: ME,
            ..Default::default()
        },
        0,
    )?;
    for i in 0..VIPS {
        let key = vip_key(Ipv4Addr::new(198, 18, 3, 100 + i));
        let mut vips: HashMap<_, u32, VipEntry> =
            HashMap::try_from(ebpf.map_mut(MAP_VIPS).context("no VIPS map")?)?;
        vips.insert(key, VipEntry::new(Action::Local, ME, u32::from(i)), 0)?;
        let mut locals: Array<_, u64> =
            Array::try_from(ebpf.map_mut(MAP_LOCALS).context("no LOCALS map")?)?;
        let (word, mask) = local_filter_bit(key);
        let w = locals.get(&word, 0)?;
        locals.set(word, w | mask, 0)?;
    }
    let run = |name: &str, frame: &[u8]| -> Result<f64> {
        let p: &Xdp = ebpf
            .program(name)
            .with_context(|| format!("no program {name}"))?
            .try_into()?;
        let mut out = vec![0u8; frame.len() + 256];
        let mut o = TestRunOptions::new();
        o.data_in = Some(frame);
        o.data_out = Some(&mut out);
        o.repeat = REPEAT;
        let r = p.test_run(o).context("test run")?;
        Ok(r.duration.as_secs_f64() * 1e9)
    };
    let all = frames();
    let pass = run(PROG_PASS, &all[0].1)?;
    let mut out = vec![];
    for (name, f) in &all {
        out.push((*name, run(PROG_MAIN, f)?));
    }
    Ok((pass, out))
}
