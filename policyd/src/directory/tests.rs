//! The directory and cache sources in the agent, against a real slapd started here and the
//! real store in a scratch directory (kernel: the in-memory fake): a published and assigned
//! policy is applied; a change is applied at the next poll and an unchanged poll downloads
//! nothing; a malformed change keeps the last good policy; with slapd stopped a restarted
//! agent applies the cache; a corrupt cache falls back to the local policy; an unassigned
//! host clears the cache.

#[path = "../../directory/tests/support/slapd.rs"]
mod slapd;

use ipsec_directory::mapping::object_dn;
use ipsec_directory::schema::CLASS_NFA;
use ipsec_policy::defaults::{LAB_BETTY, SECURE_SERVER};
use ipsec_policy::{Location, PolicySet, Protocol};
use pfkey::memory::MemoryKernel;
use uuid::Uuid;

use super::*;
use crate::boot::Firewall;
use crate::service::{Agent, Effects, OperationalMode};
use slapd::Slapd;

struct Fx {
    store: PathBuf,
    kernel: MemoryKernel,
}

impl Effects for Fx {
    fn read_store(&mut self) -> Result<StoreView, ipsec_policy::StoreError> {
        crate::read_store(&self.store)
    }
    fn start_interface_manager(&mut self) -> Result<ipsec_policy::InterfaceSnapshot, String> {
        self.snapshot()
    }
    fn snapshot(&mut self) -> Result<ipsec_policy::InterfaceSnapshot, String> {
        Ok(ipsec_policy::InterfaceSnapshot {
            addresses: vec![ipsec_policy::InterfaceAddress {
                interface: "eth0".into(),
                address: "192.0.2.11".parse().map_err(|_| "ip".to_owned())?,
                kind: ipsec_policy::InterfaceKind::Lan,
            }],
            ..Default::default()
        })
    }
    fn set_firewall(&mut self, _: &Firewall) -> Result<(), String> {
        Ok(())
    }
    fn kernel(&mut self) -> &mut dyn pfkey::KernelInterface {
        &mut self.kernel
    }
    fn configure_ikd(&mut self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn stop_ikd(&mut self) {}
}

impl Fx {
    fn policies(&mut self) -> usize {
        use pfkey::KernelInterface as _;
        self.kernel.dump_policies().map_or(0, |p| p.len())
    }
}

struct Setup {
    slapd: Slapd,
    _tmp: tempfile::TempDir,
    store: PathBuf,
    config: PathBuf,
    set: PolicySet,
    id: Uuid,
}

fn setup() -> Setup {
    assert!(slapd::available(), "slapd missing: run tests/setup");
    let slapd = Slapd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let st = Store::open(&store).expect("store");
    let set = st.location(Location::Local).expect("local").set;
    let id = set.policy_by_name(SECURE_SERVER).expect("secure server").id;
    drop(st);
    let config = tmp.path().join("directory.toml");
    std::fs::write(&config, slapd.config("h1")).expect("config");
    Setup {
        slapd,
        _tmp: tmp,
        store,
        config,
        set,
        id,
    }
}

impl Setup {
    fn client(&self) -> Client {
        Client::connect(&DirectoryConfig::load(&self.config).expect("config")).expect("connect")
    }
    fn publish_and_assign(&self, set: &PolicySet) -> String {
        let mut c = self.client();
        let dn = c.publish(set, self.id).expect("publish");
        c.assign("ou=Servers,dc=example,dc=org", Some(&dn))
            .expect("assign");
        dn
    }
    fn agent(&self) -> (Agent, Fx, Shared) {
        let shared = shared(Some(&self.config), &self.store);
        let mut agent = Agent::new(sources(&shared), Some(Duration::from_secs(1)));
        let mut fx = Fx {
            store: self.store.clone(),
            kernel: MemoryKernel::new(),
        };
        agent.start(&mut fx);
        (agent, fx, shared)
    }
    fn cache(&self) -> Option<CachedPolicy> {
        Store::open(&self.store)
            .expect("store")
            .cache()
            .expect("cache")
    }
}

/// Adds a TCP filter to the first filter list of the policy's first rule.
fn with_extra_filter(set: &PolicySet, id: Uuid, port: u16) -> PolicySet {
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
    let mut f = l.filters.first().cloned().expect("a filter");
    f.id = Uuid::new_v4();
    f.protocol = Protocol::TCP;
    f.destination_port = port;
    l.filters.push(f);
    l.version += 1;
    set
}

fn last(shared: &Shared) -> LastResult {
    lock(shared).last.clone()
}

#[test]
fn assigned_policy_is_applied_cached_and_follows_changes() {
    let s = setup();
    let dn = s.publish_and_assign(&s.set);
    let (mut agent, mut fx, shared) = s.agent();
    assert_eq!(agent.state(), PolicyState::DirectoryDownloaded);
    assert_eq!(agent.mode(), OperationalMode::Secure);
    let before = fx.policies();
    assert!(before > 0, "kernel policies installed");
    let cached = s.cache().expect("cached");
    assert_eq!(cached.source.dn, dn);
    assert_eq!(cached.assigned, s.id);

    // Unchanged poll: nothing downloaded.
    agent.poll(&mut fx);
    assert!(matches!(
        last(&shared),
        LastResult::Policy {
            downloaded: false,
            ..
        }
    ));

    // A change in the directory is applied at the next poll.
    let changed = with_extra_filter(&s.set, s.id, 8443);
    s.client().publish(&changed, s.id).expect("republish");
    agent.poll(&mut fx);
    assert!(matches!(
        last(&shared),
        LastResult::Policy {
            downloaded: true,
            ..
        }
    ));
    let after = fx.policies();
    assert!(after > before, "new filter installed: {before} -> {after}");
    assert_eq!(
        s.cache().map(|c| c.set),
        ipsec_directory::mapping::policy_closure(&changed, s.id)
    );

    // A malformed change: logged, the last good policy stays.
    let rule = changed
        .policy(s.id)
        .and_then(|p| p.rules.first())
        .expect("rule");
    let nfa = object_dn(CLASS_NFA, rule.id, "ou=IP Security,dc=example,dc=org");
    s.slapd.ldapmodify(&format!(
        "dn: {nfa}\nchangetype: modify\nreplace: ipsecData\nipsecData: garbage [\n"
    ));
    agent.poll(&mut fx);
    assert_eq!(agent.state(), PolicyState::DirectoryDownloaded);
    assert_eq!(fx.policies(), after, "kernel unchanged");
    match last(&shared) {
        LastResult::Failed { error } => {
            assert!(
                error.contains(&nfa) && error.contains("last good"),
                "{error}"
            )
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        s.cache().map(|c| c.set),
        ipsec_directory::mapping::policy_closure(&changed, s.id),
        "cache keeps the last good policy"
    );
}

#[test]
fn unreachable_directory_uses_the_cache_then_local_when_the_cache_is_corrupt() {
    let mut s = setup();
    s.publish_and_assign(&s.set);
    let (_, mut fx, _) = s.agent();
    let directory_policies = fx.policies();
    // A local policy to fall back to.
    {
        let st = Store::open(&s.store).expect("store");
        let betty = s.set.policy_by_name(LAB_BETTY).expect("betty").id;
        st.assign(Location::Local, Some(betty))
            .expect("assign local");
    }
    s.slapd.stop();

    // Restart with the directory down: the cached copy.
    let (agent, mut fx2, shared2) = s.agent();
    assert_eq!(agent.state(), PolicyState::CacheDownloaded);
    assert_eq!(fx2.policies(), directory_policies);
    assert!(matches!(last(&shared2), LastResult::Failed { .. }));

    // Corrupt cache: reported, skipped, the local policy applies.
    Store::open(&s.store)
        .expect("store")
        .write_raw_for_tests("cache", b"this is not a cache")
        .expect("corrupt");
    let (agent, _, _) = s.agent();
    assert_eq!(agent.state(), PolicyState::LocalDownloaded);
}

#[test]
fn unassigned_host_clears_the_cache_and_uses_local() {
    let s = setup();
    s.publish_and_assign(&s.set);
    let (mut agent, mut fx, shared) = s.agent();
    assert_eq!(agent.state(), PolicyState::DirectoryDownloaded);
    assert!(s.cache().is_some());
    s.client()
        .assign("ou=Servers,dc=example,dc=org", None)
        .expect("unassign");
    // The assignment check runs at a refresh (or every assignment-check-minutes).
    agent.refresh(&mut fx);
    assert!(matches!(last(&shared), LastResult::NoPolicy { .. }));
    assert_eq!(agent.state(), PolicyState::Initial);
    assert!(s.cache().is_none(), "cache cleared");
}

#[test]
fn status_file_names_the_source() {
    let s = setup();
    let dn = s.publish_and_assign(&s.set);
    let (agent, _, shared) = s.agent();
    let run = tempfile::tempdir().expect("run dir");
    write_status(run.path(), &agent, &shared);
    let text = std::fs::read_to_string(status_path(run.path())).expect("status");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["policy_state"], "directory downloaded");
    assert_eq!(v["directory"]["last"]["dn"], dn.as_str());
    assert_eq!(
        v["directory"]["host"],
        "cn=h1,ou=Web,ou=Servers,dc=example,dc=org"
    );
    assert!(v["directory"]["assignment"]
        .as_str()
        .is_some_and(|a| a.contains("ou=Servers")));
}
