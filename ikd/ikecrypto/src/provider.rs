//! The [`CryptoProvider`] trait: every primitive the IKEv1 engine needs, injected by the
//! caller so the engine stays sans-IO and deterministic under test.
//!
//! The provider is stateless from the engine's point of view: it holds no keys between calls
//! and draws no randomness. Diffie-Hellman key generation takes its random octets as an
//! argument, so the default provider with fixed random octets *is* the deterministic test
//! provider. Key derivation formulas (RFC 2409 §5) are not here but in [`crate::keymat`],
//! which only calls [`CryptoProvider::prf`] and [`CryptoProvider::hash`].
//!
//! The trait is object safe: the engine holds an `Arc<dyn CryptoProvider>`.

use crate::alg::{CipherAlgorithm, DhGroup, HashAlgorithm};
use crate::error::CryptoError;
use crate::secret::Secret;

/// Cryptographic primitives for IKEv1.
pub trait CryptoProvider: Send + Sync {
    /// `prf(key, data[0] | data[1] | ...)`: HMAC with `hash` (RFC 2104). Any key length.
    fn prf(&self, hash: HashAlgorithm, key: &[u8], data: &[&[u8]]) -> Secret;

    /// `hash(data[0] | data[1] | ...)`.
    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Vec<u8>;

    /// Encrypts `data` in place in CBC mode with the explicit `iv`.
    ///
    /// `data` must be a whole number of blocks (the caller pads, RFC 2409 Appendix B). The IV
    /// for the next message in an IKEv1 IV chain is the last ciphertext block
    /// ([`last_block`]); this call does not keep it.
    fn encrypt(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Decrypts `data` in place in CBC mode with the explicit `iv`. Save the last ciphertext
    /// block ([`last_block`]) first if it is the next IV.
    fn decrypt(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Generates a Diffie-Hellman key pair in `group` from the caller's `random` octets
    /// ([`DhGroup::private_len`] of them; see there for the accepted lengths).
    fn dh_generate(&self, group: DhGroup, random: &[u8]) -> Result<DhKeyPair, CryptoError>;

    /// Computes the shared secret g^xy from our key pair and the peer's KE public value,
    /// after validating it (MODP: length equal to the prime length and `1 < y < p-1`; ECP:
    /// `x | y` of a point on the curve). MODP results are left-padded to the prime length,
    /// ECP results are the x coordinate (RFC 5903 §7).
    fn dh_shared(&self, ours: &DhKeyPair, peer_public: &[u8]) -> Result<Secret, CryptoError>;
}

/// The last `cipher` block of `ciphertext`: the next IV in an IKEv1 CBC chain
/// (RFC 2409 Appendix B). `None` if `ciphertext` is shorter than one block.
pub fn last_block(cipher: CipherAlgorithm, ciphertext: &[u8]) -> Option<&[u8]> {
    let start = ciphertext.len().checked_sub(cipher.block_len())?;
    ciphertext.get(start..)
}

/// A Diffie-Hellman key pair: the private key (as the provider that made it encodes it) and
/// the public value as sent in the KE payload.
///
/// `Debug` shows the group and public value length only.
#[derive(Clone)]
pub struct DhKeyPair {
    group: DhGroup,
    private: Secret,
    public: Vec<u8>,
}

impl DhKeyPair {
    /// Assembles a key pair. For [`CryptoProvider`] implementations: `private` is whatever
    /// that provider's [`CryptoProvider::dh_shared`] expects.
    pub fn from_parts(group: DhGroup, private: Secret, public: Vec<u8>) -> Self {
        Self {
            group,
            private,
            public,
        }
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value, exactly as it goes into the KE payload (g^x left-padded to the prime
    /// length, or `x | y` for ECP).
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The private key, in the encoding of the provider that made it. For providers.
    pub fn private_key(&self) -> &Secret {
        &self.private
    }
}

impl core::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("group", &self.group)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}
