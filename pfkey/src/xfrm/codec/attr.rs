//! Netlink attributes (`struct rtattr` / `nlattr`) of XFRM messages.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        len (u16, native)      |        type (u16, native)     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                payload (len - 4 octets), padded to 4          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Attributes this crate uses are typed ([`XfrmAttr`], [`SpdAttr`], [`SadAttr`]); any other
//! type is kept as raw bytes and written back unchanged. A typed attribute whose payload
//! length does not match its structure is a [`DecodeError::BadLength`], never a panic.

use super::structs::{
    EncapTmpl, HashInfo, HashThresh, LifetimeCur, ReplayState, UserOffload, UserTmpl,
    UserpolicyInfo, UserpolicyType, UsersaInfo, XfrmAddress, XfrmMark,
};
use super::wire::{align4, Put, Reader, Struct};
use crate::{DecodeError, Key};

/// `XFRMA_*` attribute types (`enum xfrm_attr_type_t`).
#[allow(missing_docs)]
pub mod xfrma {
    pub const ALG_AUTH: u16 = 1;
    pub const ALG_CRYPT: u16 = 2;
    pub const ALG_COMP: u16 = 3;
    pub const ENCAP: u16 = 4;
    pub const TMPL: u16 = 5;
    pub const SA: u16 = 6;
    pub const POLICY: u16 = 7;
    pub const SEC_CTX: u16 = 8;
    pub const LTIME_VAL: u16 = 9;
    pub const REPLAY_VAL: u16 = 10;
    pub const REPLAY_THRESH: u16 = 11;
    pub const ETIMER_THRESH: u16 = 12;
    pub const SRCADDR: u16 = 13;
    pub const COADDR: u16 = 14;
    pub const LASTUSED: u16 = 15;
    pub const POLICY_TYPE: u16 = 16;
    pub const MIGRATE: u16 = 17;
    pub const ALG_AEAD: u16 = 18;
    pub const KMADDRESS: u16 = 19;
    pub const ALG_AUTH_TRUNC: u16 = 20;
    pub const MARK: u16 = 21;
    pub const TFCPAD: u16 = 22;
    pub const REPLAY_ESN_VAL: u16 = 23;
    pub const SA_EXTRA_FLAGS: u16 = 24;
    pub const PROTO: u16 = 25;
    pub const ADDRESS_FILTER: u16 = 26;
    pub const PAD: u16 = 27;
    pub const OFFLOAD_DEV: u16 = 28;
    pub const SET_MARK: u16 = 29;
    pub const SET_MARK_MASK: u16 = 30;
    pub const IF_ID: u16 = 31;
    pub const MTIMER_THRESH: u16 = 32;
    pub const SA_DIR: u16 = 33;
}

/// An algorithm name: the kernel's `char alg_name[64]`, kept as raw octets so that whatever
/// follows the terminating NUL round-trips.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgName(pub [u8; 64]);

impl AlgName {
    /// A NUL-padded name. Names longer than 63 octets are cut (the kernel would reject them).
    pub fn new(name: &str) -> Self {
        let mut raw = [0u8; 64];
        for (dst, src) in raw.iter_mut().take(63).zip(name.bytes()) {
            *dst = src;
        }
        Self(raw)
    }

    /// The name up to the first NUL, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        std::str::from_utf8(self.0.get(..end)?).ok()
    }
}

impl std::fmt::Debug for AlgName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "AlgName(non-UTF-8)"),
        }
    }
}

fn key_octets(bits: u32) -> usize {
    (bits as usize).div_ceil(8)
}

fn read_key(
    r: &mut Reader<'_>,
    bits: u32,
    what: &'static str,
    len: usize,
) -> Result<Key, DecodeError> {
    let n = key_octets(bits);
    if r.remaining() != n {
        return Err(DecodeError::BadLength { what, len });
    }
    Ok(Key::new(r.take(n)?.to_vec()))
}

/// `struct xfrm_algo` (68 octets + key): name[64], key_len u32 (bits), key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algo {
    /// Kernel algorithm name (`cbc(aes)`, `hmac(sha1)`, `deflate`...).
    pub name: AlgName,
    /// Key length in bits; the key holds `ceil(key_bits / 8)` octets.
    pub key_bits: u32,
    /// The key.
    pub key: Key,
}

impl Algo {
    /// An algorithm with a key whose length in bits is the key's.
    pub fn new(name: &str, key: Key) -> Self {
        Self {
            name: AlgName::new(name),
            key_bits: u32::try_from(key.bits()).unwrap_or(u32::MAX),
            key,
        }
    }

    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload, "xfrm_algo");
        let name = AlgName(r.array()?);
        let key_bits = r.u32()?;
        let key = read_key(&mut r, key_bits, "xfrm_algo", payload.len())?;
        Ok(Self {
            name,
            key_bits,
            key,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name.0);
        out.put_u32(self.key_bits);
        out.extend_from_slice(self.key.as_bytes());
    }
}

/// `struct xfrm_algo_auth` (72 octets + key): name[64], key_len (bits), trunc_len (bits), key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgoAuth {
    /// Kernel algorithm name (`hmac(sha256)`).
    pub name: AlgName,
    /// Key length in bits.
    pub key_bits: u32,
    /// ICV length in bits after truncation.
    pub trunc_bits: u32,
    /// The key.
    pub key: Key,
}

impl AlgoAuth {
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload, "xfrm_algo_auth");
        let name = AlgName(r.array()?);
        let key_bits = r.u32()?;
        let trunc_bits = r.u32()?;
        let key = read_key(&mut r, key_bits, "xfrm_algo_auth", payload.len())?;
        Ok(Self {
            name,
            key_bits,
            trunc_bits,
            key,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name.0);
        out.put_u32(self.key_bits);
        out.put_u32(self.trunc_bits);
        out.extend_from_slice(self.key.as_bytes());
    }
}

/// `struct xfrm_algo_aead` (72 octets + key): name[64], key_len (bits, salt included),
/// icv_len (bits), key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgoAead {
    /// Kernel algorithm name (`rfc4106(gcm(aes))`).
    pub name: AlgName,
    /// Key length in bits, salt included.
    pub key_bits: u32,
    /// ICV length in bits.
    pub icv_bits: u32,
    /// The key followed by the salt.
    pub key: Key,
}

impl AlgoAead {
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload, "xfrm_algo_aead");
        let name = AlgName(r.array()?);
        let key_bits = r.u32()?;
        let icv_bits = r.u32()?;
        let key = read_key(&mut r, key_bits, "xfrm_algo_aead", payload.len())?;
        Ok(Self {
            name,
            key_bits,
            icv_bits,
            key,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name.0);
        out.put_u32(self.key_bits);
        out.put_u32(self.icv_bits);
        out.extend_from_slice(self.key.as_bytes());
    }
}

/// `struct xfrm_replay_state_esn` (24 octets + 4 × bmp_len).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct ReplayStateEsn {
    pub oseq: u32,
    pub seq: u32,
    pub oseq_hi: u32,
    pub seq_hi: u32,
    pub replay_window: u32,
    /// The bitmap; its length is `bmp_len` on the wire.
    pub bmp: Vec<u32>,
}

impl ReplayStateEsn {
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload, "xfrm_replay_state_esn");
        let bmp_len = r.u32()? as usize;
        let v = Self {
            oseq: r.u32()?,
            seq: r.u32()?,
            oseq_hi: r.u32()?,
            seq_hi: r.u32()?,
            replay_window: r.u32()?,
            bmp: Vec::new(),
        };
        if Some(r.remaining()) != bmp_len.checked_mul(4) {
            return Err(DecodeError::BadLength {
                what: "xfrm_replay_state_esn",
                len: payload.len(),
            });
        }
        let mut bmp = Vec::with_capacity(bmp_len);
        for _ in 0..bmp_len {
            bmp.push(r.u32()?);
        }
        Ok(Self { bmp, ..v })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(u32::try_from(self.bmp.len()).unwrap_or(u32::MAX));
        out.put_u32(self.oseq);
        out.put_u32(self.seq);
        out.put_u32(self.oseq_hi);
        out.put_u32(self.seq_hi);
        out.put_u32(self.replay_window);
        for w in &self.bmp {
            out.put_u32(*w);
        }
    }
}

/// A typed attribute family: how to decode one attribute's payload and write it back.
pub trait Attribute: Sized {
    /// Decodes one attribute of type `kind` (flag bits included).
    fn decode(kind: u16, payload: &[u8]) -> Result<Self, DecodeError>;
    /// The attribute type written on the wire.
    fn kind(&self) -> u16;
    /// Writes the payload (without header or padding).
    fn encode_payload(&self, out: &mut Vec<u8>);
}

/// Decodes an attribute chain that fills `bytes` exactly (the last attribute may omit its
/// padding).
pub fn decode_attrs<A: Attribute>(bytes: &[u8]) -> Result<Vec<A>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut r = Reader::new(rest, "rtattr");
        let len = usize::from(r.u16()?);
        let kind = r.u16()?;
        if len < 4 || len > rest.len() {
            return Err(DecodeError::BadLength {
                what: "rtattr",
                len,
            });
        }
        let payload = rest.get(4..len).ok_or(DecodeError::BadLength {
            what: "rtattr",
            len,
        })?;
        out.push(A::decode(kind, payload)?);
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Writes an attribute chain, each attribute padded to 4 octets.
pub fn encode_attrs<A: Attribute>(attrs: &[A], out: &mut Vec<u8>) {
    for a in attrs {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(a.kind());
        a.encode_payload(out);
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        if let Some(slot) = out.get_mut(start..start + 2) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
        let padded = align4(out.len());
        out.resize(padded, 0);
    }
}

fn exact<T: Struct>(payload: &[u8]) -> Result<T, DecodeError> {
    if payload.len() != T::SIZE {
        return Err(DecodeError::BadLength {
            what: T::NAME,
            len: payload.len(),
        });
    }
    T::decode_exact(payload)
}

fn exact_u32(payload: &[u8], what: &'static str) -> Result<u32, DecodeError> {
    let raw: [u8; 4] = payload.try_into().map_err(|_| DecodeError::BadLength {
        what,
        len: payload.len(),
    })?;
    Ok(u32::from_ne_bytes(raw))
}

fn exact_u64(payload: &[u8], what: &'static str) -> Result<u64, DecodeError> {
    let raw: [u8; 8] = payload.try_into().map_err(|_| DecodeError::BadLength {
        what,
        len: payload.len(),
    })?;
    Ok(u64::from_ne_bytes(raw))
}

fn exact_u8(payload: &[u8], what: &'static str) -> Result<u8, DecodeError> {
    match payload {
        [b] => Ok(*b),
        _ => Err(DecodeError::BadLength {
            what,
            len: payload.len(),
        }),
    }
}

fn templates(payload: &[u8]) -> Result<Vec<UserTmpl>, DecodeError> {
    if !payload.len().is_multiple_of(UserTmpl::SIZE) {
        return Err(DecodeError::BadLength {
            what: "XFRMA_TMPL",
            len: payload.len(),
        });
    }
    payload
        .chunks(UserTmpl::SIZE)
        .map(UserTmpl::decode_exact)
        .collect()
}

/// An XFRM attribute (`XFRMA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XfrmAttr {
    /// `XFRMA_ALG_AUTH`: integrity algorithm with the kernel's default truncation.
    AlgAuth(Algo),
    /// `XFRMA_ALG_CRYPT`: encryption algorithm.
    AlgCrypt(Algo),
    /// `XFRMA_ALG_COMP`: compression algorithm.
    AlgComp(Algo),
    /// `XFRMA_ENCAP`: UDP encapsulation (NAT-T).
    Encap(EncapTmpl),
    /// `XFRMA_TMPL`: policy templates, innermost first.
    Tmpl(Vec<UserTmpl>),
    /// `XFRMA_SA`: a whole SA (in delete notifications).
    Sa(UsersaInfo),
    /// `XFRMA_POLICY`: a whole policy (in delete notifications).
    Policy(UserpolicyInfo),
    /// `XFRMA_LTIME_VAL`: current lifetime counters.
    LifetimeVal(LifetimeCur),
    /// `XFRMA_REPLAY_VAL`: replay state (no ESN).
    ReplayVal(ReplayState),
    /// `XFRMA_REPLAY_THRESH`.
    ReplayThresh(u32),
    /// `XFRMA_ETIMER_THRESH`.
    EtimerThresh(u32),
    /// `XFRMA_SRCADDR`: source address (GETSA/DELSA lookups).
    SrcAddr(XfrmAddress),
    /// `XFRMA_COADDR`: care-of address (Mobile IPv6).
    CoAddr(XfrmAddress),
    /// `XFRMA_LASTUSED`: time of last use.
    LastUsed(u64),
    /// `XFRMA_POLICY_TYPE`: main or sub policy.
    PolicyType(UserpolicyType),
    /// `XFRMA_ALG_AEAD`: AEAD algorithm.
    AlgAead(AlgoAead),
    /// `XFRMA_ALG_AUTH_TRUNC`: integrity algorithm with explicit truncation.
    AlgAuthTrunc(AlgoAuth),
    /// `XFRMA_MARK`: firewall mark and mask.
    Mark(XfrmMark),
    /// `XFRMA_TFCPAD`: TFC padding.
    TfcPad(u32),
    /// `XFRMA_REPLAY_ESN_VAL`: replay state with ESN / large windows.
    ReplayEsnVal(ReplayStateEsn),
    /// `XFRMA_SA_EXTRA_FLAGS`.
    SaExtraFlags(u32),
    /// `XFRMA_PROTO`: protocol filter (flush).
    Proto(u8),
    /// `XFRMA_OFFLOAD_DEV`: hardware offload device.
    OffloadDev(UserOffload),
    /// `XFRMA_SET_MARK`: mark to set on output.
    SetMark(u32),
    /// `XFRMA_SET_MARK_MASK`.
    SetMarkMask(u32),
    /// `XFRMA_IF_ID`: xfrm interface id.
    IfId(u32),
    /// `XFRMA_MTIMER_THRESH`.
    MtimerThresh(u32),
    /// `XFRMA_SA_DIR` (Linux 6.10+).
    SaDir(u8),
    /// Any other attribute, kept as is.
    Other {
        /// Attribute type, flag bits included.
        kind: u16,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl Attribute for XfrmAttr {
    fn decode(kind: u16, p: &[u8]) -> Result<Self, DecodeError> {
        use xfrma::*;
        Ok(match kind {
            ALG_AUTH => Self::AlgAuth(Algo::decode(p)?),
            ALG_CRYPT => Self::AlgCrypt(Algo::decode(p)?),
            ALG_COMP => Self::AlgComp(Algo::decode(p)?),
            ENCAP => Self::Encap(exact(p)?),
            TMPL => Self::Tmpl(templates(p)?),
            SA => Self::Sa(exact(p)?),
            POLICY => Self::Policy(exact(p)?),
            LTIME_VAL => Self::LifetimeVal(exact(p)?),
            REPLAY_VAL => Self::ReplayVal(exact(p)?),
            REPLAY_THRESH => Self::ReplayThresh(exact_u32(p, "XFRMA_REPLAY_THRESH")?),
            ETIMER_THRESH => Self::EtimerThresh(exact_u32(p, "XFRMA_ETIMER_THRESH")?),
            SRCADDR => Self::SrcAddr(exact(p)?),
            COADDR => Self::CoAddr(exact(p)?),
            LASTUSED => Self::LastUsed(exact_u64(p, "XFRMA_LASTUSED")?),
            POLICY_TYPE => Self::PolicyType(exact(p)?),
            ALG_AEAD => Self::AlgAead(AlgoAead::decode(p)?),
            ALG_AUTH_TRUNC => Self::AlgAuthTrunc(AlgoAuth::decode(p)?),
            MARK => Self::Mark(exact(p)?),
            TFCPAD => Self::TfcPad(exact_u32(p, "XFRMA_TFCPAD")?),
            REPLAY_ESN_VAL => Self::ReplayEsnVal(ReplayStateEsn::decode(p)?),
            SA_EXTRA_FLAGS => Self::SaExtraFlags(exact_u32(p, "XFRMA_SA_EXTRA_FLAGS")?),
            PROTO => Self::Proto(exact_u8(p, "XFRMA_PROTO")?),
            OFFLOAD_DEV => Self::OffloadDev(exact(p)?),
            SET_MARK => Self::SetMark(exact_u32(p, "XFRMA_SET_MARK")?),
            SET_MARK_MASK => Self::SetMarkMask(exact_u32(p, "XFRMA_SET_MARK_MASK")?),
            IF_ID => Self::IfId(exact_u32(p, "XFRMA_IF_ID")?),
            MTIMER_THRESH => Self::MtimerThresh(exact_u32(p, "XFRMA_MTIMER_THRESH")?),
            SA_DIR => Self::SaDir(exact_u8(p, "XFRMA_SA_DIR")?),
            _ => Self::Other {
                kind,
                payload: p.to_vec(),
            },
        })
    }

    fn kind(&self) -> u16 {
        use xfrma::*;
        match self {
            Self::AlgAuth(_) => ALG_AUTH,
            Self::AlgCrypt(_) => ALG_CRYPT,
            Self::AlgComp(_) => ALG_COMP,
            Self::Encap(_) => ENCAP,
            Self::Tmpl(_) => TMPL,
            Self::Sa(_) => SA,
            Self::Policy(_) => POLICY,
            Self::LifetimeVal(_) => LTIME_VAL,
            Self::ReplayVal(_) => REPLAY_VAL,
            Self::ReplayThresh(_) => REPLAY_THRESH,
            Self::EtimerThresh(_) => ETIMER_THRESH,
            Self::SrcAddr(_) => SRCADDR,
            Self::CoAddr(_) => COADDR,
            Self::LastUsed(_) => LASTUSED,
            Self::PolicyType(_) => POLICY_TYPE,
            Self::AlgAead(_) => ALG_AEAD,
            Self::AlgAuthTrunc(_) => ALG_AUTH_TRUNC,
            Self::Mark(_) => MARK,
            Self::TfcPad(_) => TFCPAD,
            Self::ReplayEsnVal(_) => REPLAY_ESN_VAL,
            Self::SaExtraFlags(_) => SA_EXTRA_FLAGS,
            Self::Proto(_) => PROTO,
            Self::OffloadDev(_) => OFFLOAD_DEV,
            Self::SetMark(_) => SET_MARK,
            Self::SetMarkMask(_) => SET_MARK_MASK,
            Self::IfId(_) => IF_ID,
            Self::MtimerThresh(_) => MTIMER_THRESH,
            Self::SaDir(_) => SA_DIR,
            Self::Other { kind, .. } => *kind,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Self::AlgAuth(a) | Self::AlgCrypt(a) | Self::AlgComp(a) => a.encode(out),
            Self::Encap(e) => e.write(out),
            Self::Tmpl(ts) => ts.iter().for_each(|t| t.write(out)),
            Self::Sa(s) => s.write(out),
            Self::Policy(p) => p.write(out),
            Self::LifetimeVal(l) => l.write(out),
            Self::ReplayVal(r) => r.write(out),
            Self::ReplayThresh(v)
            | Self::EtimerThresh(v)
            | Self::TfcPad(v)
            | Self::SaExtraFlags(v)
            | Self::SetMark(v)
            | Self::SetMarkMask(v)
            | Self::IfId(v)
            | Self::MtimerThresh(v) => out.put_u32(*v),
            Self::SrcAddr(a) | Self::CoAddr(a) => a.write(out),
            Self::LastUsed(v) => out.put_u64(*v),
            Self::PolicyType(t) => t.write(out),
            Self::AlgAead(a) => a.encode(out),
            Self::AlgAuthTrunc(a) => a.encode(out),
            Self::Mark(m) => m.write(out),
            Self::ReplayEsnVal(r) => r.encode(out),
            Self::Proto(v) | Self::SaDir(v) => out.put_u8(*v),
            Self::OffloadDev(o) => o.write(out),
            Self::Other { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

/// An attribute of NEWSPDINFO (`XFRMA_SPD_*`, a namespace of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpdAttr {
    /// `XFRMA_SPD_INFO` (1): counts by direction.
    Info(super::structs::SpdCounts),
    /// `XFRMA_SPD_HINFO` (2): hash table size.
    HashInfo(HashInfo),
    /// `XFRMA_SPD_IPV4_HTHRESH` (3).
    Ipv4HashThresh(HashThresh),
    /// `XFRMA_SPD_IPV6_HTHRESH` (4).
    Ipv6HashThresh(HashThresh),
    /// Any other attribute.
    Other {
        /// Attribute type.
        kind: u16,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl Attribute for SpdAttr {
    fn decode(kind: u16, p: &[u8]) -> Result<Self, DecodeError> {
        Ok(match kind {
            1 => Self::Info(exact(p)?),
            2 => Self::HashInfo(exact(p)?),
            3 => Self::Ipv4HashThresh(exact(p)?),
            4 => Self::Ipv6HashThresh(exact(p)?),
            _ => Self::Other {
                kind,
                payload: p.to_vec(),
            },
        })
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Info(_) => 1,
            Self::HashInfo(_) => 2,
            Self::Ipv4HashThresh(_) => 3,
            Self::Ipv6HashThresh(_) => 4,
            Self::Other { kind, .. } => *kind,
        }
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Self::Info(i) => i.write(out),
            Self::HashInfo(h) => h.write(out),
            Self::Ipv4HashThresh(t) | Self::Ipv6HashThresh(t) => t.write(out),
            Self::Other { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

/// An attribute of NEWSADINFO (`XFRMA_SAD_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SadAttr {
    /// `XFRMA_SAD_CNT` (1): number of SAs.
    Count(u32),
    /// `XFRMA_SAD_HINFO` (2): hash table size.
    HashInfo(HashInfo),
    /// Any other attribute.
    Other {
        /// Attribute type.
        kind: u16,
        /// Payload.
        payload: Vec<u8>,
    },
}

impl Attribute for SadAttr {
    fn decode(kind: u16, p: &[u8]) -> Result<Self, DecodeError> {
        Ok(match kind {
            1 => Self::Count(exact_u32(p, "XFRMA_SAD_CNT")?),
            2 => Self::HashInfo(exact(p)?),
            _ => Self::Other {
                kind,
                payload: p.to_vec(),
            },
        })
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Count(_) => 1,
            Self::HashInfo(_) => 2,
            Self::Other { kind, .. } => *kind,
        }
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Self::Count(c) => out.put_u32(*c),
            Self::HashInfo(h) => h.write(out),
            Self::Other { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfrm::codec::structs::{AddressFamily, XfrmId};
    use crate::xfrm::codec::wire::Be16;

    fn roundtrip(attrs: Vec<XfrmAttr>) {
        let mut out = Vec::new();
        encode_attrs(&attrs, &mut out);
        assert_eq!(out.len() % 4, 0);
        let back: Vec<XfrmAttr> = decode_attrs(&out).unwrap();
        assert_eq!(back, attrs);
        let mut again = Vec::new();
        encode_attrs(&back, &mut again);
        assert_eq!(again, out);
    }

    #[test]
    fn every_typed_attribute_round_trips() {
        roundtrip(vec![
            XfrmAttr::AlgCrypt(Algo::new("cbc(aes)", Key::new(vec![7; 16]))),
            XfrmAttr::AlgAuth(Algo::new("hmac(sha1)", Key::new(vec![1; 20]))),
            XfrmAttr::AlgComp(Algo::new("deflate", Key::new(vec![]))),
            XfrmAttr::AlgAuthTrunc(AlgoAuth {
                name: AlgName::new("hmac(sha256)"),
                key_bits: 256,
                trunc_bits: 128,
                key: Key::new(vec![2; 32]),
            }),
            XfrmAttr::AlgAead(AlgoAead {
                name: AlgName::new("rfc4106(gcm(aes))"),
                key_bits: 160,
                icv_bits: 128,
                key: Key::new(vec![3; 20]),
            }),
            XfrmAttr::Encap(EncapTmpl {
                encap_type: 2,
                sport: Be16(4500),
                dport: Be16(4501),
                oa: XfrmAddress::from_ip("203.0.113.9".parse().unwrap()),
            }),
            XfrmAttr::Tmpl(vec![
                UserTmpl {
                    id: XfrmId {
                        proto: 50,
                        ..Default::default()
                    },
                    family: AddressFamily::INET,
                    reqid: 1,
                    ..Default::default()
                },
                UserTmpl::default(),
            ]),
            XfrmAttr::Sa(UsersaInfo::default()),
            XfrmAttr::Policy(UserpolicyInfo::default()),
            XfrmAttr::LifetimeVal(LifetimeCur::default()),
            XfrmAttr::ReplayVal(ReplayState::default()),
            XfrmAttr::ReplayThresh(1),
            XfrmAttr::EtimerThresh(2),
            XfrmAttr::SrcAddr(XfrmAddress::default()),
            XfrmAttr::CoAddr(XfrmAddress::default()),
            XfrmAttr::LastUsed(99),
            XfrmAttr::PolicyType(UserpolicyType::default()),
            XfrmAttr::Mark(XfrmMark { v: 1, m: 0xff }),
            XfrmAttr::TfcPad(3),
            XfrmAttr::ReplayEsnVal(ReplayStateEsn {
                replay_window: 64,
                bmp: vec![0, 0],
                ..Default::default()
            }),
            XfrmAttr::SaExtraFlags(4),
            XfrmAttr::Proto(50),
            XfrmAttr::OffloadDev(UserOffload {
                ifindex: 4,
                flags: 2,
            }),
            XfrmAttr::SetMark(5),
            XfrmAttr::SetMarkMask(6),
            XfrmAttr::IfId(7),
            XfrmAttr::MtimerThresh(8),
            XfrmAttr::SaDir(1),
            XfrmAttr::Other {
                kind: 0x8000 | 99,
                payload: vec![1, 2, 3],
            },
        ]);
    }

    #[test]
    fn unknown_attribute_round_trips_unchanged() {
        let raw = [7u8, 0, 200, 0, 9, 8, 7, 0];
        let raw = {
            let mut r = raw;
            r[0..2].copy_from_slice(&7u16.to_ne_bytes());
            r[2..4].copy_from_slice(&200u16.to_ne_bytes());
            r
        };
        let attrs: Vec<XfrmAttr> = decode_attrs(&raw).unwrap();
        assert_eq!(
            attrs,
            vec![XfrmAttr::Other {
                kind: 200,
                payload: vec![9, 8, 7]
            }]
        );
        let mut out = Vec::new();
        encode_attrs(&attrs, &mut out);
        assert_eq!(out, raw);
    }

    #[test]
    fn algorithm_with_inconsistent_key_length_is_rejected() {
        let mut payload = Vec::new();
        Algo::new("cbc(aes)", Key::new(vec![0; 16])).encode(&mut payload);
        payload.pop();
        assert!(matches!(
            Algo::decode(&payload),
            Err(DecodeError::BadLength {
                what: "xfrm_algo",
                ..
            })
        ));
        let mut payload = Vec::new();
        Algo {
            name: AlgName::new("x"),
            key_bits: u32::MAX,
            key: Key::new(vec![]),
        }
        .encode(&mut payload);
        assert!(Algo::decode(&payload).is_err());
    }

    #[test]
    fn attribute_length_beyond_buffer_is_rejected() {
        let mut raw = Vec::new();
        raw.put_u16(12);
        raw.put_u16(xfrma::MARK);
        raw.put_u32(1);
        assert_eq!(
            decode_attrs::<XfrmAttr>(&raw),
            Err(DecodeError::BadLength {
                what: "rtattr",
                len: 12
            })
        );
        let mut raw = Vec::new();
        raw.put_u16(2);
        raw.put_u16(1);
        assert!(decode_attrs::<XfrmAttr>(&raw).is_err());
    }

    #[test]
    fn fixed_size_attribute_with_wrong_length_is_rejected() {
        let mut raw = Vec::new();
        raw.put_u16(4 + 7);
        raw.put_u16(xfrma::MARK);
        raw.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decode_attrs::<XfrmAttr>(&raw),
            Err(DecodeError::BadLength {
                what: "xfrm_mark",
                len: 7
            })
        ));
        let mut raw = Vec::new();
        raw.put_u16(4 + 65);
        raw.put_u16(xfrma::TMPL);
        raw.extend_from_slice(&[0; 68]);
        assert!(decode_attrs::<XfrmAttr>(&raw).is_err());
    }

    #[test]
    fn every_truncation_of_an_attribute_chain_fails_without_panic() {
        let attrs = vec![
            XfrmAttr::AlgAuthTrunc(AlgoAuth {
                name: AlgName::new("hmac(sha256)"),
                key_bits: 256,
                trunc_bits: 128,
                key: Key::new(vec![2; 32]),
            }),
            XfrmAttr::Mark(XfrmMark { v: 1, m: 2 }),
        ];
        let mut out = Vec::new();
        encode_attrs(&attrs, &mut out);
        for cut in 1..out.len() {
            // A cut exactly at an attribute boundary is a shorter valid chain.
            if let Ok(v) = decode_attrs::<XfrmAttr>(&out[..cut]) {
                assert!(v.len() < attrs.len() || cut >= out.len() - 3, "cut {cut}");
            }
        }
    }

    #[test]
    fn algorithm_names_read_up_to_the_nul() {
        assert_eq!(
            AlgName::new("cbc(des3_ede)").as_str(),
            Some("cbc(des3_ede)")
        );
        let long = "x".repeat(80);
        assert_eq!(AlgName::new(&long).as_str().map(str::len), Some(63));
    }

    #[test]
    fn spd_attributes_round_trip() {
        let attrs = vec![
            SpdAttr::Info(super::super::structs::SpdCounts {
                incnt: 1,
                outcnt: 2,
                fwdcnt: 3,
                inscnt: 4,
                outscnt: 5,
                fwdscnt: 6,
            }),
            SpdAttr::HashInfo(HashInfo { count: 7, max: 8 }),
            SpdAttr::Ipv4HashThresh(HashThresh {
                lbits: 32,
                rbits: 32,
            }),
            SpdAttr::Ipv6HashThresh(HashThresh {
                lbits: 128,
                rbits: 128,
            }),
        ];
        let mut out = Vec::new();
        encode_attrs(&attrs, &mut out);
        assert_eq!(decode_attrs::<SpdAttr>(&out).unwrap(), attrs);
    }
}
