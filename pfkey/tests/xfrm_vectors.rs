//! Captured kernel XFRM replies (`tests/vectors/xfrm/*.bin`, provenance in the `.txt` next to
//! each): every vector decodes, re-encodes to identical bytes, and its key fields read as the
//! capture note says.

use std::net::IpAddr;
use std::path::PathBuf;

use pfkey::xfrm::codec::{
    decode_messages, encode_messages, msg_type, NlMessage, SpdAttr, XfrmAttr, XfrmPayload,
};
use pfkey::xfrm::convert;
use pfkey::{
    Direction, EncryptionAlgorithm, IntegrityAlgorithm, Mode, PolicyAction, SecurityProtocol,
};

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/xfrm");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "bin").then(|| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                assert!(
                    p.with_extension("txt").exists(),
                    "{name}.bin has no provenance note"
                );
                (name, std::fs::read(&p).unwrap())
            })
        })
        .collect();
    out.sort();
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn payloads(msgs: &[NlMessage]) -> Vec<&XfrmPayload> {
    msgs.iter().map(|m| &m.payload).collect()
}

#[test]
fn every_vector_decodes_and_re_encodes_to_identical_bytes() {
    let all = vectors();
    assert!(all.len() >= 3, "vectors present: {}", all.len());
    for (name, bytes) in &all {
        let msgs = decode_messages(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!msgs.is_empty(), "{name}");
        assert_eq!(
            &encode_messages(&msgs),
            bytes,
            "{name}: re-encoding differs"
        );
        check_fields(name, &msgs);
    }
}

#[test]
fn every_truncated_vector_fails_or_decodes_fewer_messages_without_panic() {
    for (name, bytes) in vectors() {
        let full = decode_messages(&bytes).unwrap().len();
        for cut in 0..bytes.len() {
            if let Ok(msgs) = decode_messages(&bytes[..cut]) {
                assert!(msgs.len() < full || cut == bytes.len(), "{name} cut {cut}");
            }
        }
    }
}

fn the_sa(msgs: &[NlMessage], spi: u32) -> pfkey::SecurityAssociation {
    msgs.iter()
        .find_map(|m| match &m.payload {
            XfrmPayload::NewSa(sa) if sa.body.id.spi.0 == spi => {
                Some(convert::sa_from_wire(sa).unwrap())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("SA {spi:#x} in vector"))
}

fn check_fields(name: &str, msgs: &[NlMessage]) {
    let p = payloads(msgs);
    match name {
        "host-policy-dump" | "lab-policy-dump" => {
            assert!(
                matches!(p.last(), Some(XfrmPayload::Done(_))),
                "{name} ends with DONE"
            );
            let policies: Vec<_> = msgs
                .iter()
                .filter_map(|m| match &m.payload {
                    XfrmPayload::NewPolicy(pol) => Some(convert::policy_from_wire(pol).unwrap()),
                    _ => None,
                })
                .collect();
            assert_eq!(policies.len(), 2, "{name}");
            let out = policies
                .iter()
                .find(|p| p.id.direction == Direction::Out)
                .unwrap();
            assert_eq!(out.priority, 1000);
            assert_eq!(out.id.selector.destination.addr, ip("198.51.100.2"));
            match &out.action {
                PolicyAction::Protect(ts) => {
                    assert_eq!(
                        (ts[0].protocol, ts[0].mode, ts[0].reqid),
                        (SecurityProtocol::Esp, Mode::Transport, 0x3001)
                    )
                }
                other => panic!("{other:?}"),
            }
            let inbound = policies
                .iter()
                .find(|p| p.id.direction == Direction::In)
                .unwrap();
            assert_eq!(inbound.id.selector.source.len, 24);
            match &inbound.action {
                PolicyAction::Protect(ts) => {
                    assert_eq!(ts[0].tunnel, Some((ip("192.0.2.11"), ip("192.0.2.12"))))
                }
                other => panic!("{other:?}"),
            }
        }
        "host-spdinfo" | "lab-spdinfo" => {
            let XfrmPayload::NewSpdInfo(info) = p[0] else {
                panic!("{name}: {:?}", p[0])
            };
            let counts = info.attrs.iter().find_map(|a| match a {
                SpdAttr::Info(c) => Some(*c),
                _ => None,
            });
            let c = counts.expect("XFRMA_SPD_INFO");
            assert_eq!((c.incnt, c.outcnt, c.fwdcnt), (1, 1, 0), "{name}");
            assert!(info.attrs.iter().any(|a| matches!(a, SpdAttr::HashInfo(_))));
        }
        "host-error-eexist" | "lab-error-eexist" => {
            let XfrmPayload::Error(e) = p[0] else {
                panic!("{name}: {:?}", p[0])
            };
            assert_eq!(e.error, -libc::EEXIST);
            assert_eq!(e.request.kind, msg_type::NEWPOLICY);
            assert_eq!(e.request.seq, msgs[0].seq);
        }
        "lab-sa-dump" => {
            assert!(matches!(p.last(), Some(XfrmPayload::Done(_))));
            let sa = the_sa(msgs, 0x1001);
            assert_eq!(sa.source, ip("192.0.2.11"));
            assert_eq!(sa.id.destination, ip("192.0.2.12"));
            assert_eq!(sa.reqid, 7);
            assert_eq!(
                sa.encryption.as_ref().map(|e| e.0),
                Some(EncryptionAlgorithm::AesCbc)
            );
            assert_eq!(
                sa.integrity.as_ref().map(|i| i.0),
                Some(IntegrityAlgorithm::HmacSha256_128)
            );
            // The kernel reports the integrity algorithm twice: legacy and with truncation.
            let XfrmPayload::NewSa(raw) = p[0] else {
                panic!()
            };
            assert!(raw.attrs.iter().any(|a| matches!(a, XfrmAttr::AlgAuth(_))));
            assert!(raw
                .attrs
                .iter()
                .any(|a| matches!(a, XfrmAttr::AlgAuthTrunc(t) if t.trunc_bits == 128)));
        }
        "lab-acquire" => {
            let XfrmPayload::Acquire(a) = p[0] else {
                panic!("{name}: {:?}", p[0])
            };
            let acq = convert::acquire_from_wire(a).unwrap();
            assert_eq!(acq.source, ip("192.0.2.11"));
            assert_eq!(acq.destination, ip("192.0.2.12"));
            assert_eq!(acq.policy_direction, Some(Direction::Out));
            let t = acq.template.unwrap();
            assert_eq!((t.protocol, t.reqid), (SecurityProtocol::Esp, 0x3001));
            assert!(acq.sequence != 0);
        }
        "lab-expire-soft" | "lab-expire-hard" => {
            let XfrmPayload::Expire(e) = p[0] else {
                panic!("{name}: {:?}", p[0])
            };
            let ex = convert::expire_from_wire(e).unwrap();
            assert_eq!(ex.hard, name.ends_with("hard"));
            assert_eq!(ex.id.spi, 0x2001);
            assert_eq!(ex.reqid, Some(0x3001));
        }
        other => panic!("vector {other} has no field checks; add them here"),
    }
}
