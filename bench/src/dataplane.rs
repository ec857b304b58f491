//! Data-plane benchmarks on three namespaces (client, a, b) on a bridge, using the agent's
//! library directly: the map write alone; a VIP move (new owner answering, a stale client
//! served through steering, the client's neighbour entry switching); ARP replies per second
//! from XDP vs the kernel on the same veth; TCP throughput and latency of non-VIP traffic with
//! and without XDP.

use crate::stats::{ms, summary, Table, DIST_HEAD};
use anyhow::{anyhow, Context, Result};
use mmm_agent::dataplane::{self, AttachMode, DataPlane, Netlink, Release};
use mmm_common::Action;
use mmm_tests::{
    netns::{fmt_mac, in_ns_blocking},
    Host, Net,
};
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PORT: u16 = 7100;

struct Bed {
    net: Net,
    client: Host,
    a: Host,
    b: Host,
}

fn root(net: &Net, h: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/mmm/{}-{h}", net.prefix()))
}

/// Runs async `f` on a runtime in namespace `ns`.
fn in_ns<T: Send + 'static, F: std::future::Future<Output = T>>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> Result<T> {
    // Later gratuitous ARP rounds run on the blocking pool: block_on_in does not wait for them
    // (the agent's runtime lives on; only a helper's runtime would block on them).
    mmm_tests::netns::block_on_in(ns, f)
}

fn attach(net: &Net, h: &Host) -> Result<()> {
    let r = root(net, &h.name);
    in_ns(&h.ns, move || async move {
        let nl = Netlink::new()?;
        DataPlane::attach(&nl, &r, "eth0", AttachMode::Native)
            .await
            .map(drop)
            .map_err(|e| anyhow!(e))
    })?
}

fn detach(net: &Net, h: &Host) -> Result<()> {
    let r = root(net, &h.name);
    in_ns(&h.ns, move || async move {
        let nl = Netlink::new()?;
        DataPlane::detach(&nl, &r, "eth0")
            .await
            .map(drop)
            .map_err(|e| anyhow!(e))
    })?
}

fn bed() -> Result<Bed> {
    let mut net = Net::new("bench")?;
    let client = net.add_host("client", "eth0", Ipv4Addr::new(198, 18, 0, 50), 0x50)?;
    let a = net.add_host("a", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)?;
    let b = net.add_host("b", "eth0", Ipv4Addr::new(198, 18, 0, 12), 0x12)?;
    for h in [&a, &b] {
        net.track_pins(root(&net, &h.name));
        attach(&net, h)?;
    }
    let br_root = root(&net, "br");
    net.track_pins(br_root.clone());
    let peers: Vec<String> = vec![a.peer.clone(), b.peer.clone()];
    in_ns_blocking(net.bridge_ns(), move || {
        for p in peers {
            dataplane::attach_pass(&br_root, &p).map_err(|e| anyhow!(e))?;
        }
        Ok::<_, anyhow::Error>(())
    })??;
    net.tcp_server(&a.ns, PORT, "a")?;
    net.tcp_server(&b.ns, PORT, "b")?;
    Ok(Bed { net, client, a, b })
}

/// The map write alone: `n` writes of a VIP entry, each timed.
fn map_writes(bed: &Bed, n: usize) -> Result<Vec<f64>> {
    let r = root(&bed.net, "a");
    in_ns(&bed.a.ns, move || async move {
        let mut dp = DataPlane::open(&r, "eth0").map_err(|e| anyhow!(e))?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let action = if i % 2 == 0 {
                Action::Steer
            } else {
                Action::Fence
            };
            let t = Instant::now();
            dp.set(Ipv4Addr::new(198, 18, 1, 1), action, [2, 0, 0, 0, 0, 0x12])
                .map_err(|e| anyhow!(e))?;
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
        dp.remove(Ipv4Addr::new(198, 18, 1, 1))
            .map_err(|e| anyhow!(e))?;
        Ok::<_, anyhow::Error>(out)
    })?
}

/// Moves the VIP `from` → `to`: acquire on `to` (first GARP round before returning), release
/// (steer) on `from`. Returns how long `to`'s acquire call itself took.
fn move_vip(bed: &Bed, from: &Host, to: &Host) -> Result<Duration> {
    let (rt, rf) = (root(&bed.net, &to.name), root(&bed.net, &from.name));
    let to_mac = to.mac;
    let took = in_ns(&to.ns, move || async move {
        let nl = Netlink::new()?;
        let mut dp = DataPlane::open(&rt, "eth0").map_err(|e| anyhow!(e))?;
        let t = Instant::now();
        dataplane::acquire(&mut dp, &nl, VIP, 3, Duration::from_millis(100), false)
            .await
            .map_err(|e| anyhow!(e))?;
        Ok::<_, anyhow::Error>(t.elapsed())
    })??;
    in_ns(&from.ns, move || async move {
        let nl = Netlink::new()?;
        let mut dp = DataPlane::open(&rf, "eth0").map_err(|e| anyhow!(e))?;
        dataplane::release(&mut dp, &nl, VIP, Release::Steer(to_mac))
            .await
            .map_err(|e| anyhow!(e))
    })??;
    Ok(took)
}

fn vip_move(bed: &Bed, trials: u64) -> Result<Table> {
    let mut t = Table::new("vip-move: the VIP moves between two hosts", DIST_HEAD);
    let writes = map_writes(bed, 10_000)?;
    t.dist(
        "map write alone (one VIP entry)",
        &writes,
        "µs",
        Some((10.0, "p50")),
    );
    // Start with a owning the VIP and the client knowing it.
    move_vip(bed, &bed.b, &bed.a)?;
    bed.net
        .tcp_get(&bed.client.ns, VIP, PORT, Duration::from_secs(2))?;
    let (mut acquire, mut answer, mut stale, mut neigh) = (vec![], vec![], vec![], vec![]);
    let mut owner = (&bed.a, &bed.b);
    for _ in 0..trials {
        let (from, to) = owner;
        // Wait past the neighbour lock time so the client may accept an update.
        std::thread::sleep(Duration::from_millis(1100));
        let t0 = Instant::now();
        acquire.push(ms(move_vip(bed, from, to)?));
        answer.push(ms(t0.elapsed()));
        // A client whose cache may still say `from`: first TCP answer from `to`.
        let end = t0 + Duration::from_secs(5);
        loop {
            if bed
                .net
                .tcp_get(&bed.client.ns, VIP, PORT, Duration::from_millis(300))
                .ok()
                .as_deref()
                == Some(to.name.as_str())
            {
                stale.push(ms(t0.elapsed()));
                break;
            }
            if Instant::now() > end {
                break;
            }
        }
        let want = fmt_mac(&to.mac);
        while Instant::now() < end {
            if bed.net.neighbour(&bed.client.ns, "eth0", VIP)?.as_deref() == Some(want.as_str()) {
                neigh.push(ms(t0.elapsed()));
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        owner = (to, from);
    }
    t.dist(
        "acquire on the new owner (/32, map LOCAL, first GARP round)",
        &acquire,
        "ms",
        None,
    );
    t.dist(
        "move done, both hosts (incl. this harness's namespace/runtime set-up)",
        &answer,
        "ms",
        None,
    );
    t.dist(
        "move → a client's TCP connect answered by the new owner",
        &stale,
        "ms",
        None,
    );
    t.dist(
        "move → the client's neighbour entry switched (gratuitous ARP)",
        &neigh,
        "ms",
        None,
    );
    t.notes.push(format!("{trials} moves alternating between two hosts; the client is a Linux network namespace on the same bridge."));
    Ok(t)
}

/// Floods ARP requests for `VIP` from the client for `dur`; returns (sent/s, replies/s).
fn arp_flood(bed: &Bed, dur: Duration) -> Result<(f64, f64)> {
    let (mac, ip) = (bed.client.mac, bed.client.ip);
    in_ns_blocking(&bed.client.ns, move || -> Result<(f64, f64)> {
        let ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
        let open = || -> Result<i32> {
            // SAFETY: plain socket(2)/bind(2) calls with valid arguments.
            unsafe {
                let fd = libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW,
                    i32::from(0x0806u16.to_be()),
                );
                if fd < 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
                let mut a: libc::sockaddr_ll = std::mem::zeroed();
                a.sll_family = libc::AF_PACKET as u16;
                a.sll_protocol = 0x0806u16.to_be();
                a.sll_ifindex = ifindex as i32;
                if libc::bind(
                    fd,
                    (&a as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error().into());
                }
                Ok(fd)
            }
        };
        let (tx, rx) = (open()?, open()?);
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: valid fd and option.
        unsafe {
            libc::setsockopt(
                rx,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let counter = std::thread::spawn(move || {
            let mut buf = [0u8; 128];
            let mut n = 0u64;
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: buffer valid for its length.
                let r = unsafe { libc::recv(rx, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if r >= 42
                    && buf[20..22] == [0, 2]
                    && buf[28..32] == VIP.octets()
                    && buf[32..38] == mac
                {
                    n += 1;
                }
            }
            // SAFETY: closing our own fd.
            unsafe { libc::close(rx) };
            n
        });
        let mut f = [0u8; 42];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&mac);
        f[28..32].copy_from_slice(&ip.octets());
        f[38..42].copy_from_slice(&VIP.octets());
        let t0 = Instant::now();
        let mut sent = 0u64;
        while t0.elapsed() < dur {
            // SAFETY: buffer valid for its length; socket bound to eth0.
            if unsafe { libc::send(tx, f.as_ptr().cast(), f.len(), 0) } == 42 {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let replies = counter.join().map_err(|_| anyhow!("counter panicked"))?;
        // SAFETY: closing our own fd.
        unsafe { libc::close(tx) };
        let secs = dur.as_secs_f64();
        Ok((sent as f64 / secs, replies as f64 / secs))
    })?
}

fn arp(bed: &Bed) -> Result<Table> {
    let mut t = Table::new(
        "arp: replies per second for a VIP, same veth, same run",
        &[
            "responder",
            "requests sent/s",
            "replies/s",
            "ratio vs kernel",
            "target",
            "verdict",
        ],
    );
    move_vip(bed, &bed.b, &bed.a)?;
    let dur = Duration::from_secs(2);
    let (xs, xr) = arp_flood(bed, dur)?;
    // Kernel: XDP off on a, the VIP on its interface so the kernel itself answers.
    detach(&bed.net, &bed.a)?;
    bed.net.exec(
        &bed.a.ns,
        "ip",
        &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
    )?;
    let (ks, kr) = arp_flood(bed, dur)?;
    bed.net.exec(
        &bed.a.ns,
        "ip",
        &["addr", "del", &format!("{VIP}/32"), "dev", "eth0"],
    )?;
    attach(&bed.net, &bed.a)?;
    let ratio = if kr > 0.0 { xr / kr } else { f64::INFINITY };
    let verdict = if ratio >= 5.0 {
        "met".to_string()
    } else {
        format!("missed: {ratio:.2}× instead of 5×")
    };
    t.rows.push(vec![
        "XDP (mmm_xdp, native)".into(),
        format!("{xs:.0}"),
        format!("{xr:.0}"),
        format!("{ratio:.2}×"),
        "≥ 5× kernel".into(),
        verdict,
    ]);
    t.rows.push(vec![
        "kernel (XDP detached)".into(),
        format!("{ks:.0}"),
        format!("{kr:.0}"),
        "1.00×".into(),
        "-".into(),
        "-".into(),
    ]);
    t.notes.push("One sender thread in the client namespace floods ARP requests as fast as it can; on a 2-core machine sender, bridge and responder share the CPUs, so replies/s is bounded by the sender as much as by the responder.".into());
    Ok(t)
}

fn throughput(net: &Net, from: &Host, to: &Host) -> Result<(f64, Vec<f64>)> {
    let to_ip = to.ip;
    let sink = net.in_ns(&to.ns, || TcpListener::bind(("0.0.0.0", 7200)))??;
    let echo = net.in_ns(&to.ns, || TcpListener::bind(("0.0.0.0", 7201)))??;
    let s = std::thread::spawn(move || -> u64 {
        let mut total = 0;
        if let Ok((mut c, _)) = sink.accept() {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        total
    });
    let e = std::thread::spawn(move || {
        if let Ok((mut c, _)) = echo.accept() {
            let _ = c.set_nodelay(true);
            let mut b = [0u8; 64];
            while let Ok(n) = c.read(&mut b) {
                if n == 0 || c.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let (bytes_sent, rtts) = net.in_ns(&from.ns, move || -> Result<(u64, Vec<f64>)> {
        let mut c = TcpStream::connect((to_ip, 7200))?;
        let buf = vec![7u8; 1 << 16];
        let t0 = Instant::now();
        let mut sent = 0u64;
        while t0.elapsed() < Duration::from_secs(1) {
            c.write_all(&buf)?;
            sent += buf.len() as u64;
        }
        drop(c);
        let mut c = TcpStream::connect((to_ip, 7201))?;
        c.set_nodelay(true)?;
        let mut rtts = Vec::with_capacity(2000);
        let mut b = [0u8; 64];
        for _ in 0..2000 {
            let t = Instant::now();
            c.write_all(&b)?;
            c.read_exact(&mut b)?;
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok((sent, rtts))
    })??;
    let got = s.join().map_err(|_| anyhow!("sink panicked"))?;
    let _ = e.join();
    let _ = bytes_sent;
    Ok((got as f64 * 8.0 / 1e9, rtts))
}

fn overhead(bed: &Bed) -> Result<Table> {
    let mut t = Table::new(
        "overhead: non-VIP TCP between two lab hosts, with and without XDP",
        &[
            "XDP",
            "throughput (Gbit/s, 1 s, median of 3)",
            "RTT p50",
            "RTT p99",
            "throughput change",
            "target",
            "verdict",
        ],
    );
    let runs = || -> Result<(f64, Vec<f64>)> {
        let (mut tp, mut rtts) = (vec![], vec![]);
        for _ in 0..3 {
            let (g, r) = throughput(&bed.net, &bed.a, &bed.b)?;
            tp.push(g);
            rtts.extend(r);
        }
        tp.sort_by(|a, b| a.total_cmp(b));
        Ok((tp[1], rtts))
    };
    let (with, rw) = runs()?;
    detach(&bed.net, &bed.a)?;
    detach(&bed.net, &bed.b)?;
    let (without, rwo) = runs()?;
    attach(&bed.net, &bed.a)?;
    attach(&bed.net, &bed.b)?;
    let change = (with / without - 1.0) * 100.0;
    let verdict = if change >= -3.0 {
        "met".to_string()
    } else {
        format!("missed by {:.1} points", -3.0 - change)
    };
    let [p50w, _, p99w, _] = summary(&rw).context("no rtt")?;
    let [p50o, _, p99o, _] = summary(&rwo).context("no rtt")?;
    t.rows.push(vec![
        "attached (both hosts)".into(),
        format!("{with:.2}"),
        format!("{p50w:.1} µs"),
        format!("{p99w:.1} µs"),
        format!("{change:+.1} %"),
        "≥ −3 %".into(),
        verdict,
    ]);
    t.rows.push(vec![
        "detached".into(),
        format!("{without:.2}"),
        format!("{p50o:.1} µs"),
        format!("{p99o:.1} µs"),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    t.notes.push("Over veth pairs and a bridge in one machine: the numbers compare XDP on/off in the same run, not a NIC's line rate. TX checksum offload is off on the lab's veths (see ARCHITECTURE.md).".into());
    Ok(t)
}

/// Runs the data-plane benchmarks named in `which`.
pub fn run(which: &[&str], trials: u64) -> Result<Vec<Table>> {
    let bed = bed()?;
    let mut out = Vec::new();
    if which.contains(&"vip-move") {
        out.push(vip_move(&bed, trials).context("vip-move")?);
    }
    if which.contains(&"arp") {
        out.push(arp(&bed).context("arp")?);
    }
    if which.contains(&"overhead") {
        out.push(overhead(&bed).context("overhead")?);
    }
    Ok(out)
}
