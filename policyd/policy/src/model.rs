//! The policy model: policies, ISAKMP policies, rules, filter lists, filters, filter actions
//! and authentication methods, as the Windows Server 2003 IPsec policy structure defines
//! them (seed "IPSec Policy Structure").
//!
//! Every object carries a GUID (`id`, the seed's `ipsecID`) and a change version (`version`,
//! the seed's `whenChanged`; a counter that grows with each change). Filter lists and filter
//! actions are shared objects that rules reference by GUID, so several policies can use one
//! list. The serde shape of these types *is* the file format of [`crate::file`].
//!
//! This module does no I/O and no validation beyond what a type enforces at parse time
//! (an address, a prefix length); cross-object checks live in [`crate::validate`](mod@crate::validate).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use zeroize::Zeroizing;

/// What one store location (local, persistent, or the directory cache) holds: policies
/// and the filter lists and filter actions they share.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PolicySet {
    /// Policies, in the order the administrator created them.
    #[serde(default, rename = "policy")]
    pub policies: Vec<Policy>,
    /// Shared filter lists.
    #[serde(default, rename = "filter-list")]
    pub filter_lists: Vec<FilterList>,
    /// Shared filter actions.
    #[serde(default, rename = "filter-action")]
    pub filter_actions: Vec<FilterAction>,
}

impl PolicySet {
    /// The policy with this GUID.
    pub fn policy(&self, id: Uuid) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The policy with this name.
    pub fn policy_by_name(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The filter list with this GUID.
    pub fn filter_list(&self, id: Uuid) -> Option<&FilterList> {
        self.filter_lists.iter().find(|l| l.id == id)
    }

    /// The filter action with this GUID.
    pub fn filter_action(&self, id: Uuid) -> Option<&FilterAction> {
        self.filter_actions.iter().find(|a| a.id == id)
    }

    /// A copy with every preshared key replaced by [`PresharedKey::Redacted`].
    pub fn redacted(&self) -> Self {
        let mut set = self.clone();
        for policy in &mut set.policies {
            for methods in policy
                .rules
                .iter_mut()
                .map(|r| &mut r.auth_methods)
                .chain(std::iter::once(&mut policy.default_response.auth_methods))
            {
                for method in methods {
                    if let AuthMethod::PresharedKey { key } = method {
                        *key = PresharedKey::Redacted;
                    }
                }
            }
        }
        set
    }
}

/// An IPsec policy (seed: "Policy-wide parameters", "ISAKMP policy", "IPSec rules",
/// "Default response rule"). Only one policy is assigned at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Policy {
    /// GUID (`ipsecID`).
    pub id: Uuid,
    /// Change version (`whenChanged`).
    pub version: u64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// How often the agent checks for a change of this policy, in minutes (Windows: 180).
    pub polling_interval_minutes: u32,
    /// Main-mode settings.
    pub isakmp: IsakmpPolicy,
    /// Rules, in the order they were added (the tie-break of equal filter weights).
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// The rule that lets IKE answer a peer no filter matches.
    pub default_response: DefaultResponseRule,
}

/// The ISAKMP policy: main-mode ("key exchange") settings of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IsakmpPolicy {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Master-key lifetime in minutes (Windows default 480, limits 5..=71582788).
    pub master_key_lifetime_minutes: u32,
    /// Quick modes allowed per main mode before a new main mode; 0 = unlimited (default).
    pub quick_modes_per_main_mode: u32,
    /// Master-key PFS: one quick mode per main mode.
    pub master_key_pfs: bool,
    /// Security methods in preference order.
    pub methods: Vec<MainModeMethod>,
}

/// One main-mode security method (netsh `mmsecmethods`, e.g. `3DES-SHA1-2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MainModeMethod {
    /// Cipher.
    pub encryption: Encryption,
    /// Hash / PRF.
    pub integrity: Integrity,
    /// Diffie-Hellman group.
    pub dh_group: DhGroup,
}

/// A cipher, in main mode or in ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Encryption {
    /// DES-CBC (Windows "Low").
    #[serde(rename = "des")]
    Des,
    /// 3DES-CBC.
    #[serde(rename = "3des")]
    TripleDes,
    /// AES-CBC, 128-bit key.
    #[serde(rename = "aes128")]
    Aes128,
    /// AES-CBC, 192-bit key.
    #[serde(rename = "aes192")]
    Aes192,
    /// AES-CBC, 256-bit key.
    #[serde(rename = "aes256")]
    Aes256,
    /// AES-GCM with a 16-octet ICV and a 128-bit key (RFC 4106, IKEv1 ESP transform ID 20
    /// `ESP_AES_GCM_16` with key length 128). An AEAD: ESP only, with no separate integrity
    /// algorithm; the cipher crypto-offload devices such as netdevsim accept. Not a
    /// main-mode (IKE SA) cipher.
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    /// AES-GCM with a 16-octet ICV and a 256-bit key (see [`Encryption::Aes128Gcm16`]).
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
}

impl Encryption {
    /// Whether the cipher is an AEAD (AES-GCM): it authenticates too, so it is used in ESP
    /// without an integrity algorithm, and never in main mode or AH.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::Aes128Gcm16 | Self::Aes256Gcm16)
    }
}

/// A hash (main mode) or HMAC (AH, ESP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Integrity {
    /// MD5 / HMAC-MD5-96.
    Md5,
    /// SHA-1 / HMAC-SHA1-96.
    Sha1,
    /// SHA-256 / HMAC-SHA-256-128.
    Sha256,
    /// SHA-384 / HMAC-SHA-384-192.
    Sha384,
    /// SHA-512 / HMAC-SHA-512-256.
    Sha512,
}

/// Diffie-Hellman groups (RFC 2409 §6, RFC 3526, RFC 5903). Windows Server 2003 offers 1, 2
/// and 14 (as "2048"); 5 and 15-21 are for non-Windows peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DhGroup {
    /// 768-bit MODP (Windows "Low").
    Group1,
    /// 1024-bit MODP (Windows "Medium").
    Group2,
    /// 1536-bit MODP.
    Group5,
    /// 2048-bit MODP (Windows "High").
    Group14,
    /// 3072-bit MODP.
    Group15,
    /// 4096-bit MODP.
    Group16,
    /// 6144-bit MODP.
    Group17,
    /// 8192-bit MODP.
    Group18,
    /// 256-bit random ECP.
    Group19,
    /// 384-bit random ECP.
    Group20,
    /// 521-bit random ECP.
    Group21,
}

/// A rule: a filter list joined to a filter action with authentication, tunnel and
/// connection-type settings (seed: "IPSec Rule Components").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Rule {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Name, unique within the policy.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Whether the rule takes part in the policy.
    pub active: bool,
    /// GUID of the shared filter list.
    pub filter_list: Uuid,
    /// GUID of the shared filter action.
    pub filter_action: Uuid,
    /// Authentication methods in preference order (needed when the action negotiates).
    #[serde(default)]
    pub auth_methods: Vec<AuthMethod>,
    /// Tunnel endpoint: the tunnelling computer closest to the destination of the filters;
    /// `None` for transport mode. Must be a specific address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_endpoint: Option<Endpoint>,
    /// Which interfaces the rule applies to.
    pub connection_type: ConnectionType,
}

/// The interfaces a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionType {
    /// Every interface.
    All,
    /// LAN interfaces only.
    Lan,
    /// Dial-up / remote-access interfaces only.
    RemoteAccess,
}

/// An IKE authentication method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Kerberos V5 (GSS-API).
    Kerberos,
    /// A certificate issued by the named CA.
    #[serde(rename_all = "kebab-case")]
    Certificate {
        /// The CA's distinguished name.
        ca: String,
        /// Leave the CA name out of the certificate request payload.
        exclude_ca_name: bool,
        /// Map the peer's certificate to a computer account.
        map_to_account: bool,
    },
    /// A preshared key.
    PresharedKey {
        /// The key, or a marker that it was left out of an export.
        key: PresharedKey,
    },
}

impl AuthMethod {
    /// The method's name in netsh vocabulary.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kerberos => "kerberos",
            Self::Certificate { .. } => "certificate",
            Self::PresharedKey { .. } => "preshared-key",
        }
    }
}

/// A preshared key as held in a policy: the secret, or the marker an export writes instead
/// of it. A redacted key is never valid in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresharedKey {
    /// The key itself.
    Secret(Secret),
    /// Left out of an export (`key = { redacted = true }` in the file).
    Redacted,
}

/// Secret key material: zeroized when dropped and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps key material.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    /// The key material. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactedMarker {
    redacted: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PresharedKeyRepr {
    Secret(Zeroizing<String>),
    Redacted(RedactedMarker),
}

impl Serialize for PresharedKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Secret(secret) => s.serialize_str(secret.expose()),
            Self::Redacted => RedactedMarker { redacted: true }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PresharedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match PresharedKeyRepr::deserialize(d)
            .map_err(|_| serde::de::Error::custom("key must be a string or { redacted = true }"))?
        {
            PresharedKeyRepr::Secret(s) => Ok(Self::Secret(Secret(s))),
            PresharedKeyRepr::Redacted(RedactedMarker { redacted: true }) => Ok(Self::Redacted),
            PresharedKeyRepr::Redacted(_) => Err(serde::de::Error::custom(
                "key = { redacted = false } is meaningless",
            )),
        }
    }
}

/// The default response rule: lets IKE answer a peer for which no filter exists by creating
/// a dynamic filter (seed, "Default response rule"). It cannot be deleted, only deactivated;
/// only its security and authentication methods are configurable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DefaultResponseRule {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Whether IKE answers unknown peers.
    pub active: bool,
    /// Authentication methods in preference order.
    #[serde(default)]
    pub auth_methods: Vec<AuthMethod>,
    /// Quick-mode security methods in preference order.
    #[serde(default)]
    pub methods: Vec<QuickModeMethod>,
    /// Quick-mode (session key) PFS.
    pub qm_pfs: bool,
}

/// A shared list of filters (seed: "Filter list").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FilterList {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The filters.
    #[serde(default, rename = "filter")]
    pub filters: Vec<Filter>,
}

/// One IP filter: which packets it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Filter {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Free text (also how errors name the filter).
    pub description: String,
    /// Source of matching packets.
    pub source: Endpoint,
    /// Destination of matching packets.
    pub destination: Endpoint,
    /// Also match the reverse direction (destination → source, ports swapped).
    pub mirrored: bool,
    /// IP protocol.
    pub protocol: Protocol,
    /// Source port; 0 = any. Only with TCP or UDP.
    #[serde(default)]
    pub source_port: u16,
    /// Destination port; 0 = any. Only with TCP or UDP.
    #[serde(default)]
    pub destination_port: u16,
}

/// A filter's source or destination. Written in files as `any`, `me`, `dns`, `dhcp`, `wins`,
/// `gateway`, an address, or `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Any address.
    Any,
    /// Every address of this computer (expanded per interface).
    MyAddress,
    /// The configured DNS servers.
    Dns,
    /// The configured DHCP servers.
    Dhcp,
    /// The configured WINS servers.
    Wins,
    /// The default gateways.
    DefaultGateway,
    /// One address.
    Address(IpAddr),
    /// A subnet.
    Subnet(Subnet),
}

impl Endpoint {
    /// Whether the endpoint names a fixed address or subnet (no expansion needed).
    pub fn is_literal(&self) -> bool {
        matches!(self, Self::Address(_) | Self::Subnet(_))
    }

    /// The address family of a literal endpoint: `Some(true)` for IPv6.
    pub fn is_ipv6(&self) -> Option<bool> {
        match self {
            Self::Address(a) => Some(a.is_ipv6()),
            Self::Subnet(s) => Some(s.addr.is_ipv6()),
            _ => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::MyAddress => f.write_str("me"),
            Self::Dns => f.write_str("dns"),
            Self::Dhcp => f.write_str("dhcp"),
            Self::Wins => f.write_str("wins"),
            Self::DefaultGateway => f.write_str("gateway"),
            Self::Address(a) => write!(f, "{a}"),
            Self::Subnet(s) => write!(f, "{s}"),
        }
    }
}

/// Why an endpoint, subnet or protocol string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not a keyword, address or subnet.
    #[error("{0:?} is not an endpoint (any, me, dns, dhcp, wins, gateway, an address or address/prefix)")]
    Endpoint(String),
    /// A prefix longer than the address.
    #[error("prefix length {len} is too long for {addr}")]
    PrefixTooLong {
        /// The address.
        addr: IpAddr,
        /// The prefix length given.
        len: u8,
    },
    /// Bits set after the prefix.
    #[error("{addr}/{len} has host bits set")]
    HostBitsSet {
        /// The address.
        addr: IpAddr,
        /// The prefix length.
        len: u8,
    },
    /// Not a protocol name or number.
    #[error("{0:?} is not a protocol (any, tcp, udp, icmp, icmpv6 or 0-255)")]
    Protocol(String),
}

impl FromStr for Endpoint {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "any" => Self::Any,
            "me" => Self::MyAddress,
            "dns" => Self::Dns,
            "dhcp" => Self::Dhcp,
            "wins" => Self::Wins,
            "gateway" => Self::DefaultGateway,
            _ if s.contains('/') => Self::Subnet(s.parse()?),
            _ => Self::Address(s.parse().map_err(|_| ParseError::Endpoint(s.to_owned()))?),
        })
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An address prefix with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: IpAddr,
    prefix_len: u8,
}

impl Subnet {
    /// A subnet; refuses a prefix longer than the address or host bits set.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, ParseError> {
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(ParseError::PrefixTooLong {
                addr,
                len: prefix_len,
            });
        }
        if mask_addr(addr, prefix_len) != addr {
            return Err(ParseError::HostBitsSet {
                addr,
                len: prefix_len,
            });
        }
        Ok(Self { addr, prefix_len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies in the subnet.
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv6() == self.addr.is_ipv6() && mask_addr(addr, self.prefix_len) == self.addr
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Subnet {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Endpoint(s.to_owned());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        // Only plain decimal digits: "+8" or " 8" would not survive a round trip.
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let len: u8 = len.parse().map_err(|_| bad())?;
        Self::new(addr, len)
    }
}

/// The full prefix length of an address: 32 or 128.
pub fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv6() {
        128
    } else {
        32
    }
}

/// `addr` with every bit after `len` cleared. `len` beyond the address length keeps all bits.
pub fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// An IP protocol: any, or one protocol number. Written as `any`, `tcp`, `udp`, `icmp`,
/// `icmpv6` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Every protocol.
    Any,
    /// One IANA protocol number.
    Number(u8),
}

impl Protocol {
    /// TCP.
    pub const TCP: Self = Self::Number(6);
    /// UDP.
    pub const UDP: Self = Self::Number(17);
    /// ICMP.
    pub const ICMP: Self = Self::Number(1);
    /// ICMPv6.
    pub const ICMPV6: Self = Self::Number(58);

    /// Whether the protocol has ports a filter can name.
    pub fn has_ports(self) -> bool {
        self == Self::TCP || self == Self::UDP
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Any => f.write_str("any"),
            Self::TCP => f.write_str("tcp"),
            Self::UDP => f.write_str("udp"),
            Self::ICMP => f.write_str("icmp"),
            Self::ICMPV6 => f.write_str("icmpv6"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Protocol {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "any" => Self::Any,
            "tcp" => Self::TCP,
            "udp" => Self::UDP,
            "icmp" => Self::ICMP,
            "icmpv6" => Self::ICMPV6,
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u8 = s.parse().map_err(|_| ParseError::Protocol(s.to_owned()))?;
                let p = Self::Number(n);
                // One spelling per protocol, so that export → import → export is stable.
                if p.to_string() != s {
                    return Err(ParseError::Protocol(s.to_owned()));
                }
                p
            }
            _ => return Err(ParseError::Protocol(s.to_owned())),
        })
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A shared filter action (seed: "Filter action").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FilterAction {
    /// GUID.
    pub id: Uuid,
    /// Change version.
    pub version: u64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// What happens to matching packets.
    pub action: Action,
}

/// What a filter action does with matching packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Pass unmodified.
    Permit,
    /// Drop.
    Block,
    /// Secure with IPsec.
    Negotiate(Negotiation),
}

/// The "Negotiate security" settings of a filter action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Negotiation {
    /// "Accept unsecured communication, but always respond using IPsec": an inbound permit
    /// filter, while replies are secured.
    pub inbound_pass_through: bool,
    /// "Allow unsecured communication with non-IPsec-aware computers": a soft SA (clear
    /// text) when the peer does not answer IKE.
    pub fall_back_to_clear: bool,
    /// Quick-mode (session key) PFS.
    pub qm_pfs: bool,
    /// Security methods in preference order.
    #[serde(default)]
    pub methods: Vec<QuickModeMethod>,
    /// Ask the kernel to offload the SAs' crypto to the device the peer is reached through
    /// (issue #5 point 3). A device that refuses leaves the SA in software; the
    /// negotiation never fails because of it. Absent in files and store entries written
    /// before this setting existed (read as `false`), and written only when `true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub offload: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One quick-mode security method: AH and/or ESP with lifetimes (netsh `qmsecmethods`,
/// e.g. `ESP[3DES,SHA1]:100000k/3600s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QuickModeMethod {
    /// AH integrity, if AH is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ah: Option<Integrity>,
    /// ESP, if used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp: Option<EspTransform>,
    /// Rekey after this many kilobytes (Windows default 100000; limits 20480..=2147483647).
    pub lifetime_kb: u32,
    /// Rekey after this many seconds (Windows default 3600; limits 300..=172800).
    pub lifetime_seconds: u32,
}

/// ESP algorithms; either may be absent, not both. An AEAD cipher (AES-GCM) has no
/// integrity algorithm ([`crate::validate`](mod@crate::validate) refuses one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EspTransform {
    /// Cipher, or `None` for integrity-only ESP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// HMAC, or `None` for encryption-only ESP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

/// Windows' defaults for quick-mode lifetimes: 100,000 KB or one hour.
pub const DEFAULT_QM_LIFETIME_KB: u32 = 100_000;
/// See [`DEFAULT_QM_LIFETIME_KB`].
pub const DEFAULT_QM_LIFETIME_SECONDS: u32 = 3_600;
/// Windows' default master-key lifetime: eight hours.
pub const DEFAULT_MM_LIFETIME_MINUTES: u32 = 480;
/// Windows' default policy polling interval ("check for policy changes every 180 minutes").
pub const DEFAULT_POLLING_MINUTES: u32 = 180;

impl QuickModeMethod {
    /// ESP with an AEAD cipher (AES-GCM: no separate integrity algorithm) and the default
    /// lifetimes.
    pub fn esp_aead(encryption: Encryption) -> Self {
        Self {
            ah: None,
            esp: Some(EspTransform {
                encryption: Some(encryption),
                integrity: None,
            }),
            lifetime_kb: DEFAULT_QM_LIFETIME_KB,
            lifetime_seconds: DEFAULT_QM_LIFETIME_SECONDS,
        }
    }

    /// ESP with a cipher and an HMAC and the default lifetimes.
    pub fn esp(encryption: Encryption, integrity: Integrity) -> Self {
        Self {
            ah: None,
            esp: Some(EspTransform {
                encryption: Some(encryption),
                integrity: Some(integrity),
            }),
            lifetime_kb: DEFAULT_QM_LIFETIME_KB,
            lifetime_seconds: DEFAULT_QM_LIFETIME_SECONDS,
        }
    }

    /// AH alone with the default lifetimes.
    pub fn ah(integrity: Integrity) -> Self {
        Self {
            ah: Some(integrity),
            esp: None,
            lifetime_kb: DEFAULT_QM_LIFETIME_KB,
            lifetime_seconds: DEFAULT_QM_LIFETIME_SECONDS,
        }
    }
}

/// A fresh random (v4) GUID for a new object.
pub fn new_id() -> Uuid {
    Uuid::new_v4()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_strings_round_trip() {
        for s in [
            "any",
            "me",
            "dns",
            "dhcp",
            "wins",
            "gateway",
            "192.0.2.1",
            "10.0.0.0/8",
            "2001:db8::/32",
            "::1",
        ] {
            let e: Endpoint = s.parse().unwrap();
            assert_eq!(e.to_string(), s);
        }
    }

    #[test]
    fn subnet_with_host_bits_is_refused() {
        assert_eq!(
            "10.0.0.1/8".parse::<Subnet>(),
            Err(ParseError::HostBitsSet {
                addr: "10.0.0.1".parse().unwrap(),
                len: 8
            })
        );
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("10.0.0.0/+8".parse::<Subnet>().is_err());
    }

    #[test]
    fn protocol_has_one_spelling() {
        assert_eq!("tcp".parse::<Protocol>(), Ok(Protocol::TCP));
        assert!("6".parse::<Protocol>().is_err());
        assert!("047".parse::<Protocol>().is_err());
        assert_eq!("47".parse::<Protocol>(), Ok(Protocol::Number(47)));
    }

    #[test]
    fn secret_debug_never_shows_the_key() {
        let m = AuthMethod::PresharedKey {
            key: PresharedKey::Secret(Secret::new("hunter2")),
        };
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn redacted_copy_has_no_keys() {
        let set = crate::defaults::default_store();
        let text = format!("{:?}", set.redacted());
        assert!(!text.contains("Secret("));
    }
}
