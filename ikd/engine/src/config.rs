//! What the engine negotiates: the local identity, the peers and how they authenticate,
//! main-mode proposals ("security methods") in preference order, the children (quick-mode
//! connections with their traffic selectors and proposals), and the timers.
//!
//! These are plain values the daemon builds from the policy model (policyd); the engine
//! never reads files. Defaults follow Windows Server 2003 IPsec: main mode 480 minutes,
//! quick mode 1 hour / 100,000 KB, retransmissions after 1, 2, 4, 8, 16 s and giving up 32 s
//! after the last.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use isakmp::AuthenticationMethod;

use crate::auth::Authenticator;

/// Everything one [`crate::Endpoint`] negotiates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// How this host identifies itself in IDii/IDir.
    pub local_identity: Identity,
    /// The peers this host talks to; the first whose address matches is used.
    pub peers: Vec<PeerConfig>,
    /// Main-mode proposals, most preferred first (sent in this order as initiator;
    /// the initiator's order decides as responder).
    pub main_mode_proposals: Vec<MainModeProposal>,
    /// The quick-mode connections.
    pub children: Vec<ChildConfig>,
    /// When to resend and when to give up.
    pub retransmit: RetransmitSchedule,
    /// An exchange not completed after this long is dropped, whatever its state
    /// (including one waiting for an SPI from the kernel).
    pub half_open_timeout: Duration,
    /// At most this many responder main modes may be unfinished at once; further MM1s are
    /// dropped and counted.
    pub max_half_open: usize,
    /// Send the "MS NT5 ISAKMPOAKLEY" vendor ID (with version 4, Windows Server 2003).
    pub send_ms_vendor_id: bool,
    /// Send the RFC 3706 DPD vendor ID (and answer R-U-THERE).
    pub send_dpd_vendor_id: bool,
    /// Send INITIAL-CONTACT in MM5 when no other ISAKMP SA with the peer exists.
    pub initial_contact: bool,
    /// As quick-mode responder, set the commit bit in QM2 and send the 4th message
    /// `HDR*, HASH(4), N(CONNECTED)` after installing (Windows Server 2003 behaviour).
    pub responder_commit: bool,
}

impl EndpointConfig {
    /// A configuration with the given identity and Windows defaults; add peers, proposals
    /// and children.
    pub fn new(local_identity: Identity) -> Self {
        Self {
            local_identity,
            peers: Vec::new(),
            main_mode_proposals: Vec::new(),
            children: Vec::new(),
            retransmit: RetransmitSchedule::default(),
            half_open_timeout: Duration::from_secs(90),
            max_half_open: 1024,
            send_ms_vendor_id: false,
            send_dpd_vendor_id: true,
            initial_contact: true,
            responder_commit: false,
        }
    }

    pub(crate) fn peer_for(&self, addr: IpAddr) -> Option<(usize, &PeerConfig)> {
        self.peers
            .iter()
            .enumerate()
            .find(|(_, p)| p.address.matches(addr))
    }

    pub(crate) fn child(&self, name: &ChildName) -> Option<(usize, &ChildConfig)> {
        self.children
            .iter()
            .enumerate()
            .find(|(_, c)| &c.name == name)
    }
}

/// An ISAKMP identity (RFC 2407 §4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// ID_IPV4_ADDR / ID_IPV6_ADDR of the address the exchange runs on.
    Address,
    /// ID_FQDN.
    Fqdn(String),
    /// ID_USER_FQDN.
    UserFqdn(String),
    /// ID_KEY_ID.
    KeyId(Vec<u8>),
}

/// Which remote addresses a peer entry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddress {
    /// Exactly this address.
    Address(IpAddr),
    /// Any address (a responder-only catch-all; cannot be initiated to).
    Any,
}

impl PeerAddress {
    pub(crate) fn matches(&self, addr: IpAddr) -> bool {
        match self {
            Self::Address(a) => *a == addr,
            Self::Any => true,
        }
    }
}

/// One peer.
#[derive(Clone)]
#[non_exhaustive]
pub struct PeerConfig {
    /// A name for logs and for [`ChildConfig::peer`].
    pub name: String,
    /// Where the peer is.
    pub address: PeerAddress,
    /// How both sides authenticate (the preshared key lives inside
    /// [`crate::PskAuthenticator`], zeroized on drop).
    pub auth: Arc<dyn Authenticator>,
    /// The identity the peer must present in IDii/IDir; `None` accepts any.
    pub identity: Option<Identity>,
    /// Our address towards this peer, for [`crate::Endpoint::initiate`] (ACQUIREs carry
    /// their own).
    pub local: Option<IpAddr>,
}

impl PeerConfig {
    /// A peer authenticated with a preshared key.
    pub fn psk(name: &str, address: PeerAddress, psk: &[u8]) -> Self {
        Self {
            name: name.to_owned(),
            address,
            auth: Arc::new(crate::auth::PskAuthenticator::new(psk)),
            identity: None,
            local: None,
        }
    }

    /// The same peer, initiated to from `local`.
    #[must_use]
    pub fn with_local(mut self, local: IpAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// The same peer, requiring `identity` from it.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The same peer with another authenticator.
    #[must_use]
    pub fn with_authenticator(mut self, auth: Arc<dyn Authenticator>) -> Self {
        self.auth = auth;
        self
    }
}

impl fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("auth", &self.auth.method())
            .field("identity", &self.identity)
            .field("local", &self.local)
            .finish()
    }
}

/// One main-mode security method (a phase-1 transform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MainModeProposal {
    /// The ISAKMP SA cipher.
    pub encryption: CipherAlgorithm,
    /// The hash (and HMAC PRF).
    pub hash: HashAlgorithm,
    /// The authentication method; the peer's [`Authenticator`] must implement it.
    pub auth_method: AuthenticationMethod,
    /// The Diffie-Hellman group.
    pub group: DhGroup,
    /// The ISAKMP SA lifetime (sent in seconds).
    pub lifetime: Duration,
    /// Windows' "quick modes per main mode" (session key limit): after this many quick
    /// modes a new main mode is negotiated. `None`: unlimited. Local only, never on the wire.
    pub quick_modes_per_main_mode: Option<u32>,
}

impl MainModeProposal {
    /// A preshared-key proposal with the Windows lifetime of 480 minutes and no limit.
    pub fn psk(encryption: CipherAlgorithm, hash: HashAlgorithm, group: DhGroup) -> Self {
        Self {
            encryption,
            hash,
            auth_method: AuthenticationMethod::PRE_SHARED_KEY,
            group,
            lifetime: Duration::from_secs(480 * 60),
            quick_modes_per_main_mode: None,
        }
    }
}

/// A quick-mode connection ("child"): whom to talk to, which traffic, which proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildConfig {
    /// The name [`crate::Endpoint::initiate`] takes.
    pub name: ChildName,
    /// The [`PeerConfig::name`] of the peer.
    pub peer: String,
    /// The traffic; `None`: all traffic between the two IKE addresses.
    pub selector: Option<TrafficSelector>,
    /// Proposals, most preferred first.
    pub proposals: Vec<QuickModeProposal>,
}

impl ChildConfig {
    /// A child with one proposal.
    pub fn new(name: &str, peer: &str, proposal: QuickModeProposal) -> Self {
        Self {
            name: ChildName::from(name),
            peer: peer.to_owned(),
            selector: None,
            proposals: vec![proposal],
        }
    }

    /// The same child restricted to `selector`.
    #[must_use]
    pub fn with_selector(mut self, selector: TrafficSelector) -> Self {
        self.selector = Some(selector);
        self
    }
}

/// The name of a child.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildName(pub String);

impl From<&str> for ChildName {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for ChildName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The address (host bits ignored in comparisons).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl Subnet {
    /// A /32 or /128.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_prefix(addr),
        }
    }

    /// Whether this is a single host.
    pub fn is_host(&self) -> bool {
        self.prefix_len >= max_prefix(self.addr)
    }

    /// Whether `other` lies inside this prefix.
    pub fn contains(&self, other: &Self) -> bool {
        match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                other.prefix_len >= self.prefix_len
                    && mask_eq(&a.octets(), &b.octets(), self.prefix_len)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                other.prefix_len >= self.prefix_len
                    && mask_eq(&a.octets(), &b.octets(), self.prefix_len)
            }
            _ => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (x, y) in a.iter().zip(b) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = 0xffu8 << (8 - take);
        if x & mask != y & mask {
            return false;
        }
        bits -= take;
    }
    true
}

/// Which traffic a child protects, from this host's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// Local prefix (IDci as initiator, IDcr as responder).
    pub local: Subnet,
    /// Remote prefix.
    pub remote: Subnet,
    /// IP protocol, 0 for any.
    pub protocol: u8,
    /// Local port, 0 for any.
    pub local_port: u16,
    /// Remote port, 0 for any.
    pub remote_port: u16,
}

impl TrafficSelector {
    /// All traffic between two prefixes.
    pub fn between(local: Subnet, remote: Subnet) -> Self {
        Self {
            local,
            remote,
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        }
    }

    /// Whether `other` is inside this selector (prefixes contained, protocol and ports
    /// equal or wildcarded here).
    pub fn contains(&self, other: &Self) -> bool {
        self.local.contains(&other.local)
            && self.remote.contains(&other.remote)
            && (self.protocol == 0 || self.protocol == other.protocol)
            && (self.local_port == 0 || self.local_port == other.local_port)
            && (self.remote_port == 0 || self.remote_port == other.remote_port)
    }
}

/// ESP or AH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpsecProtocol {
    /// ESP (protocol 3 in ISAKMP, 50 in IP).
    Esp,
    /// AH (protocol 2 in ISAKMP, 51 in IP).
    Ah,
}

impl IpsecProtocol {
    pub(crate) fn protocol_id(self) -> isakmp::ProtocolId {
        match self {
            Self::Esp => isakmp::ProtocolId::ESP,
            Self::Ah => isakmp::ProtocolId::AH,
        }
    }

    pub(crate) fn from_protocol_id(id: isakmp::ProtocolId) -> Option<Self> {
        match id {
            isakmp::ProtocolId::ESP => Some(Self::Esp),
            isakmp::ProtocolId::AH => Some(Self::Ah),
            _ => None,
        }
    }
}

/// Transport or tunnel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncapsulationMode {
    /// Transport mode.
    Transport,
    /// Tunnel mode.
    Tunnel,
}

/// ESP ciphers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EspCipher {
    /// ESP_NULL.
    Null,
    /// ESP_DES.
    Des,
    /// ESP_3DES.
    TripleDes,
    /// ESP_AES-CBC with a 128-bit key.
    Aes128,
    /// ESP_AES-CBC with a 192-bit key.
    Aes192,
    /// ESP_AES-CBC with a 256-bit key.
    Aes256,
}

impl EspCipher {
    /// Key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            Self::Null => 0,
            Self::Des => 8,
            Self::Aes128 => 16,
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }
}

/// ESP/AH integrity algorithms (with the truncation the kernel must use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntegrityAlgorithm {
    /// HMAC-MD5-96.
    HmacMd5,
    /// HMAC-SHA1-96.
    HmacSha1,
    /// HMAC-SHA2-256-128.
    HmacSha256,
    /// HMAC-SHA2-384-192.
    HmacSha384,
    /// HMAC-SHA2-512-256.
    HmacSha512,
}

impl IntegrityAlgorithm {
    /// Key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacMd5 => 16,
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

/// One ESP or AH transform: a cipher (ESP only) and an integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuickModeTransform {
    /// The ESP cipher (`None` for AH).
    pub encryption: Option<EspCipher>,
    /// The integrity algorithm (required for AH).
    pub integrity: Option<IntegrityAlgorithm>,
}

/// One quick-mode proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuickModeProposal {
    /// ESP or AH (bundles are not supported yet).
    pub protocol: IpsecProtocol,
    /// Transforms, most preferred first.
    pub transforms: Vec<QuickModeTransform>,
    /// Transport or tunnel.
    pub mode: EncapsulationMode,
    /// The PFS group, or `None` for no PFS.
    pub pfs: Option<DhGroup>,
    /// Lifetime in seconds (Windows default 3600).
    pub lifetime_seconds: u32,
    /// Lifetime in kilobytes (Windows default 100,000), or `None`.
    pub lifetime_kilobytes: Option<u32>,
}

impl QuickModeProposal {
    /// ESP with one transform, Windows lifetimes, no PFS.
    pub fn esp(
        encryption: EspCipher,
        integrity: IntegrityAlgorithm,
        mode: EncapsulationMode,
    ) -> Self {
        Self {
            protocol: IpsecProtocol::Esp,
            transforms: vec![QuickModeTransform {
                encryption: Some(encryption),
                integrity: Some(integrity),
            }],
            mode,
            pfs: None,
            lifetime_seconds: 3600,
            lifetime_kilobytes: Some(100_000),
        }
    }

    /// The same proposal with PFS in `group`.
    #[must_use]
    pub fn with_pfs(mut self, group: DhGroup) -> Self {
        self.pfs = Some(group);
        self
    }
}

/// When to resend the last message of an exchange and when to give up.
///
/// `intervals[0]` is the delay of the first transmission (0: at once; kept so the list
/// reads like the Windows table). Each later interval except the last is the wait before
/// the next resend; the last is the wait after the final resend before the exchange is
/// abandoned with [`crate::Event::ExchangeFailed`]. The default, Windows' 0, 1, 2, 4, 8,
/// 16, 32 s, sends at 0, 1, 3, 7, 15 and 31 s and gives up at 63 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetransmitSchedule {
    /// The intervals.
    pub intervals: Vec<Duration>,
}

impl Default for RetransmitSchedule {
    fn default() -> Self {
        Self {
            intervals: [0, 1, 2, 4, 8, 16, 32]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}

impl RetransmitSchedule {
    /// The total time from the first transmission to giving up.
    pub fn horizon(&self) -> Duration {
        self.intervals.iter().skip(1).sum()
    }
}
