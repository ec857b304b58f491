//! The reference model of the data plane's answer to a TCP segment sent to a fenced VIP,
//! written independently of the program: the reset frame RFC 9293 §3.10.7.1 calls for, and
//! checksum verification by summing a header with its checksum (RFC 1071: all ones).

/// The frame answering `f` (its IPv4 header at `off`, sent to `me`), or `None` when the
/// program must drop it instead.
pub fn reset_model(f: &[u8], off: usize, me: [u8; 6]) -> Option<Vec<u8>> {
    let ip = f.get(off..off + 20)?;
    let tcp = f.get(off + 20..off + 40)?;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let doff = usize::from(tcp[12] >> 4) * 4;
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let flags = tcp[13];
    if ip[0] != 0x45
        || ip[9] != 6
        || fragment
        || doff < 20
        || total < 20 + doff
        || off + total > f.len()
        || flags & 0x04 != 0
    {
        return None;
    }
    let mut o = Vec::with_capacity(off + 40);
    o.extend_from_slice(&f[6..12]);
    o.extend_from_slice(&me);
    o.extend_from_slice(&f[12..off]);
    let (seq, ack, ctl) = if flags & 0x10 != 0 {
        (
            u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
            0,
            0x04,
        )
    } else {
        let seg_len = (total - 20 - doff) as u32
            + u32::from(flags & 0x02 != 0)
            + u32::from(flags & 0x01 != 0);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        (0, seq.wrapping_add(seg_len), 0x14)
    };
    let mut h = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
    h.extend_from_slice(&ip[16..20]);
    h.extend_from_slice(&ip[12..16]);
    let c = checksum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut t = Vec::new();
    t.extend_from_slice(&tcp[2..4]);
    t.extend_from_slice(&tcp[0..2]);
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, ctl, 0, 0, 0, 0, 0, 0]);
    let c = checksum(&t, pseudo(&h));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    o.extend(h);
    o.extend(t);
    Some(o)
}

/// The pseudo-header's sum for a 20-byte TCP header after IPv4 header `h`.
fn pseudo(h: &[u8]) -> u64 {
    h[12..20]
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u64>()
        + 6
        + 20
}

/// The Internet checksum of `b` with `extra` added (RFC 1071), in a 64-bit accumulator.
fn checksum(b: &[u8], extra: u64) -> u16 {
    let mut s: u64 = extra
        + b.chunks(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum::<u64>();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Whether the IPv4 and TCP checksums of the reset at `off` in `f` verify.
pub fn checksums_verify(f: &[u8], off: usize) -> bool {
    let (h, t) = (&f[off..off + 20], &f[off + 20..off + 40]);
    checksum(h, 0) == 0 && checksum(t, pseudo(h)) == 0
}
