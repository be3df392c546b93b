//! Change versions: when the store writes a changed set, every object whose content changed
//! gets a higher version than it had, and so does every policy that uses a changed filter
//! list or filter action (the seed: the store "is aware of shared policy-setting
//! dependencies ... all policies using shared settings are marked as changed").
//!
//! A version the caller already raised is kept. New objects keep theirs. No I/O.

use std::collections::HashSet;

use uuid::Uuid;

use crate::model::*;

fn next(old: u64, new: &mut u64) {
    if *new <= old {
        *new = old.saturating_add(1);
    }
}

fn list_unversioned(l: &FilterList) -> FilterList {
    let mut l = l.clone();
    l.version = 0;
    for f in &mut l.filters {
        f.version = 0;
    }
    l
}

fn policy_unversioned(p: &Policy) -> Policy {
    let mut p = p.clone();
    p.version = 0;
    p.isakmp.version = 0;
    p.default_response.version = 0;
    for r in &mut p.rules {
        r.version = 0;
    }
    p
}

/// Raises the versions of what changed from `old` to `new` (module docs).
pub(crate) fn bump(old: &PolicySet, new: &mut PolicySet) {
    let mut changed_shared: HashSet<Uuid> = HashSet::new();
    for l in &mut new.filter_lists {
        let Some(o) = old.filter_list(l.id) else {
            continue;
        };
        if list_unversioned(o) != list_unversioned(l) {
            changed_shared.insert(l.id);
            next(o.version, &mut l.version);
            for f in &mut l.filters {
                if let Some(of) = o.filters.iter().find(|x| x.id == f.id) {
                    let mut a = of.clone();
                    a.version = f.version;
                    if a != *f {
                        next(of.version, &mut f.version);
                    }
                }
            }
        }
    }
    for a in &mut new.filter_actions {
        let Some(o) = old.filter_action(a.id) else {
            continue;
        };
        let mut cmp = o.clone();
        cmp.version = a.version;
        if cmp != *a {
            changed_shared.insert(a.id);
            next(o.version, &mut a.version);
        }
    }
    for p in &mut new.policies {
        let Some(o) = old.policy(p.id) else {
            continue;
        };
        let own_change = policy_unversioned(o) != policy_unversioned(p);
        let uses_changed = p.rules.iter().any(|r| {
            changed_shared.contains(&r.filter_list) || changed_shared.contains(&r.filter_action)
        });
        if !own_change && !uses_changed {
            continue;
        }
        next(o.version, &mut p.version);
        if o.isakmp
            != (IsakmpPolicy {
                version: o.isakmp.version,
                ..p.isakmp.clone()
            })
        {
            next(o.isakmp.version, &mut p.isakmp.version);
        }
        let dr_old = DefaultResponseRule {
            version: p.default_response.version,
            ..o.default_response.clone()
        };
        if dr_old != p.default_response {
            next(o.default_response.version, &mut p.default_response.version);
        }
        for r in &mut p.rules {
            let Some(or) = o.rules.iter().find(|x| x.id == r.id) else {
                continue;
            };
            let refs_changed = changed_shared.contains(&r.filter_list)
                || changed_shared.contains(&r.filter_action);
            if refs_changed
                || (Rule {
                    version: r.version,
                    ..or.clone()
                }) != *r
            {
                next(or.version, &mut r.version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{self, default_store};

    #[test]
    fn changing_a_shared_filter_list_marks_every_policy_using_it() {
        let old = default_store();
        let mut new = old.clone();
        let list = new
            .filter_lists
            .iter_mut()
            .find(|l| l.name == "All IP Traffic")
            .unwrap();
        list.filters[0].description = "changed".into();
        bump(&old, &mut new);
        let v = |s: &PolicySet, name: &str| s.policy_by_name(name).map(|p| p.version);
        assert_eq!(v(&new, defaults::SERVER), Some(2));
        assert_eq!(v(&new, defaults::SECURE_SERVER), Some(2));
        assert_eq!(v(&new, defaults::CLIENT), Some(1));
        assert_eq!(new.filter_lists[0].version, 2);
        assert_eq!(new.filter_lists[0].filters[0].version, 2);
        assert_eq!(new.filter_lists[1].version, 1);
    }

    #[test]
    fn unchanged_sets_keep_their_versions() {
        let old = default_store();
        let mut new = old.clone();
        bump(&old, &mut new);
        assert_eq!(new, old);
    }
}
