//! Fuzz the IKEv1 engine: raw datagrams into an `ikengine::Endpoint` built with the
//! deterministic RustCrypto provider and fixed seeds (strongSwan's `fuzz_ike.c` idea).
//!
//! Input layout: the first octet selects how far a real negotiation between two endpoints
//! runs first (0-9 delivered messages: MM1 ... QM3), so the fuzzed datagrams reach every
//! main-mode and quick-mode state, and whether the fuzzed bodies are spliced behind the
//! real ISAKMP header of the last message (right cookies and message ID, so they get past
//! the cookie lookup). The rest is a sequence of (2-octet length, datagram) records fed to
//! the responder and to the initiator. Then every timer runs. Nothing may panic.

#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm, RustCryptoProvider};
use ikengine::{
    Action, ChildConfig, EncapsulationMode, Endpoint, EndpointConfig, EspCipher, Identity,
    IntegrityAlgorithm, MainModeProposal, Path, PeerAddress, PeerConfig, QuickModeProposal,
};
use libfuzzer_sys::fuzz_target;

fn config(peer: &str, local: &str) -> EndpointConfig {
    let mut c = EndpointConfig::new(Identity::Address);
    c.peers.push(
        PeerConfig::psk("peer", PeerAddress::Address(peer.parse().unwrap()), b"fuzz")
            .with_local(local.parse().unwrap()),
    );
    // ECP256 keeps each iteration cheap.
    c.main_mode_proposals = vec![MainModeProposal::psk(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha1,
        DhGroup::Ecp256,
    )];
    c.children.push(ChildConfig::new(
        "c",
        "peer",
        QuickModeProposal::esp(
            EspCipher::Aes128,
            IntegrityAlgorithm::HmacSha1,
            EncapsulationMode::Transport,
        ),
    ));
    c.responder_commit = true;
    c
}

struct Side {
    ep: Endpoint,
    path: Path,
    inbox: Vec<Vec<u8>>,
}

fn drain(from: &mut Side, to: &mut Side, now: Instant, spi: &mut u32, last: &mut Vec<u8>) {
    while let Some(t) = from.ep.poll_transmit() {
        *last = t.contents.clone();
        to.inbox.push(t.contents);
    }
    while let Some(a) = from.ep.poll_action() {
        if let Action::AllocSpi { request, .. } = a {
            *spi += 1;
            from.ep.handle_spi_allocated(now, request, Ok(*spi));
            while let Some(t) = from.ep.poll_transmit() {
                *last = t.contents.clone();
                to.inbox.push(t.contents);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    let (i_addr, r_addr) = ("192.0.2.1", "192.0.2.2");
    let sock = |s: &str| SocketAddr::new(s.parse().unwrap(), 500);
    let crypto = Arc::new(RustCryptoProvider::new());
    let mut i = Side {
        ep: Endpoint::new(Arc::new(config(r_addr, i_addr)), crypto.clone(), [1; 32]),
        path: Path { local: sock(i_addr), remote: sock(r_addr) },
        inbox: Vec::new(),
    };
    let mut r = Side {
        ep: Endpoint::new(Arc::new(config(i_addr, r_addr)), crypto, [2; 32]),
        path: Path { local: sock(r_addr), remote: sock(i_addr) },
        inbox: Vec::new(),
    };
    let now = Instant::now();
    let mut spi = 0x1000;
    let mut last = Vec::new();
    let _ = i.ep.initiate(now, &"c".into());
    drain(&mut i, &mut r, now, &mut spi, &mut last);
    for step in 0..usize::from(ctl % 10) {
        let (from, to) = if step % 2 == 0 { (&mut i, &mut r) } else { (&mut r, &mut i) };
        let Some(d) = to.inbox.pop() else { break };
        to.ep.handle_datagram(now, to.path, &d);
        drain(to, from, now, &mut spi, &mut last);
    }
    let splice = ctl & 0x80 != 0 && last.len() >= 28;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let body = &rest[2..end];
        rest = &rest[end..];
        let datagram = if splice {
            let mut d = last[..28].to_vec();
            d.extend_from_slice(body);
            let total = u32::try_from(d.len()).unwrap_or(u32::MAX);
            d[24..28].copy_from_slice(&total.to_be_bytes());
            d
        } else {
            body.to_vec()
        };
        r.ep.handle_datagram(now, r.path, &datagram);
        i.ep.handle_datagram(now, i.path, &datagram);
        drain(&mut r, &mut i, now, &mut spi, &mut last);
        drain(&mut i, &mut r, now, &mut spi, &mut last);
    }
    for secs in [1, 5, 40, 70, 100] {
        let t = now + Duration::from_secs(secs);
        r.ep.handle_timeout(t);
        i.ep.handle_timeout(t);
        drain(&mut r, &mut i, t, &mut spi, &mut last);
        drain(&mut i, &mut r, t, &mut spi, &mut last);
    }
});
