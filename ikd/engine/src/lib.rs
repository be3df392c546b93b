//! The sans-IO IKEv1 engine of ikd: main mode (identity protection), quick mode and
//! informational exchanges (RFC 2408, 2409, 2407; DPD RFC 3706; the Windows 4th quick-mode
//! message), driven entirely by its caller.
//!
//! An [`Endpoint`] holds every ISAKMP SA and exchange of one local identity. The daemon
//! feeds it with `handle_*` calls and drains its outputs with `poll_*` calls, in the style
//! of quinn-proto:
//!
//! ```text
//!   handle_datagram / handle_timeout / handle_kernel_event / handle_spi_allocated
//!   handle_policy_answer / initiate / delete_all / reconfigure
//!        │
//!        ▼
//!   poll_transmit  (datagrams to send)   → UDP 500/4500
//!   poll_action    (AllocSpi, LookupPolicy, InstallSaPair, DeleteSa, Event)
//!                                        → pfkey, policyd, logs
//!   poll_timeout   (when to call handle_timeout next)
//! ```
//!
//! What it does not do: no I/O, no clock reads (every call takes `now`), no randomness of
//! its own (a seed is passed in and expanded with the injected [`CryptoProvider`]'s PRF), no
//! kernel calls (SPI allocation and SA installation are [`Action`]s answered by the
//! daemon). It never panics on input: every malformed, unexpected or replayed datagram is
//! counted in [`Statistics`], logged at debug level, and dropped or answered with the
//! Notify the RFCs prescribe.
//!
//! Layout: [`config`] (what the engine negotiates), [`auth`] (the authentication plug-in
//! point), [`types`] (inputs and outputs), `endpoint` (demultiplexing, timers,
//! retransmission), `main_mode`, `quick_mode`, `informational` (one state machine each,
//! states named `Expect*` for what they wait for), `rules` (which payloads each message may
//! carry), `proposal` (SA payloads built and chosen), `crypt` (encryption, IV chains,
//! padding), `rng` (the seeded generator), `reconfigure` (a new configuration for a running
//! endpoint: which SAs stay, which are deleted).
//!
//! The engine does not depend on the `pfkey` crate: [`types::ChildSa`] carries everything
//! needed to build a `pfkey::model::SecurityAssociation`, and the daemon converts (this
//! keeps the engine free of libc and of the kernel crate's build, and fuzzable alone).
//!
//! NAT traversal: the NAT-T and DPD vendor IDs are sent and recognised, NAT-D and NAT-OA
//! payloads from a peer are accepted and ignored; sending NAT-D, port floating and the
//! UDP-encapsulated modes are not done yet.
//!
//! [`CryptoProvider`]: ikecrypto::CryptoProvider

pub mod auth;
pub mod config;
mod crypt;
mod endpoint;
mod error;
mod informational;
mod main_mode;
mod proposal;
mod quick_mode;
mod reconfigure;
mod rng;
mod rules;
pub mod types;

pub use auth::{AuthError, AuthSession, Authenticator, PskAuthenticator};
pub use config::{
    ChildConfig, ChildName, EncapsulationMode, EndpointConfig, EspCipher, Identity,
    IntegrityAlgorithm, IpsecProtocol, MainModeProposal, PeerAddress, PeerConfig,
    QuickModeProposal, QuickModeTransform, RetransmitSchedule, Subnet, TrafficSelector,
};
pub use endpoint::Endpoint;
pub use error::{Error, InitiateError, PeerMisbehaved};
pub use types::{
    Action, ChildInfo, ChildLifetime, ChildSa, Event, FailureReason, IsakmpSaHandle, IsakmpSaInfo,
    KernelEvent, Path, PolicyAnswer, PolicyRefusal, ReconfigureReport, RequestId, Role, SaPair,
    Selector, SpiAllocationFailed, Statistics, Transmit,
};

#[cfg(test)]
mod tests;
