//! Default exemptions from IPsec filtering, as the seed's IPsec driver applies them
//! (`ipsecexempt` / `NoDefaultExempt`, levels 0 to 3).
//!
//! What it does:
//! - [`classify`]: from the header facts of one packet ([`Facts`]: family, protocol,
//!   ports, destination class) and a [`Level`], decide [`Verdict::Exempt`] with the
//!   class that exempts it, or [`Verdict::SubjectToPolicy`]. No allocation, no I/O;
//!   the same source file (`src/classify.rs`) is compiled into the kernel module `kmod/`.
//! - [`parse`]: extract [`Facts`] from the raw bytes of an IPv4 or IPv6 packet (used by
//!   user space, tests and the fuzz target; the kernel module reads headers with
//!   `skb_header_pointer` in its C shim instead).
//!
//! What it does not do: install policies (policyd compiles the level into XFRM allow
//! policies), know the interfaces' broadcast addresses (the caller says whether a
//! destination is a directed broadcast), or reassemble fragments (a non-first fragment
//! has no ports, so port-based classes never match it).
//!
//! The table (seed, "Default exemptions to IPSec filtering"):
//!
//! | level | ISAKMP (UDP 500↔500, 4500↔4500) | Kerberos (TCP/UDP 88) | RSVP (46) | multicast | broadcast |
//! |---|---|---|---|---|---|
//! | 0 | yes | yes | yes | yes | yes |
//! | 1 | yes | no | no | yes | yes |
//! | 2 | yes | yes | yes | no | no |
//! | 3 (default) | yes | no | no | no | no |
//!
//! IPv6 is an explicit option ([`Ipv6Mode`]): the seed exempts all IPv6 traffic
//! (its driver does not filter IPv6); this stack filters IPv6, so the default
//! [`Ipv6Mode::Classify`] applies the same table to IPv6 (multicast = `ff00::/8`, no
//! broadcast), and [`Ipv6Mode::ExemptAll`] reproduces the seed.
#![no_std]

mod classify;
mod parse;

pub use classify::*;
pub use parse::{parse, ParseError};
