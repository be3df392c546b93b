//! The NAT Discovery payload (RFC 3947 §3.2), type 20, or 130 with nat-t drafts 00–03.
//!
//! The body is `HASH(CKY-I | CKY-R | IP | Port)` with the negotiated hash; computing and
//! comparing it is the engine's job. Which payload number to send depends on the
//! negotiated NAT-T version ([`crate::Payload::NatD`] vs [`crate::Payload::NatDDraft`]).
//! Drafts 04–08 used 15, which is GDOI's SAK; those arrive as unknown payloads and can be
//! decoded with [`crate::PayloadBody::decode_body`] when that version was negotiated.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A NAT-D payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !        Payload length         !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                 HASH of the address and port                  ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    NatDPayload {
        /// The hash of the address and port.
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{decode_payloads, encode_payloads, Payload};
    use crate::registry::PayloadType;

    /// NAT-D(192.168.0.1:500) of the regression vectors (protocols.md §6.2).
    const NAT_D: [u8; 20] = [
        0xcf, 0x25, 0x7a, 0xa9, 0xf7, 0x4d, 0x80, 0xfd, 0x95, 0x1b, 0x04, 0xd7, 0x4f, 0x16, 0xae,
        0x2e, 0x49, 0x3c, 0x21, 0xba,
    ];

    #[test]
    fn rfc_and_draft_numbers_decode_to_their_variants() {
        let p = vec![
            Payload::NatD(NatDPayload {
                hash: NAT_D.to_vec(),
            }),
            Payload::NatDDraft(NatDPayload {
                hash: NAT_D.to_vec(),
            }),
        ];
        let mut out = Vec::new();
        let first = encode_payloads(&p, &mut out).unwrap();
        assert_eq!(first, PayloadType(20));
        assert_eq!(out[0], 130);
        assert_eq!(decode_payloads(first, &out).unwrap(), p);
    }

    #[test]
    fn draft_04_to_08_numbers_stay_unknown() {
        let mut body = vec![0, 0, 0, 24];
        body.extend_from_slice(&NAT_D);
        let p = decode_payloads(PayloadType(15), &body).unwrap();
        assert!(matches!(p[0], Payload::Unknown { .. }));
    }
}
