//! Linux XFRM netlink: codec and backend.
//!
//! - [`codec`]: the wire format (netlink framing, `<linux/xfrm.h>` structures, attributes);
//!   pure, no I/O, never panics on input.
//! - [`convert`]: mapping between the codec and the [`crate::model`] types (algorithm names,
//!   truncation lengths, lifetimes), with request validation (key lengths) before anything
//!   reaches the kernel.
//! - [`XfrmKernel`]: the [`crate::KernelInterface`] backend on a `NETLINK_XFRM` socket, and
//!   [`XfrmEvents`], its [`crate::EventSource`].
//! - [`bypass`]: per-socket IPsec bypass for the daemons' IKE sockets.
//!
//! The codec and the conversions build everywhere (their tests run on any host); the socket
//! backend and the per-socket bypass exist only on Linux.

#[cfg(target_os = "linux")]
pub mod bypass;
pub mod codec;
pub mod convert;
#[cfg(target_os = "linux")]
mod socket;

#[cfg(target_os = "linux")]
pub use bypass::bypass_socket;
#[cfg(target_os = "linux")]
pub use socket::{BatchOp, XfrmEvents, XfrmKernel};
