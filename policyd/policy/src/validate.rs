//! Whole-set validation: every check a [`PolicySet`] must pass before it is stored, imported
//! or applied.
//!
//! [`validate`] reports every problem it finds, each naming the object by kind, name and
//! GUID. The checks: names and GUIDs (empty, duplicate), references (dangling filter list or
//! filter action), settings ranges (Windows' limits on lifetimes and polling), empty or
//! malformed security and authentication methods (AES-GCM is an ESP quick-mode cipher
//! only, and takes no integrity algorithm), filters (ports without TCP/UDP, mixed
//! address families), impossible tunnels, and filters that another rule's filter shadows or
//! contradicts.
//!
//! Shadowing follows the weight of [`crate::order`]: a filter covering another is never more
//! specific than it, so a filter is shadowed only by one matching exactly the same traffic
//! (after mirroring) in an earlier rule with a different effect; when only some directions
//! coincide the two filters contradict each other. Coverage by a *union* of filters is not
//! detected. Inactive rules and the default response rule take no part. This module does no
//! I/O and never panics on any input.

use std::collections::HashMap;
use std::fmt;

use uuid::Uuid;

use crate::model::*;

/// Master-key lifetime limits in minutes (Windows: 5 minutes to 2^32-1 seconds).
pub const MM_LIFETIME_MINUTES: std::ops::RangeInclusive<u32> = 5..=71_582_788;
/// Quick-mode lifetime limits in seconds.
pub const QM_LIFETIME_SECONDS: std::ops::RangeInclusive<u32> = 300..=172_800;
/// Quick-mode lifetime limits in kilobytes.
pub const QM_LIFETIME_KB: std::ops::RangeInclusive<u32> = 20_480..=2_147_483_647;
/// Quick modes per main mode (0 = unlimited).
pub const QM_PER_MM: std::ops::RangeInclusive<u32> = 0..=2_147_483_647;
/// Policy polling interval limits in minutes (up to 30 days).
pub const POLLING_MINUTES: std::ops::RangeInclusive<u32> = 1..=43_200;

/// Which object an error is about: its kind, name and GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `policy`, `rule`, `filter list`, `filter`, `filter action`, `ISAKMP policy` or
    /// `default response rule`.
    pub kind: &'static str,
    /// The object's name (for a filter: its description, or its position in the list).
    pub name: String,
    /// The object's GUID.
    pub id: Uuid,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {{{}}}", self.kind, self.name, self.id)
    }
}

impl ObjectRef {
    fn policy(p: &Policy) -> Self {
        Self {
            kind: "policy",
            name: p.name.clone(),
            id: p.id,
        }
    }
    fn rule(p: &Policy, r: &Rule) -> Self {
        Self {
            kind: "rule",
            name: format!("{}/{}", p.name, r.name),
            id: r.id,
        }
    }
    fn default_response(p: &Policy) -> Self {
        Self {
            kind: "default response rule",
            name: p.name.clone(),
            id: p.default_response.id,
        }
    }
    fn isakmp(p: &Policy) -> Self {
        Self {
            kind: "ISAKMP policy",
            name: p.name.clone(),
            id: p.isakmp.id,
        }
    }
    fn list(l: &FilterList) -> Self {
        Self {
            kind: "filter list",
            name: l.name.clone(),
            id: l.id,
        }
    }
    fn filter(l: &FilterList, index: usize, f: &Filter) -> Self {
        let name = if f.description.is_empty() {
            format!("{} #{}", l.name, index + 1)
        } else {
            format!("{}: {}", l.name, f.description)
        };
        Self {
            kind: "filter",
            name,
            id: f.id,
        }
    }
    fn action(a: &FilterAction) -> Self {
        Self {
            kind: "filter action",
            name: a.name.clone(),
            id: a.id,
        }
    }
}

/// Why a tunnel rule cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelProblem {
    /// The endpoint is `me`, a keyword, `any` or a subnet, not one peer address.
    #[error("tunnel endpoint {0} is not a specific address")]
    EndpointNotAnAddress(Endpoint),
    /// Tunnels are one-way: each direction needs its own rule.
    #[error("{0} is mirrored; a tunnel needs one rule per direction")]
    MirroredFilter(ObjectRef),
    /// A tunnel's filters must name the tunnelled subnets.
    #[error("{0} uses {1}, which does not name the tunnelled subnet")]
    FilterNotExplicit(ObjectRef, Endpoint),
    /// The endpoint and the filter differ in address family.
    #[error("{0} is of another address family than the tunnel endpoint")]
    FamilyMismatch(ObjectRef),
    /// A tunnel rule whose action does not negotiate.
    #[error("its filter action {0} does not negotiate security")]
    NotNegotiating(ObjectRef),
}

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// An object without a name.
    #[error("{0} has an empty name")]
    EmptyName(ObjectRef),
    /// Two objects of one kind share a name.
    #[error("{second} has the same name as {first}")]
    DuplicateName {
        /// The first object with the name.
        first: ObjectRef,
        /// The later one.
        second: ObjectRef,
    },
    /// Two objects share a GUID.
    #[error("{second} has the same GUID as {first}")]
    DuplicateId {
        /// The first object with the GUID.
        first: ObjectRef,
        /// The later one.
        second: ObjectRef,
    },
    /// A rule names a filter list that does not exist.
    #[error("{rule} refers to filter list {{{missing}}}, which does not exist")]
    DanglingFilterList {
        /// The rule.
        rule: ObjectRef,
        /// The missing GUID.
        missing: Uuid,
    },
    /// A rule names a filter action that does not exist.
    #[error("{rule} refers to filter action {{{missing}}}, which does not exist")]
    DanglingFilterAction {
        /// The rule.
        rule: ObjectRef,
        /// The missing GUID.
        missing: Uuid,
    },
    /// An ISAKMP policy without main-mode security methods.
    #[error("{0} has no main-mode security methods")]
    NoMainModeMethods(ObjectRef),
    /// A negotiating filter action (or the default response rule) without security methods.
    #[error("{0} negotiates security but has no security methods")]
    NoQuickModeMethods(ObjectRef),
    /// A quick-mode method with neither AH nor ESP, or ESP with neither cipher nor HMAC.
    #[error("{object}: security method {index} has no AH and no ESP algorithm")]
    EmptyQuickModeMethod {
        /// The filter action or default response rule.
        object: ObjectRef,
        /// 1-based position of the method.
        index: usize,
    },
    /// An AEAD cipher (AES-GCM) in ESP together with an integrity algorithm.
    #[error("{object}: security method {index}: {encryption} is an AEAD cipher (it authenticates itself); ESP with it takes no integrity algorithm, write ESP[{encryption},NONE]")]
    AeadWithIntegrity {
        /// The filter action or default response rule.
        object: ObjectRef,
        /// 1-based position of the method.
        index: usize,
        /// The cipher's name (`AES128GCM16` or `AES256GCM16`).
        encryption: &'static str,
    },
    /// An AEAD cipher (AES-GCM) as a main-mode cipher: it is an ESP transform only (the IKE
    /// engine protects IKEv1 main mode with CBC ciphers).
    #[error("{object}: main-mode security method {index}: {encryption} is for ESP quick-mode methods only, not for main mode")]
    AeadInMainMode {
        /// The ISAKMP policy.
        object: ObjectRef,
        /// 1-based position of the method.
        index: usize,
        /// The cipher's name (`AES128GCM16` or `AES256GCM16`).
        encryption: &'static str,
    },
    /// A negotiating rule (or active default response rule) without authentication methods.
    #[error("{0} negotiates security but has no authentication methods")]
    NoAuthMethods(ObjectRef),
    /// A preshared key left out of an export.
    #[error("{0}: the preshared key is redacted")]
    RedactedKey(ObjectRef),
    /// An empty preshared key.
    #[error("{0}: the preshared key is empty")]
    EmptyKey(ObjectRef),
    /// A certificate method without a CA name.
    #[error("{0}: certificate authentication names no CA")]
    EmptyCaName(ObjectRef),
    /// Master-key lifetime out of Windows' limits.
    #[error("{object}: master-key lifetime {minutes} min is outside 5..=71582788")]
    MasterKeyLifetime {
        /// The ISAKMP policy.
        object: ObjectRef,
        /// The configured value.
        minutes: u32,
    },
    /// Quick modes per main mode out of range.
    #[error("{object}: {count} quick modes per main mode is outside 0..=2147483647")]
    QuickModesPerMainMode {
        /// The ISAKMP policy.
        object: ObjectRef,
        /// The configured value.
        count: u32,
    },
    /// Quick-mode lifetime in seconds out of Windows' limits.
    #[error("{object}: security method {index} lifetime {seconds} s is outside 300..=172800")]
    QuickModeLifetimeSeconds {
        /// The filter action or default response rule.
        object: ObjectRef,
        /// 1-based position of the method.
        index: usize,
        /// The configured value.
        seconds: u32,
    },
    /// Quick-mode lifetime in kilobytes out of Windows' limits.
    #[error("{object}: security method {index} lifetime {kb} KB is outside 20480..=2147483647")]
    QuickModeLifetimeKb {
        /// The filter action or default response rule.
        object: ObjectRef,
        /// 1-based position of the method.
        index: usize,
        /// The configured value.
        kb: u32,
    },
    /// Polling interval out of range.
    #[error("{object}: polling interval {minutes} min is outside 1..=43200")]
    PollingInterval {
        /// The policy.
        object: ObjectRef,
        /// The configured value.
        minutes: u32,
    },
    /// Ports on a filter whose protocol is not TCP or UDP.
    #[error("{filter}: ports need protocol tcp or udp, not {protocol}")]
    PortsWithoutTcpUdp {
        /// The filter.
        filter: ObjectRef,
        /// Its protocol.
        protocol: Protocol,
    },
    /// An IPv4 source with an IPv6 destination or the reverse.
    #[error("{0}: source and destination are of different address families")]
    MixedFamilies(ObjectRef),
    /// A tunnel that cannot work.
    #[error("{rule}: impossible tunnel: {problem}")]
    ImpossibleTunnel {
        /// The rule.
        rule: ObjectRef,
        /// Why.
        problem: TunnelProblem,
    },
    /// Every direction of a filter is matched first by another rule's filter with a
    /// different effect: the filter can never apply.
    #[error("{filter} in {rule} is shadowed by {by_filter} in {by_rule}, which matches the same traffic with a different action first")]
    Shadowed {
        /// The filter that never applies.
        filter: ObjectRef,
        /// Its rule.
        rule: ObjectRef,
        /// The filter that wins.
        by_filter: ObjectRef,
        /// Its rule.
        by_rule: ObjectRef,
    },
    /// Two filters match the same traffic in some direction at the same weight with
    /// different effects.
    #[error("{filter} in {rule} and {other_filter} in {other_rule} match the same traffic at the same weight with different actions")]
    Contradictory {
        /// The later filter.
        filter: ObjectRef,
        /// Its rule.
        rule: ObjectRef,
        /// The earlier filter.
        other_filter: ObjectRef,
        /// Its rule.
        other_rule: ObjectRef,
    },
    /// An agent setting out of its range.
    #[error("setting {setting} = {value} is outside {allowed}")]
    SettingOutOfRange {
        /// The netsh name of the setting.
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The allowed range.
        allowed: &'static str,
    },
    /// A boot exemption with ports on a protocol that has none.
    #[error("boot exemption {index}: ports need protocol tcp or udp, not {protocol}")]
    BootExemptionPorts {
        /// 1-based position of the exemption.
        index: usize,
        /// Its protocol.
        protocol: Protocol,
    },
}

/// The netsh-style name of an AEAD cipher, for error messages.
fn aead_name(e: Encryption) -> &'static str {
    match e {
        Encryption::Aes256Gcm16 => "AES256GCM16",
        _ => "AES128GCM16",
    }
}

/// Checks the agent settings against their netsh ranges.
pub fn validate_settings(settings: &crate::settings::Settings) -> Result<(), ValidationErrors> {
    use crate::settings as s;
    let mut errors = Vec::new();
    let mut range = |setting, value: u64, ok: bool, allowed| {
        if !ok {
            errors.push(ValidationError::SettingOutOfRange {
                setting,
                value,
                allowed,
            });
        }
    };
    range(
        "ipsecexempt",
        settings.ipsec_exempt.into(),
        s::IPSEC_EXEMPT.contains(&settings.ipsec_exempt),
        "0..=3",
    );
    range(
        "strongcrlcheck",
        settings.strong_crl_check.into(),
        s::STRONG_CRL_CHECK.contains(&settings.strong_crl_check),
        "0..=2",
    );
    range(
        "ipsecdiagnostics",
        settings.ipsec_diagnostics.into(),
        s::IPSEC_DIAGNOSTICS.contains(&settings.ipsec_diagnostics),
        "0..=7",
    );
    range(
        "directorypolling",
        settings.directory_polling_minutes.into(),
        s::POLLING_MINUTES.contains(&settings.directory_polling_minutes),
        "1..=43200 minutes",
    );
    range(
        "assignmentcheck",
        settings.assignment_check_minutes.into(),
        s::POLLING_MINUTES.contains(&settings.assignment_check_minutes),
        "1..=43200 minutes",
    );
    for (i, e) in settings.boot_exemptions.iter().enumerate() {
        if (e.source_port != 0 || e.destination_port != 0) && !e.protocol.has_ports() {
            errors.push(ValidationError::BootExemptionPorts {
                index: i + 1,
                protocol: e.protocol,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

/// Every problem [`validate`] found, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy validation failed ({} problems)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Checks a whole set; `Err` lists every problem found.
pub fn validate(set: &PolicySet) -> Result<(), ValidationErrors> {
    let mut v = Validator::default();
    v.names_and_ids(set);
    for list in &set.filter_lists {
        v.filter_list(list);
    }
    for action in &set.filter_actions {
        v.filter_action(action);
    }
    for policy in &set.policies {
        v.policy(set, policy);
    }
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(v.errors))
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<ValidationError>,
}

impl Validator {
    fn push(&mut self, e: ValidationError) {
        self.errors.push(e);
    }

    fn names_and_ids(&mut self, set: &PolicySet) {
        let mut ids: HashMap<Uuid, ObjectRef> = HashMap::new();
        let mut id = |v: &mut Self, o: ObjectRef| {
            if let Some(first) = ids.get(&o.id) {
                v.push(ValidationError::DuplicateId {
                    first: first.clone(),
                    second: o,
                });
            } else {
                ids.insert(o.id, o);
            }
        };
        let mut names = NameCheck::default();
        for p in &set.policies {
            names.check(self, "", ObjectRef::policy(p), &p.name);
            id(self, ObjectRef::policy(p));
            id(self, ObjectRef::isakmp(p));
            id(self, ObjectRef::default_response(p));
            let mut rule_names = NameCheck::default();
            for r in &p.rules {
                rule_names.check(self, "", ObjectRef::rule(p, r), &r.name);
                id(self, ObjectRef::rule(p, r));
            }
        }
        for l in &set.filter_lists {
            names.check(self, "list", ObjectRef::list(l), &l.name);
            id(self, ObjectRef::list(l));
            for (i, f) in l.filters.iter().enumerate() {
                id(self, ObjectRef::filter(l, i, f));
            }
        }
        for a in &set.filter_actions {
            names.check(self, "action", ObjectRef::action(a), &a.name);
            id(self, ObjectRef::action(a));
        }
    }

    fn filter_list(&mut self, list: &FilterList) {
        for (i, f) in list.filters.iter().enumerate() {
            let obj = || ObjectRef::filter(list, i, f);
            if (f.source_port != 0 || f.destination_port != 0) && !f.protocol.has_ports() {
                self.push(ValidationError::PortsWithoutTcpUdp {
                    filter: obj(),
                    protocol: f.protocol,
                });
            }
            if let (Some(a), Some(b)) = (f.source.is_ipv6(), f.destination.is_ipv6()) {
                if a != b {
                    self.push(ValidationError::MixedFamilies(obj()));
                }
            }
        }
    }

    fn filter_action(&mut self, action: &FilterAction) {
        if let Action::Negotiate(n) = &action.action {
            self.qm_methods(ObjectRef::action(action), &n.methods);
        }
    }

    fn qm_methods(&mut self, object: ObjectRef, methods: &[QuickModeMethod]) {
        if methods.is_empty() {
            self.push(ValidationError::NoQuickModeMethods(object.clone()));
        }
        for (i, m) in methods.iter().enumerate() {
            let index = i + 1;
            let esp_empty = m
                .esp
                .is_none_or(|e| e.encryption.is_none() && e.integrity.is_none());
            if m.ah.is_none() && esp_empty {
                self.push(ValidationError::EmptyQuickModeMethod {
                    object: object.clone(),
                    index,
                });
            }
            if let Some(EspTransform {
                encryption: Some(e),
                integrity: Some(_),
            }) = m.esp
            {
                if e.is_aead() {
                    self.push(ValidationError::AeadWithIntegrity {
                        object: object.clone(),
                        index,
                        encryption: aead_name(e),
                    });
                }
            }
            if !QM_LIFETIME_SECONDS.contains(&m.lifetime_seconds) {
                self.push(ValidationError::QuickModeLifetimeSeconds {
                    object: object.clone(),
                    index,
                    seconds: m.lifetime_seconds,
                });
            }
            if !QM_LIFETIME_KB.contains(&m.lifetime_kb) {
                self.push(ValidationError::QuickModeLifetimeKb {
                    object: object.clone(),
                    index,
                    kb: m.lifetime_kb,
                });
            }
        }
    }

    fn auth_methods(&mut self, object: ObjectRef, methods: &[AuthMethod], required: bool) {
        if required && methods.is_empty() {
            self.push(ValidationError::NoAuthMethods(object.clone()));
        }
        for m in methods {
            match m {
                AuthMethod::PresharedKey {
                    key: PresharedKey::Redacted,
                } => self.push(ValidationError::RedactedKey(object.clone())),
                AuthMethod::PresharedKey {
                    key: PresharedKey::Secret(s),
                } if s.expose().is_empty() => {
                    self.push(ValidationError::EmptyKey(object.clone()));
                }
                AuthMethod::Certificate { ca, .. } if ca.trim().is_empty() => {
                    self.push(ValidationError::EmptyCaName(object.clone()));
                }
                _ => {}
            }
        }
    }

    fn policy(&mut self, set: &PolicySet, p: &Policy) {
        if !POLLING_MINUTES.contains(&p.polling_interval_minutes) {
            self.push(ValidationError::PollingInterval {
                object: ObjectRef::policy(p),
                minutes: p.polling_interval_minutes,
            });
        }
        let isakmp = ObjectRef::isakmp(p);
        if p.isakmp.methods.is_empty() {
            self.push(ValidationError::NoMainModeMethods(isakmp.clone()));
        }
        for (i, m) in p.isakmp.methods.iter().enumerate() {
            if m.encryption.is_aead() {
                self.push(ValidationError::AeadInMainMode {
                    object: isakmp.clone(),
                    index: i + 1,
                    encryption: aead_name(m.encryption),
                });
            }
        }
        if !MM_LIFETIME_MINUTES.contains(&p.isakmp.master_key_lifetime_minutes) {
            self.push(ValidationError::MasterKeyLifetime {
                object: isakmp.clone(),
                minutes: p.isakmp.master_key_lifetime_minutes,
            });
        }
        if !QM_PER_MM.contains(&p.isakmp.quick_modes_per_main_mode) {
            self.push(ValidationError::QuickModesPerMainMode {
                object: isakmp,
                count: p.isakmp.quick_modes_per_main_mode,
            });
        }
        let dr = &p.default_response;
        let dr_ref = ObjectRef::default_response(p);
        self.auth_methods(dr_ref.clone(), &dr.auth_methods, dr.active);
        if dr.active || !dr.methods.is_empty() {
            self.qm_methods(dr_ref, &dr.methods);
        }

        let mut resolved = Vec::new();
        for r in &p.rules {
            let rule = ObjectRef::rule(p, r);
            let list = set.filter_list(r.filter_list);
            let action = set.filter_action(r.filter_action);
            if list.is_none() {
                self.push(ValidationError::DanglingFilterList {
                    rule: rule.clone(),
                    missing: r.filter_list,
                });
            }
            if action.is_none() {
                self.push(ValidationError::DanglingFilterAction {
                    rule: rule.clone(),
                    missing: r.filter_action,
                });
            }
            let negotiates = matches!(action.map(|a| &a.action), Some(Action::Negotiate(_)));
            self.auth_methods(rule.clone(), &r.auth_methods, negotiates);
            if let (Some(list), Some(action)) = (list, action) {
                if r.tunnel_endpoint.is_some() {
                    self.tunnel(&rule, r, list, action);
                }
                if r.active {
                    resolved.push((r, rule, list, action));
                }
            }
        }
        self.overlaps(&resolved);
    }

    fn tunnel(&mut self, rule: &ObjectRef, r: &Rule, list: &FilterList, action: &FilterAction) {
        let problem = |v: &mut Self, problem| {
            v.push(ValidationError::ImpossibleTunnel {
                rule: rule.clone(),
                problem,
            });
        };
        let endpoint_v6 = match r.tunnel_endpoint {
            Some(Endpoint::Address(a)) => a.is_ipv6(),
            Some(other) => return problem(self, TunnelProblem::EndpointNotAnAddress(other)),
            None => return,
        };
        if !matches!(action.action, Action::Negotiate(_)) {
            problem(
                self,
                TunnelProblem::NotNegotiating(ObjectRef::action(action)),
            );
        }
        for (i, f) in list.filters.iter().enumerate() {
            let obj = ObjectRef::filter(list, i, f);
            if f.mirrored {
                problem(self, TunnelProblem::MirroredFilter(obj.clone()));
            }
            for e in [f.source, f.destination] {
                match e {
                    Endpoint::Any | Endpoint::Address(_) | Endpoint::Subnet(_) => {}
                    other => problem(self, TunnelProblem::FilterNotExplicit(obj.clone(), other)),
                }
            }
            let family_differs = [f.source, f.destination]
                .iter()
                .any(|e| e.is_ipv6().is_some_and(|v6| v6 != endpoint_v6));
            if family_differs {
                problem(self, TunnelProblem::FamilyMismatch(obj));
            }
        }
    }

    fn overlaps(&mut self, rules: &[(&Rule, ObjectRef, &FilterList, &FilterAction)]) {
        // Selector → the first (winning) filter that has it, with its effect.
        let mut seen: HashMap<Selector, (usize, ObjectRef, Effect<'_>)> = HashMap::new();
        for (ri, (rule, rule_ref, list, action)) in rules.iter().enumerate() {
            let effect = Effect {
                action: &action.action,
                tunnel: rule.tunnel_endpoint,
            };
            let mut this_rule = Vec::new();
            for (fi, f) in list.filters.iter().enumerate() {
                let fref = ObjectRef::filter(list, fi, f);
                let selectors = Selector::of(f);
                let mut conflicts = Vec::new();
                for s in &selectors {
                    if let Some((ori, oref, oeffect)) = seen.get(s) {
                        if *oeffect != effect {
                            conflicts.push((*ori, oref.clone()));
                        }
                    }
                }
                if let Some((ori, oref)) = conflicts.first().cloned() {
                    let by_rule = rules
                        .get(ori)
                        .map(|r| r.1.clone())
                        .unwrap_or_else(|| rule_ref.clone());
                    if conflicts.len() == selectors.len() {
                        self.push(ValidationError::Shadowed {
                            filter: fref.clone(),
                            rule: rule_ref.clone(),
                            by_filter: oref,
                            by_rule,
                        });
                    } else {
                        self.push(ValidationError::Contradictory {
                            filter: fref.clone(),
                            rule: rule_ref.clone(),
                            other_filter: oref,
                            other_rule: by_rule,
                        });
                    }
                }
                for s in selectors {
                    this_rule.push((s, fref.clone()));
                }
            }
            for (s, fref) in this_rule {
                seen.entry(s).or_insert((ri, fref, effect));
            }
        }
    }
}

#[derive(Default)]
struct NameCheck {
    seen: HashMap<(&'static str, String), ObjectRef>,
}

impl NameCheck {
    fn check(&mut self, v: &mut Validator, ns: &'static str, obj: ObjectRef, name: &str) {
        if name.trim().is_empty() {
            v.push(ValidationError::EmptyName(obj));
            return;
        }
        match self.seen.get(&(ns, name.to_owned())) {
            Some(first) => v.push(ValidationError::DuplicateName {
                first: first.clone(),
                second: obj,
            }),
            None => {
                self.seen.insert((ns, name.to_owned()), obj);
            }
        }
    }
}

/// What a rule does to the traffic its filters match.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Effect<'a> {
    action: &'a Action,
    tunnel: Option<Endpoint>,
}

/// One direction of a filter, with addresses normalised to prefixes so that `10.0.0.1`
/// and `10.0.0.1/32` compare equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Selector {
    src: EndpointKey,
    dst: EndpointKey,
    protocol: Protocol,
    src_port: u16,
    dst_port: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum EndpointKey {
    Symbolic(Endpoint),
    Prefix(std::net::IpAddr, u8),
}

impl EndpointKey {
    fn of(e: Endpoint) -> Self {
        match e {
            Endpoint::Address(a) => Self::Prefix(a, max_prefix(a)),
            Endpoint::Subnet(s) => Self::Prefix(s.addr(), s.prefix_len()),
            other => Self::Symbolic(other),
        }
    }
}

impl Selector {
    fn of(f: &Filter) -> Vec<Self> {
        let forward = Self {
            src: EndpointKey::of(f.source),
            dst: EndpointKey::of(f.destination),
            protocol: f.protocol,
            src_port: f.source_port,
            dst_port: f.destination_port,
        };
        let reverse = Self {
            src: forward.dst,
            dst: forward.src,
            protocol: f.protocol,
            src_port: f.destination_port,
            dst_port: f.source_port,
        };
        if f.mirrored && reverse != forward {
            vec![forward, reverse]
        } else {
            vec![forward]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{self, default_store};

    fn errors(set: &PolicySet) -> Vec<ValidationError> {
        validate(set).err().map(|e| e.0).unwrap_or_default()
    }

    fn lab(set: &mut PolicySet) -> &mut Policy {
        set.policies
            .iter_mut()
            .find(|p| p.name == defaults::LAB_ANDY)
            .expect("the default store has the lab policy")
    }

    fn list_mut<'a>(set: &'a mut PolicySet, name: &str) -> &'a mut FilterList {
        set.filter_lists
            .iter_mut()
            .find(|l| l.name == name)
            .expect("list exists")
    }

    fn telnet_filter(source: Endpoint, mirrored: bool) -> Filter {
        Filter {
            id: new_id(),
            version: 1,
            description: "extra".into(),
            source,
            destination: Endpoint::MyAddress,
            mirrored,
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: 23,
        }
    }

    #[test]
    fn reports_dangling_filter_list_with_rule_name_and_guid() {
        let mut set = default_store();
        let missing = new_id();
        let rule = &mut lab(&mut set).rules[0];
        rule.filter_list = missing;
        let rule_id = rule.id;
        let errs = errors(&set);
        assert!(
            matches!(&errs[..], [ValidationError::DanglingFilterList { rule, missing: m }]
            if rule.id == rule_id && *m == missing)
        );
        let text = errs[0].to_string();
        assert!(
            text.contains("Block telnet") && text.contains(&missing.to_string()),
            "{text}"
        );
    }

    #[test]
    fn reports_dangling_filter_action() {
        let mut set = default_store();
        lab(&mut set).rules[1].filter_action = new_id();
        assert!(matches!(
            &errors(&set)[..],
            [ValidationError::DanglingFilterAction { .. }]
        ));
    }

    #[test]
    fn reports_duplicate_names_and_guids() {
        let mut set = default_store();
        let mut copy = set.filter_lists[0].clone();
        set.filter_lists.push(copy.clone());
        let errs = errors(&set);
        assert!(errs
            .iter()
            .any(|e| matches!(e, ValidationError::DuplicateName { .. })));
        assert!(errs
            .iter()
            .any(|e| matches!(e, ValidationError::DuplicateId { .. })));
        set.filter_lists.pop();
        copy.name = "Another".into();
        copy.id = new_id();
        set.filter_lists.push(copy);
        // Same filter GUIDs inside the copy.
        assert!(
            matches!(&errors(&set)[..], [ValidationError::DuplicateId { first, .. }] if first.kind == "filter")
        );
    }

    #[test]
    fn reports_a_filter_shadowed_by_an_earlier_rule_with_another_action() {
        let mut set = default_store();
        // Add "telnet from Betty" to the block list too: the block rule comes first.
        let betty = Endpoint::Address(defaults::LAB_BETTY_ADDR.into());
        list_mut(&mut set, "All Telnet Traffic")
            .filters
            .push(telnet_filter(betty, true));
        let errs = errors(&set);
        assert!(
            matches!(&errs[..], [ValidationError::Shadowed { filter, by_filter, .. }]
                if filter.name.contains("telnet from Betty") && by_filter.name.contains("extra")),
            "{errs:?}"
        );
    }

    #[test]
    fn reports_contradictory_filters_that_overlap_in_one_direction() {
        let mut set = default_store();
        let betty = Endpoint::Address(defaults::LAB_BETTY_ADDR.into());
        list_mut(&mut set, "All Telnet Traffic")
            .filters
            .push(telnet_filter(betty, false));
        let errs = errors(&set);
        assert!(
            matches!(&errs[..], [ValidationError::Contradictory { .. }]),
            "{errs:?}"
        );
    }

    #[test]
    fn same_traffic_with_the_same_action_is_not_a_conflict() {
        let mut set = default_store();
        let list = list_mut(&mut set, "All Telnet Traffic");
        let dup = Filter {
            id: new_id(),
            ..list.filters[0].clone()
        };
        list.filters.push(dup);
        assert_eq!(errors(&set), vec![]);
    }

    #[test]
    fn address_and_host_subnet_are_the_same_traffic() {
        let mut set = default_store();
        let host = Endpoint::Subnet(Subnet::new(defaults::LAB_BETTY_ADDR.into(), 32).unwrap());
        list_mut(&mut set, "All Telnet Traffic")
            .filters
            .push(telnet_filter(host, true));
        assert!(matches!(
            &errors(&set)[..],
            [ValidationError::Shadowed { .. }]
        ));
    }

    #[test]
    fn inactive_rules_take_no_part_in_overlap_checks() {
        let mut set = default_store();
        let betty = Endpoint::Address(defaults::LAB_BETTY_ADDR.into());
        list_mut(&mut set, "All Telnet Traffic")
            .filters
            .push(telnet_filter(betty, true));
        lab(&mut set).rules[0].active = false;
        assert_eq!(errors(&set), vec![]);
    }

    fn tunnel_problems(set: &PolicySet) -> Vec<TunnelProblem> {
        errors(set)
            .into_iter()
            .filter_map(|e| match e {
                ValidationError::ImpossibleTunnel { problem, .. } => Some(problem),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tunnel_with_mirrored_filter_and_my_address_is_impossible() {
        let mut set = default_store();
        lab(&mut set).rules[1].tunnel_endpoint =
            Some(Endpoint::Address("192.0.2.1".parse().unwrap()));
        let problems = tunnel_problems(&set);
        assert!(problems
            .iter()
            .any(|p| matches!(p, TunnelProblem::MirroredFilter(_))));
        assert!(problems
            .iter()
            .any(|p| matches!(p, TunnelProblem::FilterNotExplicit(_, Endpoint::MyAddress))));
    }

    #[test]
    fn tunnel_endpoint_my_address_is_impossible() {
        let mut set = default_store();
        lab(&mut set).rules[1].tunnel_endpoint = Some(Endpoint::MyAddress);
        assert_eq!(
            tunnel_problems(&set),
            vec![TunnelProblem::EndpointNotAnAddress(Endpoint::MyAddress)]
        );
    }

    #[test]
    fn ipv4_tunnel_endpoint_with_ipv6_filter_is_impossible() {
        let mut set = default_store();
        let list = list_mut(&mut set, "Telnet from Betty");
        list.filters[0].mirrored = false;
        list.filters[0].source = "2001:db8::/64".parse().unwrap();
        list.filters[0].destination = "2001:db8:1::/64".parse().unwrap();
        lab(&mut set).rules[1].tunnel_endpoint = Some("192.0.2.1".parse().unwrap());
        let problems = tunnel_problems(&set);
        assert!(
            matches!(&problems[..], [TunnelProblem::FamilyMismatch(_)]),
            "{problems:?}"
        );
    }

    #[test]
    fn negotiate_without_methods_is_refused() {
        let mut set = default_store();
        for a in &mut set.filter_actions {
            if let Action::Negotiate(n) = &mut a.action {
                if a.name == "Require Security" {
                    n.methods.clear();
                }
            }
        }
        assert!(
            matches!(&errors(&set)[..], [ValidationError::NoQuickModeMethods(o)] if o.name == "Require Security")
        );
    }

    #[test]
    fn aes_gcm_esp_without_integrity_is_valid_in_actions_and_default_response() {
        let mut set = default_store();
        if let Some(Action::Negotiate(n)) = set.filter_actions.get_mut(1).map(|a| &mut a.action) {
            n.methods
                .insert(0, QuickModeMethod::esp_aead(Encryption::Aes128Gcm16));
            n.methods
                .push(QuickModeMethod::esp_aead(Encryption::Aes256Gcm16));
            n.offload = true;
        }
        lab(&mut set)
            .default_response
            .methods
            .insert(0, QuickModeMethod::esp_aead(Encryption::Aes256Gcm16));
        assert_eq!(errors(&set), vec![]);
    }

    #[test]
    fn aes_gcm_with_an_integrity_algorithm_is_refused_with_the_fix() {
        let mut set = default_store();
        let name = set.filter_actions[1].name.clone();
        if let Some(Action::Negotiate(n)) = set.filter_actions.get_mut(1).map(|a| &mut a.action) {
            n.methods[1].esp = Some(EspTransform {
                encryption: Some(Encryption::Aes256Gcm16),
                integrity: Some(Integrity::Sha256),
            });
        }
        let errs = errors(&set);
        assert!(
            matches!(&errs[..], [ValidationError::AeadWithIntegrity { object, index: 2, encryption: "AES256GCM16" }] if object.name == name),
            "{errs:?}"
        );
        let text = errs[0].to_string();
        assert!(
            text.contains("AEAD") && text.contains("ESP[AES256GCM16,NONE]"),
            "{text}"
        );
    }

    #[test]
    fn aes_gcm_as_a_main_mode_cipher_is_refused() {
        let mut set = default_store();
        lab(&mut set).isakmp.methods[1].encryption = Encryption::Aes128Gcm16;
        let errs = errors(&set);
        assert!(
            matches!(
                &errs[..],
                [ValidationError::AeadInMainMode {
                    index: 2,
                    encryption: "AES128GCM16",
                    ..
                }]
            ),
            "{errs:?}"
        );
        assert!(errs[0].to_string().contains("ESP quick-mode methods only"));
    }

    #[test]
    fn empty_security_method_is_refused() {
        let mut set = default_store();
        if let Some(Action::Negotiate(n)) = set.filter_actions.get_mut(1).map(|a| &mut a.action) {
            n.methods[0].esp = Some(EspTransform {
                encryption: None,
                integrity: None,
            });
        }
        assert!(matches!(
            &errors(&set)[..],
            [ValidationError::EmptyQuickModeMethod { index: 1, .. }]
        ));
    }

    #[test]
    fn lifetimes_outside_windows_limits_are_refused() {
        let mut set = default_store();
        set.policies[0].isakmp.master_key_lifetime_minutes = 4;
        if let Some(Action::Negotiate(n)) = set.filter_actions.get_mut(1).map(|a| &mut a.action) {
            n.methods[0].lifetime_seconds = 299;
            n.methods[1].lifetime_kb = 20_479;
            n.methods[2].lifetime_seconds = 172_800;
            n.methods[2].lifetime_kb = 20_480;
        }
        let errs = errors(&set);
        assert!(
            matches!(
                &errs[..],
                [
                    ValidationError::QuickModeLifetimeSeconds {
                        index: 1,
                        seconds: 299,
                        ..
                    },
                    ValidationError::QuickModeLifetimeKb {
                        index: 2,
                        kb: 20_479,
                        ..
                    },
                    ValidationError::MasterKeyLifetime { minutes: 4, .. },
                ]
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn redacted_or_empty_keys_and_missing_auth_are_refused() {
        let set = default_store().redacted();
        assert!(errors(&set)
            .iter()
            .all(|e| matches!(e, ValidationError::RedactedKey(_))));
        let mut set = default_store();
        lab(&mut set).rules[1].auth_methods.clear();
        assert!(matches!(
            &errors(&set)[..],
            [ValidationError::NoAuthMethods(_)]
        ));
    }

    #[test]
    fn settings_outside_netsh_ranges_are_refused() {
        use crate::settings::*;
        assert_eq!(validate_settings(&Settings::default()), Ok(()));
        let bad = Settings {
            ipsec_exempt: 4,
            strong_crl_check: 3,
            boot_exemptions: vec![BootExemption {
                protocol: Protocol::ICMP,
                source_port: 0,
                destination_port: 80,
                direction: ExemptionDirection::Inbound,
            }],
            ..Settings::default()
        };
        let errs = validate_settings(&bad).unwrap_err().0;
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn ports_need_tcp_or_udp() {
        let mut set = default_store();
        list_mut(&mut set, "All ICMP Traffic").filters[0].destination_port = 7;
        assert!(matches!(
            &errors(&set)[..],
            [ValidationError::PortsWithoutTcpUdp { .. }]
        ));
    }
}
