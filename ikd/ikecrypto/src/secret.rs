//! [`Secret`]: owned key material that is zeroized on drop and never printed.
//!
//! Every value derived from a shared secret or a preshared key (g^xy, SKEYID and its
//! descendants, encryption keys, KEYMAT, and the HASH values, which are MACs) is a `Secret`.
//! It does not protect against copies the caller makes with [`Secret::as_bytes`], nor against
//! swap or core dumps; those are the daemon's business (mlock, `RLIMIT_CORE`).

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Owned secret octets: zeroized on drop, compared in constant time, and shown by `Debug`
/// only as their length.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of `bytes` (no copy is left behind by this call).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret. The caller is responsible for the original.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with `other` (the lengths are not secret: a length mismatch
    /// returns `false` at once).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        bool::from(self.as_bytes().ct_eq(other))
    }

    /// Shortens the secret to its first `len` octets (no-op if already shorter); the removed
    /// octets are zeroized.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            if let Some(tail) = self.0.get_mut(len..) {
                tail.zeroize();
            }
            self.0.truncate(len);
        }
    }

    /// Appends `bytes`. Growing may reallocate; the old buffer is zeroized first.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut grown = Zeroizing::new(Vec::with_capacity(needed));
            grown.extend_from_slice(&self.0);
            // The old buffer is dropped (and so zeroized) by the assignment.
            self.0 = grown;
        }
        self.0.extend_from_slice(bytes);
    }
}

impl ZeroizeOnDrop for Secret {}

/// Constant time in the contents (see [`Secret::ct_eq`]).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.as_bytes())
    }
}

impl Eq for Secret {}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} octets)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_bytes() {
        let s = Secret::from_slice(&[0xab; 20]);
        assert_eq!(format!("{s:?}"), "Secret(20 octets)");
        assert!(!format!("{s:#?}").contains("ab"));
    }

    #[test]
    fn grow_truncate_compare() {
        let mut s = Secret::new(Vec::with_capacity(1));
        s.extend_from_slice(&[1, 2, 3]);
        s.extend_from_slice(&[4]);
        assert!(s.ct_eq(&[1, 2, 3, 4]));
        s.truncate(2);
        assert!(s.ct_eq(&[1, 2]));
        assert!(!s.ct_eq(&[1, 2, 3]));
        assert!(!s.ct_eq(&[1, 3]));
    }
}
