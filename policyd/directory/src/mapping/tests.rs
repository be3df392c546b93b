use std::collections::HashMap;

use super::*;
use crate::dn;

const C: &str = "ou=IP Security,dc=example,dc=org";

fn fetch_from(entries: &[Entry]) -> impl FnMut(&str) -> Result<Option<Entry>> + '_ {
    let map: HashMap<String, Entry> = entries
        .iter()
        .map(|e| (dn::normalize(&e.dn), e.clone()))
        .collect();
    move |d: &str| Ok(map.get(&dn::normalize(d)).cloned())
}

fn sample() -> (PolicySet, Uuid) {
    let set = ipsec_policy::defaults::default_store();
    let id = set
        .policies
        .iter()
        .max_by_key(|p| p.rules.len())
        .map(|p| p.id)
        .expect("a default policy");
    (set, id)
}

#[test]
fn every_default_policy_round_trips_exactly() {
    let set = ipsec_policy::defaults::default_store();
    assert!(!set.policies.is_empty());
    for p in &set.policies {
        let entries = to_entries(&set, p.id, C).expect("maps");
        assert_eq!(entries[0].dn, object_dn(CLASS_POLICY, p.id, C));
        let (back, id) = from_entries(&entries[0].dn, &mut fetch_from(&entries)).expect("reads");
        assert_eq!(id, p.id);
        assert_eq!(Some(back), policy_closure(&set, p.id), "policy {}", p.name);
    }
}

#[test]
fn shared_components_are_stored_once_and_owned() {
    let (set, id) = sample();
    let entries = to_entries(&set, id, C).expect("maps");
    let p = set.policy(id).expect("policy");
    let lists: Vec<_> = entries
        .iter()
        .filter(|e| e.has_class(CLASS_FILTER))
        .collect();
    let mut distinct: Vec<Uuid> = p.rules.iter().map(|r| r.filter_list).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(lists.len(), distinct.len());
    for e in entries.iter().skip(1) {
        assert_eq!(e.values(ATTR_OWNERS), [entries[0].dn.clone()]);
    }
}

fn tamper(f: impl FnOnce(&mut Vec<Entry>)) -> String {
    let (set, id) = sample();
    let mut entries = to_entries(&set, id, C).expect("maps");
    let pdn = entries[0].dn.clone();
    f(&mut entries);
    let mut fetch = fetch_from(&entries);
    let r = from_entries(&pdn, &mut fetch);
    r.expect_err("malformed").to_string()
}

type Tamper = Box<dyn FnOnce(&mut Vec<Entry>)>;

fn set_attr(e: &mut Entry, a: &str, v: &str) {
    e.attrs.insert(a.to_owned(), vec![v.to_owned()]);
}

#[test]
fn malformed_entries_give_clear_errors() {
    let cases: Vec<(Tamper, &str)> = vec![
        (
            Box::new(|es| set_attr(&mut es[0], ATTR_DATA, "not = [toml")),
            "malformed directory entry \"cn=ipsecPolicy{",
        ),
        (
            Box::new(|es| set_attr(&mut es[0], ATTR_VERSION, "many")),
            "ipsecVersion \"many\" is not a number",
        ),
        (
            Box::new(|es| set_attr(&mut es[0], ATTR_VERSION, "999")),
            "ipsecVersion 999 but ipsecData has version",
        ),
        (
            Box::new(|es| set_attr(&mut es[0], ATTR_ID, "nope")),
            "ipsecID \"nope\" is not a {GUID}",
        ),
        (
            Box::new(|es| set_attr(&mut es[0], ATTR_DATA_TYPE, "2")),
            "ipsecDataType \"2\" is not supported",
        ),
        (
            Box::new(|es| {
                es[0].attrs.remove(ATTR_ISAKMP_REF);
            }),
            "attribute ipsecISAKMPReference is missing",
        ),
        (
            Box::new(|es| {
                es.retain(|e| !e.has_class(CLASS_FILTER));
            }),
            "which does not exist",
        ),
        (
            Box::new(|es| {
                let i = es.iter().position(|e| e.has_class(CLASS_NFA)).expect("nfa");
                es[i].attrs.insert("objectClass".into(), vec!["top".into()]);
            }),
            "not an ipsecNFA object",
        ),
        (
            Box::new(|es| {
                let i = es.iter().position(|e| e.has_class(CLASS_NFA)).expect("nfa");
                let d = es[i].dn.clone();
                es[0].attrs.insert(ATTR_NFA_REF.into(), vec![d.clone(), d]);
            }),
            "is named twice",
        ),
        (
            Box::new(|es| {
                es[0].attrs.insert(ATTR_NFA_REF.into(), vec![]);
            }),
            "has no ipsecNFAReference entry",
        ),
        (
            Box::new(|es| {
                let i = es.iter().position(|e| e.has_class(CLASS_NFA)).expect("nfa");
                let a = es
                    .iter()
                    .find(|e| e.has_class(CLASS_NEGPOL))
                    .map(|e| e.dn.clone())
                    .expect("negpol");
                set_attr(&mut es[i], ATTR_FILTER_REF, &a);
            }),
            "not an ipsecFilter object",
        ),
    ];
    for (f, needle) in cases {
        let e = tamper(f);
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    let e = from_entries("cn=nothing,dc=example", &mut |_| Ok(None))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("the assigned policy does not exist"), "{e}");
}

#[test]
fn redacted_keys_are_not_published() {
    let (set, id) = sample();
    let mut set = set.redacted();
    // Make sure the policy has a preshared key to redact.
    let p = set
        .policies
        .iter_mut()
        .find(|p| p.id == id)
        .expect("policy");
    p.default_response.auth_methods = vec![AuthMethod::PresharedKey {
        key: PresharedKey::Redacted,
    }];
    let e = to_entries(&set, id, C).expect_err("redacted").to_string();
    assert!(e.contains("redacted preshared key"), "{e}");
}

#[test]
fn schema_files_hold_the_same_definitions() {
    let defs = |text: &str, prefixes: &[&str]| -> Vec<String> {
        text.lines()
            .filter_map(|l| prefixes.iter().find_map(|p| l.strip_prefix(p)))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let s = defs(SCHEMA, &["attributetype ", "objectclass "]);
    let l = defs(SCHEMA_LDIF, &["olcAttributeTypes: ", "olcObjectClasses: "]);
    assert_eq!(s, l);
    for &name in ALL_NAMES {
        assert!(
            s.iter().any(|d| d.contains(&format!("NAME '{name}'"))),
            "{name} not in the schema"
        );
    }
}
