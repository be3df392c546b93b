//! The default response rule's dynamic filters (seed, steps 1-3): policyd gives ikd a
//! catch-all responder connection ([`ipsec_control::DEFAULT_RESPONSE`]) for peers no other
//! entry covers; when ikd installs an SA pair of it, it asks policyd for the dynamic filter
//! (the kernel policies that send the replies through those SAs), and when the last such
//! pair with that peer is gone, it tells policyd to remove the filter. Messages go from
//! short-lived threads: the event loop never waits for policyd.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use ikengine::{Endpoint, SaPair};
use ipsec_control::{Client, Request, Response, DEFAULT_RESPONSE};
use tracing::{info, warn};

/// The peers with a dynamic filter, and where policyd listens.
#[derive(Debug)]
pub(crate) struct Dynamic {
    socket: PathBuf,
    /// peer → our address.
    filters: HashMap<IpAddr, IpAddr>,
}

impl Dynamic {
    /// Requests go to policyd's socket at `socket`.
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            filters: HashMap::new(),
        }
    }

    /// An SA pair was installed with `reqid`.
    pub(crate) fn installed(&mut self, pair: &SaPair, reqid: u32) {
        if pair.child.0 != DEFAULT_RESPONSE {
            return;
        }
        let o = &pair.outbound;
        let (local, peer) = (o.source, o.destination);
        self.filters.insert(peer, local);
        let req = Request::DynamicFilterNeeded {
            local,
            peer,
            protocol: o.selector.protocol,
            local_port: o.selector.source_port,
            remote_port: o.selector.destination_port,
            reqid,
            ah: o.protocol == ikengine::IpsecProtocol::Ah,
        };
        info!(%peer, "default response rule: asking policyd for a dynamic filter");
        send(self.socket.clone(), req);
    }

    /// After SAs went: removes the filters of peers with no default-response pair left.
    pub(crate) fn sweep(&mut self, endpoint: &Endpoint) {
        if self.filters.is_empty() {
            return;
        }
        let live: HashSet<IpAddr> = endpoint
            .children()
            .into_iter()
            .filter(|c| c.child.0 == DEFAULT_RESPONSE)
            .map(|c| c.peer)
            .collect();
        let gone: Vec<(IpAddr, IpAddr)> = self
            .filters
            .iter()
            .filter(|(peer, _)| !live.contains(peer))
            .map(|(p, l)| (*p, *l))
            .collect();
        for (peer, local) in gone {
            self.filters.remove(&peer);
            info!(%peer, "default response rule: last SA gone, dynamic filter goes");
            send(
                self.socket.clone(),
                Request::DynamicFilterGone { local, peer },
            );
        }
    }
}

fn send(socket: PathBuf, req: Request) {
    let spawned = std::thread::Builder::new()
        .name("policyd".into())
        .spawn(move || {
            let r = Client::connect(&socket, concat!("ikd ", env!("CARGO_PKG_VERSION")))
                .and_then(|mut c| c.call(&req));
            match r {
                Ok(Response::Done) => {}
                Ok(other) => warn!(
                    request = req.name(),
                    answer = other.name(),
                    "policyd: unexpected answer"
                ),
                Err(e) => {
                    warn!(request = req.name(), error = %e, "policyd did not carry out the request")
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot reach policyd");
    }
}
