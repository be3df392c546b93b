//! `ipsecadm dynamic` against a real IPsec kernel (the qemu lab): quick-mode SAs and
//! statistics read from SAs installed with `ip xfrm` in a test host, keys never printed;
//! an immediate rule appears in `ip xfrm policy` and goes again. Run with
//! `tests/lab/run-tests -p policyd`.

#[path = "../../pfkey/tests/support/mod.rs"]
mod support;

use std::process::Output;

use support::{ip_in, ping, require_lab, run_in, Hosts};

const ENC_KEY: &str = "0x6c61622d656e632d6b65792d31323334";
const AUTH_KEY: &str = "0x6c61622d617574682d6b65792d3132333435363738";

fn ipsecadm(ns: &str, store: &std::path::Path, args: &[&str]) -> Output {
    let mut all = vec!["--store", store.to_str().expect("UTF-8 temp path")];
    all.extend_from_slice(args);
    run_in(ns, env!("CARGO_BIN_EXE_ipsecadm"), &all)
}

fn ok(ns: &str, store: &std::path::Path, args: &[&str]) -> String {
    let out = ipsecadm(ns, store, args);
    assert!(
        out.status.success(),
        "ipsecadm {args:?} in {ns}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ESP transport SAs (reqid 0x3001, owned) and ICMP policies between hosts 1 and 2, set up
/// on host `me` with `ip xfrm`.
fn esp_pair(hosts: &Hosts, me: usize, peer: usize) {
    let ns = hosts.ns(me);
    let (a, b) = (hosts.addr(1).to_string(), hosts.addr(2).to_string());
    for (src, dst, spi) in [(&a, &b, "0x1001"), (&b, &a, "0x1002")] {
        ip_in(
            &ns,
            &[
                "xfrm",
                "state",
                "add",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "spi",
                spi,
                "reqid",
                "0x3001",
                "mode",
                "transport",
                "enc",
                "cbc(aes)",
                ENC_KEY,
                "auth",
                "hmac(sha1)",
                AUTH_KEY,
            ],
        );
    }
    let (mine, theirs) = (hosts.addr(me).to_string(), hosts.addr(peer).to_string());
    for (src, dst, dir) in [(&mine, &theirs, "out"), (&theirs, &mine, "in")] {
        ip_in(
            &ns,
            &[
                "xfrm",
                "policy",
                "add",
                "src",
                &format!("{src}/32"),
                "dst",
                &format!("{dst}/32"),
                "proto",
                "icmp",
                "dir",
                dir,
                "tmpl",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "reqid",
                "0x3001",
                "mode",
                "transport",
            ],
        );
    }
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn dynamic_show_reads_real_sas_and_counters() {
    require_lab();
    let hosts = Hosts::create(2);
    let store = tempfile::tempdir().expect("temp store");
    esp_pair(&hosts, 1, 2);
    esp_pair(&hosts, 2, 1);
    assert!(ping(&hosts.ns(1), hosts.addr(2), 3), "ping over ESP");

    let ns = hosts.ns(1);
    let table = ok(&ns, store.path(), &["dynamic", "show", "qmsas"]);
    eprintln!("{table}");
    assert!(
        table.contains("0x00001001") && table.contains("0x00001002"),
        "{table}"
    );
    let json = ok(&ns, store.path(), &["--json", "dynamic", "show", "qmsas"]);
    for text in [&table, &json] {
        assert!(
            !text.contains(&ENC_KEY[2..]) && !text.contains(&AUTH_KEY[2..]),
            "key printed"
        );
    }
    let sas: serde_json::Value = serde_json::from_str(&json).expect("qmsas JSON");
    let sas = sas.as_array().expect("array");
    assert_eq!(sas.len(), 2, "{json}");
    assert!(sas
        .iter()
        .all(|s| s["owned"] == true && s["reqid"] == 0x3001));
    assert!(
        sas.iter().any(|s| s["packets"].as_u64().unwrap_or(0) >= 3),
        "{json}"
    );
    assert!(
        sas.iter().all(|s| s["encryption"] == "aes-cbc/128"),
        "{json}"
    );

    let stats: serde_json::Value = serde_json::from_str(&ok(
        &ns,
        store.path(),
        &["--json", "dynamic", "show", "stats"],
    ))
    .expect("stats JSON");
    assert_eq!(stats["sas"]["total"], 2, "{stats}");
    assert_eq!(stats["sas"]["esp"], 2, "{stats}");
    assert_eq!(stats["spd"]["outbound"], 1, "{stats}");
    assert!(stats["packets"].as_u64().unwrap_or(0) >= 6, "{stats}");
    ok(&ns, store.path(), &["dynamic", "show", "stats"]);
    ok(&ns, store.path(), &["dynamic", "show", "qmfilters"]);
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn immediate_rule_is_installed_and_removed() {
    require_lab();
    let hosts = Hosts::create(2);
    let store = tempfile::tempdir().expect("temp store");
    let ns = hosts.ns(1);
    let rule = [
        "srcaddr=me",
        "dstaddr=192.0.2.13",
        "protocol=tcp",
        "dstport=23",
        "action=block",
    ];
    let mut add = vec!["dynamic", "add", "rule"];
    add.extend_from_slice(&rule);
    ok(&ns, store.path(), &add);
    let spd = String::from_utf8_lossy(&ip_in(&ns, &["xfrm", "policy"]).stdout).into_owned();
    eprintln!("{spd}");
    assert!(
        spd.contains("src 192.0.2.11/32 dst 192.0.2.13/32 proto tcp dport 23"),
        "{spd}"
    );
    assert!(
        spd.contains("src 192.0.2.13/32 dst 192.0.2.11/32 proto tcp sport 23"),
        "{spd}"
    );
    assert!(spd.contains("action block"), "{spd}");
    // Adding it again changes nothing.
    ok(&ns, store.path(), &add);

    let mut del = vec!["dynamic", "delete", "rule"];
    del.extend_from_slice(&rule);
    ok(&ns, store.path(), &del);
    let spd = String::from_utf8_lossy(&ip_in(&ns, &["xfrm", "policy"]).stdout).into_owned();
    assert!(!spd.contains("192.0.2.13"), "{spd}");
    let out = ipsecadm(&ns, store.path(), &del);
    assert_eq!(out.status.code(), Some(2), "deleting a missing rule");
}
