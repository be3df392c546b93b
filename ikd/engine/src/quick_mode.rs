//! Quick mode (RFC 2409 §5.5), both roles, with the SPI allocation round trip, PFS,
//! IDci/IDcr, and the Windows 4th message.
//!
//! ```text
//! Initiator                                    Responder
//!  (AllocSpi → handle_spi_allocated)
//!  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] -->
//!                                                   (AllocSpi → handle_spi_allocated)
//!                 <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
//!  HDR*, HASH(3)                      -->
//!                                                   InstallSaPair
//!  InstallSaPair (after sending QM3)
//!                 <-- HDR*, HASH(4), N(CONNECTED)   (commit bit set in QM2: Windows)
//!  InstallSaPair (after QM4 if the commit bit was set)
//! ```
//!
//! The first IV of an exchange is `hash(last phase-1 CBC block | M-ID)`; each later
//! message chains from the previous one's last ciphertext block. KEYMAT is computed per
//! direction with the SPI chosen by that direction's receiver: the initiator's outbound
//! keys use the responder's SPI. The IDs the responder returns must be the ones sent
//! (Windows' "questionable" ID rewriting is not accepted). All proposals of one child must
//! agree on PFS (the KE payload is shared).
//!
//! Which child answers a peer's QM1: by default the first child of the main mode's peer
//! whose selector contains the proposed IDs. With
//! [`crate::EndpointConfig::policy_lookup`] the responder asks the policy agent instead
//! (`LookupPolicy → handle_policy_answer`, state `RespWaitPolicy`, before the SPI
//! request): it names the child, refuses (INVALID-ID-INFORMATION), or is unavailable (then
//! the local choice applies).

use std::time::Instant;

use ikecrypto::keymat::{self, KeymatInput};
use ikecrypto::{DhKeyPair, Secret};
use isakmp::{
    Doi, ExchangeType, Flags, HeaderRepr, IdPayload, KePayload, NoncePayload, NotifyPayload,
    NotifyType, Payload, PayloadType, SaPayload, HEADER_LEN,
};
use tracing::debug;

use crate::config::TrafficSelector;
use crate::crypt::{self, Chain, Hdr};
use crate::endpoint::{
    after, child_selector, fail_event, Flight, FlightTimer, InstalledChild, IsakmpSa, Shared,
};
use crate::error::{Error, PeerMisbehaved};
use crate::informational;
use crate::main_mode::{Keys, MainMode};
use crate::proposal::{self, ChildSuite, QmChoice};
use crate::rules;
use crate::types::{
    Action, ChildLifetime, ChildSa, Event, FailureReason, PolicyAnswer, Role, SaPair, Selector,
    SpiAllocationFailed,
};

/// One quick-mode (or late informational) exchange, keyed by message ID in its SA.
pub(crate) struct Exchange {
    /// The IV for the next message of this exchange, in either direction.
    pub(crate) iv: Vec<u8>,
    pub(crate) flight: Option<Flight>,
    pub(crate) started: Instant,
    pub(crate) finished: Option<Instant>,
    pub(crate) state: QuickMode,
}

/// Initiator, waiting for the kernel to allocate our inbound SPI.
pub(crate) struct InitWaitSpi {
    child: usize,
}

/// Initiator, QM1 sent.
///
/// ```text
///  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] -->          (sent)
///                <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] (expected here)
/// ```
pub(crate) struct ExpectQm2 {
    child: usize,
    spi_i: u32,
    ni: Vec<u8>,
    dh: Option<DhKeyPair>,
    ts: TrafficSelector,
    ids: [IdPayload; 2],
}

/// Initiator, QM3 sent, the responder set the commit bit.
///
/// ```text
///  HDR*, HASH(3)          -->                     (sent)
///                         <-- HDR*, HASH(4), N(CONNECTED) (expected here)
/// ```
pub(crate) struct ExpectConnected {
    child: usize,
    pair: Box<SaPair>,
}

/// Responder, QM1 accepted, waiting for the kernel to allocate our inbound SPI.
pub(crate) struct RespWaitSpi {
    child: usize,
    choice: QmChoice,
    ni: Vec<u8>,
    peer_ke: Option<Vec<u8>>,
    ids: Option<[IdPayload; 2]>,
    ts: TrafficSelector,
    commit: bool,
    qm1: Vec<u8>,
}

/// A peer's QM1 after HASH(1) verified: what the choice of child needs.
pub(crate) struct Qm1 {
    offer: SaPayload,
    ni: Vec<u8>,
    ke: Option<Vec<u8>>,
    ids: Option<[IdPayload; 2]>,
    ts: TrafficSelector,
}

/// Responder, QM1 verified, waiting for the policy agent to name the child.
pub(crate) struct RespWaitPolicy {
    qm1: Qm1,
    commit: bool,
    datagram: Vec<u8>,
}

/// Responder, QM2 sent.
///
/// ```text
///                <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] (sent)
///  HDR*, HASH(3)          -->                                    (expected here)
/// ```
pub(crate) struct ExpectQm3 {
    child: usize,
    suite: ChildSuite,
    spi_i: u32,
    spi_r: u32,
    ni: Vec<u8>,
    nr: Vec<u8>,
    g_qm: Option<Secret>,
    ts: TrafficSelector,
    commit: bool,
}

/// The state of a quick-mode exchange.
pub(crate) enum QuickMode {
    InitWaitSpi(Box<InitWaitSpi>),
    ExpectQm2(Box<ExpectQm2>),
    ExpectConnected(Box<ExpectConnected>),
    RespWaitPolicy(Box<RespWaitPolicy>),
    RespWaitSpi(Box<RespWaitSpi>),
    ExpectQm3(Box<ExpectQm3>),
    /// Completed; kept for duplicates (and a late QM4 at the initiator).
    Done {
        child: usize,
        initiator: bool,
    },
}

impl QuickMode {
    /// The child index being negotiated (`None` while the policy agent is asked).
    pub(crate) fn child(&self) -> Option<usize> {
        Some(match self {
            Self::RespWaitPolicy(_) => return None,
            Self::InitWaitSpi(s) => s.child,
            Self::ExpectQm2(s) => s.child,
            Self::ExpectConnected(s) => s.child,
            Self::RespWaitSpi(s) => s.child,
            Self::ExpectQm3(s) => s.child,
            Self::Done { child, .. } => *child,
        })
    }
}

impl QuickMode {
    /// Points the exchange at the child's index in a new configuration.
    /// An exchange still waiting for the policy agent has no child yet (the answer names
    /// one, looked up by name in the configuration in force then).
    pub(crate) fn set_child(&mut self, index: usize) {
        match self {
            Self::RespWaitPolicy(_) => {}
            Self::InitWaitSpi(s) => s.child = index,
            Self::ExpectQm2(s) => s.child = index,
            Self::ExpectConnected(s) => s.child = index,
            Self::RespWaitSpi(s) => s.child = index,
            Self::ExpectQm3(s) => s.child = index,
            Self::Done { child, .. } => *child = index,
        }
    }
}

pub(crate) fn child_name(sh: &Shared, child: usize) -> Option<crate::ChildName> {
    sh.config.children.get(child).map(|c| c.name.clone())
}

fn qm_hdr(sa: &IsakmpSa, message_id: u32, flags: Flags) -> Hdr {
    Hdr {
        icky: sa.icky,
        rcky: sa.rcky,
        exchange: ExchangeType::QUICK_MODE,
        message_id,
        flags,
    }
}

/// Starts a quick mode for `child` on an established SA (or queues it).
pub(crate) fn start(sh: &mut Shared, sa: &mut IsakmpSa, now: Instant, child: usize, rekey: bool) {
    let MainMode::Established(est) = &sa.state else {
        sa.queued.push((child, rekey));
        return;
    };
    let Some(protocol) = sh
        .config
        .children
        .get(child)
        .and_then(|c| c.proposals.first())
        .map(|p| p.protocol)
    else {
        return;
    };
    let message_id = sa.fresh_message_id(sh);
    let iv = keymat::phase2_iv(
        sh.crypto.as_ref(),
        est.keys.suite.hash,
        est.keys.suite.cipher,
        &est.keys.iv,
        message_id,
    );
    let request = sh.request_id();
    sh.requests.insert(request, (sa.id, message_id));
    sh.stats.quick_modes_started += 1;
    sh.stats.spi_requests += 1;
    sa.exchanges.insert(
        message_id,
        Exchange {
            iv,
            flight: None,
            started: now,
            finished: None,
            state: QuickMode::InitWaitSpi(Box::new(InitWaitSpi { child })),
        },
    );
    debug!(msgid = %format_args!("{message_id:08x}"), rekey, "quick mode started, SPI requested");
    sh.action(Action::AllocSpi {
        request,
        protocol,
        source: sa.path.remote.ip(),
        destination: sa.path.local.ip(),
    });
}

/// The kernel answered an SPI request for exchange `message_id`.
pub(crate) fn on_spi(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    message_id: u32,
    spi: Result<u32, SpiAllocationFailed>,
) {
    let Some(mut ex) = sa.exchanges.remove(&message_id) else {
        return;
    };
    let spi = match spi {
        Ok(spi) => spi,
        Err(e) => {
            sh.stats.spi_failures += 1;
            debug!(error = %e, "SPI allocation failed");
            let child = ex.state.child().and_then(|c| child_name(sh, c));
            fail_event(
                sh,
                sa.path.remote,
                true,
                child,
                FailureReason::SpiAllocation,
            );
            return;
        }
    };
    let state = std::mem::replace(
        &mut ex.state,
        QuickMode::Done {
            child: usize::MAX,
            initiator: false,
        },
    );
    let result = match state {
        QuickMode::InitWaitSpi(s) => send_qm1(sh, sa, now, &mut ex, message_id, s.child, spi),
        QuickMode::RespWaitSpi(s) => send_qm2(sh, sa, now, &mut ex, message_id, *s, spi),
        other => {
            ex.state = other;
            Ok(())
        }
    };
    match result {
        Ok(()) => {
            sa.exchanges.insert(message_id, ex);
        }
        Err((child, error)) => {
            debug!(%error, "quick mode failed");
            let reason = FailureReason::LocalError(
                error.notify_type().unwrap_or(NotifyType::PAYLOAD_MALFORMED),
            );
            let child = child_name(sh, child);
            fail_event(sh, sa.path.remote, true, child, reason);
        }
    }
}

type QmResult = Result<(), (usize, Error)>;

fn keys_of(sa: &IsakmpSa) -> Option<&Keys> {
    match &sa.state {
        MainMode::Established(e) => Some(&e.keys),
        _ => None,
    }
}

// HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] -->
fn send_qm1(
    sh: &mut Shared,
    sa: &IsakmpSa,
    now: Instant,
    ex: &mut Exchange,
    message_id: u32,
    child: usize,
    spi: u32,
) -> QmResult {
    let fail = |e: Error| (child, e);
    let Some(keys) = keys_of(sa) else {
        return Err(fail(Error::Unsupported("quick mode without an ISAKMP SA")));
    };
    let config = std::sync::Arc::clone(&sh.config);
    let Some(c) = config.children.get(child) else {
        return Err(fail(Error::Unsupported(
            "child removed from the configuration",
        )));
    };
    let pfs = c.proposals.first().and_then(|p| p.pfs);
    let ni = sh.nonce();
    let dh = match pfs {
        Some(g) => Some(sh.dh_generate(g).map_err(fail)?),
        None => None,
    };
    let ts = child_selector(sh, child, &sa.path);
    let ids = [
        proposal::subnet_id(&ts.local, ts.protocol, ts.local_port),
        proposal::subnet_id(&ts.remote, ts.protocol, ts.remote_port),
    ];
    let mut payloads = vec![
        Payload::SecurityAssociation(proposal::build_qm_sa(&c.proposals, spi)),
        Payload::Nonce(NoncePayload { nonce: ni.clone() }),
    ];
    if let Some(dh) = &dh {
        payloads.push(Payload::KeyExchange(KePayload {
            key_exchange_data: dh.public_value().to_vec(),
        }));
    }
    payloads.push(Payload::Identification(ids[0].clone()));
    payloads.push(Payload::Identification(ids[1].clone()));
    let crypto = sh.crypto.as_ref();
    let sealed = crypt::encode_chain(&payloads).and_then(|(first, rest)| {
        // HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
        let hash = keys.isakmp.quick_mode_hash1(crypto, message_id, &rest);
        let body = crypt::hash_then(&hash, first, &rest)?;
        crypt::seal(
            &keys.cipher_key(crypto),
            &ex.iv,
            qm_hdr(sa, message_id, Flags::default()),
            PayloadType::HASH,
            body,
        )
    });
    let (bytes, next_iv) = sealed.map_err(fail)?;
    ex.iv = next_iv;
    ex.flight = Some(sh.start_flight(now, sa.path, bytes, None, true));
    debug!(spi = %format_args!("{spi:08x}"), "QM1 sent");
    ex.state = QuickMode::ExpectQm2(Box::new(ExpectQm2 {
        child,
        spi_i: spi,
        ni,
        dh,
        ts,
        ids,
    }));
    Ok(())
}

// <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
fn send_qm2(
    sh: &mut Shared,
    sa: &IsakmpSa,
    now: Instant,
    ex: &mut Exchange,
    message_id: u32,
    s: RespWaitSpi,
    spi_r: u32,
) -> QmResult {
    let child = s.child;
    let fail = |e: Error| (child, e);
    let Some(keys) = keys_of(sa) else {
        return Err(fail(Error::Unsupported("quick mode without an ISAKMP SA")));
    };
    let suite = s.choice.suite;
    let nr = sh.nonce();
    let (ke_out, g_qm) = match (suite.pfs, &s.peer_ke) {
        (Some(group), Some(peer_ke)) => {
            let dh = sh.dh_generate(group).map_err(fail)?;
            let g = match sh.crypto.dh_shared(&dh, peer_ke) {
                Ok(g) => g,
                Err(e) => {
                    let e: Error = e.into();
                    let n = informational::notify_payload(
                        sa,
                        e.notify_type()
                            .unwrap_or(NotifyType::INVALID_KEY_INFORMATION),
                    );
                    let iv = keys.iv.clone();
                    informational::send_protected(sh, sa, keys, &iv, vec![n]);
                    return Err(fail(e));
                }
            };
            (Some(dh.public_value().to_vec()), Some(g))
        }
        _ => (None, None),
    };
    let mut echo = s.choice.echo.clone();
    echo.spi = spi_r.to_be_bytes().to_vec();
    let mut payloads = vec![
        Payload::SecurityAssociation(SaPayload {
            doi: s.choice.sa_doi,
            situation: s.choice.sa_situation,
            proposals: vec![echo],
        }),
        Payload::Nonce(NoncePayload { nonce: nr.clone() }),
    ];
    if let Some(ke) = ke_out {
        payloads.push(Payload::KeyExchange(KePayload {
            key_exchange_data: ke,
        }));
    }
    if let Some([idci, idcr]) = &s.ids {
        payloads.push(Payload::Identification(idci.clone()));
        payloads.push(Payload::Identification(idcr.clone()));
    }
    if s.choice.shortened {
        payloads.push(Payload::Notification(NotifyPayload {
            doi: Doi::IPSEC,
            protocol_id: suite.protocol.protocol_id(),
            spi: spi_r.to_be_bytes().to_vec(),
            notify_type: NotifyType::RESPONDER_LIFETIME,
            data: proposal::lifetime_attributes(&suite),
        }));
        sh.stats.notifies_sent += 1;
    }
    let flags = if s.commit {
        Flags::COMMIT
    } else {
        Flags::default()
    };
    let crypto = sh.crypto.as_ref();
    let sealed = crypt::encode_chain(&payloads).and_then(|(first, rest)| {
        // HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
        let hash = keys
            .isakmp
            .quick_mode_hash2(crypto, message_id, &s.ni, &rest);
        let body = crypt::hash_then(&hash, first, &rest)?;
        crypt::seal(
            &keys.cipher_key(crypto),
            &ex.iv,
            qm_hdr(sa, message_id, flags),
            PayloadType::HASH,
            body,
        )
    });
    let (bytes, next_iv) = sealed.map_err(fail)?;
    ex.iv = next_iv;
    ex.flight = Some(sh.start_flight(now, sa.path, bytes, Some(&s.qm1), true));
    debug!(spi = %format_args!("{spi_r:08x}"), commit = s.commit, "QM2 sent");
    ex.state = QuickMode::ExpectQm3(Box::new(ExpectQm3 {
        child,
        suite,
        spi_i: s.choice.peer_spi,
        spi_r,
        ni: s.ni,
        nr,
        g_qm,
        ts: s.ts,
        commit: s.commit,
    }));
    Ok(())
}

/// A quick-mode message on an established SA.
pub(crate) fn handle(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
) {
    if keys_of(sa).is_none() || hdr.message_id == 0 || !hdr.flags.is_encrypted() {
        sh.stats.dropped += 1;
        debug!("quick mode message without an established ISAKMP SA, ID 0 or unencrypted");
        return;
    }
    let msgid = hdr.message_id;
    if let Some(ex) = sa.exchanges.get(&msgid) {
        if let Some(f) = &ex.flight {
            if f.is_trigger(datagram) {
                debug!("retransmitted quick mode message: resending our answer");
                f.resend(sh);
                return;
            }
        }
    }
    let Some(mut ex) = sa.exchanges.remove(&msgid) else {
        if let Err(e) = on_qm1(sh, sa, now, hdr, datagram) {
            debug!(error = %e, "QM1 rejected");
        }
        return;
    };
    let state = std::mem::replace(
        &mut ex.state,
        QuickMode::Done {
            child: usize::MAX,
            initiator: false,
        },
    );
    ex.state = match state {
        QuickMode::ExpectQm2(s) => on_qm2(sh, sa, now, hdr, datagram, &mut ex, s),
        QuickMode::ExpectQm3(s) => on_qm3(sh, sa, now, hdr, datagram, &mut ex, s),
        QuickMode::ExpectConnected(s) => on_qm4(sh, sa, now, hdr, datagram, &mut ex, s),
        QuickMode::Done {
            child,
            initiator: true,
        } => {
            // A Windows responder's QM4 without the commit bit: verify and ignore.
            match open_checked(sh, sa, &ex.iv, hdr, datagram, &rules::QM_CONNECTED) {
                Ok(_) => debug!("late CONNECTED notify accepted"),
                Err(e) => {
                    sh.stats.dropped += 1;
                    debug!(error = %e, "late quick mode message dropped");
                }
            }
            QuickMode::Done {
                child,
                initiator: true,
            }
        }
        other => {
            sh.stats.dropped += 1;
            debug!("quick mode message in a state that expects none");
            other
        }
    };
    if ex.state.child() == Some(usize::MAX) {
        // The handler ended the exchange.
        return;
    }
    sa.exchanges.insert(msgid, ex);
}

/// Decrypts with `iv`, checks rules and the HASH-first layout. Returns the payloads, the
/// HASH body, the bytes after HASH, and the next IV.
#[allow(clippy::type_complexity)]
fn open_checked(
    sh: &Shared,
    sa: &IsakmpSa,
    iv: &[u8],
    hdr: &HeaderRepr,
    datagram: &[u8],
    rules: &rules::MessageRules,
) -> Result<(Vec<Payload>, Vec<u8>, Vec<u8>, Vec<u8>), Error> {
    let keys = keys_of(sa).ok_or(Error::Unsupported("no ISAKMP SA"))?;
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let (plain, next_iv) = crypt::open(&keys.cipher_key(sh.crypto.as_ref()), iv, body)?;
    let chain = Chain::parse(hdr.next_payload, &plain, true)?;
    rules::check(rules, &chain.payloads)?;
    let (hash, rest) = chain.hash_and_rest(&plain, rules.name)?;
    if rules.name == rules::QM_CONNECTED.name {
        let expected = keys
            .isakmp
            .informational_hash(sh.crypto.as_ref(), hdr.message_id, rest);
        if !expected.ct_eq(hash) {
            return Err(PeerMisbehaved::HashMismatch("HASH(4)").into());
        }
    }
    Ok((
        chain.payloads.clone(),
        hash.to_vec(),
        rest.to_vec(),
        next_iv,
    ))
}

fn ended() -> QuickMode {
    QuickMode::Done {
        child: usize::MAX,
        initiator: false,
    }
}

// HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] --> (received)
fn on_qm1(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
) -> Result<(), Error> {
    let Some(keys) = keys_of(sa) else {
        return Err(Error::Unsupported("no ISAKMP SA"));
    };
    let msgid = hdr.message_id;
    let iv = keymat::phase2_iv(
        sh.crypto.as_ref(),
        keys.suite.hash,
        keys.suite.cipher,
        &keys.iv,
        msgid,
    );
    let (payloads, hash, rest, next_iv) =
        match open_checked(sh, sa, &iv, hdr, datagram, &rules::QM_SA) {
            Ok(v) => v,
            Err(e) => {
                sh.stats.dropped += 1;
                return Err(e);
            }
        };
    let expected = keys
        .isakmp
        .quick_mode_hash1(sh.crypto.as_ref(), msgid, &rest);
    if !expected.ct_eq(&hash) {
        sh.stats.dropped += 1;
        return Err(PeerMisbehaved::HashMismatch("HASH(1)").into());
    }
    sh.stats.quick_modes_started += 1;
    let commit = sh.config.responder_commit || hdr.flags.is_commit();
    let qm1 = match parse_qm1(sa, &payloads) {
        Ok(q) => q,
        Err(e) => {
            let t = e.notify_type().unwrap_or(NotifyType::NO_PROPOSAL_CHOSEN);
            reject(sh, sa, t, None, FailureReason::LocalError(t));
            return Err(e);
        }
    };
    if sh.config.policy_lookup {
        let request = sh.request_id();
        sh.requests.insert(request, (sa.id, msgid));
        sh.stats.policy_lookups += 1;
        let selector = qm1.ts;
        let peer_identity = sh
            .config
            .peers
            .get(sa.peer_idx)
            .and_then(|p| p.identity.as_ref())
            .map(|i| format!("{i:?}"));
        sa.exchanges.insert(
            msgid,
            Exchange {
                iv: next_iv,
                flight: None,
                started: now,
                finished: None,
                state: QuickMode::RespWaitPolicy(Box::new(RespWaitPolicy {
                    qm1,
                    commit,
                    datagram: datagram.to_vec(),
                })),
            },
        );
        debug!("QM1 verified, asking the policy agent");
        sh.action(Action::LookupPolicy {
            request,
            local: sa.path.local.ip(),
            peer: sa.path.remote.ip(),
            selector,
            peer_identity,
        });
        return Ok(());
    }
    let chosen = choose_local(sh, sa, &qm1);
    let accepted = Accepted {
        started: now,
        iv: next_iv,
        commit,
        datagram: datagram.to_vec(),
    };
    finish_choice(sh, sa, msgid, accepted, qm1, chosen)
}

/// What an accepted QM1 carries into the SPI request.
struct Accepted {
    started: Instant,
    iv: Vec<u8>,
    commit: bool,
    datagram: Vec<u8>,
}

/// Goes on with the chosen child (SPI request) or rejects the QM1.
fn finish_choice(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    msgid: u32,
    a: Accepted,
    qm1: Qm1,
    chosen: Choice,
) -> Result<(), Error> {
    match chosen {
        Ok((child, choice)) => {
            let request = sh.request_id();
            sh.requests.insert(request, (sa.id, msgid));
            sh.stats.spi_requests += 1;
            let protocol = choice.suite.protocol;
            sa.exchanges.insert(
                msgid,
                Exchange {
                    iv: a.iv,
                    flight: None,
                    started: a.started,
                    finished: None,
                    state: QuickMode::RespWaitSpi(Box::new(RespWaitSpi {
                        child,
                        choice,
                        ni: qm1.ni,
                        peer_ke: qm1.ke,
                        ids: qm1.ids,
                        ts: qm1.ts,
                        commit: a.commit,
                        qm1: a.datagram,
                    })),
                },
            );
            debug!("QM1 accepted, SPI requested");
            sh.action(Action::AllocSpi {
                request,
                protocol,
                source: sa.path.remote.ip(),
                destination: sa.path.local.ip(),
            });
            Ok(())
        }
        Err((child, e)) => {
            let t = e.notify_type().unwrap_or(NotifyType::NO_PROPOSAL_CHOSEN);
            let child = child.and_then(|c| child_name(sh, c));
            reject(sh, sa, t, child, FailureReason::LocalError(t));
            Err(e)
        }
    }
}

/// Sends the error Notify `t` for a refused QM1 and records the failure.
fn reject(
    sh: &mut Shared,
    sa: &IsakmpSa,
    t: NotifyType,
    child: Option<crate::ChildName>,
    reason: FailureReason,
) {
    if let Some(keys) = keys_of(sa) {
        let n = informational::notify_payload(sa, t);
        let iv = keys.iv.clone();
        informational::send_protected(sh, sa, keys, &iv, vec![n]);
    }
    fail_event(sh, sa.path.remote, true, child, reason);
}

/// The policy agent answered for exchange `message_id`. Returns `false` when that
/// exchange does not wait for the agent (the request ID belongs to something else).
pub(crate) fn on_policy(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    message_id: u32,
    answer: PolicyAnswer,
) -> bool {
    match sa.exchanges.get(&message_id).map(|ex| &ex.state) {
        Some(QuickMode::RespWaitPolicy(_)) => {}
        Some(_) => return false,
        None => return true,
    }
    let Some(ex) = sa.exchanges.remove(&message_id) else {
        return true;
    };
    let QuickMode::RespWaitPolicy(w) = ex.state else {
        return true;
    };
    let RespWaitPolicy {
        qm1,
        commit,
        datagram,
    } = *w;
    let chosen = match answer {
        PolicyAnswer::Connection(name) => {
            sh.stats.policy_connections += 1;
            debug!(child = %name, "policy agent named the connection");
            match sh.config.child(&name).map(|(i, _)| i) {
                Some(idx) => choose_in(sh, sa, &qm1, idx),
                None => Err((
                    None,
                    Error::InvalidId("the policy agent named an unknown connection"),
                )),
            }
        }
        PolicyAnswer::Refused { kind, reason } => {
            sh.stats.policy_refusals += 1;
            debug!(?kind, %reason, "policy agent refused the quick mode");
            reject(
                sh,
                sa,
                NotifyType::INVALID_ID_INFORMATION,
                None,
                FailureReason::PolicyRefused { kind, reason },
            );
            return true;
        }
        PolicyAnswer::Unavailable => {
            sh.stats.policy_unavailable += 1;
            debug!("policy agent unavailable: matching locally");
            choose_local(sh, sa, &qm1)
        }
    };
    let accepted = Accepted {
        started: ex.started,
        iv: ex.iv,
        commit,
        datagram,
    };
    if let Err(e) = finish_choice(sh, sa, message_id, accepted, qm1, chosen) {
        debug!(error = %e, "QM1 rejected");
    }
    true
}

/// The chosen child and proposal, or the error with the child it concerns.
type Choice = Result<(usize, QmChoice), (Option<usize>, Error)>;

/// Reads the SA, nonce, KE and IDs of a peer's QM1.
fn parse_qm1(sa: &IsakmpSa, payloads: &[Payload]) -> Result<Qm1, Error> {
    let mut sa_payload = None;
    let mut ni = None;
    let mut ke = None;
    let mut ids = Vec::new();
    for p in payloads {
        match p {
            Payload::SecurityAssociation(s) => sa_payload = Some(s),
            Payload::Nonce(n) => ni = Some(n.nonce.clone()),
            Payload::KeyExchange(k) => ke = Some(k.key_exchange_data.clone()),
            Payload::Identification(id) => ids.push(id.clone()),
            _ => {}
        }
    }
    let (Some(offer), Some(ni)) = (sa_payload, ni) else {
        return Err(Error::NoProposalChosen);
    };
    if !(8..=256).contains(&ni.len()) {
        return Err(PeerMisbehaved::BadNonceLength(ni.len()).into());
    }
    let (ts, ids) = match ids.as_slice() {
        [] => (
            TrafficSelector::between(
                crate::Subnet::host(sa.path.local.ip()),
                crate::Subnet::host(sa.path.remote.ip()),
            ),
            None,
        ),
        [idci, idcr] => {
            let (Some(ci), Some(cr)) = (proposal::id_subnet(idci), proposal::id_subnet(idcr))
            else {
                return Err(Error::InvalidId("IDci/IDcr not an address or prefix"));
            };
            (
                TrafficSelector {
                    local: cr.0,
                    remote: ci.0,
                    protocol: ci.1,
                    local_port: cr.2,
                    remote_port: ci.2,
                },
                Some([idci.clone(), idcr.clone()]),
            )
        }
        _ => {
            return Err(PeerMisbehaved::PayloadCount {
                message: rules::QM_SA.name,
                payload: PayloadType::IDENTIFICATION,
                count: ids.len(),
            }
            .into())
        }
    };
    Ok(Qm1 {
        offer: offer.clone(),
        ni,
        ke,
        ids,
        ts,
    })
}

/// The proposal of child `idx` for `qm1` (the PFS choice must match the peer's KE).
fn choose_proposal(sh: &Shared, qm1: &Qm1, idx: usize) -> Option<Choice> {
    let c = sh.config.children.get(idx)?;
    let choice = proposal::choose_qm(&qm1.offer, &c.proposals)?;
    if choice.suite.pfs.is_some() != qm1.ke.is_some() {
        return Some(Err((Some(idx), PeerMisbehaved::UnexpectedKe.into())));
    }
    Some(Ok((idx, choice)))
}

fn peer_name<'a>(sh: &'a Shared, sa: &IsakmpSa) -> &'a str {
    sh.config
        .peers
        .get(sa.peer_idx)
        .map(|p| p.name.as_str())
        .unwrap_or_default()
}

/// The local choice: the first child of the main mode's peer whose selector contains the
/// proposal and that has a proposal the peer offered.
fn choose_local(sh: &Shared, sa: &IsakmpSa, qm1: &Qm1) -> Choice {
    let peer = peer_name(sh, sa);
    let mut selector_matched = false;
    for (i, c) in sh.config.children.iter().enumerate() {
        if c.peer != peer || !child_selector(sh, i, &sa.path).contains(&qm1.ts) {
            continue;
        }
        selector_matched = true;
        if let Some(r) = choose_proposal(sh, qm1, i) {
            return r;
        }
    }
    if selector_matched {
        Err((None, Error::NoProposalChosen))
    } else {
        Err((None, Error::InvalidId("traffic selectors match no child")))
    }
}

/// The policy agent's choice, child `idx`: it must belong to the main mode's peer (or to a
/// peer entry covering the peer's address, such as the default response rule's catch-all)
/// and cover the proposal; a proposal is chosen from its proposals only.
fn choose_in(sh: &Shared, sa: &IsakmpSa, qm1: &Qm1, idx: usize) -> Choice {
    let Some(c) = sh.config.children.get(idx) else {
        return Err((None, Error::InvalidId("child removed")));
    };
    let remote = sa.path.remote.ip();
    let peer_ok = c.peer == peer_name(sh, sa)
        || sh
            .config
            .peers
            .iter()
            .any(|p| p.name == c.peer && p.address.matches(remote));
    if !peer_ok {
        return Err((
            Some(idx),
            Error::InvalidId("the policy agent's connection is for another peer"),
        ));
    }
    if !child_selector(sh, idx, &sa.path).contains(&qm1.ts) {
        return Err((
            Some(idx),
            Error::InvalidId("the policy agent's connection does not cover the proposal"),
        ));
    }
    choose_proposal(sh, qm1, idx).unwrap_or(Err((Some(idx), Error::NoProposalChosen)))
}

// <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] (received) ; HDR*, HASH(3) -->
fn on_qm2(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
    ex: &mut Exchange,
    s: Box<ExpectQm2>,
) -> QuickMode {
    let msgid = hdr.message_id;
    let (payloads, hash, rest, next_iv) =
        match open_checked(sh, sa, &ex.iv, hdr, datagram, &rules::QM_SA) {
            Ok(v) => v,
            Err(e) => {
                sh.stats.dropped += 1;
                debug!(error = %e, "QM2 dropped");
                return QuickMode::ExpectQm2(s);
            }
        };
    let Some(keys) = keys_of(sa) else {
        return QuickMode::ExpectQm2(s);
    };
    let expected = keys
        .isakmp
        .quick_mode_hash2(sh.crypto.as_ref(), msgid, &s.ni, &rest);
    if !expected.ct_eq(&hash) {
        sh.stats.dropped += 1;
        debug!("QM2 HASH(2) does not verify");
        return QuickMode::ExpectQm2(s);
    }
    match qm2_contents(sh, &s, &payloads) {
        Ok((suite, spi_r, nr, g_qm)) => {
            // HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
            let crypto = sh.crypto.as_ref();
            let hash3 = keys.isakmp.quick_mode_hash3(crypto, msgid, &s.ni, &nr);
            let sealed = crypt::hash_then(&hash3, PayloadType::NONE, &[]).and_then(|body| {
                crypt::seal(
                    &keys.cipher_key(crypto),
                    &next_iv,
                    qm_hdr(sa, msgid, Flags::default()),
                    PayloadType::HASH,
                    body,
                )
            });
            let (bytes, iv) = match sealed {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "QM3 not sent");
                    return ended();
                }
            };
            let pair = build_pair(
                sh,
                sa,
                keys,
                s.child,
                &suite,
                Role::Initiator,
                (s.spi_i, spi_r),
                (&s.ni, &nr),
                g_qm.as_ref(),
                &s.ts,
            );
            ex.iv = iv;
            let commit = hdr.flags.is_commit();
            // With the commit bit the responder owes us QM4: keep resending QM3 until it
            // comes (it answers a duplicate QM3 with QM4).
            ex.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), commit));
            debug!(commit, "QM3 sent");
            if commit {
                QuickMode::ExpectConnected(Box::new(ExpectConnected {
                    child: s.child,
                    pair: Box::new(pair),
                }))
            } else {
                install(sh, sa, s.child, pair);
                ex.finished = Some(now);
                QuickMode::Done {
                    child: s.child,
                    initiator: true,
                }
            }
        }
        Err(e) => {
            debug!(error = %e, "QM2 rejected");
            let t = e.notify_type().unwrap_or(NotifyType::NO_PROPOSAL_CHOSEN);
            let n = informational::notify_payload(sa, t);
            let iv = keys.iv.clone();
            informational::send_protected(sh, sa, keys, &iv, vec![n]);
            let child = child_name(sh, s.child);
            fail_event(
                sh,
                sa.path.remote,
                true,
                child,
                FailureReason::LocalError(t),
            );
            ended()
        }
    }
}

fn qm2_contents(
    sh: &Shared,
    s: &ExpectQm2,
    payloads: &[Payload],
) -> Result<(ChildSuite, u32, Vec<u8>, Option<Secret>), Error> {
    let c = sh
        .config
        .children
        .get(s.child)
        .ok_or(Error::Unsupported("child removed"))?;
    let mut suite_spi = None;
    let mut nr = None;
    let mut ke = None;
    let mut ids = Vec::new();
    let mut lifetime = None;
    for p in payloads {
        match p {
            Payload::SecurityAssociation(sa) => {
                suite_spi = Some(
                    proposal::check_qm_choice(sa, &c.proposals)
                        .ok_or(PeerMisbehaved::ResponderChangedProposal)?,
                );
            }
            Payload::Nonce(n) => nr = Some(n.nonce.clone()),
            Payload::KeyExchange(k) => ke = Some(k.key_exchange_data.as_slice()),
            Payload::Identification(id) => ids.push(id),
            Payload::Notification(n) if n.notify_type == NotifyType::RESPONDER_LIFETIME => {
                lifetime = Some(n.data.as_slice());
            }
            _ => {}
        }
    }
    let (Some((mut suite, spi_r)), Some(nr)) = (suite_spi, nr) else {
        return Err(Error::NoProposalChosen);
    };
    if !(8..=256).contains(&nr.len()) {
        return Err(PeerMisbehaved::BadNonceLength(nr.len()).into());
    }
    match ids.as_slice() {
        [] => {}
        [ci, cr] if **ci == s.ids[0] && **cr == s.ids[1] => {}
        _ => return Err(PeerMisbehaved::ResponderChangedIds.into()),
    }
    if let Some(data) = lifetime {
        proposal::apply_responder_lifetime(&mut suite, data);
    }
    let g_qm = match (&s.dh, ke) {
        (Some(dh), Some(ke)) => Some(sh.crypto.dh_shared(dh, ke)?),
        (None, None) => None,
        _ => return Err(PeerMisbehaved::UnexpectedKe.into()),
    };
    Ok((suite, spi_r, nr, g_qm))
}

// HDR*, HASH(3) --> (received) ; [<-- HDR*, HASH(4), N(CONNECTED)]
fn on_qm3(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
    ex: &mut Exchange,
    s: Box<ExpectQm3>,
) -> QuickMode {
    let msgid = hdr.message_id;
    let (_, hash, _, next_iv) = match open_checked(sh, sa, &ex.iv, hdr, datagram, &rules::QM_HASH3)
    {
        Ok(v) => v,
        Err(e) => {
            sh.stats.dropped += 1;
            debug!(error = %e, "QM3 dropped");
            return QuickMode::ExpectQm3(s);
        }
    };
    let Some(keys) = keys_of(sa) else {
        return QuickMode::ExpectQm3(s);
    };
    let crypto = sh.crypto.as_ref();
    let expected = keys.isakmp.quick_mode_hash3(crypto, msgid, &s.ni, &s.nr);
    if !expected.ct_eq(&hash) {
        sh.stats.dropped += 1;
        debug!("QM3 HASH(3) does not verify");
        return QuickMode::ExpectQm3(s);
    }
    ex.iv = next_iv;
    let pair = build_pair(
        sh,
        sa,
        keys,
        s.child,
        &s.suite,
        Role::Responder,
        (s.spi_i, s.spi_r),
        (&s.ni, &s.nr),
        s.g_qm.as_ref(),
        &s.ts,
    );
    ex.flight = None;
    if s.commit {
        // HDR*, HASH(4), N(CONNECTED); HASH(4) = prf(SKEYID_a, M-ID | N)
        let n = Payload::Notification(NotifyPayload {
            doi: Doi::IPSEC,
            protocol_id: s.suite.protocol.protocol_id(),
            spi: s.spi_r.to_be_bytes().to_vec(),
            notify_type: NotifyType::CONNECTED,
            data: Vec::new(),
        });
        let sealed = crypt::encode_chain(&[n]).and_then(|(first, rest)| {
            let hash = keys.isakmp.informational_hash(crypto, msgid, &rest);
            let body = crypt::hash_then(&hash, first, &rest)?;
            crypt::seal(
                &keys.cipher_key(crypto),
                &ex.iv,
                qm_hdr(sa, msgid, Flags::default()),
                PayloadType::HASH,
                body,
            )
        });
        match sealed {
            Ok((bytes, iv)) => {
                ex.iv = iv;
                sh.stats.notifies_sent += 1;
                ex.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), false));
                debug!("QM4 (CONNECTED) sent");
            }
            Err(e) => debug!(error = %e, "QM4 not sent"),
        }
    }
    install(sh, sa, s.child, pair);
    ex.finished = Some(now);
    QuickMode::Done {
        child: s.child,
        initiator: false,
    }
}

// <-- HDR*, HASH(4), N(CONNECTED) (received)
fn on_qm4(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr: &HeaderRepr,
    datagram: &[u8],
    ex: &mut Exchange,
    s: Box<ExpectConnected>,
) -> QuickMode {
    let payloads = match open_checked(sh, sa, &ex.iv, hdr, datagram, &rules::QM_CONNECTED) {
        Ok((p, ..)) => p,
        Err(e) => {
            sh.stats.dropped += 1;
            debug!(error = %e, "QM4 dropped");
            return QuickMode::ExpectConnected(s);
        }
    };
    let connected = payloads
        .iter()
        .any(|p| matches!(p, Payload::Notification(n) if n.notify_type == NotifyType::CONNECTED));
    if !connected {
        sh.stats.dropped += 1;
        return QuickMode::ExpectConnected(s);
    }
    sh.stats.notifies_received += 1;
    debug!("QM4 (CONNECTED) received");
    let ExpectConnected { child, pair } = *s;
    install(sh, sa, child, *pair);
    ex.finished = Some(now);
    ex.flight = ex.flight.take().map(|mut f| {
        f.next = None;
        f
    });
    QuickMode::Done {
        child,
        initiator: true,
    }
}

/// KEYMAT for both directions and the two SAs.
#[allow(clippy::too_many_arguments)]
fn build_pair(
    sh: &Shared,
    sa: &IsakmpSa,
    keys: &Keys,
    child: usize,
    suite: &ChildSuite,
    role: Role,
    (spi_i, spi_r): (u32, u32),
    (ni, nr): (&[u8], &[u8]),
    g_qm: Option<&Secret>,
    ts: &TrafficSelector,
) -> SaPair {
    let (spi_in, spi_out) = match role {
        Role::Initiator => (spi_i, spi_r),
        Role::Responder => (spi_r, spi_i),
    };
    let enc_len = suite.encryption.map_or(0, |c| c.key_len());
    let int_len = suite.integrity.map_or(0, |i| i.key_len());
    let crypto = sh.crypto.as_ref();
    // Each SA is keyed with the SPI its receiver chose (RFC 2409 §5.5).
    let keymat = |spi: u32| {
        keys.isakmp.child_sa_keys(
            crypto,
            &KeymatInput {
                protocol: suite.protocol.protocol_id(),
                spi: spi.to_be_bytes(),
                ni_b: ni,
                nr_b: nr,
                pfs_g_xy: g_qm,
            },
            enc_len,
            int_len,
        )
    };
    let hard = u64::from(suite.lifetime_seconds);
    let hard_kb = suite.lifetime_kilobytes.map(u64::from);
    // The initiator's soft limit comes first, so it usually rekeys; the responder's soft
    // limit is a fallback for initiators that never rekey.
    let (num, den) = match role {
        Role::Initiator => (9, 10),
        Role::Responder => (19, 20),
    };
    let lifetime = ChildLifetime {
        hard_seconds: hard,
        soft_seconds: hard * num / den,
        hard_kilobytes: hard_kb,
        soft_kilobytes: hard_kb.map(|k| k * num / den),
    };
    let (local, peer) = (sa.path.local.ip(), sa.path.remote.ip());
    let make = |spi: u32, source, destination, selector| {
        let k = keymat(spi);
        ChildSa {
            spi,
            protocol: suite.protocol,
            source,
            destination,
            mode: suite.mode,
            encryption: suite.encryption.map(|c| (c, k.encryption)),
            integrity: suite.integrity.map(|i| (i, k.integrity)),
            lifetime,
            selector,
        }
    };
    let inbound = make(
        spi_in,
        peer,
        local,
        Selector {
            source: ts.remote,
            destination: ts.local,
            protocol: ts.protocol,
            source_port: ts.remote_port,
            destination_port: ts.local_port,
        },
    );
    let outbound = make(
        spi_out,
        local,
        peer,
        Selector {
            source: ts.local,
            destination: ts.remote,
            protocol: ts.protocol,
            source_port: ts.local_port,
            destination_port: ts.remote_port,
        },
    );
    SaPair {
        child: child_name(sh, child).unwrap_or_else(|| crate::ChildName(String::new())),
        isakmp_sa: sa.handle(),
        inbound,
        outbound,
    }
}

fn install(sh: &mut Shared, sa: &mut IsakmpSa, child: usize, pair: SaPair) {
    let installed = InstalledChild {
        child: pair.child.clone(),
        isakmp: sa.id,
        local: sa.path.local.ip(),
        peer: sa.path.remote.ip(),
        protocol: pair.inbound.protocol,
        inbound_spi: pair.inbound.spi,
        outbound_spi: pair.outbound.spi,
        rekeyed: false,
    };
    let _ = child;
    sh.children
        .insert((installed.protocol, installed.inbound_spi), installed);
    sh.stats.quick_modes_completed += 1;
    sh.stats.sa_pairs_installed += 1;
    sa.qm_count = sa.qm_count.saturating_add(1);
    let event = Event::ChildEstablished {
        child: pair.child.clone(),
        peer: sa.path.remote,
        inbound_spi: pair.inbound.spi,
        outbound_spi: pair.outbound.spi,
    };
    debug!(
        child = %pair.child,
        inbound = %format_args!("{:08x}", pair.inbound.spi),
        outbound = %format_args!("{:08x}", pair.outbound.spi),
        "SA pair installed"
    );
    sh.action(Action::InstallSaPair(Box::new(pair)));
    sh.event(event);
}

/// The peer sent an error notify: end the quick modes we started that are still open.
pub(crate) fn fail_initiated(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    _now: Instant,
    reason: FailureReason,
) {
    let open: Vec<u32> = sa
        .exchanges
        .iter()
        .filter(|(_, ex)| {
            matches!(
                ex.state,
                QuickMode::ExpectQm2(_) | QuickMode::ExpectConnected(_)
            )
        })
        .map(|(id, _)| *id)
        .collect();
    for id in open {
        if let Some(ex) = sa.exchanges.remove(&id) {
            let child = ex.state.child().and_then(|c| child_name(sh, c));
            fail_event(sh, sa.path.remote, true, child, reason.clone());
        }
    }
}

/// Quick-mode timers: retransmission, give-up, stale and finished exchanges.
pub(crate) fn on_timeout(sh: &mut Shared, sa: &mut IsakmpSa, now: Instant) {
    let ids: Vec<u32> = sa.exchanges.keys().copied().collect();
    let horizon = sh.config.retransmit.horizon();
    let half_open = sh.config.half_open_timeout;
    for id in ids {
        let Some(mut ex) = sa.exchanges.remove(&id) else {
            continue;
        };
        let child = ex.state.child().and_then(|c| child_name(sh, c));
        if let Some(f) = ex.flight.as_mut() {
            if let FlightTimer::GiveUp = f.on_timer(sh, now) {
                debug!(msgid = %format_args!("{id:08x}"), "quick mode: no answer, giving up");
                if ex.finished.is_none() {
                    fail_event(sh, sa.path.remote, true, child, FailureReason::Timeout);
                }
                continue;
            }
        }
        match ex.finished {
            Some(done) if after(done, horizon) <= now => continue,
            None if after(ex.started, half_open) <= now => {
                debug!(msgid = %format_args!("{id:08x}"), "stale quick mode dropped");
                sh.requests.retain(|_, v| *v != (sa.id, id));
                fail_event(sh, sa.path.remote, true, child, FailureReason::Stale);
                continue;
            }
            _ => {}
        }
        sa.exchanges.insert(id, ex);
    }
}
