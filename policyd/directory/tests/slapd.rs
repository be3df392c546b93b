//! The directory client against a real OpenLDAP slapd started here (tests/support/slapd.rs):
//! publish, assign, precedence and blocked inheritance, change detection of shared
//! components, malformed entries, bind failures.

mod support;

use ipsec_directory::mapping::{object_dn, policy_closure};
use ipsec_directory::schema::*;
use ipsec_directory::{Client, DirectoryConfig, DirectoryError, Resolution};
use ipsec_policy::PolicySet;
use support::slapd::{Slapd, BASE};
use uuid::Uuid;

fn client(s: &Slapd, host: &str) -> Client {
    let cfg = DirectoryConfig::parse("test", &s.config(host)).expect("config");
    Client::connect(&cfg).expect("connect and bind")
}

fn start() -> Slapd {
    assert!(
        support::slapd::available(),
        "/usr/sbin/slapd is missing: run tests/setup (Debian slapd + ldap-utils)"
    );
    Slapd::start()
}

/// The default store and two of its policies that share a filter list.
fn two_sharing() -> (PolicySet, Uuid, Uuid) {
    let set = ipsec_policy::defaults::default_store();
    for a in &set.policies {
        for b in &set.policies {
            if a.id != b.id
                && a.rules
                    .iter()
                    .any(|r| b.rules.iter().any(|s| s.filter_list == r.filter_list))
            {
                return (set.clone(), a.id, b.id);
            }
        }
    }
    panic!("the default store has no two policies sharing a filter list");
}

const SERVERS: &str = "ou=Servers,dc=example,dc=org";
const ISOLATED: &str = "ou=Isolated,dc=example,dc=org";

#[test]
fn publish_assign_to_an_ou_and_download() {
    let s = start();
    let (set, a, _) = two_sharing();
    let mut c = client(&s, "h1");
    let dn = c.publish(&set, a).expect("publish");
    assert_eq!(dn, object_dn(CLASS_POLICY, a, &c.config().container()));
    c.assign(SERVERS, Some(&dn)).expect("assign");

    // h1 is in ou=Web below ou=Servers: inherits.
    let (host, r) = c.assignment().expect("assignment");
    assert_eq!(host, "cn=h1,ou=Web,ou=Servers,dc=example,dc=org");
    assert_eq!(
        r,
        Resolution::Policy {
            policy: dn.clone(),
            container: SERVERS.into()
        }
    );
    let d = c.download(&dn).expect("download");
    assert_eq!(d.id, a);
    assert_eq!(Some(d.set), policy_closure(&set, a));
    // Republishing the same policy writes nothing: the fingerprint (entryCSN included)
    // stays, so no host re-downloads it.
    let before = c.fingerprint(&dn).expect("fingerprint");
    c.publish(&set, a).expect("republish");
    assert_eq!(c.fingerprint(&dn).expect("fingerprint"), before);
    assert_eq!(
        Some(c.download(&dn).expect("download").set),
        policy_closure(&set, a)
    );
    // h4 is at the domain level: no assignment.
    let mut c4 = client(&s, "h4");
    assert_eq!(c4.assignment().expect("h4").1, Resolution::Unassigned);
}

#[test]
fn precedence_and_blocked_inheritance() {
    let s = start();
    let (set, a, b) = two_sharing();
    let mut c = client(&s, "h1");
    let pa = c.publish(&set, a).expect("publish a");
    let pb = c.publish(&set, b).expect("publish b");
    c.assign(BASE, Some(&pa)).expect("domain");
    c.assign(SERVERS, Some(&pb)).expect("servers");
    c.block_inheritance(ISOLATED, true).expect("block");

    let policy_of = |host: &str| client(&s, host).assignment().expect("assignment").1;
    // Nearest OU wins over the domain, also two levels down; never merged.
    assert!(
        matches!(policy_of("h1"), Resolution::Policy { policy, container } if policy == pb && container == SERVERS)
    );
    assert!(matches!(policy_of("h2"), Resolution::Policy { policy, .. } if policy == pb));
    // The domain's policy at the domain level.
    assert!(
        matches!(policy_of("h4"), Resolution::Policy { policy, container } if policy == pa && container == BASE)
    );
    // Blocked: the domain's policy does not reach ou=Isolated.
    assert_eq!(
        policy_of("h3"),
        Resolution::Blocked {
            container: ISOLATED.into()
        }
    );
    // Its own assignment still applies.
    c.assign(ISOLATED, Some(&pa)).expect("isolated");
    assert!(
        matches!(policy_of("h3"), Resolution::Policy { container, .. } if container == ISOLATED)
    );
    // Unblocked and unassigned: inherits the domain's again.
    c.assign(ISOLATED, None).expect("unassign");
    c.block_inheritance(ISOLATED, false).expect("unblock");
    assert!(
        matches!(policy_of("h3"), Resolution::Policy { policy, container } if policy == pa && container == BASE)
    );
    // Assigning a policy that does not exist is refused.
    let e = c
        .assign(
            SERVERS,
            Some("cn=ipsecPolicy{nope},ou=IP Security,dc=example,dc=org"),
        )
        .expect_err("no such policy");
    assert!(e.to_string().contains("no such policy"), "{e}");
}

#[test]
fn shared_component_change_marks_every_owner_changed() {
    let s = start();
    let (mut set, a, b) = two_sharing();
    let mut c = client(&s, "h1");
    let pa = c.publish(&set, a).expect("publish a");
    let pb = c.publish(&set, b).expect("publish b");
    let (fa, fb) = (
        c.fingerprint(&pa).expect("fa"),
        c.fingerprint(&pb).expect("fb"),
    );
    assert_eq!(
        c.fingerprint(&pa).expect("fa again"),
        fa,
        "unchanged poll is stable"
    );

    // Change the shared filter list (new description, new version) and republish via a.
    let shared = set
        .policy(a)
        .and_then(|p| {
            p.rules.iter().find(|r| {
                set.policy(b)
                    .is_some_and(|q| q.rules.iter().any(|s| s.filter_list == r.filter_list))
            })
        })
        .map(|r| r.filter_list)
        .expect("shared list");
    let l = set
        .filter_lists
        .iter_mut()
        .find(|l| l.id == shared)
        .expect("list");
    l.description = "changed in the directory".into();
    l.version += 1;
    c.publish(&set, a).expect("republish a");
    assert_ne!(c.fingerprint(&pa).expect("fa2"), fa);
    assert_ne!(
        c.fingerprint(&pb).expect("fb2"),
        fb,
        "b owns the shared list too"
    );
    let d = c.download(&pb).expect("download b");
    assert_eq!(
        d.set.filter_list(shared).map(|l| l.description.as_str()),
        Some("changed in the directory")
    );
}

#[test]
fn malformed_entries_are_rejected_with_the_entry_named() {
    let s = start();
    let (set, a, _) = two_sharing();
    let mut c = client(&s, "h1");
    let pa = c.publish(&set, a).expect("publish");
    let rule = set.policy(a).and_then(|p| p.rules.first()).expect("a rule");
    let nfa = object_dn(CLASS_NFA, rule.id, &c.config().container());
    s.ldapmodify(&format!(
        "dn: {nfa}\nchangetype: modify\nreplace: ipsecData\nipsecData: this is = not [toml\n"
    ));
    let e = c.download(&pa).expect_err("malformed");
    assert!(matches!(e, DirectoryError::Malformed { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&nfa) && msg.contains("ipsecData"), "{msg}");

    // A version that disagrees with the data.
    c.publish(&set, a).expect("repair");
    c.download(&pa).expect("repaired");
    s.ldapmodify(&format!(
        "dn: {pa}\nchangetype: modify\nreplace: ipsecVersion\nipsecVersion: 424242\n"
    ));
    let msg = c.download(&pa).expect_err("version").to_string();
    assert!(
        msg.contains("ipsecVersion 424242 but ipsecData has version"),
        "{msg}"
    );
}

#[test]
fn bind_failures_are_reported_without_the_password() {
    let s = start();
    let text = s.config("h1").replace("cn=admin,", "cn=nobody,");
    let cfg = DirectoryConfig::parse("t", &text).expect("config");
    let e = Client::connect(&cfg).expect_err("bad bind").to_string();
    assert!(e.contains("bind as") && !e.contains("secret"), "{e}");

    // Nothing listening: unreachable.
    let text = s
        .config("h1")
        .replace(&s.port.to_string(), &(s.port ^ 1).to_string());
    let cfg = DirectoryConfig::parse("t", &text).expect("config");
    assert!(matches!(
        Client::connect(&cfg),
        Err(DirectoryError::Unreachable { .. })
    ));
}

#[test]
fn starttls_and_ldaps_with_a_configured_ca() {
    assert!(
        support::slapd::available(),
        "slapd missing: run tests/setup"
    );
    let s = Slapd::start_tls();
    let ca = format!("ca-file = \"{}\"\n", s.ca_file().display());
    // StartTLS on the ldap:// port.
    let text = format!("{}starttls = true\n{ca}", s.config("h1"));
    let mut c = Client::connect(&DirectoryConfig::parse("t", &text).expect("config"))
        .expect("StartTLS with the test CA");
    assert!(c.assignment().is_ok());
    // LDAPS.
    let port = s.ldaps_port.expect("ldaps port");
    let text = format!("{}{ca}", s.config("h1")).replace(
        &format!("ldap://127.0.0.1:{}", s.port),
        &format!("ldaps://127.0.0.1:{port}"),
    );
    let mut c = Client::connect(&DirectoryConfig::parse("t", &text).expect("config"))
        .expect("LDAPS with the test CA");
    assert!(c.assignment().is_ok());
    // Without the CA the certificate is refused.
    let text = format!("{}starttls = true\n", s.config("h1"));
    let e = Client::connect(&DirectoryConfig::parse("t", &text).expect("config"))
        .expect_err("untrusted certificate");
    assert!(matches!(e, DirectoryError::Unreachable { .. }), "{e}");
}

#[test]
fn gssapi_bind_fails_cleanly_without_kerberos() {
    let s = start();
    let text = s
        .config("h1")
        .replace("bind = \"simple\"", "bind = \"gssapi\"");
    let e = Client::connect(&DirectoryConfig::parse("t", &text).expect("config"))
        .expect_err("no Kerberos here")
        .to_string();
    if cfg!(feature = "gssapi") {
        // Built in: the bind is attempted and fails (no KDC, no keytab, no SASL GSSAPI
        // set up in this slapd). tests/gssapi.rs has the real bind, with its own KDC.
        assert!(e.contains("SASL GSSAPI bind"), "{e}");
    } else {
        assert!(e.contains("not built into this binary"), "{e}");
    }
}

#[test]
fn a_policy_without_rules_is_published_and_downloaded() {
    let s = start();
    let mut set = ipsec_policy::defaults::default_store();
    let mut p = set.policies[0].clone();
    p.id = Uuid::new_v4();
    p.name = "No rules".into();
    p.rules.clear();
    set.policies.push(p.clone());
    let mut c = client(&s, "h1");
    // The add of a rule-less policy used to send an empty ipsecNFAReference.
    let dn = c.publish(&set, p.id).expect("publish");
    let d = c.download(&dn).expect("download");
    assert_eq!(d.id, p.id);
    assert!(d.set.policy(p.id).expect("policy").rules.is_empty());
}

/// The default store with every component of policy `a` (and the list it shares with `b`)
/// at version `k` and described as such: successive `k` differ in every entry of `a`.
fn variant(base: &PolicySet, a: Uuid, k: u64) -> PolicySet {
    let mut set = base.clone();
    let text = format!("variant {k}");
    let p = set
        .policies
        .iter_mut()
        .find(|p| p.id == a)
        .expect("policy a");
    p.version = 1000 + k;
    p.description = text.clone();
    p.isakmp.version = 1000 + k;
    let (mut lists, mut actions) = (Vec::new(), Vec::new());
    for r in &mut p.rules {
        r.version = 1000 + k;
        r.description = text.clone();
        lists.push(r.filter_list);
        actions.push(r.filter_action);
    }
    for l in set
        .filter_lists
        .iter_mut()
        .filter(|l| lists.contains(&l.id))
    {
        l.version = 1000 + k;
        l.description = text.clone();
    }
    for x in set
        .filter_actions
        .iter_mut()
        .filter(|x| actions.contains(&x.id))
    {
        x.version = 1000 + k;
        x.description = text.clone();
    }
    set
}

#[test]
fn publishing_is_atomic_for_a_polling_reader() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let s = start();
    let (base, a, b) = two_sharing();
    const ROUNDS: u64 = 40;
    let variants: Vec<PolicySet> = (0..=ROUNDS).map(|k| variant(&base, a, k)).collect();
    let mut c = client(&s, "h1");
    let pa = c.publish(&variants[0], a).expect("publish a");
    let pb = c.publish(&variants[0], b).expect("publish b");
    // The complete states each reader may see: a as published, and b (which shares a
    // filter list with a) with that list of any variant.
    let whole_a: Vec<PolicySet> = variants
        .iter()
        .map(|v| policy_closure(v, a).expect("closure a"))
        .collect();
    let whole_b: Vec<PolicySet> = variants
        .iter()
        .map(|v| policy_closure(v, b).expect("closure b"))
        .collect();

    let done = Arc::new(AtomicBool::new(false));
    // Once: `config` rewrites the password file, which a reader already started may be
    // reading.
    let config_text = s.config("h1");
    let readers: Vec<_> = [(pa.clone(), whole_a), (pb.clone(), whole_b)]
        .into_iter()
        .map(|(dn, whole)| {
            let done = done.clone();
            let cfg = DirectoryConfig::parse("test", &config_text).expect("config");
            std::thread::spawn(move || {
                let mut r = Client::connect(&cfg).expect("reader connect");
                let (mut good, mut inconsistent, mut seen) = (0u32, 0u32, Vec::new());
                while !done.load(Ordering::SeqCst) {
                    match r.download(&dn) {
                        Ok(d) => {
                            let k = whole
                                .iter()
                                .position(|w| *w == d.set)
                                .unwrap_or_else(|| panic!("{dn}: a mixed policy was read"));
                            good += 1;
                            if seen.last() != Some(&k) {
                                seen.push(k);
                            }
                        }
                        Err(DirectoryError::Inconsistent { .. }) => inconsistent += 1,
                        Err(e) => panic!("{dn}: {e}"),
                    }
                }
                (good, inconsistent, seen)
            })
        })
        .collect();
    for v in &variants[1..] {
        c.publish(v, a).expect("publish a variant");
    }
    // Let the readers see the last variant.
    std::thread::sleep(std::time::Duration::from_millis(300));
    done.store(true, Ordering::SeqCst);
    for (i, h) in readers.into_iter().enumerate() {
        let (good, inconsistent, seen) = h.join().expect("reader");
        eprintln!(
            "reader {i}: {good} complete reads, {inconsistent} rejected as in progress, versions seen {seen:?}"
        );
        assert!(good > 0);
        // Versions only move forward, and the last one is the final publish.
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&(ROUNDS as usize)));
        assert!(seen.len() > 1, "the reader saw no publish happen: {seen:?}");
    }
    // Without a publish in progress the final state reads whole.
    assert_eq!(
        Some(c.download(&pb).expect("b").set),
        policy_closure(&variants[ROUNDS as usize], b)
    );
}

#[test]
fn a_component_changed_without_its_policy_is_inconsistent_and_a_dangling_reference_malformed() {
    let s = start();
    let (set, a, _) = two_sharing();
    let mut c = client(&s, "h1");
    let pa = c.publish(&set, a).expect("publish");
    let rule = set.policy(a).and_then(|p| p.rules.first()).expect("a rule");
    let nfa = object_dn(CLASS_NFA, rule.id, &c.config().container());
    // A well-formed rule that is not the one the head was published with (what a reader
    // sees between the writes of a publish).
    let mut changed = set.clone();
    let mut r = rule.clone();
    r.description = "edited by hand".into();
    changed
        .policies
        .iter_mut()
        .find(|p| p.id == a)
        .expect("a")
        .rules[0] = r;
    let entries = ipsec_directory::mapping::to_entries(&changed, a, &c.config().container())
        .expect("entries");
    let data = entries
        .iter()
        .find(|e| e.dn == nfa)
        .and_then(|e| e.values(ATTR_DATA).first().cloned())
        .expect("rule data");
    s.ldapmodify(&format!(
        "dn: {nfa}\nchangetype: modify\nreplace: ipsecData\nipsecData:: {}\n",
        base64(&data)
    ));
    let e = c.download(&pa).expect_err("inconsistent");
    assert!(matches!(e, DirectoryError::Inconsistent { .. }), "{e:?}");
    assert!(e.to_string().contains(&nfa), "{e}");
    // Republishing the policy makes it whole again.
    c.publish(&set, a).expect("republish");
    c.download(&pa).expect("whole again");
    // A dangling reference (an entry deleted under a reader): malformed, never a partial
    // policy.
    s.ldapmodify(&format!("dn: {nfa}\nchangetype: delete\n"));
    let e = c.download(&pa).expect_err("dangling");
    assert!(
        matches!(&e, DirectoryError::Malformed { reason, .. } if reason.contains("does not exist")),
        "{e:?}"
    );
}

/// Standard base64 (LDIF `attr:: value` for values with newlines).
fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for ch in b.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
            | u32::from(*ch.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(char::from(T[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
