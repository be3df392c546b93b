//! The responder asks the policy agent which child answers a quick mode
//! (`EndpointConfig::policy_lookup`, `Action::LookupPolicy`, `handle_policy_answer`): whole
//! negotiations in memory for each kind of answer.

use std::time::Duration;

use isakmp::NotifyType;

use super::util::{ip, qm_3des, Pair, Side, TestConfig, I_ADDR, R_ADDR};
use crate::config::{
    ChildConfig, EncapsulationMode, EndpointConfig, EspCipher, IntegrityAlgorithm, PeerAddress,
    PeerConfig, QuickModeProposal, Subnet, TrafficSelector,
};
use crate::types::{Action, Event, FailureReason, PolicyAnswer, PolicyRefusal, RequestId};
use crate::ChildName;

/// What a lookup asked.
#[derive(Debug, Clone, Copy)]
struct View {
    local: std::net::IpAddr,
    peer: std::net::IpAddr,
    selector: TrafficSelector,
}

type Lookup = (RequestId, View);

/// A responder with policy lookups on and two children for the initiator, both covering
/// all traffic between the two hosts: "c" (first, the local choice) and "other".
fn responder() -> EndpointConfig {
    let mut r = TestConfig::psk("k").responder();
    r.policy_lookup = true;
    r.children.push(ChildConfig::new(
        "other",
        "i",
        qm_3des(EncapsulationMode::Transport),
    ));
    r
}

/// Runs main mode and the quick mode of the initiator's "c" up to the responder's policy
/// lookup (no answer yet); returns the pair and the lookup.
fn until_lookup(r: EndpointConfig) -> (Pair, Lookup) {
    let cfg = TestConfig::psk("k");
    let mut pair = Pair::with_configs(cfg.initiator(), r);
    pair.initiator
        .initiate(pair.now, &"c".into())
        .expect("initiate");
    pair.drive();
    let lookups = take_lookups(&mut pair);
    assert_eq!(lookups.len(), 1, "one lookup per QM1");
    assert!(
        pair.pairs(Side::R).is_empty(),
        "nothing installed before the answer"
    );
    assert_eq!(pair.responder.statistics().policy_lookups, 1);
    (pair, lookups[0])
}

fn take_lookups(pair: &mut Pair) -> Vec<Lookup> {
    let mut out = Vec::new();
    pair.actions_r.retain(|a| match a {
        Action::LookupPolicy {
            request,
            local,
            peer,
            selector,
            ..
        } => {
            out.push((
                *request,
                View {
                    local: *local,
                    peer: *peer,
                    selector: *selector,
                },
            ));
            false
        }
        _ => true,
    });
    out
}

fn answer(pair: &mut Pair, request: RequestId, a: PolicyAnswer) {
    pair.responder.handle_policy_answer(pair.now, request, a);
    pair.drive();
}

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
fn without_the_switch_no_lookup_is_made() {
    let mut pair = Pair::new(&TestConfig::psk("k"));
    pair.establish();
    assert!(!pair
        .actions_r
        .iter()
        .any(|a| matches!(a, Action::LookupPolicy { .. })));
    assert_eq!(pair.pairs(Side::R).len(), 1);
    assert_eq!(pair.responder.statistics().policy_lookups, 0);
}

#[test]
fn the_lookup_carries_the_proposed_traffic_from_the_responders_view() {
    let (_, (_, view)) = until_lookup(responder());
    assert_eq!(view.local, ip(R_ADDR));
    assert_eq!(view.peer, ip(I_ADDR));
    assert_eq!(
        view.selector,
        TrafficSelector::between(Subnet::host(ip(R_ADDR)), Subnet::host(ip(I_ADDR)))
    );
}

#[test]
fn the_agent_picks_another_child_than_local_matching_would() {
    // Without the agent the responder takes "c", the first child covering the proposal.
    let (mut pair, (request, _)) = until_lookup(responder());
    answer(&mut pair, request, PolicyAnswer::Connection("other".into()));
    let (i, r) = (pair.pairs(Side::I), pair.pairs(Side::R));
    assert_eq!((i.len(), r.len()), (1, 1));
    assert_eq!(r[0].child, ChildName::from("other"));
    super::util::assert_pairs_match(i[0], r[0]);
    let s = pair.responder.statistics();
    assert_eq!((s.policy_connections, s.quick_modes_completed), (1, 1));
    // The same negotiation answered "unavailable" falls back to the local choice, "c".
    let (mut pair, (request, _)) = until_lookup(responder());
    answer(&mut pair, request, PolicyAnswer::Unavailable);
    let r = pair.pairs(Side::R);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].child, ChildName::from("c"));
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_eq!(pair.responder.statistics().policy_unavailable, 1);
}

#[test]
fn a_blocked_negotiation_is_refused_with_invalid_id_and_installs_nothing() {
    let (mut pair, (request, _)) = until_lookup(responder());
    answer(
        &mut pair,
        request,
        PolicyAnswer::Refused {
            kind: PolicyRefusal::Blocked,
            reason: "blocked by rule \"block telnet\"".into(),
        },
    );
    assert!(pair.pairs(Side::R).is_empty() && pair.pairs(Side::I).is_empty());
    assert_eq!(
        failures(&pair, Side::R),
        [FailureReason::PolicyRefused {
            kind: PolicyRefusal::Blocked,
            reason: "blocked by rule \"block telnet\"".into()
        }]
    );
    assert_eq!(
        failures(&pair, Side::I),
        [FailureReason::PeerNotify(
            NotifyType::INVALID_ID_INFORMATION
        )]
    );
    let s = pair.responder.statistics();
    assert_eq!(
        (s.policy_refusals, s.quick_modes_failed, s.spi_requests),
        (1, 1, 0)
    );
    // The ISAKMP SA stays usable: the next quick mode, answered with a connection, works.
    pair.initiator
        .initiate(pair.now, &"c".into())
        .expect("initiate");
    pair.drive();
    let lookups = take_lookups(&mut pair);
    assert_eq!(lookups.len(), 1);
    answer(
        &mut pair,
        lookups[0].0,
        PolicyAnswer::Connection("c".into()),
    );
    assert_eq!(pair.pairs(Side::R).len(), 1);
    assert_eq!(pair.responder.statistics().main_modes_completed, 1);
}

#[test]
fn no_match_and_permitted_in_clear_are_refused_too() {
    for kind in [PolicyRefusal::NoMatch, PolicyRefusal::PermittedInClear] {
        let (mut pair, (request, _)) = until_lookup(responder());
        answer(
            &mut pair,
            request,
            PolicyAnswer::Refused {
                kind,
                reason: "no rule".into(),
            },
        );
        assert!(pair.pairs(Side::R).is_empty(), "{kind:?}");
        assert!(
            matches!(
                failures(&pair, Side::R).as_slice(),
                [FailureReason::PolicyRefused { kind: k, .. }] if *k == kind
            ),
            "{kind:?}"
        );
        assert_eq!(
            failures(&pair, Side::I),
            [FailureReason::PeerNotify(
                NotifyType::INVALID_ID_INFORMATION
            )]
        );
    }
}

#[test]
fn the_named_child_without_a_fitting_proposal_gives_no_proposal_chosen() {
    let mut r = responder();
    // "aes" accepts only AES; the initiator offers 3DES. Local matching would take "c".
    r.children.push(ChildConfig::new(
        "aes",
        "i",
        QuickModeProposal::esp(
            EspCipher::Aes256,
            IntegrityAlgorithm::HmacSha256,
            EncapsulationMode::Transport,
        ),
    ));
    let (mut pair, (request, _)) = until_lookup(r);
    answer(&mut pair, request, PolicyAnswer::Connection("aes".into()));
    assert!(pair.pairs(Side::R).is_empty() && pair.pairs(Side::I).is_empty());
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
fn a_named_child_of_another_peer_or_unknown_is_refused() {
    let mut r = responder();
    r.peers.push(PeerConfig::psk(
        "elsewhere",
        PeerAddress::Address(ip("192.0.2.99")),
        b"x",
    ));
    r.children.push(ChildConfig::new(
        "theirs",
        "elsewhere",
        qm_3des(EncapsulationMode::Transport),
    ));
    for name in ["theirs", "no-such-connection"] {
        let (mut pair, (request, _)) = until_lookup(r.clone());
        answer(&mut pair, request, PolicyAnswer::Connection(name.into()));
        assert!(pair.pairs(Side::R).is_empty(), "{name}");
        assert_eq!(
            failures(&pair, Side::I),
            [FailureReason::PeerNotify(
                NotifyType::INVALID_ID_INFORMATION
            )],
            "{name}"
        );
    }
}

#[test]
fn a_catch_all_peers_child_may_be_named_for_a_peer_with_its_own_entry() {
    let mut r = responder();
    r.peers
        .push(PeerConfig::psk("default-response", PeerAddress::Any, b"k"));
    r.children.push(ChildConfig::new(
        "default-response",
        "default-response",
        qm_3des(EncapsulationMode::Transport),
    ));
    let (mut pair, (request, _)) = until_lookup(r);
    answer(
        &mut pair,
        request,
        PolicyAnswer::Connection("default-response".into()),
    );
    let r = pair.pairs(Side::R);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].child, ChildName::from("default-response"));
}

#[test]
fn unknown_and_repeated_answers_are_ignored() {
    let (mut pair, (request, _)) = until_lookup(responder());
    answer(
        &mut pair,
        RequestId(request.0 + 1000),
        PolicyAnswer::Connection("c".into()),
    );
    assert!(pair.pairs(Side::R).is_empty());
    answer(&mut pair, request, PolicyAnswer::Connection("c".into()));
    assert_eq!(pair.pairs(Side::R).len(), 1);
    answer(&mut pair, request, PolicyAnswer::Connection("other".into()));
    answer(
        &mut pair,
        request,
        PolicyAnswer::Refused {
            kind: PolicyRefusal::Blocked,
            reason: "late".into(),
        },
    );
    assert_eq!(pair.pairs(Side::R).len(), 1);
    assert!(failures(&pair, Side::R).is_empty());
    assert_eq!(pair.responder.statistics().policy_connections, 1);
}

#[test]
fn an_unanswered_lookup_ends_with_the_half_open_timeout_and_a_late_answer_is_ignored() {
    let (mut pair, (request, _)) = until_lookup(responder());
    // The initiator's retransmissions of QM1 do not start a second lookup.
    pair.run_for(Duration::from_secs(5));
    assert!(take_lookups(&mut pair).is_empty());
    pair.run_for(Duration::from_secs(120));
    assert!(
        failures(&pair, Side::R).contains(&FailureReason::Stale),
        "{:?}",
        failures(&pair, Side::R)
    );
    answer(&mut pair, request, PolicyAnswer::Connection("c".into()));
    assert!(pair.pairs(Side::R).is_empty());
    assert!(pair.pairs(Side::I).is_empty());
}
