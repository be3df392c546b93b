//! The Hash payload (RFC 2408 §3.11).
//!
//! The body is the hash or PRF output (HASH_I, HASH_R, HASH(1..3)), kept as octets; the
//! engine computes and compares it.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A Hash payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                           Hash Data                           ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    HashPayload {
        /// Hash Data.
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadBody;

    #[test]
    fn hash_data_round_trips_verbatim() {
        // HASH_R of the Check Point capture (protocols.md §6.1, MD5 case).
        let h = [
            0xf9, 0x95, 0xec, 0x29, 0x68, 0xf6, 0x95, 0xae, 0xb1, 0xd4, 0xe4, 0xb4, 0x37, 0xf4,
            0x9d, 0x26,
        ];
        let p = HashPayload::decode_body(&h).unwrap();
        assert_eq!(p.hash, h);
        assert_eq!(p.body_bytes().unwrap(), h);
    }
}
