//! Errors: [`Error`] is why the engine rejected a received message (each knows the Notify
//! type that describes it); [`InitiateError`] is why a command could not start.
//!
//! Errors stay inside the engine: a handler that fails counts, logs at debug and, where the
//! RFCs say so, answers with the Notify from [`Error::notify_type`]. They never reach the
//! daemon as `Result`s from `handle_*`, which return nothing.

use ikecrypto::CryptoError;
use isakmp::{DecodeError, EncodeError, NotifyType, PayloadType};

use crate::auth::AuthError;

/// Why a received message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A crypto operation refused the peer's input.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// We could not encode a message (a bug or an oversized configuration).
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// The peer broke a protocol rule.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// No proposal is acceptable.
    #[error("no proposal chosen")]
    NoProposalChosen,
    /// Authentication failed.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The peer's identity is not the configured one, or its traffic selectors match no
    /// child.
    #[error("invalid ID information: {0}")]
    InvalidId(&'static str),
    /// Something we do not implement yet.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// The Notify type that tells the peer about this error, if one should be sent.
    pub fn notify_type(&self) -> Option<NotifyType> {
        match self {
            Self::Decode(e) => Some(e.notify_type()),
            Self::Crypto(e) => e.notify_type(),
            Self::Encode(_) => None,
            Self::PeerMisbehaved(p) => Some(p.notify_type()),
            Self::NoProposalChosen => Some(NotifyType::NO_PROPOSAL_CHOSEN),
            Self::Auth(a) => Some(a.notify),
            Self::InvalidId(_) => Some(NotifyType::INVALID_ID_INFORMATION),
            Self::Unsupported(_) => Some(NotifyType::ATTRIBUTES_NOT_SUPPORTED),
        }
    }
}

/// A specific protocol violation by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A payload type the message may not carry.
    #[error("{payload:?} not allowed in {message}")]
    PayloadNotAllowed {
        /// The message (rule table name).
        message: &'static str,
        /// The payload.
        payload: PayloadType,
    },
    /// Too few or too many payloads of one type.
    #[error("{message}: {count} {payload:?} payloads")]
    PayloadCount {
        /// The message.
        message: &'static str,
        /// The payload.
        payload: PayloadType,
        /// How many there were.
        count: usize,
    },
    /// A message that must be encrypted was not, or the reverse.
    #[error("{0}: wrong encryption")]
    WrongEncryption(&'static str),
    /// The HASH payload is not the first in a quick-mode or informational message.
    #[error("{0}: HASH is not the first payload")]
    HashNotFirst(&'static str),
    /// A quick-mode or informational hash does not verify.
    #[error("{0} does not verify")]
    HashMismatch(&'static str),
    /// The responder's SA is not one of our proposals.
    #[error("responder changed the proposal")]
    ResponderChangedProposal,
    /// A nonce outside 8..=256 octets (RFC 2409 §5).
    #[error("nonce of {0} octets")]
    BadNonceLength(usize),
    /// KE present/absent against the negotiated PFS.
    #[error("KE payload does not match the PFS setting")]
    UnexpectedKe,
    /// An SPI of the wrong size.
    #[error("SPI of {0} octets")]
    BadSpi(usize),
    /// The IDs in QM2 differ from those we sent.
    #[error("responder changed the quick mode IDs")]
    ResponderChangedIds,
}

impl PeerMisbehaved {
    /// The Notify type for this violation.
    pub fn notify_type(&self) -> NotifyType {
        match self {
            Self::PayloadNotAllowed { .. } => NotifyType::INVALID_PAYLOAD_TYPE,
            Self::PayloadCount { .. } | Self::HashNotFirst(_) | Self::BadNonceLength(_) => {
                NotifyType::PAYLOAD_MALFORMED
            }
            Self::WrongEncryption(_) => NotifyType::INVALID_FLAGS,
            Self::HashMismatch(_) => NotifyType::INVALID_HASH_INFORMATION,
            Self::ResponderChangedProposal | Self::UnexpectedKe => NotifyType::NO_PROPOSAL_CHOSEN,
            Self::BadSpi(_) => NotifyType::INVALID_SPI,
            Self::ResponderChangedIds => NotifyType::INVALID_ID_INFORMATION,
        }
    }
}

/// Why [`crate::Endpoint::initiate`] could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InitiateError {
    /// No child of that name.
    #[error("no child named {0}")]
    UnknownChild(String),
    /// The child's peer is not configured.
    #[error("child's peer {0} is not configured")]
    UnknownPeer(String),
    /// The peer has no fixed address (a responder-only entry).
    #[error("peer {0} has no address to initiate to")]
    NoPeerAddress(String),
    /// No main-mode proposal uses the peer's authentication method.
    #[error("no main mode proposal for peer {0}")]
    NoProposal(String),
    /// The child has no quick-mode proposal.
    #[error("child {0} has no proposal")]
    NoChildProposal(String),
}
