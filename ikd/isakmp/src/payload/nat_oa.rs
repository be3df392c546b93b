//! The NAT Original Address payload (RFC 3947 §5.2), type 21, or 131 with nat-t drafts
//! 00–03.
//!
//! The address is decoded by ID type: ID_IPV4_ADDR needs 4 octets and ID_IPV6_ADDR 16
//! (INVALID-ID-INFORMATION otherwise); other types are kept raw. The RESERVED octets are
//! ignored on receipt and sent as zero. Using the address (transport-mode checksum fix-up,
//! which Linux does not need) is the engine's decision.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;
use crate::registry::IdType;

/// A NAT-OA payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !        Payload length         !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !   ID Type     !   RESERVED    !            RESERVED           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !         IPv4 (4 octets) or IPv6 address (16 octets)           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NatOaPayload {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// Any other ID type, kept raw.
    Other {
        /// The ID type; never ID_IPV4_ADDR or ID_IPV6_ADDR.
        id_type: IdType,
        /// The address octets.
        data: Vec<u8>,
    },
}

impl NatOaPayload {
    /// The ID type.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4(_) => IdType::IPV4_ADDR,
            Self::Ipv6(_) => IdType::IPV6_ADDR,
            Self::Other { id_type, .. } => *id_type,
        }
    }
}

impl PayloadBody for NatOaPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8("NAT-OA ID type")?);
        let _reserved = r.take(3, "NAT-OA reserved")?;
        let data = r.rest();
        let bad = || DecodeError::InvalidIdInformation {
            id_type,
            len: data.len(),
        };
        Ok(match id_type {
            IdType::IPV4_ADDR => Self::Ipv4(<[u8; 4]>::try_from(data).map_err(|_| bad())?.into()),
            IdType::IPV6_ADDR => Self::Ipv6(<[u8; 16]>::try_from(data).map_err(|_| bad())?.into()),
            _ => Self::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&[self.id_type().0, 0, 0, 0]);
        match self {
            Self::Ipv4(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv6(a) => out.extend_from_slice(&a.octets()),
            Self::Other { id_type, data } => {
                if matches!(*id_type, IdType::IPV4_ADDR | IdType::IPV6_ADDR) {
                    return Err(EncodeError::InvalidValue {
                        what: "NAT-OA",
                        reason: "address ID type carried as Other",
                    });
                }
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_original_address_round_trips() {
        let body = [1, 0, 0, 0, 192, 168, 0, 1];
        let p = NatOaPayload::decode_body(&body).unwrap();
        assert_eq!(p, NatOaPayload::Ipv4(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!(p.body_bytes().unwrap(), body);
    }

    #[test]
    fn ipv6_original_address_round_trips() {
        let mut body = vec![5, 0, 0, 0];
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let p = NatOaPayload::decode_body(&body).unwrap();
        assert_eq!(p, NatOaPayload::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(p.body_bytes().unwrap(), body);
    }

    #[test]
    fn rejects_address_of_wrong_length() {
        assert_eq!(
            NatOaPayload::decode_body(&[1, 0, 0, 0, 1, 2, 3]),
            Err(DecodeError::InvalidIdInformation {
                id_type: IdType::IPV4_ADDR,
                len: 3
            })
        );
        assert!(NatOaPayload::decode_body(&[1, 0, 0]).is_err());
    }

    #[test]
    fn keeps_other_id_types_raw() {
        let p = NatOaPayload::decode_body(&[2, 0, 0, 0, b'x']).unwrap();
        assert_eq!(p.id_type(), IdType::FQDN);
        assert_eq!(p.body_bytes().unwrap(), [2, 0, 0, 0, b'x']);
    }
}
