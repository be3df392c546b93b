//! The one error type of the agent's kernel programming.

use pfkey::PolicyId;
use uuid::Uuid;

/// What went wrong while compiling or applying a policy.
///
/// Every variant except [`Error::RollbackFailed`] guarantees that the kernel SPD is exactly
/// as it was before the call (the same owned policies with the same contents; foreign
/// policies are never touched).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A negotiating rule's filter action lists no security methods.
    #[error("rule {rule}: its filter action negotiates but lists no security methods")]
    NoSecurityMethods {
        /// The rule.
        rule: Uuid,
    },
    /// A negotiating rule's first security method uses neither AH nor ESP.
    #[error("rule {rule}: its first security method uses neither AH nor ESP")]
    EmptySecurityMethod {
        /// The rule.
        rule: Uuid,
    },
    /// More filters of negotiating rules than owned reqids.
    #[error("no free reqid in the owned range for rule {rule}")]
    ReqidsExhausted {
        /// The rule that found none.
        rule: Uuid,
    },
    /// The address families of an expanded filter disagree (a policy that was not validated).
    #[error("rule {rule}: filter mixes address families")]
    MixedFamilies {
        /// The rule.
        rule: Uuid,
    },
    /// An owned priority range that cannot hold the compiled priorities.
    #[error("priority {priority} is outside the owned range")]
    PriorityNotOwned {
        /// The offending priority.
        priority: u32,
    },
    /// The fall-back-to-clear hook was asked about a policy that does not allow it.
    #[error("no fall-back-to-clear entry for {0:?} and that peer")]
    NoFallback(Box<PolicyId>),
    /// Reading the installed policies failed; nothing was changed.
    #[error("reading the installed policies: {0}; nothing was changed")]
    Dump(#[source] pfkey::Error),
    /// A desired policy has the identity (selector, direction, mark) of a policy another key
    /// manager installed; nothing was changed.
    #[error(
        "a foreign policy (priority {foreign_priority}) holds the selector of {id:?}; \
         nothing was changed"
    )]
    ForeignConflict {
        /// The identity both want.
        id: Box<PolicyId>,
        /// Priority of the foreign policy.
        foreign_priority: u32,
    },
    /// A kernel request failed; every change made before it was undone, so the kernel is
    /// as before the apply.
    #[error(
        "applying the policy failed at step {step} ({what}): {source}; the {undone} changes \
         made before it were undone, nothing changed"
    )]
    ApplyFailed {
        /// 0-based number of the failing step in the plan.
        step: usize,
        /// The failing change, for logs.
        what: String,
        /// The kernel's answer.
        #[source]
        source: pfkey::Error,
        /// How many earlier changes were undone.
        undone: usize,
    },
    /// A kernel request failed and undoing the earlier changes failed too: the kernel holds
    /// a mixture of the old and the new policy. The caller must re-apply or fall back to
    /// its block mode.
    #[error(
        "applying the policy failed at step {step} ({what}): {source}; undoing change \
         {undo_step} then failed too ({undo_error}): the kernel is in a mixed state"
    )]
    RollbackFailed {
        /// 0-based number of the failing step in the plan.
        step: usize,
        /// The failing change.
        what: String,
        /// The kernel's answer to it.
        #[source]
        source: pfkey::Error,
        /// The step whose undo failed.
        undo_step: usize,
        /// The kernel's answer to the undo.
        undo_error: pfkey::Error,
    },
}
