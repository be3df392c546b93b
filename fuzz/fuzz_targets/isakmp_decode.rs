//! Fuzz the ISAKMP codec: decoding arbitrary bytes must never panic, and whatever decodes
//! must re-encode and decode to the same value.
//!
//! Two entry points are exercised per input: a whole datagram (`Message::decode`), and the
//! same bytes as a decrypted payload chain (first octet = first payload type), which reaches
//! the payload bodies without needing a valid ISAKMP header.

#![no_main]

use isakmp::{decode_payloads, decode_payloads_padded, encode_payloads, Message, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let bytes = m.to_bytes().expect("a decoded message re-encodes");
        let again = Message::decode(&bytes).expect("a re-encoded message decodes");
        assert_eq!(again, m);
    }
    if let Some((&first, rest)) = data.split_first() {
        if let Ok((payloads, _padding)) = decode_payloads_padded(PayloadType(first), rest) {
            let mut bytes = Vec::new();
            let np = encode_payloads(&payloads, &mut bytes).expect("decoded payloads re-encode");
            let again = decode_payloads(np, &bytes).expect("re-encoded payloads decode");
            assert_eq!(again, payloads);
        }
    }
});
