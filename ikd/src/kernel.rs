//! The kernel side: one `pfkey::KernelInterface` backend (XFRM or PF_KEY) and its event
//! socket, with a record of every SA and policy ikd put there.
//!
//! What it does: install the connections' protect policies (owned priority and reqids),
//! reserve SPIs, install SA pairs inbound first, delete SAs, and at exit remove exactly
//! what this process installed — never another key manager's objects (a foreign policy
//! with the same selector is an error at start, not something to replace).
//! What it does not do: decide what to install (the engine and the configuration do); it
//! returns errors for the caller to log, except during the final cleanup, where it logs
//! each object it could not remove and carries on.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use ikengine::{IpsecProtocol, SaPair};
use pfkey::{EventSource, KernelInterface, Ownership, Policy, PolicyId, SaId};

use crate::config::{Connection, KernelBackend};
use crate::convert;

/// SPIs ikd asks the kernel for (below 256 is reserved, RFC 4303 §2.1).
const SPI_RANGE: std::ops::RangeInclusive<u32> = 0x100..=0xffff_ffff;

/// The kernel backend with what ikd installed.
pub(crate) struct Kernel {
    k: Box<dyn KernelInterface>,
    events: Box<dyn EventSource + Send>,
    ownership: Ownership,
    sas: HashSet<SaId>,
    /// Reserved SPIs not yet completed by an installed pair, with the peer.
    larval: HashMap<SaId, IpAddr>,
    policies: Vec<PolicyId>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("backend", &self.k.backend_name())
            .field("sas", &self.sas.len())
            .field("policies", &self.policies.len())
            .finish()
    }
}

/// What [`Kernel::cleanup`] removed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cleanup {
    pub(crate) sas: usize,
    pub(crate) policies: usize,
    pub(crate) errors: usize,
}

impl Kernel {
    /// Opens the backend and its event socket.
    pub(crate) fn open(backend: KernelBackend) -> Result<Self, pfkey::Error> {
        let mut k: Box<dyn KernelInterface> = match backend {
            #[cfg(target_os = "linux")]
            KernelBackend::Xfrm => Box::new(pfkey::xfrm::XfrmKernel::open()?),
            #[cfg(not(target_os = "linux"))]
            KernelBackend::Xfrm => {
                return Err(pfkey::Error::Unsupported {
                    backend: "xfrm",
                    what: "XFRM exists only on Linux (use kernel = pfkey)",
                })
            }
            KernelBackend::Pfkey => Box::new(pfkey::pfkey::PfKeyKernel::open()?),
            KernelBackend::None => Box::new(pfkey::memory::MemoryKernel::new()),
        };
        let events = k.open_events()?;
        Ok(Self {
            k,
            events,
            ownership: Ownership::default(),
            sas: HashSet::new(),
            larval: HashMap::new(),
            policies: Vec::new(),
        })
    }

    /// The backend's name.
    pub(crate) fn backend_name(&self) -> &'static str {
        self.k.backend_name()
    }

    /// The event socket, for poll.
    pub(crate) fn events_fd(&self) -> RawFd {
        self.events.raw_fd()
    }

    /// The next queued kernel event, without waiting.
    pub(crate) fn next_event(&mut self) -> Result<Option<pfkey::KernelEvent>, pfkey::Error> {
        self.events.next_event(Some(Duration::ZERO))
    }

    /// Whether the reqid is in the stack's owned band.
    pub(crate) fn owns_reqid(&self, reqid: u32) -> bool {
        self.ownership.reqids.contains(&reqid)
    }

    /// Installs the protect policies of `connections`. A policy with the same identity
    /// that ikd owns (left by a crashed run) is replaced; a foreign one is an error.
    pub(crate) fn install_policies(&mut self, connections: &[Connection]) -> Result<usize, String> {
        for c in connections {
            for p in convert::policies(c).unwrap_or_default() {
                self.install_policy(&p)
                    .map_err(|e| format!("connection \"{}\": {e}", c.name))?;
            }
        }
        Ok(self.policies.len())
    }

    /// After a reconfiguration: removes the policies of connections that are gone or
    /// changed, then installs those of new or changed ones (unchanged connections keep
    /// theirs untouched). Returns (removed, installed). On an error the policies done so
    /// far stay; the caller reports it.
    pub(crate) fn replace_policies(
        &mut self,
        old: &[Connection],
        new: &[Connection],
    ) -> Result<(usize, usize), String> {
        let mut removed = 0;
        for c in old.iter().filter(|c| !new.contains(c)) {
            for p in convert::policies(c).unwrap_or_default() {
                let Some(pos) = self.policies.iter().position(|id| *id == p.id) else {
                    continue;
                };
                self.policies.remove(pos);
                match self.k.delete_policy(&p.id) {
                    Ok(()) => removed += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(format!("connection \"{}\": {e}", c.name)),
                }
            }
        }
        let mut installed = 0;
        for c in new.iter().filter(|c| !old.contains(c)) {
            for p in convert::policies(c).unwrap_or_default() {
                self.install_policy(&p)
                    .map_err(|e| format!("connection \"{}\": {e}", c.name))?;
                installed += 1;
            }
        }
        Ok((removed, installed))
    }

    fn install_policy(&mut self, p: &Policy) -> Result<(), String> {
        let what = format!(
            "{:?} policy {} -> {}",
            p.id.direction, p.id.selector.source, p.id.selector.destination
        );
        match self.k.add_policy(p) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {
                let old = self
                    .k
                    .get_policy(&p.id)
                    .map_err(|e| format!("{what}: {e}"))?;
                if !self.ownership.owns_policy(&old) {
                    return Err(format!(
                        "{what}: a policy not owned by the stack (priority {}) exists; \
                         remove it or use policies = \"external\"",
                        old.priority
                    ));
                }
                self.k
                    .update_policy(p)
                    .map_err(|e| format!("{what}: {e}"))?;
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
        self.policies.push(p.id);
        Ok(())
    }

    /// Reserves an inbound SPI from `source` (peer) to `destination` (us).
    pub(crate) fn allocate_spi(
        &mut self,
        protocol: IpsecProtocol,
        source: IpAddr,
        destination: IpAddr,
    ) -> Result<u32, pfkey::Error> {
        let proto = convert::protocol(protocol);
        let spi = self
            .k
            .allocate_spi(source, destination, proto, 0, SPI_RANGE)?;
        let id = SaId {
            destination,
            spi,
            protocol: proto,
        };
        self.sas.insert(id);
        self.larval.insert(id, source);
        Ok(spi)
    }

    /// Installs both SAs of a pair with `reqid`: inbound first (completing the larval SA
    /// of its SPI), then outbound, each with its offload request (`offload`: inbound,
    /// outbound). Returns the offload outcome of each; a refused offload is not an error
    /// (the SA is then in software).
    pub(crate) fn install_pair(
        &mut self,
        pair: &SaPair,
        reqid: u32,
        offload: [Option<pfkey::OffloadRequest>; 2],
    ) -> Result<[pfkey::OffloadOutcome; 2], pfkey::Error> {
        let [in_offload, out_offload] = offload;
        let mut inbound = convert::child_sa(&pair.inbound, reqid);
        inbound.offload = in_offload;
        let in_outcome = match self.k.update_sa(&inbound) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => self.k.add_sa(&inbound)?,
            Err(e) => return Err(e),
        };
        self.sas.insert(inbound.id);
        self.larval.remove(&inbound.id);
        let mut outbound = convert::child_sa(&pair.outbound, reqid);
        outbound.offload = out_offload;
        let out_outcome = match self.k.add_sa(&outbound) {
            Ok(o) => o,
            Err(e) if e.is_exists() => self.k.update_sa(&outbound)?,
            Err(e) => return Err(e),
        };
        self.sas.insert(outbound.id);
        Ok([in_outcome, out_outcome])
    }

    /// The kernel's byte counter of an installed SA (`None` when it cannot be read).
    pub(crate) fn sa_bytes(&mut self, id: &SaId) -> Option<u64> {
        self.k.get_sa(id).ok().map(|sa| sa.current.bytes)
    }

    /// Deletes an SA (gone already is fine).
    pub(crate) fn delete_sa(&mut self, id: &SaId) -> Result<(), pfkey::Error> {
        self.sas.remove(id);
        self.larval.remove(id);
        match self.k.delete_sa(id) {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes the SPI reservations towards `peer` that no installed pair completed (after
    /// a failed quick mode; the kernel would otherwise keep them as larval SAs until its
    /// acquire timeout). A quick mode with the peer still in progress loses its reservation
    /// too; its pair is then added instead of updated. Returns how many were deleted.
    pub(crate) fn drop_larval(&mut self, peer: IpAddr) -> usize {
        let ids: Vec<SaId> = self
            .larval
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(id, _)| *id)
            .collect();
        let mut n = 0;
        for id in ids {
            self.larval.remove(&id);
            if self.delete_sa(&id).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Forgets an SA the kernel removed itself (hard expiry).
    pub(crate) fn forget_sa(&mut self, id: &SaId) {
        self.sas.remove(id);
        self.larval.remove(id);
    }

    /// Removes every SA and policy this process installed (and nothing else).
    pub(crate) fn cleanup(&mut self) -> Cleanup {
        let mut done = Cleanup::default();
        self.larval.clear();
        let sas: Vec<SaId> = self.sas.drain().collect();
        for id in sas {
            match self.k.delete_sa(&id) {
                Ok(()) => done.sas += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(spi = %format_args!("{:08x}", id.spi), error = %e, "cannot delete SA");
                    done.errors += 1;
                }
            }
        }
        for id in std::mem::take(&mut self.policies) {
            match self.k.delete_policy(&id) {
                Ok(()) => done.policies += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete policy");
                    done.errors += 1;
                }
            }
        }
        done
    }
}
