//! Benchmark of the directory client on the host (no kernel): a policy of 10,000 filters
//! (`slapd::bench_policy`: 3,000 negotiated, the rest permitted) in a throwaway slapd. Prints the unchanged poll (change detection) against `ldapsearch` of
//! the same version attributes, and the full download + map + validate against `ldapsearch`
//! of the whole container. `cargo run --release -p ipsec-directory --example bench`;
//! tests/bench/directory runs it and the kernel-lab part.

#[path = "../tests/support/slapd.rs"]
mod slapd;

use std::time::Instant;

use ipsec_directory::{Client, DirectoryConfig};
use ipsec_policy::defaults::SECURE_SERVER;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn ldapsearch(s: &slapd::Slapd, base: &str, scope: &str, filter: &str, attrs: &[&str]) -> f64 {
    s.timed_ldapsearch(base, scope, filter, attrs)
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = slapd::Slapd::start();
    let cfg = DirectoryConfig::parse("bench", &s.config("h1"))?;
    let mut c = Client::connect(&cfg)?;
    let defaults = ipsec_policy::defaults::default_store();
    let id = defaults
        .policy_by_name(SECURE_SERVER)
        .ok_or("no default policy")?
        .id;
    let set = slapd::bench_policy(&defaults, id, 10_000 - slapd::filters_of(&defaults, id));
    let filters = slapd::filters_of(&set, id);
    let t = Instant::now();
    let dn = c.publish(&set, id)?;
    println!(
        "bench-host: published a policy of {filters} filters in {:.1} ms",
        ms(t)
    );
    let container = cfg.container();
    let owner = format!("(ipsecOwnersReference={dn})");
    let fp = c.fingerprint(&dn)?;
    let mut polls = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        if c.fingerprint(&dn)? != fp {
            return Err("fingerprint changed without a change".into());
        }
        polls.push(ms(t));
    }
    // As the agent polls: a new connection and bind, then the two searches.
    let mut agent_polls = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let mut fresh = Client::connect(&cfg)?;
        if fresh.fingerprint(&dn)? != fp {
            return Err("fingerprint changed without a change".into());
        }
        agent_polls.push(ms(t));
    }
    let peer: Vec<f64> = (0..20)
        .map(|_| {
            ldapsearch(
                &s,
                &dn,
                "base",
                "(objectClass=*)",
                &["ipsecVersion", "entryCSN"],
            ) + ldapsearch(&s, &container, "sub", &owner, &["ipsecVersion", "entryCSN"])
        })
        .collect();
    let mut downloads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let d = c.download(&dn)?;
        downloads.push(ms(t));
        assert_eq!(d.id, id);
    }
    let peer_dl: Vec<f64> = (0..5)
        .map(|_| ldapsearch(&s, &container, "sub", "(objectClass=*)", &["*", "entryCSN"]))
        .collect();
    let (p, pp) = (slapd::median(polls), slapd::median(peer));
    let ap = slapd::median(agent_polls);
    let (d, pd) = (slapd::median(downloads), slapd::median(peer_dl));
    println!("bench-host: unchanged poll (2 searches of version attributes): {p:.2} ms median of 50 (target < 50 ms)");
    println!("bench-host: peer: ldapsearch of the same attributes (2 processes): {pp:.2} ms; ratio ours/peer {:.2}", p / pp);
    println!("bench-host: unchanged poll as policyd does it (connect + bind + 2 searches): {ap:.2} ms median of 20; ratio ours/peer {:.2}", ap / pp);
    println!("bench-host: full download + map + validate: {d:.1} ms median of 5");
    println!(
        "bench-host: peer: ldapsearch of the whole container: {pd:.1} ms; ratio ours/peer {:.2}",
        d / pd
    );
    Ok(())
}
