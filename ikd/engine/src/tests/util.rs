//! The Pair harness: two [`Endpoint`]s, a fake clock, an in-memory network with loss and
//! reorder knobs, and an automatic kernel that answers SPI requests.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm, RustCryptoProvider};

use crate::config::{
    ChildConfig, EncapsulationMode, EndpointConfig, EspCipher, Identity, IntegrityAlgorithm,
    MainModeProposal, PeerAddress, PeerConfig, QuickModeProposal, Subnet, TrafficSelector,
};
use crate::types::{Action, Event, Path, SaPair};
use crate::Endpoint;

pub(crate) const I_ADDR: &str = "192.0.2.1";
pub(crate) const R_ADDR: &str = "192.0.2.2";

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(crate) fn sock(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), 500)
}

pub(crate) fn mm_3des() -> MainModeProposal {
    MainModeProposal::psk(
        CipherAlgorithm::TripleDesCbc,
        HashAlgorithm::Sha1,
        DhGroup::Modp1024,
    )
}

pub(crate) fn qm_3des(mode: EncapsulationMode) -> QuickModeProposal {
    QuickModeProposal::esp(EspCipher::TripleDes, IntegrityAlgorithm::HmacSha1, mode)
}

/// Builds the two configurations of a test.
#[derive(Clone)]
pub(crate) struct TestConfig {
    pub(crate) mm_i: Vec<MainModeProposal>,
    pub(crate) mm_r: Vec<MainModeProposal>,
    pub(crate) qm_i: QuickModeProposal,
    pub(crate) qm_r: QuickModeProposal,
    pub(crate) psk_i: Vec<u8>,
    pub(crate) psk_r: Vec<u8>,
    pub(crate) tunnel: bool,
    pub(crate) responder_commit: bool,
    pub(crate) max_half_open: usize,
}

impl TestConfig {
    pub(crate) fn psk(psk: &str) -> Self {
        Self {
            mm_i: vec![mm_3des()],
            mm_r: vec![mm_3des()],
            qm_i: qm_3des(EncapsulationMode::Transport),
            qm_r: qm_3des(EncapsulationMode::Transport),
            psk_i: psk.as_bytes().to_vec(),
            psk_r: psk.as_bytes().to_vec(),
            tunnel: false,
            responder_commit: false,
            max_half_open: 1024,
        }
    }

    pub(crate) fn with_mm(mut self, p: MainModeProposal) -> Self {
        self.mm_i = vec![p];
        self.mm_r = vec![p];
        self
    }

    pub(crate) fn with_qm(mut self, p: QuickModeProposal) -> Self {
        self.tunnel = p.mode == EncapsulationMode::Tunnel;
        self.qm_i = p.clone();
        self.qm_r = p;
        self
    }

    fn selectors(&self) -> (Option<TrafficSelector>, Option<TrafficSelector>) {
        if !self.tunnel {
            return (None, None);
        }
        let a = Subnet {
            addr: ip("10.1.0.0"),
            prefix_len: 16,
        };
        let b = Subnet {
            addr: ip("10.2.0.0"),
            prefix_len: 16,
        };
        (
            Some(TrafficSelector::between(a, b)),
            Some(TrafficSelector::between(b, a)),
        )
    }

    pub(crate) fn initiator(&self) -> EndpointConfig {
        let (ts_i, _) = self.selectors();
        let mut c = EndpointConfig::new(Identity::Address);
        c.peers.push(
            PeerConfig::psk("r", PeerAddress::Address(ip(R_ADDR)), &self.psk_i)
                .with_local(ip(I_ADDR)),
        );
        c.main_mode_proposals = self.mm_i.clone();
        let mut child = ChildConfig::new("c", "r", self.qm_i.clone());
        child.selector = ts_i;
        c.children.push(child);
        c.max_half_open = self.max_half_open;
        c
    }

    pub(crate) fn responder(&self) -> EndpointConfig {
        let (_, ts_r) = self.selectors();
        let mut c = EndpointConfig::new(Identity::Address);
        c.peers.push(
            PeerConfig::psk("i", PeerAddress::Address(ip(I_ADDR)), &self.psk_r)
                .with_local(ip(R_ADDR)),
        );
        c.main_mode_proposals = self.mm_r.clone();
        let mut child = ChildConfig::new("c", "i", self.qm_r.clone());
        child.selector = ts_r;
        c.children.push(child);
        c.responder_commit = self.responder_commit;
        c.max_half_open = self.max_half_open;
        c
    }
}

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    I,
    R,
}

/// Two endpoints on a simulated network.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) initiator: Endpoint,
    pub(crate) responder: Endpoint,
    /// Datagrams in flight to the responder / to the initiator.
    pub(crate) to_r: VecDeque<Vec<u8>>,
    pub(crate) to_i: VecDeque<Vec<u8>>,
    /// Drop the next datagram sent towards a side when its entry is `true` (consumed per
    /// datagram; empty = deliver).
    pub(crate) loss_to_r: VecDeque<bool>,
    pub(crate) loss_to_i: VecDeque<bool>,
    /// Drop everything to the responder.
    pub(crate) blackhole_to_r: bool,
    /// Deliver the two oldest queued datagrams in reverse order.
    pub(crate) reorder: bool,
    /// Answer SPI requests automatically.
    pub(crate) auto_spi: bool,
    next_spi: u32,
    /// Actions other than AllocSpi, per side.
    pub(crate) actions_i: Vec<Action>,
    pub(crate) actions_r: Vec<Action>,
    /// Every datagram each side sent (before loss).
    pub(crate) sent_by_i: Vec<Vec<u8>>,
    pub(crate) sent_by_r: Vec<Vec<u8>>,
}

impl Pair {
    pub(crate) fn new(cfg: &TestConfig) -> Self {
        Self::with_configs(cfg.initiator(), cfg.responder())
    }

    pub(crate) fn with_configs(i: EndpointConfig, r: EndpointConfig) -> Self {
        let crypto = Arc::new(RustCryptoProvider::new());
        Self {
            now: Instant::now(),
            initiator: Endpoint::new(Arc::new(i), crypto.clone(), [1; 32]),
            responder: Endpoint::new(Arc::new(r), crypto, [2; 32]),
            to_r: VecDeque::new(),
            to_i: VecDeque::new(),
            loss_to_r: VecDeque::new(),
            loss_to_i: VecDeque::new(),
            blackhole_to_r: false,
            reorder: false,
            auto_spi: true,
            next_spi: 0xc000_0000,
            actions_i: Vec::new(),
            actions_r: Vec::new(),
            sent_by_i: Vec::new(),
            sent_by_r: Vec::new(),
        }
    }

    pub(crate) fn r_path() -> Path {
        Self::path(Side::R)
    }

    pub(crate) fn i_path() -> Path {
        Self::path(Side::I)
    }

    fn path(side: Side) -> Path {
        match side {
            Side::I => Path {
                local: sock(I_ADDR),
                remote: sock(R_ADDR),
            },
            Side::R => Path {
                local: sock(R_ADDR),
                remote: sock(I_ADDR),
            },
        }
    }

    /// Moves transmits into the network and handles actions (answering SPI requests).
    /// Returns whether anything happened.
    pub(crate) fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(t) = self.initiator.poll_transmit() {
            any = true;
            assert_eq!(t.path, Self::path(Side::I));
            self.sent_by_i.push(t.contents.clone());
            if !self.loss_to_r.pop_front().unwrap_or(false) && !self.blackhole_to_r {
                self.to_r.push_back(t.contents);
            }
        }
        while let Some(t) = self.responder.poll_transmit() {
            any = true;
            assert_eq!(t.path, Self::path(Side::R));
            self.sent_by_r.push(t.contents.clone());
            if !self.loss_to_i.pop_front().unwrap_or(false) {
                self.to_i.push_back(t.contents);
            }
        }
        for side in [Side::I, Side::R] {
            loop {
                let ep = match side {
                    Side::I => &mut self.initiator,
                    Side::R => &mut self.responder,
                };
                let Some(a) = ep.poll_action() else { break };
                any = true;
                match a {
                    Action::AllocSpi { request, .. } if self.auto_spi => {
                        self.next_spi += 1;
                        let spi = self.next_spi;
                        ep.handle_spi_allocated(self.now, request, Ok(spi));
                    }
                    other => match side {
                        Side::I => self.actions_i.push(other),
                        Side::R => self.actions_r.push(other),
                    },
                }
            }
        }
        any
    }

    /// Delivers one queued datagram to `side`; returns whether there was one.
    pub(crate) fn step(&mut self, side: Side) -> bool {
        self.collect();
        let q = match side {
            Side::I => &mut self.to_i,
            Side::R => &mut self.to_r,
        };
        if self.reorder && q.len() >= 2 {
            q.swap(0, 1);
        }
        let Some(d) = q.pop_front() else {
            return false;
        };
        match side {
            Side::I => self
                .initiator
                .handle_datagram(self.now, Self::path(Side::I), &d),
            Side::R => self
                .responder
                .handle_datagram(self.now, Self::path(Side::R), &d),
        }
        self.collect();
        true
    }

    /// Delivers everything until the network is quiet (no time passes).
    pub(crate) fn drive(&mut self) {
        for _ in 0..10_000 {
            self.collect();
            let a = self.step(Side::R);
            let b = self.step(Side::I);
            if !a && !b && !self.collect() {
                return;
            }
        }
        panic!("network never went quiet");
    }

    /// Advances the clock by `d` and runs both endpoints' timers.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.initiator.handle_timeout(self.now);
        self.responder.handle_timeout(self.now);
        self.collect();
    }

    /// Drives the network and jumps to each next timer until `limit` has passed.
    pub(crate) fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            self.drive();
            let next = [self.initiator.poll_timeout(), self.responder.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.initiator.handle_timeout(self.now);
                    self.responder.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    pub(crate) fn events(&self, side: Side) -> Vec<&Event> {
        let actions = match side {
            Side::I => &self.actions_i,
            Side::R => &self.actions_r,
        };
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn pairs(&self, side: Side) -> Vec<&SaPair> {
        let actions = match side {
            Side::I => &self.actions_i,
            Side::R => &self.actions_r,
        };
        actions
            .iter()
            .filter_map(|a| match a {
                Action::InstallSaPair(p) => Some(&**p),
                _ => None,
            })
            .collect()
    }

    /// Main mode + quick mode for child "c", initiated by the initiator.
    pub(crate) fn establish(&mut self) {
        self.initiator
            .initiate(self.now, &"c".into())
            .expect("initiate");
        self.drive();
    }
}

/// Asserts that the two sides installed matching pairs: SPIs crossed, keys equal.
pub(crate) fn assert_pairs_match(i: &SaPair, r: &SaPair) {
    assert_eq!(i.outbound.spi, r.inbound.spi);
    assert_eq!(i.inbound.spi, r.outbound.spi);
    assert_ne!(i.inbound.spi, i.outbound.spi);
    for (a, b) in [(&i.outbound, &r.inbound), (&i.inbound, &r.outbound)] {
        assert_eq!(a.source, b.source);
        assert_eq!(a.destination, b.destination);
        assert_eq!(a.protocol, b.protocol);
        assert_eq!(a.mode, b.mode);
        assert_eq!(a.selector, b.selector);
        let (ea, eb) = (a.encryption.as_ref(), b.encryption.as_ref());
        assert_eq!(ea.map(|e| e.0), eb.map(|e| e.0));
        assert_eq!(ea.map(|e| e.1.as_bytes()), eb.map(|e| e.1.as_bytes()));
        let (ia, ib) = (a.integrity.as_ref(), b.integrity.as_ref());
        assert_eq!(ia.map(|e| e.0), ib.map(|e| e.0));
        assert_eq!(ia.map(|e| e.1.as_bytes()), ib.map(|e| e.1.as_bytes()));
        assert_eq!(a.lifetime.hard_seconds, b.lifetime.hard_seconds);
    }
    // Inbound and outbound keys differ.
    assert_ne!(
        i.inbound.encryption.as_ref().map(|e| e.1.as_bytes()),
        i.outbound.encryption.as_ref().map(|e| e.1.as_bytes())
    );
}
