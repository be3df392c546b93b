//! [`RustCryptoProvider`]: the default [`CryptoProvider`], built on the pure-Rust RustCrypto
//! crates (`hmac`, `md-5`, `sha1`, `sha2`, `des`, `aes`, `cbc`, `crypto-bigint`, `p256`,
//! `p384`, `p521`).
//!
//! It keeps no secrets and draws no randomness, so with fixed random octets passed to
//! [`CryptoProvider::dh_generate`] it is also the deterministic provider for tests. Its only
//! state is a cache of the MODP Montgomery parameters, filled on first use of each group.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::{
    array::Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt,
    KeyInit, KeyIvInit,
};
use des::{Des, TdesEde3};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::alg::{CipherAlgorithm, DhGroup, HashAlgorithm};
use crate::ecp;
use crate::error::CryptoError;
use crate::modp::ModpCache;
use crate::provider::{CryptoProvider, DhKeyPair};
use crate::secret::Secret;

/// The default provider: RustCrypto primitives, constant time where secrets are involved.
#[derive(Debug, Default)]
pub struct RustCryptoProvider {
    modp: ModpCache,
}

impl RustCryptoProvider {
    /// A provider with an empty MODP parameter cache.
    pub fn new() -> Self {
        Self::default()
    }
}

fn hmac<M: Mac + KeyInit>(key: &[u8], data: &[&[u8]]) -> Secret {
    // HMAC accepts keys of any length (RFC 2104 §2: longer keys are hashed first).
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    for part in data {
        mac.update(part);
    }
    let mut out = mac.finalize().into_bytes();
    let secret = Secret::from_slice(&out);
    zeroize::Zeroize::zeroize(out.as_mut_slice());
    secret
}

fn digest<D: Digest>(data: &[&[u8]]) -> Vec<u8> {
    let mut hasher = D::new();
    for part in data {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// Checks key, IV and data lengths against `cipher`.
fn check(cipher: CipherAlgorithm, key: &[u8], iv: &[u8], data: &[u8]) -> Result<(), CryptoError> {
    if key.len() != cipher.key_len() {
        return Err(CryptoError::KeyLength {
            cipher,
            got: key.len(),
            expected: cipher.key_len(),
        });
    }
    if iv.len() != cipher.block_len() {
        return Err(CryptoError::IvLength {
            cipher,
            got: iv.len(),
            expected: cipher.block_len(),
        });
    }
    if !data.len().is_multiple_of(cipher.block_len()) {
        return Err(CryptoError::NotBlockAligned {
            cipher,
            len: data.len(),
            block: cipher.block_len(),
        });
    }
    Ok(())
}

/// CBC over the blocks of `data`; lengths were checked by [`check`].
fn cbc_encrypt<C>(
    cipher: CipherAlgorithm,
    key: &[u8],
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), CryptoError>
where
    C: BlockCipherEncrypt + KeyInit,
{
    check(cipher, key, iv, data)?;
    let mut mode =
        cbc::Encryptor::<C>::new_from_slices(key, iv).map_err(|_| key_error(cipher, key))?;
    let len = data.len();
    let (blocks, rest) = Array::slice_as_chunks_mut(data);
    if !rest.is_empty() {
        return Err(align_error(cipher, len));
    }
    mode.encrypt_blocks(blocks);
    Ok(())
}

/// CBC decryption over the blocks of `data`; lengths were checked by [`check`].
fn cbc_decrypt<C>(
    cipher: CipherAlgorithm,
    key: &[u8],
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), CryptoError>
where
    C: BlockCipherDecrypt + KeyInit,
{
    check(cipher, key, iv, data)?;
    let mut mode =
        cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| key_error(cipher, key))?;
    let len = data.len();
    let (blocks, rest) = Array::slice_as_chunks_mut(data);
    if !rest.is_empty() {
        return Err(align_error(cipher, len));
    }
    mode.decrypt_blocks(blocks);
    Ok(())
}

fn key_error(cipher: CipherAlgorithm, key: &[u8]) -> CryptoError {
    CryptoError::KeyLength {
        cipher,
        got: key.len(),
        expected: cipher.key_len(),
    }
}

fn align_error(cipher: CipherAlgorithm, len: usize) -> CryptoError {
    CryptoError::NotBlockAligned {
        cipher,
        len,
        block: cipher.block_len(),
    }
}

impl CryptoProvider for RustCryptoProvider {
    fn prf(&self, hash: HashAlgorithm, key: &[u8], data: &[&[u8]]) -> Secret {
        match hash {
            HashAlgorithm::Md5 => hmac::<Hmac<Md5>>(key, data),
            HashAlgorithm::Sha1 => hmac::<Hmac<Sha1>>(key, data),
            HashAlgorithm::Sha2_256 => hmac::<Hmac<Sha256>>(key, data),
            HashAlgorithm::Sha2_384 => hmac::<Hmac<Sha384>>(key, data),
            HashAlgorithm::Sha2_512 => hmac::<Hmac<Sha512>>(key, data),
        }
    }

    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Vec<u8> {
        match hash {
            HashAlgorithm::Md5 => digest::<Md5>(data),
            HashAlgorithm::Sha1 => digest::<Sha1>(data),
            HashAlgorithm::Sha2_256 => digest::<Sha256>(data),
            HashAlgorithm::Sha2_384 => digest::<Sha384>(data),
            HashAlgorithm::Sha2_512 => digest::<Sha512>(data),
        }
    }

    fn encrypt(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        match cipher {
            CipherAlgorithm::DesCbc => cbc_encrypt::<Des>(cipher, key, iv, data),
            CipherAlgorithm::TripleDesCbc => cbc_encrypt::<TdesEde3>(cipher, key, iv, data),
            CipherAlgorithm::Aes128Cbc => cbc_encrypt::<Aes128>(cipher, key, iv, data),
            CipherAlgorithm::Aes192Cbc => cbc_encrypt::<Aes192>(cipher, key, iv, data),
            CipherAlgorithm::Aes256Cbc => cbc_encrypt::<Aes256>(cipher, key, iv, data),
        }
    }

    fn decrypt(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        match cipher {
            CipherAlgorithm::DesCbc => cbc_decrypt::<Des>(cipher, key, iv, data),
            CipherAlgorithm::TripleDesCbc => cbc_decrypt::<TdesEde3>(cipher, key, iv, data),
            CipherAlgorithm::Aes128Cbc => cbc_decrypt::<Aes128>(cipher, key, iv, data),
            CipherAlgorithm::Aes192Cbc => cbc_decrypt::<Aes192>(cipher, key, iv, data),
            CipherAlgorithm::Aes256Cbc => cbc_decrypt::<Aes256>(cipher, key, iv, data),
        }
    }

    fn dh_generate(&self, group: DhGroup, random: &[u8]) -> Result<DhKeyPair, CryptoError> {
        match group {
            DhGroup::Ecp256 => ecp::generate::<p256::NistP256>(group, random),
            DhGroup::Ecp384 => ecp::generate::<p384::NistP384>(group, random),
            DhGroup::Ecp521 => ecp::generate::<p521::NistP521>(group, random),
            _ => match self.modp.get(group) {
                Some(modp) => modp.generate(random),
                None => unreachable!("every non-ECP group is MODP"),
            },
        }
    }

    fn dh_shared(&self, ours: &DhKeyPair, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        let group = ours.group();
        let private = ours.private_key().as_bytes();
        match group {
            DhGroup::Ecp256 => ecp::shared::<p256::NistP256>(group, private, peer_public),
            DhGroup::Ecp384 => ecp::shared::<p384::NistP384>(group, private, peer_public),
            DhGroup::Ecp521 => ecp::shared::<p521::NistP521>(group, private, peer_public),
            _ => match self.modp.get(group) {
                Some(modp) => modp.shared(private, peer_public),
                None => unreachable!("every non-ECP group is MODP"),
            },
        }
    }
}
