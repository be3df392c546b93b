//! Install cost of the XFRM backend against `ip -batch`, on a real IPsec kernel.
//!
//! Run inside the kernel lab: `tests/lab/bench-xfrm`. Each run happens in a fresh network
//! namespace and installs N policies and N SAs (ESP AES-CBC + HMAC-SHA1-96, transport,
//! distinct selectors and SPIs, documentation addresses 198.51.100.x -> 203.0.113.y), checks
//! the counts (SPD info and an SA dump) so that a silently failing install cannot look fast,
//! then flushes. Sides: XfrmKernel one request at a time (`pfkey`), XfrmKernel pipelined
//! (`pfkey-batch`), and `/sbin/ip -batch FILE` with the file written beforehand (`ip`).
//! Prints µs per operation (best and median over the runs) and the ratios to `ip`.
//!
//! Environment: `IPSEC_BENCH_N` (default 10000), `IPSEC_BENCH_RUNS` (default 3).
#![allow(unsafe_code, missing_docs)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use pfkey::xfrm::{BatchOp, XfrmKernel};
use pfkey::{
    Direction, EncryptionAlgorithm, IntegrityAlgorithm, KernelInterface, Key, Lifetime, Mode,
    Policy, PolicyAction, PolicyId, SaId, SecurityAssociation, SecurityProtocol, Selector,
    Template, TemplateLevel,
};

const REQID: u32 = 0x3001;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn endpoints(i: usize) -> (IpAddr, IpAddr) {
    // 200 x 250 distinct pairs in the documentation ranges.
    let x = (i % 200) as u8 + 1;
    let y = (i / 200) as u8 + 1;
    (
        IpAddr::from([198, 51, 100, x]),
        IpAddr::from([203, 0, 113, y]),
    )
}

fn enc_key(i: usize) -> Vec<u8> {
    (0..16).map(|b| (i as u8).wrapping_add(b)).collect()
}

fn auth_key(i: usize) -> Vec<u8> {
    (0..20)
        .map(|b| (i as u8).wrapping_mul(3).wrapping_add(b))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::from("0x"), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

struct Workload {
    policies: Vec<Policy>,
    sas: Vec<SecurityAssociation>,
    batch_file: String,
}

fn workload(n: usize) -> Workload {
    let mut policies = Vec::with_capacity(n);
    let mut sas = Vec::with_capacity(n);
    let mut batch = String::with_capacity(n * 300);
    for i in 0..n {
        let (src, dst) = endpoints(i);
        let spi = 0x10000 + i as u32;
        policies.push(Policy {
            id: PolicyId {
                selector: Selector::hosts(src, dst),
                direction: Direction::Out,
                mark: None,
            },
            action: PolicyAction::Protect(vec![Template {
                protocol: SecurityProtocol::Esp,
                mode: Mode::Transport,
                reqid: REQID,
                tunnel: None,
                level: TemplateLevel::Require,
            }]),
            priority: 1000,
            index: None,
            lifetime: Lifetime::default(),
        });
        sas.push(
            SecurityAssociation::new(
                SaId {
                    destination: dst,
                    spi,
                    protocol: SecurityProtocol::Esp,
                },
                src,
                Mode::Transport,
                REQID,
            )
            .with_encryption(EncryptionAlgorithm::AesCbc, Key::new(enc_key(i)))
            .with_integrity(IntegrityAlgorithm::HmacSha1_96, Key::new(auth_key(i))),
        );
        let _ = writeln!(
            batch,
            "xfrm policy add src {src}/32 dst {dst}/32 dir out priority 1000 \
             tmpl proto esp reqid {REQID} mode transport"
        );
        let _ = writeln!(
            batch,
            "xfrm state add src {src} dst {dst} proto esp spi {spi:#x} reqid {REQID} \
             mode transport replay-window 32 enc cbc(aes) {} auth-trunc hmac(sha1) {} 96",
            hex(&enc_key(i)),
            hex(&auth_key(i))
        );
    }
    Workload {
        policies,
        sas,
        batch_file: batch,
    }
}

/// Runs `f` on a thread in a fresh network namespace (children it spawns inherit it).
fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(2) with CLONE_NEWNET moves only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                panic!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Checks that exactly `n` policies and `n` SAs are installed, then flushes.
fn verify_and_flush(k: &mut XfrmKernel, n: usize, side: &str) {
    let spd = k.spd_info().expect("spd_info");
    let sas = k.dump_sas().expect("dump_sas").len();
    assert_eq!(
        (spd.outbound as usize, sas),
        (n, n),
        "{side}: installed policies/SAs do not match the workload"
    );
    k.flush_sas(None).expect("flush SAs");
    k.flush_policies().expect("flush policies");
    assert_eq!(k.spd_info().expect("spd_info").outbound, 0);
}

fn run_pfkey(w: &Workload, batch: bool) -> Duration {
    in_fresh_netns(|| {
        let mut k = XfrmKernel::open().expect("open XFRM socket");
        let start = Instant::now();
        if batch {
            let mut ops: Vec<BatchOp<'_>> = w.policies.iter().map(BatchOp::AddPolicy).collect();
            ops.extend(w.sas.iter().map(BatchOp::AddSa));
            let results = k.batch(&ops).expect("batch");
            let failed = results.iter().filter(|r| r.is_err()).count();
            assert_eq!(failed, 0, "pfkey-batch: {failed} requests failed");
        } else {
            for p in &w.policies {
                k.add_policy(p).expect("add_policy");
            }
            for sa in &w.sas {
                k.add_sa(sa).expect("add_sa");
            }
        }
        let elapsed = start.elapsed();
        verify_and_flush(
            &mut k,
            w.policies.len(),
            if batch { "pfkey-batch" } else { "pfkey" },
        );
        elapsed
    })
}

fn run_ip(file: &std::path::Path, n: usize) -> Duration {
    in_fresh_netns(|| {
        let start = Instant::now();
        let status = Command::new("/sbin/ip")
            .arg("-batch")
            .arg(file)
            .status()
            .expect("run /sbin/ip -batch");
        let elapsed = start.elapsed();
        assert!(status.success(), "ip -batch failed: {status}");
        let mut k = XfrmKernel::open().expect("open XFRM socket");
        verify_and_flush(&mut k, n, "ip");
        elapsed
    })
}

fn per_op_us(d: Duration, ops: usize) -> f64 {
    d.as_secs_f64() * 1e6 / ops as f64
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let best = v.first().copied().unwrap_or(f64::NAN);
    let median = match v.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => v[l / 2],
        l => (v[l / 2 - 1] + v[l / 2]) / 2.0,
    };
    (best, median)
}

fn main() {
    let n = env_usize("IPSEC_BENCH_N", 10_000).min(50_000);
    let runs = env_usize("IPSEC_BENCH_RUNS", 3).max(2);
    let ops = 2 * n;
    let w = workload(n);
    let dir = std::env::temp_dir().join(format!("xfrm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("ip.batch");
    std::fs::write(&file, &w.batch_file).expect("write batch file");
    let release = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    println!(
        "xfrm_vs_ip: {n} policies + {n} SAs ({ops} operations), {runs} runs per side, kernel {}",
        String::from_utf8_lossy(&release).trim()
    );
    let mut results: Vec<(&str, Vec<f64>)> =
        vec![("ip", vec![]), ("pfkey", vec![]), ("pfkey-batch", vec![])];
    for run in 0..runs {
        // Interleave the sides so that drift in the machine affects them alike.
        let ip = per_op_us(run_ip(&file, n), ops);
        let one = per_op_us(run_pfkey(&w, false), ops);
        let batch = per_op_us(run_pfkey(&w, true), ops);
        println!(
            "run {}: ip {ip:.2} µs/op, pfkey {one:.2} µs/op, pfkey-batch {batch:.2} µs/op",
            run + 1
        );
        results[0].1.push(ip);
        results[1].1.push(one);
        results[2].1.push(batch);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (ip_best, ip_median) = stats(results[0].1.clone());
    println!(
        "{:<12} {:>10} {:>10} {:>14} {:>14}",
        "side", "best", "median", "best/ip best", "median/ip med"
    );
    for (side, v) in &results {
        let (best, median) = stats(v.clone());
        println!(
            "{side:<12} {best:>7.2} µs {median:>7.2} µs {:>14.2} {:>14.2}",
            best / ip_best,
            median / ip_median
        );
    }
    let (one_best, one_median) = stats(results[1].1.clone());
    let target = 1.5;
    let verdict = if one_median / ip_median <= target {
        "meets"
    } else {
        "misses"
    };
    println!(
        "pfkey (one request at a time) / ip -batch: best {:.2}, median {:.2} ({verdict} the {target}x target)",
        one_best / ip_best,
        one_median / ip_median
    );
}
