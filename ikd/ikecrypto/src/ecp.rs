//! Elliptic-curve Diffie-Hellman over the NIST prime curves: groups 19 (P-256), 20 (P-384)
//! and 21 (P-521), encoded as RFC 5903 §7 says.
//!
//! * The KE public value is `x | y`, each coordinate big-endian in the field length (no SEC1
//!   `0x04` prefix, no compression).
//! * The shared secret g^xy is the x coordinate of the shared point, in the field length.
//! * The private scalar is the caller's random octets taken as a big-endian number; for P-521
//!   the 7 high bits of the first octet are cleared (the field is 521 bits). A value that is
//!   zero or not below the group order is rejected ([`CryptoError::RejectedRandom`]) and the
//!   caller draws again (probability about 2^-32 for P-256, negligible for the others).
//!
//! The peer's value is decoded with the RustCrypto curve code, which checks that the point is
//! on the curve and not the identity; the curves have cofactor 1, so no subgroup check is
//! needed. Scalar multiplication is constant time (RustCrypto `primeorder`).

use p256::elliptic_curve::{
    self,
    sec1::{FromSec1Point, ModulusSize, ToSec1Point},
    zeroize::Zeroize,
    AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, NonZeroScalar, PublicKey,
};

use crate::alg::DhGroup;
use crate::error::CryptoError;
use crate::provider::DhKeyPair;
use crate::secret::Secret;

/// SEC1 tag of an uncompressed point.
const UNCOMPRESSED: u8 = 0x04;

/// The private scalar encoded by `bytes` (already of the field length and masked).
fn scalar<C>(group: DhGroup, bytes: &[u8]) -> Result<NonZeroScalar<C>, CryptoError>
where
    C: CurveArithmetic,
{
    let mut repr = FieldBytes::<C>::try_from(bytes).map_err(|_| CryptoError::RandomLength {
        group,
        got: bytes.len(),
        min: group.field_len(),
        max: group.field_len(),
    })?;
    let scalar = NonZeroScalar::<C>::from_repr(repr).into_option();
    repr.as_mut_slice().zeroize();
    scalar.ok_or(CryptoError::RejectedRandom { group })
}

/// Key generation: the scalar from `random`, public value `x | y` of scalar * G.
pub(crate) fn generate<C>(group: DhGroup, random: &[u8]) -> Result<DhKeyPair, CryptoError>
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let len = group.field_len();
    if random.len() != len {
        return Err(CryptoError::RandomLength {
            group,
            got: random.len(),
            min: len,
            max: len,
        });
    }
    let mut private = Secret::from_slice(random);
    if group == DhGroup::Ecp521 {
        // 66 octets hold 528 bits; the scalar has at most 521.
        private = mask_p521(private);
    }
    let mut scalar = scalar::<C>(group, private.as_bytes())?;
    let public = PublicKey::<C>::from_secret_scalar(&scalar);
    scalar.zeroize();
    let point = public.as_affine().to_sec1_point(false);
    let public = match point.as_bytes().split_first() {
        Some((&UNCOMPRESSED, xy)) if xy.len() == 2 * len => xy.to_vec(),
        // A non-identity point always encodes as 0x04 | x | y.
        _ => return Err(CryptoError::RejectedRandom { group }),
    };
    Ok(DhKeyPair::from_parts(group, private, public))
}

/// Shared secret: the x coordinate of scalar * peer, after checking that `peer` is `x | y`
/// of a point on the curve.
pub(crate) fn shared<C>(group: DhGroup, private: &[u8], peer: &[u8]) -> Result<Secret, CryptoError>
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let len = group.field_len();
    if peer.len() != 2 * len {
        return Err(CryptoError::PublicValueLength {
            group,
            got: peer.len(),
            expected: 2 * len,
        });
    }
    let mut sec1 = Vec::with_capacity(1 + peer.len());
    sec1.push(UNCOMPRESSED);
    sec1.extend_from_slice(peer);
    let peer = PublicKey::<C>::from_sec1_bytes(&sec1)
        .map_err(|_| CryptoError::PointNotOnCurve { group })?;
    let mut scalar = scalar::<C>(group, private)?;
    let shared = elliptic_curve::ecdh::diffie_hellman(scalar, peer.as_affine());
    scalar.zeroize();
    Ok(Secret::from_slice(shared.raw_secret_bytes()))
}

/// Clears the 7 high bits of a 66-octet P-521 scalar.
fn mask_p521(private: Secret) -> Secret {
    let mut bytes = private.as_bytes().to_vec();
    if let Some(first) = bytes.first_mut() {
        *first &= 0x01;
    }
    Secret::new(bytes)
}
