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
