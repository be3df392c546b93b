//! The Nonce payload (RFC 2408 §3.13).
//!
//! The body is the nonce (`Ni_b`/`Nr_b`), kept as octets. RFC 2409 requires 8–256 octets;
//! that is a semantic rule for the engine, not checked here.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A Nonce payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                            Nonce Data                         ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    NoncePayload {
        /// Nonce Data.
        nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadBody;

    #[test]
    fn nonce_data_round_trips_verbatim() {
        // Ni_b of the Check Point capture (protocols.md §6.1, MD5 case).
        let ni = [
            0x64, 0x74, 0x5a, 0x97, 0x5d, 0xbc, 0xd9, 0x5c, 0x2a, 0xbf, 0x7d, 0x2e, 0xee, 0xb9,
            0x3a, 0xc4, 0x63, 0x3a, 0x03, 0xf1,
        ];
        let p = NoncePayload::decode_body(&ni).unwrap();
        assert_eq!(p.nonce, ni);
        assert_eq!(p.body_bytes().unwrap(), ni);
    }

    #[test]
    fn accepts_lengths_the_engine_must_judge() {
        assert!(NoncePayload::decode_body(&[]).unwrap().nonce.is_empty());
    }
}
