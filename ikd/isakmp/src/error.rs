//! Decode and encode errors.
//!
//! [`DecodeError`] describes what is syntactically wrong with received bytes and maps each
//! case to the RFC 2408 §3.14.1 Notify type a peer would expect ([`DecodeError::notify_type`]).
//! Whether to send that notification (it is unauthenticated in phase 1) is the engine's
//! decision, not this crate's. [`EncodeError`] reports values that cannot be put on the wire
//! (a field too long for its length field); it never depends on received input.
//!
//! RFC 2408 has no "INVALID-ATTRIBUTES" Notify type: malformed data attributes inside a
//! transform map to BAD-PROPOSAL-SYNTAX (they are part of the proposal), while
//! ATTRIBUTES-NOT-SUPPORTED is left to the engine for well-formed but unacceptable values.

use crate::registry::{Doi, ExchangeType, IdType, NotifyType, PayloadType, Situation};

/// Received bytes are not a well-formed ISAKMP message, payload or attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A fixed-size field or structure runs past the end of its enclosing data.
    #[error("{what}: truncated")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
    },
    /// The ISAKMP header's major version is not 1 (IKEv1). IKEv2 (2) lands here.
    #[error("unsupported ISAKMP major version {0}")]
    InvalidMajorVersion(u8),
    /// The exchange type is NONE (0), which is not an exchange.
    #[error("invalid exchange type {0:?}")]
    InvalidExchangeType(ExchangeType),
    /// Reserved flag bits (other than Encryption, Commit, Authentication Only) are set.
    #[error("reserved ISAKMP flag bits set: {0:#04x}")]
    InvalidFlags(u8),
    /// The header's Length field does not match the datagram length.
    #[error("header length {header} does not match message length {actual}")]
    MessageLengthMismatch {
        /// The Length field of the ISAKMP header.
        header: u32,
        /// The number of octets received.
        actual: usize,
    },
    /// A generic payload header's length is shorter than the header itself (4 octets).
    #[error("{payload_type:?} payload length {length} is shorter than its header")]
    PayloadTooShort {
        /// The payload being decoded.
        payload_type: PayloadType,
        /// Its Payload Length field.
        length: u16,
    },
    /// A payload's length runs past the end of the message, or the chain announces another
    /// payload after the message has ended.
    #[error(
        "{payload_type:?} payload (length {length}) overruns the message ({available} octets left)"
    )]
    PayloadOverrun {
        /// The payload being decoded.
        payload_type: PayloadType,
        /// Its Payload Length field (0 if its header did not fit).
        length: u16,
        /// The octets left in the message.
        available: usize,
    },
    /// Octets follow the last payload of an unencrypted message.
    #[error("{len} octets after the last payload")]
    TrailingData {
        /// The number of extra octets.
        len: usize,
    },
    /// A Proposal or Transform payload appears in the top-level payload chain.
    #[error("{0:?} payload outside an SA payload")]
    MisplacedPayload(PayloadType),
    /// A payload body is inconsistent with its own fields.
    #[error("{payload_type:?} payload malformed: {reason}")]
    Malformed {
        /// The payload being decoded.
        payload_type: PayloadType,
        /// What is wrong.
        reason: &'static str,
    },
    /// The proposal/transform structure inside an SA payload is inconsistent: a
    /// proposal/transform overruns its parent, a wrong next-payload value, a transform count
    /// that does not match the transforms present, or a malformed data attribute.
    #[error("bad proposal syntax: {0}")]
    BadProposalSyntax(&'static str),
    /// The SA payload uses a DOI whose situation format this crate does not know, so its
    /// proposals cannot be located.
    #[error("DOI {0:?} not supported")]
    DoiNotSupported(Doi),
    /// The SA situation asks for labeled (secrecy/integrity) IPsec, which is not supported.
    #[error("situation {0:?} not supported")]
    SituationNotSupported(Situation),
    /// An Identification (or NAT-OA) payload's data length does not fit its ID type.
    #[error("ID type {id_type:?} with {len} octets of data")]
    InvalidIdInformation {
        /// The ID type.
        id_type: IdType,
        /// The length of the identification data.
        len: usize,
    },
}

impl DecodeError {
    /// The RFC 2408 §3.14.1 Notify type that describes this error (e.g. PAYLOAD-MALFORMED).
    ///
    /// Whether to actually send it (unauthenticated!) is the engine's decision.
    pub fn notify_type(&self) -> NotifyType {
        match self {
            Self::Truncated { .. } | Self::PayloadTooShort { .. } | Self::Malformed { .. } => {
                NotifyType::PAYLOAD_MALFORMED
            }
            Self::InvalidMajorVersion(_) => NotifyType::INVALID_MAJOR_VERSION,
            Self::InvalidExchangeType(_) => NotifyType::INVALID_EXCHANGE_TYPE,
            Self::InvalidFlags(_) => NotifyType::INVALID_FLAGS,
            Self::MessageLengthMismatch { .. }
            | Self::PayloadOverrun { .. }
            | Self::TrailingData { .. } => NotifyType::UNEQUAL_PAYLOAD_LENGTHS,
            Self::MisplacedPayload(_) => NotifyType::INVALID_PAYLOAD_TYPE,
            Self::BadProposalSyntax(_) => NotifyType::BAD_PROPOSAL_SYNTAX,
            Self::DoiNotSupported(_) => NotifyType::DOI_NOT_SUPPORTED,
            Self::SituationNotSupported(_) => NotifyType::SITUATION_NOT_SUPPORTED,
            Self::InvalidIdInformation { .. } => NotifyType::INVALID_ID_INFORMATION,
        }
    }
}

/// A value cannot be encoded: some field does not fit its length or count field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A variable-length field or a whole payload/message is longer than its length field
    /// can express.
    #[error("{what}: {len} exceeds the maximum {max}")]
    TooLong {
        /// What was being encoded.
        what: &'static str,
        /// Its length (or count).
        len: usize,
        /// The maximum the wire format allows.
        max: usize,
    },
    /// A field holds a value the wire format cannot carry.
    #[error("{what}: {reason}")]
    InvalidValue {
        /// What was being encoded.
        what: &'static str,
        /// Why it cannot be encoded.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_errors_map_to_unequal_payload_lengths() {
        let e = DecodeError::PayloadOverrun {
            payload_type: PayloadType::NONCE,
            length: 40,
            available: 10,
        };
        assert_eq!(e.notify_type(), NotifyType::UNEQUAL_PAYLOAD_LENGTHS);
        assert_eq!(
            DecodeError::TrailingData { len: 1 }.notify_type(),
            NotifyType::UNEQUAL_PAYLOAD_LENGTHS
        );
    }

    #[test]
    fn header_errors_map_to_their_own_notify_types() {
        assert_eq!(
            DecodeError::InvalidMajorVersion(2).notify_type(),
            NotifyType::INVALID_MAJOR_VERSION
        );
        assert_eq!(
            DecodeError::InvalidFlags(0x80).notify_type(),
            NotifyType::INVALID_FLAGS
        );
        assert_eq!(
            DecodeError::InvalidExchangeType(ExchangeType::NONE).notify_type(),
            NotifyType::INVALID_EXCHANGE_TYPE
        );
    }

    #[test]
    fn proposal_errors_map_to_bad_proposal_syntax() {
        assert_eq!(
            DecodeError::BadProposalSyntax("x").notify_type(),
            NotifyType::BAD_PROPOSAL_SYNTAX
        );
        assert_eq!(
            DecodeError::MisplacedPayload(PayloadType::PROPOSAL).notify_type(),
            NotifyType::INVALID_PAYLOAD_TYPE
        );
    }

    #[test]
    fn errors_display_what_went_wrong() {
        let e = DecodeError::Truncated {
            what: "ISAKMP header",
        };
        assert_eq!(e.to_string(), "ISAKMP header: truncated");
    }
}
