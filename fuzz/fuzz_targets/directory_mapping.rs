//! Fuzz the LDAP mapping (directory entries → policy objects, `ipsec_directory::mapping`):
//! arbitrary entries must never panic the reader; whatever it accepts must write back with
//! `to_entries` and read back to the same set.
//!
//! The input is either (first byte even) entries as text, or (odd) the entries of a default
//! policy as text with a splice from the input applied, optionally with the policy entry's
//! component digests recomputed so that the checks behind them are reached. The text format
//! is LDIF-like: `dn: X` starts an entry, `attr: value` adds a value, a line starting with a
//! space continues the previous value after a newline (the multi-line `ipsecData`).

#![no_main]

use std::collections::HashMap;

use ipsec_directory::mapping::{
    component_class, digest, from_entries, parse_guid, redigest, to_entries, Entry,
};
use ipsec_directory::schema::ATTR_DATA;
use ipsec_directory::{dn, precedence, DirectoryError};
use libfuzzer_sys::fuzz_target;

const CONTAINER: &str = "ou=IP Security,dc=example,dc=org";

fn parse(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if let (Some(e), Some(a)) = (out.last_mut(), &last) {
                if let Some(v) = e.attrs.get_mut(a).and_then(|v| v.last_mut()) {
                    v.push('\n');
                    v.push_str(rest);
                }
            }
            continue;
        }
        let Some((k, v)) = line.split_once(": ") else {
            continue;
        };
        if k == "dn" {
            out.push(Entry::new(v));
            last = None;
        } else if let Some(e) = out.last_mut() {
            e.add(k, [v.to_owned()]);
            last = Some(k.to_owned());
        }
    }
    out
}

fn render(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&format!("dn: {}\n", e.dn));
        for (k, vs) in &e.attrs {
            for v in vs {
                s.push_str(&format!("{k}: {}\n", v.replace('\n', "\n ")));
            }
        }
        s.push('\n');
    }
    s
}

fn read(entries: &[Entry]) -> Result<(ipsec_policy::PolicySet, uuid::Uuid), DirectoryError> {
    let map: HashMap<String, Entry> = entries
        .iter()
        .map(|e| (dn::normalize(&e.dn), e.clone()))
        .collect();
    let pdn = entries.first().map(|e| e.dn.clone()).unwrap_or_default();
    from_entries(&pdn, &mut |d: &str| Ok(map.get(&dn::normalize(d)).cloned()))
}

/// Records the digest of every component entry in the policy entry (entry 0).
fn redigest_all(entries: &mut [Entry]) {
    let Some((head, components)) = entries.split_first_mut() else {
        return;
    };
    for e in components.iter() {
        let (Some(class), Some(id), Some(data)) = (
            component_class(e),
            e.values("ipsecID").first(),
            e.values(ATTR_DATA).first(),
        ) else {
            continue;
        };
        let Ok(id) = parse_guid(&e.dn, id) else {
            continue;
        };
        if let Ok(Some(new)) = redigest(head, id, &digest(class, data)) {
            head.attrs.insert(ATTR_DATA.to_owned(), vec![new]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let entries = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        parse(text)
    } else {
        let Some((&which, rest)) = rest.split_first() else {
            return;
        };
        let set = ipsec_policy::defaults::default_store();
        let Some(p) = set
            .policies
            .get(usize::from(which) % set.policies.len().max(1))
        else {
            return;
        };
        let Ok(base) = to_entries(&set, p.id, CONTAINER) else {
            return;
        };
        let mut text = render(&base).into_bytes();
        if let [a, b, cut, insert @ ..] = rest {
            let at = usize::from(u16::from_le_bytes([*a, *b])) % (text.len() + 1);
            let end = (at + usize::from(*cut)).min(text.len());
            text.splice(at..end, insert.iter().copied());
        }
        let Ok(text) = String::from_utf8(text) else {
            return;
        };
        let mut entries = parse(&text);
        if mode & 2 != 0 {
            redigest_all(&mut entries);
        }
        entries
    };
    if let Some(first) = entries.first() {
        let _ = precedence::ancestors(&first.dn, "dc=example,dc=org");
    }
    let Ok((set, id)) = read(&entries) else {
        return;
    };
    assert!(
        set.policy(id).is_some(),
        "the returned set holds the policy"
    );
    let _ = ipsec_policy::validate(&set);
    // What was accepted writes back (unless it cannot be published, e.g. redacted keys)
    // and reads back the same.
    if let Ok(again) = to_entries(&set, id, CONTAINER) {
        let (back, id2) = read(&again).expect("written entries read back");
        assert_eq!(id2, id);
        assert_eq!(back, set, "round trip");
    }
});
