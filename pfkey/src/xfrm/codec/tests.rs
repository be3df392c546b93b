//! Message-level codec tests: round trips of every message the backend sends or receives,
//! truncations, and property tests.

use proptest::prelude::*;

use super::*;
use crate::{DecodeError, Key};

fn v4(s: &str) -> XfrmAddress {
    XfrmAddress::from_ip(s.parse().unwrap())
}

fn sa_info() -> UsersaInfo {
    UsersaInfo {
        id: XfrmId {
            daddr: v4("192.0.2.12"),
            spi: Be32(0xc0de_0001),
            proto: 50,
        },
        saddr: v4("192.0.2.11"),
        lft: LifetimeCfg::default(),
        family: AddressFamily::INET,
        mode: XfrmMode::TRANSPORT,
        replay_window: 32,
        reqid: 0x3001,
        ..Default::default()
    }
}

fn policy_info() -> UserpolicyInfo {
    UserpolicyInfo {
        sel: XfrmSelector {
            daddr: v4("198.51.100.2"),
            saddr: v4("198.51.100.1"),
            family: AddressFamily::INET,
            prefixlen_d: 32,
            prefixlen_s: 32,
            ..Default::default()
        },
        lft: LifetimeCfg::default(),
        priority: 2000,
        dir: PolicyDir::OUT,
        ..Default::default()
    }
}

fn every_message() -> Vec<NlMessage> {
    let tmpl = UserTmpl {
        id: XfrmId {
            proto: 50,
            ..Default::default()
        },
        family: AddressFamily::INET,
        reqid: 0x3001,
        aalgos: !0,
        ealgos: !0,
        calgos: !0,
        ..Default::default()
    };
    let sa_attrs = vec![
        XfrmAttr::AlgCrypt(Algo::new("cbc(aes)", Key::new(vec![0x11; 16]))),
        XfrmAttr::AlgAuthTrunc(AlgoAuth {
            name: AlgName::new("hmac(sha256)"),
            key_bits: 256,
            trunc_bits: 128,
            key: Key::new(vec![0x22; 32]),
        }),
        XfrmAttr::Mark(XfrmMark { v: 1, m: !0 }),
    ];
    let payloads = vec![
        XfrmPayload::NewSa(WithAttrs::new(sa_info(), sa_attrs.clone())),
        XfrmPayload::UpdSa(WithAttrs::new(sa_info(), sa_attrs)),
        XfrmPayload::DelSa(WithAttrs::new(
            UsersaId {
                daddr: v4("192.0.2.12"),
                spi: Be32(5),
                family: AddressFamily::INET,
                proto: 50,
            },
            vec![],
        )),
        XfrmPayload::GetSa(WithAttrs::new(UsersaId::default(), vec![])),
        XfrmPayload::DumpSa(vec![]),
        XfrmPayload::NewPolicy(WithAttrs::new(
            policy_info(),
            vec![XfrmAttr::Tmpl(vec![tmpl])],
        )),
        XfrmPayload::UpdPolicy(WithAttrs::new(policy_info(), vec![])),
        XfrmPayload::DelPolicy(WithAttrs::new(UserpolicyId::default(), vec![])),
        XfrmPayload::GetPolicy(WithAttrs::new(
            UserpolicyId::default(),
            vec![XfrmAttr::Mark(XfrmMark { v: 2, m: 3 })],
        )),
        XfrmPayload::DumpPolicy(vec![]),
        XfrmPayload::AllocSpi(WithAttrs::new(
            UserspiInfo {
                info: sa_info(),
                min: 0x100,
                max: 0xffff,
            },
            vec![],
        )),
        XfrmPayload::Acquire(WithAttrs::new(
            UserAcquire {
                policy: policy_info(),
                seq: 77,
                ..Default::default()
            },
            vec![
                XfrmAttr::Tmpl(vec![tmpl]),
                XfrmAttr::PolicyType(UserpolicyType::default()),
            ],
        )),
        XfrmPayload::Expire(WithAttrs::new(
            UserExpire {
                state: sa_info(),
                hard: 1,
            },
            vec![],
        )),
        XfrmPayload::PolExpire(WithAttrs::new(
            UserPolexpire {
                pol: policy_info(),
                hard: 0,
            },
            vec![],
        )),
        XfrmPayload::FlushSa(WithAttrs::new(UsersaFlush { proto: 0 }, vec![])),
        XfrmPayload::FlushSa(WithAttrs::new(
            UsersaFlush { proto: 50 },
            vec![XfrmAttr::Proto(50)],
        )),
        XfrmPayload::FlushPolicy(vec![]),
        XfrmPayload::GetSpdInfo(!0),
        XfrmPayload::NewSpdInfo(InfoMessage {
            flags: 0,
            attrs: vec![SpdAttr::Info(SpdCounts {
                incnt: 1,
                outcnt: 2,
                ..Default::default()
            })],
        }),
        XfrmPayload::GetSadInfo(0),
        XfrmPayload::NewSadInfo(InfoMessage {
            flags: 0,
            attrs: vec![SadAttr::Count(3)],
        }),
        XfrmPayload::Mapping(WithAttrs::new(UserMapping::default(), vec![])),
        XfrmPayload::Error(NlError {
            error: -libc::EEXIST,
            request: NlHeader {
                len: 16,
                kind: msg_type::NEWPOLICY,
                flags: 5,
                seq: 9,
                pid: 0,
            },
            rest: vec![],
        }),
        XfrmPayload::Done(vec![0; 4]),
        XfrmPayload::Other {
            kind: msg_type::NEWAE,
            payload: vec![1, 2, 3],
        },
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let dump = matches!(payload, XfrmPayload::DumpSa(_) | XfrmPayload::DumpPolicy(_));
            let f = if dump { flags::DUMP } else { flags::ACK };
            NlMessage::request(f, i as u32 + 1, payload)
        })
        .collect()
}

#[test]
fn every_message_round_trips_to_identical_bytes() {
    for msg in every_message() {
        let bytes = msg.to_bytes();
        let (back, next) = NlMessage::decode(&bytes).unwrap();
        assert_eq!(next, bytes.len());
        assert_eq!(back, msg);
        assert_eq!(back.to_bytes(), bytes);
    }
}

#[test]
fn message_stream_round_trips_with_alignment_between_messages() {
    let msgs = every_message();
    let bytes = encode_messages(&msgs);
    assert_eq!(decode_messages(&bytes).unwrap(), msgs);
    assert_eq!(encode_messages(&decode_messages(&bytes).unwrap()), bytes);
}

#[test]
fn flushsa_is_seventeen_octets_like_iproute2_sends_it() {
    let msg = NlMessage::request(
        flags::ACK,
        1,
        XfrmPayload::FlushSa(WithAttrs::new(UsersaFlush { proto: 0 }, vec![])),
    );
    let b = msg.to_bytes();
    assert_eq!(b.len(), 17);
    assert_eq!(&b[0..4], &17u32.to_ne_bytes());
}

#[test]
fn header_fields_are_at_the_netlink_offsets() {
    let msg = NlMessage::request(flags::ACK, 0x0102_0304, XfrmPayload::GetSpdInfo(0));
    let b = msg.to_bytes();
    assert_eq!(&b[0..4], &20u32.to_ne_bytes());
    assert_eq!(&b[4..6], &msg_type::GETSPDINFO.to_ne_bytes());
    assert_eq!(&b[6..8], &(flags::ACK | flags::REQUEST).to_ne_bytes());
    assert_eq!(&b[8..12], &0x0102_0304u32.to_ne_bytes());
}

#[test]
fn every_truncation_of_every_message_fails_typed() {
    for msg in every_message() {
        let bytes = msg.to_bytes();
        for cut in 0..bytes.len() {
            match NlMessage::decode(&bytes[..cut]) {
                Err(
                    DecodeError::Truncated { .. }
                    | DecodeError::BadLength { .. }
                    | DecodeError::BadValue { .. },
                ) => {}
                other => panic!("cut {cut} of {:?}: {other:?}", msg.payload.kind()),
            }
        }
    }
}

#[test]
fn shortened_length_field_fails_or_decodes_a_shorter_message_without_panic() {
    for msg in every_message() {
        let bytes = msg.to_bytes();
        for len in 0..bytes.len() as u32 {
            let mut b = bytes.clone();
            b[0..4].copy_from_slice(&len.to_ne_bytes());
            let _ = decode_messages(&b);
        }
    }
}

#[test]
fn length_below_header_size_is_a_bad_length() {
    let mut b = NlMessage::request(0, 1, XfrmPayload::Done(vec![])).to_bytes();
    b[0..4].copy_from_slice(&8u32.to_ne_bytes());
    assert_eq!(
        NlMessage::decode(&b),
        Err(DecodeError::BadLength {
            what: "nlmsghdr",
            len: 8
        })
    );
}

#[test]
fn error_message_keeps_the_echoed_request() {
    let req = NlMessage::request(
        flags::ACK,
        42,
        XfrmPayload::DelSa(WithAttrs::new(UsersaId::default(), vec![])),
    )
    .to_bytes();
    let mut payload = Vec::new();
    payload.extend_from_slice(&(-libc::ESRCH).to_ne_bytes());
    payload.extend_from_slice(&req);
    let msg = NlMessage {
        flags: 0,
        seq: 42,
        pid: 0,
        payload: XfrmPayload::Other {
            kind: msg_type::ERROR,
            payload,
        },
    };
    let (decoded, _) = NlMessage::decode(&msg.to_bytes()).unwrap();
    match decoded.payload {
        XfrmPayload::Error(e) => {
            assert_eq!(e.error, -libc::ESRCH);
            assert_eq!(e.request.seq, 42);
            assert_eq!(e.request.kind, msg_type::DELSA);
            assert_eq!(e.rest.len(), 24);
        }
        other => panic!("{other:?}"),
    }
}

fn arb_addr() -> impl Strategy<Value = XfrmAddress> {
    any::<[u8; 16]>().prop_map(XfrmAddress)
}

prop_compose! {
    fn arb_selector()(daddr in arb_addr(), saddr in arb_addr(), ports in any::<[u16; 4]>(),
                      family in any::<u16>(), pl in any::<[u8; 3]>(), ifindex in any::<i32>(),
                      user in any::<u32>()) -> XfrmSelector {
        XfrmSelector {
            daddr, saddr, dport: Be16(ports[0]), dport_mask: Be16(ports[1]), sport: Be16(ports[2]),
            sport_mask: Be16(ports[3]), family: AddressFamily(family), prefixlen_d: pl[0],
            prefixlen_s: pl[1], proto: pl[2], ifindex, user,
        }
    }
}

prop_compose! {
    fn arb_sa_info()(sel in arb_selector(), daddr in arb_addr(), saddr in arb_addr(),
                     spi in any::<u32>(), small in any::<[u8; 4]>(), words in any::<[u32; 2]>(),
                     family in any::<u16>(), lft in any::<[u64; 8]>(), cur in any::<[u64; 4]>())
                     -> UsersaInfo {
        UsersaInfo {
            sel,
            id: XfrmId { daddr, spi: Be32(spi), proto: small[0] },
            saddr,
            lft: LifetimeCfg {
                soft_byte_limit: lft[0], hard_byte_limit: lft[1], soft_packet_limit: lft[2],
                hard_packet_limit: lft[3], soft_add_expires_seconds: lft[4],
                hard_add_expires_seconds: lft[5], soft_use_expires_seconds: lft[6],
                hard_use_expires_seconds: lft[7],
            },
            curlft: LifetimeCur { bytes: cur[0], packets: cur[1], add_time: cur[2], use_time: cur[3] },
            stats: XfrmStats::default(),
            seq: words[0],
            reqid: words[1],
            family: AddressFamily(family),
            mode: XfrmMode(small[1]),
            replay_window: small[2],
            flags: small[3],
        }
    }
}

fn arb_attr() -> impl Strategy<Value = XfrmAttr> {
    prop_oneof![
        (".{0,20}", proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(n, k)| XfrmAttr::AlgCrypt(Algo::new(&n, Key::new(k)))),
        (proptest::collection::vec(any::<u8>(), 0..64), any::<u32>()).prop_map(|(k, t)| {
            XfrmAttr::AlgAuthTrunc(AlgoAuth {
                name: AlgName::new("hmac(sha1)"),
                key_bits: (k.len() * 8) as u32,
                trunc_bits: t,
                key: Key::new(k),
            })
        }),
        (any::<u16>(), any::<u16>(), arb_addr()).prop_map(|(s, d, oa)| XfrmAttr::Encap(
            EncapTmpl {
                encap_type: 2,
                sport: Be16(s),
                dport: Be16(d),
                oa
            }
        )),
        any::<[u32; 2]>().prop_map(|m| XfrmAttr::Mark(XfrmMark { v: m[0], m: m[1] })),
        (any::<u32>(), proptest::collection::vec(any::<u32>(), 0..4)).prop_map(|(w, bmp)| {
            XfrmAttr::ReplayEsnVal(ReplayStateEsn {
                replay_window: w,
                bmp,
                ..Default::default()
            })
        }),
        (any::<u32>(), any::<u8>()).prop_map(|(i, f)| XfrmAttr::OffloadDev(UserOffload {
            ifindex: i as i32,
            flags: f
        })),
        (
            100u16..0x3fff,
            proptest::collection::vec(any::<u8>(), 0..12)
        )
            .prop_map(|(kind, payload)| XfrmAttr::Other { kind, payload }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_sa_messages_round_trip(info in arb_sa_info(),
                                        attrs in proptest::collection::vec(arb_attr(), 0..6),
                                        seq in any::<u32>(), pid in any::<u32>()) {
        let msg = NlMessage { flags: flags::MULTI, seq, pid,
                              payload: XfrmPayload::NewSa(WithAttrs::new(info, attrs)) };
        let bytes = msg.to_bytes();
        let (back, _) = NlMessage::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn arbitrary_policy_messages_round_trip(sel in arb_selector(), prio in any::<u32>(),
                                            index in any::<u32>(), small in any::<[u8; 4]>(),
                                            n in 0usize..4) {
        let info = UserpolicyInfo { sel, priority: prio, index, dir: PolicyDir(small[0]),
                                    action: PolicyActionCode(small[1]), flags: small[2],
                                    share: small[3], ..Default::default() };
        let attrs = if n == 0 { vec![] } else { vec![XfrmAttr::Tmpl(vec![UserTmpl::default(); n])] };
        let msg = NlMessage::request(0, 1, XfrmPayload::NewPolicy(WithAttrs::new(info, attrs)));
        let bytes = msg.to_bytes();
        prop_assert_eq!(NlMessage::decode(&bytes).unwrap().0, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_round_trips(
        bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(msgs) = decode_messages(&bytes) {
            let again = encode_messages(&msgs);
            prop_assert_eq!(decode_messages(&again).unwrap(), msgs);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(idx in 0usize..25, pos in any::<usize>(), val in any::<u8>()) {
        let msgs = every_message();
        let msg = &msgs[idx % msgs.len()];
        let mut bytes = msg.to_bytes();
        let p = pos % bytes.len();
        bytes[p] = val;
        if let Ok(msgs) = decode_messages(&bytes) {
            let again = encode_messages(&msgs);
            prop_assert_eq!(decode_messages(&again).unwrap(), msgs);
        }
    }
}
