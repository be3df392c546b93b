//! Property tests over arbitrary well-formed messages: encoding then decoding gives the same
//! value, re-encoding gives the same bytes, the zero-copy chain walker agrees with the owned
//! decoder, and mutated encodings decode or fail without panicking.

use isakmp::{
    Body, CertPayload, CertRequestPayload, CertificateEncoding, DataAttribute, DeletePayload, Doi,
    ExchangeType, Flags, FragmentFlags, FragmentPayload, GssPayload, HashPayload, IdData,
    IdPayload, IdType, KePayload, Message, NatDPayload, NatOaPayload, NoncePayload, NotifyPayload,
    NotifyType, Payload, PayloadType, ProposalPayload, ProtocolId, RawPayloads, SaPayload,
    SigPayload, Situation, TransformPayload, VendorIdPayload, HEADER_LEN,
};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn attribute() -> impl Strategy<Value = DataAttribute> {
    prop_oneof![
        (0..0x8000u16, any::<u16>()).prop_map(|(t, v)| DataAttribute::basic(t, v)),
        (0..0x8000u16, bytes(40)).prop_map(|(t, v)| DataAttribute::variable(t, v)),
    ]
}

fn transform() -> impl Strategy<Value = TransformPayload> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(attribute(), 0..6),
    )
        .prop_map(|(number, transform_id, attributes)| TransformPayload {
            number,
            transform_id,
            attributes,
        })
}

fn proposal() -> impl Strategy<Value = ProposalPayload> {
    (
        any::<u8>(),
        any::<u8>(),
        bytes(17),
        prop::collection::vec(transform(), 0..4),
    )
        .prop_map(|(number, protocol, spi, transforms)| ProposalPayload {
            number,
            protocol_id: ProtocolId(protocol),
            spi,
            transforms,
        })
}

fn sa() -> impl Strategy<Value = SaPayload> {
    (
        prop_oneof![Just(Doi::IPSEC), Just(Doi::ISAKMP)],
        any::<u32>(),
        prop::collection::vec(proposal(), 0..3),
    )
        .prop_map(|(doi, situation, proposals)| SaPayload {
            doi,
            // Labeled situations are rejected on decode (SITUATION-NOT-SUPPORTED).
            situation: Situation(situation & !0x6),
            proposals,
        })
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn id_data() -> impl Strategy<Value = IdData> {
    prop_oneof![
        v4().prop_map(IdData::Ipv4Addr),
        bytes(30).prop_map(IdData::Fqdn),
        bytes(30).prop_map(IdData::UserFqdn),
        (v4(), v4()).prop_map(|(address, mask)| IdData::Ipv4Subnet { address, mask }),
        v6().prop_map(IdData::Ipv6Addr),
        (v6(), v6()).prop_map(|(address, mask)| IdData::Ipv6Subnet { address, mask }),
        (v4(), v4()).prop_map(|(start, end)| IdData::Ipv4Range { start, end }),
        (v6(), v6()).prop_map(|(start, end)| IdData::Ipv6Range { start, end }),
        bytes(30).prop_map(IdData::DerAsn1Dn),
        bytes(30).prop_map(IdData::DerAsn1Gn),
        bytes(30).prop_map(IdData::KeyId),
        (prop_oneof![Just(0u8), 12u8..=255], bytes(30)).prop_map(|(t, data)| IdData::Other {
            id_type: IdType(t),
            data
        }),
    ]
}

fn nat_oa() -> impl Strategy<Value = NatOaPayload> {
    prop_oneof![
        v4().prop_map(NatOaPayload::Ipv4),
        v6().prop_map(NatOaPayload::Ipv6),
        (any::<u8>(), bytes(20))
            .prop_filter("typed address", |(t, _)| *t != 1 && *t != 5)
            .prop_map(|(t, data)| NatOaPayload::Other {
                id_type: IdType(t),
                data
            }),
    ]
}

fn delete() -> impl Strategy<Value = DeletePayload> {
    (any::<u32>(), any::<u8>(), 1u8..=16, 0usize..4).prop_flat_map(|(doi, proto, size, n)| {
        prop::collection::vec(prop::collection::vec(any::<u8>(), usize::from(size)), n).prop_map(
            move |spis| DeletePayload {
                doi: Doi(doi),
                protocol_id: ProtocolId(proto),
                spi_size: size,
                spis,
            },
        )
    })
}

fn unknown_type() -> impl Strategy<Value = PayloadType> {
    prop_oneof![14u8..=19, 22u8..=128, 133u8..=255].prop_map(PayloadType)
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa().prop_map(Payload::SecurityAssociation),
        bytes(64).prop_map(|d| Payload::KeyExchange(KePayload {
            key_exchange_data: d
        })),
        (any::<u8>(), any::<u16>(), id_data()).prop_map(|(protocol, port, data)| {
            Payload::Identification(IdPayload {
                protocol,
                port,
                data,
            })
        }),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| Payload::Certificate(CertPayload {
            encoding: CertificateEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, authority)| {
            Payload::CertificateRequest(CertRequestPayload {
                cert_type: CertificateEncoding(e),
                authority,
            })
        }),
        bytes(32).prop_map(|hash| Payload::Hash(HashPayload { hash })),
        bytes(64).prop_map(|signature| Payload::Signature(SigPayload { signature })),
        bytes(64).prop_map(|nonce| Payload::Nonce(NoncePayload { nonce })),
        (
            any::<u32>(),
            any::<u8>(),
            bytes(17),
            any::<u16>(),
            bytes(20)
        )
            .prop_map(
                |(doi, proto, spi, t, data)| Payload::Notification(NotifyPayload {
                    doi: Doi(doi),
                    protocol_id: ProtocolId(proto),
                    spi,
                    notify_type: NotifyType(t),
                    data,
                })
            ),
        delete().prop_map(Payload::Delete),
        bytes(24).prop_map(|vendor_id| Payload::VendorId(VendorIdPayload { vendor_id })),
        bytes(32).prop_map(|hash| Payload::NatD(NatDPayload { hash })),
        bytes(32).prop_map(|hash| Payload::NatDDraft(NatDPayload { hash })),
        nat_oa().prop_map(Payload::NatOa),
        nat_oa().prop_map(Payload::NatOaDraft),
        bytes(64).prop_map(|token| Payload::Gss(GssPayload { token })),
        (any::<u16>(), any::<u8>(), any::<u8>(), bytes(64)).prop_map(|(id, n, f, data)| {
            Payload::Fragment(FragmentPayload {
                fragment_id: id,
                fragment_number: n,
                flags: FragmentFlags(f),
                data,
            })
        }),
        (unknown_type(), bytes(32))
            .prop_map(|(payload_type, body)| Payload::Unknown { payload_type, body }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        3 => prop::collection::vec(payload(), 0..6).prop_map(Body::Payloads),
        1 => (any::<u8>(), bytes(64)).prop_map(|(np, ciphertext)| Body::Encrypted {
            next_payload: PayloadType(np),
            ciphertext
        }),
    ];
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        1u8..=255,
        0u8..8,
        any::<u32>(),
        body,
    )
        .prop_map(|(ci, cr, minor, exchange, flags, message_id, body)| {
            let encrypted = matches!(body, Body::Encrypted { .. });
            Message {
                initiator_cookie: ci,
                responder_cookie: cr,
                minor_version: minor,
                exchange_type: ExchangeType(exchange),
                // As decoded: E is set exactly when the body is encrypted.
                flags: Flags(flags).with(Flags::ENCRYPTION, encrypted),
                message_id,
                body,
            }
        })
}

proptest! {
    #[test]
    fn messages_round_trip_through_bytes(m in message()) {
        let bytes = m.to_bytes().unwrap();
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn raw_chain_walker_agrees_with_owned_decoder(payloads in prop::collection::vec(payload(), 0..6)) {
        let mut body = Vec::new();
        let first = isakmp::encode_payloads(&payloads, &mut body).unwrap();
        let mut chain = RawPayloads::new(first, &body);
        let raws: Vec<_> = chain.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert!(chain.trailing().is_empty());
        prop_assert_eq!(raws.concat_bytes(), body.clone());
        let decoded: Vec<Payload> = raws.iter().map(|r| r.decode().unwrap()).collect();
        prop_assert_eq!(decoded, payloads);
    }

    #[test]
    fn mutated_messages_decode_or_fail_without_panicking(
        m in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = m.to_bytes().unwrap();
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Ok(d) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&d.to_bytes().unwrap()).unwrap(), d);
        }
    }

    #[test]
    fn truncated_messages_fail(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = m.to_bytes().unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(Message::decode(&bytes[..n]).is_err());
        if n >= HEADER_LEN && !m.is_encrypted() {
            let mut fixed = bytes[..n].to_vec();
            fixed[24..28].copy_from_slice(&(n as u32).to_be_bytes());
            // A cut payload chain is an error unless the cut falls exactly after a payload
            // whose Next Payload is NONE, i.e. at the very end.
            prop_assert!(Message::decode(&fixed).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panicking(data in bytes(300)) {
        if let Ok(m) = Message::decode(&data) {
            // Not necessarily the same bytes: RESERVED octets are sent as zero.
            prop_assert_eq!(Message::decode(&m.to_bytes().unwrap()).unwrap(), m);
        }
    }
}

trait ConcatBytes {
    fn concat_bytes(&self) -> Vec<u8>;
}

impl ConcatBytes for Vec<isakmp::RawPayload<'_>> {
    fn concat_bytes(&self) -> Vec<u8> {
        self.iter().flat_map(|r| r.bytes.iter().copied()).collect()
    }
}
