//! Linux per-socket IPsec bypass through XFRM (`IP_XFRM_POLICY` / `IPV6_XFRM_POLICY`).
//!
//! The kernel consults a socket's own policies before the global SPD. An "allow" policy
//! without templates, set for both directions, lets the socket's traffic pass in clear even
//! under a block-all or protect-all SPD. This is what strongSwan's `bypass_socket` does by
//! default; it needs only XFRM (not `af_key`) and `CAP_NET_ADMIN`.

use std::os::fd::BorrowedFd;

use super::codec::{
    LifetimeCfg, PolicyActionCode, PolicyDir, Struct, UserpolicyInfo, XfrmSelector,
};
use super::convert::family_to_wire;
use crate::{Error, Family, Result};

/// `IP_XFRM_POLICY` (`<linux/in.h>`).
const IP_XFRM_POLICY: libc::c_int = 17;
/// `IPV6_XFRM_POLICY` (`<linux/in6.h>`; 34 is `IPV6_IPSEC_POLICY`, strongSwan's fallback
/// define is wrong).
const IPV6_XFRM_POLICY: libc::c_int = 35;

/// The per-socket allow policy for one direction.
fn allow_policy(family: Family, dir: PolicyDir) -> UserpolicyInfo {
    UserpolicyInfo {
        sel: XfrmSelector {
            family: family_to_wire(family),
            ..XfrmSelector::default()
        },
        lft: LifetimeCfg::default(),
        dir,
        action: PolicyActionCode::ALLOW,
        ..UserpolicyInfo::default()
    }
}

/// Exempts a socket of `family` from IPsec: its packets bypass the SPD in both directions.
pub fn bypass_socket(fd: BorrowedFd<'_>, family: Family) -> Result<()> {
    let (level, name) = match family {
        Family::V4 => (libc::SOL_IP, IP_XFRM_POLICY),
        Family::V6 => (libc::SOL_IPV6, IPV6_XFRM_POLICY),
    };
    for dir in [PolicyDir::IN, PolicyDir::OUT] {
        let bytes = allow_policy(family, dir).to_bytes();
        super::socket::setsockopt_bytes(fd, level, name, &bytes).map_err(|source| Error::Io {
            op: if family == Family::V4 {
                "setsockopt(IP_XFRM_POLICY)"
            } else {
                "setsockopt(IPV6_XFRM_POLICY)"
            },
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_policy_is_an_allow_policy_with_only_the_family_set() {
        let b = allow_policy(Family::V6, PolicyDir::OUT).to_bytes();
        assert_eq!(b.len(), 168);
        assert_eq!(&b[40..42], &10u16.to_ne_bytes());
        assert_eq!((b[160], b[161]), (1, 0));
        assert!(b[..40].iter().all(|&x| x == 0));
    }
}
