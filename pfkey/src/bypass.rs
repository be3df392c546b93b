//! Per-socket IPsec bypass for the daemons' own IKE sockets.
//!
//! IKE traffic must never be caught by the policies it negotiates (RFC 2409 relies on it).
//! Like racoon and strongSwan, the daemons give each UDP socket an inbound and an outbound
//! per-socket "allow" policy, which the kernel consults before the global SPD.
//!
//! - Linux: `IP_XFRM_POLICY` / `IPV6_XFRM_POLICY` with an `xfrm_userpolicy_info` whose action
//!   is allow ([`crate::xfrm`]); this needs only XFRM, not `af_key`.
//! - FreeBSD (and Linux with `af_key`): `IP_IPSEC_POLICY` / `IPV6_IPSEC_POLICY` with a
//!   `sadb_x_policy` of type BYPASS ([`crate::pfkey`]).

use std::os::fd::BorrowedFd;

use crate::{Family, Result};

/// Exempts one socket from IPsec policy in both directions, with the native interface of
/// this system (XFRM on Linux, PF_KEY on FreeBSD). Call it on each IKE socket right after
/// creating it, before the first datagram.
#[cfg(target_os = "linux")]
pub fn bypass_socket(fd: BorrowedFd<'_>, family: Family) -> Result<()> {
    crate::xfrm::bypass_socket(fd, family)
}

/// Exempts one socket from IPsec policy in both directions, with the native interface of
/// this system (XFRM on Linux, PF_KEY on FreeBSD). Call it on each IKE socket right after
/// creating it, before the first datagram.
#[cfg(not(target_os = "linux"))]
pub fn bypass_socket(fd: BorrowedFd<'_>, family: Family) -> Result<()> {
    crate::pfkey::bypass::bypass_socket(fd, family)
}
