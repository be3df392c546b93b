//! Lab tests of the directory policy store with the real kernel: a throwaway slapd (the
//! host's Debian slapd, shared into the guest) on a Unix socket, `policyd --directory` in
//! namespace h1. Run with `tests/lab/run-tests -p policyd --test lab_directory`.
//!
//! - a policy published and assigned to h1's OU is applied and its kernel policies follow;
//! - a change in the directory is applied within one poll;
//! - with slapd stopped a restarted policyd applies the cached copy;
//! - with the cache corrupt the local policy applies.
//!
//! `bench_10k_filters` (skipped by tests/run; `tests/bench/directory` runs it) prints the
//! benchmark figures.

mod support;

#[path = "../directory/tests/support/slapd.rs"]
mod slapd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipsec_directory::{Client, DirectoryConfig};
use ipsec_policy::defaults::SECURE_SERVER;
use ipsec_policy::{Endpoint, Filter, Location, PolicySet, Protocol, Store};
use support::agent::{wait_until, xfrm_policies, Agent};
use support::Hosts;
use uuid::Uuid;

const OU: &str = "ou=Servers,dc=example,dc=org";

fn xfrm_count(ns: &str) -> usize {
    xfrm_policies(ns)
        .lines()
        .filter(|l| l.starts_with("src "))
        .count()
}

struct Lab {
    dir: tempfile::TempDir,
    config: PathBuf,
    set: PolicySet,
    id: Uuid,
}

impl Lab {
    fn new(s: &slapd::Slapd) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("directory.toml");
        let text = s.config("h1").replace(&s.url(), &s.ldapi());
        std::fs::write(&config, text).expect("config");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let set = store.location(Location::Local).expect("local").set;
        let id = set.policy_by_name(SECURE_SERVER).expect("policy").id;
        Lab {
            dir,
            config,
            set,
            id,
        }
    }
    fn store_dir(&self) -> PathBuf {
        support::agent::store_dir(self.dir.path())
    }
    fn run_dir(&self) -> PathBuf {
        support::agent::run_dir(self.dir.path())
    }
    fn client(&self) -> Client {
        Client::connect(&DirectoryConfig::load(&self.config).expect("config")).expect("connect")
    }
    fn log(&self) -> String {
        support::agent::log(self.dir.path())
    }
    fn status(&self) -> serde_json::Value {
        std::fs::read_to_string(self.run_dir().join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
    fn state(&self) -> String {
        self.status()["policy_state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    fn agent(&self, ns: &str) -> Agent {
        let _ = std::fs::remove_file(self.run_dir().join("status.json"));
        let args: Vec<OsString> = vec![
            "--directory".into(),
            self.config.clone().into(),
            "--poll-interval".into(),
            "1".into(),
            "--no-ikd".into(),
        ];
        Agent::start(ns, self.dir.path(), &args, Duration::from_secs(30))
    }
}

/// `set` with `n` more TCP filters (me → 198.51.100.0/24-ish peers, ports from `port`) in
/// the first filter list of the policy's first rule, its version increased.
fn with_filters(set: &PolicySet, id: Uuid, n: usize, port: u16) -> PolicySet {
    let mut set = set.clone();
    let list = set
        .policy(id)
        .and_then(|p| p.rules.first())
        .map(|r| r.filter_list);
    let l = set
        .filter_lists
        .iter_mut()
        .find(|l| Some(l.id) == list)
        .expect("list");
    for i in 0..n {
        let host = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 0)) + (i as u32 / 40);
        let ip = std::net::Ipv4Addr::from(host);
        l.filters.push(Filter {
            id: Uuid::new_v4(),
            version: 1,
            description: String::new(),
            source: Endpoint::MyAddress,
            destination: ip.to_string().parse().expect("endpoint"),
            mirrored: true,
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: port.wrapping_add((i % 40) as u16),
        });
    }
    l.version += 1;
    set
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn directory_policy_is_applied_follows_changes_and_falls_back() {
    let hosts = Hosts::create(2);
    let ns = hosts.ns(1);
    let mut s = slapd::Slapd::start();
    let lab = Lab::new(&s);
    let mut c = lab.client();
    let dn = c.publish(&lab.set, lab.id).expect("publish");
    c.assign(OU, Some(&dn)).expect("assign");

    // Picked up: the kernel follows.
    let mut agent = lab.agent(&ns);
    assert!(
        wait_until(Duration::from_secs(60), || lab.state()
            == "directory downloaded"
            && xfrm_count(&ns) > 0),
        "directory policy not applied: {}\n{}",
        lab.status(),
        lab.log()
    );

    // A change in the directory is applied within one poll (1 s here).
    let changed = with_filters(&lab.set, lab.id, 1, 8443);
    c.publish(&changed, lab.id).expect("republish");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || xfrm_policies(&ns)
            .contains("dport 8443")),
        "change not applied:\n{}\n{}",
        xfrm_policies(&ns),
        lab.log()
    );
    eprintln!("change applied after {:?}", t.elapsed());
    let with_change = xfrm_count(&ns);
    agent.stop();
    assert_eq!(xfrm_count(&ns), 0, "owned policies removed at stop");

    // Directory down: the cached copy.
    s.stop();
    let mut agent = lab.agent(&ns);
    assert!(
        wait_until(Duration::from_secs(60), || lab.state()
            == "cache downloaded"
            && xfrm_count(&ns) == with_change),
        "cache not applied: {}\n{}",
        lab.status(),
        lab.log()
    );
    assert!(xfrm_policies(&ns).contains("dport 8443"));
    agent.stop();

    // Corrupt cache: skipped, the local policy applies.
    {
        let st = Store::open(&lab.store_dir()).expect("store");
        st.write_raw_for_tests("cache", b"garbage")
            .expect("corrupt");
        st.assign(Location::Local, Some(lab.id))
            .expect("assign local");
    }
    let _agent = lab.agent(&ns);
    assert!(
        wait_until(Duration::from_secs(60), || lab.state()
            == "local downloaded"
            && xfrm_count(&ns) > 0),
        "local not applied: {}\n{}",
        lab.status(),
        lab.log()
    );
    assert!(!xfrm_policies(&ns).contains("dport 8443"));
    assert!(
        lab.log().contains("cached directory policy is corrupt"),
        "{}",
        lab.log()
    );
}

fn ldapsearch_ms(s: &slapd::Slapd, base: &str, scope: &str, filter: &str, attrs: &[&str]) -> f64 {
    s.timed_ldapsearch(base, scope, filter, attrs)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The benchmark: a policy of 10,000 filters. Prints the figures; asserts only that the
/// policy is applied.
#[test]
#[ignore = "benchmark in the kernel lab: tests/bench/directory"]
fn bench_10k_filters() {
    let hosts = Hosts::create(2);
    let ns = hosts.ns(1);
    let s = slapd::Slapd::start();
    let lab = Lab::new(&s);
    let mut c = lab.client();
    // 10,000 filters: 3,000 negotiated, the rest permitted (slapd::bench_policy).
    let base = slapd::bench_policy(
        &lab.set,
        lab.id,
        10_000 - slapd::filters_of(&lab.set, lab.id),
    );
    let total = slapd::filters_of(&base, lab.id);
    let dn = c.publish(&base, lab.id).expect("publish");
    c.assign(OU, Some(&dn)).expect("assign");

    // Unchanged poll (the agent's change detection) vs ldapsearch of the same attributes.
    let container = c.config().container();
    let owner = format!("(ipsecOwnersReference={dn})");
    let fp = c.fingerprint(&dn).expect("fingerprint");
    let polls: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(c.fingerprint(&dn).expect("fingerprint"), fp);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let peer_polls: Vec<f64> = (0..5)
        .map(|_| {
            ldapsearch_ms(
                &s,
                &dn,
                "base",
                "(objectClass=*)",
                &["ipsecVersion", "entryCSN"],
            ) + ldapsearch_ms(&s, &container, "sub", &owner, &["ipsecVersion", "entryCSN"])
        })
        .collect();
    // Full download + validation vs ldapsearch of the whole container.
    let downloads: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            c.download(&dn).expect("download");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let peer_downloads: Vec<f64> = (0..3)
        .map(|_| ldapsearch_ms(&s, &container, "sub", "(objectClass=*)", &["*", "entryCSN"]))
        .collect();

    // Start the agent on the 10k policy, then change it: time to the last kernel policy.
    let agent = lab.agent(&ns);
    assert!(
        wait_until(Duration::from_secs(600), || lab.state()
            == "directory downloaded"),
        "not applied: {}",
        lab.log()
    );
    let before = xfrm_count(&ns);
    let download_count = |lab: &Lab| lab.status()["directory"]["downloads"].as_u64().unwrap_or(0);
    let old_downloads = download_count(&lab);
    let changed = with_filters(&base, lab.id, 1, 7);
    let t = Instant::now();
    c.publish(&changed, lab.id).expect("republish");
    let publish_ms = t.elapsed().as_secs_f64() * 1000.0;
    agent.refresh();
    // policyd writes status.json after the poll's kernel apply has returned: a higher
    // download count there means the changed policy's last kernel policy is installed.
    assert!(
        wait_until(Duration::from_secs(600), || download_count(&lab)
            > old_downloads),
        "change not applied: {}",
        lab.log()
    );
    let apply_ms = t.elapsed().as_secs_f64() * 1000.0;
    let poll_ms = lab.status()["directory"]["last_poll_ms"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let after = xfrm_count(&ns);
    assert!(after > before, "kernel policies {before} -> {after}");

    let (poll, peer_poll) = (slapd::median(polls), slapd::median(peer_polls));
    let (dl, peer_dl) = (slapd::median(downloads), slapd::median(peer_downloads));
    println!("bench: policy of {total} filters, {before} kernel policies before the change");
    println!("bench: unchanged poll (fingerprint, 2 searches): {poll:.2} ms median of 10 (target < 50 ms)");
    println!("bench: peer ldapsearch of the same version attributes (2 processes): {peer_poll:.2} ms; ratio {:.2}", poll / peer_poll);
    println!("bench: full download + map + validate: {dl:.1} ms median of 3");
    println!(
        "bench: peer ldapsearch of the whole container: {peer_dl:.1} ms; ratio {:.2}",
        dl / peer_dl
    );
    println!("bench: publish of the changed policy: {publish_ms:.1} ms");
    println!("bench: kernel policies {before} -> {after}; the agent's directory poll (connect, assignment, download, validate, cache write): {poll_ms:.1} ms");
    // policyd's own spans of the change (download+validate, kernel apply), from its log.
    let log = strip_ansi(&lab.log());
    let spans: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("ms=")
                && (l.contains("downloaded and validated") || l.contains("kernel policies applied"))
        })
        .collect();
    for l in spans.iter().rev().take(2).rev() {
        let at = l.find("policyd::").unwrap_or(0);
        println!("bench: policyd: {}", &l[at..]);
    }
    println!("bench: change in the directory -> last kernel policy installed (publish, then refresh as ipsecadm dynamic refresh does; status.json checked every 20 ms): {apply_ms:.1} ms (target < 2000 ms)");
}

/// `text` without ANSI escape sequences (policyd's log is coloured).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
