//! The typed messages of protocol versions 1 and 2 (field names as they appear on the
//! wire, in kebab-case). Version 2 adds [`Request::MatchNegotiation`] and its answer
//! [`Response::NegotiationMatch`], and [`Request::Configure`] (policyd hands ikd its
//! configuration live) and its answer [`Response::Configured`];
//! [`Request::since_version`] and [`Response::since_version`] say which version a message
//! needs, and a server never answers a version-1 client with a version-2 message (a
//! version-1 connection gets [`ErrorCode::Unsupported`] for a version-2 request).

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
    /// Version 2. ikd to policyd, as quick-mode responder: which connection of the
    /// generated ikd.conf answers this negotiation? policyd finds the filter the kernel
    /// applies to the proposed traffic (the same ordering as its kernel policies, mirrored
    /// filters both ways, "my address" expanded) and answers
    /// [`Response::NegotiationMatch`].
    MatchNegotiation(NegotiationQuery),
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

/// The traffic of a proposed quick mode, from the responder's (ikd's host) point of view
/// ([`Request::MatchNegotiation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NegotiationQuery {
    /// Our IKE address.
    pub local: IpAddr,
    /// The peer's IKE address.
    pub peer: IpAddr,
    /// Our side of the traffic (IDcr), an address with an optional `/len`.
    pub local_subnet: String,
    /// The peer's side of the traffic (IDci).
    pub remote_subnet: String,
    /// IP protocol (0: any).
    #[serde(default)]
    pub protocol: u8,
    /// Our port (0: any).
    #[serde(default)]
    pub local_port: u16,
    /// The peer's port (0: any).
    #[serde(default)]
    pub remote_port: u16,
    /// The identity the peer authenticated with in main mode, for logs (e.g. its address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
}

/// policyd's verdict on a negotiation ([`Response::NegotiationMatch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum NegotiationVerdict {
    /// Negotiate with this ikd.conf connection.
    #[serde(rename_all = "kebab-case")]
    Connection {
        /// The connection's name in the generated ikd.conf.
        connection: String,
        /// The rule behind it (its name; "default response rule" for the catch-all).
        rule: String,
    },
    /// Refuse: the traffic is blocked by a rule.
    #[serde(rename_all = "kebab-case")]
    Blocked {
        /// The blocking rule's name.
        rule: String,
        /// Human-readable, e.g. `blocked by rule "block telnet"`.
        reason: String,
    },
    /// Refuse: a rule lets the traffic pass in clear, no SA is wanted.
    #[serde(rename_all = "kebab-case")]
    PermittedInClear {
        /// The permitting rule's name.
        rule: String,
        /// Human-readable.
        reason: String,
    },
    /// Refuse: no rule (and no active default response rule) covers the traffic.
    #[serde(rename_all = "kebab-case")]
    NoMatch {
        /// Human-readable.
        reason: String,
    },
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
    /// The first protocol version with this request.
    pub fn since_version(&self) -> u16 {
        match self {
            Self::MatchNegotiation(_) => 2,
            Self::Configure { .. } => CONFIGURE_VERSION,
            _ => 1,
        }
    }

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
            Self::MatchNegotiation(_) => "match-negotiation",
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
    /// Version 2. The answer to [`Request::MatchNegotiation`].
    #[serde(rename_all = "kebab-case")]
    NegotiationMatch {
        /// The verdict.
        #[serde(flatten)]
        verdict: NegotiationVerdict,
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
            Self::NegotiationMatch { .. } => "negotiation-match",
            Self::Configured { .. } => "configured",
            Self::Done => "done",
            Self::Error { .. } => "error",
            Self::Unknown => "unknown",
        }
    }
}

impl Response {
    /// The first protocol version with this response.
    pub fn since_version(&self) -> u16 {
        match self {
            Self::NegotiationMatch { .. } | Self::Configured { .. } => 2,
            _ => 1,
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
    /// Crypto offload of the inbound SA: the device holding it, `refused (ERRNO) by DEV`,
    /// `software, not retried (...)`, `none` or `none (reason)`. Absent from ikd
    /// versions before offload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_offload: Option<String>,
    /// Crypto offload of the outbound SA, as `inbound_offload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_offload: Option<String>,
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
    /// Quick modes ikd asked policyd about (`match-negotiation`; version 2, absent from
    /// older ikd: 0).
    pub policy_lookups: u64,
    /// Of those, answered with a connection.
    pub policy_connections: u64,
    /// Of those, refused by policy (no match, blocked, permitted in clear).
    pub policy_refusals: u64,
    /// Of those, unanswered (policyd unreachable, too slow or version 1): matched locally.
    pub policy_unavailable: u64,
    /// Seconds since ikd started.
    pub uptime_seconds: u64,
    /// SAs installed now whose crypto a network device holds (absent from ikd versions
    /// before offload, as the three below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloaded_sas: Option<u64>,
    /// SAs whose offload request the device refused (installed in software), since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_refused_sas: Option<u64>,
    /// SAs installed in software without asking, because the device refused an earlier SA
    /// of the connection, since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_not_retried_sas: Option<u64>,
    /// Bytes through offloaded SAs (kernel lifetime counters), since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloaded_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_fields_are_optional_both_ways() {
        // From an ikd before offload: no offload fields.
        let old = r#"{"connection":"c","local":"192.0.2.11","peer":"192.0.2.12","protocol":"esp","inbound-spi":"00000101","outbound-spi":"00000202","rekeyed":false}"#;
        let sa: QuickModeSa = serde_json::from_str(old).expect("old qm sa");
        assert_eq!((&sa.inbound_offload, &sa.outbound_offload), (&None, &None));
        let stats: IkeStatistics =
            serde_json::from_str(r#"{"quick-mode-sas":2}"#).expect("old statistics");
        assert_eq!((stats.quick_mode_sas, stats.offloaded_sas), (2, None));
        // Absent values are not written, present ones round-trip.
        assert!(!serde_json::to_string(&sa)
            .expect("json")
            .contains("offload"));
        let new = IkeStatistics {
            offloaded_sas: Some(2),
            offload_refused_sas: Some(1),
            offload_not_retried_sas: Some(0),
            offloaded_bytes: Some(1234),
            ..IkeStatistics::default()
        };
        let text = serde_json::to_string(&new).expect("json");
        assert!(text.contains(r#""offloaded-bytes":1234"#), "{text}");
        assert_eq!(
            serde_json::from_str::<IkeStatistics>(&text).expect("back"),
            new
        );
    }
}
