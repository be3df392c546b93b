//! Micro-benchmark: ns per classification, against a baseline measured in the same run.
//!
//! - `classify`: the crate's bitmask decision on prepared [`Facts`].
//! - `table baseline`: a straightforward implementation of the seed's "Equivalent
//!   Filters" table: a list of filter rows scanned for the first match, then a level check.
//! - `parse+classify`: the cost from raw packet bytes (what user space would pay).
//!
//! Prints one line per measurement and the ratios. Run: `cargo bench -p ipsec-exempt`.
use ipsec_exempt::{classify, parse, Class, Destination, Facts, Family, Ipv6Mode, Level, Verdict};
use std::hint::black_box;
use std::time::{Duration, Instant};

const N: usize = 4096;

/// A deterministic mix of every class and of non-exempt traffic.
fn workload() -> Vec<(Facts, Vec<u8>)> {
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..N)
        .map(|_| {
            let r = next();
            let (proto, sp, dp) = match r % 8 {
                0 => (17u8, 500u16, 500u16),
                1 => (17, 4500, 4500),
                2 => (17, 40000, 88),
                3 => (6, 88, 40000),
                4 => (46, 0, 0),
                5 => (6, 40000, 23),
                6 => (17, 40000, 9),
                _ => (1, 0, 0),
            };
            let dst: [u8; 4] = match (r >> 8) % 4 {
                0 => [255, 255, 255, 255],
                1 => [192, 0, 2, 255],
                2 => [224, 0, 0, 9],
                _ => [192, 0, 2, 12],
            };
            let mut pkt = vec![0u8; 28];
            pkt[0] = 0x45;
            pkt[9] = proto;
            pkt[16..20].copy_from_slice(&dst);
            pkt[20..22].copy_from_slice(&sp.to_be_bytes());
            pkt[22..24].copy_from_slice(&dp.to_be_bytes());
            let facts = match parse(&pkt, &[[192, 0, 2, 255]]) {
                Ok(f) => f,
                Err(e) => panic!("workload packet does not parse: {e:?}"),
            };
            (facts, pkt)
        })
        .collect()
}

/// One row of the seed's filter table: None = any.
struct Row {
    proto: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
    dest: Option<&'static [Destination]>,
    class: Class,
}

const BCAST: &[Destination] = &[
    Destination::LimitedBroadcast,
    Destination::DirectedBroadcast,
];
const MCAST: &[Destination] = &[Destination::Multicast];

fn table() -> Vec<Row> {
    let r = |proto, sport, dport, dest, class| Row {
        proto,
        sport,
        dport,
        dest,
        class,
    };
    vec![
        r(Some(17), None, Some(88), None, Class::Kerberos),
        r(Some(17), Some(88), None, None, Class::Kerberos),
        r(Some(6), None, Some(88), None, Class::Kerberos),
        r(Some(6), Some(88), None, None, Class::Kerberos),
        r(Some(17), Some(500), Some(500), None, Class::Isakmp),
        r(Some(17), Some(4500), Some(4500), None, Class::IsakmpNatT),
        r(Some(46), None, None, None, Class::Rsvp),
        r(None, None, None, Some(MCAST), Class::Multicast),
        r(None, None, None, Some(BCAST), Class::Broadcast),
    ]
}

fn table_classify(rows: &[Row], f: &Facts, level: Level) -> Verdict {
    for row in rows {
        if row.proto.is_some_and(|p| p != f.protocol)
            || row.sport.is_some_and(|p| p != f.src_port)
            || row.dport.is_some_and(|p| p != f.dst_port)
            || row.dest.is_some_and(|d| !d.contains(&f.destination))
        {
            continue;
        }
        if level.exempts(row.class) {
            return Verdict::Exempt(row.class);
        }
    }
    Verdict::SubjectToPolicy
}

/// Runs `f` over the workload until `min` has passed; returns ns per item.
fn measure(min: Duration, mut f: impl FnMut() -> usize) -> f64 {
    // warm up
    let mut sink = 0usize;
    for _ in 0..50 {
        sink = sink.wrapping_add(f());
    }
    let mut rounds = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < min {
        for _ in 0..100 {
            sink = sink.wrapping_add(f());
        }
        rounds += 100;
    }
    let ns = t0.elapsed().as_nanos() as f64;
    black_box(sink);
    ns / (rounds as f64 * N as f64)
}

fn main() {
    let w = workload();
    let facts: Vec<Facts> = w.iter().map(|(f, _)| *f).collect();
    let rows = table();
    let levels = Level::ALL;
    // Both implementations must agree on the whole workload at every level.
    for level in levels {
        for f in &facts {
            assert_eq!(
                classify(f, level, Ipv6Mode::Classify),
                table_classify(&rows, f, level),
                "{f:?} {level:?}"
            );
        }
    }
    let min = Duration::from_millis(700);
    let mut level_i = 0usize;
    let fast = measure(min, || {
        level_i = (level_i + 1) % 4;
        let level = black_box(levels[level_i]);
        black_box(&facts)
            .iter()
            .filter(|f| matches!(classify(f, level, Ipv6Mode::Classify), Verdict::Exempt(_)))
            .count()
    });
    let base = measure(min, || {
        level_i = (level_i + 1) % 4;
        let level = black_box(levels[level_i]);
        black_box(&facts)
            .iter()
            .filter(|f| matches!(table_classify(&rows, f, level), Verdict::Exempt(_)))
            .count()
    });
    let dirb = [[192u8, 0, 2, 255]];
    let full = measure(min, || {
        level_i = (level_i + 1) % 4;
        let level = black_box(levels[level_i]);
        black_box(&w)
            .iter()
            .filter(|(_, p)| match parse(p, &dirb) {
                Ok(f) => matches!(classify(&f, level, Ipv6Mode::Classify), Verdict::Exempt(_)),
                Err(_) => false,
            })
            .count()
    });
    let _ = Family::V4;
    println!("workload: {N} IPv4 packets (8 protocol/port mixes x 4 destination classes), levels 0-3 in turn");
    println!("classify:        {fast:6.2} ns/classification");
    println!("table baseline:  {base:6.2} ns/classification (seed filter table, first match)");
    println!("parse+classify:  {full:6.2} ns/packet (from raw bytes)");
    println!("ratio table/classify: {:.1}x", base / fast);
    println!("ratio (parse+classify)/classify: {:.1}x", full / fast);
    println!(
        "target < 20 ns/classification: {}",
        if fast < 20.0 { "met" } else { "NOT met" }
    );
}
