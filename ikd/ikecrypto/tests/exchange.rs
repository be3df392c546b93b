//! Both ends of a main mode + quick mode, as the engine will drive this crate: each side
//! derives its keys from its own DH key pair, MM5 is encrypted with Ka and the phase-1 IV
//! and decrypted by the peer, HASH_I verifies, and the Quick Mode IV and KEYMAT agree.
//! Every proposal of the interop matrix (3DES-SHA1-MODP1024, AES128-SHA1-MODP2048,
//! AES256-SHA256-ECP256) plus DES-MD5-MODP768 and AES192-SHA512-ECP384.

use ikecrypto::keymat::{self, AuthInput, IsakmpKeys, KeymatInput, Phase1Input, SkeyidInput};
use ikecrypto::{
    last_block, CipherAlgorithm, CryptoProvider, DhGroup, HashAlgorithm, RustCryptoProvider,
};
use isakmp::ProtocolId;

const CKY_I: [u8; 8] = *b"initiatr";
const CKY_R: [u8; 8] = *b"respondr";

fn run(cipher: CipherAlgorithm, hash: HashAlgorithm, group: DhGroup) {
    let c = RustCryptoProvider::new();
    let crypto: &dyn CryptoProvider = &c;
    let (ni_b, nr_b) = ([0x01; 16], [0x02; 24]);
    let sai_b = b"initiator's SA payload body";
    let (idii_b, idir_b) = ([1, 0, 0, 0, 10, 0, 0, 1], [1, 0, 0, 0, 10, 0, 0, 2]);
    let psk = b"a shared secret";

    // MM3/MM4: each side makes its key pair and computes g^xy from the other's KE.
    let dh_i = crypto
        .dh_generate(group, &vec![0x5e; group.private_len()])
        .unwrap();
    let dh_r = crypto
        .dh_generate(group, &vec![0x6f; group.private_len()])
        .unwrap();
    let g_xy_i = crypto.dh_shared(&dh_i, dh_r.public_value()).unwrap();
    let g_xy_r = crypto.dh_shared(&dh_r, dh_i.public_value()).unwrap();
    let derive = |g_xy| {
        IsakmpKeys::derive(
            crypto,
            hash,
            SkeyidInput::PreSharedKey(psk),
            &Phase1Input {
                ni_b: &ni_b,
                nr_b: &nr_b,
                g_xy,
                cky_i: &CKY_I,
                cky_r: &CKY_R,
            },
        )
    };
    let (keys_i, keys_r) = (derive(&g_xy_i), derive(&g_xy_r));
    assert_eq!(keys_i.skeyid_e(), keys_r.skeyid_e());
    let ka = keys_i.encryption_key(crypto, cipher);
    assert_eq!(ka.len(), cipher.key_len());
    assert_eq!(ka, keys_r.encryption_key(crypto, cipher));

    // MM5: HDR*, IDii, HASH_I, padded to the block size, encrypted with IV1.
    let (g_xi, g_xr) = (dh_i.public_value(), dh_r.public_value());
    let auth = AuthInput {
        g_xi,
        g_xr,
        cky_i: &CKY_I,
        cky_r: &CKY_R,
        sai_b,
    };
    let hash_i = keys_i.hash_i(crypto, &auth, &idii_b);
    assert_eq!(hash_i.len(), hash.output_len());
    let mut mm5 = idii_b.to_vec();
    mm5.extend_from_slice(hash_i.as_bytes());
    let plain_len = mm5.len();
    mm5.resize(plain_len.next_multiple_of(cipher.block_len()), 0);
    let iv1 = keymat::phase1_iv(crypto, hash, cipher, g_xi, g_xr);
    crypto
        .encrypt(cipher, ka.as_bytes(), &iv1, &mut mm5)
        .unwrap();
    let mm5_last = last_block(cipher, &mm5).unwrap().to_vec();

    // The responder decrypts with its own Ka and IV1 and verifies HASH_I.
    let ka_r = keys_r.encryption_key(crypto, cipher);
    let iv1_r = keymat::phase1_iv(crypto, hash, cipher, g_xi, g_xr);
    crypto
        .decrypt(cipher, ka_r.as_bytes(), &iv1_r, &mut mm5)
        .unwrap();
    let (id, received_hash) = mm5[..plain_len].split_at(idii_b.len());
    assert_eq!(id, idii_b);
    let expected = keys_r.hash_i(crypto, &auth, id);
    keymat::verify_hash(&expected, received_hash, "HASH_I").unwrap();

    // MM6 chains from MM5's last block; HASH_R verifies at the initiator.
    let hash_r = keys_r.hash_r(crypto, &auth, &idir_b);
    let mut mm6 = idir_b.to_vec();
    mm6.extend_from_slice(hash_r.as_bytes());
    let mm6_len = mm6.len();
    mm6.resize(mm6_len.next_multiple_of(cipher.block_len()), 0);
    crypto
        .encrypt(cipher, ka_r.as_bytes(), &mm5_last, &mut mm6)
        .unwrap();
    let mm6_last = last_block(cipher, &mm6).unwrap().to_vec();
    crypto
        .decrypt(cipher, ka.as_bytes(), &mm5_last, &mut mm6)
        .unwrap();
    keymat::verify_hash(
        &keys_i.hash_r(crypto, &auth, &idir_b),
        &mm6[idir_b.len()..mm6_len],
        "HASH_R",
    )
    .unwrap();

    // Quick Mode: both sides compute the same first IV from MM6's last block and M-ID.
    let mid = 0xdead_beef;
    let qm_iv = keymat::phase2_iv(crypto, hash, cipher, &mm6_last, mid);
    assert_eq!(qm_iv.len(), cipher.block_len());
    assert_ne!(qm_iv, iv1);
    let (qni, qnr) = ([0x0a; 16], [0x0b; 16]);
    let after_hash = b"SA, Ni, IDci, IDcr as on the wire";
    let h1 = keys_i.quick_mode_hash1(crypto, mid, after_hash);
    keymat::verify_hash(
        &keys_r.quick_mode_hash1(crypto, mid, after_hash),
        h1.as_bytes(),
        "HASH(1)",
    )
    .unwrap();
    assert!(keymat::verify_hash(
        &keys_r.quick_mode_hash1(crypto, mid + 1, after_hash),
        h1.as_bytes(),
        "HASH(1)"
    )
    .is_err());
    let spi_i = [0xc0, 0, 0, 1];
    let spi_r = [0xc0, 0, 0, 2];
    let input = |spi| KeymatInput {
        protocol: ProtocolId::ESP,
        spi,
        ni_b: &qni,
        nr_b: &qnr,
        pfs_g_xy: None,
    };
    // Outbound at the initiator = inbound at the responder (keyed with SPI_r), and back.
    let out_i = keys_i.child_sa_keys(crypto, &input(spi_r), cipher.key_len(), 20);
    let in_r = keys_r.child_sa_keys(crypto, &input(spi_r), cipher.key_len(), 20);
    let in_i = keys_i.child_sa_keys(crypto, &input(spi_i), cipher.key_len(), 20);
    assert_eq!(out_i.encryption, in_r.encryption);
    assert_eq!(out_i.integrity, in_r.integrity);
    assert_ne!(out_i.encryption, in_i.encryption);
}

#[test]
fn interop_matrix_proposals() {
    use CipherAlgorithm::*;
    use DhGroup::*;
    use HashAlgorithm::*;
    for (cipher, hash, group) in [
        (TripleDesCbc, Sha1, Modp1024),
        (Aes128Cbc, Sha1, Modp2048),
        (Aes256Cbc, Sha2_256, Ecp256),
        (DesCbc, Md5, Modp768),
        (Aes192Cbc, Sha2_512, Ecp384),
    ] {
        run(cipher, hash, group);
    }
}

#[test]
fn oakley_ids_round_trip() {
    for hash in HashAlgorithm::ALL {
        assert_eq!(HashAlgorithm::from_oakley(hash.oakley_id()), Some(hash));
    }
    assert_eq!(HashAlgorithm::from_oakley(3), None, "Tiger");
    for cipher in CipherAlgorithm::ALL {
        let bits = u16::try_from(cipher.key_len() * 8).unwrap();
        assert_eq!(
            CipherAlgorithm::from_oakley(cipher.oakley_id(), Some(bits)),
            Some(cipher)
        );
    }
    assert_eq!(
        CipherAlgorithm::from_oakley(5, None),
        Some(CipherAlgorithm::TripleDesCbc)
    );
    assert_eq!(
        CipherAlgorithm::from_oakley(7, None),
        None,
        "AES needs a key length"
    );
    assert_eq!(CipherAlgorithm::from_oakley(7, Some(64)), None);
    assert_eq!(CipherAlgorithm::from_oakley(3, None), None, "Blowfish");
}
