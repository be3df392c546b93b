//! The Notification payload (RFC 2408 §3.14).
//!
//! Decoding checks that the SPI fits in the payload; the notification data is kept as
//! octets because its format depends on the type (RESPONDER-LIFETIME carries data
//! attributes, see [`crate::payload::decode_attributes`]; R-U-THERE a 4-octet sequence
//! number; Windows prepends a Quick Mode message ID). Interpreting it is the engine's job.

use crate::codec::{len_u8, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;
use crate::registry::{Doi, NotifyType, PayloadType, ProtocolId};

/// A Notification payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Protocol-ID  !   SPI Size    !      Notify Message Type      !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                Security Parameter Index (SPI)                 ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Notification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotifyPayload {
    /// DOI (IPSEC, or 0 for ISAKMP-level notifications).
    pub doi: Doi,
    /// Protocol-ID of the SA the notification is about.
    pub protocol_id: ProtocolId,
    /// SPI (16 octets CKY-I|CKY-R for ISAKMP SAs, 4 for IPsec SAs, or empty).
    pub spi: Vec<u8>,
    /// Notify Message Type.
    pub notify_type: NotifyType,
    /// Notification Data.
    pub data: Vec<u8>,
}

impl PayloadBody for NotifyPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let doi = Doi(r.u32("notify DOI")?);
        let protocol_id = ProtocolId(r.u8("notify protocol id")?);
        let spi_size = r.u8("notify SPI size")?;
        let notify_type = NotifyType(r.u16("notify message type")?);
        let spi = r
            .take(usize::from(spi_size), "notify SPI")
            .map_err(|_| DecodeError::Malformed {
                payload_type: PayloadType::NOTIFICATION,
                reason: "SPI size exceeds the payload",
            })?
            .to_vec();
        Ok(Self {
            doi,
            protocol_id,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let spi_size = len_u8(self.spi.len(), "notify SPI size")?;
        out.extend_from_slice(&self.doi.0.to_be_bytes());
        out.push(self.protocol_id.0);
        out.push(spi_size);
        out.extend_from_slice(&self.notify_type.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{decode_payloads, encode_payloads, Payload};

    /// The R-U-THERE payload of the regression vectors (protocols.md §6.2), generic header
    /// included.
    const R_U_THERE: &[u8] = &[
        0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x01, 0x01, 0x10, 0x8d, 0x28, 0x00, 0x11, 0x22,
        0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x00,
        0x00, 0x01,
    ];

    #[test]
    fn decodes_dpd_r_u_there() {
        let p = decode_payloads(PayloadType::NOTIFICATION, R_U_THERE).unwrap();
        let [Payload::Notification(n)] = &p[..] else {
            panic!("one notification expected: {p:?}")
        };
        assert_eq!(n.doi, Doi::IPSEC);
        assert_eq!(n.protocol_id, ProtocolId::ISAKMP);
        assert_eq!(n.notify_type, NotifyType::R_U_THERE);
        assert_eq!(n.spi.len(), 16);
        assert_eq!(n.spi[..8], [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        assert_eq!(n.data, [0, 0, 0, 1]);
        let mut out = Vec::new();
        encode_payloads(&p, &mut out).unwrap();
        assert_eq!(out, R_U_THERE);
    }

    #[test]
    fn rejects_spi_size_past_the_payload() {
        let mut body = R_U_THERE[4..].to_vec();
        body[5] = 21;
        assert!(matches!(
            NotifyPayload::decode_body(&body),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_body_shorter_than_fixed_fields() {
        assert!(NotifyPayload::decode_body(&R_U_THERE[4..11]).is_err());
    }

    #[test]
    fn keeps_private_notify_types() {
        let n = NotifyPayload {
            doi: Doi::ISAKMP,
            protocol_id: ProtocolId(0),
            spi: vec![],
            notify_type: NotifyType(40004),
            data: vec![1; 8],
        };
        let b = n.body_bytes().unwrap();
        assert_eq!(NotifyPayload::decode_body(&b).unwrap(), n);
    }
}
