//! PF_KEY v2 (RFC 2367 + KAME extensions): codec for the Linux and FreeBSD dialects, the
//! mapping between kernel model types and PF_KEY messages, and the PF_KEY socket backend.
//!
//! - [`codec`]: bytes ⇄ [`codec::Message`], no I/O, both dialects.
//! - [`map`]: [`crate::model`] types ⇄ messages; where PF_KEY cannot express something the
//!   mapping answers [`crate::Error::Unsupported`] instead of installing something else.
//! - [`PfKeyKernel`]: [`crate::KernelInterface`] over `socket(PF_KEY, SOCK_RAW, PF_KEY_V2)`
//!   (Linux `af_key`, FreeBSD).
//! - [`bypass`]: per-socket IKE bypass with `IP_IPSEC_POLICY` / `IPV6_IPSEC_POLICY`.
//!
//! On Linux prefer [`crate::xfrm`]: `af_key` is frozen, cannot set HMAC truncation, marks,
//! ESN or offload.

pub mod codec;
pub mod map;

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub mod bypass;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod socket;

pub use codec::{Dialect, Message};
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub use socket::PfKeyKernel;
