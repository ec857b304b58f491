//! Network namespaces, veth pairs and a bridge, built with iproute2 and torn down on drop.

use anyhow::{bail, Context, Result};
use std::{
    net::Ipv4Addr,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Panics with a clear message unless running as root (these tests are never skipped).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test creates network namespaces and loads XDP programs: it needs root and is not skipped"
    );
}

/// A command that will run inside network namespace `ns` (and only that namespace: never a
/// mount namespace, so bpffs pins stay the host's).
pub fn command_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
    let f = std::fs::File::open(Path::new("/run/netns").join(ns))
        .with_context(|| format!("opening network namespace {ns}"))?;
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe; the fd stays open in the closure until exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null());
    Ok(cmd)
}

/// Whether `ip` is inside 198.18.0.0/15.
pub fn in_lab_range(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 198 && (o[1] & 0xfe) == 18
}

/// One host: a namespace with one interface on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// Short name given by the test (`a`, `db1`, `client`).
    pub name: String,
    /// The namespace name (prefixed).
    pub ns: String,
    /// The interface name inside the namespace.
    pub iface: String,
    /// Its address (/24 on the interface).
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The other end of its veth pair: on the bridge (in the bridge namespace), or the other
    /// host's interface for a pair made by [`Net::add_pair`].
    pub peer: String,
}

/// A private L2 segment with hosts on it.
pub struct Net {
    prefix: String,
    bridge_ns: String,
    hosts: Vec<Host>,
    children: Vec<Child>,
    pin_dirs: Vec<PathBuf>,
    cleanup: Vec<Box<dyn FnOnce() + Send + Sync>>,
}

fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

/// `aa:bb:..`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Net {
    /// A new segment: a bridge `br0` in its own namespace. `tag` ends up in every name.
    pub fn new(tag: &str) -> Result<Net> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Net::with_prefix(&format!("mmmt{}{}{}", std::process::id(), tag, n))
    }

    /// A new segment whose namespaces are all named `<prefix>-…`.
    pub fn with_prefix(prefix: &str) -> Result<Net> {
        require_root();
        let prefix = prefix.to_string();
        let bridge_ns = format!("{prefix}-br");
        let net = Net {
            prefix,
            bridge_ns: bridge_ns.clone(),
            hosts: Vec::new(),
            children: Vec::new(),
            pin_dirs: Vec::new(),
            cleanup: Vec::new(),
        };
        ip(&["netns", "add", &bridge_ns])?;
        ip(&["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge_ns, "link", "set", "br0", "up"])?;
        Ok(net)
    }

    /// The per-run prefix of every name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bridge namespace.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// Adds host `name` with interface `iface`, address `ip`/24 and a MAC ending in `mac_last`.
    pub fn add_host(
        &mut self,
        name: &str,
        iface: &str,
        ip_addr: Ipv4Addr,
        mac_last: u8,
    ) -> Result<Host> {
        let peer = format!("v{}", self.hosts.len());
        let host = self.new_host(name, iface, ip_addr, mac_last, &peer)?;
        ip(&[
            "link",
            "add",
            iface,
            "address",
            &fmt_mac(&host.mac),
            "netns",
            &host.ns,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &self.bridge_ns,
        ])?;
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &peer,
            "master",
            "br0",
            "up",
        ])?;
        self.configure(&host)?;
        Ok(host)
    }

    /// Adds two hosts joined by one veth pair of their own, off the bridge (a point-to-point
    /// wire: both ends `eth0`, addresses /24, MACs ending in the given bytes). Each host's
    /// `peer` names the other host's interface.
    pub fn add_pair(
        &mut self,
        a: (&str, Ipv4Addr, u8),
        b: (&str, Ipv4Addr, u8),
    ) -> Result<(Host, Host)> {
        let ha = self.new_host(a.0, "eth0", a.1, a.2, "eth0")?;
        let hb = self.new_host(b.0, "eth0", b.1, b.2, "eth0")?;
        ip(&[
            "link",
            "add",
            "eth0",
            "address",
            &fmt_mac(&ha.mac),
            "netns",
            &ha.ns,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            &fmt_mac(&hb.mac),
            "netns",
            &hb.ns,
        ])?;
        self.configure(&ha)?;
        self.configure(&hb)?;
        Ok((ha, hb))
    }

    /// Creates the namespace of a new host (torn down on drop).
    fn new_host(
        &mut self,
        name: &str,
        iface: &str,
        ip_addr: Ipv4Addr,
        mac_last: u8,
        peer: &str,
    ) -> Result<Host> {
        if !in_lab_range(ip_addr) {
            bail!("{ip_addr} is outside 198.18.0.0/15: the lab uses no other addresses");
        }
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns])?;
        let host = Host {
            name: name.into(),
            ns,
            iface: iface.into(),
            ip: ip_addr,
            mac: [0x02, 0x00, 0x00, 0x00, 0x00, mac_last],
            peer: peer.into(),
        };
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// Address, links up, and a real wire's checksums on a new host's interface.
    fn configure(&self, h: &Host) -> Result<()> {
        let (ns, iface) = (&h.ns, &h.iface);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", h.ip),
            "dev",
            iface,
        ])?;
        ip(&["-n", ns, "link", "set", iface, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // A frame a veth sends with a partial (offloaded) checksum loses that state when XDP
        // re-transmits it (XDP_TX), and arrives with a bad checksum. Frames from a real wire
        // always carry finished checksums; turning TX offload off makes the lab's wire real.
        run(self
            .command(ns, "ethtool")?
            .args(["-K", iface, "tx", "off"]))?;
        Ok(())
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Gives up ownership: nothing is torn down on drop (a lab left running).
    pub fn leak(mut self) {
        self.hosts.clear();
        self.children.clear();
        self.pin_dirs.clear();
        self.cleanup.clear();
        self.bridge_ns.clear();
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host '{name}' in this net"))
    }

    /// A command that will run inside `ns`'s network namespace (and only that namespace).
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
        command_in(ns, program)
    }

    /// Runs `program args…` in `ns` to completion; an error (with its output) if it fails.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Result<String> {
        let out = run(self.command(ns, program)?.args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `program args…` in `ns`; returns its output whatever its exit status.
    pub fn exec_status(&self, ns: &str, program: &str, args: &[&str]) -> Result<Output> {
        self.command(ns, program)?
            .args(args)
            .output()
            .with_context(|| format!("running {program} in {ns}"))
    }

    /// Starts `cmd` (built with [`Net::command`]); it is killed (by pid) on drop.
    pub fn spawn(&mut self, mut cmd: Command) -> Result<u32> {
        let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Kills a child started with [`Net::spawn`] with SIGKILL and reaps it.
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `f` on a thread that has entered `ns`: sockets it creates live in `ns`.
    pub fn in_ns<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        in_ns_blocking(ns, f)
    }

    /// A `Net` that owns nothing (used when a lab is left running).
    pub fn placeholder() -> Net {
        Net {
            prefix: String::new(),
            bridge_ns: String::new(),
            hosts: Vec::new(),
            children: Vec::new(),
            pin_dirs: Vec::new(),
            cleanup: Vec::new(),
        }
    }

    /// Remembers a pin directory to remove on drop (after its link was detached by the test or
    /// by [`Net::on_drop`] hooks).
    pub fn track_pins(&mut self, dir: PathBuf) {
        self.pin_dirs.push(dir);
    }
}

/// Runs the future `f()` to completion on a current-thread tokio runtime, on a thread inside
/// network namespace `ns` (sockets it opens live in `ns`). Blocking-pool work still running at
/// the end (e.g. later gratuitous ARP rounds) is left to finish in the background.
pub fn block_on_in<T: Send + 'static, F: std::future::Future<Output = T>>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> Result<T> {
    in_ns_blocking(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let r = rt.block_on(f());
        rt.shutdown_background();
        Ok(r)
    })?
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn in_ns_blocking<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    {
        let file = std::fs::File::open(Path::new("/run/netns").join(ns))
            .with_context(|| format!("opening network namespace {ns}"))?;
        std::thread::spawn(move || {
            // SAFETY: valid namespace fd; affects only this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(anyhow::anyhow!(
                    "setns: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
    }
}

impl Net {
    /// Runs `f` on drop, before namespaces are deleted (e.g. a detach command).
    pub fn on_drop(&mut self, f: impl FnOnce() + Send + Sync + 'static) {
        self.cleanup.push(Box::new(f));
    }

    /// Serves TCP on `0.0.0.0:port` inside `ns`: each connection gets `reply` and is closed.
    /// Stopped on drop.
    pub fn tcp_server(&mut self, ns: &str, port: u16, reply: &str) -> Result<()> {
        let listener = self.in_ns(ns, move || std::net::TcpListener::bind(("0.0.0.0", port)))??;
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reply = reply.to_string();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = std::io::Write::write_all(&mut s, reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.on_drop(move || {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        });
        Ok(())
    }

    /// Connects from `ns` to `ip:port` and reads until the server closes.
    pub fn tcp_get(
        &self,
        ns: &str,
        ip_addr: Ipv4Addr,
        port: u16,
        timeout: Duration,
    ) -> Result<String> {
        self.in_ns(ns, move || -> Result<String> {
            let addr = std::net::SocketAddr::from((ip_addr, port));
            let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
                .with_context(|| format!("connecting to {addr}"))?;
            s.set_read_timeout(Some(timeout))?;
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out)
                .with_context(|| format!("reading from {addr}"))?;
            Ok(out)
        })?
    }

    /// The neighbour entry (MAC) `ns` holds for `ip` on `iface`, if resolved.
    pub fn neighbour(&self, ns: &str, iface: &str, ip_addr: Ipv4Addr) -> Result<Option<String>> {
        let out = ip(&[
            "-n",
            ns,
            "neigh",
            "show",
            &ip_addr.to_string(),
            "dev",
            iface,
        ])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                return Ok(words.next().map(str::to_string));
            }
        }
        Ok(None)
    }

    /// Polls `cond` every 20 ms until it holds or `timeout` passes.
    pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for f in self.cleanup.drain(..).rev() {
            f();
        }
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespaces deletes their interfaces (and with them XDP attachments).
        for h in self.hosts.drain(..).rev() {
            let _ = ip(&["netns", "del", &h.ns]);
        }
        if !self.bridge_ns.is_empty() {
            let _ = ip(&["netns", "del", &self.bridge_ns]);
        }
        for d in self.pin_dirs.drain(..) {
            let _ = std::fs::remove_dir_all(&d);
            if let Some(p) = d.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}
