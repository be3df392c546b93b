//! FreeBSD's side of the interface manager: routing messages (`<net/route.h>`,
//! `<net/if.h>`) turned into the same [`Link`], [`Addr`] and [`Route`] values as rtnetlink's.
//!
//! - The snapshot comes from two sysctl dumps: `NET_RT_IFLISTL` (an `RTM_IFINFO` message
//!   per interface, then an `RTM_NEWADDR` per address) and `NET_RT_DUMP` (an `RTM_GET` per
//!   route of the default FIB, for the default gateways).
//! - Changes come from a `PF_ROUTE` raw socket: any address, interface or route message
//!   (`RTM_NEWADDR`, `RTM_DELADDR`, `RTM_IFINFO`, `RTM_IFANNOUNCE`, `RTM_ADD`,
//!   `RTM_DELETE`, `RTM_CHANGE`) wakes the agent, which takes a new snapshot, as on Linux.
//!
//! Message layout (every routing message starts with the same four octets):
//!
//! ```text
//!  0      2       3      4
//!  +------+-------+------+----------------- header of the type ----+--------------+
//!  |msglen|version| type |  ..._addrs: bitmask of sockaddrs present |  sockaddrs   |
//!  +------+-------+------+------------------------------------------+--------------+
//! ```
//!
//! `if_msghdrl` / `ifa_msghdrl` (the `L` dumps) carry their own header length at offset 16,
//! so the parser does not depend on the size of `struct if_data`; `rt_msghdr` is fixed
//! (32 octets, then `rtm_inits` and the 14 `u_long`s of `rt_metrics`). The sockaddrs follow
//! in `RTAX_*` order, each padded to a multiple of `sizeof(long)` (`SA_SIZE`).
//!
//! The parsers are pure, build on every system and are unit-tested here on Linux with
//! messages laid out as FreeBSD lays them out; the sysctl and socket code exists only on
//! FreeBSD and is type-checked in CI (`tests/freebsd-check`), never run: this project has
//! no FreeBSD machine.
// On Linux only the tests use the dump parsers.
#![cfg_attr(not(target_os = "freebsd"), allow(dead_code))]

use std::ffi::c_ulong;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Addr, Error, Link, Route};

/// `RTM_VERSION`: messages of any other version are skipped.
const RTM_VERSION: u8 = 5;
/// Message types (`<net/route.h>`).
const RTM_ADD: u8 = 0x1;
const RTM_DELETE: u8 = 0x2;
const RTM_CHANGE: u8 = 0x3;
const RTM_GET: u8 = 0x4;
const RTM_NEWADDR: u8 = 0xc;
const RTM_DELADDR: u8 = 0xd;
const RTM_IFINFO: u8 = 0xe;
const RTM_IFANNOUNCE: u8 = 0x11;

/// `RTAX_*` indexes of the sockaddrs (the `RTA_*` bit is `1 << RTAX_*`).
const RTAX_DST: usize = 0;
const RTAX_GATEWAY: usize = 1;
const RTAX_NETMASK: usize = 2;
const RTAX_IFP: usize = 4;
const RTAX_IFA: usize = 5;
const RTAX_BRD: usize = 7;
const RTAX_MAX: usize = 8;

/// `RTF_GATEWAY`, `RTF_HOST`.
const RTF_GATEWAY: i32 = 0x2;
const RTF_HOST: i32 = 0x4;
/// `IFF_LOOPBACK`, `IFF_POINTOPOINT`.
const IFF_LOOPBACK: i32 = 0x8;
const IFF_POINTOPOINT: i32 = 0x10;

/// Address families as FreeBSD numbers them.
const AF_INET: u8 = 2;
const AF_LINK: u8 = 18;
const AF_INET6: u8 = 28;

/// `sizeof(struct rt_msghdr)`: 32 octets, then `u_long rtm_inits` and `struct rt_metrics`
/// (14 `u_long`s): 152 on LP64.
const RT_MSGHDR_LEN: usize = 32 + 15 * std::mem::size_of::<c_ulong>();
/// Offset of `ifm_len` / `ifam_len` in `if_msghdrl` / `ifa_msghdrl`.
const HDRL_LEN_OFFSET: usize = 16;

// The layouts above, checked against the C definitions where libc has them.
#[cfg(target_os = "freebsd")]
const _: () = {
    assert!(std::mem::offset_of!(libc::if_msghdrl, ifm_addrs) == 4);
    assert!(std::mem::offset_of!(libc::if_msghdrl, ifm_flags) == 8);
    assert!(std::mem::offset_of!(libc::if_msghdrl, ifm_index) == 12);
    assert!(std::mem::offset_of!(libc::if_msghdrl, ifm_len) == HDRL_LEN_OFFSET);
    assert!(std::mem::offset_of!(libc::ifa_msghdrl, ifam_addrs) == 4);
    assert!(std::mem::offset_of!(libc::ifa_msghdrl, ifam_index) == 12);
    assert!(std::mem::offset_of!(libc::ifa_msghdrl, ifam_len) == HDRL_LEN_OFFSET);
    assert!(libc::RTM_VERSION == RTM_VERSION as i32);
    assert!(libc::RTM_NEWADDR == RTM_NEWADDR as i32);
    assert!(libc::RTM_IFINFO == RTM_IFINFO as i32);
    assert!(libc::RTAX_MAX == RTAX_MAX as i32);
    assert!(libc::AF_INET6 == AF_INET6 as i32);
    assert!(libc::AF_LINK == AF_LINK as i32);
    assert!(libc::IFF_POINTOPOINT == IFF_POINTOPOINT);
};

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a buffer of routing messages into (type, whole message), skipping messages of
/// another `RTM_VERSION`.
pub(crate) fn messages(buf: &[u8]) -> Result<Vec<(u8, &[u8])>, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let len = u16_at(buf, at).ok_or(Error::Malformed("message header"))? as usize;
        if len < 4 || at + len > buf.len() {
            return Err(Error::Malformed("message length"));
        }
        let msg = &buf[at..at + len];
        if msg[2] == RTM_VERSION {
            out.push((msg[3], msg));
        }
        at += len;
    }
    Ok(out)
}

/// `SA_SIZE`: the room a sockaddr of length `len` takes in a message.
fn sa_size(len: u8) -> usize {
    let align = std::mem::size_of::<c_ulong>();
    if len == 0 {
        align
    } else {
        1 + ((usize::from(len) - 1) | (align - 1))
    }
}

/// The sockaddrs of a message (by `RTAX_*` index), starting at `at`; each is cut to its
/// `sa_len`.
fn sockaddrs(msg: &[u8], mut at: usize, addrs: i32) -> Result<[Option<&[u8]>; RTAX_MAX], Error> {
    let mut out = [None; RTAX_MAX];
    for (i, slot) in out.iter_mut().enumerate() {
        if addrs & (1 << i) == 0 {
            continue;
        }
        let len = *msg
            .get(at)
            .ok_or(Error::Malformed("sockaddr past the message"))?;
        let end = at + usize::from(len);
        if end > msg.len() {
            return Err(Error::Malformed("sockaddr length"));
        }
        *slot = Some(&msg[at..end]);
        at += sa_size(len);
    }
    Ok(out)
}

/// The address of a `sockaddr_in` / `sockaddr_in6`. Link-local IPv6 addresses lose the
/// scope the kernel embeds in octets 2-3 (KAME convention).
fn sockaddr_ip(sa: &[u8]) -> Option<IpAddr> {
    match *sa.get(1)? {
        AF_INET => {
            let b: [u8; 4] = sa.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        AF_INET6 => {
            let mut b: [u8; 16] = sa.get(8..24)?.try_into().ok()?;
            if b[0] == 0xfe && b[1] & 0xc0 == 0x80 {
                b[2] = 0;
                b[3] = 0;
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The interface name of a `sockaddr_dl` (`sdl_nlen` octets at `sdl_data`).
fn sockaddr_dl_name(sa: &[u8]) -> Option<String> {
    if *sa.get(1)? != AF_LINK {
        return None;
    }
    let nlen = usize::from(*sa.get(5)?);
    let name = sa.get(8..8 + nlen)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Whether a netmask sockaddr (absent, shortened or full) is all zeros: only the octets
/// after the family field that the kernel kept count.
fn netmask_is_zero(sa: Option<&[u8]>) -> bool {
    sa.is_none_or(|sa| sa.iter().skip(2).all(|&b| b == 0))
}

/// Parses an `RTM_IFINFO` message of a `NET_RT_IFLISTL` dump (`if_msghdrl`).
pub(crate) fn parse_interface(msg: &[u8]) -> Result<Link, Error> {
    let addrs = i32_at(msg, 4).ok_or(Error::Malformed("if_msghdrl"))?;
    let flags = i32_at(msg, 8).ok_or(Error::Malformed("if_msghdrl"))?;
    let index = u16_at(msg, 12).ok_or(Error::Malformed("if_msghdrl"))?;
    let header = u16_at(msg, HDRL_LEN_OFFSET).ok_or(Error::Malformed("if_msghdrl"))?;
    let sas = sockaddrs(msg, usize::from(header), addrs)?;
    let name = sas[RTAX_IFP].and_then(sockaddr_dl_name).unwrap_or_default();
    Ok(Link {
        index: u32::from(index),
        name,
        loopback: flags & IFF_LOOPBACK != 0,
        remote_access: flags & IFF_POINTOPOINT != 0,
    })
}

/// Parses an `RTM_NEWADDR` message of a `NET_RT_IFLISTL` dump (`ifa_msghdrl`): the
/// address (`None` for families other than IPv4/IPv6) and its IPv4 broadcast address.
pub(crate) fn parse_address(msg: &[u8]) -> Result<Option<(Addr, Option<Ipv4Addr>)>, Error> {
    let addrs = i32_at(msg, 4).ok_or(Error::Malformed("ifa_msghdrl"))?;
    let index = u16_at(msg, 12).ok_or(Error::Malformed("ifa_msghdrl"))?;
    let header = u16_at(msg, HDRL_LEN_OFFSET).ok_or(Error::Malformed("ifa_msghdrl"))?;
    let sas = sockaddrs(msg, usize::from(header), addrs)?;
    let Some(address) = sas[RTAX_IFA].and_then(sockaddr_ip) else {
        return Ok(None);
    };
    let broadcast = match (address, sas[RTAX_BRD].and_then(sockaddr_ip)) {
        (IpAddr::V4(_), Some(IpAddr::V4(b))) => Some(b),
        _ => None,
    };
    Ok(Some((
        Addr {
            index: u32::from(index),
            address,
        },
        broadcast,
    )))
}

/// Parses an `RTM_GET` message of a `NET_RT_DUMP` dump (`rt_msghdr`); `None` for a route
/// whose destination is not IPv4/IPv6.
pub(crate) fn parse_route(msg: &[u8]) -> Result<Option<Route>, Error> {
    let flags = i32_at(msg, 8).ok_or(Error::Malformed("rt_msghdr"))?;
    let addrs = i32_at(msg, 12).ok_or(Error::Malformed("rt_msghdr"))?;
    if msg.len() < RT_MSGHDR_LEN {
        return Err(Error::Malformed("rt_msghdr"));
    }
    let sas = sockaddrs(msg, RT_MSGHDR_LEN, addrs)?;
    let Some(destination) = sas[RTAX_DST].and_then(sockaddr_ip) else {
        return Ok(None);
    };
    let default_route =
        destination.is_unspecified() && flags & RTF_HOST == 0 && netmask_is_zero(sas[RTAX_NETMASK]);
    let gateway = if flags & RTF_GATEWAY != 0 {
        sas[RTAX_GATEWAY].and_then(sockaddr_ip)
    } else {
        None
    };
    Ok(Some(Route {
        default_route,
        gateway,
    }))
}

/// What an `NET_RT_IFLISTL` dump holds: interfaces, addresses, IPv4 broadcast addresses.
pub(crate) type InterfaceList = (Vec<Link>, Vec<Addr>, Vec<Ipv4Addr>);

/// Parses a whole `NET_RT_IFLISTL` dump.
pub(crate) fn parse_interface_list(buf: &[u8]) -> Result<InterfaceList, Error> {
    let (mut links, mut addrs, mut broadcasts) = (Vec::new(), Vec::new(), Vec::new());
    for (ty, msg) in messages(buf)? {
        match ty {
            RTM_IFINFO => links.push(parse_interface(msg)?),
            RTM_NEWADDR => {
                if let Some((a, b)) = parse_address(msg)? {
                    addrs.push(a);
                    broadcasts.extend(b);
                }
            }
            _ => {}
        }
    }
    Ok((links, addrs, broadcasts))
}

/// Parses a whole `NET_RT_DUMP` dump.
pub(crate) fn parse_route_dump(buf: &[u8]) -> Result<Vec<Route>, Error> {
    let mut routes = Vec::new();
    for (ty, msg) in messages(buf)? {
        if ty == RTM_GET || ty == RTM_ADD {
            routes.extend(parse_route(msg)?);
        }
    }
    Ok(routes)
}

/// Whether a message read from the routing socket means "take a new snapshot".
pub(crate) fn is_change(ty: u8) -> bool {
    matches!(
        ty,
        RTM_ADD | RTM_DELETE | RTM_CHANGE | RTM_NEWADDR | RTM_DELADDR | RTM_IFINFO | RTM_IFANNOUNCE
    )
}

#[cfg(target_os = "freebsd")]
mod os {
    //! The sysctl dumps and the `PF_ROUTE` socket (FreeBSD only).
    #![allow(unsafe_code)]

    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::mpsc::Sender;
    use std::time::Duration;

    use ipsec_policy::InterfaceSnapshot;

    use super::super::{build_snapshot, resolv_conf_servers, Error};
    use super::{is_change, messages, parse_interface_list, parse_route_dump};

    /// `sysctl({CTL_NET, PF_ROUTE, 0, AF_UNSPEC, what, 0})`, retried while the table grows
    /// between the size query and the read.
    fn dump(what: libc::c_int) -> Result<Vec<u8>, Error> {
        let mib = [libc::CTL_NET, libc::PF_ROUTE, 0, libc::AF_UNSPEC, what, 0];
        for _ in 0..8 {
            let mut len: libc::size_t = 0;
            // SAFETY: a size query: null output buffer, `len` is a live size_t.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_ptr(),
                    mib.len() as libc::c_uint,
                    std::ptr::null_mut(),
                    &mut len,
                    std::ptr::null(),
                    0,
                )
            };
            if rc < 0 {
                return Err(Error::Kernel(io::Error::last_os_error()));
            }
            let mut buf = vec![0u8; len + len / 8 + 512];
            let mut got = buf.len();
            // SAFETY: `buf` is live and `got` holds its length; the kernel writes at most
            // that many octets and stores the count in `got`.
            let rc = unsafe {
                libc::sysctl(
                    mib.as_ptr(),
                    mib.len() as libc::c_uint,
                    buf.as_mut_ptr().cast(),
                    &mut got,
                    std::ptr::null(),
                    0,
                )
            };
            if rc == 0 {
                buf.truncate(got);
                return Ok(buf);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOMEM) {
                return Err(Error::Kernel(e));
            }
        }
        Err(Error::Malformed(
            "routing table kept growing during the dump",
        ))
    }

    /// Reads the current snapshot from the kernel (and `/etc/resolv.conf`).
    pub(crate) fn snapshot() -> Result<InterfaceSnapshot, Error> {
        let (links, addrs, _) = parse_interface_list(&dump(libc::NET_RT_IFLISTL)?)?;
        let routes = parse_route_dump(&dump(libc::NET_RT_DUMP)?)?;
        let dns = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| resolv_conf_servers(&t))
            .unwrap_or_default();
        Ok(build_snapshot(&links, &addrs, &routes, dns))
    }

    /// The IPv4 subnet broadcast addresses of every interface (for the default exemptions).
    pub(crate) fn broadcasts() -> Result<Vec<Ipv4Addr>, Error> {
        let (_, _, mut v) = parse_interface_list(&dump(libc::NET_RT_IFLISTL)?)?;
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// Opens a `PF_ROUTE` socket and sends `event()` on `tx` for every batch of messages
    /// that contains a change (and after a read error, since changes may have been lost),
    /// from a thread of its own. Returns once the socket is open.
    pub(crate) fn watch<E: Send + 'static>(
        tx: Sender<E>,
        event: impl Fn() -> E + Send + 'static,
    ) -> Result<(), Error> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::PF_ROUTE, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::Io(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nothing else.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        std::thread::Builder::new()
            .name("route-socket".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    // SAFETY: reads at most buf.len() octets into the live buffer.
                    let n = unsafe {
                        libc::read(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                    };
                    let changed = if n < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        tracing::warn!(error = %e, "routing socket");
                        std::thread::sleep(Duration::from_millis(100));
                        true
                    } else {
                        // One read returns one message; an unparseable one counts as a change.
                        let n = n as usize;
                        messages(&buf[..n]).map_or(true, |m| m.iter().any(|(t, _)| is_change(*t)))
                    };
                    if changed && tx.send(event()).is_err() {
                        return;
                    }
                }
            })
            .map_err(Error::Io)?;
        Ok(())
    }
}

#[cfg(target_os = "freebsd")]
pub(crate) use os::{broadcasts, snapshot, watch};

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a sockaddr padded to `SA_SIZE`.
    fn push_sa(msg: &mut Vec<u8>, sa: &[u8]) {
        msg.extend_from_slice(sa);
        let pad = sa_size(sa.first().copied().unwrap_or(0)) - sa.len();
        msg.extend(std::iter::repeat_n(0, pad));
    }

    fn sin(a: [u8; 4]) -> Vec<u8> {
        let mut v = vec![16, AF_INET, 0, 0];
        v.extend_from_slice(&a);
        v.extend_from_slice(&[0; 8]);
        v
    }

    fn sin6(a: Ipv6Addr) -> Vec<u8> {
        let mut v = vec![28, AF_INET6, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&a.octets());
        v.extend_from_slice(&[0; 4]);
        v
    }

    fn sdl(index: u16, name: &str) -> Vec<u8> {
        let mut v = vec![0, AF_LINK];
        v.extend_from_slice(&index.to_ne_bytes());
        v.extend_from_slice(&[6, name.len() as u8, 0, 0]);
        v.extend_from_slice(name.as_bytes());
        v[0] = v.len() as u8;
        v
    }

    /// An `if_msghdrl` / `ifa_msghdrl` message: a 176-octet header (24 fixed octets and
    /// a 152-octet `if_data`, as on FreeBSD 11 and later on amd64), then the sockaddrs.
    fn hdrl_message(ty: u8, index: u16, flags: i32, sas: &[(usize, Vec<u8>)]) -> Vec<u8> {
        const HEADER: u16 = 176;
        let mut m = vec![0u8; usize::from(HEADER)];
        m[2] = RTM_VERSION;
        m[3] = ty;
        let addrs: i32 = sas.iter().map(|(i, _)| 1 << i).sum();
        m[4..8].copy_from_slice(&addrs.to_ne_bytes());
        m[8..12].copy_from_slice(&flags.to_ne_bytes());
        m[12..14].copy_from_slice(&index.to_ne_bytes());
        m[16..18].copy_from_slice(&HEADER.to_ne_bytes());
        for (_, sa) in sas {
            push_sa(&mut m, sa);
        }
        let len = m.len() as u16;
        m[0..2].copy_from_slice(&len.to_ne_bytes());
        m
    }

    fn route_message(flags: i32, sas: &[(usize, Vec<u8>)]) -> Vec<u8> {
        let mut m = vec![0u8; RT_MSGHDR_LEN];
        m[2] = RTM_VERSION;
        m[3] = RTM_GET;
        let addrs: i32 = sas.iter().map(|(i, _)| 1 << i).sum();
        m[8..12].copy_from_slice(&flags.to_ne_bytes());
        m[12..16].copy_from_slice(&addrs.to_ne_bytes());
        for (_, sa) in sas {
            push_sa(&mut m, sa);
        }
        let len = m.len() as u16;
        m[0..2].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn sa_size_rounds_to_long() {
        assert_eq!(sa_size(0), 8);
        assert_eq!(sa_size(16), 16);
        assert_eq!(sa_size(17), 24);
        assert_eq!(sa_size(28), 32);
        assert_eq!(sa_size(5), 8);
    }

    #[test]
    fn parses_an_interface_list_dump() {
        let v6: Ipv6Addr = "2001:db8::11".parse().expect("ip");
        let mut dump = hdrl_message(RTM_IFINFO, 1, IFF_LOOPBACK, &[(RTAX_IFP, sdl(1, "lo0"))]);
        dump.extend(hdrl_message(
            RTM_NEWADDR,
            1,
            0,
            &[(RTAX_IFP, sdl(1, "lo0")), (RTAX_IFA, sin([127, 0, 0, 1]))],
        ));
        dump.extend(hdrl_message(
            RTM_IFINFO,
            2,
            0x8843,
            &[(RTAX_IFP, sdl(2, "em0"))],
        ));
        dump.extend(hdrl_message(
            RTM_NEWADDR,
            2,
            0,
            &[
                (RTAX_NETMASK, vec![7, 0, 0, 0, 255, 255, 255]),
                (RTAX_IFP, sdl(2, "em0")),
                (RTAX_IFA, sin([192, 0, 2, 11])),
                (RTAX_BRD, sin([192, 0, 2, 255])),
            ],
        ));
        dump.extend(hdrl_message(
            RTM_NEWADDR,
            2,
            0,
            &[(RTAX_IFP, sdl(2, "em0")), (RTAX_IFA, sin6(v6))],
        ));
        dump.extend(hdrl_message(
            RTM_IFINFO,
            3,
            IFF_POINTOPOINT,
            &[(RTAX_IFP, sdl(3, "tun0"))],
        ));
        // A message of another version is skipped.
        let mut old = hdrl_message(RTM_IFINFO, 9, 0, &[(RTAX_IFP, sdl(9, "old0"))]);
        old[2] = 4;
        dump.extend(old);

        let (links, addrs, broadcasts) = parse_interface_list(&dump).expect("dump");
        assert_eq!(
            links,
            [
                Link {
                    index: 1,
                    name: "lo0".into(),
                    loopback: true,
                    remote_access: false
                },
                Link {
                    index: 2,
                    name: "em0".into(),
                    loopback: false,
                    remote_access: false
                },
                Link {
                    index: 3,
                    name: "tun0".into(),
                    loopback: false,
                    remote_access: true
                },
            ]
        );
        let got: Vec<(u32, IpAddr)> = addrs.iter().map(|a| (a.index, a.address)).collect();
        assert_eq!(
            got,
            [
                (1, "127.0.0.1".parse().expect("ip")),
                (2, "192.0.2.11".parse().expect("ip")),
                (2, IpAddr::V6(v6)),
            ]
        );
        assert_eq!(broadcasts, [Ipv4Addr::new(192, 0, 2, 255)]);

        // The shared snapshot builder gives what the Linux path gives.
        let s = super::super::build_snapshot(&links, &addrs, &[], Vec::new());
        let got: Vec<(&str, IpAddr)> = s
            .addresses
            .iter()
            .map(|a| (a.interface.as_str(), a.address))
            .collect();
        assert_eq!(
            got,
            [
                ("em0", "192.0.2.11".parse().expect("ip")),
                ("em0", IpAddr::V6(v6))
            ]
        );
    }

    #[test]
    fn default_gateways_from_a_route_dump() {
        let gw6: Ipv6Addr = "fe80:2::1".parse().expect("ip");
        let mut dump = route_message(
            RTF_GATEWAY,
            &[
                (RTAX_DST, sin([0, 0, 0, 0])),
                (RTAX_GATEWAY, sin([192, 0, 2, 1])),
                (RTAX_NETMASK, vec![0, 0, 0, 0, 0, 0, 0, 0]),
            ],
        );
        // A subnet route through a gateway is not a default route.
        dump.extend(route_message(
            RTF_GATEWAY,
            &[
                (RTAX_DST, sin([198, 51, 100, 0])),
                (RTAX_GATEWAY, sin([192, 0, 2, 2])),
                (RTAX_NETMASK, vec![7, 0, 0, 0, 255, 255, 255]),
            ],
        ));
        // An interface route (gateway is a sockaddr_dl, no RTF_GATEWAY).
        dump.extend(route_message(
            0,
            &[
                (RTAX_DST, sin([192, 0, 2, 0])),
                (RTAX_GATEWAY, sdl(2, "em0")),
                (RTAX_NETMASK, vec![7, 0, 0, 0, 255, 255, 255]),
            ],
        ));
        // The IPv6 default route, via a link-local gateway with the scope embedded.
        dump.extend(route_message(
            RTF_GATEWAY,
            &[
                (RTAX_DST, sin6(Ipv6Addr::UNSPECIFIED)),
                (RTAX_GATEWAY, sin6(gw6)),
                (RTAX_NETMASK, vec![0, 0]),
            ],
        ));
        let routes = parse_route_dump(&dump).expect("dump");
        let defaults: Vec<Option<IpAddr>> = routes
            .iter()
            .filter(|r| r.default_route)
            .map(|r| r.gateway)
            .collect();
        assert_eq!(
            defaults,
            [
                Some("192.0.2.1".parse().expect("ip")),
                Some("fe80::1".parse().expect("ip"))
            ]
        );
        assert_eq!(routes.len(), 4);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        assert!(messages(&[]).expect("empty").is_empty());
        assert!(messages(&[3, 0, 5, 1]).is_err());
        assert!(messages(&[200, 0, 5, 1]).is_err());
        let good = hdrl_message(RTM_NEWADDR, 2, 0, &[(RTAX_IFA, sin([192, 0, 2, 1]))]);
        for cut in 0..good.len() {
            // A shortened message (with its length fixed up) never panics.
            let mut m = good[..cut].to_vec();
            if m.len() >= 2 {
                let len = m.len() as u16;
                m[0..2].copy_from_slice(&len.to_ne_bytes());
            }
            let _ = parse_address(&m);
            let _ = parse_interface(&m);
            let _ = parse_route(&m);
        }
        // A sockaddr claiming more than the message holds.
        let mut bad = good.clone();
        let at = 176;
        bad[at] = 250;
        assert!(parse_address(&bad).is_err());
        // A header length beyond the message.
        let mut bad = good;
        bad[16..18].copy_from_slice(&4000u16.to_ne_bytes());
        assert!(parse_address(&bad).is_err());
    }

    #[test]
    fn change_messages() {
        for t in [
            RTM_ADD,
            RTM_DELETE,
            RTM_NEWADDR,
            RTM_DELADDR,
            RTM_IFINFO,
            RTM_IFANNOUNCE,
        ] {
            assert!(is_change(t));
        }
        assert!(!is_change(RTM_GET));
    }
}
