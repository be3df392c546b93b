//! Successful main mode + quick mode negotiations over the interop matrix.

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm};

use super::util::{assert_pairs_match, Pair, Side, TestConfig};
use crate::config::{EncapsulationMode, EspCipher, IntegrityAlgorithm, MainModeProposal};
use crate::types::{Event, Role};
use crate::QuickModeProposal;

fn negotiate(cfg: &TestConfig) -> Pair {
    let mut pair = Pair::new(cfg);
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    // HDR, SA -->
    assert!(pair.step(Side::R));
    // <-- HDR, SA
    assert!(pair.step(Side::I));
    // HDR, KE, Ni -->
    assert!(pair.step(Side::R));
    // <-- HDR, KE, Nr
    assert!(pair.step(Side::I));
    // HDR*, IDii, HASH_I [, N(INITIAL-CONTACT)] -->
    assert!(pair.step(Side::R));
    // <-- HDR*, IDir, HASH_R   (the initiator then asks for an SPI and sends QM1)
    assert!(pair.step(Side::I));
    assert_eq!(pair.initiator.established_isakmp_sa_count(), 1);
    assert_eq!(pair.responder.established_isakmp_sa_count(), 1);
    // HDR*, HASH(1), SA, Ni [, KE], IDci, IDcr -->
    assert!(pair.step(Side::R));
    // <-- HDR*, HASH(2), SA, Nr [, KE], IDci, IDcr
    assert!(pair.step(Side::I));
    // HDR*, HASH(3) -->
    assert!(pair.step(Side::R));
    pair.drive();
    let (i, r) = (pair.pairs(Side::I), pair.pairs(Side::R));
    assert_eq!((i.len(), r.len()), (1, 1), "one SA pair on each side");
    assert_pairs_match(i[0], r[0]);
    assert!(pair.events(Side::I).iter().any(|e| matches!(
        e,
        Event::IsakmpSaEstablished {
            role: Role::Initiator,
            ..
        }
    )));
    pair
}

#[test]
fn main_and_quick_mode_3des_sha1_modp1024_transport_install_matching_pairs() {
    let pair = negotiate(&TestConfig::psk("secret"));
    let i = pair.pairs(Side::I)[0];
    assert_eq!(i.outbound.mode, EncapsulationMode::Transport);
    assert_eq!(i.outbound.encryption.as_ref().unwrap().1.len(), 24);
    assert_eq!(i.outbound.integrity.as_ref().unwrap().1.len(), 20);
    assert_eq!(i.outbound.lifetime.hard_seconds, 3600);
    assert_eq!(i.outbound.lifetime.hard_kilobytes, Some(100_000));
    assert_eq!(
        i.outbound.selector.source.addr,
        super::util::ip(super::util::I_ADDR)
    );
    let s = pair.initiator.statistics();
    assert_eq!((s.main_modes_completed, s.quick_modes_completed), (1, 1));
    assert_eq!(pair.responder.statistics().quick_modes_completed, 1);
}

#[test]
fn aes128_sha1_modp2048_tunnel_with_pfs_installs_matching_pairs() {
    let cfg = TestConfig::psk("secret")
        .with_mm(MainModeProposal::psk(
            CipherAlgorithm::Aes128Cbc,
            HashAlgorithm::Sha1,
            DhGroup::Modp2048,
        ))
        .with_qm(
            QuickModeProposal::esp(
                EspCipher::Aes128,
                IntegrityAlgorithm::HmacSha1,
                EncapsulationMode::Tunnel,
            )
            .with_pfs(DhGroup::Modp2048),
        );
    let pair = negotiate(&cfg);
    let i = pair.pairs(Side::I)[0];
    assert_eq!(i.outbound.mode, EncapsulationMode::Tunnel);
    assert_eq!(i.outbound.selector.source.prefix_len, 16);
    assert_eq!(i.outbound.encryption.as_ref().unwrap().1.len(), 16);
}

#[test]
fn aes128_sha1_modp2048_transport_without_pfs_installs_matching_pairs() {
    let cfg = TestConfig::psk("secret")
        .with_mm(MainModeProposal::psk(
            CipherAlgorithm::Aes128Cbc,
            HashAlgorithm::Sha1,
            DhGroup::Modp2048,
        ))
        .with_qm(QuickModeProposal::esp(
            EspCipher::Aes128,
            IntegrityAlgorithm::HmacSha1,
            EncapsulationMode::Transport,
        ));
    negotiate(&cfg);
}

#[test]
fn aes256_sha256_ecp256_transport_with_pfs_installs_matching_pairs() {
    let cfg = TestConfig::psk("secret")
        .with_mm(MainModeProposal::psk(
            CipherAlgorithm::Aes256Cbc,
            HashAlgorithm::Sha2_256,
            DhGroup::Ecp256,
        ))
        .with_qm(
            QuickModeProposal::esp(
                EspCipher::Aes256,
                IntegrityAlgorithm::HmacSha256,
                EncapsulationMode::Transport,
            )
            .with_pfs(DhGroup::Ecp256),
        );
    let pair = negotiate(&cfg);
    let i = pair.pairs(Side::I)[0];
    assert_eq!(i.outbound.encryption.as_ref().unwrap().1.len(), 32);
    assert_eq!(i.outbound.integrity.as_ref().unwrap().1.len(), 32);
}

#[test]
fn aes256_sha256_ecp256_tunnel_without_pfs_installs_matching_pairs() {
    let cfg = TestConfig::psk("secret")
        .with_mm(MainModeProposal::psk(
            CipherAlgorithm::Aes256Cbc,
            HashAlgorithm::Sha2_256,
            DhGroup::Ecp256,
        ))
        .with_qm(QuickModeProposal::esp(
            EspCipher::Aes256,
            IntegrityAlgorithm::HmacSha256,
            EncapsulationMode::Tunnel,
        ));
    negotiate(&cfg);
}

#[test]
fn three_des_tunnel_with_pfs_modp1024_installs_matching_pairs() {
    let cfg = TestConfig::psk("secret").with_qm(
        QuickModeProposal::esp(
            EspCipher::TripleDes,
            IntegrityAlgorithm::HmacSha1,
            EncapsulationMode::Tunnel,
        )
        .with_pfs(DhGroup::Modp1024),
    );
    negotiate(&cfg);
}

#[test]
fn responder_follows_the_initiators_order_of_main_mode_proposals() {
    let aes = MainModeProposal::psk(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha1,
        DhGroup::Modp2048,
    );
    let mut cfg = TestConfig::psk("secret");
    cfg.mm_i = vec![super::util::mm_3des(), aes];
    cfg.mm_r = vec![aes, super::util::mm_3des()];
    let mut pair = Pair::new(&cfg);
    pair.establish();
    assert_eq!(pair.pairs(Side::I).len(), 1);
    // MM2 carries one transform: 3DES (the initiator's first), not the responder's AES.
    let mm2 = isakmp::Message::decode(&pair.sent_by_r[0]).unwrap();
    let Some(isakmp::Payload::SecurityAssociation(sa)) = mm2.payloads().first() else {
        panic!("MM2 starts with SA");
    };
    let t = &sa.proposals[0].transforms[0];
    assert_eq!(t.attributes[0].as_u16(), Some(5), "3DES-CBC");
}

#[test]
fn windows_style_responder_sends_connected_and_initiator_installs_after_it() {
    let mut cfg = TestConfig::psk("secret");
    cfg.responder_commit = true;
    let mut pair = Pair::new(&cfg);
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    for side in [Side::R, Side::I, Side::R, Side::I, Side::R, Side::I] {
        assert!(pair.step(side));
    }
    // QM1 -->, <-- QM2 (commit bit), QM3 -->
    assert!(pair.step(Side::R));
    assert!(pair.step(Side::I));
    assert!(
        pair.pairs(Side::I).is_empty(),
        "commit bit: wait for CONNECTED"
    );
    assert!(pair.step(Side::R));
    assert_eq!(pair.pairs(Side::R).len(), 1, "responder installs after QM3");
    // <-- HDR*, HASH(4), N(CONNECTED)
    assert!(pair.step(Side::I));
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_pairs_match(pair.pairs(Side::I)[0], pair.pairs(Side::R)[0]);
    assert_eq!(pair.sent_by_r.len(), 3 + 2, "MM2, MM4, MM6, QM2, QM4");
}

#[test]
fn responder_shortens_long_lifetimes_with_responder_lifetime() {
    let mut cfg = TestConfig::psk("secret");
    cfg.qm_i.lifetime_seconds = 28_800;
    cfg.qm_r.lifetime_seconds = 1_200;
    let mut pair = Pair::new(&cfg);
    pair.establish();
    let (i, r) = (pair.pairs(Side::I)[0], pair.pairs(Side::R)[0]);
    assert_eq!(r.inbound.lifetime.hard_seconds, 1_200);
    assert_eq!(i.outbound.lifetime.hard_seconds, 1_200);
}

#[test]
fn initiate_new_main_mode_runs_one_main_mode_per_quick_mode() {
    let cfg = TestConfig::psk("secret");
    let mut i_cfg = cfg.initiator();
    // INITIAL-CONTACT on the first would make the responder drop the other half-open ones.
    i_cfg.initial_contact = false;
    let mut pair = Pair::with_configs(i_cfg, cfg.responder());
    // Three at once: none queues behind another's main mode ...
    for _ in 0..3 {
        pair.initiator
            .initiate_new_main_mode(pair.now, &"c".into())
            .unwrap();
    }
    pair.drive();
    // ... and one after they are established does not reuse them.
    pair.initiator
        .initiate_new_main_mode(pair.now, &"c".into())
        .unwrap();
    pair.drive();
    let s = pair.initiator.statistics();
    assert_eq!((s.main_modes_started, s.quick_modes_completed), (4, 4));
    assert_eq!(pair.responder.statistics().main_modes_started, 4);
    assert_eq!(pair.pairs(Side::I).len(), 4);
    assert_eq!(pair.pairs(Side::R).len(), 4);
    assert_eq!(pair.initiator.established_isakmp_sa_count(), 4);
}

#[test]
fn sa_snapshots_show_the_negotiated_main_mode_and_pair() {
    let pair = negotiate(&TestConfig::psk("secret"));
    let (i, r) = (
        pair.initiator.isakmp_sas(pair.now),
        pair.responder.isakmp_sas(pair.now),
    );
    assert_eq!((i.len(), r.len()), (1, 1));
    assert_eq!((i[0].role, r[0].role), (Role::Initiator, Role::Responder));
    assert_eq!((i[0].state, r[0].state), ("established", "established"));
    assert_eq!(i[0].initiator_cookie, r[0].initiator_cookie);
    assert_eq!(i[0].responder_cookie, r[0].responder_cookie);
    assert_ne!(i[0].responder_cookie, [0; 8]);
    assert_eq!(i[0].path.remote, r[0].path.local);
    let suite = i[0].suite.clone().expect("suite chosen");
    assert_eq!(suite[0], format!("{:?}", CipherAlgorithm::TripleDesCbc));
    assert!(i[0].expires_in.is_some_and(|d| d.as_secs() > 0));
    assert_eq!(i[0].quick_modes, 1);
    let (ci, cr) = (pair.initiator.children(), pair.responder.children());
    assert_eq!((ci.len(), cr.len()), (1, 1));
    assert_eq!(ci[0].inbound_spi, cr[0].outbound_spi);
    assert_eq!(ci[0].outbound_spi, cr[0].inbound_spi);
    assert_eq!(ci[0].child.0, "c");
    assert_eq!(ci[0].isakmp, i[0].handle);
}
