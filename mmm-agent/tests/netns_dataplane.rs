//! The data plane in real network namespaces: a client and two hosts on a private bridge, XDP
//! in native mode on each host's veth, driven through the `mmm-agent` binary as an operator
//! would. Needs root; never skipped.

use mmm_tests::{netns::fmt_mac, Host, Net};
use std::{net::Ipv4Addr, path::PathBuf, process::Command, time::Duration};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);
const PORT: u16 = 7000;
const T: Duration = Duration::from_secs(2);

fn pin_root(net: &Net, name: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/mmm/{}-{name}", net.prefix()))
}

fn agent(net: &Net, ns: &str, root: &PathBuf, args: &[&str]) -> Command {
    let mut c = net.command(ns, env!("CARGO_BIN_EXE_mmm-agent")).unwrap();
    c.arg("--pin-root").arg(root).args(args);
    c
}

/// Runs `mmm-agent args…` on `host`; panics with its output when it fails.
fn agent_ok(net: &Net, host: &Host, args: &[&str]) -> String {
    let out = agent(net, &host.ns, &pin_root(net, &host.name), args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mmm-agent {args:?} on {} failed: {}{}",
        host.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `mmm-agent args…` on `host`, expecting failure; returns stderr.
fn agent_err(net: &Net, host: &Host, args: &[&str]) -> String {
    let out = agent(net, &host.ns, &pin_root(net, &host.name), args)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "mmm-agent {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// client (.50), a (.11), b (.12); the data plane attached on a and b, pass programs on the
/// bridge side so native XDP_TX on the veths is delivered.
fn setup(tag: &str) -> (Net, Host, Host, Host) {
    let mut net = Net::new(tag).unwrap();
    let client = net
        .add_host("client", "eth0", Ipv4Addr::new(198, 18, 0, 50), 0x50)
        .unwrap();
    let a = net
        .add_host("a", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)
        .unwrap();
    let b = net
        .add_host("b", "eth0", Ipv4Addr::new(198, 18, 0, 12), 0x12)
        .unwrap();
    for h in [&a, &b] {
        net.track_pins(pin_root(&net, &h.name));
        let out = agent_ok(&net, h, &["attach", "--iface", "eth0", "--mode", "native"]);
        assert!(out.contains("attached to eth0 (Driver mode)"), "{out}");
    }
    let br = net.bridge_ns().to_string();
    let br_root = pin_root(&net, "br");
    net.track_pins(br_root.clone());
    for h in [&a, &b] {
        let out = agent(&net, &br, &br_root, &["peer-pass", "--iface", &h.peer])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (net, client, a, b)
}

fn counter(net: &Net, h: &Host, vip: Ipv4Addr, field: &str) -> u64 {
    let json = agent_ok(net, h, &["vip", "list", "--iface", "eth0", "--json"]);
    let key = format!("\"vip\":\"{vip}\"");
    let obj = json
        .split('}')
        .find(|o| o.contains(&key))
        .unwrap_or_else(|| panic!("{vip} not in table of {}: {json}", h.name));
    let needle = format!("\"{field}\":");
    let rest = &obj[obj.find(&needle).unwrap() + needle.len()..];
    rest.split([',', '}']).next().unwrap().parse().unwrap()
}

/// `client` keeps `owner`'s MAC for `vip`, whatever happens next (a stale ARP cache).
fn stale_arp_cache(net: &Net, client: &Host, vip: Ipv4Addr, owner: &Host) {
    net.exec(
        &client.ns,
        "ip",
        &[
            "neigh",
            "replace",
            &vip.to_string(),
            "lladdr",
            &fmt_mac(&owner.mac),
            "dev",
            "eth0",
            "nud",
            "permanent",
        ],
    )
    .unwrap();
}

fn ping(net: &Net, from: &Host, to: Ipv4Addr) -> bool {
    net.exec_status(&from.ns, "ping", &["-c", "1", "-W", "1", &to.to_string()])
        .unwrap()
        .status
        .success()
}

fn lo_has(net: &Net, h: &Host, vip: Ipv4Addr) -> bool {
    net.exec(&h.ns, "ip", &["-4", "addr", "show", "dev", "lo"])
        .unwrap()
        .contains(&format!("{vip}/32"))
}

#[test]
fn arp_for_a_vip_is_answered_by_xdp_and_never_by_the_kernel() {
    let (net, client, a, b) = setup("arp");
    agent_ok(
        &net,
        &a,
        &[
            "vip",
            "acquire",
            "-i",
            "eth0",
            &VIP.to_string(),
            "--garp-rounds",
            "0",
        ],
    );
    assert!(lo_has(&net, &a, VIP));
    assert!(ping(&net, &client, VIP), "client cannot reach the VIP");
    assert_eq!(
        net.neighbour(&client.ns, "eth0", VIP).unwrap(),
        Some(fmt_mac(&a.mac))
    );
    assert!(
        counter(&net, &a, VIP, "arp_replies") >= 1,
        "the reply did not come from XDP"
    );

    // Without XDP the kernel stays silent for an address on lo (the sysctls the agent set).
    agent_ok(&net, &b, &["detach", "-i", "eth0"]);
    net.exec(
        &b.ns,
        "ip",
        &["addr", "add", &format!("{VIP2}/32"), "dev", "lo"],
    )
    .unwrap();
    assert!(
        !ping(&net, &client, VIP2),
        "the kernel answered ARP for a VIP"
    );
    assert_eq!(net.neighbour(&client.ns, "eth0", VIP2).unwrap(), None);
    // Control: with the kernel's default the same setup is answered, so the check above can fail.
    net.exec(&b.ns, "sysctl", &["-qw", "net.ipv4.conf.eth0.arp_ignore=0"])
        .unwrap();
    assert!(
        Net::wait_for(T * 2, || ping(&net, &client, VIP2)),
        "control ping failed"
    );
}

#[test]
fn tcp_follows_the_vip_steering_serves_stale_clients_and_fence_blocks() {
    let (mut net, client, a, b) = setup("steer");
    net.tcp_server(&a.ns, PORT, "a").unwrap();
    net.tcp_server(&b.ns, PORT, "b").unwrap();
    agent_ok(
        &net,
        &a,
        &["vip", "acquire", "-i", "eth0", &VIP.to_string()],
    );
    assert_eq!(net.tcp_get(&client.ns, VIP, PORT, T).unwrap(), "a");
    assert!(counter(&net, &a, VIP, "passed") >= 1);

    // The client keeps A's MAC for the VIP, whatever happens next (a stale ARP cache).
    stale_arp_cache(&net, &client, VIP, &a);

    // Move A -> B by map writes: B takes it (no GARP), A steers to B.
    agent_ok(
        &net,
        &b,
        &[
            "vip",
            "acquire",
            "-i",
            "eth0",
            &VIP.to_string(),
            "--garp-rounds",
            "0",
        ],
    );
    agent_ok(
        &net,
        &a,
        &[
            "vip",
            "release",
            "-i",
            "eth0",
            &VIP.to_string(),
            "--steer",
            &fmt_mac(&b.mac),
        ],
    );
    assert!(!lo_has(&net, &a, VIP) && lo_has(&net, &b, VIP));
    assert_eq!(net.tcp_get(&client.ns, VIP, PORT, T).unwrap(), "b");
    assert!(counter(&net, &a, VIP, "steered") >= 1, "A did not steer");
    assert_eq!(
        net.neighbour(&client.ns, "eth0", VIP).unwrap(),
        Some(fmt_mac(&a.mac))
    );

    // Non-VIP traffic between the hosts is untouched.
    assert_eq!(net.tcp_get(&client.ns, a.ip, PORT, T).unwrap(), "a");
    assert_eq!(net.tcp_get(&client.ns, b.ip, PORT, T).unwrap(), "b");
    assert_eq!(net.tcp_get(&a.ns, b.ip, PORT, T).unwrap(), "b");
    assert_eq!(net.tcp_get(&b.ns, a.ip, PORT, T).unwrap(), "a");

    // Fence: nobody may receive the VIP.
    agent_ok(
        &net,
        &b,
        &["vip", "release", "-i", "eth0", &VIP.to_string(), "--fence"],
    );
    assert!(!lo_has(&net, &b, VIP));
    assert!(net
        .tcp_get(&client.ns, VIP, PORT, Duration::from_millis(500))
        .is_err());
    assert!(counter(&net, &b, VIP, "dropped") >= 1, "B did not drop");
    let table = agent_ok(&net, &b, &["vip", "list", "-i", "eth0"]);
    assert!(table.contains("198.18.0.100     fence"), "{table}");
}

#[test]
fn pins_outlive_the_agent_and_detach_leaves_nothing_behind() {
    let (mut net, client, a, _b) = setup("pins");
    net.tcp_server(&a.ns, PORT, "a").unwrap();
    agent_ok(
        &net,
        &a,
        &["vip", "acquire", "-i", "eth0", &VIP.to_string()],
    );

    // An agent process that holds the data plane is killed: traffic keeps flowing.
    let root = pin_root(&net, &a.name);
    let mut cmd = agent(&net, &a.ns, &root, &["attach", "-i", "eth0", "--wait"]);
    cmd.stdout(std::process::Stdio::null());
    let pid = net.spawn(cmd).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    net.kill(pid);
    assert_eq!(net.tcp_get(&client.ns, VIP, PORT, T).unwrap(), "a");

    // A new agent re-opens the pins: same table, counters kept.
    let out = agent_ok(&net, &a, &["attach", "-i", "eth0"]);
    assert!(out.contains("already attached"), "{out}");
    assert!(counter(&net, &a, VIP, "passed") >= 1);
    assert_eq!(net.tcp_get(&client.ns, VIP, PORT, T).unwrap(), "a");

    // Detach removes address, link, program and pins.
    let dir = root.join("eth0");
    let prog_id = aya::programs::ProgramInfo::from_pin(dir.join("prog"))
        .unwrap()
        .id();
    let out = agent_ok(&net, &a, &["detach", "-i", "eth0"]);
    assert!(out.contains("VIP addresses removed: 198.18.0.100"), "{out}");
    assert!(!dir.exists(), "pins left under {}", dir.display());
    assert!(!lo_has(&net, &a, VIP));
    let link = net
        .exec(&a.ns, "ip", &["link", "show", "dev", "eth0"])
        .unwrap();
    assert!(!link.contains("xdp"), "XDP still attached: {link}");
    assert!(
        Net::wait_for(T, || !aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .any(|p| p.id() == prog_id)),
        "program {prog_id} still loaded"
    );
    // Detaching again is harmless.
    agent_ok(&net, &a, &["detach", "-i", "eth0"]);
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let net = Net::new("bad").unwrap();
    let mut net = net;
    let h = net
        .add_host("a", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)
        .unwrap();
    net.track_pins(pin_root(&net, "a"));
    let e = agent_err(&net, &h, &["attach", "-i", "nosuch0"]);
    assert!(e.contains("'nosuch0' does not exist"), "{e}");
    assert!(
        !pin_root(&net, "a").join("nosuch0").exists(),
        "a failed attach left pins"
    );
    let e = agent_err(&net, &h, &["vip", "list", "-i", "eth0"]);
    assert!(e.contains("not attached to 'eth0'"), "{e}");
    let e = agent_err(&net, &h, &["attach", "-i", "../x"]);
    assert!(e.contains("not valid"), "{e}");
    let e = agent_err(
        &net,
        &h,
        &[
            "vip",
            "release",
            "-i",
            "eth0",
            "198.18.0.1",
            "--steer",
            "zz",
        ],
    );
    assert!(e.contains("'zz' is not a MAC address"), "{e}");
    assert!(net
        .add_host("x", "eth0", Ipv4Addr::new(10, 0, 0, 1), 1)
        .is_err());
}

/// One host with nothing attached yet, and where its pins go.
fn lone_host(tag: &str) -> (Net, Host, PathBuf) {
    let mut net = Net::new(tag).unwrap();
    let a = net
        .add_host("a", "eth0", Ipv4Addr::new(198, 18, 0, 11), 0x11)
        .unwrap();
    let root = pin_root(&net, "a");
    net.track_pins(root.clone());
    (net, a, root)
}

#[test]
fn counter_slots_and_the_local_filter_follow_the_table() {
    use mmm_agent::dataplane::{AttachMode, DataPlane, Netlink};
    use mmm_common::Action;
    let (_net, a, root) = lone_host("dpslot");
    // 198.18.0.100 and 198.18.16.100 share a filter bit; .101 has its own.
    let (x, y, z) = (VIP, Ipv4Addr::new(198, 18, 16, 100), VIP2);
    mmm_tests::netns::block_on_in(&a.ns, move || async move {
        let nl = Netlink::new().unwrap();
        let (mut dp, _) = DataPlane::attach(&nl, &root, "eth0", AttachMode::Native)
            .await
            .unwrap();
        let mac = [2, 0, 0, 0, 0, 0x12];
        dp.set(x, Action::Local, mac).unwrap();
        dp.set(y, Action::Local, mac).unwrap();
        dp.set(z, Action::Steer, mac).unwrap();
        let slots: Vec<u32> = [x, y, z]
            .iter()
            .map(|v| dp.get(*v).unwrap().unwrap().slot)
            .collect();
        assert_eq!(slots, [0, 1, 2]);
        assert!(dp.may_be_local(x).unwrap() && dp.may_be_local(y).unwrap());
        assert!(!dp.may_be_local(z).unwrap(), "a STEER VIP sets no bit");
        // x leaves LOCAL: the bit stays for y; y leaves too: the bit goes.
        dp.set(x, Action::Steer, mac).unwrap();
        assert!(dp.may_be_local(y).unwrap());
        assert_eq!(dp.get(x).unwrap().unwrap().slot, 0, "a VIP keeps its slot");
        dp.remove(y).unwrap();
        assert!(!dp.may_be_local(x).unwrap());
        // The freed slot is reused, with its counters zeroed.
        dp.set(Ipv4Addr::new(198, 18, 0, 102), Action::Fence, mac)
            .unwrap();
        assert_eq!(
            dp.get(Ipv4Addr::new(198, 18, 0, 102))
                .unwrap()
                .unwrap()
                .slot,
            1
        );
        assert_eq!(
            dp.stats(Ipv4Addr::new(198, 18, 0, 102)).unwrap(),
            Default::default()
        );
        DataPlane::detach(&nl, &root, "eth0").await.unwrap();
    })
    .unwrap();
}

#[test]
fn a_failed_gratuitous_arp_does_not_fail_the_acquire() {
    use mmm_agent::dataplane::{acquire, AttachMode, DataPlane, Netlink};
    use mmm_common::Action;
    let (_net, a, root) = lone_host("dpgarp");
    let ns = a.ns.clone();
    mmm_tests::netns::block_on_in(&a.ns, move || async move {
        let nl = Netlink::new().unwrap();
        let (mut dp, _) = DataPlane::attach(&nl, &root, "eth0", AttachMode::Native)
            .await
            .unwrap();
        // A link that is down refuses every frame (ENETDOWN): the announcement fails.
        let out = mmm_tests::netns::command_in(&ns, "ip")
            .unwrap()
            .args(["link", "set", "eth0", "down"])
            .output()
            .unwrap();
        assert!(out.status.success());
        acquire(&mut dp, &nl, VIP, 2, Duration::from_millis(10), false)
            .await
            .expect("the VIP is ours even when the announcement fails");
        assert_eq!(dp.get(VIP).unwrap().unwrap().action, Action::Local as u8);
        DataPlane::detach(&nl, &root, "eth0").await.unwrap();
    })
    .unwrap();
}

#[test]
fn two_hosts_steering_to_each_other_never_loop_a_frame() {
    // The moment of a failover when the new owner still steers to the old one (it has not
    // taken the VIP yet) while the old owner already steers to it.
    let (net, client, a, b) = setup("loop");
    let vip = VIP.to_string();
    for (h, other) in [(&a, &b), (&b, &a)] {
        agent_ok(
            &net,
            h,
            &["vip", "acquire", "-i", "eth0", &vip, "--garp-rounds", "0"],
        );
        agent_ok(
            &net,
            h,
            &[
                "vip",
                "release",
                "-i",
                "eth0",
                &vip,
                "--steer",
                &fmt_mac(&other.mac),
            ],
        );
    }
    stale_arp_cache(&net, &client, VIP, &a);
    // Nobody owns the VIP: the connection fails, after A steered its SYNs to B once each.
    assert!(net
        .tcp_get(&client.ns, VIP, PORT, Duration::from_millis(1500))
        .is_err());
    let (sa, sb) = (
        counter(&net, &a, VIP, "steered"),
        counter(&net, &b, VIP, "steered"),
    );
    assert!((1..=4).contains(&sa), "A steered {sa} frames");
    assert_eq!(sb, 0, "B sent A's frames back");
}
