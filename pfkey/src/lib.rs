//! `pfkey`: the kernel IPsec interface of the stack.
//!
//! One trait, [`KernelInterface`], over the kernel's security association database (SAD) and
//! security policy database (SPD), implemented by:
//!
//! - [`xfrm::XfrmKernel`]: Linux XFRM netlink (the preferred Linux interface);
//! - [`pfkey::PfKeyKernel`]: PF_KEY v2 (RFC 2367 + KAME extensions) on Linux `af_key` and on
//!   FreeBSD; the codec in [`pfkey::codec`] speaks both dialects, chosen by a value;
//! - [`memory::MemoryKernel`]: an in-memory SAD/SPD for unit tests of logic elsewhere. It is
//!   never the proof that a feature works: the lab tests in `tests/lab` are.
//!
//! The daemons (`ikd`, `policyd`) use only the trait. [`Ownership`] tells which SAs and
//! policies this system installed, so that daemons delete and reconcile only their own, and
//! [`bypass`] exempts the daemons' own IKE sockets from IPsec.
//!
//! What this crate does not do: decide policy, negotiate keys, or keep state beyond one
//! request. It performs blocking I/O on its sockets; callers that need async wrap the raw fds.

pub mod bypass;
pub mod error;
pub mod memory;
pub mod model;
pub mod ownership;
pub mod pfkey;
pub mod xfrm;

pub use error::{DecodeError, Error, Result};
pub use model::*;
pub use ownership::Ownership;

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Operations on the kernel SAD and SPD that every backend provides.
///
/// Methods take `&mut self` because each backend owns one request socket and matches replies
/// by sequence number.
pub trait KernelInterface {
    /// Short backend name for logs and errors ("xfrm", "pfkey", "memory").
    fn backend_name(&self) -> &'static str;

    /// Allocates an SPI for an inbound SA from `source` (the peer) to `destination` (us),
    /// reserving a larval SA that a later [`KernelInterface::update_sa`] completes.
    fn allocate_spi(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        protocol: SecurityProtocol,
        reqid: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32>;

    /// Adds a new SA. Fails with EEXIST if one with the same [`SaId`] exists.
    fn add_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome>;

    /// Replaces an existing SA (or completes a larval one from [`Self::allocate_spi`]).
    fn update_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome>;

    /// Deletes one SA.
    fn delete_sa(&mut self, id: &SaId) -> Result<()>;

    /// Reads one SA back, keys included.
    fn get_sa(&mut self, id: &SaId) -> Result<SecurityAssociation>;

    /// Reads every SA of the SAD (larval SAs from SPI allocation excluded where the kernel
    /// reports them as such).
    fn dump_sas(&mut self) -> Result<Vec<SecurityAssociation>>;

    /// Deletes every SA, or every SA of one protocol. Daemons should prefer
    /// [`Ownership::delete_owned`], which leaves other key managers' SAs alone.
    fn flush_sas(&mut self, protocol: Option<SecurityProtocol>) -> Result<()>;

    /// Adds a policy. Fails with EEXIST if one with the same [`PolicyId`] exists.
    fn add_policy(&mut self, policy: &Policy) -> Result<()>;

    /// Replaces a policy with the same [`PolicyId`], or adds it.
    fn update_policy(&mut self, policy: &Policy) -> Result<()>;

    /// Deletes one policy.
    fn delete_policy(&mut self, id: &PolicyId) -> Result<()>;

    /// Reads one policy back.
    fn get_policy(&mut self, id: &PolicyId) -> Result<Policy>;

    /// Reads every (global, not per-socket) policy of the SPD.
    fn dump_policies(&mut self) -> Result<Vec<Policy>>;

    /// Deletes every global policy.
    fn flush_policies(&mut self) -> Result<()>;

    /// SPD entry counts.
    fn spd_info(&mut self) -> Result<SpdInfo>;

    /// Opens a separate socket that receives kernel events (ACQUIRE, EXPIRE, POLEXPIRE,
    /// MAPPING) for this backend.
    fn open_events(&mut self) -> Result<Box<dyn EventSource + Send>>;
}

/// A stream of kernel events.
pub trait EventSource {
    /// Waits up to `timeout` (forever if `None`) for the next event. Messages that are not
    /// events (or that this crate does not model) are skipped.
    fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<KernelEvent>>;

    /// The socket's file descriptor, for registering with an event loop.
    fn raw_fd(&self) -> std::os::fd::RawFd;
}
