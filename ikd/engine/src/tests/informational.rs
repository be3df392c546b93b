//! Deletes, INITIAL-CONTACT, shutdown.

use std::sync::Arc;

use super::util::{Pair, Side, TestConfig};
use crate::types::{Action, Event};

fn delete_sas(actions: &[Action]) -> Vec<(u32, std::net::IpAddr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteSa {
                spi, destination, ..
            } => Some((*spi, *destination)),
            _ => None,
        })
        .collect()
}

#[test]
fn delete_from_the_peer_removes_both_sas_of_the_pair() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.establish();
    let (in_spi, out_spi) = {
        let p = pair.pairs(Side::I)[0];
        (p.inbound.spi, p.outbound.spi)
    };
    // The responder shuts down: HDR*, HASH(1), D(ESP) -->  and  HDR*, HASH(1), D(ISAKMP) -->
    pair.responder.delete_all(pair.now);
    pair.drive();
    let deleted = delete_sas(&pair.actions_i);
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted.contains(&(in_spi, super::util::ip(super::util::I_ADDR))));
    assert!(deleted.contains(&(out_spi, super::util::ip(super::util::R_ADDR))));
    assert_eq!(pair.initiator.child_count(), 0);
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    assert!(pair
        .events(Side::I)
        .iter()
        .any(|e| matches!(e, Event::IsakmpSaDeleted { .. })));
    // The responder removed its own kernel SAs too.
    assert_eq!(delete_sas(&pair.actions_r).len(), 2);
    assert_eq!(pair.initiator.statistics().deletes_received, 2);
}

#[test]
fn initial_contact_from_a_restarted_peer_drops_the_old_sas() {
    let cfg = TestConfig::psk("secret");
    let mut pair = Pair::new(&cfg);
    pair.establish();
    assert_eq!(pair.responder.child_count(), 1);
    // The initiator restarts with no memory of the old SAs.
    pair.initiator = crate::Endpoint::new(
        Arc::new(cfg.initiator()),
        Arc::new(ikecrypto::RustCryptoProvider::new()),
        [9; 32],
    );
    pair.establish();
    assert!(pair
        .events(Side::R)
        .iter()
        .any(|e| matches!(e, Event::InitialContact { .. })));
    assert_eq!(delete_sas(&pair.actions_r).len(), 2, "old pair removed");
    assert_eq!(pair.responder.isakmp_sa_count(), 1);
    assert_eq!(pair.responder.child_count(), 1, "only the new pair");
    assert_eq!(pair.pairs(Side::R).len(), 2);
}

#[test]
fn initial_contact_is_sent_only_on_first_contact() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    let contacts = |pair: &Pair| {
        pair.events(Side::R)
            .iter()
            .filter(|e| matches!(e, Event::InitialContact { .. }))
            .count()
    };
    pair.establish();
    assert!(pair.initiator.shared_config().initial_contact);
    assert_eq!(
        contacts(&pair),
        1,
        "first main mode carries INITIAL-CONTACT"
    );
    // A second quick mode reuses the main mode; a second main mode while SAs exist (here
    // after the first one was deleted locally, children still installed) sends none.
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.drive();
    assert_eq!(pair.pairs(Side::R).len(), 2);
    assert_eq!(contacts(&pair), 1);
    assert_eq!(pair.responder.child_count(), 2, "no SA pair was dropped");
}

#[test]
fn r_u_there_is_answered_with_an_ack_echoing_the_sequence_number() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.establish();
    // HDR*, HASH(1), N(R-U-THERE, seq) -->
    pair.initiator
        .send_isakmp_notify(isakmp::NotifyType::R_U_THERE, vec![0, 0, 0, 7]);
    pair.drive();
    assert_eq!(pair.responder.statistics().dpd_answered, 1);
    // <-- HDR*, HASH(1), N(R-U-THERE-ACK, seq): verified and absorbed by the initiator.
    assert_eq!(pair.initiator.statistics().notifies_received, 1);
    assert_eq!(pair.initiator.statistics().dropped, 0);
}

#[test]
fn protected_error_notify_on_an_established_sa_is_logged_not_fatal() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.establish();
    let before = pair.responder.statistics().notifies_received;
    pair.initiator
        .send_isakmp_notify(isakmp::NotifyType::INVALID_SPI, Vec::new());
    pair.drive();
    assert_eq!(pair.responder.statistics().notifies_received, before + 1);
    assert_eq!(pair.responder.established_isakmp_sa_count(), 1);
}
