//! Smoke tests of the kernel lab itself: test hosts, namespaces, captures, and an ESP
//! transport pair installed with the `ip` command. Run with `tests/lab/run-tests`.

mod support;

use std::net::{SocketAddr, UdpSocket};
use support::{ip_in, ping, require_lab, Capture, Hosts};

const KEY_ENC: &str = "0x0123456789abcdef0123456789abcdef";
const KEY_AUTH: &str = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn two_hosts_ping_each_other() {
    require_lab();
    let hosts = Hosts::create(2);
    assert!(ping(&hosts.ns(1), hosts.addr(2), 2), "h1 -> h2");
    assert!(ping(&hosts.ns(2), hosts.addr(1), 2), "h2 -> h1");
    assert!(ping(&hosts.ns(1), hosts.addr6(2), 2), "h1 -> h2 over IPv6");
    assert!(
        ping(&hosts.ns(2), hosts.inner(1), 2),
        "h2 -> inner address of h1"
    );
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn in_netns_sockets_belong_to_the_namespace() {
    require_lab();
    let hosts = Hosts::create(2);
    let h1 = hosts.addr(1);
    // 192.0.2.11 exists only in h1: binding there works inside h1 and fails outside.
    let local = support::in_netns(&hosts.ns(1), || {
        UdpSocket::bind(SocketAddr::new(h1, 0)).map(|s| s.local_addr().unwrap())
    });
    assert_eq!(local.expect("bind inside h1").ip(), h1);
    assert!(UdpSocket::bind(SocketAddr::new(h1, 0)).is_err());
}

/// Installs, in host `me`'s namespace, an ESP transport SA pair and the out/in policies for
/// traffic between `me` and `peer`.
fn esp_transport(hosts: &Hosts, me: usize, peer: usize) {
    let ns = hosts.ns(me);
    let (src, dst) = (hosts.addr(me).to_string(), hosts.addr(peer).to_string());
    for (from, to, spi) in [(&src, &dst, 0x1000 + me), (&dst, &src, 0x1000 + peer)] {
        let spi = format!("{spi:#x}");
        ip_in(
            &ns,
            &[
                "xfrm",
                "state",
                "add",
                "src",
                from,
                "dst",
                to,
                "proto",
                "esp",
                "spi",
                &spi,
                "mode",
                "transport",
                "enc",
                "cbc(aes)",
                KEY_ENC,
                "auth",
                "hmac(sha256)",
                KEY_AUTH,
            ],
        );
    }
    for (from, to, dir) in [(&src, &dst, "out"), (&dst, &src, "in")] {
        ip_in(
            &ns,
            &[
                "xfrm",
                "policy",
                "add",
                "src",
                from,
                "dst",
                to,
                "dir",
                dir,
                "tmpl",
                "src",
                from,
                "dst",
                to,
                "proto",
                "esp",
                "mode",
                "transport",
            ],
        );
    }
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn esp_transport_pair_hides_icmp() {
    require_lab();
    let hosts = Hosts::create(2);
    esp_transport(&hosts, 1, 2);
    esp_transport(&hosts, 2, 1);

    let capture = Capture::start(&hosts.ns(1), "eth0");
    assert!(ping(&hosts.ns(1), hosts.addr(2), 3), "ping over ESP");
    let (summary, text) = capture.stop_with_text();
    assert!(
        summary.esp >= 6,
        "expected ESP both ways: {summary:?}\n{text}"
    );
    assert_eq!(summary.icmp_clear, 0, "cleartext ICMP: {summary:?}\n{text}");
    assert_eq!(summary.ah, 0, "{summary:?}");

    let states = ip_in(&hosts.ns(1), &["-s", "xfrm", "state"]);
    assert!(String::from_utf8_lossy(&states.stdout).contains("proto esp"));
}

#[test]
#[ignore = "kernel lab: tests/lab/run-tests"]
fn capture_sees_cleartext_without_policies() {
    require_lab();
    let hosts = Hosts::create(2);
    let capture = Capture::start(&hosts.ns(2), "eth0");
    assert!(ping(&hosts.ns(1), hosts.addr(2), 2));
    let summary = capture.stop();
    assert!(summary.icmp_clear >= 4, "{summary:?}");
    assert_eq!(summary.esp, 0, "{summary:?}");
}
