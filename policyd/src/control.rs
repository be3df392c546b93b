//! policyd's control socket (`ipsec-control(7)`), `<control-dir>/policyd.sock`: ikd tells
//! the agent about peers that do not answer IKE (fall back to clear) and default-response
//! SA pairs (dynamic filters), and asks which rule answers a quick mode
//! (`match-negotiation`, version 2).
//!
//! A server thread accepts connections (uid 0 only, version handshake) and hands each
//! request to the service loop as a [`Query`] on the loop's event channel, so that the
//! agent's state is only touched by the loop; the thread waits for the answer at most
//! [`ANSWER_TIMEOUT`].

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use ipsec_control::{ErrorCode, Listener, Request, Response};

use crate::service::{Agent, DynamicFilter, Effects, FallBackError};

/// How long the server thread waits for the service loop's answer.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_millis(1500);

/// One request for the service loop and where its answer goes.
#[derive(Debug)]
pub(crate) struct Query {
    /// The request.
    pub(crate) request: Request,
    /// The answer's way back to the server thread.
    pub(crate) reply: mpsc::Sender<Response>,
}

/// Listens on `path` and serves it from a thread; each request becomes `wrap(query)` on
/// `events`.
pub(crate) fn start<E: Send + 'static>(
    path: &Path,
    events: mpsc::Sender<E>,
    wrap: fn(Query) -> E,
) -> Result<(), ipsec_control::Error> {
    let mut listener = Listener::bind(path)?;
    listener.set_blocking(true)?;
    // A thread of its own: a connection may stay a while (ikd asks one question each).
    listener.set_budget(Duration::from_secs(30));
    tracing::info!(socket = %path.display(), "control socket listening");
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || serve(&listener, &events, wrap))
        .map_err(ipsec_control::Error::Io)?;
    Ok(())
}

fn serve<E>(listener: &Listener, events: &mpsc::Sender<E>, wrap: fn(Query) -> E) {
    let server = concat!("policyd ", env!("CARGO_PKG_VERSION"));
    loop {
        let mut conn = match listener.accept(server) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "control connection refused or failed");
                continue;
            }
        };
        let r = conn.serve(16, |request| {
            let (reply, answer) = mpsc::channel();
            let query = Query {
                request: request.clone(),
                reply,
            };
            if events.send(wrap(query)).is_err() {
                return failed("policyd is stopping");
            }
            answer
                .recv_timeout(ANSWER_TIMEOUT)
                .unwrap_or_else(|_| failed("the policy agent did not answer in time"))
        });
        if let Err(e) = r {
            tracing::debug!(error = %e, "control connection ended with an error");
        }
    }
}

fn failed(message: &str) -> Response {
    Response::Error {
        code: ErrorCode::Failed,
        message: message.into(),
    }
}

/// The service loop's answer to one request.
pub(crate) fn answer(agent: &mut Agent, fx: &mut dyn Effects, request: &Request) -> Response {
    match request {
        Request::PeerUnreachable { local, peer } => {
            tracing::info!(%local, %peer, "ikd: peer does not answer IKE");
            match agent.fall_back_to_clear(fx, *peer) {
                Ok(n) => Response::FellBackToClear {
                    policies: u32::try_from(n).unwrap_or(u32::MAX),
                    idle_seconds: u32::try_from(ipsec_agent::compile::SOFT_CLEAR_IDLE_SECONDS)
                        .unwrap_or(u32::MAX),
                },
                Err(e @ (FallBackError::NotAllowed(_) | FallBackError::NotApplied)) => {
                    tracing::info!(%peer, reason = %e, "no fall back to clear");
                    Response::Error {
                        code: ErrorCode::Denied,
                        message: e.to_string(),
                    }
                }
                Err(e) => {
                    tracing::error!(%peer, error = %e, "fall back to clear failed");
                    failed(&e.to_string())
                }
            }
        }
        Request::DynamicFilterNeeded {
            local,
            peer,
            protocol,
            local_port,
            remote_port,
            reqid,
            ah,
        } => {
            let f = DynamicFilter {
                local: *local,
                peer: *peer,
                protocol: *protocol,
                local_port: *local_port,
                remote_port: *remote_port,
                reqid: *reqid,
                ah: *ah,
            };
            match agent.add_dynamic_filter(fx, &f) {
                Ok(_) => Response::Done,
                Err(e) => {
                    tracing::error!(%peer, error = %e, "cannot install the dynamic filter");
                    failed(&e)
                }
            }
        }
        Request::DynamicFilterGone { peer, .. } => match agent.remove_dynamic_filter(fx, *peer) {
            Ok(_) => Response::Done,
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot remove the dynamic filter");
                failed(&e)
            }
        },
        Request::MatchNegotiation(q) => match agent.match_negotiation(q) {
            Ok(verdict) => {
                tracing::info!(
                    peer = %q.peer,
                    local = %q.local_subnet,
                    remote = %q.remote_subnet,
                    protocol = q.protocol,
                    local_port = q.local_port,
                    remote_port = q.remote_port,
                    ?verdict,
                    "ikd: negotiation matched"
                );
                Response::NegotiationMatch { verdict }
            }
            Err(e) => {
                tracing::info!(peer = %q.peer, reason = %e, "ikd: negotiation not matched");
                failed(&e)
            }
        },
        other => Response::Error {
            code: ErrorCode::Unsupported,
            message: format!("policyd does not answer {}", other.name()),
        },
    }
}
