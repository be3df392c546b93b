//! `ipsecadm dynamic show mmsas` and the IKE part of `show stats`: live state from ikd over
//! its control socket (`ipsec-control(7)`), `<control-dir>/ikd.sock`.

use ipsec_control::{Client, IkeStatistics, Request, Response};
use serde_json::json;

use crate::error::{Error, Result};
use crate::output::{print_json, Table};
use crate::Ctx;

fn call(ctx: &Ctx, req: &Request) -> Result<Response> {
    let path = ctx.control_dir.join(ipsec_control::IKD_SOCKET);
    let mut c = Client::connect(&path, "ipsecadm").map_err(|e| {
        Error::Service(format!(
            "ikd control channel not available: {e} (is ikd running? see --control-dir)"
        ))
    })?;
    c.call(req)
        .map_err(|e| Error::Service(format!("ikd control channel: {e}")))
}

fn expected(what: &str, got: &Response) -> Error {
    Error::Service(format!(
        "ikd control channel: expected {what}, got {}",
        got.name()
    ))
}

/// ikd's IKE counters.
pub(crate) fn statistics(ctx: &Ctx) -> Result<IkeStatistics> {
    match call(ctx, &Request::ShowStatistics)? {
        Response::Statistics { statistics } => Ok(statistics),
        other => Err(expected("statistics", &other)),
    }
}

/// What ikd says about one SA of a pair it negotiated.
#[derive(Debug, Clone, Default)]
pub(crate) struct IkdSa {
    /// The connection.
    pub(crate) connection: String,
    /// Its offload record (ikd versions before offload: `None`).
    pub(crate) offload: Option<String>,
}

/// What ikd negotiated each SPI for (8 hex digits → connection and offload), empty when
/// ikd does not answer: `show qmsas` lists the kernel's SAs either way.
pub(crate) fn sas_by_spi(ctx: &Ctx) -> std::collections::BTreeMap<String, IkdSa> {
    match call(ctx, &Request::ShowQuickModeSas) {
        Ok(Response::QuickModeSas { sas }) => sas
            .into_iter()
            .flat_map(|s| {
                [
                    (
                        s.inbound_spi,
                        IkdSa {
                            connection: s.connection.clone(),
                            offload: s.inbound_offload,
                        },
                    ),
                    (
                        s.outbound_spi,
                        IkdSa {
                            connection: s.connection,
                            offload: s.outbound_offload,
                        },
                    ),
                ]
            })
            .collect(),
        _ => std::collections::BTreeMap::new(),
    }
}

/// The IKE lines of `show stats`.
pub(crate) fn statistics_pairs(s: &IkeStatistics) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (
            "IKE main-mode SAs (established)",
            format!("{} ({})", s.isakmp_sas, s.established_isakmp_sas),
        ),
        ("IKE quick-mode SA pairs", s.quick_mode_sas.to_string()),
        (
            "Oakley main modes (failed)",
            format!("{} ({})", s.main_modes_completed, s.main_modes_failed),
        ),
        (
            "Oakley quick modes (failed)",
            format!("{} ({})", s.quick_modes_completed, s.quick_modes_failed),
        ),
        (
            "Authentication failures",
            s.authentication_failures.to_string(),
        ),
        ("Invalid packets", s.invalid_packets.to_string()),
        ("Invalid cookies received", s.invalid_cookies.to_string()),
        (
            "IKE datagrams in/out",
            format!("{}/{}", s.datagrams_received, s.datagrams_sent),
        ),
        ("IKE retransmissions", s.retransmissions.to_string()),
        ("New main modes rate-limited", s.rate_limited.to_string()),
        (
            "Policy lookups (connection/refused/unavailable)",
            format!(
                "{} ({}/{}/{})",
                s.policy_lookups, s.policy_connections, s.policy_refusals, s.policy_unavailable
            ),
        ),
        ("ikd uptime (s)", s.uptime_seconds.to_string()),
    ];
    // ikd versions before offload do not send these.
    if let (Some(o), Some(r), Some(n), Some(b)) = (
        s.offloaded_sas,
        s.offload_refused_sas,
        s.offload_not_retried_sas,
        s.offloaded_bytes,
    ) {
        v.push(("Offloaded SAs", o.to_string()));
        v.push(("Offload refused SAs (not retried)", format!("{r} ({n})")));
        v.push(("Bytes through offloaded SAs", b.to_string()));
    }
    v
}

/// `dynamic show mmsas`.
pub(crate) fn show_mmsas(ctx: &Ctx) -> Result<()> {
    let sas = match call(ctx, &Request::ShowMainModeSas)? {
        Response::MainModeSas { sas } => sas,
        other => return Err(expected("main-mode SAs", &other)),
    };
    if ctx.json {
        print_json(&json!(sas));
        return Ok(());
    }
    let mut t = Table::new(&[
        "LOCAL",
        "PEER",
        "ROLE",
        "STATE",
        "ENCRYPTION",
        "INTEGRITY",
        "DH GROUP",
        "AUTHENTICATION",
        "COOKIES (I:R)",
        "AGE",
        "EXPIRES",
        "QMS",
    ]);
    for s in &sas {
        let dash = |v: &str| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.to_owned()
            }
        };
        t.row(vec![
            s.local.to_string(),
            s.peer.to_string(),
            s.role.clone(),
            s.state.clone(),
            dash(&s.encryption),
            dash(&s.integrity),
            dash(&s.dh_group),
            dash(&s.authentication),
            format!("{}:{}", s.initiator_cookie, s.responder_cookie),
            format!("{}s", s.age_seconds),
            s.expires_in_seconds
                .map_or_else(|| "-".to_owned(), |e| format!("{e}s")),
            s.quick_modes.to_string(),
        ]);
    }
    print!("{}", t.render());
    println!("{} main-mode SA(s)", sas.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_lines_appear_only_when_ikd_sends_them() {
        let old = statistics_pairs(&IkeStatistics::default());
        assert!(!old.iter().any(|(k, _)| k.contains("ffload")), "{old:?}");
        let new = statistics_pairs(&IkeStatistics {
            offloaded_sas: Some(2),
            offload_refused_sas: Some(1),
            offload_not_retried_sas: Some(3),
            offloaded_bytes: Some(320),
            ..IkeStatistics::default()
        });
        let get = |k: &str| new.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Offloaded SAs"), Some("2"));
        assert_eq!(get("Offload refused SAs (not retried)"), Some("1 (3)"));
        assert_eq!(get("Bytes through offloaded SAs"), Some("320"));
    }
}
