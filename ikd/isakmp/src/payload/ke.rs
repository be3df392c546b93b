//! The Key Exchange payload (RFC 2408 §3.7).
//!
//! The body is the Diffie-Hellman public value, kept as octets. That it is left-padded to
//! the group's length (RFC 2409 §5) and valid for the group is checked by the engine.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A Key Exchange payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                       Key Exchange Data                       ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    KePayload {
        /// Key Exchange Data: g^x, big-endian (x|y for ECP groups, RFC 5903).
        key_exchange_data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{Payload, PayloadBody};
    use crate::registry::PayloadType;

    #[test]
    fn key_exchange_data_round_trips_verbatim() {
        let body = [0u8, 0, 1, 2, 3];
        let ke = KePayload::decode_body(&body).unwrap();
        assert_eq!(ke.key_exchange_data, body);
        assert_eq!(ke.body_bytes().unwrap(), body);
        assert_eq!(
            Payload::decode(PayloadType::KEY_EXCHANGE, &body).unwrap(),
            Payload::KeyExchange(ke)
        );
    }
}
