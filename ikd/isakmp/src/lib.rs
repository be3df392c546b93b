//! ISAKMP wire format (RFC 2408 §3), the IPsec DOI encodings (RFC 2407 §4) and the IKEv1
//! extensions ikd speaks (NAT-T RFC 3947 and its drafts, DPD RFC 3706, Cisco/Microsoft IKE
//! fragmentation, the Kerberos GSS-API token payload).
//!
//! This crate converts between bytes and typed values, in both directions:
//!
//! * [`Header`] is a zero-copy view of the fixed 28-octet ISAKMP header, [`HeaderRepr`] its
//!   owned form.
//! * [`Payload`] is every payload body as an owned value; [`RawPayloads`] walks a payload
//!   chain without copying, so the engine can hash payloads exactly as they were received
//!   (`SAi_b`, `IDii_b`, "all bytes after HASH(1)").
//! * [`Message`] is a header plus a payload chain. An encrypted message keeps its body as
//!   opaque bytes; decrypting it and decoding the plaintext with [`decode_payloads_padded`]
//!   is the engine's job.
//! * [`registry`] holds the IANA registries as open newtypes: unknown values decode, are
//!   kept, and encode back unchanged.
//!
//! What it does not do: no I/O, no cryptography, no state across messages, and no semantic
//! checks (which payloads an exchange allows, whether a proposal is acceptable, nonce
//! lengths): those belong to the engine. Decoders check syntax only: every length against the
//! enclosing length, every count against the bytes present. They never panic and never
//! allocate more than the input size warrants; they return [`DecodeError`], which knows the
//! RFC 2408 §3.14.1 Notify type that describes it ([`DecodeError::notify_type`]).
//!
//! ```
//! use isakmp::{Body, ExchangeType, Flags, Message, NoncePayload, Payload};
//! use isakmp::payload::vendor_id::KnownVendorId;
//!
//! // HDR, VID, NONCE -->
//! let msg = Message {
//!     initiator_cookie: [1; 8],
//!     responder_cookie: [0; 8],
//!     minor_version: 0,
//!     exchange_type: ExchangeType::IDENTITY_PROTECTION,
//!     flags: Flags::default(),
//!     message_id: 0,
//!     body: Body::Payloads(vec![
//!         Payload::VendorId(KnownVendorId::Rfc3947.payload()),
//!         Payload::Nonce(NoncePayload { nonce: vec![7; 16] }),
//!     ]),
//! };
//! let bytes = msg.to_bytes()?; // every Next Payload and Length field is computed
//! assert_eq!(bytes.len(), 28 + 20 + 20);
//! assert_eq!(Message::decode(&bytes)?, msg);
//!
//! // A truncated datagram is a typed error that knows its Notify type.
//! let err = Message::decode(&bytes[..40]).unwrap_err();
//! assert_eq!(err.notify_type(), isakmp::NotifyType::UNEQUAL_PAYLOAD_LENGTHS);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
pub mod error;
pub mod header;
pub mod message;
pub mod payload;
pub mod registry;

pub use error::{DecodeError, EncodeError};
pub use header::{Flags, Header, HeaderRepr, HEADER_LEN};
pub use message::{Body, Message};
pub use payload::{
    decode_payloads, decode_payloads_padded, encode_payloads, AttributeValue, CertPayload,
    CertRequestPayload, DataAttribute, DeletePayload, FragmentFlags, FragmentPayload, GssPayload,
    HashPayload, IdData, IdPayload, KePayload, NatDPayload, NatOaPayload, NoncePayload,
    NotifyPayload, Payload, PayloadBody, ProposalPayload, RawPayload, RawPayloads, SaPayload,
    SigPayload, TransformPayload, VendorIdPayload,
};
pub use registry::*;
