//! The IKEv1 crypto layer of ikd: primitives behind the [`CryptoProvider`] trait, and the
//! RFC 2409 key derivation in [`keymat`].
//!
//! * [`CryptoProvider`] is what the sans-IO engine is given: HMAC PRFs and hashes (MD5, SHA1,
//!   SHA2-256/384/512), CBC ciphers with explicit IVs (DES, 3DES, AES-128/192/256), and
//!   Diffie-Hellman in MODP groups 1, 2, 5, 14-18 and ECP groups 19-21, with key generation
//!   from caller-supplied random octets and validation of the peer's public value.
//! * [`RustCryptoProvider`] implements it with the pure-Rust RustCrypto crates. It draws no
//!   randomness of its own, so with fixed random octets it is also the deterministic test
//!   provider.
//! * [`keymat`] holds SKEYID and its descendants, Appendix B key expansion, the phase-1 and
//!   phase-2 IVs, HASH_I/HASH_R, the Quick Mode and Informational hashes, KEYMAT and NAT-D,
//!   each written next to its RFC formula.
//! * Secrets are [`Secret`]s (zeroized on drop, never printed, compared in constant time).
//!
//! What it does not do: no I/O, no randomness (the daemon draws it, the engine passes it
//! in), no message parsing or padding (the `isakmp` crate and the engine), no signatures or
//! GSS-API (later: they will sit behind a separate signer trait, as the long-term keys may
//! move to another process).
//!
//! ```
//! use ikecrypto::{CryptoProvider, DhGroup, RustCryptoProvider};
//!
//! let crypto = RustCryptoProvider::new();
//! // Random octets come from the caller (fixed here).
//! let ours = crypto.dh_generate(DhGroup::Ecp256, &[0x11; 32])?;
//! let theirs = crypto.dh_generate(DhGroup::Ecp256, &[0x22; 32])?;
//! let a = crypto.dh_shared(&ours, theirs.public_value())?;
//! let b = crypto.dh_shared(&theirs, ours.public_value())?;
//! assert_eq!(a, b);
//! assert_eq!(a.len(), 32);
//! // A value that is not a point on the curve is refused.
//! let err = crypto.dh_shared(&ours, &[0; 64]).unwrap_err();
//! assert_eq!(err.notify_type(), Some(isakmp::NotifyType::INVALID_KEY_INFORMATION));
//! # Ok::<(), ikecrypto::CryptoError>(())
//! ```

pub mod alg;
mod ecp;
pub mod error;
pub mod keymat;
mod modp;
pub mod provider;
pub mod rustcrypto;
pub mod secret;

pub use alg::{CipherAlgorithm, DhGroup, HashAlgorithm};
pub use error::CryptoError;
pub use provider::{last_block, CryptoProvider, DhKeyPair};
pub use rustcrypto::RustCryptoProvider;
pub use secret::Secret;
