//! Asking policyd which connection answers a peer's quick mode (`policy-lookup` in
//! ikd.conf, the engine's `Action::LookupPolicy`): `match-negotiation` on policyd's control
//! socket (`ipsec-control(7)`, version 2).
//!
//! The event loop never waits for policyd: each lookup runs on a short-lived thread that
//! connects, asks and sends the verdict back over a channel, writing one octet to a socket
//! pair whose read end the loop polls. A lookup has [`BUDGET`]; when it runs out, when
//! policyd cannot be reached, answers an error, or speaks only version 1, the answer is
//! `Unavailable` and the engine matches locally (counted and logged). A late verdict after
//! that is dropped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ikengine::{PolicyAnswer, PolicyRefusal, RequestId, TrafficSelector};
use ipsec_control::{Client, NegotiationQuery, NegotiationVerdict, Request, Response};
use tracing::{info, warn};

/// How long a quick mode waits for policyd's verdict.
pub(crate) const BUDGET: Duration = Duration::from_millis(1000);

/// What a lookup thread sends back: the request, and the verdict or why there is none.
type Reply = (RequestId, Result<NegotiationVerdict, String>);

/// The outstanding lookups.
#[derive(Debug)]
pub(crate) struct Lookups {
    socket: Option<PathBuf>,
    tx: mpsc::Sender<Reply>,
    rx: mpsc::Receiver<Reply>,
    wake_read: UnixStream,
    wake_write: UnixStream,
    /// Request → (deadline, peer for logs).
    pending: HashMap<RequestId, (Instant, IpAddr)>,
    /// Lookups answered `Unavailable` (policyd not asked, failed or too slow).
    pub(crate) unavailable: u64,
}

impl Lookups {
    /// Lookups go to policyd's socket at `socket` (`None`: every lookup is unavailable).
    pub(crate) fn new(socket: Option<PathBuf>) -> std::io::Result<Self> {
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_read.set_nonblocking(true)?;
        let (tx, rx) = mpsc::channel();
        Ok(Self {
            socket,
            tx,
            rx,
            wake_read,
            wake_write,
            pending: HashMap::new(),
            unavailable: 0,
        })
    }

    /// The descriptor to poll: readable when a verdict arrived.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.wake_read.as_raw_fd()
    }

    /// When [`Lookups::ready`] must run next (the earliest budget end).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|(t, _)| *t).min()
    }

    /// Starts a lookup. `Some(Unavailable)` at once when policyd cannot be asked.
    pub(crate) fn ask(
        &mut self,
        now: Instant,
        request: RequestId,
        local: IpAddr,
        peer: IpAddr,
        selector: &TrafficSelector,
        peer_identity: Option<String>,
    ) -> Option<PolicyAnswer> {
        let Some(socket) = self.socket.clone() else {
            self.unavailable += 1;
            warn!(%peer, "policy lookup: no policyd socket (--policyd), matching locally");
            return Some(PolicyAnswer::Unavailable);
        };
        let query = Request::MatchNegotiation(NegotiationQuery {
            local,
            peer,
            local_subnet: format!("{}/{}", selector.local.addr, selector.local.prefix_len),
            remote_subnet: format!("{}/{}", selector.remote.addr, selector.remote.prefix_len),
            protocol: selector.protocol,
            local_port: selector.local_port,
            remote_port: selector.remote_port,
            peer_identity,
        });
        let tx = self.tx.clone();
        let wake = match self.wake_write.try_clone() {
            Ok(w) => w,
            Err(e) => {
                self.unavailable += 1;
                warn!(%peer, error = %e, "policy lookup not started, matching locally");
                return Some(PolicyAnswer::Unavailable);
            }
        };
        let spawned = std::thread::Builder::new()
            .name("policy-lookup".into())
            .spawn(move || {
                let verdict = ask_policyd(&socket, &query);
                let _ = tx.send((request, verdict));
                let mut wake = wake;
                let _ = wake.write_all(&[1]);
            });
        if let Err(e) = spawned {
            self.unavailable += 1;
            warn!(%peer, error = %e, "policy lookup not started, matching locally");
            return Some(PolicyAnswer::Unavailable);
        }
        self.pending.insert(request, (now + BUDGET, peer));
        None
    }

    /// The answers that arrived, and `Unavailable` for lookups whose budget ran out.
    pub(crate) fn ready(&mut self, now: Instant) -> Vec<(RequestId, PolicyAnswer)> {
        let mut sink = [0u8; 64];
        while matches!(self.wake_read.read(&mut sink), Ok(n) if n > 0) {}
        let mut out = Vec::new();
        while let Ok((request, verdict)) = self.rx.try_recv() {
            let Some((_, peer)) = self.pending.remove(&request) else {
                continue; // too late: already answered unavailable
            };
            out.push((request, self.answer(peer, verdict)));
        }
        let expired: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(r, _)| *r)
            .collect();
        for request in expired {
            if let Some((_, peer)) = self.pending.remove(&request) {
                let a = self.answer(peer, Err(format!("no answer within {BUDGET:?}")));
                out.push((request, a));
            }
        }
        out
    }

    fn answer(
        &mut self,
        peer: IpAddr,
        verdict: Result<NegotiationVerdict, String>,
    ) -> PolicyAnswer {
        match verdict {
            Ok(NegotiationVerdict::Connection { connection, rule }) => {
                info!(%peer, %connection, %rule, "policyd: negotiate with this connection");
                PolicyAnswer::Connection(connection.as_str().into())
            }
            Ok(NegotiationVerdict::Blocked { reason, .. }) => {
                info!(%peer, %reason, "policyd refused the quick mode");
                PolicyAnswer::Refused {
                    kind: PolicyRefusal::Blocked,
                    reason,
                }
            }
            Ok(NegotiationVerdict::PermittedInClear { reason, .. }) => {
                info!(%peer, %reason, "policyd refused the quick mode");
                PolicyAnswer::Refused {
                    kind: PolicyRefusal::PermittedInClear,
                    reason,
                }
            }
            Ok(NegotiationVerdict::NoMatch { reason }) => {
                info!(%peer, %reason, "policyd refused the quick mode");
                PolicyAnswer::Refused {
                    kind: PolicyRefusal::NoMatch,
                    reason,
                }
            }
            Err(e) => {
                self.unavailable += 1;
                warn!(%peer, error = %e, "policy lookup unavailable, matching locally");
                PolicyAnswer::Unavailable
            }
        }
    }
}

/// One lookup, on its own thread.
fn ask_policyd(socket: &std::path::Path, query: &Request) -> Result<NegotiationVerdict, String> {
    let client = concat!("ikd ", env!("CARGO_PKG_VERSION"));
    let mut c = Client::connect_with(socket, client, ipsec_control::MAX_VERSION, BUDGET)
        .map_err(|e| e.to_string())?;
    if c.version() < query.since_version() {
        return Err(format!(
            "policyd speaks control protocol version {}, match-negotiation needs {}",
            c.version(),
            query.since_version()
        ));
    }
    match c.call(query).map_err(|e| e.to_string())? {
        Response::NegotiationMatch { verdict } => Ok(verdict),
        other => Err(format!("unexpected answer {}", other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ikengine::Subnet;
    use ipsec_control::Listener;

    fn selector() -> TrafficSelector {
        TrafficSelector {
            protocol: 6,
            local_port: 23,
            ..TrafficSelector::between(
                Subnet::host("192.0.2.1".parse().expect("ip")),
                Subnet::host("192.0.2.3".parse().expect("ip")),
            )
        }
    }

    fn wait(l: &mut Lookups, n: usize) -> Vec<(RequestId, PolicyAnswer)> {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(5);
        while got.len() < n && Instant::now() < end {
            got.extend(l.ready(Instant::now()));
            std::thread::sleep(Duration::from_millis(10));
        }
        got
    }

    #[test]
    fn a_verdict_comes_back_without_blocking_and_a_silent_policyd_is_unavailable() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("ikd-lookup-test-{}", std::process::id()));
        let path = dir.join("policyd.sock");
        let mut listener = Listener::bind(&path).expect("bind");
        // Our uid is the directory's owner (bind checked it).
        let me = std::fs::metadata(&dir).expect("dir").uid();
        listener.allow_uids(vec![me]);
        listener.set_blocking(true).expect("blocking");
        let server = std::thread::spawn(move || {
            if let Ok(Some(mut c)) = listener.accept("policyd test") {
                let _ = c.serve(1, |r| match r {
                    Request::MatchNegotiation(q) if q.local_port == 23 => {
                        Response::NegotiationMatch {
                            verdict: NegotiationVerdict::Blocked {
                                rule: "Block telnet".into(),
                                reason: "blocked by rule \"Block telnet\"".into(),
                            },
                        }
                    }
                    _ => Response::Done,
                });
            }
            // Then accept and say nothing: the next lookup runs out of budget.
            let _held = listener.accept("policyd test");
            std::thread::sleep(Duration::from_secs(3));
        });
        let mut l = Lookups::new(Some(path)).expect("lookups");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let started = Instant::now();
        assert!(l
            .ask(
                Instant::now(),
                RequestId(1),
                ip("192.0.2.1"),
                ip("192.0.2.3"),
                &selector(),
                None
            )
            .is_none());
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "ask blocked"
        );
        let got = wait(&mut l, 1);
        assert_eq!(
            got,
            [(
                RequestId(1),
                PolicyAnswer::Refused {
                    kind: PolicyRefusal::Blocked,
                    reason: "blocked by rule \"Block telnet\"".into()
                }
            )]
        );
        assert!(l
            .ask(
                Instant::now(),
                RequestId(2),
                ip("192.0.2.1"),
                ip("192.0.2.3"),
                &selector(),
                None
            )
            .is_none());
        let got = wait(&mut l, 1);
        assert_eq!(got, [(RequestId(2), PolicyAnswer::Unavailable)]);
        assert_eq!(l.unavailable, 1);
        assert!(l.deadline().is_none());
        let _ = server.join();
        let _ = std::fs::remove_dir_all(&dir);
        // No socket configured: unavailable at once.
        let mut none = Lookups::new(None).expect("lookups");
        assert_eq!(
            none.ask(
                Instant::now(),
                RequestId(3),
                ip("192.0.2.1"),
                ip("192.0.2.3"),
                &selector(),
                None
            ),
            Some(PolicyAnswer::Unavailable)
        );
    }
}
