//! [`crate::Endpoint::reconfigure`]: SAs survive what the new configuration still covers,
//! new connections reuse the ISAKMP SA, removed or changed ones are deleted on both sides.

use std::sync::Arc;

use super::util::{ip, Pair, Side, TestConfig};
use crate::config::{
    ChildConfig, EncapsulationMode, EndpointConfig, EspCipher, IntegrityAlgorithm,
    QuickModeProposal, Subnet, TrafficSelector,
};
use crate::types::{Action, Event, FailureReason};

fn subnet(a: &str, len: u8) -> Subnet {
    Subnet {
        addr: ip(a),
        prefix_len: len,
    }
}

fn aes() -> QuickModeProposal {
    QuickModeProposal::esp(
        EspCipher::Aes128,
        IntegrityAlgorithm::HmacSha1,
        EncapsulationMode::Tunnel,
    )
}

/// Both configurations of the base test plus a tunnel connection "d" (10.1/16 ↔ 10.2/16,
/// AES) from each side's point of view.
fn with_d(cfg: &TestConfig) -> (EndpointConfig, EndpointConfig) {
    let (a, b) = (subnet("10.1.0.0", 16), subnet("10.2.0.0", 16));
    let mut i = cfg.initiator();
    i.children
        .push(ChildConfig::new("d", "r", aes()).with_selector(TrafficSelector::between(a, b)));
    let mut r = cfg.responder();
    r.children
        .push(ChildConfig::new("d", "i", aes()).with_selector(TrafficSelector::between(b, a)));
    (i, r)
}

fn reconfigure(pair: &mut Pair, i: EndpointConfig, r: EndpointConfig) {
    let now = pair.now;
    pair.initiator.reconfigure(now, Arc::new(i));
    pair.responder.reconfigure(now, Arc::new(r));
    pair.drive();
}

/// (spi, destination) of every DeleteSa a side emitted.
fn deleted(pair: &Pair, side: Side) -> Vec<u32> {
    let actions = match side {
        Side::I => &pair.actions_i,
        Side::R => &pair.actions_r,
    };
    let mut v: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteSa { spi, .. } => Some(*spi),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn established_sa_survives_adding_a_connection_and_the_new_one_reuses_the_isakmp_sa() {
    let cfg = TestConfig::psk("secret");
    let mut pair = Pair::new(&cfg);
    pair.establish();
    let before = pair.initiator.children();
    assert_eq!(before.len(), 1);

    let (i, r) = with_d(&cfg);
    let now = pair.now;
    let ri = pair.initiator.reconfigure(now, Arc::new(i));
    let rr = pair.responder.reconfigure(now, Arc::new(r));
    pair.drive();
    for rep in [ri, rr] {
        assert_eq!(
            (rep.isakmp_sas_kept, rep.isakmp_sas_deleted),
            (1, 0),
            "{rep:?}"
        );
        assert_eq!(
            (
                rep.children_kept,
                rep.children_deleted,
                rep.exchanges_abandoned
            ),
            (1, 0, 0)
        );
    }
    assert!(deleted(&pair, Side::I).is_empty() && deleted(&pair, Side::R).is_empty());
    assert_eq!(pair.initiator.children(), before, "child c untouched");

    pair.initiator.initiate(pair.now, &"d".into()).unwrap();
    pair.drive();
    // One main mode in all, two quick modes, both on the original ISAKMP SA.
    for ep in [&pair.initiator, &pair.responder] {
        let s = ep.statistics();
        assert_eq!((s.main_modes_started, s.main_modes_completed), (1, 1));
        assert_eq!(s.quick_modes_completed, 2);
        assert_eq!(ep.isakmp_sa_count(), 1);
    }
    let (pi, pr) = (pair.pairs(Side::I), pair.pairs(Side::R));
    assert_eq!((pi.len(), pr.len()), (2, 2));
    super::util::assert_pairs_match(pi[1], pr[1]);
    assert_eq!(pi[1].child.0, "d");
    assert_eq!(pr[1].child.0, "d");
    assert_eq!(pi[1].isakmp_sa, pi[0].isakmp_sa);
    assert_eq!(
        pi[1].outbound.encryption.as_ref().map(|e| e.0),
        Some(EspCipher::Aes128)
    );
}

#[test]
fn removed_connection_is_deleted_in_the_kernel_and_at_the_peer() {
    let cfg = TestConfig::psk("secret");
    let (i, r) = with_d(&cfg);
    let mut pair = Pair::with_configs(i, r);
    pair.establish();
    pair.initiator.initiate(pair.now, &"d".into()).unwrap();
    pair.drive();
    let d_i = pair.pairs(Side::I)[1];
    assert_eq!(d_i.child.0, "d");
    let (d_in, d_out) = (d_i.inbound.spi, d_i.outbound.spi);
    let c_before: Vec<_> = pair
        .initiator
        .children()
        .into_iter()
        .filter(|c| c.child.0 == "c")
        .collect();
    let sent_before = pair.sent_by_i.len();

    // Only the initiator drops "d": it must delete its pair and tell the responder.
    let now = pair.now;
    let rep = pair.initiator.reconfigure(now, Arc::new(cfg.initiator()));
    assert_eq!((rep.children_kept, rep.children_deleted), (1, 1));
    assert_eq!(rep.isakmp_sas_kept, 1);
    pair.drive();
    let mut expect = vec![d_in, d_out];
    expect.sort_unstable();
    assert_eq!(
        deleted(&pair, Side::I),
        expect,
        "both kernel SAs of d deleted"
    );
    assert_eq!(
        pair.sent_by_i.len(),
        sent_before + 1,
        "one Delete informational sent"
    );
    // The responder understood the Delete: it removes the same two SAs.
    assert_eq!(pair.responder.statistics().deletes_received, 1);
    assert_eq!(deleted(&pair, Side::R), expect);
    assert_eq!(pair.initiator.children(), c_before, "c untouched");
    assert_eq!(pair.responder.children().len(), 1);
    assert_eq!(pair.initiator.established_isakmp_sa_count(), 1);
    // "d" is no longer known.
    assert!(pair.initiator.initiate(pair.now, &"d".into()).is_err());
}

#[test]
fn changed_security_methods_delete_the_pair_and_renegotiate_with_the_new_ones() {
    let cfg = TestConfig::psk("secret");
    let mut pair = Pair::new(&cfg);
    pair.establish();
    let old = pair.pairs(Side::I)[0].inbound.spi;
    let new_qm = QuickModeProposal::esp(
        EspCipher::Aes128,
        IntegrityAlgorithm::HmacSha1,
        EncapsulationMode::Transport,
    );
    let changed = cfg.clone().with_qm(new_qm);
    reconfigure(&mut pair, changed.initiator(), changed.responder());
    assert!(deleted(&pair, Side::I).contains(&old));
    assert!(pair.initiator.children().is_empty());
    assert!(pair.responder.children().is_empty());
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.drive();
    let p = pair.pairs(Side::I);
    assert_eq!(p.len(), 2);
    assert_eq!(
        p[1].outbound.encryption.as_ref().map(|e| e.0),
        Some(EspCipher::Aes128)
    );
    assert_eq!(pair.initiator.statistics().main_modes_started, 1);
}

#[test]
fn removed_peer_loses_its_isakmp_sa_with_a_delete() {
    let cfg = TestConfig::psk("secret");
    let mut pair = Pair::new(&cfg);
    pair.establish();
    let mut empty = cfg.initiator();
    empty.peers.clear();
    empty.children.clear();
    let now = pair.now;
    let rep = pair.initiator.reconfigure(now, Arc::new(empty));
    assert_eq!((rep.isakmp_sas_deleted, rep.children_deleted), (1, 1));
    pair.drive();
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    assert!(pair
        .events(Side::I)
        .iter()
        .any(|e| matches!(e, Event::IsakmpSaDeleted { .. })));
    // The responder got both Deletes.
    assert_eq!(pair.responder.statistics().deletes_received, 2);
    assert_eq!(pair.responder.established_isakmp_sa_count(), 0);
    assert!(pair.responder.children().is_empty());
}

#[test]
fn quick_mode_in_progress_for_a_removed_connection_fails_cleanly() {
    let cfg = TestConfig::psk("secret");
    let (i, r) = with_d(&cfg);
    let mut pair = Pair::with_configs(i, r);
    pair.establish();
    pair.auto_spi = false;
    pair.initiator.initiate(pair.now, &"d".into()).unwrap();
    pair.collect();
    let request = pair.actions_i.iter().find_map(|a| match a {
        Action::AllocSpi { request, .. } => Some(*request),
        _ => None,
    });
    let request = request.expect("SPI requested for d");
    let now = pair.now;
    let rep = pair.initiator.reconfigure(now, Arc::new(cfg.initiator()));
    assert_eq!(rep.exchanges_abandoned, 1);
    pair.collect();
    assert!(pair.events(Side::I).iter().any(|e| matches!(
        e,
        Event::ExchangeFailed {
            quick_mode: true,
            reason: FailureReason::Reconfigured,
            child: Some(c),
            ..
        } if c.0 == "d"
    )));
    // The late SPI answer is ignored: nothing is sent.
    let sent = pair.sent_by_i.len();
    pair.initiator
        .handle_spi_allocated(now, request, Ok(0xdead_beef));
    pair.drive();
    assert_eq!(pair.sent_by_i.len(), sent);
    assert_eq!(pair.initiator.statistics().quick_modes_completed, 1);
    assert_eq!(pair.initiator.established_isakmp_sa_count(), 1);
}

#[test]
fn main_mode_in_progress_with_a_removed_peer_is_abandoned_and_renumbered_peers_still_work() {
    let cfg = TestConfig::psk("secret");
    let mut pair = Pair::new(&cfg);
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.step(Side::R); // MM1 at the responder
    let mut empty = cfg.initiator();
    empty.peers.clear();
    empty.children.clear();
    let now = pair.now;
    let rep = pair.initiator.reconfigure(now, Arc::new(empty));
    assert_eq!((rep.isakmp_sas_deleted, rep.exchanges_abandoned), (1, 1));
    assert_eq!(pair.initiator.isakmp_sa_count(), 0);
    pair.collect();
    assert!(pair.events(Side::I).iter().any(|e| matches!(
        e,
        Event::ExchangeFailed {
            quick_mode: false,
            reason: FailureReason::Reconfigured,
            ..
        }
    )));

    // A responder whose peer moves to index 1 (another peer inserted first) keeps
    // negotiating with it.
    let mut pair = Pair::new(&cfg);
    pair.establish();
    let mut r = cfg.responder();
    let other = crate::config::PeerConfig::psk(
        "other",
        crate::config::PeerAddress::Address(ip("192.0.2.99")),
        b"x",
    );
    r.peers.insert(0, other);
    r.children.insert(
        0,
        ChildConfig::new(
            "o",
            "other",
            super::util::qm_3des(EncapsulationMode::Transport),
        ),
    );
    let now = pair.now;
    let rep = pair.responder.reconfigure(now, Arc::new(r));
    assert_eq!((rep.isakmp_sas_kept, rep.children_kept), (1, 1));
    // Rekey-like second quick mode for c over the same SA: the responder finds c at index 1.
    pair.initiator.initiate(pair.now, &"c".into()).unwrap();
    pair.drive();
    assert_eq!(pair.responder.statistics().quick_modes_completed, 2);
    assert_eq!(pair.pairs(Side::R)[1].child.0, "c");
}

#[test]
fn an_acquire_that_came_before_its_connection_is_replayed_by_the_reconfiguration() {
    let cfg = TestConfig::psk("secret");
    let (mut i, r) = with_d(&cfg);
    // "c" explicitly host to host (without a selector it would take any ACQUIRE).
    let hosts = TrafficSelector::between(
        subnet(super::util::I_ADDR, 32),
        subnet(super::util::R_ADDR, 32),
    );
    let mut i0 = cfg.initiator();
    i0.children[0].selector = Some(hosts);
    i.children[0].selector = Some(hosts);
    // The responder already knows "d"; the initiator learns it after the ACQUIRE.
    let mut pair = Pair::with_configs(i0.clone(), r);
    pair.establish();
    let acquire = crate::types::KernelEvent::Acquire {
        local: ip(super::util::I_ADDR),
        remote: ip(super::util::R_ADDR),
        selector: Some(crate::types::Selector {
            source: subnet("10.1.0.5", 32),
            destination: subnet("10.2.0.7", 32),
            protocol: 17,
            source_port: 4000,
            destination_port: 5001,
        }),
    };
    let now = pair.now;
    pair.initiator.handle_kernel_event(now, acquire.clone());
    pair.drive();
    // Host-to-host "c" does not cover 10.1/16 → 10.2/16: nothing negotiated.
    assert_eq!(pair.initiator.statistics().quick_modes_started, 1);
    pair.initiator.reconfigure(now, Arc::new(i.clone()));
    pair.drive();
    let p = pair.pairs(Side::I);
    assert_eq!(p.len(), 2, "the ACQUIRE was replayed");
    assert_eq!(p[1].child.0, "d");
    // A second reconfiguration does not renegotiate what has SAs.
    pair.initiator.reconfigure(now, Arc::new(i.clone()));
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 2);
    // Replays end with the kernel's acquire lifetime.
    let mut fresh = Pair::with_configs(i0, with_d(&cfg).1);
    fresh.establish();
    let now = fresh.now;
    fresh.initiator.handle_kernel_event(now, acquire);
    fresh.advance(std::time::Duration::from_secs(31));
    let now = fresh.now;
    fresh.initiator.reconfigure(now, Arc::new(i));
    fresh.drive();
    assert_eq!(fresh.pairs(Side::I).len(), 1);
}
