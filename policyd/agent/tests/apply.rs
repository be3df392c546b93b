//! Applying desired states to an in-memory kernel: the diff, the order (checked packet by
//! packet after every kernel call), rollback at every possible failing call, idempotence
//! and ownership.

mod common;

use std::net::IpAddr;

use common::{canonical, canonical_noindex, TestKernel};
use ipsec_agent::{apply, compile, plan, Change, CompileOptions, DesiredState, Error};
use ipsec_policy::defaults::{self, default_store};
use ipsec_policy::{InterfaceAddress, InterfaceKind, InterfaceSnapshot};
use pfkey::memory::MemoryKernel;
use pfkey::{
    Direction, KernelInterface, Mode, Ownership, Policy, PolicyAction, PolicyId, Prefix,
    SecurityProtocol, Selector, Template, TemplateLevel, UpperLayer,
};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn snap(addr: &str) -> InterfaceSnapshot {
    InterfaceSnapshot {
        addresses: vec![InterfaceAddress {
            interface: "eth0".into(),
            address: ip(addr),
            kind: InterfaceKind::Lan,
        }],
        ..Default::default()
    }
}

fn desired(name: &str, addr: &str) -> DesiredState {
    let set = default_store();
    let p = set.policy_by_name(name).unwrap();
    compile(&set, p, &snap(addr), &CompileOptions::default()).unwrap()
}

fn foreign() -> Vec<Policy> {
    vec![
        Policy {
            id: PolicyId {
                selector: Selector::hosts(ip("192.0.2.11"), ip("198.51.100.2")),
                direction: Direction::Out,
                mark: None,
            },
            action: PolicyAction::Allow,
            priority: 0,
            index: None,
            lifetime: Default::default(),
        },
        Policy {
            id: PolicyId {
                selector: Selector::between(
                    Prefix {
                        addr: ip("198.51.100.0"),
                        len: 24,
                    },
                    Prefix::any(pfkey::Family::V4),
                ),
                direction: Direction::In,
                mark: None,
            },
            action: PolicyAction::Block,
            priority: 500_000,
            index: None,
            lifetime: Default::default(),
        },
    ]
}

fn owned(k: &mut dyn KernelInterface) -> Vec<Policy> {
    let own = Ownership::default();
    k.dump_policies()
        .unwrap()
        .into_iter()
        .filter(|p| own.owns_policy(p))
        .collect()
}

fn not_owned(k: &mut dyn KernelInterface) -> Vec<Policy> {
    let own = Ownership::default();
    k.dump_policies()
        .unwrap()
        .into_iter()
        .filter(|p| !own.owns_policy(p))
        .collect()
}

#[test]
fn apply_installs_the_desired_state_and_is_idempotent() {
    let mut k = TestKernel::new(MemoryKernel::new());
    for f in foreign() {
        k.add_policy(&f).unwrap();
    }
    let foreign_before = not_owned(&mut k);
    let d = desired(defaults::LAB_ANDY, "192.0.2.11");
    k.mutations = 0;
    let report = apply(&mut k, &d, &Ownership::default()).unwrap();
    assert_eq!(report.added, 3);
    assert_eq!(k.mutations, 3);
    let want: Vec<Policy> = d.policies().cloned().collect();
    assert_eq!(canonical_noindex(&owned(&mut k)), canonical_noindex(&want));
    assert_eq!(not_owned(&mut k), foreign_before);

    // Second time: one dump, no change.
    k.mutations = 0;
    k.dumps = 0;
    let report = apply(&mut k, &d, &Ownership::default()).unwrap();
    assert!(report.is_empty());
    assert_eq!((k.mutations, k.dumps), (0, 1));

    // Switch to Secure Server and back; foreign policies survive both.
    let s = desired(defaults::SECURE_SERVER, "192.0.2.11");
    apply(&mut k, &s, &Ownership::default()).unwrap();
    let want: Vec<Policy> = s.policies().cloned().collect();
    assert_eq!(canonical_noindex(&owned(&mut k)), canonical_noindex(&want));
    apply(&mut k, &DesiredState::default(), &Ownership::default()).unwrap();
    assert!(owned(&mut k).is_empty());
    assert_eq!(not_owned(&mut k), foreign_before);
}

#[test]
fn a_foreign_policy_with_a_desired_identity_is_refused_untouched() {
    let mut k = TestKernel::new(MemoryKernel::new());
    let d = desired(defaults::LAB_ANDY, "192.0.2.11");
    let mut f = d.entries[0].policy.clone();
    f.priority = 0;
    f.action = PolicyAction::Allow;
    k.add_policy(&f).unwrap();
    let before = canonical(&k.dump_policies().unwrap());
    k.mutations = 0;
    let err = apply(&mut k, &d, &Ownership::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ForeignConflict {
                foreign_priority: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(k.mutations, 0);
    assert_eq!(canonical(&k.dump_policies().unwrap()), before);
}

#[test]
fn soft_clear_policies_are_kept_while_the_policy_allows_them() {
    let mut set = default_store();
    for a in &mut set.filter_actions {
        if let ipsec_policy::Action::Negotiate(n) = &mut a.action {
            n.fall_back_to_clear = true;
        }
    }
    let p = set.policy_by_name(defaults::LAB_BETTY).unwrap();
    let d = compile(&set, p, &snap("192.0.2.12"), &CompileOptions::default()).unwrap();
    let mut k = TestKernel::new(MemoryKernel::new());
    apply(&mut k, &d, &Ownership::default()).unwrap();
    let out = d
        .policies()
        .find(|p| p.id.direction == Direction::Out)
        .unwrap();
    for s in d.fall_back_to_clear(&out.id, ip("192.0.2.11")).unwrap() {
        k.update_policy(&s).unwrap();
    }
    k.mutations = 0;
    assert!(apply(&mut k, &d, &Ownership::default()).unwrap().is_empty());
    assert_eq!(k.mutations, 0);
    // The shipped policy (no fall back) removes them.
    let plain = desired(defaults::LAB_BETTY, "192.0.2.12");
    let report = apply(&mut k, &plain, &Ownership::default()).unwrap();
    assert!(report.deleted >= 1);
    let want: Vec<Policy> = plain.policies().cloned().collect();
    assert_eq!(canonical_noindex(&owned(&mut k)), canonical_noindex(&want));
}

#[test]
fn a_failure_at_every_step_rolls_back_to_the_exact_previous_state() {
    let from = desired(defaults::LAB_ANDY, "192.0.2.11");
    let to = desired(defaults::SECURE_SERVER, "192.0.2.11");
    let fresh = || {
        let mut k = TestKernel::new(MemoryKernel::new());
        for f in foreign() {
            k.add_policy(&f).unwrap();
        }
        apply(&mut k, &from, &Ownership::default()).unwrap();
        k
    };
    let mut probe = fresh();
    let steps = plan(&probe.dump_policies().unwrap(), &to, &Ownership::default())
        .unwrap()
        .len();
    assert!(steps >= 5, "{steps}");
    probe.mutations = 0;
    apply(&mut probe, &to, &Ownership::default()).unwrap();
    assert_eq!(probe.mutations, steps);
    for k_th in 0..steps {
        let mut k = fresh();
        let before = canonical(&k.dump_policies().unwrap());
        k.mutations = 0;
        k.fail_at = vec![k_th];
        let err = apply(&mut k, &to, &Ownership::default()).unwrap_err();
        assert!(
            matches!(err, Error::ApplyFailed { step, undone, .. } if step == k_th && undone == k_th),
            "{err}"
        );
        assert_eq!(canonical(&k.dump_policies().unwrap()), before, "k = {k_th}");
    }
}

#[test]
fn a_failing_undo_is_reported_as_a_mixed_state() {
    let mut k = TestKernel::new(MemoryKernel::new());
    apply(
        &mut k,
        &desired(defaults::LAB_ANDY, "192.0.2.11"),
        &Ownership::default(),
    )
    .unwrap();
    let to = desired(defaults::SECURE_SERVER, "192.0.2.11");
    let steps = plan(&k.dump_policies().unwrap(), &to, &Ownership::default())
        .unwrap()
        .len();
    // Fail the last forward step, and the undo of the step before it (the next call).
    k.mutations = 0;
    k.fail_at = vec![steps - 1, steps];
    let err = apply(&mut k, &to, &Ownership::default()).unwrap_err();
    assert!(
        matches!(err, Error::RollbackFailed { step, undo_step, .. } if step == steps - 1 && undo_step == steps - 2),
        "{err}"
    );
    assert!(err.to_string().contains("mixed state"));
}

// ---------------------------------------------------------------------------------------
// The no-clear-window property, packet by packet.

#[derive(Debug, Clone, Copy)]
struct Packet {
    direction: Direction,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    dport: u16,
}

fn prefix_has(p: &Prefix, a: IpAddr) -> bool {
    let (IpAddr::V4(n), IpAddr::V4(a)) = (p.addr, a) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(p.len)).unwrap_or(0);
    u32::from(n) & mask == u32::from(a) & mask
}

fn matches(p: &Policy, pkt: &Packet) -> bool {
    let s = &p.id.selector;
    p.id.direction == pkt.direction
        && prefix_has(&s.source, pkt.src)
        && prefix_has(&s.destination, pkt.dst)
        && match s.upper {
            UpperLayer::Any => true,
            UpperLayer::Proto {
                proto,
                source_port,
                destination_port,
            } => {
                proto == pkt.proto
                    && source_port.is_none()
                    && destination_port.is_none_or(|d| d == pkt.dport)
            }
        }
}

/// Whether the kernel would let `pkt` through in clear (no matching policy counts as clear).
fn clear(spd: &[Policy], pkt: &Packet) -> bool {
    spd.iter()
        .filter(|p| matches(p, pkt))
        .min_by_key(|p| p.priority)
        .is_none_or(|p| !ipsec_agent::apply::is_tight(&p.action))
}

fn packets() -> Vec<Packet> {
    let mut v = Vec::new();
    for direction in [Direction::In, Direction::Out] {
        for src in ["192.0.2.1", "192.0.2.3", "198.51.100.1"] {
            for dst in ["192.0.2.2", "192.0.2.4", "198.51.100.2"] {
                for (proto, dport) in [(6, 23), (6, 80), (17, 53)] {
                    v.push(Packet {
                        direction,
                        src: ip(src),
                        dst: ip(dst),
                        proto,
                        dport,
                    });
                }
            }
        }
    }
    v
}

const SOURCES: [(&str, u8); 3] = [("192.0.2.1", 32), ("192.0.2.0", 24), ("0.0.0.0", 0)];
const DESTINATIONS: [(&str, u8); 3] = [("192.0.2.2", 32), ("192.0.2.0", 24), ("0.0.0.0", 0)];
const UPPERS: [Option<(u8, Option<u16>)>; 3] = [None, Some((6, None)), Some((6, Some(23)))];

/// A policy from the small universe: `sel` picks selector and direction (54 identities),
/// `slot` the priority within the selector's own band (so distinct selectors never tie,
/// while one identity may move), `action` the action.
fn universe_policy(sel: usize, slot: u32, action: usize) -> Policy {
    let direction = if sel.is_multiple_of(2) {
        Direction::In
    } else {
        Direction::Out
    };
    let s = sel / 2;
    let (sa, sl) = SOURCES[s % 3];
    let (da, dl) = DESTINATIONS[(s / 3) % 3];
    let upper = match UPPERS[(s / 9) % 3] {
        None => UpperLayer::Any,
        Some((proto, dport)) => UpperLayer::Proto {
            proto,
            source_port: None,
            destination_port: dport,
        },
    };
    let template = |reqid, level| Template {
        protocol: SecurityProtocol::Esp,
        mode: Mode::Transport,
        reqid,
        tunnel: None,
        level,
    };
    let action = match action {
        0 => PolicyAction::Allow,
        1 => PolicyAction::Block,
        2 => PolicyAction::Protect(vec![template(0x3001, TemplateLevel::Require)]),
        3 => PolicyAction::Protect(vec![template(0x3002, TemplateLevel::Require)]),
        _ => PolicyAction::Protect(vec![template(0x3001, TemplateLevel::Use)]),
    };
    Policy {
        id: PolicyId {
            selector: Selector {
                source: Prefix {
                    addr: ip(sa),
                    len: sl,
                },
                destination: Prefix {
                    addr: ip(da),
                    len: dl,
                },
                upper,
            },
            direction,
            mark: None,
        },
        action,
        priority: 1_000 + (sel as u32) * 10 + slot,
        index: None,
        lifetime: Default::default(),
    }
}

fn spd_strategy() -> impl Strategy<Value = Vec<Policy>> {
    proptest::collection::btree_map(0usize..54, (0u32..10, 0usize..5), 0..14).prop_map(|m| {
        m.into_iter()
            .map(|(sel, (slot, action))| universe_policy(sel, slot, action))
            .collect()
    })
}

fn install(k: &mut dyn KernelInterface, spd: &[Policy]) {
    for f in foreign() {
        k.add_policy(&f).unwrap();
    }
    for p in spd {
        k.add_policy(p).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For random old and new SPDs: after every kernel call of the apply (and of every
    /// rollback), no packet that both old and new secure or block passes in clear; the end
    /// state is the new one; a second apply changes nothing; a failure at any call leaves
    /// the kernel exactly as before.
    #[test]
    fn apply_never_opens_a_clear_window_and_rolls_back_whole(
        old in spd_strategy(),
        new in spd_strategy(),
    ) {
        let mut base = MemoryKernel::new();
        install(&mut base, &old);
        let old_spd = base.dump_policies().unwrap();
        let new_spd: Vec<Policy> = foreign().into_iter().chain(new.iter().cloned()).collect();
        let guarded: Vec<Packet> = packets()
            .into_iter()
            .filter(|p| !clear(&old_spd, p) && !clear(&new_spd, p))
            .collect();
        let want = DesiredState::from_policies(new.clone());
        let observer = |label: String| -> common::Observer {
            let guarded = guarded.clone();
            Box::new(move |spd: &[Policy]| {
                for p in &guarded {
                    assert!(!clear(spd, p), "{label}: {p:?} in clear with {spd:#?}");
                }
            })
        };

        let mut k = TestKernel::new(MemoryKernel::new());
        install(&mut k, &old);
        let before = canonical(&k.dump_policies().unwrap());
        let steps = plan(&k.dump_policies().unwrap(), &want, &Ownership::default()).unwrap();
        k.observer = Some(observer("forward".into()));
        k.mutations = 0;
        apply(&mut k, &want, &Ownership::default()).unwrap();
        prop_assert_eq!(k.mutations, steps.len());
        prop_assert_eq!(canonical_noindex(&owned(&mut k)), canonical_noindex(&new));
        prop_assert_eq!(canonical_noindex(&not_owned(&mut k)), canonical_noindex(&foreign()));
        k.mutations = 0;
        prop_assert!(apply(&mut k, &want, &Ownership::default()).unwrap().is_empty());
        prop_assert_eq!(k.mutations, 0);

        for k_th in 0..steps.len() {
            let mut k = TestKernel::new(MemoryKernel::new());
            install(&mut k, &old);
            k.observer = Some(observer(format!("fail at {k_th}")));
            k.mutations = 0;
            k.fail_at = vec![k_th];
            let err = apply(&mut k, &want, &Ownership::default()).unwrap_err();
            let is_apply_failed = matches!(err, Error::ApplyFailed { .. });
            prop_assert!(is_apply_failed, "{}", err);
            prop_assert_eq!(&canonical(&k.dump_policies().unwrap()), &before);
        }
    }
}

#[test]
fn plan_orders_tightening_before_loosening() {
    // Old: block telnet in (tight). New: permit telnet in, protect everything else in.
    let block = universe_policy(2 * 18, 0, 1); // in, 192.0.2.1 -> 192.0.2.2 tcp/any... in
    let mut permit = block.clone();
    permit.action = PolicyAction::Allow;
    let protect = universe_policy(2 * 8, 0, 2);
    let changes = plan(
        std::slice::from_ref(&block),
        &DesiredState::from_policies([permit.clone(), protect.clone()]),
        &Ownership::default(),
    )
    .unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Add(protect),
            Change::Update {
                old: Box::new(block),
                new: Box::new(permit)
            },
        ]
    );
}
