//! Filter ordering and expansion: from a policy's rules to concrete, ordered, one-direction
//! filters the agent can program into the kernel.
//!
//! [`expand`] is a pure function of the policy set, the policy and an
//! [`InterfaceSnapshot`] (this computer's addresses and its keyword servers), so the agent
//! calls it again whenever an address changes and installs the difference.
//!
//! # Weight
//!
//! More specific filters win, as in Windows (the seed: "a lower index indicates higher
//! precedence and higher weight") and strongSwan (`get_priority`: `PRIO_BASE - 512 × mask
//! bits - 256 × protocol - 64 × port`, see peers.md). The weight of an expanded filter is
//!
//! ```text
//! weight = 8 × (source prefix length + destination prefix length)
//!        + 4 if the protocol is not "any"
//!        + 1 if the source port is set + 1 if the destination port is set
//! ```
//!
//! A specific address (and "my address" or a keyword server, once expanded) counts as a
//! full-length prefix, a subnet as its prefix length, "any" as 0. As in strongSwan, one more
//! prefix bit outweighs protocol and both ports together (8 > 4 + 1 + 1). IPv6 weights reach
//! [`MAX_WEIGHT`] = 2054.
//!
//! # Priority
//!
//! The kernel wants a number where lower wins, inside the band `pfkey::Ownership` reserves
//! for this system ([`PRIORITY_BAND`], 1000..=199999):
//!
//! ```text
//! priority = 1000 + (MAX_WEIGHT - weight) × SLOTS + min(rule index, SLOTS - 1)
//! ```
//!
//! so equal weights are broken by rule order (the position in the policy, active or not).
//! From the 96th rule on, equal-weight filters of different rules share a priority; the
//! output order (priority, rule index, rule GUID, filter position, filter GUID, forward
//! before reverse, direction)
//! stays deterministic, and validation refuses equal-weight filters with different effects.
//! The priority of a filter depends only on its own weight and its rule's position, so
//! adding a filter does not renumber the others.
//!
//! # Directions
//!
//! A filter matches packets from its source to its destination; a mirrored filter also
//! the reverse (addresses and ports swapped). Each expanded filter has one
//! [`Direction`]: outbound when its source is this computer ("my address", or one of the
//! snapshot's addresses), inbound when its destination is, and both otherwise (e.g. any →
//! any). Forward policies of a tunnel gateway are the agent's business.
//!
//! Not done here: the default response rule (ikd creates its dynamic filters), boot
//! exemptions and kernel calls.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use uuid::Uuid;

use crate::model::*;

/// The kernel priorities this system owns (`pfkey::Ownership::default().priorities`).
pub const PRIORITY_BAND: RangeInclusive<u32> = 1_000..=199_999;
/// The largest weight: two IPv6 host addresses, a protocol and both ports.
pub const MAX_WEIGHT: u32 = 8 * 256 + 4 + 2;
/// Priorities per weight, one per rule position.
pub const SLOTS: u32 = 96;

/// This computer's addresses and keyword servers at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceSnapshot {
    /// Unicast addresses of the interfaces ("my address").
    pub addresses: Vec<InterfaceAddress>,
    /// DNS servers.
    pub dns_servers: Vec<IpAddr>,
    /// DHCP servers.
    pub dhcp_servers: Vec<IpAddr>,
    /// WINS servers.
    pub wins_servers: Vec<IpAddr>,
    /// Default gateways.
    pub default_gateways: Vec<IpAddr>,
}

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// Interface name (`eth0`).
    pub interface: String,
    /// The address.
    pub address: IpAddr,
    /// LAN or remote access (for a rule's [`ConnectionType`]).
    pub kind: InterfaceKind,
}

/// What kind of connection an interface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceKind {
    /// A LAN interface.
    Lan,
    /// A dial-up / VPN / remote-access interface.
    RemoteAccess,
}

impl InterfaceKind {
    fn matches(self, ct: ConnectionType) -> bool {
        matches!(
            (ct, self),
            (ConnectionType::All, _)
                | (ConnectionType::Lan, Self::Lan)
                | (ConnectionType::RemoteAccess, Self::RemoteAccess)
        )
    }
}

/// Which packets an expanded filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Packets this computer sends.
    Outbound,
    /// Packets this computer receives.
    Inbound,
}

/// One concrete, one-direction filter with its rule's effect and kernel priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedFilter {
    /// The policy.
    pub policy: Uuid,
    /// The rule.
    pub rule: Uuid,
    /// The rule's position in the policy.
    pub rule_index: usize,
    /// The filter list.
    pub filter_list: Uuid,
    /// The filter.
    pub filter: Uuid,
    /// The filter action.
    pub filter_action: Uuid,
    /// Whether this is the reverse half of a mirrored filter.
    pub reversed: bool,
    /// Packets sent or received.
    pub direction: Direction,
    /// Source prefix.
    pub source: Subnet,
    /// Destination prefix.
    pub destination: Subnet,
    /// Protocol.
    pub protocol: Protocol,
    /// Source port, 0 = any.
    pub source_port: u16,
    /// Destination port, 0 = any.
    pub destination_port: u16,
    /// The interface whose address "my address" expanded to, if any.
    pub interface: Option<String>,
    /// What to do.
    pub action: Action,
    /// Tunnel endpoint (tunnel mode) or `None` (transport mode).
    pub tunnel_endpoint: Option<IpAddr>,
    /// Specificity; higher wins.
    pub weight: u32,
    /// Kernel priority in [`PRIORITY_BAND`]; lower wins.
    pub priority: u32,
}

/// The weight of a selector (module docs).
pub fn weight(
    source: Subnet,
    destination: Subnet,
    protocol: Protocol,
    sport: u16,
    dport: u16,
) -> u32 {
    8 * (u32::from(source.prefix_len()) + u32::from(destination.prefix_len()))
        + if protocol == Protocol::Any { 0 } else { 4 }
        + u32::from(sport != 0)
        + u32::from(dport != 0)
}

/// The kernel priority of a weight at a rule position (module docs).
pub fn priority(weight: u32, rule_index: usize) -> u32 {
    let slot = u32::try_from(rule_index).unwrap_or(u32::MAX).min(SLOTS - 1);
    PRIORITY_BAND.start() + MAX_WEIGHT.saturating_sub(weight) * SLOTS + slot
}

fn host(a: IpAddr) -> Subnet {
    // A full-length prefix never has host bits set.
    Subnet::new(a, max_prefix(a)).unwrap_or_else(|_| any_of(a.is_ipv6()))
}

fn any_of(v6: bool) -> Subnet {
    let a = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    // Prefix 0 of the unspecified address is always valid.
    Subnet::new(a, 0).unwrap_or_else(|_| any_of(v6))
}

/// An endpoint expanded to prefixes, each with the interface "my address" came from.
fn expand_endpoint(
    e: Endpoint,
    ct: ConnectionType,
    snap: &InterfaceSnapshot,
) -> Vec<(Subnet, Option<String>)> {
    let servers = |list: &[IpAddr]| list.iter().map(|a| (host(*a), None)).collect();
    match e {
        Endpoint::Any => vec![(any_of(false), None), (any_of(true), None)],
        Endpoint::Address(a) => vec![(host(a), None)],
        Endpoint::Subnet(s) => vec![(s, None)],
        Endpoint::MyAddress => snap
            .addresses
            .iter()
            .filter(|a| a.kind.matches(ct))
            .map(|a| (host(a.address), Some(a.interface.clone())))
            .collect(),
        Endpoint::Dns => servers(&snap.dns_servers),
        Endpoint::Dhcp => servers(&snap.dhcp_servers),
        Endpoint::Wins => servers(&snap.wins_servers),
        Endpoint::DefaultGateway => servers(&snap.default_gateways),
    }
}

/// Expands the active rules of `policy` against `snapshot` into ordered one-direction
/// filters: highest precedence (lowest priority) first, duplicates (same direction and
/// selector) kept only at their first, winning occurrence. Rules whose filter list or
/// filter action is missing are skipped (validation reports them).
pub fn expand(
    set: &PolicySet,
    policy: &Policy,
    snapshot: &InterfaceSnapshot,
) -> Vec<ExpandedFilter> {
    let local: HashSet<IpAddr> = snapshot.addresses.iter().map(|a| a.address).collect();
    let mut out = Vec::new();
    for (rule_index, rule) in policy.rules.iter().enumerate() {
        if !rule.active {
            continue;
        }
        let (Some(list), Some(action)) = (
            set.filter_list(rule.filter_list),
            set.filter_action(rule.filter_action),
        ) else {
            continue;
        };
        let tunnel_endpoint = match rule.tunnel_endpoint {
            Some(Endpoint::Address(a)) => Some(a),
            _ => None,
        };
        for filter in &list.filters {
            let sources = expand_endpoint(filter.source, rule.connection_type, snapshot);
            let destinations = expand_endpoint(filter.destination, rule.connection_type, snapshot);
            for (src, src_if) in &sources {
                for (dst, dst_if) in &destinations {
                    if src.addr().is_ipv6() != dst.addr().is_ipv6() {
                        continue;
                    }
                    let from_me = filter.source == Endpoint::MyAddress
                        || (src.prefix_len() == max_prefix(src.addr())
                            && local.contains(&src.addr()));
                    let to_me = filter.destination == Endpoint::MyAddress
                        || (dst.prefix_len() == max_prefix(dst.addr())
                            && local.contains(&dst.addr()));
                    let forward = match (from_me, to_me) {
                        (true, _) => vec![Direction::Outbound],
                        (false, true) => vec![Direction::Inbound],
                        (false, false) => vec![Direction::Outbound, Direction::Inbound],
                    };
                    let interface = src_if.clone().or_else(|| dst_if.clone());
                    let mut push = |reversed: bool, direction: Direction| {
                        let (source, destination, sport, dport) = if reversed {
                            (*dst, *src, filter.destination_port, filter.source_port)
                        } else {
                            (*src, *dst, filter.source_port, filter.destination_port)
                        };
                        let weight = weight(source, destination, filter.protocol, sport, dport);
                        out.push(ExpandedFilter {
                            policy: policy.id,
                            rule: rule.id,
                            rule_index,
                            filter_list: list.id,
                            filter: filter.id,
                            filter_action: action.id,
                            reversed,
                            direction,
                            source,
                            destination,
                            protocol: filter.protocol,
                            source_port: sport,
                            destination_port: dport,
                            interface: interface.clone(),
                            action: action.action.clone(),
                            tunnel_endpoint,
                            weight,
                            priority: priority(weight, rule_index),
                        });
                    };
                    for d in &forward {
                        push(false, *d);
                    }
                    if filter.mirrored {
                        for d in &forward {
                            let reverse = match d {
                                Direction::Outbound => Direction::Inbound,
                                Direction::Inbound => Direction::Outbound,
                            };
                            push(true, reverse);
                        }
                    }
                }
            }
        }
    }
    // Position of each filter in its list (the first with its GUID), for the deterministic
    // tie-break; indexed once rather than searched per expanded filter.
    let mut positions: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    let mut indexed = HashSet::new();
    for f in &out {
        if indexed.insert(f.filter_list) {
            if let Some(l) = set.filter_list(f.filter_list) {
                for (i, x) in l.filters.iter().enumerate() {
                    positions.entry((f.filter_list, x.id)).or_insert(i);
                }
            }
        }
    }
    let position = |f: &ExpandedFilter| {
        positions
            .get(&(f.filter_list, f.filter))
            .copied()
            .unwrap_or(usize::MAX)
    };
    out.sort_by_cached_key(|f| {
        (
            f.priority,
            f.rule_index,
            f.rule,
            position(f),
            f.filter,
            f.reversed,
            f.direction,
            (f.source.addr(), f.source.prefix_len()),
            (f.destination.addr(), f.destination.prefix_len()),
        )
    });
    let mut seen = HashSet::new();
    out.retain(|f| {
        seen.insert((
            f.direction,
            f.source,
            f.destination,
            f.protocol,
            f.source_port,
            f.destination_port,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{self, default_store};

    fn lan(interface: &str, address: &str) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.into(),
            address: address.parse().unwrap(),
            kind: InterfaceKind::Lan,
        }
    }

    fn andy_snapshot() -> InterfaceSnapshot {
        InterfaceSnapshot {
            addresses: vec![lan("eth0", "192.0.2.11")],
            ..Default::default()
        }
    }

    fn sub(s: &str) -> Subnet {
        if s.contains('/') {
            s.parse().unwrap()
        } else {
            host(s.parse().unwrap())
        }
    }

    #[test]
    fn priority_band_matches_pfkey_ownership() {
        assert_eq!(PRIORITY_BAND, pfkey::Ownership::default().priorities);
        assert!(PRIORITY_BAND.contains(&priority(0, usize::MAX)));
        assert!(PRIORITY_BAND.contains(&priority(MAX_WEIGHT, 0)));
    }

    #[test]
    fn more_specific_filters_get_lower_priorities() {
        let any4 = sub("0.0.0.0/0");
        let h = sub("192.0.2.11");
        let net = sub("192.0.2.0/24");
        let w_any = weight(any4, any4, Protocol::Any, 0, 0);
        let w_net = weight(net, any4, Protocol::Any, 0, 0);
        let w_host = weight(h, any4, Protocol::Any, 0, 0);
        let w_host_tcp = weight(h, any4, Protocol::TCP, 0, 0);
        let w_host_tcp_port = weight(h, any4, Protocol::TCP, 0, 23);
        let w_net25_all = weight(sub("192.0.2.0/25"), any4, Protocol::TCP, 1, 23);
        assert!(
            w_any < w_net && w_net < w_host && w_host < w_host_tcp && w_host_tcp < w_host_tcp_port
        );
        // One more prefix bit outweighs protocol and ports.
        assert!(w_net25_all < weight(sub("192.0.2.0/26"), any4, Protocol::Any, 0, 0));
        assert!(priority(w_host_tcp_port, 5) < priority(w_host_tcp, 0));
        // Equal weight: rule order.
        assert!(priority(w_host, 0) < priority(w_host, 1));
    }

    #[test]
    fn lab_policy_expands_to_negotiate_before_block() {
        let set = default_store();
        let policy = set.policy_by_name(defaults::LAB_ANDY).unwrap();
        let filters = expand(&set, policy, &andy_snapshot());
        let summary: Vec<_> = filters
            .iter()
            .map(|f| {
                (
                    f.direction,
                    f.source.to_string(),
                    f.destination.to_string(),
                    f.source_port,
                    f.destination_port,
                    matches!(f.action, Action::Block),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Direction::Inbound,
                    "192.0.2.12/32".into(),
                    "192.0.2.11/32".into(),
                    0,
                    23,
                    false
                ),
                (
                    Direction::Outbound,
                    "192.0.2.11/32".into(),
                    "192.0.2.12/32".into(),
                    23,
                    0,
                    false
                ),
                (
                    Direction::Inbound,
                    "0.0.0.0/0".into(),
                    "192.0.2.11/32".into(),
                    0,
                    23,
                    true
                ),
            ]
        );
        assert!(filters.windows(2).all(|w| w[0].priority <= w[1].priority));
        assert!(filters[1].priority < filters[2].priority);
        assert!(filters.iter().all(|f| PRIORITY_BAND.contains(&f.priority)));
    }

    #[test]
    fn my_address_follows_the_interface_addresses() {
        let set = default_store();
        let policy = set.policy_by_name(defaults::SECURE_SERVER).unwrap();
        let mut snap = andy_snapshot();
        let before = expand(&set, policy, &snap);
        snap.addresses.push(lan("eth1", "2001:db8::11"));
        let after = expand(&set, policy, &snap);
        assert_eq!(before.len() * 2, after.len());
        assert!(after.iter().any(|f| f.source == sub("2001:db8::11")
            && f.destination == sub("::/0")
            && f.interface.as_deref() == Some("eth1")));
        // "me" with no address: nothing to install.
        assert!(expand(&set, policy, &InterfaceSnapshot::default()).is_empty());
    }

    #[test]
    fn mirrored_filters_cover_both_directions_with_swapped_ports() {
        let set = default_store();
        let policy = set.policy_by_name(defaults::LAB_BETTY).unwrap();
        let snap = InterfaceSnapshot {
            addresses: vec![lan("eth0", "192.0.2.12")],
            ..Default::default()
        };
        let f = expand(&set, policy, &snap);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].direction, f[0].reversed, f[0].destination_port),
            (Direction::Outbound, false, 23)
        );
        assert_eq!(
            (f[1].direction, f[1].reversed, f[1].source_port),
            (Direction::Inbound, true, 23)
        );
        assert_eq!(f[0].priority, f[1].priority);
    }

    #[test]
    fn keyword_endpoints_expand_to_the_snapshot_servers() {
        let mut set = default_store();
        let list = set
            .filter_lists
            .iter_mut()
            .find(|l| l.name == "All ICMP Traffic")
            .unwrap();
        list.filters[0].destination = Endpoint::Dns;
        let policy = set.policy_by_name(defaults::SERVER).unwrap().clone();
        let mut snap = andy_snapshot();
        snap.dns_servers = vec!["192.0.2.53".parse().unwrap(), "192.0.2.54".parse().unwrap()];
        let icmp: Vec<_> = expand(&set, &policy, &snap)
            .into_iter()
            .filter(|f| f.protocol == Protocol::ICMP)
            .collect();
        assert_eq!(icmp.len(), 4);
        assert!(icmp
            .iter()
            .all(|f| [f.source, f.destination].contains(&sub("192.0.2.53"))
                || [f.source, f.destination].contains(&sub("192.0.2.54"))));
    }

    #[test]
    fn connection_type_limits_my_address_to_matching_interfaces() {
        let mut set = default_store();
        let policy = set
            .policies
            .iter_mut()
            .find(|p| p.name == defaults::LAB_BETTY)
            .unwrap();
        policy.rules[0].connection_type = ConnectionType::RemoteAccess;
        let policy = policy.clone();
        let snap = InterfaceSnapshot {
            addresses: vec![lan("eth0", "192.0.2.12")],
            ..Default::default()
        };
        assert!(expand(&set, &policy, &snap).is_empty());
    }

    #[test]
    fn expansion_is_deterministic_and_deduplicated() {
        let mut set = default_store();
        let list = set
            .filter_lists
            .iter_mut()
            .find(|l| l.name == "All Telnet Traffic")
            .unwrap();
        let dup = Filter {
            id: new_id(),
            ..list.filters[0].clone()
        };
        list.filters.push(dup);
        let policy = set.policy_by_name(defaults::LAB_ANDY).unwrap();
        let a = expand(&set, policy, &andy_snapshot());
        assert_eq!(a, expand(&set, policy, &andy_snapshot()));
        assert_eq!(a.len(), 3);
    }
}
