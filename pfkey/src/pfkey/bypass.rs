//! Per-socket IKE bypass with `IP_IPSEC_POLICY` / `IPV6_IPSEC_POLICY` (racoon's
//! "in bypass" / "out bypass").
//!
//! The option takes one `sadb_x_policy` (type BYPASS, direction in or out); the kernel
//! consults it before the global SPD, so IKE packets on that socket are never caught by the
//! policies they negotiate. Works on FreeBSD and on Linux with `af_key` loaded (Linux routes
//! the option to `af_key`'s `compile_policy`); on Linux without `af_key` use the XFRM
//! variant (`IP_XFRM_POLICY`).

use std::os::fd::BorrowedFd;

use super::codec::consts::{IPSEC_DIR_INBOUND, IPSEC_DIR_OUTBOUND, IPSEC_POLICY_BYPASS};
use super::codec::{Dialect, PolicyExt};
use super::socket::set_socket_policy;
use crate::{Error, Family, Result};

#[cfg(target_os = "linux")]
mod opt {
    pub(super) const IP_IPSEC_POLICY: libc::c_int = 16;
    pub(super) const IPV6_IPSEC_POLICY: libc::c_int = 34;
}
#[cfg(target_os = "freebsd")]
mod opt {
    pub(super) const IP_IPSEC_POLICY: libc::c_int = 21;
    pub(super) const IPV6_IPSEC_POLICY: libc::c_int = 28;
}

/// The `sadb_x_policy` octets of a per-socket bypass policy for one direction.
pub fn bypass_policy(dir_inbound: bool, dialect: Dialect) -> Vec<u8> {
    PolicyExt {
        policy_type: IPSEC_POLICY_BYPASS,
        dir: if dir_inbound {
            IPSEC_DIR_INBOUND
        } else {
            IPSEC_DIR_OUTBOUND
        },
        ..PolicyExt::default()
    }
    .to_bytes(dialect)
}

/// Exempts a socket of `family` from IPsec in both directions.
pub fn bypass_socket(fd: BorrowedFd<'_>, family: Family) -> Result<()> {
    let (level, option, op) = match family {
        Family::V4 => (
            libc::IPPROTO_IP,
            opt::IP_IPSEC_POLICY,
            "setsockopt(IP_IPSEC_POLICY)",
        ),
        Family::V6 => (
            libc::IPPROTO_IPV6,
            opt::IPV6_IPSEC_POLICY,
            "setsockopt(IPV6_IPSEC_POLICY)",
        ),
    };
    for inbound in [true, false] {
        set_socket_policy(
            fd,
            level,
            option,
            &bypass_policy(inbound, Dialect::native()),
        )
        .map_err(|source| Error::Io { op, source })?;
    }
    Ok(())
}
