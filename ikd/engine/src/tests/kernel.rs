//! Kernel-driven negotiation: ACQUIRE, soft and hard EXPIRE, SPI allocation failures.

use super::util::{ip, Pair, Side, TestConfig, I_ADDR, R_ADDR};
use crate::config::{ChildConfig, EncapsulationMode, Subnet, TrafficSelector};
use crate::types::{Action, Event, FailureReason, KernelEvent, Selector, SpiAllocationFailed};

fn acquire(pair: &mut Pair, selector: Option<Selector>) {
    pair.initiator.handle_kernel_event(
        pair.now,
        KernelEvent::Acquire {
            local: ip(I_ADDR),
            remote: ip(R_ADDR),
            selector,
        },
    );
}

#[test]
fn acquire_starts_main_mode_and_a_second_acquire_reuses_it() {
    let cfg = TestConfig::psk("secret");
    let mut i_cfg = cfg.initiator();
    let mut r_cfg = cfg.responder();
    let (a, b) = (Subnet::host(ip(I_ADDR)), Subnet::host(ip(R_ADDR)));
    // A second child: only TCP port 80 between the hosts.
    let mut ts = TrafficSelector::between(a, b);
    ts.protocol = 6;
    ts.remote_port = 80;
    let qm = super::util::qm_3des(EncapsulationMode::Transport);
    i_cfg.children.insert(
        0,
        ChildConfig::new("web", "r", qm.clone()).with_selector(ts),
    );
    let mut rts = TrafficSelector::between(b, a);
    rts.protocol = 6;
    rts.local_port = 80;
    r_cfg
        .children
        .insert(0, ChildConfig::new("web", "i", qm).with_selector(rts));
    let mut pair = Pair::with_configs(i_cfg, r_cfg);

    let web = Selector {
        source: a,
        destination: b,
        protocol: 6,
        source_port: 0,
        destination_port: 80,
    };
    acquire(&mut pair, Some(web));
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_eq!(pair.pairs(Side::I)[0].child.0, "web");
    assert_eq!(pair.pairs(Side::R)[0].child.0, "web");

    // Other traffic: the catch-all child, over the same main mode.
    let udp = Selector {
        protocol: 17,
        destination_port: 53,
        ..web
    };
    acquire(&mut pair, Some(udp));
    pair.drive();
    let names: Vec<_> = pair
        .pairs(Side::I)
        .iter()
        .map(|p| p.child.0.clone())
        .collect();
    assert_eq!(names, ["web", "c"]);
    let s = pair.initiator.statistics();
    assert_eq!(
        (s.main_modes_started, s.quick_modes_completed, s.acquires),
        (1, 2, 2)
    );
    assert_eq!(pair.responder.statistics().main_modes_started, 1);
}

#[test]
fn acquire_during_negotiation_does_not_start_a_second_one() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    acquire(&mut pair, None);
    acquire(&mut pair, None);
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 1);
    assert_eq!(pair.initiator.statistics().quick_modes_started, 1);
}

#[test]
fn soft_expire_rekeys_with_a_new_quick_mode_and_hard_expire_forgets() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.establish();
    let out_spi = pair.pairs(Side::I)[0].outbound.spi;
    let soft = KernelEvent::Expire {
        spi: out_spi,
        protocol: crate::IpsecProtocol::Esp,
        destination: ip(R_ADDR),
        hard: false,
    };
    pair.initiator.handle_kernel_event(pair.now, soft.clone());
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 2);
    assert_eq!(pair.pairs(Side::R).len(), 2);
    super::util::assert_pairs_match(pair.pairs(Side::I)[1], pair.pairs(Side::R)[1]);
    let s = pair.initiator.statistics();
    assert_eq!((s.main_modes_started, s.rekeys), (1, 1));
    // A second soft EXPIRE for the same SA does not rekey again.
    pair.initiator.handle_kernel_event(pair.now, soft);
    pair.drive();
    assert_eq!(pair.pairs(Side::I).len(), 2);
    assert_eq!(pair.initiator.child_count(), 2);
    pair.initiator.handle_kernel_event(
        pair.now,
        KernelEvent::Expire {
            spi: out_spi,
            protocol: crate::IpsecProtocol::Esp,
            destination: ip(R_ADDR),
            hard: true,
        },
    );
    assert_eq!(pair.initiator.child_count(), 1);
}

#[test]
fn spi_allocation_failure_ends_the_quick_mode_with_an_event() {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.auto_spi = false;
    pair.establish();
    let request = pair
        .actions_i
        .iter()
        .find_map(|a| match a {
            Action::AllocSpi { request, .. } => Some(*request),
            _ => None,
        })
        .unwrap();
    pair.initiator.handle_spi_allocated(
        pair.now,
        request,
        Err(SpiAllocationFailed("ENOMEM".into())),
    );
    pair.collect();
    assert!(pair.events(Side::I).iter().any(|e| matches!(
        e,
        Event::ExchangeFailed {
            reason: FailureReason::SpiAllocation,
            ..
        }
    )));
    assert_eq!(pair.initiator.statistics().spi_failures, 1);
}
