//! PF_KEY v2 numbers (RFC 2367 §2.5 and the KAME/Linux/FreeBSD headers). Where the systems
//! disagree the constant names the system; everything else is shared.

#![allow(missing_docs)] // the names are the headers' names

/// `PF_KEY_V2`, the protocol version in `sadb_msg_version` and `socket()`.
pub const PF_KEY_V2: u8 = 2;

// Message types (RFC 2367 §2.3 + KAME).
pub const SADB_RESERVED: u8 = 0;
pub const SADB_GETSPI: u8 = 1;
pub const SADB_UPDATE: u8 = 2;
pub const SADB_ADD: u8 = 3;
pub const SADB_DELETE: u8 = 4;
pub const SADB_GET: u8 = 5;
pub const SADB_ACQUIRE: u8 = 6;
pub const SADB_REGISTER: u8 = 7;
pub const SADB_EXPIRE: u8 = 8;
pub const SADB_FLUSH: u8 = 9;
pub const SADB_DUMP: u8 = 10;
pub const SADB_X_PROMISC: u8 = 11;
pub const SADB_X_PCHANGE: u8 = 12;
pub const SADB_X_SPDUPDATE: u8 = 13;
pub const SADB_X_SPDADD: u8 = 14;
pub const SADB_X_SPDDELETE: u8 = 15;
pub const SADB_X_SPDGET: u8 = 16;
pub const SADB_X_SPDACQUIRE: u8 = 17;
pub const SADB_X_SPDDUMP: u8 = 18;
pub const SADB_X_SPDFLUSH: u8 = 19;
pub const SADB_X_SPDSETIDX: u8 = 20;
pub const SADB_X_SPDEXPIRE: u8 = 21;
pub const SADB_X_SPDDELETE2: u8 = 22;
/// Linux only.
pub const SADB_X_NAT_T_NEW_MAPPING: u8 = 23;
/// Linux only.
pub const SADB_X_MIGRATE: u8 = 24;

// SA types.
pub const SADB_SATYPE_UNSPEC: u8 = 0;
pub const SADB_SATYPE_AH: u8 = 2;
pub const SADB_SATYPE_ESP: u8 = 3;
pub const SADB_X_SATYPE_IPCOMP: u8 = 9;

// SA states.
pub const SADB_SASTATE_LARVAL: u8 = 0;
pub const SADB_SASTATE_MATURE: u8 = 1;
pub const SADB_SASTATE_DYING: u8 = 2;
pub const SADB_SASTATE_DEAD: u8 = 3;

// SA flags.
/// FreeBSD: extended sequence numbers.
pub const SADB_X_SAFLAGS_ESN_FREEBSD: u32 = 0x400;

// Authentication algorithms.
pub const SADB_AALG_NONE: u8 = 0;
pub const SADB_AALG_MD5HMAC: u8 = 2;
pub const SADB_AALG_SHA1HMAC: u8 = 3;
pub const SADB_X_AALG_SHA2_256HMAC: u8 = 5;
pub const SADB_X_AALG_SHA2_384HMAC: u8 = 6;
pub const SADB_X_AALG_SHA2_512HMAC: u8 = 7;

// Encryption algorithms.
pub const SADB_EALG_NONE: u8 = 0;
pub const SADB_EALG_DESCBC: u8 = 2;
pub const SADB_EALG_3DESCBC: u8 = 3;
pub const SADB_EALG_NULL: u8 = 11;
pub const SADB_X_EALG_AESCBC: u8 = 12;
pub const SADB_X_EALG_AES_GCM_ICV8: u8 = 18;
pub const SADB_X_EALG_AES_GCM_ICV12: u8 = 19;
pub const SADB_X_EALG_AES_GCM_ICV16: u8 = 20;

// Compression algorithms.
pub const SADB_X_CALG_DEFLATE: u8 = 2;

// Identity types.
pub const SADB_IDENTTYPE_PREFIX: u16 = 1;
pub const SADB_IDENTTYPE_FQDN: u16 = 2;
pub const SADB_IDENTTYPE_USERFQDN: u16 = 3;

// <netipsec/ipsec.h>, <linux/ipsec.h>.
pub const IPSEC_MODE_ANY: u8 = 0;
pub const IPSEC_MODE_TRANSPORT: u8 = 1;
pub const IPSEC_MODE_TUNNEL: u8 = 2;
/// Linux: BEET. FreeBSD: TCPMD5.
pub const IPSEC_MODE_3: u8 = 3;

pub const IPSEC_DIR_ANY: u8 = 0;
pub const IPSEC_DIR_INBOUND: u8 = 1;
pub const IPSEC_DIR_OUTBOUND: u8 = 2;
/// Linux only.
pub const IPSEC_DIR_FWD: u8 = 3;

pub const IPSEC_POLICY_DISCARD: u16 = 0;
pub const IPSEC_POLICY_NONE: u16 = 1;
pub const IPSEC_POLICY_IPSEC: u16 = 2;
pub const IPSEC_POLICY_ENTRUST: u16 = 3;
pub const IPSEC_POLICY_BYPASS: u16 = 4;

pub const IPSEC_LEVEL_DEFAULT: u8 = 0;
pub const IPSEC_LEVEL_USE: u8 = 1;
pub const IPSEC_LEVEL_REQUIRE: u8 = 2;
pub const IPSEC_LEVEL_UNIQUE: u8 = 3;

/// FreeBSD `sadb_x_policy_scope`.
pub const IPSEC_POLICYSCOPE_ANY: u8 = 0;
pub const IPSEC_POLICYSCOPE_GLOBAL: u8 = 1;
pub const IPSEC_POLICYSCOPE_IFNET: u8 = 2;
pub const IPSEC_POLICYSCOPE_PCB: u8 = 4;

/// `IPSEC_ULPROTO_ANY`: any upper-layer protocol in `sadb_address_proto`.
pub const IPSEC_ULPROTO_ANY: u8 = 255;
/// Highest reqid a key manager may choose; kernels allocate above it.
pub const IPSEC_MANUAL_REQID_MAX: u32 = 0x3fff;

/// `UDP_ENCAP_ESPINUDP` in `sadb_x_nat_t_type`.
pub const UDP_ENCAP_ESPINUDP: u8 = 2;
