//! Fuzzes the exemption classifier: any bytes are parsed as an IP packet (the first byte
//! chooses whether its destination is one of the directed broadcasts); parsing may refuse,
//! never panic; whatever parses is classified at every level and both IPv6 modes, and the
//! verdicts must respect the table's structure: ISAKMP is exempt at every level, level 3
//! exempts a subset of levels 1 and 2, and levels 1 and 2 a subset of level 0.

#![no_main]

use ipsec_exempt::{classify, parse, Class, Ipv6Mode, Level, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let directed: &[[u8; 4]] = if sel & 1 == 1 {
        &[[192, 0, 2, 255], [203, 0, 113, 255]]
    } else {
        &[]
    };
    let Ok(facts) = parse(pkt, directed) else {
        return;
    };
    for mode in [Ipv6Mode::Classify, Ipv6Mode::ExemptAll] {
        let v = Level::ALL.map(|l| classify(&facts, l, mode));
        let exempt = v.map(|v| matches!(v, Verdict::Exempt(_)));
        if exempt[3] {
            assert!(exempt[1] && exempt[2], "{facts:?}: level 3 exempt but not 1 or 2");
        }
        if exempt[1] || exempt[2] {
            assert!(exempt[0], "{facts:?}: level 1 or 2 exempt but not 0");
        }
        for (level, verdict) in Level::ALL.into_iter().zip(v) {
            if let Verdict::Exempt(class) = verdict {
                assert!(
                    level.exempts(class) || (class == Class::Ipv6 && mode == Ipv6Mode::ExemptAll),
                    "{facts:?}: {class:?} is not exempt at {level:?}"
                );
                if matches!(class, Class::Isakmp | Class::IsakmpNatT) {
                    assert!(exempt.iter().all(|&e| e), "{facts:?}: ISAKMP not exempt everywhere");
                }
            }
        }
    }
});
