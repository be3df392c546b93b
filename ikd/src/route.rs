//! The egress device towards a peer, for offload requests: one rtnetlink `RTM_GETROUTE`
//! ("ip route get PEER from LOCAL"), answered with the route's output interface
//! (`RTA_OIF`), and its name (`if_indextoname`).
//!
//! Why a route lookup and not "the device holding the local address": the SAs' packets
//! leave through the device the kernel routes the peer's address to, and that is the
//! device whose driver must hold the offloaded SA (`xfrm_dev_state_add` binds the SA to
//! one device; packets leaving through another go through software crypto). The local
//! address can sit on another device (a loopback or dummy address, policy routing, a
//! router's inside address), so its device would be the wrong one in exactly the cases
//! where the two differ. Inbound SAs get the same device: with symmetric routing the
//! peer's packets arrive where ours leave.
//!
//! What this module does not do: decide whether to offload (`offload.rs`), or follow route
//! changes after the SAs are installed (a rekey looks the route up again).
//! The encoder and decoder are pure and never panic on any reply; the socket part is the
//! only `unsafe` here, each block with a SAFETY comment.
//!
//! Linux only: elsewhere (FreeBSD) the lookup reports that it is unsupported, and ikd
//! installs the SAs without an offload request.
#![allow(unsafe_code)]
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;

/// Why no egress device was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// The kernel answered with an error (errno), e.g. no route (`ENETUNREACH`).
    Kernel(i32),
    /// The route has no output interface (e.g. a blackhole or local route).
    NoDevice,
    /// The reply did not decode.
    Malformed(&'static str),
    /// The socket failed.
    Io(String),
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kernel(e) => write!(f, "route lookup: {}", io::Error::from_raw_os_error(*e)),
            Self::NoDevice => f.write_str("the route has no output device"),
            Self::Malformed(w) => write!(f, "route lookup reply malformed: {w}"),
            Self::Io(e) => write!(f, "route lookup: {e}"),
        }
    }
}

/// The device the kernel routes `peer` through (with `local` as the source when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Egress {
    /// Interface index.
    pub(crate) ifindex: u32,
    /// Interface name (the index in decimal if the name cannot be read).
    pub(crate) name: String,
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The `RTM_GETROUTE` request for `peer` (from `local` when given; both of one family).
pub(crate) fn encode_request(peer: IpAddr, local: Option<IpAddr>, seq: u32) -> Vec<u8> {
    let local = local.filter(|l| l.is_ipv4() == peer.is_ipv4());
    let (family, bits) = match peer {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32u8),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128u8),
    };
    let mut b = vec![0u8; NLMSG_HDRLEN];
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    b.extend_from_slice(&[
        family,
        bits,
        if local.is_some() { bits } else { 0 },
        0,
        0,
        0,
        0,
        0,
    ]);
    b.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut b, RTA_DST, &addr_bytes(peer));
    if let Some(l) = local {
        push_attr(&mut b, RTA_SRC, &addr_bytes(l));
    }
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The output interface of the reply to request `seq` (messages of other sequence numbers
/// are skipped).
pub(crate) fn parse_reply(reply: &[u8], seq: u32) -> Result<u32, RouteError> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= reply.len() {
        let len = u32_at(reply, at).ok_or(RouteError::Malformed("header"))? as usize;
        if len < NLMSG_HDRLEN || at + len > reply.len() {
            return Err(RouteError::Malformed("message length"));
        }
        let kind = u16_at(reply, at + 4).ok_or(RouteError::Malformed("header"))?;
        let mseq = u32_at(reply, at + 8).ok_or(RouteError::Malformed("header"))?;
        let body = &reply[at + NLMSG_HDRLEN..at + len];
        at += (len + 3) & !3;
        if mseq != seq {
            continue;
        }
        match kind {
            NLMSG_ERROR => {
                let e = u32_at(body, 0).ok_or(RouteError::Malformed("error"))? as i32;
                return Err(if e == 0 {
                    RouteError::NoDevice
                } else {
                    RouteError::Kernel(-e)
                });
            }
            RTM_NEWROUTE => {
                let mut a = RTMSG_LEN;
                while a + 4 <= body.len() {
                    let alen = u16_at(body, a).ok_or(RouteError::Malformed("attribute"))? as usize;
                    let akind = u16_at(body, a + 2).ok_or(RouteError::Malformed("attribute"))?;
                    if alen < 4 || a + alen > body.len() {
                        return Err(RouteError::Malformed("attribute length"));
                    }
                    if akind & 0x3fff == RTA_OIF {
                        return u32_at(body, a + 4)
                            .filter(|_| alen >= 8)
                            .filter(|&i| i != 0)
                            .ok_or(RouteError::NoDevice);
                    }
                    a += (alen + 3) & !3;
                }
                return Err(RouteError::NoDevice);
            }
            _ => {}
        }
    }
    Err(RouteError::Malformed("no answer to the request"))
}

#[cfg(target_os = "linux")]
fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// No rtnetlink off Linux: no egress device, so no offload request.
#[cfg(not(target_os = "linux"))]
fn ask(_req: &[u8], _seq: u32) -> Result<u32, RouteError> {
    Err(RouteError::Io(
        "the egress device lookup needs rtnetlink (Linux)".into(),
    ))
}

#[cfg(target_os = "linux")]
fn ask(req: &[u8], seq: u32) -> Result<u32, RouteError> {
    let io_err = |e: io::Error| RouteError::Io(e.to_string());
    // SAFETY: plain socket(2) call; the returned descriptor is owned below.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })
    .map_err(io_err)?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a live timeval and its size is passed; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map_err(io_err)?;
    // SAFETY: sockaddr_nl is plain old data; all-zero addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `req` and `kernel` are live for the call and their lengths are passed.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    let mut buf = vec![0u8; 8192];
    // SAFETY: `buf` is live and writable for its whole length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    buf.truncate(n as usize);
    parse_reply(&buf, seq)
}

/// The name of interface `ifindex`, or the index in decimal.
fn name_of(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes, as if_indextoname requires; on success it
    // holds a NUL-terminated name.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return ifindex.to_string();
    }
    // SAFETY: if_indextoname succeeded, so `buf` is NUL-terminated within its length.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The egress device towards `peer` (module docs). A lookup from `local` that the kernel
/// refuses (the address is not ours any more) is retried without the source.
pub(crate) fn egress(peer: IpAddr, local: Option<IpAddr>) -> Result<Egress, RouteError> {
    let ifindex = match ask(&encode_request(peer, local, 1), 1) {
        Err(RouteError::Kernel(_)) if local.is_some() => ask(&encode_request(peer, None, 2), 2),
        other => other,
    }?;
    Ok(Egress {
        ifindex,
        name: name_of(ifindex),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(seq: u32, kind: u16, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(body);
        b
    }

    fn route_body(oif: Option<u32>) -> Vec<u8> {
        let mut b = vec![libc::AF_INET as u8, 32, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
        push_attr(&mut b, RTA_DST, &[192, 0, 2, 12]);
        if let Some(i) = oif {
            push_attr(&mut b, RTA_OIF, &i.to_ne_bytes());
        }
        b
    }

    #[test]
    fn request_carries_destination_and_source_of_one_family() {
        let r = encode_request(
            "192.0.2.12".parse().unwrap(),
            Some("192.0.2.11".parse().unwrap()),
            7,
        );
        assert_eq!(r.len(), NLMSG_HDRLEN + RTMSG_LEN + 8 + 8);
        assert_eq!(u32_at(&r, 0), Some(r.len() as u32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETROUTE));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert_eq!(r[16..20], [libc::AF_INET as u8, 32, 32, 0]);
        let mut dst = 8u16.to_ne_bytes().to_vec();
        dst.extend_from_slice(&RTA_DST.to_ne_bytes());
        dst.extend_from_slice(&[192, 0, 2, 12]);
        assert_eq!(r[28..36], dst[..]);
        assert_eq!(r[40..44], [192, 0, 2, 11]);
        // A source of the other family is left out.
        let r6 = encode_request(
            "2001:db8::1".parse().unwrap(),
            Some("192.0.2.11".parse().unwrap()),
            1,
        );
        assert_eq!(r6.len(), NLMSG_HDRLEN + RTMSG_LEN + 20);
        assert_eq!(r6[17..19], [128, 0]);
    }

    #[test]
    fn reply_gives_the_output_interface() {
        assert_eq!(
            parse_reply(&reply(3, RTM_NEWROUTE, &route_body(Some(5))), 3),
            Ok(5)
        );
        assert_eq!(
            parse_reply(&reply(3, RTM_NEWROUTE, &route_body(None)), 3),
            Err(RouteError::NoDevice)
        );
        let mut err = (-libc::ENETUNREACH).to_ne_bytes().to_vec();
        err.extend_from_slice(&[0; 16]);
        assert_eq!(
            parse_reply(&reply(3, NLMSG_ERROR, &err), 3),
            Err(RouteError::Kernel(libc::ENETUNREACH))
        );
        // Another request's answer is skipped.
        let mut two = reply(2, RTM_NEWROUTE, &route_body(Some(9)));
        two.extend(reply(3, RTM_NEWROUTE, &route_body(Some(4))));
        assert_eq!(parse_reply(&two, 3), Ok(4));
    }

    #[test]
    fn truncated_or_garbled_replies_are_errors_not_panics() {
        let good = reply(1, RTM_NEWROUTE, &route_body(Some(5)));
        for cut in 0..good.len() {
            assert!(parse_reply(&good[..cut], 1).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = parse_reply(&bad, 1);
        }
    }
}
