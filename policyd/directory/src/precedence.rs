//! Which directory policy applies to a host (seed: policies assigned to Group Policy
//! objects linked to domains and organizational units).
//!
//! The host's entry sits in a tree of containers below the domain (the configured base).
//! Walking from the host's own container up to the domain, the first container with an
//! `ipsecAssignedPolicy` wins; a container with `ipsecBlockInheritance` TRUE and no
//! assignment of its own ends the walk with no policy (its parents do not apply). Policies
//! are never merged: exactly one or none applies. Pure functions; the client reads the
//! containers.

use crate::dn;

/// One container on the way from the host to the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Its DN.
    pub dn: String,
    /// The DN of the policy assigned to it.
    pub assigned: Option<String>,
    /// Whether it blocks the assignments of its parents.
    pub block_inheritance: bool,
}

/// The outcome of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// This policy applies; assigned at `container`.
    Policy {
        /// The policy's DN.
        policy: String,
        /// The container holding the assignment.
        container: String,
    },
    /// No assignment on the way to the domain.
    Unassigned,
    /// `container` blocks inheritance and has no assignment of its own.
    Blocked {
        /// The blocking container.
        container: String,
    },
}

/// The containers whose assignments matter for the host at `host_dn`, nearest first: its
/// parent, grandparent, ... up to and including `base`. Empty when the host is not below
/// `base`.
pub fn ancestors(host_dn: &str, base: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !dn::is_within(host_dn, base) || dn::same(host_dn, base) {
        return out;
    }
    let mut cur = dn::parent(host_dn);
    while let Some(c) = cur {
        let stop = dn::same(&c, base);
        cur = dn::parent(&c);
        out.push(c);
        if stop {
            break;
        }
    }
    out
}

/// Applies the precedence rule to `chain` (nearest container first).
pub fn resolve(chain: &[Container]) -> Resolution {
    for c in chain {
        if let Some(p) = &c.assigned {
            return Resolution::Policy {
                policy: p.clone(),
                container: c.dn.clone(),
            };
        }
        if c.block_inheritance {
            return Resolution::Blocked {
                container: c.dn.clone(),
            };
        }
    }
    Resolution::Unassigned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dn: &str, assigned: Option<&str>, block: bool) -> Container {
        Container {
            dn: dn.into(),
            assigned: assigned.map(Into::into),
            block_inheritance: block,
        }
    }

    #[test]
    fn ancestors_stop_at_the_domain() {
        assert_eq!(
            ancestors(
                "cn=h1,ou=Web,ou=Servers,dc=example,dc=org",
                "dc=example,dc=org"
            ),
            vec![
                "ou=Web,ou=Servers,dc=example,dc=org",
                "ou=Servers,dc=example,dc=org",
                "dc=example,dc=org"
            ]
        );
        assert!(ancestors("cn=h1,dc=other", "dc=example,dc=org").is_empty());
        assert!(ancestors("dc=example,dc=org", "dc=example,dc=org").is_empty());
    }

    #[test]
    fn nearest_assignment_wins() {
        let chain = [
            c("ou=Web", None, false),
            c("ou=Servers", Some("cn=P2"), false),
            c("dc=ex", Some("cn=P1"), false),
        ];
        assert_eq!(
            resolve(&chain),
            Resolution::Policy {
                policy: "cn=P2".into(),
                container: "ou=Servers".into()
            }
        );
    }

    #[test]
    fn domain_applies_without_ou_assignment() {
        let chain = [c("ou=Web", None, false), c("dc=ex", Some("cn=P1"), false)];
        assert!(matches!(resolve(&chain), Resolution::Policy { policy, .. } if policy == "cn=P1"));
        assert_eq!(resolve(&[c("dc=ex", None, false)]), Resolution::Unassigned);
        assert_eq!(resolve(&[]), Resolution::Unassigned);
    }

    #[test]
    fn blocked_inheritance_hides_parents_but_not_own_assignment() {
        let chain = [
            c("ou=Web", None, false),
            c("ou=Servers", None, true),
            c("dc=ex", Some("cn=P1"), false),
        ];
        assert_eq!(
            resolve(&chain),
            Resolution::Blocked {
                container: "ou=Servers".into()
            }
        );
        let chain = [
            c("ou=Servers", Some("cn=P3"), true),
            c("dc=ex", Some("cn=P1"), false),
        ];
        assert!(matches!(resolve(&chain), Resolution::Policy { policy, .. } if policy == "cn=P3"));
        // A blocking child with an assignment below a blocking parent.
        let chain = [
            c("ou=Web", Some("cn=P4"), true),
            c("ou=Servers", None, true),
        ];
        assert!(matches!(resolve(&chain), Resolution::Policy { policy, .. } if policy == "cn=P4"));
    }
}
