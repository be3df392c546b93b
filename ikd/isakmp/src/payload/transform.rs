//! The Transform payload (RFC 2408 §3.6), which only appears inside a Proposal.
//!
//! The Transform ID is kept as a raw octet: its registry depends on the enclosing
//! proposal's Protocol-ID (KEY_IKE for ISAKMP, ESP/AH/IPCOMP transform IDs for phase 2); the
//! typed accessors name it for each. The attributes are decoded by
//! [`crate::payload::decode_attributes`] and must fill the transform exactly.

use crate::codec::{self, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::payload::attribute::{decode_attributes, encode_attributes, DataAttribute};
use crate::registry::{
    AhTransformId, EspTransformId, IpcompTransformId, IsakmpTransformId, PayloadType,
};

/// Length of a transform without attributes: generic header plus 4 octets.
pub(crate) const TRANSFORM_FIXED_LEN: usize = 8;

/// A Transform payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Transform #  !  Transform-Id !           RESERVED2           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                        SA Attributes                          ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// Next Payload is 3 (Transform) if another transform of the same proposal follows, else 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransformPayload {
    /// Transform #.
    pub number: u8,
    /// Transform-Id, in the registry of the proposal's protocol.
    pub transform_id: u8,
    /// The SA attributes.
    pub attributes: Vec<DataAttribute>,
}

impl TransformPayload {
    /// The Transform-Id of a PROTO_ISAKMP proposal.
    pub fn isakmp_transform_id(&self) -> IsakmpTransformId {
        IsakmpTransformId(self.transform_id)
    }

    /// The Transform-Id of a PROTO_IPSEC_ESP proposal.
    pub fn esp_transform_id(&self) -> EspTransformId {
        EspTransformId(self.transform_id)
    }

    /// The Transform-Id of a PROTO_IPSEC_AH proposal.
    pub fn ah_transform_id(&self) -> AhTransformId {
        AhTransformId(self.transform_id)
    }

    /// The Transform-Id of a PROTO_IPCOMP proposal.
    pub fn ipcomp_transform_id(&self) -> IpcompTransformId {
        IpcompTransformId(self.transform_id)
    }

    /// The first attribute of type `attribute_type`.
    pub fn attribute(&self, attribute_type: impl Into<u16>) -> Option<&DataAttribute> {
        let t = attribute_type.into();
        self.attributes.iter().find(|a| a.attribute_type == t)
    }

    /// Reads one transform (with its generic header) from the proposal body; returns it and
    /// its Next Payload field.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<(Self, PayloadType), DecodeError> {
        let syntax = |_| DecodeError::BadProposalSyntax("transform overruns its proposal");
        let next = PayloadType(r.u8("transform next payload").map_err(syntax)?);
        let _reserved = r.u8("transform reserved").map_err(syntax)?;
        let length = usize::from(r.u16("transform length").map_err(syntax)?);
        if length < TRANSFORM_FIXED_LEN {
            return Err(DecodeError::BadProposalSyntax(
                "transform length shorter than its fixed fields",
            ));
        }
        let mut body = Reader::new(r.take(length - 4, "transform").map_err(syntax)?);
        // The fixed fields fit: length >= 8 was checked above.
        let number = body.u8("transform #")?;
        let transform_id = body.u8("transform id")?;
        let _reserved2 = body.u16("transform reserved2")?;
        let attributes = decode_attributes(body.rest())?;
        Ok((
            Self {
                number,
                transform_id,
                attributes,
            },
            next,
        ))
    }

    /// Appends the transform with its generic header.
    pub(crate) fn encode(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        codec::with_generic_header(out, next.0, "transform length", |out| {
            out.extend_from_slice(&[self.number, self.transform_id, 0, 0]);
            encode_attributes(&self.attributes, out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{EspTransformId, IpsecAttributeType as I};

    /// The ESP AES-128 transform of the Quick Mode vector (protocols.md §6.2).
    const QM_TRANSFORM: &[u8] = &[
        0x00, 0x00, 0x00, 0x1c, 0x01, 0x0c, 0x00, 0x00, 0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x0e,
        0x10, 0x80, 0x04, 0x00, 0x01, 0x80, 0x05, 0x00, 0x02, 0x80, 0x06, 0x00, 0x80,
    ];

    #[test]
    fn decodes_esp_transform_with_attributes() {
        let mut r = Reader::new(QM_TRANSFORM);
        let (t, next) = TransformPayload::decode(&mut r).unwrap();
        assert!(r.is_empty());
        assert_eq!(next, PayloadType::NONE);
        assert_eq!(t.number, 1);
        assert_eq!(t.esp_transform_id(), EspTransformId::AES_CBC);
        assert_eq!(
            t.attribute(I::SA_LIFE_DURATION).and_then(|a| a.as_u64()),
            Some(3600)
        );
        assert_eq!(
            t.attribute(I::KEY_LENGTH).and_then(|a| a.as_u16()),
            Some(128)
        );
        let mut out = Vec::new();
        t.encode(PayloadType::NONE, &mut out).unwrap();
        assert_eq!(out, QM_TRANSFORM);
    }

    #[test]
    fn rejects_transform_shorter_than_fixed_fields() {
        let mut bytes = QM_TRANSFORM.to_vec();
        bytes[3] = 7;
        assert!(matches!(
            TransformPayload::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::BadProposalSyntax(_))
        ));
    }

    #[test]
    fn rejects_transform_longer_than_its_proposal() {
        let mut bytes = QM_TRANSFORM.to_vec();
        bytes[3] = 0x1d;
        assert!(matches!(
            TransformPayload::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::BadProposalSyntax(_))
        ));
    }

    #[test]
    fn rejects_attribute_crossing_the_transform_end() {
        let mut bytes = QM_TRANSFORM.to_vec();
        bytes[3] = 0x1a; // cuts the last TV attribute in half
        bytes.truncate(0x1a);
        assert!(matches!(
            TransformPayload::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::BadProposalSyntax(_))
        ));
    }
}
