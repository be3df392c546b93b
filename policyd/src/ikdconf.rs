//! The ikd configuration derived from the applied policies (`ikd.conf(5)`, TOML).
//!
//! policyd hands ikd its main-mode, quick-mode and authentication settings as the text of an
//! ikd configuration: written to a file (mode 0600: it holds preshared keys) that ikd is
//! started with (`--config FILE`), and, when it changes while ikd runs, sent whole with the
//! control protocol's `configure` request (`ipsec-control(7)` version 2), which ikd applies
//! live (`supervise::configure_live`). Connection names are `POLICY-rRULE-fFILTER` (rule and
//! filter positions): ikd keeps the SAs of a connection whose name and settings are
//! unchanged, so reordering rules renegotiates them. The text:
//!
//! - `[daemon]`: `kernel = "xfrm"`, `policies = "external"` (policyd owns the SPD),
//!   `policy-lookup = true` (ikd asks policyd, `match-negotiation`, which connection answers
//!   a peer's quick mode; [`generate_indexed`] returns the index policyd answers from);
//! - `[main-mode]`: the ISAKMP policy of the first applied policy (the persistent one when
//!   there is one, as its settings win);
//! - one `[[peers]]` per peer address of a negotiating rule that has a preshared key (its
//!   first one), the peer being the rule's tunnel endpoint or the literal address on the far
//!   side of each filter, and in transport mode `local` (needed by ikd to initiate): the
//!   source of the outbound kernel policy compiled from the filter, i.e. "my address"
//!   expanded (checked with `ikd --check-config` and used by `tests/demo`);
//! - one `[[connections]]` per such filter, with the filter's reqid (the agent compiles one
//!   per filter of a negotiating rule, `ipsec_agent::ReqidKey`, so each connection has its
//!   own and ikd's SAs meet the templates policyd installed for that filter), protocol,
//!   ports, mode, quick-mode PFS and methods, and `offload = true` when the rule's filter
//!   action asks for offload.
//!
//! Kerberos and certificate rules are left out (ikd has no such authentication yet) and so
//! are filters whose far side is not one address (subnets, any, keywords): ikd answers them
//! through the default response rule.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipsec_agent::{DesiredState, ReqidKey};
use ipsec_policy::{
    Action, AuthMethod, DhGroup, Encryption, Endpoint, Integrity, Policy, PolicySet, PresharedKey,
    QuickModeMethod,
};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    daemon: Daemon,
    main_mode: MainMode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<Peer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    connections: Vec<Connection>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Daemon {
    kernel: &'static str,
    policies: &'static str,
    policy_lookup: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct MainMode {
    lifetime_minutes: u32,
    quick_modes_per_main_mode: u32,
    methods: Vec<MmMethod>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct MmMethod {
    encryption: Encryption,
    integrity: Integrity,
    dh_group: DhGroup,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Peer {
    name: String,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<String>,
    preshared_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Connection {
    name: String,
    peer: String,
    mode: &'static str,
    start: &'static str,
    #[serde(skip_serializing_if = "is_zero_u8")]
    protocol: u8,
    #[serde(skip_serializing_if = "is_zero_u16")]
    local_port: u16,
    #[serde(skip_serializing_if = "is_zero_u16")]
    remote_port: u16,
    reqid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pfs: Option<DhGroup>,
    #[serde(skip_serializing_if = "is_false")]
    offload: bool,
    methods: Vec<QmMethod>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct QmMethod {
    #[serde(skip_serializing_if = "Option::is_none")]
    esp: Option<Esp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ah: Option<Integrity>,
    lifetime_seconds: u32,
    lifetime_kb: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Esp {
    encryption: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrity: Option<Integrity>,
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn encryption_name(e: Encryption) -> String {
    toml::Value::try_from(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "null".to_owned())
}

fn qm_method(m: &QuickModeMethod) -> QmMethod {
    QmMethod {
        esp: m.esp.map(|e| Esp {
            encryption: e
                .encryption
                .map_or_else(|| "null".to_owned(), encryption_name),
            integrity: e.integrity,
        }),
        ah: m.ah,
        lifetime_seconds: m.lifetime_seconds,
        lifetime_kb: m.lifetime_kb,
    }
}

fn literal(e: &Endpoint) -> Option<IpAddr> {
    match e {
        Endpoint::Address(a) => Some(*a),
        _ => None,
    }
}

/// This host's address towards `peer` for one filter of a rule: the source of the outbound
/// kernel policy compiled from it ("my address" expanded to the interface addresses). ikd
/// needs it to initiate (`peers[].local`). With several (h1's eth0 and dummy0 addresses in
/// the lab) the one sharing the longest prefix with the peer wins: the on-link one, without
/// depending on the order of the interface snapshot.
fn local_address(
    outbound: &HashMap<(uuid::Uuid, uuid::Uuid), Vec<&pfkey::PolicyId>>,
    rule: uuid::Uuid,
    filter: uuid::Uuid,
    peer: IpAddr,
) -> Option<IpAddr> {
    outbound
        .get(&(rule, filter))
        .into_iter()
        .flatten()
        .filter(|id| {
            id.direction == pfkey::Direction::Out
                && id.selector.destination.addr == peer
                && id.selector.source.addr.is_ipv4() == peer.is_ipv4()
                && id.selector.source.len == if peer.is_ipv4() { 32 } else { 128 }
        })
        .map(|id| id.selector.source.addr)
        .max_by_key(|a| (common_prefix(*a, peer), std::cmp::Reverse(*a)))
}

fn common_prefix(a: IpAddr, b: IpAddr) -> u32 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
        _ => 0,
    }
}

/// One policy with the set it lives in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied<'a> {
    /// The set holding the policy's filter lists and actions.
    pub(crate) set: &'a PolicySet,
    /// The policy.
    pub(crate) policy: &'a Policy,
}

/// The name of the ikd connection generated for filter `filter_index` of rule
/// `rule_index` of `policy` (the one naming function: ikd.conf and the answers to
/// `match-negotiation` use it).
pub(crate) fn connection_name(policy: &Policy, rule_index: usize, filter_index: usize) -> String {
    format!("{}-r{rule_index}-f{filter_index}", short(&policy.id))
}

/// What policyd needs to answer ikd's `match-negotiation` in the terms of the ikd.conf it
/// generated: the connection of each (rule, filter), the rules' names, and whether the
/// default response rule's catch-all connection exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NegotiationIndex {
    /// (rule, filter) → connection name, for the filters that got a connection.
    pub(crate) connections: HashMap<(uuid::Uuid, uuid::Uuid), String>,
    /// Rule GUID → name, for every rule of the applied policies.
    pub(crate) rule_names: HashMap<uuid::Uuid, String>,
    /// The default response rule's connection ([`ipsec_control::DEFAULT_RESPONSE`]) was
    /// generated.
    pub(crate) default_response: bool,
}

/// The ikd configuration for the applied policies (persistent first) and the reqids their
/// compilation gave each rule. With no policy applied ikd starts with the default main
/// mode (Windows' four methods) and no peers. (The agent uses [`generate_indexed`].)
#[cfg(test)]
pub(crate) fn generate(applied: &[Applied<'_>], desired: &DesiredState) -> String {
    generate_indexed(applied, desired).0
}

/// [`generate`], and the index of what it generated.
pub(crate) fn generate_indexed(
    applied: &[Applied<'_>],
    desired: &DesiredState,
) -> (String, NegotiationIndex) {
    let mut index = NegotiationIndex::default();
    let main_mode = match applied.first() {
        Some(a) => MainMode {
            lifetime_minutes: a.policy.isakmp.master_key_lifetime_minutes,
            quick_modes_per_main_mode: a.policy.isakmp.quick_modes_per_main_mode,
            methods: a
                .policy
                .isakmp
                .methods
                .iter()
                .map(|m| MmMethod {
                    encryption: m.encryption,
                    integrity: m.integrity,
                    dh_group: m.dh_group,
                })
                .collect(),
        },
        None => MainMode {
            lifetime_minutes: ipsec_policy::DEFAULT_MM_LIFETIME_MINUTES,
            quick_modes_per_main_mode: 0,
            methods: vec![
                MmMethod {
                    encryption: Encryption::TripleDes,
                    integrity: Integrity::Sha1,
                    dh_group: DhGroup::Group2,
                },
                MmMethod {
                    encryption: Encryption::TripleDes,
                    integrity: Integrity::Md5,
                    dh_group: DhGroup::Group2,
                },
            ],
        },
    };
    // The outbound kernel policies of each (rule, filter), in desired order: looked up per
    // filter below instead of scanning every desired entry per filter.
    let mut outbound: HashMap<(uuid::Uuid, uuid::Uuid), Vec<&pfkey::PolicyId>> = HashMap::new();
    for e in &desired.entries {
        if e.policy.id.direction == pfkey::Direction::Out {
            outbound
                .entry((e.rule, e.filter))
                .or_default()
                .push(&e.policy.id);
        }
    }
    let mut peers: BTreeMap<IpAddr, Peer> = BTreeMap::new();
    let mut connections = Vec::new();
    for a in applied {
        for (ri, rule) in a.policy.rules.iter().enumerate() {
            index.rule_names.insert(rule.id, rule.name.clone());
            if !rule.active {
                continue;
            }
            let Some(Action::Negotiate(n)) =
                a.set.filter_action(rule.filter_action).map(|f| &f.action)
            else {
                continue;
            };
            let Some(psk) = rule.auth_methods.iter().find_map(|m| match m {
                AuthMethod::PresharedKey {
                    key: PresharedKey::Secret(s),
                } => Some(s),
                _ => None,
            }) else {
                continue;
            };
            let Some(list) = a.set.filter_list(rule.filter_list) else {
                continue;
            };
            let tunnel = rule.tunnel_endpoint.as_ref().and_then(literal);
            for (fi, f) in list.filters.iter().enumerate() {
                let (peer_addr, local_port, remote_port) = match tunnel {
                    Some(t) => (Some(t), f.source_port, f.destination_port),
                    None => match (literal(&f.source), literal(&f.destination)) {
                        (_, Some(d)) if !matches!(f.source, Endpoint::Address(_)) => {
                            (Some(d), f.source_port, f.destination_port)
                        }
                        (Some(s), _) => (Some(s), f.destination_port, f.source_port),
                        _ => (None, 0, 0),
                    },
                };
                let Some(peer_addr) = peer_addr else {
                    continue;
                };
                // The reqid of this filter's templates; none when it compiled to nothing.
                let Some(&reqid) = desired.reqids.get(&ReqidKey {
                    rule: rule.id,
                    filter: f.id,
                }) else {
                    continue;
                };
                let count = peers.len();
                let peer = peers.entry(peer_addr).or_insert_with(|| Peer {
                    name: format!("peer{count}"),
                    address: peer_addr.to_string(),
                    local: None,
                    preshared_key: psk.expose().to_owned(),
                });
                if peer.local.is_none() && tunnel.is_none() {
                    peer.local =
                        local_address(&outbound, rule.id, f.id, peer_addr).map(|a| a.to_string());
                }
                let protocol = match f.protocol {
                    ipsec_policy::Protocol::Any => 0,
                    ipsec_policy::Protocol::Number(n) => n,
                };
                let name = connection_name(a.policy, ri, fi);
                index.connections.insert((rule.id, f.id), name.clone());
                connections.push(Connection {
                    name,
                    peer: peer.name.clone(),
                    mode: if tunnel.is_some() {
                        "tunnel"
                    } else {
                        "transport"
                    },
                    start: "acquire",
                    protocol,
                    local_port,
                    remote_port,
                    reqid,
                    pfs: n.qm_pfs.then(|| {
                        a.policy
                            .isakmp
                            .methods
                            .first()
                            .map_or(DhGroup::Group2, |m| m.dh_group)
                    }),
                    offload: n.offload,
                    methods: n.methods.iter().map(qm_method).collect(),
                });
            }
        }
    }
    let mut peers: Vec<Peer> = peers.into_values().collect();
    if let Some((peer, connection)) = default_response(applied, desired) {
        peers.push(peer);
        connections.push(connection);
        index.default_response = true;
    }
    let file = File {
        daemon: Daemon {
            kernel: "xfrm",
            policies: "external",
            // ikd asks policyd which connection answers a peer's quick mode.
            policy_lookup: true,
        },
        main_mode,
        peers,
        connections,
    };
    let body = toml::to_string(&file).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode the ikd configuration");
        String::new()
    });
    let text = format!(
        "# ikd.conf generated by policyd from the applied IPsec policy; do not edit.\n\
         # It holds preshared keys: mode 0600.\n{body}"
    );
    (text, index)
}

/// The default response rule (seed, steps 1-3) of the last applied policy (the assigned
/// one) when it is active and has a preshared key: a catch-all responder peer
/// (`address = "any"`) and a respond-only transport connection with the rule's security
/// methods and a reqid of its own (the highest the rules leave free). ikd answers a peer no
/// other peer entry covers with it and tells policyd, which installs the dynamic filter.
fn default_response(applied: &[Applied<'_>], desired: &DesiredState) -> Option<(Peer, Connection)> {
    let a = applied.last()?;
    let d = &a.policy.default_response;
    if !d.active || d.methods.is_empty() {
        return None;
    }
    let psk = d.auth_methods.iter().find_map(|m| match m {
        AuthMethod::PresharedKey {
            key: PresharedKey::Secret(s),
        } => Some(s),
        _ => None,
    })?;
    let taken: std::collections::BTreeSet<u32> = desired.reqids.values().copied().collect();
    let reqid = pfkey::Ownership::default()
        .reqids
        .rev()
        .find(|r| !taken.contains(r))?;
    let name = ipsec_control::DEFAULT_RESPONSE.to_owned();
    Some((
        Peer {
            name: name.clone(),
            address: "any".into(),
            local: None,
            preshared_key: psk.expose().to_owned(),
        },
        Connection {
            name: name.clone(),
            peer: name,
            mode: "transport",
            start: "respond",
            protocol: 0,
            local_port: 0,
            remote_port: 0,
            reqid,
            pfs: d.qm_pfs.then(|| {
                a.policy
                    .isakmp
                    .methods
                    .first()
                    .map_or(DhGroup::Group2, |m| m.dh_group)
            }),
            // The default response rule has no offload setting (its filter action is implicit).
            offload: false,
            // ikd wants one protocol per connection: the methods of the first one's kind
            // (Windows' default list starts with ESP and ends with AH).
            methods: d
                .methods
                .iter()
                .filter(|m| {
                    d.methods.first().is_some_and(|f| {
                        (m.esp.is_some(), m.ah.is_some()) == (f.esp.is_some(), f.ah.is_some())
                    })
                })
                .map(qm_method)
                .collect(),
        },
    ))
}

fn short(id: &uuid::Uuid) -> String {
    id.simple().to_string().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_agent::{compile, CompileOptions};
    use ipsec_policy::defaults::{
        default_store, LAB_ANDY, LAB_ANDY_ADDR, LAB_BETTY_ADDR, LAB_PRESHARED_KEY,
    };
    use ipsec_policy::InterfaceSnapshot;

    /// The negotiation settings of the filter action of `policy`'s negotiating rule (Andy's
    /// lab policy), to change in `set`.
    fn andys_negotiation<'a>(
        set: &'a mut PolicySet,
        policy: &Policy,
    ) -> &'a mut ipsec_policy::Negotiation {
        let rule = policy
            .rules
            .iter()
            .find(|r| r.name.starts_with("Negotiate"))
            .expect("negotiating rule");
        let action = set
            .filter_actions
            .iter_mut()
            .find(|a| a.id == rule.filter_action)
            .expect("action");
        match &mut action.action {
            Action::Negotiate(n) => n,
            other => panic!("not a negotiating action: {other:?}"),
        }
    }

    /// Compiles `policy` for Andy with only his lab address on eth0, and generates ikd.conf:
    /// the compiled state, the text and the text parsed.
    fn generate_on_andys_eth0(
        set: &PolicySet,
        policy: &Policy,
    ) -> (DesiredState, String, toml::Table) {
        let desired = compile(
            set,
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
        let text = generate(&[Applied { set, policy }], &desired);
        let parsed: toml::Table = toml::from_str(&text).expect("toml");
        (desired, text, parsed)
    }

    #[test]
    fn no_policy_gives_a_default_main_mode_only() {
        let text = generate(&[], &DesiredState::default());
        let v: toml::Table = toml::from_str(&text).expect("toml");
        assert_eq!(v["daemon"]["policies"].as_str(), Some("external"));
        assert_eq!(v["main-mode"]["methods"].as_array().map(Vec::len), Some(2));
        assert!(!v.contains_key("peers"));
    }

    #[test]
    fn the_lab_policy_gives_betty_as_a_peer_with_the_rule_reqid() {
        let set = default_store();
        let policy = set.policy_by_name(LAB_ANDY).expect("lab policy");
        let desired = compile(
            &set,
            policy,
            &InterfaceSnapshot {
                // As in the lab: the inner address on dummy0 comes first.
                addresses: vec![
                    ipsec_policy::InterfaceAddress {
                        interface: "dummy0".into(),
                        address: std::net::Ipv4Addr::new(198, 51, 100, 1).into(),
                        kind: ipsec_policy::InterfaceKind::Lan,
                    },
                    ipsec_policy::InterfaceAddress {
                        interface: "eth0".into(),
                        address: LAB_ANDY_ADDR.into(),
                        kind: ipsec_policy::InterfaceKind::Lan,
                    },
                ],
                ..InterfaceSnapshot::default()
            },
            &CompileOptions::default(),
        )
        .expect("compile");
        let text = generate(&[Applied { set: &set, policy }], &desired);
        let v: toml::Table = toml::from_str(&text).expect("toml");
        let peers = v["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 1);
        assert_eq!(
            peers[0]["address"].as_str(),
            Some(LAB_BETTY_ADDR.to_string().as_str())
        );
        assert_eq!(peers[0]["preshared-key"].as_str(), Some(LAB_PRESHARED_KEY));
        // ikd needs our address towards the peer to initiate.
        assert_eq!(
            peers[0]["local"].as_str(),
            Some(LAB_ANDY_ADDR.to_string().as_str())
        );
        let conns = v["connections"].as_array().expect("connections");
        assert!(!conns.is_empty());
        let reqids: Vec<i64> = desired.reqids.values().map(|r| i64::from(*r)).collect();
        for c in conns {
            assert!(
                reqids.contains(&c["reqid"].as_integer().unwrap_or(-1)),
                "{c:?}"
            );
            assert_eq!(c["mode"].as_str(), Some("transport"));
            assert!(c["methods"].as_array().is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(
            v["main-mode"]["methods"][0]["encryption"].as_str(),
            Some("3des")
        );
    }

    /// A rule with two single-address filters (telnet and ICMP with Betty) gives two
    /// connections: each with a reqid of its own (ikd refuses a reqid used twice), the one
    /// in the templates of the kernel policies compiled from its filter.
    #[test]
    fn two_single_address_filters_of_one_rule_get_distinct_reqids_matching_their_templates() {
        let mut set = default_store();
        let policy = set.policy_by_name(LAB_ANDY).expect("lab policy").clone();
        let rule = policy
            .rules
            .iter()
            .find(|r| r.name.starts_with("Negotiate"))
            .expect("negotiating rule")
            .clone();
        let list = set
            .filter_lists
            .iter_mut()
            .find(|l| l.id == rule.filter_list)
            .expect("filter list");
        assert_eq!(list.filters.len(), 1);
        let mut icmp = list.filters[0].clone();
        icmp.id = uuid::Uuid::from_u128(0x1c4d_0000_0000_0000_0000_0000_0000_0002);
        icmp.protocol = ipsec_policy::Protocol::ICMP;
        icmp.source_port = 0;
        icmp.destination_port = 0;
        list.filters.push(icmp);
        ipsec_policy::validate(&set).expect("valid");
        let policy = set.policy(policy.id).expect("policy");
        let (desired, text, v) = generate_on_andys_eth0(&set, policy);
        let conns = v["connections"].as_array().expect("connections");
        assert_eq!(conns.len(), 2, "{text}");
        let reqids: Vec<i64> = conns
            .iter()
            .map(|c| c["reqid"].as_integer().expect("reqid"))
            .collect();
        assert_ne!(reqids[0], reqids[1], "{text}");
        // Each connection's reqid is the one of its filter's kernel templates (both
        // directions), and no other filter's.
        let list = set.filter_list(rule.filter_list).expect("filter list");
        for (c, f) in conns.iter().zip(&list.filters) {
            let templates: Vec<u32> = desired
                .entries
                .iter()
                .filter(|e| e.rule == rule.id && e.filter == f.id)
                .flat_map(|e| match &e.policy.action {
                    pfkey::PolicyAction::Protect(t) => t.iter().map(|t| t.reqid).collect(),
                    _ => Vec::new(),
                })
                .collect();
            assert_eq!(templates.len(), 2, "in and out: {templates:?}");
            let reqid = c["reqid"].as_integer().expect("reqid");
            assert!(
                templates.iter().all(|&t| i64::from(t) == reqid),
                "{c:?} vs {templates:?}"
            );
            assert_eq!(
                c["protocol"].as_integer(),
                Some(i64::from(match f.protocol {
                    ipsec_policy::Protocol::Any => 0,
                    ipsec_policy::Protocol::Number(n) => n,
                }))
            );
        }
    }

    #[test]
    fn offload_of_the_filter_action_reaches_each_connection_and_only_then() {
        let mut set = default_store();
        let policy = set.policy_by_name(LAB_ANDY).expect("lab policy").clone();
        let (_, text, v) = generate_on_andys_eth0(&set, &policy);
        assert!(!text.contains("offload"), "{text}");
        assert!(!v["connections"].as_array().expect("connections").is_empty());
        andys_negotiation(&mut set, &policy).offload = true;
        let (_, text, v) = generate_on_andys_eth0(&set, &policy);
        let conns = v["connections"].as_array().expect("connections");
        assert!(
            conns.iter().all(|c| c["offload"].as_bool() == Some(true)),
            "{text}"
        );
    }

    /// AES-GCM methods become ikd's `aes128gcm16` / `aes256gcm16` ESP ciphers with no
    /// integrity key (ikd refuses one with an AEAD), in the policy's order.
    #[test]
    fn aes_gcm_methods_give_ikds_gcm_ciphers_without_integrity() {
        use ipsec_policy::{Encryption, QuickModeMethod};
        let mut set = default_store();
        let policy = set.policy_by_name(LAB_ANDY).expect("lab policy").clone();
        let n = andys_negotiation(&mut set, &policy);
        n.methods = vec![
            QuickModeMethod::esp_aead(Encryption::Aes128Gcm16),
            QuickModeMethod::esp_aead(Encryption::Aes256Gcm16),
            QuickModeMethod::esp(Encryption::Aes128, Integrity::Sha1),
        ];
        n.offload = true;
        ipsec_policy::validate(&set).expect("valid");
        let (_, text, v) = generate_on_andys_eth0(&set, &policy);
        let conns = v["connections"].as_array().expect("connections");
        assert!(!conns.is_empty(), "{text}");
        for c in conns {
            assert_eq!(c["offload"].as_bool(), Some(true), "{text}");
            let esp: Vec<(Option<&str>, Option<&str>)> = c["methods"]
                .as_array()
                .expect("methods")
                .iter()
                .map(|m| {
                    (
                        m["esp"].get("encryption").and_then(|e| e.as_str()),
                        m["esp"].get("integrity").and_then(|e| e.as_str()),
                    )
                })
                .collect();
            assert_eq!(
                esp,
                vec![
                    (Some("aes128gcm16"), None),
                    (Some("aes256gcm16"), None),
                    (Some("aes128"), Some("sha1")),
                ],
                "{text}"
            );
        }
    }

    #[test]
    fn an_active_default_response_rule_gives_a_catch_all_responder() {
        let mut set = default_store();
        let id = set.policy_by_name(LAB_ANDY).expect("lab policy").id;
        if let Some(p) = set.policies.iter_mut().find(|p| p.id == id) {
            p.default_response.active = true;
        }
        let policy = set.policy(id).expect("policy");
        let (desired, _, v) = generate_on_andys_eth0(&set, policy);
        let peers = v["peers"].as_array().expect("peers");
        let drr = peers
            .iter()
            .find(|p| p["name"].as_str() == Some(ipsec_control::DEFAULT_RESPONSE))
            .expect("default-response peer");
        assert_eq!(drr["address"].as_str(), Some("any"));
        assert_eq!(drr["preshared-key"].as_str(), Some(LAB_PRESHARED_KEY));
        let conns = v["connections"].as_array().expect("connections");
        let c = conns
            .iter()
            .find(|c| c["name"].as_str() == Some(ipsec_control::DEFAULT_RESPONSE))
            .expect("default-response connection");
        assert_eq!(c["start"].as_str(), Some("respond"));
        let reqid = c["reqid"].as_integer().expect("reqid");
        assert!(!desired.reqids.values().any(|r| i64::from(*r) == reqid));
        let methods = c["methods"].as_array().expect("methods");
        assert!(!methods.is_empty());
        // One protocol per connection (ikd's rule): Windows' list mixes ESP and AH.
        assert!(methods
            .iter()
            .all(|m| m.get("esp").is_some() && m.get("ah").is_none()));
        // Deactivated (the shipped lab policy): no catch-all.
        let plain = default_store();
        let p = plain.policy_by_name(LAB_ANDY).expect("lab policy");
        let text = generate(
            &[Applied {
                set: &plain,
                policy: p,
            }],
            &desired,
        );
        assert!(!text.contains("\"any\""), "{text}");
    }
}
