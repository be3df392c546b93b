//! The operating-system side of the event loop: the IKE UDP sockets (500 and 4500, IPv4
//! and IPv6), poll(2), and SIGTERM/SIGINT through a signalfd (Linux) or a self-pipe
//! written by a signal handler (FreeBSD).
//!
//! Each socket gets its per-socket IPsec bypass (both directions) before it is bound, so
//! no datagram is ever sent or received under a policy; IPv6 sockets are IPv6-only so the
//! IPv4 wildcard can be bound next to them; the 4500 sockets have `UDP_ENCAP_ESPINUDP` so
//! the kernel decapsulates NAT-T ESP and passes only IKE (behind the 4-octet non-ESP
//! marker) up. Datagrams are received with their destination address (`IP_PKTINFO` on
//! Linux, `IP_RECVDSTADDR` on FreeBSD; `IPV6_RECVPKTINFO` on both) and sent from a chosen
//! source address (`IP_PKTINFO` / `IP_SENDSRCADDR`, `IPV6_PKTINFO`), so wildcard sockets
//! work.
//!
//! Linux is the platform this runs and is tested on; the FreeBSD variants are type-checked
//! in CI (`tests/freebsd-check`) but have not run on a FreeBSD kernel.
//!
//! What this module does not do: parse IKE, add or strip the non-ESP marker (the caller
//! does), or decide anything. With `route.rs` (the egress-device lookup for offload) it is
//! the only module with `unsafe` (libc calls), each with a
//! SAFETY comment.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, size_of_val, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `UDP_ENCAP` (linux/udp.h, option level `SOL_UDP`); not exported by libc for Linux.
#[cfg(target_os = "linux")]
const UDP_ENCAP: libc::c_int = 100;
/// `UDP_ENCAP` (FreeBSD netinet/udp.h, option level `IPPROTO_UDP`).
#[cfg(not(target_os = "linux"))]
const UDP_ENCAP: libc::c_int = 1;
/// `UDP_ENCAP_ESPINUDP` (RFC 3948 encapsulation; the same value on both systems).
const UDP_ENCAP_ESPINUDP: libc::c_int = 2;

/// The IPv4 option and control message that report a datagram's destination address.
#[cfg(target_os = "linux")]
const IPV4_RECV_DESTINATION: libc::c_int = libc::IP_PKTINFO;
#[cfg(not(target_os = "linux"))]
const IPV4_RECV_DESTINATION: libc::c_int = libc::IP_RECVDSTADDR;

/// The destination address in an `IPPROTO_IP` / [`IPV4_RECV_DESTINATION`] control message.
///
/// # Safety
/// `data` must point to the data of such a control message, as filled in by the kernel.
#[cfg(target_os = "linux")]
unsafe fn ipv4_destination(data: *const u8) -> Ipv4Addr {
    // SAFETY: the caller promises an in_pktinfo; read unaligned.
    let p: libc::in_pktinfo = unsafe { std::ptr::read_unaligned(data.cast()) };
    Ipv4Addr::from(p.ipi_addr.s_addr.to_ne_bytes())
}

/// The destination address in an `IPPROTO_IP` / [`IPV4_RECV_DESTINATION`] control message.
///
/// # Safety
/// `data` must point to the data of such a control message, as filled in by the kernel.
#[cfg(not(target_os = "linux"))]
unsafe fn ipv4_destination(data: *const u8) -> Ipv4Addr {
    // SAFETY: the caller promises an in_addr; read unaligned.
    let a: libc::in_addr = unsafe { std::ptr::read_unaligned(data.cast()) };
    Ipv4Addr::from(a.s_addr.to_ne_bytes())
}

/// The control message type and data that choose the IPv4 source address of a datagram.
#[cfg(target_os = "linux")]
fn ipv4_source(a: Ipv4Addr) -> (libc::c_int, libc::in_pktinfo) {
    let p = libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.octets()),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    (libc::IP_PKTINFO, p)
}

/// The control message type and data that choose the IPv4 source address of a datagram.
#[cfg(not(target_os = "linux"))]
fn ipv4_source(a: Ipv4Addr) -> (libc::c_int, libc::in_addr) {
    let p = libc::in_addr {
        s_addr: u32::from_ne_bytes(a.octets()),
    };
    (libc::IP_SENDSRCADDR, p)
}

/// One bound IKE socket.
#[derive(Debug)]
pub(crate) struct IkeSocket {
    fd: OwnedFd,
    /// The bound address (the address may be unspecified).
    pub(crate) local: SocketAddr,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size; setsockopt reads
    // exactly that many bytes and keeps no reference.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(rc).map(|_| ())
}

/// A `sockaddr_storage` holding `addr`, and its length.
fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
            let mut sin: libc::sockaddr_in = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            #[cfg(not(target_os = "linux"))]
            {
                sin.sin_len = size_of::<libc::sockaddr_in>() as u8;
            }
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
            let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            #[cfg(not(target_os = "linux"))]
            {
                sin6.sin6_len = size_of::<libc::sockaddr_in6>() as u8;
            }
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is aligned
            // and large enough for it.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                0,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `struct in6_pktinfo` (RFC 3542; the same layout on Linux and FreeBSD, and libc does not
/// export it for Linux).
#[repr(C)]
#[derive(Clone, Copy)]
struct In6Pktinfo {
    addr: libc::in6_addr,
    ifindex: libc::c_uint,
}

impl IkeSocket {
    /// Creates, bypasses and binds a socket on `addr`; `encap` sets UDP_ENCAP_ESPINUDP.
    pub(crate) fn open(addr: SocketAddr, encap: bool) -> io::Result<Self> {
        let (domain, family) = match addr {
            SocketAddr::V4(_) => (libc::AF_INET, pfkey::Family::V4),
            SocketAddr::V6(_) => (libc::AF_INET6, pfkey::Family::V6),
        };
        // SAFETY: socket(2) with constant arguments; the result is checked below.
        let raw = cvt(unsafe {
            libc::socket(
                domain,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        pfkey::bypass::bypass_socket(fd.as_fd(), family)
            .map_err(|e| io::Error::other(format!("IPsec bypass on {addr}: {e}")))?;
        if addr.is_ipv6() {
            set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        } else {
            set_int(raw, libc::IPPROTO_IP, IPV4_RECV_DESTINATION, 1)?;
        }
        if encap {
            set_int(raw, libc::IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
                .map_err(|e| io::Error::new(e.kind(), format!("UDP_ENCAP on {addr}: {e}")))?;
        }
        let (ss, len) = to_sockaddr(addr);
        // SAFETY: `ss` holds a valid sockaddr of `len` bytes for this socket's family.
        cvt(unsafe { libc::bind(raw, (&ss as *const libc::sockaddr_storage).cast(), len) })
            .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
        Ok(Self { fd, local: addr })
    }

    /// The descriptor, for poll.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Receives one datagram: its length, the sender, and the address it was sent to.
    /// `Ok(None)` when nothing is waiting.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr, IpAddr)>> {
        // SAFETY: plain old data, zero is valid.
        let mut from: libc::sockaddr_storage = unsafe { zeroed() };
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain old data, zero is valid; the pointers are filled in below.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: every pointer in `msg` refers to a live local buffer of the stated size
        // (`buf` through iov, `from`, `control`), all outliving the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n > buf.len() || msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::other(format!(
                "datagram of {n} octets truncated"
            )));
        }
        let Some(remote) = from_sockaddr(&from) else {
            return Ok(None);
        };
        let mut local = self.local.ip();
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel filled in,
        // bounded by msg_controllen; the data is read unaligned with the type the
        // (level, type) pair promises.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                if h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == IPV4_RECV_DESTINATION {
                    local = IpAddr::V4(ipv4_destination(libc::CMSG_DATA(c)));
                } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                    let p: In6Pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    local = IpAddr::V6(Ipv6Addr::from(p.addr.s6_addr));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some((n, remote, local)))
    }

    /// Sends `data` to `to` from source address `from` (used when the socket is bound to a
    /// wildcard address).
    pub(crate) fn send(&self, data: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<()> {
        let (ss, len) = to_sockaddr(to);
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: plain old data, zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&ss as *const libc::sockaddr_storage) as *mut libc::c_void;
        msg.msg_namelen = len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if self.local.ip().is_unspecified() && !from.is_unspecified() {
            msg.msg_control = control.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE/CMSG_FIRSTHDR/CMSG_DATA compute offsets inside `control`
            // (64 octets, enough for one in6_pktinfo header and data); the write is
            // unaligned-safe.
            unsafe {
                match from {
                    IpAddr::V4(a) => {
                        let (cmsg_type, p) = ipv4_source(a);
                        let size = size_of_val(&p) as u32;
                        msg.msg_controllen = libc::CMSG_SPACE(size) as _;
                        let c = libc::CMSG_FIRSTHDR(&msg);
                        (*c).cmsg_level = libc::IPPROTO_IP;
                        (*c).cmsg_type = cmsg_type;
                        (*c).cmsg_len = libc::CMSG_LEN(size) as _;
                        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), p);
                    }
                    IpAddr::V6(a) => {
                        let size = size_of::<In6Pktinfo>() as u32;
                        msg.msg_controllen = libc::CMSG_SPACE(size) as _;
                        let c = libc::CMSG_FIRSTHDR(&msg);
                        (*c).cmsg_level = libc::IPPROTO_IPV6;
                        (*c).cmsg_type = libc::IPV6_PKTINFO;
                        (*c).cmsg_len = libc::CMSG_LEN(size) as _;
                        let p = In6Pktinfo {
                            addr: libc::in6_addr {
                                s6_addr: a.octets(),
                            },
                            ifindex: 0,
                        };
                        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), p);
                    }
                }
            }
        }
        // SAFETY: every pointer in `msg` refers to a live local buffer of the stated size.
        let rc = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// SIGTERM and SIGINT, blocked and delivered through a signalfd.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct Signals {
    fd: OwnedFd,
}

#[cfg(target_os = "linux")]
impl Signals {
    /// Blocks SIGTERM, SIGINT and SIGHUP for the (single-threaded) process and opens a
    /// signalfd for them. Call before any other thread starts.
    pub(crate) fn open() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; the mask is applied to
        // this thread only (the daemon has one) and the signalfd is checked.
        unsafe {
            let mut set: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGHUP);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            let raw = cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            ))?;
            Ok(Self {
                fd: OwnedFd::from_raw_fd(raw),
            })
        }
    }

    /// The descriptor, for poll.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal number, if any.
    pub(crate) fn read(&self) -> Option<u32> {
        // SAFETY: plain old data, zero is valid.
        let mut info: libc::signalfd_siginfo = unsafe { zeroed() };
        // SAFETY: reads at most size_of(info) bytes into `info`.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size_of::<libc::signalfd_siginfo>(),
            )
        };
        (n == size_of::<libc::signalfd_siginfo>() as isize).then_some(info.ssi_signo)
    }
}

/// The write end of the self-pipe, for the signal handler (-1: none).
#[cfg(not(target_os = "linux"))]
static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Writes the signal number (one octet) to the self-pipe. Only async-signal-safe calls;
/// errno is saved and restored.
#[cfg(not(target_os = "linux"))]
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let octet = signal as u8;
    // SAFETY: __error() returns this thread's errno location; write(2) is async-signal-safe
    // and reads one octet from a local. A full pipe (EAGAIN) loses only a duplicate wake-up.
    unsafe {
        let saved = *libc::__error();
        libc::write(fd, (&octet as *const u8).cast(), 1);
        *libc::__error() = saved;
    }
}

/// SIGTERM and SIGINT, delivered through a self-pipe that a signal handler writes (FreeBSD
/// has no signalfd).
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

#[cfg(not(target_os = "linux"))]
impl Signals {
    /// Opens the self-pipe and installs the handlers. Call once, before any other thread
    /// starts.
    pub(crate) fn open() -> io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills in two descriptors on success (checked), owned below.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIGNAL_PIPE.store(write.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: sigaction is plain data; the handler is an extern "C" fn that only
            // makes async-signal-safe calls; the result is checked.
            unsafe {
                let mut action: libc::sigaction = zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                cvt(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
            }
        }
        Ok(Self {
            read,
            _write: write,
        })
    }

    /// The descriptor, for poll.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The next pending signal number, if any.
    pub(crate) fn read(&self) -> Option<u32> {
        let mut octet = 0u8;
        // SAFETY: reads at most one octet into a local.
        let n = unsafe { libc::read(self.read.as_raw_fd(), (&mut octet as *mut u8).cast(), 1) };
        (n == 1).then_some(u32::from(octet))
    }
}

/// Waits until one of `fds` is readable or `timeout` passes (forever if `None`); returns
/// which are readable (same order as `fds`). EINTR counts as a timeout.
pub(crate) fn poll_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        Some(t) => {
            // Round up so a timer a few microseconds away does not spin.
            let ms = t.as_micros().div_ceil(1000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    };
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfd structures.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["192.0.2.1:500", "[2001:db8::1]:4500"] {
            let a: SocketAddr = a.parse().unwrap();
            let (ss, _) = to_sockaddr(a);
            assert_eq!(from_sockaddr(&ss), Some(a));
        }
    }
}
