//! Which SAs and policies this system installed.
//!
//! Several key managers can share one kernel (a strongSwan next to ikd, an administrator's
//! `ip xfrm` or `setkey` entries). The stack marks what it installs so that it deletes and
//! reconciles only its own:
//!
//! - **SAs** carry a reqid from [`Ownership::reqids`]. The default range `0x3000..=0x3fff`
//!   fits every dialect: FreeBSD's `sadb_x_ipsecrequest` holds a 16-bit reqid, and KAME
//!   kernels reserve reqids above `IPSEC_MANUAL_REQID_MAX` (0x3fff) for themselves.
//! - **Policies** carry a priority from [`Ownership::priorities`]; protect policies also
//!   carry owned reqids in their templates. Priorities order policies on both Linux
//!   interfaces, so the band also places the stack's policies relative to others
//!   (strongSwan starts at 200000; `ip xfrm` and `setkey` default to 0).

use std::ops::RangeInclusive;

use crate::{KernelInterface, Policy, PolicyAction, Result, SecurityAssociation};

/// The marks that identify this system's kernel objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// Reqids this system gives its SAs and templates.
    pub reqids: RangeInclusive<u32>,
    /// Priorities this system gives its policies.
    pub priorities: RangeInclusive<u32>,
}

impl Default for Ownership {
    fn default() -> Self {
        Self {
            reqids: 0x3000..=0x3fff,
            priorities: 1_000..=199_999,
        }
    }
}

/// What [`Ownership::delete_owned`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// SAs deleted.
    pub sas: usize,
    /// Policies deleted.
    pub policies: usize,
}

impl Ownership {
    /// Whether this system installed the SA.
    pub fn owns_sa(&self, sa: &SecurityAssociation) -> bool {
        self.reqids.contains(&sa.reqid)
    }

    /// Whether this system installed the policy: its priority is in the band and every
    /// template with a reqid carries one of ours.
    pub fn owns_policy(&self, policy: &Policy) -> bool {
        if !self.priorities.contains(&policy.priority) {
            return false;
        }
        match &policy.action {
            PolicyAction::Protect(templates) => templates
                .iter()
                .all(|t| t.reqid == 0 || self.reqids.contains(&t.reqid)),
            PolicyAction::Allow | PolicyAction::Block => true,
        }
    }

    /// Deletes every SA and policy this system owns and nothing else. Objects that vanish
    /// between the dump and the delete (a hard expiry) are not an error.
    pub fn delete_owned(&self, kernel: &mut dyn KernelInterface) -> Result<Removed> {
        let mut removed = Removed::default();
        for policy in kernel.dump_policies()? {
            if self.owns_policy(&policy) {
                match kernel.delete_policy(&policy.id) {
                    Ok(()) => removed.policies += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for sa in kernel.dump_sas()? {
            if self.owns_sa(&sa) {
                match kernel.delete_sa(&sa.id) {
                    Ok(()) => removed.sas += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }
}
