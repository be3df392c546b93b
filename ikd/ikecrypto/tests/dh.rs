//! Diffie-Hellman properties: both sides derive the same secret for random keys (groups 2,
//! 14 and 19 under proptest, every group once), and invalid peer public values are rejected
//! with a typed error.

use ikecrypto::{CryptoError, CryptoProvider, DhGroup, RustCryptoProvider};
use isakmp::NotifyType;
use proptest::prelude::*;

fn agree(c: &RustCryptoProvider, group: DhGroup, a: &[u8], b: &[u8]) {
    let ours = c.dh_generate(group, a).unwrap();
    let theirs = c.dh_generate(group, b).unwrap();
    assert_eq!(ours.group(), group);
    assert_eq!(ours.public_value().len(), group.public_len());
    let ab = c.dh_shared(&ours, theirs.public_value()).unwrap();
    let ba = c.dh_shared(&theirs, ours.public_value()).unwrap();
    assert_eq!(ab, ba, "{group}");
    assert_eq!(
        ab.len(),
        group.shared_len(),
        "{group}: g^xy is padded to the field length"
    );
}

/// Random octets for `group` that are a valid private key (ECP: retry the rare rejects).
fn key_strategy(group: DhGroup) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), group.private_len())
}

fn accepted(c: &RustCryptoProvider, group: DhGroup, random: &[u8]) -> bool {
    !matches!(
        c.dh_generate(group, random),
        Err(CryptoError::RejectedRandom { .. })
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn both_sides_agree(
        group in prop::sample::select(vec![DhGroup::Modp1024, DhGroup::Modp2048, DhGroup::Ecp256]),
        seed_a in any::<[u8; 32]>(),
        seed_b in any::<[u8; 32]>(),
    ) {
        let c = RustCryptoProvider::new();
        prop_assume!(accepted(&c, group, &seed_a) && accepted(&c, group, &seed_b));
        agree(&c, group, &seed_a, &seed_b);
    }

    #[test]
    fn modp_longer_exponents_agree(
        a in key_strategy(DhGroup::Modp1024),
        extra in prop::collection::vec(any::<u8>(), 0..=96),
    ) {
        // Any exponent length from private_len() to the prime length works.
        let c = RustCryptoProvider::new();
        let mut b = a.clone();
        b.extend_from_slice(&extra);
        prop_assume!(accepted(&c, DhGroup::Modp1024, &a));
        agree(&c, DhGroup::Modp1024, &a, &b);
    }

    #[test]
    fn random_ecp_values_are_not_points(
        group in prop::sample::select(vec![DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521]),
        peer in any::<[u8; 132]>(),
    ) {
        // A random x | y is on the curve with negligible probability.
        let c = RustCryptoProvider::new();
        let ours = c.dh_generate(group, &vec![0x5a; group.private_len()]).unwrap();
        let peer = &peer[..group.public_len()];
        prop_assert_eq!(
            c.dh_shared(&ours, peer).unwrap_err(),
            CryptoError::PointNotOnCurve { group }
        );
    }

    #[test]
    fn peer_values_of_wrong_length_are_rejected(
        group in prop::sample::select(DhGroup::ALL.to_vec()),
        len in 0usize..1100,
    ) {
        let c = RustCryptoProvider::new();
        prop_assume!(len != group.public_len());
        let ours = c.dh_generate(group, &vec![0x5a; group.private_len()]).unwrap();
        let err = c.dh_shared(&ours, &vec![0x42; len]).unwrap_err();
        prop_assert_eq!(
            &err,
            &CryptoError::PublicValueLength { group, got: len, expected: group.public_len() }
        );
        prop_assert_eq!(err.notify_type(), Some(NotifyType::INVALID_KEY_INFORMATION));
    }
}

#[test]
fn every_group_agrees() {
    let c = RustCryptoProvider::new();
    for group in DhGroup::ALL {
        let a = vec![0x3c; group.private_len()];
        let b = vec![0xc3; group.private_len()];
        agree(&c, group, &a, &b);
        assert_eq!(DhGroup::from_oakley(group.oakley_id()), Some(group));
    }
    assert_eq!(DhGroup::from_oakley(3), None, "EC2N is not implemented");
    assert_eq!(DhGroup::from_oakley(22), None);
}

/// Values outside `1 < y < p-1` for every MODP group: 0, 1 and 2^n - 1 (above p).
fn modp_out_of_range(group: DhGroup) -> Vec<Vec<u8>> {
    let len = group.public_len();
    let zero = vec![0u8; len];
    let mut one = zero.clone();
    one[len - 1] = 1;
    let all_ones = vec![0xffu8; len]; // 2^n - 1 > p
    vec![zero, one, all_ones]
}

#[test]
fn modp_range_check() {
    let c = RustCryptoProvider::new();
    for group in DhGroup::ALL.into_iter().filter(|g| !g.is_ecp()) {
        let ours = c
            .dh_generate(group, &vec![0x77; group.private_len()])
            .unwrap();
        for bad in modp_out_of_range(group) {
            let err = c.dh_shared(&ours, &bad).unwrap_err();
            assert_eq!(err, CryptoError::PublicValueOutOfRange { group });
            assert_eq!(err.notify_type(), Some(NotifyType::INVALID_KEY_INFORMATION));
            assert!(err.is_peer_error());
        }
        // 2 is the smallest accepted value.
        let mut two = vec![0u8; group.public_len()];
        two[group.public_len() - 1] = 2;
        c.dh_shared(&ours, &two).unwrap();
    }
}

#[test]
fn modp_boundaries_p_minus_1_and_p() {
    // Group 2's p (RFC 2409 §6.2): p-1 and p are rejected, p-2 is accepted.
    let p = hex_decode(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
         020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
         4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
         EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    );
    let c = RustCryptoProvider::new();
    let group = DhGroup::Modp1024;
    let ours = c.dh_generate(group, &[0x77; 32]).unwrap();
    let with_last = |last: u8| {
        let mut v = p.clone();
        *v.last_mut().unwrap() = last;
        v
    };
    for bad in [p.clone(), with_last(0xfe)] {
        assert_eq!(
            c.dh_shared(&ours, &bad).unwrap_err(),
            CryptoError::PublicValueOutOfRange { group }
        );
    }
    // p-2 = (-2 mod p): accepted (it has order q or 2q).
    c.dh_shared(&ours, &with_last(0xfd)).unwrap();
}

#[test]
fn ecp_invalid_points() {
    let c = RustCryptoProvider::new();
    for group in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521] {
        let ours = c
            .dh_generate(group, &vec![0x01; group.private_len()])
            .unwrap();
        let peer = c
            .dh_generate(group, &vec![0x02; group.private_len()])
            .unwrap();
        let good = peer.public_value().to_vec();
        c.dh_shared(&ours, &good).unwrap();
        // The point at infinity has no affine x | y; all zeros is not on the curve.
        let zeros = vec![0u8; group.public_len()];
        // A valid x with a wrong y.
        let mut bad_y = good.clone();
        *bad_y.last_mut().unwrap() ^= 1;
        // A coordinate not below the field prime.
        let mut big_x = good.clone();
        big_x[..group.field_len()].fill(0xff);
        for bad in [zeros, bad_y, big_x] {
            let err = c.dh_shared(&ours, &bad).unwrap_err();
            assert_eq!(err, CryptoError::PointNotOnCurve { group });
            assert_eq!(err.notify_type(), Some(NotifyType::INVALID_KEY_INFORMATION));
        }
    }
}

#[test]
fn private_key_randomness_is_checked() {
    let c = RustCryptoProvider::new();
    for group in DhGroup::ALL {
        let n = group.private_len();
        // Too short.
        let err = c.dh_generate(group, &vec![1; n - 1]).unwrap_err();
        assert!(
            matches!(err, CryptoError::RandomLength { got, .. } if got == n - 1),
            "{err}"
        );
        assert!(!err.is_peer_error());
        // Zero is never a private key.
        let err = c.dh_generate(group, &vec![0; n]).unwrap_err();
        assert_eq!(err, CryptoError::RejectedRandom { group });
    }
    // MODP: one is refused too; up to the prime length is accepted, longer is not.
    let group = DhGroup::Modp1024;
    let mut one = vec![0; 32];
    one[31] = 1;
    assert_eq!(
        c.dh_generate(group, &one).unwrap_err(),
        CryptoError::RejectedRandom { group }
    );
    c.dh_generate(group, &[0x99; 128]).unwrap();
    assert!(matches!(
        c.dh_generate(group, &[0x99; 129]).unwrap_err(),
        CryptoError::RandomLength { max: 128, .. }
    ));
    // ECP: ECP256 random octets must be exactly 32, and below the group order.
    assert!(c.dh_generate(DhGroup::Ecp256, &[1; 33]).is_err());
    assert_eq!(
        c.dh_generate(DhGroup::Ecp256, &[0xff; 32]).unwrap_err(),
        CryptoError::RejectedRandom {
            group: DhGroup::Ecp256
        }
    );
    // P-521: the 7 high bits of the first octet are ignored.
    let mut high = [0x12; 66];
    high[0] = 0xfe;
    let mut masked = high;
    masked[0] = 0x00;
    assert_eq!(
        c.dh_generate(DhGroup::Ecp521, &high)
            .unwrap()
            .public_value(),
        c.dh_generate(DhGroup::Ecp521, &masked)
            .unwrap()
            .public_value()
    );
}

#[test]
fn debug_output_hides_keys() {
    let c = RustCryptoProvider::new();
    let pair = c.dh_generate(DhGroup::Ecp256, &[0xab; 32]).unwrap();
    let shown = format!("{pair:?}");
    assert!(shown.contains("Ecp256"), "{shown}");
    assert!(
        !shown.to_lowercase().contains("ab, ") && !shown.contains("171"),
        "{shown}"
    );
    let shared = c.dh_shared(&pair, pair.public_value()).unwrap();
    assert_eq!(format!("{shared:?}"), "Secret(32 octets)");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
