//! Header facts from the raw bytes of an IP packet (starting at the IP header).

use crate::classify::{Destination, Facts, Family, PROTO_TCP, PROTO_UDP};

/// Why a packet could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its headers say.
    Truncated,
    /// The version nibble is neither 4 nor 6.
    BadVersion(u8),
    /// IPv4 IHL below 5.
    BadHeaderLength,
    /// More IPv6 extension headers than the parser follows.
    TooManyExtensionHeaders,
}

/// IPv6 extension headers followed before the upper-layer header.
const MAX_EXTENSION_HEADERS: usize = 8;

/// Parses an IPv4 or IPv6 packet. `directed_broadcasts` are the subnet broadcast addresses
/// of the local interfaces (IPv4). Ports are read for TCP and UDP from the first fragment
/// only; a non-first fragment gets ports 0.
pub fn parse(packet: &[u8], directed_broadcasts: &[[u8; 4]]) -> Result<Facts, ParseError> {
    let first = *packet.first().ok_or(ParseError::Truncated)?;
    match first >> 4 {
        4 => parse_v4(packet, directed_broadcasts),
        6 => parse_v6(packet),
        v => Err(ParseError::BadVersion(v)),
    }
}

fn ports(protocol: u8, l4: Option<&[u8]>) -> Result<(u16, u16), ParseError> {
    if protocol != PROTO_TCP && protocol != PROTO_UDP {
        return Ok((0, 0));
    }
    match l4 {
        // not the first fragment: no transport header here
        None => Ok((0, 0)),
        Some(h) => match h.get(..4) {
            Some(p) => Ok((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )),
            None => Err(ParseError::Truncated),
        },
    }
}

fn parse_v4(p: &[u8], directed: &[[u8; 4]]) -> Result<Facts, ParseError> {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(ParseError::BadHeaderLength);
    }
    let h = p.get(..ihl).ok_or(ParseError::Truncated)?;
    let protocol = h[9];
    let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    let dst = [h[16], h[17], h[18], h[19]];
    let l4 = if frag_offset == 0 {
        Some(&p[ihl..])
    } else {
        None
    };
    let (src_port, dst_port) = ports(protocol, l4)?;
    let destination = if dst == [255; 4] {
        Destination::LimitedBroadcast
    } else if dst[0] & 0xf0 == 0xe0 {
        Destination::Multicast
    } else if directed.contains(&dst) {
        Destination::DirectedBroadcast
    } else {
        Destination::Unicast
    };
    Ok(Facts {
        family: Family::V4,
        protocol,
        src_port,
        dst_port,
        destination,
    })
}

fn parse_v6(p: &[u8]) -> Result<Facts, ParseError> {
    let h = p.get(..40).ok_or(ParseError::Truncated)?;
    let destination = if h[24] == 0xff {
        Destination::Multicast
    } else {
        Destination::Unicast
    };
    let mut next = h[6];
    let mut off = 40usize;
    let mut first_fragment = true;
    let mut seen = 0;
    loop {
        match next {
            // hop-by-hop, routing, destination options: (len + 1) * 8 bytes
            0 | 43 | 60 => {
                let e = p.get(off..off + 2).ok_or(ParseError::Truncated)?;
                next = e[0];
                off += (usize::from(e[1]) + 1) * 8;
            }
            // fragment header: 8 bytes; offset in the upper 13 bits of bytes 2-3
            44 => {
                let e = p.get(off..off + 8).ok_or(ParseError::Truncated)?;
                next = e[0];
                if u16::from_be_bytes([e[2], e[3]]) >> 3 != 0 {
                    first_fragment = false;
                }
                off += 8;
            }
            // AH: (len + 2) * 4 bytes
            51 => {
                let e = p.get(off..off + 2).ok_or(ParseError::Truncated)?;
                next = e[0];
                off += (usize::from(e[1]) + 2) * 4;
            }
            _ => break,
        }
        seen += 1;
        if seen > MAX_EXTENSION_HEADERS {
            return Err(ParseError::TooManyExtensionHeaders);
        }
    }
    let l4 = if first_fragment {
        Some(p.get(off..).ok_or(ParseError::Truncated)?)
    } else {
        None
    };
    let (src_port, dst_port) = ports(next, l4)?;
    Ok(Facts {
        family: Family::V6,
        protocol: next,
        src_port,
        dst_port,
        destination,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::PROTO_RSVP;

    fn v4(proto: u8, dst: [u8; 4], l4: &[u8], frag: u16) -> [u8; 64] {
        let mut p = [0u8; 64];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        p[12..16].copy_from_slice(&[192, 0, 2, 11]);
        p[16..20].copy_from_slice(&dst);
        p[20..20 + l4.len()].copy_from_slice(l4);
        p
    }

    const UNI: [u8; 4] = [192, 0, 2, 12];

    #[test]
    fn ipv4_ports_protocol_and_destination_classes() {
        let udp = [0x01, 0xf4, 0x01, 0xf4]; // 500 -> 500
        let f = parse(&v4(PROTO_UDP, UNI, &udp, 0), &[]).unwrap();
        assert_eq!(
            (f.family, f.protocol, f.src_port, f.dst_port),
            (Family::V4, 17, 500, 500)
        );
        assert_eq!(f.destination, Destination::Unicast);
        let dirb = [192, 0, 2, 255];
        let cases = [
            ([255, 255, 255, 255], Destination::LimitedBroadcast),
            ([224, 0, 0, 1], Destination::Multicast),
            ([239, 255, 255, 255], Destination::Multicast),
            ([240, 0, 0, 1], Destination::Unicast),
            ([223, 255, 255, 255], Destination::Unicast),
            (dirb, Destination::DirectedBroadcast),
            ([198, 51, 100, 255], Destination::Unicast),
        ];
        for (dst, want) in cases {
            let f = parse(&v4(PROTO_UDP, dst, &udp, 0), &[dirb]).unwrap();
            assert_eq!(f.destination, want, "{dst:?}");
        }
        // RSVP has no ports even if the bytes after the header look like them.
        let f = parse(&v4(PROTO_RSVP, UNI, &udp, 0), &[]).unwrap();
        assert_eq!((f.protocol, f.src_port, f.dst_port), (46, 0, 0));
    }

    #[test]
    fn ipv4_options_fragments_and_truncation() {
        let mut p = v4(PROTO_TCP, UNI, &[], 0);
        p[0] = 0x46; // 24-byte header: ports start at 24
        p[24..28].copy_from_slice(&[0, 88, 0x9c, 0x40]);
        let f = parse(&p, &[]).unwrap();
        assert_eq!((f.src_port, f.dst_port), (88, 40000));
        // non-first fragment: no ports
        let f = parse(&v4(PROTO_UDP, UNI, &[0, 88, 0, 88], 0x2001), &[]).unwrap();
        assert_eq!((f.src_port, f.dst_port), (0, 0));
        // first fragment with MF set still has ports
        let f = parse(&v4(PROTO_UDP, UNI, &[0, 88, 0, 88], 0x2000), &[]).unwrap();
        assert_eq!((f.src_port, f.dst_port), (88, 88));
        let full = v4(PROTO_UDP, UNI, &[0, 88, 0, 88], 0);
        assert_eq!(parse(&full[..23], &[]), Err(ParseError::Truncated));
        assert_eq!(parse(&full[..19], &[]), Err(ParseError::Truncated));
        assert!(parse(&full[..24], &[]).is_ok());
        let mut bad = full;
        bad[0] = 0x44;
        assert_eq!(parse(&bad, &[]), Err(ParseError::BadHeaderLength));
        assert_eq!(parse(&[], &[]), Err(ParseError::Truncated));
        assert_eq!(parse(&[0x50], &[]), Err(ParseError::BadVersion(5)));
    }

    fn v6(next: u8, dst0: u8, rest: &[u8]) -> [u8; 96] {
        let mut p = [0u8; 96];
        p[0] = 0x60;
        p[6] = next;
        p[24] = dst0;
        p[40..40 + rest.len()].copy_from_slice(rest);
        p
    }

    #[test]
    fn ipv6_extension_headers_and_multicast() {
        let f = parse(&v6(PROTO_UDP, 0x20, &[0x11, 0x94, 0x11, 0x94]), &[]).unwrap();
        assert_eq!(
            (f.family, f.protocol, f.src_port, f.dst_port),
            (Family::V6, 17, 4500, 4500)
        );
        assert_eq!(f.destination, Destination::Unicast);
        assert_eq!(
            parse(&v6(58, 0xff, &[]), &[]).unwrap().destination,
            Destination::Multicast
        );
        // hop-by-hop (8 bytes) then UDP
        let mut ext = [0u8; 12];
        ext[0] = PROTO_UDP;
        ext[8..12].copy_from_slice(&[0, 88, 0, 53]);
        let f = parse(&v6(0, 0x20, &ext), &[]).unwrap();
        assert_eq!((f.protocol, f.src_port, f.dst_port), (17, 88, 53));
        // non-first fragment
        let mut frag = [0u8; 12];
        frag[0] = PROTO_TCP;
        frag[2..4].copy_from_slice(&(185u16 << 3).to_be_bytes());
        frag[8..12].copy_from_slice(&[0, 88, 0, 88]);
        let f = parse(&v6(44, 0x20, &frag), &[]).unwrap();
        assert_eq!((f.protocol, f.src_port, f.dst_port), (6, 0, 0));
        // a chain of hop-by-hop headers longer than the limit
        let mut chain = [0u8; 160];
        chain[0] = 0x60; // next header 0 everywhere: hop-by-hop after hop-by-hop
        assert_eq!(parse(&chain, &[]), Err(ParseError::TooManyExtensionHeaders));
        assert_eq!(
            parse(&v6(PROTO_UDP, 0x20, &[])[..42], &[]),
            Err(ParseError::Truncated)
        );
        assert_eq!(parse(&[0x60; 39], &[]), Err(ParseError::Truncated));
    }
}
