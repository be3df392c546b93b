//! Typed kernel IPsec objects shared by every backend.
//!
//! The vocabulary follows `ip xfrm`: a [`SecurityAssociation`] ("state") lives in the SAD, a
//! [`Policy`] with a [`Selector`] and [`Template`]s lives in the SPD, and the kernel reports
//! [`KernelEvent`]s (ACQUIRE, EXPIRE, POLEXPIRE, MAPPING).
//!
//! This module holds plain data only: no I/O, no wire encoding. Each backend maps these types
//! to its own wire format (PF_KEY v2 in [`crate::pfkey`], XFRM netlink in [`crate::xfrm`])
//! and says so with [`crate::Error::Unsupported`] when its kernel interface cannot express one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Address family of a selector, SA or template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// The unspecified ("any") address of this family.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Self::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// Prefix length of a host route in this family.
    pub fn max_prefix(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

/// IPsec security protocol of an SA or template (IANA protocol numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    /// Encapsulating Security Payload, IP protocol 50.
    Esp,
    /// Authentication Header, IP protocol 51.
    Ah,
    /// IP payload compression, IP protocol 108.
    Comp,
}

impl SecurityProtocol {
    /// The IP protocol number.
    pub fn ip_proto(self) -> u8 {
        match self {
            Self::Esp => 50,
            Self::Ah => 51,
            Self::Comp => 108,
        }
    }

    /// The protocol for an IP protocol number, if it is one of ours.
    pub fn from_ip_proto(proto: u8) -> Option<Self> {
        match proto {
            50 => Some(Self::Esp),
            51 => Some(Self::Ah),
            108 => Some(Self::Comp),
            _ => None,
        }
    }
}

/// Encapsulation mode of an SA or template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Transport mode: protect the payload of host-to-host traffic.
    Transport,
    /// Tunnel mode: wrap the whole packet in a new outer IP header.
    Tunnel,
}

/// Direction of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Packets delivered to this host.
    In,
    /// Packets sent by this host.
    Out,
    /// Packets forwarded by this host (Linux only; FreeBSD checks forwarded packets as `Out`).
    Fwd,
}

/// An IP prefix: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address (host bits may be set; the kernel masks them).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// A host prefix (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: Family::of(&addr).max_prefix(),
        }
    }

    /// The "any" prefix (0.0.0.0/0 or ::/0) of a family.
    pub fn any(family: Family) -> Self {
        Self {
            addr: family.unspecified(),
            len: 0,
        }
    }

    /// Family of the prefix.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Upper-layer protocol of a selector: any, or one IP protocol with optional ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpperLayer {
    /// Any protocol, any port.
    #[default]
    Any,
    /// One IP protocol. Ports are meaningful for TCP, UDP, SCTP; for ICMP the kernel reads
    /// `source_port` as the ICMP type and `destination_port` as the code.
    Proto {
        /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...).
        proto: u8,
        /// Source port, or `None` for any.
        source_port: Option<u16>,
        /// Destination port, or `None` for any.
        destination_port: Option<u16>,
    },
}

/// Traffic selector: which packets a policy (or a transport-mode SA) applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix.
    pub source: Prefix,
    /// Destination prefix.
    pub destination: Prefix,
    /// Upper-layer protocol and ports.
    pub upper: UpperLayer,
}

impl Selector {
    /// A selector for all traffic between two prefixes.
    pub fn between(source: Prefix, destination: Prefix) -> Self {
        Self {
            source,
            destination,
            upper: UpperLayer::Any,
        }
    }

    /// A selector for all traffic between two hosts.
    pub fn hosts(source: IpAddr, destination: IpAddr) -> Self {
        Self::between(Prefix::host(source), Prefix::host(destination))
    }

    /// Family of the selector (taken from the source prefix).
    pub fn family(&self) -> Family {
        self.source.family()
    }
}

/// Firewall mark and mask (XFRM only; PF_KEY cannot express marks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark {
    /// The mark value.
    pub value: u32,
    /// The mask applied to the packet's mark before comparison.
    pub mask: u32,
}

/// SA and policy lifetimes. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lifetime {
    /// Soft limit on bytes processed (rekey).
    pub soft_bytes: Option<u64>,
    /// Hard limit on bytes processed (delete).
    pub hard_bytes: Option<u64>,
    /// Soft limit on packets processed.
    pub soft_packets: Option<u64>,
    /// Hard limit on packets processed.
    pub hard_packets: Option<u64>,
    /// Soft limit in seconds since the SA was added.
    pub soft_add_seconds: Option<u64>,
    /// Hard limit in seconds since the SA was added.
    pub hard_add_seconds: Option<u64>,
    /// Soft limit in seconds since first use.
    pub soft_use_seconds: Option<u64>,
    /// Hard limit in seconds since first use.
    pub hard_use_seconds: Option<u64>,
}

/// Usage counters the kernel keeps for an SA or policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CurrentLifetime {
    /// Bytes processed.
    pub bytes: u64,
    /// Packets processed.
    pub packets: u64,
    /// Seconds since the epoch when added.
    pub add_time: u64,
    /// Seconds since the epoch of first use (0 = unused).
    pub use_time: u64,
}

/// Secret key material. Zeroized on drop; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key(Vec<u8>);

impl Key {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bits.
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bits, redacted)", self.bits())
    }
}

/// ESP encryption transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    /// ESP_NULL (RFC 2410).
    Null,
    /// DES-CBC (RFC 2405), 64-bit key with parity.
    DesCbc,
    /// 3DES-CBC (RFC 2451), 192-bit key.
    TripleDesCbc,
    /// AES-CBC (RFC 3602), 128/192/256-bit key.
    AesCbc,
    /// AES-GCM (RFC 4106): key plus 4-octet salt; `icv_bits` is 64, 96 or 128.
    AesGcm {
        /// ICV length in bits.
        icv_bits: u16,
    },
}

impl EncryptionAlgorithm {
    /// Whether this is an AEAD transform (no separate integrity algorithm).
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm { .. })
    }
}

/// ESP/AH integrity transforms, named with their truncation (RFC 2403, 2404, 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlgorithm {
    /// HMAC-MD5-96, 128-bit key.
    HmacMd5_96,
    /// HMAC-SHA1-96, 160-bit key.
    HmacSha1_96,
    /// HMAC-SHA2-256-128 (RFC 4868), 256-bit key.
    HmacSha256_128,
    /// HMAC-SHA2-384-192 (RFC 4868), 384-bit key.
    HmacSha384_192,
    /// HMAC-SHA2-512-256 (RFC 4868), 512-bit key.
    HmacSha512_256,
}

impl IntegrityAlgorithm {
    /// ICV length in bits after truncation.
    pub fn truncation_bits(self) -> u32 {
        match self {
            Self::HmacMd5_96 | Self::HmacSha1_96 => 96,
            Self::HmacSha256_128 => 128,
            Self::HmacSha384_192 => 192,
            Self::HmacSha512_256 => 256,
        }
    }

    /// The key length in bits this algorithm expects.
    pub fn key_bits(self) -> usize {
        match self {
            Self::HmacMd5_96 => 128,
            Self::HmacSha1_96 => 160,
            Self::HmacSha256_128 => 256,
            Self::HmacSha384_192 => 384,
            Self::HmacSha512_256 => 512,
        }
    }
}

/// IPComp transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionAlgorithm {
    /// DEFLATE (RFC 2394).
    Deflate,
}

/// NAT traversal UDP encapsulation of ESP (RFC 3948).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncapsulation {
    /// Source UDP port (usually 4500).
    pub source_port: u16,
    /// Destination UDP port.
    pub destination_port: u16,
    /// Original address of the peer before NAT (NAT-OA), used for transport-mode checksums.
    pub original_address: Option<IpAddr>,
}

/// A request to offload an SA's crypto to a network device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffloadRequest {
    /// Interface index of the device.
    pub ifindex: u32,
    /// Whether the SA is inbound (processes received packets).
    pub inbound: bool,
}

/// Where an SA's crypto ended up after an offload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffloadOutcome {
    /// No offload was requested.
    NotRequested,
    /// The device accepted the SA.
    Offloaded,
    /// The device refused; the SA was installed with software crypto. Holds the kernel errno.
    Refused(i32),
}

/// Identity of an SA in the SAD: destination, SPI and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaId {
    /// Destination address of the SA.
    pub destination: IpAddr,
    /// Security parameter index, as a number (host order).
    pub spi: u32,
    /// Security protocol.
    pub protocol: SecurityProtocol,
}

/// A security association as installed in (or read back from) the kernel SAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAssociation {
    /// Destination, SPI and protocol.
    pub id: SaId,
    /// Source address.
    pub source: IpAddr,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Request ID joining the SA to policy templates; also marks ownership.
    pub reqid: u32,
    /// Anti-replay window in packets (0 disables replay protection).
    pub replay_window: u32,
    /// Encryption transform and key (ESP only).
    pub encryption: Option<(EncryptionAlgorithm, Key)>,
    /// Integrity transform and key.
    pub integrity: Option<(IntegrityAlgorithm, Key)>,
    /// Compression transform (IPComp only).
    pub compression: Option<CompressionAlgorithm>,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
    /// NAT-T UDP encapsulation.
    pub encapsulation: Option<UdpEncapsulation>,
    /// Selector restricting which packets may use the SA (transport mode; XFRM only).
    pub selector: Option<Selector>,
    /// Firewall mark (XFRM only).
    pub mark: Option<Mark>,
    /// Extended sequence numbers (XFRM only).
    pub esn: bool,
    /// Offload request (XFRM only; others ignore it with `OffloadOutcome::NotRequested`).
    pub offload: Option<OffloadRequest>,
    /// Counters read back from the kernel (ignored on install).
    pub current: CurrentLifetime,
}

impl SecurityAssociation {
    /// A transport- or tunnel-mode SA with no algorithms yet; fill in the rest with the
    /// struct-update syntax or the `with_*` helpers.
    pub fn new(id: SaId, source: IpAddr, mode: Mode, reqid: u32) -> Self {
        Self {
            id,
            source,
            mode,
            reqid,
            replay_window: 32,
            encryption: None,
            integrity: None,
            compression: None,
            lifetime: Lifetime::default(),
            encapsulation: None,
            selector: None,
            mark: None,
            esn: false,
            offload: None,
            current: CurrentLifetime::default(),
        }
    }

    /// Sets the encryption transform.
    pub fn with_encryption(mut self, algorithm: EncryptionAlgorithm, key: Key) -> Self {
        self.encryption = Some((algorithm, key));
        self
    }

    /// Sets the integrity transform.
    pub fn with_integrity(mut self, algorithm: IntegrityAlgorithm, key: Key) -> Self {
        self.integrity = Some((algorithm, key));
        self
    }

    /// Sets the lifetimes.
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Family of the SA endpoints.
    pub fn family(&self) -> Family {
        Family::of(&self.id.destination)
    }
}

/// How strictly a template must be satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateLevel {
    /// An SA must exist; otherwise the packet is held and an ACQUIRE raised.
    Require,
    /// Use an SA if one exists (XFRM `optional`; PF_KEY level `use`).
    Use,
}

/// One transform a protect policy requires, outermost last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Template {
    /// Security protocol.
    pub protocol: SecurityProtocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Request ID matched against SAs; 0 means any.
    pub reqid: u32,
    /// Tunnel endpoints (source, destination); required in tunnel mode.
    pub tunnel: Option<(IpAddr, IpAddr)>,
    /// Require or use.
    pub level: TemplateLevel,
}

/// What a policy does with matching packets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Pass in clear (the seed's "permit"; PF_KEY `none`/`bypass`).
    Allow,
    /// Drop (the seed's "block"; PF_KEY `discard`).
    Block,
    /// Apply IPsec with these templates, innermost first (the seed's "negotiate").
    Protect(Vec<Template>),
}

/// Identity of a policy in the SPD: selector, direction and mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId {
    /// Selector.
    pub selector: Selector,
    /// Direction.
    pub direction: Direction,
    /// Mark (XFRM only).
    pub mark: Option<Mark>,
}

/// A security policy as installed in (or read back from) the kernel SPD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Selector, direction and mark.
    pub id: PolicyId,
    /// What to do with matching packets.
    pub action: PolicyAction,
    /// Priority: lower values win (both Linux interfaces; FreeBSD orders by insertion).
    pub priority: u32,
    /// Kernel index of the policy. On install, `Some` asks for that index (XFRM) and `None`
    /// lets the kernel choose; on read-back it is what the kernel uses.
    pub index: Option<u32>,
    /// Lifetime of the policy itself (policy expiry raises POLEXPIRE).
    pub lifetime: Lifetime,
}

/// Counts of SPD entries by direction, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpdInfo {
    /// Inbound policies.
    pub inbound: u32,
    /// Outbound policies.
    pub outbound: u32,
    /// Forward policies.
    pub forward: u32,
    /// Per-socket policies, inbound.
    pub socket_inbound: u32,
    /// Per-socket policies, outbound.
    pub socket_outbound: u32,
}

/// The kernel asks the key manager to negotiate SAs (packet hit a protect policy with no SA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquire {
    /// Sequence number to echo in the SPI allocation (PF_KEY) or for correlation.
    pub sequence: u32,
    /// Kernel index of the policy that triggered it, if reported.
    pub policy_index: Option<u32>,
    /// Direction of that policy, if reported.
    pub policy_direction: Option<Direction>,
    /// Source address of the SA to negotiate.
    pub source: IpAddr,
    /// Destination address of the SA to negotiate.
    pub destination: IpAddr,
    /// Selector of the triggering packet or policy.
    pub selector: Option<Selector>,
    /// The template (protocol, mode, reqid) the SA must satisfy.
    pub template: Option<Template>,
}

/// An SA reached a soft (rekey) or hard (deleted) limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    /// The SA.
    pub id: SaId,
    /// Its source address.
    pub source: IpAddr,
    /// Its reqid, if reported.
    pub reqid: Option<u32>,
    /// `true` for a hard expiry (the kernel deleted the SA).
    pub hard: bool,
}

/// A policy with a lifetime expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyExpire {
    /// The policy.
    pub id: PolicyId,
    /// Its kernel index.
    pub index: Option<u32>,
    /// `true` for a hard expiry.
    pub hard: bool,
}

/// The NAT in front of a UDP-encapsulated SA's peer changed its mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The SA.
    pub id: SaId,
    /// The peer's old address and port.
    pub old: (IpAddr, u16),
    /// The peer's new address and port.
    pub new: (IpAddr, u16),
}

/// Events the kernel sends to registered key managers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelEvent {
    /// ACQUIRE: negotiate an SA.
    Acquire(Acquire),
    /// EXPIRE: an SA reached a soft or hard limit.
    Expire(Expire),
    /// POLEXPIRE: a policy expired.
    PolicyExpire(PolicyExpire),
    /// MAPPING: a NAT changed the peer's address or port.
    Mapping(Mapping),
}
