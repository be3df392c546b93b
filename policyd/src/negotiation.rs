//! ikd's `match-negotiation` (`ipsec-control(7)`, version 2): which rule, and so which
//! connection of the generated ikd.conf, answers a peer's quick mode (seed: the IKE module
//! asks the Policy Agent for the matching policy).
//!
//! The answer comes from the last applied state, never from the store: the kernel policies
//! the agent compiled (so filter order and weights, mirrored filters and "my address"
//! expanded are exactly the kernel's), in the kernel's precedence (lowest priority value
//! first), outbound ones matched against the proposed traffic from us to the peer and
//! inbound ones against the traffic from the peer to us (an SA pair carries both; an
//! inbound-only block filter refuses too). The first whose selector contains the proposed
//! traffic decides: a
//! negotiate filter gives its ikd connection ([`crate::ikdconf::connection_name`], taken from
//! the [`NegotiationIndex`] the generation returned), or the default response rule's
//! catch-all when the filter got none (its far side is not one address); a block or permit
//! filter refuses, naming the rule. A block filter of higher precedence that only overlaps
//! the proposal refuses it too (an SA for the wider traffic would carry what the rule
//! blocks). Nothing matching: the default response rule when it is active, else no match.
//!
//! Pure: no kernel, no socket; [`crate::service::Agent::match_negotiation`] calls it.

use std::net::IpAddr;

use ipsec_agent::DesiredState;
use ipsec_control::{NegotiationQuery, NegotiationVerdict, DEFAULT_RESPONSE};
use pfkey::{Direction, PolicyAction, Prefix, Selector, UpperLayer};

use crate::ikdconf::NegotiationIndex;

/// The traffic of a query, as a selector from our side (source = us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Traffic {
    local: Prefix,
    remote: Prefix,
    protocol: u8,
    local_port: u16,
    remote_port: u16,
}

impl Traffic {
    /// The same traffic seen from the peer (for inbound kernel policies).
    fn reversed(self) -> Self {
        Self {
            local: self.remote,
            remote: self.local,
            protocol: self.protocol,
            local_port: self.remote_port,
            remote_port: self.local_port,
        }
    }
}

fn parse_prefix(s: &str) -> Option<Prefix> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some(Prefix { addr, len })
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Whether `outer` contains `inner` (same family, at least as long, same leading bits).
fn prefix_contains(outer: &Prefix, inner: &Prefix) -> bool {
    if outer.addr.is_ipv4() != inner.addr.is_ipv4() || inner.len < outer.len {
        return false;
    }
    let mask = if outer.len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(outer.len.min(128)))
    };
    bits(outer.addr) & mask == bits(inner.addr) & mask
}

/// Whether the two prefixes share an address.
fn prefix_overlaps(a: &Prefix, b: &Prefix) -> bool {
    prefix_contains(a, b) || prefix_contains(b, a)
}

fn port_fits(policy: Option<u16>, ours: u16) -> bool {
    policy.is_none_or(|p| p == ours)
}

fn port_overlaps(policy: Option<u16>, ours: u16) -> bool {
    policy.is_none_or(|p| ours == 0 || p == ours)
}

fn contains(sel: &Selector, t: &Traffic) -> bool {
    prefix_contains(&sel.source, &t.local)
        && prefix_contains(&sel.destination, &t.remote)
        && match sel.upper {
            UpperLayer::Any => true,
            UpperLayer::Proto {
                proto,
                source_port,
                destination_port,
            } => {
                proto == t.protocol
                    && port_fits(source_port, t.local_port)
                    && port_fits(destination_port, t.remote_port)
            }
        }
}

fn overlaps(sel: &Selector, t: &Traffic) -> bool {
    prefix_overlaps(&sel.source, &t.local)
        && prefix_overlaps(&sel.destination, &t.remote)
        && match sel.upper {
            UpperLayer::Any => true,
            UpperLayer::Proto {
                proto,
                source_port,
                destination_port,
            } => {
                (t.protocol == 0 || proto == t.protocol)
                    && port_overlaps(source_port, t.local_port)
                    && port_overlaps(destination_port, t.remote_port)
            }
        }
}

fn default_response(index: &NegotiationIndex, why: String) -> NegotiationVerdict {
    if index.default_response {
        NegotiationVerdict::Connection {
            connection: DEFAULT_RESPONSE.to_owned(),
            rule: "default response rule".to_owned(),
        }
    } else {
        NegotiationVerdict::NoMatch { reason: why }
    }
}

/// The verdict for `q` from the applied kernel state `desired` and the ikd.conf `index`.
pub(crate) fn verdict(
    desired: &DesiredState,
    index: &NegotiationIndex,
    q: &NegotiationQuery,
) -> NegotiationVerdict {
    let (Some(local), Some(remote)) = (
        parse_prefix(&q.local_subnet),
        parse_prefix(&q.remote_subnet),
    ) else {
        return NegotiationVerdict::NoMatch {
            reason: format!(
                "malformed traffic {} <-> {}",
                q.local_subnet, q.remote_subnet
            ),
        };
    };
    let t = Traffic {
        local,
        remote,
        protocol: q.protocol,
        local_port: q.local_port,
        remote_port: q.remote_port,
    };
    let rule_name = |id: &uuid::Uuid| {
        index
            .rule_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    };
    // The rules' kernel policies (not the dynamic filters, rule nil), in the kernel's
    // precedence; `entries` is already in it, the stable sort only makes sure.
    let mut entries: Vec<(&ipsec_agent::DesiredEntry, Traffic)> = desired
        .entries
        .iter()
        .filter(|e| !e.rule.is_nil())
        .filter_map(|e| match e.policy.id.direction {
            Direction::Out => Some((e, t)),
            Direction::In => Some((e, t.reversed())),
            _ => None,
        })
        .collect();
    entries.sort_by_key(|(e, _)| e.policy.priority);
    for (e, t) in entries {
        let t = &t;
        let sel = &e.policy.id.selector;
        if !contains(sel, t) {
            if matches!(e.policy.action, PolicyAction::Block) && overlaps(sel, t) {
                let rule = rule_name(&e.rule);
                return NegotiationVerdict::Blocked {
                    reason: format!("partly blocked by rule \"{rule}\""),
                    rule,
                };
            }
            continue;
        }
        let rule = rule_name(&e.rule);
        return match &e.policy.action {
            PolicyAction::Block => NegotiationVerdict::Blocked {
                reason: format!("blocked by rule \"{rule}\""),
                rule,
            },
            PolicyAction::Allow => NegotiationVerdict::PermittedInClear {
                reason: format!("permitted in clear by rule \"{rule}\""),
                rule,
            },
            PolicyAction::Protect(_) => match index.connections.get(&(e.rule, e.filter)) {
                Some(connection) => NegotiationVerdict::Connection {
                    connection: connection.clone(),
                    rule,
                },
                None => default_response(
                    index,
                    format!("rule \"{rule}\" has no ikd connection for this filter"),
                ),
            },
        };
    }
    default_response(
        index,
        "no rule covers the traffic and the default response rule is not active".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ikdconf::{self, Applied};
    use ipsec_agent::{compile, CompileOptions};
    use ipsec_policy::defaults::{default_store, LAB_ANDY, LAB_ANDY_ADDR, LAB_BETTY_ADDR};
    use ipsec_policy::{InterfaceSnapshot, PolicySet};
    use uuid::Uuid;

    const H3: &str = "192.0.2.3";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// Andy's lab policy (blocks inbound telnet from everyone, negotiates telnet from
    /// Betty), optionally with the default response rule active.
    fn policy_set(default_response: bool) -> (PolicySet, Uuid) {
        let mut set = default_store();
        let id = set.policy_by_name(LAB_ANDY).expect("lab policy").id;
        for p in &mut set.policies {
            if p.id == id {
                p.default_response.active = default_response;
            }
        }
        (set, id)
    }

    fn applied(default_response: bool) -> (DesiredState, NegotiationIndex, String) {
        let (set, id) = policy_set(default_response);
        let policy = set.policy(id).expect("policy");
        let desired = compile(
            &set,
            policy,
            &InterfaceSnapshot {
                addresses: vec![ipsec_policy::InterfaceAddress {
                    interface: "eth0".into(),
                    address: LAB_ANDY_ADDR.into(),
                    kind: ipsec_policy::InterfaceKind::Lan,
                }],
                ..InterfaceSnapshot::default()
            },
            &CompileOptions::default(),
        )
        .expect("compile");
        let (text, index) = ikdconf::generate_indexed(&[Applied { set: &set, policy }], &desired);
        (desired, index, text)
    }

    fn query(peer: &str, protocol: u8, local_port: u16, remote_port: u16) -> NegotiationQuery {
        NegotiationQuery {
            local: LAB_ANDY_ADDR.into(),
            peer: ip(peer),
            local_subnet: format!("{LAB_ANDY_ADDR}/32"),
            remote_subnet: peer.to_owned(),
            protocol,
            local_port,
            remote_port,
            peer_identity: None,
        }
    }

    #[test]
    fn telnet_from_the_blocked_peer_is_refused_naming_the_rule() {
        let (desired, index, _) = applied(true);
        let v = verdict(&desired, &index, &query(H3, 6, 23, 0));
        assert_eq!(
            v,
            NegotiationVerdict::Blocked {
                rule: "Block telnet".into(),
                reason: "blocked by rule \"Block telnet\"".into()
            }
        );
        // All traffic with h3 includes the blocked telnet: refused too.
        assert!(matches!(
            verdict(&desired, &index, &query(H3, 0, 0, 0)),
            NegotiationVerdict::Blocked { reason, .. } if reason.starts_with("partly")
        ));
    }

    #[test]
    fn other_traffic_from_that_peer_gets_the_default_response_rule_when_active() {
        let (desired, index, text) = applied(true);
        assert!(text.contains("policy-lookup = true"), "{text}");
        assert_eq!(
            verdict(&desired, &index, &query(H3, 1, 0, 0)),
            NegotiationVerdict::Connection {
                connection: DEFAULT_RESPONSE.into(),
                rule: "default response rule".into()
            }
        );
        let (desired, index, _) = applied(false);
        assert!(matches!(
            verdict(&desired, &index, &query(H3, 1, 0, 0)),
            NegotiationVerdict::NoMatch { .. }
        ));
    }

    #[test]
    fn the_negotiating_filter_gives_the_connection_ikdconf_generated_for_it() {
        let (desired, index, text) = applied(true);
        // Andy's lab rule negotiates telnet from Betty (ahead of the block of everyone's).
        let betty = LAB_BETTY_ADDR.to_string();
        let v = verdict(&desired, &index, &query(&betty, 6, 23, 0));
        let NegotiationVerdict::Connection { connection, rule } = &v else {
            panic!("{v:?}\n{text}");
        };
        assert!(rule.starts_with("Negotiate"), "{rule}");
        assert_ne!(connection, DEFAULT_RESPONSE);
        assert!(
            text.contains(&format!("name = \"{connection}\"")),
            "{connection} not in\n{text}"
        );
        // The name is ikdconf's for that rule and filter.
        let (set, id) = policy_set(true);
        let p = set.policy(id).expect("policy");
        let ri = p
            .rules
            .iter()
            .position(|r| r.name.starts_with("Negotiate"))
            .expect("rule");
        assert_eq!(connection, &ikdconf::connection_name(p, ri, 0));
    }

    #[test]
    fn malformed_subnets_are_no_match() {
        let (desired, index, _) = applied(true);
        let mut q = query(H3, 1, 0, 0);
        q.remote_subnet = "not an address".into();
        assert!(matches!(
            verdict(&desired, &index, &q),
            NegotiationVerdict::NoMatch { .. }
        ));
        q.remote_subnet = "192.0.2.3/40".into();
        assert!(matches!(
            verdict(&desired, &index, &q),
            NegotiationVerdict::NoMatch { .. }
        ));
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| parse_prefix(s).expect("prefix");
        assert!(prefix_contains(&p("192.0.2.0/24"), &p("192.0.2.3")));
        assert!(!prefix_contains(&p("192.0.2.3"), &p("192.0.2.0/24")));
        assert!(prefix_contains(&p("0.0.0.0/0"), &p("203.0.113.9")));
        assert!(!prefix_contains(&p("0.0.0.0/0"), &p("2001:db8::1")));
        assert!(prefix_contains(&p("2001:db8::/32"), &p("2001:db8::1/128")));
        assert!(prefix_overlaps(&p("192.0.2.3"), &p("192.0.2.0/24")));
    }
}
