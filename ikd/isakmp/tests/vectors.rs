//! Known-byte tests: messages hand-assembled from the captured and computed values in
//! `/work/shared/reference/protocols.md` §6, decoded, checked field by field, and re-encoded
//! to identical bytes; then every truncation and every corrupted length field of those
//! messages must give a typed error, never a panic.
//!
//! Provenance:
//! * §6.1 is a real Check Point FW-1 NG AI R54 aggressive-mode exchange (PSK "abc123"),
//!   published as payload bodies in ike-scan's `check-hash.c`: cookies, `SAi_b`, `g^xi`,
//!   `g^xr`, `Ni_b`, `Nr_b`, `IDir_b`, HASH_R. The generic headers, ISAKMP headers and the
//!   payload order (RFC 2409 §5.4: `HDR, SA, KE, Ni, IDii` / `HDR, SA, KE, Nr, IDir,
//!   HASH_R`) are assembled here; the responder's SA is assumed to echo the single
//!   proposal, and IDii (not in the capture) is ID_USER_FQDN "test".
//! * §6.2 is self-computed (`ikev1_vectors.py`): the Quick Mode 1 payloads after HASH(1)
//!   and the DPD R-U-THERE notification are given as wire bytes; the headers and HASH
//!   payloads around them are assembled here, in plaintext form (on the wire they are
//!   encrypted).

use isakmp::{
    AttributeValue, Body, DataAttribute, Doi, ExchangeType, Flags, IdData, IdType, Message,
    NotifyType, OakleyAttributeType, Payload, PayloadBody, PayloadType, ProtocolId, RawPayloads,
    Situation, HEADER_LEN,
};
use std::net::Ipv4Addr;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

// --- §6.1, MD5 case --------------------------------------------------------------------

const CKY_I_MD5: &str = "eac82ea45cbe59e6";
const CKY_R_MD5: &str = "6d08132c8abb6931";
const SAI_B_MD5: &str = "00000001000000010000002c01010001000000240101000080010001800200018003000180040002800b0001000c000400007080";
const G_XI_MD5: &str = "6f8c74c15bb4dd09b7af8d1c23e7b381a38dddcd4c5afb3b1335ff766f0267df8fdca0ea907ef4482d8164506817d10ba4aed8f108d32c1b082b91772df956bcd5f7a765759bada21c11f28429c48fcd7267be7b3aea96421528b9432110fff607a65b7c41091e5d1a10e143d4701147d7cfc211ba5853cf800d12a11d129724";
const G_XR_MD5: &str = "9c1e0e07828af45086a4eb559ad8dafb7d655bab38656609426653565ef7e332bed7212cf24a05048032240256a169a68ee304ca500abe073d150bc50239350446ab568132aebcf34acd25ce23b30d0de9f8e7a89c22ce0dec2dabf0409bc25f0988d5d956916dce220c630d2a1fda846667fdecb20b2dc2d5c5b8273a07095c";
const NI_B_MD5: &str = "64745a975dbcd95c2abf7d2eeeb93ac4633a03f1";
const NR_B_MD5: &str = "502c0b3872518fa1e7ff8f5a28a3d797f65e2cb1";
const IDIR_B: &str = "01000000ac100202";
const HASH_R_MD5: &str = "f995ec2968f695aeb1d4e4b437f49d26";

// --- §6.1, SHA1 case -------------------------------------------------------------------

const CKY_I_SHA1: &str = "efa6639971a91c08";
const CKY_R_SHA1: &str = "963c61ef1778b6c5";
const SAI_B_SHA1: &str = "00000001000000010000002c01010001000000240101000080010001800200028003000180040002800b0001000c000400007080";
const G_XI_SHA1: &str = "857209de96faf07bad57ff1aba648a2c61a6802e4db3ab54c5593fa8abd9b1304bbb0fe2b5ff5d63565c7d10c1073d22adbd51fb70fc4f35568ede01678f32b24a41940040f263964ee0a70fe8e43295a18390117fdf46d56d24d7d4b40987fe4a1bfe8a0d61205c42c76b2aab9dbf4c20505da02fa4759dc84c717c55f87b9f";
const G_XR_SHA1: &str = "6c5559243259d5293df34a766561b8ffa78a9f8ee03d8a05916aadeeba9997864e0cd712f2a08104366c5e48f391ee7ce7b0ac08c59b8001c888c9f0343fd7d7d2d1da8e672c4ff05a7dd3c4eb6adc09bec712128ed951f7fcde2c31431643eb04d5ffc0be68e17aa80168e9635cb6f4c80af8ea1432c2b095b25f3d79ac4e55";
const NI_B_SHA1: &str = "6d62656f72fd1c53cda7337d0612aeebe3529a09";
const NR_B_SHA1: &str = "8e83c48eb087b8276b4bb2976ea23bf426abde8f";
const HASH_R_SHA1: &str = "543ea42889c07b17390cc6f0440246c0148422df";

/// Aggressive Mode message 1, `HDR, SA, KE, Ni, IDii`, assembled by hand.
fn am1(cky_i: &str, sa: &str, g_xi: &str, ni: &str) -> Vec<u8> {
    hex(&[
        cky_i,
        "0000000000000000", // CKY-R: zero in the first message
        "01 10 04 00",      // np SA, version 1.0, Aggressive, no flags
        "00000000",         // Message ID
        "000000fc",         // length 252 = 28 + 56 + 132 + 24 + 12
        "04 00 0038",       // SA, np KE, 56 octets
        sa,
        "0a 00 0084", // KE, np NONCE, 132 octets
        g_xi,
        "05 00 0018", // NONCE, np ID, 24 octets
        ni,
        "00 00 000c",          // ID, last, 12 octets
        "03 00 0000 74657374", // ID_USER_FQDN "test" (assumed; not in the capture)
    ]
    .concat())
}

fn am1_md5() -> Vec<u8> {
    am1(CKY_I_MD5, SAI_B_MD5, G_XI_MD5, NI_B_MD5)
}

fn am1_sha1() -> Vec<u8> {
    am1(CKY_I_SHA1, SAI_B_SHA1, G_XI_SHA1, NI_B_SHA1)
}

/// Aggressive Mode message 2, `HDR, SA, KE, Nr, IDir, HASH_R`, assembled by hand.
fn am2(cky_i: &str, cky_r: &str, sa: &str, g_xr: &str, nr: &str, hash_r: &str) -> Vec<u8> {
    let hash_len = hash_r.len() / 2 + 4;
    let total = 28 + 56 + 132 + 24 + 12 + hash_len;
    hex(&[
        cky_i,
        cky_r,
        "01 10 04 00",
        "00000000",
        &format!("{total:08x}"),
        "04 00 0038",
        sa,
        "0a 00 0084",
        g_xr,
        "05 00 0018",
        nr,
        "08 00 000c", // ID, np HASH
        IDIR_B,
        &format!("00 00 {hash_len:04x}"),
        hash_r,
    ]
    .concat())
}

fn am2_md5() -> Vec<u8> {
    am2(
        CKY_I_MD5, CKY_R_MD5, SAI_B_MD5, G_XR_MD5, NR_B_MD5, HASH_R_MD5,
    )
}

fn am2_sha1() -> Vec<u8> {
    am2(
        CKY_I_SHA1,
        CKY_R_SHA1,
        SAI_B_SHA1,
        G_XR_SHA1,
        NR_B_SHA1,
        HASH_R_SHA1,
    )
}

// --- §6.2 ------------------------------------------------------------------------------

/// The Quick Mode 1 payloads after HASH(1), as given (np chain SA → NONCE → ID → ID).
const QM1_AFTER_HASH: &str = "0a00003400000001000000010000002801030401111111110000001c010c0000\
                              8001000180020e10800400018005000280060080050000144041424344454647\
                              48494a4b4c4d4e4f05000010040000000a000100ffffff000000001004000000\
                              0a000200ffffff00";
const QM_HASH1: &str = "251223e439521f22a04f53a9a294359d605a6c6b";

/// Quick Mode message 1, `HDR, HASH(1), SA, Ni, IDci, IDcr`, in plaintext form.
fn qm1() -> Vec<u8> {
    hex(&[
        "0011223344556677 8899aabbccddeeff",
        "08 10 20 00", // np HASH, version 1.0, Quick Mode, flags (E cleared: plaintext form)
        "01020304",    // Message ID
        "0000009c",    // 156 = 28 + 24 + 104
        "01 00 0018",  // HASH, np SA
        QM_HASH1,
        QM1_AFTER_HASH,
    ]
    .concat())
}

const R_U_THERE: &str = "000000200000000101108d2800112233445566778899aabbccddeeff00000001";

/// Informational `HDR, HASH(1), N(R-U-THERE)`, in plaintext form.
fn dpd_r_u_there() -> Vec<u8> {
    hex(&[
        "0011223344556677 8899aabbccddeeff",
        "08 10 05 00",
        "0a0b0c0d",
        "00000054", // 84 = 28 + 24 + 32
        "0b 00 0018",
        "2a9b7d9028236b87124d3c44a30514cfc2476604",
        R_U_THERE,
    ]
    .concat())
}

fn all_vectors() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("AM1 (Check Point, MD5)", am1_md5()),
        ("AM1 (Check Point, SHA1)", am1_sha1()),
        ("AM2 (Check Point, MD5)", am2_md5()),
        ("AM2 (Check Point, SHA1)", am2_sha1()),
        ("QM1 (§6.2)", qm1()),
        ("Informational R-U-THERE (§6.2)", dpd_r_u_there()),
    ]
}

// --- Field checks ----------------------------------------------------------------------

#[test]
fn check_point_aggressive_mode_1_decodes_field_by_field() {
    let m = Message::decode(&am1_md5()).unwrap();
    assert_eq!(m.initiator_cookie.to_vec(), hex(CKY_I_MD5));
    assert_eq!(m.responder_cookie, [0; 8]);
    assert_eq!(m.exchange_type, ExchangeType::AGGRESSIVE);
    assert_eq!((m.flags, m.message_id, m.minor_version), (Flags(0), 0, 0));
    let [Payload::SecurityAssociation(sa), Payload::KeyExchange(ke), Payload::Nonce(ni), Payload::Identification(id)] =
        m.payloads()
    else {
        panic!("unexpected payloads {:?}", m.payloads())
    };
    assert_eq!(
        (sa.doi, sa.situation),
        (Doi::IPSEC, Situation::IDENTITY_ONLY)
    );
    let t = &sa.proposals[0].transforms[0];
    assert_eq!(
        t.attribute(OakleyAttributeType::LIFE_DURATION)
            .and_then(DataAttribute::as_u64),
        Some(28800)
    );
    assert_eq!(ke.key_exchange_data, hex(G_XI_MD5));
    assert_eq!(ni.nonce, hex(NI_B_MD5));
    assert_eq!(id.data, IdData::UserFqdn(b"test".to_vec()));
}

#[test]
fn check_point_aggressive_mode_2_decodes_field_by_field() {
    for (bytes, cky_r, g_xr, nr, hash_r, hash_alg) in [
        (am2_md5(), CKY_R_MD5, G_XR_MD5, NR_B_MD5, HASH_R_MD5, 1u16),
        (am2_sha1(), CKY_R_SHA1, G_XR_SHA1, NR_B_SHA1, HASH_R_SHA1, 2),
    ] {
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.responder_cookie.to_vec(), hex(cky_r));
        let [Payload::SecurityAssociation(sa), Payload::KeyExchange(ke), Payload::Nonce(nr_p), Payload::Identification(id), Payload::Hash(h)] =
            m.payloads()
        else {
            panic!("unexpected payloads {:?}", m.payloads())
        };
        let p = &sa.proposals[0];
        assert_eq!((p.protocol_id, p.spi.len()), (ProtocolId::ISAKMP, 0));
        assert_eq!(
            p.transforms[0].attributes[1],
            DataAttribute {
                attribute_type: OakleyAttributeType::HASH_ALGORITHM.0,
                value: AttributeValue::Basic(hash_alg)
            }
        );
        assert_eq!(ke.key_exchange_data, hex(g_xr));
        assert_eq!(nr_p.nonce, hex(nr));
        assert_eq!(id.id_type(), IdType::IPV4_ADDR);
        assert_eq!(id.data, IdData::Ipv4Addr(Ipv4Addr::new(172, 16, 2, 2)));
        assert_eq!(h.hash, hex(hash_r));
    }
}

#[test]
fn raw_payload_bodies_are_the_hash_inputs_of_the_capture() {
    // HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b): the bodies the
    // engine hashes must be exactly the captured ones.
    let bytes = am2_md5();
    let raws: Vec<_> = RawPayloads::new(PayloadType::SECURITY_ASSOCIATION, &bytes[HEADER_LEN..])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(raws[0].body, hex(SAI_B_MD5));
    assert_eq!(raws[1].body, hex(G_XR_MD5));
    assert_eq!(raws[3].body, hex(IDIR_B));
    let sa = isakmp::SaPayload::decode_body(raws[0].body).unwrap();
    assert_eq!(sa.body_bytes().unwrap(), hex(SAI_B_MD5));
}

#[test]
fn quick_mode_1_decodes_and_exposes_bytes_after_hash() {
    let bytes = qm1();
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.exchange_type, ExchangeType::QUICK_MODE);
    assert_eq!(m.message_id, 0x01020304);
    let [Payload::Hash(h), Payload::SecurityAssociation(sa), Payload::Nonce(ni), Payload::Identification(idci), Payload::Identification(idcr)] =
        m.payloads()
    else {
        panic!("unexpected payloads {:?}", m.payloads())
    };
    assert_eq!(h.hash, hex(QM_HASH1));
    let p = &sa.proposals[0];
    assert_eq!(
        (p.protocol_id, p.spi.clone()),
        (ProtocolId::ESP, vec![0x11; 4])
    );
    assert_eq!(p.transforms[0].transform_id, 12); // ESP_AES-CBC
    assert_eq!(ni.nonce, (0x40..0x50).collect::<Vec<u8>>());
    assert_eq!(
        idci.data,
        IdData::Ipv4Subnet {
            address: Ipv4Addr::new(10, 0, 1, 0),
            mask: Ipv4Addr::new(255, 255, 255, 0)
        }
    );
    assert_eq!(
        idcr.data,
        IdData::Ipv4Subnet {
            address: Ipv4Addr::new(10, 0, 2, 0),
            mask: Ipv4Addr::new(255, 255, 255, 0)
        }
    );
    // HASH(1) = prf(SKEYID_a, M-ID | <all bytes after HASH>): the bytes after the first raw
    // payload are exactly the vector.
    let mut raws = RawPayloads::new(PayloadType::HASH, &bytes[HEADER_LEN..]);
    let hash = raws.next().unwrap().unwrap();
    let after = &bytes[HEADER_LEN + hash.bytes.len()..];
    assert_eq!(after, hex(QM1_AFTER_HASH));
    assert_eq!(
        isakmp::decode_payloads(hash.next_payload, after).unwrap(),
        m.payloads()[1..]
    );
}

#[test]
fn dpd_r_u_there_decodes() {
    let m = Message::decode(&dpd_r_u_there()).unwrap();
    assert_eq!(m.exchange_type, ExchangeType::INFORMATIONAL);
    let [Payload::Hash(_), Payload::Notification(n)] = m.payloads() else {
        panic!("unexpected payloads {:?}", m.payloads())
    };
    assert_eq!(n.notify_type, NotifyType::R_U_THERE);
    assert_eq!(n.spi, hex("00112233445566778899aabbccddeeff"));
    assert_eq!(n.data, [0, 0, 0, 1]);
}

#[test]
fn every_vector_re_encodes_to_identical_bytes() {
    for (name, bytes) in all_vectors() {
        let m = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.to_bytes().unwrap(), bytes, "{name}");
    }
}

#[test]
fn encrypted_form_keeps_the_body_opaque() {
    let mut bytes = qm1();
    bytes[19] = Flags::ENCRYPTION.0;
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(
        m.body,
        Body::Encrypted {
            next_payload: PayloadType::HASH,
            ciphertext: bytes[HEADER_LEN..].to_vec()
        }
    );
    assert_eq!(m.to_bytes().unwrap(), bytes);
    // The engine decodes the decrypted plaintext, which may carry padding.
    let mut plain = bytes[HEADER_LEN..].to_vec();
    plain.extend_from_slice(&[0, 0, 0, 3]);
    let (payloads, pad) = isakmp::decode_payloads_padded(PayloadType::HASH, &plain).unwrap();
    assert_eq!((payloads.len(), pad), (5, 4));
}

// --- Truncation and corruption ---------------------------------------------------------

/// Offsets of every length-like field of a well-formed plaintext message: the header Length,
/// each generic payload length, and inside SA payloads every proposal/transform length,
/// SPI size, transform count and TLV attribute length. Returned as (offset, width).
fn length_fields(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut fields = vec![(24, 4)];
    let mut off = HEADER_LEN;
    for raw in RawPayloads::new(PayloadType(bytes[16]), &bytes[HEADER_LEN..]) {
        let raw = raw.unwrap();
        fields.push((off + 2, 2));
        match raw.payload_type {
            PayloadType::SECURITY_ASSOCIATION => {
                let mut p = off + 4 + 8;
                while p < off + raw.bytes.len() {
                    let plen = usize::from(u16::from_be_bytes([bytes[p + 2], bytes[p + 3]]));
                    fields.extend([(p + 2, 2), (p + 6, 1), (p + 7, 1)]);
                    let mut t = p + 8 + usize::from(bytes[p + 6]);
                    while t < p + plen {
                        let tlen = usize::from(u16::from_be_bytes([bytes[t + 2], bytes[t + 3]]));
                        fields.push((t + 2, 2));
                        let mut a = t + 8;
                        while a < t + tlen {
                            if bytes[a] & 0x80 == 0 {
                                fields.push((a + 2, 2));
                                a += 4 + usize::from(u16::from_be_bytes([
                                    bytes[a + 2],
                                    bytes[a + 3],
                                ]));
                            } else {
                                a += 4;
                            }
                        }
                        t += tlen;
                    }
                    p += plen;
                }
            }
            PayloadType::NOTIFICATION => fields.push((off + 4 + 5, 1)),
            _ => {}
        }
        off += raw.bytes.len();
    }
    fields
}

#[test]
fn length_field_walker_finds_the_nested_fields() {
    // Header, 4 payloads, SA: 1 proposal (length, SPI size, count), 1 transform, 1 TLV.
    assert_eq!(length_fields(&am1_md5()).len(), 1 + 4 + 3 + 1 + 1);
}

#[test]
fn every_truncation_yields_a_typed_error() {
    for (name, bytes) in all_vectors() {
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            assert!(Message::decode(cut).is_err(), "{name}: prefix {n} decoded");
            if n >= HEADER_LEN {
                // Same cut, but with the header Length made consistent: the payload chain
                // itself must notice.
                let mut fixed = cut.to_vec();
                fixed[24..28].copy_from_slice(&(n as u32).to_be_bytes());
                let e = Message::decode(&fixed).expect_err(name);
                let _ = e.notify_type();
            }
        }
    }
}

#[test]
fn truncated_chain_maps_to_unequal_payload_lengths_or_malformed() {
    let bytes = am2_md5();
    let n = bytes.len() - 1;
    let mut fixed = bytes[..n].to_vec();
    fixed[24..28].copy_from_slice(&(n as u32).to_be_bytes());
    let e = Message::decode(&fixed).unwrap_err();
    assert_eq!(e.notify_type(), NotifyType::UNEQUAL_PAYLOAD_LENGTHS);
}

/// A corrupted length field must give a typed error, with exceptions the format cannot
/// detect: a generic payload length grown by exactly the length of the payload(s) after it
/// swallows them, and a Notify SPI size of 0 moves the SPI into the notification data; both
/// leave a different well-formed message (ISAKMP has no redundancy to notice). Such a
/// message must then be read exactly as the corrupted bytes say; nothing may be silently
/// repaired.
#[test]
fn every_corrupted_length_yields_a_typed_error_or_exactly_those_bytes() {
    let mut swallowed = 0;
    for (name, bytes) in all_vectors() {
        for (off, width) in length_fields(&bytes) {
            let original: u32 = bytes[off..off + width]
                .iter()
                .fold(0, |a, b| (a << 8) | u32::from(*b));
            let mut candidates: Vec<u32> = (0..=(original + 300)).collect();
            candidates.extend([0xff, 0xffff, 0xffff_ffff, original.saturating_mul(2)]);
            for v in candidates {
                if v == original || (width < 4 && v >= 1 << (8 * width)) {
                    continue;
                }
                let mut bad = bytes.clone();
                let be = v.to_be_bytes();
                bad[off..off + width].copy_from_slice(&be[4 - width..]);
                match Message::decode(&bad) {
                    Err(e) => {
                        let _ = e.notify_type();
                    }
                    Ok(m) => {
                        assert_eq!(m.to_bytes().unwrap(), bad, "{name}: length at {off} = {v}");
                        swallowed += 1;
                    }
                }
            }
        }
    }
    // E.g. AM1's KE length 132 + 24 swallows the Nonce header and body, and the ID payload
    // is then read as the nonce; any Notify SPI size up to 20 re-splits SPI and data.
    assert!(
        swallowed > 0 && swallowed < 64,
        "{swallowed} swallowing corruptions"
    );
}

#[test]
fn corrupted_lengths_map_to_the_expected_notify_types() {
    let bytes = am1_md5();
    let decode_with = |off: usize, v: &[u8]| {
        let mut b = bytes.clone();
        b[off..off + v.len()].copy_from_slice(v);
        Message::decode(&b).unwrap_err().notify_type()
    };
    // Header length.
    assert_eq!(
        decode_with(24, &[0, 0, 0, 0xfd]),
        NotifyType::UNEQUAL_PAYLOAD_LENGTHS
    );
    // SA payload length below the generic header.
    assert_eq!(decode_with(30, &[0, 3]), NotifyType::PAYLOAD_MALFORMED);
    // SA payload length past the message.
    assert_eq!(
        decode_with(30, &[0x10, 0]),
        NotifyType::UNEQUAL_PAYLOAD_LENGTHS
    );
    // Proposal length past the SA.
    assert_eq!(
        decode_with(28 + 4 + 8 + 2, &[0, 0x2d]),
        NotifyType::BAD_PROPOSAL_SYNTAX
    );
    // Transform count.
    assert_eq!(
        decode_with(28 + 4 + 8 + 7, &[2]),
        NotifyType::BAD_PROPOSAL_SYNTAX
    );
    // TLV attribute length (Life Duration) past the transform.
    assert_eq!(
        decode_with(28 + 56 - 6, &[0, 5]),
        NotifyType::BAD_PROPOSAL_SYNTAX
    );
    // Major version 2 (an IKEv2 packet).
    assert_eq!(decode_with(17, &[0x20]), NotifyType::INVALID_MAJOR_VERSION);
}

#[test]
fn every_single_byte_corruption_decodes_or_fails_without_panicking() {
    for (name, bytes) in all_vectors() {
        for off in 0..bytes.len() {
            for v in [0x00, 0x01, 0x03, 0x7f, 0x80, 0xff, bytes[off] ^ 0x01] {
                let mut bad = bytes.clone();
                bad[off] = v;
                match Message::decode(&bad) {
                    Ok(m) => {
                        let again = m.to_bytes().unwrap_or_else(|e| panic!("{name}@{off}: {e}"));
                        assert_eq!(Message::decode(&again).unwrap(), m, "{name}@{off}={v}");
                    }
                    Err(e) => {
                        let _ = e.notify_type();
                    }
                }
            }
        }
    }
}
