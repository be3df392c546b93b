//! Failed negotiations, retransmission and give-up, the half-open cap.

use std::time::Duration;

use isakmp::NotifyType;

use super::util::{ip, Pair, Side, TestConfig, I_ADDR, R_ADDR};
use crate::config::{
    ChildConfig, EncapsulationMode, EspCipher, IntegrityAlgorithm, PeerAddress, PeerConfig,
    QuickModeProposal,
};
use crate::types::{Event, FailureReason};

fn failures(pair: &Pair, side: Side) -> Vec<FailureReason> {
    pair.events(side)
        .into_iter()
        .filter_map(|e| match e {
            Event::ExchangeFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn wrong_psk_fails_with_an_authentication_notify_and_both_endpoints_recover() {
    let cfg = TestConfig::psk("right");
    let mut i_cfg = cfg.initiator();
    // Child "bad" uses a peer entry with the wrong key; child "c" the right one.
    i_cfg.peers.insert(
        0,
        PeerConfig::psk("r-wrong", PeerAddress::Address(ip(R_ADDR)), b"wrong")
            .with_local(ip(I_ADDR)),
    );
    i_cfg.children.push(ChildConfig::new(
        "bad",
        "r-wrong",
        super::util::qm_3des(EncapsulationMode::Transport),
    ));
    let mut pair = Pair::with_configs(i_cfg, cfg.responder());
    pair.initiator.initiate(pair.now, &"bad".into()).unwrap();
    pair.drive();
    assert!(pair.pairs(Side::I).is_empty() && pair.pairs(Side::R).is_empty());
    let r_fail = failures(&pair, Side::R);
    assert!(
        matches!(
            r_fail.as_slice(),
            [FailureReason::LocalError(
                NotifyType::AUTHENTICATION_FAILED | NotifyType::INVALID_HASH_INFORMATION
            )]
        ),
        "{r_fail:?}"
    );
    assert_eq!(pair.responder.statistics().auth_failures, 1);
    // The responder protected its notify with its own keys; the initiator cannot read it
    // and gives up after its retransmissions.
    pair.run_for(Duration::from_secs(120));
    assert_eq!(failures(&pair, Side::I), [FailureReason::Timeout]);
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    assert_eq!(pair.responder.isakmp_sa_count(), 0);

    // Both endpoints still work: the right key succeeds.
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_eq!(pair.pairs(Side::R).len(), 1);
}

#[test]
fn no_common_main_mode_proposal_gets_no_proposal_chosen() {
    let mut cfg = TestConfig::psk("secret");
    cfg.mm_r = vec![crate::MainModeProposal::psk(
        ikecrypto::CipherAlgorithm::Aes256Cbc,
        ikecrypto::HashAlgorithm::Sha2_256,
        ikecrypto::DhGroup::Modp2048,
    )];
    let mut pair = Pair::new(&cfg);
    pair.establish();
    assert_eq!(
        failures(&pair, Side::R),
        [FailureReason::LocalError(NotifyType::NO_PROPOSAL_CHOSEN)]
    );
    assert_eq!(
        failures(&pair, Side::I),
        [FailureReason::PeerNotify(NotifyType::NO_PROPOSAL_CHOSEN)]
    );
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    assert_eq!(pair.responder.isakmp_sa_count(), 0);
}

#[test]
fn no_common_quick_mode_proposal_gets_no_proposal_chosen() {
    let mut cfg = TestConfig::psk("secret");
    cfg.qm_r = QuickModeProposal::esp(
        EspCipher::Aes256,
        IntegrityAlgorithm::HmacSha256,
        EncapsulationMode::Transport,
    );
    let mut pair = Pair::new(&cfg);
    pair.establish();
    assert_eq!(pair.initiator.established_isakmp_sa_count(), 1);
    assert!(pair.pairs(Side::I).is_empty());
    assert_eq!(
        failures(&pair, Side::R),
        [FailureReason::LocalError(NotifyType::NO_PROPOSAL_CHOSEN)]
    );
    assert_eq!(
        failures(&pair, Side::I),
        [FailureReason::PeerNotify(NotifyType::NO_PROPOSAL_CHOSEN)]
    );
}

#[test]
fn a_lost_mm3_is_resent_after_one_second_and_the_exchange_completes() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    // MM1 delivered, MM3 lost.
    pair.loss_to_r.extend([false, true]);
    pair.establish();
    assert!(pair.pairs(Side::I).is_empty());
    pair.advance(Duration::from_secs(1));
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_eq!(pair.pairs(Side::R).len(), 1);
    assert_eq!(pair.initiator.statistics().retransmits, 1);
}

#[test]
fn lost_messages_in_either_direction_are_recovered() {
    for (to_r, to_i) in [
        (vec![true], vec![]),
        (vec![], vec![true]),
        (vec![false, false, true], vec![]),
        (vec![], vec![false, false, true]),
        (
            vec![false, false, false, false],
            vec![false, false, false, true],
        ),
    ] {
        let mut pair = Pair::new(&TestConfig::psk("secret"));
        pair.loss_to_r.extend(to_r.clone());
        pair.loss_to_i.extend(to_i.clone());
        pair.establish();
        pair.run_for(Duration::from_secs(10));
        assert_eq!(pair.pairs(Side::I).len(), 1, "{to_r:?} {to_i:?}");
        assert_eq!(pair.pairs(Side::R).len(), 1, "{to_r:?} {to_i:?}");
    }
}

#[test]
fn a_duplicate_mm3_gets_the_retransmitted_mm4_not_a_new_exchange() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.step(Side::R); // MM1 -->
    pair.step(Side::I); // <-- MM2
    pair.collect();
    let mm3 = pair.to_r.front().cloned().unwrap();
    pair.step(Side::R); // MM3 -->
    let sent = pair.sent_by_r.len();
    pair.responder
        .handle_datagram(pair.now, super::util::Pair::r_path(), &mm3);
    pair.collect();
    assert_eq!(pair.sent_by_r.len(), sent + 1);
    assert_eq!(
        pair.sent_by_r[sent],
        pair.sent_by_r[sent - 1],
        "same MM4 again"
    );
    assert_eq!(pair.responder.isakmp_sa_count(), 1);
    assert_eq!(pair.responder.statistics().duplicates, 1);
    pair.to_i.pop_back();
    pair.drive();
    assert_eq!(pair.pairs(Side::R).len(), 1);
}

#[test]
fn initiator_gives_up_after_the_last_retransmission_with_an_event() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.blackhole_to_r = true;
    pair.establish();
    pair.run_for(Duration::from_secs(62));
    assert!(failures(&pair, Side::I).is_empty());
    pair.run_for(Duration::from_secs(2));
    assert_eq!(failures(&pair, Side::I), [FailureReason::Timeout]);
    // Sent at 0, 1, 3, 7, 15, 31 s; given up at 63 s.
    assert_eq!(pair.sent_by_i.len(), 6);
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    assert_eq!(pair.initiator.poll_timeout(), None);
}

#[test]
fn half_open_cap_drops_further_mm1s_and_counts_them() {
    let mut cfg = TestConfig::psk("secret");
    cfg.max_half_open = 2;
    let crypto = std::sync::Arc::new(ikecrypto::RustCryptoProvider::new());
    let mut pair = Pair::new(&cfg);
    for seed in 10..13u8 {
        let mut ep = crate::Endpoint::new(
            std::sync::Arc::new(cfg.initiator()),
            crypto.clone(),
            [seed; 32],
        );
        ep.initiate(pair.now, &"c".into()).unwrap();
        let mm1 = ep.poll_transmit().unwrap();
        pair.responder
            .handle_datagram(pair.now, super::util::Pair::r_path(), &mm1.contents);
    }
    assert_eq!(pair.responder.isakmp_sa_count(), 2);
    assert_eq!(pair.responder.statistics().half_open_dropped, 1);
    // Half-open state expires; then new main modes are accepted again.
    pair.run_for(Duration::from_secs(100));
    assert_eq!(pair.responder.isakmp_sa_count(), 0);
    pair.establish();
    assert_eq!(pair.pairs(Side::R).len(), 1);
}
