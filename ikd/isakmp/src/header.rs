//! The fixed 28-octet ISAKMP header (RFC 2408 §3.1): a zero-copy view ([`Header`]) and its
//! owned form ([`HeaderRepr`]).
//!
//! The view only guarantees that 28 octets are present; [`HeaderRepr::parse`] also checks the
//! major version and the reserved flag bits. Neither looks at the payloads, compares the
//! Length field with anything, or knows about cookies or message IDs beyond reading them:
//! [`crate::Message`] checks the length, the engine everything else.

use crate::error::DecodeError;
use crate::registry::{ExchangeType, PayloadType};

/// Length of the ISAKMP header in octets.
pub const HEADER_LEN: usize = 28;

/// The only ISAKMP major version this crate decodes (IKEv1).
pub const MAJOR_VERSION: u8 = 1;

/// The ISAKMP header flags octet (RFC 2408 §3.1): a bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// E(ncryption): the payloads after the header are encrypted.
    pub const ENCRYPTION: Self = Self(0x01);
    /// C(ommit): key exchange synchronisation (RFC 2408 §3.1, CONNECTED notify).
    pub const COMMIT: Self = Self(0x02);
    /// A(uthentication only): the payloads are authenticated but not encrypted.
    pub const AUTHENTICATION_ONLY: Self = Self(0x04);
    /// The bits RFC 2408 defines; the others are reserved and must be zero.
    pub const DEFINED: Self = Self(0x07);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The E flag.
    pub fn is_encrypted(self) -> bool {
        self.contains(Self::ENCRYPTION)
    }

    /// The C flag.
    pub fn is_commit(self) -> bool {
        self.contains(Self::COMMIT)
    }

    /// These flags with `other`'s bits set (`on`) or cleared.
    #[must_use]
    pub fn with(self, other: Self, on: bool) -> Self {
        if on {
            Self(self.0 | other.0)
        } else {
            Self(self.0 & !other.0)
        }
    }
}

impl std::ops::BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A zero-copy view of an ISAKMP header at the start of a buffer.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Initiator                            !
/// !                            Cookie                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Responder                            !
/// !                            Cookie                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Next Payload ! MjVer ! MnVer ! Exchange Type !     Flags     !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Message ID                           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                            Length                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` after checking it holds at least [`HEADER_LEN`] octets.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                what: "ISAKMP header",
            });
        }
        Ok(Self { buffer })
    }

    /// The underlying buffer (the whole datagram, if that is what was wrapped).
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header's 28 octets. `new_checked` guarantees they are present.
    fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        if let Some(src) = self.buffer.as_ref().get(..HEADER_LEN) {
            h.copy_from_slice(src);
        }
        h
    }

    /// CKY-I.
    pub fn initiator_cookie(&self) -> [u8; 8] {
        let b = self.bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    /// CKY-R (zero in the first message of an exchange).
    pub fn responder_cookie(&self) -> [u8; 8] {
        let b = self.bytes();
        [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]
    }

    /// The type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.bytes()[16])
    }

    /// The major version (high nibble of octet 17).
    pub fn major_version(&self) -> u8 {
        self.bytes()[17] >> 4
    }

    /// The minor version (low nibble of octet 17).
    pub fn minor_version(&self) -> u8 {
        self.bytes()[17] & 0x0f
    }

    /// The exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.bytes()[18])
    }

    /// The flags octet.
    pub fn flags(&self) -> Flags {
        Flags(self.bytes()[19])
    }

    /// The Message ID (0 in phase 1).
    pub fn message_id(&self) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[20], b[21], b[22], b[23]])
    }

    /// The Length field: the whole message including header and any encryption padding.
    pub fn length(&self) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[24], b[25], b[26], b[27]])
    }
}

/// An ISAKMP header as owned values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderRepr {
    /// CKY-I.
    pub initiator_cookie: [u8; 8],
    /// CKY-R.
    pub responder_cookie: [u8; 8],
    /// The type of the first payload.
    pub next_payload: PayloadType,
    /// The minor version (0 for RFC 2408; the major version is always 1).
    pub minor_version: u8,
    /// The exchange type.
    pub exchange_type: ExchangeType,
    /// The flags.
    pub flags: Flags,
    /// The Message ID.
    pub message_id: u32,
    /// The total message length.
    pub length: u32,
}

impl HeaderRepr {
    /// Reads a header, rejecting a major version other than 1, reserved flag bits, and the
    /// NONE exchange type.
    ///
    /// racoon also rejects reserved flag bits (INVALID-FLAGS); this keeps the same rule so that
    /// a peer gets the same answer from both.
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>) -> Result<Self, DecodeError> {
        if header.major_version() != MAJOR_VERSION {
            return Err(DecodeError::InvalidMajorVersion(header.major_version()));
        }
        let flags = header.flags();
        if flags.0 & !Flags::DEFINED.0 != 0 {
            return Err(DecodeError::InvalidFlags(flags.0));
        }
        if header.exchange_type() == ExchangeType::NONE {
            return Err(DecodeError::InvalidExchangeType(ExchangeType::NONE));
        }
        Ok(Self {
            initiator_cookie: header.initiator_cookie(),
            responder_cookie: header.responder_cookie(),
            next_payload: header.next_payload(),
            minor_version: header.minor_version(),
            exchange_type: header.exchange_type(),
            flags,
            message_id: header.message_id(),
            length: header.length(),
        })
    }

    /// Reads a header from the start of `data` (see [`HeaderRepr::parse`]).
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        Self::parse(&Header::new_checked(data)?)
    }

    /// Appends the 28 header octets to `out`, as they are (no field is computed here).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie);
        out.extend_from_slice(&self.responder_cookie);
        out.push(self.next_payload.0);
        out.push((MAJOR_VERSION << 4) | (self.minor_version & 0x0f));
        out.push(self.exchange_type.0);
        out.push(self.flags.0);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First 28 octets of an Aggressive Mode message 1 with CKY-I from the Check Point
    /// capture (protocols.md §6.1); length and next payload chosen for the test.
    const AM1_HEADER: [u8; 28] = [
        0xea, 0xc8, 0x2e, 0xa4, 0x5c, 0xbe, 0x59, 0xe6, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x10, 0x04,
        0x00, 0, 0, 0, 0, 0, 0, 0x01, 0x2c,
    ];

    #[test]
    fn view_reads_every_field() {
        let h = Header::new_checked(&AM1_HEADER[..]).unwrap();
        assert_eq!(h.initiator_cookie(), AM1_HEADER[..8]);
        assert_eq!(h.responder_cookie(), [0; 8]);
        assert_eq!(h.next_payload(), PayloadType::SECURITY_ASSOCIATION);
        assert_eq!((h.major_version(), h.minor_version()), (1, 0));
        assert_eq!(h.exchange_type(), ExchangeType::AGGRESSIVE);
        assert_eq!(h.flags(), Flags(0));
        assert_eq!(h.message_id(), 0);
        assert_eq!(h.length(), 300);
    }

    #[test]
    fn repr_round_trips_to_identical_bytes() {
        let repr = HeaderRepr::decode(&AM1_HEADER).unwrap();
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out, AM1_HEADER);
    }

    #[test]
    fn rejects_short_buffers() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                HeaderRepr::decode(&AM1_HEADER[..n]),
                Err(DecodeError::Truncated {
                    what: "ISAKMP header"
                })
            );
        }
    }

    #[test]
    fn rejects_ikev2_major_version() {
        let mut h = AM1_HEADER;
        h[17] = 0x20;
        assert_eq!(
            HeaderRepr::decode(&h),
            Err(DecodeError::InvalidMajorVersion(2))
        );
    }

    #[test]
    fn rejects_reserved_flag_bits() {
        let mut h = AM1_HEADER;
        h[19] = 0x09;
        assert_eq!(HeaderRepr::decode(&h), Err(DecodeError::InvalidFlags(0x09)));
    }

    #[test]
    fn rejects_exchange_type_none() {
        let mut h = AM1_HEADER;
        h[18] = 0;
        assert_eq!(
            HeaderRepr::decode(&h),
            Err(DecodeError::InvalidExchangeType(ExchangeType::NONE))
        );
    }

    #[test]
    fn keeps_minor_version_and_private_exchange_types() {
        let mut h = AM1_HEADER;
        h[17] = 0x11;
        h[18] = 250;
        let repr = HeaderRepr::decode(&h).unwrap();
        assert_eq!(repr.minor_version, 1);
        assert_eq!(repr.exchange_type, ExchangeType(250));
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out, h);
    }

    #[test]
    fn flags_combine_and_clear() {
        let f = Flags::ENCRYPTION | Flags::COMMIT;
        assert!(f.is_encrypted() && f.is_commit());
        assert_eq!(f.with(Flags::ENCRYPTION, false), Flags::COMMIT);
    }
}
