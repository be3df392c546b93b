//! PF_KEY vectors: every `tests/vectors/pfkey/<dialect>/*.bin` decodes, re-encodes to the
//! same octets, and carries the fields its `.txt` note describes. Linux vectors were captured
//! from Debian's 6.1 kernel in the kernel lab (`lab_pfkey::captures_kernel_messages`);
//! FreeBSD ones are hand-built from the header layouts (`freebsd/make_vectors.py`).

#![cfg(target_endian = "little")]

use std::net::IpAddr;
use std::path::PathBuf;

use pfkey::pfkey::codec::consts::*;
use pfkey::pfkey::codec::{
    AddressKind, Dialect, Extension, KeyKind, LifetimeKind, Message, SupportedKind,
};
use pfkey::pfkey::map;
use pfkey::{
    Direction, EncryptionAlgorithm, IntegrityAlgorithm, KernelEvent, Mode, PolicyAction,
    SecurityProtocol, TemplateLevel, UpperLayer,
};

fn dir(dialect: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/pfkey")
        .join(dialect)
}

fn load(dialect: &str, name: &str, d: Dialect) -> Message {
    let path = dir(dialect).join(format!("{name}.bin"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = Message::decode(&bytes, d).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.encode(d), bytes, "{name} re-encodes to identical octets");
    m
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_vector_round_trips_to_identical_octets() {
    for (sub, d) in [("linux", Dialect::Linux), ("freebsd", Dialect::FreeBsd)] {
        let mut n = 0;
        for entry in std::fs::read_dir(dir(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bin") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                assert!(
                    path.with_extension("txt").exists(),
                    "{name} has no .txt note"
                );
                load(sub, &name, d);
                n += 1;
            }
        }
        assert!(n >= 4, "{sub}: only {n} vectors");
    }
}

#[test]
fn linux_register_reply_lists_supported_algorithms() {
    let m = load("linux", "register_esp_reply", Dialect::Linux);
    assert_eq!(
        (m.msg_type, m.satype, m.errno),
        (SADB_REGISTER, SADB_SATYPE_ESP, 0)
    );
    let algs = |kind| {
        m.extensions
            .iter()
            .find_map(|e| match e {
                Extension::Supported(k, s) if *k == kind => Some(s.algs.clone()),
                _ => None,
            })
            .unwrap()
    };
    let auth = algs(SupportedKind::Auth);
    let sha1 = auth.iter().find(|a| a.id == SADB_AALG_SHA1HMAC).unwrap();
    assert_eq!((sha1.minbits, sha1.maxbits), (160, 160));
    let enc = algs(SupportedKind::Encrypt);
    assert!(enc.iter().any(|a| a.id == SADB_EALG_3DESCBC));
    let aes = enc.iter().find(|a| a.id == SADB_X_EALG_AESCBC).unwrap();
    assert_eq!((aes.ivlen, aes.minbits, aes.maxbits), (8, 128, 256));
    // af_key lists no AEAD ids: AES-GCM cannot be installed through it.
    assert!(!enc.iter().any(|a| (18..=20).contains(&a.id)));
}

#[test]
fn linux_sa_dump_maps_to_the_installed_sa() {
    let m = load("linux", "dump_esp_3des_sha1_sa", Dialect::Linux);
    assert_eq!(
        (m.msg_type, m.seq),
        (SADB_DUMP, 0),
        "single entry: last has seq 0"
    );
    assert_eq!(m.key(KeyKind::Encrypt).unwrap().bits, 192);
    assert_eq!(m.key(KeyKind::Auth).unwrap().bits, 160);
    // af_key reports the (unset) SA selector source as ADDRESS_PROXY 0.0.0.0/0.
    assert!(m.address(AddressKind::Proxy).is_some());
    let sa = map::sa_from_message(&m, Dialect::Linux).unwrap();
    assert_eq!(sa.id.spi, 0x6001);
    assert_eq!(sa.id.protocol, SecurityProtocol::Esp);
    assert_eq!(
        (sa.source, sa.id.destination),
        (ip("192.0.2.12"), ip("192.0.2.11"))
    );
    assert_eq!(
        (sa.mode, sa.reqid, sa.replay_window),
        (Mode::Transport, 0x3001, 32)
    );
    assert_eq!(
        sa.encryption.as_ref().unwrap().0,
        EncryptionAlgorithm::TripleDesCbc
    );
    assert_eq!(
        sa.integrity.as_ref().unwrap().0,
        IntegrityAlgorithm::HmacSha1_96
    );
    assert_eq!(sa.lifetime.soft_add_seconds, Some(2));
    assert_eq!(sa.lifetime.hard_add_seconds, Some(4));
    assert!(sa.current.add_time > 0);
}

#[test]
fn linux_spd_dump_maps_to_the_installed_policy() {
    let m = load("linux", "spddump_transport_out", Dialect::Linux);
    assert_eq!(m.msg_type, SADB_X_SPDDUMP);
    assert!(m.lifetime(LifetimeKind::Current).is_some());
    let p = map::policy_from_message(&m, Dialect::Linux).unwrap();
    assert_eq!(p.id.direction, Direction::Out);
    assert_eq!(p.priority, 5000);
    assert_eq!(p.id.selector.source.addr, ip("192.0.2.11"));
    assert_eq!(p.id.selector.destination.len, 32);
    assert_eq!(p.id.selector.upper, UpperLayer::Any);
    let PolicyAction::Protect(t) = &p.action else {
        panic!("{p:?}")
    };
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].protocol, t[0].mode, t[0].reqid),
        (SecurityProtocol::Esp, Mode::Transport, 0x3001)
    );
    assert_eq!(m.policy().unwrap().requests[0].level, IPSEC_LEVEL_UNIQUE);
}

#[test]
fn linux_acquire_names_addresses_and_policy() {
    let m = load("linux", "acquire_esp", Dialect::Linux);
    assert_eq!((m.msg_type, m.pid), (SADB_ACQUIRE, 0));
    assert!(m
        .find(pfkey::pfkey::codec::ExtensionType::Proposal)
        .is_some());
    let Some(KernelEvent::Acquire(a)) = map::event_from_message(&m, Dialect::Linux).unwrap() else {
        panic!("not an acquire")
    };
    assert_eq!(
        (a.source, a.destination),
        (ip("192.0.2.11"), ip("192.0.2.12"))
    );
    assert_eq!(a.sequence, m.seq);
    assert_eq!(a.policy_direction, Some(Direction::Out));
    assert!(a.policy_index.is_some());
    assert_eq!(a.template, None, "Linux ACQUIRE carries no X_SA2");
}

#[test]
fn linux_expires_are_soft_then_hard() {
    for (name, hard) in [("expire_soft", false), ("expire_hard", true)] {
        let m = load("linux", name, Dialect::Linux);
        assert!(m.key(KeyKind::Auth).is_none(), "EXPIRE carries no keys");
        let Some(KernelEvent::Expire(e)) = map::event_from_message(&m, Dialect::Linux).unwrap()
        else {
            panic!("{name}: not an expire")
        };
        assert_eq!(e.hard, hard, "{name}");
        assert_eq!(e.id.spi, 0x6001);
        assert_eq!(e.reqid, Some(0x3001));
    }
}

#[test]
fn freebsd_add_converts_replay_octets_and_keeps_sha256() {
    let d = Dialect::FreeBsd;
    let m = load("freebsd", "add_esp_aescbc_sha256_natt", d);
    let sa = map::sa_from_message(&m, d).unwrap();
    assert_eq!(sa.id.spi, 0x1234_5678);
    assert_eq!((sa.mode, sa.reqid), (Mode::Tunnel, 0x3001));
    assert_eq!(sa.replay_window, 4096, "X_SA_REPLAY wins over 255 octets");
    assert!(sa.esn);
    assert_eq!(
        sa.integrity.as_ref().unwrap().0,
        IntegrityAlgorithm::HmacSha256_128
    );
    assert_eq!(sa.integrity.as_ref().unwrap().1.as_bytes().len(), 32);
    let encap = sa.encapsulation.unwrap();
    assert_eq!((encap.source_port, encap.destination_port), (4500, 4500));
    assert_eq!(encap.original_address, Some(ip("203.0.113.5")));
    // Our encoder produces exactly the hand-built octets from the model.
    let again = map::sa_message(
        map::Header {
            dialect: d,
            seq: 11,
            pid: 4242,
        },
        SADB_ADD,
        &map::sa_from_message(&m, d).unwrap(),
    )
    .unwrap();
    assert_eq!(again.encode(d), m.encode(d));
}

#[test]
fn freebsd_policies_use_eight_octet_requests_with_sixteen_bit_reqids() {
    let d = Dialect::FreeBsd;
    let m = load("freebsd", "spdadd_esp_tunnel", d);
    let p = map::policy_from_message(&m, d).unwrap();
    assert_eq!((p.id.direction, p.priority), (Direction::Out, 100));
    assert_eq!(
        p.id.selector.upper,
        UpperLayer::Proto {
            proto: 6,
            source_port: None,
            destination_port: Some(443)
        }
    );
    let PolicyAction::Protect(t) = &p.action else {
        panic!()
    };
    assert_eq!(t[0].reqid, 0x3002);
    assert_eq!(t[0].tunnel, Some((ip("192.0.2.11"), ip("192.0.2.12"))));
    let v6 = map::policy_from_message(&load("freebsd", "spdadd_esp_transport_v6", d), d).unwrap();
    assert_eq!(v6.id.direction, Direction::In);
    assert_eq!(v6.id.selector.source.addr, ip("2001:db8::c"));
    let PolicyAction::Protect(t) = &v6.action else {
        panic!()
    };
    assert_eq!(
        (t[0].mode, t[0].reqid, t[0].level),
        (Mode::Transport, 0, TemplateLevel::Require)
    );
}

#[test]
fn freebsd_acquire_carries_a_template() {
    let d = Dialect::FreeBsd;
    let m = load("freebsd", "acquire_esp", d);
    let Some(KernelEvent::Acquire(a)) = map::event_from_message(&m, d).unwrap() else {
        panic!()
    };
    assert_eq!((a.sequence, a.policy_index), (99, Some(7)));
    let t = a.template.unwrap();
    assert_eq!(
        (t.protocol, t.mode, t.reqid),
        (SecurityProtocol::Esp, Mode::Transport, 0x3001)
    );
}

#[test]
fn freebsd_vectors_are_not_valid_linux_messages_where_layouts_differ() {
    for name in ["spdadd_esp_tunnel", "add_esp_aescbc_sha256_natt"] {
        let bytes = std::fs::read(dir("freebsd").join(format!("{name}.bin"))).unwrap();
        let linux = Message::decode(&bytes, Dialect::Linux);
        assert!(
            linux.is_err()
                || linux.as_ref().ok() != Message::decode(&bytes, Dialect::FreeBsd).ok().as_ref(),
            "{name}"
        );
    }
}
