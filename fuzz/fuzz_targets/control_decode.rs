//! The control-protocol decoder (`ipsec-control`) on arbitrary octets: frames holding
//! requests and responses must decode or fail with a `DecodeError`, never panic, and what
//! decodes must re-encode and decode to the same message.
#![no_main]

use ipsec_control::{decode_frame, encode_frame, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((r, used))) = decode_frame::<Request>(data) {
        assert!(used <= data.len());
        // Re-encoding may only fail by growing past the frame limit (defaults written out).
        let Ok(again) = encode_frame(&r) else { return };
        let (r2, _) = decode_frame::<Request>(&again)
            .expect("re-encoded request decodes")
            .expect("whole frame");
        assert_eq!(r, r2);
    }
    if let Ok(Some((r, _))) = decode_frame::<Response>(data) {
        let Ok(again) = encode_frame(&r) else { return };
        let (r2, _) = decode_frame::<Response>(&again)
            .expect("re-encoded response decodes")
            .expect("whole frame");
        assert_eq!(r, r2);
    }
    let _ = ipsec_control::codec::decode_body::<Request>(data);
});
