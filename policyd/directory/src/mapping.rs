//! The mapping between the policy model and directory entries (`man 5 ipsec-ldap`).
//!
//! One policy is stored as the seed's five object kinds, each its own entry directly under
//! the policy container, named by its GUID like Active Directory does:
//!
//! | model                 | object class             | RDN                           |
//! |-----------------------|--------------------------|-------------------------------|
//! | [`Policy`] (head)     | `ipsecPolicy`            | `cn=ipsecPolicy{GUID}`        |
//! | [`IsakmpPolicy`]      | `ipsecISAKMPPolicy`      | `cn=ipsecISAKMPPolicy{GUID}`  |
//! | [`Rule`]              | `ipsecNFA`               | `cn=ipsecNFA{GUID}`           |
//! | [`FilterList`]        | `ipsecFilter`            | `cn=ipsecFilter{GUID}`        |
//! | [`FilterAction`]      | `ipsecNegotiationPolicy` | `cn=ipsecNegotiationPolicy{GUID}` |
//!
//! Every entry carries `ipsecID` (the GUID), `ipsecVersion` (the change version, the seed's
//! `whenChanged`), `ipsecName`, `ipsecDataType` (1) and `ipsecData`, the object as a TOML
//! document in the policy file's field names. The links are DN-valued attributes:
//! `ipsecISAKMPReference` and `ipsecNFAReference` on the policy, `ipsecFilterReference` and
//! `ipsecNegotiationPolicyReference` on a rule, and `ipsecOwnersReference` on every
//! component, naming the policies that use it: shared filter lists and filter actions are
//! stored once, and a change to one is seen by every owner's change detection.
//!
//! Reading checks every entry (object class, data type, GUID and version equal to the data,
//! references resolving to entries of the right class and GUID) and fails with
//! [`DirectoryError::Malformed`] naming the entry; nothing here does I/O or panics on input.

use std::collections::{BTreeMap, HashMap};

use ipsec_policy::{
    AuthMethod, DefaultResponseRule, FilterAction, FilterList, IsakmpPolicy, Policy, PolicySet,
    PresharedKey, Rule,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

use crate::dn;
use crate::error::{malformed, DirectoryError, Result};
use crate::schema::*;

/// One directory entry: its DN and attributes (names as in the schema; looked up
/// case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Distinguished name.
    pub dn: String,
    /// Attribute values.
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    /// A new entry without attributes.
    pub fn new(dn: impl Into<String>) -> Self {
        Self {
            dn: dn.into(),
            attrs: BTreeMap::new(),
        }
    }

    /// Adds values to an attribute.
    pub fn add(&mut self, name: &str, values: impl IntoIterator<Item = String>) {
        self.attrs
            .entry(name.to_owned())
            .or_default()
            .extend(values);
    }

    /// All values of an attribute (case-insensitive name).
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The single value of an attribute, or a malformed-entry error.
    pub fn single(&self, name: &str) -> Result<&str> {
        match self.values(name) {
            [v] => Ok(v),
            [] => Err(malformed(&self.dn, format!("attribute {name} is missing"))),
            _ => Err(malformed(
                &self.dn,
                format!("attribute {name} has several values"),
            )),
        }
    }

    /// Whether the entry has this object class.
    pub fn has_class(&self, class: &str) -> bool {
        self.values("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(class))
    }
}

/// The GUID as written in `ipsecID` and in RDNs: `{xxxxxxxx-...}`, lowercase.
pub fn guid(id: Uuid) -> String {
    format!("{{{id}}}")
}

/// Parses an `ipsecID` value.
pub fn parse_guid(dn: &str, v: &str) -> Result<Uuid> {
    let inner = v
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .ok_or_else(|| malformed(dn, format!("ipsecID {v:?} is not a {{GUID}}")))?;
    Uuid::parse_str(inner).map_err(|e| malformed(dn, format!("ipsecID {v:?}: {e}")))
}

/// The DN of an object of `class` with GUID `id` in `container`.
pub fn object_dn(class: &str, id: Uuid, container: &str) -> String {
    format!("cn={class}{},{container}", guid(id))
}

/// The policy head: everything of [`Policy`] but its ISAKMP policy and rules, which are
/// their own entries; `rules` keeps their order.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PolicyData {
    id: Uuid,
    version: u64,
    name: String,
    description: String,
    polling_interval_minutes: u32,
    rules: Vec<Uuid>,
    default_response: DefaultResponseRule,
    /// The digest ([`digest`]) of every component entry this version of the policy was
    /// published with, by `{GUID}`: what makes a publish atomic for a reader.
    components: BTreeMap<String, String>,
}

/// The digest of an entry's content as published: SHA-256 over its object class and
/// `ipsecData`, in hex. The data carries the object's GUID, version and the GUIDs it refers
/// to, and [`from_entries`] checks the attributes against it, so equal digests mean equal
/// objects.
pub fn digest(class: &str, data: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(class.as_bytes());
    h.update([0u8]);
    h.update(data.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a component entry built by [`to_entries`] (`None`: no `ipsecData`).
fn entry_digest(e: &Entry, class: &str) -> Option<String> {
    e.values(ATTR_DATA).first().map(|d| digest(class, d))
}

/// Replaces the digest recorded for component `component` in a policy entry's `ipsecData`
/// (`Ok(None)`: the policy does not use that component). Used by a publisher that changed a
/// component shared with this policy.
pub fn redigest(policy: &Entry, component: Uuid, digest: &str) -> Result<Option<String>> {
    let mut head: PolicyData = toml::from_str(policy.single(ATTR_DATA)?)
        .map_err(|err| malformed(&policy.dn, format!("{ATTR_DATA}: {}", err.message())))?;
    match head.components.get_mut(&guid(component)) {
        Some(d) if d == digest => Ok(None),
        Some(d) => {
            digest.clone_into(d);
            to_data(&head).map(Some)
        }
        None => Ok(None),
    }
}

/// The class of a component entry (`None`: not one of the four component classes).
pub fn component_class(e: &Entry) -> Option<&'static str> {
    [CLASS_ISAKMP, CLASS_NFA, CLASS_FILTER, CLASS_NEGPOL]
        .into_iter()
        .find(|c| e.has_class(c))
}

fn to_data<T: Serialize>(v: &T) -> Result<String> {
    toml::to_string(v).map_err(|e| DirectoryError::Publish(format!("cannot encode: {e}")))
}

fn base_entry(
    class: &str,
    id: Uuid,
    version: u64,
    name: &str,
    data: String,
    container: &str,
) -> Entry {
    let mut e = Entry::new(object_dn(class, id, container));
    e.add(
        "objectClass",
        ["top".to_owned(), CLASS_BASE.to_owned(), class.to_owned()],
    );
    e.add("cn", [format!("{class}{}", guid(id))]);
    e.add(ATTR_ID, [guid(id)]);
    e.add(ATTR_VERSION, [version.to_string()]);
    if !name.is_empty() {
        e.add(ATTR_NAME, [name.to_owned()]);
    }
    e.add(ATTR_DATA_TYPE, [DATA_TYPE.to_string()]);
    e.add(ATTR_DATA, [data]);
    e
}

fn has_redacted_key(p: &Policy) -> bool {
    p.rules
        .iter()
        .map(|r| &r.auth_methods)
        .chain(std::iter::once(&p.default_response.auth_methods))
        .flatten()
        .any(|m| {
            matches!(
                m,
                AuthMethod::PresharedKey {
                    key: PresharedKey::Redacted
                }
            )
        })
}

/// The entries of policy `id` of `set` under `container`: the policy first, then its
/// ISAKMP policy, rules, filter lists and filter actions (each shared object once, owned by
/// this policy; a publisher adds the owner to an existing shared entry).
pub fn to_entries(set: &PolicySet, id: Uuid, container: &str) -> Result<Vec<Entry>> {
    let p = set
        .policy(id)
        .ok_or_else(|| DirectoryError::Publish(format!("no policy {}", guid(id))))?;
    if has_redacted_key(p) {
        return Err(DirectoryError::Publish(format!(
            "policy {:?} has a redacted preshared key",
            p.name
        )));
    }
    let pdn = object_dn(CLASS_POLICY, p.id, container);
    // The head is made last (it records the components' digests) and put first.
    let mut out = vec![Entry::new(pdn.clone())];
    let owned = |mut e: Entry| {
        e.add(ATTR_OWNERS, [pdn.clone()]);
        e
    };
    out.push(owned(base_entry(
        CLASS_ISAKMP,
        p.isakmp.id,
        p.isakmp.version,
        "",
        to_data(&p.isakmp)?,
        container,
    )));
    let mut lists = Vec::new();
    let mut actions = Vec::new();
    for r in &p.rules {
        let mut e = base_entry(CLASS_NFA, r.id, r.version, &r.name, to_data(r)?, container);
        e.add(
            ATTR_FILTER_REF,
            [object_dn(CLASS_FILTER, r.filter_list, container)],
        );
        e.add(
            ATTR_NEGPOL_REF,
            [object_dn(CLASS_NEGPOL, r.filter_action, container)],
        );
        out.push(owned(e));
        if !lists.contains(&r.filter_list) {
            lists.push(r.filter_list);
        }
        if !actions.contains(&r.filter_action) {
            actions.push(r.filter_action);
        }
    }
    for l in lists {
        let l = set.filter_list(l).ok_or_else(|| {
            DirectoryError::Publish(format!("filter list {} is missing", guid(l)))
        })?;
        out.push(owned(base_entry(
            CLASS_FILTER,
            l.id,
            l.version,
            &l.name,
            to_data(l)?,
            container,
        )));
    }
    for a in actions {
        let a = set.filter_action(a).ok_or_else(|| {
            DirectoryError::Publish(format!("filter action {} is missing", guid(a)))
        })?;
        out.push(owned(base_entry(
            CLASS_NEGPOL,
            a.id,
            a.version,
            &a.name,
            to_data(a)?,
            container,
        )));
    }
    let mut components = BTreeMap::new();
    for e in out.iter().skip(1) {
        let class = component_class(e).unwrap_or_default();
        let id = e.values(ATTR_ID).first().cloned().unwrap_or_default();
        components.insert(id, entry_digest(e, class).unwrap_or_default());
    }
    let head = PolicyData {
        id: p.id,
        version: p.version,
        name: p.name.clone(),
        description: p.description.clone(),
        polling_interval_minutes: p.polling_interval_minutes,
        rules: p.rules.iter().map(|r| r.id).collect(),
        default_response: p.default_response.clone(),
        components,
    };
    let mut pe = base_entry(
        CLASS_POLICY,
        p.id,
        p.version,
        &p.name,
        to_data(&head)?,
        container,
    );
    pe.add(
        ATTR_ISAKMP_REF,
        [object_dn(CLASS_ISAKMP, p.isakmp.id, container)],
    );
    pe.add(
        ATTR_NFA_REF,
        p.rules
            .iter()
            .map(|r| object_dn(CLASS_NFA, r.id, container)),
    );
    out[0] = pe;
    Ok(out)
}

/// Checks the common attributes of `e` against `class` and decodes its data.
fn decode<T: DeserializeOwned>(e: &Entry, class: &str) -> Result<(Uuid, u64, T)> {
    if !e.has_class(class) {
        return Err(malformed(&e.dn, format!("not an {class} object")));
    }
    let dt = e.single(ATTR_DATA_TYPE)?;
    if dt.trim() != DATA_TYPE.to_string() {
        return Err(malformed(
            &e.dn,
            format!("{ATTR_DATA_TYPE} {dt:?} is not supported (this version reads {DATA_TYPE})"),
        ));
    }
    let id = parse_guid(&e.dn, e.single(ATTR_ID)?)?;
    let v = e.single(ATTR_VERSION)?;
    let version: u64 = v
        .trim()
        .parse()
        .map_err(|_| malformed(&e.dn, format!("{ATTR_VERSION} {v:?} is not a number")))?;
    let data: T = toml::from_str(e.single(ATTR_DATA)?)
        .map_err(|err| malformed(&e.dn, format!("{ATTR_DATA}: {}", err.message())))?;
    Ok((id, version, data))
}

fn check_ids(e: &Entry, id: Uuid, version: u64, data_id: Uuid, data_version: u64) -> Result<()> {
    if id != data_id {
        return Err(malformed(
            &e.dn,
            format!(
                "{ATTR_ID} {} but {ATTR_DATA} has id {}",
                guid(id),
                guid(data_id)
            ),
        ));
    }
    if version != data_version {
        return Err(malformed(
            &e.dn,
            format!("{ATTR_VERSION} {version} but {ATTR_DATA} has version {data_version}"),
        ));
    }
    Ok(())
}

/// Checks that component `e` is the one the policy head `pe` was published with.
fn check_digest(pe: &Entry, head: &PolicyData, e: &Entry, class: &str, id: Uuid) -> Result<()> {
    let recorded = head.components.get(&guid(id));
    let actual = entry_digest(e, class);
    if recorded.is_some() && recorded == actual.as_ref() {
        return Ok(());
    }
    Err(DirectoryError::Inconsistent {
        dn: pe.dn.clone(),
        reason: match recorded {
            None => format!(
                "it records no digest for {} (a publish is in progress, or the policy was \
                 changed without ipsecadm)",
                e.dn
            ),
            Some(_) => format!(
                "{} differs from the version the policy was published with (a publish is in \
                 progress, or the entry was changed without republishing the policy)",
                e.dn
            ),
        },
    })
}

/// Looks entries up by DN for [`from_entries`]: `Ok(None)` when there is no such entry.
pub type Fetch<'a> = dyn FnMut(&str) -> Result<Option<Entry>> + 'a;

fn resolve(fetch: &mut Fetch<'_>, from: &Entry, attr: &str, target: &str) -> Result<Entry> {
    fetch(target)?.ok_or_else(|| {
        malformed(
            &from.dn,
            format!("{attr} names {target:?}, which does not exist"),
        )
    })
}

/// Reads the policy at `policy_dn` and everything it references into a set holding that
/// policy and the filter lists and actions its rules use (in order of first use). Returns
/// the set and the policy's GUID. The set is not validated here.
pub fn from_entries(policy_dn: &str, fetch: &mut Fetch<'_>) -> Result<(PolicySet, Uuid)> {
    let pe = fetch(policy_dn)?
        .ok_or_else(|| malformed(policy_dn, "the assigned policy does not exist".to_owned()))?;
    let (id, version, head): (_, _, PolicyData) = decode(&pe, CLASS_POLICY)?;
    check_ids(&pe, id, version, head.id, head.version)?;

    let ie = resolve(fetch, &pe, ATTR_ISAKMP_REF, pe.single(ATTR_ISAKMP_REF)?)?;
    let (iid, iver, isakmp): (_, _, IsakmpPolicy) = decode(&ie, CLASS_ISAKMP)?;
    check_ids(&ie, iid, iver, isakmp.id, isakmp.version)?;
    check_digest(&pe, &head, &ie, CLASS_ISAKMP, iid)?;

    let mut rules: BTreeMap<Uuid, Rule> = BTreeMap::new();
    let mut lists: Vec<FilterList> = Vec::new();
    let mut actions: Vec<FilterAction> = Vec::new();
    // Normalized DN → GUID of the filter lists and actions read so far.
    let mut seen: HashMap<String, Uuid> = HashMap::new();
    for nfa_dn in pe.values(ATTR_NFA_REF) {
        let ne = resolve(fetch, &pe, ATTR_NFA_REF, nfa_dn)?;
        let (rid, rver, rule): (_, _, Rule) = decode(&ne, CLASS_NFA)?;
        check_ids(&ne, rid, rver, rule.id, rule.version)?;
        check_digest(&pe, &head, &ne, CLASS_NFA, rid)?;
        // A filter list or action shared by several rules is read and checked once.
        let fdn = ne.single(ATTR_FILTER_REF)?;
        let fid = match seen.get(&dn::normalize(fdn)) {
            Some(id) => *id,
            None => {
                let fe = resolve(fetch, &ne, ATTR_FILTER_REF, fdn)?;
                let (fid, fver, list): (_, _, FilterList) = decode(&fe, CLASS_FILTER)?;
                check_ids(&fe, fid, fver, list.id, list.version)?;
                check_digest(&pe, &head, &fe, CLASS_FILTER, fid)?;
                seen.insert(dn::normalize(fdn), fid);
                if !lists.iter().any(|l| l.id == fid) {
                    lists.push(list);
                }
                fid
            }
        };
        if fid != rule.filter_list {
            return Err(malformed(
                &ne.dn,
                format!(
                    "{ATTR_FILTER_REF} names filter list {} but the rule uses {}",
                    guid(fid),
                    guid(rule.filter_list)
                ),
            ));
        }
        let adn = ne.single(ATTR_NEGPOL_REF)?;
        let aid = match seen.get(&dn::normalize(adn)) {
            Some(id) => *id,
            None => {
                let ae = resolve(fetch, &ne, ATTR_NEGPOL_REF, adn)?;
                let (aid, aver, action): (_, _, FilterAction) = decode(&ae, CLASS_NEGPOL)?;
                check_ids(&ae, aid, aver, action.id, action.version)?;
                check_digest(&pe, &head, &ae, CLASS_NEGPOL, aid)?;
                seen.insert(dn::normalize(adn), aid);
                if !actions.iter().any(|a| a.id == aid) {
                    actions.push(action);
                }
                aid
            }
        };
        if aid != rule.filter_action {
            return Err(malformed(
                &ne.dn,
                format!(
                    "{ATTR_NEGPOL_REF} names filter action {} but the rule uses {}",
                    guid(aid),
                    guid(rule.filter_action)
                ),
            ));
        }
        if rules.insert(rule.id, rule).is_some() {
            return Err(malformed(
                &pe.dn,
                format!("rule {} is named twice", guid(rid)),
            ));
        }
    }
    let mut ordered = Vec::with_capacity(head.rules.len());
    for r in &head.rules {
        let rule = rules.remove(r).ok_or_else(|| {
            malformed(
                &pe.dn,
                format!("rule {} has no {ATTR_NFA_REF} entry", guid(*r)),
            )
        })?;
        ordered.push(rule);
    }
    if let Some(extra) = rules.keys().next() {
        return Err(malformed(
            &pe.dn,
            format!(
                "{ATTR_NFA_REF} names rule {}, which the policy's rule list lacks",
                guid(*extra)
            ),
        ));
    }
    // Filter lists and actions in order of first use by the ordered rules.
    let mut set = PolicySet::default();
    for r in &ordered {
        if let Some(i) = lists.iter().position(|l| l.id == r.filter_list) {
            set.filter_lists.push(lists.swap_remove(i));
        }
        if let Some(i) = actions.iter().position(|a| a.id == r.filter_action) {
            set.filter_actions.push(actions.swap_remove(i));
        }
    }
    set.policies.push(Policy {
        id: head.id,
        version: head.version,
        name: head.name,
        description: head.description,
        polling_interval_minutes: head.polling_interval_minutes,
        isakmp,
        rules: ordered,
        default_response: head.default_response,
    });
    Ok((set, head.id))
}

/// The set holding policy `id` of `set` and exactly the filter lists and actions its rules
/// use, in order of first use: what [`from_entries`] gives back for it.
pub fn policy_closure(set: &PolicySet, id: Uuid) -> Option<PolicySet> {
    let p = set.policy(id)?;
    let mut out = PolicySet::default();
    for r in &p.rules {
        if out.filter_list(r.filter_list).is_none() {
            out.filter_lists
                .push(set.filter_list(r.filter_list)?.clone());
        }
        if out.filter_action(r.filter_action).is_none() {
            out.filter_actions
                .push(set.filter_action(r.filter_action)?.clone());
        }
    }
    out.policies.push(p.clone());
    Some(out)
}

#[cfg(test)]
mod tests;
