//! PF_KEY v2 wire codec (RFC 2367 + KAME extensions), Linux and FreeBSD dialects.
//!
//! Converts between bytes and a typed [`Message`]. It performs no I/O, keeps no state and
//! never panics on input: [`decode`] returns a [`DecodeError`] for truncated or inconsistent
//! messages (length fields beyond the buffer, zero-length extensions, a `sadb_msg_len` that
//! disagrees with the buffer, duplicated extensions, which RFC 2367 §2.3 forbids and both
//! kernels reject). It allocates at most in proportion to the input. Extensions this codec
//! does not know are kept as raw octets and written back unchanged.
//!
//! The [`Dialect`] is a value, so one build can read and write both systems' messages:
//!
//! | | Linux `af_key` | FreeBSD |
//! |---|---|---|
//! | sockaddr header | `u16` family | `u8` sa_len, `u8` family |
//! | `AF_INET6` | 10 | 28 |
//! | `sadb_x_ipsecrequest` | 16 octets, 32-bit reqid | 8 octets, 16-bit reqid |
//! | `sadb_sa_replay` | packets | octets of bitmap |
//! | extensions 24, 25, 26 | SEC_CTX, KMADDRESS, FILTER | NAT_T_OAR, NAT_T_FRAG, SA_REPLAY |
//! | extensions 27, 28 | — | NEW_ADDRESS_SRC/DST |
//! | `IPSEC_MODE` 3 | BEET | TCPMD5 |
//! | message types 23, 24 | X_NAT_T_NEW_MAPPING, X_MIGRATE | — |
//!
//! Which extensions a message needs, and what they mean for the kernel objects, is the
//! business of [`super::map`].

pub mod consts;
mod ext;
mod sockaddr;
mod wire;

pub use ext::{
    AddressExt, Alg, Comb, FilterExt, IdentityExt, IpsecRequest, KeyExt, KmAddressExt,
    KmPrivateExt, LifetimeExt, PolicyExt, ProposalExt, Sa2Ext, SaExt, SecCtxExt, SensitivityExt,
    SpiRangeExt, SupportedExt,
};
pub use sockaddr::{SockAddr, AF_INET, AF_INET6_FREEBSD, AF_INET6_LINUX};

use crate::DecodeError;
use wire::{Reader, Writer};

/// The PF_KEY dialect: which system's structure layouts and numbers to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Linux `af_key` (`include/uapi/linux/pfkeyv2.h`, `linux/ipsec.h`).
    Linux,
    /// FreeBSD (`sys/net/pfkeyv2.h`, `sys/netipsec/ipsec.h`), KAME-derived.
    FreeBsd,
}

impl Dialect {
    /// The dialect of the system this crate is compiled for (Linux elsewhere).
    pub const fn native() -> Self {
        if cfg!(target_os = "freebsd") {
            Self::FreeBsd
        } else {
            Self::Linux
        }
    }

    /// `AF_INET6` in this system's numbering.
    pub const fn af_inet6(self) -> u16 {
        match self {
            Self::Linux => AF_INET6_LINUX,
            Self::FreeBsd => AF_INET6_FREEBSD,
        }
    }

    /// Highest message type (`SADB_MAX`).
    pub const fn max_message_type(self) -> u8 {
        match self {
            Self::Linux => 24,
            Self::FreeBsd => 22,
        }
    }
}

/// The `sadb_msg` header length.
pub const HEADER_LEN: usize = 16;

/// Which lifetime a `sadb_lifetime` extension carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeKind {
    /// LIFETIME_CURRENT (2).
    Current,
    /// LIFETIME_HARD (3).
    Hard,
    /// LIFETIME_SOFT (4).
    Soft,
}

/// Which address a `sadb_address`-shaped extension carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// ADDRESS_SRC (5).
    Source,
    /// ADDRESS_DST (6).
    Destination,
    /// ADDRESS_PROXY (7).
    Proxy,
    /// X_NAT_T_OA (Linux 23) = X_NAT_T_OAI (FreeBSD 23): original (initiator) address.
    NatTOa,
    /// X_NAT_T_OAR (FreeBSD 24): original responder address.
    NatTOar,
    /// X_NEW_ADDRESS_SRC (FreeBSD 27).
    NewSource,
    /// X_NEW_ADDRESS_DST (FreeBSD 28).
    NewDestination,
}

/// Which key a `sadb_key` extension carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// KEY_AUTH (8).
    Auth,
    /// KEY_ENCRYPT (9).
    Encrypt,
}

/// Which identity a `sadb_ident` extension carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// IDENTITY_SRC (10).
    Source,
    /// IDENTITY_DST (11).
    Destination,
}

/// Which algorithms a `sadb_supported` extension lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupportedKind {
    /// SUPPORTED_AUTH (14).
    Auth,
    /// SUPPORTED_ENCRYPT (15).
    Encrypt,
}

/// Which port a `sadb_x_nat_t_port` extension carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// X_NAT_T_SPORT (21).
    Source,
    /// X_NAT_T_DPORT (22).
    Destination,
}

/// Extension types independent of their dialect-specific numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variants are named after SADB_EXT_* / SADB_X_EXT_*
pub enum ExtensionType {
    Sa,
    Lifetime(LifetimeKind),
    Address(AddressKind),
    Key(KeyKind),
    Identity(IdentityKind),
    Sensitivity,
    Proposal,
    Supported(SupportedKind),
    SpiRange,
    KmPrivate,
    Policy,
    Sa2,
    NatTType,
    NatTPort(PortKind),
    NatTFrag,
    SaReplay,
    SecCtx,
    KmAddress,
    Filter,
}

impl ExtensionType {
    /// The extension number in `dialect`, or `None` if the dialect lacks the extension.
    pub fn number(self, dialect: Dialect) -> Option<u16> {
        use AddressKind as A;
        use Dialect::{FreeBsd, Linux};
        Some(match (self, dialect) {
            (Self::Sa, _) => 1,
            (Self::Lifetime(LifetimeKind::Current), _) => 2,
            (Self::Lifetime(LifetimeKind::Hard), _) => 3,
            (Self::Lifetime(LifetimeKind::Soft), _) => 4,
            (Self::Address(A::Source), _) => 5,
            (Self::Address(A::Destination), _) => 6,
            (Self::Address(A::Proxy), _) => 7,
            (Self::Key(KeyKind::Auth), _) => 8,
            (Self::Key(KeyKind::Encrypt), _) => 9,
            (Self::Identity(IdentityKind::Source), _) => 10,
            (Self::Identity(IdentityKind::Destination), _) => 11,
            (Self::Sensitivity, _) => 12,
            (Self::Proposal, _) => 13,
            (Self::Supported(SupportedKind::Auth), _) => 14,
            (Self::Supported(SupportedKind::Encrypt), _) => 15,
            (Self::SpiRange, _) => 16,
            (Self::KmPrivate, _) => 17,
            (Self::Policy, _) => 18,
            (Self::Sa2, _) => 19,
            (Self::NatTType, _) => 20,
            (Self::NatTPort(PortKind::Source), _) => 21,
            (Self::NatTPort(PortKind::Destination), _) => 22,
            (Self::Address(A::NatTOa), _) => 23,
            (Self::SecCtx, Linux) => 24,
            (Self::KmAddress, Linux) => 25,
            (Self::Filter, Linux) => 26,
            (Self::Address(A::NatTOar), FreeBsd) => 24,
            (Self::NatTFrag, FreeBsd) => 25,
            (Self::SaReplay, FreeBsd) => 26,
            (Self::Address(A::NewSource), FreeBsd) => 27,
            (Self::Address(A::NewDestination), FreeBsd) => 28,
            _ => return None,
        })
    }

    /// The extension type of a number in `dialect`, or `None` if unknown there.
    pub fn from_number(n: u16, dialect: Dialect) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.number(dialect) == Some(n))
    }

    /// Every extension type of both dialects.
    pub const ALL: [Self; 31] = {
        use AddressKind as A;
        [
            Self::Sa,
            Self::Lifetime(LifetimeKind::Current),
            Self::Lifetime(LifetimeKind::Hard),
            Self::Lifetime(LifetimeKind::Soft),
            Self::Address(A::Source),
            Self::Address(A::Destination),
            Self::Address(A::Proxy),
            Self::Key(KeyKind::Auth),
            Self::Key(KeyKind::Encrypt),
            Self::Identity(IdentityKind::Source),
            Self::Identity(IdentityKind::Destination),
            Self::Sensitivity,
            Self::Proposal,
            Self::Supported(SupportedKind::Auth),
            Self::Supported(SupportedKind::Encrypt),
            Self::SpiRange,
            Self::KmPrivate,
            Self::Policy,
            Self::Sa2,
            Self::NatTType,
            Self::NatTPort(PortKind::Source),
            Self::NatTPort(PortKind::Destination),
            Self::Address(A::NatTOa),
            Self::SecCtx,
            Self::KmAddress,
            Self::Filter,
            Self::Address(A::NatTOar),
            Self::NatTFrag,
            Self::SaReplay,
            Self::Address(A::NewSource),
            Self::Address(A::NewDestination),
        ]
    };

    /// A name for errors and logs.
    pub fn name(self) -> &'static str {
        use AddressKind as A;
        match self {
            Self::Sa => "SA",
            Self::Lifetime(LifetimeKind::Current) => "LIFETIME_CURRENT",
            Self::Lifetime(LifetimeKind::Hard) => "LIFETIME_HARD",
            Self::Lifetime(LifetimeKind::Soft) => "LIFETIME_SOFT",
            Self::Address(A::Source) => "ADDRESS_SRC",
            Self::Address(A::Destination) => "ADDRESS_DST",
            Self::Address(A::Proxy) => "ADDRESS_PROXY",
            Self::Address(A::NatTOa) => "X_NAT_T_OA",
            Self::Address(A::NatTOar) => "X_NAT_T_OAR",
            Self::Address(A::NewSource) => "X_NEW_ADDRESS_SRC",
            Self::Address(A::NewDestination) => "X_NEW_ADDRESS_DST",
            Self::Key(KeyKind::Auth) => "KEY_AUTH",
            Self::Key(KeyKind::Encrypt) => "KEY_ENCRYPT",
            Self::Identity(IdentityKind::Source) => "IDENTITY_SRC",
            Self::Identity(IdentityKind::Destination) => "IDENTITY_DST",
            Self::Sensitivity => "SENSITIVITY",
            Self::Proposal => "PROPOSAL",
            Self::Supported(SupportedKind::Auth) => "SUPPORTED_AUTH",
            Self::Supported(SupportedKind::Encrypt) => "SUPPORTED_ENCRYPT",
            Self::SpiRange => "SPIRANGE",
            Self::KmPrivate => "X_KMPRIVATE",
            Self::Policy => "X_POLICY",
            Self::Sa2 => "X_SA2",
            Self::NatTType => "X_NAT_T_TYPE",
            Self::NatTPort(PortKind::Source) => "X_NAT_T_SPORT",
            Self::NatTPort(PortKind::Destination) => "X_NAT_T_DPORT",
            Self::NatTFrag => "X_NAT_T_FRAG",
            Self::SaReplay => "X_SA_REPLAY",
            Self::SecCtx => "X_SEC_CTX",
            Self::KmAddress => "X_KMADDRESS",
            Self::Filter => "X_FILTER",
        }
    }
}

/// One decoded extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// `sadb_sa`.
    Sa(SaExt),
    /// `sadb_lifetime` (current, hard or soft).
    Lifetime(LifetimeKind, LifetimeExt),
    /// `sadb_address` (source, destination, proxy, NAT-T original, FreeBSD new addresses).
    Address(AddressKind, AddressExt),
    /// `sadb_key`.
    Key(KeyKind, KeyExt),
    /// `sadb_ident`.
    Identity(IdentityKind, IdentityExt),
    /// `sadb_sens`.
    Sensitivity(SensitivityExt),
    /// `sadb_prop`.
    Proposal(ProposalExt),
    /// `sadb_supported`.
    Supported(SupportedKind, SupportedExt),
    /// `sadb_spirange`.
    SpiRange(SpiRangeExt),
    /// `sadb_x_kmprivate`.
    KmPrivate(KmPrivateExt),
    /// `sadb_x_policy` with its requests.
    Policy(PolicyExt),
    /// `sadb_x_sa2`.
    Sa2(Sa2Ext),
    /// `sadb_x_nat_t_type`: the encapsulation type (2 = `UDP_ENCAP_ESPINUDP`).
    NatTType(u8),
    /// `sadb_x_nat_t_port` (host value; network order on the wire).
    NatTPort(PortKind, u16),
    /// FreeBSD `sadb_x_nat_t_frag`: fragment length.
    NatTFrag(u16),
    /// FreeBSD `sadb_x_sa_replay`: replay window in packets.
    SaReplay(u32),
    /// Linux `sadb_x_sec_ctx`.
    SecCtx(SecCtxExt),
    /// Linux `sadb_x_kmaddress`.
    KmAddress(KmAddressExt),
    /// Linux `sadb_x_filter`.
    Filter(FilterExt),
    /// An extension unknown in the dialect, kept as the octets after its 4-octet header.
    Unknown {
        /// Extension number.
        ext_type: u16,
        /// Body octets (a multiple of 8, plus 4, when decoded).
        data: Vec<u8>,
    },
}

impl Extension {
    /// The extension's type, `None` for [`Extension::Unknown`].
    pub fn ext_type(&self) -> Option<ExtensionType> {
        Some(match self {
            Self::Sa(_) => ExtensionType::Sa,
            Self::Lifetime(k, _) => ExtensionType::Lifetime(*k),
            Self::Address(k, _) => ExtensionType::Address(*k),
            Self::Key(k, _) => ExtensionType::Key(*k),
            Self::Identity(k, _) => ExtensionType::Identity(*k),
            Self::Sensitivity(_) => ExtensionType::Sensitivity,
            Self::Proposal(_) => ExtensionType::Proposal,
            Self::Supported(k, _) => ExtensionType::Supported(*k),
            Self::SpiRange(_) => ExtensionType::SpiRange,
            Self::KmPrivate(_) => ExtensionType::KmPrivate,
            Self::Policy(_) => ExtensionType::Policy,
            Self::Sa2(_) => ExtensionType::Sa2,
            Self::NatTType(_) => ExtensionType::NatTType,
            Self::NatTPort(k, _) => ExtensionType::NatTPort(*k),
            Self::NatTFrag(_) => ExtensionType::NatTFrag,
            Self::SaReplay(_) => ExtensionType::SaReplay,
            Self::SecCtx(_) => ExtensionType::SecCtx,
            Self::KmAddress(_) => ExtensionType::KmAddress,
            Self::Filter(_) => ExtensionType::Filter,
            Self::Unknown { .. } => return None,
        })
    }

    /// The extension number in `dialect` (`None` if the dialect lacks this extension).
    pub fn number(&self, dialect: Dialect) -> Option<u16> {
        match self {
            Self::Unknown { ext_type, .. } => Some(*ext_type),
            other => other.ext_type().and_then(|t| t.number(dialect)),
        }
    }

    fn decode(n: u16, body: &[u8], dialect: Dialect) -> Result<Self, DecodeError> {
        let len = body.len() + 4;
        let Some(t) = ExtensionType::from_number(n, dialect) else {
            return Ok(Self::Unknown {
                ext_type: n,
                data: body.to_vec(),
            });
        };
        let r = &mut Reader::new(body, t.name());
        Ok(match t {
            ExtensionType::Sa => Self::Sa(SaExt::decode(r, len)?),
            ExtensionType::Lifetime(k) => Self::Lifetime(k, LifetimeExt::decode(r, len)?),
            ExtensionType::Address(k) => Self::Address(k, AddressExt::decode(r, len, dialect)?),
            ExtensionType::Key(k) => Self::Key(k, KeyExt::decode(r, len)?),
            ExtensionType::Identity(k) => Self::Identity(k, IdentityExt::decode(r)?),
            ExtensionType::Sensitivity => Self::Sensitivity(SensitivityExt::decode(r, len)?),
            ExtensionType::Proposal => Self::Proposal(ProposalExt::decode(r, len)?),
            ExtensionType::Supported(k) => Self::Supported(k, SupportedExt::decode(r)?),
            ExtensionType::SpiRange => Self::SpiRange(SpiRangeExt::decode(r, len)?),
            ExtensionType::KmPrivate => {
                r.skip(4)?;
                Self::KmPrivate(KmPrivateExt {
                    data: r.rest().to_vec(),
                })
            }
            ExtensionType::Policy => Self::Policy(PolicyExt::decode(r, len, dialect)?),
            ExtensionType::Sa2 => Self::Sa2(Sa2Ext::decode(r, len)?),
            ExtensionType::NatTType => {
                let [t, ..] = ext::decode_small(r, len, t.name())?;
                Self::NatTType(t)
            }
            ExtensionType::NatTPort(k) => {
                let [a, b, ..] = ext::decode_small(r, len, t.name())?;
                Self::NatTPort(k, u16::from_be_bytes([a, b]))
            }
            ExtensionType::NatTFrag => {
                let [a, b, ..] = ext::decode_small(r, len, t.name())?;
                Self::NatTFrag(u16::from_ne_bytes([a, b]))
            }
            ExtensionType::SaReplay => {
                Self::SaReplay(u32::from_ne_bytes(ext::decode_small(r, len, t.name())?))
            }
            ExtensionType::SecCtx => Self::SecCtx(SecCtxExt::decode(r, len)?),
            ExtensionType::KmAddress => Self::KmAddress(KmAddressExt::decode(r, len, dialect)?),
            ExtensionType::Filter => Self::Filter(FilterExt::decode(r, len)?),
        })
    }

    fn encode_body(&self, w: &mut Writer, dialect: Dialect) {
        match self {
            Self::Sa(v) => v.encode(w),
            Self::Lifetime(_, v) => v.encode(w),
            Self::Address(_, v) => v.encode(w, dialect),
            Self::Key(_, v) => v.encode(w),
            Self::Identity(_, v) => v.encode(w),
            Self::Sensitivity(v) => v.encode(w),
            Self::Proposal(v) => v.encode(w),
            Self::Supported(_, v) => v.encode(w),
            Self::SpiRange(v) => v.encode(w),
            Self::KmPrivate(v) => {
                w.u32(0);
                w.bytes(&v.data);
            }
            Self::Policy(v) => v.encode(w, dialect),
            Self::Sa2(v) => v.encode(w),
            Self::NatTType(t) => {
                w.u8(*t);
                w.zeros(3);
            }
            Self::NatTPort(_, p) => {
                w.u16_be(*p);
                w.u16(0);
            }
            Self::NatTFrag(f) => {
                w.u16(*f);
                w.u16(0);
            }
            Self::SaReplay(r) => w.u32(*r),
            Self::SecCtx(v) => v.encode(w),
            Self::KmAddress(v) => v.encode(w, dialect),
            Self::Filter(v) => v.encode(w),
            Self::Unknown { data, .. } => w.bytes(data),
        }
    }
}

/// A PF_KEY message: the `sadb_msg` header and its extensions in order.
///
/// ```text
/// RFC 2367 §2.2, sadb_msg (16 octets):
/// +---------------+---------------+---------------+---------------+
/// |    version    |     type      |     errno     |    satype     |
/// +---------------+---------------+---------------+---------------+
/// |      len (64-bit words)       |           reserved            |
/// +-------------------------------+-------------------------------+
/// |                              seq                              |
/// +---------------------------------------------------------------+
/// |                              pid                              |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `SADB_*` message type ([`consts`]).
    pub msg_type: u8,
    /// Errno the kernel reports (0 = success).
    pub errno: u8,
    /// `SADB_SATYPE_*`.
    pub satype: u8,
    /// Reserved; Linux puts a policy's reference count here in SPD replies, so it is kept.
    pub reserved: u16,
    /// Sequence number.
    pub seq: u32,
    /// Process id (or port id) of the sender.
    pub pid: u32,
    /// Extensions in wire order.
    pub extensions: Vec<Extension>,
}

impl Message {
    /// A message with no extensions.
    pub fn new(msg_type: u8, satype: u8, seq: u32, pid: u32) -> Self {
        Self {
            msg_type,
            errno: 0,
            satype,
            reserved: 0,
            seq,
            pid,
            extensions: Vec::new(),
        }
    }

    /// Appends an extension (builder style).
    pub fn with(mut self, ext: Extension) -> Self {
        self.extensions.push(ext);
        self
    }

    /// Decodes one message. See [`decode`].
    pub fn decode(bytes: &[u8], dialect: Dialect) -> Result<Self, DecodeError> {
        decode(bytes, dialect)
    }

    /// Encodes the message, computing every length and padding to 8 octets.
    ///
    /// Extensions that do not exist in `dialect` (for example [`Extension::SecCtx`] in the
    /// FreeBSD dialect) are left out: they would be read back as a different extension.
    /// Use [`Message::fits`] to check beforehand.
    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(consts::PF_KEY_V2);
        w.u8(self.msg_type);
        w.u8(self.errno);
        w.u8(self.satype);
        w.u16(0);
        w.u16(self.reserved);
        w.u32(self.seq);
        w.u32(self.pid);
        for ext in &self.extensions {
            let Some(n) = ext.number(dialect) else {
                continue;
            };
            let start = w.len();
            w.u16(0);
            w.u16(n);
            ext.encode_body(&mut w, dialect);
            w.pad8_from(start);
            let words = (w.len() - start) / 8;
            w.patch_u16(start, u16::try_from(words).unwrap_or(u16::MAX));
        }
        let words = w.len() / 8;
        w.patch_u16(4, u16::try_from(words).unwrap_or(u16::MAX));
        w.buf
    }

    /// Whether every extension exists in `dialect` (so [`Message::encode`] drops nothing).
    pub fn fits(&self, dialect: Dialect) -> bool {
        self.extensions.iter().all(|e| e.number(dialect).is_some())
    }

    /// The first extension of a type.
    pub fn find(&self, t: ExtensionType) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.ext_type() == Some(t))
    }

    /// The SA extension.
    pub fn sa(&self) -> Option<&SaExt> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Sa(v) => Some(v),
            _ => None,
        })
    }

    /// The X_SA2 extension.
    pub fn sa2(&self) -> Option<&Sa2Ext> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Sa2(v) => Some(v),
            _ => None,
        })
    }

    /// An address extension.
    pub fn address(&self, kind: AddressKind) -> Option<&AddressExt> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Address(k, v) if *k == kind => Some(v),
            _ => None,
        })
    }

    /// A lifetime extension.
    pub fn lifetime(&self, kind: LifetimeKind) -> Option<&LifetimeExt> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Lifetime(k, v) if *k == kind => Some(v),
            _ => None,
        })
    }

    /// A key extension.
    pub fn key(&self, kind: KeyKind) -> Option<&KeyExt> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Key(k, v) if *k == kind => Some(v),
            _ => None,
        })
    }

    /// The X_POLICY extension.
    pub fn policy(&self) -> Option<&PolicyExt> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Policy(v) => Some(v),
            _ => None,
        })
    }

    /// A NAT-T port extension.
    pub fn nat_t_port(&self, kind: PortKind) -> Option<u16> {
        self.extensions.iter().find_map(|e| match e {
            Extension::NatTPort(k, v) if *k == kind => Some(*v),
            _ => None,
        })
    }

    /// The NAT-T type extension.
    pub fn nat_t_type(&self) -> Option<u8> {
        self.extensions.iter().find_map(|e| match e {
            Extension::NatTType(v) => Some(*v),
            _ => None,
        })
    }
}

/// Decodes one PF_KEY message (one datagram read from a PF_KEY socket).
///
/// The buffer must hold exactly `sadb_msg_len * 8` octets.
pub fn decode(bytes: &[u8], dialect: Dialect) -> Result<Message, DecodeError> {
    let mut r = Reader::new(bytes, "sadb_msg");
    let version = r.u8()?;
    let msg_type = r.u8()?;
    let errno = r.u8()?;
    let satype = r.u8()?;
    let words = r.u16()?;
    let reserved = r.u16()?;
    let seq = r.u32()?;
    let pid = r.u32()?;
    if version != consts::PF_KEY_V2 {
        return Err(DecodeError::BadValue {
            what: "sadb_msg_version",
            value: u64::from(version),
        });
    }
    if msg_type > dialect.max_message_type() {
        return Err(DecodeError::BadValue {
            what: "sadb_msg_type",
            value: u64::from(msg_type),
        });
    }
    let len = usize::from(words) * 8;
    if len > bytes.len() {
        return Err(DecodeError::Truncated {
            what: "sadb_msg",
            need: len,
            have: bytes.len(),
        });
    }
    if len < HEADER_LEN || len != bytes.len() {
        return Err(DecodeError::BadLength {
            what: "sadb_msg_len",
            len,
        });
    }
    let mut extensions = Vec::new();
    let mut seen: Vec<u16> = Vec::new();
    while r.remaining() > 0 {
        let mut hdr = Reader::new(r.bytes(4.min(r.remaining()))?, "sadb_ext");
        let ext_words = hdr.u16()?;
        let n = hdr.u16()?;
        let name = ExtensionType::from_number(n, dialect).map_or("extension", |t| t.name());
        let ext_len = usize::from(ext_words) * 8;
        if ext_len == 0 {
            return Err(DecodeError::BadLength { what: name, len: 0 });
        }
        let body = r.bytes(ext_len - 4).map_err(|_| DecodeError::Truncated {
            what: name,
            need: ext_len,
            have: r.remaining() + 4,
        })?;
        // RFC 2367 §2.3: each extension type appears at most once; af_key and FreeBSD's
        // key_align() both reject a repeated type.
        if seen.contains(&n) {
            return Err(DecodeError::Duplicate(name));
        }
        seen.push(n);
        extensions.push(Extension::decode(n, body, dialect)?);
    }
    Ok(Message {
        msg_type,
        errno,
        satype,
        reserved,
        seq,
        pid,
        extensions,
    })
}

#[cfg(test)]
mod tests;
