//! The Identification payload (RFC 2408 §3.8) with the IPsec DOI identification data
//! (RFC 2407 §4.6.2).
//!
//! Address types are decoded into `std::net` addresses and their length is checked against
//! the ID type (INVALID-ID-INFORMATION otherwise); name types (FQDN, USER_FQDN, DER DN/GN,
//! KEY_ID) are kept as octets, since peers do not promise UTF-8 or valid DER. Unknown ID
//! types are kept raw. Whether the protocol/port are acceptable (phase 1: 0/0, 17/500,
//! 17/4500, 17/0 all occur) is the engine's decision.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;
use crate::registry::IdType;

/// Identification Data, by ID type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdData {
    /// ID_IPV4_ADDR: one address.
    Ipv4Addr(Ipv4Addr),
    /// ID_FQDN: a domain name such as `foo.example.com`, without terminator.
    Fqdn(Vec<u8>),
    /// ID_USER_FQDN: `user@example.com`.
    UserFqdn(Vec<u8>),
    /// ID_IPV4_ADDR_SUBNET: address and netmask.
    Ipv4Subnet {
        /// The address.
        address: Ipv4Addr,
        /// The netmask (not necessarily contiguous on the wire).
        mask: Ipv4Addr,
    },
    /// ID_IPV6_ADDR: one address.
    Ipv6Addr(Ipv6Addr),
    /// ID_IPV6_ADDR_SUBNET: address and netmask.
    Ipv6Subnet {
        /// The address.
        address: Ipv6Addr,
        /// The netmask.
        mask: Ipv6Addr,
    },
    /// ID_IPV4_ADDR_RANGE: first and last address, inclusive.
    Ipv4Range {
        /// The first address.
        start: Ipv4Addr,
        /// The last address.
        end: Ipv4Addr,
    },
    /// ID_IPV6_ADDR_RANGE: first and last address, inclusive.
    Ipv6Range {
        /// The first address.
        start: Ipv6Addr,
        /// The last address.
        end: Ipv6Addr,
    },
    /// ID_DER_ASN1_DN: a DER-encoded X.500 Distinguished Name.
    DerAsn1Dn(Vec<u8>),
    /// ID_DER_ASN1_GN: a DER-encoded X.500 GeneralName.
    DerAsn1Gn(Vec<u8>),
    /// ID_KEY_ID: opaque vendor-specific octets (e.g. a Windows or Cisco group name).
    KeyId(Vec<u8>),
    /// Any other ID type, kept raw (ID_LIST, ID_IPV6_CGA, private types).
    Other {
        /// The ID type; never one of the types with their own variant.
        id_type: IdType,
        /// The identification data.
        data: Vec<u8>,
    },
}

impl IdData {
    /// The ID type this data goes with.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4Addr(_) => IdType::IPV4_ADDR,
            Self::Fqdn(_) => IdType::FQDN,
            Self::UserFqdn(_) => IdType::USER_FQDN,
            Self::Ipv4Subnet { .. } => IdType::IPV4_ADDR_SUBNET,
            Self::Ipv6Addr(_) => IdType::IPV6_ADDR,
            Self::Ipv6Subnet { .. } => IdType::IPV6_ADDR_SUBNET,
            Self::Ipv4Range { .. } => IdType::IPV4_ADDR_RANGE,
            Self::Ipv6Range { .. } => IdType::IPV6_ADDR_RANGE,
            Self::DerAsn1Dn(_) => IdType::DER_ASN1_DN,
            Self::DerAsn1Gn(_) => IdType::DER_ASN1_GN,
            Self::KeyId(_) => IdType::KEY_ID,
            Self::Other { id_type, .. } => *id_type,
        }
    }

    /// Decodes `data` as identification data of type `id_type`.
    pub fn decode(id_type: IdType, data: &[u8]) -> Result<Self, DecodeError> {
        let bad = || DecodeError::InvalidIdInformation {
            id_type,
            len: data.len(),
        };
        let v4 = |b: &[u8]| -> Result<Ipv4Addr, DecodeError> {
            <[u8; 4]>::try_from(b)
                .map(Ipv4Addr::from)
                .map_err(|_| bad())
        };
        let v6 = |b: &[u8]| -> Result<Ipv6Addr, DecodeError> {
            <[u8; 16]>::try_from(b)
                .map(Ipv6Addr::from)
                .map_err(|_| bad())
        };
        let halves = |n: usize| -> Result<(&[u8], &[u8]), DecodeError> {
            if data.len() == 2 * n {
                Ok(data.split_at(n))
            } else {
                Err(bad())
            }
        };
        Ok(match id_type {
            IdType::IPV4_ADDR => Self::Ipv4Addr(v4(data)?),
            IdType::FQDN => Self::Fqdn(data.to_vec()),
            IdType::USER_FQDN => Self::UserFqdn(data.to_vec()),
            IdType::IPV4_ADDR_SUBNET => {
                let (a, m) = halves(4)?;
                Self::Ipv4Subnet {
                    address: v4(a)?,
                    mask: v4(m)?,
                }
            }
            IdType::IPV6_ADDR => Self::Ipv6Addr(v6(data)?),
            IdType::IPV6_ADDR_SUBNET => {
                let (a, m) = halves(16)?;
                Self::Ipv6Subnet {
                    address: v6(a)?,
                    mask: v6(m)?,
                }
            }
            IdType::IPV4_ADDR_RANGE => {
                let (s, e) = halves(4)?;
                Self::Ipv4Range {
                    start: v4(s)?,
                    end: v4(e)?,
                }
            }
            IdType::IPV6_ADDR_RANGE => {
                let (s, e) = halves(16)?;
                Self::Ipv6Range {
                    start: v6(s)?,
                    end: v6(e)?,
                }
            }
            IdType::DER_ASN1_DN => Self::DerAsn1Dn(data.to_vec()),
            IdType::DER_ASN1_GN => Self::DerAsn1Gn(data.to_vec()),
            IdType::KEY_ID => Self::KeyId(data.to_vec()),
            _ => Self::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }

    /// Appends the identification data (without ID type) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Ipv4Addr(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv6Addr(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv4Subnet { address, mask } => {
                out.extend_from_slice(&address.octets());
                out.extend_from_slice(&mask.octets());
            }
            Self::Ipv6Subnet { address, mask } => {
                out.extend_from_slice(&address.octets());
                out.extend_from_slice(&mask.octets());
            }
            Self::Ipv4Range { start, end } => {
                out.extend_from_slice(&start.octets());
                out.extend_from_slice(&end.octets());
            }
            Self::Ipv6Range { start, end } => {
                out.extend_from_slice(&start.octets());
                out.extend_from_slice(&end.octets());
            }
            Self::Fqdn(d) | Self::UserFqdn(d) | Self::DerAsn1Dn(d) | Self::DerAsn1Gn(d) => {
                out.extend_from_slice(d);
            }
            Self::KeyId(d) => out.extend_from_slice(d),
            Self::Other { id_type, data } => {
                // A typed ID carried as Other would decode back into its own variant.
                if !matches!(Self::decode(*id_type, &[]), Ok(Self::Other { .. })) {
                    return Err(EncodeError::InvalidValue {
                        what: "identification data",
                        reason: "ID type has a typed variant",
                    });
                }
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

/// An Identification payload body (IPsec DOI).
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Next Payload !   RESERVED    !        Payload Length         !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !   ID Type     !  Protocol ID  !             Port              !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Identification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdPayload {
    /// Protocol ID: an IP protocol number (0 = any).
    pub protocol: u8,
    /// Port (0 = any).
    pub port: u16,
    /// The ID type and identification data.
    pub data: IdData,
}

impl IdPayload {
    /// The ID type.
    pub fn id_type(&self) -> IdType {
        self.data.id_type()
    }
}

impl PayloadBody for IdPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8("ID type")?);
        let protocol = r.u8("ID protocol")?;
        let port = r.u16("ID port")?;
        let data = IdData::decode(id_type, r.rest())?;
        Ok(Self {
            protocol,
            port,
            data,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.id_type().0);
        out.push(self.protocol);
        out.extend_from_slice(&self.port.to_be_bytes());
        self.data.encode(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> IdPayload {
        let id = IdPayload::decode_body(bytes).unwrap();
        assert_eq!(id.body_bytes().unwrap(), bytes);
        id
    }

    #[test]
    fn decodes_check_point_idir() {
        // IDir_b of the Check Point capture (protocols.md §6.1): 172.16.2.2, 0/0.
        let id = round_trip(&[0x01, 0x00, 0x00, 0x00, 0xac, 0x10, 0x02, 0x02]);
        assert_eq!(id.data, IdData::Ipv4Addr(Ipv4Addr::new(172, 16, 2, 2)));
        assert_eq!((id.protocol, id.port), (0, 0));
    }

    #[test]
    fn decodes_quick_mode_subnet_selector() {
        // IDci of the Quick Mode vector (protocols.md §6.2): 10.0.1.0/24.
        let id = round_trip(&[4, 0, 0, 0, 10, 0, 1, 0, 255, 255, 255, 0]);
        assert_eq!(
            id.data,
            IdData::Ipv4Subnet {
                address: Ipv4Addr::new(10, 0, 1, 0),
                mask: Ipv4Addr::new(255, 255, 255, 0)
            }
        );
    }

    #[test]
    fn keeps_protocol_and_port() {
        let id = round_trip(&[1, 17, 0x11, 0x94, 192, 0, 2, 1]);
        assert_eq!((id.protocol, id.port), (17, 4500));
    }

    #[test]
    fn round_trips_every_id_type() {
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut cases: Vec<(u8, Vec<u8>)> = vec![
            (1, vec![192, 0, 2, 1]),
            (2, b"gw.example.com".to_vec()),
            (3, b"user@example.com".to_vec()),
            (4, vec![192, 0, 2, 0, 255, 255, 255, 0]),
            (5, v6.to_vec()),
            (6, [v6, [0xff; 16]].concat()),
            (7, vec![192, 0, 2, 1, 192, 0, 2, 9]),
            (8, [v6, v6].concat()),
            (9, vec![0x30, 0x00]),
            (10, vec![0x82, 0x01, 0x61]),
            (11, b"group".to_vec()),
            (12, vec![1, 2, 3]),
            (250, vec![4, 5]),
        ];
        cases.push((2, vec![0xff, 0xfe])); // not UTF-8: kept as octets
        for (t, data) in cases {
            let mut bytes = vec![t, 0, 0, 0];
            bytes.extend_from_slice(&data);
            let id = round_trip(&bytes);
            assert_eq!(id.id_type(), IdType(t));
        }
    }

    #[test]
    fn rejects_address_types_with_wrong_length() {
        for (t, len) in [
            (1u8, 3usize),
            (1, 5),
            (4, 4),
            (5, 4),
            (6, 16),
            (7, 7),
            (8, 31),
        ] {
            let mut bytes = vec![t, 0, 0, 0];
            bytes.resize(4 + len, 0);
            assert_eq!(
                IdPayload::decode_body(&bytes),
                Err(DecodeError::InvalidIdInformation {
                    id_type: IdType(t),
                    len
                })
            );
        }
    }

    #[test]
    fn rejects_body_shorter_than_fixed_fields() {
        assert!(matches!(
            IdPayload::decode_body(&[1, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn refuses_to_encode_typed_ids_as_other() {
        let id = IdPayload {
            protocol: 0,
            port: 0,
            data: IdData::Other {
                id_type: IdType::FQDN,
                data: vec![],
            },
        };
        assert!(id.body_bytes().is_err());
    }
}
