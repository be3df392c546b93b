//! Algorithm identifiers: the Oakley hash, encryption and group numbers ikd supports
//! (RFC 2409 Appendix A, RFC 3526, RFC 5903), with their sizes.
//!
//! These are closed enums of what this crate implements, not the open IANA registries (those
//! live in the `isakmp` crate). Converting a negotiated attribute value with `from_oakley`
//! answers "do we implement this?"; `None` means the transform must be rejected.

use core::fmt;

/// A hash function, used as such (phase-1 IV, NAT-D) and as the HMAC PRF (RFC 2409 §4: no PRF
/// attribute is negotiated, so the PRF is HMAC with the negotiated hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// MD5 (Oakley hash 1).
    Md5,
    /// SHA-1 (Oakley hash 2).
    Sha1,
    /// SHA2-256 (Oakley hash 4).
    Sha2_256,
    /// SHA2-384 (Oakley hash 5).
    Sha2_384,
    /// SHA2-512 (Oakley hash 6).
    Sha2_512,
}

impl HashAlgorithm {
    /// Every hash this crate implements.
    pub const ALL: [Self; 5] = [
        Self::Md5,
        Self::Sha1,
        Self::Sha2_256,
        Self::Sha2_384,
        Self::Sha2_512,
    ];

    /// The hash for an Oakley "Hash Algorithm" attribute value (class 2), if implemented.
    pub fn from_oakley(id: u16) -> Option<Self> {
        match id {
            1 => Some(Self::Md5),
            2 => Some(Self::Sha1),
            4 => Some(Self::Sha2_256),
            5 => Some(Self::Sha2_384),
            6 => Some(Self::Sha2_512),
            _ => None,
        }
    }

    /// The Oakley "Hash Algorithm" attribute value.
    pub fn oakley_id(self) -> u16 {
        match self {
            Self::Md5 => 1,
            Self::Sha1 => 2,
            Self::Sha2_256 => 4,
            Self::Sha2_384 => 5,
            Self::Sha2_512 => 6,
        }
    }

    /// Output length in octets (also the length of every PRF output).
    pub fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha2_256 => 32,
            Self::Sha2_384 => 48,
            Self::Sha2_512 => 64,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
            Self::Sha2_256 => "SHA2-256",
            Self::Sha2_384 => "SHA2-384",
            Self::Sha2_512 => "SHA2-512",
        })
    }
}

/// A block cipher in CBC mode, as used for ISAKMP encryption (RFC 2409 Appendix B) and as
/// named for ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherAlgorithm {
    /// DES-CBC (Oakley encryption 1), 8-octet key (parity bits ignored).
    DesCbc,
    /// 3DES-CBC, EDE with three keys (Oakley encryption 5), 24-octet key.
    TripleDesCbc,
    /// AES-CBC with a 128-bit key (Oakley encryption 7, key length 128; RFC 3602).
    Aes128Cbc,
    /// AES-CBC with a 192-bit key (Oakley encryption 7, key length 192).
    Aes192Cbc,
    /// AES-CBC with a 256-bit key (Oakley encryption 7, key length 256).
    Aes256Cbc,
}

impl CipherAlgorithm {
    /// Every cipher this crate implements.
    pub const ALL: [Self; 5] = [
        Self::DesCbc,
        Self::TripleDesCbc,
        Self::Aes128Cbc,
        Self::Aes192Cbc,
        Self::Aes256Cbc,
    ];

    /// The cipher for an Oakley "Encryption Algorithm" value (class 1) and "Key Length"
    /// attribute (class 14, in bits), if implemented. AES requires a key length; DES and 3DES
    /// have a fixed one and accept only that value (or none).
    pub fn from_oakley(id: u16, key_bits: Option<u16>) -> Option<Self> {
        match (id, key_bits) {
            (1, None | Some(64)) => Some(Self::DesCbc),
            (5, None | Some(192)) => Some(Self::TripleDesCbc),
            (7, Some(128)) => Some(Self::Aes128Cbc),
            (7, Some(192)) => Some(Self::Aes192Cbc),
            (7, Some(256)) => Some(Self::Aes256Cbc),
            _ => None,
        }
    }

    /// The Oakley "Encryption Algorithm" attribute value.
    pub fn oakley_id(self) -> u16 {
        match self {
            Self::DesCbc => 1,
            Self::TripleDesCbc => 5,
            Self::Aes128Cbc | Self::Aes192Cbc | Self::Aes256Cbc => 7,
        }
    }

    /// Key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::Aes128Cbc => 16,
            Self::TripleDesCbc | Self::Aes192Cbc => 24,
            Self::Aes256Cbc => 32,
        }
    }

    /// Block length in octets (also the IV length).
    pub fn block_len(self) -> usize {
        match self {
            Self::DesCbc | Self::TripleDesCbc => 8,
            Self::Aes128Cbc | Self::Aes192Cbc | Self::Aes256Cbc => 16,
        }
    }
}

impl fmt::Display for CipherAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DesCbc => "DES-CBC",
            Self::TripleDesCbc => "3DES-CBC",
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes192Cbc => "AES-192-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
        })
    }
}

/// A Diffie-Hellman group (Oakley "Group Description", class 4).
///
/// MODP groups use generator 2; public values are the big-endian residue left-padded to the
/// prime length. ECP groups (RFC 5903) carry `x | y`, each coordinate padded to the field
/// length, and their shared secret is the x coordinate of the shared point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DhGroup {
    /// Group 1, 768-bit MODP (RFC 2409 §6.1). Weak; kept for old peers.
    Modp768,
    /// Group 2, 1024-bit MODP (RFC 2409 §6.2).
    Modp1024,
    /// Group 5, 1536-bit MODP (RFC 3526 §2).
    Modp1536,
    /// Group 14, 2048-bit MODP (RFC 3526 §3).
    Modp2048,
    /// Group 15, 3072-bit MODP (RFC 3526 §4).
    Modp3072,
    /// Group 16, 4096-bit MODP (RFC 3526 §5).
    Modp4096,
    /// Group 17, 6144-bit MODP (RFC 3526 §6).
    Modp6144,
    /// Group 18, 8192-bit MODP (RFC 3526 §7).
    Modp8192,
    /// Group 19, 256-bit random ECP group, NIST P-256 (RFC 5903 §3.1).
    Ecp256,
    /// Group 20, 384-bit random ECP group, NIST P-384 (RFC 5903 §3.2).
    Ecp384,
    /// Group 21, 521-bit random ECP group, NIST P-521 (RFC 5903 §3.3).
    Ecp521,
}

impl DhGroup {
    /// Every group this crate implements.
    pub const ALL: [Self; 11] = [
        Self::Modp768,
        Self::Modp1024,
        Self::Modp1536,
        Self::Modp2048,
        Self::Modp3072,
        Self::Modp4096,
        Self::Modp6144,
        Self::Modp8192,
        Self::Ecp256,
        Self::Ecp384,
        Self::Ecp521,
    ];

    /// The group for an Oakley "Group Description" value, if implemented.
    pub fn from_oakley(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.oakley_id() == id)
    }

    /// The Oakley "Group Description" value (IANA group number).
    pub fn oakley_id(self) -> u16 {
        match self {
            Self::Modp768 => 1,
            Self::Modp1024 => 2,
            Self::Modp1536 => 5,
            Self::Modp2048 => 14,
            Self::Modp3072 => 15,
            Self::Modp4096 => 16,
            Self::Modp6144 => 17,
            Self::Modp8192 => 18,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Ecp521 => 21,
        }
    }

    /// Whether this is an elliptic-curve (ECP) group.
    pub fn is_ecp(self) -> bool {
        matches!(self, Self::Ecp256 | Self::Ecp384 | Self::Ecp521)
    }

    /// Length in octets of a field element: the prime length for MODP, the coordinate length
    /// for ECP (66 for P-521).
    pub fn field_len(self) -> usize {
        match self {
            Self::Modp768 => 96,
            Self::Modp1024 => 128,
            Self::Modp1536 => 192,
            Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Modp4096 => 512,
            Self::Modp6144 => 768,
            Self::Modp8192 => 1024,
            Self::Ecp256 => 32,
            Self::Ecp384 => 48,
            Self::Ecp521 => 66,
        }
    }

    /// Length in octets of the public value in the KE payload: the prime length for MODP,
    /// twice the coordinate length for ECP.
    pub fn public_len(self) -> usize {
        if self.is_ecp() {
            2 * self.field_len()
        } else {
            self.field_len()
        }
    }

    /// Length in octets of the shared secret g^xy (left-padded to the prime length for MODP;
    /// the x coordinate for ECP).
    pub fn shared_len(self) -> usize {
        self.field_len()
    }

    /// How many random octets key generation takes by default.
    ///
    /// ECP: exactly the scalar length (the octets are the private scalar; a value outside
    /// `[1, n-1]` is rejected and the caller draws again). MODP: the private exponent
    /// length, at least twice the group's estimated strength (RFC 3526 §8, NIST SP 800-57)
    /// and never under 256 bits; `dh_generate` also accepts longer exponents, up to the
    /// prime length.
    pub fn private_len(self) -> usize {
        match self {
            Self::Modp768 | Self::Modp1024 | Self::Modp1536 | Self::Modp2048 | Self::Modp3072 => 32,
            Self::Modp4096 => 40,
            Self::Modp6144 => 48,
            Self::Modp8192 => 64,
            Self::Ecp256 => 32,
            Self::Ecp384 => 48,
            Self::Ecp521 => 66,
        }
    }
}

impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Modp768 => "MODP768",
            Self::Modp1024 => "MODP1024",
            Self::Modp1536 => "MODP1536",
            Self::Modp2048 => "MODP2048",
            Self::Modp3072 => "MODP3072",
            Self::Modp4096 => "MODP4096",
            Self::Modp6144 => "MODP6144",
            Self::Modp8192 => "MODP8192",
            Self::Ecp256 => "ECP256",
            Self::Ecp384 => "ECP384",
            Self::Ecp521 => "ECP521",
        };
        write!(f, "{name} (group {})", self.oakley_id())
    }
}
