//! Gratuitous ARP: after acquiring a VIP, tell the segment its new MAC at once. Also the
//! hand-over probe: a host giving a VIP up asks who has it, and learns from the answer (which
//! its XDP counts as a claim on a VIP it still holds) that the new owner took it.
//!
//! Each round sends two broadcast frames, the request form (op 1) and the reply form (op 2) of a
//! gratuitous ARP (sender and target protocol address both the VIP), as MMM did; Linux hosts
//! and switches accept either. Frames leave through an `AF_PACKET` socket bound to the cluster
//! interface, so they never pass through our own (ingress-only) XDP program.

use std::{io, net::Ipv4Addr, time::Duration};

/// Length of an ARP frame on Ethernet without padding.
pub const FRAME_LEN: usize = 42;
const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The two frames of one gratuitous-ARP round for `vip` at `mac`: request form, reply form.
pub fn frames(mac: [u8; 6], vip: Ipv4Addr) -> [[u8; FRAME_LEN]; 2] {
    let mut out = [[0u8; FRAME_LEN]; 2];
    for (f, op) in out.iter_mut().zip([1u16, 2u16]) {
        f[0..6].copy_from_slice(&BROADCAST);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype Ethernet
        f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
        f[18] = 6;
        f[19] = 4;
        f[20..22].copy_from_slice(&op.to_be_bytes());
        f[22..28].copy_from_slice(&mac);
        f[28..32].copy_from_slice(&vip.octets());
        // tha: zero in the request form, broadcast in the reply form.
        if op == 2 {
            f[32..38].copy_from_slice(&BROADCAST);
        }
        f[38..42].copy_from_slice(&vip.octets());
    }
    out
}

/// An ARP request "who has `vip`? tell `ip`" from `mac`: the new owner's XDP answers it once the
/// VIP is LOCAL there. The sender address is the host's own, never the VIP (that would be a
/// claim on it).
pub fn probe(mac: [u8; 6], ip: Ipv4Addr, vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    asked_by(frames(mac, vip)[0], ip)
}

/// The request form of a gratuitous ARP turned into a question from `ip`.
fn asked_by(mut request: [u8; FRAME_LEN], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    request[28..32].copy_from_slice(&ip.octets());
    request
}

/// An `AF_PACKET` socket on one interface for sending gratuitous ARP. Opened with protocol 0
/// (no receive hook: it never queues a copy of the segment's ARP traffic). Closing such a
/// socket waits for an RCU grace period in the kernel (~10 ms), so the agent sends the first
/// round and closes it off the critical path.
pub struct Announcer {
    fd: std::os::fd::OwnedFd,
    addr: libc::sockaddr_ll,
    frames: [[u8; FRAME_LEN]; 2],
}

impl Announcer {
    /// Opens the socket for announcing `vip` at `mac` out of interface `ifindex`.
    pub fn open(ifindex: u32, mac: [u8; 6], vip: Ipv4Addr) -> io::Result<Announcer> {
        // SAFETY: plain socket(2) call; the fd is owned below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_ll is a valid value; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ARP.to_be();
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&BROADCAST);
        Ok(Announcer {
            fd,
            addr,
            frames: frames(mac, vip),
        })
    }

    /// Sends one round (request form and reply form).
    pub fn round(&self) -> io::Result<()> {
        for f in &self.frames {
            self.send(f)?;
        }
        Ok(())
    }

    /// Sends [`probe`] for this VIP from `ip`.
    pub fn probe(&self, ip: Ipv4Addr) -> io::Result<()> {
        self.send(&asked_by(self.frames[0], ip))
    }

    fn send(&self, f: &[u8; FRAME_LEN]) -> io::Result<()> {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
        // SAFETY: buffer and address are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                raw,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&self.addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends `rounds` more rounds (blocking), the first after `first`, the others `interval`
    /// apart, then closes the socket.
    pub fn rest(self, first: Duration, rounds: u32, interval: Duration) -> io::Result<()> {
        for i in 0..rounds {
            std::thread::sleep(if i == 0 { first } else { interval });
            self.round()?;
        }
        Ok(())
    }
}

/// Sends `rounds` rounds of gratuitous ARP for `vip` out of interface `ifindex`, `interval`
/// apart, blocking; the first round leaves immediately.
pub fn announce(
    ifindex: u32,
    mac: [u8; 6],
    vip: Ipv4Addr,
    rounds: u32,
    interval: Duration,
) -> io::Result<()> {
    if rounds == 0 {
        return Ok(());
    }
    let a = Announcer::open(ifindex, mac, vip)?;
    a.round()?;
    a.rest(interval, rounds - 1, interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_asks_for_the_vip_from_the_host_address() {
        let (mac, ip, vip) = (
            [2, 0, 0, 0, 0, 0x11],
            Ipv4Addr::new(198, 18, 0, 11),
            Ipv4Addr::new(198, 18, 0, 100),
        );
        let f = probe(mac, ip, vip);
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(&f[20..22], &[0, 1], "a request");
        assert_eq!(&f[22..28], &mac);
        assert_eq!(&f[28..32], &ip.octets(), "never the VIP as sender");
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &vip.octets());
    }

    #[test]
    fn frames_are_gratuitous_request_and_reply() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip = Ipv4Addr::new(198, 18, 0, 100);
        let [req, rep] = frames(mac, vip);
        let expect_req: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, // eth
            0, 1, 0x08, 0x00, 6, 4, 0, 1, // htype ptype hlen plen op=1
            2, 0, 0, 0, 0, 1, 198, 18, 0, 100, // sha spa
            0, 0, 0, 0, 0, 0, 198, 18, 0, 100, // tha tpa
        ];
        assert_eq!(req, expect_req);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[32..38], &[0xff; 6]);
        assert_eq!(&rep[28..32], &rep[38..42], "spa == tpa: gratuitous");
    }
}
