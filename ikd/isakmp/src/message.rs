//! A whole ISAKMP message: header plus payload chain (RFC 2408 §3).
//!
//! [`Message::decode`] takes one datagram (without the 4-octet non-ESP marker of port 4500)
//! and checks the header, that the header's Length equals the datagram length, and, for an
//! unencrypted message, that the payload chain fills the rest exactly. If the E flag is set,
//! the body is kept as opaque ciphertext: decrypting it and decoding the plaintext with
//! [`crate::decode_payloads_padded`] is the engine's job, as are cookie and message-ID
//! checks and the rules on which payloads a message may carry.
//!
//! [`Message::encode`] computes the header's Next Payload and Length, every payload's Next
//! Payload and Length, and sets the E flag exactly when the body is encrypted.

use crate::error::{DecodeError, EncodeError};
use crate::header::{Flags, HeaderRepr, HEADER_LEN};
use crate::payload::{decode_payloads, encode_payloads, Payload};
use crate::registry::{ExchangeType, PayloadType};

/// What follows the ISAKMP header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// An unencrypted payload chain.
    Payloads(Vec<Payload>),
    /// An encrypted payload chain (`HDR*`), as received or as produced by the engine.
    Encrypted {
        /// The type of the first encrypted payload (the header's Next Payload).
        next_payload: PayloadType,
        /// The ciphertext, including padding.
        ciphertext: Vec<u8>,
    },
}

/// An ISAKMP message.
///
/// ```text
/// HDR, payload, payload, ...            (Body::Payloads)
/// HDR*, <encrypted payloads + padding>  (Body::Encrypted)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// CKY-I.
    pub initiator_cookie: [u8; 8],
    /// CKY-R.
    pub responder_cookie: [u8; 8],
    /// The minor version (0; the major version is always 1).
    pub minor_version: u8,
    /// The exchange type.
    pub exchange_type: ExchangeType,
    /// The flags. The E bit is ignored on encode: it is set exactly when the body is
    /// [`Body::Encrypted`].
    pub flags: Flags,
    /// The Message ID.
    pub message_id: u32,
    /// The payloads.
    pub body: Body,
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Self, DecodeError> {
        let header = HeaderRepr::decode(datagram)?;
        if usize::try_from(header.length).ok() != Some(datagram.len()) {
            return Err(DecodeError::MessageLengthMismatch {
                header: header.length,
                actual: datagram.len(),
            });
        }
        // The header fits: HeaderRepr::decode checked that 28 octets are present.
        let rest = datagram.get(HEADER_LEN..).unwrap_or_default();
        let body = if header.flags.is_encrypted() {
            Body::Encrypted {
                next_payload: header.next_payload,
                ciphertext: rest.to_vec(),
            }
        } else {
            Body::Payloads(decode_payloads(header.next_payload, rest)?)
        };
        Ok(Self {
            initiator_cookie: header.initiator_cookie,
            responder_cookie: header.responder_cookie,
            minor_version: header.minor_version,
            exchange_type: header.exchange_type,
            flags: header.flags,
            message_id: header.message_id,
            body,
        })
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let mut header = HeaderRepr {
            initiator_cookie: self.initiator_cookie,
            responder_cookie: self.responder_cookie,
            next_payload: PayloadType::NONE,
            minor_version: self.minor_version,
            exchange_type: self.exchange_type,
            flags: self.flags.with(Flags::ENCRYPTION, self.is_encrypted()),
            message_id: self.message_id,
            length: 0,
        };
        if self.minor_version > 0x0f {
            return Err(EncodeError::InvalidValue {
                what: "minor version",
                reason: "does not fit in 4 bits",
            });
        }
        header.emit(out);
        header.next_payload = match &self.body {
            Body::Payloads(payloads) => encode_payloads(payloads, out)?,
            Body::Encrypted {
                next_payload,
                ciphertext,
            } => {
                out.extend_from_slice(ciphertext);
                *next_payload
            }
        };
        let len = out.len() - start;
        header.length = u32::try_from(len).map_err(|_| EncodeError::TooLong {
            what: "message length",
            len,
            max: u32::MAX as usize,
        })?;
        let mut fixed = Vec::with_capacity(HEADER_LEN);
        header.emit(&mut fixed);
        if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
            slot.copy_from_slice(&fixed);
        }
        Ok(())
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Whether the body is encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.body, Body::Encrypted { .. })
    }

    /// The unencrypted payloads (empty for an encrypted body).
    pub fn payloads(&self) -> &[Payload] {
        match &self.body {
            Body::Payloads(p) => p,
            Body::Encrypted { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{HashPayload, NoncePayload, VendorIdPayload};

    fn message(body: Body) -> Message {
        Message {
            initiator_cookie: [1; 8],
            responder_cookie: [2; 8],
            minor_version: 0,
            exchange_type: ExchangeType::IDENTITY_PROTECTION,
            flags: Flags::default(),
            message_id: 0,
            body,
        }
    }

    #[test]
    fn encode_computes_header_next_payload_and_length() {
        let m = message(Body::Payloads(vec![
            Payload::VendorId(VendorIdPayload {
                vendor_id: vec![9; 16],
            }),
            Payload::Nonce(NoncePayload { nonce: vec![7; 8] }),
        ]));
        let b = m.to_bytes().unwrap();
        assert_eq!(b.len(), 28 + 20 + 12);
        assert_eq!(b[16], PayloadType::VENDOR_ID.0);
        assert_eq!(b[17], 0x10);
        assert_eq!(&b[24..28], &[0, 0, 0, 60]);
        assert_eq!(b[28], PayloadType::NONCE.0);
        assert_eq!(Message::decode(&b).unwrap(), m);
    }

    #[test]
    fn empty_message_has_next_payload_none() {
        let m = message(Body::Payloads(vec![]));
        let b = m.to_bytes().unwrap();
        assert_eq!((b.len(), b[16]), (28, 0));
        assert_eq!(Message::decode(&b).unwrap(), m);
    }

    #[test]
    fn encrypted_body_is_opaque_and_sets_the_e_flag() {
        let m = message(Body::Encrypted {
            next_payload: PayloadType::IDENTIFICATION,
            ciphertext: vec![0xee; 24],
        });
        let b = m.to_bytes().unwrap();
        assert_eq!(b[16], PayloadType::IDENTIFICATION.0);
        assert_eq!(b[19], Flags::ENCRYPTION.0);
        let back = Message::decode(&b).unwrap();
        assert_eq!(back.body, m.body);
        assert!(back.flags.is_encrypted());
        assert!(back.payloads().is_empty());
    }

    #[test]
    fn clears_a_stray_e_flag_on_plaintext() {
        let mut m = message(Body::Payloads(vec![Payload::Hash(HashPayload {
            hash: vec![1],
        })]));
        m.flags = Flags::ENCRYPTION | Flags::COMMIT;
        let b = m.to_bytes().unwrap();
        assert_eq!(b[19], Flags::COMMIT.0);
    }

    #[test]
    fn rejects_header_length_different_from_datagram() {
        let b = message(Body::Payloads(vec![])).to_bytes().unwrap();
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(
            Message::decode(&longer),
            Err(DecodeError::MessageLengthMismatch {
                header: 28,
                actual: 29
            })
        );
        let mut bigger = b;
        bigger[27] = 29;
        assert!(matches!(
            Message::decode(&bigger),
            Err(DecodeError::MessageLengthMismatch { .. })
        ));
    }

    #[test]
    fn rejects_minor_version_over_4_bits() {
        let mut m = message(Body::Payloads(vec![]));
        m.minor_version = 16;
        assert!(m.to_bytes().is_err());
    }
}
