//! Lab tests of the policy agent: the built `policyd` runs inside namespace h1 with a
//! temporary store prepared through the `ipsec-policy` API. Run with
//! `tests/lab/run-tests -p policyd`.

mod support;
// Two linked netdevsim ports between h1 and h2 (shared with ikd's lab tests).
#[path = "../../ikd/tests/netdevsim/mod.rs"]
mod netdevsim;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipsec_policy::defaults::{default_store, LAB_ANDY, SECURE_SERVER};
use ipsec_policy::settings::{BootExemption, BootMode, ExemptionDirection};
use ipsec_policy::{
    Action, ConnectionType, Endpoint, Filter, FilterList, Location, PolicySet, Protocol, Rule,
    Store,
};
use support::agent::{wait_until, xfrm_policies, Agent, POLICYD};
use support::{ip_in, ping, run_in, run_in_ok, Hosts, IP};
use uuid::Uuid;

fn nft_table(ns: &str) -> Option<String> {
    let out = run_in(ns, "nft", &["list", "table", "inet", "ipsec_boot"]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A policy "Block telnet to me" (any → my address, TCP 23, mirrored, block) added to
/// `set`; returns its GUID.
fn add_block_telnet_to_me(set: &mut PolicySet, n: u128) -> Uuid {
    let block = set
        .filter_actions
        .iter()
        .find(|a| matches!(a.action, Action::Block))
        .map(|a| a.id)
        .expect("block action");
    let id = |k: u128| Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_0000 | (n << 8) | k);
    let list = FilterList {
        id: id(1),
        version: 1,
        name: format!("Telnet to me {n}"),
        description: String::new(),
        filters: vec![Filter {
            id: id(2),
            version: 1,
            description: "telnet to me".into(),
            source: Endpoint::Any,
            destination: Endpoint::MyAddress,
            mirrored: true,
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: 23,
        }],
    };
    let mut p = set.policy_by_name(SECURE_SERVER).expect("policy").clone();
    p.id = id(3);
    p.isakmp.id = id(4);
    p.default_response.id = id(5);
    p.default_response.active = false;
    p.name = format!("Block telnet to me {n}");
    p.rules = vec![Rule {
        id: id(6),
        version: 1,
        name: "block telnet".into(),
        description: String::new(),
        active: true,
        filter_list: list.id,
        filter_action: block,
        auth_methods: vec![],
        tunnel_endpoint: None,
        connection_type: ConnectionType::All,
    }];
    set.filter_lists.push(list);
    set.policies.push(p);
    id(3)
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn store_dir(&self) -> PathBuf {
        support::agent::store_dir(self.dir.path())
    }
    fn store(&self) -> Store {
        Store::open(&self.store_dir()).expect("store")
    }
    fn boot_mode(&self, mode: BootMode, exemptions: Vec<BootExemption>) {
        let s = self.store();
        let mut settings = s.settings().expect("settings");
        settings.boot_mode = mode;
        settings.boot_exemptions = exemptions;
        s.set_settings(&settings).expect("set settings");
    }
    fn assign_local(&self, name: &str) {
        let s = self.store();
        let id = s
            .location(Location::Local)
            .expect("local")
            .set
            .policy_by_name(name)
            .map(|p| p.id);
        s.assign(Location::Local, id).expect("assign");
    }
    fn assign_block_telnet(&self, location: Location) {
        let s = self.store();
        let mut id = None;
        s.update(location, |c| {
            if c.set.policies.is_empty() {
                c.set = default_store();
            }
            let new = add_block_telnet_to_me(&mut c.set, 1);
            c.assigned = Some(new);
            id = Some(new);
            Ok(())
        })
        .expect("update");
    }
    fn fake_ikd(&self) -> PathBuf {
        let path = self.dir.path().join("fake-ikd");
        let pids = self.dir.path().join("ikd.pids");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$$ $*\" >> {}\nexec sleep 600\n",
                pids.display()
            ),
        )
        .expect("write fake ikd");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
    fn ikd_pids(&self) -> Vec<(u32, String)> {
        std::fs::read_to_string(self.dir.path().join("ikd.pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (pid, args) = l.split_once(' ')?;
                Some((pid.parse().ok()?, args.to_owned()))
            })
            .collect()
    }
    /// The control socket directory (the guest's /tmp is a tmpfs: sockets work there).
    fn control_dir(&self) -> PathBuf {
        self.dir.path().join("ctl")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("policyd.pid")
    }
    fn log(&self) -> String {
        support::agent::log(self.dir.path())
    }

    fn boot(&self, ns: &str) {
        let out = Command::new(IP)
            .args(["netns", "exec", ns, POLICYD, "--boot", "--store"])
            .arg(self.store_dir())
            .output()
            .expect("run policyd --boot");
        assert!(
            out.status.success(),
            "policyd --boot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the agent in `ns`.
    fn agent(&self, ns: &str, ikd: Option<&Path>) -> Agent {
        let mut args: Vec<OsString> = vec!["--control-dir".into(), self.control_dir().into()];
        args.extend(["--poll-interval".into(), "1".into()]);
        match ikd {
            Some(p) => args.extend(["--ikd".into(), p.into()]),
            None => args.push("--no-ikd".into()),
        }
        Agent::start(ns, self.dir.path(), &args, Duration::from_secs(15))
    }
}

/// Sends three UDP datagrams from `from` (source port `sport`) to `to:dport` and reports
/// whether a listener in `listen_ns` received one.
///
/// No fixed sleeps: the listener says `ready` once its socket is bound, and the datagrams
/// are sent only then (a panic, not a false "dropped", when it never gets there), so a
/// datagram the firewall passes waits in the bound socket's buffer however slowly the
/// listener is scheduled. The listener ends at the first datagram; after the sender has
/// sent all three it gets a generous grace period to read one, and only when none arrives
/// within it does this report `false`.
fn udp_passes(listen_ns: &str, from: &str, sport: u16, to: &str, dport: u16) -> bool {
    use std::io::BufRead;
    let mut listener = Command::new(IP)
        .args(["netns", "exec", listen_ns, "python3", "-c"])
        .arg(format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',{dport}))\nprint('ready',flush=True)\n\
             s.settimeout(120)\nprint(s.recv(100).decode(),flush=True)\n"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("listener");
    let stdout = listener.stdout.take().expect("listener stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    if !matches!(&ready, Ok(Ok(l)) if l == "ready") {
        let _ = listener.kill();
        let _ = listener.wait();
        panic!("the UDP listener on port {dport} in {listen_ns} never became ready: {ready:?}");
    }
    run_in_ok(
        from,
        "python3",
        &[
            "-c",
            &format!(
                "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
                 s.bind(('0.0.0.0',{sport}))\n\
                 for _ in range(3):\n  s.sendto(b'x',('{to}',{dport}))\n  time.sleep(0.1)\n"
            ),
        ],
    );
    let received = matches!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(Ok(l)) if l.contains('x')
    );
    let _ = listener.kill();
    let _ = listener.wait();
    received
}

/// The ikd built next to policyd (tests that run both need `cargo build -p ikd` first).
fn built_ikd() -> std::path::PathBuf {
    let ikd = Path::new(POLICYD).with_file_name("ikd");
    assert!(
        ikd.is_file(),
        "{} missing: build it first (cargo build -p ikd)",
        ikd.display()
    );
    ikd
}

/// Waits up to 30 s for the negotiated ICMP policy in each of `namespaces` (the agents'
/// first apply); panics with `logs()` otherwise.
fn icmp_policies_applied(namespaces: &[&String], logs: &dyn Fn() -> String) {
    for ns in namespaces {
        assert!(
            wait_until(Duration::from_secs(30), || xfrm_policies(ns)
                .contains("proto icmp")),
            "{ns}: policy not applied\n{}",
            logs()
        );
    }
}

/// A host's setup with Andy's lab policy assigned (boot mode permit) and its default
/// response rule active: the responder of the default-response tests.
fn andy_with_default_response() -> Setup {
    let s = Setup::new();
    s.boot_mode(BootMode::Permit, vec![]);
    s.assign_local(LAB_ANDY);
    s.store()
        .update(Location::Local, |c| {
            for p in &mut c.set.policies {
                if p.name == LAB_ANDY {
                    p.default_response.active = true;
                }
            }
            Ok(())
        })
        .expect("update");
    s
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn boot_mode_block_drops_everything_but_exemptions_and_dhcp() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(
        BootMode::Block,
        vec![BootExemption {
            protocol: Protocol::UDP,
            source_port: 0,
            destination_port: 5000,
            direction: ExemptionDirection::Inbound,
        }],
    );
    assert!(ping(&hosts.ns(2), hosts.addr(1), 1), "reachable before");
    s.boot(&hosts.ns(1));
    let table = nft_table(&hosts.ns(1)).expect("boot table");
    assert!(table.contains("policy drop"), "{table}");
    let h1 = hosts.addr(1).to_string();
    assert!(
        !ping(&hosts.ns(2), hosts.addr(1), 2),
        "ping from the peer dropped"
    );
    assert!(
        !ping(&hosts.ns(1), hosts.addr(2), 2),
        "ping to the peer dropped"
    );
    assert!(
        udp_passes(&hosts.ns(1), &hosts.ns(2), 4000, &h1, 5000),
        "exempt UDP 5000 passes"
    );
    assert!(
        udp_passes(&hosts.ns(1), &hosts.ns(2), 67, &h1, 68),
        "DHCP reply passes"
    );
    assert!(
        !udp_passes(&hosts.ns(1), &hosts.ns(2), 4000, &h1, 5001),
        "other UDP dropped"
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn boot_mode_stateful_passes_only_replies() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(BootMode::Stateful, vec![]);
    s.boot(&hosts.ns(1));
    assert!(nft_table(&hosts.ns(1)).is_some());
    assert!(
        ping(&hosts.ns(1), hosts.addr(2), 2),
        "h1 pings h2: replies pass"
    );
    assert!(!ping(&hosts.ns(2), hosts.addr(1), 2), "h2 cannot ping h1");
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn persistent_policy_first_then_assigned_then_the_boot_table_goes() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(BootMode::Stateful, vec![]);
    s.assign_block_telnet(Location::Persistent);
    s.assign_local(LAB_ANDY);
    let mut agent = s.agent(&hosts.ns(1), None);
    let ns = hosts.ns(1);
    // Before the agent has booted there is no table either: wait for the applied policy
    // and the table's removal together, not for the table's absence alone.
    assert!(
        wait_until(Duration::from_secs(20), || {
            xfrm_policies(&ns).contains("192.0.2.12") && nft_table(&ns).is_none()
        }),
        "policies applied and boot table removed:\n{}\n{}",
        xfrm_policies(&ns),
        s.log()
    );
    let spd = xfrm_policies(&ns);
    assert!(spd.contains("action block"), "{spd}");
    assert!(spd.contains("dport 23"), "{spd}");
    assert!(
        spd.contains("192.0.2.12"),
        "the lab policy names Betty: {spd}"
    );
    let log = s.log();
    let p = log.find("ApplyPersistent(true)").expect("persistent step");
    let a = log
        .find("ApplyAssigned(LocalDownloaded)")
        .expect("assigned step");
    assert!(p < a, "{log}");
    assert!(agent.stop());
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn block_mode_when_the_persistent_policy_cannot_be_applied() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(BootMode::Stateful, vec![]);
    s.assign_block_telnet(Location::Persistent);
    let ns = hosts.ns(1);
    // Another key manager holds the selector of the persistent policy's inbound entry.
    ip_in(
        &ns,
        &[
            "xfrm",
            "policy",
            "add",
            "src",
            "0.0.0.0/0",
            "dst",
            "192.0.2.11/32",
            "proto",
            "tcp",
            "dport",
            "23",
            "dir",
            "in",
            "priority",
            "5",
            "action",
            "allow",
        ],
    );
    let mut agent = s.agent(&ns, None);
    assert!(
        wait_until(Duration::from_secs(20), || s
            .log()
            .contains("operational mode block")),
        "{}",
        s.log()
    );
    let table = nft_table(&ns).expect("block table");
    assert!(table.contains("policy drop"), "{table}");
    assert!(!ping(&ns, hosts.addr(2), 1), "outbound blocked too");
    assert!(
        !xfrm_policies(&ns).contains("action block"),
        "nothing of the policy applied"
    );
    assert!(agent.stop());
    assert!(
        nft_table(&ns).is_none(),
        "stopped by the administrator: permit"
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn my_address_filter_follows_a_new_address() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(BootMode::Permit, vec![]);
    s.assign_block_telnet(Location::Local);
    let ns = hosts.ns(1);
    let _agent = s.agent(&ns, None);
    assert!(
        wait_until(Duration::from_secs(20), || xfrm_policies(&ns)
            .contains("192.0.2.11/32")),
        "{}",
        s.log()
    );
    assert!(!xfrm_policies(&ns).contains("192.0.2.51"));
    ip_in(&ns, &["addr", "add", "192.0.2.51/24", "dev", "eth0"]);
    assert!(
        wait_until(Duration::from_secs(15), || xfrm_policies(&ns)
            .contains("192.0.2.51/32")),
        "{}\n{}",
        xfrm_policies(&ns),
        s.log()
    );
    ip_in(&ns, &["addr", "del", "192.0.2.51/24", "dev", "eth0"]);
    assert!(
        wait_until(Duration::from_secs(15), || !xfrm_policies(&ns)
            .contains("192.0.2.51")),
        "{}",
        xfrm_policies(&ns)
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn a_killed_ikd_is_restarted() {
    let hosts = Hosts::create(1);
    let s = Setup::new();
    s.boot_mode(BootMode::Permit, vec![]);
    let ikd = s.fake_ikd();
    let mut agent = s.agent(&hosts.ns(1), Some(&ikd));
    assert!(wait_until(Duration::from_secs(15), || !s
        .ikd_pids()
        .is_empty()));
    let (first, args) = s.ikd_pids()[0].clone();
    let words: Vec<&str> = args.split(' ').collect();
    assert_eq!(words.first(), Some(&"--config"), "{args}");
    let conf = PathBuf::from(words.get(1).copied().unwrap_or_default());
    // ikd gets its control socket in the agent's control directory.
    let control = s.control_dir().join("ikd.sock");
    assert!(
        args.contains(&format!("--control {}", control.display())),
        "{args}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&conf)
        .expect("ikd.conf")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The fake ikd is our test's grandchild; kill it by PID.
    assert!(Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .expect("kill")
        .success());
    assert!(
        wait_until(Duration::from_secs(15), || s.ikd_pids().len() >= 2),
        "{}",
        s.log()
    );
    let second = s.ikd_pids()[1].0;
    assert_ne!(first, second);
    assert!(Path::new(&format!("/proc/{second}")).exists());
    assert!(agent.stop());
    assert!(
        wait_until(Duration::from_secs(20), || !Path::new(&format!(
            "/proc/{second}"
        ))
        .exists()),
        "ikd stopped with the agent"
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn sigterm_removes_owned_policies_and_leaves_a_foreign_one() {
    let hosts = Hosts::create(2);
    let s = Setup::new();
    s.boot_mode(BootMode::Permit, vec![]);
    s.assign_local(LAB_ANDY);
    let ns = hosts.ns(1);
    ip_in(
        &ns,
        &[
            "xfrm",
            "policy",
            "add",
            "src",
            "192.0.2.11/32",
            "dst",
            "192.0.2.99/32",
            "dir",
            "out",
            "priority",
            "5",
            "action",
            "block",
        ],
    );
    let mut agent = s.agent(&ns, None);
    assert!(
        wait_until(Duration::from_secs(20), || xfrm_policies(&ns)
            .contains("dport 23")),
        "{}",
        s.log()
    );
    agent.signal("-HUP"); // a refresh changes nothing
    std::thread::sleep(Duration::from_millis(300));
    assert!(agent.stop(), "{}", s.log());
    let spd = xfrm_policies(&ns);
    assert!(spd.contains("192.0.2.99"), "foreign policy kept: {spd}");
    assert_eq!(
        spd.matches("src ").count(),
        1,
        "only the foreign policy: {spd}"
    );
    assert!(!s.pid_file().exists(), "pid file removed");
}

/// Adds to the filter list of the lab policy `policy`'s negotiating rule a mirrored filter
/// for ICMP with `peer`, so that pings are negotiated too. The rule then has two
/// single-address filters, and ikd gets two connections with a reqid each (one per filter).
fn negotiate_icmp_too(s: &Setup, policy: &str, peer: std::net::IpAddr) {
    s.store()
        .update(Location::Local, |c| {
            let p = c.set.policy_by_name(policy).expect("lab policy").clone();
            let rule = p
                .rules
                .iter()
                .find(|r| r.name.starts_with("Negotiate"))
                .expect("negotiating rule");
            let list = c
                .set
                .filter_lists
                .iter_mut()
                .find(|l| l.id == rule.filter_list)
                .expect("the rule's filter list");
            list.filters.push(Filter {
                id: Uuid::from_u128(0x1c4d_0000_0000_0000_0000_0000_0000_0002),
                version: 1,
                description: "ICMP with the peer".into(),
                source: Endpoint::MyAddress,
                destination: Endpoint::Address(peer),
                mirrored: true,
                protocol: Protocol::ICMP,
                source_port: 0,
                destination_port: 0,
            });
            list.version += 1;
            c.assigned = Some(p.id);
            Ok(())
        })
        .expect("update");
}

/// The PIDs of the processes named `ikd` whose parent is `parent`.
fn ikd_children(parent: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm.ends_with("(ikd") && ppid == Some(parent) {
            v.push(pid);
        }
    }
    v
}

/// The quick-mode SAs ikd reports on its control socket (none when it does not answer).
fn ikd_qm_spis(s: &Setup) -> Vec<String> {
    use ipsec_control::{Client, Request, Response};
    let path = s.control_dir().join(ipsec_control::IKD_SOCKET);
    let Ok(mut c) = Client::connect(&path, "lab_policyd") else {
        return Vec::new();
    };
    match c.call(&Request::ShowQuickModeSas) {
        Ok(Response::QuickModeSas { sas }) => sas
            .into_iter()
            .flat_map(|s| [s.inbound_spi, s.outbound_spi])
            .collect(),
        _ => Vec::new(),
    }
}

/// The owned, keyed SAs in `ns`'s kernel (not the kernel's larval ACQUIRE states, SPI 0):
/// (SPI as 8 hex digits, packets).
fn owned_sas(ns: &str) -> Vec<(String, u64)> {
    use pfkey::KernelInterface;
    let own = pfkey::Ownership::default();
    support::in_netns(ns, || {
        let mut k = pfkey::xfrm::XfrmKernel::open().expect("xfrm");
        k.dump_sas()
            .expect("dump SAs")
            .into_iter()
            .filter(|s| own.owns_sa(s) && s.id.spi != 0)
            .map(|s| (format!("{:08x}", s.id.spi), s.current.packets))
            .collect()
    })
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn a_killed_real_ikd_is_restarted_and_pings_resume_over_new_sas() {
    let ikd = built_ikd();
    let hosts = Hosts::create(2);
    let (h1, h2) = (hosts.ns(1), hosts.ns(2));
    let (s1, s2) = (Setup::new(), Setup::new());
    for (s, policy, peer) in [
        (&s1, LAB_ANDY, hosts.addr(2)),
        (&s2, ipsec_policy::defaults::LAB_BETTY, hosts.addr(1)),
    ] {
        s.boot_mode(BootMode::Permit, vec![]);
        s.assign_local(policy);
        negotiate_icmp_too(s, policy, peer);
    }
    let a1 = s1.agent(&h1, Some(&ikd));
    let _a2 = s2.agent(&h2, Some(&ikd));
    let logs = || format!("h1:\n{}\nh2:\n{}", s1.log(), s2.log());
    icmp_policies_applied(&[&h1, &h2], &logs);

    // Negotiated: the first pings raise the ACQUIRE.
    assert!(
        wait_until(Duration::from_secs(90), || ping(&h1, hosts.addr(2), 1)),
        "pings never crossed\n{}",
        logs()
    );
    let old: Vec<String> = owned_sas(&h1).into_iter().map(|(spi, _)| spi).collect();
    assert_eq!(old.len(), 2, "{old:?}");
    let reported = ikd_qm_spis(&s1);
    assert!(
        old.iter().all(|spi| reported.contains(spi)),
        "ikd reports {reported:?}, the kernel holds {old:?}"
    );
    let first = ikd_children(a1.pid());
    assert_eq!(first.len(), 1, "h1's ikd: {first:?}");

    // Continuous pings from h1 while its ikd is killed.
    let pinger = Command::new(IP)
        .args([
            "netns", "exec", &h1, "ping", "-n", "-O", "-i", "0.2", "-W", "1",
        ])
        .arg(hosts.addr(2).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(2));
    // The ikd is the agent's child, our grandchild: kill it by PID.
    assert!(Command::new("kill")
        .args(["-KILL", &first[0].to_string()])
        .status()
        .expect("kill")
        .success());
    let killed_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let now = ikd_children(a1.pid());
            now.len() == 1 && now[0] != first[0]
        }),
        "ikd not restarted\n{}",
        logs()
    );
    // New SAs (none of the old SPIs) carry the pings again, on both hosts.
    let renegotiated = wait_until(Duration::from_secs(90), || {
        let now = owned_sas(&h1);
        now.len() == 2
            && now.iter().all(|(spi, _)| !old.contains(spi))
            && now.iter().all(|(_, packets)| *packets > 0)
    });
    let resumed_after = killed_at.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &pinger.id().to_string()])
        .status();
    let out = pinger.wait_with_output().expect("ping output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        renegotiated,
        "no new SAs on h1: {:?} (old {old:?})\nping:\n{text}\n{}",
        owned_sas(&h1),
        logs()
    );
    let replies: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let lost = text.lines().filter(|l| l.contains("no answer yet")).count();
    let last = *replies.last().expect("no ping reply at all");
    let first_lost = text
        .lines()
        .find(|l| l.contains("no answer yet"))
        .and_then(|l| {
            l.split("icmp_seq=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        });
    eprintln!(
        "ikd killed: {} replies, {lost} lost, traffic over new SAs {:.1} s after the kill",
        replies.len(),
        resumed_after.as_secs_f64()
    );
    // Replies again after the loss: traffic resumed.
    assert!(
        first_lost.is_some_and(|f| last > f),
        "no replies after the loss\n{text}"
    );
    // h2 dropped the old SAs (INITIAL-CONTACT from the new ikd) and holds the new ones.
    let h2_ok = wait_until(Duration::from_secs(10), || {
        let now = owned_sas(&h2);
        now.len() == 2 && now.iter().all(|(spi, _)| !old.contains(spi))
    });
    assert!(
        h2_ok,
        "h2's SAs: {:?} (old {old:?})\n{}",
        owned_sas(&h2),
        logs()
    );
    assert!(
        s1.log().contains("SAs of the dead ikd removed"),
        "{}",
        s1.log()
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn a_peer_without_ipsec_gets_clear_traffic_when_the_action_allows_fall_back() {
    let ikd = built_ikd();
    let hosts = Hosts::create(2);
    let (h1, h2) = (hosts.ns(1), hosts.ns(2));
    let s = Setup::new();
    s.boot_mode(BootMode::Permit, vec![]);
    s.assign_local(LAB_ANDY);
    negotiate_icmp_too(&s, LAB_ANDY, hosts.addr(2));
    // "Allow unsecured communication with non-IPsec-aware computers".
    s.store()
        .update(Location::Local, |c| {
            for a in &mut c.set.filter_actions {
                if let Action::Negotiate(n) = &mut a.action {
                    n.fall_back_to_clear = true;
                }
            }
            Ok(())
        })
        .expect("update");
    // h2 runs no IPsec at all.
    let _a1 = s.agent(&h1, Some(&ikd));
    assert!(
        wait_until(Duration::from_secs(30), || xfrm_policies(&h1)
            .contains("reqid")),
        "policy not applied\n{}",
        s.log()
    );
    let cap = support::Capture::start(&h1, "eth0");
    let started = Instant::now();
    // The first pings raise the ACQUIRE and are held; h2 never answers IKE; after ikd's
    // fall-back delay policyd installs the soft policies and pings pass in clear.
    let passed = wait_until(Duration::from_secs(60), || ping(&h1, hosts.addr(2), 1));
    let after = started.elapsed();
    assert!(passed, "pings never passed\n{}", s.log());
    assert!(ping(&h1, hosts.addr(2), 3), "pings stopped passing");
    let (sum, text) = cap.stop_with_text();
    eprintln!(
        "fell back to clear {:.1} s after the first ping",
        after.as_secs_f64()
    );
    assert!(sum.icmp_clear >= 2, "{sum:?}\n{text}");
    assert_eq!(sum.esp, 0, "{text}");
    assert!(
        text.contains("isakmp") || text.contains(".500 "),
        "ikd tried IKE first:\n{text}"
    );
    // The soft policies: allow, for that peer only, with the idle lifetime, both ways.
    let peer = hosts.addr(2);
    let soft: Vec<pfkey::Policy> = support::in_netns(&h1, || {
        use pfkey::KernelInterface;
        let mut k = pfkey::xfrm::XfrmKernel::open().expect("xfrm");
        k.dump_policies().expect("dump policies")
    })
    .into_iter()
    .filter(|p| {
        p.action == pfkey::PolicyAction::Allow
            && p.lifetime.hard_use_seconds == Some(300)
            && (p.id.selector.destination.addr == peer || p.id.selector.source.addr == peer)
    })
    .collect();
    assert!(
        soft.iter().any(|p| p.id.direction == pfkey::Direction::Out)
            && soft.iter().any(|p| p.id.direction == pfkey::Direction::In),
        "{soft:?}\n{}",
        xfrm_policies(&h1)
    );
    let log = s.log();
    assert!(log.contains("falling back to clear"), "{log}");
    assert!(log.contains("peer does not answer IKE"), "{log}");
    assert!(owned_sas(&h1).is_empty(), "no SA with a silent peer");
    let _ = h2;
}

/// The kernel policies in `ns` that name `addr` as source or destination.
fn policies_with(ns: &str, addr: std::net::IpAddr) -> Vec<pfkey::Policy> {
    support::in_netns(ns, || {
        use pfkey::KernelInterface;
        let mut k = pfkey::xfrm::XfrmKernel::open().expect("xfrm");
        k.dump_policies().expect("dump policies")
    })
    .into_iter()
    .filter(|p| p.id.selector.source.addr == addr || p.id.selector.destination.addr == addr)
    .collect()
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn the_default_response_rule_answers_a_peer_without_a_filter_with_a_dynamic_filter() {
    let ikd = built_ikd();
    let ipsecadm = Path::new(POLICYD).with_file_name("ipsecadm");
    let hosts = Hosts::create(3);
    let (h1, h3) = (hosts.ns(1), hosts.ns(3));
    let (a1, a3) = (hosts.addr(1), hosts.addr(3));
    // h1: Andy's lab policy (no filter for h3) with its default response rule active.
    let s1 = andy_with_default_response();
    // h3: requests security for ICMP with h1 (Betty's negotiating rule with its telnet
    // filter replaced by one for ICMP with h1).
    let s3 = Setup::new();
    s3.boot_mode(BootMode::Permit, vec![]);
    let betty = ipsec_policy::defaults::LAB_BETTY;
    s3.assign_local(betty);
    negotiate_icmp_too(&s3, betty, a1);
    s3.store()
        .update(Location::Local, |c| {
            let list = c
                .set
                .policy_by_name(betty)
                .and_then(|p| p.rules.iter().find(|r| r.name.starts_with("Negotiate")))
                .map(|r| r.filter_list)
                .expect("negotiating rule");
            for l in &mut c.set.filter_lists {
                if l.id == list {
                    l.filters.retain(|f| f.protocol == Protocol::ICMP);
                }
            }
            Ok(())
        })
        .expect("update");
    let _agent1 = s1.agent(&h1, Some(&ikd));
    let mut agent3 = s3.agent(&h3, Some(&ikd));
    let logs = || format!("h1:\n{}\nh3:\n{}", s1.log(), s3.log());
    assert!(
        wait_until(Duration::from_secs(30), || xfrm_policies(&h3)
            .contains("proto icmp")
            && xfrm_policies(&h1).contains("reqid")),
        "policies not applied\n{}",
        logs()
    );
    assert!(policies_with(&h1, a3).is_empty(), "h1 has a filter for h3");

    // h3's pings raise an ACQUIRE; h1's ikd answers with the default response rule and
    // policyd installs the dynamic filter, so the replies are secured too.
    assert!(
        wait_until(Duration::from_secs(90), || ping(&h3, a1, 1)),
        "pings never crossed\n{}",
        logs()
    );
    let dynamic = policies_with(&h1, a3);
    let reqid = |p: &pfkey::Policy| match &p.action {
        pfkey::PolicyAction::Protect(t) => t.first().map(|t| t.reqid),
        _ => None,
    };
    assert_eq!(dynamic.len(), 2, "{dynamic:?}");
    assert!(dynamic.iter().all(|p| reqid(p).is_some()), "{dynamic:?}");
    assert!(dynamic
        .iter()
        .any(|p| p.id.direction == pfkey::Direction::Out
            && p.id.selector.source.addr == a1
            && p.id.selector.destination.addr == a3));
    let owned_reqids: Vec<String> = owned_sas(&h1).into_iter().map(|(spi, _)| spi).collect();
    assert_eq!(owned_reqids.len(), 2, "h1's SAs with h3: {owned_reqids:?}");
    // ipsecadm shows it among the quick-mode filters.
    let out = Command::new(IP)
        .args(["netns", "exec", &h1])
        .arg(&ipsecadm)
        .arg("--store")
        .arg(s1.store_dir())
        .args(["--json", "dynamic", "show", "qmfilters"])
        .output()
        .expect("ipsecadm");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains(&format!("{a3}/32")), "{shown}");
    // Both ways over ESP, nothing in clear.
    let cap = support::Capture::start(&h1, "eth0");
    assert!(ping(&h3, a1, 3), "pings stopped");
    let (sum, text) = cap.stop_with_text();
    assert!(sum.esp >= 6, "{sum:?}\n{text}");
    assert_eq!(sum.icmp_clear, 0, "{text}");
    assert!(
        s1.log().contains("dynamic filter installed"),
        "{}",
        s1.log()
    );

    // h3 goes away (its ikd sends deletes): the SAs and the dynamic filter go.
    assert!(agent3.stop(), "h3's agent did not stop cleanly");
    assert!(
        wait_until(Duration::from_secs(30), || policies_with(&h1, a3)
            .is_empty()),
        "dynamic filter left: {:?}\n{}",
        policies_with(&h1, a3),
        logs()
    );
    assert!(s1.log().contains("dynamic filter removed"), "{}", s1.log());
}

/// ikd's counters on its control socket in `s`'s control directory.
fn ikd_statistics(s: &Setup) -> Option<ipsec_control::IkeStatistics> {
    use ipsec_control::{Client, Request, Response};
    let path = s.control_dir().join(ipsec_control::IKD_SOCKET);
    match Client::connect(&path, "lab_policyd")
        .ok()?
        .call(&Request::ShowStatistics)
    {
        Ok(Response::Statistics { statistics }) => Some(statistics),
        _ => None,
    }
}

/// Tries TCP connections from `ns` to `to:port` for `secs` seconds (each SYN held by an
/// ACQUIRE makes the peer's ikd negotiate); reports whether one connected.
fn tcp_attempts(ns: &str, to: std::net::IpAddr, port: u16, secs: u32) -> bool {
    let out = run_in(
        ns,
        "python3",
        &[
            "-c",
            &format!(
                "import socket,time\nend=time.time()+{secs}\nok=False\n\
                 while time.time()<end and not ok:\n  try:\n    \
                 socket.create_connection(('{to}',{port}),timeout=2).close(); ok=True\n  \
                 except OSError:\n    time.sleep(0.5)\nprint('connected' if ok else 'failed')\n"
            ),
        ],
    );
    String::from_utf8_lossy(&out.stdout).contains("connected")
}

/// Issue #4 point 5: ikd asks policyd which rule answers a peer's quick mode. h1 runs
/// Andy's lab policy (blocks inbound telnet from every computer) with the default response
/// rule active; h3, which no filter of h1 names, negotiates ICMP and telnet with h1 (Betty's
/// policy with an ICMP filter added). ICMP gets the default response rule's SAs and crosses
/// as ESP; the telnet quick mode is refused by policyd ("blocked by rule"), so h1 holds no
/// SA for it and h3's ikd records the failure. Without the lookup, the default response
/// rule's catch-all accepted the telnet quick mode and installed SAs for blocked traffic.
#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn a_quick_mode_for_traffic_the_policy_blocks_is_refused_after_asking_policyd() {
    let ikd = built_ikd();
    let hosts = Hosts::create(3);
    let (h1, h3) = (hosts.ns(1), hosts.ns(3));
    let (a1, a3) = (hosts.addr(1), hosts.addr(3));
    let s1 = andy_with_default_response();
    // h3: Betty's policy (negotiate telnet to h1) plus ICMP with h1.
    let s3 = Setup::new();
    s3.boot_mode(BootMode::Permit, vec![]);
    let betty = ipsec_policy::defaults::LAB_BETTY;
    s3.assign_local(betty);
    negotiate_icmp_too(&s3, betty, a1);
    let _agent1 = s1.agent(&h1, Some(&ikd));
    let _agent3 = s3.agent(&h3, Some(&ikd));
    let logs = || format!("h1:\n{}\nh3:\n{}", s1.log(), s3.log());
    assert!(
        wait_until(Duration::from_secs(30), || {
            let p3 = xfrm_policies(&h3);
            p3.contains("proto icmp")
                && p3.contains("proto tcp")
                && xfrm_policies(&h1).contains("reqid")
        }),
        "policies not applied\n{}",
        logs()
    );
    assert!(policies_with(&h1, a3).is_empty(), "h1 has a filter for h3");

    // ICMP: the default response rule, ESP both ways.
    assert!(
        wait_until(Duration::from_secs(90), || ping(&h3, a1, 1)),
        "pings never crossed\n{}",
        logs()
    );
    let cap = support::Capture::start(&h1, "eth0");
    assert!(ping(&h3, a1, 3), "pings stopped");
    let (sum, text) = cap.stop_with_text();
    assert!(sum.esp >= 6, "{sum:?}\n{text}");
    assert_eq!(sum.icmp_clear, 0, "{text}");
    let icmp_sas = owned_sas(&h1);
    assert_eq!(icmp_sas.len(), 2, "h1's SAs with h3: {icmp_sas:?}");

    // Telnet from h3: its ikd proposes a quick mode for TCP port 23, h1's policyd says
    // the "Block telnet" rule covers it, h1's ikd refuses.
    let connected = tcp_attempts(&h3, a1, 23, 12);
    assert!(!connected, "telnet to h1 connected\n{}", logs());
    let refused = wait_until(Duration::from_secs(30), || {
        ikd_statistics(&s1).is_some_and(|s| s.policy_refusals >= 1)
            && ikd_statistics(&s3).is_some_and(|s| s.quick_modes_failed >= 1)
    });
    let (st1, st3) = (ikd_statistics(&s1), ikd_statistics(&s3));
    eprintln!("h1 ikd: {st1:?}\nh3 ikd: {st3:?}");
    let states = String::from_utf8_lossy(&ip_in(&h1, &["xfrm", "state"]).stdout).into_owned();
    assert!(
        !states.contains("proto tcp"),
        "h1 holds an SA for the blocked telnet:\n{states}\n{}",
        logs()
    );
    assert_eq!(
        owned_sas(&h1).len(),
        2,
        "h1's SAs: {:?} (ICMP pair {icmp_sas:?})\n{states}",
        owned_sas(&h1)
    );
    assert!(
        refused,
        "no refusal counted: h1 {st1:?}, h3 {st3:?}\n{}",
        logs()
    );
    let st1 = st1.expect("h1 statistics");
    assert!(st1.policy_lookups >= 2, "{st1:?}");
    assert!(st1.policy_connections >= 1, "{st1:?}");
    assert_eq!(st1.policy_unavailable, 0, "{st1:?}");
    let log1 = s1.log();
    assert!(
        log1.contains("blocked by rule") && log1.contains("Block telnet"),
        "{log1}"
    );
    // The ICMP SAs still carry pings.
    assert!(ping(&h3, a1, 2), "pings stopped after the refusal");
}

/// A child process of the test (by its PID), killed and reaped on drop.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Adds to the lab policy `policy` a last rule negotiating UDP to port 5001 (h1 → h2) with
/// `peer`, with a filter action of its own ("Lab: UDP 5001") using `methods`. On h1 the
/// filter is my address → `peer`, on h2 `peer` → my address (`peer_is_destination`).
fn add_udp_5001_rule(
    s: &Setup,
    policy: &str,
    peer: std::net::IpAddr,
    peer_is_destination: bool,
    methods: Vec<ipsec_policy::QuickModeMethod>,
) {
    let id = |k: u128| Uuid::from_u128(0x5001_0000_0000_4000_8000_0000_0000_0000 | k);
    s.store()
        .update(Location::Local, |c| {
            let (source, destination) = if peer_is_destination {
                (Endpoint::MyAddress, Endpoint::Address(peer))
            } else {
                (Endpoint::Address(peer), Endpoint::MyAddress)
            };
            c.set.filter_lists.push(FilterList {
                id: id(1),
                version: 1,
                name: "UDP 5001".into(),
                description: String::new(),
                filters: vec![Filter {
                    id: id(2),
                    version: 1,
                    description: "UDP 5001 with the peer".into(),
                    source,
                    destination,
                    mirrored: true,
                    protocol: Protocol::UDP,
                    source_port: 0,
                    destination_port: 5001,
                }],
            });
            c.set.filter_actions.push(ipsec_policy::FilterAction {
                id: id(3),
                version: 1,
                name: "Lab: UDP 5001".into(),
                description: String::new(),
                action: Action::Negotiate(ipsec_policy::Negotiation {
                    inbound_pass_through: false,
                    fall_back_to_clear: false,
                    qm_pfs: false,
                    methods,
                    offload: false,
                }),
            });
            let p = c
                .set
                .policies
                .iter_mut()
                .find(|p| p.name == policy)
                .expect("lab policy");
            let template = p
                .rules
                .iter()
                .find(|r| r.name.starts_with("Negotiate"))
                .expect("negotiating rule")
                .clone();
            p.rules.push(Rule {
                id: id(4),
                version: 1,
                name: "Negotiate UDP 5001".into(),
                filter_list: id(1),
                filter_action: id(3),
                ..template
            });
            Ok(())
        })
        .expect("update");
}

/// Replaces the methods of the "Lab: UDP 5001" filter action.
fn set_udp_5001_methods(s: &Setup, methods: Vec<ipsec_policy::QuickModeMethod>) {
    s.store()
        .update(Location::Local, |c| {
            let a = c
                .set
                .filter_actions
                .iter_mut()
                .find(|a| a.name == "Lab: UDP 5001")
                .expect("UDP 5001 action");
            a.version += 1;
            match &mut a.action {
                Action::Negotiate(n) => n.methods = methods,
                other => panic!("not negotiating: {other:?}"),
            }
            Ok(())
        })
        .expect("update");
}

/// ikd's main modes completed, from its control socket.
fn ikd_main_modes(s: &Setup) -> Option<u64> {
    use ipsec_control::{Client, Request, Response};
    let path = s.control_dir().join(ipsec_control::IKD_SOCKET);
    let mut c = Client::connect(&path, "lab_policyd").ok()?;
    match c.call(&Request::ShowStatistics) {
        Ok(Response::Statistics { statistics }) => Some(statistics.main_modes_completed),
        _ => None,
    }
}

/// The ESP cipher of an SA as `ip xfrm state` names it, with its key length in bits
/// (`cbc(aes)`, 256).
fn sa_cipher(ns: &str, spi: &str) -> Option<(String, usize)> {
    let b = xfrm_state(ns, spi);
    let line = b.lines().find(|l| l.trim_start().starts_with("enc "))?;
    let mut w = line.split_whitespace().skip(1);
    let name = w.next()?.to_owned();
    let key = w.next()?.trim_start_matches("0x");
    Some((name, key.len() * 4))
}

/// The `ip xfrm state` entry of the SA with `spi` (8 hex digits) in `ns`.
fn xfrm_state(ns: &str, spi: &str) -> String {
    let text = String::from_utf8_lossy(&ip_in(ns, &["xfrm", "state"]).stdout).into_owned();
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("src ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    let needle = format!("spi 0x{spi} ");
    blocks
        .into_iter()
        .find(|b| b.contains(&needle))
        .unwrap_or_default()
}

/// `line` without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Issue #4 point 5: a policy change reaches the running ikd over the control socket
/// (`configure`), not by a restart. ICMP between h1 and h2 runs under SAs; then a rule for
/// UDP 5001 with 3DES is added on both hosts, and later its filter action's methods change
/// to AES-256. Throughout: h1's ikd keeps its PID, the ICMP SAs keep their SPIs and carry
/// the pings, no ICMP crosses in clear, and the new rule negotiates over the existing
/// ISAKMP SA (no new main mode) with the methods of the moment, checked in the kernel.
#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn a_policy_change_reaches_ikd_live_and_keeps_untouched_sas() {
    use ipsec_policy::{Encryption, Integrity, QuickModeMethod};
    let ikd = built_ikd();
    let hosts = Hosts::create(2);
    let (h1, h2) = (hosts.ns(1), hosts.ns(2));
    let (s1, s2) = (Setup::new(), Setup::new());
    let betty_policy = ipsec_policy::defaults::LAB_BETTY;
    for (s, policy, peer) in [
        (&s1, LAB_ANDY, hosts.addr(2)),
        (&s2, betty_policy, hosts.addr(1)),
    ] {
        s.boot_mode(BootMode::Permit, vec![]);
        s.assign_local(policy);
        negotiate_icmp_too(s, policy, peer);
    }
    let a1 = s1.agent(&h1, Some(&ikd));
    let a2 = s2.agent(&h2, Some(&ikd));
    let logs = || format!("h1:\n{}\nh2:\n{}", s1.log(), s2.log());
    icmp_policies_applied(&[&h1, &h2], &logs);
    assert!(
        wait_until(Duration::from_secs(90), || ping(&h1, hosts.addr(2), 1)),
        "pings never crossed\n{}",
        logs()
    );
    let icmp: Vec<String> = owned_sas(&h1).into_iter().map(|(spi, _)| spi).collect();
    assert_eq!(icmp.len(), 2, "{icmp:?}");
    let pids = (ikd_children(a1.pid()), ikd_children(a2.pid()));
    assert_eq!((pids.0.len(), pids.1.len()), (1, 1), "{pids:?}");
    let main_modes = ikd_main_modes(&s1).expect("h1's ikd statistics");
    assert_eq!(main_modes, 1);

    // Pings and a capture on h2 for the whole change.
    let capture = support::Capture::start(&h2, "eth0");
    let pinger = Command::new(IP)
        .args([
            "netns", "exec", &h1, "ping", "-n", "-O", "-i", "0.2", "-W", "1",
        ])
        .arg(hosts.addr(2).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(1));
    let packets_before: u64 = owned_sas(&h1).iter().map(|(_, p)| *p).sum();

    // policyd has generated ikd's configuration with `what` (it then hands it to ikd).
    let generated = |s: &Setup, what: &str| {
        std::fs::read_to_string(s.dir.path().join("run").join("ikd.conf"))
            .is_ok_and(|t| t.contains(what))
    };
    let applied_live = |s: &Setup| s.log().matches("applied live").count();
    // The responder h2 first, as an administrator rolls a change out: then h1's new quick
    // modes find h2 ready. Waits for h2's ikd.conf, then (without asserting: the restart
    // path has no such line) for its live apply.
    let on_h2_first = |what: &str, change: &dyn Fn()| {
        let before = applied_live(&s2);
        change();
        assert!(
            wait_until(Duration::from_secs(30), || generated(&s2, what)),
            "h2: {what} did not reach ikd.conf\n{}",
            logs()
        );
        wait_until(Duration::from_secs(10), || applied_live(&s2) > before);
    };
    // No restart, and the ICMP SAs still there with their SPIs.
    let untouched = |stage: &str| {
        assert_eq!(
            (ikd_children(a1.pid()), ikd_children(a2.pid())),
            pids,
            "{stage}: ikd was restarted\n{}",
            logs()
        );
        let now: Vec<String> = owned_sas(&h1).into_iter().map(|(s, _)| s).collect();
        assert!(
            icmp.iter().all(|spi| now.contains(spi)),
            "{stage}: the ICMP SAs {icmp:?} are gone: {now:?}\n{}",
            logs()
        );
    };
    let new_sas = |old: &[String]| -> Vec<String> {
        owned_sas(&h1)
            .into_iter()
            .map(|(spi, _)| spi)
            .filter(|spi| !old.contains(spi))
            .collect()
    };
    // UDP to h2:5001 every 0.2 s from h1 once the trigger file exists (python starts
    // slowly in the emulated lab: started now, it is ready long before).
    let trigger = s1.dir.path().join("send-udp");
    let mut sender = KillOnDrop(
        Command::new(IP)
            .args(["netns", "exec", &h1, "python3", "-c"])
            .arg(format!(
                "import os,socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 print('ready',flush=True)\n\
                 while not os.path.exists('{}'):\n  time.sleep(0.05)\n\
                 while True:\n  s.sendto(b'y',('{}',5001))\n  time.sleep(0.2)\n",
                trigger.display(),
                hosts.addr(2)
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("UDP sender"),
    );
    {
        use std::io::BufRead;
        let out = sender.0.stdout.take().expect("sender stdout");
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        assert_eq!(line.trim(), "ready", "the UDP sender did not start");
    }

    // 1. Add the UDP 5001 rule (3DES): h2, then h1.
    let des3 = || vec![QuickModeMethod::esp(Encryption::TripleDes, Integrity::Sha1)];
    on_h2_first("5001", &|| {
        add_udp_5001_rule(&s2, betty_policy, hosts.addr(1), false, des3())
    });
    let t0 = Instant::now();
    add_udp_5001_rule(&s1, LAB_ANDY, hosts.addr(2), true, des3());
    assert!(
        wait_until(Duration::from_secs(30), || generated(&s1, "5001")),
        "h1: the new rule did not reach ikd.conf\n{}",
        logs()
    );
    let applied = t0.elapsed();
    // h1's kernel has the rule's policies now (installed before ikd.conf is generated):
    // from here on UDP 5001 raises ACQUIREs and is held, never sent in clear.
    std::fs::write(&trigger, b"").expect("trigger");
    let sending = Instant::now();
    assert!(
        wait_until(Duration::from_secs(90), || new_sas(&icmp).len() == 2),
        "no SAs for UDP 5001: {:?}\n{}",
        owned_sas(&h1),
        logs()
    );
    let added_at = (t0.elapsed(), sending.elapsed());
    untouched("rule added");
    let udp = new_sas(&icmp);
    for spi in &udp {
        assert_eq!(
            sa_cipher(&h1, spi),
            Some(("cbc(des3_ede)".to_owned(), 192)),
            "{}",
            xfrm_state(&h1, spi)
        );
    }

    // 2. Change the new rule's security methods to AES-256: h2, then h1. h1's ikd deletes
    //    the 3DES pair (and tells h2); the next datagram negotiates AES-256.
    let aes256 = || vec![QuickModeMethod::esp(Encryption::Aes256, Integrity::Sha1)];
    on_h2_first("aes256", &|| set_udp_5001_methods(&s2, aes256()));
    let t1 = Instant::now();
    set_udp_5001_methods(&s1, aes256());
    assert!(
        wait_until(Duration::from_secs(30), || generated(&s1, "aes256")),
        "h1: the changed methods did not reach ikd.conf\n{}",
        logs()
    );
    let changed_applied = t1.elapsed();
    assert!(
        wait_until(Duration::from_secs(90), || {
            let now = new_sas(&icmp);
            now.len() == 2 && now.iter().all(|s| !udp.contains(s))
        }),
        "no AES-256 SAs replacing {udp:?}: {:?}\n{}",
        owned_sas(&h1),
        logs()
    );
    let changed_at = t1.elapsed();
    untouched("methods changed");
    for spi in new_sas(&icmp) {
        assert_eq!(
            sa_cipher(&h1, &spi),
            Some(("cbc(aes)".to_owned(), 256)),
            "{}",
            xfrm_state(&h1, &spi)
        );
    }
    drop(sender);
    assert!(
        wait_until(Duration::from_secs(120), || udp_passes(
            &h2,
            &h1,
            40002,
            &hosts.addr(2).to_string(),
            5001
        )),
        "UDP 5001 does not cross over the AES-256 SAs\n{}",
        logs()
    );

    // The ICMP SAs: same SPIs, still AES-128 as negotiated, and they carried the pings.
    std::thread::sleep(Duration::from_secs(1));
    let now = owned_sas(&h1);
    for spi in &icmp {
        assert!(
            now.iter().any(|(s, _)| s == spi),
            "ICMP SA {spi} is gone: {now:?}\n{}",
            logs()
        );
    }
    let packets_after: u64 = now
        .iter()
        .filter(|(s, _)| icmp.contains(s))
        .map(|(_, p)| *p)
        .sum();
    let _ = Command::new("kill")
        .args(["-INT", &pinger.id().to_string()])
        .status();
    let out = pinger.wait_with_output().expect("ping output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (summary, dump) = capture.stop_with_text();
    let replies = text.lines().filter(|l| l.contains("bytes from")).count();
    let took_ms: Vec<String> = [&s1, &s2]
        .iter()
        .flat_map(|s| {
            s.log()
                .lines()
                .filter(|l| l.contains("applied live"))
                .filter_map(|l| {
                    let plain = strip_ansi(l);
                    let rest = plain.split("took_ms=").nth(1)?;
                    let digits: String = rest
                        .chars()
                        .skip_while(|c| !c.is_ascii_digit())
                        .take_while(char::is_ascii_digit)
                        .collect();
                    Some(digits)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let lost = text.lines().filter(|l| l.contains("no answer yet")).count();
    eprintln!(
        "live reconfiguration: rule added on h1 (h2 done first): in h1's ikd.conf {:.2} s \
         after the store change, 3DES SAs {:.2} s after it ({:.2} s after the first \
         datagram); methods changed on h1: in ikd.conf {:.2} s after, AES-256 SAs {:.2} s \
         after; pings during it all: {replies} replies, {lost} lost; \
         ICMP SA packets {packets_before} -> {packets_after}; configure round trips \
         (h1, h1, h2, h2) {took_ms:?} ms; capture {summary:?}",
        applied.as_secs_f64(),
        added_at.0.as_secs_f64(),
        added_at.1.as_secs_f64(),
        changed_applied.as_secs_f64(),
        changed_at.as_secs_f64(),
    );
    assert!(
        packets_after > packets_before,
        "the ICMP SAs carried nothing during the change"
    );
    assert_eq!(summary.icmp_clear, 0, "ICMP crossed in clear:\n{dump}");
    assert!(summary.esp > 0, "{dump}");
    let clear_udp = dump
        .lines()
        .filter(|l| l.contains(".5001:") && !l.contains("ESP("))
        .count();
    assert_eq!(clear_udp, 0, "UDP 5001 crossed in clear:\n{dump}");
    // Some loss is the loaded emulated lab (-W 1); a restart loses whole seconds.
    assert!(replies > 0 && lost * 20 <= replies, "pings:\n{text}");

    // Same ikd processes (no restart), one main mode in all (the ISAKMP SA was kept and
    // carried the new quick modes).
    assert_eq!(
        (ikd_children(a1.pid()), ikd_children(a2.pid())),
        pids,
        "ikd was restarted\n{}",
        logs()
    );
    assert_eq!(ikd_main_modes(&s1), Some(main_modes), "{}", logs());
    assert!(!s1.log().contains("restarting ikd"), "{}", s1.log());
}

// ------------------------------------------------------------- AES-GCM and offload (#5)

const IPSECADM: &str = env!("CARGO_BIN_EXE_ipsecadm");

/// `ipsecadm ARGS` (a `dynamic` command) in namespace `ns` with `s`'s control directory
/// (ikd's socket); stdout, after requiring exit 0.
fn ipsecadm(s: &Setup, ns: &str, args: &[&str]) -> String {
    let control = s.control_dir();
    let mut all = vec!["--control-dir", control.to_str().expect("UTF-8 temp path")];
    all.extend_from_slice(args);
    let out = run_in(ns, IPSECADM, &all);
    assert!(
        out.status.success(),
        "ipsecadm {args:?} in {ns}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab policy `policy` assigned, negotiating ICMP with `peer` too
/// ([`negotiate_icmp_too`]), and its filter action ("Lab: Require ESP") set by the
/// administrator's command to the quick-mode methods `qm` with `offload`.
fn gcm_policy(s: &Setup, policy: &str, peer: std::net::IpAddr, qm: &str, offload: bool) {
    s.boot_mode(BootMode::Permit, vec![]);
    s.assign_local(policy);
    negotiate_icmp_too(s, policy, peer);
    let methods = format!("qmsecmethods={qm}");
    let offload = format!("offload={}", if offload { "yes" } else { "no" });
    let out = Command::new(IPSECADM)
        .arg("--store")
        .arg(s.store_dir())
        .args([
            "static",
            "set",
            "filteraction",
            "name=Lab: Require ESP",
            &methods,
            &offload,
        ])
        .output()
        .expect("run ipsecadm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip -s xfrm state` in `ns`.
fn xfrm_states(ns: &str) -> String {
    String::from_utf8_lossy(&ip_in(ns, &["-s", "xfrm", "state"]).stdout).into_owned()
}

/// The value of the line `name : value` of `ipsecadm dynamic show stats`.
fn stat_line(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim_end() == name).then(|| v.trim().to_owned())
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A policy whose negotiating filter action asks for offload with AES-GCM
/// (`ESP[AES128GCM16,NONE]`, set with `ipsecadm static set filteraction ... offload=yes`),
/// applied by policyd on two hosts joined by linked netdevsim ports: policyd's ikd.conf
/// carries `aes128gcm16` and `offload = true`, the two ikds negotiate, and both hosts'
/// kernel SAs are offloaded to nsim0 ("crypto offload parameters: dev nsim0", AEAD
/// `rfc4106(gcm(aes))`); `ipsecadm dynamic show stats` shows offloaded SAs and the bytes
/// through them moving with traffic, and `dynamic show qmsas` the device.
///
/// As in ikd's `ikd_offload_aes_gcm_to_linked_netdevsim_ports_is_accepted`, the pings are
/// not answered: with crypto offload the sender leaves the encryption to the device,
/// netdevsim only counts and forwards, and its receive side does no crypto, so the peer's
/// software ESP input fails the ICV. Asserted, so a netdevsim that starts doing crypto
/// shows up here (kmod/README.md then needs updating). AES128GCM16 because netdevsim's
/// driver is written for 128-bit keys with a 32-bit salt. Rust-enabled lab kernel only (Debian's 6.1 has no
/// netdevsim): `tests/run` runs it in its offload stage and skips it in the stock lab run.
#[test]
#[ignore = "kernel lab with netdevsim (Rust kernel): tests/lab/run-tests"]
fn policyd_offloads_aes_gcm_policy_to_linked_netdevsim_ports() {
    let ikd = built_ikd();
    let (pair, hosts, addrs) = netdevsim::netdevsim_hosts([35, 36]);
    let (h1, h2) = (hosts.ns(1), hosts.ns(2));
    let (s1, s2) = (Setup::new(), Setup::new());
    gcm_policy(&s1, LAB_ANDY, addrs[1], "ESP[AES128GCM16,NONE]", true);
    gcm_policy(
        &s2,
        ipsec_policy::defaults::LAB_BETTY,
        addrs[0],
        "ESP[AES128GCM16,NONE]",
        true,
    );
    let _a1 = s1.agent(&h1, Some(&ikd));
    let _a2 = s2.agent(&h2, Some(&ikd));
    let logs = || format!("h1:\n{}\nh2:\n{}", s1.log(), s2.log());
    icmp_policies_applied(&[&h1, &h2], &logs);
    // A ping raises the ACQUIRE; the ikds negotiate over the netdevsim link (IKE is clear).
    let _ = ping(&h1, addrs[1], 1);
    let negotiated = wait_until(Duration::from_secs(60), || {
        owned_sas(&h1).len() == 2 && owned_sas(&h2).len() == 2
    });
    assert!(
        negotiated,
        "no SAs: h1 {:?} h2 {:?}\n{}",
        owned_sas(&h1),
        owned_sas(&h2),
        logs()
    );
    for (s, ns) in [(&s1, &h1), (&s2, &h2)] {
        // ikd records the offload once the pair is installed.
        assert!(
            wait_until(Duration::from_secs(10), || ikd_statistics(s)
                .and_then(|st| st.offloaded_sas)
                .is_some_and(|n| n >= 2)),
            "{ns}: ikd reports {:?}\n{}",
            ikd_statistics(s),
            logs()
        );
        let state = xfrm_states(ns);
        assert_eq!(
            state
                .matches("crypto offload parameters: dev nsim0")
                .count(),
            2,
            "{ns}:\n{state}"
        );
        assert_eq!(
            state.matches("rfc4106(gcm(aes))").count(),
            2,
            "{ns}:\n{state}"
        );
        let qmsas = ipsecadm(s, ns, &["dynamic", "show", "qmsas"]);
        assert!(qmsas.contains("nsim0"), "{ns}:\n{qmsas}");
    }
    // netdevsim's own view: both SAs of the pair on each device.
    for id in pair.ids {
        if let Some(text) = netdevsim::netdevsim_ipsec(id) {
            // The first line only: the rest holds the SAs' keys.
            eprintln!("netdevsim{id} ipsec: {}", text.lines().next().unwrap_or(""));
            assert!(
                text.contains("SA count=2"),
                "netdevsim{id}: {}",
                text.lines().next().unwrap_or("")
            );
        }
    }
    let before = ipsecadm(&s1, &h1, &["dynamic", "show", "stats"]);
    let offloaded = stat_line(&before, "Offloaded SAs");
    let bytes_before = stat_line(&before, "Bytes through offloaded SAs");
    assert!(offloaded.is_some_and(|n| n >= 2), "{before}");
    let answered = ping(&h1, addrs[1], 5);
    let after = ipsecadm(&s1, &h1, &["dynamic", "show", "stats"]);
    let bytes_after = stat_line(&after, "Bytes through offloaded SAs");
    eprintln!(
        "h1: offloaded SAs {offloaded:?}; bytes through offloaded SAs {bytes_before:?} -> \
         {bytes_after:?}; pings answered: {answered}"
    );
    assert!(
        bytes_after.unwrap_or(0) > bytes_before.unwrap_or(u64::MAX),
        "bytes through offloaded SAs did not move:\n{before}\n{after}"
    );
    let h2_stats = ipsecadm(&s2, &h2, &["dynamic", "show", "stats"]);
    assert!(
        stat_line(&h2_stats, "Offloaded SAs").is_some_and(|n| n >= 2),
        "{h2_stats}"
    );
    assert!(
        !answered,
        "netdevsim carried offloaded ESP end to end: update kmod/README.md and this test"
    );
}

/// AES-GCM without offload, the everyday case: the lab policies on both hosts with
/// `ESP[AES256GCM16,NONE] ESP[AES128GCM16,NONE]` (set with `ipsecadm`), applied by policyd,
/// negotiated by the two ikds over veth, and pings answered through the AEAD SAs
/// (`rfc4106(gcm(aes))`, no offload, packets counted on both hosts).
#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn an_aes_gcm_policy_negotiates_between_two_ikds_and_carries_pings() {
    let ikd = built_ikd();
    let hosts = Hosts::create(2);
    let (h1, h2) = (hosts.ns(1), hosts.ns(2));
    let (s1, s2) = (Setup::new(), Setup::new());
    let qm = "ESP[AES256GCM16,NONE] ESP[AES128GCM16,NONE]";
    gcm_policy(&s1, LAB_ANDY, hosts.addr(2), qm, false);
    gcm_policy(
        &s2,
        ipsec_policy::defaults::LAB_BETTY,
        hosts.addr(1),
        qm,
        false,
    );
    let _a1 = s1.agent(&h1, Some(&ikd));
    let _a2 = s2.agent(&h2, Some(&ikd));
    let logs = || format!("h1:\n{}\nh2:\n{}", s1.log(), s2.log());
    icmp_policies_applied(&[&h1, &h2], &logs);
    assert!(
        wait_until(Duration::from_secs(90), || ping(&h1, hosts.addr(2), 1)),
        "pings never crossed\n{}",
        logs()
    );
    assert!(ping(&h1, hosts.addr(2), 3), "pings fail over the SAs");
    for ns in [&h1, &h2] {
        let sas = owned_sas(ns);
        assert_eq!(sas.len(), 2, "{ns}: {sas:?}");
        assert!(sas.iter().all(|(_, packets)| *packets > 0), "{ns}: {sas:?}");
        let state = xfrm_states(ns);
        // The first method: AES-GCM with a 256-bit key and 32-bit salt ("(288 bits)"),
        // 128-bit ICV; no integrity algorithm and no offload.
        let aead: Vec<String> = state
            .lines()
            .filter(|l| l.trim_start().starts_with("aead rfc4106(gcm(aes))"))
            // Without the key.
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(aead, ["(288 bits) 128", "(288 bits) 128"], "{ns}");
        assert!(!state.contains("auth-trunc"), "{ns}:\n{state}");
        assert!(!state.contains("crypto offload"), "{ns}:\n{state}");
    }
    let stats = ipsecadm(&s1, &h1, &["dynamic", "show", "stats"]);
    // No offload asked: none claimed (the line is absent from an ikd without counters).
    assert_eq!(
        stat_line(&stats, "Offloaded SAs").unwrap_or(0),
        0,
        "{stats}"
    );
}
