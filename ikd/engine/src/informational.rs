//! Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): sending and receiving Notify
//! and Delete payloads, DPD (RFC 3706) answers.
//!
//! ```text
//!  HDR*, HASH(1), N/D...      -->       HASH(1) = prf(SKEYID_a, M-ID | N/D...)
//!  HDR, N                     -->       (before keys exist: unprotected)
//! ```
//!
//! Each message is its own exchange with a fresh message ID; its IV is
//! `hash(last phase-1 CBC block | M-ID)` and it changes no other IV. Unprotected notifies
//! are honoured only while no keys exist (they can end our pending main mode, as in
//! strongSwan); after that they are ignored. Received Deletes remove the named SAs:
//! for ESP/AH the peer lists its inbound SPIs, which are our outbound ones.
//! Windows "reliable delete" (resending Deletes every second) is not done.

use std::time::Instant;

use ikecrypto::keymat;
use isakmp::{
    DeletePayload, Doi, ExchangeType, Flags, HeaderRepr, NotifyPayload, NotifyType, Payload,
    PayloadType, ProtocolId, HEADER_LEN,
};
use tracing::debug;

use crate::config::IpsecProtocol;
use crate::crypt::{self, Chain, Hdr};
use crate::endpoint::{delete_child_actions, Effect, InstalledChild, IsakmpSa, Shared};
use crate::error::{Error, PeerMisbehaved};
use crate::main_mode::{self, Keys, MainMode};
use crate::quick_mode;
use crate::rules;
use crate::types::{Event, FailureReason, Path};

fn cookies(sa: &IsakmpSa) -> Vec<u8> {
    let mut spi = sa.icky.to_vec();
    spi.extend_from_slice(&sa.rcky);
    spi
}

/// A Notify about the ISAKMP SA (protocol ISAKMP, SPI = CKY-I | CKY-R).
pub(crate) fn notify_payload(sa: &IsakmpSa, notify_type: NotifyType) -> Payload {
    Payload::Notification(NotifyPayload {
        doi: Doi::IPSEC,
        protocol_id: ProtocolId::ISAKMP,
        spi: cookies(sa),
        notify_type,
        data: Vec::new(),
    })
}

/// `HDR, N` without protection (before keys exist).
pub(crate) fn send_plain_notify(
    sh: &mut Shared,
    path: Path,
    icky: [u8; 8],
    rcky: [u8; 8],
    notify_type: NotifyType,
) {
    let mut spi = icky.to_vec();
    spi.extend_from_slice(&rcky);
    let message_id = sh.random_u32();
    let hdr = Hdr {
        icky,
        rcky,
        exchange: ExchangeType::INFORMATIONAL,
        message_id,
        flags: Flags::default(),
    };
    let n = Payload::Notification(NotifyPayload {
        doi: Doi::IPSEC,
        protocol_id: ProtocolId::ISAKMP,
        spi,
        notify_type,
        data: Vec::new(),
    });
    match crypt::plain(hdr, vec![n]) {
        Ok(bytes) => {
            debug!(%notify_type, "unprotected notify sent");
            sh.stats.notifies_sent += 1;
            sh.send(path, bytes);
        }
        Err(e) => debug!(error = %e, "notify not encodable"),
    }
}

/// `HDR*, HASH(1), payloads...` with a fresh message ID; `iv_base` is the last phase-1
/// CBC block (or the current phase-1 IV before main mode ends).
pub(crate) fn send_protected(
    sh: &mut Shared,
    sa: &IsakmpSa,
    keys: &Keys,
    iv_base: &[u8],
    payloads: Vec<Payload>,
) {
    let message_id = sa.fresh_message_id(sh);
    let crypto = std::sync::Arc::clone(&sh.crypto);
    let iv = keymat::phase2_iv(
        crypto.as_ref(),
        keys.suite.hash,
        keys.suite.cipher,
        iv_base,
        message_id,
    );
    let notifies = payloads
        .iter()
        .filter(|p| matches!(p, Payload::Notification(_)))
        .count();
    let hdr = Hdr {
        icky: sa.icky,
        rcky: sa.rcky,
        exchange: ExchangeType::INFORMATIONAL,
        message_id,
        flags: Flags::default(),
    };
    let sealed = crypt::encode_chain(&payloads).and_then(|(first, rest)| {
        // HASH(1) = prf(SKEYID_a, M-ID | N/D)
        let hash = keys
            .isakmp
            .informational_hash(crypto.as_ref(), message_id, &rest);
        let body = crypt::hash_then(&hash, first, &rest)?;
        crypt::seal(
            &keys.cipher_key(crypto.as_ref()),
            &iv,
            hdr,
            PayloadType::HASH,
            body,
        )
    });
    match sealed {
        Ok((bytes, _)) => {
            sh.stats.notifies_sent += u64::try_from(notifies).unwrap_or(0);
            sh.send(sa.path, bytes);
        }
        Err(e) => debug!(error = %e, "informational not sent"),
    }
}

/// Deletes for `children` (our inbound SPIs) and, with `isakmp`, for the ISAKMP SA.
pub(crate) fn send_deletes(
    sh: &mut Shared,
    sa: &IsakmpSa,
    children: &[InstalledChild],
    isakmp: bool,
) {
    let MainMode::Established(est) = &sa.state else {
        return;
    };
    let mut payloads = Vec::new();
    for protocol in [IpsecProtocol::Esp, IpsecProtocol::Ah] {
        let spis: Vec<Vec<u8>> = children
            .iter()
            .filter(|c| c.protocol == protocol)
            .map(|c| c.inbound_spi.to_be_bytes().to_vec())
            .collect();
        if !spis.is_empty() {
            payloads.push(Payload::Delete(DeletePayload {
                doi: Doi::IPSEC,
                protocol_id: protocol.protocol_id(),
                spi_size: 4,
                spis,
            }));
        }
    }
    let iv = est.keys.iv.clone();
    if !payloads.is_empty() {
        send_protected(sh, sa, &est.keys, &iv, payloads);
    }
    if isakmp {
        let d = Payload::Delete(DeletePayload {
            doi: Doi::IPSEC,
            protocol_id: ProtocolId::ISAKMP,
            spi_size: 16,
            spis: vec![cookies(sa)],
        });
        send_protected(sh, sa, &est.keys, &iv, vec![d]);
    }
}

/// An unprotected informational about our MM1 before we know the responder cookie.
pub(crate) fn handle_pre_mm2(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    hdr: &HeaderRepr,
    datagram: &[u8],
) {
    handle_plain(sh, sa, hdr, datagram);
}

fn handle_plain(sh: &mut Shared, sa: &mut IsakmpSa, hdr: &HeaderRepr, datagram: &[u8]) {
    if sa.state.keys().is_some() {
        sh.stats.dropped += 1;
        debug!("unprotected informational after keys exist: ignored");
        return;
    }
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let chain = match Chain::parse(hdr.next_payload, body, false)
        .and_then(|c| rules::check(&rules::INFO_PLAIN, &c.payloads).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            sh.stats.decode_errors += 1;
            debug!(error = %e, "unprotected informational rejected");
            return;
        }
    };
    for p in &chain.payloads {
        if let Payload::Notification(n) = p {
            sh.stats.notifies_received += 1;
            debug!(notify = %n.notify_type, "unprotected notify received");
            if n.notify_type.is_error() && !sa.dead {
                main_mode::fail(sh, sa, FailureReason::PeerNotify(n.notify_type));
            }
        }
    }
}

/// An informational message on an existing ISAKMP SA.
pub(crate) fn handle(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
) {
    if !hdr.flags.is_encrypted() {
        handle_plain(sh, sa, hdr, datagram);
        return;
    }
    let payloads = match open_protected(sh, sa, hdr, datagram) {
        Ok(p) => p,
        Err(e) => {
            sh.stats.dropped += 1;
            debug!(error = %e, "protected informational dropped");
            return;
        }
    };
    for p in payloads {
        match p {
            Payload::Notification(n) => on_notify(sh, sa, now, n),
            Payload::Delete(d) => on_delete(sh, sa, d),
            _ => {}
        }
    }
}

fn open_protected(
    sh: &Shared,
    sa: &IsakmpSa,
    hdr: &HeaderRepr,
    datagram: &[u8],
) -> Result<Vec<Payload>, Error> {
    let Some(keys) = sa.state.keys() else {
        return Err(Error::Unsupported(
            "encrypted informational before keys exist",
        ));
    };
    let crypto = sh.crypto.as_ref();
    let iv = keymat::phase2_iv(
        crypto,
        keys.suite.hash,
        keys.suite.cipher,
        &keys.iv,
        hdr.message_id,
    );
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let (plain, _) = crypt::open(&keys.cipher_key(crypto), &iv, body)?;
    let chain = Chain::parse(hdr.next_payload, &plain, true)?;
    rules::check(&rules::INFO_PROTECTED, &chain.payloads)?;
    let (hash, rest) = chain.hash_and_rest(&plain, rules::INFO_PROTECTED.name)?;
    let expected = keys.isakmp.informational_hash(crypto, hdr.message_id, rest);
    if !expected.ct_eq(hash) {
        return Err(PeerMisbehaved::HashMismatch("informational HASH(1)").into());
    }
    Ok(chain.payloads)
}

fn on_notify(sh: &mut Shared, sa: &mut IsakmpSa, now: Instant, n: NotifyPayload) {
    sh.stats.notifies_received += 1;
    debug!(notify = %n.notify_type, "protected notify received");
    match n.notify_type {
        NotifyType::R_U_THERE => {
            let MainMode::Established(est) = &sa.state else {
                return;
            };
            if !sa.peer_dpd || n.spi != cookies(sa) {
                debug!("R-U-THERE without the DPD vendor ID or for other cookies: ignored");
                return;
            }
            // RFC 3706 §5: the ACK echoes the sequence number.
            let ack = Payload::Notification(NotifyPayload {
                doi: Doi::IPSEC,
                protocol_id: ProtocolId::ISAKMP,
                spi: cookies(sa),
                notify_type: NotifyType::R_U_THERE_ACK,
                data: n.data,
            });
            let iv = est.keys.iv.clone();
            send_protected(sh, sa, &est.keys, &iv, vec![ack]);
            sh.stats.dpd_answered += 1;
        }
        NotifyType::R_U_THERE_ACK => {}
        NotifyType::INITIAL_CONTACT => {
            sh.effects.push(Effect::InitialContact {
                keep: sa.id,
                peer: sa.path.remote,
            });
        }
        t if t.is_error() => {
            if matches!(sa.state, MainMode::Established(_)) {
                quick_mode::fail_initiated(sh, sa, now, FailureReason::PeerNotify(t));
            } else {
                main_mode::fail(sh, sa, FailureReason::PeerNotify(t));
            }
        }
        t => sh.event(Event::NotifyReceived {
            peer: sa.path.remote,
            notify_type: t,
        }),
    }
}

fn on_delete(sh: &mut Shared, sa: &mut IsakmpSa, d: DeletePayload) {
    sh.stats.deletes_received += 1;
    if d.protocol_id == ProtocolId::ISAKMP {
        if d.spis.iter().any(|s| *s == cookies(sa)) {
            debug!("peer deleted the ISAKMP SA");
            sa.dead = true;
        }
        return;
    }
    let Some(protocol) = IpsecProtocol::from_protocol_id(d.protocol_id) else {
        return;
    };
    for spi in &d.spis {
        let Ok(spi) = <[u8; 4]>::try_from(spi.as_slice()) else {
            continue;
        };
        let spi = u32::from_be_bytes(spi);
        let peer = sa.path.remote.ip();
        let key = sh
            .children
            .iter()
            .find(|(_, c)| c.protocol == protocol && c.outbound_spi == spi && c.peer == peer)
            .map(|(k, _)| *k);
        match key.and_then(|k| sh.children.remove(&k)) {
            Some(c) => {
                debug!(spi = %format_args!("{spi:08x}"), child = %c.child, "peer deleted SA pair");
                delete_child_actions(sh, &c);
            }
            None => debug!(spi = %format_args!("{spi:08x}"), "Delete for an unknown SPI"),
        }
    }
}
