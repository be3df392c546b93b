//! Support for lab tests: integration tests that need a real IPsec kernel.
//!
//! Lab tests live in `pfkey/tests/lab_*.rs`, are `#[ignore = "kernel lab: tests/lab/run-tests"]`
//! on the host, and run inside the qemu kernel lab through `tests/lab/run-tests`, which boots
//! Debian's stock kernel once and runs each `lab_*` binary with `--ignored --test-threads=1`.
//!
//! Test hosts are network namespaces `h1`..`hN` made by `tests/lab/hosts` (see there for the
//! addressing plan). Everything here is std + libc, no other dependencies.
#![allow(unsafe_code, dead_code, unreachable_pub)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// iproute2 by path (busybox's `ip` applet may shadow it in some shells).
pub const IP: &str = "/sbin/ip";

/// Panics unless running inside the kernel lab (`IPSEC_LAB=1`, set by `tests/lab/run`).
pub fn require_lab() {
    if std::env::var("IPSEC_LAB").as_deref() != Ok("1") {
        panic!(
            "run inside the kernel lab: tests/lab/run-tests (all lab_* tests), or \
             tests/lab/run <test binary> --ignored --test-threads=1 (IPSEC_LAB=1 is not set)"
        );
    }
}

/// The repository root: the nearest ancestor of the including crate that holds
/// `tests/lab/hosts` (crates sit one or two levels below it).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/lab/hosts").is_file())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no tests/lab/hosts above {}", manifest.display()))
}

fn hosts_script() -> PathBuf {
    repo_root().join("tests/lab/hosts")
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Test hosts `h1`..`hN` (network namespaces on bridge `labbr0`), destroyed on drop.
#[derive(Debug)]
pub struct Hosts {
    n: usize,
}

impl Hosts {
    /// Makes hosts `h1`..`hN` with `tests/lab/hosts create N` (replacing existing ones).
    pub fn create(n: usize) -> Hosts {
        require_lab();
        run_checked(
            Command::new(hosts_script())
                .arg("create")
                .arg(n.to_string()),
        );
        Hosts { n }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Namespace name of host `i` (1-based): `h<i>`.
    pub fn ns(&self, i: usize) -> String {
        self.check(i);
        format!("h{i}")
    }

    /// Outer address of host `i`: 192.0.2.(10+i) on its `eth0`.
    pub fn addr(&self, i: usize) -> IpAddr {
        self.check(i);
        addr(i)
    }

    /// Outer IPv6 address of host `i`: 2001:db8::(10+i) on its `eth0`.
    pub fn addr6(&self, i: usize) -> IpAddr {
        self.check(i);
        addr6(i)
    }

    /// Inner address of host `i`: 198.51.100.i on its `dummy0`, routed via its outer address.
    pub fn inner(&self, i: usize) -> IpAddr {
        self.check(i);
        inner(i)
    }

    /// Inner IPv6 address of host `i`: 2001:db8:100::i on its `dummy0`.
    pub fn inner6(&self, i: usize) -> IpAddr {
        self.check(i);
        inner6(i)
    }

    fn check(&self, i: usize) {
        assert!(
            (1..=self.n).contains(&i),
            "host {i} out of range 1..={}",
            self.n
        );
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new(hosts_script()).arg("destroy").status();
    }
}

/// Outer address of host `i`: 192.0.2.(10+i).
pub fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        192,
        0,
        2,
        u8::try_from(10 + i).expect("host index"),
    ))
}

/// Outer IPv6 address of host `i`: 2001:db8::(10+i), digits as written (h1 = 2001:db8::11).
pub fn addr6(i: usize) -> IpAddr {
    format!("2001:db8::{}", 10 + i)
        .parse::<Ipv6Addr>()
        .expect("host index")
        .into()
}

/// Inner address of host `i`: 198.51.100.i.
pub fn inner(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        198,
        51,
        100,
        u8::try_from(i).expect("host index"),
    ))
}

/// Inner IPv6 address of host `i`: 2001:db8:100::i.
pub fn inner6(i: usize) -> IpAddr {
    format!("2001:db8:100::{i}")
        .parse::<Ipv6Addr>()
        .expect("host index")
        .into()
}

/// Runs `f` on a fresh thread that has joined network namespace `ns` (`/run/netns/<ns>`),
/// so sockets it creates belong to that namespace. Panics in `f` propagate.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            // SAFETY: setns(2) on a valid, open namespace fd (kept alive by `file` for the
            // duration of the call) with CLONE_NEWNET changes only this thread's network
            // namespace; the thread is fresh and ends with `f`, so no other code observes it.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                panic!("setns({path}): {}", std::io::Error::last_os_error());
            }
            drop(file);
            f()
        });
        handle
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    })
}

/// Runs `cmd args` in namespace `ns` (`ip netns exec`) and returns its output (not checked).
pub fn run_in<S: AsRef<std::ffi::OsStr>>(ns: &str, cmd: &str, args: &[S]) -> Output {
    Command::new(IP)
        .args(["netns", "exec", ns, cmd])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {IP} netns exec {ns} {cmd}: {e}"))
}

/// Like [`run_in`] but panics with the command's output unless it succeeds.
pub fn run_in_ok<S: AsRef<std::ffi::OsStr>>(ns: &str, cmd: &str, args: &[S]) -> Output {
    let out = run_in(ns, cmd, args);
    if !out.status.success() {
        let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        panic!(
            "in {ns}: {cmd} {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `/sbin/ip ARGS` in namespace `ns` (`ip -n ns ...`), panicking on failure.
pub fn ip_in(ns: &str, args: &[&str]) -> Output {
    run_checked(Command::new(IP).arg("-n").arg(ns).args(args))
}

/// Pings `to` from namespace `from_ns` `count` times (0.2 s apart, 2 s wait per reply);
/// true when ping exited 0, that is when at least one reply came back.
pub fn ping(from_ns: &str, to: IpAddr, count: u32) -> bool {
    let count = count.max(1).to_string();
    let to = to.to_string();
    run_in(
        from_ns,
        "ping",
        &["-n", "-q", "-c", &count, "-i", "0.2", "-W", "2", &to],
    )
    .status
    .success()
}

/// Packet counts of a [`Capture`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// ESP packets, including ESP in UDP (NAT-T).
    pub esp: usize,
    /// AH packets.
    pub ah: usize,
    /// Cleartext ICMP/ICMPv6 echo requests and replies (pings outside any ESP/AH). Neighbour
    /// discovery and other ICMP control traffic are not counted.
    pub icmp_clear: usize,
    /// UDP packets from or to port 4500 (NAT-T ESP and keepalives).
    pub udp_4500: usize,
    /// All packets.
    pub total: usize,
}

impl CaptureSummary {
    /// Classifies `tcpdump -r FILE -nn` output, one packet a line.
    pub fn from_tcpdump(text: &str) -> CaptureSummary {
        let mut s = CaptureSummary::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            s.total += 1;
            let esp = line.contains("ESP(spi=");
            let ah = line.contains("AH(spi=");
            if esp {
                s.esp += 1;
            }
            if ah {
                s.ah += 1;
            }
            if is_port_4500(line) {
                s.udp_4500 += 1;
            }
            let echo = line.contains("ICMP echo request")
                || line.contains("ICMP echo reply")
                || line.contains("ICMP6, echo request")
                || line.contains("ICMP6, echo reply");
            if echo && !esp && !ah {
                s.icmp_clear += 1;
            }
        }
        s
    }
}

/// `IP a.b.c.d.4500 > e.f.g.h.P: ...` or the reverse (`-nn` prints ports numerically), not TCP.
fn is_port_4500(line: &str) -> bool {
    let Some((head, _)) = line.split_once(": ") else {
        return false;
    };
    head.split_whitespace()
        .filter(|w| *w != ">")
        .skip(1)
        .any(|w| w.rsplit_once('.').is_some_and(|(_, p)| p == "4500"))
        && !line.contains("Flags [")
}

static CAPTURE_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running `tcpdump -w` on one interface of one namespace.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Capture {
    /// Starts tcpdump on `iface` in namespace `ns` and returns once it is listening.
    pub fn start(ns: &str, iface: &str) -> Capture {
        let path = std::env::temp_dir().join(format!(
            "lab-capture-{}-{}.pcap",
            std::process::id(),
            CAPTURE_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(IP)
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-i",
                iface,
                "-nn",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
            ])
            .arg("-w")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tcpdump in {ns}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut capture = Capture {
            child: Some(child),
            path,
            stderr: Some(reader),
        };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            capture.kill();
            let text = capture
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            panic!("tcpdump on {ns}/{iface} did not start listening:\n{text}");
        }
        capture
    }

    /// Path of the pcap file (removed when the capture is stopped or dropped).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on the PID of our own child process, which has not been
                // waited for yet (so the PID cannot have been reused); SIGINT makes tcpdump
                // flush and close the pcap file.
                unsafe {
                    libc::kill(pid, libc::SIGINT);
                }
            }
            let _ = child.wait();
        }
    }

    /// Stops tcpdump and counts what it captured.
    pub fn stop(mut self) -> CaptureSummary {
        // Let packets in flight (replies to the last ping) reach the capture.
        std::thread::sleep(Duration::from_millis(300));
        self.kill();
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
        let out = run_checked(Command::new("tcpdump").arg("-r").arg(&self.path).arg("-nn"));
        CaptureSummary::from_tcpdump(&String::from_utf8_lossy(&out.stdout))
    }

    /// Like [`Capture::stop`], also returning the `tcpdump -nn` text.
    pub fn stop_with_text(mut self) -> (CaptureSummary, String) {
        std::thread::sleep(Duration::from_millis(300));
        self.kill();
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
        let out = run_checked(Command::new("tcpdump").arg("-r").arg(&self.path).arg("-nn"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (CaptureSummary::from_tcpdump(&text), text)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_tcpdump_lines() {
        let text = "\
08:00:00.000000 IP 192.0.2.11 > 192.0.2.12: ESP(spi=0x00000100,seq=0x1), length 120
08:00:00.000001 IP 192.0.2.12 > 192.0.2.11: AH(spi=0x00000200,sumlen=12,seq=0x1): ICMP echo reply, id 1, seq 1, length 64
08:00:00.000002 IP 192.0.2.11 > 192.0.2.12: ICMP echo request, id 1, seq 1, length 64
08:00:00.000003 IP6 2001:db8::11 > 2001:db8::12: ICMP6, echo request, id 1, seq 1, length 64
08:00:00.000004 IP6 fe80::1 > ff02::1:ff00:12: ICMP6, neighbor solicitation, who has 2001:db8::12, length 32
08:00:00.000005 IP 192.0.2.11.4500 > 192.0.2.12.4500: UDP-encap: ESP(spi=0x00000300,seq=0x1), length 120
08:00:00.000006 IP 192.0.2.11.4500 > 192.0.2.12.4500: isakmp-nat-keep-alive
08:00:00.000007 ARP, Request who-has 192.0.2.12 tell 192.0.2.11, length 28
";
        let s = CaptureSummary::from_tcpdump(text);
        assert_eq!(s.total, 8);
        assert_eq!(s.esp, 2);
        assert_eq!(s.ah, 1);
        assert_eq!(s.icmp_clear, 2);
        assert_eq!(s.udp_4500, 2);
    }
}
