//! Fuzzes the XFRM netlink decoder: a buffer is decoded as a stream of netlink messages (as a
//! receive buffer from the kernel would be). Decoding and the mapping to the model must never
//! panic, and whatever decodes must survive encode → decode unchanged with stable bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pfkey::xfrm::codec::{decode_messages, encode_messages, XfrmPayload};
use pfkey::xfrm::convert;

fuzz_target!(|data: &[u8]| {
    let Ok(msgs) = decode_messages(data) else {
        return;
    };
    let bytes = encode_messages(&msgs);
    let again = decode_messages(&bytes).expect("re-encoded messages decode");
    assert_eq!(again, msgs, "round trip changed the messages");
    assert_eq!(encode_messages(&again), bytes, "encoding is not stable");
    for m in &msgs {
        // The model mapping sees kernel input too: it may refuse, never panic.
        match &m.payload {
            XfrmPayload::NewSa(sa) | XfrmPayload::UpdSa(sa) => drop(convert::sa_from_wire(sa)),
            XfrmPayload::NewPolicy(p) | XfrmPayload::UpdPolicy(p) => {
                drop(convert::policy_from_wire(p))
            }
            XfrmPayload::Acquire(a) => drop(convert::acquire_from_wire(a)),
            XfrmPayload::Expire(e) => drop(convert::expire_from_wire(e)),
            XfrmPayload::PolExpire(e) => drop(convert::polexpire_from_wire(e)),
            XfrmPayload::Mapping(e) => drop(convert::mapping_from_wire(e)),
            XfrmPayload::NewSpdInfo(i) => drop(convert::spd_info_from_wire(&i.attrs)),
            _ => {}
        }
    }
});
