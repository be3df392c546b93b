//! XFRM backend checks that run on the host kernel, each in a fresh, private network
//! namespace (a thread that called `unshare(CLONE_NEWNET)`), so nothing touches the host's
//! own SPD. The host kernel has XFRM policies but no ESP/AH states: SA tests are in
//! `lab_xfrm.rs`. Without the privilege to unshare (not root), each test says so and passes.
#![allow(unsafe_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use pfkey::xfrm::codec::{flags, NlMessage, XfrmPayload};
use pfkey::xfrm::{bypass_socket, BatchOp, XfrmKernel};
use pfkey::{
    Direction, Family, KernelInterface, Lifetime, Mark, Mode, Policy, PolicyAction, PolicyId,
    Prefix, SecurityProtocol, Selector, Template, TemplateLevel, UpperLayer,
};

/// Runs `f` on a thread in a new network namespace; `None` if unsharing is not permitted.
fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only this new thread into a new network
        // namespace; the thread ends when `f` returns.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "skipped: unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(f())
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn template(mode: Mode, reqid: u32) -> Template {
    Template {
        protocol: SecurityProtocol::Esp,
        mode,
        reqid,
        tunnel: (mode == Mode::Tunnel).then(|| (ip("192.0.2.11"), ip("192.0.2.12"))),
        level: TemplateLevel::Require,
    }
}

fn policy(selector: Selector, direction: Direction, action: PolicyAction, priority: u32) -> Policy {
    Policy {
        id: PolicyId {
            selector,
            direction,
            mark: None,
        },
        action,
        priority,
        index: None,
        lifetime: Lifetime::default(),
    }
}

fn sample_policies() -> Vec<Policy> {
    let hosts = Selector::hosts(ip("198.51.100.1"), ip("198.51.100.2"));
    let nets = Selector {
        source: Prefix {
            addr: ip("198.51.100.0"),
            len: 24,
        },
        destination: Prefix {
            addr: ip("203.0.113.0"),
            len: 24,
        },
        upper: UpperLayer::Proto {
            proto: 17,
            source_port: Some(500),
            destination_port: None,
        },
    };
    let v6 = Selector::hosts(ip("2001:db8::11"), ip("2001:db8::12"));
    let mut marked = policy(hosts, Direction::Fwd, PolicyAction::Block, 7);
    marked.id.mark = Some(Mark {
        value: 0x10,
        mask: 0xf0,
    });
    vec![
        policy(
            hosts,
            Direction::Out,
            PolicyAction::Protect(vec![template(Mode::Transport, 0x3001)]),
            1000,
        ),
        policy(
            nets,
            Direction::In,
            PolicyAction::Protect(vec![template(Mode::Tunnel, 0x3002)]),
            2000,
        ),
        policy(v6, Direction::Out, PolicyAction::Allow, 3000),
        Policy {
            lifetime: Lifetime {
                hard_add_seconds: Some(3600),
                ..Lifetime::default()
            },
            ..policy(v6, Direction::In, PolicyAction::Block, 4000)
        },
        marked,
    ]
}

#[test]
fn policies_round_trip_through_the_host_kernel() {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().unwrap();
        let sent = sample_policies();
        for p in &sent {
            k.add_policy(p).unwrap();
        }
        for p in &sent {
            let back = k.get_policy(&p.id).unwrap();
            let index = back.index.expect("kernel index");
            assert_eq!(
                index & 7,
                p.id.direction as u32 & 7,
                "index carries the direction"
            );
            assert_eq!(
                back,
                Policy {
                    index: Some(index),
                    ..p.clone()
                }
            );
        }
        let mut dumped = k.dump_policies().unwrap();
        dumped.iter_mut().for_each(|p| p.index = None);
        for p in &sent {
            assert!(dumped.contains(p), "{p:?} in dump");
        }
        assert_eq!(dumped.len(), sent.len());
        let info = k.spd_info().unwrap();
        assert_eq!((info.inbound, info.outbound, info.forward), (2, 2, 1));

        let err = k.add_policy(&sent[0]).unwrap_err();
        assert!(err.is_exists(), "{err}");

        let mut changed = sent[0].clone();
        changed.priority = 1234;
        k.update_policy(&changed).unwrap();
        assert_eq!(k.get_policy(&changed.id).unwrap().priority, 1234);

        k.delete_policy(&sent[1].id).unwrap();
        assert!(k.get_policy(&sent[1].id).unwrap_err().is_not_found());
        k.flush_policies().unwrap();
        assert!(k.dump_policies().unwrap().is_empty());
    })
    .unwrap_or(());
}

#[test]
fn caller_chosen_policy_index_is_kept() {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().unwrap();
        let mut p = sample_policies().remove(0);
        p.index = Some(0x4000 + 1); // low 3 bits = OUT
        k.add_policy(&p).unwrap();
        assert_eq!(k.get_policy(&p.id).unwrap().index, Some(0x4001));
        let mut wrong = sample_policies().remove(2);
        wrong.index = Some(0x5000); // low bits say IN, direction is OUT
        assert!(matches!(
            k.add_policy(&wrong),
            Err(pfkey::Error::Invalid(_))
        ));
    })
    .unwrap_or(());
}

#[test]
fn batch_installs_many_policies_and_reports_each_result() {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().unwrap();
        let policies: Vec<Policy> = (0..300u32)
            .map(|i| {
                let sel = Selector::hosts(
                    IpAddr::from([198, 51, 100, (i % 250) as u8 + 1]),
                    IpAddr::from([203, 0, 113, (i / 250) as u8 + 1]),
                );
                policy(sel, Direction::Out, PolicyAction::Block, 100 + i)
            })
            .collect();
        let mut ops: Vec<BatchOp<'_>> = policies.iter().map(BatchOp::AddPolicy).collect();
        ops.push(BatchOp::AddPolicy(&policies[0])); // duplicate: EEXIST in its slot
        let results = k.batch(&ops).unwrap();
        assert_eq!(results.len(), 301);
        assert!(results[..300].iter().all(Result::is_ok));
        assert!(results[300].as_ref().unwrap_err().is_exists());
        assert_eq!(k.spd_info().unwrap().outbound, 300);
        assert_eq!(k.dump_policies().unwrap().len(), 300);
    })
    .unwrap_or(());
}

#[test]
fn malformed_policy_is_rejected_before_the_kernel_and_nothing_changes() {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().unwrap();
        let mixed = Selector::hosts(ip("198.51.100.1"), ip("2001:db8::1"));
        let err = k
            .add_policy(&policy(mixed, Direction::Out, PolicyAction::Block, 1))
            .unwrap_err();
        assert!(matches!(err, pfkey::Error::Invalid(_)), "{err}");
        assert!(k.dump_policies().unwrap().is_empty());
    })
    .unwrap_or(());
}

#[test]
fn receive_timeout_bounds_a_request_without_answer() {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().unwrap();
        k.set_timeout(Duration::from_millis(200)).unwrap();
        // A request without NLM_F_ACK that the kernel answers with nothing: FLUSHPOLICY.
        let msg = NlMessage::request(0, 0, XfrmPayload::FlushPolicy(vec![]));
        let start = std::time::Instant::now();
        let err = k.request_raw(&msg).unwrap_err();
        assert!(matches!(err, pfkey::Error::Timeout(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        // The socket still works afterwards.
        assert_eq!(k.spd_info().unwrap().outbound, 0);
    })
    .unwrap_or(());
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// Two namespaces joined by a veth pair (192.0.2.11 in A, 192.0.2.12 in B), both with
/// block-all policies in and out. A UDP socket with bypass crosses; a plain one does not.
#[test]
fn bypassed_socket_crosses_a_block_all_policy_and_a_plain_one_does_not() {
    let (tid_tx, tid_rx) = mpsc::channel::<Option<i32>>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // Host B: waits for its veth end, configures it, and echoes on bypassed port 5000 and
    // plain port 5001.
    let b = std::thread::spawn(move || {
        // SAFETY: as in in_fresh_netns: only this thread changes namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let _ = tid_tx.send(None);
            return None;
        }
        // SAFETY: gettid has no preconditions.
        let _ = tid_tx.send(Some(unsafe { libc::gettid() }));
        go_rx.recv().unwrap();
        sh("ip link set lo up && ip addr add 192.0.2.12/24 dev vb && ip link set vb up");
        let mut k = XfrmKernel::open().unwrap();
        block_all(&mut k);
        let bypassed = UdpSocket::bind("192.0.2.12:5000").unwrap();
        bypass_socket(bypassed.as_fd(), Family::V4).unwrap();
        let plain = UdpSocket::bind("192.0.2.12:5001").unwrap();
        for s in [&bypassed, &plain] {
            s.set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
        }
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        let got_bypassed = bypassed.recv_from(&mut buf).ok().map(|(n, from)| {
            let _ = bypassed.send_to(&buf[..n], from);
            n
        });
        let got_plain = plain.recv_from(&mut buf).ok().map(|(n, _)| n);
        Some((got_bypassed, got_plain))
    });
    let Some(tid_b) = tid_rx.recv().unwrap() else {
        eprintln!("skipped: cannot unshare the network namespace");
        return;
    };
    let a = in_fresh_netns(move || {
        sh(&format!(
            "ip link set lo up && ip link add va type veth peer name vb netns /proc/{tid_b}/ns/net \
             && ip addr add 192.0.2.11/24 dev va && ip link set va up"
        ));
        go_tx.send(()).unwrap();
        ready_rx.recv().unwrap();
        let mut k = XfrmKernel::open().unwrap();
        block_all(&mut k);
        let to_bypassed: SocketAddr = "192.0.2.12:5000".parse().unwrap();
        let to_plain: SocketAddr = "192.0.2.12:5001".parse().unwrap();
        let plain = UdpSocket::bind("192.0.2.11:0").unwrap();
        let plain_send = plain.send_to(b"plain", to_plain);
        let bypassed = UdpSocket::bind("192.0.2.11:0").unwrap();
        bypass_socket(bypassed.as_fd(), Family::V4).unwrap();
        bypassed
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        // The first datagram may wait for ARP; send twice.
        bypassed.send_to(b"hello", to_bypassed).unwrap();
        let mut buf = [0u8; 64];
        let echo = bypassed
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| buf[..n].to_vec());
        (plain_send.map_err(|e| e.raw_os_error()), echo)
    })
    .unwrap();
    let b = b.join().unwrap().unwrap();
    assert_eq!(
        a.0,
        Err(Some(libc::EPERM)),
        "a plain socket's send is blocked by policy"
    );
    assert_eq!(
        a.1.as_deref(),
        Some(&b"hello"[..]),
        "bypassed socket gets its echo"
    );
    assert_eq!(b, (Some(5), None));
}

fn block_all(k: &mut XfrmKernel) {
    let any = Selector::between(Prefix::any(Family::V4), Prefix::any(Family::V4));
    for dir in [Direction::In, Direction::Out] {
        k.add_policy(&policy(any, dir, PolicyAction::Block, 100))
            .unwrap();
    }
}

/// Records host-kernel replies as test vectors (`pfkey/tests/vectors/xfrm/host-*.bin`).
/// Run explicitly: `cargo test -p pfkey --test xfrm_host -- --ignored capture`.
#[test]
#[ignore = "writes test vectors; run explicitly"]
fn capture_host_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/xfrm");
    let release = Command::new("uname").arg("-r").output().unwrap().stdout;
    let release = String::from_utf8_lossy(&release).trim().to_string();
    in_fresh_netns(move || {
        let mut k = XfrmKernel::open().unwrap();
        let ps = sample_policies();
        k.add_policy(&ps[0]).unwrap();
        k.add_policy(&ps[1]).unwrap();
        let write = |name: &str, datagrams: Vec<Vec<u8>>, how: &str| {
            let bytes: Vec<u8> = datagrams.concat();
            std::fs::write(dir.join(format!("{name}.bin")), &bytes).unwrap();
            std::fs::write(
                dir.join(format!("{name}.txt")),
                format!(
                    "Captured on the host kernel {release} (x86_64) in a fresh network namespace by\n\
                     `cargo test -p pfkey --test xfrm_host -- --ignored capture_host_vectors`.\n{how}\n\
                     The file holds the raw datagrams the kernel returned, concatenated.\n"
                ),
            )
            .unwrap();
        };
        let dump = k
            .request_raw(&NlMessage::request(
                flags::DUMP,
                0,
                XfrmPayload::DumpPolicy(vec![]),
            ))
            .unwrap();
        write(
            "host-policy-dump",
            dump,
            "Request: XFRM_MSG_GETPOLICY with NLM_F_DUMP, after adding two policies through \
             XfrmKernel: out 198.51.100.1/32 -> 198.51.100.2/32 protect esp transport reqid \
             0x3001 priority 1000; in 198.51.100.0/24 -> 203.0.113.0/24 udp sport 500 protect \
             esp tunnel 192.0.2.11 -> 192.0.2.12 reqid 0x3002 priority 2000.",
        );
        let spd = k
            .request_raw(&NlMessage::request(0, 0, XfrmPayload::GetSpdInfo(0)))
            .unwrap();
        write(
            "host-spdinfo",
            spd,
            "Request: XFRM_MSG_GETSPDINFO (flags word 0), without NLM_F_ACK, with the two \
             policies above installed (1 in, 1 out).",
        );
        let dup = pfkey::xfrm::convert::policy_to_wire(&ps[0]).unwrap();
        let err = k
            .request_raw(&NlMessage::request(
                flags::ACK,
                0,
                XfrmPayload::NewPolicy(dup),
            ))
            .unwrap();
        write(
            "host-error-eexist",
            err,
            "Request: XFRM_MSG_NEWPOLICY with NLM_F_ACK for the first policy again; the answer \
             is NLMSG_ERROR -EEXIST (socket options NETLINK_CAP_ACK and NETLINK_EXT_ACK set).",
        );
    });
}
