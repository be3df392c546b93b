//! The interface manager: this computer's addresses as an [`InterfaceSnapshot`], and a
//! notification when they change.
//!
//! On Linux it speaks rtnetlink over a `netlink-sys` socket (this module): a dump of links
//! (`RTM_GETLINK`), addresses (`RTM_GETADDR`) and routes (`RTM_GETROUTE`, for the default
//! gateways) gives a snapshot, and a socket subscribed to `RTMGRP_LINK`,
//! `RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV6_IFADDR` and the route groups signals changes. The
//! messages are parsed here by hand (four fixed headers and a few attributes); the parsers
//! are pure and unit-tested. A notification only says "something changed": the agent takes
//! a new snapshot and compares, so a lost notification (ENOBUFS) costs nothing but a
//! re-read.
//!
//! On FreeBSD, [`route_socket`] does the same with `sysctl(NET_RT_IFLISTL)` and
//! `sysctl(NET_RT_DUMP)` for the snapshot and a `PF_ROUTE` socket for the notifications.
//! Both parsers turn kernel messages into the same [`Link`], [`Addr`] and [`Route`] values,
//! and [`build_snapshot`] is shared. The parsers of both systems build and are tested
//! everywhere; the sockets exist only on their own system.
//!
//! What goes into the snapshot: unicast addresses of interfaces that are not loopback
//! (IPv6 link-local addresses left out: they are not "my address" on any other link), an
//! interface of type PPP or without a link layer (tun, WireGuard) counts as remote access;
//! default gateways of the main table; DNS servers from `/etc/resolv.conf`. DHCP and WINS
//! servers stay empty (no lease database is read yet).
// Off Linux only the tests use the rtnetlink parsers.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
#[cfg(target_os = "linux")]
use std::sync::mpsc::Sender;
#[cfg(target_os = "linux")]
use std::time::Duration;

use ipsec_policy::{InterfaceAddress, InterfaceKind, InterfaceSnapshot};
#[cfg(target_os = "linux")]
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

pub(crate) mod route_socket;
#[cfg(target_os = "freebsd")]
pub(crate) use route_socket::{broadcasts, snapshot, watch};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
#[cfg(any(target_os = "linux", test))]
const NLM_F_REQUEST: u16 = 0x1;
#[cfg(any(target_os = "linux", test))]
const NLM_F_DUMP: u16 = 0x300;

#[cfg(any(target_os = "linux", test))]
const RTM_NEWLINK: u16 = 16;
#[cfg(target_os = "linux")]
const RTM_GETLINK: u16 = 18;
#[cfg(target_os = "linux")]
const RTM_NEWADDR: u16 = 20;
#[cfg(any(target_os = "linux", test))]
const RTM_GETADDR: u16 = 22;
#[cfg(target_os = "linux")]
const RTM_NEWROUTE: u16 = 24;
#[cfg(target_os = "linux")]
const RTM_GETROUTE: u16 = 26;

const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const IFF_LOOPBACK: u32 = 0x8;
const ARPHRD_PPP: u16 = 512;
const ARPHRD_NONE: u16 = 0xfffe;

/// Multicast groups of the change notifications: link, IPv4/IPv6 addresses and routes.
#[cfg(target_os = "linux")]
pub(crate) const GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;

/// One interface (from rtnetlink's `RTM_NEWLINK` or the routing socket's `RTM_IFINFO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// Interface index.
    pub(crate) index: u32,
    /// Name.
    pub(crate) name: String,
    /// A loopback interface (`IFF_LOOPBACK`): its addresses are never "my address".
    pub(crate) loopback: bool,
    /// A remote-access interface (PPP or no link layer on Linux, point-to-point on
    /// FreeBSD), for rules of connection type "remote access".
    pub(crate) remote_access: bool,
}

/// One address (from `RTM_NEWADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    /// Interface index.
    pub(crate) index: u32,
    /// The address.
    pub(crate) address: IpAddr,
}

/// One route, only what the snapshot needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// A default route (prefix length 0) of the main table (Linux) or the default FIB
    /// (FreeBSD).
    pub(crate) default_route: bool,
    /// Gateway.
    pub(crate) gateway: Option<IpAddr>,
}

/// A malformed kernel message or a failed request (rtnetlink or routing socket).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Truncated or inconsistent lengths.
    #[error("malformed routing message: {0}")]
    Malformed(&'static str),
    /// The kernel answered a request with an error.
    #[error("routing request failed: {0}")]
    Kernel(io::Error),
    /// Socket I/O.
    #[error("routing socket: {0}")]
    Io(#[from] io::Error),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Splits a datagram into (type, payload) messages.
pub(crate) fn messages(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, at).ok_or(Error::Malformed("header"))? as usize;
        let ty = u16_at(buf, at + 4).ok_or(Error::Malformed("header"))?;
        if len < NLMSG_HDR || at + len > buf.len() {
            return Err(Error::Malformed("message length"));
        }
        out.push((ty, &buf[at + NLMSG_HDR..at + len]));
        at += align4(len);
    }
    Ok(out)
}

/// Attributes (type without flag bits, value) after a fixed header of `skip` bytes.
fn attributes(payload: &[u8], skip: usize) -> Result<Vec<(u16, &[u8])>, Error> {
    let mut out = Vec::new();
    let mut at = align4(skip);
    while at + 4 <= payload.len() {
        let len = u16_at(payload, at).ok_or(Error::Malformed("attribute"))? as usize;
        let ty = u16_at(payload, at + 2).ok_or(Error::Malformed("attribute"))? & 0x3fff;
        if len < 4 || at + len > payload.len() {
            return Err(Error::Malformed("attribute length"));
        }
        out.push((ty, &payload[at + 4..at + len]));
        at += align4(len);
    }
    Ok(out)
}

fn ip_from(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), bytes.len()) {
        (libc::AF_INET, 4) => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        (libc::AF_INET6, 16) => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Parses an `RTM_NEWLINK` payload.
pub(crate) fn parse_link(p: &[u8]) -> Result<Link, Error> {
    let link_type = u16_at(p, 2).ok_or(Error::Malformed("ifinfomsg"))?;
    let index = u32_at(p, 4).ok_or(Error::Malformed("ifinfomsg"))?;
    let flags = u32_at(p, 8).ok_or(Error::Malformed("ifinfomsg"))?;
    let mut name = String::new();
    for (ty, v) in attributes(p, 16)? {
        if ty == IFLA_IFNAME {
            let v = v.split(|&c| c == 0).next().unwrap_or_default();
            name = String::from_utf8_lossy(v).into_owned();
        }
    }
    Ok(Link {
        index,
        name,
        loopback: flags & IFF_LOOPBACK != 0,
        remote_access: matches!(link_type, ARPHRD_PPP | ARPHRD_NONE),
    })
}

/// Parses an `RTM_NEWADDR` payload (`None` for a family other than IPv4/IPv6).
pub(crate) fn parse_addr(p: &[u8]) -> Result<Option<Addr>, Error> {
    let family = *p.first().ok_or(Error::Malformed("ifaddrmsg"))?;
    let index = u32_at(p, 4).ok_or(Error::Malformed("ifaddrmsg"))?;
    let (mut address, mut local) = (None, None);
    for (ty, v) in attributes(p, 8)? {
        match ty {
            IFA_ADDRESS => address = ip_from(family, v),
            IFA_LOCAL => local = ip_from(family, v),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
    // point-to-point links); IPv6 only sends IFA_ADDRESS.
    Ok(local.or(address).map(|address| Addr { index, address }))
}

/// Parses an `RTM_NEWROUTE` payload.
pub(crate) fn parse_route(p: &[u8]) -> Result<Route, Error> {
    let family = *p.first().ok_or(Error::Malformed("rtmsg"))?;
    let dst_len = *p.get(1).ok_or(Error::Malformed("rtmsg"))?;
    let mut table = u32::from(*p.get(4).ok_or(Error::Malformed("rtmsg"))?);
    let mut gateway = None;
    for (ty, v) in attributes(p, 12)? {
        match ty {
            RTA_GATEWAY => gateway = ip_from(family, v),
            RTA_TABLE => table = u32_at(v, 0).unwrap_or(table),
            _ => {}
        }
    }
    Ok(Route {
        default_route: dst_len == 0 && table == RT_TABLE_MAIN,
        gateway,
    })
}

/// The nameservers of a resolv.conf text.
pub(crate) fn resolv_conf_servers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.split('%').next())
                .and_then(|a| a.parse().ok())
        })
        .collect()
}

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Builds a snapshot from parsed links, addresses, routes and DNS servers (sorted, so two
/// snapshots of the same state compare equal).
pub(crate) fn build_snapshot(
    links: &[Link],
    addrs: &[Addr],
    routes: &[Route],
    dns: Vec<IpAddr>,
) -> InterfaceSnapshot {
    let by_index: BTreeMap<u32, &Link> = links.iter().map(|l| (l.index, l)).collect();
    let mut addresses: Vec<InterfaceAddress> = addrs
        .iter()
        .filter_map(|a| {
            let link = by_index.get(&a.index)?;
            if link.loopback || a.address.is_loopback() {
                return None;
            }
            if let IpAddr::V6(v6) = &a.address {
                if is_link_local_v6(v6) {
                    return None;
                }
            }
            let kind = if link.remote_access {
                InterfaceKind::RemoteAccess
            } else {
                InterfaceKind::Lan
            };
            Some(InterfaceAddress {
                interface: link.name.clone(),
                address: a.address,
                kind,
            })
        })
        .collect();
    addresses.sort_by(|a, b| (&a.interface, a.address).cmp(&(&b.interface, b.address)));
    addresses.dedup();
    let mut default_gateways: Vec<IpAddr> = routes
        .iter()
        .filter(|r| r.default_route)
        .filter_map(|r| r.gateway)
        .collect();
    default_gateways.sort();
    default_gateways.dedup();
    InterfaceSnapshot {
        addresses,
        dns_servers: dns,
        dhcp_servers: Vec::new(),
        wins_servers: Vec::new(),
        default_gateways,
    }
}

#[cfg(any(target_os = "linux", test))]
fn request(ty: u16, header_len: usize, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDR + header_len;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.resize(len, 0); // family AF_UNSPEC: every family
    b
}

#[cfg(target_os = "linux")]
fn dump(ty: u16, header_len: usize, reply: u16) -> Result<Vec<Vec<u8>>, Error> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&request(ty, header_len, 1), 0)?;
    let mut payloads = Vec::new();
    loop {
        let (buf, _) = socket.recv_from_full()?;
        if buf.is_empty() {
            return Err(Error::Malformed("empty datagram"));
        }
        for (mty, payload) in messages(&buf)? {
            match mty {
                NLMSG_DONE => return Ok(payloads),
                NLMSG_ERROR => {
                    let code = u32_at(payload, 0).unwrap_or(0) as i32;
                    if code != 0 {
                        return Err(Error::Kernel(io::Error::from_raw_os_error(-code)));
                    }
                }
                t if t == reply => payloads.push(payload.to_vec()),
                _ => {}
            }
        }
    }
}

/// Reads the current snapshot from the kernel (and `/etc/resolv.conf`).
#[cfg(target_os = "linux")]
pub(crate) fn snapshot() -> Result<InterfaceSnapshot, Error> {
    let links = dump(RTM_GETLINK, 16, RTM_NEWLINK)?
        .iter()
        .map(|p| parse_link(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut addrs = Vec::new();
    for p in dump(RTM_GETADDR, 8, RTM_NEWADDR)? {
        addrs.extend(parse_addr(&p)?);
    }
    let routes = dump(RTM_GETROUTE, 12, RTM_NEWROUTE)?
        .iter()
        .map(|p| parse_route(p))
        .collect::<Result<Vec<_>, _>>()?;
    let dns = std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| resolv_conf_servers(&t))
        .unwrap_or_default();
    Ok(build_snapshot(&links, &addrs, &routes, dns))
}

/// `IFA_BROADCAST` of an IPv4 `RTM_NEWADDR` payload: the subnet broadcast address.
pub(crate) fn parse_broadcast(p: &[u8]) -> Result<Option<Ipv4Addr>, Error> {
    const IFA_BROADCAST: u16 = 4;
    if p.len() < 8 {
        return Err(Error::Malformed("ifaddrmsg"));
    }
    if p.first() != Some(&(libc::AF_INET as u8)) {
        return Ok(None);
    }
    for (ty, v) in attributes(p, 8)? {
        if ty == IFA_BROADCAST {
            if let Some(IpAddr::V4(a)) = ip_from(libc::AF_INET as u8, v) {
                return Ok(Some(a));
            }
        }
    }
    Ok(None)
}

/// The IPv4 subnet broadcast addresses of every interface (for the default exemptions).
#[cfg(target_os = "linux")]
pub(crate) fn broadcasts() -> Result<Vec<Ipv4Addr>, Error> {
    let mut v = Vec::new();
    for p in dump(RTM_GETADDR, 8, RTM_NEWADDR)? {
        v.extend(parse_broadcast(&p)?);
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// Subscribes to the change groups and sends `event()` on `tx` for every notification
/// datagram (and after a receive error such as ENOBUFS, since changes may have been lost),
/// from a thread of its own. Returns once subscribed.
#[cfg(target_os = "linux")]
pub(crate) fn watch<E: Send + 'static>(
    tx: Sender<E>,
    event: impl Fn() -> E + Send + 'static,
) -> Result<(), Error> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, GROUPS))?;
    std::thread::Builder::new()
        .name("rtnetlink".into())
        .spawn(move || loop {
            match socket.recv_from_full() {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rtnetlink notification socket");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            if tx.send(event()).is_err() {
                return;
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(v);
        b.resize(align4(b.len()), 0);
        b
    }

    fn msg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDR + payload.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&[0; 10]);
        b.extend_from_slice(payload);
        b.resize(align4(b.len()), 0);
        b
    }

    fn link_payload(index: u32, name: &str, ty: u16, flags: u32) -> Vec<u8> {
        let mut p = vec![0u8, 0];
        p.extend_from_slice(&ty.to_ne_bytes());
        p.extend_from_slice(&index.to_ne_bytes());
        p.extend_from_slice(&flags.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        p.extend(attr(IFLA_IFNAME, &n));
        p
    }

    fn addr_payload(family: u8, index: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut p = vec![family, 24, 0, 0];
        p.extend_from_slice(&index.to_ne_bytes());
        for (t, v) in attrs {
            p.extend(attr(*t, v));
        }
        p
    }

    #[test]
    fn parses_links_addresses_and_routes() {
        let l = parse_link(&link_payload(2, "eth0", 1, 0x1003)).expect("link");
        assert_eq!(
            l,
            Link {
                index: 2,
                name: "eth0".into(),
                loopback: false,
                remote_access: false,
            }
        );
        let a = parse_addr(&addr_payload(
            libc::AF_INET as u8,
            2,
            &[
                (IFA_ADDRESS, &[192, 0, 2, 99]),
                (IFA_LOCAL, &[192, 0, 2, 11]),
            ],
        ))
        .expect("addr");
        assert_eq!(
            a.map(|a| a.address),
            Some("192.0.2.11".parse().expect("ip"))
        );
        let v6: Ipv6Addr = "2001:db8::11".parse().expect("ip");
        let a = parse_addr(&addr_payload(
            libc::AF_INET6 as u8,
            2,
            &[(IFA_ADDRESS, &v6.octets())],
        ))
        .expect("addr");
        assert_eq!(a.map(|a| a.address), Some(IpAddr::V6(v6)));

        let mut r = vec![libc::AF_INET as u8, 0, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
        r.extend(attr(RTA_GATEWAY, &[192, 0, 2, 1]));
        r.extend(attr(RTA_TABLE, &254u32.to_ne_bytes()));
        let route = parse_route(&r).expect("route");
        assert_eq!(route.gateway, Some("192.0.2.1".parse().expect("ip")));
        assert!(route.default_route);
        // A /24 of the main table, and a default route of another table, are not default
        // routes of this host.
        let mut r = vec![libc::AF_INET as u8, 24, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
        r.extend(attr(RTA_GATEWAY, &[192, 0, 2, 2]));
        assert!(!parse_route(&r).expect("route").default_route);
        let mut r = vec![libc::AF_INET as u8, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0];
        r.extend(attr(RTA_GATEWAY, &[192, 0, 2, 3]));
        assert!(!parse_route(&r).expect("route").default_route);
    }

    #[test]
    fn splits_datagrams_and_rejects_bad_lengths() {
        let mut d = msg(RTM_NEWLINK, &link_payload(1, "lo", 772, IFF_LOOPBACK));
        d.extend(msg(NLMSG_DONE, &[0; 4]));
        let m = messages(&d).expect("messages");
        assert_eq!(
            m.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [RTM_NEWLINK, NLMSG_DONE]
        );
        let mut bad = d.clone();
        bad[0] = 200;
        assert!(messages(&bad).is_err());
        // A truncated attribute is an error, not a panic.
        let mut p = link_payload(1, "lo", 772, 0);
        let n = p.len();
        p[16] = 200;
        assert!(parse_link(&p[..n]).is_err());
        assert!(parse_addr(&[]).is_err());
        assert!(parse_route(&[2, 0]).is_err());
    }

    #[test]
    fn snapshot_skips_loopback_and_link_local_and_marks_remote_access() {
        let links = vec![
            Link {
                index: 1,
                name: "lo".into(),
                loopback: true,
                remote_access: false,
            },
            Link {
                index: 2,
                name: "eth0".into(),
                loopback: false,
                remote_access: false,
            },
            Link {
                index: 3,
                name: "ppp0".into(),
                loopback: false,
                remote_access: true,
            },
        ];
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        let addrs = vec![
            Addr {
                index: 1,
                address: ip("127.0.0.1"),
            },
            Addr {
                index: 2,
                address: ip("192.0.2.51"),
            },
            Addr {
                index: 2,
                address: ip("192.0.2.11"),
            },
            Addr {
                index: 2,
                address: ip("fe80::1"),
            },
            Addr {
                index: 3,
                address: ip("198.51.100.7"),
            },
            Addr {
                index: 9,
                address: ip("203.0.113.1"),
            },
        ];
        let routes = vec![
            Route {
                default_route: true,
                gateway: Some(ip("192.0.2.1")),
            },
            Route {
                default_route: false,
                gateway: Some(ip("192.0.2.2")),
            },
        ];
        let s = build_snapshot(&links, &addrs, &routes, vec![ip("192.0.2.53")]);
        let got: Vec<(String, IpAddr, InterfaceKind)> = s
            .addresses
            .iter()
            .map(|a| (a.interface.clone(), a.address, a.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("eth0".to_owned(), ip("192.0.2.11"), InterfaceKind::Lan),
                ("eth0".to_owned(), ip("192.0.2.51"), InterfaceKind::Lan),
                (
                    "ppp0".to_owned(),
                    ip("198.51.100.7"),
                    InterfaceKind::RemoteAccess
                ),
            ]
        );
        assert_eq!(s.default_gateways, [ip("192.0.2.1")]);
        assert_eq!(s.dns_servers, [ip("192.0.2.53")]);
    }

    #[test]
    fn broadcast_of_an_ipv4_address_and_none_for_ipv6() {
        let v4 = addr_payload(2, 3, &[(2, &[192, 0, 2, 11]), (4, &[192, 0, 2, 255])]);
        assert_eq!(
            parse_broadcast(&v4).unwrap(),
            Some(Ipv4Addr::new(192, 0, 2, 255))
        );
        let no_brd = addr_payload(2, 3, &[(2, &[192, 0, 2, 11])]);
        assert_eq!(parse_broadcast(&no_brd).unwrap(), None);
        let v6 = addr_payload(10, 3, &[(4, &[0u8; 16])]);
        assert_eq!(parse_broadcast(&v6).unwrap(), None);
        assert!(parse_broadcast(&[2, 0, 0]).is_err(), "truncated ifaddrmsg");
    }

    #[test]
    fn resolv_conf() {
        let t = "# x\nnameserver 192.0.2.53\nsearch example\nnameserver fe80::1%eth0\nnameserver bogus\n";
        assert_eq!(
            resolv_conf_servers(t),
            [
                "192.0.2.53".parse::<IpAddr>().expect("ip"),
                "fe80::1".parse().expect("ip")
            ]
        );
    }

    #[test]
    fn dump_requests_are_well_formed() {
        let r = request(RTM_GETADDR, 8, 7);
        assert_eq!(r.len(), 24);
        assert_eq!(u32_at(&r, 0), Some(24));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETADDR));
        assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&r, 8), Some(7));
    }
}
