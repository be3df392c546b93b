//! Default exemptions (`ipsecexempt`, 0-3) as kernel policies.
//!
//! The level's classes (the table is in the `ipsec-exempt` crate, shared with the kernel
//! module `kmod/`) become `allow` policies in the priority band [`EXEMPT_PRIORITIES`],
//! above every policy the agent compiles (band 1000..=199999), so no filter of a policy can
//! catch exempt traffic:
//!
//! | class | selectors (IPv4 and IPv6 unless said) |
//! |---|---|
//! | ISAKMP | UDP sport 500 dport 500; UDP sport 4500 dport 4500 |
//! | Kerberos | UDP dport 88; UDP sport 88; TCP dport 88; TCP sport 88 |
//! | RSVP | protocol 46 |
//! | multicast | destination 224.0.0.0/4; ff00::/8 |
//! | broadcast (IPv4) | destination 255.255.255.255/32 and each directed broadcast/32 |
//!
//! - **Outbound** always as these selectors: the kernel looks the outbound policy up at
//!   route lookup, before any netfilter hook, so the module cannot help there.
//! - **Inbound**: with the module loaded ([`ModuleParams`]), one `allow` policy per family
//!   keyed on the module's mark (the module marks exempt packets in PREROUTING, before
//!   the policy check); without it (stock kernels, FreeBSD), the same selectors as outbound.
//!
//! What it does not do: the IPv6 "exempt everything" option of the seed (policyd keeps
//! [`Ipv6Mode::Classify`](ipsec_exempt::Ipv6Mode)); per-socket bypass (the daemons do that on their
//! own IKE sockets, `pfkey::bypass`); watching interfaces (the caller passes the directed
//! broadcasts and calls again when they change). Without the module the fallback differs
//! in: directed broadcasts are fixed when the policies are installed; there are no
//! counters; on FreeBSD policies are ordered by insertion, not priority.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use ipsec_exempt::{
    Class, Level, PORT_ISAKMP, PORT_KERBEROS, PORT_NAT_T, PROTO_RSVP, PROTO_TCP, PROTO_UDP,
};
use pfkey::{
    Direction, Family, KernelInterface, Lifetime, Mark, Policy, PolicyAction, PolicyId, Prefix,
    Selector, UpperLayer,
};

/// Priorities of the exemption policies: above (lower than) the agent's band.
pub const EXEMPT_PRIORITIES: RangeInclusive<u32> = 100..=199;

/// Where the kernel module's parameters are when it is loaded.
pub const MODULE_PARAMS: &str = "/sys/module/ipsec_exempt/parameters";

/// The kernel module `ipsec_exempt` (kmod/), through its sysfs parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleParams {
    dir: PathBuf,
}

impl ModuleParams {
    /// The module at [`MODULE_PARAMS`], if loaded.
    pub fn probe() -> Option<ModuleParams> {
        Self::at(Path::new(MODULE_PARAMS))
    }

    /// The module whose parameters are in `dir`, if that directory exists.
    pub fn at(dir: &Path) -> Option<ModuleParams> {
        dir.is_dir().then(|| ModuleParams {
            dir: dir.to_path_buf(),
        })
    }

    /// The mark the module sets on exempt packets (value = mask).
    pub fn mark(&self) -> io::Result<Mark> {
        let text = fs::read_to_string(self.dir.join("mark"))?;
        let value: u32 = text
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("mark {text:?}")))?;
        if value == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "mark 0"));
        }
        Ok(Mark { value, mask: value })
    }

    /// The module's current level.
    pub fn level(&self) -> io::Result<Level> {
        let text = fs::read_to_string(self.dir.join("level"))?;
        text.trim()
            .parse()
            .ok()
            .and_then(Level::from_u32)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("level {text:?}")))
    }

    /// Sets the module's level (a no-op when it already has it).
    pub fn set_level(&self, level: Level) -> io::Result<()> {
        if self.level().ok() == Some(level) {
            return Ok(());
        }
        fs::write(self.dir.join("level"), format!("{}\n", level.value()))
    }
}

/// What the exemption policies depend on besides the level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExemptEnvironment {
    /// The subnet broadcast addresses of the interfaces.
    pub directed_broadcasts: Vec<Ipv4Addr>,
    /// The module's mark, when the module is loaded.
    pub module_mark: Option<Mark>,
}

fn any(family: Family) -> Prefix {
    Prefix::any(family)
}

fn ports(proto: u8, sport: Option<u16>, dport: Option<u16>) -> UpperLayer {
    UpperLayer::Proto {
        proto,
        source_port: sport,
        destination_port: dport,
    }
}

/// The selectors of one class (both directions use them unchanged: the table's rows are
/// symmetric).
pub fn class_selectors(class: Class, directed_broadcasts: &[Ipv4Addr]) -> Vec<Selector> {
    let both = [Family::V4, Family::V6];
    let upper = |u: UpperLayer| -> Vec<Selector> {
        both.iter()
            .map(|&f| Selector {
                source: any(f),
                destination: any(f),
                upper: u,
            })
            .collect()
    };
    let to = |p: Prefix| Selector {
        source: any(p.family()),
        destination: p,
        upper: UpperLayer::Any,
    };
    match class {
        Class::Isakmp => upper(ports(PROTO_UDP, Some(PORT_ISAKMP), Some(PORT_ISAKMP))),
        Class::IsakmpNatT => upper(ports(PROTO_UDP, Some(PORT_NAT_T), Some(PORT_NAT_T))),
        Class::Kerberos => [PROTO_UDP, PROTO_TCP]
            .into_iter()
            .flat_map(|p| {
                let mut v = upper(ports(p, None, Some(PORT_KERBEROS)));
                v.extend(upper(ports(p, Some(PORT_KERBEROS), None)));
                v
            })
            .collect(),
        Class::Rsvp => upper(ports(PROTO_RSVP, None, None)),
        Class::Multicast => vec![
            to(Prefix {
                addr: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 0)),
                len: 4,
            }),
            to(Prefix {
                addr: IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
                len: 8,
            }),
        ],
        Class::Broadcast => std::iter::once(Ipv4Addr::BROADCAST)
            .chain(directed_broadcasts.iter().copied())
            .map(|a| to(Prefix::host(IpAddr::V4(a))))
            .collect(),
        Class::Ipv6 => Vec::new(),
    }
}

/// The exemption policies for `level`: outbound selectors always, inbound a mark-keyed
/// allow per family with the module, the selectors without it. Sorted, no duplicates.
pub fn exemption_policies(level: Level, env: &ExemptEnvironment) -> Vec<Policy> {
    let base = *EXEMPT_PRIORITIES.start();
    let mut out = Vec::new();
    let policy =
        |selector: Selector, direction: Direction, mark: Option<Mark>, priority: u32| Policy {
            id: PolicyId {
                selector,
                direction,
                mark,
            },
            action: PolicyAction::Allow,
            priority,
            index: None,
            lifetime: Lifetime::default(),
        };
    for class in Class::ALL {
        if !level.exempts(class) {
            continue;
        }
        let priority = base + 1 + u32::from(class as u8);
        for sel in class_selectors(class, &env.directed_broadcasts) {
            out.push(policy(sel, Direction::Out, None, priority));
            if env.module_mark.is_none() {
                out.push(policy(sel, Direction::In, None, priority));
            }
        }
    }
    if let Some(mark) = env.module_mark {
        for f in [Family::V4, Family::V6] {
            out.push(policy(
                Selector::between(any(f), any(f)),
                Direction::In,
                Some(mark),
                base,
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.id));
    out
}

/// What [`apply_exemptions`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExemptReport {
    /// Policies added.
    pub added: usize,
    /// Policies removed.
    pub removed: usize,
    /// IPv6 policies the kernel refused for lack of IPv6.
    pub skipped: usize,
}

fn in_band(p: &Policy) -> bool {
    EXEMPT_PRIORITIES.contains(&p.priority) && p.action == PolicyAction::Allow
}

fn same(a: &Policy, b: &Policy) -> bool {
    a.id == b.id && a.priority == b.priority && a.action == b.action
}

/// Makes the kernel's allow policies in [`EXEMPT_PRIORITIES`] exactly `desired`: adds the
/// missing ones first (no window without an exemption that stays), then removes the rest.
/// Idempotent.
pub fn apply_exemptions(
    kernel: &mut dyn KernelInterface,
    desired: &[Policy],
) -> pfkey::Result<ExemptReport> {
    let installed: Vec<Policy> = kernel
        .dump_policies()?
        .into_iter()
        .filter(in_band)
        .collect();
    let mut report = ExemptReport::default();
    for p in desired {
        if installed.iter().any(|i| same(i, p)) {
            continue;
        }
        let r = if installed.iter().any(|i| i.id == p.id) {
            kernel.update_policy(p)
        } else {
            kernel.add_policy(p)
        };
        match r {
            Ok(()) => report.added += 1,
            // A kernel without IPv6: the IPv4 exemptions still go in.
            Err(e)
                if p.id.selector.source.family() == Family::V6
                    && matches!(e.errno(), Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)) =>
            {
                report.skipped += 1
            }
            Err(e) => return Err(e),
        }
    }
    for i in &installed {
        if desired.iter().any(|p| p.id == i.id) {
            continue;
        }
        match kernel.delete_policy(&i.id) {
            Ok(()) => report.removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Removes every exemption policy (shutdown).
pub fn remove_exemptions(kernel: &mut dyn KernelInterface) -> pfkey::Result<ExemptReport> {
    apply_exemptions(kernel, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfkey::memory::MemoryKernel;

    fn env(mark: bool) -> ExemptEnvironment {
        ExemptEnvironment {
            directed_broadcasts: vec![Ipv4Addr::new(192, 0, 2, 255)],
            module_mark: mark.then_some(Mark {
                value: 0x2000_0000,
                mask: 0x2000_0000,
            }),
        }
    }

    fn count(ps: &[Policy], dir: Direction) -> usize {
        ps.iter().filter(|p| p.id.direction == dir).count()
    }

    #[test]
    fn policy_counts_per_level_without_the_module() {
        // ISAKMP 2 x 2 families; Kerberos 4 x 2; RSVP 2; multicast 2; broadcast 2.
        for (level, n) in [
            (Level::L0, 4 + 8 + 2 + 2 + 2),
            (Level::L1, 4 + 2 + 2),
            (Level::L2, 4 + 8 + 2),
            (Level::L3, 4),
        ] {
            let ps = exemption_policies(level, &env(false));
            assert_eq!(count(&ps, Direction::Out), n, "{level:?}");
            assert_eq!(count(&ps, Direction::In), n, "{level:?}");
            assert!(ps.iter().all(
                |p| EXEMPT_PRIORITIES.contains(&p.priority) && p.action == PolicyAction::Allow
            ));
            assert!(ps.iter().all(|p| p.id.mark.is_none()));
        }
    }

    #[test]
    fn with_the_module_inbound_is_one_marked_policy_per_family() {
        let ps = exemption_policies(Level::L0, &env(true));
        let inbound: Vec<&Policy> = ps
            .iter()
            .filter(|p| p.id.direction == Direction::In)
            .collect();
        assert_eq!(inbound.len(), 2);
        for p in inbound {
            assert_eq!(p.id.mark.map(|m| m.value), Some(0x2000_0000));
            assert_eq!(p.id.selector.upper, UpperLayer::Any);
            assert_eq!(p.id.selector.destination.len, 0);
        }
        assert_eq!(count(&ps, Direction::Out), 18);
    }

    #[test]
    fn every_priority_is_above_the_agents_band() {
        let band = pfkey::Ownership::default().priorities;
        assert!(EXEMPT_PRIORITIES.end() < band.start());
        for p in exemption_policies(Level::L0, &env(true)) {
            assert!(!pfkey::Ownership::default().owns_policy(&p), "{p:?}");
        }
    }

    #[test]
    fn apply_is_a_diff_and_idempotent_and_keeps_foreign_policies() {
        let mut k = MemoryKernel::new();
        let foreign = Policy {
            id: PolicyId {
                selector: Selector::between(any(Family::V4), any(Family::V4)),
                direction: Direction::Out,
                mark: None,
            },
            action: PolicyAction::Block,
            priority: 1500,
            index: None,
            lifetime: Lifetime::default(),
        };
        k.add_policy(&foreign).unwrap();
        let l0 = exemption_policies(Level::L0, &env(false));
        let r = apply_exemptions(&mut k, &l0).unwrap();
        assert_eq!((r.added, r.removed), (l0.len(), 0));
        assert_eq!(
            apply_exemptions(&mut k, &l0).unwrap(),
            ExemptReport::default()
        );
        let l3 = exemption_policies(Level::L3, &env(false));
        let r = apply_exemptions(&mut k, &l3).unwrap();
        assert_eq!((r.added, r.removed), (0, l0.len() - l3.len()));
        let left = k.dump_policies().unwrap();
        assert_eq!(left.len(), l3.len() + 1);
        let r = remove_exemptions(&mut k).unwrap();
        assert_eq!(r.removed, l3.len());
        let left = k.dump_policies().unwrap();
        assert_eq!(left.len(), 1);
        assert!(same(&left[0], &foreign), "{left:?}");
    }

    #[test]
    fn module_params_read_mark_and_level_and_write_level() {
        let dir = std::env::temp_dir().join(format!("ipsec-exempt-params-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("mark"), "536870912\n").unwrap();
        fs::write(dir.join("level"), "3\n").unwrap();
        let m = ModuleParams::at(&dir).expect("present");
        assert_eq!(
            m.mark().unwrap(),
            Mark {
                value: 0x2000_0000,
                mask: 0x2000_0000
            }
        );
        assert_eq!(m.level().unwrap(), Level::L3);
        m.set_level(Level::L1).unwrap();
        assert_eq!(fs::read_to_string(dir.join("level")).unwrap().trim(), "1");
        fs::write(dir.join("level"), "7\n").unwrap();
        assert!(m.level().is_err());
        fs::write(dir.join("mark"), "0\n").unwrap();
        assert!(m.mark().is_err());
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ModuleParams::at(&dir), None);
    }
}
