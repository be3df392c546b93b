//! Fall back to clear (the seed's "soft SA"): when a peer does not answer IKE for traffic
//! the kernel asked ikd to secure, ikd tells policyd, which decides from the matching
//! rule's filter action whether that traffic may pass in clear and installs the policies.
//!
//! ikd only measures: an ACQUIRE for a peer starts a [`FALLBACK_AFTER`] timer; when it runs
//! out and no ISAKMP SA shows that the peer speaks IKE (an initiator SA past MM1, or any
//! responder SA), ikd sends `peer-unreachable` on policyd's control socket from a
//! short-lived thread (the event loop never waits for policyd). A peer is reported at most
//! once per [`REPORT_INTERVAL`]. The main mode itself carries on retransmitting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ikengine::{Endpoint, Role};
use ipsec_control::{Client, ErrorCode, Request, Response};
use tracing::{debug, info, warn};

/// How long a peer has to answer IKE before ikd reports it.
pub(crate) const FALLBACK_AFTER: Duration = Duration::from_secs(3);
/// The least time between two reports of one peer.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The pending and recent reports.
#[derive(Debug)]
pub(crate) struct FallBack {
    socket: PathBuf,
    pending: HashMap<IpAddr, (IpAddr, Instant)>,
    reported: HashMap<IpAddr, Instant>,
}

impl FallBack {
    /// Reports go to policyd's socket at `socket`.
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            pending: HashMap::new(),
            reported: HashMap::new(),
        }
    }

    /// An ACQUIRE for traffic from `local` to `remote`.
    pub(crate) fn acquire(&mut self, now: Instant, local: IpAddr, remote: IpAddr) {
        if self
            .reported
            .get(&remote)
            .is_some_and(|t| now.saturating_duration_since(*t) < REPORT_INTERVAL)
        {
            return;
        }
        self.pending
            .entry(remote)
            .or_insert((local, now + FALLBACK_AFTER));
    }

    /// When [`FallBack::due`] must run next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|(_, t)| *t).min()
    }

    /// Reports the peers whose timer ran out without an IKE answer.
    pub(crate) fn due(&mut self, now: Instant, endpoint: &Endpoint) {
        let expired: Vec<(IpAddr, IpAddr)> = self
            .pending
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(peer, (local, _))| (*peer, *local))
            .collect();
        if expired.is_empty() {
            return;
        }
        let sas = endpoint.isakmp_sas(now);
        for (peer, local) in expired {
            self.pending.remove(&peer);
            let answered = sas.iter().any(|s| {
                s.path.remote.ip() == peer
                    && (s.role == Role::Responder || s.responder_cookie != [0; 8])
            });
            if answered {
                debug!(%peer, "peer answers IKE: no fall back to clear");
                continue;
            }
            self.reported.insert(peer, now);
            self.reported
                .retain(|_, t| now.saturating_duration_since(*t) < REPORT_INTERVAL);
            info!(%peer, after_s = FALLBACK_AFTER.as_secs(), "peer does not answer IKE: telling policyd");
            let socket = self.socket.clone();
            let spawned = std::thread::Builder::new()
                .name("fallback".into())
                .spawn(move || report(&socket, local, peer));
            if let Err(e) = spawned {
                warn!(error = %e, "cannot report a silent peer");
            }
        }
    }
}

fn report(socket: &std::path::Path, local: IpAddr, peer: IpAddr) {
    let r = Client::connect(socket, concat!("ikd ", env!("CARGO_PKG_VERSION")))
        .and_then(|mut c| c.call(&Request::PeerUnreachable { local, peer }));
    match r {
        Ok(Response::FellBackToClear {
            policies,
            idle_seconds,
        }) => info!(%peer, policies, idle_seconds, "policyd: falling back to clear"),
        Err(ipsec_control::Error::Refused {
            code: ErrorCode::Denied,
            message,
        }) => info!(%peer, reason = %message, "policyd: no fall back to clear"),
        Ok(other) => warn!(%peer, answer = other.name(), "policyd: unexpected answer"),
        Err(e) => warn!(%peer, error = %e, "cannot report a silent peer to policyd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn endpoint() -> Endpoint {
        let cfg = ikengine::EndpointConfig::new(ikengine::Identity::Address);
        Endpoint::new(
            Arc::new(cfg),
            Arc::new(ikecrypto::RustCryptoProvider::new()),
            [7; 32],
        )
    }

    #[test]
    fn a_silent_peer_is_reported_once_after_the_delay() {
        let mut f = FallBack::new(
            std::env::temp_dir().join(format!("ikd-fallback-test-{}.sock", std::process::id())),
        );
        let ep = endpoint();
        let t0 = Instant::now();
        let (local, peer): (IpAddr, IpAddr) = (
            "192.0.2.11".parse().expect("ip"),
            "192.0.2.12".parse().expect("ip"),
        );
        assert_eq!(f.deadline(), None);
        f.acquire(t0, local, peer);
        // A second ACQUIRE does not push the deadline out.
        f.acquire(t0 + Duration::from_secs(2), local, peer);
        assert_eq!(f.deadline(), Some(t0 + FALLBACK_AFTER));
        f.due(t0 + Duration::from_secs(1), &ep);
        assert_eq!(f.deadline(), Some(t0 + FALLBACK_AFTER));
        // No ISAKMP SA with the peer: reported (to a socket nobody listens on: logged).
        f.due(t0 + FALLBACK_AFTER, &ep);
        assert_eq!(f.deadline(), None);
        assert!(f.reported.contains_key(&peer));
        // Within the report interval a new ACQUIRE starts no timer; after it, it does.
        f.acquire(t0 + Duration::from_secs(30), local, peer);
        assert_eq!(f.deadline(), None);
        let later = t0 + FALLBACK_AFTER + REPORT_INTERVAL;
        f.acquire(later, local, peer);
        assert_eq!(f.deadline(), Some(later + FALLBACK_AFTER));
    }
}
