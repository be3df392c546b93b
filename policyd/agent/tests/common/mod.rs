//! Test kernels: a wrapper around any `KernelInterface` that counts calls, fails the k-th
//! mutating call once, and runs an observer after every successful mutating call.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::ops::RangeInclusive;

use pfkey::{
    EventSource, KernelInterface, OffloadOutcome, Policy, PolicyId, Result, SaId,
    SecurityAssociation, SecurityProtocol, SpdInfo,
};

/// Observer called with the SPD after each successful mutating policy call.
pub type Observer = Box<dyn FnMut(&[Policy])>;

/// Counting, failing, observing wrapper.
pub struct TestKernel<K: KernelInterface> {
    pub inner: K,
    /// Mutating policy calls attempted (add, update, delete).
    pub mutations: usize,
    /// Dumps.
    pub dumps: usize,
    /// Fail the mutating calls with these 0-based numbers.
    pub fail_at: Vec<usize>,
    pub observer: Option<Observer>,
}

impl<K: KernelInterface> TestKernel<K> {
    pub fn new(inner: K) -> Self {
        Self {
            inner,
            mutations: 0,
            dumps: 0,
            fail_at: Vec::new(),
            observer: None,
        }
    }

    fn mutate(&mut self, f: impl FnOnce(&mut K) -> Result<()>) -> Result<()> {
        let n = self.mutations;
        self.mutations += 1;
        if self.fail_at.contains(&n) {
            return Err(pfkey::Error::Kernel {
                op: "injected",
                errno: libc::EINVAL,
            });
        }
        f(&mut self.inner)?;
        if let Some(obs) = self.observer.as_mut() {
            let spd = self.inner.dump_policies()?;
            obs(&spd);
        }
        Ok(())
    }
}

impl<K: KernelInterface> KernelInterface for TestKernel<K> {
    fn backend_name(&self) -> &'static str {
        "test"
    }
    fn allocate_spi(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        protocol: SecurityProtocol,
        reqid: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32> {
        self.inner
            .allocate_spi(source, destination, protocol, reqid, range)
    }
    fn add_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        self.inner.add_sa(sa)
    }
    fn update_sa(&mut self, sa: &SecurityAssociation) -> Result<OffloadOutcome> {
        self.inner.update_sa(sa)
    }
    fn delete_sa(&mut self, id: &SaId) -> Result<()> {
        self.inner.delete_sa(id)
    }
    fn get_sa(&mut self, id: &SaId) -> Result<SecurityAssociation> {
        self.inner.get_sa(id)
    }
    fn dump_sas(&mut self) -> Result<Vec<SecurityAssociation>> {
        self.inner.dump_sas()
    }
    fn flush_sas(&mut self, protocol: Option<SecurityProtocol>) -> Result<()> {
        self.inner.flush_sas(protocol)
    }
    fn add_policy(&mut self, policy: &Policy) -> Result<()> {
        self.mutate(|k| k.add_policy(policy))
    }
    fn update_policy(&mut self, policy: &Policy) -> Result<()> {
        self.mutate(|k| k.update_policy(policy))
    }
    fn delete_policy(&mut self, id: &PolicyId) -> Result<()> {
        self.mutate(|k| k.delete_policy(id))
    }
    fn get_policy(&mut self, id: &PolicyId) -> Result<Policy> {
        self.inner.get_policy(id)
    }
    fn dump_policies(&mut self) -> Result<Vec<Policy>> {
        self.dumps += 1;
        self.inner.dump_policies()
    }
    fn flush_policies(&mut self) -> Result<()> {
        self.inner.flush_policies()
    }
    fn spd_info(&mut self) -> Result<SpdInfo> {
        self.inner.spd_info()
    }
    fn open_events(&mut self) -> Result<Box<dyn EventSource + Send>> {
        self.inner.open_events()
    }
}

/// The SPD as a sorted list of debug strings (order-independent comparison, index included).
pub fn canonical(policies: &[Policy]) -> Vec<String> {
    let mut v: Vec<String> = policies.iter().map(|p| format!("{p:?}")).collect();
    v.sort();
    v
}

/// Like [`canonical`] without the kernel index.
pub fn canonical_noindex(policies: &[Policy]) -> Vec<String> {
    let mut v: Vec<String> = policies
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.index = None;
            format!("{p:?}")
        })
        .collect();
    v.sort();
    v
}
