//! Applying a [`DesiredState`] to the kernel: a diff against the owned policies installed,
//! in an order that never lets protected or blocked traffic pass in clear, rolled back
//! whole on failure.
//!
//! [`plan`] compares the desired policies with the policies the kernel holds that
//! [`Ownership::owns_policy`] says are ours (foreign policies are never read further,
//! changed or deleted) and returns the [`Change`]s in a safe order. [`apply()`] performs
//! them, recording each; on the first kernel error it undoes the recorded changes in
//! reverse order (restoring the previous policy objects, kernel index included) and returns
//! [`Error::ApplyFailed`]: the kernel is as before. Applying the same desired state twice
//! makes no change (and no kernel call beyond the dump) the second time.
//!
//! # The order, and why there is no clear-text window
//!
//! Call a kernel policy **tight** if no packet it wins passes in clear: `block`, or
//! `protect` with every template `required`. Call it **loose** otherwise: `allow`, or
//! `protect` with a `use` (optional) template (inbound pass-through). For a packet the
//! kernel applies the matching policy with the lowest priority number. The plan is:
//!
//! 0. delete every installed loose policy that the desired state does not hold
//!    identically (stale, or changed in any way);
//! 1. add or update every desired tight policy not installed identically, **in ascending
//!    priority order** (updates replace the object with the same selector in place);
//! 2. delete every installed tight policy whose identity the desired state does not hold;
//! 3. add every desired loose policy not installed identically, or update in place the
//!    installed tight policy with its identity.
//!
//! Fall-back-to-clear policies that the desired state still allows
//! ([`DesiredState::is_soft_clear`]) are kept throughout, as if desired.
//!
//! **Claim.** Let *P* be a packet that both the old and the new state give to a tight
//! policy (old winner *O*, new winner *N*; a packet only one of them secures or blocks was
//! in clear before or is in clear after the change anyway, so it may be in clear during it;
//! a packet whose winner is foreign is unaffected since foreign priorities lie outside the
//! owned band). Then every intermediate state gives *P* to a tight policy. We show that in
//! every intermediate state some tight policy matching *P* beats every loose policy matching
//! *P*. (Validation refuses overlapping filters of equal weight with different effects, so
//! equal priorities between a matching tight and loose policy do not occur.)
//!
//! - *During step 0* only loose policies disappear; every loose policy present was present
//!   in the old state, where *O* beat it, and *O* is still present.
//! - *During step 1* the loose policies present are exactly those identical in old and new
//!   (call one *a*): *O* beats *a* (old state) and *N* beats *a* (new state). If *O* is
//!   still present, done. Otherwise *O* was updated to its new version *O′*, which still
//!   matches *P* (same selector) and is tight. If *O′* beats *a*, done; otherwise
//!   prio(*N*) < prio(*a*) < prio(*O′*), and since step 1 runs in ascending priority, *N*
//!   was installed before *O′*, so *N* is present and beats *a*.
//! - *During step 2* every desired tight policy is installed, *N* among them, and the loose
//!   policies present are still those of the new state, all beaten by *N*.
//! - *During step 3* the tight policies present are the new ones plus old tight ones about
//!   to become loose (extra tight policies never let a packet through in clear); the loose
//!   ones present all belong to the new state, so *N* beats them.
//!
//! Per transition of one identity (selector, direction) this gives:
//!
//! | old → new | steps | why no clear window |
//! |---|---|---|
//! | none → allow | add (3) | *P* secured before and after is won by a new tight policy by then |
//! | none → block/protect | add (1) | tightens only |
//! | allow → none | delete (0) | removing a loose policy only exposes what it hid |
//! | allow → allow′ | delete (0), add (3) | as above; meanwhile the traffic is handled by lower policies (fail-closed at worst) |
//! | allow → block/protect | delete (0), add (1) | as above, then tightens |
//! | block/protect → none | delete (2) | after all new tight policies are in |
//! | block/protect → allow | update in place (3) | the selector stays covered until every other new policy is in; *N* wins any packet that stays secured |
//! | block/protect → block/protect′ | update in place (1), ascending priority | atomic replacement, the proof's step-1 case |
//! | protect(use) (inbound pass) | treated as allow | it accepts clear packets |
//!
//! **Rollback** undoes the recorded changes in reverse order, so it passes through the same
//! states as the forward run, backwards: the same argument holds for it.
//!
//! Not done here: SAs (ikd's), boot modes, and locking against concurrent appliers (the
//! agent applies from one thread).

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use std::fmt;

use pfkey::{
    Direction, KernelInterface, Mark, Ownership, Policy, PolicyAction, PolicyId, Selector,
    TemplateLevel,
};

use crate::compile::{selector_contains, DesiredState};
use crate::Error;

/// One kernel request of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add a policy that is not installed.
    Add(Policy),
    /// Replace an installed policy with the same identity.
    Update {
        /// The installed policy (restored on rollback).
        old: Box<Policy>,
        /// The desired policy.
        new: Box<Policy>,
    },
    /// Delete an installed policy (re-added on rollback).
    Delete(Policy),
}

fn describe(p: &Policy) -> String {
    let s = &p.id.selector;
    let action = match &p.action {
        PolicyAction::Allow => "allow".to_owned(),
        PolicyAction::Block => "block".to_owned(),
        PolicyAction::Protect(t) => format!("protect({} templates)", t.len()),
    };
    format!(
        "dir {:?} {} -> {} {:?} priority {} {action}",
        p.id.direction, s.source, s.destination, s.upper, p.priority
    )
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add(p) => write!(f, "add {}", describe(p)),
            Self::Update { new, .. } => write!(f, "update {}", describe(new)),
            Self::Delete(p) => write!(f, "delete {}", describe(p)),
        }
    }
}

/// What [`apply()`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Policies added.
    pub added: usize,
    /// Policies replaced in place.
    pub updated: usize,
    /// Policies deleted.
    pub deleted: usize,
}

impl ApplyReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether no packet a policy wins passes in clear (module docs).
pub fn is_tight(action: &PolicyAction) -> bool {
    match action {
        PolicyAction::Allow => false,
        PolicyAction::Block => true,
        PolicyAction::Protect(ts) => ts.iter().all(|t| t.level == TemplateLevel::Require),
    }
}

/// Whether an installed policy is the desired one (the kernel index is the kernel's).
fn same(installed: &Policy, desired: &Policy) -> bool {
    installed.id == desired.id
        && installed.action == desired.action
        && installed.priority == desired.priority
        && installed.lifetime == desired.lifetime
}

/// The changes that turn the `installed` SPD into the desired one, in the safe order of the
/// module docs. Refuses (nothing to do, nothing done) a desired policy that is not owned or
/// whose identity a foreign policy holds.
pub fn plan(
    installed: &[Policy],
    desired: &DesiredState,
    ownership: &Ownership,
) -> Result<Vec<Change>, Error> {
    // Identities are looked up by hash; only the changes (few, usually) are ordered by
    // [`key`], which formats the identity, so the plan is the same as ordering everything.
    let mut current: FxMap<&PolicyId, &Policy> = FxMap::default();
    for p in installed {
        if ownership.owns_policy(p) {
            current.insert(&p.id, p);
        }
    }
    // Foreign policies by identity (the first installed one of each), so that checking
    // every desired policy against them is not a scan of the whole SPD per policy.
    let mut foreign_ids: FxMap<&PolicyId, &Policy> = FxMap::default();
    for p in installed {
        if !ownership.owns_policy(p) {
            foreign_ids.entry(&p.id).or_insert(p);
        }
    }
    let mut wanted: FxMap<&PolicyId, &Policy> = FxMap::default();
    for d in desired.policies() {
        if !ownership.owns_policy(d) {
            return Err(Error::PriorityNotOwned {
                priority: d.priority,
            });
        }
        if let Some(foreign) = foreign_ids.get(&d.id) {
            return Err(Error::ForeignConflict {
                id: Box::new(d.id),
                foreign_priority: foreign.priority,
            });
        }
        wanted.insert(&d.id, d);
    }
    // Installed policies that stay as they are.
    let soft = SoftClearIndex::new(desired);
    let unchanged =
        |c: &Policy| wanted.get(&c.id).is_some_and(|d| same(c, d)) || soft.is_soft_clear(c);
    let deleted_loose = |id: &PolicyId| {
        current
            .get(id)
            .is_some_and(|c| !is_tight(&c.action) && !unchanged(c))
    };
    // The change that installs desired `d`, if any.
    let install = |d: &Policy| match current.get(&d.id) {
        Some(c) if unchanged(c) => None,
        Some(_) if deleted_loose(&d.id) => Some(Change::Add(d.clone())),
        Some(c) => Some(Change::Update {
            old: Box::new((*c).clone()),
            new: Box::new(d.clone()),
        }),
        None => Some(Change::Add(d.clone())),
    };
    let in_key_order = |mut v: Vec<(Key, Change)>| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, c)| c)
    };

    let mut changes = Vec::new();
    // Step 0: loose policies not kept identically.
    changes.extend(in_key_order(
        current
            .values()
            .filter(|c| !is_tight(&c.action) && !unchanged(c))
            .map(|c| (key(&c.id), Change::Delete((*c).clone())))
            .collect(),
    ));
    // Step 1: tight policies, ascending priority.
    let mut tight: Vec<((u32, Key), Change)> = wanted
        .values()
        .filter(|d| is_tight(&d.action))
        .filter_map(|d| install(d).map(|c| ((d.priority, key(&d.id)), c)))
        .collect();
    tight.sort_by(|a, b| a.0.cmp(&b.0));
    changes.extend(tight.into_iter().map(|(_, c)| c));
    // Step 2: tight policies whose identity is gone.
    changes.extend(in_key_order(
        current
            .values()
            .filter(|c| is_tight(&c.action) && !wanted.contains_key(&c.id) && !unchanged(c))
            .map(|c| (key(&c.id), Change::Delete((*c).clone())))
            .collect(),
    ));
    // Step 3: loose policies.
    changes.extend(in_key_order(
        wanted
            .values()
            .filter(|d| !is_tight(&d.action))
            .filter_map(|d| install(d).map(|c| (key(&d.id), c)))
            .collect(),
    ));
    Ok(changes)
}

/// [`DesiredState::is_soft_clear`] with the fall-back entries indexed by (direction, mark,
/// priority of the soft policy), so that asking it of every installed policy is not a scan
/// of the whole desired state per policy.
struct SoftClearIndex<'a> {
    by_slot: FxMap<(Direction, Option<Mark>, u32), Vec<&'a Selector>>,
}

impl<'a> SoftClearIndex<'a> {
    fn new(desired: &'a DesiredState) -> Self {
        let mut by_slot: FxMap<_, Vec<&Selector>> = FxMap::default();
        for e in desired.entries.iter().filter(|e| e.fall_back_to_clear) {
            let id = &e.policy.id;
            by_slot
                .entry((id.direction, id.mark, e.policy.priority.saturating_sub(1)))
                .or_default()
                .push(&id.selector);
        }
        Self { by_slot }
    }

    /// The same answer as [`DesiredState::is_soft_clear`].
    fn is_soft_clear(&self, policy: &Policy) -> bool {
        let id = &policy.id;
        policy.action == PolicyAction::Allow
            && self
                .by_slot
                .get(&(id.direction, id.mark, policy.priority))
                .is_some_and(|sels| sels.iter().any(|s| selector_contains(s, &id.selector)))
    }
}

/// The plan's hash maps: keyed by policy identities (tens of thousands per plan for a large
/// policy), hashed with FxHash, several times faster than SipHash on these small keys. Not
/// exposed to an attacker choosing keys: identities come from the policy and the kernel.
type FxMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// A total order on policy identities (for deterministic plans).
type Key = (u8, String);

fn key(id: &PolicyId) -> Key {
    let dir = match id.direction {
        Direction::In => 0,
        Direction::Out => 1,
        Direction::Fwd => 2,
    };
    (dir, format!("{:?}|{:?}", id.selector, id.mark))
}

/// Applies `desired` to `kernel`: reads the installed policies, plans (see [`plan`]) and
/// performs the changes; on failure undoes them all (module docs).
pub fn apply(
    kernel: &mut dyn KernelInterface,
    desired: &DesiredState,
    ownership: &Ownership,
) -> Result<ApplyReport, Error> {
    let installed = kernel.dump_policies().map_err(Error::Dump)?;
    let changes = plan(&installed, desired, ownership)?;
    execute(kernel, &changes)
}

/// Performs planned changes with rollback (module docs).
pub fn execute(kernel: &mut dyn KernelInterface, changes: &[Change]) -> Result<ApplyReport, Error> {
    let mut done: Vec<&Change> = Vec::new();
    let mut report = ApplyReport::default();
    for (step, change) in changes.iter().enumerate() {
        let result = match change {
            Change::Add(p) => kernel.add_policy(p).map(|()| report.added += 1),
            Change::Update { new, .. } => kernel.update_policy(new).map(|()| report.updated += 1),
            Change::Delete(p) => match kernel.delete_policy(&p.id) {
                Ok(()) => {
                    report.deleted += 1;
                    Ok(())
                }
                // Gone already (a soft policy's idle expiry): nothing to do or undo.
                Err(e) if e.is_not_found() => continue,
                Err(e) => Err(e),
            },
        };
        if let Err(source) = result {
            return Err(rollback(kernel, &done, step, change, source));
        }
        done.push(change);
    }
    Ok(report)
}

fn rollback(
    kernel: &mut dyn KernelInterface,
    done: &[&Change],
    step: usize,
    failed: &Change,
    source: pfkey::Error,
) -> Error {
    for (undo_step, change) in done.iter().enumerate().rev() {
        let result = match change {
            Change::Add(p) => match kernel.delete_policy(&p.id) {
                Err(e) if e.is_not_found() => Ok(()),
                other => other,
            },
            Change::Update { old, .. } => kernel.update_policy(old),
            Change::Delete(p) => kernel.add_policy(p),
        };
        if let Err(undo_error) = result {
            return Error::RollbackFailed {
                step,
                what: failed.to_string(),
                source,
                undo_step,
                undo_error,
            };
        }
    }
    Error::ApplyFailed {
        step,
        what: failed.to_string(),
        source,
        undone: done.len(),
    }
}
