//! The Signature payload (RFC 2408 §3.12).
//!
//! The body is the signature over HASH_I or HASH_R, kept as octets; verifying it is the
//! engine's (or the auth module's) job.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A Signature payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                         Signature Data                        ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    SigPayload {
        /// Signature Data.
        signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadBody;

    #[test]
    fn signature_data_round_trips_verbatim() {
        let p = SigPayload::decode_body(&[1, 2, 3]).unwrap();
        assert_eq!(p.signature, [1, 2, 3]);
        assert_eq!(p.body_bytes().unwrap(), [1, 2, 3]);
    }
}
