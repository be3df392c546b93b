//! The IKE fragment payload (type 132; Cisco/Microsoft proprietary, MS-IKEE §2.2.3.1,
//! implemented by racoon and strongSwan).
//!
//! Each fragment message is an ISAKMP header (Next Payload 132, E cleared) and exactly one
//! fragment payload; the fragment data are slices of the complete original message,
//! header included. This module only encodes and decodes one fragment; collecting,
//! ordering, limiting and reassembling fragments is the engine's job.

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;

/// The fragment flags octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FragmentFlags(pub u8);

impl FragmentFlags {
    /// LAST: this is the final fragment.
    pub const LAST: Self = Self(0x01);

    /// Whether LAST is set.
    pub fn is_last(self) -> bool {
        self.0 & Self::LAST.0 != 0
    }
}

/// A fragment payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !          Fragment ID          !  Fragment Num !     Flags     !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                         Fragment Data                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FragmentPayload {
    /// Fragment ID (racoon and strongSwan always send 1; Windows a global counter).
    pub fragment_id: u16,
    /// Fragment Number, starting at 1.
    pub fragment_number: u8,
    /// Flags.
    pub flags: FragmentFlags,
    /// Fragment Data.
    pub data: Vec<u8>,
}

impl PayloadBody for FragmentPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let fragment_id = r.u16("fragment id")?;
        let fragment_number = r.u8("fragment number")?;
        let flags = FragmentFlags(r.u8("fragment flags")?);
        Ok(Self {
            fragment_id,
            fragment_number,
            flags,
            data: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.fragment_id.to_be_bytes());
        out.push(self.fragment_number);
        out.push(self.flags.0);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_fragment_round_trips() {
        let body = [0, 1, 2, 1, 0xaa, 0xbb];
        let f = FragmentPayload::decode_body(&body).unwrap();
        assert_eq!((f.fragment_id, f.fragment_number), (1, 2));
        assert!(f.flags.is_last());
        assert_eq!(f.data, [0xaa, 0xbb]);
        assert_eq!(f.body_bytes().unwrap(), body);
    }

    #[test]
    fn rejects_body_shorter_than_fixed_fields() {
        assert!(FragmentPayload::decode_body(&[0, 1, 2]).is_err());
    }
}
