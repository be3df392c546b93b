//! Known-answer tests: protocols.md §6.3 primitive vectors, the §6.1 real captured Check
//! Point exchange, every §6.2 full-chain value, and RFC 5903 for group 19 and 20.
//!
//! Tables of hex in the style of wireguard-go's kdf_test: each row is its inputs and the
//! expected output, checked with the real provider.

use std::net::{IpAddr, Ipv4Addr};

use ikecrypto::keymat::{self, AuthInput, IsakmpKeys, KeymatInput, Phase1Input, SkeyidInput};
use ikecrypto::{
    CipherAlgorithm, CryptoError, CryptoProvider, DhGroup, HashAlgorithm, RustCryptoProvider,
    Secret,
};
use isakmp::ProtocolId;

/// Hex to bytes; whitespace is ignored. Test input only.
fn h(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length: {hex}");
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex {s:?}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rep(byte: u8, n: usize) -> Vec<u8> {
    vec![byte; n]
}

fn crypto() -> RustCryptoProvider {
    RustCryptoProvider::new()
}

// ---------------------------------------------------------------------------------------
// §6.3 primitives
// ---------------------------------------------------------------------------------------

#[test]
fn hmac_rfc2202_rfc4231() {
    use HashAlgorithm::*;
    let jefe = (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec());
    let tc1 = |n| (rep(0x0b, n), b"Hi There".to_vec());
    #[rustfmt::skip]
    let table = vec![
        // RFC 2202 HMAC-MD5 test cases 1-3
        (Md5, tc1(16), "9294727a3638bb1c13f48ef8158bfc9d"),
        (Md5, jefe.clone(), "750c783e6ab0b503eaa86e310a5db738"),
        (Md5, (rep(0xaa, 16), rep(0xdd, 50)), "56be34521d144c88dbb8c733f0e8b3f6"),
        // RFC 2202 HMAC-SHA1 test cases 1-3 and 6
        (Sha1, tc1(20), "b617318655057264e28bc0b6fb378c8ef146be00"),
        (Sha1, jefe.clone(), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (Sha1, (rep(0xaa, 20), rep(0xdd, 50)), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
        (Sha1, (rep(0xaa, 80), b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec()),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
        // RFC 4231 test cases 1 and 2
        (Sha2_256, tc1(20), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Sha2_256, jefe.clone(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Sha2_384, tc1(20), "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                             faea9ea9076ede7f4af152e8b2fa9cb6"),
        (Sha2_384, jefe.clone(), "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                                  8e2240ca5e69e2c78b3239ecfab21649"),
        (Sha2_512, tc1(20), "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        (Sha2_512, jefe, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                          9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    ];
    let c = crypto();
    for (alg, (key, data), expected) in &table {
        // Whole, and split into two parts (the PRF takes the data in pieces).
        let whole = c.prf(*alg, key, &[data]);
        assert_eq!(hex(whole.as_bytes()), *expected, "{alg} key {}", hex(key));
        let (a, b) = data.split_at(data.len() / 2);
        assert_eq!(c.prf(*alg, key, &[a, &[], b]), whole, "{alg} split");
        assert_eq!(whole.len(), alg.output_len());
    }
}

#[test]
fn hash_fips180_abc_and_vendor_id() {
    use HashAlgorithm::*;
    #[rustfmt::skip]
    let table: [(HashAlgorithm, &[u8], &str); 6] = [
        (Md5, b"abc", "900150983cd24fb0d6963f7d28e17f72"),
        (Sha1, b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (Sha2_256, b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Sha2_384, b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                            8086072ba1e7cc2358baeca134c825a7"),
        (Sha2_512, b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                            2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        // protocols.md §1.1: the Windows "GSSAPI" vendor ID is MD5("GSSAPI").
        (Md5, b"GSSAPI", "621b04bb09882ac1e15935fefa24aeee"),
    ];
    let c = crypto();
    for (alg, data, expected) in table {
        assert_eq!(hex(&c.hash(alg, &[data])), expected, "{alg}");
        assert_eq!(
            c.hash(alg, &[&data[..1], &data[1..]]),
            h(expected),
            "{alg} split"
        );
    }
}

/// SP 800-38A F.2 plaintext (four blocks).
const SP800_38A_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                            30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";

#[test]
fn cbc_rfc3602_sp800_38a() {
    use CipherAlgorithm::*;
    let pt_00_1f: Vec<u8> = (0x00..=0x1f).collect();
    let pt_a0_df: Vec<u8> = (0xa0..=0xdf).collect();
    #[rustfmt::skip]
    let table = vec![
        ("RFC 3602 case 1", Aes128Cbc, "06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41",
            b"Single block msg".to_vec(), "e353779c1079aeb82708942dbe77181a"),
        ("RFC 3602 case 2", Aes128Cbc, "c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58",
            pt_00_1f, "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"),
        ("RFC 3602 case 3", Aes128Cbc, "56e47a38c5598974bc46903dba290349", "8ce82eefbea0da3c44699ed7db51b7d9",
            pt_a0_df, "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e\
                       35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55"),
        ("SP 800-38A F.2.1", Aes128Cbc, "2b7e151628aed2a6abf7158809cf4f3c", "000102030405060708090a0b0c0d0e0f",
            h(SP800_38A_PT), "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                              73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"),
        ("SP 800-38A F.2.5", Aes256Cbc,
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "000102030405060708090a0b0c0d0e0f",
            h(SP800_38A_PT), "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                              39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"),
        ("SP 800-38A F.2.3", Aes192Cbc,
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "000102030405060708090a0b0c0d0e0f",
            h(SP800_38A_PT), "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a\
                              571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd"),
    ];
    let c = crypto();
    for (name, alg, key, iv, pt, ct) in table {
        let mut buf = pt.clone();
        c.encrypt(alg, &h(key), &h(iv), &mut buf).unwrap();
        assert_eq!(hex(&buf), hex(&h(ct)), "{name} encrypt");
        c.decrypt(alg, &h(key), &h(iv), &mut buf).unwrap();
        assert_eq!(buf, pt, "{name} decrypt");
    }
}

/// ECB of each block = CBC of that block alone with an all-zero IV.
fn ecb_encrypt(c: &dyn CryptoProvider, alg: CipherAlgorithm, key: &[u8], data: &mut [u8]) {
    let iv = vec![0; alg.block_len()];
    for block in data.chunks_mut(alg.block_len()) {
        c.encrypt(alg, key, &iv, block).unwrap();
    }
}

#[test]
fn des_and_3des() {
    let c = crypto();
    // NIST SP 800-67 TDEA example (ECB, three blocks).
    let key = h("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123");
    let mut buf = b"The qufck brown fox jump".to_vec();
    ecb_encrypt(&c, CipherAlgorithm::TripleDesCbc, &key, &mut buf);
    assert_eq!(
        hex(&buf),
        "a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900"
    );
    // The same three blocks in CBC: block 1 is the same, and decryption inverts it.
    let iv = [0u8; 8];
    let mut cbc = b"The qufck brown fox jump".to_vec();
    c.encrypt(CipherAlgorithm::TripleDesCbc, &key, &iv, &mut cbc)
        .unwrap();
    assert_eq!(cbc[..8], buf[..8]);
    c.decrypt(CipherAlgorithm::TripleDesCbc, &key, &iv, &mut cbc)
        .unwrap();
    assert_eq!(cbc, b"The qufck brown fox jump");

    // The classic DES example (one block).
    let mut block = h("0123456789ABCDEF");
    ecb_encrypt(
        &c,
        CipherAlgorithm::DesCbc,
        &h("133457799BBCDFF1"),
        &mut block,
    );
    assert_eq!(hex(&block), "85e813540f0ab405");
    c.decrypt(
        CipherAlgorithm::DesCbc,
        &h("133457799BBCDFF1"),
        &iv,
        &mut block,
    )
    .unwrap();
    assert_eq!(hex(&block), "0123456789abcdef");
}

#[test]
fn cipher_size_errors() {
    let c = crypto();
    for alg in CipherAlgorithm::ALL {
        let key = vec![7; alg.key_len()];
        let iv = vec![9; alg.block_len()];
        let mut data = vec![0; alg.block_len() * 3];
        c.encrypt(alg, &key, &iv, &mut data).unwrap();
        assert_eq!(
            ikecrypto::last_block(alg, &data).map(<[u8]>::len),
            Some(alg.block_len())
        );
        c.decrypt(alg, &key, &iv, &mut data).unwrap();
        assert_eq!(data, vec![0; alg.block_len() * 3], "{alg} round trip");
        // Empty data is zero blocks: fine.
        c.encrypt(alg, &key, &iv, &mut []).unwrap();

        let mut odd = vec![0; alg.block_len() + 1];
        let err = c.decrypt(alg, &key, &iv, &mut odd).unwrap_err();
        assert!(matches!(err, CryptoError::NotBlockAligned { .. }), "{err}");
        assert!(err.is_peer_error());
        let err = c.encrypt(alg, &key[1..], &iv, &mut data).unwrap_err();
        assert!(matches!(err, CryptoError::KeyLength { .. }), "{err}");
        assert!(err.notify_type().is_none());
        let err = c.encrypt(alg, &key, &iv[1..], &mut data).unwrap_err();
        assert!(matches!(err, CryptoError::IvLength { .. }), "{err}");
        assert_eq!(
            ikecrypto::last_block(alg, &data[..alg.block_len() - 1]),
            None
        );
    }
}

// ---------------------------------------------------------------------------------------
// §6.1 real captured aggressive mode, Check Point FW-1 NG AI R54, PSK "abc123"
// ---------------------------------------------------------------------------------------

struct Capture {
    hash: HashAlgorithm,
    g_xr: &'static str,
    g_xi: &'static str,
    cky_r: &'static str,
    cky_i: &'static str,
    sai_b: &'static str,
    idir_b: &'static str,
    ni_b: &'static str,
    nr_b: &'static str,
    skeyid: &'static str,
    hash_r: &'static str,
}

#[rustfmt::skip]
const CHECKPOINT: [Capture; 2] = [
    Capture {
        hash: HashAlgorithm::Md5,
        g_xr: "9c1e0e07828af45086a4eb559ad8dafb7d655bab38656609426653565ef7e332bed7212cf24a05048032240256a169a68ee304ca500abe073d150bc50239350446ab568132aebcf34acd25ce23b30d0de9f8e7a89c22ce0dec2dabf0409bc25f0988d5d956916dce220c630d2a1fda846667fdecb20b2dc2d5c5b8273a07095c",
        g_xi: "6f8c74c15bb4dd09b7af8d1c23e7b381a38dddcd4c5afb3b1335ff766f0267df8fdca0ea907ef4482d8164506817d10ba4aed8f108d32c1b082b91772df956bcd5f7a765759bada21c11f28429c48fcd7267be7b3aea96421528b9432110fff607a65b7c41091e5d1a10e143d4701147d7cfc211ba5853cf800d12a11d129724",
        cky_r: "6d08132c8abb6931",
        cky_i: "eac82ea45cbe59e6",
        sai_b: "00000001000000010000002c01010001000000240101000080010001800200018003000180040002800b0001000c000400007080",
        idir_b: "01000000ac100202",
        ni_b: "64745a975dbcd95c2abf7d2eeeb93ac4633a03f1",
        nr_b: "502c0b3872518fa1e7ff8f5a28a3d797f65e2cb1",
        skeyid: "44bb51d176dc251119ba0e87f49346a5",
        hash_r: "f995ec2968f695aeb1d4e4b437f49d26",
    },
    Capture {
        hash: HashAlgorithm::Sha1,
        g_xr: "6c5559243259d5293df34a766561b8ffa78a9f8ee03d8a05916aadeeba9997864e0cd712f2a08104366c5e48f391ee7ce7b0ac08c59b8001c888c9f0343fd7d7d2d1da8e672c4ff05a7dd3c4eb6adc09bec712128ed951f7fcde2c31431643eb04d5ffc0be68e17aa80168e9635cb6f4c80af8ea1432c2b095b25f3d79ac4e55",
        g_xi: "857209de96faf07bad57ff1aba648a2c61a6802e4db3ab54c5593fa8abd9b1304bbb0fe2b5ff5d63565c7d10c1073d22adbd51fb70fc4f35568ede01678f32b24a41940040f263964ee0a70fe8e43295a18390117fdf46d56d24d7d4b40987fe4a1bfe8a0d61205c42c76b2aab9dbf4c20505da02fa4759dc84c717c55f87b9f",
        cky_r: "963c61ef1778b6c5",
        cky_i: "efa6639971a91c08",
        sai_b: "00000001000000010000002c01010001000000240101000080010001800200028003000180040002800b0001000c000400007080",
        idir_b: "01000000ac100202",
        ni_b: "6d62656f72fd1c53cda7337d0612aeebe3529a09",
        nr_b: "8e83c48eb087b8276b4bb2976ea23bf426abde8f",
        skeyid: "c1e6e45bfed733bcab990f30645a6c8fddc0470a",
        hash_r: "543ea42889c07b17390cc6f0440246c0148422df",
    },
];

fn cookie(s: &str) -> [u8; 8] {
    h(s).try_into().unwrap()
}

#[test]
fn checkpoint_capture_skeyid_and_hash_r() {
    let c = crypto();
    for cap in &CHECKPOINT {
        let (cky_i, cky_r) = (cookie(cap.cky_i), cookie(cap.cky_r));
        let (ni_b, nr_b) = (h(cap.ni_b), h(cap.nr_b));
        // The capture has no g^xy (the PSK SKEYID and HASH_R do not depend on it); the
        // derived SKEYID_d/a/e are not checked here.
        let g_xy = Secret::default();
        let input = Phase1Input {
            ni_b: &ni_b,
            nr_b: &nr_b,
            g_xy: &g_xy,
            cky_i: &cky_i,
            cky_r: &cky_r,
        };
        let keys = IsakmpKeys::derive(&c, cap.hash, SkeyidInput::PreSharedKey(b"abc123"), &input);
        assert_eq!(
            hex(keys.skeyid().as_bytes()),
            cap.skeyid,
            "{} SKEYID",
            cap.hash
        );
        let (g_xi, g_xr, sai_b) = (h(cap.g_xi), h(cap.g_xr), h(cap.sai_b));
        let auth = AuthInput {
            g_xi: &g_xi,
            g_xr: &g_xr,
            cky_i: &cky_i,
            cky_r: &cky_r,
            sai_b: &sai_b,
        };
        let hash_r = keys.hash_r(&c, &auth, &h(cap.idir_b));
        assert_eq!(hex(hash_r.as_bytes()), cap.hash_r, "{} HASH_R", cap.hash);
        keymat::verify_hash(&hash_r, &h(cap.hash_r), "HASH_R").unwrap();
        // A wrong PSK gives a HASH_R that does not verify.
        let wrong = IsakmpKeys::derive(&c, cap.hash, SkeyidInput::PreSharedKey(b"abc124"), &input);
        let err = keymat::verify_hash(
            &wrong.hash_r(&c, &auth, &h(cap.idir_b)),
            &h(cap.hash_r),
            "HASH_R",
        )
        .unwrap_err();
        assert_eq!(err, CryptoError::HashMismatch { what: "HASH_R" });
        assert_eq!(
            err.notify_type(),
            Some(isakmp::NotifyType::INVALID_HASH_INFORMATION)
        );
    }
}

// ---------------------------------------------------------------------------------------
// §6.2 full-chain regression vectors (ikev1_vectors.py): group 2, SHA1, 3DES, PSK "secret"
// ---------------------------------------------------------------------------------------

const G_XI: &str = "
    a3616141ace28df1503b7975754b8c03513504fbe6e5373c7334642867b0bfc3
    4f34b23d197bddfcebb0544f05314647406a35f3a460490a86f201e051503691
    1542486fed3e087748d5e5079e17a362555f92c501caf3c5227c47fb2f9f1f0e
    1470a8935cfb5b58df64efa5cd0b19880cf20cd472e142af343f983240de1980";
const G_XR: &str = "
    5daba0bf13f733d5e49510ade27c8ec1c5a89328278291f7548c6204ca0408c5
    a20d7dc64829f77c3b7ef03eb279deade1f98e9d5a4198cbc4249b1a90d68501
    94e5c8dcdc80e4eb4b663245c0e776ac8eb4dae6ec48146c206d27cf2d8f8a49
    a53a51f7822245b6ab41d49c1cb91e1609be707945c0be75d67e16ec3011a2bb";
const G_XY: &str = "
    6130d1167ba0e97f35edfb8a334f34997c37326988b09b3f1bf5a0e0a479e3b0
    b4a2812e86ff53e9cf31ed8b7c402f532516d2bdec88539d50e37f1bef54557d
    51fd96ef0b5ee20c5e56dfa751973820555b1e67b70aa6f8ceeb5129fd69a0f8
    e72d4d317825c77e3bbb4ad988d794db22c704f8fa6667e2a233ed748fb5c1a9";
const G_QM_XY: &str = "
    31251909ebb4320dfa2448e497e5ba527619d41c474f02face3409181bbc178e
    fa6978b78c4168062896d180954f1bf6a8bb177e96550a5bb1513634bae5feb7
    0220fb700aa04ca83a4e0799f3026abf6efb8bf455af99d2583ecc7687f5eaa5
    468cc39f18c17f228894758ea12344266f60ee3e709141f8b7838d8ef0aad0b8";

const CKY_I: [u8; 8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
const CKY_R: [u8; 8] = [0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
/// SAi_b: DOI IPsec, SIT_IDENTITY_ONLY, P#1 PROTO_ISAKMP, T#1 KEY_IKE 3DES/SHA/PSK/grp2/
/// 28800 s.
const SAI_B: &str = "0000000100000001 0000002c01010001 0000002401010000
                     80010005800200028003000180040002800b0001000c000400007080";
const IDII_B: &str = "01000000c0a80001";
const IDIR_B: &str = "01000000c0a80002";
const QM_MID: u32 = 0x0102_0304;
/// QM1 payloads after HASH(1), as on the wire (SA, Nonce, IDci, IDcr).
const QM1_AFTER_HASH: &str = "
    0a00003400000001000000010000002801030401111111110000001c010c0000
    8001000180020e10800400018005000280060080050000144041424344454647
    48494a4b4c4d4e4f05000010040000000a000100ffffff000000001004000000
    0a000200ffffff00";

/// Everything the §6.2 chain computes, derived with our own DH.
struct Chain {
    c: RustCryptoProvider,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
    keys: IsakmpKeys,
    ni_b: Vec<u8>,
    nr_b: Vec<u8>,
    qm_ni_b: Vec<u8>,
    qm_nr_b: Vec<u8>,
}

fn chain() -> Chain {
    let c = crypto();
    let i = c.dh_generate(DhGroup::Modp1024, &[0x11; 32]).unwrap();
    let r = c.dh_generate(DhGroup::Modp1024, &[0x22; 32]).unwrap();
    let g_xy = c.dh_shared(&i, r.public_value()).unwrap();
    let ni_b: Vec<u8> = (0x00..0x14).collect();
    let nr_b: Vec<u8> = (0x20..0x34).collect();
    let keys = IsakmpKeys::derive(
        &c,
        HashAlgorithm::Sha1,
        SkeyidInput::PreSharedKey(b"secret"),
        &Phase1Input {
            ni_b: &ni_b,
            nr_b: &nr_b,
            g_xy: &g_xy,
            cky_i: &CKY_I,
            cky_r: &CKY_R,
        },
    );
    Chain {
        g_xi: i.public_value().to_vec(),
        g_xr: r.public_value().to_vec(),
        c,
        keys,
        ni_b,
        nr_b,
        qm_ni_b: (0x40..0x50).collect(),
        qm_nr_b: (0x60..0x70).collect(),
    }
}

#[test]
fn v62_diffie_hellman_group2() {
    let c = crypto();
    let i = c.dh_generate(DhGroup::Modp1024, &[0x11; 32]).unwrap();
    let r = c.dh_generate(DhGroup::Modp1024, &[0x22; 32]).unwrap();
    assert_eq!(hex(i.public_value()), hex(&h(G_XI)), "g^xi");
    assert_eq!(hex(r.public_value()), hex(&h(G_XR)), "g^xr");
    let ir = c.dh_shared(&i, r.public_value()).unwrap();
    let ri = c.dh_shared(&r, i.public_value()).unwrap();
    assert_eq!(hex(ir.as_bytes()), hex(&h(G_XY)), "g^xy");
    assert_eq!(ir, ri);
    // PFS: xi2 = 0x33 x 32, xr2 = 0x44 x 32.
    let i2 = c.dh_generate(DhGroup::Modp1024, &[0x33; 32]).unwrap();
    let r2 = c.dh_generate(DhGroup::Modp1024, &[0x44; 32]).unwrap();
    let qm = c.dh_shared(&i2, r2.public_value()).unwrap();
    assert_eq!(hex(qm.as_bytes()), hex(&h(G_QM_XY)), "g(qm)^xy");
    assert_eq!(c.dh_shared(&r2, i2.public_value()).unwrap(), qm);
}

#[test]
fn v62_skeyid_and_descendants() {
    let ch = chain();
    let c = &ch.c;
    let g_xy = Secret::new(h(G_XY));
    let input = Phase1Input {
        ni_b: &ch.ni_b,
        nr_b: &ch.nr_b,
        g_xy: &g_xy,
        cky_i: &CKY_I,
        cky_r: &CKY_R,
    };
    let sig = keymat::skeyid(c, HashAlgorithm::Sha1, SkeyidInput::Signature, &input);
    #[rustfmt::skip]
    let table: [(&str, &[u8], &str); 5] = [
        ("SKEYID(psk)", ch.keys.skeyid().as_bytes(), "142992476abce7023a4f7fb3f581ac62dd07096a"),
        ("SKEYID(sig)", sig.as_bytes(), "ecfe40a80ffa763fcac9659a390faa245b4e9358"),
        ("SKEYID_d", ch.keys.skeyid_d().as_bytes(), "2cc2396cdd7cb4e07a9d07bb37beb7420ed232cc"),
        ("SKEYID_a", ch.keys.skeyid_a().as_bytes(), "3eb46ab3dcd99cbab224d6c01a6b238ddca2f5bb"),
        ("SKEYID_e", ch.keys.skeyid_e().as_bytes(), "7367dffd6c80aa3c201f37bf712b59d9197cfdcf"),
    ];
    for (name, got, expected) in table {
        assert_eq!(hex(got), expected, "{name}");
    }
    // The signature form is also the GSS-API form; the public key encryption form is
    // prf(hash(Ni_b | Nr_b), CKY-I | CKY-R): check it against its definition.
    let pke = keymat::skeyid(
        c,
        HashAlgorithm::Sha1,
        SkeyidInput::PublicKeyEncryption,
        &input,
    );
    let key = c.hash(HashAlgorithm::Sha1, &[&ch.ni_b, &ch.nr_b]);
    assert_eq!(pke, c.prf(HashAlgorithm::Sha1, &key, &[&CKY_I, &CKY_R]));
}

#[test]
fn v62_appendix_b_keys_and_phase1_iv() {
    let ch = chain();
    let c = &ch.c;
    #[rustfmt::skip]
    let table = [
        (CipherAlgorithm::TripleDesCbc, "956ae77d47a0c199cab641ba9ff9979c6b369bae600facd1", "1a25f8b335a4fced"),
        (CipherAlgorithm::Aes128Cbc, "7367dffd6c80aa3c201f37bf712b59d9", "1a25f8b335a4fcedcb62ea4753685de9"),
        (CipherAlgorithm::Aes256Cbc, "956ae77d47a0c199cab641ba9ff9979c6b369bae600facd1b3cd4184d930b23d",
            "1a25f8b335a4fcedcb62ea4753685de9"),
    ];
    for (cipher, ka, iv) in table {
        assert_eq!(
            hex(ch.keys.encryption_key(c, cipher).as_bytes()),
            ka,
            "Ka {cipher}"
        );
        let iv1 = keymat::phase1_iv(c, HashAlgorithm::Sha1, cipher, &ch.g_xi, &ch.g_xr);
        assert_eq!(hex(&iv1), iv, "IV1 {cipher}");
    }
}

#[test]
fn v62_hash_i_hash_r() {
    let ch = chain();
    let sai_b = h(SAI_B);
    let auth = AuthInput {
        g_xi: &ch.g_xi,
        g_xr: &ch.g_xr,
        cky_i: &CKY_I,
        cky_r: &CKY_R,
        sai_b: &sai_b,
    };
    let hash_i = ch.keys.hash_i(&ch.c, &auth, &h(IDII_B));
    let hash_r = ch.keys.hash_r(&ch.c, &auth, &h(IDIR_B));
    assert_eq!(
        hex(hash_i.as_bytes()),
        "f2d0cd08cd566c2fee2af0a06523b83a3467e40a"
    );
    assert_eq!(
        hex(hash_r.as_bytes()),
        "fd6f525a5f0d95bd81d2bd9dc9ecb57d7f4f2d2f"
    );
    keymat::verify_hash(
        &hash_i,
        &h("f2d0cd08cd566c2fee2af0a06523b83a3467e40a"),
        "HASH_I",
    )
    .unwrap();
    // HASH_I is not HASH_R, and a truncated hash does not verify.
    assert!(keymat::verify_hash(&hash_i, hash_r.as_bytes(), "HASH_I").is_err());
    assert!(keymat::verify_hash(&hash_i, &hash_i.as_bytes()[..12], "HASH_I").is_err());
}

#[test]
fn v62_nat_d() {
    let c = crypto();
    #[rustfmt::skip]
    let table = [
        ([192, 168, 0, 1], 500, "cf257aa9f74d80fd951b04d74f16ae2e493c21ba"),
        ([192, 168, 0, 2], 4500, "26da12ed0981926ca105a8b7632ff420b888e7c0"),
    ];
    for (ip, port, expected) in table {
        let addr = IpAddr::V4(Ipv4Addr::from(ip));
        let got = keymat::nat_d(&c, HashAlgorithm::Sha1, &CKY_I, &CKY_R, addr, port);
        assert_eq!(hex(&got), expected, "NAT-D {addr}:{port}");
    }
    // IPv6: 16 address octets, checked against the definition.
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let got = keymat::nat_d(&c, HashAlgorithm::Sha1, &CKY_I, &CKY_R, v6, 4500);
    let octets = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert_eq!(
        got,
        c.hash(
            HashAlgorithm::Sha1,
            &[&CKY_I, &CKY_R, &octets, &[0x11, 0x94]]
        )
    );
}

#[test]
fn v62_quick_mode() {
    let ch = chain();
    let c = &ch.c;
    let iv = keymat::phase2_iv(
        c,
        HashAlgorithm::Sha1,
        CipherAlgorithm::TripleDesCbc,
        &h("a1a2a3a4a5a6a7a8"),
        QM_MID,
    );
    assert_eq!(hex(&iv), "c6ba0b76912bb41c", "QM IV");

    let qm1 = h(QM1_AFTER_HASH);
    // QM2 carries the same payloads with the responder's SPI (after P#1 ESP) and nonce.
    let qm1_hex: String = QM1_AFTER_HASH.split_whitespace().collect();
    let qm2 = h(&qm1_hex
        .replace("0103040111111111", "0103040122222222")
        .replace(
            "404142434445464748494a4b4c4d4e4f",
            "606162636465666768696a6b6c6d6e6f",
        ));
    assert_ne!(qm1, qm2);
    assert_eq!(qm2.len(), qm1.len());
    let hash1 = ch.keys.quick_mode_hash1(c, QM_MID, &qm1);
    let hash2 = ch.keys.quick_mode_hash2(c, QM_MID, &ch.qm_ni_b, &qm2);
    let hash3 = ch
        .keys
        .quick_mode_hash3(c, QM_MID, &ch.qm_ni_b, &ch.qm_nr_b);
    assert_eq!(
        hex(hash1.as_bytes()),
        "251223e439521f22a04f53a9a294359d605a6c6b",
        "HASH(1)"
    );
    assert_eq!(
        hex(hash2.as_bytes()),
        "f929bb25a750ce27eb31897e5e1d4eefe240e1e0",
        "HASH(2)"
    );
    assert_eq!(
        hex(hash3.as_bytes()),
        "033ca4c8b3b05a0075d96ccebb1583a164e85482",
        "HASH(3)"
    );
}

#[test]
fn v62_keymat() {
    let ch = chain();
    let c = &ch.c;
    let g_qm = Secret::new(h(G_QM_XY));
    let esp = |spi: [u8; 4], pfs| KeymatInput {
        protocol: ProtocolId::ESP,
        spi,
        ni_b: &ch.qm_ni_b,
        nr_b: &ch.qm_nr_b,
        pfs_g_xy: pfs,
    };
    // ESP AES-128-CBC (16 octets) + HMAC-SHA1 (20 octets).
    #[rustfmt::skip]
    let table = [
        ("I->R (SPI_r)", esp([0x22; 4], None), "bd4cf1c731ec17e1b580930484f1af51", "cd73595834b84a08985bdead754d1bb5ecebe533"),
        ("R->I (SPI_i)", esp([0x11; 4], None), "264c282fc9b0234d83278ec2198d68e5", "d8af6583c0ef827d864d77fc4c9116b6e3999238"),
        ("PFS I->R", esp([0x22; 4], Some(&g_qm)), "16a154a508bfd31981b63184bb80a8cc", "2db9aac1d17479c8e3589dba49887ed469d3dfe6"),
    ];
    for (name, input, enc, auth) in table {
        let keys = ch.keys.child_sa_keys(c, &input, 16, 20);
        assert_eq!(hex(keys.encryption.as_bytes()), enc, "KEYMAT {name} enc");
        assert_eq!(hex(keys.integrity.as_bytes()), auth, "KEYMAT {name} auth");
        // Longer KEYMAT extends, never changes, the shorter one.
        let long = ch.keys.keymat(c, &input, 100);
        assert_eq!(long.as_bytes()[..16], *keys.encryption.as_bytes());
        assert_eq!(long.as_bytes()[16..36], *keys.integrity.as_bytes());
        assert_eq!(long.len(), 100);
    }
}

#[test]
fn v62_informational_hash() {
    let ch = chain();
    // R-U-THERE: DOI 1, PROTO_ISAKMP, SPI size 16, type 36136, SPI = CKY-I | CKY-R, seq 1.
    let n = h("000000200000000101108d2800112233445566778899aabbccddeeff00000001");
    let hash = ch.keys.informational_hash(&ch.c, 0x0a0b_0c0d, &n);
    assert_eq!(
        hex(hash.as_bytes()),
        "2a9b7d9028236b87124d3c44a30514cfc2476604"
    );
}

// ---------------------------------------------------------------------------------------
// RFC 5903 §8 test vectors (ECP groups 19 and 20)
// ---------------------------------------------------------------------------------------

#[test]
fn rfc5903_ecp256_ecp384() {
    #[rustfmt::skip]
    let table = [
        (DhGroup::Ecp256,
         "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
         "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180
          5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
         "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
         "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63
          56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
         "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE"),
        (DhGroup::Ecp384,
         "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
          E35B5380 41E649EE 3FAEF896 783AB194",
         "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
          DE3AC808 ACB4BDB4 C88732AE E95F41AA 9482ED1F C0EEB9CA FC498462 5CCFC23F
          65032149 E0E144AD A0241815 35A0F38E EB9FCFF3 C2C947DA E69B4C63 4573A81C",
         "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
          E0308312 916B8ED2 960E4BD5 5A7448FC",
         "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
          0D1AC43A 0336DEF9 6FDA41D0 774A3571 DCFBEC7A ACF31964 72169E83 8430367F
          66EEBE3C 6E70C416 DD5F0C68 759DD1FF F83FA401 42209DFF 5EAAD96D B9E6386C",
         "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
          D6031355 69B9E9D0 9CF5D4A2 70F59746"),
    ];
    let c = crypto();
    for (group, i, g_i, r, g_r, g_ir) in table {
        let ours = c.dh_generate(group, &h(i)).unwrap();
        let theirs = c.dh_generate(group, &h(r)).unwrap();
        assert_eq!(hex(ours.public_value()), hex(&h(g_i)), "{group} g^i");
        assert_eq!(hex(theirs.public_value()), hex(&h(g_r)), "{group} g^r");
        let shared = c.dh_shared(&ours, &h(g_r)).unwrap();
        assert_eq!(hex(shared.as_bytes()), hex(&h(g_ir)), "{group} g^ir");
        assert_eq!(c.dh_shared(&theirs, &h(g_i)).unwrap(), shared);
    }
}
