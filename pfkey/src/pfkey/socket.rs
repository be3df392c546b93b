//! The PF_KEY socket backend: [`PfKeyKernel`] implements [`KernelInterface`] over
//! `socket(PF_KEY, SOCK_RAW, PF_KEY_V2)`.
//!
//! Requests carry a process-wide unique sequence number and our pid; a reply is the first
//! message with the same type, sequence number and pid (PF_KEY sockets also receive other
//! key managers' broadcasts, which are skipped). A reply with `sadb_msg_errno` set becomes
//! [`Error::Kernel`]. Dumps read one message per entry until one with sequence number 0
//! (Linux and FreeBSD both number dump replies down to 0); an empty table is reported as
//! ENOENT and gives an empty list. Every wait is bounded by [`PfKeyKernel::set_timeout`].
//!
//! Only the socket constants are OS-specific: Linux `AF_KEY` is 15, FreeBSD `PF_KEY` is
//! `pseudo_AF_KEY` (27). The dialect follows the OS.

#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::codec::consts::*;
use super::codec::{Dialect, Message};
use super::map::{self, Header};
use crate::{
    Error, EventSource, Family, KernelEvent, KernelInterface, OffloadOutcome, Policy, PolicyId,
    Result, SaId, SecurityAssociation, SecurityProtocol, SpdInfo,
};

#[cfg(target_os = "linux")]
const PF_KEY: libc::c_int = 15;
#[cfg(target_os = "freebsd")]
const PF_KEY: libc::c_int = 27;

/// `sadb_msg_len` is 16 bits of 64-bit words: no message is larger.
const MAX_MESSAGE: usize = u16::MAX as usize * 8;

/// Default bound on any wait for the kernel.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

fn next_seq() -> u32 {
    loop {
        // 0 marks the last message of a dump; never use it for a request.
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        if seq != 0 {
            return seq;
        }
    }
}

fn io_err(op: &'static str) -> Error {
    Error::Io {
        op,
        source: io::Error::last_os_error(),
    }
}

fn pid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    u32::try_from(pid).unwrap_or(0)
}

/// The header fields needed to match a reply, read without decoding the extensions (other
/// processes' broadcasts must be skipped even if this codec cannot decode them).
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    msg_type: u8,
    errno: u8,
    seq: u32,
    pid: u32,
}

fn raw_header(b: &[u8]) -> Option<RawHeader> {
    let word = |at: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_ne_bytes(s))
    };
    Some(RawHeader {
        msg_type: *b.get(1)?,
        errno: *b.get(2)?,
        seq: word(8)?,
        pid: word(12)?,
    })
}

/// One PF_KEY socket with its receive buffer.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Socket {
    fn open() -> Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                PF_KEY,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(PF_KEY_V2),
            )
        };
        if fd < 0 {
            return Err(io_err("socket(PF_KEY)"));
        }
        // SAFETY: fd is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            buf: vec![0; MAX_MESSAGE],
        })
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        loop {
            // SAFETY: the pointer and length describe `bytes`, valid for the call.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
            if n >= 0 {
                return if n as usize == bytes.len() {
                    Ok(())
                } else {
                    Err(Error::Io {
                        op: "send(PF_KEY)",
                        source: io::Error::new(io::ErrorKind::WriteZero, "short write"),
                    })
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Error::Io {
                    op: "send(PF_KEY)",
                    source: e,
                });
            }
        }
    }

    /// Receives one message, waiting until `deadline` (forever if `None`). `Ok(None)` on
    /// timeout.
    fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<&[u8]>> {
        loop {
            let timeout_ms: libc::c_int = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: pfd is a valid pollfd for the duration of the call; nfds is 1.
            let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io {
                    op: "poll(PF_KEY)",
                    source: e,
                });
            }
            if r == 0 {
                continue; // re-check the deadline
            }
            // SAFETY: buf is a valid, writable buffer of buf.len() octets.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    continue;
                }
                return Err(Error::Io {
                    op: "recv(PF_KEY)",
                    source: e,
                });
            }
            return Ok(self.buf.get(..n as usize));
        }
    }
}

/// Sets a per-socket IPsec policy (`IP_IPSEC_POLICY` / `IPV6_IPSEC_POLICY`).
pub(crate) fn set_socket_policy(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    policy: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(policy.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the pointer and length describe `policy`, which the kernel only reads; fd is a
    // live descriptor borrowed for the call.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, option, policy.as_ptr().cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `msg` and collects its replies (see the module documentation for the matching).
fn exchange(
    sock: &mut Socket,
    dialect: Dialect,
    pid: u32,
    timeout: Duration,
    op: &'static str,
    msg: &Message,
    dump: bool,
) -> Result<Vec<Vec<u8>>> {
    sock.send(&msg.encode(dialect))?;
    let mut out = Vec::new();
    let mut deadline = Instant::now() + timeout;
    loop {
        let Some(bytes) = sock.recv(Some(deadline))? else {
            return Err(Error::Timeout(op));
        };
        let Some(h) = raw_header(bytes) else { continue };
        if h.pid != pid || h.msg_type != msg.msg_type {
            continue;
        }
        if !dump && h.seq != msg.seq {
            continue;
        }
        if h.errno != 0 {
            if dump && i32::from(h.errno) == libc::ENOENT {
                return Ok(out); // empty table
            }
            return Err(Error::Kernel {
                op,
                errno: i32::from(h.errno),
            });
        }
        out.push(bytes.to_vec());
        if !dump || h.seq == 0 {
            return Ok(out);
        }
        deadline = Instant::now() + timeout;
    }
}

/// The PF_KEY v2 backend.
#[derive(Debug)]
pub struct PfKeyKernel {
    sock: Socket,
    dialect: Dialect,
    pid: u32,
    timeout: Duration,
}

impl PfKeyKernel {
    /// Opens a PF_KEY socket (needs root / CAP_NET_ADMIN and, on Linux, the `af_key`
    /// module).
    pub fn open() -> Result<Self> {
        Ok(Self {
            sock: Socket::open()?,
            dialect: Dialect::native(),
            pid: pid(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the bound on every wait for a kernel reply (default 5 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The dialect this backend speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn header(&self) -> Header {
        Header {
            dialect: self.dialect,
            seq: next_seq(),
            pid: self.pid,
        }
    }

    /// Sends a request and returns the raw octets of every reply: one for ordinary
    /// requests, one per entry for DUMP and X_SPDDUMP. The message's `seq` and `pid` are
    /// replaced by fresh ones. Meant for tools and captures; errors as in the trait methods.
    pub fn request_raw(&mut self, msg: &Message) -> Result<Vec<Vec<u8>>> {
        let mut msg = msg.clone();
        let h = self.header();
        msg.seq = h.seq;
        msg.pid = h.pid;
        let is_dump = matches!(msg.msg_type, SADB_DUMP | SADB_X_SPDDUMP);
        self.exchange("request", &msg, is_dump)
    }

    fn exchange(&mut self, op: &'static str, msg: &Message, dump: bool) -> Result<Vec<Vec<u8>>> {
        exchange(
            &mut self.sock,
            self.dialect,
            self.pid,
            self.timeout,
            op,
            msg,
            dump,
        )
    }

    fn transact(&mut self, op: &'static str, msg: &Message) -> Result<Message> {
        let replies = self.exchange(op, msg, false)?;
        let bytes = replies.first().ok_or(Error::Timeout(op))?;
        Ok(Message::decode(bytes, self.dialect)?)
    }

    fn dump(&mut self, op: &'static str, msg: &Message) -> Result<Vec<Message>> {
        self.exchange(op, msg, true)?
            .iter()
            .map(|b| Message::decode(b, self.dialect).map_err(Error::from))
            .collect()
    }

    /// The source address to name an SA by. Linux looks SAs up by destination, SPI and
    /// protocol only, and wants just an address of the right family; FreeBSD compares the
    /// source too, so it is looked up.
    fn sa_source(&mut self, id: &SaId) -> Result<IpAddr> {
        match self.dialect {
            Dialect::Linux => Ok(Family::of(&id.destination).unspecified()),
            Dialect::FreeBsd => self
                .dump_sas()?
                .into_iter()
                .find(|sa| sa.id == *id)
                .map(|sa| sa.source)
                .ok_or(Error::Kernel {
                    op: "get_sa",
                    errno: libc::ESRCH,
                }),
        }
    }

    fn sas_including_larval(&mut self) -> Result<Vec<(u8, SecurityAssociation)>> {
        let msg = map::dump(self.header());
        let d = self.dialect;
        self.dump("dump_sas", &msg)?
            .iter()
            .map(|m| {
                let state = m.sa().map_or(SADB_SASTATE_MATURE, |s| s.state);
                Ok((state, map::sa_from_message(m, d)?))
            })
            .collect()
    }

    /// Opens an event socket with its concrete type (for raw captures).
    pub fn open_event_socket(&mut self) -> Result<PfKeyEvents> {
        let mut events = PfKeyEvents {
            sock: Socket::open()?,
            dialect: self.dialect,
        };
        for protocol in [SecurityProtocol::Esp, SecurityProtocol::Ah] {
            // The kernel answers REGISTER with SUPPORTED_AUTH/ENCRYPT on the same socket.
            let msg = map::register(self.header(), protocol);
            exchange(
                &mut events.sock,
                self.dialect,
                self.pid,
                self.timeout,
                "register",
                &msg,
                false,
            )?;
        }
        Ok(events)
    }
}

impl KernelInterface for PfKeyKernel {
    fn backend_name(&self) -> &'static str {
        "pfkey"
    }

    fn allocate_spi(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        protocol: SecurityProtocol,
        reqid: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32> {
        let msg = map::getspi(self.header(), source, destination, protocol, reqid, &range)?;
        let reply = self.transact("allocate_spi", &msg)?;
        reply
            .sa()
            .map(|sa| sa.spi)
            .ok_or(Error::Decode(crate::DecodeError::Missing(
                "SA in GETSPI reply",
            )))
    }

    fn add_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        let msg = map::sa_message(self.header(), SADB_ADD, sa)?;
        self.transact("add_sa", &msg)?;
        Ok(OffloadOutcome::NotRequested)
    }

    fn update_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        let msg = map::sa_message(self.header(), SADB_UPDATE, sa)?;
        self.transact("update_sa", &msg)?;
        Ok(OffloadOutcome::NotRequested)
    }

    fn delete_sa(&mut self, id: &SaId) -> Result<()> {
        let source = self.sa_source(id)?;
        let msg = map::sa_id_message(self.header(), SADB_DELETE, id, source)?;
        self.transact("delete_sa", &msg).map(|_| ())
    }

    fn get_sa(&mut self, id: &SaId) -> Result<SecurityAssociation> {
        let source = self.sa_source(id)?;
        let msg = map::sa_id_message(self.header(), SADB_GET, id, source)?;
        let reply = self.transact("get_sa", &msg)?;
        Ok(map::sa_from_message(&reply, self.dialect)?)
    }

    fn dump_sas(&mut self) -> Result<Vec<SecurityAssociation>> {
        Ok(self
            .sas_including_larval()?
            .into_iter()
            .filter(|(state, _)| *state != SADB_SASTATE_LARVAL)
            .map(|(_, sa)| sa)
            .collect())
    }

    fn flush_sas(&mut self, protocol: Option<SecurityProtocol>) -> Result<()> {
        let msg = map::flush(self.header(), protocol);
        self.transact("flush_sas", &msg).map(|_| ())
    }

    fn add_policy(&mut self, policy: &Policy) -> Result<()> {
        let msg = map::policy_message(self.header(), SADB_X_SPDADD, policy)?;
        self.transact("add_policy", &msg).map(|_| ())
    }

    fn update_policy(&mut self, policy: &Policy) -> Result<()> {
        let msg = map::policy_message(self.header(), SADB_X_SPDUPDATE, policy)?;
        self.transact("update_policy", &msg).map(|_| ())
    }

    fn delete_policy(&mut self, id: &PolicyId) -> Result<()> {
        let msg = map::policy_id_message(self.header(), SADB_X_SPDDELETE, id)?;
        self.transact("delete_policy", &msg).map(|_| ())
    }

    fn get_policy(&mut self, id: &PolicyId) -> Result<Policy> {
        // X_SPDGET looks policies up by kernel index; the trait names them by selector and
        // direction, so search the dump.
        self.dump_policies()?
            .into_iter()
            .find(|p| p.id == *id)
            .ok_or(Error::Kernel {
                op: "get_policy",
                errno: libc::ENOENT,
            })
    }

    fn dump_policies(&mut self) -> Result<Vec<Policy>> {
        let msg = map::policy_dump(self.header());
        let d = self.dialect;
        self.dump("dump_policies", &msg)?
            .iter()
            .map(|m| map::policy_from_message(m, d).map_err(Error::from))
            .collect()
    }

    fn flush_policies(&mut self) -> Result<()> {
        let msg = map::policy_flush(self.header());
        self.transact("flush_policies", &msg).map(|_| ())
    }

    /// Counted from a dump: PF_KEY has no SPD-info message, and per-socket policies are not
    /// visible through it (their counts are 0).
    fn spd_info(&mut self) -> Result<SpdInfo> {
        let mut info = SpdInfo::default();
        for p in self.dump_policies()? {
            match p.id.direction {
                crate::Direction::In => info.inbound += 1,
                crate::Direction::Out => info.outbound += 1,
                crate::Direction::Fwd => info.forward += 1,
            }
        }
        Ok(info)
    }

    fn open_events(&mut self) -> Result<Box<dyn EventSource + Send>> {
        Ok(Box::new(self.open_event_socket()?))
    }
}

/// A PF_KEY socket registered for ESP and AH: receives ACQUIRE and EXPIRE.
#[derive(Debug)]
pub struct PfKeyEvents {
    sock: Socket,
    dialect: Dialect,
}

impl PfKeyEvents {
    /// The next message of any type, raw, waiting up to `timeout` (forever if `None`).
    pub fn next_raw(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        Ok(self.sock.recv(deadline)?.map(<[u8]>::to_vec))
    }
}

impl EventSource for PfKeyEvents {
    fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<KernelEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(bytes) = self.sock.recv(deadline)? else {
                return Ok(None);
            };
            let event = Message::decode(bytes, self.dialect)
                .map_err(Error::from)
                .and_then(|m| map::event_from_message(&m, self.dialect).map_err(Error::from));
            match event {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => continue,
                Err(e) => {
                    // A message we cannot use must not end the stream of events.
                    tracing::warn!(error = %e, "skipping undecodable PF_KEY message");
                }
            }
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.sock.fd.as_raw_fd()
    }
}
