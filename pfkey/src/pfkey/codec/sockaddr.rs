//! Socket addresses inside PF_KEY extensions, in both dialects.
//!
//! ```text
//! BSD (FreeBSD, KAME):                    Linux:
//! +--------+--------+-----------------+   +-----------------+-----------------+
//! | sa_len |sa_family|  sin_port (BE) |   | sa_family (u16) |  sin_port (BE)  |
//! +--------+--------+-----------------+   +-----------------+-----------------+
//! |   sin_addr (4) / sin6_flowinfo (4), sin6_addr (16), sin6_scope_id (4)     |
//! ```
//!
//! `sockaddr_in` is 16 octets and `sockaddr_in6` 28 in both systems; only the first two
//! octets differ, and `AF_INET6` is 10 on Linux but 28 on FreeBSD.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{Reader, Writer};
use super::Dialect;
use crate::DecodeError;

/// `AF_INET` in both systems.
pub const AF_INET: u16 = 2;
/// `AF_INET6` on Linux.
pub const AF_INET6_LINUX: u16 = 10;
/// `AF_INET6` on FreeBSD.
pub const AF_INET6_FREEBSD: u16 = 28;

const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN: usize = 28;

/// A socket address as carried in `sadb_address`, `sadb_x_ipsecrequest` and
/// `sadb_x_kmaddress`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SockAddr {
    /// `sockaddr_in`.
    V4 {
        /// The address.
        addr: Ipv4Addr,
        /// The port (host value; network order on the wire).
        port: u16,
    },
    /// `sockaddr_in6`.
    V6 {
        /// The address.
        addr: Ipv6Addr,
        /// The port.
        port: u16,
        /// Flow information (network order on the wire).
        flowinfo: u32,
        /// Scope (interface) identifier.
        scope_id: u32,
    },
    /// Another family, kept as the octets after the family field.
    Other {
        /// Address family number in the dialect's numbering.
        family: u16,
        /// The octets after the length/family header.
        data: Vec<u8>,
    },
}

impl SockAddr {
    /// An IP address with a port.
    pub fn from_ip(addr: IpAddr, port: u16) -> Self {
        match addr {
            IpAddr::V4(addr) => Self::V4 { addr, port },
            IpAddr::V6(addr) => Self::V6 {
                addr,
                port,
                flowinfo: 0,
                scope_id: 0,
            },
        }
    }

    /// The IP address, if this is an IP socket address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::V4 { addr, .. } => Some(IpAddr::V4(*addr)),
            Self::V6 { addr, .. } => Some(IpAddr::V6(*addr)),
            Self::Other { .. } => None,
        }
    }

    /// The port (0 if none or not an IP address).
    pub fn port(&self) -> u16 {
        match self {
            Self::V4 { port, .. } | Self::V6 { port, .. } => *port,
            Self::Other { .. } => 0,
        }
    }

    /// Encoded length in octets (without padding).
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::V4 { .. } => SOCKADDR_IN_LEN,
            Self::V6 { .. } => SOCKADDR_IN6_LEN,
            Self::Other { data, .. } => 2 + data.len(),
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer, dialect: Dialect) {
        let family = match self {
            Self::V4 { .. } => AF_INET,
            Self::V6 { .. } => dialect.af_inet6(),
            Self::Other { family, .. } => *family,
        };
        match dialect {
            Dialect::Linux => w.u16(family),
            Dialect::FreeBsd => {
                // sa_len and sa_family are single octets on BSD.
                w.u8(u8::try_from(self.encoded_len()).unwrap_or(u8::MAX));
                w.u8(u8::try_from(family).unwrap_or(u8::MAX));
            }
        }
        match self {
            Self::V4 { addr, port } => {
                w.u16_be(*port);
                w.bytes(&addr.octets());
                w.zeros(8);
            }
            Self::V6 {
                addr,
                port,
                flowinfo,
                scope_id,
            } => {
                w.u16_be(*port);
                w.u32_be(*flowinfo);
                w.bytes(&addr.octets());
                w.u32(*scope_id);
            }
            Self::Other { data, .. } => w.bytes(data),
        }
    }

    /// Decodes one socket address from the front of `r`.
    ///
    /// `last` says whether the address may extend to the end of `r` (Linux sockaddrs of an
    /// unknown family carry no length, so they can only be the last thing in a structure).
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        dialect: Dialect,
        last: bool,
    ) -> Result<Self, DecodeError> {
        let (len, family) = match dialect {
            Dialect::Linux => {
                let family = r.u16()?;
                let len = if family == AF_INET {
                    Some(SOCKADDR_IN_LEN)
                } else if family == AF_INET6_LINUX {
                    Some(SOCKADDR_IN6_LEN)
                } else {
                    None
                };
                (len, family)
            }
            Dialect::FreeBsd => {
                let len = usize::from(r.u8()?);
                let family = u16::from(r.u8()?);
                if len < 2 {
                    return Err(DecodeError::BadLength {
                        what: "sockaddr sa_len",
                        len,
                    });
                }
                (Some(len), family)
            }
        };
        let ip_len = if family == AF_INET {
            Some(SOCKADDR_IN_LEN)
        } else if family == dialect.af_inet6() {
            Some(SOCKADDR_IN6_LEN)
        } else {
            None
        };
        match (len, ip_len) {
            (Some(len), Some(ip_len)) if len != ip_len => Err(DecodeError::BadLength {
                what: "sockaddr sa_len",
                len,
            }),
            (_, Some(_)) if family == AF_INET => {
                let port = r.u16_be()?;
                let addr = Ipv4Addr::from(r.array4()?);
                r.skip(8)?;
                Ok(Self::V4 { addr, port })
            }
            (_, Some(_)) => {
                let port = r.u16_be()?;
                let flowinfo = r.u32_be()?;
                let addr = Ipv6Addr::from(r.array16()?);
                let scope_id = r.u32()?;
                Ok(Self::V6 {
                    addr,
                    port,
                    flowinfo,
                    scope_id,
                })
            }
            (Some(len), None) => Ok(Self::Other {
                family,
                data: r.bytes(len - 2)?.to_vec(),
            }),
            (None, None) if last => Ok(Self::Other {
                family,
                data: r.rest().to_vec(),
            }),
            (None, None) => Err(DecodeError::BadValue {
                what: "sockaddr family",
                value: u64::from(family),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(sa: &SockAddr, dialect: Dialect) -> Vec<u8> {
        let mut w = Writer::default();
        sa.encode(&mut w, dialect);
        let mut r = Reader::new(&w.buf, "test");
        assert_eq!(&SockAddr::decode(&mut r, dialect, true).unwrap(), sa);
        assert_eq!(r.remaining(), 0);
        w.buf
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_sockaddr_differs_only_in_the_first_two_octets() {
        let sa = SockAddr::from_ip("192.0.2.1".parse().unwrap(), 500);
        let linux = roundtrip(&sa, Dialect::Linux);
        let bsd = roundtrip(&sa, Dialect::FreeBsd);
        assert_eq!(&linux[..4], &[2, 0, 0x01, 0xf4]);
        assert_eq!(&bsd[..4], &[16, 2, 0x01, 0xf4]);
        assert_eq!(linux[2..], bsd[2..]);
        assert_eq!(&linux[4..8], &[192, 0, 2, 1]);
        assert_eq!(linux.len(), 16);
    }

    #[test]
    fn ipv6_family_number_depends_on_the_dialect() {
        let sa = SockAddr::from_ip("2001:db8::1".parse().unwrap(), 4500);
        let linux = roundtrip(&sa, Dialect::Linux);
        let bsd = roundtrip(&sa, Dialect::FreeBsd);
        assert_eq!(u16::from_ne_bytes([linux[0], linux[1]]), AF_INET6_LINUX);
        assert_eq!(&bsd[..2], &[28, 28]);
        assert_eq!(linux.len(), 28);
    }

    #[test]
    fn bsd_sockaddr_with_wrong_sa_len_is_rejected() {
        let bytes = [
            20u8, 2, 0, 0, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut r = Reader::new(&bytes, "test");
        assert!(matches!(
            SockAddr::decode(&mut r, Dialect::FreeBsd, true),
            Err(DecodeError::BadLength { len: 20, .. })
        ));
    }

    #[test]
    fn unknown_linux_family_is_only_accepted_last() {
        let bytes = [99u8, 0, 1, 2, 3, 4];
        let mut r = Reader::new(&bytes, "test");
        assert!(SockAddr::decode(&mut r, Dialect::Linux, false).is_err());
        let mut r = Reader::new(&bytes, "test");
        assert_eq!(
            SockAddr::decode(&mut r, Dialect::Linux, true).unwrap(),
            SockAddr::Other {
                family: u16::from_ne_bytes([99, 0]),
                data: vec![1, 2, 3, 4]
            }
        );
    }
}
