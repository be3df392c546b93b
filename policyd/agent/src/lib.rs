//! `ipsec-agent`: the policy agent's kernel programming.
//!
//! - [`compile()`](compile::compile): a validated policy and an interface snapshot →
//!   the kernel policies (SPD entries) it needs, a [`DesiredState`]. The module docs of
//!   [`compile`](mod@compile) hold the mapping table (permit, block, negotiate, inbound
//!   pass-through, fall back to clear, tunnels, reqids).
//! - [`apply()`](apply::apply): the desired state → the kernel, as a diff against the
//!   owned policies installed, in an order with no clear-text window (proved in the module
//!   docs of [`apply`](mod@apply)), rolled back whole on failure, idempotent.
//!
//! - [`exempt`]: the default exemptions (`ipsecexempt`) as allow policies above the
//!   agent's band, with or without the kernel module `kmod/`.
//!
//! What it does not do: SAs (ikd negotiates and installs them), the default response rule
//! (ikd), boot modes and exemptions, retrieval of the policy, watching interfaces (the
//! caller re-compiles with a new snapshot and applies again). It reaches the kernel only
//! through `pfkey::KernelInterface`.

pub mod apply;
pub mod compile;
mod error;
pub mod exempt;

pub use apply::{apply, plan, ApplyReport, Change};
pub use compile::{compile, CompileNote, CompileOptions, DesiredEntry, DesiredState, ReqidKey};
pub use error::Error;
