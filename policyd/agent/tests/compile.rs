//! Compilation of policies to kernel policies (no kernel).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipsec_agent::{compile, CompileNote, CompileOptions, DesiredState, Error};
use ipsec_policy::defaults::{self, default_store};
use ipsec_policy::{
    Action, Endpoint, Filter, FilterList, InterfaceAddress, InterfaceKind, InterfaceSnapshot,
    PolicySet, Protocol,
};
use pfkey::{
    Direction, Mode, PolicyAction, Prefix, SecurityProtocol, Selector, TemplateLevel, UpperLayer,
};

fn snap(addrs: &[&str]) -> InterfaceSnapshot {
    InterfaceSnapshot {
        addresses: addrs
            .iter()
            .map(|a| InterfaceAddress {
                interface: "eth0".into(),
                address: a.parse().unwrap(),
                kind: InterfaceKind::Lan,
            })
            .collect(),
        ..Default::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn compile_named(set: &PolicySet, name: &str, addrs: &[&str]) -> DesiredState {
    let policy = set.policy_by_name(name).unwrap();
    compile(set, policy, &snap(addrs), &CompileOptions::default()).unwrap()
}

#[test]
fn lab_andy_compiles_to_protect_before_block() {
    let set = default_store();
    let d = compile_named(&set, defaults::LAB_ANDY, &["192.0.2.11"]);
    assert_eq!(d.entries.len(), 3);
    let reqid = *d.reqids.values().next().unwrap();
    assert_eq!(d.reqids.len(), 1);
    assert!((0x3000..=0x3fff).contains(&reqid));
    let tcp = |sp, dp| UpperLayer::Proto {
        proto: 6,
        source_port: sp,
        destination_port: dp,
    };
    let p = |e: usize| &d.entries[e].policy;
    // Inbound telnet from Betty: ESP transport, required.
    assert_eq!(p(0).id.direction, Direction::In);
    assert_eq!(
        p(0).id.selector,
        Selector {
            source: Prefix::host(ip("192.0.2.12")),
            destination: Prefix::host(ip("192.0.2.11")),
            upper: tcp(None, Some(23)),
        }
    );
    let PolicyAction::Protect(t) = &p(0).action else {
        panic!("{:?}", p(0).action)
    };
    assert_eq!(t.len(), 1);
    assert_eq!(
        (
            t[0].protocol,
            t[0].mode,
            t[0].reqid,
            t[0].level,
            t[0].tunnel
        ),
        (
            SecurityProtocol::Esp,
            Mode::Transport,
            reqid,
            TemplateLevel::Require,
            None
        )
    );
    // Replies to Betty: outbound, source port 23.
    assert_eq!(p(1).id.direction, Direction::Out);
    assert_eq!(p(1).id.selector.upper, tcp(Some(23), None));
    assert!(matches!(p(1).action, PolicyAction::Protect(_)));
    // Everyone else's telnet: blocked, lower precedence.
    assert_eq!(p(2).id.direction, Direction::In);
    assert_eq!(p(2).action, PolicyAction::Block);
    assert_eq!(p(2).id.selector.source, Prefix::any(pfkey::Family::V4));
    assert!(p(0).priority == p(1).priority && p(1).priority < p(2).priority);
    assert!(d
        .policies()
        .all(|p| p.index.is_none() && p.id.mark.is_none()));
    assert!(d
        .policies()
        .all(|p| pfkey::Ownership::default().owns_policy(p)));
}

#[test]
fn reqids_are_stable_and_kept_from_the_previous_compilation() {
    let set = default_store();
    let a = compile_named(&set, defaults::LAB_ANDY, &["192.0.2.11"]);
    let b = compile_named(&set, defaults::LAB_ANDY, &["192.0.2.11"]);
    assert_eq!(a, b);
    let rule = *a.reqids.keys().next().unwrap();
    let policy = set.policy_by_name(defaults::LAB_ANDY).unwrap();
    let options = CompileOptions {
        previous_reqids: BTreeMap::from([(rule, 0x3abc)]),
        ..Default::default()
    };
    let c = compile(&set, policy, &snap(&["192.0.2.11"]), &options).unwrap();
    assert_eq!(c.reqids[&rule], 0x3abc);
    assert!(c.policies().all(|p| match &p.action {
        PolicyAction::Protect(t) => t.iter().all(|t| t.reqid == 0x3abc),
        _ => true,
    }));
    // An out-of-range previous reqid is replaced by the derived one.
    let options = CompileOptions {
        previous_reqids: BTreeMap::from([(rule, 7)]),
        ..Default::default()
    };
    let d = compile(&set, policy, &snap(&["192.0.2.11"]), &options).unwrap();
    assert_eq!(d.reqids, a.reqids);
}

/// Many negotiating rules: distinct reqids in range; colliding GUIDs probe upwards; a tiny
/// range runs out with a typed error.
#[test]
fn reqid_collisions_are_resolved_and_exhaustion_is_an_error() {
    let mut set = default_store();
    let template = set.policy_by_name(defaults::LAB_BETTY).unwrap().rules[0].clone();
    let list = set
        .filter_lists
        .iter()
        .find(|l| l.id == template.filter_list)
        .unwrap()
        .clone();
    let policy_index = set
        .policies
        .iter()
        .position(|p| p.name == defaults::LAB_BETTY)
        .unwrap();
    // 40 rules, each with its own one-port filter list; GUIDs equal in the folded bits.
    for i in 0..40u16 {
        let mut l = list.clone();
        l.id = uuid::Uuid::from_u128(0x5000 + u128::from(i));
        l.name = format!("port {i}");
        l.filters[0].destination_port = 1000 + i;
        // Filter GUIDs that fold to zero as well: every (rule, filter) starts its probe at
        // the same reqid.
        let f = 0x6000 + u128::from(i);
        l.filters[0].id = uuid::Uuid::from_u128((f << 64) | f);
        let mut r = template.clone();
        // Same low 64 bits folded with the same high bits: every rule folds to zero.
        r.id = uuid::Uuid::from_u128((u128::from(i) << 64) | u128::from(i));
        r.name = format!("rule {i}");
        r.filter_list = l.id;
        set.filter_lists.push(l);
        set.policies[policy_index].rules.push(r);
    }
    let policy = set.policies[policy_index].clone();
    let d = compile(
        &set,
        &policy,
        &snap(&["192.0.2.12"]),
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(d.reqids.len(), 41);
    let mut values: Vec<u32> = d.reqids.values().copied().collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 41);
    assert!(values.iter().all(|r| (0x3000..=0x3fff).contains(r)));

    let options = CompileOptions {
        ownership: pfkey::Ownership {
            reqids: 0x3000..=0x3009,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        compile(&set, &policy, &snap(&["192.0.2.12"]), &options),
        Err(Error::ReqidsExhausted { .. })
    ));
}

/// Secure Server: "Require Security" accepts unsecured inbound (inbound pass-through), so
/// inbound templates are optional while outbound ones are required; ICMP is permitted.
#[test]
fn inbound_pass_through_uses_optional_inbound_templates() {
    let set = default_store();
    let d = compile_named(&set, defaults::SECURE_SERVER, &["192.0.2.11"]);
    let mut saw = (0, 0, 0);
    for p in d.policies() {
        match (&p.action, p.id.direction) {
            (PolicyAction::Protect(t), Direction::In) => {
                assert!(t.iter().all(|t| t.level == TemplateLevel::Use));
                saw.0 += 1;
            }
            (PolicyAction::Protect(t), Direction::Out) => {
                assert!(t.iter().all(|t| t.level == TemplateLevel::Require));
                saw.1 += 1;
            }
            (PolicyAction::Allow, _) => {
                assert!(matches!(
                    p.id.selector.upper,
                    UpperLayer::Proto { proto: 1, .. }
                ));
                saw.2 += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(saw, (1, 1, 2));
    // ICMP (more specific) wins over all-IP.
    let icmp = d
        .policies()
        .filter(|p| p.action == PolicyAction::Allow)
        .map(|p| p.priority)
        .max()
        .unwrap();
    let all = d
        .policies()
        .filter(|p| p.action != PolicyAction::Allow)
        .map(|p| p.priority)
        .min()
        .unwrap();
    assert!(icmp < all);
}

/// "Request Security (Optional)": ESP methods then AH methods. The templates follow the
/// first method (ESP); the AH methods are reported as unusable for this rule.
#[test]
fn methods_the_templates_cannot_carry_are_reported() {
    let set = default_store();
    let d = compile_named(&set, defaults::SERVER, &["192.0.2.11"]);
    assert!(d.notes.iter().any(|n| matches!(
        n,
        CompileNote::UnusableMethods { positions, .. } if positions == &vec![4, 5]
    )));
    assert!(d.entries.iter().any(|e| e.fall_back_to_clear));
}

/// Fall back to clear: the hook gives narrow allow policies one priority step ahead, which
/// the desired state recognises; other selectors and peers are refused.
#[test]
fn fall_back_to_clear_hook() {
    let mut set = default_store();
    for a in &mut set.filter_actions {
        if let Action::Negotiate(n) = &mut a.action {
            n.fall_back_to_clear = true;
        }
    }
    let d = compile_named(&set, defaults::LAB_BETTY, &["192.0.2.12"]);
    let out = d
        .policies()
        .find(|p| p.id.direction == Direction::Out)
        .unwrap()
        .clone();
    let soft = d.fall_back_to_clear(&out.id, ip("192.0.2.11")).unwrap();
    assert_eq!(soft.len(), 2);
    assert_eq!(soft[0].id.direction, Direction::Out);
    assert_eq!(soft[1].id.direction, Direction::In);
    assert_eq!(soft[1].id.selector.source, Prefix::host(ip("192.0.2.11")));
    for s in &soft {
        assert_eq!(s.action, PolicyAction::Allow);
        assert_eq!(s.priority, out.priority - 1);
        assert_eq!(s.lifetime.hard_use_seconds, Some(300));
        assert!(d.is_soft_clear(s));
    }
    assert!(matches!(
        d.fall_back_to_clear(&out.id, ip("192.0.2.99")),
        Err(Error::NoFallback(_))
    ));
    let inbound = d
        .policies()
        .find(|p| p.id.direction == Direction::In)
        .unwrap();
    assert!(d.fall_back_to_clear(&inbound.id, ip("192.0.2.11")).is_err());
    // The lab policy as shipped does not fall back.
    let plain = compile_named(&default_store(), defaults::LAB_BETTY, &["192.0.2.12"]);
    assert!(plain.fall_back_to_clear(&out.id, ip("192.0.2.11")).is_err());
    assert!(!plain.is_soft_clear(&soft[0]));
}

/// Tunnel rules: outbound to a remote endpoint → `dir out` tunnel templates; inbound (the
/// endpoint is this computer) → `dir in`, plus `dir fwd` on a gateway.
#[test]
fn tunnel_rules_map_to_out_and_in_fwd() {
    let mut set = default_store();
    let betty = set
        .policies
        .iter()
        .position(|p| p.name == defaults::LAB_BETTY)
        .unwrap();
    let template_rule = set.policies[betty].rules[0].clone();
    let mk_list = |n: u128, src: &str, dst: &str| FilterList {
        id: uuid::Uuid::from_u128(n),
        version: 1,
        name: format!("tunnel {n}"),
        description: String::new(),
        filters: vec![Filter {
            id: uuid::Uuid::from_u128(n + 1),
            version: 1,
            description: String::new(),
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
            mirrored: false,
            protocol: Protocol::Any,
            source_port: 0,
            destination_port: 0,
        }],
    };
    set.filter_lists
        .push(mk_list(0x7000, "198.51.100.0/24", "203.0.113.0/24"));
    set.filter_lists
        .push(mk_list(0x7100, "203.0.113.0/24", "198.51.100.0/24"));
    let mut out_rule = template_rule.clone();
    out_rule.id = uuid::Uuid::from_u128(0x7200);
    out_rule.name = "to remote site".into();
    out_rule.filter_list = uuid::Uuid::from_u128(0x7000);
    out_rule.tunnel_endpoint = Some(Endpoint::Address(ip("192.0.2.11")));
    let mut in_rule = template_rule;
    in_rule.id = uuid::Uuid::from_u128(0x7300);
    in_rule.name = "from remote site".into();
    in_rule.filter_list = uuid::Uuid::from_u128(0x7100);
    in_rule.tunnel_endpoint = Some(Endpoint::Address(ip("192.0.2.12")));
    set.policies[betty].rules = vec![out_rule, in_rule];
    ipsec_policy::validate(&set).unwrap();
    let policy = set.policies[betty].clone();
    let options = CompileOptions {
        gateway: true,
        ..Default::default()
    };
    let d = compile(&set, &policy, &snap(&["192.0.2.12"]), &options).unwrap();
    let dirs: Vec<Direction> = d.policies().map(|p| p.id.direction).collect();
    assert_eq!(dirs.len(), 3, "{d:#?}");
    for p in d.policies() {
        let PolicyAction::Protect(t) = &p.action else {
            panic!()
        };
        assert_eq!(t[0].mode, Mode::Tunnel);
        assert_eq!(t[0].level, TemplateLevel::Require);
        match p.id.direction {
            Direction::Out => {
                assert_eq!(p.id.selector.source.to_string(), "198.51.100.0/24");
                assert_eq!(t[0].tunnel, Some((ip("0.0.0.0"), ip("192.0.2.11"))));
            }
            Direction::In | Direction::Fwd => {
                assert_eq!(p.id.selector.source.to_string(), "203.0.113.0/24");
                assert_eq!(t[0].tunnel, Some((ip("0.0.0.0"), ip("192.0.2.12"))));
            }
        }
    }
    assert!(dirs.contains(&Direction::Fwd));
    // Not a gateway: no fwd.
    let d = compile(
        &set,
        &policy,
        &snap(&["192.0.2.12"]),
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(d.entries.len(), 2);
}

#[test]
fn block_and_permit_map_to_block_and_allow() {
    let set = default_store();
    let d = compile_named(&set, defaults::CLIENT, &["192.0.2.11"]);
    // Client (Respond Only) has only the default response rule: no kernel policy.
    assert!(d.entries.is_empty());
    let andy = compile_named(&set, defaults::LAB_ANDY, &["192.0.2.11"]);
    assert!(andy.policies().any(|p| p.action == PolicyAction::Block));
}
