//! The Security Association payload (RFC 2408 §3.4) with the IPsec DOI situation
//! (RFC 2407 §4.6.1).
//!
//! The situation's length depends on the DOI, so the proposals can only be found for DOIs
//! whose situation format is known: ISAKMP (0) and IPSEC (1), both a 4-octet bitmap. Other
//! DOIs fail with DOI-NOT-SUPPORTED. Labeled IPsec (SIT_SECRECY / SIT_INTEGRITY, which add
//! labeled-domain fields after the bitmap) fails with SITUATION-NOT-SUPPORTED, as in racoon.
//! Proposals are chained by their Next Payload fields (2, then 0 for the last) and must fill
//! the SA body exactly.

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::payload::proposal::ProposalPayload;
use crate::payload::PayloadBody;
use crate::registry::{Doi, PayloadType, Situation};

/// An SA payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                           Situation                           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Proposal payloads                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SaPayload {
    /// The DOI (IPSEC in practice; ISAKMP = generic phase-1 SA).
    pub doi: Doi,
    /// The situation bitmap (SIT_IDENTITY_ONLY in practice).
    pub situation: Situation,
    /// The proposals, in order.
    pub proposals: Vec<ProposalPayload>,
}

impl PayloadBody for SaPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let doi = Doi(r.u32("SA DOI")?);
        if doi != Doi::IPSEC && doi != Doi::ISAKMP {
            return Err(DecodeError::DoiNotSupported(doi));
        }
        let situation = Situation(r.u32("SA situation")?);
        if situation.0 & (Situation::SECRECY.0 | Situation::INTEGRITY.0) != 0 {
            return Err(DecodeError::SituationNotSupported(situation));
        }
        let mut proposals = Vec::new();
        while !r.is_empty() {
            let (proposal, next) = ProposalPayload::decode(&mut r)?;
            proposals.push(proposal);
            match next {
                PayloadType::PROPOSAL if !r.is_empty() => {}
                PayloadType::NONE if r.is_empty() => {}
                PayloadType::PROPOSAL => {
                    return Err(DecodeError::BadProposalSyntax(
                        "proposal announces another at the end of the SA payload",
                    ))
                }
                PayloadType::NONE => {
                    return Err(DecodeError::BadProposalSyntax(
                        "data after the last proposal of an SA payload",
                    ))
                }
                _ => {
                    return Err(DecodeError::BadProposalSyntax(
                        "proposal next payload is neither 2 nor 0",
                    ))
                }
            }
        }
        Ok(Self {
            doi,
            situation,
            proposals,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.doi.0.to_be_bytes());
        out.extend_from_slice(&self.situation.0.to_be_bytes());
        let mut iter = self.proposals.iter().peekable();
        while let Some(p) = iter.next() {
            let next = if iter.peek().is_some() {
                PayloadType::PROPOSAL
            } else {
                PayloadType::NONE
            };
            p.encode(next, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{DataAttribute, TransformPayload};
    use crate::registry::{
        AuthenticationMethod, EncryptionAlgorithm, GroupDescription, HashAlgorithm,
        IsakmpTransformId, LifeType, OakleyAttributeType as O, ProtocolId,
    };

    /// `SAi_b` of the real Check Point capture (protocols.md §6.1, MD5 case).
    const CHECK_POINT_SAI_B: &str = "00000001000000010000002c010100010000002401010000\
                                     80010001800200018003000180040002800b0001000c000400007080";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_check_point_phase1_sa() {
        let sa = SaPayload::decode_body(&hex(CHECK_POINT_SAI_B)).unwrap();
        assert_eq!(sa.doi, Doi::IPSEC);
        assert_eq!(sa.situation, Situation::IDENTITY_ONLY);
        let [p] = &sa.proposals[..] else {
            panic!("one proposal expected")
        };
        assert_eq!(
            (p.number, p.protocol_id, p.spi.len()),
            (1, ProtocolId::ISAKMP, 0)
        );
        let [t] = &p.transforms[..] else {
            panic!("one transform expected")
        };
        assert_eq!(t.isakmp_transform_id(), IsakmpTransformId::KEY_IKE);
        assert_eq!(
            t.attributes,
            vec![
                DataAttribute::basic(O::ENCRYPTION_ALGORITHM, EncryptionAlgorithm::DES_CBC),
                DataAttribute::basic(O::HASH_ALGORITHM, HashAlgorithm::MD5),
                DataAttribute::basic(
                    O::AUTHENTICATION_METHOD,
                    AuthenticationMethod::PRE_SHARED_KEY
                ),
                DataAttribute::basic(O::GROUP_DESCRIPTION, GroupDescription::MODP_1024),
                DataAttribute::basic(O::LIFE_TYPE, LifeType::SECONDS),
                DataAttribute::variable(O::LIFE_DURATION, vec![0, 0, 0x70, 0x80]),
            ]
        );
    }

    #[test]
    fn re_encodes_check_point_sa_to_identical_bytes() {
        let bytes = hex(CHECK_POINT_SAI_B);
        let sa = SaPayload::decode_body(&bytes).unwrap();
        assert_eq!(sa.body_bytes().unwrap(), bytes);
    }

    #[test]
    fn rejects_unknown_doi() {
        let mut b = hex(CHECK_POINT_SAI_B);
        b[3] = 7;
        assert_eq!(
            SaPayload::decode_body(&b),
            Err(DecodeError::DoiNotSupported(Doi(7)))
        );
    }

    #[test]
    fn rejects_labeled_situations() {
        let mut b = hex(CHECK_POINT_SAI_B);
        b[7] = 3;
        assert_eq!(
            SaPayload::decode_body(&b),
            Err(DecodeError::SituationNotSupported(Situation(3)))
        );
    }

    #[test]
    fn rejects_proposal_length_past_the_sa() {
        let mut b = hex(CHECK_POINT_SAI_B);
        b[11] = 0x2d;
        assert!(matches!(
            SaPayload::decode_body(&b),
            Err(DecodeError::BadProposalSyntax(_))
        ));
    }

    #[test]
    fn rejects_proposal_chain_inconsistent_with_sa_length() {
        let mut b = hex(CHECK_POINT_SAI_B);
        b[8] = 2; // announces a second proposal that is not there
        assert!(SaPayload::decode_body(&b).is_err());
        let mut b = hex(CHECK_POINT_SAI_B);
        b.extend_from_slice(&[0, 0, 0, 8, 2, 1, 0, 0]); // a second proposal nobody announced
        assert!(SaPayload::decode_body(&b).is_err());
        let mut b = hex(CHECK_POINT_SAI_B);
        b[8] = 3;
        assert!(SaPayload::decode_body(&b).is_err());
    }

    #[test]
    fn round_trips_or_proposals() {
        let t = TransformPayload {
            number: 1,
            transform_id: 3,
            attributes: vec![],
        };
        let p = |n| ProposalPayload {
            number: n,
            protocol_id: ProtocolId::ESP,
            spi: vec![1, 2, 3, 4],
            transforms: vec![t.clone()],
        };
        let sa = SaPayload {
            doi: Doi::IPSEC,
            situation: Situation::IDENTITY_ONLY,
            proposals: vec![p(1), p(2), p(2)],
        };
        let bytes = sa.body_bytes().unwrap();
        assert_eq!(SaPayload::decode_body(&bytes).unwrap(), sa);
    }
}
