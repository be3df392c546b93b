//! Netlink framing and XFRM messages.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    nlmsg_len (u32, native)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       nlmsg_type (u16)        |       nlmsg_flags (u16)       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      nlmsg_seq (u32)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      nlmsg_pid (u32)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  fixed XFRM structure (per type), padded to 4 | rtattr chain  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A buffer from the kernel holds one or more messages, each starting at a 4-octet boundary
//! (`NLMSG_ALIGN`). `nlmsg_len` counts the header. Dumps are multipart (`NLM_F_MULTI`) and end
//! with `NLMSG_DONE`; errors and acknowledgements are `NLMSG_ERROR` carrying `struct nlmsgerr`
//! (`int error` then the request's header and, unless capped, its payload).

use super::attr::{decode_attrs, encode_attrs, Attribute, SadAttr, SpdAttr, XfrmAttr};
use super::structs::{
    UserAcquire, UserExpire, UserMapping, UserPolexpire, UserpolicyId, UserpolicyInfo, UsersaFlush,
    UsersaId, UsersaInfo, UserspiInfo,
};
use super::wire::{align4, Put, Reader, Struct};
use crate::DecodeError;

/// Netlink header flags (`NLM_F_*`).
pub mod flags {
    /// A request.
    pub const REQUEST: u16 = 0x1;
    /// Part of a multipart reply.
    pub const MULTI: u16 = 0x2;
    /// Ask for an acknowledgement.
    pub const ACK: u16 = 0x4;
    /// Root of a dump (GET requests).
    pub const ROOT: u16 = 0x100;
    /// Match all (GET requests).
    pub const MATCH: u16 = 0x200;
    /// Dump everything.
    pub const DUMP: u16 = ROOT | MATCH;
    /// Replace an existing object (NEW requests).
    pub const REPLACE: u16 = 0x100;
    /// Fail if it exists (NEW requests).
    pub const EXCL: u16 = 0x200;
    /// Create if missing (NEW requests).
    pub const CREATE: u16 = 0x400;
    /// `NLMSG_ERROR`: the request payload was not echoed.
    pub const CAPPED: u16 = 0x100;
    /// `NLMSG_ERROR`: extended-ack TLVs follow.
    pub const ACK_TLVS: u16 = 0x200;
}

/// Netlink control message types and XFRM message types (`XFRM_MSG_*`).
#[allow(missing_docs)]
pub mod msg_type {
    pub const NOOP: u16 = 1;
    pub const ERROR: u16 = 2;
    pub const DONE: u16 = 3;
    pub const OVERRUN: u16 = 4;
    pub const NEWSA: u16 = 16;
    pub const DELSA: u16 = 17;
    pub const GETSA: u16 = 18;
    pub const NEWPOLICY: u16 = 19;
    pub const DELPOLICY: u16 = 20;
    pub const GETPOLICY: u16 = 21;
    pub const ALLOCSPI: u16 = 22;
    pub const ACQUIRE: u16 = 23;
    pub const EXPIRE: u16 = 24;
    pub const UPDPOLICY: u16 = 25;
    pub const UPDSA: u16 = 26;
    pub const POLEXPIRE: u16 = 27;
    pub const FLUSHSA: u16 = 28;
    pub const FLUSHPOLICY: u16 = 29;
    pub const NEWAE: u16 = 30;
    pub const GETAE: u16 = 31;
    pub const REPORT: u16 = 32;
    pub const MIGRATE: u16 = 33;
    pub const NEWSADINFO: u16 = 34;
    pub const GETSADINFO: u16 = 35;
    pub const NEWSPDINFO: u16 = 36;
    pub const GETSPDINFO: u16 = 37;
    pub const MAPPING: u16 = 38;
}

/// `struct nlmsghdr` (16 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NlHeader {
    /// Length of the message, header included.
    pub len: u32,
    /// Message type.
    pub kind: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Port id of the sender (0 = kernel).
    pub pid: u32,
}

impl Struct for NlHeader {
    const SIZE: usize = 16;
    const NAME: &'static str = "nlmsghdr";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            len: r.u32()?,
            kind: r.u16()?,
            flags: r.u16()?,
            seq: r.u32()?,
            pid: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.len);
        out.put_u16(self.kind);
        out.put_u16(self.flags);
        out.put_u32(self.seq);
        out.put_u32(self.pid);
    }
}

/// `NLMSG_ERROR`: `struct nlmsgerr` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// 0 for an acknowledgement, otherwise a negative errno.
    pub error: i32,
    /// The header of the request this answers.
    pub request: NlHeader,
    /// The echoed request payload (unless capped) and extended-ack TLVs, raw.
    pub rest: Vec<u8>,
}

/// A fixed structure followed by XFRM attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithAttrs<T> {
    /// The fixed structure.
    pub body: T,
    /// The attributes, in wire order.
    pub attrs: Vec<XfrmAttr>,
}

impl<T> WithAttrs<T> {
    /// A structure with attributes.
    pub fn new(body: T, attrs: Vec<XfrmAttr>) -> Self {
        Self { body, attrs }
    }
}

/// NEWSPDINFO / NEWSADINFO: a `u32` flags word and attributes of the info namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoMessage<A> {
    /// The flags word (unused, 0).
    pub flags: u32,
    /// The attributes.
    pub attrs: Vec<A>,
}

/// The payload of one netlink message on an XFRM socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XfrmPayload {
    /// `NLMSG_ERROR`: an error or (error 0) an acknowledgement.
    Error(NlError),
    /// `NLMSG_DONE`: end of a dump (payload raw, usually an `int` 0).
    Done(Vec<u8>),
    /// `XFRM_MSG_NEWSA` (also the answer to GETSA and ALLOCSPI, and each dump entry).
    NewSa(WithAttrs<UsersaInfo>),
    /// `XFRM_MSG_UPDSA`.
    UpdSa(WithAttrs<UsersaInfo>),
    /// `XFRM_MSG_DELSA`.
    DelSa(WithAttrs<UsersaId>),
    /// `XFRM_MSG_GETSA` for one SA.
    GetSa(WithAttrs<UsersaId>),
    /// `XFRM_MSG_GETSA` with `NLM_F_DUMP`: the payload is raw (filters, usually empty).
    DumpSa(Vec<u8>),
    /// `XFRM_MSG_NEWPOLICY` (also the answer to GETPOLICY and each dump entry).
    NewPolicy(WithAttrs<UserpolicyInfo>),
    /// `XFRM_MSG_UPDPOLICY`.
    UpdPolicy(WithAttrs<UserpolicyInfo>),
    /// `XFRM_MSG_DELPOLICY`.
    DelPolicy(WithAttrs<UserpolicyId>),
    /// `XFRM_MSG_GETPOLICY` for one policy.
    GetPolicy(WithAttrs<UserpolicyId>),
    /// `XFRM_MSG_GETPOLICY` with `NLM_F_DUMP`: raw payload.
    DumpPolicy(Vec<u8>),
    /// `XFRM_MSG_ALLOCSPI`.
    AllocSpi(WithAttrs<UserspiInfo>),
    /// `XFRM_MSG_ACQUIRE`.
    Acquire(WithAttrs<UserAcquire>),
    /// `XFRM_MSG_EXPIRE`.
    Expire(WithAttrs<UserExpire>),
    /// `XFRM_MSG_POLEXPIRE`.
    PolExpire(WithAttrs<UserPolexpire>),
    /// `XFRM_MSG_FLUSHSA`.
    FlushSa(WithAttrs<UsersaFlush>),
    /// `XFRM_MSG_FLUSHPOLICY` (attributes only).
    FlushPolicy(Vec<XfrmAttr>),
    /// `XFRM_MSG_NEWSPDINFO`.
    NewSpdInfo(InfoMessage<SpdAttr>),
    /// `XFRM_MSG_GETSPDINFO` (a `u32` flags word).
    GetSpdInfo(u32),
    /// `XFRM_MSG_NEWSADINFO`.
    NewSadInfo(InfoMessage<SadAttr>),
    /// `XFRM_MSG_GETSADINFO` (a `u32` flags word).
    GetSadInfo(u32),
    /// `XFRM_MSG_MAPPING`.
    Mapping(WithAttrs<UserMapping>),
    /// Any other message type (NOOP, NEWAE, REPORT, MIGRATE...), raw.
    Other {
        /// Message type.
        kind: u16,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl XfrmPayload {
    /// The netlink message type of this payload.
    pub fn kind(&self) -> u16 {
        use msg_type::*;
        match self {
            Self::Error(_) => ERROR,
            Self::Done(_) => DONE,
            Self::NewSa(_) => NEWSA,
            Self::UpdSa(_) => UPDSA,
            Self::DelSa(_) => DELSA,
            Self::GetSa(_) | Self::DumpSa(_) => GETSA,
            Self::NewPolicy(_) => NEWPOLICY,
            Self::UpdPolicy(_) => UPDPOLICY,
            Self::DelPolicy(_) => DELPOLICY,
            Self::GetPolicy(_) | Self::DumpPolicy(_) => GETPOLICY,
            Self::AllocSpi(_) => ALLOCSPI,
            Self::Acquire(_) => ACQUIRE,
            Self::Expire(_) => EXPIRE,
            Self::PolExpire(_) => POLEXPIRE,
            Self::FlushSa(_) => FLUSHSA,
            Self::FlushPolicy(_) => FLUSHPOLICY,
            Self::NewSpdInfo(_) => NEWSPDINFO,
            Self::GetSpdInfo(_) => GETSPDINFO,
            Self::NewSadInfo(_) => NEWSADINFO,
            Self::GetSadInfo(_) => GETSADINFO,
            Self::Mapping(_) => MAPPING,
            Self::Other { kind, .. } => *kind,
        }
    }

    fn decode(kind: u16, flags_word: u16, p: &[u8]) -> Result<Self, DecodeError> {
        use msg_type::*;
        let dump = flags_word & flags::DUMP == flags::DUMP;
        Ok(match kind {
            ERROR => {
                let mut r = Reader::new(p, "nlmsgerr");
                let error = r.i32()?;
                let request = NlHeader::read(&mut r)?;
                Self::Error(NlError {
                    error,
                    request,
                    rest: r.rest().to_vec(),
                })
            }
            DONE => Self::Done(p.to_vec()),
            NEWSA => Self::NewSa(with_attrs(p)?),
            UPDSA => Self::UpdSa(with_attrs(p)?),
            DELSA => Self::DelSa(with_attrs(p)?),
            GETSA if dump => Self::DumpSa(p.to_vec()),
            GETSA => Self::GetSa(with_attrs(p)?),
            NEWPOLICY => Self::NewPolicy(with_attrs(p)?),
            UPDPOLICY => Self::UpdPolicy(with_attrs(p)?),
            DELPOLICY => Self::DelPolicy(with_attrs(p)?),
            GETPOLICY if dump => Self::DumpPolicy(p.to_vec()),
            GETPOLICY => Self::GetPolicy(with_attrs(p)?),
            ALLOCSPI => Self::AllocSpi(with_attrs(p)?),
            ACQUIRE => Self::Acquire(with_attrs(p)?),
            EXPIRE => Self::Expire(with_attrs(p)?),
            POLEXPIRE => Self::PolExpire(with_attrs(p)?),
            FLUSHSA => Self::FlushSa(with_attrs(p)?),
            FLUSHPOLICY => Self::FlushPolicy(decode_attrs(p)?),
            NEWSPDINFO => Self::NewSpdInfo(info_message(p)?),
            GETSPDINFO => Self::GetSpdInfo(flags_only(p)?),
            NEWSADINFO => Self::NewSadInfo(info_message(p)?),
            GETSADINFO => Self::GetSadInfo(flags_only(p)?),
            MAPPING => Self::Mapping(with_attrs(p)?),
            _ => Self::Other {
                kind,
                payload: p.to_vec(),
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Error(e) => {
                out.put_i32(e.error);
                e.request.write(out);
                out.extend_from_slice(&e.rest);
            }
            Self::Done(p) | Self::DumpSa(p) | Self::DumpPolicy(p) => out.extend_from_slice(p),
            Self::Other { payload, .. } => out.extend_from_slice(payload),
            Self::NewSa(m) | Self::UpdSa(m) => put_with_attrs(m, out),
            Self::DelSa(m) | Self::GetSa(m) => put_with_attrs(m, out),
            Self::NewPolicy(m) | Self::UpdPolicy(m) => put_with_attrs(m, out),
            Self::DelPolicy(m) | Self::GetPolicy(m) => put_with_attrs(m, out),
            Self::AllocSpi(m) => put_with_attrs(m, out),
            Self::Acquire(m) => put_with_attrs(m, out),
            Self::Expire(m) => put_with_attrs(m, out),
            Self::PolExpire(m) => put_with_attrs(m, out),
            Self::FlushSa(m) => put_with_attrs(m, out),
            Self::Mapping(m) => put_with_attrs(m, out),
            Self::FlushPolicy(attrs) => encode_attrs(attrs, out),
            Self::NewSpdInfo(m) => put_info(m, out),
            Self::NewSadInfo(m) => put_info(m, out),
            Self::GetSpdInfo(f) | Self::GetSadInfo(f) => out.put_u32(*f),
        }
    }
}

fn with_attrs<T: Struct>(p: &[u8]) -> Result<WithAttrs<T>, DecodeError> {
    let mut r = Reader::new(p, T::NAME);
    let body = T::read(&mut r)?;
    // Attributes start at NLMSG_ALIGN(sizeof(T)); a message may end inside that padding.
    let attrs = match p.get(align4(T::SIZE)..) {
        Some(rest) => decode_attrs(rest)?,
        None => Vec::new(),
    };
    Ok(WithAttrs { body, attrs })
}

fn put_with_attrs<T: Struct>(m: &WithAttrs<T>, out: &mut Vec<u8>) {
    m.body.write(out);
    if !m.attrs.is_empty() {
        let padded = align4(out.len());
        out.resize(padded, 0);
        encode_attrs(&m.attrs, out);
    }
}

fn flags_only(p: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(p, "info flags");
    let v = r.u32()?;
    if r.remaining() != 0 {
        return Err(DecodeError::BadLength {
            what: "info flags",
            len: p.len(),
        });
    }
    Ok(v)
}

fn info_message<A: Attribute>(p: &[u8]) -> Result<InfoMessage<A>, DecodeError> {
    let mut r = Reader::new(p, "info flags");
    let flags = r.u32()?;
    Ok(InfoMessage {
        flags,
        attrs: decode_attrs(r.rest())?,
    })
}

fn put_info<A: Attribute>(m: &InfoMessage<A>, out: &mut Vec<u8>) {
    out.put_u32(m.flags);
    encode_attrs(&m.attrs, out);
}

/// One netlink message: header fields and typed payload. The header length is computed when
/// encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlMessage {
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Sender port id.
    pub pid: u32,
    /// The payload; its variant gives the message type.
    pub payload: XfrmPayload,
}

impl NlMessage {
    /// A request with the given flags (`NLM_F_REQUEST` is added).
    pub fn request(flags_word: u16, seq: u32, payload: XfrmPayload) -> Self {
        Self {
            flags: flags_word | flags::REQUEST,
            seq,
            pid: 0,
            payload,
        }
    }

    /// Decodes the message at the start of `buf`; returns it and the offset of the next one.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let header = NlHeader::read(&mut Reader::new(buf, "nlmsghdr"))?;
        let len = header.len as usize;
        if len < NlHeader::SIZE {
            return Err(DecodeError::BadLength {
                what: "nlmsghdr",
                len,
            });
        }
        let payload = buf.get(NlHeader::SIZE..len).ok_or(DecodeError::Truncated {
            what: "netlink message",
            need: len,
            have: buf.len(),
        })?;
        let msg = Self {
            flags: header.flags,
            seq: header.seq,
            pid: header.pid,
            payload: XfrmPayload::decode(header.kind, header.flags, payload)?,
        };
        Ok((msg, align4(len).min(buf.len())))
    }

    /// Appends the message (header and payload) to `out`, starting at a 4-octet boundary.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let padded = align4(out.len());
        out.resize(padded, 0);
        let start = out.len();
        NlHeader {
            len: 0,
            kind: self.payload.kind(),
            flags: self.flags,
            seq: self.seq,
            pid: self.pid,
        }
        .write(out);
        self.payload.encode(out);
        let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
        if let Some(slot) = out.get_mut(start..start + 4) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// The message's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Iterates over the messages of a receive buffer. Stops after the first error.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Messages<'a> {
    /// Messages in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            rest: buf,
            failed: false,
        }
    }
}

impl Iterator for Messages<'_> {
    type Item = Result<NlMessage, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match NlMessage::decode(self.rest) {
            Ok((msg, next)) => {
                self.rest = self.rest.get(next..).unwrap_or(&[]);
                Some(Ok(msg))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes every message of a buffer.
pub fn decode_messages(buf: &[u8]) -> Result<Vec<NlMessage>, DecodeError> {
    Messages::new(buf).collect()
}

/// Encodes messages back to back.
pub fn encode_messages(msgs: &[NlMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out);
    }
    out
}
