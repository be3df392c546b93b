//! The XFRM backend: [`XfrmKernel`] on a `NETLINK_XFRM` socket, and [`XfrmEvents`].
//!
//! Requests carry `NLM_F_ACK`; replies are matched by sequence number and port id, and stale
//! answers (to a request that timed out) are dropped. Every receive has a timeout, so a
//! silent kernel yields [`Error::Timeout`] instead of a hang. The socket sets
//! `NETLINK_CAP_ACK` (acknowledgements do not echo requests, which carry keys) and
//! `NETLINK_EXT_ACK` (the kernel's error text is logged at debug level). Buffers that held
//! key material are zeroed after use.
//!
//! This is the only file of the XFRM module with `unsafe` code: the libc socket calls.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use super::codec::{
    flags, groups, Attribute, NlMessage, Reader, UsersaFlush, UsersaInfo, UserspiInfo, WithAttrs,
    XfrmAddress, XfrmAttr, XfrmId, XfrmMode, XfrmPayload,
};
use super::convert;
use crate::{
    DecodeError, Error, EventSource, Family, KernelEvent, KernelInterface, OffloadOutcome, Policy,
    PolicyId, Result, SaId, SecurityAssociation, SecurityProtocol, SpdInfo,
};

const NETLINK_XFRM: libc::c_int = 6;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change and may be inconsistent.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// Receive buffer: dump skbs are at most 32 KiB; twice that leaves room.
const RX_BUF: usize = 64 * 1024;
/// Kernel socket receive buffer, so that pipelined acknowledgements and event bursts fit.
const SO_RCVBUF_BYTES: libc::c_int = 8 * 1024 * 1024;
/// Default time to wait for an answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests per send in [`XfrmKernel::batch`].
const BATCH_WINDOW: usize = 64;

fn io_err(op: &'static str) -> Error {
    Error::Io {
        op,
        source: io::Error::last_os_error(),
    }
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    setsockopt_bytes(fd, level, name, &v.to_ne_bytes())
}

/// `setsockopt(2)` with a byte buffer as the option value.
pub(crate) fn setsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `fd` is a live descriptor for the duration of the borrow; `value` points to
    // `len` readable octets, and the kernel copies them before returning.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A bound `NETLINK_XFRM` socket.
#[derive(Debug)]
struct NlSocket {
    fd: OwnedFd,
    port: u32,
}

impl NlSocket {
    fn open(groups_to_join: &[u32]) -> Result<Self> {
        // SAFETY: plain syscall with constant arguments; the result is checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_XFRM,
            )
        };
        if raw < 0 {
            return Err(io_err("socket(AF_NETLINK, NETLINK_XFRM)"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain integers; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let addr_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_nl of `addr_len` octets.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), std::ptr::addr_of!(addr).cast(), addr_len) };
        if rc != 0 {
            return Err(io_err("bind(netlink)"));
        }
        let mut len = addr_len;
        // SAFETY: `addr` is writable for `len` octets; the kernel writes at most that.
        let rc = unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                std::ptr::addr_of_mut!(addr).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io_err("getsockname(netlink)"));
        }
        let s = fd.as_fd();
        // Best effort: older kernels lack CAP_ACK/EXT_ACK, unprivileged users RCVBUFFORCE.
        let _ = setsockopt_int(s, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let _ = setsockopt_int(s, SOL_NETLINK, NETLINK_EXT_ACK, 1);
        if setsockopt_int(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SO_RCVBUF_BYTES).is_err() {
            let _ = setsockopt_int(s, libc::SOL_SOCKET, libc::SO_RCVBUF, SO_RCVBUF_BYTES);
        }
        let _ = setsockopt_int(s, libc::SOL_SOCKET, libc::SO_SNDBUF, 1024 * 1024);
        for g in groups_to_join {
            let g = libc::c_int::try_from(*g).unwrap_or(0);
            setsockopt_int(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g).map_err(|source| {
                Error::Io {
                    op: "NETLINK_ADD_MEMBERSHIP",
                    source,
                }
            })?;
        }
        Ok(Self {
            fd,
            port: addr.nl_pid,
        })
    }

    fn set_timeout(&self, timeout: Duration) -> Result<()> {
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
        };
        // SAFETY: `tv` is a valid timeval and the length is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io_err("SO_RCVTIMEO"));
        }
        Ok(())
    }

    fn send(&self, buf: &[u8], op: &'static str) -> Result<()> {
        // SAFETY: sockaddr_nl is plain integers; all-zero (port 0) addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `buf` is readable for its length and `kernel` is a valid sockaddr_nl.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::addr_of!(kernel).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return if n as usize == buf.len() {
                    Ok(())
                } else {
                    Err(Error::Io {
                        op,
                        source: io::Error::new(io::ErrorKind::WriteZero, "short netlink send"),
                    })
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Error::Io { op, source: e });
            }
        }
    }

    /// Receives one datagram into `buf`; returns its length. `Ok(None)` on timeout or, with
    /// `nonblocking`, when nothing is queued.
    fn recv(&self, buf: &mut [u8], nonblocking: bool, op: &'static str) -> Result<Option<usize>> {
        let flags = libc::MSG_TRUNC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        loop {
            // SAFETY: `buf` is writable for its length; MSG_TRUNC only changes the return
            // value, the kernel still writes at most `buf.len()` octets.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                )
            };
            if n >= 0 {
                let n = n as usize;
                if n > buf.len() {
                    return Err(Error::Io {
                        op,
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("netlink message of {n} octets truncated"),
                        ),
                    });
                }
                return Ok(Some(n));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(Error::Io { op, source: e }),
            }
        }
    }
}

/// A raw netlink attribute (for the extended-ack TLVs of error messages).
struct RawAttr {
    kind: u16,
    payload: Vec<u8>,
}

impl Attribute for RawAttr {
    fn decode(kind: u16, payload: &[u8]) -> std::result::Result<Self, DecodeError> {
        Ok(Self {
            kind,
            payload: payload.to_vec(),
        })
    }
    fn kind(&self) -> u16 {
        self.kind
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payload);
    }
}

/// The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), if any.
fn ext_ack_message(e: &super::codec::NlError, capped: bool) -> Option<String> {
    let tlvs = if capped {
        e.rest.as_slice()
    } else {
        // Uncapped: the echoed request comes first.
        let echoed = (e.request.len as usize).saturating_sub(16);
        e.rest.get(super::codec::wire::align4(echoed)..)?
    };
    let attrs = super::codec::attr::decode_attrs::<RawAttr>(tlvs).ok()?;
    let msg = attrs.into_iter().find(|a| a.kind == 1)?;
    let end = msg
        .payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(msg.payload.len());
    Some(String::from_utf8_lossy(msg.payload.get(..end)?).into_owned())
}

/// One request of [`XfrmKernel::batch`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum BatchOp<'a> {
    /// NEWSA (offload requests are sent as is, without the software fallback).
    AddSa(&'a SecurityAssociation),
    /// UPDSA.
    UpdateSa(&'a SecurityAssociation),
    /// DELSA.
    DeleteSa(&'a SaId),
    /// NEWPOLICY.
    AddPolicy(&'a Policy),
    /// UPDPOLICY.
    UpdatePolicy(&'a Policy),
    /// DELPOLICY.
    DeletePolicy(&'a PolicyId),
}

/// The Linux XFRM netlink backend.
pub struct XfrmKernel {
    sock: NlSocket,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// The network namespace the socket lives in, so event sockets join the same one.
    netns: Option<File>,
}

impl std::fmt::Debug for XfrmKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfrmKernel")
            .field("fd", &self.sock.fd.as_raw_fd())
            .field("port", &self.sock.port)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for XfrmEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfrmEvents")
            .field("fd", &self.sock.fd.as_raw_fd())
            .field("port", &self.sock.port)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// What one received datagram meant for the request being answered.
enum Progress {
    More,
    Finished,
}

impl XfrmKernel {
    /// Opens a `NETLINK_XFRM` socket in the calling thread's network namespace. Needs
    /// `CAP_NET_ADMIN` for anything but reading.
    pub fn open() -> Result<Self> {
        let sock = NlSocket::open(&[])?;
        sock.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(Self {
            sock,
            seq: 0,
            rx: vec![0; RX_BUF],
            tx: Vec::with_capacity(4096),
            netns: File::open("/proc/thread-self/ns/net").ok(),
        })
    }

    /// Sets how long to wait for each answer (default 5 s).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.sock.set_timeout(timeout)
    }

    /// The socket's netlink port id.
    pub fn port_id(&self) -> u32 {
        self.sock.port
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send_message(&mut self, msg: &NlMessage, op: &'static str) -> Result<()> {
        self.tx.clear();
        msg.encode(&mut self.tx);
        let r = self.sock.send(&self.tx, op);
        self.tx.zeroize();
        r
    }

    /// Receives one datagram and hands each of its messages to `f`. Zeroes what was read.
    fn receive<F>(&mut self, op: &'static str, mut f: F) -> Result<Progress>
    where
        F: FnMut(NlMessage) -> Result<Progress>,
    {
        let n = self
            .sock
            .recv(&mut self.rx, false, op)?
            .ok_or(Error::Timeout(op))?;
        let mut out = Ok(Progress::More);
        for msg in super::codec::Messages::new(self.rx.get(..n).unwrap_or_default()) {
            match msg.map_err(Error::from).and_then(&mut f) {
                Ok(Progress::More) => {}
                other => {
                    out = other;
                    break;
                }
            }
        }
        if let Some(used) = self.rx.get_mut(..n) {
            used.zeroize();
        }
        out
    }

    fn kernel_error(op: &'static str, msg: &NlMessage, e: &super::codec::NlError) -> Error {
        if let Some(text) = ext_ack_message(e, msg.flags & flags::CAPPED != 0) {
            tracing::debug!(op, errno = -e.error, "kernel: {text}");
        }
        Error::Kernel {
            op,
            errno: e.error.saturating_neg(),
        }
    }

    /// Sends one request with `NLM_F_ACK` and returns the replies that precede the
    /// acknowledgement.
    fn transact(
        &mut self,
        op: &'static str,
        extra_flags: u16,
        payload: XfrmPayload,
    ) -> Result<Vec<NlMessage>> {
        let seq = self.next_seq();
        let port = self.sock.port;
        self.send_message(
            &NlMessage::request(extra_flags | flags::ACK, seq, payload),
            op,
        )?;
        let mut replies = Vec::new();
        loop {
            let progress = self.receive(op, |msg| {
                if msg.seq != seq || msg.pid != port {
                    return Ok(Progress::More); // a stale answer to an abandoned request
                }
                match &msg.payload {
                    XfrmPayload::Error(e) if e.error == 0 => Ok(Progress::Finished),
                    XfrmPayload::Error(e) => Err(Self::kernel_error(op, &msg, e)),
                    _ => {
                        replies.push(msg);
                        Ok(Progress::More)
                    }
                }
            })?;
            if let Progress::Finished = progress {
                return Ok(replies);
            }
        }
    }

    /// Runs a dump request to its `NLMSG_DONE`, retrying if the kernel flags it interrupted.
    fn dump(&mut self, op: &'static str, payload: XfrmPayload) -> Result<Vec<NlMessage>> {
        for _ in 0..4 {
            let seq = self.next_seq();
            let port = self.sock.port;
            self.send_message(&NlMessage::request(flags::DUMP, seq, payload.clone()), op)?;
            let mut entries = Vec::new();
            let mut interrupted = false;
            loop {
                let progress = self.receive(op, |msg| {
                    if msg.seq != seq || msg.pid != port {
                        return Ok(Progress::More);
                    }
                    interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                    match &msg.payload {
                        XfrmPayload::Done(p) => {
                            let status = Reader::new(p, "NLMSG_DONE").i32().unwrap_or(0);
                            if status < 0 {
                                Err(Error::Kernel {
                                    op,
                                    errno: status.saturating_neg(),
                                })
                            } else {
                                Ok(Progress::Finished)
                            }
                        }
                        XfrmPayload::Error(e) if e.error != 0 => {
                            Err(Self::kernel_error(op, &msg, e))
                        }
                        XfrmPayload::Error(_) => Ok(Progress::Finished),
                        _ => {
                            entries.push(msg);
                            Ok(Progress::More)
                        }
                    }
                })?;
                if let Progress::Finished = progress {
                    break;
                }
            }
            if !interrupted {
                return Ok(entries);
            }
            tracing::debug!(op, "dump interrupted by a concurrent change; restarting");
        }
        Err(Error::Kernel {
            op,
            errno: libc::EINTR,
        })
    }

    fn ack(&mut self, op: &'static str, extra_flags: u16, payload: XfrmPayload) -> Result<()> {
        self.transact(op, extra_flags, payload).map(drop)
    }

    fn raw_sa(&mut self, id: &SaId, mark: Option<crate::Mark>) -> Result<WithAttrs<UsersaInfo>> {
        let replies = self.transact(
            "get_sa",
            0,
            XfrmPayload::GetSa(convert::sa_id_to_wire(id, mark)),
        )?;
        replies
            .into_iter()
            .find_map(|m| match m.payload {
                XfrmPayload::NewSa(sa) => Some(sa),
                _ => None,
            })
            .ok_or(Error::Decode(DecodeError::Missing("NEWSA answer to GETSA")))
    }

    /// The mark of an installed SA, found by dumping: SaId carries no mark, and the kernel
    /// looks marked SAs up only with their mark.
    fn mark_of(&mut self, id: &SaId) -> Result<Option<crate::Mark>> {
        Ok(self
            .dump_sas()?
            .into_iter()
            .find(|sa| sa.id == *id)
            .and_then(|sa| sa.mark))
    }

    fn install_sa(
        &mut self,
        op: &'static str,
        sa: &SecurityAssociation,
        update: bool,
    ) -> Result<OffloadOutcome> {
        let wrap = |m| {
            if update {
                XfrmPayload::UpdSa(m)
            } else {
                XfrmPayload::NewSa(m)
            }
        };
        let msg = convert::sa_to_wire(sa, true)?;
        let Some(offload) = &sa.offload else {
            self.ack(op, 0, wrap(msg))?;
            return Ok(OffloadOutcome::NotRequested);
        };
        match self.ack(op, 0, wrap(msg)) {
            Ok(()) => {
                // Linux installs the SA in software without an error when the device has no
                // xfrmdev_ops (veth) or its driver answers EOPNOTSUPP; only the read-back tells.
                let back = self.raw_sa(&sa.id, sa.mark)?;
                let offloaded = back.attrs.iter().any(|a| matches!(a,
                    XfrmAttr::OffloadDev(o) if u32::try_from(o.ifindex).ok() == Some(offload.ifindex)));
                Ok(if offloaded {
                    OffloadOutcome::Offloaded
                } else {
                    OffloadOutcome::Refused(libc::EOPNOTSUPP)
                })
            }
            Err(e)
                if matches!(
                    e.errno(),
                    Some(
                        libc::EOPNOTSUPP
                            | libc::EINVAL
                            | libc::ENODEV
                            | libc::ENXIO
                            | libc::ENOSPC
                            | libc::EPROTONOSUPPORT
                    )
                ) =>
            {
                let errno = e.errno().unwrap_or(libc::EOPNOTSUPP);
                tracing::debug!(op, errno, "offload refused; installing in software");
                self.ack(op, 0, wrap(convert::sa_to_wire(sa, false)?))?;
                Ok(OffloadOutcome::Refused(errno))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends many requests pipelined ([`BATCH_WINDOW`] per datagram) and returns one result
    /// per request, in order. Requests that fail validation never reach the kernel. The
    /// outer error is a socket failure or timeout; per-request kernel errors are inside.
    pub fn batch(&mut self, ops: &[BatchOp<'_>]) -> Result<Vec<Result<()>>> {
        let op = "batch";
        let mut results: Vec<Result<()>> = Vec::with_capacity(ops.len());
        let port = self.sock.port;
        for chunk in ops.chunks(BATCH_WINDOW) {
            let first = results.len();
            let mut pending = 0usize;
            // Sequence numbers of this window map to result slots.
            let mut seqs: Vec<(u32, usize)> = Vec::with_capacity(chunk.len());
            self.tx.clear();
            for (i, bop) in chunk.iter().enumerate() {
                let payload = match Self::batch_payload(bop) {
                    Ok(p) => p,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                let seq = self.next_seq();
                NlMessage::request(flags::ACK, seq, payload).encode(&mut self.tx);
                seqs.push((seq, first + i));
                results.push(Ok(()));
                pending += 1;
            }
            if pending == 0 {
                continue;
            }
            let sent = self.sock.send(&self.tx, op);
            self.tx.zeroize();
            sent?;
            while pending > 0 {
                let mut done = Vec::new();
                self.receive(op, |msg| {
                    if msg.pid != port {
                        return Ok(Progress::More);
                    }
                    if let XfrmPayload::Error(e) = &msg.payload {
                        if let Some((_, slot)) = seqs.iter().find(|(s, _)| *s == msg.seq) {
                            let r = if e.error == 0 {
                                Ok(())
                            } else {
                                Err(Self::kernel_error(op, &msg, e))
                            };
                            done.push((*slot, r));
                        }
                    }
                    Ok(Progress::More)
                })?;
                for (slot, r) in done {
                    if let Some(s) = results.get_mut(slot) {
                        *s = r;
                    }
                    pending = pending.saturating_sub(1);
                }
            }
        }
        Ok(results)
    }

    fn batch_payload(op: &BatchOp<'_>) -> Result<XfrmPayload> {
        Ok(match op {
            BatchOp::AddSa(sa) => XfrmPayload::NewSa(convert::sa_to_wire(sa, true)?),
            BatchOp::UpdateSa(sa) => XfrmPayload::UpdSa(convert::sa_to_wire(sa, true)?),
            BatchOp::DeleteSa(id) => XfrmPayload::DelSa(convert::sa_id_to_wire(id, None)),
            BatchOp::AddPolicy(p) => XfrmPayload::NewPolicy(convert::policy_to_wire(p)?),
            BatchOp::UpdatePolicy(p) => XfrmPayload::UpdPolicy(convert::policy_to_wire(p)?),
            BatchOp::DeletePolicy(id) => XfrmPayload::DelPolicy(convert::policy_id_to_wire(id)?),
        })
    }

    /// Sends `msg` (its sequence number replaced by the socket's next one) and returns the
    /// raw datagrams of the answer, up to and including the acknowledgement, error or
    /// `NLMSG_DONE` (without `NLM_F_ACK` or `NLM_F_DUMP`: the first answer). For capturing test vectors and debugging; the bytes may hold keys.
    pub fn request_raw(&mut self, msg: &NlMessage) -> Result<Vec<Vec<u8>>> {
        let op = "request_raw";
        let seq = self.next_seq();
        let port = self.sock.port;
        let msg = NlMessage { seq, ..msg.clone() };
        self.send_message(&msg, op)?;
        let mut out = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut self.rx, false, op)?
                .ok_or(Error::Timeout(op))?;
            let datagram = self.rx.get(..n).unwrap_or_default().to_vec();
            if let Some(used) = self.rx.get_mut(..n) {
                used.zeroize();
            }
            let mut finished = false;
            let mut ours = false;
            for m in super::codec::Messages::new(&datagram) {
                let m = m?;
                if m.seq == seq && m.pid == port {
                    ours = true;
                    // Without ACK or DUMP, the first answer is the whole answer.
                    finished |= matches!(m.payload, XfrmPayload::Error(_) | XfrmPayload::Done(_))
                        || msg.flags & (flags::ACK | flags::DUMP) == 0;
                }
            }
            if ours {
                out.push(datagram);
            }
            if finished {
                return Ok(out);
            }
        }
    }

    /// [`KernelInterface::open_events`] with the concrete type (which also offers
    /// [`XfrmEvents::next_raw`]). The socket joins this socket's network namespace even if
    /// the calling thread has since moved to another.
    pub fn open_xfrm_events(&mut self) -> Result<XfrmEvents> {
        Ok(XfrmEvents {
            sock: self.events_socket()?,
            rx: vec![0; RX_BUF],
            pending: VecDeque::new(),
        })
    }

    fn events_socket(&self) -> Result<NlSocket> {
        let joined = [groups::ACQUIRE, groups::EXPIRE, groups::MAPPING];
        let here = std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| m.ino())
            .ok();
        let ours = self
            .netns
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        match (&self.netns, here == ours) {
            (Some(ns), false) => {
                // The caller moved to another namespace since open(): create the event socket
                // from a helper thread that joins ours (setns affects only that thread).
                let ns_fd = ns.as_raw_fd();
                std::thread::scope(|s| {
                    s.spawn(move || {
                        // SAFETY: `ns_fd` stays open (borrowed from self) for the scope.
                        if unsafe { libc::setns(ns_fd, libc::CLONE_NEWNET) } != 0 {
                            return Err(io_err("setns"));
                        }
                        NlSocket::open(&joined)
                    })
                    .join()
                    .unwrap_or_else(|_| Err(Error::Invalid("event socket thread panicked".into())))
                })
            }
            _ => NlSocket::open(&joined),
        }
    }
}

impl KernelInterface for XfrmKernel {
    fn backend_name(&self) -> &'static str {
        "xfrm"
    }

    fn allocate_spi(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        protocol: SecurityProtocol,
        reqid: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32> {
        if Family::of(&source) != Family::of(&destination) {
            return Err(Error::Invalid(format!(
                "SPI allocation mixes families: {source} -> {destination}"
            )));
        }
        if range.is_empty() {
            return Err(Error::Invalid("empty SPI range".into()));
        }
        let info = UsersaInfo {
            id: XfrmId {
                daddr: XfrmAddress::from_ip(destination),
                spi: super::codec::Be32(0),
                proto: protocol.ip_proto(),
            },
            saddr: XfrmAddress::from_ip(source),
            family: convert::family_to_wire(Family::of(&destination)),
            mode: XfrmMode::TRANSPORT,
            reqid,
            ..UsersaInfo::default()
        };
        let spi_info = UserspiInfo {
            info,
            min: *range.start(),
            max: *range.end(),
        };
        let replies = self.transact(
            "allocate_spi",
            0,
            XfrmPayload::AllocSpi(WithAttrs::new(spi_info, Vec::new())),
        )?;
        replies
            .iter()
            .find_map(|m| match &m.payload {
                XfrmPayload::NewSa(sa) => Some(sa.body.id.spi.0),
                _ => None,
            })
            .ok_or(Error::Decode(DecodeError::Missing(
                "NEWSA answer to ALLOCSPI",
            )))
    }

    fn add_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        self.install_sa("add_sa", sa, false)
    }

    fn update_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        self.install_sa("update_sa", sa, true)
    }

    fn delete_sa(&mut self, id: &SaId) -> Result<()> {
        let payload = |mark| XfrmPayload::DelSa(convert::sa_id_to_wire(id, mark));
        match self.ack("delete_sa", 0, payload(None)) {
            Err(e) if e.is_not_found() => match self.mark_of(id)? {
                Some(mark) => self.ack("delete_sa", 0, payload(Some(mark))),
                None => Err(e),
            },
            other => other,
        }
    }

    fn get_sa(&mut self, id: &SaId) -> Result<SecurityAssociation> {
        let raw = match self.raw_sa(id, None) {
            Err(e) if e.is_not_found() => match self.mark_of(id)? {
                Some(mark) => self.raw_sa(id, Some(mark))?,
                None => return Err(e),
            },
            other => other?,
        };
        convert::sa_from_wire(&raw)
    }

    fn dump_sas(&mut self) -> Result<Vec<SecurityAssociation>> {
        let entries = self.dump("dump_sas", XfrmPayload::DumpSa(Vec::new()))?;
        let mut out = Vec::with_capacity(entries.len());
        for m in entries {
            if let XfrmPayload::NewSa(sa) = &m.payload {
                match convert::sa_from_wire(sa) {
                    Ok(sa) => out.push(sa),
                    Err(e) => tracing::debug!(
                        spi = sa.body.id.spi.0,
                        proto = sa.body.id.proto,
                        "dump_sas: skipping an SA the model cannot express: {e}"
                    ),
                }
            }
        }
        Ok(out)
    }

    fn flush_sas(&mut self, protocol: Option<SecurityProtocol>) -> Result<()> {
        let proto = protocol.map_or(0, SecurityProtocol::ip_proto);
        self.ack(
            "flush_sas",
            0,
            XfrmPayload::FlushSa(WithAttrs::new(UsersaFlush { proto }, Vec::new())),
        )
    }

    fn add_policy(&mut self, policy: &Policy) -> Result<()> {
        let m = convert::policy_to_wire(policy)?;
        self.ack("add_policy", 0, XfrmPayload::NewPolicy(m))
    }

    fn update_policy(&mut self, policy: &Policy) -> Result<()> {
        let m = convert::policy_to_wire(policy)?;
        self.ack("update_policy", 0, XfrmPayload::UpdPolicy(m))
    }

    fn delete_policy(&mut self, id: &PolicyId) -> Result<()> {
        let m = convert::policy_id_to_wire(id)?;
        self.ack("delete_policy", 0, XfrmPayload::DelPolicy(m))
    }

    fn get_policy(&mut self, id: &PolicyId) -> Result<Policy> {
        let m = convert::policy_id_to_wire(id)?;
        let replies = self.transact("get_policy", 0, XfrmPayload::GetPolicy(m))?;
        let p = replies
            .iter()
            .find_map(|m| match &m.payload {
                XfrmPayload::NewPolicy(p) => Some(p),
                _ => None,
            })
            .ok_or(Error::Decode(DecodeError::Missing(
                "NEWPOLICY answer to GETPOLICY",
            )))?;
        convert::policy_from_wire(p)
    }

    fn dump_policies(&mut self) -> Result<Vec<Policy>> {
        let entries = self.dump("dump_policies", XfrmPayload::DumpPolicy(Vec::new()))?;
        let mut out = Vec::with_capacity(entries.len());
        for m in entries {
            if let XfrmPayload::NewPolicy(p) = &m.payload {
                match convert::policy_from_wire(p) {
                    Ok(p) => out.push(p),
                    Err(e) => tracing::debug!(
                        index = p.body.index,
                        "dump_policies: skipping a policy the model cannot express: {e}"
                    ),
                }
            }
        }
        Ok(out)
    }

    fn flush_policies(&mut self) -> Result<()> {
        self.ack("flush_policies", 0, XfrmPayload::FlushPolicy(Vec::new()))
    }

    fn spd_info(&mut self) -> Result<SpdInfo> {
        let replies = self.transact("spd_info", 0, XfrmPayload::GetSpdInfo(0))?;
        let info = replies
            .iter()
            .find_map(|m| match &m.payload {
                XfrmPayload::NewSpdInfo(i) => Some(i),
                _ => None,
            })
            .ok_or(Error::Decode(DecodeError::Missing("NEWSPDINFO answer")))?;
        convert::spd_info_from_wire(&info.attrs)
    }

    fn open_events(&mut self) -> Result<Box<dyn EventSource + Send>> {
        Ok(Box::new(self.open_xfrm_events()?))
    }
}

/// Kernel events on a socket joined to `XFRMNLGRP_ACQUIRE`, `XFRMNLGRP_EXPIRE` (which also
/// carries POLEXPIRE) and `XFRMNLGRP_MAPPING`.
pub struct XfrmEvents {
    sock: NlSocket,
    rx: Vec<u8>,
    pending: VecDeque<KernelEvent>,
}

impl XfrmEvents {
    fn to_event(msg: &NlMessage) -> Option<Result<KernelEvent>> {
        let r = match &msg.payload {
            XfrmPayload::Acquire(m) => convert::acquire_from_wire(m).map(KernelEvent::Acquire),
            XfrmPayload::Expire(m) => convert::expire_from_wire(m).map(KernelEvent::Expire),
            XfrmPayload::PolExpire(m) => {
                convert::polexpire_from_wire(m).map(KernelEvent::PolicyExpire)
            }
            XfrmPayload::Mapping(m) => convert::mapping_from_wire(m).map(KernelEvent::Mapping),
            _ => return None,
        };
        Some(r)
    }

    fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.sock.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = match timeout {
            None => -1,
            Some(t) => libc::c_int::try_from(t.as_millis().max(u128::from(!t.is_zero())))
                .unwrap_or(libc::c_int::MAX),
        };
        loop {
            // SAFETY: `pfd` is one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc >= 0 {
                return Ok(rc > 0);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Error::Io {
                    op: "poll(xfrm events)",
                    source: e,
                });
            }
        }
    }
}

impl XfrmEvents {
    /// Waits up to `timeout` for the next datagram on the event socket and returns it
    /// undecoded (for capturing test vectors). Events already decoded are not replayed.
    pub fn next_raw(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        if !self.wait_readable(timeout)? {
            return Ok(None);
        }
        let Some(n) = self.sock.recv(&mut self.rx, true, "xfrm events")? else {
            return Ok(None);
        };
        let datagram = self.rx.get(..n).unwrap_or_default().to_vec();
        if let Some(used) = self.rx.get_mut(..n) {
            used.zeroize();
        }
        Ok(Some(datagram))
    }
}

impl EventSource for XfrmEvents {
    fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<KernelEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if !self.wait_readable(left)? {
                return Ok(None);
            }
            let Some(n) = self.sock.recv(&mut self.rx, true, "xfrm events")? else {
                continue;
            };
            let mut failure = None;
            for msg in super::codec::Messages::new(self.rx.get(..n).unwrap_or_default()) {
                match msg {
                    Ok(msg) => match Self::to_event(&msg) {
                        Some(Ok(e)) => self.pending.push_back(e),
                        Some(Err(e)) => {
                            tracing::debug!("skipping an event the model cannot express: {e}")
                        }
                        None => {}
                    },
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(used) = self.rx.get_mut(..n) {
                used.zeroize();
            }
            if let Some(e) = failure {
                if self.pending.is_empty() {
                    return Err(e.into());
                }
                tracing::debug!("undecodable event message after good ones: {e}");
            }
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.sock.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfrm::codec::{NlError, NlHeader};

    #[test]
    fn extended_ack_text_is_found_after_a_capped_error() {
        let mut rest = Vec::new();
        let text = b"Invalid key length\0";
        rest.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        rest.extend_from_slice(&1u16.to_ne_bytes());
        rest.extend_from_slice(text);
        rest.resize(super::super::codec::wire::align4(rest.len()), 0);
        let e = NlError {
            error: -libc::EINVAL,
            request: NlHeader::default(),
            rest,
        };
        assert_eq!(
            ext_ack_message(&e, true).as_deref(),
            Some("Invalid key length")
        );
    }
}
