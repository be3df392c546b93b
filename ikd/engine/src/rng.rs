//! The engine's random generator: a seed from the caller, expanded with HMAC-SHA-256 from
//! the injected crypto provider (counter mode, rekeyed after every request, so an observed
//! output says nothing about earlier or later ones).
//!
//! It does not gather entropy: the daemon passes 32 octets from the operating system; tests
//! pass a constant and get reproducible cookies, nonces, message IDs and DH keys.

use ikecrypto::{CryptoProvider, HashAlgorithm, Secret};

pub(crate) struct Drbg {
    key: Secret,
    counter: u64,
}

impl Drbg {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self {
            key: Secret::from_slice(&seed),
            counter: 0,
        }
    }

    pub(crate) fn fill(&mut self, crypto: &dyn CryptoProvider, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter = self.counter.wrapping_add(1);
            let block = crypto.prf(
                HashAlgorithm::Sha2_256,
                self.key.as_bytes(),
                &[b"out", &self.counter.to_be_bytes()],
            );
            let n = chunk.len();
            if let Some(src) = block.as_bytes().get(..n) {
                chunk.copy_from_slice(src);
            }
        }
        self.counter = self.counter.wrapping_add(1);
        self.key = crypto.prf(
            HashAlgorithm::Sha2_256,
            self.key.as_bytes(),
            &[b"rekey", &self.counter.to_be_bytes()],
        );
    }

    pub(crate) fn bytes(&mut self, crypto: &dyn CryptoProvider, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(crypto, &mut v);
        v
    }

    pub(crate) fn u32(&mut self, crypto: &dyn CryptoProvider) -> u32 {
        let mut b = [0; 4];
        self.fill(crypto, &mut b);
        u32::from_be_bytes(b)
    }

    pub(crate) fn cookie(&mut self, crypto: &dyn CryptoProvider) -> [u8; 8] {
        loop {
            let mut b = [0; 8];
            self.fill(crypto, &mut b);
            if b != [0; 8] {
                return b;
            }
        }
    }
}
