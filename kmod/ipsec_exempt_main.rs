// SPDX-License-Identifier: GPL-2.0

//! ipsec_exempt: marks inbound packets that the default exemption level (`ipsecexempt`,
//! 0-3) exempts from IPsec filtering, so that policyd's mark-keyed `dir in` allow policy
//! lets them through. This Rust part is the module entry (init/exit) and the decision
//! ([`ipsec_exempt_decide`], the same `classify.rs` as the `ipsec-exempt` crate); the
//! netfilter hooks, header access, parameters and counters are in
//! `ipsec_exempt_shim.c` (mainline Rust has no abstractions for them). It does not
//! exempt outbound traffic: that is done with XFRM allow policies by policyd.

use kernel::prelude::*;

#[allow(dead_code, unreachable_pub)]
#[path = "exempt/src/classify.rs"]
mod classify;

use classify::{classify, Destination, Facts, Family, Ipv6Mode, Level, Verdict};

module! {
    type: IpsecExempt,
    name: "ipsec_exempt",
    author: "ipsec project",
    description: "Default IPsec exemptions (ipsecexempt levels 0-3): marks exempt inbound packets",
    license: "GPL",
}

extern "C" {
    fn ipsec_exempt_shim_init() -> core::ffi::c_int;
    fn ipsec_exempt_shim_exit();
}

/// Called by the shim's hook for every packet: the class index (0-6, `Class` order) that
/// exempts it, or -1 when it is subject to policy (also for out-of-range arguments).
#[no_mangle]
pub extern "C" fn ipsec_exempt_decide(
    family: u8,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
    dest: u8,
    level: u32,
    v6mode: u32,
) -> i32 {
    let family = match family {
        4 => Family::V4,
        6 => Family::V6,
        _ => return -1,
    };
    let (Some(destination), Some(level), Some(mode)) = (
        Destination::from_u8(dest),
        Level::from_u32(level),
        Ipv6Mode::from_u32(v6mode),
    ) else {
        return -1;
    };
    let facts = Facts {
        family,
        protocol,
        src_port,
        dst_port,
        destination,
    };
    match classify(&facts, level, mode) {
        Verdict::Exempt(class) => class as i32,
        Verdict::SubjectToPolicy => -1,
    }
}

struct IpsecExempt;

impl kernel::Module for IpsecExempt {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: called once, at module init, before anything else of the shim.
        kernel::error::to_result(unsafe { ipsec_exempt_shim_init() })?;
        pr_info!("ipsec_exempt: hooks registered\n");
        Ok(IpsecExempt)
    }
}

impl Drop for IpsecExempt {
    fn drop(&mut self) {
        // SAFETY: init succeeded (the module exists), so the pernet ops are registered.
        unsafe { ipsec_exempt_shim_exit() };
        pr_info!("ipsec_exempt: hooks removed\n");
    }
}
