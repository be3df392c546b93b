//! Property tests: random and mutated datagrams fed to endpoints in every state never
//! panic, and garbage never creates state.

use proptest::prelude::*;

use super::util::{Pair, Side, TestConfig};

/// A pair that has run main mode and quick mode, with every datagram recorded.
fn recorded() -> Pair {
    let mut pair = Pair::new(&TestConfig::psk("secret"));
    pair.establish();
    pair
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_datagrams_never_panic_a_responder(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut pair = recorded();
        pair.responder.handle_datagram(pair.now, Pair::r_path(), &data);
        pair.initiator.handle_datagram(pair.now, Pair::i_path(), &data);
        pair.collect();
        prop_assert_eq!(pair.responder.isakmp_sa_count(), 1);
    }

    #[test]
    fn mutated_datagrams_never_panic_either_side(
        which in 0usize..32,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        truncate in proptest::option::of(any::<usize>()),
    ) {
        let mut pair = recorded();
        let all: Vec<(Side, Vec<u8>)> = pair
            .sent_by_i
            .iter()
            .map(|d| (Side::R, d.clone()))
            .chain(pair.sent_by_r.iter().map(|d| (Side::I, d.clone())))
            .collect();
        let (side, mut d) = all[which % all.len()].clone();
        for (at, x) in flips {
            let n = d.len();
            d[at % n] ^= x;
        }
        if let Some(t) = truncate {
            d.truncate(t % (d.len() + 1));
        }
        match side {
            Side::R => pair.responder.handle_datagram(pair.now, Pair::r_path(), &d),
            Side::I => pair.initiator.handle_datagram(pair.now, Pair::i_path(), &d),
        }
        pair.collect();
        pair.run_for(std::time::Duration::from_secs(120));
    }

    #[test]
    fn mid_exchange_garbage_never_panics(
        steps in 0usize..9,
        data in proptest::collection::vec(any::<u8>(), 0..300),
        keep_header in any::<bool>(),
    ) {
        let mut pair = Pair::new(&TestConfig::psk("secret"));
        pair.initiator.initiate(pair.now, &"c".into()).unwrap();
        for k in 0..steps {
            pair.step(if k % 2 == 0 { Side::R } else { Side::I });
        }
        // Reuse the real cookies and header of the last message so the garbage reaches the
        // state machine, not just the cookie check.
        let mut d = data;
        if keep_header {
            if let Some(last) = pair.sent_by_i.last() {
                let mut h = last[..28].to_vec();
                let len = u32::try_from(28 + d.len()).unwrap();
                h[24..28].copy_from_slice(&len.to_be_bytes());
                h.extend_from_slice(&d);
                d = h;
            }
        }
        pair.responder.handle_datagram(pair.now, Pair::r_path(), &d);
        pair.initiator.handle_datagram(pair.now, Pair::i_path(), &d);
        pair.collect();
        pair.run_for(std::time::Duration::from_secs(120));
    }
}
