//! The PF_KEY backend against Linux `af_key` in the kernel lab (Debian 6.1 under qemu).
//! Run with `tests/lab/run-tests -p pfkey lab_pfkey`.
//!
//! Every test makes fresh hosts h1/h2 (namespaces) and creates its PF_KEY sockets inside
//! them. With `IPSEC_CAPTURE_VECTORS=1` the capture test also writes the kernel's messages to
//! `pfkey/tests/vectors/pfkey/linux/`.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use pfkey::pfkey::codec::consts::*;
use pfkey::pfkey::codec::{Dialect, LifetimeKind, Message};
use pfkey::pfkey::{bypass, PfKeyKernel};
use pfkey::{
    Direction, EncryptionAlgorithm, Error, Family, IntegrityAlgorithm, KernelEvent,
    KernelInterface, Key, Lifetime, Mode, Ownership, Policy, PolicyAction, PolicyId, Prefix, SaId,
    SecurityAssociation, SecurityProtocol, Selector, Template, TemplateLevel, UpperLayer,
};
use support::{in_netns, ip_in, ping, require_lab, Capture, Hosts};

fn open() -> PfKeyKernel {
    let mut k = PfKeyKernel::open().expect("socket(PF_KEY) (is af_key available?)");
    k.flush_sas(None).unwrap();
    k.flush_policies().unwrap();
    k
}

fn key(len: usize, seed: u8) -> Key {
    Key::new((0..len).map(|i| seed.wrapping_add(i as u8 * 7)).collect())
}

#[allow(clippy::too_many_arguments)]
fn sa(
    src: IpAddr,
    dst: IpAddr,
    protocol: SecurityProtocol,
    spi: u32,
    reqid: u32,
    mode: Mode,
    enc: Option<(EncryptionAlgorithm, usize)>,
    auth: Option<IntegrityAlgorithm>,
) -> SecurityAssociation {
    let mut sa = SecurityAssociation::new(
        SaId {
            destination: dst,
            spi,
            protocol,
        },
        src,
        mode,
        reqid,
    );
    if let Some((alg, len)) = enc {
        sa = sa.with_encryption(alg, key(len, spi as u8));
    }
    if let Some(alg) = auth {
        sa = sa.with_integrity(alg, key(alg.key_bits() / 8, 0x40 ^ spi as u8));
    }
    sa
}

fn esp_3des(src: IpAddr, dst: IpAddr, spi: u32, reqid: u32) -> SecurityAssociation {
    sa(
        src,
        dst,
        SecurityProtocol::Esp,
        spi,
        reqid,
        Mode::Transport,
        Some((EncryptionAlgorithm::TripleDesCbc, 24)),
        Some(IntegrityAlgorithm::HmacSha1_96),
    )
}

fn template(mode: Mode, reqid: u32, tunnel: Option<(IpAddr, IpAddr)>) -> Template {
    Template {
        protocol: SecurityProtocol::Esp,
        mode,
        reqid,
        tunnel,
        level: TemplateLevel::Require,
    }
}

fn policy(selector: Selector, direction: Direction, action: PolicyAction, priority: u32) -> Policy {
    Policy {
        id: PolicyId {
            selector,
            direction,
            mark: None,
        },
        action,
        priority,
        index: None,
        lifetime: Lifetime::default(),
    }
}

fn transport(src: IpAddr, dst: IpAddr, dir: Direction, reqid: u32) -> Policy {
    policy(
        Selector::hosts(src, dst),
        dir,
        PolicyAction::Protect(vec![template(Mode::Transport, reqid, None)]),
        5000,
    )
}

/// What the kernel gives back, without the counters it keeps.
fn normalized(mut sa: SecurityAssociation) -> SecurityAssociation {
    sa.current = Default::default();
    sa
}

fn without_index(mut p: Policy) -> Policy {
    p.index = None;
    p
}

/// `ip xfrm state` / `ip xfrm policy` output split into one block per entry.
fn xfrm_blocks(ns: &str, what: &str) -> Vec<String> {
    let out = ip_in(ns, &["xfrm", what]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("src ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line.trim());
            b.push('\n');
        }
    }
    blocks
}

fn state_block(ns: &str, spi: u32) -> String {
    let needle = format!("spi {spi:#010x} ");
    xfrm_blocks(ns, "state")
        .into_iter()
        .find(|b| b.contains(&needle))
        .unwrap_or_else(|| panic!("no `ip xfrm state` entry with {needle}"))
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn sas_added_through_pfkey_read_back_field_by_field() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let ns = hosts.ns(1);
    let installed = in_netns(&ns, || {
        let mut k = open();
        // Inbound: allocate an SPI (larval SA), then complete it with UPDATE.
        let spi = k
            .allocate_spi(a2, a1, SecurityProtocol::Esp, 0x3001, 0x1000..=0x1fff)
            .unwrap();
        assert!((0x1000..=0x1fff).contains(&spi), "spi {spi:#x}");
        assert!(
            k.dump_sas().unwrap().is_empty(),
            "larval SAs are not listed"
        );
        let inbound = esp_3des(a2, a1, spi, 0x3001);
        k.update_sa(&inbound).unwrap();

        let sas = vec![
            inbound,
            esp_3des(a1, a2, 0x2001, 0x3001),
            sa(
                a1,
                a2,
                SecurityProtocol::Esp,
                0x2002,
                0x3002,
                Mode::Transport,
                Some((EncryptionAlgorithm::AesCbc, 16)),
                Some(IntegrityAlgorithm::HmacSha1_96),
            ),
            sa(
                a1,
                a2,
                SecurityProtocol::Ah,
                0x2003,
                0x3003,
                Mode::Transport,
                None,
                Some(IntegrityAlgorithm::HmacSha1_96),
            ),
            sa(
                a1,
                a2,
                SecurityProtocol::Esp,
                0x2004,
                0x3004,
                Mode::Tunnel,
                Some((EncryptionAlgorithm::AesCbc, 32)),
                Some(IntegrityAlgorithm::HmacMd5_96),
            ),
        ];
        for s in &sas[1..] {
            k.add_sa(s).unwrap();
        }
        // HMAC-SHA2-256 would get a 96-bit ICV from af_key: refused before the kernel.
        let sha256 = sa(
            a1,
            a2,
            SecurityProtocol::Esp,
            0x2005,
            0x3005,
            Mode::Transport,
            Some((EncryptionAlgorithm::AesCbc, 16)),
            Some(IntegrityAlgorithm::HmacSha256_128),
        );
        assert!(matches!(
            k.add_sa(&sha256),
            Err(Error::Unsupported {
                backend: "pfkey",
                ..
            })
        ));
        // Adding an existing SA is the kernel's EEXIST.
        assert!(k.add_sa(&sas[1]).unwrap_err().is_exists());

        for s in &sas {
            let got = k.get_sa(&s.id).unwrap();
            assert_eq!(normalized(got), *s, "get {:#x}", s.id.spi);
        }
        let dumped: Vec<_> = k.dump_sas().unwrap().into_iter().map(normalized).collect();
        assert_eq!(dumped.len(), sas.len());
        for s in &sas {
            assert!(dumped.contains(s), "dump lacks {:#x}", s.id.spi);
        }
        sas
    });

    // Cross-check with iproute2's view of the same SAD.
    for s in &installed {
        let b = state_block(&ns, s.id.spi);
        let proto = match s.id.protocol {
            SecurityProtocol::Esp => "proto esp",
            SecurityProtocol::Ah => "proto ah",
            SecurityProtocol::Comp => "proto comp",
        };
        assert!(b.contains(proto), "{b}");
        assert!(b.contains(&format!("reqid {} ", s.reqid)), "{b}");
        let mode = if s.mode == Mode::Tunnel {
            "mode tunnel"
        } else {
            "mode transport"
        };
        assert!(b.contains(mode), "{b}");
        match &s.encryption {
            Some((EncryptionAlgorithm::TripleDesCbc, _)) => {
                assert!(b.contains("cbc(des3_ede)"), "{b}")
            }
            Some((EncryptionAlgorithm::AesCbc, _)) => assert!(b.contains("cbc(aes)"), "{b}"),
            _ => {}
        }
        match &s.integrity {
            Some((IntegrityAlgorithm::HmacSha1_96, _)) => assert!(b.contains("hmac(sha1)"), "{b}"),
            Some((IntegrityAlgorithm::HmacMd5_96, _)) => assert!(b.contains("hmac(md5)"), "{b}"),
            _ => {}
        }
    }

    in_netns(&ns, || {
        let mut k = PfKeyKernel::open().unwrap();
        k.delete_sa(&installed[1].id).unwrap();
        assert!(k.get_sa(&installed[1].id).unwrap_err().is_not_found());
        k.flush_sas(Some(SecurityProtocol::Ah)).unwrap();
        let left: BTreeSet<u32> = k.dump_sas().unwrap().iter().map(|s| s.id.spi).collect();
        assert_eq!(left.len(), installed.len() - 2);
        k.flush_sas(None).unwrap();
        assert!(k.dump_sas().unwrap().is_empty());
    });
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn policies_added_through_pfkey_read_back_field_by_field() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let (i1, i2) = (hosts.inner(1), hosts.inner(2));
    let ns = hosts.ns(1);
    let policies = vec![
        transport(a1, a2, Direction::Out, 0x3001),
        transport(a2, a1, Direction::In, 0x3001),
        policy(
            Selector::hosts(i1, i2),
            Direction::Out,
            PolicyAction::Protect(vec![template(Mode::Tunnel, 0x3002, Some((a1, a2)))]),
            4000,
        ),
        policy(
            Selector::hosts(i2, i1),
            Direction::Fwd,
            PolicyAction::Protect(vec![template(Mode::Tunnel, 0x3002, Some((a2, a1)))]),
            4000,
        ),
        policy(
            Selector {
                upper: UpperLayer::Proto {
                    proto: 17,
                    source_port: Some(500),
                    destination_port: Some(500),
                },
                ..Selector::hosts(a1, a2)
            },
            Direction::Out,
            PolicyAction::Allow,
            1000,
        ),
        policy(
            Selector::between(
                Prefix::host(a1),
                Prefix {
                    addr: "203.0.113.0".parse().unwrap(),
                    len: 24,
                },
            ),
            Direction::Out,
            PolicyAction::Block,
            2000,
        ),
    ];
    in_netns(&ns, || {
        let mut k = open();
        for p in &policies {
            k.add_policy(p).unwrap();
        }
        assert!(k.add_policy(&policies[0]).unwrap_err().is_exists());
        for p in &policies {
            let got = k.get_policy(&p.id).unwrap();
            assert!(got.index.is_some());
            assert_eq!(without_index(got), *p);
        }
        let dumped: Vec<_> = k
            .dump_policies()
            .unwrap()
            .into_iter()
            .map(without_index)
            .collect();
        assert_eq!(dumped.len(), policies.len());
        for p in &policies {
            assert!(dumped.contains(p), "dump lacks {p:?}");
        }
        let info = k.spd_info().unwrap();
        assert_eq!((info.inbound, info.outbound, info.forward), (1, 4, 1));
        // update replaces in place.
        let mut changed = policies[4].clone();
        changed.action = PolicyAction::Block;
        k.update_policy(&changed).unwrap();
        assert_eq!(
            k.get_policy(&changed.id).unwrap().action,
            PolicyAction::Block
        );
    });

    let blocks = xfrm_blocks(&ns, "policy");
    let find = |needle: &str| {
        blocks
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no `ip xfrm policy` entry with {needle:?}: {blocks:#?}"))
    };
    let out = find(&format!("src {a1}/32 dst {a2}/32\ndir out priority 5000"));
    assert!(
        out.contains("proto esp reqid 12289 mode transport"),
        "{out}"
    );
    let fwd = find("dir fwd priority 4000");
    assert!(fwd.contains(&format!("tmpl src {a2} dst {a1}")), "{fwd}");
    assert!(fwd.contains("reqid 12290 mode tunnel"), "{fwd}");
    let block = find("dst 203.0.113.0/24");
    assert!(block.contains("action block"), "{block}");

    in_netns(&ns, || {
        let mut k = PfKeyKernel::open().unwrap();
        k.delete_policy(&policies[0].id).unwrap();
        assert!(k.get_policy(&policies[0].id).unwrap_err().is_not_found());
        assert!(k.delete_policy(&policies[0].id).unwrap_err().is_not_found());
        k.flush_policies().unwrap();
        assert!(k.dump_policies().unwrap().is_empty());
    });
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn ping_into_a_protect_policy_without_sa_raises_acquire() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let ns = hosts.ns(1);
    let acquire = in_netns(&ns, || {
        let mut k = open();
        let mut events = k.open_events().unwrap();
        k.add_policy(&transport(a1, a2, Direction::Out, 0x3001))
            .unwrap();
        let index = k.dump_policies().unwrap()[0].index;
        assert!(!ping(&ns, a2, 1), "no SA: the ping must not get through");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(KernelEvent::Acquire(a)) =
                events.next_event(Some(Duration::from_secs(2))).unwrap()
            {
                return (a, index);
            }
        }
        panic!("no ACQUIRE within 10 s");
    });
    let (a, index) = acquire;
    assert_eq!((a.source, a.destination), (a1, a2));
    assert_ne!(a.sequence, 0);
    assert_eq!(a.policy_index, index);
    assert_eq!(a.policy_direction, Some(Direction::Out));
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn short_lifetimes_raise_soft_then_hard_expire() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let events = in_netns(&hosts.ns(1), || {
        let mut k = open();
        let mut events = k.open_events().unwrap();
        let s = esp_3des(a1, a2, 0x2101, 0x3001).with_lifetime(Lifetime {
            soft_add_seconds: Some(2),
            hard_add_seconds: Some(4),
            ..Lifetime::default()
        });
        k.add_sa(&s).unwrap();
        assert_eq!(k.get_sa(&s.id).unwrap().lifetime, s.lifetime);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && seen.len() < 2 {
            if let Some(KernelEvent::Expire(e)) =
                events.next_event(Some(Duration::from_secs(1))).unwrap()
            {
                seen.push((e, Instant::now()));
            }
        }
        assert!(
            k.get_sa(&s.id).unwrap_err().is_not_found(),
            "hard expiry deletes"
        );
        (seen, s.id)
    });
    let (seen, id) = events;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (soft, hard) = (&seen[0].0, &seen[1].0);
    assert!(!soft.hard && hard.hard, "{seen:?}");
    assert_eq!((soft.id, hard.id), (id, id));
    assert_eq!(soft.reqid, Some(0x3001));
    assert_eq!(soft.source, a1);
    let gap = seen[1].1 - seen[0].1;
    assert!(
        gap >= Duration::from_millis(1000),
        "soft and hard {gap:?} apart"
    );
}

/// Keys host `me` for ESP transport with `peer` through PF_KEY (SPIs by direction).
fn key_transport_pair(me: IpAddr, peer: IpAddr, spi_out: u32, spi_in: u32) {
    let mut k = open();
    let out = esp_3des(me, peer, spi_out, 0x3001);
    // Both hosts derive the keys from the SPI alone, so they agree.
    let inbound = esp_3des(peer, me, spi_in, 0x3001);
    k.add_sa(&out).unwrap();
    k.add_sa(&inbound).unwrap();
    k.add_policy(&transport(me, peer, Direction::Out, 0x3001))
        .unwrap();
    k.add_policy(&transport(peer, me, Direction::In, 0x3001))
        .unwrap();
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn hosts_keyed_through_pfkey_exchange_esp_and_no_cleartext() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    in_netns(&hosts.ns(1), || key_transport_pair(a1, a2, 0x3101, 0x3102));
    in_netns(&hosts.ns(2), || key_transport_pair(a2, a1, 0x3102, 0x3101));
    let cap = Capture::start(&hosts.ns(1), "eth0");
    let ok12 = ping(&hosts.ns(1), a2, 3);
    let ok21 = ping(&hosts.ns(2), a1, 3);
    let summary = cap.stop();
    assert!(ok12 && ok21, "pings over ESP: {ok12} {ok21}");
    assert!(summary.esp >= 6, "{summary:?}");
    assert_eq!(summary.icmp_clear, 0, "{summary:?}");
    let b = state_block(&hosts.ns(1), 0x3102);
    assert!(
        !b.contains("lifetime current:\n0(bytes), 0(packets)"),
        "{b}"
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn delete_owned_leaves_foreign_sas_and_policies() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let ns = hosts.ns(1);
    in_netns(&ns, || {
        let mut k = open();
        k.add_sa(&esp_3des(a1, a2, 0x4001, 0x3001)).unwrap();
        k.add_policy(&transport(a1, a2, Direction::Out, 0x3001))
            .unwrap();
    });
    // Another key manager's SA (reqid 7) and policy (priority 0), through iproute2.
    let (s1, s2) = (a1.to_string(), a2.to_string());
    ip_in(
        &ns,
        &[
            "xfrm",
            "state",
            "add",
            "src",
            &s1,
            "dst",
            &s2,
            "proto",
            "esp",
            "spi",
            "0x4002",
            "reqid",
            "7",
            "mode",
            "transport",
            "enc",
            "cbc(aes)",
            "0x00112233445566778899aabbccddeeff",
        ],
    );
    ip_in(
        &ns,
        &[
            "xfrm",
            "policy",
            "add",
            "src",
            &s2,
            "dst",
            &s1,
            "dir",
            "in",
            "tmpl",
            "proto",
            "esp",
            "reqid",
            "7",
            "mode",
            "transport",
        ],
    );
    in_netns(&ns, || {
        let mut k = PfKeyKernel::open().unwrap();
        let removed = Ownership::default().delete_owned(&mut k).unwrap();
        assert_eq!((removed.sas, removed.policies), (1, 1));
        let sas = k.dump_sas().unwrap();
        assert_eq!(sas.len(), 1);
        assert_eq!((sas[0].id.spi, sas[0].reqid), (0x4002, 7));
        let pols = k.dump_policies().unwrap();
        assert_eq!(pols.len(), 1);
        assert_eq!(pols[0].id.direction, Direction::In);
    });
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn malformed_requests_fail_clearly_and_change_nothing() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    in_netns(&hosts.ns(1), || {
        let mut k = open();
        k.add_sa(&esp_3des(a1, a2, 0x5001, 0x3001)).unwrap();
        let before = k.dump_sas().unwrap();
        let mut bad = esp_3des(a1, a2, 0x5002, 0x3001);
        bad.encryption = Some((EncryptionAlgorithm::TripleDesCbc, key(16, 1)));
        let err = k.add_sa(&bad).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert!(err.to_string().contains("128 bits"), "{err}");
        let mut bad = esp_3des(a1, a2, 0x5003, 0x3001);
        bad.integrity = Some((IntegrityAlgorithm::HmacSha1_96, key(16, 1)));
        assert!(matches!(k.add_sa(&bad), Err(Error::Invalid(_))));
        // Updating an SA that does not exist is the kernel's ESRCH.
        assert!(k
            .update_sa(&esp_3des(a1, a2, 0x5004, 0x3001))
            .unwrap_err()
            .is_not_found());
        let after: Vec<_> = k.dump_sas().unwrap();
        assert_eq!(
            before.into_iter().map(normalized).collect::<Vec<_>>(),
            after.into_iter().map(normalized).collect::<Vec<_>>()
        );
    });
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn bypass_socket_escapes_a_block_policy() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    in_netns(&hosts.ns(1), || {
        let mut k = open();
        k.add_policy(&policy(
            Selector::hosts(a1, a2),
            Direction::Out,
            PolicyAction::Block,
            1000,
        ))
        .unwrap();
        let to = SocketAddr::new(a2, 9);
        let plain = UdpSocket::bind(SocketAddr::new(a1, 0)).unwrap();
        assert!(plain.send_to(b"x", to).is_err(), "block policy must drop");
        let ike = UdpSocket::bind(SocketAddr::new(a1, 0)).unwrap();
        bypass::bypass_socket(ike.as_fd(), Family::V4).unwrap();
        ike.send_to(b"x", to).expect("bypassed socket sends");
    });
}

fn write_vector(name: &str, bytes: &[u8], note: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/pfkey/linux");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let text = format!(
        "Captured from a real kernel: Linux {} (Debian stock kernel in the qemu kernel lab), \
         x86_64, af_key.\nProduced by: IPSEC_CAPTURE_VECTORS=1 tests/lab/run-tests -p pfkey \
         --test lab_pfkey captures_kernel_messages\n(pfkey/tests/lab_pfkey.rs).\n{note}\n",
        release.trim()
    );
    std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn captures_kernel_messages() {
    require_lab();
    let hosts = Hosts::create(2);
    let (a1, a2) = (hosts.addr(1), hosts.addr(2));
    let d = Dialect::Linux;
    let captured = in_netns(&hosts.ns(1), || {
        let mut k = open();
        let mut events = k.open_event_socket().unwrap();
        let mut out: Vec<(&str, Vec<u8>, &str)> = Vec::new();
        let reg = k
            .request_raw(&Message::new(SADB_REGISTER, SADB_SATYPE_ESP, 0, 0))
            .unwrap();
        out.push((
            "register_esp_reply",
            reg[0].clone(),
            "Reply to SADB_REGISTER (satype ESP): the algorithms af_key supports.",
        ));
        // Inbound SA (so the outbound policy below has none and raises ACQUIRE).
        let s = esp_3des(a2, a1, 0x6001, 0x3001).with_lifetime(Lifetime {
            soft_add_seconds: Some(2),
            hard_add_seconds: Some(4),
            ..Lifetime::default()
        });
        k.add_sa(&s).unwrap();
        let dump = k.request_raw(&Message::new(SADB_DUMP, 0, 0, 0)).unwrap();
        out.push(("dump_esp_3des_sha1_sa", dump[0].clone(), "SADB_DUMP reply for one ESP transport SA 192.0.2.12 -> 192.0.2.11, spi 0x6001, reqid 0x3001, 3DES-CBC + HMAC-SHA1 (test keys), soft/hard add lifetime 2/4 s."));
        k.add_policy(&transport(a1, a2, Direction::Out, 0x3001))
            .unwrap();
        let spd = k
            .request_raw(&Message::new(SADB_X_SPDDUMP, 0, 0, 0))
            .unwrap();
        out.push(("spddump_transport_out", spd[0].clone(), "SADB_X_SPDDUMP reply for the policy 192.0.2.11/32 -> 192.0.2.12/32 dir out priority 5000, ESP transport level unique reqid 0x3001."));
        assert!(!ping(&hosts.ns(1), a2, 1));
        let (mut acquire, mut soft, mut hard) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && (acquire.is_none() || soft.is_none() || hard.is_none()) {
            let Some(raw) = events.next_raw(Some(Duration::from_secs(1))).unwrap() else {
                continue;
            };
            let m = Message::decode(&raw, d).unwrap();
            match m.msg_type {
                SADB_ACQUIRE => acquire = acquire.or(Some(raw)),
                SADB_EXPIRE if m.lifetime(LifetimeKind::Hard).is_some() => {
                    hard = hard.or(Some(raw))
                }
                SADB_EXPIRE => soft = soft.or(Some(raw)),
                _ => {}
            }
        }
        out.push(("acquire_esp", acquire.expect("ACQUIRE"), "SADB_ACQUIRE raised by `ping 192.0.2.12` from 192.0.2.11 hitting the policy above with no outbound SA."));
        out.push((
            "expire_soft",
            soft.expect("soft EXPIRE"),
            "Soft SADB_EXPIRE of the SA above (soft add lifetime 2 s).",
        ));
        out.push((
            "expire_hard",
            hard.expect("hard EXPIRE"),
            "Hard SADB_EXPIRE of the SA above (hard add lifetime 4 s).",
        ));
        out
    });
    let write = std::env::var("IPSEC_CAPTURE_VECTORS").as_deref() == Ok("1");
    for (name, bytes, note) in &captured {
        let m = Message::decode(bytes, d).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&m.encode(d), bytes, "{name} re-encodes identically");
        if write {
            write_vector(name, bytes, note);
        }
    }
}
