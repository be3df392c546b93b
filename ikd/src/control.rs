//! ikd's control socket (`ipsec-control(7)`): answers `ipsecadm dynamic show mmsas`,
//! `qmsas` and `stats` (and policyd) with live state from the engine; policyd's
//! `configure` (version 2) is passed to the daemon, which applies it live.
//!
//! The listener is polled by the event loop like the IKE sockets. A connection is served
//! synchronously and briefly: the handshake and at most [`MAX_REQUESTS`] requests within
//! [`ipsec_control::socket::IO_TIMEOUT`] for the whole connection, so a local client
//! cannot hold the loop longer than that. Only uid 0 may connect.

use std::path::Path;
use std::time::Instant;

use ikengine::{Endpoint, IpsecProtocol, Role};
use ipsec_control::{
    socket::Listener, ErrorCode, IkeStatistics, MainModeSa, QuickModeSa, Request, Response,
};
use tracing::{debug, info, warn};

use crate::offload::View;

/// Requests served per connection before it is closed.
pub(crate) const MAX_REQUESTS: usize = 16;

/// The listening control socket.
pub(crate) struct Control {
    listener: Listener,
    started: Instant,
}

impl Control {
    /// Listens on `path`; logs and returns `None` when it cannot (ikd runs without it).
    pub(crate) fn open(path: &Path, started: Instant) -> Option<Self> {
        match Listener::bind(path) {
            Ok(listener) => {
                info!(socket = %path.display(), "control socket listening");
                Some(Self { listener, started })
            }
            Err(e) => {
                warn!(error = %e, "no control socket: ipsecadm cannot show this ikd's SAs");
                None
            }
        }
    }

    /// The descriptor to poll.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.listener.raw_fd()
    }

    /// When ikd started (for the uptime counter).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Serves every pending connection, each request answered by `handler` (the daemon:
    /// [`answer`] for the state requests, its reconfiguration for `configure`).
    pub(crate) fn serve(&self, mut handler: impl FnMut(&Request) -> Response) {
        for _ in 0..8 {
            let server = concat!("ikd ", env!("CARGO_PKG_VERSION"));
            let mut conn = match self.listener.accept(server) {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    debug!(error = %e, "control connection refused or failed");
                    continue;
                }
            };
            let r = conn.serve(MAX_REQUESTS, &mut handler);
            if let Err(e) = r {
                debug!(error = %e, "control connection ended with an error");
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The answer to one request (pure, for tests).
pub(crate) fn answer(
    req: &Request,
    endpoint: &Endpoint,
    rate_limited: u64,
    offload: &View,
    started: Instant,
    now: Instant,
) -> Response {
    match req {
        Request::ShowMainModeSas => Response::MainModeSas {
            sas: endpoint
                .isakmp_sas(now)
                .into_iter()
                .map(|s| {
                    let [encryption, integrity, authentication, dh_group] =
                        s.suite.unwrap_or_default();
                    MainModeSa {
                        local: s.path.local,
                        peer: s.path.remote,
                        role: match s.role {
                            Role::Initiator => "initiator",
                            Role::Responder => "responder",
                        }
                        .into(),
                        initiator_cookie: hex(&s.initiator_cookie),
                        responder_cookie: hex(&s.responder_cookie),
                        state: s.state.into(),
                        encryption,
                        integrity,
                        dh_group,
                        authentication,
                        age_seconds: s.age.as_secs(),
                        expires_in_seconds: s.expires_in.map(|d| d.as_secs()),
                        quick_modes: s.quick_modes,
                    }
                })
                .collect(),
        },
        Request::ShowQuickModeSas => Response::QuickModeSas {
            sas: endpoint
                .children()
                .into_iter()
                .map(|c| {
                    let protocol = crate::convert::protocol(c.protocol);
                    let described = |destination, spi| {
                        offload
                            .by_sa
                            .get(&pfkey::SaId {
                                destination,
                                spi,
                                protocol,
                            })
                            .cloned()
                    };
                    QuickModeSa {
                        connection: c.child.0.clone(),
                        local: c.local,
                        peer: c.peer,
                        protocol: match c.protocol {
                            IpsecProtocol::Esp => "esp",
                            IpsecProtocol::Ah => "ah",
                        }
                        .into(),
                        inbound_spi: format!("{:08x}", c.inbound_spi),
                        outbound_spi: format!("{:08x}", c.outbound_spi),
                        rekeyed: c.rekeyed,
                        inbound_offload: described(c.local, c.inbound_spi),
                        outbound_offload: described(c.peer, c.outbound_spi),
                    }
                })
                .collect(),
        },
        Request::ShowStatistics => {
            let s = endpoint.statistics();
            Response::Statistics {
                statistics: IkeStatistics {
                    isakmp_sas: endpoint.isakmp_sa_count() as u64,
                    established_isakmp_sas: endpoint.established_isakmp_sa_count() as u64,
                    quick_mode_sas: endpoint.child_count() as u64,
                    datagrams_received: s.datagrams_received,
                    datagrams_sent: s.datagrams_sent,
                    main_modes_started: s.main_modes_started,
                    main_modes_completed: s.main_modes_completed,
                    main_modes_failed: s.main_modes_failed,
                    quick_modes_started: s.quick_modes_started,
                    quick_modes_completed: s.quick_modes_completed,
                    quick_modes_failed: s.quick_modes_failed,
                    authentication_failures: s.auth_failures,
                    invalid_packets: s.decode_errors,
                    invalid_cookies: s.invalid_cookies,
                    retransmissions: s.retransmits,
                    rate_limited,
                    policy_lookups: s.policy_lookups,
                    policy_connections: s.policy_connections,
                    policy_refusals: s.policy_refusals,
                    policy_unavailable: s.policy_unavailable,
                    uptime_seconds: now.saturating_duration_since(started).as_secs(),
                    offloaded_sas: Some(offload.counters.offloaded_sas),
                    offload_refused_sas: Some(offload.counters.refused_sas),
                    offload_not_retried_sas: Some(offload.counters.not_retried_sas),
                    offloaded_bytes: Some(offload.counters.offloaded_bytes),
                },
            }
        }
        other => Response::Error {
            code: ErrorCode::Unsupported,
            message: format!("ikd does not answer {}", other.name()),
        },
    }
}
