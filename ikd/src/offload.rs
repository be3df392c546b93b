//! Crypto offload bookkeeping (issue #5 point 3): what to ask the kernel for each SA of a
//! pair, what came of it, and the statistics.
//!
//! - A connection with `offload = true` asks for offload of both SAs of every pair to the
//!   egress device towards the peer (`route.rs`), the inbound SA with the inbound flag.
//!   The kernel installs the SA in software when the device refuses; the first packets may
//!   go through software while the request is handled. The negotiation never fails
//!   because of offload.
//! - The outcome is kept per SA: offloaded to a device, refused by it (with the errno), not
//!   requested, or no device found.
//! - **No retry**: after a device refused an SA of a connection in one direction, later SAs
//!   of that connection (rekeys, new pairs) in that direction are installed in software on
//!   that device without asking again, and recorded as "not retried". The record lasts
//!   for the daemon's life; a restart of ikd (e.g. after a driver or firmware change)
//!   asks again. A route change to another device asks that device.
//! - Statistics: SAs offloaded now, SAs refused and SAs not retried (since start), and the
//!   bytes through offloaded SAs: the kernel's lifetime byte counters of the offloaded SAs
//!   installed now, plus those of offloaded SAs ikd deleted (read just before the
//!   delete). Bytes of an offloaded SA the kernel removed itself (hard expiry) are lost.
//!
//! Nothing here talks to the kernel: the daemon (`main.rs`) does the route lookup, the
//! install (`kernel.rs`) and the counter reads, and feeds the results in.

use std::collections::HashMap;

use pfkey::{OffloadOutcome, OffloadRequest, SaId};

use crate::route::{Egress, RouteError};

/// What became of the offload of one SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaOffload {
    /// The connection does not ask for offload.
    NotRequested,
    /// Asked for, but no device to ask (no route, or the backend cannot offload).
    NoDevice(String),
    /// The device holds the SA.
    Offloaded(Egress),
    /// The device refused; the SA runs in software.
    Refused(Egress, i32),
    /// Not asked: the device refused an earlier SA of the connection in this direction.
    NotRetried(Egress, i32),
}

/// A short name for the errnos offload refusals come with.
pub(crate) fn errno_name(e: i32) -> String {
    match e {
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENODEV => "ENODEV".into(),
        libc::ENXIO => "ENXIO".into(),
        libc::ENOSPC => "ENOSPC".into(),
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT".into(),
        other => format!("errno {other}"),
    }
}

impl SaOffload {
    /// The text of `ipsecadm dynamic show qmsas` and the control socket.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::NotRequested => "none".into(),
            Self::NoDevice(why) => format!("none ({why})"),
            Self::Offloaded(d) => d.name.clone(),
            Self::Refused(d, e) => format!("refused ({}) by {}", errno_name(*e), d.name),
            Self::NotRetried(d, e) => format!(
                "software, not retried ({} refused earlier: {})",
                d.name,
                errno_name(*e)
            ),
        }
    }
}

/// What to ask the kernel for one SA, and how to record the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The request to put in the SA, if any.
    pub(crate) request: Option<OffloadRequest>,
    egress: Option<Egress>,
    inbound: bool,
    /// The record when nothing is asked.
    fixed: Option<SaOffload>,
}

/// The offload counters for the control socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// SAs installed now whose device holds them.
    pub(crate) offloaded_sas: u64,
    /// SAs whose device refused the request, since start.
    pub(crate) refused_sas: u64,
    /// SAs installed without asking because the device refused before, since start.
    pub(crate) not_retried_sas: u64,
    /// Bytes through offloaded SAs (module docs).
    pub(crate) offloaded_bytes: u64,
}

/// The record of every SA's offload and the refusals per connection and device.
#[derive(Debug, Default)]
pub(crate) struct Offload {
    sas: HashMap<SaId, SaOffload>,
    /// (connection, ifindex, inbound) → the errno of the refusal.
    refused: HashMap<(String, u32, bool), i32>,
    refused_total: u64,
    not_retried_total: u64,
    deleted_bytes: u64,
}

impl Offload {
    /// What to ask for one SA of `connection` (`wanted`: its `offload` setting), given the
    /// route lookup towards the peer.
    pub(crate) fn plan(
        &self,
        connection: &str,
        wanted: bool,
        egress: &Result<Egress, RouteError>,
        inbound: bool,
    ) -> Plan {
        let fixed = |r: SaOffload| Plan {
            request: None,
            egress: None,
            inbound,
            fixed: Some(r),
        };
        if !wanted {
            return fixed(SaOffload::NotRequested);
        }
        let e = match egress {
            Ok(e) => e,
            Err(why) => return fixed(SaOffload::NoDevice(why.to_string())),
        };
        if let Some(&errno) = self
            .refused
            .get(&(connection.to_owned(), e.ifindex, inbound))
        {
            return fixed(SaOffload::NotRetried(e.clone(), errno));
        }
        Plan {
            request: Some(OffloadRequest {
                ifindex: e.ifindex,
                inbound,
            }),
            egress: Some(e.clone()),
            inbound,
            fixed: None,
        }
    }

    /// Records the outcome of installing SA `id` of `connection` with `plan`; returns the
    /// record.
    pub(crate) fn record(
        &mut self,
        connection: &str,
        id: SaId,
        plan: Plan,
        outcome: &OffloadOutcome,
    ) -> SaOffload {
        let r = match (plan.fixed, plan.egress, outcome) {
            (Some(r), _, _) => {
                if matches!(r, SaOffload::NotRetried(..)) {
                    self.not_retried_total += 1;
                }
                r
            }
            (None, Some(e), OffloadOutcome::Offloaded) => SaOffload::Offloaded(e),
            (None, Some(e), OffloadOutcome::Refused(errno)) => {
                self.refused_total += 1;
                self.refused
                    .insert((connection.to_owned(), e.ifindex, plan.inbound), *errno);
                SaOffload::Refused(e, *errno)
            }
            (None, _, _) => {
                SaOffload::NoDevice("the kernel backend does not offload (PF_KEY)".into())
            }
        };
        self.sas.insert(id, r.clone());
        r
    }

    /// The record of an installed SA.
    pub(crate) fn get(&self, id: &SaId) -> Option<&SaOffload> {
        self.sas.get(id)
    }

    /// Whether the SA is offloaded (its counters are worth reading before a delete).
    pub(crate) fn is_offloaded(&self, id: &SaId) -> bool {
        matches!(self.sas.get(id), Some(SaOffload::Offloaded(_)))
    }

    /// The offloaded SAs installed now.
    pub(crate) fn offloaded(&self) -> Vec<SaId> {
        self.sas
            .iter()
            .filter(|(_, r)| matches!(r, SaOffload::Offloaded(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets an SA that is gone; `bytes`: its last byte counter when it was offloaded and
    /// could be read.
    pub(crate) fn removed(&mut self, id: &SaId, bytes: Option<u64>) {
        if self.sas.remove(id).is_some() {
            self.deleted_bytes = self.deleted_bytes.saturating_add(bytes.unwrap_or(0));
        }
    }

    /// The counters, given the byte counters of the offloaded SAs installed now.
    pub(crate) fn counters(&self, live_bytes: u64) -> Counters {
        Counters {
            offloaded_sas: self.offloaded().len() as u64,
            refused_sas: self.refused_total,
            not_retried_sas: self.not_retried_total,
            offloaded_bytes: self.deleted_bytes.saturating_add(live_bytes),
        }
    }
}

/// What the control socket shows about offload, gathered by the daemon before serving.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// The counters.
    pub(crate) counters: Counters,
    /// Each installed SA's record, described.
    pub(crate) by_sa: HashMap<SaId, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfkey::SecurityProtocol;

    fn dev(i: u32, name: &str) -> Result<Egress, RouteError> {
        Ok(Egress {
            ifindex: i,
            name: name.into(),
        })
    }

    fn id(spi: u32) -> SaId {
        SaId {
            destination: "192.0.2.12".parse().unwrap(),
            spi,
            protocol: SecurityProtocol::Esp,
        }
    }

    #[test]
    fn a_connection_without_offload_asks_nothing() {
        let mut o = Offload::default();
        let p = o.plan("c", false, &dev(3, "eth0"), true);
        assert_eq!(p.request, None);
        let r = o.record("c", id(1), p, &OffloadOutcome::NotRequested);
        assert_eq!(r.describe(), "none");
        assert_eq!(o.counters(0), Counters::default());
    }

    #[test]
    fn both_directions_are_asked_with_the_right_flag_and_counted_when_offloaded() {
        let mut o = Offload::default();
        let i = o.plan("c", true, &dev(4, "nsim0"), true);
        let out = o.plan("c", true, &dev(4, "nsim0"), false);
        assert_eq!(
            (i.request.clone(), out.request.clone()),
            (
                Some(OffloadRequest {
                    ifindex: 4,
                    inbound: true
                }),
                Some(OffloadRequest {
                    ifindex: 4,
                    inbound: false
                })
            )
        );
        assert_eq!(
            o.record("c", id(1), i, &OffloadOutcome::Offloaded)
                .describe(),
            "nsim0"
        );
        o.record("c", id(2), out, &OffloadOutcome::Offloaded);
        assert_eq!(o.counters(500).offloaded_sas, 2);
        assert_eq!(o.counters(500).offloaded_bytes, 500);
        // A deleted offloaded SA keeps its bytes in the total.
        o.removed(&id(1), Some(300));
        assert_eq!(
            o.counters(200),
            Counters {
                offloaded_sas: 1,
                refused_sas: 0,
                not_retried_sas: 0,
                offloaded_bytes: 500,
            }
        );
    }

    #[test]
    fn a_refusal_is_recorded_per_sa_and_not_retried_for_that_connection_and_direction() {
        let mut o = Offload::default();
        let veth = dev(2, "veth0");
        let p = o.plan("c", true, &veth, false);
        assert!(p.request.is_some());
        let r = o.record("c", id(1), p, &OffloadOutcome::Refused(libc::EOPNOTSUPP));
        assert_eq!(r.describe(), "refused (EOPNOTSUPP) by veth0");
        assert_eq!(o.get(&id(1)), Some(&r));
        // The rekey: not asked again, recorded as such.
        let again = o.plan("c", true, &veth, false);
        assert_eq!(again.request, None);
        let r2 = o.record("c", id(3), again, &OffloadOutcome::NotRequested);
        assert!(
            matches!(r2, SaOffload::NotRetried(_, libc::EOPNOTSUPP)),
            "{r2:?}"
        );
        assert!(r2.describe().contains("not retried"), "{}", r2.describe());
        // The other direction, another connection and another device are still asked.
        assert!(o.plan("c", true, &veth, true).request.is_some());
        assert!(o.plan("d", true, &veth, false).request.is_some());
        assert!(o.plan("c", true, &dev(5, "nsim0"), false).request.is_some());
        let c = o.counters(0);
        assert_eq!(
            (c.offloaded_sas, c.refused_sas, c.not_retried_sas),
            (0, 1, 1)
        );
    }

    #[test]
    fn no_route_means_no_request_and_a_reason() {
        let mut o = Offload::default();
        let p = o.plan(
            "c",
            true,
            &Err(RouteError::Kernel(libc::ENETUNREACH)),
            false,
        );
        assert_eq!(p.request, None);
        let r = o.record("c", id(1), p, &OffloadOutcome::NotRequested);
        assert!(
            r.describe().starts_with("none (route lookup"),
            "{}",
            r.describe()
        );
        // A backend that ignores the request (PF_KEY) answers NotRequested.
        let p = o.plan("c", true, &dev(2, "eth0"), false);
        let r = o.record("c", id(2), p, &OffloadOutcome::NotRequested);
        assert!(matches!(r, SaOffload::NoDevice(_)), "{r:?}");
        assert_eq!(o.counters(0), Counters::default());
    }
}
