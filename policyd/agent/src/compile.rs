//! From a validated policy to the kernel policies (SPD entries) it needs.
//!
//! [`compile`] expands the policy against an [`InterfaceSnapshot`] with
//! [`ipsec_policy::expand`] (mirrored filters, "my address", keywords, weights and
//! priorities from [`ipsec_policy::order`]) and turns each one-direction filter into one
//! [`pfkey::Policy`]. The result, a [`DesiredState`], is what [`crate::apply()`] installs.
//!
//! # Mapping
//!
//! | policy (seed) | kernel SPD entries |
//! |---|---|
//! | filter, outbound half | `dir out`, selector = the filter (source, destination, protocol, ports), priority = [`ipsec_policy::order::priority`] |
//! | filter, inbound half (mirrored filters give both halves) | `dir in`, same priority, selector with addresses and ports swapped |
//! | filter neither from nor to this computer (e.g. any ↔ any) | both `dir out` and `dir in` |
//! | **permit** | `action allow` |
//! | **block** | `action block` |
//! | **negotiate** (transport) | `action allow` + templates from the *first* security method: ESP and/or AH (ESP innermost, AH outermost), mode transport, reqid of the filter (below), level `required`, both directions |
//! | **negotiate**, tunnel endpoint *E* not one of this computer's addresses | `dir out` only, templates mode tunnel from the unspecified address (the kernel takes the routed source) to *E*, level `required` |
//! | **negotiate**, tunnel endpoint *E* one of this computer's addresses | `dir in` (and `dir fwd` when [`CompileOptions::gateway`] and the destination is not this computer), tunnel from any peer gateway (unspecified source) to *E*, level `required` |
//! | **accept unsecured communication but always respond using IPsec** (inbound pass-through) | outbound as negotiate (level `required`); inbound templates level `use` (XFRM `optional`, PF_KEY `use`): clear packets are accepted, SAs are used when present |
//! | **allow unsecured communication with non-IPsec-aware computers** (fall back to clear) | as negotiate, level `required` in both directions: the first packet raises an ACQUIRE to ikd. When the peer does not answer IKE, ikd asks policyd for the "soft SA" of the seed, which on this kernel is a pair of narrow `allow` policies for that peer, from [`DesiredState::fall_back_to_clear`]: one priority step ahead of the negotiate filter (so more specific filters still win), with an idle lifetime of [`SOFT_CLEAR_IDLE_SECONDS`]. [`crate::apply()`] leaves them in place. |
//! | **default response rule** | nothing: ikd answers unknown peers and creates dynamic filters |
//! | boot exemptions, boot modes | nothing here (`kmod` and the boot code) |
//!
//! Security methods after the first whose protocol set (AH, ESP or both) differs from the
//! first's cannot be satisfied by the same kernel templates; they are listed in
//! [`DesiredState::notes`] and ikd must not offer them for this rule.
//!
//! # Reqids
//!
//! Every filter of a negotiating rule ([`ReqidKey`]: rule and filter GUIDs) gets one reqid
//! from the owned range (`0x3000..=0x3fff`), shared by all the kernel policies compiled from
//! it (both halves of a mirrored filter, every "my address" expansion) and the SAs ikd
//! negotiates for it. One per filter, not per rule: ikd negotiates one connection per filter
//! and needs a distinct reqid for each (two connections of one reqid would let the kernel
//! use either's SAs for the other's traffic). The reqid is the one recorded for the filter
//! in [`CompileOptions::previous_reqids`] (the previous [`DesiredState::reqids`]) when it is
//! still free; otherwise it is derived from the two GUIDs (a fold of their bits modulo the
//! range size), probing upwards on collision. Keys are allocated in GUID order after the
//! kept ones, so the result does not depend on rule or filter order, and a filter keeps its
//! reqid across re-applies and across edits of other rules and filters.
//!
//! This module performs no I/O and does not validate the policy set: call
//! [`ipsec_policy::validate()`] first. It refuses (with [`Error`]) what it cannot map.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipsec_policy::{
    expand, mask_addr, Action, Direction as FilterDirection, ExpandedFilter, InterfaceSnapshot,
    Negotiation, PolicySet, Protocol, Subnet,
};
use pfkey::{
    Direction, Family, Lifetime, Mode, Ownership, Policy, PolicyAction, PolicyId, Prefix,
    SecurityProtocol, Selector, Template, TemplateLevel, UpperLayer,
};
use uuid::Uuid;

use crate::Error;

/// Idle lifetime of a fall-back-to-clear policy: removed by the kernel after five minutes
/// without traffic, as Windows ages soft SAs.
pub const SOFT_CLEAR_IDLE_SECONDS: u64 = 300;

/// Inputs of [`compile`] besides the policy.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// This computer forwards traffic for tunnelled subnets (a tunnel gateway): inbound
    /// tunnel rules also get `dir fwd` policies.
    pub gateway: bool,
    /// Reqids of the previous compilation ([`DesiredState::reqids`]), kept where possible.
    pub previous_reqids: BTreeMap<ReqidKey, u32>,
    /// The owned reqid and priority ranges.
    pub ownership: Ownership,
}

/// What a reqid belongs to: one filter of one negotiating rule (module docs: reqids). A
/// filter list shared by two rules gives each rule's filters reqids of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqidKey {
    /// The rule.
    pub rule: Uuid,
    /// The filter of the rule's filter list.
    pub filter: Uuid,
}

/// One kernel policy of the desired state and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEntry {
    /// The kernel policy (index `None`: the kernel chooses).
    pub policy: Policy,
    /// The rule.
    pub rule: Uuid,
    /// The filter.
    pub filter: Uuid,
    /// The rule's action allows falling back to clear (see [`DesiredState::fall_back_to_clear`]).
    pub fall_back_to_clear: bool,
}

/// Something [`compile`] wants the administrator (or ikd) to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileNote {
    /// Security methods of a rule that the kernel templates (built from the first method)
    /// cannot carry; ikd must not offer them.
    UnusableMethods {
        /// The rule.
        rule: Uuid,
        /// Positions of the methods in the filter action's list.
        positions: Vec<usize>,
    },
}

/// The kernel state a policy needs: what [`crate::apply()`] installs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// The policies, highest precedence first; one per [`PolicyId`].
    pub entries: Vec<DesiredEntry>,
    /// The reqid of each filter of each negotiating rule, as in the templates of its kernel
    /// policies (pass back as [`CompileOptions::previous_reqids`]).
    pub reqids: BTreeMap<ReqidKey, u32>,
    /// Warnings.
    pub notes: Vec<CompileNote>,
}

impl DesiredState {
    /// A desired state of plain kernel policies (no rules behind them), for callers that
    /// build kernel state by hand (boot modes, tests).
    pub fn from_policies(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self {
            entries: policies
                .into_iter()
                .map(|policy| DesiredEntry {
                    policy,
                    rule: Uuid::nil(),
                    filter: Uuid::nil(),
                    fall_back_to_clear: false,
                })
                .collect(),
            ..Self::default()
        }
    }

    /// The kernel policies.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.entries.iter().map(|e| &e.policy)
    }

    /// The fall-back-to-clear hook (the seed's "soft SA"). When ikd gets no IKE answer from
    /// `peer` for an ACQUIRE raised by the outbound policy `acquired` (the ACQUIRE's
    /// selector identifies it), these are the policies to install with
    /// `KernelInterface::update_policy` so that traffic with that peer passes in clear:
    ///
    /// - `dir out`: the acquiring policy's selector narrowed to destination `peer`;
    /// - `dir in`: for each inbound fall-back policy of the same rule that covers the reverse
    ///   traffic, its selector narrowed to source `peer`;
    ///
    /// all `allow`, each at its negotiate policy's priority minus one (so it wins over that
    /// policy only, not over filters that already won over it), with an idle lifetime of
    /// [`SOFT_CLEAR_IDLE_SECONDS`]. [`crate::apply()`] keeps such policies while the
    /// desired state still allows them ([`DesiredState::is_soft_clear`]).
    pub fn fall_back_to_clear(
        &self,
        acquired: &PolicyId,
        peer: IpAddr,
    ) -> Result<Vec<Policy>, Error> {
        let no = || Error::NoFallback(Box::new(*acquired));
        let out = self
            .entries
            .iter()
            .find(|e| e.policy.id == *acquired && e.policy.id.direction == Direction::Out)
            .filter(|e| e.fall_back_to_clear)
            .ok_or_else(no)?;
        let sel = out.policy.id.selector;
        if !prefix_contains(&sel.destination, &Prefix::host(peer)) {
            return Err(no());
        }
        let narrowed = Selector {
            destination: Prefix::host(peer),
            ..sel
        };
        let soft = |selector: Selector, direction: Direction, priority: u32| Policy {
            id: PolicyId {
                selector,
                direction,
                mark: None,
            },
            action: PolicyAction::Allow,
            priority: priority.saturating_sub(1),
            index: None,
            lifetime: Lifetime {
                hard_use_seconds: Some(SOFT_CLEAR_IDLE_SECONDS),
                ..Lifetime::default()
            },
        };
        let mut policies = vec![soft(narrowed, Direction::Out, out.policy.priority)];
        let reverse = reverse_selector(&narrowed);
        for e in self.entries.iter().filter(|e| {
            e.rule == out.rule
                && e.fall_back_to_clear
                && e.policy.id.direction == Direction::In
                && selector_contains(&e.policy.id.selector, &reverse)
        }) {
            let sel = e.policy.id.selector;
            let narrowed_in = Selector {
                source: Prefix::host(peer),
                ..sel
            };
            policies.push(soft(narrowed_in, Direction::In, e.policy.priority));
        }
        Ok(policies)
    }

    /// Whether `policy` is a fall-back-to-clear policy this desired state still allows: an
    /// `allow` one priority ahead of a fall-back entry of the same direction whose selector
    /// contains it.
    pub fn is_soft_clear(&self, policy: &Policy) -> bool {
        policy.action == PolicyAction::Allow
            && self.entries.iter().any(|e| {
                e.fall_back_to_clear
                    && e.policy.id.direction == policy.id.direction
                    && e.policy.id.mark == policy.id.mark
                    && e.policy.priority.saturating_sub(1) == policy.priority
                    && selector_contains(&e.policy.id.selector, &policy.id.selector)
            })
    }
}

fn prefix_contains(outer: &Prefix, inner: &Prefix) -> bool {
    outer.family() == inner.family()
        && outer.len <= inner.len
        && mask_addr(outer.addr, outer.len) == mask_addr(inner.addr, outer.len)
}

fn port_contains(outer: Option<u16>, inner: Option<u16>) -> bool {
    outer.is_none() || outer == inner
}

/// Whether every packet `inner` matches is matched by `outer`.
pub(crate) fn selector_contains(outer: &Selector, inner: &Selector) -> bool {
    let upper = match (outer.upper, inner.upper) {
        (UpperLayer::Any, _) => true,
        (UpperLayer::Proto { .. }, UpperLayer::Any) => false,
        (
            UpperLayer::Proto {
                proto: a,
                source_port: sa,
                destination_port: da,
            },
            UpperLayer::Proto {
                proto: b,
                source_port: sb,
                destination_port: db,
            },
        ) => a == b && port_contains(sa, sb) && port_contains(da, db),
    };
    upper
        && prefix_contains(&outer.source, &inner.source)
        && prefix_contains(&outer.destination, &inner.destination)
}

fn reverse_selector(s: &Selector) -> Selector {
    Selector {
        source: s.destination,
        destination: s.source,
        upper: match s.upper {
            UpperLayer::Any => UpperLayer::Any,
            UpperLayer::Proto {
                proto,
                source_port,
                destination_port,
            } => UpperLayer::Proto {
                proto,
                source_port: destination_port,
                destination_port: source_port,
            },
        },
    }
}

fn prefix(s: Subnet) -> Prefix {
    Prefix {
        addr: s.addr(),
        len: s.prefix_len(),
    }
}

fn selector(f: &ExpandedFilter) -> Result<Selector, Error> {
    let source = prefix(f.source);
    let destination = prefix(f.destination);
    if source.family() != destination.family() {
        return Err(Error::MixedFamilies { rule: f.rule });
    }
    let port = |p: u16| (p != 0).then_some(p);
    let upper = match f.protocol {
        Protocol::Any => UpperLayer::Any,
        Protocol::Number(proto) => UpperLayer::Proto {
            proto,
            source_port: port(f.source_port),
            destination_port: port(f.destination_port),
        },
    };
    Ok(Selector {
        source,
        destination,
        upper,
    })
}

/// The protocols of a security method, innermost first.
fn method_protocols(m: &ipsec_policy::QuickModeMethod) -> Vec<SecurityProtocol> {
    let mut v = Vec::new();
    if m.esp.is_some() {
        v.push(SecurityProtocol::Esp);
    }
    if m.ah.is_some() {
        v.push(SecurityProtocol::Ah);
    }
    v
}

fn fold(id: Uuid) -> u64 {
    let x = id.as_u128();
    // Truncation is the point: fold the high half onto the low half.
    let h = (x as u64) ^ ((x >> 64) as u64);
    h ^ (h >> 32)
}

/// The starting point of a key's probe: the rule's fold, mixed with the filter's (rotated,
/// so that equal GUIDs do not cancel out).
fn fold_key(k: &ReqidKey) -> u64 {
    fold(k.rule) ^ fold(k.filter).rotate_left(17)
}

/// Allocates reqids for `keys` (filters of negotiating rules), keeping previous ones.
fn allocate_reqids(
    keys: &BTreeSet<ReqidKey>,
    previous: &BTreeMap<ReqidKey, u32>,
    ownership: &Ownership,
) -> Result<BTreeMap<ReqidKey, u32>, Error> {
    let range = ownership.reqids.clone();
    let mut taken = BTreeSet::new();
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(&r) = previous.get(key) {
            if range.contains(&r) && taken.insert(r) {
                out.insert(*key, r);
            }
        }
    }
    let start = *range.start();
    let size = u64::from(range.end().saturating_sub(start)) + 1;
    let fresh: Vec<ReqidKey> = keys
        .iter()
        .filter(|k| !out.contains_key(*k))
        .copied()
        .collect();
    for key in &fresh {
        let first = fold_key(key) % size;
        let reqid = (0..size)
            .map(|i| (first + i) % size)
            .filter_map(|off| u32::try_from(off).ok())
            .map(|off| start + off)
            .find(|r| !taken.contains(r))
            .ok_or(Error::ReqidsExhausted { rule: key.rule })?;
        taken.insert(reqid);
        out.insert(*key, reqid);
    }
    Ok(out)
}

fn templates(
    n: &Negotiation,
    reqid: u32,
    tunnel: Option<(IpAddr, IpAddr)>,
    level: TemplateLevel,
    protocols: &[SecurityProtocol],
) -> Vec<Template> {
    protocols
        .iter()
        .map(|&protocol| Template {
            protocol,
            mode: if tunnel.is_some() {
                Mode::Tunnel
            } else {
                Mode::Transport
            },
            reqid,
            tunnel,
            level: if n.inbound_pass_through {
                level
            } else {
                TemplateLevel::Require
            },
        })
        .collect()
}

/// Compiles `policy` of `set` against `snapshot` into the kernel policies it needs (module
/// docs: the mapping). The policy set should be validated first.
pub fn compile(
    set: &PolicySet,
    policy: &ipsec_policy::Policy,
    snapshot: &InterfaceSnapshot,
    options: &CompileOptions,
) -> Result<DesiredState, Error> {
    let filters = expand(set, policy, snapshot);
    let local: BTreeSet<IpAddr> = snapshot.addresses.iter().map(|a| a.address).collect();

    // Reqids for every filter of a negotiating rule, template protocols for every such rule.
    let mut negotiating = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut notes = Vec::new();
    let mut protocols: BTreeMap<Uuid, Vec<SecurityProtocol>> = BTreeMap::new();
    for f in &filters {
        if let Action::Negotiate(n) = &f.action {
            keys.insert(ReqidKey {
                rule: f.rule,
                filter: f.filter,
            });
            if negotiating.insert(f.rule) {
                let first = n
                    .methods
                    .first()
                    .ok_or(Error::NoSecurityMethods { rule: f.rule })?;
                let p = method_protocols(first);
                if p.is_empty() {
                    return Err(Error::EmptySecurityMethod { rule: f.rule });
                }
                let unusable: Vec<usize> = n
                    .methods
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| method_protocols(m) != p)
                    .map(|(i, _)| i)
                    .collect();
                if !unusable.is_empty() {
                    notes.push(CompileNote::UnusableMethods {
                        rule: f.rule,
                        positions: unusable,
                    });
                }
                protocols.insert(f.rule, p);
            }
        }
    }
    let reqids = allocate_reqids(&keys, &options.previous_reqids, &options.ownership)?;

    let mut entries: Vec<DesiredEntry> = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &filters {
        if !options.ownership.priorities.contains(&f.priority) {
            return Err(Error::PriorityNotOwned {
                priority: f.priority,
            });
        }
        let sel = selector(f)?;
        let family = sel.family();
        // (direction, action) pairs for this expanded filter.
        let mut out: Vec<(Direction, PolicyAction)> = Vec::new();
        let mut fall_back = false;
        match &f.action {
            Action::Permit => out.push((dir(f.direction), PolicyAction::Allow)),
            Action::Block => out.push((dir(f.direction), PolicyAction::Block)),
            Action::Negotiate(n) => {
                fall_back = n.fall_back_to_clear;
                let reqid = reqids
                    .get(&ReqidKey {
                        rule: f.rule,
                        filter: f.filter,
                    })
                    .copied()
                    .ok_or(Error::ReqidsExhausted { rule: f.rule })?;
                let protos = protocols.get(&f.rule).cloned().unwrap_or_default();
                match f.tunnel_endpoint {
                    None => {
                        let level = match f.direction {
                            FilterDirection::Outbound => TemplateLevel::Require,
                            FilterDirection::Inbound => TemplateLevel::Use,
                        };
                        out.push((
                            dir(f.direction),
                            PolicyAction::Protect(templates(n, reqid, None, level, &protos)),
                        ));
                    }
                    Some(endpoint) => {
                        let any = Family::of(&endpoint).unspecified();
                        let tunnel = Some((any, endpoint));
                        let t = PolicyAction::Protect(templates(
                            n,
                            reqid,
                            tunnel,
                            TemplateLevel::Require,
                            &protos,
                        ));
                        if local.contains(&endpoint) {
                            out.push((Direction::In, t.clone()));
                            let to_me = sel.destination.len == family.max_prefix()
                                && local.contains(&sel.destination.addr);
                            if options.gateway && !to_me {
                                out.push((Direction::Fwd, t));
                            }
                        } else {
                            out.push((Direction::Out, t));
                        }
                    }
                }
            }
        }
        for (direction, action) in out {
            let id = PolicyId {
                selector: sel,
                direction,
                mark: None,
            };
            // Expansion is ordered by precedence: the first entry for an identity wins.
            if seen.insert((direction, sel_key(&sel))) {
                entries.push(DesiredEntry {
                    policy: Policy {
                        id,
                        action,
                        priority: f.priority,
                        index: None,
                        lifetime: Lifetime::default(),
                    },
                    rule: f.rule,
                    filter: f.filter,
                    fall_back_to_clear: fall_back,
                });
            }
        }
    }
    Ok(DesiredState {
        entries,
        reqids,
        notes,
    })
}

type SelKey = (
    IpAddr,
    u8,
    IpAddr,
    u8,
    Option<(u8, Option<u16>, Option<u16>)>,
);

fn sel_key(s: &Selector) -> SelKey {
    (
        s.source.addr,
        s.source.len,
        s.destination.addr,
        s.destination.len,
        match s.upper {
            UpperLayer::Any => None,
            UpperLayer::Proto {
                proto,
                source_port,
                destination_port,
            } => Some((proto, source_port, destination_port)),
        },
    )
}

fn dir(d: FilterDirection) -> Direction {
    match d {
        FilterDirection::Outbound => Direction::Out,
        FilterDirection::Inbound => Direction::In,
    }
}
