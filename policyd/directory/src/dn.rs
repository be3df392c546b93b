//! Distinguished names as far as this crate needs them: splitting into RDNs (honouring
//! backslash escapes), the parent, case-insensitive comparison, filter value escaping.
//! Not a full RFC 4514 parser: multi-valued RDNs and hex-encoded values are kept verbatim.

/// The RDNs of `dn`, trimmed, outermost last. Escaped commas stay inside their RDN.
pub fn rdns(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(cur.trim().to_owned());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// `dn` in a canonical form for comparison: RDNs trimmed, spaces around `=` removed,
/// lowercased.
pub fn normalize(dn: &str) -> String {
    rdns(dn)
        .iter()
        .map(|r| match r.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => r.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Whether two DNs name the same entry (case-insensitive, whitespace-tolerant).
pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// The parent of `dn`, or `None` for a single RDN or the empty DN.
pub fn parent(dn: &str) -> Option<String> {
    let r = rdns(dn);
    (r.len() > 1).then(|| r[1..].join(","))
}

/// Whether `dn` is `base` or below it.
pub fn is_within(dn: &str, base: &str) -> bool {
    let (d, b) = (rdns(&normalize(dn)), rdns(&normalize(base)));
    d.len() >= b.len() && d[d.len() - b.len()..] == b[..]
}

/// Escapes a value for an LDAP search filter (RFC 4515).
pub fn escape_filter(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => s.push_str("\\2a"),
            '(' => s.push_str("\\28"),
            ')' => s.push_str("\\29"),
            '\\' => s.push_str("\\5c"),
            '\0' => s.push_str("\\00"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_compares() {
        assert_eq!(
            rdns("cn=a\\,b, ou=X,dc=example"),
            vec!["cn=a\\,b", "ou=X", "dc=example"]
        );
        assert_eq!(parent("cn=h,ou=A,dc=ex").as_deref(), Some("ou=A,dc=ex"));
        assert_eq!(parent("dc=ex"), None);
        assert!(same("OU=A, DC=Ex", "ou=a,dc=ex"));
        assert!(is_within("cn=h,ou=A,dc=ex", "DC=ex"));
        assert!(is_within("dc=ex", "dc=ex"));
        assert!(!is_within("dc=ex", "ou=A,dc=ex"));
        assert!(!is_within("cn=h,dc=other", "dc=ex"));
        assert_eq!(escape_filter("a*(b)\\"), "a\\2a\\28b\\29\\5c");
    }
}
