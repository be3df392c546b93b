//! This computer's addresses, gateways and DNS servers, for expanding "me" and keyword
//! filters in `dynamic show` and immediate rules. Read from iproute2's JSON output
//! (`ip -j addr`, `ip -j route show default`) and `/etc/resolv.conf`; the agent will have
//! its own rtnetlink watcher. Missing sources give an empty part, not an error.

use std::net::IpAddr;
use std::process::Command;

use ipsec_policy::{InterfaceAddress, InterfaceKind, InterfaceSnapshot};
use serde_json::Value;

fn ip_json(args: &[&str]) -> Option<Value> {
    for ip in ["/sbin/ip", "/usr/sbin/ip", "/bin/ip", "ip"] {
        if let Ok(out) = Command::new(ip).arg("-j").args(args).output() {
            if out.status.success() {
                return serde_json::from_slice(&out.stdout).ok();
            }
        }
    }
    None
}

/// Interface kinds: point-to-point links (ppp, tun, wg) count as remote access.
fn kind(link: &Value) -> InterfaceKind {
    let p2p = link
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("POINTOPOINT")));
    if p2p {
        InterfaceKind::RemoteAccess
    } else {
        InterfaceKind::Lan
    }
}

pub(crate) fn take() -> InterfaceSnapshot {
    let mut snap = InterfaceSnapshot::default();
    if let Some(Value::Array(links)) = ip_json(&["addr", "show"]) {
        for link in &links {
            let name = link.get("ifname").and_then(Value::as_str).unwrap_or("");
            if name == "lo" {
                continue;
            }
            let k = kind(link);
            for a in link
                .get("addr_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let scope = a.get("scope").and_then(Value::as_str).unwrap_or("");
                if scope != "global" {
                    continue;
                }
                if let Some(addr) = a
                    .get("local")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok())
                {
                    snap.addresses.push(InterfaceAddress {
                        interface: name.to_owned(),
                        address: addr,
                        kind: k,
                    });
                }
            }
        }
    }
    for family in ["-4", "-6"] {
        if let Some(Value::Array(routes)) = ip_json(&[family, "route", "show", "default"]) {
            for r in &routes {
                if let Some(gw) = r
                    .get("gateway")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok())
                {
                    snap.default_gateways.push(gw);
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("nameserver") {
                if let Some(a) = words.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                    if !a.is_loopback() {
                        snap.dns_servers.push(a);
                    }
                }
            }
        }
    }
    snap
}
