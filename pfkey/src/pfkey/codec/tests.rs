//! Codec tests: hand-built vectors checked field by field, round trips of every message
//! type in both dialects, truncation and malformation, and property-based round trips.

use super::consts::*;
use super::*;
use crate::Key;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const BOTH: [Dialect; 2] = [Dialect::Linux, Dialect::FreeBsd];

fn v4(last: u8, port: u16) -> SockAddr {
    SockAddr::V4 {
        addr: Ipv4Addr::new(192, 0, 2, last),
        port,
    }
}

fn addr(kind: AddressKind, last: u8) -> Extension {
    Extension::Address(
        kind,
        AddressExt {
            proto: IPSEC_ULPROTO_ANY,
            prefixlen: 32,
            addr: v4(last, 0),
        },
    )
}

fn lifetime(kind: LifetimeKind, n: u64) -> Extension {
    Extension::Lifetime(
        kind,
        LifetimeExt {
            allocations: n as u32,
            bytes: n * 1000,
            addtime: n + 1,
            usetime: n + 2,
        },
    )
}

fn sa(spi: u32) -> Extension {
    Extension::Sa(SaExt {
        spi,
        replay: 32,
        state: SADB_SASTATE_MATURE,
        auth: SADB_AALG_SHA1HMAC,
        encrypt: SADB_X_EALG_AESCBC,
        flags: 0,
    })
}

fn sa2(mode: u8, reqid: u32) -> Extension {
    Extension::Sa2(Sa2Ext {
        mode,
        sequence: 0,
        reqid,
    })
}

fn key(kind: KeyKind, n: usize) -> Extension {
    Extension::Key(kind, KeyExt::new(Key::new((0..n as u8).collect())))
}

fn policy(dir: u8, tunnel: bool) -> Extension {
    Extension::Policy(PolicyExt {
        policy_type: IPSEC_POLICY_IPSEC,
        dir,
        scope: 0,
        id: 0x20,
        priority: 5000,
        requests: vec![IpsecRequest {
            proto: 50,
            mode: if tunnel {
                IPSEC_MODE_TUNNEL
            } else {
                IPSEC_MODE_TRANSPORT
            },
            level: IPSEC_LEVEL_UNIQUE,
            reqid: 0x3001,
            endpoints: tunnel.then(|| (v4(11, 0), v4(12, 0))),
        }],
    })
}

fn comb() -> Comb {
    Comb {
        auth: SADB_AALG_SHA1HMAC,
        encrypt: SADB_X_EALG_AESCBC,
        auth_minbits: 160,
        auth_maxbits: 160,
        encrypt_minbits: 128,
        encrypt_maxbits: 256,
        soft_addtime: 3600,
        hard_addtime: 4000,
        ..Comb::default()
    }
}

/// A representative message for every message type of the dialect, shaped like what the
/// kernels send or accept.
fn every_message_type(d: Dialect) -> Vec<Message> {
    let esp = SADB_SATYPE_ESP;
    let sa_full = |t| {
        Message::new(t, esp, 5, 77)
            .with(sa(0x1234))
            .with(lifetime(LifetimeKind::Hard, 4))
            .with(lifetime(LifetimeKind::Soft, 2))
            .with(lifetime(LifetimeKind::Current, 0))
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12))
            .with(key(KeyKind::Auth, 20))
            .with(key(KeyKind::Encrypt, 16))
            .with(sa2(IPSEC_MODE_TRANSPORT, 0x3001))
            .with(Extension::NatTType(UDP_ENCAP_ESPINUDP))
            .with(Extension::NatTPort(PortKind::Source, 4500))
            .with(Extension::NatTPort(PortKind::Destination, 4500))
    };
    let spd = |t, dir| {
        Message::new(t, 0, 6, 77)
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12))
            .with(policy(dir, true))
    };
    let mut v = vec![
        Message::new(SADB_GETSPI, esp, 1, 77)
            .with(sa2(IPSEC_MODE_ANY, 0x3001))
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12))
            .with(Extension::SpiRange(SpiRangeExt {
                min: 0x100,
                max: 0x0fff_ffff,
            })),
        sa_full(SADB_UPDATE),
        sa_full(SADB_ADD),
        Message::new(SADB_DELETE, esp, 2, 77)
            .with(sa(0x1234))
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12)),
        sa_full(SADB_GET),
        Message::new(SADB_ACQUIRE, esp, 3, 0)
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12))
            .with(Extension::Identity(
                IdentityKind::Source,
                IdentityExt {
                    ident_type: SADB_IDENTTYPE_FQDN,
                    id: 0,
                    data: b"h1.example\0\0\0\0\0\0".to_vec(),
                },
            ))
            .with(Extension::Sensitivity(SensitivityExt {
                dpd: 1,
                sens_level: 2,
                integ_level: 3,
                sens_bitmap: vec![0xff],
                integ_bitmap: vec![1, 2],
            }))
            .with(Extension::Policy(PolicyExt {
                policy_type: IPSEC_POLICY_IPSEC,
                dir: IPSEC_DIR_OUTBOUND,
                scope: 0,
                id: 0x21,
                priority: 0,
                requests: Vec::new(),
            }))
            .with(Extension::Proposal(ProposalExt {
                replay: 32,
                combs: vec![comb(), comb()],
            })),
        Message::new(SADB_REGISTER, esp, 4, 77)
            .with(Extension::Supported(
                SupportedKind::Auth,
                SupportedExt {
                    algs: vec![Alg {
                        id: SADB_AALG_SHA1HMAC,
                        ivlen: 0,
                        minbits: 160,
                        maxbits: 160,
                        reserved: 0,
                    }],
                },
            ))
            .with(Extension::Supported(
                SupportedKind::Encrypt,
                SupportedExt {
                    algs: vec![Alg {
                        id: SADB_X_EALG_AESCBC,
                        ivlen: 8,
                        minbits: 128,
                        maxbits: 256,
                        reserved: 0,
                    }],
                },
            )),
        Message::new(SADB_EXPIRE, esp, 0, 0)
            .with(sa(0x1234))
            .with(lifetime(LifetimeKind::Soft, 2))
            .with(lifetime(LifetimeKind::Current, 1))
            .with(addr(AddressKind::Source, 11))
            .with(addr(AddressKind::Destination, 12))
            .with(sa2(IPSEC_MODE_TUNNEL, 0x3002)),
        Message::new(SADB_FLUSH, SADB_SATYPE_UNSPEC, 7, 77),
        Message::new(SADB_DUMP, SADB_SATYPE_UNSPEC, 8, 77),
        Message::new(SADB_X_PROMISC, 1, 9, 77),
        Message::new(SADB_X_PCHANGE, 0, 10, 77).with(Extension::KmPrivate(KmPrivateExt {
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
        })),
        spd(SADB_X_SPDUPDATE, IPSEC_DIR_OUTBOUND),
        spd(SADB_X_SPDADD, IPSEC_DIR_INBOUND),
        spd(SADB_X_SPDDELETE, IPSEC_DIR_INBOUND),
        spd(SADB_X_SPDGET, IPSEC_DIR_OUTBOUND),
        spd(SADB_X_SPDACQUIRE, IPSEC_DIR_OUTBOUND),
        Message::new(SADB_X_SPDDUMP, 0, 11, 77),
        Message::new(SADB_X_SPDFLUSH, 0, 12, 77),
        spd(SADB_X_SPDSETIDX, IPSEC_DIR_OUTBOUND),
        spd(SADB_X_SPDEXPIRE, IPSEC_DIR_OUTBOUND)
            .with(lifetime(LifetimeKind::Current, 1))
            .with(lifetime(LifetimeKind::Hard, 9)),
        Message::new(SADB_X_SPDDELETE2, 0, 13, 77).with(Extension::Policy(PolicyExt {
            policy_type: IPSEC_POLICY_IPSEC,
            dir: IPSEC_DIR_OUTBOUND,
            id: 0x21,
            ..PolicyExt::default()
        })),
    ];
    match d {
        Dialect::Linux => {
            v.push(
                Message::new(SADB_X_NAT_T_NEW_MAPPING, esp, 14, 0)
                    .with(sa(0x1234))
                    .with(addr(AddressKind::Source, 11))
                    .with(Extension::NatTPort(PortKind::Source, 4500))
                    .with(addr(AddressKind::Destination, 13))
                    .with(Extension::NatTPort(PortKind::Destination, 4501)),
            );
            v.push(
                Message::new(SADB_X_MIGRATE, esp, 0, 0)
                    .with(Extension::KmAddress(KmAddressExt {
                        reserved: 0,
                        local: v4(11, 0),
                        remote: v4(12, 0),
                    }))
                    .with(addr(AddressKind::Source, 11))
                    .with(addr(AddressKind::Destination, 12))
                    .with(policy(IPSEC_DIR_OUTBOUND, true)),
            );
            v.push(
                Message::new(SADB_DUMP, esp, 15, 77)
                    .with(Extension::Filter(FilterExt {
                        saddr: [192, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                        daddr: [198, 51, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                        family: AF_INET,
                        splen: 24,
                        dplen: 24,
                    }))
                    .with(Extension::SecCtx(SecCtxExt {
                        alg: 1,
                        doi: 1,
                        context: b"system_u:object_r:ipsec_spd_t:s0".to_vec(),
                    })),
            );
        }
        Dialect::FreeBsd => {
            v.push(
                sa_full(SADB_UPDATE)
                    .with(addr(AddressKind::NatTOa, 20))
                    .with(addr(AddressKind::NatTOar, 21))
                    .with(Extension::NatTFrag(1400))
                    .with(Extension::SaReplay(4096))
                    .with(addr(AddressKind::NewSource, 30))
                    .with(addr(AddressKind::NewDestination, 31)),
            );
        }
    }
    v
}

#[test]
fn every_message_type_round_trips_in_both_dialects() {
    for d in BOTH {
        let msgs = every_message_type(d);
        let types: std::collections::BTreeSet<u8> = msgs.iter().map(|m| m.msg_type).collect();
        assert_eq!(types.len(), usize::from(d.max_message_type()), "{d:?}");
        for m in msgs {
            assert!(m.fits(d));
            let bytes = m.encode(d);
            assert_eq!(bytes.len() % 8, 0);
            let back =
                decode(&bytes, d).unwrap_or_else(|e| panic!("{d:?} type {}: {e}", m.msg_type));
            assert_eq!(back, m);
            assert_eq!(back.encode(d), bytes);
        }
    }
}

#[test]
fn every_truncation_of_a_valid_message_is_a_decode_error() {
    for d in BOTH {
        for m in every_message_type(d) {
            let bytes = m.encode(d);
            for cut in 0..bytes.len() {
                assert!(
                    decode(&bytes[..cut], d).is_err(),
                    "{d:?} type {} cut {cut}",
                    m.msg_type
                );
                // Keep the length field consistent with the cut: the extension walk itself
                // must notice.
                let mut fixed = bytes[..cut - cut % 8].to_vec();
                if fixed.len() >= 16 {
                    let words = (fixed.len() / 8) as u16;
                    fixed[4..6].copy_from_slice(&words.to_ne_bytes());
                    let _ = decode(&fixed, d); // must not panic; may or may not decode
                }
            }
        }
    }
}

#[cfg(target_endian = "little")]
#[test]
fn linux_add_decodes_field_by_field() {
    #[rustfmt::skip]
    let bytes: Vec<u8> = vec![
        // sadb_msg: v2, ADD, errno 0, ESP, len 9 words, reserved 0, seq 7, pid 0x1234
        2, 3, 0, 3, 9, 0, 0, 0, 7, 0, 0, 0, 0x34, 0x12, 0, 0,
        // sadb_sa: len 2, type 1, spi 0x00001234 (BE), replay 32, MATURE, SHA1, AES-CBC, flags 0
        2, 0, 1, 0, 0, 0, 0x12, 0x34, 32, 1, 3, 12, 0, 0, 0, 0,
        // sadb_address SRC: len 3, type 5, proto 255, prefix 32, sockaddr_in 192.0.2.11:0
        3, 0, 5, 0, 255, 32, 0, 0, 2, 0, 0, 0, 192, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0,
        // sadb_x_sa2: len 2, type 19, mode tunnel, reqid 0x3001
        2, 0, 19, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x30, 0, 0,
    ];
    let m = decode(&bytes, Dialect::Linux).unwrap();
    assert_eq!(
        (m.msg_type, m.satype, m.seq, m.pid),
        (SADB_ADD, SADB_SATYPE_ESP, 7, 0x1234)
    );
    let sa = m.sa().unwrap();
    assert_eq!(sa.spi, 0x1234);
    assert_eq!((sa.replay, sa.state, sa.auth, sa.encrypt), (32, 1, 3, 12));
    let src = m.address(AddressKind::Source).unwrap();
    assert_eq!((src.proto, src.prefixlen), (255, 32));
    assert_eq!(src.addr, v4(11, 0));
    let sa2 = m.sa2().unwrap();
    assert_eq!((sa2.mode, sa2.reqid), (IPSEC_MODE_TUNNEL, 0x3001));
    assert_eq!(m.encode(Dialect::Linux), bytes);
}

#[cfg(target_endian = "little")]
#[test]
fn freebsd_spdadd_with_tunnel_request_decodes_field_by_field() {
    #[rustfmt::skip]
    let bytes: Vec<u8> = vec![
        // sadb_msg: v2, X_SPDADD, len 9 words
        2, 14, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
        // sadb_x_policy: len 7, type 18, IPSEC, dir out, scope global, id 0, priority 100
        7, 0, 18, 0, 2, 0, 2, 1, 0, 0, 0, 0, 100, 0, 0, 0,
        // sadb_x_ipsecrequest: len 40 octets, ESP, tunnel, unique, reqid 0x3001 (16 bits)
        40, 0, 50, 0, 2, 3, 0x01, 0x30,
        // BSD sockaddr_in 192.0.2.11, sockaddr_in 192.0.2.12
        16, 2, 0, 0, 192, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0,
        16, 2, 0, 0, 192, 0, 2, 12, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let m = decode(&bytes, Dialect::FreeBsd).unwrap();
    let p = m.policy().unwrap();
    assert_eq!((p.policy_type, p.dir, p.scope, p.priority), (2, 2, 1, 100));
    let rq = &p.requests[0];
    assert_eq!((rq.proto, rq.mode, rq.level, rq.reqid), (50, 2, 3, 0x3001));
    assert_eq!(rq.endpoints, Some((v4(11, 0), v4(12, 0))));
    assert_eq!(m.encode(Dialect::FreeBsd), bytes);
    // The same octets are not a valid Linux message (16-octet requests, u16 family).
    assert!(decode(&bytes, Dialect::Linux).is_err());
}

#[test]
fn ipsec_request_is_16_octets_on_linux_and_8_on_freebsd() {
    let pol = |d| {
        let m = Message::new(SADB_X_SPDADD, 0, 1, 1).with(policy(IPSEC_DIR_OUTBOUND, false));
        m.encode(d).len()
    };
    assert_eq!(pol(Dialect::Linux), 16 + 16 + 16);
    assert_eq!(pol(Dialect::FreeBsd), 16 + 16 + 8);
}

#[test]
fn extensions_above_23_mean_different_things_per_dialect() {
    let m = Message::new(SADB_UPDATE, 3, 1, 1).with(Extension::SaReplay(64));
    let bsd = m.encode(Dialect::FreeBsd);
    assert_eq!(u16::from_ne_bytes([bsd[18], bsd[19]]), 26);
    // Number 26 on Linux is X_FILTER, 40 octets: the 8-octet SA_REPLAY is too short.
    assert!(matches!(
        decode(&bsd, Dialect::Linux),
        Err(DecodeError::Truncated {
            what: "X_FILTER",
            ..
        })
    ));
    assert!(!m.fits(Dialect::Linux));
    assert_eq!(
        m.encode(Dialect::Linux).len(),
        16,
        "foreign extensions are left out"
    );
}

#[test]
fn linux_only_message_types_are_rejected_in_the_freebsd_dialect() {
    let bytes = Message::new(SADB_X_MIGRATE, 3, 0, 0).encode(Dialect::Linux);
    assert!(decode(&bytes, Dialect::Linux).is_ok());
    assert!(matches!(
        decode(&bytes, Dialect::FreeBsd),
        Err(DecodeError::BadValue {
            what: "sadb_msg_type",
            value: 24
        })
    ));
}

#[test]
fn zero_length_extension_is_rejected() {
    let mut bytes = Message::new(SADB_GET, 3, 1, 1)
        .with(sa(1))
        .encode(Dialect::Linux);
    bytes[16] = 0;
    bytes[17] = 0;
    assert!(matches!(
        decode(&bytes, Dialect::Linux),
        Err(DecodeError::BadLength { len: 0, .. })
    ));
}

#[test]
fn extension_longer_than_the_message_is_truncated() {
    let mut bytes = Message::new(SADB_GET, 3, 1, 1)
        .with(sa(1))
        .encode(Dialect::Linux);
    bytes[16..18].copy_from_slice(&9u16.to_ne_bytes());
    assert!(matches!(
        decode(&bytes, Dialect::Linux),
        Err(DecodeError::Truncated { what: "SA", .. })
    ));
}

#[test]
fn message_length_mismatch_is_rejected() {
    let bytes = Message::new(SADB_GET, 3, 1, 1)
        .with(sa(1))
        .encode(Dialect::Linux);
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode(&longer, Dialect::Linux),
        Err(DecodeError::BadLength {
            what: "sadb_msg_len",
            ..
        })
    ));
    let mut short_len = bytes.clone();
    short_len[4] = 1;
    assert!(decode(&short_len, Dialect::Linux).is_err());
    let mut long_len = bytes;
    long_len[4] = 9;
    assert!(matches!(
        decode(&long_len, Dialect::Linux),
        Err(DecodeError::Truncated {
            what: "sadb_msg",
            ..
        })
    ));
}

#[test]
fn duplicated_extension_is_rejected() {
    let bytes = Message::new(SADB_GET, 3, 1, 1)
        .with(sa(1))
        .with(sa(2))
        .encode(Dialect::FreeBsd);
    assert_eq!(
        decode(&bytes, Dialect::FreeBsd),
        Err(DecodeError::Duplicate("SA"))
    );
}

#[test]
fn wrong_version_is_rejected() {
    let mut bytes = Message::new(SADB_FLUSH, 0, 1, 1).encode(Dialect::Linux);
    bytes[0] = 1;
    assert!(matches!(
        decode(&bytes, Dialect::Linux),
        Err(DecodeError::BadValue {
            what: "sadb_msg_version",
            ..
        })
    ));
}

#[test]
fn unknown_extension_round_trips_as_raw_octets() {
    let m = Message::new(SADB_GET, 3, 1, 1).with(Extension::Unknown {
        ext_type: 40,
        data: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    });
    for d in BOTH {
        let bytes = m.encode(d);
        assert_eq!(decode(&bytes, d).unwrap(), m);
    }
}

#[test]
fn key_extension_length_must_match_its_bits() {
    let mut bytes = Message::new(SADB_ADD, 3, 1, 1)
        .with(key(KeyKind::Encrypt, 16))
        .encode(Dialect::Linux);
    // Claim 256 bits in a 16-octet key extension.
    bytes[20..22].copy_from_slice(&256u16.to_ne_bytes());
    assert!(matches!(
        decode(&bytes, Dialect::Linux),
        Err(DecodeError::BadLength {
            what: "sadb_key",
            ..
        })
    ));
}

#[test]
fn ipsec_request_longer_than_its_policy_is_rejected() {
    for d in BOTH {
        let mut bytes = Message::new(SADB_X_SPDADD, 0, 1, 1)
            .with(policy(IPSEC_DIR_OUTBOUND, true))
            .encode(d);
        // First request's length field (right after the 16-octet policy header).
        bytes[32..34].copy_from_slice(&200u16.to_ne_bytes());
        assert!(decode(&bytes, d).is_err());
        bytes[32..34].copy_from_slice(&0u16.to_ne_bytes());
        assert!(
            decode(&bytes, d).is_err(),
            "zero-length request must not loop"
        );
    }
}

#[test]
fn ipv6_addresses_round_trip_in_both_dialects() {
    let a = SockAddr::V6 {
        addr: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        port: 500,
        flowinfo: 0,
        scope_id: 3,
    };
    let m = Message::new(SADB_X_SPDADD, 0, 1, 1).with(Extension::Address(
        AddressKind::Source,
        AddressExt {
            proto: 17,
            prefixlen: 64,
            addr: a,
        },
    ));
    for d in BOTH {
        let bytes = m.encode(d);
        assert_eq!(bytes.len(), 16 + 8 + 32);
        assert_eq!(decode(&bytes, d).unwrap(), m);
    }
}

#[test]
fn bypass_policy_extension_is_sixteen_octets() {
    let p = PolicyExt {
        policy_type: IPSEC_POLICY_BYPASS,
        dir: IPSEC_DIR_INBOUND,
        ..PolicyExt::default()
    };
    let b = p.to_bytes(Dialect::Linux);
    assert_eq!(b.len(), 16);
    assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 2);
    assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 18);
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), IPSEC_POLICY_BYPASS);
    assert_eq!(b[6], IPSEC_DIR_INBOUND);
}

// ---- property-based round trips ----

fn sockaddr_strategy(d: Dialect, last: bool) -> BoxedStrategy<SockAddr> {
    let ip4 = (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, port)| SockAddr::V4 {
        addr: Ipv4Addr::from(a),
        port,
    });
    let ip6 = (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
        |(a, port, flowinfo, scope_id)| SockAddr::V6 {
            addr: Ipv6Addr::from(a),
            port,
            flowinfo,
            scope_id,
        },
    );
    match (d, last) {
        // Linux sockaddrs of other families carry no length: only last, filling the
        // extension (6 mod 8 octets after the 8-octet address header and 2-octet family).
        (Dialect::Linux, true) => prop_oneof![
            ip4,
            ip6,
            (11u16..=40, prop::collection::vec(any::<u8>(), 0..3)).prop_map(|(family, words)| {
                SockAddr::Other {
                    family,
                    data: {
                        let mut v = vec![0u8; 6 + 8 * words.len()];
                        v.iter_mut()
                            .zip(words.iter().cycle())
                            .for_each(|(a, b)| *a = *b);
                        v
                    },
                }
            })
        ]
        .boxed(),
        (Dialect::Linux, false) => prop_oneof![ip4, ip6].boxed(),
        (Dialect::FreeBsd, _) => prop_oneof![
            ip4,
            ip6,
            (3u16..=27, prop::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(family, data)| SockAddr::Other { family, data })
        ]
        .boxed(),
    }
}

fn address_ext(d: Dialect) -> impl Strategy<Value = AddressExt> {
    (any::<u8>(), any::<u8>(), sockaddr_strategy(d, true)).prop_map(|(proto, prefixlen, addr)| {
        AddressExt {
            proto,
            prefixlen,
            addr,
        }
    })
}

fn request(d: Dialect) -> impl Strategy<Value = IpsecRequest> {
    let reqid = match d {
        Dialect::Linux => any::<u32>().boxed(),
        Dialect::FreeBsd => (0u32..=0xffff).boxed(),
    };
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        reqid,
        prop::option::of((sockaddr_strategy(d, false), sockaddr_strategy(d, false))),
    )
        .prop_map(|(proto, mode, level, reqid, endpoints)| IpsecRequest {
            proto,
            mode,
            level,
            reqid,
            endpoints,
        })
}

fn comb_strategy() -> impl Strategy<Value = Comb> {
    (any::<[u16; 8]>(), any::<[u64; 6]>(), any::<u32>()).prop_map(|(a, b, c)| Comb {
        auth: a[0] as u8,
        encrypt: (a[0] >> 8) as u8,
        flags: a[1],
        auth_minbits: a[2],
        auth_maxbits: a[3],
        encrypt_minbits: a[4],
        encrypt_maxbits: a[5],
        reserved: c,
        soft_allocations: u32::from(a[6]),
        hard_allocations: u32::from(a[7]),
        soft_bytes: b[0],
        hard_bytes: b[1],
        soft_addtime: b[2],
        hard_addtime: b[3],
        soft_usetime: b[4],
        hard_usetime: b[5],
    })
}

fn words(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u64>(), 0..max)
        .prop_map(|w| w.iter().flat_map(|x| x.to_ne_bytes()).collect())
}

fn extension(d: Dialect) -> BoxedStrategy<Extension> {
    let mut s: Vec<BoxedStrategy<Extension>> = vec![
        (any::<u32>(), any::<[u8; 4]>(), any::<u32>())
            .prop_map(|(spi, b, flags)| {
                Extension::Sa(SaExt {
                    spi,
                    replay: b[0],
                    state: b[1],
                    auth: b[2],
                    encrypt: b[3],
                    flags,
                })
            })
            .boxed(),
        (
            prop_oneof![
                Just(LifetimeKind::Current),
                Just(LifetimeKind::Hard),
                Just(LifetimeKind::Soft)
            ],
            any::<(u32, u64, u64, u64)>(),
        )
            .prop_map(|(k, (a, b, c, u))| {
                Extension::Lifetime(
                    k,
                    LifetimeExt {
                        allocations: a,
                        bytes: b,
                        addtime: c,
                        usetime: u,
                    },
                )
            })
            .boxed(),
        (
            prop_oneof![
                Just(AddressKind::Source),
                Just(AddressKind::Destination),
                Just(AddressKind::Proxy),
                Just(AddressKind::NatTOa)
            ],
            address_ext(d),
        )
            .prop_map(|(k, a)| Extension::Address(k, a))
            .boxed(),
        (
            prop_oneof![Just(KeyKind::Auth), Just(KeyKind::Encrypt)],
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(k, key)| Extension::Key(k, KeyExt::new(Key::new(key))))
            .boxed(),
        (
            prop_oneof![Just(IdentityKind::Source), Just(IdentityKind::Destination)],
            any::<u16>(),
            any::<u64>(),
            words(4),
        )
            .prop_map(|(k, ident_type, id, data)| {
                Extension::Identity(
                    k,
                    IdentityExt {
                        ident_type,
                        id,
                        data,
                    },
                )
            })
            .boxed(),
        (
            any::<(u32, u8, u8)>(),
            prop::collection::vec(any::<u64>(), 0..3),
            prop::collection::vec(any::<u64>(), 0..3),
        )
            .prop_map(|((dpd, sl, il), sens_bitmap, integ_bitmap)| {
                Extension::Sensitivity(SensitivityExt {
                    dpd,
                    sens_level: sl,
                    integ_level: il,
                    sens_bitmap,
                    integ_bitmap,
                })
            })
            .boxed(),
        (any::<u8>(), prop::collection::vec(comb_strategy(), 0..3))
            .prop_map(|(replay, combs)| Extension::Proposal(ProposalExt { replay, combs }))
            .boxed(),
        (
            prop_oneof![Just(SupportedKind::Auth), Just(SupportedKind::Encrypt)],
            prop::collection::vec(any::<(u8, u8, u16, u16, u16)>(), 0..5),
        )
            .prop_map(|(k, algs)| {
                Extension::Supported(
                    k,
                    SupportedExt {
                        algs: algs
                            .into_iter()
                            .map(|(id, ivlen, minbits, maxbits, reserved)| Alg {
                                id,
                                ivlen,
                                minbits,
                                maxbits,
                                reserved,
                            })
                            .collect(),
                    },
                )
            })
            .boxed(),
        any::<(u32, u32)>()
            .prop_map(|(min, max)| Extension::SpiRange(SpiRangeExt { min, max }))
            .boxed(),
        words(4)
            .prop_map(|data| Extension::KmPrivate(KmPrivateExt { data }))
            .boxed(),
        (
            any::<(u16, u8, u8, u32, u32)>(),
            prop::collection::vec(request(d), 0..3),
        )
            .prop_map(|((policy_type, dir, scope, id, priority), requests)| {
                Extension::Policy(PolicyExt {
                    policy_type,
                    dir,
                    scope,
                    id,
                    priority,
                    requests,
                })
            })
            .boxed(),
        any::<(u8, u32, u32)>()
            .prop_map(|(mode, sequence, reqid)| {
                Extension::Sa2(Sa2Ext {
                    mode,
                    sequence,
                    reqid,
                })
            })
            .boxed(),
        any::<u8>().prop_map(Extension::NatTType).boxed(),
        (
            prop_oneof![Just(PortKind::Source), Just(PortKind::Destination)],
            any::<u16>(),
        )
            .prop_map(|(k, p)| Extension::NatTPort(k, p))
            .boxed(),
        (29u16..=u16::MAX, words(4))
            .prop_map(|(ext_type, mut data)| {
                data.extend_from_slice(&[0xaa; 4]);
                Extension::Unknown { ext_type, data }
            })
            .boxed(),
    ];
    match d {
        Dialect::Linux => {
            s.push(
                (
                    any::<u8>(),
                    any::<u8>(),
                    prop::collection::vec(any::<u8>(), 0..40),
                )
                    .prop_map(|(alg, doi, context)| {
                        Extension::SecCtx(SecCtxExt { alg, doi, context })
                    })
                    .boxed(),
            );
            s.push(
                (
                    any::<u32>(),
                    sockaddr_strategy(d, false),
                    sockaddr_strategy(d, false),
                )
                    .prop_map(|(reserved, local, remote)| {
                        Extension::KmAddress(KmAddressExt {
                            reserved,
                            local,
                            remote,
                        })
                    })
                    .boxed(),
            );
            s.push(
                (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<(u16, u8, u8)>())
                    .prop_map(|(saddr, daddr, (family, splen, dplen))| {
                        Extension::Filter(FilterExt {
                            saddr,
                            daddr,
                            family,
                            splen,
                            dplen,
                        })
                    })
                    .boxed(),
            );
        }
        Dialect::FreeBsd => {
            s.push(
                (
                    prop_oneof![
                        Just(AddressKind::NatTOar),
                        Just(AddressKind::NewSource),
                        Just(AddressKind::NewDestination)
                    ],
                    address_ext(d),
                )
                    .prop_map(|(k, a)| Extension::Address(k, a))
                    .boxed(),
            );
            s.push(any::<u16>().prop_map(Extension::NatTFrag).boxed());
            s.push(any::<u32>().prop_map(Extension::SaReplay).boxed());
        }
    }
    prop::strategy::Union::new(s).boxed()
}

fn message(d: Dialect) -> impl Strategy<Value = Message> {
    (
        0..=d.max_message_type(),
        any::<(u8, u8, u16, u32, u32)>(),
        prop::collection::vec(extension(d), 0..8),
    )
        .prop_map(
            move |(msg_type, (errno, satype, reserved, seq, pid), exts)| {
                // One extension per number (RFC 2367): keep the first of each.
                let mut seen = Vec::new();
                let extensions = exts
                    .into_iter()
                    .filter(|e| {
                        let n = e.number(d);
                        let fresh = !seen.contains(&n);
                        seen.push(n);
                        fresh
                    })
                    .collect();
                Message {
                    msg_type,
                    errno,
                    satype,
                    reserved,
                    seq,
                    pid,
                    extensions,
                }
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_linux_messages_round_trip(m in message(Dialect::Linux)) {
        let bytes = m.encode(Dialect::Linux);
        let back = decode(&bytes, Dialect::Linux).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(Dialect::Linux), bytes);
    }

    #[test]
    fn arbitrary_freebsd_messages_round_trip(m in message(Dialect::FreeBsd)) {
        let bytes = m.encode(Dialect::FreeBsd);
        let back = decode(&bytes, Dialect::FreeBsd).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(Dialect::FreeBsd), bytes);
    }

    #[test]
    fn arbitrary_octets_never_panic_and_reencode_stably(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for d in BOTH {
            let mut b = bytes.clone();
            // Make many inputs get past the header checks.
            if b.len() >= 16 {
                b[0] = 2;
                b[1] %= 25;
                let words = (b.len() / 8) as u16;
                b.truncate(usize::from(words) * 8);
                b[4..6].copy_from_slice(&words.to_ne_bytes());
            }
            if let Ok(m) = decode(&b, d) {
                let again = decode(&m.encode(d), d);
                prop_assert_eq!(again.as_ref(), Ok(&m));
            }
        }
    }
}
