//! Conversions between the engine's types and the `pfkey` model: SA pairs into kernel
//! SAs, kernel ACQUIRE/EXPIRE into engine events, and a connection into its protect
//! policies.
//!
//! Pure functions only: no kernel calls, no logging. Keys are copied from the engine's
//! zeroizing [`ikecrypto::Secret`] into pfkey's zeroizing [`pfkey::Key`].

use std::net::IpAddr;

use ikengine::{
    ChildSa, EncapsulationMode, EspCipher, IntegrityAlgorithm, IpsecProtocol, KernelEvent,
    Selector, Subnet,
};
use pfkey::{
    Direction, EncryptionAlgorithm, Key, Lifetime, Mode, Policy, PolicyAction, PolicyId, Prefix,
    SaId, SecurityAssociation, SecurityProtocol, Template, TemplateLevel, UpperLayer,
};

use crate::config::{Connection, POLICY_PRIORITY};

/// The kernel protocol of an engine protocol.
pub(crate) fn protocol(p: IpsecProtocol) -> SecurityProtocol {
    match p {
        IpsecProtocol::Esp => SecurityProtocol::Esp,
        IpsecProtocol::Ah => SecurityProtocol::Ah,
    }
}

/// The engine protocol of a kernel protocol (IPComp has none).
pub(crate) fn protocol_from_kernel(p: SecurityProtocol) -> Option<IpsecProtocol> {
    match p {
        SecurityProtocol::Esp => Some(IpsecProtocol::Esp),
        SecurityProtocol::Ah => Some(IpsecProtocol::Ah),
        SecurityProtocol::Comp => None,
    }
}

fn mode(m: EncapsulationMode) -> Mode {
    match m {
        EncapsulationMode::Transport => Mode::Transport,
        EncapsulationMode::Tunnel => Mode::Tunnel,
    }
}

fn cipher(c: EspCipher) -> EncryptionAlgorithm {
    match c {
        EspCipher::Null => EncryptionAlgorithm::Null,
        EspCipher::Des => EncryptionAlgorithm::DesCbc,
        EspCipher::TripleDes => EncryptionAlgorithm::TripleDesCbc,
        EspCipher::Aes128 | EspCipher::Aes192 | EspCipher::Aes256 => EncryptionAlgorithm::AesCbc,
        // rfc4106(gcm(aes)); the key carries the 4-octet salt.
        EspCipher::AesGcm128 | EspCipher::AesGcm256 => {
            EncryptionAlgorithm::AesGcm { icv_bits: 128 }
        }
        // The enum is non-exhaustive; a future cipher is refused by the caller's check.
        #[allow(unreachable_patterns)]
        _ => EncryptionAlgorithm::Null,
    }
}

fn integrity(i: IntegrityAlgorithm) -> pfkey::IntegrityAlgorithm {
    match i {
        IntegrityAlgorithm::HmacMd5 => pfkey::IntegrityAlgorithm::HmacMd5_96,
        IntegrityAlgorithm::HmacSha1 => pfkey::IntegrityAlgorithm::HmacSha1_96,
        IntegrityAlgorithm::HmacSha256 => pfkey::IntegrityAlgorithm::HmacSha256_128,
        IntegrityAlgorithm::HmacSha384 => pfkey::IntegrityAlgorithm::HmacSha384_192,
        #[allow(unreachable_patterns)]
        _ => pfkey::IntegrityAlgorithm::HmacSha512_256,
    }
}

fn prefix(s: Subnet) -> Prefix {
    Prefix {
        addr: s.addr,
        len: s.prefix_len,
    }
}

fn subnet(p: Prefix) -> Subnet {
    Subnet {
        addr: p.addr,
        prefix_len: p.len,
    }
}

/// An engine selector as a kernel selector.
pub(crate) fn selector(s: &Selector) -> pfkey::Selector {
    let upper = if s.protocol == 0 {
        UpperLayer::Any
    } else {
        UpperLayer::Proto {
            proto: s.protocol,
            source_port: (s.source_port != 0).then_some(s.source_port),
            destination_port: (s.destination_port != 0).then_some(s.destination_port),
        }
    };
    pfkey::Selector {
        source: prefix(s.source),
        destination: prefix(s.destination),
        upper,
    }
}

/// A kernel selector as an engine selector.
pub(crate) fn selector_from_kernel(s: &pfkey::Selector) -> Selector {
    let (protocol, source_port, destination_port) = match s.upper {
        UpperLayer::Any => (0, 0, 0),
        UpperLayer::Proto {
            proto,
            source_port,
            destination_port,
        } => (
            proto,
            source_port.unwrap_or(0),
            destination_port.unwrap_or(0),
        ),
    };
    Selector {
        source: subnet(s.source),
        destination: subnet(s.destination),
        protocol,
        source_port,
        destination_port,
    }
}

/// One negotiated SA as the kernel SA to install, with the connection's `reqid`.
pub(crate) fn child_sa(sa: &ChildSa, reqid: u32) -> SecurityAssociation {
    let id = SaId {
        destination: sa.destination,
        spi: sa.spi,
        protocol: protocol(sa.protocol),
    };
    let mut k = SecurityAssociation::new(id, sa.source, mode(sa.mode), reqid);
    if let Some((c, key)) = &sa.encryption {
        k.encryption = Some((cipher(*c), Key::new(key.as_bytes().to_vec())));
    }
    if let Some((i, key)) = &sa.integrity {
        k.integrity = Some((integrity(*i), Key::new(key.as_bytes().to_vec())));
    }
    let kb = |v: Option<u64>| v.map(|kb| kb.saturating_mul(1024));
    k.lifetime = Lifetime {
        soft_add_seconds: Some(sa.lifetime.soft_seconds),
        hard_add_seconds: Some(sa.lifetime.hard_seconds),
        soft_bytes: kb(sa.lifetime.soft_kilobytes),
        hard_bytes: kb(sa.lifetime.hard_kilobytes),
        ..Lifetime::default()
    };
    // A transport-mode SA carries its traffic selector (XFRM checks it); a tunnel-mode SA's
    // traffic is chosen by the policy.
    if sa.mode == EncapsulationMode::Transport {
        k.selector = Some(selector(&sa.selector));
    }
    k
}

/// A kernel event for the engine; `None` for events it does not take (policy expiry,
/// mappings, IPComp, SAs with foreign reqids, ACQUIREs without addresses).
pub(crate) fn kernel_event(
    e: &pfkey::KernelEvent,
    owns_reqid: impl Fn(u32) -> bool,
) -> Option<KernelEvent> {
    match e {
        pfkey::KernelEvent::Acquire(a) => {
            if a.source.is_unspecified() || a.destination.is_unspecified() {
                return None;
            }
            Some(KernelEvent::Acquire {
                local: a.source,
                remote: a.destination,
                selector: a.selector.as_ref().map(selector_from_kernel),
            })
        }
        pfkey::KernelEvent::Expire(x) => {
            if let Some(r) = x.reqid {
                if !owns_reqid(r) {
                    return None;
                }
            }
            Some(KernelEvent::Expire {
                spi: x.id.spi,
                protocol: protocol_from_kernel(x.id.protocol)?,
                destination: x.id.destination,
                hard: x.hard,
            })
        }
        _ => None,
    }
}

fn template(c: &Connection, from: IpAddr, to: IpAddr) -> Template {
    Template {
        protocol: protocol(c.protocol),
        mode: mode(c.mode),
        reqid: c.reqid,
        tunnel: (c.mode == EncapsulationMode::Tunnel).then_some((from, to)),
        level: TemplateLevel::Require,
    }
}

/// The protect policies of a connection: out (local → remote), in (remote → local) and,
/// in tunnel mode, fwd (remote → local). `None` when the connection has no fixed
/// addresses (a responder-only catch-all).
pub(crate) fn policies(c: &Connection) -> Option<Vec<Policy>> {
    let ts = c.selector?;
    let (local, remote) = (c.local?, c.remote?);
    let upper = |proto: u8, sp: u16, dp: u16| {
        if proto == 0 {
            UpperLayer::Any
        } else {
            UpperLayer::Proto {
                proto,
                source_port: (sp != 0).then_some(sp),
                destination_port: (dp != 0).then_some(dp),
            }
        }
    };
    let out_sel = pfkey::Selector {
        source: prefix(ts.local),
        destination: prefix(ts.remote),
        upper: upper(ts.protocol, ts.local_port, ts.remote_port),
    };
    let in_sel = pfkey::Selector {
        source: prefix(ts.remote),
        destination: prefix(ts.local),
        upper: upper(ts.protocol, ts.remote_port, ts.local_port),
    };
    let policy = |selector, direction, t: Template| Policy {
        id: PolicyId {
            selector,
            direction,
            mark: None,
        },
        action: PolicyAction::Protect(vec![t]),
        priority: POLICY_PRIORITY,
        index: None,
        lifetime: Lifetime::default(),
    };
    let mut v = vec![
        policy(out_sel, Direction::Out, template(c, local, remote)),
        policy(in_sel, Direction::In, template(c, remote, local)),
    ];
    if c.mode == EncapsulationMode::Tunnel {
        v.push(policy(in_sel, Direction::Fwd, template(c, remote, local)));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StartMode;
    use ikecrypto::Secret;
    use ikengine::{ChildLifetime, TrafficSelector};

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn child(mode: EncapsulationMode) -> ChildSa {
        ChildSa {
            spi: 0xc0ffee01,
            protocol: IpsecProtocol::Esp,
            source: a("192.0.2.12"),
            destination: a("192.0.2.11"),
            mode,
            encryption: Some((EspCipher::Aes256, Secret::new(vec![7; 32]))),
            integrity: Some((IntegrityAlgorithm::HmacSha256, Secret::new(vec![9; 32]))),
            lifetime: ChildLifetime {
                hard_seconds: 3600,
                soft_seconds: 3240,
                hard_kilobytes: Some(100_000),
                soft_kilobytes: Some(90_000),
            },
            selector: Selector {
                source: Subnet::host(a("192.0.2.12")),
                destination: Subnet::host(a("192.0.2.11")),
                protocol: 6,
                source_port: 0,
                destination_port: 443,
            },
        }
    }

    #[test]
    fn transport_sa() {
        let k = child_sa(&child(EncapsulationMode::Transport), 0x3801);
        assert_eq!(k.id.spi, 0xc0ffee01);
        assert_eq!(k.id.destination, a("192.0.2.11"));
        assert_eq!(k.id.protocol, SecurityProtocol::Esp);
        assert_eq!(k.source, a("192.0.2.12"));
        assert_eq!(k.mode, Mode::Transport);
        assert_eq!(k.reqid, 0x3801);
        let (alg, key) = k.encryption.as_ref().unwrap();
        assert_eq!(*alg, EncryptionAlgorithm::AesCbc);
        assert_eq!(key.as_bytes(), &[7; 32]);
        let (alg, key) = k.integrity.as_ref().unwrap();
        assert_eq!(*alg, pfkey::IntegrityAlgorithm::HmacSha256_128);
        assert_eq!(key.bits(), 256);
        assert_eq!(k.lifetime.hard_add_seconds, Some(3600));
        assert_eq!(k.lifetime.soft_add_seconds, Some(3240));
        assert_eq!(k.lifetime.hard_bytes, Some(100_000 * 1024));
        assert_eq!(k.lifetime.soft_bytes, Some(90_000 * 1024));
        let sel = k.selector.unwrap();
        assert_eq!(sel.source, Prefix::host(a("192.0.2.12")));
        assert_eq!(
            sel.upper,
            UpperLayer::Proto {
                proto: 6,
                source_port: None,
                destination_port: Some(443)
            }
        );
        assert_eq!(
            selector_from_kernel(&sel),
            child(EncapsulationMode::Transport).selector
        );
    }

    #[test]
    fn tunnel_sa_and_algorithms() {
        let k = child_sa(&child(EncapsulationMode::Tunnel), 0x3800);
        assert_eq!(k.mode, Mode::Tunnel);
        assert_eq!(k.selector, None);
        assert_eq!(
            cipher(EspCipher::TripleDes),
            EncryptionAlgorithm::TripleDesCbc
        );
        assert_eq!(cipher(EspCipher::Des), EncryptionAlgorithm::DesCbc);
        assert_eq!(cipher(EspCipher::Null), EncryptionAlgorithm::Null);
        assert_eq!(
            cipher(EspCipher::AesGcm128),
            EncryptionAlgorithm::AesGcm { icv_bits: 128 }
        );
        assert_eq!(
            integrity(IntegrityAlgorithm::HmacSha1),
            pfkey::IntegrityAlgorithm::HmacSha1_96
        );
        assert_eq!(
            integrity(IntegrityAlgorithm::HmacMd5),
            pfkey::IntegrityAlgorithm::HmacMd5_96
        );
        assert!(format!("{k:?}").contains("redacted"));
    }

    #[test]
    fn kernel_events() {
        let acq = pfkey::KernelEvent::Acquire(pfkey::Acquire {
            sequence: 1,
            policy_index: None,
            policy_direction: None,
            source: a("192.0.2.11"),
            destination: a("192.0.2.12"),
            selector: Some(pfkey::Selector::hosts(a("198.51.100.1"), a("198.51.100.2"))),
            template: None,
        });
        let KernelEvent::Acquire {
            local,
            remote,
            selector,
        } = kernel_event(&acq, |_| true).unwrap()
        else {
            panic!()
        };
        assert_eq!((local, remote), (a("192.0.2.11"), a("192.0.2.12")));
        assert_eq!(
            selector.unwrap().destination,
            Subnet::host(a("198.51.100.2"))
        );
        let exp = |reqid| {
            pfkey::KernelEvent::Expire(pfkey::Expire {
                id: SaId {
                    destination: a("192.0.2.12"),
                    spi: 5,
                    protocol: SecurityProtocol::Ah,
                },
                source: a("192.0.2.11"),
                reqid: Some(reqid),
                hard: true,
            })
        };
        let owned = |r: u32| (0x3000..=0x3fff).contains(&r);
        assert_eq!(
            kernel_event(&exp(0x3800), owned),
            Some(KernelEvent::Expire {
                spi: 5,
                protocol: IpsecProtocol::Ah,
                destination: a("192.0.2.12"),
                hard: true
            })
        );
        assert_eq!(kernel_event(&exp(7), owned), None);
    }

    fn conn(mode: EncapsulationMode, ts: TrafficSelector) -> Connection {
        Connection {
            name: "c".into(),
            peer: "p".into(),
            remote: Some(a("192.0.2.12")),
            local: Some(a("192.0.2.11")),
            selector: Some(ts),
            mode,
            protocol: IpsecProtocol::Esp,
            reqid: 0x3802,
            start: StartMode::Acquire,
            offload: false,
        }
    }

    #[test]
    fn transport_policies() {
        let ts =
            TrafficSelector::between(Subnet::host(a("192.0.2.11")), Subnet::host(a("192.0.2.12")));
        let p = policies(&conn(EncapsulationMode::Transport, ts)).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].id.direction, Direction::Out);
        assert_eq!(
            p[0].id.selector,
            pfkey::Selector::hosts(a("192.0.2.11"), a("192.0.2.12"))
        );
        assert_eq!(p[1].id.direction, Direction::In);
        assert_eq!(
            p[1].id.selector,
            pfkey::Selector::hosts(a("192.0.2.12"), a("192.0.2.11"))
        );
        let own = pfkey::Ownership::default();
        for pol in &p {
            assert!(own.owns_policy(pol));
            let PolicyAction::Protect(t) = &pol.action else {
                panic!()
            };
            assert_eq!(t[0].reqid, 0x3802);
            assert_eq!(t[0].tunnel, None);
            assert_eq!(t[0].mode, Mode::Transport);
        }
    }

    #[test]
    fn tunnel_policies() {
        let mut ts = TrafficSelector::between(
            Subnet::host(a("198.51.100.1")),
            Subnet {
                addr: a("198.51.100.0"),
                prefix_len: 24,
            },
        );
        ts.protocol = 17;
        ts.remote_port = 53;
        let p = policies(&conn(EncapsulationMode::Tunnel, ts)).unwrap();
        assert_eq!(p.len(), 3);
        let dirs: Vec<_> = p.iter().map(|p| p.id.direction).collect();
        assert_eq!(dirs, [Direction::Out, Direction::In, Direction::Fwd]);
        let PolicyAction::Protect(t) = &p[0].action else {
            panic!()
        };
        assert_eq!(t[0].tunnel, Some((a("192.0.2.11"), a("192.0.2.12"))));
        let PolicyAction::Protect(t) = &p[2].action else {
            panic!()
        };
        assert_eq!(t[0].tunnel, Some((a("192.0.2.12"), a("192.0.2.11"))));
        assert_eq!(
            p[1].id.selector.upper,
            UpperLayer::Proto {
                proto: 17,
                source_port: Some(53),
                destination_port: None
            }
        );
        assert_eq!(
            p[1].id.selector.destination,
            Prefix::host(a("198.51.100.1"))
        );
    }
}
