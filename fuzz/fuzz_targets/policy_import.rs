//! Fuzz the policy file importer: arbitrary text must never panic the parser, the merge
//! and validation, or the expansion of an accepted set; whatever parses must export and
//! parse back to the same set.

#![no_main]

use ipsec_policy::file::{export, import, parse};
use ipsec_policy::{
    defaults, expand, ExportKeys, InterfaceAddress, InterfaceKind, InterfaceSnapshot,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = parse(text) {
        let out = export(&set, ExportKeys::Include).expect("a parsed set exports");
        assert_eq!(parse(&out).expect("an export parses"), set);
    }
    if let Ok(merged) = import(text, &defaults::default_store()) {
        let snapshot = InterfaceSnapshot {
            addresses: vec![InterfaceAddress {
                interface: "eth0".into(),
                address: "192.0.2.11".parse().expect("literal"),
                kind: InterfaceKind::Lan,
            }],
            dns_servers: vec!["192.0.2.53".parse().expect("literal")],
            ..Default::default()
        };
        for policy in &merged.policies {
            let _ = expand(&merged, policy, &snapshot);
        }
    }
});
