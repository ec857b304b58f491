//! Frame builders for the XDP packet tests: Ethernet, ARP (RFC 826), 802.1Q tags, IPv4 and
//! TCP headers with fixed, valid fields, so each test states only what it varies.

/// The MAC address every test frame comes from.
pub const CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0xcc];

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

pub fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0, 1, 8, 0, 6, 4];
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f
}

pub fn arp_request(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = eth([0xff; 6], CLIENT, 0x0806);
    f.extend(arp(1, CLIENT, spa, [0; 6], tpa));
    f
}

pub fn vlan(mut frame: Vec<u8>, vid: u16) -> Vec<u8> {
    let inner = frame.split_off(12);
    frame.extend_from_slice(&0x8100u16.to_be_bytes());
    frame.extend_from_slice(&vid.to_be_bytes());
    frame.extend(inner);
    frame
}

pub fn ipv4(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    tcp(dst_mac, src, dst, 0x02, &[])
}

/// A TCP segment (port 12345 → 3306, seq 1, ack 7) with `flags` carrying `payload`.
pub fn tcp(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(dst_mac, CLIENT, 0x0800);
    let total = (40 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    f.extend(ip);
    f.extend_from_slice(&[
        0x30, 0x39, 0x0c, 0xea, 0, 0, 0, 1, 0, 0, 0, 7, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.extend_from_slice(payload);
    f
}
