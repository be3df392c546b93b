//! Lab tests of the policy agent: the built `policyd` runs inside namespace h1 with a
//! temporary store prepared through the `ipsec-policy` API. Run with
//! `tests/lab/run-tests -p policyd`.

mod support;

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
    let ikd = Path::new(POLICYD).with_file_name("ikd");
    assert!(
        ikd.is_file(),
        "{} missing: build it first (cargo build -p ikd)",
        ikd.display()
    );
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
    for ns in [&h1, &h2] {
        assert!(
            wait_until(Duration::from_secs(30), || xfrm_policies(ns)
                .contains("proto icmp")),
            "{ns}: policy not applied\n{}",
            logs()
        );
    }

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
    let ikd = Path::new(POLICYD).with_file_name("ikd");
    assert!(
        ikd.is_file(),
        "{} missing: build it first (cargo build -p ikd)",
        ikd.display()
    );
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
    let ikd = Path::new(POLICYD).with_file_name("ikd");
    let ipsecadm = Path::new(POLICYD).with_file_name("ipsecadm");
    assert!(
        ikd.is_file(),
        "{} missing: build it first (cargo build -p ikd)",
        ikd.display()
    );
    let hosts = Hosts::create(3);
    let (h1, h3) = (hosts.ns(1), hosts.ns(3));
    let (a1, a3) = (hosts.addr(1), hosts.addr(3));
    // h1: Andy's lab policy (no filter for h3) with its default response rule active.
    let s1 = Setup::new();
    s1.boot_mode(BootMode::Permit, vec![]);
    s1.assign_local(LAB_ANDY);
    s1.store()
        .update(Location::Local, |c| {
            for p in &mut c.set.policies {
                if p.name == LAB_ANDY {
                    p.default_response.active = true;
                }
            }
            Ok(())
        })
        .expect("update");
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
