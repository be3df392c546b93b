//! IKEv1 key derivation, RFC 2409 §5 (and Appendix B, §5.5, RFC 3947 §3.2), written formula
//! by formula: each computation has its RFC formula in a comment right above it.
//!
//! Notation (RFC 2409 §3.2): `prf` is HMAC with the negotiated hash, `|` concatenation,
//! `x_b` the body of payload x (no generic header), `CKY-I`/`CKY-R` the cookies, `g^xy` the
//! DH shared secret left-padded to the prime length (as [`CryptoProvider::dh_shared`]
//! returns it), `M-ID` the 4-octet message ID in network order.
//!
//! What is here: SKEYID for every authentication method, SKEYID_d/a/e ([`IsakmpKeys`]), the
//! Appendix B encryption key, the phase-1 and phase-2 IVs, HASH_I/HASH_R, the Quick Mode
//! HASH(1)/(2)/(3), the Informational HASH(1) (also Quick Mode's HASH(4) with CONNECTED),
//! KEYMAT with and without PFS, and NAT-D. [`verify_hash`] compares a received hash in
//! constant time.
//!
//! What is not: choosing which bytes to hash (the engine passes payload bodies, or "all bytes
//! after the HASH payload" as on the wire, from the `isakmp` crate's raw payload views), IV
//! chaining across messages (the engine keeps the last ciphertext block, see
//! [`crate::last_block`]), signatures (SIG_I/SIG_R sign HASH_I/HASH_R computed here, but the
//! signing itself belongs to a signer), and GSS-API token handling.

use std::net::IpAddr;

use isakmp::ProtocolId;

use crate::alg::{CipherAlgorithm, HashAlgorithm};
use crate::error::CryptoError;
use crate::provider::CryptoProvider;
use crate::secret::Secret;

/// How SKEYID is computed: it depends on the phase-1 authentication method (RFC 2409 §5).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum SkeyidInput<'a> {
    /// Pre-shared key authentication (method 1; also XAUTH with PSK).
    PreSharedKey(&'a [u8]),
    /// Signature authentication (DSS, RSA, ECDSA) and GSS-API Kerberos (racoon and the
    /// GSS draft use the signature form).
    Signature,
    /// Public key encryption, both the original and the revised mode (methods 4 and 5).
    PublicKeyEncryption,
}

impl core::fmt::Debug for SkeyidInput<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PreSharedKey(_) => f.write_str("PreSharedKey(..)"),
            Self::Signature => f.write_str("Signature"),
            Self::PublicKeyEncryption => f.write_str("PublicKeyEncryption"),
        }
    }
}

/// The phase-1 values SKEYID and its descendants are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Phase1Input<'a> {
    /// Ni_b: the body of the initiator's Nonce payload.
    pub ni_b: &'a [u8],
    /// Nr_b: the body of the responder's Nonce payload.
    pub nr_b: &'a [u8],
    /// g^xy, left-padded to the prime length (MODP) or the x coordinate (ECP).
    pub g_xy: &'a Secret,
    /// CKY-I, the initiator's cookie.
    pub cky_i: &'a [u8; 8],
    /// CKY-R, the responder's cookie.
    pub cky_r: &'a [u8; 8],
}

/// SKEYID for the authentication method (RFC 2409 §5).
pub fn skeyid(
    crypto: &dyn CryptoProvider,
    prf: HashAlgorithm,
    method: SkeyidInput<'_>,
    input: &Phase1Input<'_>,
) -> Secret {
    let Phase1Input {
        ni_b,
        nr_b,
        g_xy,
        cky_i,
        cky_r,
    } = *input;
    match method {
        // For pre-shared keys:       SKEYID = prf(pre-shared-key, Ni_b | Nr_b)
        SkeyidInput::PreSharedKey(psk) => crypto.prf(prf, psk, &[ni_b, nr_b]),
        // For signatures:            SKEYID = prf(Ni_b | Nr_b, g^xy)
        SkeyidInput::Signature => {
            let mut key = Secret::from_slice(ni_b);
            key.extend_from_slice(nr_b);
            crypto.prf(prf, key.as_bytes(), &[g_xy.as_bytes()])
        }
        // For public key encryption: SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R)
        SkeyidInput::PublicKeyEncryption => {
            let key = Secret::new(crypto.hash(prf, &[ni_b, nr_b]));
            crypto.prf(prf, key.as_bytes(), &[cky_i, cky_r])
        }
    }
}

/// The keys of an ISAKMP SA: SKEYID and the three keys derived from it.
///
/// Only this type can compute the authenticated hashes and KEYMAT, since only it holds the
/// keys they need. `Debug` shows the PRF only.
#[derive(Clone)]
pub struct IsakmpKeys {
    prf: HashAlgorithm,
    skeyid: Secret,
    skeyid_d: Secret,
    skeyid_a: Secret,
    skeyid_e: Secret,
}

impl core::fmt::Debug for IsakmpKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsakmpKeys")
            .field("prf", &self.prf)
            .finish_non_exhaustive()
    }
}

impl IsakmpKeys {
    /// Derives SKEYID, SKEYID_d, SKEYID_a and SKEYID_e (RFC 2409 §5).
    pub fn derive(
        crypto: &dyn CryptoProvider,
        prf: HashAlgorithm,
        method: SkeyidInput<'_>,
        input: &Phase1Input<'_>,
    ) -> Self {
        let skeyid = skeyid(crypto, prf, method, input);
        let g_xy = input.g_xy.as_bytes();
        let (cky_i, cky_r) = (&input.cky_i[..], &input.cky_r[..]);
        // SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
        let skeyid_d = crypto.prf(prf, skeyid.as_bytes(), &[g_xy, cky_i, cky_r, &[0]]);
        // SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
        let skeyid_a = crypto.prf(
            prf,
            skeyid.as_bytes(),
            &[skeyid_d.as_bytes(), g_xy, cky_i, cky_r, &[1]],
        );
        // SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
        let skeyid_e = crypto.prf(
            prf,
            skeyid.as_bytes(),
            &[skeyid_a.as_bytes(), g_xy, cky_i, cky_r, &[2]],
        );
        Self {
            prf,
            skeyid,
            skeyid_d,
            skeyid_a,
            skeyid_e,
        }
    }

    /// The negotiated hash, used as the PRF.
    pub fn prf(&self) -> HashAlgorithm {
        self.prf
    }

    /// SKEYID.
    pub fn skeyid(&self) -> &Secret {
        &self.skeyid
    }

    /// SKEYID_d, the key for KEYMAT.
    pub fn skeyid_d(&self) -> &Secret {
        &self.skeyid_d
    }

    /// SKEYID_a, the key for the phase-2 and Informational hashes.
    pub fn skeyid_a(&self) -> &Secret {
        &self.skeyid_a
    }

    /// SKEYID_e, the seed of the ISAKMP encryption key.
    pub fn skeyid_e(&self) -> &Secret {
        &self.skeyid_e
    }

    /// The ISAKMP SA's encryption key Ka for `cipher` (RFC 2409 Appendix B): the first
    /// octets of SKEYID_e if it is long enough, otherwise the expansion
    ///
    /// ```text
    /// Ka = K1 | K2 | K3 | ...   K1 = prf(SKEYID_e, 0)   K2 = prf(SKEYID_e, K1)   ...
    /// ```
    ///
    /// where `0` is a single zero octet, truncated to the key length.
    pub fn encryption_key(&self, crypto: &dyn CryptoProvider, cipher: CipherAlgorithm) -> Secret {
        expand_encryption_key(crypto, self.prf, &self.skeyid_e, cipher.key_len())
    }

    /// HASH_I, the initiator's phase-1 authenticator (PSK: sent as is; signatures: signed).
    pub fn hash_i(
        &self,
        crypto: &dyn CryptoProvider,
        input: &AuthInput<'_>,
        idii_b: &[u8],
    ) -> Secret {
        // HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b )
        crypto.prf(
            self.prf,
            self.skeyid.as_bytes(),
            &[
                input.g_xi,
                input.g_xr,
                input.cky_i,
                input.cky_r,
                input.sai_b,
                idii_b,
            ],
        )
    }

    /// HASH_R, the responder's phase-1 authenticator.
    pub fn hash_r(
        &self,
        crypto: &dyn CryptoProvider,
        input: &AuthInput<'_>,
        idir_b: &[u8],
    ) -> Secret {
        // HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b )
        crypto.prf(
            self.prf,
            self.skeyid.as_bytes(),
            &[
                input.g_xr,
                input.g_xi,
                input.cky_r,
                input.cky_i,
                input.sai_b,
                idir_b,
            ],
        )
    }

    /// Quick Mode HASH(1), in the initiator's first message (RFC 2409 §5.5).
    /// `after_hash` is every payload after the HASH payload, generic headers included, as on
    /// the wire and without padding.
    pub fn quick_mode_hash1(
        &self,
        crypto: &dyn CryptoProvider,
        message_id: u32,
        after_hash: &[u8],
    ) -> Secret {
        // HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr )
        crypto.prf(
            self.prf,
            self.skeyid_a.as_bytes(),
            &[&message_id.to_be_bytes(), after_hash],
        )
    }

    /// Quick Mode HASH(2), in the responder's message; `ni_b` is the initiator's Quick Mode
    /// nonce body, `after_hash` as for [`Self::quick_mode_hash1`].
    pub fn quick_mode_hash2(
        &self,
        crypto: &dyn CryptoProvider,
        message_id: u32,
        ni_b: &[u8],
        after_hash: &[u8],
    ) -> Secret {
        // HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr )
        crypto.prf(
            self.prf,
            self.skeyid_a.as_bytes(),
            &[&message_id.to_be_bytes(), ni_b, after_hash],
        )
    }

    /// Quick Mode HASH(3), the initiator's last message; nonce bodies of this Quick Mode.
    pub fn quick_mode_hash3(
        &self,
        crypto: &dyn CryptoProvider,
        message_id: u32,
        ni_b: &[u8],
        nr_b: &[u8],
    ) -> Secret {
        // HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
        crypto.prf(
            self.prf,
            self.skeyid_a.as_bytes(),
            &[&[0], &message_id.to_be_bytes(), ni_b, nr_b],
        )
    }

    /// The Informational exchange's HASH(1) (RFC 2409 §5.7), over the Notification or Delete
    /// payload(s) after the HASH payload, generic headers included. The same formula
    /// authenticates New Group Mode and the 4th Quick Mode message (HASH(4), N(CONNECTED)).
    pub fn informational_hash(
        &self,
        crypto: &dyn CryptoProvider,
        message_id: u32,
        after_hash: &[u8],
    ) -> Secret {
        // HASH(1) = prf(SKEYID_a, M-ID | N/D)
        crypto.prf(
            self.prf,
            self.skeyid_a.as_bytes(),
            &[&message_id.to_be_bytes(), after_hash],
        )
    }

    /// `len` octets of KEYMAT for one IPsec SA (one direction) (RFC 2409 §5.5).
    pub fn keymat(
        &self,
        crypto: &dyn CryptoProvider,
        input: &KeymatInput<'_>,
        len: usize,
    ) -> Secret {
        let protocol = [input.protocol.0];
        let pfs: &[u8] = input.pfs_g_xy.map_or(&[], |g| g.as_bytes());
        // The seed after Kn-1; without PFS the g(qm)^xy part is empty:
        //   [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b
        let seed: [&[u8]; 5] = [pfs, &protocol, &input.spi, input.ni_b, input.nr_b];
        let key = self.skeyid_d.as_bytes();
        // KEYMAT = K1 | K2 | K3 | ...
        // K1 = prf(SKEYID_d, [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
        let mut k = crypto.prf(self.prf, key, &seed);
        let mut keymat = Secret::new(Vec::with_capacity(len + self.prf.output_len()));
        keymat.extend_from_slice(k.as_bytes());
        while keymat.len() < len {
            // Kn = prf(SKEYID_d, Kn-1 | [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
            let [pfs, protocol, spi, ni_b, nr_b] = seed;
            k = crypto.prf(
                self.prf,
                key,
                &[k.as_bytes(), pfs, protocol, spi, ni_b, nr_b],
            );
            keymat.extend_from_slice(k.as_bytes());
        }
        keymat.truncate(len);
        keymat
    }

    /// The keys of one IPsec SA: KEYMAT long enough for both, the encryption key taken first
    /// and the integrity key after it (strongSwan, racoon, RFC 2409 §5.5 leaves the split to
    /// the DOI).
    pub fn child_sa_keys(
        &self,
        crypto: &dyn CryptoProvider,
        input: &KeymatInput<'_>,
        encryption_len: usize,
        integrity_len: usize,
    ) -> ChildSaKeys {
        let keymat = self.keymat(crypto, input, encryption_len + integrity_len);
        let (encryption, integrity) = keymat.as_bytes().split_at(encryption_len);
        ChildSaKeys {
            encryption: Secret::from_slice(encryption),
            integrity: Secret::from_slice(integrity),
        }
    }
}

/// Ka from SKEYID_e (RFC 2409 Appendix B); see [`IsakmpKeys::encryption_key`].
pub fn expand_encryption_key(
    crypto: &dyn CryptoProvider,
    prf: HashAlgorithm,
    skeyid_e: &Secret,
    key_len: usize,
) -> Secret {
    if skeyid_e.len() >= key_len {
        let mut ka = skeyid_e.clone();
        ka.truncate(key_len);
        return ka;
    }
    // Ka = K1 | K2 | K3 | ...
    // K1 = prf(SKEYID_e, 0)
    let mut k = crypto.prf(prf, skeyid_e.as_bytes(), &[&[0]]);
    let mut ka = Secret::new(Vec::with_capacity(key_len + prf.output_len()));
    ka.extend_from_slice(k.as_bytes());
    while ka.len() < key_len {
        // Kn = prf(SKEYID_e, Kn-1)
        k = crypto.prf(prf, skeyid_e.as_bytes(), &[k.as_bytes()]);
        ka.extend_from_slice(k.as_bytes());
    }
    ka.truncate(key_len);
    ka
}

/// The public phase-1 values HASH_I and HASH_R cover besides the identity.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    /// g^xi, the initiator's KE payload body.
    pub g_xi: &'a [u8],
    /// g^xr, the responder's KE payload body.
    pub g_xr: &'a [u8],
    /// CKY-I.
    pub cky_i: &'a [u8],
    /// CKY-R.
    pub cky_r: &'a [u8],
    /// SAi_b: the body of the initiator's SA payload (both hashes use the initiator's).
    pub sai_b: &'a [u8],
}

/// The values KEYMAT for one IPsec SA is computed from.
#[derive(Debug, Clone, Copy)]
pub struct KeymatInput<'a> {
    /// The SA's protocol (ESP, AH or IPCOMP).
    pub protocol: ProtocolId,
    /// The SA's SPI, as chosen by its receiver: for the initiator-to-responder SA the
    /// responder's SPI, for the other the initiator's.
    pub spi: [u8; 4],
    /// Ni_b of this Quick Mode.
    pub ni_b: &'a [u8],
    /// Nr_b of this Quick Mode.
    pub nr_b: &'a [u8],
    /// g(qm)^xy, the Quick Mode's own DH secret, with PFS; `None` without.
    pub pfs_g_xy: Option<&'a Secret>,
}

/// The keys of one IPsec SA, split from its KEYMAT.
#[derive(Debug, Clone)]
pub struct ChildSaKeys {
    /// The encryption key (first in KEYMAT).
    pub encryption: Secret,
    /// The integrity key (after the encryption key).
    pub integrity: Secret,
}

/// The phase-1 IV (RFC 2409 Appendix B): the negotiated hash (not the PRF) of the two public
/// values, truncated to the cipher's block length.
pub fn phase1_iv(
    crypto: &dyn CryptoProvider,
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
    g_xi: &[u8],
    g_xr: &[u8],
) -> Vec<u8> {
    // IV = hash(g^xi | g^xr), truncated to the block size
    let mut iv = crypto.hash(hash, &[g_xi, g_xr]);
    iv.truncate(cipher.block_len());
    iv
}

/// The first IV of a phase-2 (Quick Mode) or Informational exchange (RFC 2409 Appendix B):
/// the hash of the last phase-1 CBC output block and the exchange's message ID, truncated to
/// the block length. Later messages of the exchange chain from its last ciphertext block.
pub fn phase2_iv(
    crypto: &dyn CryptoProvider,
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
    last_phase1_block: &[u8],
    message_id: u32,
) -> Vec<u8> {
    // IV = hash(last phase-1 CBC output block | M-ID), truncated to the block size
    let mut iv = crypto.hash(hash, &[last_phase1_block, &message_id.to_be_bytes()]);
    iv.truncate(cipher.block_len());
    iv
}

/// A NAT-D payload body (RFC 3947 §3.2), with the negotiated hash: send one for the peer's
/// address and port first, then one per local address.
pub fn nat_d(
    crypto: &dyn CryptoProvider,
    hash: HashAlgorithm,
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    address: IpAddr,
    port: u16,
) -> Vec<u8> {
    let port = port.to_be_bytes();
    // HASH = HASH(CKY-I | CKY-R | IP | Port)
    match address {
        IpAddr::V4(a) => crypto.hash(hash, &[cky_i, cky_r, &a.octets(), &port]),
        IpAddr::V6(a) => crypto.hash(hash, &[cky_i, cky_r, &a.octets(), &port]),
    }
}

/// Compares a received hash with the computed one in constant time;
/// [`CryptoError::HashMismatch`] names `what` (for instance `"HASH_R"`) if they differ.
pub fn verify_hash(
    expected: &Secret,
    received: &[u8],
    what: &'static str,
) -> Result<(), CryptoError> {
    if expected.ct_eq(received) {
        Ok(())
    } else {
        Err(CryptoError::HashMismatch { what })
    }
}
