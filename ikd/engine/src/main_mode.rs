//! Main mode (identity protection, RFC 2409 §5), both roles, as a state machine whose
//! states are named for the message they expect.
//!
//! ```text
//! Initiator                                  Responder
//!  HDR, SA [, VID...]                -->
//!                                    <--      HDR, SA [, VID...]
//!  HDR, KE, Ni [, auth payloads]     -->
//!                                    <--      HDR, KE, Nr [, auth payloads]
//!  HDR*, IDii, HASH_I [, N(IC)]      -->
//!                                    <--      HDR*, IDir, HASH_R
//! ```
//!
//! The responder picks the first initiator transform it accepts (the initiator's order
//! decides), the preshared key (or other credential) is found by the peer's address, since
//! with PSK the keys depend on it before any identity is seen. MM5 and MM6 are encrypted
//! with Ka and the phase-1 IV `hash(g^xi | g^xr)`, chained through the last ciphertext
//! block; the last block of MM6 seeds every phase-2 IV. HASH_I/HASH_R are checked by the
//! [`crate::auth::AuthSession`] (constant time for PSK).
//!
//! Not here: aggressive mode (Windows never uses it), NAT-D payloads (accepted, not sent),
//! multi-round-trip authentication (the session may ask for it; refused for now).

use std::time::Instant;

use ikecrypto::keymat::{self, AuthInput, IsakmpKeys, Phase1Input};
use ikecrypto::{CryptoProvider, DhKeyPair, Secret};
use isakmp::payload::vendor_id::KnownVendorId;
use isakmp::payload::PayloadBody;
use isakmp::{
    ExchangeType, Flags, HeaderRepr, KePayload, NoncePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, ProtocolId, VendorIdPayload, HEADER_LEN,
};
use tracing::debug;

use crate::auth::{AuthSession, AuthStep};
use crate::config::{EndpointConfig, MainModeProposal};
use crate::crypt::{self, Chain, CipherKey, Hdr};
use crate::endpoint::{after, fail_event, Effect, FlightTimer, IsakmpSa, SaId, Shared};
use crate::error::{Error, PeerMisbehaved};
use crate::informational;
use crate::proposal::{self, IkeSuite};
use crate::quick_mode;
use crate::rules;
use crate::types::{Event, FailureReason, Path, Role};

/// The keys of an ISAKMP SA once SKEYID exists, with the phase-1 IV chain.
pub(crate) struct Keys {
    pub(crate) suite: IkeSuite,
    pub(crate) isakmp: IsakmpKeys,
    /// Ka (RFC 2409 Appendix B).
    pub(crate) enc: Secret,
    /// The current phase-1 IV: after MM6, the last CBC block of phase 1.
    pub(crate) iv: Vec<u8>,
}

impl Keys {
    pub(crate) fn cipher_key<'a>(&'a self, crypto: &'a dyn CryptoProvider) -> CipherKey<'a> {
        CipherKey {
            crypto,
            cipher: self.suite.cipher,
            key: &self.enc,
        }
    }
}

/// The public values HASH_I and HASH_R cover.
struct AuthData {
    sa_i_b: Vec<u8>,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
}

impl AuthData {
    fn input<'a>(&'a self, icky: &'a [u8; 8], rcky: &'a [u8; 8]) -> AuthInput<'a> {
        AuthInput {
            g_xi: &self.g_xi,
            g_xr: &self.g_xr,
            cky_i: icky,
            cky_r: rcky,
            sai_b: &self.sa_i_b,
        }
    }
}

/// Initiator, MM1 sent.
///
/// ```text
///  HDR, SA                  -->              (sent)
///                           <--      HDR, SA (expected here)
/// ```
pub(crate) struct ExpectResponderSa {
    proposals: Vec<MainModeProposal>,
    sa_i_b: Vec<u8>,
    auth: Box<dyn AuthSession>,
}

/// Initiator, MM3 sent.
///
/// ```text
///  HDR, KE, Ni              -->                  (sent)
///                           <--      HDR, KE, Nr (expected here)
/// ```
pub(crate) struct ExpectResponderKe {
    suite: IkeSuite,
    sa_i_b: Vec<u8>,
    auth: Box<dyn AuthSession>,
    dh: DhKeyPair,
    ni: Vec<u8>,
}

/// Initiator, MM5 sent.
///
/// ```text
///  HDR*, IDii, HASH_I       -->                         (sent)
///                           <--      HDR*, IDir, HASH_R (expected here)
/// ```
pub(crate) struct ExpectResponderId {
    keys: Keys,
    data: AuthData,
    auth: Box<dyn AuthSession>,
}

/// Responder, MM2 sent.
///
/// ```text
///                           <--      HDR, SA  (sent)
///  HDR, KE, Ni              -->               (expected here)
/// ```
pub(crate) struct ExpectInitiatorKe {
    suite: IkeSuite,
    sa_i_b: Vec<u8>,
    auth: Box<dyn AuthSession>,
}

/// Responder, MM4 sent.
///
/// ```text
///                           <--      HDR, KE, Nr  (sent)
///  HDR*, IDii, HASH_I       -->                   (expected here)
/// ```
pub(crate) struct ExpectInitiatorId {
    keys: Keys,
    data: AuthData,
    auth: Box<dyn AuthSession>,
}

/// Main mode done: the ISAKMP SA protects quick modes and informational exchanges.
pub(crate) struct Established {
    pub(crate) keys: Keys,
    pub(crate) expires: Instant,
}

/// The main-mode state of an ISAKMP SA.
pub(crate) enum MainMode {
    ExpectResponderSa(Box<ExpectResponderSa>),
    ExpectResponderKe(Box<ExpectResponderKe>),
    ExpectResponderId(Box<ExpectResponderId>),
    ExpectInitiatorKe(Box<ExpectInitiatorKe>),
    ExpectInitiatorId(Box<ExpectInitiatorId>),
    Established(Box<Established>),
    /// Ended (or between states while a handler runs).
    Failed,
}

impl MainMode {
    /// The keys, once SKEYID exists.
    pub(crate) fn keys(&self) -> Option<&Keys> {
        match self {
            Self::ExpectResponderId(s) => Some(&s.keys),
            Self::ExpectInitiatorId(s) => Some(&s.keys),
            Self::Established(s) => Some(&s.keys),
            _ => None,
        }
    }
}

/// The vendor IDs we send in MM1 and MM2.
fn vendor_ids(config: &EndpointConfig) -> Vec<Payload> {
    let mut v = vec![
        Payload::VendorId(KnownVendorId::Rfc3947.payload()),
        Payload::VendorId(KnownVendorId::NatTDraft02N.payload()),
    ];
    if config.send_dpd_vendor_id {
        v.push(Payload::VendorId(
            KnownVendorId::DeadPeerDetection.payload(),
        ));
    }
    if config.send_ms_vendor_id {
        let mut id = KnownVendorId::MsNt5IsakmpOakley.bytes().to_vec();
        id.extend_from_slice(&4u32.to_be_bytes());
        v.push(Payload::VendorId(VendorIdPayload { vendor_id: id }));
    }
    v
}

fn note_vendor_ids(sa: &mut IsakmpSa, payloads: &[Payload]) {
    for p in payloads {
        if let Payload::VendorId(v) = p {
            if let Some((KnownVendorId::DeadPeerDetection, _)) = v.known() {
                sa.peer_dpd = true;
            }
        }
    }
}

fn hdr(sa: &IsakmpSa) -> Hdr {
    Hdr {
        icky: sa.icky,
        rcky: sa.rcky,
        exchange: ExchangeType::IDENTITY_PROTECTION,
        message_id: 0,
        flags: Flags::default(),
    }
}

/// Starts main mode as initiator: sends MM1.
// The arguments are the SA's identity and its configuration, each used once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn initiate(
    sh: &mut Shared,
    id: SaId,
    now: Instant,
    path: Path,
    peer_idx: usize,
    auth: Box<dyn AuthSession>,
    proposals: &[MainModeProposal],
    first_contact: bool,
) -> IsakmpSa {
    sh.stats.main_modes_started += 1;
    let sa_payload = proposal::build_mm_sa(proposals);
    let sa_i_b = sa_payload.body_bytes().unwrap_or_default();
    let mut sa = IsakmpSa {
        id,
        role: Role::Initiator,
        icky: sh.cookie(),
        rcky: [0; 8],
        path,
        peer_idx,
        state: MainMode::Failed,
        flight: None,
        started: now,
        exchanges: Default::default(),
        queued: Vec::new(),
        qm_count: 0,
        peer_dpd: false,
        first_contact,
        dead: false,
    };
    // HDR, SA [, VID...] -->
    let mut payloads = vec![Payload::SecurityAssociation(sa_payload)];
    payloads.extend(vendor_ids(&sh.config));
    match crypt::plain(hdr(&sa), payloads) {
        Ok(bytes) => {
            debug!(icky = %crate::endpoint::Hex(&sa.icky), peer = %path.remote, "MM1 sent");
            sa.flight = Some(sh.start_flight(now, path, bytes, None, true));
            sa.state = MainMode::ExpectResponderSa(Box::new(ExpectResponderSa {
                proposals: proposals.to_vec(),
                sa_i_b,
                auth,
            }));
        }
        Err(e) => {
            debug!(error = %e, "MM1 not encodable");
            fail(
                sh,
                &mut sa,
                FailureReason::LocalError(NotifyType::PAYLOAD_MALFORMED),
            );
        }
    }
    sa
}

/// A peer's MM1: chooses a proposal and answers with MM2, or NO-PROPOSAL-CHOSEN.
pub(crate) fn respond(
    sh: &mut Shared,
    id: SaId,
    now: Instant,
    path: Path,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    first_contact: bool,
) -> Option<IsakmpSa> {
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let chain = match Chain::parse(hdr_in.next_payload, body, false)
        .and_then(|c| rules::check(&rules::MM_SA, &c.payloads).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            sh.stats.decode_errors += 1;
            debug!(error = %e, "MM1 rejected");
            return None;
        }
    };
    let rcky = sh.cookie();
    let notify = |sh: &mut Shared, t: NotifyType| {
        informational::send_plain_notify(sh, path, hdr_in.initiator_cookie, rcky, t);
        fail_event(sh, path.remote, false, None, FailureReason::LocalError(t));
    };
    let config = std::sync::Arc::clone(&sh.config);
    let Some((peer_idx, peer)) = config.peer_for(path.remote.ip()) else {
        debug!("MM1 from an unconfigured peer");
        notify(sh, NotifyType::NO_PROPOSAL_CHOSEN);
        return None;
    };
    let sa_body = chain
        .body_of(PayloadType::SECURITY_ASSOCIATION)
        .unwrap_or_default();
    let offered = chain.payloads.iter().find_map(|p| match p {
        Payload::SecurityAssociation(s) => Some(s),
        _ => None,
    })?;
    sh.stats.main_modes_started += 1;
    let Some((suite, echo)) =
        proposal::choose_mm(offered, &config.main_mode_proposals, peer.auth.method())
    else {
        debug!("no acceptable main mode proposal");
        notify(sh, NotifyType::NO_PROPOSAL_CHOSEN);
        return None;
    };
    let mut sa = IsakmpSa {
        id,
        role: Role::Responder,
        icky: hdr_in.initiator_cookie,
        rcky,
        path,
        peer_idx,
        state: MainMode::Failed,
        flight: None,
        started: now,
        exchanges: Default::default(),
        queued: Vec::new(),
        qm_count: 0,
        peer_dpd: false,
        first_contact,
        dead: false,
    };
    note_vendor_ids(&mut sa, &chain.payloads);
    // <-- HDR, SA [, VID...]
    let mut payloads = vec![Payload::SecurityAssociation(echo)];
    payloads.extend(vendor_ids(&config));
    let bytes = crypt::plain(hdr(&sa), payloads).ok()?;
    debug!(cipher = %suite.cipher, hash = %suite.hash, group = %suite.group, "MM2 sent");
    sa.flight = Some(sh.start_flight(now, path, bytes, Some(datagram), false));
    sa.state = MainMode::ExpectInitiatorKe(Box::new(ExpectInitiatorKe {
        suite,
        sa_i_b: sa_body.to_vec(),
        auth: peer.auth.start(Role::Responder),
    }));
    Some(sa)
}

/// Handles a main-mode message (message ID 0) for an existing SA.
pub(crate) fn handle(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
) {
    if let Some(f) = &sa.flight {
        if f.is_trigger(datagram) {
            debug!("retransmitted main mode message: resending our answer");
            f.resend(sh);
            return;
        }
    }
    let state = std::mem::replace(&mut sa.state, MainMode::Failed);
    let result = match state {
        MainMode::ExpectResponderSa(s) => on_mm2(sh, sa, now, hdr_in, datagram, *s),
        MainMode::ExpectResponderKe(s) => on_mm4(sh, sa, now, hdr_in, datagram, *s),
        MainMode::ExpectResponderId(s) => on_mm6(sh, sa, now, hdr_in, datagram, *s),
        MainMode::ExpectInitiatorKe(s) => on_mm3(sh, sa, now, hdr_in, datagram, *s),
        MainMode::ExpectInitiatorId(s) => on_mm5(sh, sa, now, hdr_in, datagram, *s),
        other @ (MainMode::Established(_) | MainMode::Failed) => {
            sa.state = other;
            sh.stats.dropped += 1;
            debug!("main mode message after the exchange ended");
            return;
        }
    };
    if let Err(Rejected { state, error }) = result {
        // A message that does not fit leaves the state as it was, unless the state was
        // consumed because the exchange failed for good.
        match state {
            Some(s) => {
                sa.state = s;
                sh.stats.dropped += 1;
                debug!(%error, "main mode message dropped");
            }
            None => debug!(%error, "main mode failed"),
        }
    }
}

/// A message the state could not use: the state to keep (`None` if the exchange failed).
struct Rejected {
    state: Option<MainMode>,
    error: Error,
}

fn keep(state: MainMode, error: impl Into<Error>) -> Rejected {
    Rejected {
        state: Some(state),
        error: error.into(),
    }
}

fn plain_chain<'a>(
    hdr_in: &HeaderRepr,
    datagram: &'a [u8],
    rules: &rules::MessageRules,
) -> Result<Chain<'a>, Error> {
    if hdr_in.flags.is_encrypted() != rules.encrypted {
        return Err(PeerMisbehaved::WrongEncryption(rules.name).into());
    }
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let chain = Chain::parse(hdr_in.next_payload, body, false)?;
    rules::check(rules, &chain.payloads)?;
    Ok(chain)
}

fn ke_and_nonce<'a>(chain: &Chain<'a>) -> Result<(&'a [u8], &'a [u8]), Error> {
    let ke = chain
        .body_of(PayloadType::KEY_EXCHANGE)
        .ok_or(PeerMisbehaved::PayloadCount {
            message: "KE message",
            payload: PayloadType::KEY_EXCHANGE,
            count: 0,
        })?;
    let nonce = chain
        .body_of(PayloadType::NONCE)
        .ok_or(PeerMisbehaved::PayloadCount {
            message: "KE message",
            payload: PayloadType::NONCE,
            count: 0,
        })?;
    if !(8..=256).contains(&nonce.len()) {
        return Err(PeerMisbehaved::BadNonceLength(nonce.len()).into());
    }
    Ok((ke, nonce))
}

fn auth_payloads_of(chain: &Chain<'_>) -> Vec<Payload> {
    chain
        .payloads
        .iter()
        .filter(|p| {
            !matches!(
                p,
                Payload::KeyExchange(_)
                    | Payload::Nonce(_)
                    | Payload::VendorId(_)
                    | Payload::NatD(_)
                    | Payload::NatDDraft(_)
                    | Payload::Notification(_)
                    | Payload::Identification(_)
            )
        })
        .cloned()
        .collect()
}

// HDR, SA --> (received MM2) ; HDR, KE, Ni --> (MM3)
fn on_mm2(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    mut s: ExpectResponderSa,
) -> Result<(), Rejected> {
    let chain = match plain_chain(hdr_in, datagram, &rules::MM_SA) {
        Ok(c) => c,
        Err(e) => {
            sh.stats.decode_errors += 1;
            return Err(keep(MainMode::ExpectResponderSa(Box::new(s)), e));
        }
    };
    let chosen = chain.payloads.iter().find_map(|p| match p {
        Payload::SecurityAssociation(sa) => proposal::check_mm_choice(sa, &s.proposals),
        _ => None,
    });
    let Some(suite) = chosen else {
        fail(
            sh,
            sa,
            FailureReason::LocalError(NotifyType::NO_PROPOSAL_CHOSEN),
        );
        return Err(Rejected {
            state: None,
            error: PeerMisbehaved::ResponderChangedProposal.into(),
        });
    };
    note_vendor_ids(sa, &chain.payloads);
    let dh = match sh.dh_generate(suite.group) {
        Ok(dh) => dh,
        Err(error) => {
            fail(
                sh,
                sa,
                FailureReason::LocalError(NotifyType::INVALID_KEY_INFORMATION),
            );
            return Err(Rejected { state: None, error });
        }
    };
    let ni = sh.nonce();
    let extra = match s.auth.key_exchange_payloads() {
        Ok(p) => p,
        Err(error) => {
            fail(sh, sa, FailureReason::LocalError(error.notify));
            return Err(Rejected {
                state: None,
                error: error.into(),
            });
        }
    };
    // HDR, KE, Ni [, auth payloads] -->
    let mut payloads = vec![
        Payload::KeyExchange(KePayload {
            key_exchange_data: dh.public_value().to_vec(),
        }),
        Payload::Nonce(NoncePayload { nonce: ni.clone() }),
    ];
    payloads.extend(extra);
    let bytes = match crypt::plain(hdr(sa), payloads) {
        Ok(b) => b,
        Err(error) => {
            fail(
                sh,
                sa,
                FailureReason::LocalError(NotifyType::PAYLOAD_MALFORMED),
            );
            return Err(Rejected { state: None, error });
        }
    };
    sa.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), true));
    debug!("MM3 sent");
    sa.state = MainMode::ExpectResponderKe(Box::new(ExpectResponderKe {
        suite,
        sa_i_b: std::mem::take(&mut s.sa_i_b),
        auth: s.auth,
        dh,
        ni,
    }));
    Ok(())
}

/// Derives SKEYID and friends, Ka and the first phase-1 IV.
// One argument per RFC 2409 input (Ni_b, Nr_b, g^xy, g^xi, g^xr), named as in the RFC.
#[allow(clippy::too_many_arguments)]
fn derive_keys(
    sh: &Shared,
    suite: IkeSuite,
    auth: &dyn AuthSession,
    sa: &IsakmpSa,
    g_xy: &Secret,
    ni: &[u8],
    nr: &[u8],
    g_xi: &[u8],
    g_xr: &[u8],
) -> Keys {
    let crypto = sh.crypto.as_ref();
    let isakmp = IsakmpKeys::derive(
        crypto,
        suite.hash,
        auth.skeyid_input(),
        &Phase1Input {
            ni_b: ni,
            nr_b: nr,
            g_xy,
            cky_i: &sa.icky,
            cky_r: &sa.rcky,
        },
    );
    let enc = isakmp.encryption_key(crypto, suite.cipher);
    let iv = keymat::phase1_iv(crypto, suite.hash, suite.cipher, g_xi, g_xr);
    Keys {
        suite,
        isakmp,
        enc,
        iv,
    }
}

// <-- HDR, KE, Nr (received MM4) ; HDR*, IDii, HASH_I [, N(INITIAL-CONTACT)] --> (MM5)
fn on_mm4(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    mut s: ExpectResponderKe,
) -> Result<(), Rejected> {
    let parsed = plain_chain(hdr_in, datagram, &rules::MM_KE)
        .and_then(|c| ke_and_nonce(&c).map(|(ke, nr)| (c.clone_payloads(), ke, nr)));
    let (extra, g_xr, nr) = match parsed {
        Ok(v) => v,
        Err(e) => {
            sh.stats.decode_errors += 1;
            return Err(keep(MainMode::ExpectResponderKe(Box::new(s)), e));
        }
    };
    if let Err(error) = s.auth.process_key_exchange(&extra) {
        return fail_with(sh, sa, error.into(), None);
    }
    let g_xy = match sh.crypto.dh_shared(&s.dh, g_xr) {
        Ok(g) => g,
        Err(e) => {
            let error: Error = e.into();
            informational::send_plain_notify(
                sh,
                sa.path,
                sa.icky,
                sa.rcky,
                error
                    .notify_type()
                    .unwrap_or(NotifyType::INVALID_KEY_INFORMATION),
            );
            return fail_with(sh, sa, error, None);
        }
    };
    let g_xi = s.dh.public_value().to_vec();
    let mut keys = derive_keys(
        sh,
        s.suite,
        s.auth.as_ref(),
        sa,
        &g_xy,
        &s.ni,
        nr,
        &g_xi,
        g_xr,
    );
    let data = AuthData {
        sa_i_b: std::mem::take(&mut s.sa_i_b),
        g_xi,
        g_xr: g_xr.to_vec(),
    };
    let local = sa.path.local.ip();
    let idii = proposal::identity_id(&sh.config.local_identity, local);
    let idii_b = idii.body_bytes().unwrap_or_default();
    let mut hashed_id = idii_b.clone();
    hashed_id.extend(s.auth.hash_suffix(Role::Initiator));
    let hash_i = keys.isakmp.hash_i(
        sh.crypto.as_ref(),
        &data.input(&sa.icky, &sa.rcky),
        &hashed_id,
    );
    let proof = match s.auth.prove(&hash_i) {
        Ok(AuthStep::Done(p)) => p,
        Ok(AuthStep::Continue(_)) => {
            return fail_with(
                sh,
                sa,
                Error::Unsupported("multi-round-trip authentication"),
                None,
            )
        }
        Err(e) => return fail_with(sh, sa, e.into(), None),
    };
    // HDR*, IDii, HASH_I [, N(INITIAL-CONTACT)] -->
    let mut payloads = vec![Payload::Identification(idii)];
    payloads.extend(proof);
    if sh.config.initial_contact && sa.first_contact {
        let mut spi = sa.icky.to_vec();
        spi.extend_from_slice(&sa.rcky);
        payloads.push(Payload::Notification(NotifyPayload {
            doi: isakmp::Doi::IPSEC,
            protocol_id: ProtocolId::ISAKMP,
            spi,
            notify_type: NotifyType::INITIAL_CONTACT,
            data: Vec::new(),
        }));
        sh.stats.notifies_sent += 1;
    }
    let sealed = crypt::encode_chain(&payloads).and_then(|(first, plain)| {
        crypt::seal(
            &keys.cipher_key(sh.crypto.as_ref()),
            &keys.iv,
            hdr(sa),
            first,
            plain,
        )
    });
    let (bytes, next_iv) = match sealed {
        Ok(v) => v,
        Err(error) => return fail_with(sh, sa, error, None),
    };
    keys.iv = next_iv;
    sa.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), true));
    debug!("MM5 sent");
    sa.state = MainMode::ExpectResponderId(Box::new(ExpectResponderId {
        keys,
        data,
        auth: s.auth,
    }));
    Ok(())
}

impl Chain<'_> {
    fn clone_payloads(&self) -> Vec<Payload> {
        auth_payloads_of(self)
    }
}

/// MM5/MM6 decrypted: its payloads, the raw ID body, the next IV.
type OpenedId = (Vec<Payload>, Vec<u8>, Vec<u8>);

/// Decrypts and checks MM5/MM6. Returns the plaintext chain's payloads, the raw ID body and
/// the next IV. An undecodable plaintext is reported as an authentication failure: with
/// mismatched keys (a wrong preshared key) decryption yields garbage.
fn open_id_message(
    sh: &Shared,
    keys: &Keys,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
) -> Result<OpenedId, Error> {
    if hdr_in.flags.is_encrypted() != rules::MM_ID.encrypted {
        return Err(PeerMisbehaved::WrongEncryption(rules::MM_ID.name).into());
    }
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let (plain, next_iv) = crypt::open(&keys.cipher_key(sh.crypto.as_ref()), &keys.iv, body)?;
    let garbage = |_| {
        Error::Auth(crate::auth::AuthError {
            reason: "decrypted message does not parse (different keys: wrong preshared key?)",
            notify: NotifyType::AUTHENTICATION_FAILED,
        })
    };
    let chain = Chain::parse(hdr_in.next_payload, &plain, true).map_err(garbage)?;
    rules::check(&rules::MM_ID, &chain.payloads)?;
    let id_b = chain
        .body_of(PayloadType::IDENTIFICATION)
        .unwrap_or_default()
        .to_vec();
    let payloads = chain.payloads.clone();
    Ok((payloads, id_b, next_iv))
}

fn check_identity(sh: &Shared, sa: &IsakmpSa, payloads: &[Payload]) -> Result<(), Error> {
    let Some(expected) = sh
        .config
        .peers
        .get(sa.peer_idx)
        .and_then(|p| p.identity.as_ref())
    else {
        return Ok(());
    };
    let got = payloads.iter().find_map(|p| match p {
        Payload::Identification(id) => Some(id),
        _ => None,
    });
    match got {
        Some(id) if proposal::identity_matches(expected, id, sa.path.remote.ip()) => Ok(()),
        _ => Err(Error::InvalidId("peer identity is not the configured one")),
    }
}

fn after_id(payloads: &[Payload]) -> Vec<Payload> {
    payloads
        .iter()
        .filter(|p| !matches!(p, Payload::Identification(_) | Payload::VendorId(_)))
        .filter(|p| !matches!(p, Payload::Notification(n) if !n.notify_type.is_error()))
        .cloned()
        .collect()
}

// HDR, KE, Ni --> (received MM3) ; <-- HDR, KE, Nr (MM4)
fn on_mm3(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    mut s: ExpectInitiatorKe,
) -> Result<(), Rejected> {
    let parsed = plain_chain(hdr_in, datagram, &rules::MM_KE)
        .and_then(|c| ke_and_nonce(&c).map(|(ke, ni)| (c.clone_payloads(), ke, ni)));
    let (extra, g_xi, ni) = match parsed {
        Ok(v) => v,
        Err(e) => {
            sh.stats.decode_errors += 1;
            return Err(keep(MainMode::ExpectInitiatorKe(Box::new(s)), e));
        }
    };
    if let Err(error) = s.auth.process_key_exchange(&extra) {
        informational::send_plain_notify(sh, sa.path, sa.icky, sa.rcky, error.notify);
        return fail_with(sh, sa, error.into(), None);
    }
    let dh = match sh.dh_generate(s.suite.group) {
        Ok(dh) => dh,
        Err(error) => return fail_with(sh, sa, error, None),
    };
    let g_xy = match sh.crypto.dh_shared(&dh, g_xi) {
        Ok(g) => g,
        Err(e) => {
            let error: Error = e.into();
            informational::send_plain_notify(
                sh,
                sa.path,
                sa.icky,
                sa.rcky,
                error
                    .notify_type()
                    .unwrap_or(NotifyType::INVALID_KEY_INFORMATION),
            );
            return fail_with(sh, sa, error, None);
        }
    };
    let nr = sh.nonce();
    let extra_out = match s.auth.key_exchange_payloads() {
        Ok(p) => p,
        Err(error) => return fail_with(sh, sa, error.into(), None),
    };
    let g_xr = dh.public_value().to_vec();
    let keys = derive_keys(
        sh,
        s.suite,
        s.auth.as_ref(),
        sa,
        &g_xy,
        ni,
        &nr,
        g_xi,
        &g_xr,
    );
    // <-- HDR, KE, Nr [, auth payloads]
    let mut payloads = vec![
        Payload::KeyExchange(KePayload {
            key_exchange_data: g_xr.clone(),
        }),
        Payload::Nonce(NoncePayload { nonce: nr }),
    ];
    payloads.extend(extra_out);
    let bytes = match crypt::plain(hdr(sa), payloads) {
        Ok(b) => b,
        Err(error) => return fail_with(sh, sa, error, None),
    };
    sa.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), false));
    debug!("MM4 sent");
    sa.state = MainMode::ExpectInitiatorId(Box::new(ExpectInitiatorId {
        keys,
        data: AuthData {
            sa_i_b: std::mem::take(&mut s.sa_i_b),
            g_xi: g_xi.to_vec(),
            g_xr,
        },
        auth: s.auth,
    }));
    Ok(())
}

/// Why the peer's MM5/MM6 was not accepted.
enum PeerIdFailure {
    /// The datagram did not decode: keep waiting (a retransmission may be intact).
    Undecodable(Error),
    /// Authentication or identity failed: end the main mode, protecting the Notify with
    /// this IV base.
    Fatal(Error, Vec<u8>),
}

/// The common half of MM5 (responder) and MM6 (initiator): decrypts the message, checks the
/// configured peer identity and verifies the peer's hash (`HASH_I` when `peer` is the
/// initiator, `HASH_R` when it is the responder) through the authenticator. Returns the
/// message's payloads and the next IV.
#[allow(clippy::too_many_arguments)]
fn verify_peer_id(
    sh: &mut Shared,
    sa: &IsakmpSa,
    keys: &Keys,
    data: &AuthData,
    auth: &mut dyn AuthSession,
    peer: Role,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
) -> Result<(Vec<Payload>, Vec<u8>), PeerIdFailure> {
    let (payloads, id_b, next_iv) = match open_id_message(sh, keys, hdr_in, datagram) {
        Ok(v) => v,
        Err(error @ (Error::Auth(_) | Error::PeerMisbehaved(_))) => {
            return Err(PeerIdFailure::Fatal(error, keys.iv.clone()))
        }
        Err(e) => {
            sh.stats.decode_errors += 1;
            return Err(PeerIdFailure::Undecodable(e));
        }
    };
    if let Err(error) = check_identity(sh, sa, &payloads) {
        return Err(PeerIdFailure::Fatal(error, next_iv));
    }
    let mut hashed_id = id_b;
    hashed_id.extend(auth.hash_suffix(peer));
    let input = data.input(&sa.icky, &sa.rcky);
    let expected = match peer {
        Role::Initiator => keys.isakmp.hash_i(sh.crypto.as_ref(), &input, &hashed_id),
        Role::Responder => keys.isakmp.hash_r(sh.crypto.as_ref(), &input, &hashed_id),
    };
    match auth.verify(&after_id(&payloads), &expected) {
        Ok(AuthStep::Done(_)) => Ok((payloads, next_iv)),
        Ok(AuthStep::Continue(_)) => Err(PeerIdFailure::Fatal(
            Error::Unsupported("multi-round-trip authentication"),
            next_iv,
        )),
        Err(e) => Err(PeerIdFailure::Fatal(e.into(), next_iv)),
    }
}

// HDR*, IDii, HASH_I --> (received MM5) ; <-- HDR*, IDir, HASH_R (MM6)
fn on_mm5(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    mut s: ExpectInitiatorId,
) -> Result<(), Rejected> {
    let peer_id = verify_peer_id(
        sh,
        sa,
        &s.keys,
        &s.data,
        s.auth.as_mut(),
        Role::Initiator,
        hdr_in,
        datagram,
    );
    let (payloads, next_iv) = match peer_id {
        Ok(v) => v,
        Err(PeerIdFailure::Undecodable(e)) => {
            return Err(keep(MainMode::ExpectInitiatorId(Box::new(s)), e))
        }
        Err(PeerIdFailure::Fatal(e, iv_base)) => {
            return fail_with(sh, sa, e, Some((&s.keys, &iv_base)))
        }
    };
    s.keys.iv = next_iv;
    let initial_contact = payloads.iter().any(
        |p| matches!(p, Payload::Notification(n) if n.notify_type == NotifyType::INITIAL_CONTACT),
    );
    let idir = proposal::identity_id(&sh.config.local_identity, sa.path.local.ip());
    let mut hashed_id = idir.body_bytes().unwrap_or_default();
    hashed_id.extend(s.auth.hash_suffix(Role::Responder));
    let hash_r = s.keys.isakmp.hash_r(
        sh.crypto.as_ref(),
        &s.data.input(&sa.icky, &sa.rcky),
        &hashed_id,
    );
    let proof = match s.auth.prove(&hash_r) {
        Ok(AuthStep::Done(p)) => p,
        Ok(AuthStep::Continue(_)) => {
            return fail_with(
                sh,
                sa,
                Error::Unsupported("multi-round-trip authentication"),
                None,
            )
        }
        Err(e) => return fail_with(sh, sa, e.into(), None),
    };
    // <-- HDR*, IDir, HASH_R
    let mut out = vec![Payload::Identification(idir)];
    out.extend(proof);
    let sealed = crypt::encode_chain(&out).and_then(|(first, plain)| {
        crypt::seal(
            &s.keys.cipher_key(sh.crypto.as_ref()),
            &s.keys.iv,
            hdr(sa),
            first,
            plain,
        )
    });
    let (bytes, next_iv) = match sealed {
        Ok(v) => v,
        Err(error) => return fail_with(sh, sa, error, None),
    };
    s.keys.iv = next_iv;
    sa.flight = Some(sh.start_flight(now, sa.path, bytes, Some(datagram), false));
    debug!("MM6 sent, ISAKMP SA established");
    establish(sh, sa, now, s.keys);
    if initial_contact {
        sh.stats.notifies_received += 1;
        sh.effects.push(Effect::InitialContact {
            keep: sa.id,
            peer: sa.path.remote,
        });
    }
    Ok(())
}

// <-- HDR*, IDir, HASH_R (received MM6)
fn on_mm6(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    now: Instant,
    hdr_in: &HeaderRepr,
    datagram: &[u8],
    mut s: ExpectResponderId,
) -> Result<(), Rejected> {
    let peer_id = verify_peer_id(
        sh,
        sa,
        &s.keys,
        &s.data,
        s.auth.as_mut(),
        Role::Responder,
        hdr_in,
        datagram,
    );
    let (_, next_iv) = match peer_id {
        Ok(v) => v,
        Err(PeerIdFailure::Undecodable(e)) => {
            return Err(keep(MainMode::ExpectResponderId(Box::new(s)), e))
        }
        Err(PeerIdFailure::Fatal(e, iv_base)) => {
            return fail_with(sh, sa, e, Some((&s.keys, &iv_base)))
        }
    };
    s.keys.iv = next_iv;
    sa.flight = None;
    debug!("MM6 verified, ISAKMP SA established");
    establish(sh, sa, now, s.keys);
    Ok(())
}

fn establish(sh: &mut Shared, sa: &mut IsakmpSa, now: Instant, keys: Keys) {
    let expires = after(now, keys.suite.lifetime);
    sa.state = MainMode::Established(Box::new(Established { keys, expires }));
    sh.stats.main_modes_completed += 1;
    sh.event(Event::IsakmpSaEstablished {
        sa: sa.handle(),
        peer: sa.path.remote,
        role: sa.role,
    });
    for (child, rekey) in std::mem::take(&mut sa.queued) {
        quick_mode::start(sh, sa, now, child, rekey);
    }
}

/// Ends the main mode: counts, sends the Notify for `error` (protected with `protect` when
/// keys exist, as RFC 2409 and Windows do in the last round trip), and emits the event.
fn fail_with(
    sh: &mut Shared,
    sa: &mut IsakmpSa,
    error: Error,
    protect: Option<(&Keys, &[u8])>,
) -> Result<(), Rejected> {
    let notify = error.notify_type();
    if matches!(error, Error::Auth(_)) {
        sh.stats.auth_failures += 1;
    }
    if let (Some(t), Some((keys, iv_base))) = (notify, protect) {
        let n = informational::notify_payload(sa, t);
        informational::send_protected(sh, sa, keys, iv_base, vec![n]);
    }
    fail(
        sh,
        sa,
        FailureReason::LocalError(notify.unwrap_or(NotifyType::PAYLOAD_MALFORMED)),
    );
    Err(Rejected { state: None, error })
}

/// Marks the SA failed and dead, with an event.
pub(crate) fn fail(sh: &mut Shared, sa: &mut IsakmpSa, reason: FailureReason) {
    sa.state = MainMode::Failed;
    sa.dead = true;
    sa.flight = None;
    fail_event(sh, sa.path.remote, false, None, reason);
}

/// Main-mode timers: retransmission and give-up, half-open timeout, lifetime.
pub(crate) fn on_timeout(sh: &mut Shared, sa: &mut IsakmpSa, now: Instant) {
    if sa.dead {
        return;
    }
    if let Some(mut f) = sa.flight.take() {
        match f.on_timer(sh, now) {
            FlightTimer::GiveUp => {
                debug!("no answer after the last retransmission");
                fail(sh, sa, FailureReason::Timeout);
                return;
            }
            FlightTimer::Resent => debug!("main mode message retransmitted"),
            FlightTimer::Idle => {}
        }
        if f.next.is_some() || f.retain_until > now {
            sa.flight = Some(f);
        }
    }
    match &sa.state {
        MainMode::Established(e) => {
            if e.expires <= now {
                debug!("ISAKMP SA lifetime reached");
                sa.dead = true;
            }
        }
        MainMode::Failed => sa.dead = true,
        _ => {
            if after(sa.started, sh.config.half_open_timeout) <= now {
                debug!("half-open main mode timed out");
                fail(sh, sa, FailureReason::Stale);
            }
        }
    }
}
