//! The Delete payload (RFC 2408 §3.15).
//!
//! Decoding checks that "# of SPIs" times "SPI Size" is exactly the rest of the payload,
//! and rejects a zero SPI size with a non-zero count (it would describe 65535 empty SPIs
//! in no octets). Which SAs the SPIs name is the engine's business.

use crate::codec::{len_u16, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;
use crate::registry::{Doi, PayloadType, ProtocolId};

/// A Delete payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Protocol-Id  !   SPI Size    !           # of SPIs           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~               Security Parameter Index(es) (SPI)              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeletePayload {
    /// DOI.
    pub doi: Doi,
    /// Protocol-Id of the SAs (ISAKMP: SPI = CKY-I|CKY-R, 16 octets; AH/ESP: 4 octets).
    pub protocol_id: ProtocolId,
    /// SPI Size; every SPI must have this length.
    pub spi_size: u8,
    /// The SPIs.
    pub spis: Vec<Vec<u8>>,
}

impl PayloadBody for DeletePayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let doi = Doi(r.u32("delete DOI")?);
        let protocol_id = ProtocolId(r.u8("delete protocol id")?);
        let spi_size = r.u8("delete SPI size")?;
        let count = usize::from(r.u16("# of SPIs")?);
        let malformed = |reason| DecodeError::Malformed {
            payload_type: PayloadType::DELETE,
            reason,
        };
        if spi_size == 0 && count != 0 {
            return Err(malformed("SPI size 0 with a non-zero # of SPIs"));
        }
        if count * usize::from(spi_size) != r.remaining() {
            return Err(malformed(
                "# of SPIs times SPI size differs from the payload",
            ));
        }
        let spis = r
            .rest()
            .chunks_exact(usize::from(spi_size.max(1)))
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            doi,
            protocol_id,
            spi_size,
            spis,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let count = len_u16(self.spis.len(), "# of SPIs")?;
        if self
            .spis
            .iter()
            .any(|s| s.len() != usize::from(self.spi_size))
        {
            return Err(EncodeError::InvalidValue {
                what: "delete SPI",
                reason: "length differs from SPI size",
            });
        }
        if self.spi_size == 0 && count != 0 {
            return Err(EncodeError::InvalidValue {
                what: "delete SPI size",
                reason: "0 with a non-zero # of SPIs",
            });
        }
        out.extend_from_slice(&self.doi.0.to_be_bytes());
        out.push(self.protocol_id.0);
        out.push(self.spi_size);
        out.extend_from_slice(&count.to_be_bytes());
        self.spis.iter().for_each(|s| out.extend_from_slice(s));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_two_esp_spis() {
        let body = [0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8];
        let d = DeletePayload::decode_body(&body).unwrap();
        assert_eq!(d.protocol_id, ProtocolId::ESP);
        assert_eq!(d.spis, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]);
        assert_eq!(d.body_bytes().unwrap(), body);
    }

    #[test]
    fn decodes_isakmp_sa_delete() {
        let mut body = vec![0, 0, 0, 1, 1, 16, 0, 1];
        body.extend_from_slice(&[0xab; 16]);
        let d = DeletePayload::decode_body(&body).unwrap();
        assert_eq!(d.spis, vec![vec![0xab; 16]]);
    }

    #[test]
    fn rejects_spi_count_inconsistent_with_length() {
        for (count, extra) in [(3u8, 0usize), (1, 0), (2, 1)] {
            let mut body = vec![0, 0, 0, 1, 3, 4, 0, count];
            body.resize(16 + extra, 0);
            assert!(matches!(
                DeletePayload::decode_body(&body),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn rejects_many_empty_spis() {
        assert!(DeletePayload::decode_body(&[0, 0, 0, 1, 3, 0, 0xff, 0xff]).is_err());
        let d = DeletePayload::decode_body(&[0, 0, 0, 1, 3, 0, 0, 0]).unwrap();
        assert!(d.spis.is_empty());
    }

    #[test]
    fn refuses_spis_of_the_wrong_size() {
        let d = DeletePayload {
            doi: Doi::IPSEC,
            protocol_id: ProtocolId::ESP,
            spi_size: 4,
            spis: vec![vec![1, 2, 3]],
        };
        assert!(d.body_bytes().is_err());
    }
}
