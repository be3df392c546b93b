//! The Proposal payload (RFC 2408 §3.5), which only appears inside an SA payload.
//!
//! Decoding checks the proposal against its SA, the SPI against the proposal, each
//! transform against the proposal, and the "# of Transforms" field against the transforms
//! actually present, including their Next Payload fields (3 for all but the last, 0 for the
//! last). Whether several proposals with the same number form a valid AND-bundle is the
//! engine's business.

use crate::codec::{self, len_u8, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::payload::transform::TransformPayload;
use crate::registry::{PayloadType, ProtocolId};

/// Length of a proposal without SPI and transforms: generic header plus 4 octets.
const PROPOSAL_FIXED_LEN: usize = 8;

/// A Proposal payload with its transforms.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Proposal #   !  Protocol-Id  !    SPI Size   !# of Transforms!
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                        SPI (variable)                         !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                        Transforms                             ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// The Payload Length covers the transforms. Next Payload is 2 (Proposal) if another
/// proposal of the same SA follows, else 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProposalPayload {
    /// Proposal # (equal numbers = AND, different = OR, RFC 2408 §4.2).
    pub number: u8,
    /// Protocol-Id.
    pub protocol_id: ProtocolId,
    /// The SPI (empty in phase 1; 4 octets for AH/ESP; a 2- or 4-octet CPI for IPCOMP).
    pub spi: Vec<u8>,
    /// The transforms, in order of preference.
    pub transforms: Vec<TransformPayload>,
}

impl ProposalPayload {
    /// Reads one proposal (with its generic header) from the SA body; returns it and its
    /// Next Payload field.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<(Self, PayloadType), DecodeError> {
        let syntax = |_| DecodeError::BadProposalSyntax("proposal overruns its SA payload");
        let next = PayloadType(r.u8("proposal next payload").map_err(syntax)?);
        let _reserved = r.u8("proposal reserved").map_err(syntax)?;
        let length = usize::from(r.u16("proposal length").map_err(syntax)?);
        if length < PROPOSAL_FIXED_LEN {
            return Err(DecodeError::BadProposalSyntax(
                "proposal length shorter than its fixed fields",
            ));
        }
        let mut body = Reader::new(r.take(length - 4, "proposal").map_err(syntax)?);
        // The fixed fields fit: length >= 8 was checked above.
        let number = body.u8("proposal #")?;
        let protocol_id = ProtocolId(body.u8("protocol id")?);
        let spi_size = body.u8("spi size")?;
        let count = body.u8("# of transforms")?;
        let spi = body
            .take(usize::from(spi_size), "spi")
            .map_err(|_| DecodeError::BadProposalSyntax("SPI overruns its proposal"))?
            .to_vec();
        let mut transforms = Vec::new();
        for i in 0..count {
            if body.is_empty() {
                return Err(DecodeError::BadProposalSyntax(
                    "fewer transforms than # of Transforms",
                ));
            }
            let (transform, t_next) = TransformPayload::decode(&mut body)?;
            let expected = if i + 1 == count {
                PayloadType::NONE
            } else {
                PayloadType::TRANSFORM
            };
            if t_next != expected {
                return Err(DecodeError::BadProposalSyntax(
                    "transform next payload is not 3 before the last transform and 0 after it",
                ));
            }
            transforms.push(transform);
        }
        if !body.is_empty() {
            return Err(DecodeError::BadProposalSyntax(
                "data after the last transform of a proposal",
            ));
        }
        Ok((
            Self {
                number,
                protocol_id,
                spi,
                transforms,
            },
            next,
        ))
    }

    /// Appends the proposal with its generic header and transforms.
    pub(crate) fn encode(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let spi_size = len_u8(self.spi.len(), "proposal SPI size")?;
        let count = len_u8(self.transforms.len(), "# of transforms")?;
        codec::with_generic_header(out, next.0, "proposal length", |out| {
            out.extend_from_slice(&[self.number, self.protocol_id.0, spi_size, count]);
            out.extend_from_slice(&self.spi);
            let mut iter = self.transforms.iter().peekable();
            while let Some(t) = iter.next() {
                let next = if iter.peek().is_some() {
                    PayloadType::TRANSFORM
                } else {
                    PayloadType::NONE
                };
                t.encode(next, out)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::DataAttribute;

    /// The proposal of the Quick Mode vector (protocols.md §6.2): P#1 ESP, SPI 11111111,
    /// one ESP AES-CBC transform.
    const QM_PROPOSAL: &[u8] = &[
        0x00, 0x00, 0x00, 0x28, 0x01, 0x03, 0x04, 0x01, 0x11, 0x11, 0x11, 0x11, 0x00, 0x00, 0x00,
        0x1c, 0x01, 0x0c, 0x00, 0x00, 0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x0e, 0x10, 0x80, 0x04,
        0x00, 0x01, 0x80, 0x05, 0x00, 0x02, 0x80, 0x06, 0x00, 0x80,
    ];

    fn decode(bytes: &[u8]) -> Result<ProposalPayload, DecodeError> {
        ProposalPayload::decode(&mut Reader::new(bytes)).map(|(p, _)| p)
    }

    #[test]
    fn decodes_esp_proposal_with_spi() {
        let p = decode(QM_PROPOSAL).unwrap();
        assert_eq!(p.number, 1);
        assert_eq!(p.protocol_id, ProtocolId::ESP);
        assert_eq!(p.spi, [0x11; 4]);
        assert_eq!(p.transforms.len(), 1);
        let mut out = Vec::new();
        p.encode(PayloadType::NONE, &mut out).unwrap();
        assert_eq!(out, QM_PROPOSAL);
    }

    #[test]
    fn rejects_transform_count_above_transforms_present() {
        let mut b = QM_PROPOSAL.to_vec();
        b[7] = 2;
        assert!(matches!(decode(&b), Err(DecodeError::BadProposalSyntax(_))));
    }

    #[test]
    fn rejects_transform_count_below_transforms_present() {
        let mut b = QM_PROPOSAL.to_vec();
        b[7] = 0;
        assert!(matches!(decode(&b), Err(DecodeError::BadProposalSyntax(_))));
    }

    #[test]
    fn rejects_spi_size_past_the_proposal() {
        let mut b = QM_PROPOSAL.to_vec();
        b[6] = 0xff;
        assert!(matches!(decode(&b), Err(DecodeError::BadProposalSyntax(_))));
    }

    #[test]
    fn rejects_last_transform_announcing_another() {
        let mut b = QM_PROPOSAL.to_vec();
        b[12] = 3;
        assert!(matches!(decode(&b), Err(DecodeError::BadProposalSyntax(_))));
    }

    #[test]
    fn encodes_transform_chain_with_3_then_0() {
        let t = |n| TransformPayload {
            number: n,
            transform_id: 1,
            attributes: vec![DataAttribute::basic(1u16, 1u16)],
        };
        let p = ProposalPayload {
            number: 1,
            protocol_id: ProtocolId::ISAKMP,
            spi: vec![],
            transforms: vec![t(1), t(2)],
        };
        let mut out = Vec::new();
        p.encode(PayloadType::PROPOSAL, &mut out).unwrap();
        assert_eq!(out[0], 2);
        assert_eq!(&out[2..4], &[0, 8 + 2 * 12]);
        assert_eq!(out[8], 3);
        assert_eq!(out[20], 0);
        let (back, next) = ProposalPayload::decode(&mut Reader::new(&out)).unwrap();
        assert_eq!((back, next), (p, PayloadType::PROPOSAL));
    }

    #[test]
    fn refuses_more_than_255_transforms() {
        let t = TransformPayload {
            number: 1,
            transform_id: 1,
            attributes: vec![],
        };
        let p = ProposalPayload {
            number: 1,
            protocol_id: ProtocolId::ESP,
            spi: vec![],
            transforms: vec![t; 256],
        };
        assert!(p.encode(PayloadType::NONE, &mut Vec::new()).is_err());
    }
}
