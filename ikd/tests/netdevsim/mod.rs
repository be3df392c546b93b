//! Two netdevsim ports linked across the namespaces of lab hosts h1 and h2 (Rust-enabled
//! lab kernel, Linux 6.9+ `link_device`), and netdevsim's ipsec debugfs view. Shared by
//! `ikd/tests/lab_ikd.rs` (`mod netdevsim;`) and `policyd/tests/lab_policyd.rs` (by
//! `#[path]`); both include `pfkey/tests/support` as the crate's `support` module.
//!
//! Debian's stock 6.1 lab kernel has no netdevsim: these helpers assert and the tests using
//! them run in `tests/run`'s Rust-kernel offload stage only.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ip_in, ping, run_in, Hosts, IP};

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("timed out waiting for {what}");
    false
}

/// Two netdevsim devices created on the netdevsim bus, removed on drop.
pub struct NetdevsimPair {
    /// The netdevsim device ids (`/sys/bus/netdevsim/devices/netdevsim<id>`).
    pub ids: [u32; 2],
}

impl NetdevsimPair {
    pub fn create(ids: [u32; 2]) -> NetdevsimPair {
        let loaded = std::path::Path::new("/sys/bus/netdevsim").exists()
            || Command::new("chroot")
                .args(["/proc/1/root", "/sbin/modprobe", "netdevsim"])
                .status()
                .is_ok_and(|s| s.success());
        // Debian's 6.1 kernel has no netdevsim: tests/run runs this test on the
        // Rust-enabled 6.12 lab kernel only.
        assert!(loaded, "this kernel has no netdevsim");
        for id in ids {
            let _ = fs::write("/sys/bus/netdevsim/del_device", id.to_string());
            fs::write("/sys/bus/netdevsim/new_device", format!("{id} 1"))
                .unwrap_or_else(|e| panic!("create netdevsim{id}: {e}"));
        }
        NetdevsimPair { ids }
    }

    /// The netdev of device `i` (0 or 1), as named in the root namespace.
    pub fn netdev(&self, i: usize) -> String {
        let dir = format!("/sys/bus/netdevsim/devices/netdevsim{}/net", self.ids[i]);
        let found = wait_for("the netdevsim netdev", Duration::from_secs(5), || {
            fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
        });
        assert!(found, "{dir}");
        fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for NetdevsimPair {
    fn drop(&mut self) {
        for id in self.ids {
            let _ = fs::write("/sys/bus/netdevsim/del_device", id.to_string());
        }
    }
}

fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = run_in(ns, "cat", &[format!("/sys/class/net/{dev}/ifindex")]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Hosts h1 and h2 joined by two linked netdevsim ports (`nsim0`, 203.0.113.1 and .2):
/// what one transmits the other receives, across the namespaces
/// (`/sys/bus/netdevsim/link_device`, Linux 6.9+).
pub fn netdevsim_hosts(ids: [u32; 2]) -> (NetdevsimPair, Hosts, [IpAddr; 2]) {
    let pair = NetdevsimPair::create(ids);
    let hosts = Hosts::create(2);
    let (ns1, ns2) = (hosts.ns(1), hosts.ns(2));
    let addrs: [IpAddr; 2] = [
        "203.0.113.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    ];
    for (i, ns) in [&ns1, &ns2].into_iter().enumerate() {
        let dev = pair.netdev(i);
        let moved = Command::new(IP)
            .args(["link", "set", &dev, "netns", ns, "name", "nsim0"])
            .status()
            .unwrap();
        assert!(moved.success(), "move {dev} into {ns}");
        ip_in(ns, &["link", "set", "nsim0", "up"]);
        ip_in(
            ns,
            &["addr", "add", &format!("{}/24", addrs[i]), "dev", "nsim0"],
        );
    }
    // Link the two ports: "netnsfd:ifindex netnsfd:ifindex" with descriptors of this
    // process.
    {
        use std::os::fd::AsRawFd;
        let f1 = fs::File::open(format!("/run/netns/{ns1}")).unwrap();
        let f2 = fs::File::open(format!("/run/netns/{ns2}")).unwrap();
        let spec = format!(
            "{}:{} {}:{}",
            f1.as_raw_fd(),
            ifindex(&ns1, "nsim0"),
            f2.as_raw_fd(),
            ifindex(&ns2, "nsim0")
        );
        fs::write("/sys/bus/netdevsim/link_device", &spec)
            .unwrap_or_else(|e| panic!("link_device {spec}: {e}"));
    }
    // The link carries traffic (no policy yet).
    assert!(
        wait_for(
            "a clear ping over the netdevsim link",
            Duration::from_secs(10),
            || ping(&ns1, addrs[1], 1)
        ),
        "the linked netdevsim ports carry nothing"
    );
    (pair, hosts, addrs)
}

/// netdevsim's ipsec debugfs file of device `id` ("SA count=N tx=N" and the SAs), `None`
/// when debugfs is not there or the file reads empty.
pub fn netdevsim_ipsec(id: u32) -> Option<String> {
    if !std::path::Path::new("/sys/kernel/debug/netdevsim").exists() {
        let _ = Command::new("mount")
            .args(["-t", "debugfs", "none", "/sys/kernel/debug"])
            .stderr(Stdio::null())
            .status();
    }
    let path = format!("/sys/kernel/debug/netdevsim/netdevsim{id}/ports/0/ipsec");
    match fs::read_to_string(&path) {
        Ok(text) if !text.is_empty() => Some(text),
        other => {
            eprintln!("{path}: {other:?} (netdevsim's debugfs not checked)");
            None
        }
    }
}

/// The `tx=N` of netdevsim's ipsec debugfs text.
pub fn netdevsim_tx(text: &str) -> u64 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("tx="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
