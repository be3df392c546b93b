//! [`CryptoError`]: everything the crypto layer can refuse.
//!
//! Two kinds of cases: the caller passed sizes that do not fit the algorithm (a bug in the
//! engine, or a transform it should not have accepted), and the peer sent something invalid
//! (a bad Diffie-Hellman public value, a HASH that does not verify). The latter know the
//! RFC 2408 §3.14.1 Notify type that describes them ([`CryptoError::notify_type`]); whether
//! to send it is the engine's decision.

use isakmp::NotifyType;

use crate::alg::{CipherAlgorithm, DhGroup};

/// An error from the crypto layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A cipher key of the wrong length.
    #[error("{cipher}: key of {got} octets, expected {expected}")]
    KeyLength {
        /// The cipher.
        cipher: CipherAlgorithm,
        /// The length passed.
        got: usize,
        /// The cipher's key length.
        expected: usize,
    },
    /// An IV that is not one cipher block long.
    #[error("{cipher}: IV of {got} octets, expected {expected}")]
    IvLength {
        /// The cipher.
        cipher: CipherAlgorithm,
        /// The length passed.
        got: usize,
        /// The cipher's block length.
        expected: usize,
    },
    /// Data to encrypt or decrypt that is not a whole number of blocks. For received data
    /// this is the peer's fault (RFC 2409 Appendix B requires padding to the block size).
    #[error("{cipher}: {len} octets is not a multiple of the block length {block}")]
    NotBlockAligned {
        /// The cipher.
        cipher: CipherAlgorithm,
        /// The data length.
        len: usize,
        /// The cipher's block length.
        block: usize,
    },
    /// The random octets given to key generation have the wrong length.
    #[error("{group}: {got} random octets for key generation, expected {min}..={max}")]
    RandomLength {
        /// The group.
        group: DhGroup,
        /// The length passed.
        got: usize,
        /// The least accepted length.
        min: usize,
        /// The greatest accepted length.
        max: usize,
    },
    /// The random octets do not form a valid private key (zero, one, or not below the group
    /// order). This happens with negligible probability for real randomness: draw again.
    #[error("{group}: random octets are not a valid private key, draw again")]
    RejectedRandom {
        /// The group.
        group: DhGroup,
    },
    /// The peer's KE public value has the wrong length for the group.
    #[error("{group}: peer public value of {got} octets, expected {expected}")]
    PublicValueLength {
        /// The group.
        group: DhGroup,
        /// The length received.
        got: usize,
        /// The group's public value length.
        expected: usize,
    },
    /// The peer's MODP public value y is not in `2..=p-2` (RFC 2631 §2.1.5: it would force
    /// the shared secret into a subgroup of order at most 2).
    #[error("{group}: peer public value out of range (1 < y < p-1 required)")]
    PublicValueOutOfRange {
        /// The group.
        group: DhGroup,
    },
    /// The peer's ECP public value is not a point on the curve (or is the point at infinity).
    #[error("{group}: peer public value is not a point on the curve")]
    PointNotOnCurve {
        /// The group.
        group: DhGroup,
    },
    /// A received HASH does not match the computed one.
    #[error("{what} does not verify")]
    HashMismatch {
        /// Which hash (for instance `"HASH_I"` or `"HASH(1)"`).
        what: &'static str,
    },
}

impl CryptoError {
    /// Whether the error was caused by the peer's input, as opposed to a local misuse of the
    /// API.
    pub fn is_peer_error(&self) -> bool {
        matches!(
            self,
            Self::NotBlockAligned { .. }
                | Self::PublicValueLength { .. }
                | Self::PublicValueOutOfRange { .. }
                | Self::PointNotOnCurve { .. }
                | Self::HashMismatch { .. }
        )
    }

    /// The RFC 2408 §3.14.1 Notify type that describes a peer error: INVALID-KEY-INFORMATION
    /// for a bad public value, INVALID-HASH-INFORMATION for a HASH mismatch, PAYLOAD-MALFORMED
    /// for ciphertext that is not block aligned. `None` for local errors.
    pub fn notify_type(&self) -> Option<NotifyType> {
        match self {
            Self::PublicValueLength { .. }
            | Self::PublicValueOutOfRange { .. }
            | Self::PointNotOnCurve { .. } => Some(NotifyType::INVALID_KEY_INFORMATION),
            Self::HashMismatch { .. } => Some(NotifyType::INVALID_HASH_INFORMATION),
            Self::NotBlockAligned { .. } => Some(NotifyType::PAYLOAD_MALFORMED),
            Self::KeyLength { .. }
            | Self::IvLength { .. }
            | Self::RandomLength { .. }
            | Self::RejectedRandom { .. } => None,
        }
    }
}
