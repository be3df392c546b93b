//! [`Endpoint::reconfigure`]: a new [`EndpointConfig`] for a running endpoint, keeping the
//! IKE state the new configuration still covers.
//!
//! Peers are matched by [`crate::PeerConfig::name`], connections (children) by
//! [`crate::ChildConfig::name`]. The engine holds peers and children as indexes into the
//! configuration's vectors (an ISAKMP SA's peer, each quick-mode exchange's child, the
//! children queued behind a main mode); every one of them is re-indexed here, in the same
//! call that swaps the configuration, so no index ever points into the wrong vector.
//!
//! What happens to each piece of state:
//!
//! * **Peer kept** (same name, its address still matches the SA's remote address): its
//!   ISAKMP SAs stay, established or in progress. Changed main-mode settings (security
//!   methods, lifetimes, preshared key, required identity) apply to the *next* main mode
//!   only: an established ISAKMP SA keeps its negotiated suite and keys until its lifetime
//!   or quick-mode limit ends it, and a main mode already under way finishes with the
//!   proposals and authentication session it started with (its identity check uses the
//!   new configuration). This is what strongSwan does when a connection is reloaded
//!   (an existing IKE SA is not torn down) and avoids dropping every tunnel of a peer for
//!   an unrelated edit; an administrator who wants the new settings at once deletes the
//!   ISAKMP SA (`ipsecadm`), exactly as with Windows' "existing SAs live until they expire".
//! * **Peer removed** (or its address no longer matches): established ISAKMP SAs are
//!   deleted with an ISAKMP Delete sent to the peer; unfinished main modes are abandoned
//!   with [`FailureReason::Reconfigured`].
//! * **Connection unchanged** (same name, peer, selector and proposals, and its peer's
//!   address unchanged): installed SA pairs stay in the kernel untouched; exchanges in
//!   progress continue.
//! * **Connection removed or changed** (selector, proposals or peer differ): installed SA
//!   pairs are deleted as on a normal delete, i.e. a `DeleteSa` action for each kernel SA
//!   and an IPsec Delete naming our inbound SPI sent over an established ISAKMP SA with
//!   the peer (none is sent if there is none). The next ACQUIRE or `initiate` negotiates
//!   with the new settings, like Windows does when a filter action's security methods
//!   change. Quick modes in progress and negotiations queued behind a main mode are
//!   abandoned with [`FailureReason::Reconfigured`] (their outstanding SPI requests are
//!   forgotten; the daemon drops the larval SPIs on the failure event).
//! * **Connection added**: nothing happens until an ACQUIRE or `initiate`; it reuses an
//!   established ISAKMP SA with its peer like any other connection.
//! * **Recent ACQUIREs** (the last 30 s, Linux's acquire lifetime) are replayed for
//!   connections that now have no SA pair and no negotiation: the kernel raises no new
//!   ACQUIRE for that traffic while its acquire state lives, so one that came before the
//!   connection existed, or whose negotiation failed against a peer still on other
//!   settings, would otherwise hold the traffic for up to 30 s.
//!
//! What it does not do: validate the configuration (the daemon's parser does, before
//! calling), touch kernel policies (the daemon owns them), or resend Deletes reliably.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::debug;

use crate::config::{ChildConfig, ChildName, EndpointConfig};
use crate::endpoint::{
    after, delete_child_actions, fail_event, InstalledChild, SaId, ACQUIRE_MEMORY,
};
use crate::main_mode::{self, MainMode};
use crate::quick_mode::QuickMode;
use crate::types::{FailureReason, ReconfigureReport};
use crate::{informational, Endpoint};

/// Whether an installed pair of `old` may stay under `new` (same connection in every
/// respect that shaped the negotiated SAs, and the peer at the same address).
fn compatible(old_cfg: &EndpointConfig, old: &ChildConfig, new_cfg: &EndpointConfig) -> bool {
    let Some((_, new)) = new_cfg.child(&old.name) else {
        return false;
    };
    let address = |cfg: &EndpointConfig, peer: &str| {
        cfg.peers.iter().find(|p| p.name == peer).map(|p| p.address)
    };
    old == new
        && address(old_cfg, &old.peer).is_some()
        && address(old_cfg, &old.peer) == address(new_cfg, &new.peer)
}

impl Endpoint {
    /// Replaces the configuration, keeping the SAs it still covers (see the module
    /// documentation of `reconfigure` for the rules). Emits `DeleteSa` actions, Deletes to
    /// peers and `ExchangeFailed` events for what it ends; drain the `poll_*` queues
    /// afterwards as after any other call. Never fails: the caller validates `config`.
    pub fn reconfigure(&mut self, now: Instant, config: Arc<EndpointConfig>) -> ReconfigureReport {
        let old = Arc::clone(&self.sh.config);
        let mut report = ReconfigureReport::default();
        // Old index -> new index.
        let peer_map: Vec<Option<usize>> = old
            .peers
            .iter()
            .map(|p| config.peers.iter().position(|q| q.name == p.name))
            .collect();
        let child_map: Vec<Option<usize>> = old
            .children
            .iter()
            .map(|c| {
                if compatible(&old, c, &config) {
                    config.child(&c.name).map(|(j, _)| j)
                } else {
                    None
                }
            })
            .collect();
        let keeps = |name: &ChildName| {
            old.child(name)
                .and_then(|(i, _)| child_map.get(i).copied().flatten())
                .is_some()
        };

        // Installed pairs first, while the ISAKMP SAs that carry their Deletes still exist.
        let mut doomed: Vec<InstalledChild> = Vec::new();
        self.sh.children.retain(|_, c| {
            if keeps(&c.child) {
                true
            } else {
                doomed.push(c.clone());
                false
            }
        });
        report.children_kept = self.sh.children.len();
        report.children_deleted = doomed.len();
        doomed.sort_by_key(|c| (c.peer, c.inbound_spi));
        let mut by_sa: BTreeMap<SaId, Vec<InstalledChild>> = BTreeMap::new();
        for c in &doomed {
            debug!(child = %c.child, spi = %format_args!("{:08x}", c.inbound_spi), "reconfigure: SA pair deleted");
            delete_child_actions(&mut self.sh, c);
            // The SA that negotiated it, else any established one with the peer.
            let carrier = self
                .sas
                .get(&c.isakmp)
                .filter(|s| s.is_established())
                .map(|s| s.id)
                .or_else(|| {
                    self.sas
                        .values()
                        .filter(|s| s.is_established() && s.path.remote.ip() == c.peer)
                        .map(|s| s.id)
                        .max()
                });
            if let Some(id) = carrier {
                by_sa.entry(id).or_default().push(c.clone());
            }
        }
        for (id, children) in by_sa {
            if let Some(sa) = self.sas.get(&id) {
                informational::send_deletes(&mut self.sh, sa, &children, false);
            }
        }

        self.sh.config = Arc::clone(&config);
        let old_child_name = |i: usize| old.children.get(i).map(|c| c.name.clone());

        let mut ids: Vec<SaId> = self.sas.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(mut sa) = self.sas.remove(&id) else {
                continue;
            };
            let peer = sa.path.remote;
            let new_peer = peer_map.get(sa.peer_idx).copied().flatten().filter(|j| {
                config
                    .peers
                    .get(*j)
                    .is_some_and(|p| p.address.matches(peer.ip()))
            });
            // Quick modes and queued negotiations: re-index, or abandon.
            let mut msgids: Vec<u32> = sa.exchanges.keys().copied().collect();
            msgids.sort_unstable();
            for msgid in msgids {
                let Some(mut ex) = sa.exchanges.remove(&msgid) else {
                    continue;
                };
                // A responder quick mode still asking the policy agent has no child yet:
                // the answer names a connection of the configuration in force then.
                if new_peer.is_some() && matches!(ex.state, QuickMode::RespWaitPolicy(_)) {
                    sa.exchanges.insert(msgid, ex);
                    continue;
                }
                let old_idx = ex.state.child();
                let new_idx = new_peer
                    .and(old_idx)
                    .and_then(|i| child_map.get(i).copied().flatten());
                if let Some(n) = new_idx {
                    ex.state.set_child(n);
                    sa.exchanges.insert(msgid, ex);
                    continue;
                }
                self.sh.requests.retain(|_, v| *v != (sa.id, msgid));
                if ex.finished.is_none() {
                    report.exchanges_abandoned += 1;
                    let child = old_idx.and_then(old_child_name);
                    debug!(?child, "reconfigure: quick mode abandoned");
                    fail_event(&mut self.sh, peer, true, child, FailureReason::Reconfigured);
                }
            }
            let queued = std::mem::take(&mut sa.queued);
            for (idx, rekey) in queued {
                match new_peer.and_then(|_| child_map.get(idx).copied().flatten()) {
                    Some(n) => sa.queued.push((n, rekey)),
                    None => {
                        report.exchanges_abandoned += 1;
                        fail_event(
                            &mut self.sh,
                            peer,
                            true,
                            old_child_name(idx),
                            FailureReason::Reconfigured,
                        );
                    }
                }
            }
            match new_peer {
                Some(j) => {
                    sa.peer_idx = j;
                    report.isakmp_sas_kept += 1;
                    self.sas.insert(sa.id, sa);
                }
                None => {
                    report.isakmp_sas_deleted += 1;
                    if sa.is_established() {
                        debug!(%peer, "reconfigure: peer removed, ISAKMP SA deleted");
                        informational::send_deletes(&mut self.sh, &sa, &[], true);
                        sa.dead = true;
                    } else if !matches!(sa.state, MainMode::Failed) && !sa.dead {
                        debug!(%peer, "reconfigure: peer removed, main mode abandoned");
                        main_mode::fail(&mut self.sh, &mut sa, FailureReason::Reconfigured);
                    }
                    sa.dead = true;
                    self.forget(sa);
                }
            }
        }
        self.replay_acquires(now);
        report
    }

    /// Starts the negotiations that recent ACQUIREs asked for and that have no SA pair and
    /// no exchange now: their connection was unknown, or failed with the old settings, and
    /// the kernel raises no new ACQUIRE while its acquire state lives.
    fn replay_acquires(&mut self, now: Instant) {
        self.recent_acquires
            .retain(|(t, ..)| after(*t, ACQUIRE_MEMORY) > now);
        let recent: Vec<_> = self.recent_acquires.iter().copied().collect();
        for (_, local, remote, selector) in recent {
            let Some(child) = self.acquire_child(remote, selector) else {
                continue;
            };
            let installed = self
                .sh
                .children
                .values()
                .any(|c| c.child == child && c.peer == remote);
            if !installed {
                debug!(%child, %remote, "reconfigure: ACQUIRE replayed");
                self.acquire(now, local, remote, selector);
            }
        }
    }
}
