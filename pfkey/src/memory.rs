//! An in-memory SAD and SPD implementing [`KernelInterface`].
//!
//! For unit tests of logic in the daemons (what they install, delete and reconcile). It
//! checks identities and duplicates the way the kernel does, but it encrypts nothing and
//! raises events only when a test injects them with [`MemoryKernel::inject_event`]. Never the
//! proof that a feature works against a kernel.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::mpsc;
use std::time::Duration;

use crate::{
    Error, EventSource, KernelEvent, KernelInterface, OffloadOutcome, Policy, PolicyId, Result,
    SaId, SecurityAssociation, SecurityProtocol, SpdInfo,
};

/// In-memory kernel.
#[derive(Debug, Default)]
pub struct MemoryKernel {
    sas: Vec<SecurityAssociation>,
    policies: Vec<Policy>,
    next_spi: u32,
    next_index: u32,
    subscribers: Vec<mpsc::Sender<KernelEvent>>,
}

fn errno(op: &'static str, errno: i32) -> Error {
    Error::Kernel { op, errno }
}

impl MemoryKernel {
    /// An empty kernel.
    pub fn new() -> Self {
        Self {
            next_spi: 0x1000,
            next_index: 8,
            ..Self::default()
        }
    }

    /// Delivers an event to every open event source.
    pub fn inject_event(&mut self, event: KernelEvent) {
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn sa_position(&self, id: &SaId) -> Option<usize> {
        self.sas.iter().position(|sa| sa.id == *id)
    }

    fn policy_position(&self, id: &PolicyId) -> Option<usize> {
        self.policies.iter().position(|p| p.id == *id)
    }
}

impl KernelInterface for MemoryKernel {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn allocate_spi(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        protocol: SecurityProtocol,
        reqid: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32> {
        let start = self.next_spi.max(*range.start());
        let spi = (start..=*range.end())
            .find(|spi| {
                self.sa_position(&SaId {
                    destination,
                    spi: *spi,
                    protocol,
                })
                .is_none()
            })
            .ok_or_else(|| errno("allocate_spi", libc::ENOENT))?;
        self.next_spi = spi.wrapping_add(1);
        let mode = crate::Mode::Transport;
        self.sas.push(SecurityAssociation::new(
            SaId {
                destination,
                spi,
                protocol,
            },
            source,
            mode,
            reqid,
        ));
        Ok(spi)
    }

    fn add_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        if self.sa_position(&sa.id).is_some() {
            return Err(errno("add_sa", libc::EEXIST));
        }
        self.sas.push(sa.clone());
        Ok(OffloadOutcome::NotRequested)
    }

    fn update_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        let pos = self
            .sa_position(&sa.id)
            .ok_or_else(|| errno("update_sa", libc::ESRCH))?;
        self.sas[pos] = sa.clone();
        Ok(OffloadOutcome::NotRequested)
    }

    fn delete_sa(&mut self, id: &SaId) -> Result<()> {
        let pos = self
            .sa_position(id)
            .ok_or_else(|| errno("delete_sa", libc::ESRCH))?;
        self.sas.remove(pos);
        Ok(())
    }

    fn get_sa(&mut self, id: &SaId) -> Result<SecurityAssociation> {
        let pos = self
            .sa_position(id)
            .ok_or_else(|| errno("get_sa", libc::ESRCH))?;
        Ok(self.sas[pos].clone())
    }

    fn dump_sas(&mut self) -> Result<Vec<SecurityAssociation>> {
        Ok(self.sas.clone())
    }

    fn flush_sas(&mut self, protocol: Option<SecurityProtocol>) -> Result<()> {
        self.sas
            .retain(|sa| protocol.is_some_and(|p| p != sa.id.protocol));
        Ok(())
    }

    fn add_policy(&mut self, policy: &Policy) -> Result<()> {
        if self.policy_position(&policy.id).is_some() {
            return Err(errno("add_policy", libc::EEXIST));
        }
        let mut policy = policy.clone();
        if policy.index.is_none() {
            policy.index = Some(self.next_index);
            self.next_index += 8;
        }
        self.policies.push(policy);
        Ok(())
    }

    fn update_policy(&mut self, policy: &Policy) -> Result<()> {
        match self.policy_position(&policy.id) {
            Some(pos) => {
                let index = self.policies[pos].index;
                self.policies[pos] = policy.clone();
                self.policies[pos].index = policy.index.or(index);
                Ok(())
            }
            None => self.add_policy(policy),
        }
    }

    fn delete_policy(&mut self, id: &PolicyId) -> Result<()> {
        let pos = self
            .policy_position(id)
            .ok_or_else(|| errno("delete_policy", libc::ENOENT))?;
        self.policies.remove(pos);
        Ok(())
    }

    fn get_policy(&mut self, id: &PolicyId) -> Result<Policy> {
        let pos = self
            .policy_position(id)
            .ok_or_else(|| errno("get_policy", libc::ENOENT))?;
        Ok(self.policies[pos].clone())
    }

    fn dump_policies(&mut self) -> Result<Vec<Policy>> {
        Ok(self.policies.clone())
    }

    fn flush_policies(&mut self) -> Result<()> {
        self.policies.clear();
        Ok(())
    }

    fn spd_info(&mut self) -> Result<SpdInfo> {
        let mut counts: BTreeMap<crate::Direction, u32> = BTreeMap::new();
        for p in &self.policies {
            *counts.entry(p.id.direction).or_default() += 1;
        }
        Ok(SpdInfo {
            inbound: counts.get(&crate::Direction::In).copied().unwrap_or(0),
            outbound: counts.get(&crate::Direction::Out).copied().unwrap_or(0),
            forward: counts.get(&crate::Direction::Fwd).copied().unwrap_or(0),
            ..SpdInfo::default()
        })
    }

    fn open_events(&mut self) -> Result<Box<dyn EventSource + Send>> {
        let (tx, rx) = mpsc::channel();
        self.subscribers.push(tx);
        Ok(Box::new(MemoryEvents { rx }))
    }
}

struct MemoryEvents {
    rx: mpsc::Receiver<KernelEvent>,
}

impl EventSource for MemoryEvents {
    fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<KernelEvent>> {
        let event = match timeout {
            Some(t) => self.rx.recv_timeout(t).ok(),
            None => self.rx.recv().ok(),
        };
        Ok(event)
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Mode, Ownership, PolicyAction, Selector, Template, TemplateLevel};
    use std::net::Ipv4Addr;

    fn addr(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn delete_owned_leaves_foreign_objects() {
        let mut k = MemoryKernel::new();
        let own = Ownership::default();
        let ours = SecurityAssociation::new(
            SaId {
                destination: addr(2),
                spi: 0x100,
                protocol: SecurityProtocol::Esp,
            },
            addr(1),
            Mode::Transport,
            0x3001,
        );
        let theirs = SecurityAssociation::new(
            SaId {
                destination: addr(2),
                spi: 0x200,
                protocol: SecurityProtocol::Esp,
            },
            addr(1),
            Mode::Transport,
            7,
        );
        k.add_sa(&ours).unwrap();
        k.add_sa(&theirs).unwrap();
        let template = Template {
            protocol: SecurityProtocol::Esp,
            mode: Mode::Transport,
            reqid: 0x3001,
            tunnel: None,
            level: TemplateLevel::Require,
        };
        let policy = |priority, dir| Policy {
            id: PolicyId {
                selector: Selector::hosts(addr(1), addr(2)),
                direction: dir,
                mark: None,
            },
            action: PolicyAction::Protect(vec![template]),
            priority,
            index: None,
            lifetime: Default::default(),
        };
        k.add_policy(&policy(5_000, Direction::Out)).unwrap();
        k.add_policy(&policy(0, Direction::In)).unwrap();
        assert_eq!(k.add_sa(&ours).unwrap_err().errno(), Some(libc::EEXIST));

        let removed = own.delete_owned(&mut k).unwrap();
        assert_eq!(
            removed,
            crate::ownership::Removed {
                sas: 1,
                policies: 1
            }
        );
        assert_eq!(k.dump_sas().unwrap(), vec![theirs]);
        assert_eq!(k.dump_policies().unwrap().len(), 1);
    }
}
