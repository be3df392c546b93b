//! Fuzzes the PF_KEY v2 decoder in both dialects: decoding must never panic, and whatever
//! decodes must survive encode → decode unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pfkey::pfkey::codec::{Dialect, Message};

fuzz_target!(|data: &[u8]| {
    for dialect in [Dialect::Linux, Dialect::FreeBsd] {
        if let Ok(msg) = Message::decode(data, dialect) {
            let bytes = msg.encode(dialect);
            let again = Message::decode(&bytes, dialect).expect("re-encoded message decodes");
            assert_eq!(again, msg, "round trip changed the message ({dialect:?})");
            assert_eq!(
                again.encode(dialect),
                bytes,
                "encoding is not stable ({dialect:?})"
            );
        }
    }
});
