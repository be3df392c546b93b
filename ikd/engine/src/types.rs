//! The engine's inputs and outputs: datagram paths, [`Transmit`]s, [`Action`]s for the
//! daemon (SPI allocation, SA installation and deletion, events), kernel events in, and the
//! [`Statistics`] counters.
//!
//! These types carry no behaviour. Key material in [`ChildSa`] is held in
//! [`ikecrypto::Secret`] (zeroized on drop, `Debug` shows only lengths).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ikecrypto::Secret;
use isakmp::NotifyType;

use crate::config::{
    ChildName, EncapsulationMode, EspCipher, IntegrityAlgorithm, IpsecProtocol, Subnet,
    TrafficSelector,
};

/// The two UDP endpoints of a datagram, from this host's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// A datagram to send from `path.local` to `path.remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where from and where to.
    pub path: Path,
    /// The ISAKMP message (without a non-ESP marker; the daemon adds it on port 4500).
    pub contents: Vec<u8>,
}

/// Which side of an exchange we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the first message.
    Initiator,
    /// The peer sent the first message.
    Responder,
}

/// Identifies an outstanding [`Action::AllocSpi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies an ISAKMP SA of this endpoint (local, never on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsakmpSaHandle(pub u64);

/// The kernel could not allocate an SPI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SPI allocation failed: {0}")]
pub struct SpiAllocationFailed(pub String);

/// Something the daemon must do or know.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Reserve an inbound SPI (kernel GETSPI / XFRM_MSG_ALLOCSPI for `source` → `destination`)
    /// and answer with [`crate::Endpoint::handle_spi_allocated`].
    AllocSpi {
        /// Quote this in the answer.
        request: RequestId,
        /// ESP or AH.
        protocol: IpsecProtocol,
        /// The peer (sender of the inbound traffic).
        source: IpAddr,
        /// This host.
        destination: IpAddr,
    },
    /// Install both SAs of a quick mode (inbound first is safest), replacing nothing: an old
    /// pair of the same child stays until it expires or is deleted.
    InstallSaPair(Box<SaPair>),
    /// Delete a kernel SA.
    DeleteSa {
        /// The SA's SPI.
        spi: u32,
        /// ESP or AH.
        protocol: IpsecProtocol,
        /// The SA's destination address.
        destination: IpAddr,
        /// The SA's source address.
        source: IpAddr,
    },
    /// As quick-mode responder with [`crate::EndpointConfig::policy_lookup`] on: ask the
    /// policy agent which connection answers the peer's proposal (seed: the IKE module
    /// asks the Policy Agent for the matching policy), and answer with
    /// [`crate::Endpoint::handle_policy_answer`]. The exchange waits meanwhile (its
    /// half-open timeout still runs).
    LookupPolicy {
        /// Quote this in the answer.
        request: RequestId,
        /// Our IKE address.
        local: IpAddr,
        /// The peer's IKE address.
        peer: IpAddr,
        /// The proposed traffic from our point of view (`local` is IDcr, `remote` IDci;
        /// host-to-host between the IKE addresses when the peer sent no IDs).
        selector: TrafficSelector,
        /// The identity the peer authenticated with in main mode, when it is not just its
        /// address (for the agent's logs).
        peer_identity: Option<String>,
    },
    /// Something to log or react to.
    Event(Event),
}

/// The policy agent's answer to an [`Action::LookupPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyAnswer {
    /// Negotiate with this connection: a proposal is chosen from its proposals only (none
    /// fits: NO-PROPOSAL-CHOSEN).
    Connection(ChildName),
    /// Refuse the negotiation (INVALID-ID-INFORMATION to the peer, no SA).
    Refused {
        /// Why, in the agent's terms.
        kind: PolicyRefusal,
        /// Human-readable, e.g. `blocked by rule "block telnet"`.
        reason: String,
    },
    /// The agent could not be asked or did not answer in time: the engine matches the
    /// proposal against its own connections, as without the lookup.
    Unavailable,
}

/// Why the policy agent refused a negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyRefusal {
    /// No rule covers the traffic (and no default response rule is active).
    NoMatch,
    /// A blocking rule covers it.
    Blocked,
    /// A permitting rule covers it: it passes in clear, no SA.
    PermittedInClear,
}

/// The two SAs negotiated by one quick mode.
#[derive(Debug)]
pub struct SaPair {
    /// The child they belong to.
    pub child: ChildName,
    /// The ISAKMP SA that negotiated them.
    pub isakmp_sa: IsakmpSaHandle,
    /// Peer → us.
    pub inbound: ChildSa,
    /// Us → peer.
    pub outbound: ChildSa,
}

/// One IPsec SA as the kernel needs it.
#[derive(Debug)]
pub struct ChildSa {
    /// The SPI (chosen by the SA's receiver).
    pub spi: u32,
    /// ESP or AH.
    pub protocol: IpsecProtocol,
    /// Source address of the SA (outer header in tunnel mode).
    pub source: IpAddr,
    /// Destination address of the SA.
    pub destination: IpAddr,
    /// Transport or tunnel.
    pub mode: EncapsulationMode,
    /// The ESP cipher and its key (from KEYMAT, first).
    pub encryption: Option<(EspCipher, Secret)>,
    /// The integrity algorithm and its key (from KEYMAT, after the encryption key).
    pub integrity: Option<(IntegrityAlgorithm, Secret)>,
    /// Lifetimes.
    pub lifetime: ChildLifetime,
    /// The traffic the SA carries, in its own direction.
    pub selector: Selector,
}

/// Lifetimes of an IPsec SA. Soft values are where the kernel should raise a soft EXPIRE
/// (the engine then rekeys); hard values end the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLifetime {
    /// Hard lifetime in seconds after installation.
    pub hard_seconds: u64,
    /// Soft lifetime in seconds (90 % of hard as initiator, hard as responder, so the
    /// initiator usually rekeys first).
    pub soft_seconds: u64,
    /// Hard lifetime in kilobytes, if negotiated.
    pub hard_kilobytes: Option<u64>,
    /// Soft lifetime in kilobytes.
    pub soft_kilobytes: Option<u64>,
}

/// A traffic selector in the direction of one SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix.
    pub source: Subnet,
    /// Destination prefix.
    pub destination: Subnet,
    /// IP protocol (0 any).
    pub protocol: u8,
    /// Source port (0 any).
    pub source_port: u16,
    /// Destination port (0 any).
    pub destination_port: u16,
}

/// A kernel event relayed to the engine (converted by the daemon from pfkey's
/// `Acquire`/`Expire`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelEvent {
    /// Outbound traffic needs an SA: negotiate the child covering it.
    Acquire {
        /// Our address.
        local: IpAddr,
        /// The peer's address.
        remote: IpAddr,
        /// The packet's selector (local → remote), if the kernel said.
        selector: Option<Selector>,
    },
    /// An SA reached a lifetime.
    Expire {
        /// The SA's SPI.
        spi: u32,
        /// ESP or AH.
        protocol: IpsecProtocol,
        /// The SA's destination.
        destination: IpAddr,
        /// Soft (rekey) or hard (gone).
        hard: bool,
    },
}

/// Why an exchange ended without success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// No answer after the last retransmission.
    Timeout,
    /// The exchange exceeded the half-open timeout.
    Stale,
    /// The peer sent this error Notify.
    PeerNotify(NotifyType),
    /// We rejected the peer's message and (where the RFCs say so) sent this Notify.
    LocalError(NotifyType),
    /// The kernel could not allocate an SPI.
    SpiAllocation,
    /// The policy agent refused the negotiation (we sent INVALID-ID-INFORMATION).
    PolicyRefused {
        /// What kind of refusal.
        kind: PolicyRefusal,
        /// The agent's reason.
        reason: String,
    },
    /// [`crate::Endpoint::reconfigure`] removed or changed the exchange's peer or child.
    Reconfigured,
}

/// What [`crate::Endpoint::reconfigure`] kept and ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconfigureReport {
    /// ISAKMP SAs (any state) whose peer is still configured, kept.
    pub isakmp_sas_kept: usize,
    /// ISAKMP SAs whose peer was removed (or moved to another address): established ones
    /// deleted with a Delete sent to the peer, unfinished main modes abandoned.
    pub isakmp_sas_deleted: usize,
    /// Installed SA pairs whose connection is unchanged, kept.
    pub children_kept: usize,
    /// Installed SA pairs whose connection was removed or changed, deleted (both kernel
    /// SAs, and a Delete to the peer when an ISAKMP SA with it is established).
    pub children_deleted: usize,
    /// Quick modes and queued negotiations of removed or changed connections, abandoned.
    pub exchanges_abandoned: usize,
}

/// Something the daemon may log or react to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A main mode completed.
    IsakmpSaEstablished {
        /// The SA.
        sa: IsakmpSaHandle,
        /// The peer.
        peer: SocketAddr,
        /// Our role.
        role: Role,
    },
    /// An ISAKMP SA is gone (expired, deleted by the peer, replaced after INITIAL-CONTACT,
    /// or shut down).
    IsakmpSaDeleted {
        /// The SA.
        sa: IsakmpSaHandle,
        /// The peer.
        peer: SocketAddr,
    },
    /// A main or quick mode failed.
    ExchangeFailed {
        /// The peer.
        peer: SocketAddr,
        /// `true` for quick mode, `false` for main mode.
        quick_mode: bool,
        /// The child, for a quick mode.
        child: Option<ChildName>,
        /// Why.
        reason: FailureReason,
    },
    /// A quick mode completed (the [`Action::InstallSaPair`] precedes this).
    ChildEstablished {
        /// The child.
        child: ChildName,
        /// The peer.
        peer: SocketAddr,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Our outbound SPI.
        outbound_spi: u32,
    },
    /// The peer sent INITIAL-CONTACT: everything older with it was dropped.
    InitialContact {
        /// The peer.
        peer: SocketAddr,
    },
    /// The peer sent a status Notify we only log (e.g. RESPONDER-LIFETIME, unknown types).
    NotifyReceived {
        /// The peer.
        peer: SocketAddr,
        /// The type.
        notify_type: NotifyType,
    },
}

/// Counters since the endpoint was created (names follow the Windows IP Security
/// Monitor where one exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statistics {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Datagrams queued for sending (retransmissions included).
    pub datagrams_sent: u64,
    /// Main modes started (either role).
    pub main_modes_started: u64,
    /// Main modes completed (OakleyMainMode).
    pub main_modes_completed: u64,
    /// Main modes failed (NegotiationFailures, phase 1).
    pub main_modes_failed: u64,
    /// Quick modes started.
    pub quick_modes_started: u64,
    /// Quick modes completed (OakleyQuickMode).
    pub quick_modes_completed: u64,
    /// Quick modes failed.
    pub quick_modes_failed: u64,
    /// Authentication failures (AuthenticationFailures).
    pub auth_failures: u64,
    /// Datagrams that did not decode (InvalidPackets).
    pub decode_errors: u64,
    /// Datagrams for unknown cookies (InvalidCookiesReceived).
    pub invalid_cookies: u64,
    /// Retransmissions sent (timer or duplicate driven).
    pub retransmits: u64,
    /// Duplicates of an already answered message.
    pub duplicates: u64,
    /// Datagrams dropped for any other reason (wrong state, bad hash, rule violations).
    pub dropped: u64,
    /// MM1s dropped because the half-open cap was reached.
    pub half_open_dropped: u64,
    /// Notify payloads sent.
    pub notifies_sent: u64,
    /// Notify payloads received.
    pub notifies_received: u64,
    /// Delete payloads received.
    pub deletes_received: u64,
    /// SPI requests issued (TotalGetSPI).
    pub spi_requests: u64,
    /// SPI requests that failed (GetSPIFailures).
    pub spi_failures: u64,
    /// SA pairs handed to the daemon (KeyAdditions counts two per pair).
    pub sa_pairs_installed: u64,
    /// Quick modes started for a soft EXPIRE (ReKeys).
    pub rekeys: u64,
    /// ACQUIREs handled (ActiveAcquire total).
    pub acquires: u64,
    /// DPD R-U-THERE answered.
    pub dpd_answered: u64,
    /// Quick modes the policy agent was asked about ([`Action::LookupPolicy`]).
    pub policy_lookups: u64,
    /// Answers naming a connection.
    pub policy_connections: u64,
    /// Answers refusing the negotiation (no match, blocked, permitted in clear).
    pub policy_refusals: u64,
    /// Lookups answered "unavailable": matched locally instead.
    pub policy_unavailable: u64,
}

/// A read-only view of one ISAKMP SA, for the daemon's control socket
/// ([`crate::Endpoint::isakmp_sas`]). Algorithms are named with their `Debug` names and are
/// `None` until the proposal is chosen and the keys exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsakmpSaInfo {
    /// The SA.
    pub handle: IsakmpSaHandle,
    /// Our role in its main mode.
    pub role: Role,
    /// Local and remote transport addresses.
    pub path: Path,
    /// Initiator cookie.
    pub initiator_cookie: [u8; 8],
    /// Responder cookie (zero until MM2).
    pub responder_cookie: [u8; 8],
    /// `established`, or what the main mode waits for.
    pub state: &'static str,
    /// Encryption, hash, authentication method and DH group, once chosen.
    pub suite: Option<[String; 4]>,
    /// Time since the first message.
    pub age: Duration,
    /// Time until expiry (established SAs).
    pub expires_in: Option<Duration>,
    /// Quick modes run on it.
    pub quick_modes: u32,
}

/// A read-only view of one installed SA pair ([`crate::Endpoint::children`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The connection.
    pub child: ChildName,
    /// The ISAKMP SA that negotiated it.
    pub isakmp: IsakmpSaHandle,
    /// Local address.
    pub local: IpAddr,
    /// Peer address.
    pub peer: IpAddr,
    /// ESP or AH.
    pub protocol: IpsecProtocol,
    /// Our SPI.
    pub inbound_spi: u32,
    /// The peer's SPI.
    pub outbound_spi: u32,
    /// Whether a rekey already replaced it.
    pub rekeyed: bool,
}
