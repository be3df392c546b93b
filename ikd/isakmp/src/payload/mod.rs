//! ISAKMP payloads: the generic payload header (RFC 2408 §3.2), the payload chain, and one
//! module per payload body.
//!
//! * [`RawPayloads`] walks a chain of generic payload headers without copying and yields
//!   [`RawPayload`]s: the type, the body and the exact wire bytes, which the engine needs to
//!   hash payloads as received (`SAi_b`, `IDii_b`, "the bytes after HASH(1)").
//! * [`Payload`] is a decoded payload body; [`decode_payloads`] and [`encode_payloads`]
//!   convert whole chains, computing every Next Payload and Payload Length field on encode.
//! * [`PayloadBody`] decodes and encodes a single body (without its generic header).
//!
//! This module checks that each payload fits in what encloses it and that the chain ends
//! where the data does; it does not check which payloads a message may contain, in what
//! order or how often (the engine's message rules do). The RESERVED octet of the generic
//! header is ignored on receipt and sent as zero. Payload types this crate does not decode
//! (GDOI, Mode Config, private types) are kept as [`Payload::Unknown`] and re-encoded
//! unchanged; Proposal and Transform payloads outside an SA are an error.

use crate::codec::{self, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::registry::PayloadType;

mod attribute;
mod cert;
mod delete;
mod fragment;
mod gss;
mod hash;
mod id;
mod ke;
mod nat_d;
mod nat_oa;
mod nonce;
mod notify;
mod proposal;
mod sa;
mod sig;
mod transform;
pub mod vendor_id;

pub use attribute::{decode_attributes, encode_attributes, AttributeValue, DataAttribute};
pub use cert::{CertPayload, CertRequestPayload};
pub use delete::DeletePayload;
pub use fragment::{FragmentFlags, FragmentPayload};
pub use gss::GssPayload;
pub use hash::HashPayload;
pub use id::{IdData, IdPayload};
pub use ke::KePayload;
pub use nat_d::NatDPayload;
pub use nat_oa::NatOaPayload;
pub use nonce::NoncePayload;
pub use notify::NotifyPayload;
pub use proposal::ProposalPayload;
pub use sa::SaPayload;
pub use sig::SigPayload;
pub use transform::TransformPayload;
pub use vendor_id::{KnownVendorId, VendorIdPayload};

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;

/// A payload body that can be decoded from and encoded to the octets after its generic
/// payload header.
pub trait PayloadBody: Sized {
    /// Decodes a body (the octets after the 4-octet generic header, e.g. `SAi_b`).
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError>;

    /// Appends the body to `out`, computing every inner length and count.
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// The body as a new vector (for hashing, e.g. `IDii_b`).
    fn body_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_body(&mut out)?;
        Ok(out)
    }
}

/// Defines a payload whose body is one opaque octet string.
macro_rules! opaque_payload {
    (
        $(#[$meta:meta])*
        $name:ident { $(#[$fmeta:meta])* $field:ident }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name {
            $(#[$fmeta])*
            pub $field: Vec<u8>,
        }

        impl $crate::payload::PayloadBody for $name {
            fn decode_body(body: &[u8]) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self { $field: body.to_vec() })
            }

            fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), $crate::error::EncodeError> {
                out.extend_from_slice(&self.$field);
                Ok(())
            }
        }
    };
}
pub(crate) use opaque_payload;

/// One payload of a chain, as it is on the wire.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                             body                              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// This payload's type (from the previous Next Payload field or the ISAKMP header).
    pub payload_type: PayloadType,
    /// The type of the payload that follows (NONE for the last).
    pub next_payload: PayloadType,
    /// The body: the octets after the generic header.
    pub body: &'a [u8],
    /// The whole payload, generic header included.
    pub bytes: &'a [u8],
}

impl RawPayload<'_> {
    /// Decodes the body according to the payload type.
    pub fn decode(&self) -> Result<Payload, DecodeError> {
        Payload::decode(self.payload_type, self.body)
    }
}

/// Walks a payload chain without copying.
///
/// Yields each payload, or one error and then nothing. After the last payload (Next Payload
/// NONE), [`RawPayloads::trailing`] holds whatever follows it: nothing in a well-formed
/// plaintext message, encryption padding in a decrypted one.
#[derive(Debug, Clone)]
pub struct RawPayloads<'a> {
    next: PayloadType,
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RawPayloads<'a> {
    /// Starts a chain whose first payload has type `first` (the ISAKMP header's Next
    /// Payload) and which occupies `data`.
    pub fn new(first: PayloadType, data: &'a [u8]) -> Self {
        Self {
            next: first,
            rest: data,
            failed: false,
        }
    }

    /// The octets after the last payload consumed so far.
    pub fn trailing(&self) -> &'a [u8] {
        self.rest
    }

    fn next_payload(&mut self) -> Result<RawPayload<'a>, DecodeError> {
        let payload_type = self.next;
        let overrun = |length| DecodeError::PayloadOverrun {
            payload_type,
            length,
            available: self.rest.len(),
        };
        let mut r = Reader::new(self.rest);
        let (Ok(next), Ok(_reserved), Ok(length)) =
            (r.u8("next payload"), r.u8("reserved"), r.u16("length"))
        else {
            return Err(overrun(0));
        };
        if usize::from(length) < GENERIC_HEADER_LEN {
            return Err(DecodeError::PayloadTooShort {
                payload_type,
                length,
            });
        }
        let (Some(bytes), Some(rest)) = (
            self.rest.get(..usize::from(length)),
            self.rest.get(usize::from(length)..),
        ) else {
            return Err(overrun(length));
        };
        let body = bytes.get(GENERIC_HEADER_LEN..).unwrap_or_default();
        self.rest = rest;
        self.next = PayloadType(next);
        Ok(RawPayload {
            payload_type,
            next_payload: PayloadType(next),
            body,
            bytes,
        })
    }
}

impl<'a> Iterator for RawPayloads<'a> {
    type Item = Result<RawPayload<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next == PayloadType::NONE {
            return None;
        }
        let item = self.next_payload();
        self.failed = item.is_err();
        Some(item)
    }
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Payload {
    /// Security Association (1).
    SecurityAssociation(SaPayload),
    /// Key Exchange (4).
    KeyExchange(KePayload),
    /// Identification (5).
    Identification(IdPayload),
    /// Certificate (6).
    Certificate(CertPayload),
    /// Certificate Request (7).
    CertificateRequest(CertRequestPayload),
    /// Hash (8).
    Hash(HashPayload),
    /// Signature (9).
    Signature(SigPayload),
    /// Nonce (10).
    Nonce(NoncePayload),
    /// Notification (11).
    Notification(NotifyPayload),
    /// Delete (12).
    Delete(DeletePayload),
    /// Vendor ID (13).
    VendorId(VendorIdPayload),
    /// NAT-D, RFC 3947 numbering (20).
    NatD(NatDPayload),
    /// NAT-D, nat-t drafts 00–03 numbering (130).
    NatDDraft(NatDPayload),
    /// NAT-OA, RFC 3947 numbering (21).
    NatOa(NatOaPayload),
    /// NAT-OA, nat-t drafts 00–03 numbering (131).
    NatOaDraft(NatOaPayload),
    /// GSS-API token (129, Kerberos authentication).
    Gss(GssPayload),
    /// IKE fragment (132, Cisco/Microsoft).
    Fragment(FragmentPayload),
    /// A payload type this crate does not decode, kept as its raw body.
    Unknown {
        /// The payload type.
        payload_type: PayloadType,
        /// The body, after the generic header.
        body: Vec<u8>,
    },
}

/// Whether [`Payload::decode`] decodes `t` into a typed variant (or rejects it).
fn is_decoded_type(t: PayloadType) -> bool {
    matches!(t.0, 0..=13 | 20 | 21 | 129..=132)
}

impl Payload {
    /// Decodes a payload body of type `payload_type`.
    pub fn decode(payload_type: PayloadType, body: &[u8]) -> Result<Self, DecodeError> {
        Ok(match payload_type {
            PayloadType::SECURITY_ASSOCIATION => {
                Self::SecurityAssociation(SaPayload::decode_body(body)?)
            }
            PayloadType::KEY_EXCHANGE => Self::KeyExchange(KePayload::decode_body(body)?),
            PayloadType::IDENTIFICATION => Self::Identification(IdPayload::decode_body(body)?),
            PayloadType::CERTIFICATE => Self::Certificate(CertPayload::decode_body(body)?),
            PayloadType::CERTIFICATE_REQUEST => {
                Self::CertificateRequest(CertRequestPayload::decode_body(body)?)
            }
            PayloadType::HASH => Self::Hash(HashPayload::decode_body(body)?),
            PayloadType::SIGNATURE => Self::Signature(SigPayload::decode_body(body)?),
            PayloadType::NONCE => Self::Nonce(NoncePayload::decode_body(body)?),
            PayloadType::NOTIFICATION => Self::Notification(NotifyPayload::decode_body(body)?),
            PayloadType::DELETE => Self::Delete(DeletePayload::decode_body(body)?),
            PayloadType::VENDOR_ID => Self::VendorId(VendorIdPayload::decode_body(body)?),
            PayloadType::NAT_D => Self::NatD(NatDPayload::decode_body(body)?),
            PayloadType::NAT_D_DRAFT => Self::NatDDraft(NatDPayload::decode_body(body)?),
            PayloadType::NAT_OA => Self::NatOa(NatOaPayload::decode_body(body)?),
            PayloadType::NAT_OA_DRAFT => Self::NatOaDraft(NatOaPayload::decode_body(body)?),
            PayloadType::GSS => Self::Gss(GssPayload::decode_body(body)?),
            PayloadType::FRAGMENT => Self::Fragment(FragmentPayload::decode_body(body)?),
            t if is_decoded_type(t) => return Err(DecodeError::MisplacedPayload(t)),
            t => Self::Unknown {
                payload_type: t,
                body: body.to_vec(),
            },
        })
    }

    /// The payload type that goes into the previous Next Payload field.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::SecurityAssociation(_) => PayloadType::SECURITY_ASSOCIATION,
            Self::KeyExchange(_) => PayloadType::KEY_EXCHANGE,
            Self::Identification(_) => PayloadType::IDENTIFICATION,
            Self::Certificate(_) => PayloadType::CERTIFICATE,
            Self::CertificateRequest(_) => PayloadType::CERTIFICATE_REQUEST,
            Self::Hash(_) => PayloadType::HASH,
            Self::Signature(_) => PayloadType::SIGNATURE,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notification(_) => PayloadType::NOTIFICATION,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::NatD(_) => PayloadType::NAT_D,
            Self::NatDDraft(_) => PayloadType::NAT_D_DRAFT,
            Self::NatOa(_) => PayloadType::NAT_OA,
            Self::NatOaDraft(_) => PayloadType::NAT_OA_DRAFT,
            Self::Gss(_) => PayloadType::GSS,
            Self::Fragment(_) => PayloadType::FRAGMENT,
            Self::Unknown { payload_type, .. } => *payload_type,
        }
    }

    /// Appends the body (without generic header) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::SecurityAssociation(p) => p.encode_body(out),
            Self::KeyExchange(p) => p.encode_body(out),
            Self::Identification(p) => p.encode_body(out),
            Self::Certificate(p) => p.encode_body(out),
            Self::CertificateRequest(p) => p.encode_body(out),
            Self::Hash(p) => p.encode_body(out),
            Self::Signature(p) => p.encode_body(out),
            Self::Nonce(p) => p.encode_body(out),
            Self::Notification(p) => p.encode_body(out),
            Self::Delete(p) => p.encode_body(out),
            Self::VendorId(p) => p.encode_body(out),
            Self::NatD(p) | Self::NatDDraft(p) => p.encode_body(out),
            Self::NatOa(p) | Self::NatOaDraft(p) => p.encode_body(out),
            Self::Gss(p) => p.encode_body(out),
            Self::Fragment(p) => p.encode_body(out),
            Self::Unknown { payload_type, body } => {
                // Encoding a decodable type as raw bytes would not decode back to Unknown.
                if is_decoded_type(*payload_type) {
                    return Err(EncodeError::InvalidValue {
                        what: "unknown payload",
                        reason: "payload type has a typed variant",
                    });
                }
                out.extend_from_slice(body);
                Ok(())
            }
        }
    }

    /// Appends the payload with its generic header; `next_payload` is the type of the
    /// payload that follows (NONE for the last).
    pub fn encode(&self, next_payload: PayloadType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        codec::with_generic_header(out, next_payload.0, "payload length", |out| {
            self.encode_body(out)
        })
    }
}

/// Decodes a complete payload chain that must end exactly at the end of `data` (an
/// unencrypted message body).
pub fn decode_payloads(first: PayloadType, data: &[u8]) -> Result<Vec<Payload>, DecodeError> {
    let (payloads, trailing) = decode_payloads_padded(first, data)?;
    if trailing != 0 {
        return Err(DecodeError::TrailingData { len: trailing });
    }
    Ok(payloads)
}

/// Decodes a payload chain that may be followed by padding (a decrypted message body:
/// RFC 2409 pads to the cipher block size and the header length counts the padding).
/// Returns the payloads and the number of padding octets after the last one.
pub fn decode_payloads_padded(
    first: PayloadType,
    data: &[u8],
) -> Result<(Vec<Payload>, usize), DecodeError> {
    let mut chain = RawPayloads::new(first, data);
    let mut payloads = Vec::new();
    for raw in chain.by_ref() {
        payloads.push(raw?.decode()?);
    }
    Ok((payloads, chain.trailing().len()))
}

/// Appends `payloads` as a chain, filling in every Next Payload and Payload Length field.
/// Returns the type of the first payload (for the ISAKMP header; NONE if empty).
pub fn encode_payloads(
    payloads: &[Payload],
    out: &mut Vec<u8>,
) -> Result<PayloadType, EncodeError> {
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let next = iter.peek().map_or(PayloadType::NONE, |n| n.payload_type());
        p.encode(next, out)?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(n: &[u8]) -> Payload {
        Payload::Nonce(NoncePayload { nonce: n.to_vec() })
    }

    #[test]
    fn chain_encoding_links_next_payload_fields() {
        let payloads = vec![
            nonce(&[1, 2]),
            Payload::Hash(HashPayload { hash: vec![3] }),
            Payload::Unknown {
                payload_type: PayloadType(200),
                body: vec![],
            },
        ];
        let mut out = Vec::new();
        let first = encode_payloads(&payloads, &mut out).unwrap();
        assert_eq!(first, PayloadType::NONCE);
        assert_eq!(out, [8, 0, 0, 6, 1, 2, 200, 0, 0, 5, 3, 0, 0, 0, 4]);
        assert_eq!(decode_payloads(first, &out).unwrap(), payloads);
    }

    #[test]
    fn raw_payloads_expose_wire_bytes() {
        let data = [8, 0, 0, 6, 1, 2, 0, 0, 0, 5, 3];
        let raws: Vec<_> = RawPayloads::new(PayloadType::NONCE, &data)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(raws.len(), 2);
        assert_eq!(raws[0].bytes, &data[..6]);
        assert_eq!(raws[0].body, &[1, 2]);
        assert_eq!(raws[1].payload_type, PayloadType::HASH);
        assert_eq!(raws[1].next_payload, PayloadType::NONE);
    }

    #[test]
    fn rejects_payload_length_below_header_size() {
        assert_eq!(
            decode_payloads(PayloadType::NONCE, &[0, 0, 0, 3]),
            Err(DecodeError::PayloadTooShort {
                payload_type: PayloadType::NONCE,
                length: 3
            })
        );
    }

    #[test]
    fn rejects_payload_running_past_the_message() {
        assert_eq!(
            decode_payloads(PayloadType::NONCE, &[0, 0, 0, 9, 1]),
            Err(DecodeError::PayloadOverrun {
                payload_type: PayloadType::NONCE,
                length: 9,
                available: 5
            })
        );
    }

    #[test]
    fn rejects_chain_announcing_a_payload_after_the_end() {
        assert_eq!(
            decode_payloads(PayloadType::NONCE, &[8, 0, 0, 4]),
            Err(DecodeError::PayloadOverrun {
                payload_type: PayloadType::HASH,
                length: 0,
                available: 0
            })
        );
    }

    #[test]
    fn rejects_trailing_data_but_padded_decoding_reports_it() {
        let data = [0, 0, 0, 5, 7, 0, 0, 3];
        assert_eq!(
            decode_payloads(PayloadType::NONCE, &data),
            Err(DecodeError::TrailingData { len: 3 })
        );
        let (p, pad) = decode_payloads_padded(PayloadType::NONCE, &data).unwrap();
        assert_eq!((p, pad), (vec![nonce(&[7])], 3));
    }

    #[test]
    fn rejects_proposal_and_transform_outside_sa() {
        for t in [PayloadType::PROPOSAL, PayloadType::TRANSFORM] {
            assert_eq!(
                decode_payloads(t, &[0, 0, 0, 4]),
                Err(DecodeError::MisplacedPayload(t))
            );
        }
    }

    #[test]
    fn unknown_payload_types_round_trip_raw() {
        for t in [14u8, 15, 16, 128, 133, 255] {
            let data = [0, 0, 0, 7, 0xde, 0xad, 0x00];
            let p = decode_payloads(PayloadType(t), &data).unwrap();
            assert_eq!(
                p,
                vec![Payload::Unknown {
                    payload_type: PayloadType(t),
                    body: vec![0xde, 0xad, 0]
                }]
            );
            let mut out = Vec::new();
            encode_payloads(&p, &mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn refuses_to_encode_a_decodable_type_as_unknown() {
        let p = Payload::Unknown {
            payload_type: PayloadType::NONCE,
            body: vec![],
        };
        assert!(p.encode(PayloadType::NONE, &mut Vec::new()).is_err());
    }

    #[test]
    fn refuses_to_encode_payloads_over_64k() {
        let p = nonce(&vec![0; 65_532]);
        assert!(matches!(
            p.encode(PayloadType::NONE, &mut Vec::new()),
            Err(EncodeError::TooLong { .. })
        ));
        assert!(nonce(&vec![0; 65_531])
            .encode(PayloadType::NONE, &mut Vec::new())
            .is_ok());
    }

    #[test]
    fn ignores_reserved_octet_on_receipt_and_sends_zero() {
        let data = [0, 0xff, 0, 5, 9];
        let p = decode_payloads(PayloadType::NONCE, &data).unwrap();
        let mut out = Vec::new();
        encode_payloads(&p, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 5, 9]);
    }
}
