//! Data attributes (RFC 2408 §3.3): the TV and TLV attributes inside transforms (and inside
//! some notification data, e.g. RESPONDER-LIFETIME).
//!
//! Attribute types are kept as raw 15-bit numbers because their meaning depends on where they
//! appear: [`DataAttribute::oakley_type`] names them for phase-1 transforms,
//! [`DataAttribute::ipsec_type`] for phase-2 transforms. Which form (TV or TLV) an attribute
//! must use, and which values are acceptable, is the engine's business: both forms decode and
//! each re-encodes in the form it arrived in.

use crate::codec::{len_u16, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::registry::{IpsecAttributeType, OakleyAttributeType};

/// The Attribute Format bit: set for TV (basic), clear for TLV (variable).
const AF_TV: u16 = 0x8000;

/// The value of a data attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// AF=1 (TV): a 16-bit value in the attribute itself.
    Basic(u16),
    /// AF=0 (TLV): a value of 0–65535 octets.
    Variable(Vec<u8>),
}

/// A data attribute.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !A!       Attribute Type        !    AF=0  Attribute Length     !
/// !F!                             !    AF=1  Attribute Value      !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// .                   AF=0  Attribute Value                       .
/// .                   AF=1  Not Transmitted                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataAttribute {
    /// The attribute type (15 bits; the AF bit is derived from the value).
    pub attribute_type: u16,
    /// The value.
    pub value: AttributeValue,
}

impl DataAttribute {
    /// A TV attribute.
    pub fn basic(attribute_type: impl Into<u16>, value: impl Into<u16>) -> Self {
        Self {
            attribute_type: attribute_type.into(),
            value: AttributeValue::Basic(value.into()),
        }
    }

    /// A TLV attribute.
    pub fn variable(attribute_type: impl Into<u16>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            attribute_type: attribute_type.into(),
            value: AttributeValue::Variable(value.into()),
        }
    }

    /// The type named as an IKE (phase-1) attribute class.
    pub fn oakley_type(&self) -> OakleyAttributeType {
        OakleyAttributeType(self.attribute_type)
    }

    /// The type named as an IPsec (phase-2) SA attribute.
    pub fn ipsec_type(&self) -> IpsecAttributeType {
        IpsecAttributeType(self.attribute_type)
    }

    /// The value as an integer: a TV value, or a TLV value of at most 8 octets read
    /// big-endian (a Life Duration may come in either form).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttributeValue::Basic(v) => Some(u64::from(*v)),
            AttributeValue::Variable(bytes) if bytes.len() <= 8 => {
                Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
            AttributeValue::Variable(_) => None,
        }
    }

    /// The 16-bit value of a TV attribute.
    pub fn as_u16(&self) -> Option<u16> {
        match self.value {
            AttributeValue::Basic(v) => Some(v),
            AttributeValue::Variable(_) => None,
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let malformed = |_| DecodeError::BadProposalSyntax("data attribute overruns its container");
        let word = r.u16("attribute type").map_err(malformed)?;
        let attribute_type = word & !AF_TV;
        let value = if word & AF_TV != 0 {
            AttributeValue::Basic(r.u16("attribute value").map_err(malformed)?)
        } else {
            let len = r.u16("attribute length").map_err(malformed)?;
            AttributeValue::Variable(
                r.take(usize::from(len), "attribute value")
                    .map_err(malformed)?
                    .to_vec(),
            )
        };
        Ok(Self {
            attribute_type,
            value,
        })
    }

    /// Appends the attribute to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.attribute_type & AF_TV != 0 {
            return Err(EncodeError::InvalidValue {
                what: "attribute type",
                reason: "does not fit in 15 bits",
            });
        }
        match &self.value {
            AttributeValue::Basic(v) => {
                out.extend_from_slice(&(self.attribute_type | AF_TV).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttributeValue::Variable(bytes) => {
                let len = len_u16(bytes.len(), "attribute length")?;
                out.extend_from_slice(&self.attribute_type.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
        Ok(())
    }
}

/// Decodes a sequence of attributes that fills `data` exactly.
pub fn decode_attributes(data: &[u8]) -> Result<Vec<DataAttribute>, DecodeError> {
    let mut r = Reader::new(data);
    let mut attributes = Vec::new();
    while !r.is_empty() {
        attributes.push(DataAttribute::decode(&mut r)?);
    }
    Ok(attributes)
}

/// Appends `attributes` to `out`.
pub fn encode_attributes(
    attributes: &[DataAttribute],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    attributes.iter().try_for_each(|a| a.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{LifeType, OakleyAttributeType as O};

    /// The attributes of the Check Point phase-1 transform (protocols.md §2.3): DES, MD5,
    /// PSK, group 2, life type seconds, life duration 28800 as a 4-octet TLV.
    const CHECK_POINT_ATTRS: &[u8] = &[
        0x80, 0x01, 0x00, 0x01, 0x80, 0x02, 0x00, 0x01, 0x80, 0x03, 0x00, 0x01, 0x80, 0x04, 0x00,
        0x02, 0x80, 0x0b, 0x00, 0x01, 0x00, 0x0c, 0x00, 0x04, 0x00, 0x00, 0x70, 0x80,
    ];

    #[test]
    fn decodes_tv_and_tlv_attributes() {
        let attrs = decode_attributes(CHECK_POINT_ATTRS).unwrap();
        assert_eq!(attrs.len(), 6);
        assert_eq!(
            attrs[0],
            DataAttribute::basic(O::ENCRYPTION_ALGORITHM, 1u16)
        );
        assert_eq!(attrs[4].oakley_type(), O::LIFE_TYPE);
        assert_eq!(attrs[4].as_u16(), Some(LifeType::SECONDS.0));
        assert_eq!(attrs[5].oakley_type(), O::LIFE_DURATION);
        assert_eq!(
            attrs[5].value,
            AttributeValue::Variable(vec![0, 0, 0x70, 0x80])
        );
        assert_eq!(attrs[5].as_u64(), Some(28800));
    }

    #[test]
    fn re_encodes_each_attribute_in_its_received_form() {
        let attrs = decode_attributes(CHECK_POINT_ATTRS).unwrap();
        let mut out = Vec::new();
        encode_attributes(&attrs, &mut out).unwrap();
        assert_eq!(out, CHECK_POINT_ATTRS);
    }

    #[test]
    fn rejects_truncated_attribute() {
        for n in 1..CHECK_POINT_ATTRS.len() {
            if n % 4 == 0 {
                continue; // a whole number of TV attributes before the TLV one
            }
            assert!(
                matches!(
                    decode_attributes(&CHECK_POINT_ATTRS[..n]),
                    Err(DecodeError::BadProposalSyntax(_))
                ),
                "prefix {n}"
            );
        }
        // The TLV header alone, without its 4 value octets.
        assert!(decode_attributes(&CHECK_POINT_ATTRS[..24]).is_err());
    }

    #[test]
    fn rejects_tlv_length_past_the_container() {
        assert!(decode_attributes(&[0x00, 0x0c, 0xff, 0xff, 0, 0]).is_err());
    }

    #[test]
    fn long_tlv_values_have_no_integer_value() {
        let a = DataAttribute::variable(O::GROUP_PRIME, vec![1; 9]);
        assert_eq!(a.as_u64(), None);
        assert_eq!(a.as_u16(), None);
    }

    #[test]
    fn refuses_attribute_types_over_15_bits() {
        let a = DataAttribute::basic(0x8001u16, 1u16);
        assert!(a.encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn gss_identity_attribute_is_a_tlv_in_utf16le() {
        // racoon sends the GSS ID as UTF-16LE (protocols.md §1.3).
        let id: Vec<u8> = "host/a".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let a = DataAttribute::variable(O::GSS_IDENTITY_NAME, id.clone());
        let mut out = Vec::new();
        a.encode(&mut out).unwrap();
        assert_eq!(&out[..4], &[0x40, 0x00, 0x00, 12]);
        assert_eq!(decode_attributes(&out).unwrap(), vec![a]);
    }
}
