//! [`Endpoint`]: demultiplexing datagrams to ISAKMP SAs and exchanges, timers and
//! retransmission, kernel events, and the commands (`initiate`, `delete_all`).
//!
//! State is held in maps keyed by identities, never by pointers: ISAKMP SAs by a local
//! [`SaId`], found by cookie pair (`by_cookies`), by initiator cookie while our MM1 awaits
//! its answer (`pending_init`), and by (peer, initiator cookie) for a peer's MM1
//! (`mm1_index`, so a retransmitted MM1 gets the same MM2); quick-mode and informational
//! exchanges by message ID inside their SA; outstanding SPI requests by [`RequestId`];
//! installed children by (protocol, inbound SPI). A handler takes the SA out of its map,
//! works on it, and puts it back, so no two handlers ever share mutable state.
//!
//! Retransmission: each exchange keeps its last sent message (a [`Flight`]) together with
//! the datagram it answered. A received datagram byte-identical to that one is a
//! retransmission by the peer and gets the flight again (before any decryption, so IV
//! chains are untouched); a timer resends flights that expect an answer on the configured
//! schedule and abandons the exchange after the last interval.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ikecrypto::{CryptoError, CryptoProvider, DhGroup, DhKeyPair};
use isakmp::{ExchangeType, HeaderRepr, HEADER_LEN};
use tracing::debug;

use crate::config::{ChildName, EndpointConfig, IpsecProtocol, PeerAddress, TrafficSelector};
use crate::error::{Error, InitiateError};
use crate::main_mode::{self, MainMode};
use crate::quick_mode;
use crate::rng::Drbg;
use crate::types::{
    Action, ChildInfo, Event, FailureReason, IsakmpSaHandle, IsakmpSaInfo, KernelEvent, Path,
    PolicyAnswer, RequestId, Role, Selector, SpiAllocationFailed, Statistics, Transmit,
};
use crate::{informational, Subnet};

/// Local identifier of an ISAKMP SA.
pub(crate) type SaId = u64;

/// Octets as lowercase hex, for log fields (cookies, never keys).
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// `now + d` without overflow panics (far-future values saturate to a year).
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// The last message of an exchange, kept for retransmission.
#[derive(Debug)]
pub(crate) struct Flight {
    pub(crate) datagram: Vec<u8>,
    pub(crate) path: Path,
    /// The datagram this flight answered: receiving it again means our answer was lost.
    pub(crate) trigger: Option<Vec<u8>>,
    sends: usize,
    /// When the timer fires (resend or give up); `None` for flights that expect no answer.
    pub(crate) next: Option<Instant>,
    /// Flights without a timer are kept this long for duplicate-driven resends.
    pub(crate) retain_until: Instant,
}

/// What a flight's timer asks for.
pub(crate) enum FlightTimer {
    Idle,
    Resent,
    GiveUp,
}

impl Flight {
    /// Handles the timer at `now`.
    pub(crate) fn on_timer(&mut self, sh: &mut Shared, now: Instant) -> FlightTimer {
        let Some(next) = self.next else {
            return FlightTimer::Idle;
        };
        if next > now {
            return FlightTimer::Idle;
        }
        let intervals = &sh.config.retransmit.intervals;
        if self.sends + 1 >= intervals.len() {
            self.next = None;
            return FlightTimer::GiveUp;
        }
        self.sends += 1;
        self.next = intervals.get(self.sends).map(|d| after(now, *d));
        sh.stats.retransmits += 1;
        sh.send(self.path, self.datagram.clone());
        FlightTimer::Resent
    }

    /// Resends after a duplicate of the trigger.
    pub(crate) fn resend(&self, sh: &mut Shared) {
        sh.stats.retransmits += 1;
        sh.stats.duplicates += 1;
        sh.send(self.path, self.datagram.clone());
    }

    pub(crate) fn is_trigger(&self, datagram: &[u8]) -> bool {
        self.trigger.as_deref() == Some(datagram)
    }
}

/// A child SA pair we installed.
#[derive(Debug, Clone)]
pub(crate) struct InstalledChild {
    pub(crate) child: ChildName,
    pub(crate) isakmp: SaId,
    pub(crate) local: IpAddr,
    pub(crate) peer: IpAddr,
    pub(crate) protocol: IpsecProtocol,
    pub(crate) inbound_spi: u32,
    pub(crate) outbound_spi: u32,
    pub(crate) rekeyed: bool,
}

/// Cross-SA work a handler asks the endpoint to do after the SA is back in its map.
#[derive(Debug)]
pub(crate) enum Effect {
    /// The peer sent INITIAL-CONTACT on SA `keep`: drop every other SA with it.
    InitialContact { keep: SaId, peer: SocketAddr },
}

/// State shared by every handler: configuration, crypto, randomness, output queues,
/// counters, SPI requests and installed children.
pub(crate) struct Shared {
    pub(crate) config: Arc<EndpointConfig>,
    pub(crate) crypto: Arc<dyn CryptoProvider>,
    rng: Drbg,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    pub(crate) stats: Statistics,
    next_request: u64,
    pub(crate) requests: HashMap<RequestId, (SaId, u32)>,
    pub(crate) children: HashMap<(IpsecProtocol, u32), InstalledChild>,
    pub(crate) effects: Vec<Effect>,
}

impl Shared {
    pub(crate) fn send(&mut self, path: Path, contents: Vec<u8>) {
        self.stats.datagrams_sent += 1;
        self.transmits.push_back(Transmit { path, contents });
    }

    /// Sends a flight's first transmission. With `expects_reply`, the retransmission timer
    /// runs; without, the flight is only resent when `trigger` arrives again.
    pub(crate) fn start_flight(
        &mut self,
        now: Instant,
        path: Path,
        datagram: Vec<u8>,
        trigger: Option<&[u8]>,
        expects_reply: bool,
    ) -> Flight {
        self.send(path, datagram.clone());
        let intervals = &self.config.retransmit.intervals;
        Flight {
            datagram,
            path,
            trigger: trigger.map(<[u8]>::to_vec),
            sends: 1,
            next: if expects_reply {
                Some(after(
                    now,
                    intervals.get(1).copied().unwrap_or(Duration::from_secs(1)),
                ))
            } else {
                None
            },
            retain_until: after(now, self.config.retransmit.horizon()),
        }
    }

    pub(crate) fn action(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    pub(crate) fn event(&mut self, event: Event) {
        debug!(?event, "event");
        self.actions.push_back(Action::Event(event));
    }

    pub(crate) fn random(&mut self, len: usize) -> Vec<u8> {
        self.rng.bytes(self.crypto.as_ref(), len)
    }

    pub(crate) fn cookie(&mut self) -> [u8; 8] {
        self.rng.cookie(self.crypto.as_ref())
    }

    pub(crate) fn random_u32(&mut self) -> u32 {
        self.rng.u32(self.crypto.as_ref())
    }

    /// A fresh nonce (32 octets, within RFC 2409's 8..=256).
    pub(crate) fn nonce(&mut self) -> Vec<u8> {
        self.random(32)
    }

    /// A DH key pair in `group` (redrawing the rare invalid private values).
    pub(crate) fn dh_generate(&mut self, group: DhGroup) -> Result<DhKeyPair, Error> {
        let mut last = None;
        for _ in 0..8 {
            let random = self.random(group.private_len());
            match self.crypto.dh_generate(group, &random) {
                Ok(kp) => return Ok(kp),
                Err(e @ CryptoError::RejectedRandom { .. }) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or(CryptoError::RejectedRandom { group }).into())
    }

    pub(crate) fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}

/// An ISAKMP SA (from MM1 on) with its exchanges.
pub(crate) struct IsakmpSa {
    pub(crate) id: SaId,
    pub(crate) role: Role,
    pub(crate) icky: [u8; 8],
    pub(crate) rcky: [u8; 8],
    pub(crate) path: Path,
    pub(crate) peer_idx: usize,
    pub(crate) state: MainMode,
    pub(crate) flight: Option<Flight>,
    pub(crate) started: Instant,
    pub(crate) exchanges: HashMap<u32, quick_mode::Exchange>,
    /// Children to negotiate once main mode completes (with whether it is a rekey).
    pub(crate) queued: Vec<(usize, bool)>,
    pub(crate) qm_count: u32,
    pub(crate) peer_dpd: bool,
    pub(crate) first_contact: bool,
    /// Set by a handler to have the endpoint remove the SA.
    pub(crate) dead: bool,
}

impl IsakmpSa {
    pub(crate) fn handle(&self) -> IsakmpSaHandle {
        IsakmpSaHandle(self.id)
    }

    pub(crate) fn fresh_message_id(&self, sh: &mut Shared) -> u32 {
        loop {
            let id = sh.random_u32();
            if id != 0 && !self.exchanges.contains_key(&id) {
                return id;
            }
        }
    }

    /// Whether new quick modes may run on this SA.
    fn usable(&self, now: Instant) -> bool {
        match &self.state {
            MainMode::Established(e) => {
                !self.dead
                    && e.expires > now
                    && e.keys
                        .suite
                        .qm_limit
                        .is_none_or(|limit| self.qm_count < limit)
            }
            _ => false,
        }
    }

    pub(crate) fn is_established(&self) -> bool {
        !self.dead && matches!(self.state, MainMode::Established(_))
    }

    fn in_progress(&self) -> bool {
        !self.dead && !matches!(self.state, MainMode::Established(_) | MainMode::Failed)
    }
}

/// All ISAKMP SAs and exchanges of one local identity.
///
/// Feed it with `handle_*`, then drain every `poll_*` until each returns `None`, in this
/// order: [`Endpoint::poll_transmit`], [`Endpoint::poll_action`],
/// [`Endpoint::poll_timeout`]. No method performs I/O or reads the clock, and none panics
/// on any input.
pub struct Endpoint {
    pub(crate) sh: Shared,
    pub(crate) sas: HashMap<SaId, IsakmpSa>,
    by_cookies: HashMap<([u8; 8], [u8; 8]), SaId>,
    pending_init: HashMap<[u8; 8], SaId>,
    mm1_index: HashMap<(SocketAddr, [u8; 8]), SaId>,
    next_sa: SaId,
    /// Recent ACQUIREs (when, local, remote, selector), newest last, at most
    /// [`RECENT_ACQUIRES`] within [`ACQUIRE_MEMORY`]: replayed by `reconfigure` for
    /// connections without SAs, because the kernel raises no new ACQUIRE for the same
    /// traffic while its acquire state lives (one that matched no connection yet, or whose
    /// negotiation failed under the old settings).
    pub(crate) recent_acquires: VecDeque<(Instant, IpAddr, IpAddr, Option<Selector>)>,
}

/// How many recent ACQUIREs are remembered.
pub(crate) const RECENT_ACQUIRES: usize = 64;
/// How long an ACQUIRE is remembered (Linux's default `xfrm_acq_expires`).
pub(crate) const ACQUIRE_MEMORY: Duration = Duration::from_secs(30);

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("isakmp_sas", &self.sas.len())
            .field("children", &self.sh.children.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with no SAs. `rng_seed` must be 32 fresh random octets in production
    /// (cookies, nonces, message IDs and DH private keys are derived from it).
    pub fn new(
        config: Arc<EndpointConfig>,
        crypto: Arc<dyn CryptoProvider>,
        rng_seed: [u8; 32],
    ) -> Self {
        Self {
            sh: Shared {
                config,
                crypto,
                rng: Drbg::new(rng_seed),
                transmits: VecDeque::new(),
                actions: VecDeque::new(),
                stats: Statistics::default(),
                next_request: 0,
                requests: HashMap::new(),
                children: HashMap::new(),
                effects: Vec::new(),
            },
            sas: HashMap::new(),
            by_cookies: HashMap::new(),
            pending_init: HashMap::new(),
            mm1_index: HashMap::new(),
            next_sa: 0,
            recent_acquires: VecDeque::new(),
        }
    }

    /// The counters.
    pub fn statistics(&self) -> &Statistics {
        &self.sh.stats
    }

    /// The number of ISAKMP SAs (any state).
    pub fn isakmp_sa_count(&self) -> usize {
        self.sas.len()
    }

    /// The number of established ISAKMP SAs.
    pub fn established_isakmp_sa_count(&self) -> usize {
        self.sas
            .values()
            .filter(|s| !s.dead && matches!(s.state, MainMode::Established(_)))
            .count()
    }

    /// The number of installed SA pairs the engine knows of.
    pub fn child_count(&self) -> usize {
        self.sh.children.len()
    }

    /// A snapshot of every ISAKMP SA (for a control socket), in creation order.
    pub fn isakmp_sas(&self, now: Instant) -> Vec<IsakmpSaInfo> {
        let mut v: Vec<(&SaId, &IsakmpSa)> = self.sas.iter().filter(|(_, s)| !s.dead).collect();
        v.sort_by_key(|(id, _)| **id);
        v.into_iter()
            .map(|(_, s)| {
                let (state, expires_in) = match &s.state {
                    MainMode::Established(e) => (
                        "established",
                        Some(e.expires.saturating_duration_since(now)),
                    ),
                    MainMode::ExpectResponderSa(_) => ("waiting for MM2", None),
                    MainMode::ExpectResponderKe(_) => ("waiting for MM4", None),
                    MainMode::ExpectResponderId(_) => ("waiting for MM6", None),
                    MainMode::ExpectInitiatorKe(_) => ("waiting for MM3", None),
                    MainMode::ExpectInitiatorId(_) => ("waiting for MM5", None),
                    MainMode::Failed => ("failed", None),
                };
                IsakmpSaInfo {
                    handle: s.handle(),
                    role: s.role,
                    path: s.path,
                    initiator_cookie: s.icky,
                    responder_cookie: s.rcky,
                    state,
                    suite: s.state.keys().map(|k| {
                        let su = &k.suite;
                        [
                            format!("{:?}", su.cipher),
                            format!("{:?}", su.hash),
                            format!("{:?}", su.auth),
                            format!("{:?}", su.group),
                        ]
                    }),
                    age: now.saturating_duration_since(s.started),
                    expires_in,
                    quick_modes: s.qm_count,
                }
            })
            .collect()
    }

    /// A snapshot of the installed SA pairs the engine knows of (for a control socket),
    /// ordered by peer and inbound SPI.
    pub fn children(&self) -> Vec<ChildInfo> {
        let mut v: Vec<ChildInfo> = self
            .sh
            .children
            .values()
            .map(|c| ChildInfo {
                child: c.child.clone(),
                isakmp: IsakmpSaHandle(c.isakmp),
                local: c.local,
                peer: c.peer,
                protocol: c.protocol,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                rekeyed: c.rekeyed,
            })
            .collect();
        v.sort_by_key(|c| (c.peer, c.inbound_spi));
        v
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.sh.transmits.pop_front()
    }

    /// The next action for the daemon.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.sh.actions.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let half_open = self.sh.config.half_open_timeout;
        let mut t: Option<Instant> = None;
        let mut min = |i: Instant| t = Some(t.map_or(i, |x| x.min(i)));
        for sa in self.sas.values() {
            if let Some(f) = &sa.flight {
                if let Some(n) = f.next {
                    min(n);
                } else if sa.flight.is_some() {
                    min(f.retain_until);
                }
            }
            match &sa.state {
                MainMode::Established(e) => min(e.expires),
                _ => min(after(sa.started, half_open)),
            }
            for ex in sa.exchanges.values() {
                if let Some(f) = &ex.flight {
                    if let Some(n) = f.next {
                        min(n);
                    }
                }
                match ex.finished {
                    Some(done) => min(after(done, self.sh.config.retransmit.horizon())),
                    None => min(after(ex.started, half_open)),
                }
            }
        }
        t
    }

    /// Processes one received datagram (without the non-ESP marker on port 4500).
    pub fn handle_datagram(&mut self, now: Instant, path: Path, datagram: &[u8]) {
        self.sh.stats.datagrams_received += 1;
        let hdr = match HeaderRepr::decode(datagram) {
            Ok(h) if usize::try_from(h.length).ok() == Some(datagram.len()) => h,
            Ok(h) => {
                self.sh.stats.decode_errors += 1;
                debug!(
                    length = h.length,
                    got = datagram.len(),
                    "header length mismatch"
                );
                return;
            }
            Err(e) => {
                self.sh.stats.decode_errors += 1;
                debug!(error = %e, "undecodable datagram");
                return;
            }
        };
        let span = tracing::debug_span!(
            "ike",
            icky = %Hex(&hdr.initiator_cookie),
            rcky = %Hex(&hdr.responder_cookie),
            msgid = %format_args!("{:08x}", hdr.message_id),
            peer = %path.remote,
        );
        let _enter = span.enter();
        if datagram.len() < HEADER_LEN {
            return;
        }
        if hdr.responder_cookie == [0; 8] {
            self.handle_mm1(now, path, &hdr, datagram);
            return;
        }
        let key = (hdr.initiator_cookie, hdr.responder_cookie);
        let id = match self.by_cookies.get(&key) {
            Some(id) => *id,
            None => match self.adopt_responder_cookie(&hdr, path, datagram) {
                Some(id) => id,
                None => {
                    self.sh.stats.invalid_cookies += 1;
                    debug!("no ISAKMP SA for these cookies");
                    return;
                }
            },
        };
        let Some(mut sa) = self.sas.remove(&id) else {
            self.sh.stats.dropped += 1;
            return;
        };
        if sa.path.remote != path.remote {
            // Port floating (NAT-T) is not implemented: a changed peer address is dropped.
            self.sh.stats.dropped += 1;
            debug!("datagram from another address than the SA's peer");
        } else {
            match hdr.exchange_type {
                ExchangeType::IDENTITY_PROTECTION if hdr.message_id == 0 => {
                    main_mode::handle(&mut self.sh, &mut sa, now, &hdr, datagram);
                }
                ExchangeType::QUICK_MODE => {
                    quick_mode::handle(&mut self.sh, &mut sa, now, &hdr, datagram);
                }
                ExchangeType::INFORMATIONAL => {
                    informational::handle(&mut self.sh, &mut sa, now, &hdr, datagram);
                }
                other => {
                    self.sh.stats.dropped += 1;
                    debug!(exchange = %other, "unsupported exchange type");
                }
            }
        }
        self.put_back(sa);
        self.run_effects();
    }

    /// The first MM2 for one of our MM1s carries the responder cookie we learn now.
    fn adopt_responder_cookie(
        &mut self,
        hdr: &HeaderRepr,
        path: Path,
        datagram: &[u8],
    ) -> Option<SaId> {
        let id = *self.pending_init.get(&hdr.initiator_cookie)?;
        let sa = self.sas.get_mut(&id)?;
        if sa.path.remote != path.remote
            || hdr.exchange_type != ExchangeType::IDENTITY_PROTECTION
                && hdr.exchange_type != ExchangeType::INFORMATIONAL
            || !matches!(sa.state, MainMode::ExpectResponderSa(_))
        {
            return None;
        }
        if hdr.exchange_type == ExchangeType::INFORMATIONAL {
            // An unprotected notify (NO-PROPOSAL-CHOSEN...) about our MM1: handled by the
            // SA without adopting the cookie.
            let mut sa = self.sas.remove(&id)?;
            informational::handle_pre_mm2(&mut self.sh, &mut sa, hdr, datagram);
            self.put_back(sa);
            return None;
        }
        sa.rcky = hdr.responder_cookie;
        self.pending_init.remove(&hdr.initiator_cookie);
        self.by_cookies
            .insert((hdr.initiator_cookie, hdr.responder_cookie), id);
        Some(id)
    }

    fn handle_mm1(&mut self, now: Instant, path: Path, hdr: &HeaderRepr, datagram: &[u8]) {
        if hdr.exchange_type != ExchangeType::IDENTITY_PROTECTION
            || hdr.message_id != 0
            || hdr.flags.is_encrypted()
        {
            self.sh.stats.invalid_cookies += 1;
            debug!("zero responder cookie outside MM1");
            return;
        }
        if let Some(id) = self.mm1_index.get(&(path.remote, hdr.initiator_cookie)) {
            let flight = self.sas.get(id).and_then(|sa| sa.flight.as_ref());
            match flight {
                Some(f) if f.is_trigger(datagram) => f.resend(&mut self.sh),
                _ => {
                    self.sh.stats.dropped += 1;
                    debug!("second, different MM1 with a known initiator cookie");
                }
            }
            return;
        }
        let half_open = self
            .sas
            .values()
            .filter(|s| s.role == Role::Responder && s.in_progress())
            .count();
        if half_open >= self.sh.config.max_half_open {
            self.sh.stats.half_open_dropped += 1;
            debug!(half_open, "half-open cap reached, MM1 dropped");
            return;
        }
        self.next_sa += 1;
        let id = self.next_sa;
        let first_contact = self.is_first_contact(path.remote.ip());
        if let Some(sa) =
            main_mode::respond(&mut self.sh, id, now, path, hdr, datagram, first_contact)
        {
            self.by_cookies.insert((sa.icky, sa.rcky), id);
            self.mm1_index.insert((path.remote, sa.icky), id);
            self.sas.insert(id, sa);
        }
    }

    fn is_first_contact(&self, peer: IpAddr) -> bool {
        !self.sas.values().any(|s| s.path.remote.ip() == peer)
            && !self.sh.children.values().any(|c| c.peer == peer)
    }

    fn put_back(&mut self, sa: IsakmpSa) {
        if sa.dead {
            self.forget(sa);
        } else {
            self.sas.insert(sa.id, sa);
        }
    }

    /// Removes every index entry of a dead SA.
    pub(crate) fn forget(&mut self, sa: IsakmpSa) {
        self.by_cookies.remove(&(sa.icky, sa.rcky));
        if self.pending_init.get(&sa.icky) == Some(&sa.id) {
            self.pending_init.remove(&sa.icky);
        }
        if self.mm1_index.get(&(sa.path.remote, sa.icky)) == Some(&sa.id) {
            self.mm1_index.remove(&(sa.path.remote, sa.icky));
        }
        self.sh.requests.retain(|_, (id, _)| *id != sa.id);
        if matches!(sa.state, MainMode::Established(_)) {
            self.sh.event(Event::IsakmpSaDeleted {
                sa: sa.handle(),
                peer: sa.path.remote,
            });
        }
    }

    fn run_effects(&mut self) {
        for effect in std::mem::take(&mut self.sh.effects) {
            match effect {
                Effect::InitialContact { keep, peer } => {
                    let old: Vec<SaId> = self
                        .sas
                        .values()
                        .filter(|s| s.id != keep && s.path.remote.ip() == peer.ip())
                        .map(|s| s.id)
                        .collect();
                    for id in old {
                        if let Some(sa) = self.sas.remove(&id) {
                            self.forget(sa);
                        }
                    }
                    let stale: Vec<(IpsecProtocol, u32)> = self
                        .sh
                        .children
                        .iter()
                        .filter(|(_, c)| c.peer == peer.ip() && c.isakmp != keep)
                        .map(|(k, _)| *k)
                        .collect();
                    for k in stale {
                        if let Some(c) = self.sh.children.remove(&k) {
                            delete_child_actions(&mut self.sh, &c);
                        }
                    }
                    self.sh.event(Event::InitialContact { peer });
                }
            }
        }
    }

    /// Runs timers: retransmissions, give-ups, half-open and lifetime expiry, cleanup of
    /// finished exchanges.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<SaId> = self.sas.keys().copied().collect();
        for id in ids {
            let Some(mut sa) = self.sas.remove(&id) else {
                continue;
            };
            let span = tracing::debug_span!(
                "ike",
                icky = %Hex(&sa.icky),
                rcky = %Hex(&sa.rcky),
                peer = %sa.path.remote,
            );
            let _enter = span.enter();
            main_mode::on_timeout(&mut self.sh, &mut sa, now);
            quick_mode::on_timeout(&mut self.sh, &mut sa, now);
            self.put_back(sa);
        }
        self.run_effects();
    }

    /// Answer to a previous [`Action::AllocSpi`].
    pub fn handle_spi_allocated(
        &mut self,
        now: Instant,
        request: RequestId,
        spi: Result<u32, SpiAllocationFailed>,
    ) {
        let Some((id, msgid)) = self.sh.requests.remove(&request) else {
            debug!(?request, "answer to an unknown SPI request");
            return;
        };
        let Some(mut sa) = self.sas.remove(&id) else {
            return;
        };
        quick_mode::on_spi(&mut self.sh, &mut sa, now, msgid, spi);
        self.put_back(sa);
        self.run_effects();
    }

    /// Answer to a previous [`Action::LookupPolicy`]. Unknown (or already answered, or
    /// timed-out) requests are ignored.
    pub fn handle_policy_answer(&mut self, now: Instant, request: RequestId, answer: PolicyAnswer) {
        let _ = now;
        let Some(&(id, msgid)) = self.sh.requests.get(&request) else {
            debug!(?request, "answer to an unknown policy lookup");
            return;
        };
        let Some(mut sa) = self.sas.remove(&id) else {
            self.sh.requests.remove(&request);
            return;
        };
        if quick_mode::on_policy(&mut self.sh, &mut sa, msgid, answer) {
            self.sh.requests.remove(&request);
        } else {
            debug!(
                ?request,
                "policy answer to a request that is not a policy lookup"
            );
        }
        self.put_back(sa);
        self.run_effects();
    }

    /// ACQUIRE (negotiate the child covering the packet) and EXPIRE (soft: rekey; hard:
    /// forget) from the kernel.
    pub fn handle_kernel_event(&mut self, now: Instant, event: KernelEvent) {
        match event {
            KernelEvent::Acquire {
                local,
                remote,
                selector,
            } => {
                self.sh.stats.acquires += 1;
                self.recent_acquires
                    .retain(|(t, ..)| after(*t, ACQUIRE_MEMORY) > now);
                if self.recent_acquires.len() >= RECENT_ACQUIRES {
                    self.recent_acquires.pop_front();
                }
                self.recent_acquires
                    .push_back((now, local, remote, selector));
                self.acquire(now, local, remote, selector);
            }
            KernelEvent::Expire {
                spi,
                protocol,
                destination,
                hard,
            } => {
                let key = self
                    .sh
                    .children
                    .iter()
                    .find(|(_, c)| {
                        c.protocol == protocol
                            && ((c.inbound_spi == spi && c.local == destination)
                                || (c.outbound_spi == spi && c.peer == destination))
                    })
                    .map(|(k, _)| *k);
                let Some(key) = key else {
                    debug!(spi = %format_args!("{spi:08x}"), "EXPIRE for an unknown SA");
                    return;
                };
                if hard {
                    self.sh.children.remove(&key);
                    return;
                }
                let Some(c) = self.sh.children.get_mut(&key) else {
                    return;
                };
                if c.rekeyed {
                    return;
                }
                c.rekeyed = true;
                let name = c.child.clone();
                let path = Path {
                    local: SocketAddr::new(c.local, 500),
                    remote: SocketAddr::new(c.peer, 500),
                };
                self.sh.stats.rekeys += 1;
                if let Err(e) = self.start_child(now, &name, Some(path), true, false) {
                    debug!(error = %e, "rekey not started");
                }
            }
        }
    }

    /// The child whose traffic an ACQUIRE (to `remote`, for `selector`) is for.
    pub(crate) fn acquire_child(
        &self,
        remote: IpAddr,
        selector: Option<Selector>,
    ) -> Option<ChildName> {
        let config = &self.sh.config;
        config
            .children
            .iter()
            .find(|c| {
                let Some(peer) = config.peers.iter().find(|p| p.name == c.peer) else {
                    return false;
                };
                if peer.address != PeerAddress::Address(remote) {
                    return false;
                }
                match (selector, c.selector) {
                    (Some(sel), Some(ts)) => ts.contains(&TrafficSelector {
                        local: sel.source,
                        remote: sel.destination,
                        protocol: sel.protocol,
                        local_port: sel.source_port,
                        remote_port: sel.destination_port,
                    }),
                    _ => true,
                }
            })
            .map(|c| c.name.clone())
    }

    /// Negotiates the child covering an ACQUIRE's traffic (unless one is under way).
    pub(crate) fn acquire(
        &mut self,
        now: Instant,
        local: IpAddr,
        remote: IpAddr,
        selector: Option<Selector>,
    ) {
        let Some(child) = self.acquire_child(remote, selector) else {
            debug!(%remote, "ACQUIRE matches no child");
            return;
        };
        if self.child_in_progress(&child) {
            debug!(%child, "ACQUIRE for a child already being negotiated");
            return;
        }
        let path = Path {
            local: SocketAddr::new(local, 500),
            remote: SocketAddr::new(remote, 500),
        };
        if let Err(e) = self.start_child(now, &child, Some(path), false, false) {
            debug!(error = %e, "ACQUIRE not negotiated");
        }
    }

    fn child_in_progress(&self, name: &ChildName) -> bool {
        let Some((idx, _)) = self.sh.config.child(name) else {
            return false;
        };
        self.sas.values().any(|sa| {
            sa.queued.iter().any(|(c, _)| *c == idx)
                || sa
                    .exchanges
                    .values()
                    .any(|ex| ex.finished.is_none() && ex.state.child() == Some(idx))
        })
    }

    /// Starts main mode (unless one with the child's peer can be reused) and quick mode for
    /// the configured child `child`. The peer must have a fixed address and a
    /// [`crate::PeerConfig::local`] address to send from.
    pub fn initiate(
        &mut self,
        now: Instant,
        child: &ChildName,
    ) -> Result<IsakmpSaHandle, InitiateError> {
        let r = self.start_child(now, child, None, false, false);
        self.run_effects();
        r
    }

    /// Like [`Endpoint::initiate`], but always starts a new main mode for the quick mode,
    /// neither reusing an established ISAKMP SA with the peer nor queueing behind one in
    /// progress (load tests: one main mode per setup). Several at once need
    /// [`crate::EndpointConfig::initial_contact`] off: the peer answers INITIAL-CONTACT on
    /// the first by dropping the others.
    pub fn initiate_new_main_mode(
        &mut self,
        now: Instant,
        child: &ChildName,
    ) -> Result<IsakmpSaHandle, InitiateError> {
        let r = self.start_child(now, child, None, false, true);
        self.run_effects();
        r
    }

    fn start_child(
        &mut self,
        now: Instant,
        name: &ChildName,
        path: Option<Path>,
        rekey: bool,
        new_main_mode: bool,
    ) -> Result<IsakmpSaHandle, InitiateError> {
        let config = Arc::clone(&self.sh.config);
        let (child_idx, child) = config
            .child(name)
            .ok_or_else(|| InitiateError::UnknownChild(name.0.clone()))?;
        if child.proposals.is_empty() {
            return Err(InitiateError::NoChildProposal(name.0.clone()));
        }
        let (peer_idx, peer) = config
            .peers
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == child.peer)
            .ok_or_else(|| InitiateError::UnknownPeer(child.peer.clone()))?;
        let path = match (path, peer.address, peer.local) {
            (Some(p), _, _) => p,
            (None, PeerAddress::Address(remote), Some(local)) => Path {
                local: SocketAddr::new(local, 500),
                remote: SocketAddr::new(remote, 500),
            },
            _ => return Err(InitiateError::NoPeerAddress(peer.name.clone())),
        };
        // Reuse an established main mode with the peer.
        let reuse = self
            .sas
            .values()
            .filter(|s| !new_main_mode && s.path.remote.ip() == path.remote.ip() && s.usable(now))
            .map(|s| s.id)
            .max();
        if let Some(id) = reuse {
            if let Some(mut sa) = self.sas.remove(&id) {
                quick_mode::start(&mut self.sh, &mut sa, now, child_idx, rekey);
                let h = sa.handle();
                self.put_back(sa);
                return Ok(h);
            }
        }
        // Or queue behind one in progress.
        if let Some(sa) = self
            .sas
            .values_mut()
            .find(|s| !new_main_mode && s.path.remote.ip() == path.remote.ip() && s.in_progress())
        {
            sa.queued.push((child_idx, rekey));
            return Ok(sa.handle());
        }
        let proposals: Vec<_> = config
            .main_mode_proposals
            .iter()
            .filter(|p| p.auth_method == peer.auth.method())
            .copied()
            .collect();
        if proposals.is_empty() {
            return Err(InitiateError::NoProposal(peer.name.clone()));
        }
        self.next_sa += 1;
        let id = self.next_sa;
        let first_contact = self.is_first_contact(path.remote.ip());
        let mut sa = main_mode::initiate(
            &mut self.sh,
            id,
            now,
            path,
            peer_idx,
            peer.auth.start(Role::Initiator),
            &proposals,
            first_contact,
        );
        sa.queued.push((child_idx, rekey));
        let h = sa.handle();
        self.pending_init.insert(sa.icky, id);
        self.sas.insert(id, sa);
        Ok(h)
    }

    /// Sends Deletes for every IPsec and ISAKMP SA (for shutdown), asks the daemon to
    /// delete every installed kernel SA, and forgets all state.
    pub fn delete_all(&mut self, _now: Instant) {
        let ids: Vec<SaId> = self.sas.keys().copied().collect();
        for id in ids {
            let Some(mut sa) = self.sas.remove(&id) else {
                continue;
            };
            if matches!(sa.state, MainMode::Established(_)) {
                let children: Vec<InstalledChild> = self
                    .sh
                    .children
                    .values()
                    .filter(|c| c.peer == sa.path.remote.ip())
                    .cloned()
                    .collect();
                informational::send_deletes(&mut self.sh, &sa, &children, true);
                for c in &children {
                    self.sh.children.remove(&(c.protocol, c.inbound_spi));
                    delete_child_actions(&mut self.sh, c);
                }
            }
            sa.dead = true;
            self.forget(sa);
        }
        for (_, c) in std::mem::take(&mut self.sh.children) {
            delete_child_actions(&mut self.sh, &c);
        }
    }

    /// Sends a protected Notify about the first established ISAKMP SA (tests only: the
    /// engine does not originate DPD yet).
    #[cfg(test)]
    pub(crate) fn send_isakmp_notify(&mut self, t: isakmp::NotifyType, data: Vec<u8>) {
        let Some(sa) = self
            .sas
            .values()
            .find(|s| matches!(s.state, MainMode::Established(_)))
        else {
            return;
        };
        let MainMode::Established(est) = &sa.state else {
            return;
        };
        let mut n = informational::notify_payload(sa, t);
        if let isakmp::Payload::Notification(p) = &mut n {
            p.data = data;
        }
        let iv = est.keys.iv.clone();
        informational::send_protected(&mut self.sh, sa, &est.keys, &iv, vec![n]);
    }

    #[cfg(test)]
    pub(crate) fn shared_config(&self) -> &EndpointConfig {
        &self.sh.config
    }
}

/// DeleteSa for both SAs of an installed pair.
pub(crate) fn delete_child_actions(sh: &mut Shared, c: &InstalledChild) {
    sh.action(Action::DeleteSa {
        spi: c.inbound_spi,
        protocol: c.protocol,
        destination: c.local,
        source: c.peer,
    });
    sh.action(Action::DeleteSa {
        spi: c.outbound_spi,
        protocol: c.protocol,
        destination: c.peer,
        source: c.local,
    });
}

/// Records a failed exchange.
pub(crate) fn fail_event(
    sh: &mut Shared,
    peer: SocketAddr,
    quick_mode: bool,
    child: Option<ChildName>,
    reason: FailureReason,
) {
    if quick_mode {
        sh.stats.quick_modes_failed += 1;
    } else {
        sh.stats.main_modes_failed += 1;
    }
    sh.event(Event::ExchangeFailed {
        peer,
        quick_mode,
        child,
        reason,
    });
}

/// The selector a child negotiates over `path` (host-to-host if none is configured).
pub(crate) fn child_selector(sh: &Shared, child_idx: usize, path: &Path) -> TrafficSelector {
    sh.config
        .children
        .get(child_idx)
        .and_then(|c| c.selector)
        .unwrap_or_else(|| {
            TrafficSelector::between(
                Subnet::host(path.local.ip()),
                Subnet::host(path.remote.ip()),
            )
        })
}
