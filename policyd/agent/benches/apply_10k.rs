//! `cargo bench -p ipsec-agent --bench apply_10k`: the agent's phases on a policy of
//! 10,004 filters (2,999 added to a negotiating rule, 7,000 on a permit rule: each negotiated
//! filter takes one of the 4,096 owned reqids) (the LDAP lab benchmark's shape: mirrored "my address" ↔ host TCP
//! filters, two local addresses, ~40,000 kernel policies) against the in-memory kernel, then a change adding 4
//! filters. Prints each phase in milliseconds and, as a peer measured in the same run, the
//! time to dump (clone) the same number of policies from the in-memory kernel.

use std::hint::black_box;
use std::time::Instant;

use ipsec_agent::{apply, compile, plan, CompileOptions};
use ipsec_policy::defaults::{default_store, SECURE_SERVER};
use ipsec_policy::{
    validate, Action, Endpoint, Filter, FilterList, InterfaceAddress, InterfaceKind,
    InterfaceSnapshot, PolicySet, Protocol, Rule,
};
use pfkey::memory::MemoryKernel;
use pfkey::{KernelInterface, Ownership};
use uuid::Uuid;

fn with_filters(set: &PolicySet, n: usize, first: usize) -> PolicySet {
    let mut set = set.clone();
    let list = set
        .policy_by_name(SECURE_SERVER)
        .and_then(|p| p.rules.first())
        .map(|r| r.filter_list);
    let l = set
        .filter_lists
        .iter_mut()
        .find(|l| Some(l.id) == list)
        .expect("list");
    for i in first..first + n {
        let host = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 0)) + (i as u32 / 40);
        l.filters.push(Filter {
            id: Uuid::from_u128(0xbe4c_0000_0000 + i as u128),
            version: 1,
            description: String::new(),
            source: Endpoint::MyAddress,
            destination: std::net::Ipv4Addr::from(host)
                .to_string()
                .parse()
                .expect("endpoint"),
            mirrored: true,
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: 10_000 + (i % 40) as u16,
        });
    }
    l.version += 1;
    set
}

/// How many filters are negotiated: each filter of a negotiating rule takes a reqid of its
/// own of the 4,096 owned, so the rest of the 10,000 go to a permit rule.
const NEGOTIATED: usize = 3_000;

/// Adds filters `first..first + n` (hosts from 198.51.100.(first / 40)) on a new filter list
/// of a new permit rule of the Secure Server policy.
fn with_permitted(set: &PolicySet, n: usize, first: usize) -> PolicySet {
    let mut set = with_filters(set, n, first);
    let policy = set.policy_by_name(SECURE_SERVER).expect("policy").clone();
    let rule0 = policy.rules.first().expect("rule").clone();
    // with_filters appended them to the first rule's list: move them to a list of their own.
    let moved: Vec<Filter> = {
        let l = set
            .filter_lists
            .iter_mut()
            .find(|l| l.id == rule0.filter_list)
            .expect("list");
        let keep = l.filters.len() - n;
        l.version -= 1;
        l.filters.split_off(keep)
    };
    let permit = set
        .filter_actions
        .iter()
        .find(|a| a.action == Action::Permit)
        .expect("permit action")
        .id;
    let list = FilterList {
        id: Uuid::from_u128(0xbe4c_1111_0000),
        version: 1,
        name: "Benchmark: permitted hosts".into(),
        description: String::new(),
        filters: moved,
    };
    let rule = Rule {
        id: Uuid::from_u128(0xbe4c_2222_0000),
        name: "Benchmark: permit".into(),
        filter_list: list.id,
        filter_action: permit,
        ..rule0
    };
    set.filter_lists.push(list);
    if let Some(p) = set.policies.iter_mut().find(|p| p.id == policy.id) {
        p.rules.push(rule);
    }
    set
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let snapshot = InterfaceSnapshot {
        // Two addresses, as the lab host has: four kernel policies per filter.
        addresses: ["192.0.2.11", "192.0.2.111"]
            .iter()
            .map(|a| InterfaceAddress {
                interface: "eth0".into(),
                address: a.parse().expect("address"),
                kind: InterfaceKind::Lan,
            })
            .collect(),
        ..Default::default()
    };
    let ownership = Ownership::default();
    let defaults = default_store();
    let negotiated = with_filters(&defaults, NEGOTIATED - 1, 0);
    let base = with_permitted(&negotiated, 10_000 - NEGOTIATED, NEGOTIATED);
    let changed = with_filters(&base, 4, 10_000);
    let policy = |set: &PolicySet| set.policy_by_name(SECURE_SERVER).expect("policy").clone();
    let filters: usize = base
        .filter_lists
        .iter()
        .map(|l| l.filters.len())
        .sum::<usize>();

    let mut kernel = MemoryKernel::new();
    let options = CompileOptions::default();
    let t = Instant::now();
    validate(&base).expect("valid");
    let validate_ms = ms(t);
    let t = Instant::now();
    let desired = compile(&base, &policy(&base), &snapshot, &options).expect("compile");
    let compile_ms = ms(t);
    let t = Instant::now();
    let report = apply(&mut kernel, &desired, &ownership).expect("apply");
    let install_ms = ms(t);
    println!(
        "initial: {filters} filters -> {} kernel policies (added {}): validate {validate_ms:.1} ms, compile {compile_ms:.1} ms, apply (memory kernel) {install_ms:.1} ms",
        desired.entries.len(),
        report.added
    );

    // The change: 4 filters more.
    let options = CompileOptions {
        previous_reqids: desired.reqids.clone(),
        ..CompileOptions::default()
    };
    let total = Instant::now();
    let t = Instant::now();
    validate(&changed).expect("valid");
    let validate_ms = ms(t);
    let t = Instant::now();
    let desired2 = compile(&changed, &policy(&changed), &snapshot, &options).expect("compile");
    let compile_ms = ms(t);
    let t = Instant::now();
    let installed = kernel.dump_policies().expect("dump");
    let dump_ms = ms(t);
    let t = Instant::now();
    let changes = plan(&installed, &desired2, &ownership).expect("plan");
    let plan_ms = ms(t);
    let t = Instant::now();
    let report = ipsec_agent::apply::execute(&mut kernel, &changes).expect("execute");
    let execute_ms = ms(t);
    let total_ms = ms(total);
    println!(
        "change (+4 filters, {} changes: {report:?}): validate {validate_ms:.1} ms, compile {compile_ms:.1} ms, dump {dump_ms:.1} ms, plan {plan_ms:.1} ms, execute {execute_ms:.1} ms; total {total_ms:.1} ms",
        changes.len()
    );

    // Idempotent re-apply (dump + plan, no changes).
    let t = Instant::now();
    let again = apply(&mut kernel, &desired2, &ownership).expect("apply");
    let again_ms = ms(t);
    assert!(again.is_empty());

    // Peer: dumping (cloning) the same number of policies.
    let t = Instant::now();
    for _ in 0..5 {
        black_box(kernel.dump_policies().expect("dump"));
    }
    let peer_ms = ms(t) / 5.0;
    println!(
        "re-apply unchanged {again_ms:.1} ms; peer: dump of {} policies {peer_ms:.2} ms; change total / peer = {:.1}x, plan / peer = {:.1}x",
        installed.len(),
        total_ms / peer_ms,
        plan_ms / peer_ms
    );
}
