//! The typed messages of protocol versions 1 and 2 (field names as they appear on the
//! wire, in kebab-case). Version 2 adds [`Request::Configure`] (policyd hands ikd its
//! configuration live); a version 1 connection gets [`ErrorCode::Unsupported`] for it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The oldest protocol version this crate speaks.
pub const MIN_VERSION: u16 = 1;
/// The newest protocol version this crate speaks.
pub const MAX_VERSION: u16 = 2;

/// The first version with [`Request::Configure`].
pub const CONFIGURE_VERSION: u16 = 2;

/// The name of the ikd peer and connection policyd generates for the default response
/// rule; SA pairs of this connection make policyd install a dynamic filter.
pub const DEFAULT_RESPONSE: &str = "default-response";

/// Client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    /// The first frame of every connection.
    #[serde(rename_all = "kebab-case")]
    Hello {
        /// Oldest version the client speaks.
        min_version: u16,
        /// Newest version the client speaks.
        max_version: u16,
        /// Who is calling (for logs), e.g. `ipsecadm`.
        client: String,
    },
    /// ikd: the ISAKMP (main-mode) SAs.
    ShowMainModeSas,
    /// ikd: the quick-mode SA pairs it negotiated and installed.
    ShowQuickModeSas,
    /// ikd: its IKE counters.
    ShowStatistics,
    /// ikd to policyd: `peer` did not answer IKE for traffic from `local` (an ACQUIRE
    /// whose main mode got no reply within ikd's fall-back delay). policyd lets that
    /// traffic pass in clear if the matching rule's filter action allows unsecured
    /// communication with non-IPsec-aware computers (fall back to clear, a "soft SA").
    #[serde(rename_all = "kebab-case")]
    PeerUnreachable {
        /// Our address.
        local: IpAddr,
        /// The silent peer.
        peer: IpAddr,
    },
    /// ikd to policyd: ikd installed an SA pair for the default response rule (seed, step
    /// 3): policyd installs the dynamic filter for this traffic (both directions, the
    /// pair's reqid) until [`Request::DynamicFilterGone`].
    #[serde(rename_all = "kebab-case")]
    DynamicFilterNeeded {
        /// Our address.
        local: IpAddr,
        /// The peer.
        peer: IpAddr,
        /// IP protocol (0: any).
        protocol: u8,
        /// Our port (0: any).
        local_port: u16,
        /// The peer's port (0: any).
        remote_port: u16,
        /// The reqid ikd installed the SAs with.
        reqid: u32,
        /// The SAs are AH (default ESP).
        #[serde(default)]
        ah: bool,
    },
    /// ikd to policyd: no SA of the default response rule with `peer` is left.
    #[serde(rename_all = "kebab-case")]
    DynamicFilterGone {
        /// Our address.
        local: IpAddr,
        /// The peer.
        peer: IpAddr,
    },
    /// policyd to ikd (version 2): replace ikd's whole configuration, live, with `config`
    /// (the `ikd.conf(5)` text ikd parses at start-up). ikd keeps the SAs the new text
    /// still covers and answers [`Response::Configured`], or
    /// [`ErrorCode::InvalidConfiguration`] with the parser's message and changes nothing.
    #[serde(rename_all = "kebab-case")]
    Configure {
        /// policyd's number for this configuration, echoed in the answer and logged.
        generation: u64,
        /// The configuration text. It holds preshared keys: never logged, zeroized.
        config: ConfigText,
    },
    /// A request type this version does not know (decoded from any other `type`).
    #[serde(other)]
    Unknown,
}

/// The `ikd.conf` text of a [`Request::Configure`]: it contains preshared keys, so its
/// `Debug` shows only the length and its memory is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigText(String);

impl ConfigText {
    /// Wraps `text` (taking ownership, so no other copy is left by this call).
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConfigText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigText(<{} octets, redacted>)", self.0.len())
    }
}

impl Drop for ConfigText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Request {
    /// The wire name of the message type.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::ShowMainModeSas => "show-main-mode-sas",
            Self::ShowQuickModeSas => "show-quick-mode-sas",
            Self::ShowStatistics => "show-statistics",
            Self::PeerUnreachable { .. } => "peer-unreachable",
            Self::DynamicFilterNeeded { .. } => "dynamic-filter-needed",
            Self::DynamicFilterGone { .. } => "dynamic-filter-gone",
            Self::Configure { .. } => "configure",
            Self::Unknown => "unknown",
        }
    }
}

/// Server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Response {
    /// The answer to [`Request::Hello`]: the version both sides use from now on.
    #[serde(rename_all = "kebab-case")]
    Welcome {
        /// The chosen version.
        version: u16,
        /// Who answers, e.g. `ikd 0.1.0`.
        server: String,
    },
    /// The answer to [`Request::ShowMainModeSas`].
    MainModeSas {
        /// One entry per ISAKMP SA, negotiating or established.
        sas: Vec<MainModeSa>,
    },
    /// The answer to [`Request::ShowQuickModeSas`].
    QuickModeSas {
        /// One entry per installed SA pair.
        sas: Vec<QuickModeSa>,
    },
    /// The answer to [`Request::ShowStatistics`].
    Statistics {
        /// The counters.
        statistics: IkeStatistics,
    },
    /// The answer to [`Request::PeerUnreachable`] when traffic with the peer now passes
    /// in clear.
    #[serde(rename_all = "kebab-case")]
    FellBackToClear {
        /// Kernel policies installed (outbound and inbound).
        policies: u32,
        /// They go after this many seconds without traffic.
        idle_seconds: u32,
    },
    /// The answer to [`Request::Configure`]: the new configuration is in force.
    #[serde(rename_all = "kebab-case")]
    Configured {
        /// The request's generation.
        generation: u64,
        /// ISAKMP SAs kept (their peer is still configured).
        isakmp_sas_kept: u64,
        /// ISAKMP SAs deleted (their peer was removed).
        isakmp_sas_deleted: u64,
        /// SA pairs kept (their connection is unchanged).
        sa_pairs_kept: u64,
        /// SA pairs deleted (their connection was removed or changed).
        sa_pairs_deleted: u64,
        /// Negotiations in progress abandoned.
        exchanges_abandoned: u64,
    },
    /// The request was carried out (nothing to report).
    Done,
    /// The request failed.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
    /// A response type this version does not know.
    #[serde(other)]
    Unknown,
}

impl Response {
    /// The wire name of the message type.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::MainModeSas { .. } => "main-mode-sas",
            Self::QuickModeSas { .. } => "quick-mode-sas",
            Self::Statistics { .. } => "statistics",
            Self::FellBackToClear { .. } => "fell-back-to-clear",
            Self::Configured { .. } => "configured",
            Self::Done => "done",
            Self::Error { .. } => "error",
            Self::Unknown => "unknown",
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// No common protocol version (the connection is closed).
    Version,
    /// The first frame was not a hello, or a hello came twice.
    Handshake,
    /// The server does not implement this request.
    Unsupported,
    /// The server failed to carry out the request.
    Failed,
    /// The request was understood and refused by policy (e.g. no rule allows falling back
    /// to clear for that peer).
    Denied,
    /// [`Request::Configure`]: the configuration does not parse or validate; nothing was
    /// changed.
    InvalidConfiguration,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version",
            Self::Handshake => "handshake",
            Self::Unsupported => "unsupported",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::InvalidConfiguration => "invalid-configuration",
        })
    }
}

/// One ISAKMP SA as ikd sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MainModeSa {
    /// Local address and port.
    pub local: SocketAddr,
    /// Peer address and port.
    pub peer: SocketAddr,
    /// `initiator` or `responder`.
    pub role: String,
    /// Initiator cookie, 16 hex digits.
    pub initiator_cookie: String,
    /// Responder cookie, 16 hex digits (zeros until MM2).
    pub responder_cookie: String,
    /// `established`, or the message the exchange waits for.
    pub state: String,
    /// Encryption (empty before the proposal is chosen).
    pub encryption: String,
    /// Hash / integrity.
    pub integrity: String,
    /// Diffie-Hellman group.
    pub dh_group: String,
    /// Authentication method.
    pub authentication: String,
    /// Seconds since MM1.
    pub age_seconds: u64,
    /// Seconds until the SA expires (established SAs only).
    pub expires_in_seconds: Option<u64>,
    /// Quick modes run on this SA.
    pub quick_modes: u32,
}

/// One SA pair negotiated by ikd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct QuickModeSa {
    /// The connection (ikd.conf) or rule it belongs to.
    pub connection: String,
    /// Local address.
    pub local: IpAddr,
    /// Peer address.
    pub peer: IpAddr,
    /// `esp` or `ah`.
    pub protocol: String,
    /// Inbound SPI, 8 hex digits.
    pub inbound_spi: String,
    /// Outbound SPI, 8 hex digits.
    pub outbound_spi: String,
    /// Whether a rekey already replaced it.
    pub rekeyed: bool,
}

/// ikd's IKE counters (named after `netsh ipsec dynamic show stats`' IKE section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct IkeStatistics {
    /// ISAKMP SAs in any state.
    pub isakmp_sas: u64,
    /// Established ISAKMP SAs.
    pub established_isakmp_sas: u64,
    /// Installed SA pairs.
    pub quick_mode_sas: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Main modes started.
    pub main_modes_started: u64,
    /// Main modes completed (Oakley main mode).
    pub main_modes_completed: u64,
    /// Main modes failed.
    pub main_modes_failed: u64,
    /// Quick modes started.
    pub quick_modes_started: u64,
    /// Quick modes completed (Oakley quick mode).
    pub quick_modes_completed: u64,
    /// Quick modes failed.
    pub quick_modes_failed: u64,
    /// Authentication failures.
    pub authentication_failures: u64,
    /// Datagrams that did not decode (invalid packets).
    pub invalid_packets: u64,
    /// Datagrams with unknown cookies.
    pub invalid_cookies: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// New main modes dropped by the per-peer rate limit.
    pub rate_limited: u64,
    /// Seconds since ikd started.
    pub uptime_seconds: u64,
}
