//! The agent's decisions against fakes: start-up order, retrieval chain, block mode,
//! change detection, interface changes, shutdown.

use std::net::IpAddr;

use ipsec_policy::defaults::{default_store, LAB_ANDY, SECURE_SERVER};
use ipsec_policy::settings::{BootExemption, ExemptionDirection};
use ipsec_policy::{InterfaceAddress, InterfaceKind, Protocol};
use pfkey::memory::MemoryKernel;
use pfkey::{Direction, Policy as KPolicy, PolicyAction, PolicyId, Prefix, Selector};

use super::*;

struct Fake {
    log: Vec<String>,
    view: Result<StoreView, String>,
    snapshot: InterfaceSnapshot,
    kernel: MemoryKernel,
    firewall: Option<Firewall>,
    ikd_configs: Vec<String>,
    ikd_running: bool,
}

impl Fake {
    fn new(view: StoreView) -> Self {
        Self {
            log: Vec::new(),
            view: Ok(view),
            snapshot: snapshot(&["192.0.2.11"]),
            kernel: MemoryKernel::new(),
            firewall: None,
            ikd_configs: Vec::new(),
            ikd_running: false,
        }
    }

    fn policies(&mut self) -> Vec<KPolicy> {
        self.kernel.dump_policies().unwrap_or_default()
    }
}

impl Effects for Fake {
    fn read_store(&mut self) -> Result<StoreView, StoreError> {
        self.log.push("read_store".into());
        self.view
            .clone()
            .map_err(|reason| StoreError::CorruptEntry {
                key: "local",
                reason,
            })
    }
    fn start_interface_manager(&mut self) -> Result<InterfaceSnapshot, String> {
        self.log.push("start_interface_manager".into());
        Ok(self.snapshot.clone())
    }
    fn snapshot(&mut self) -> Result<InterfaceSnapshot, String> {
        self.log.push("snapshot".into());
        Ok(self.snapshot.clone())
    }
    fn set_firewall(&mut self, firewall: &Firewall) -> Result<(), String> {
        self.log.push(match firewall {
            Firewall::Open => "firewall open".into(),
            Firewall::Filter { mode, .. } => format!("firewall {mode:?}"),
        });
        self.firewall = Some(firewall.clone());
        Ok(())
    }
    fn kernel(&mut self) -> &mut dyn KernelInterface {
        &mut self.kernel
    }
    fn configure_ikd(&mut self, config: &str) -> Result<(), String> {
        if self.ikd_configs.last().map(String::as_str) != Some(config) {
            self.log.push("configure_ikd".into());
            self.ikd_configs.push(config.to_owned());
        }
        self.ikd_running = true;
        Ok(())
    }
    fn stop_ikd(&mut self) {
        self.log.push("stop_ikd".into());
        self.ikd_running = false;
    }
}

fn snapshot(addrs: &[&str]) -> InterfaceSnapshot {
    InterfaceSnapshot {
        addresses: addrs
            .iter()
            .map(|a| InterfaceAddress {
                interface: "eth0".into(),
                address: a.parse().expect("ip"),
                kind: InterfaceKind::Lan,
            })
            .collect(),
        ..InterfaceSnapshot::default()
    }
}

fn view(local: Option<&str>, persistent: Option<&str>) -> StoreView {
    let set = default_store();
    let id = |name: Option<&str>| name.and_then(|n| set.policy_by_name(n)).map(|p| p.id);
    StoreView {
        settings: Settings::default(),
        local: LocationContents {
            assigned: id(local),
            set: set.clone(),
        },
        persistent: LocationContents {
            assigned: id(persistent),
            set: set.clone(),
        },
        cache: None.into(),
    }
}

fn agent() -> Agent {
    Agent::new(default_sources(), None)
}

#[test]
fn start_up_follows_the_seed_order() {
    let mut fx = Fake::new(view(Some(LAB_ANDY), Some(SECURE_SERVER)));
    let mut a = agent();
    a.start(&mut fx);
    assert_eq!(
        a.steps(),
        [
            Step::InitIntervals,
            Step::StartInterfaceManager,
            Step::SetDriverMode(BootMode::Stateful),
            Step::StartIkd,
            Step::ApplyPersistent(true),
            Step::ApplyAssigned(PolicyState::LocalDownloaded),
            Step::OpenFirewall,
        ]
    );
    assert_eq!(
        fx.log,
        [
            "read_store",
            "start_interface_manager",
            "firewall Stateful",
            "configure_ikd",
            "firewall open",
        ]
    );
    assert_eq!(a.mode(), OperationalMode::Secure);
    assert_eq!(a.state(), PolicyState::LocalDownloaded);
    assert_eq!(a.polling_interval(), Duration::from_secs(180 * 60));
    assert!(!fx.policies().is_empty());
}

#[test]
fn the_persistent_policy_is_in_the_kernel_before_the_assigned_one() {
    // A recording kernel would be nicer; the observable order is: after the persistent
    // step alone the kernel holds only persistent entries.
    let v = view(None, Some(SECURE_SERVER));
    let mut fx = Fake::new(v.clone());
    let mut a = agent();
    a.start(&mut fx);
    let persistent_only = fx.policies();
    let mut fx2 = Fake::new(view(Some(LAB_ANDY), Some(SECURE_SERVER)));
    let mut b = agent();
    b.start(&mut fx2);
    let both = fx2.policies();
    for p in &persistent_only {
        assert!(
            both.iter().any(|q| q.id == p.id),
            "persistent entry kept: {p:?}"
        );
    }
    assert!(both.len() > persistent_only.len());
    assert_eq!(a.state(), PolicyState::Initial, "no assigned policy");
    assert_eq!(a.mode(), OperationalMode::Secure);
}

#[test]
fn retrieval_chain_states() {
    let sources = default_sources();
    let (found, trail) = retrieve(&sources, &view(None, None));
    assert!(found.is_none());
    assert_eq!(
        trail
            .iter()
            .map(|(n, r)| (*n, r.clone()))
            .collect::<Vec<_>>(),
        [
            ("directory", Retrieval::NotConfigured),
            ("cache", Retrieval::NotConfigured),
            ("local", Retrieval::NoPolicy),
        ]
    );
    let (found, _) = retrieve(&sources, &view(Some(LAB_ANDY), None));
    let (r, state) = found.expect("policy");
    assert_eq!(state, PolicyState::LocalDownloaded);
    assert_eq!(
        r.set.policy(r.policy).map(|p| p.name.as_str()),
        Some(LAB_ANDY)
    );

    // A directory that answers wins over the local store.
    struct Dir;
    impl PolicySource for Dir {
        fn name(&self) -> &'static str {
            "directory"
        }
        fn state(&self) -> PolicyState {
            PolicyState::DirectoryDownloaded
        }
        fn retrieve(&self, v: &StoreView) -> Retrieval {
            let p = v.local.set.policy_by_name(SECURE_SERVER).map(|p| p.id);
            p.map_or(Retrieval::Failed("none".into()), |policy| {
                Retrieval::Policy(Retrieved {
                    set: v.local.set.clone(),
                    policy,
                    validated: false,
                })
            })
        }
    }
    let sources: Vec<Box<dyn PolicySource>> =
        vec![Box::new(Dir), Box::new(CacheSource), Box::new(LocalSource)];
    let (found, trail) = retrieve(&sources, &view(Some(LAB_ANDY), None));
    assert_eq!(
        found.map(|(_, s)| s),
        Some(PolicyState::DirectoryDownloaded)
    );
    assert_eq!(trail.len(), 1);

    let mut v = view(None, None);
    v.local.assigned = Some(Uuid::from_u128(7));
    assert!(matches!(LocalSource.retrieve(&v), Retrieval::Failed(_)));
}

#[test]
fn no_policy_is_the_initial_state_with_the_default_interval() {
    let mut fx = Fake::new(view(None, None));
    let mut a = Agent::new(default_sources(), None);
    a.start(&mut fx);
    assert_eq!(a.state(), PolicyState::Initial);
    assert_eq!(a.polling_interval(), Duration::from_secs(180 * 60));
    assert_eq!(a.mode(), OperationalMode::Secure);
    assert_eq!(fx.firewall, Some(Firewall::Open));
    assert!(fx.policies().is_empty());
}

fn foreign_conflict_for(fx: &mut Fake, v: &StoreView) {
    // Install, as another key manager would, a policy holding the selector of the first
    // entry the persistent policy needs.
    let set = &v.persistent.set;
    let id = v.persistent.assigned.expect("persistent");
    let policy = set.policy(id).expect("policy");
    let d = compile(set, policy, &fx.snapshot, &CompileOptions::default()).expect("compile");
    let first = d.entries.first().expect("entries").policy.clone();
    fx.kernel
        .add_policy(&KPolicy {
            priority: 0,
            ..first
        })
        .expect("foreign");
}

#[test]
fn a_persistent_policy_that_cannot_be_applied_gives_block_mode() {
    let v = view(Some(LAB_ANDY), Some(SECURE_SERVER));
    let mut fx = Fake::new(v.clone());
    foreign_conflict_for(&mut fx, &v);
    let mut a = agent();
    a.start(&mut fx);
    assert_eq!(a.mode(), OperationalMode::Block);
    assert!(a.steps().contains(&Step::EnterBlock));
    assert!(!a
        .steps()
        .iter()
        .any(|s| matches!(s, Step::ApplyAssigned(_))));
    assert!(matches!(
        fx.firewall,
        Some(Firewall::Filter {
            mode: BootMode::Block,
            ..
        })
    ));
    // Only the foreign policy is in the kernel: nothing of the assigned one.
    assert_eq!(fx.policies().len(), 1);

    // The administrator removes the conflict: the next poll leaves block mode.
    let foreign = fx.policies()[0].id;
    fx.kernel.delete_policy(&foreign).expect("delete");
    a.poll(&mut fx);
    assert_eq!(a.mode(), OperationalMode::Secure);
    assert_eq!(fx.firewall, Some(Firewall::Open));
}

#[test]
fn an_unreadable_store_gives_block_mode_with_default_boot_first() {
    let mut fx = Fake::new(view(None, None));
    fx.view = Err("broken".into());
    let mut a = agent();
    a.start(&mut fx);
    assert_eq!(a.mode(), OperationalMode::Block);
    assert_eq!(
        fx.log,
        [
            "read_store",
            "start_interface_manager",
            "firewall Stateful",
            "configure_ikd",
            "firewall Block",
        ]
    );
}

#[test]
fn polling_applies_only_changes() {
    let mut fx = Fake::new(view(None, None));
    let mut a = agent();
    a.start(&mut fx);
    assert!(fx.policies().is_empty());
    fx.log.clear();
    a.poll(&mut fx);
    assert_eq!(fx.log, ["read_store"], "nothing changed, nothing done");

    fx.view = Ok(view(Some(LAB_ANDY), None));
    a.poll(&mut fx);
    assert_eq!(a.state(), PolicyState::LocalDownloaded);
    let n = fx.policies().len();
    assert!(n > 0);
    assert_eq!(fx.ikd_configs.len(), 2, "ikd follows the new policy");

    fx.view = Ok(view(None, None));
    a.refresh(&mut fx);
    assert!(
        fx.policies().is_empty(),
        "unassigning removes the owned policies"
    );
    assert_eq!(a.state(), PolicyState::Initial);
}

fn my_address_block_view() -> StoreView {
    use ipsec_policy::{Filter, FilterList, Rule};
    let mut v = view(None, None);
    let set = &mut v.local.set;
    let block = set
        .filter_actions
        .iter()
        .find(|a| matches!(a.action, ipsec_policy::Action::Block))
        .expect("block action")
        .id;
    let list = FilterList {
        id: Uuid::from_u128(0xabc1),
        version: 1,
        name: "Telnet to me".into(),
        description: String::new(),
        filters: vec![Filter {
            id: Uuid::from_u128(0xabc2),
            version: 1,
            description: "telnet to me".into(),
            source: ipsec_policy::Endpoint::Any,
            destination: ipsec_policy::Endpoint::MyAddress,
            mirrored: true,
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: 23,
        }],
    };
    let mut p = set.policy_by_name(SECURE_SERVER).expect("policy").clone();
    p.id = Uuid::from_u128(0xabc3);
    p.name = "Block telnet to me".into();
    p.isakmp.id = Uuid::from_u128(0xabc5);
    p.default_response.id = Uuid::from_u128(0xabc6);
    p.rules = vec![Rule {
        id: Uuid::from_u128(0xabc4),
        version: 1,
        name: "block".into(),
        description: String::new(),
        active: true,
        filter_list: list.id,
        filter_action: block,
        auth_methods: vec![],
        tunnel_endpoint: None,
        connection_type: ipsec_policy::ConnectionType::All,
    }];
    p.default_response.active = false;
    set.filter_lists.push(list);
    set.policies.push(p);
    v.local.assigned = Some(Uuid::from_u128(0xabc3));
    v
}

#[test]
fn my_address_filters_follow_interface_changes() {
    let v = my_address_block_view();
    ipsec_policy::validate(&v.local.set).expect("valid test policy");
    let mut fx = Fake::new(v);
    let mut a = agent();
    a.start(&mut fx);
    let has = |fx: &mut Fake, addr: &str| {
        let ip: IpAddr = addr.parse().expect("ip");
        fx.policies().iter().any(|p| {
            p.action == PolicyAction::Block
                && p.id.direction == Direction::In
                && p.id.selector.destination == Prefix::host(ip)
        })
    };
    assert!(has(&mut fx, "192.0.2.11"));
    assert!(!has(&mut fx, "192.0.2.51"));

    fx.snapshot = snapshot(&["192.0.2.11", "192.0.2.51"]);
    a.interfaces_changed(&mut fx);
    assert!(has(&mut fx, "192.0.2.11"));
    assert!(has(&mut fx, "192.0.2.51"));

    // The same snapshot again does nothing.
    fx.log.clear();
    a.interfaces_changed(&mut fx);
    assert_eq!(fx.log, ["snapshot"]);

    fx.snapshot = snapshot(&["192.0.2.51"]);
    a.interfaces_changed(&mut fx);
    assert!(!has(&mut fx, "192.0.2.11"));
}

#[test]
fn shutdown_removes_owned_policies_keeps_foreign_ones_and_opens_the_firewall() {
    let mut fx = Fake::new(view(Some(LAB_ANDY), None));
    let foreign = KPolicy {
        id: PolicyId {
            selector: Selector::hosts(
                "192.0.2.11".parse().expect("ip"),
                "192.0.2.99".parse().expect("ip"),
            ),
            direction: Direction::Out,
            mark: None,
        },
        action: PolicyAction::Block,
        priority: 0,
        index: None,
        lifetime: Default::default(),
    };
    fx.kernel.add_policy(&foreign).expect("foreign");
    let mut a = agent();
    a.start(&mut fx);
    assert!(fx.policies().len() > 1);
    a.shutdown(&mut fx);
    assert_eq!(fx.policies().len(), 1);
    assert_eq!(fx.policies()[0].id, foreign.id);
    assert_eq!(a.mode(), OperationalMode::Permit);
    assert!(!fx.ikd_running);
    assert_eq!(fx.firewall, Some(Firewall::Open));
    let stop = fx.log.iter().position(|l| l == "stop_ikd");
    let open = fx.log.iter().rposition(|l| l == "firewall open");
    assert!(
        stop < open,
        "ikd stopped before the firewall opens: {:?}",
        fx.log
    );
}

#[test]
fn boot_mode_and_exemptions_come_from_the_settings() {
    let mut v = view(None, None);
    v.settings.boot_mode = BootMode::Block;
    v.settings.boot_exemptions = vec![BootExemption {
        protocol: Protocol::TCP,
        source_port: 0,
        destination_port: 22,
        direction: ExemptionDirection::Inbound,
    }];
    let mut fx = Fake::new(v.clone());
    foreign_conflict_for(&mut fx, &{
        let mut w = v.clone();
        w.persistent.assigned = w.persistent.set.policy_by_name(SECURE_SERVER).map(|p| p.id);
        w
    });
    fx.view = Ok({
        let mut w = v;
        w.persistent.assigned = w.persistent.set.policy_by_name(SECURE_SERVER).map(|p| p.id);
        w
    });
    let mut a = Agent::new(default_sources(), Some(Duration::from_secs(5)));
    a.start(&mut fx);
    assert!(a.steps().contains(&Step::SetDriverMode(BootMode::Block)));
    assert_eq!(a.mode(), OperationalMode::Block);
    match &fx.firewall {
        Some(Firewall::Filter { mode, exemptions }) => {
            assert_eq!(*mode, BootMode::Block);
            assert_eq!(exemptions.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.polling_interval(), Duration::from_secs(5));
}

#[test]
fn fall_back_to_clear_only_where_the_filter_action_allows_it() {
    let betty = ipsec_policy::defaults::LAB_BETTY;
    let andy: IpAddr = "192.0.2.11".parse().expect("ip");
    let mut a = agent();
    let mut fx = Fake::new(view(Some(betty), None));
    fx.snapshot = snapshot(&["192.0.2.12"]);
    assert!(matches!(
        a.fall_back_to_clear(&mut fx, andy),
        Err(FallBackError::NotApplied)
    ));
    a.start(&mut fx);
    // The lab action does not allow unsecured communication: nothing installed.
    let before = fx.policies();
    assert!(matches!(
        a.fall_back_to_clear(&mut fx, andy),
        Err(FallBackError::NotAllowed(p)) if p == andy
    ));
    assert_eq!(fx.policies(), before);

    // Allow it: the soft policies for Andy, allow in both directions with the idle lifetime.
    let mut v = view(Some(betty), None);
    for f in &mut v.local.set.filter_actions {
        if let ipsec_policy::Action::Negotiate(n) = &mut f.action {
            n.fall_back_to_clear = true;
        }
    }
    fx.view = Ok(v);
    a.poll(&mut fx);
    let n = a.fall_back_to_clear(&mut fx, andy).expect("fall back");
    assert!(n >= 2, "{n}");
    let soft: Vec<KPolicy> = fx
        .policies()
        .into_iter()
        .filter(|p| p.action == PolicyAction::Allow)
        .collect();
    assert!(soft.iter().any(
        |p| p.id.direction == Direction::Out && p.id.selector.destination == Prefix::host(andy)
    ));
    assert!(soft
        .iter()
        .any(|p| p.id.direction == Direction::In && p.id.selector.source == Prefix::host(andy)));
    assert!(soft.iter().all(
        |p| p.lifetime.hard_use_seconds == Some(ipsec_agent::compile::SOFT_CLEAR_IDLE_SECONDS)
    ));
    // A peer no fall-back filter covers gets nothing.
    let other: IpAddr = "198.51.100.9".parse().expect("ip");
    assert!(matches!(
        a.fall_back_to_clear(&mut fx, other),
        Err(FallBackError::NotAllowed(_))
    ));
    // The next apply keeps them.
    a.refresh(&mut fx);
    assert_eq!(
        fx.policies()
            .into_iter()
            .filter(|p| p.action == PolicyAction::Allow)
            .count(),
        soft.len()
    );
}

/// ikd's `match-negotiation` through the control answer: from the applied state, with the
/// connection names of the ikd.conf the agent handed to ikd; refused before any apply.
#[test]
fn match_negotiation_answers_from_the_applied_state_with_the_generated_connections() {
    use ipsec_control::{NegotiationQuery, NegotiationVerdict, Request, Response};
    let query = |peer: &str, protocol: u8, local_port: u16| {
        Request::MatchNegotiation(NegotiationQuery {
            local: "192.0.2.11".parse().expect("ip"),
            peer: peer.parse().expect("ip"),
            local_subnet: "192.0.2.11/32".into(),
            remote_subnet: format!("{peer}/32"),
            protocol,
            local_port,
            remote_port: 0,
            peer_identity: None,
        })
    };
    let mut fx = Fake::new(view(Some(LAB_ANDY), None));
    let mut a = agent();
    // Nothing applied yet: an error, so ikd matches locally.
    assert!(matches!(
        crate::control::answer(&mut a, &mut fx, &query("192.0.2.12", 6, 23)),
        Response::Error { .. }
    ));
    a.start(&mut fx);
    let conf = fx.ikd_configs.last().cloned().expect("ikd configured");
    assert!(conf.contains("policy-lookup = true"), "{conf}");
    // Betty's telnet: the connection ikd.conf has for it.
    match crate::control::answer(&mut a, &mut fx, &query("192.0.2.12", 6, 23)) {
        Response::NegotiationMatch {
            verdict: NegotiationVerdict::Connection { connection, .. },
        } => assert!(
            conf.contains(&format!("name = \"{connection}\"")),
            "{connection}\n{conf}"
        ),
        other => panic!("{other:?}"),
    }
    // Anyone else's telnet is blocked; their ICMP matches nothing (default response off).
    assert!(matches!(
        crate::control::answer(&mut a, &mut fx, &query("192.0.2.13", 6, 23)),
        Response::NegotiationMatch {
            verdict: NegotiationVerdict::Blocked { .. }
        }
    ));
    assert!(matches!(
        crate::control::answer(&mut a, &mut fx, &query("192.0.2.13", 1, 0)),
        Response::NegotiationMatch {
            verdict: NegotiationVerdict::NoMatch { .. }
        }
    ));
}

/// The owned kernel policies as (identity, action, priority), sorted.
fn owned(fx: &mut Fake) -> Vec<String> {
    let own = Ownership::default();
    let mut v: Vec<String> = fx
        .policies()
        .iter()
        .filter(|p| own.owns_policy(p))
        .map(|p| format!("{:?} {:?} {}", p.id, p.action, p.priority))
        .collect();
    v.sort();
    v
}

fn desired_of(a: &Agent) -> Vec<String> {
    let mut v: Vec<String> = a
        .desired
        .as_ref()
        .map(|d| {
            d.policies()
                .map(|p| format!("{:?} {:?} {}", p.id, p.action, p.priority))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn changes_are_planned_against_the_last_applied_state_and_fall_back_to_a_dump() {
    let mut fx = Fake::new(view(Some(LAB_ANDY), None));
    let mut a = agent();
    a.start(&mut fx);
    assert!(a.spd_exact, "the kernel holds exactly the applied state");
    assert_eq!(owned(&mut fx), desired_of(&a));

    // A change: planned against the applied state, the kernel ends as desired.
    fx.view = Ok(view(Some(SECURE_SERVER), None));
    a.poll(&mut fx);
    assert_eq!(a.state(), PolicyState::LocalDownloaded);
    assert!(a.spd_exact);
    let secure = owned(&mut fx);
    assert!(!secure.is_empty());
    assert_eq!(secure, desired_of(&a));

    // Behind the agent's back another key manager takes a selector the next policy needs:
    // the plan against the applied state fails in the kernel and is rolled back, the
    // re-plan against the kernel finds the foreign policy, and the previous state stays.
    let next = view(Some(LAB_ANDY), None);
    foreign_conflict_for(
        &mut fx,
        &StoreView {
            persistent: next.local.clone(),
            ..next.clone()
        },
    );
    fx.view = Ok(next);
    a.poll(&mut fx);
    assert_eq!(owned(&mut fx), secure, "nothing of the new policy was left");
    assert_eq!(
        fx.policies().len(),
        secure.len() + 1,
        "the foreign policy stays"
    );

    // Out-of-band changes (a dynamic filter) make the next apply dump the kernel.
    a.spd_exact = true;
    a.add_dynamic_filter(
        &mut fx,
        &DynamicFilter {
            local: "192.0.2.11".parse().expect("ip"),
            peer: "192.0.2.77".parse().expect("ip"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
            reqid: 0x3001,
            ah: false,
        },
    )
    .ok();
    assert!(!a.spd_exact);
}
