//! PF_KEY v2 extension bodies (RFC 2367 §2.3 and the KAME `SADB_X_EXT_*` extensions).
//!
//! Every extension starts with the generic header below; the structures here are what
//! follows it. Lengths are computed on encoding, so no struct stores one. Reserved fields
//! are written as zero and not kept, except where a system gives them a meaning.
//!
//! ```text
//! +---------------+---------------+
//! | sadb_ext_len  | sadb_ext_type |    len in 64-bit words, header included
//! +---------------+---------------+
//! ```

use super::sockaddr::SockAddr;
use super::wire::{align8, Reader, Writer};
use super::Dialect;
use crate::{DecodeError, Key};

fn bad_len(what: &'static str, len: usize) -> DecodeError {
    DecodeError::BadLength { what, len }
}

/// Fails unless the reader is exhausted (fixed-size extensions must have their exact size).
fn expect_end(r: &Reader<'_>, what: &'static str, ext_len: usize) -> Result<(), DecodeError> {
    if r.remaining() == 0 {
        Ok(())
    } else {
        Err(bad_len(what, ext_len))
    }
}

/// Fails unless only padding (fewer than 8 octets) remains.
fn expect_padding(
    r: &mut Reader<'_>,
    what: &'static str,
    ext_len: usize,
) -> Result<(), DecodeError> {
    if r.remaining() < 8 {
        r.rest();
        Ok(())
    } else {
        Err(bad_len(what, ext_len))
    }
}

/// `sadb_sa` (RFC 2367 §2.3.1), 16 octets.
///
/// ```text
/// +---------------+---------------+-------------------------------+
/// |          sadb_sa_len          |        sadb_sa_exttype        |
/// +-------------------------------+-------------------------------+
/// |                  sadb_sa_spi (network order)                  |
/// +---------------+---------------+---------------+---------------+
/// |    replay     |     state     |     auth      |    encrypt    |
/// +---------------+---------------+---------------+---------------+
/// |                         sadb_sa_flags                         |
/// +---------------------------------------------------------------+
/// ```
///
/// `replay` is the window in packets on Linux (capped at 32) but in octets of bitmap on
/// FreeBSD/KAME; the model mapping converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaExt {
    /// SPI, as a number (network order on the wire).
    pub spi: u32,
    /// Replay window (dialect units).
    pub replay: u8,
    /// `SADB_SASTATE_*`.
    pub state: u8,
    /// `SADB_AALG_*`.
    pub auth: u8,
    /// `SADB_EALG_*` (or `SADB_X_CALG_*` for IPComp).
    pub encrypt: u8,
    /// `SADB_SAFLAGS_*`.
    pub flags: u32,
}

impl SaExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let v = Self {
            spi: r.u32_be()?,
            replay: r.u8()?,
            state: r.u8()?,
            auth: r.u8()?,
            encrypt: r.u8()?,
            flags: r.u32()?,
        };
        expect_end(r, "sadb_sa", len)?;
        Ok(v)
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32_be(self.spi);
        w.u8(self.replay);
        w.u8(self.state);
        w.u8(self.auth);
        w.u8(self.encrypt);
        w.u32(self.flags);
    }
}

/// `sadb_lifetime` (RFC 2367 §2.3.2), 32 octets; used for CURRENT, HARD and SOFT.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |       sadb_lifetime_len       |     sadb_lifetime_exttype     |
/// +-------------------------------+-------------------------------+
/// |                   sadb_lifetime_allocations                   |
/// +---------------------------------------------------------------+
/// |                      sadb_lifetime_bytes                      |
/// |                                                               |
/// +---------------------------------------------------------------+
/// |                     sadb_lifetime_addtime                     |
/// |                                                               |
/// +---------------------------------------------------------------+
/// |                     sadb_lifetime_usetime                     |
/// |                                                               |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifetimeExt {
    /// Allocations (packets on Linux; 0 = unlimited in HARD/SOFT).
    pub allocations: u32,
    /// Octets.
    pub bytes: u64,
    /// Seconds after addition (HARD/SOFT) or time added (CURRENT).
    pub addtime: u64,
    /// Seconds after first use (HARD/SOFT) or time of first use (CURRENT).
    pub usetime: u64,
}

impl LifetimeExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let v = Self {
            allocations: r.u32()?,
            bytes: r.u64()?,
            addtime: r.u64()?,
            usetime: r.u64()?,
        };
        expect_end(r, "sadb_lifetime", len)?;
        Ok(v)
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.allocations);
        w.u64(self.bytes);
        w.u64(self.addtime);
        w.u64(self.usetime);
    }
}

/// `sadb_address` (RFC 2367 §2.3.3): 8 octets, then a sockaddr padded to 8 octets.
/// Also the body of NAT_T_OA/OAI/OAR and FreeBSD NEW_ADDRESS_SRC/DST.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |       sadb_address_len        |     sadb_address_exttype      |
/// +---------------+---------------+-------------------------------+
/// |     proto     |   prefixlen   |           reserved            |
/// +---------------+---------------+-------------------------------+
/// >                 sockaddr (padded to 64 bits)                  <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressExt {
    /// Upper-layer protocol (`IPSEC_ULPROTO_ANY` = 255 for any).
    pub proto: u8,
    /// Prefix length in bits.
    pub prefixlen: u8,
    /// The address and port.
    pub addr: SockAddr,
}

impl AddressExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize, d: Dialect) -> Result<Self, DecodeError> {
        let proto = r.u8()?;
        let prefixlen = r.u8()?;
        r.skip(2)?;
        let addr = SockAddr::decode(r, d, true)?;
        expect_padding(r, "sadb_address", len)?;
        Ok(Self {
            proto,
            prefixlen,
            addr,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer, d: Dialect) {
        w.u8(self.proto);
        w.u8(self.prefixlen);
        w.u16(0);
        self.addr.encode(w, d);
    }
}

/// `sadb_key` (RFC 2367 §2.3.4): 8 octets, then the key padded to 8 octets.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |         sadb_key_len          |        sadb_key_exttype       |
/// +-------------------------------+-------------------------------+
/// |         sadb_key_bits         |       sadb_key_reserved       |
/// +-------------------------------+-------------------------------+
/// >              key bits, padded to 64 bits                      <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExt {
    /// Key length in bits (the key occupies `ceil(bits / 8)` octets).
    pub bits: u16,
    /// The key (zeroized on drop, redacted in `Debug`).
    pub key: Key,
}

impl KeyExt {
    /// A key whose length in bits is its octet length times 8.
    pub fn new(key: Key) -> Self {
        let bits = u16::try_from(key.bits()).unwrap_or(u16::MAX);
        Self { bits, key }
    }
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let bits = r.u16()?;
        r.skip(2)?;
        let octets = usize::from(bits).div_ceil(8);
        if align8(8 + octets) != len {
            return Err(bad_len("sadb_key", len));
        }
        let key = Key::new(r.bytes(octets)?.to_vec());
        r.rest();
        Ok(Self { bits, key })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.bits);
        w.u16(0);
        let octets = usize::from(self.bits).div_ceil(8);
        let key = self.key.as_bytes();
        let n = octets.min(key.len());
        w.bytes(key.get(..n).unwrap_or(&[]));
        w.zeros(octets - n);
    }
}

/// `sadb_ident` (RFC 2367 §2.3.5): 16 octets, then a NUL-padded identity string.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |        sadb_ident_len         |      sadb_ident_exttype       |
/// +-------------------------------+-------------------------------+
/// |        sadb_ident_type        |      sadb_ident_reserved      |
/// +-------------------------------+-------------------------------+
/// |                         sadb_ident_id                         |
/// |                                                               |
/// +---------------------------------------------------------------+
/// >             identity string, NUL-padded to 64 bits            <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityExt {
    /// `SADB_IDENTTYPE_*`.
    pub ident_type: u16,
    /// Numeric identity.
    pub id: u64,
    /// The string octets including NUL padding (a multiple of 8 octets when decoded).
    pub data: Vec<u8>,
}

impl IdentityExt {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ident_type = r.u16()?;
        r.skip(2)?;
        let id = r.u64()?;
        Ok(Self {
            ident_type,
            id,
            data: r.rest().to_vec(),
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.ident_type);
        w.u16(0);
        w.u64(self.id);
        w.bytes(&self.data);
    }
}

/// `sadb_sens` (RFC 2367 §2.3.6): 16 octets, then the sensitivity and integrity bitmaps.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |         sadb_sens_len         |       sadb_sens_exttype       |
/// +-------------------------------+-------------------------------+
/// |                         sadb_sens_dpd                         |
/// +---------------+---------------+---------------+---------------+
/// |  sens_level   |   sens_len    | integ_level   |   integ_len   |
/// +---------------+---------------+---------------+---------------+
/// |                       sadb_sens_reserved                      |
/// +---------------------------------------------------------------+
/// >  sens bitmap (sens_len x 64 bits), integ bitmap (integ_len)   <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SensitivityExt {
    /// Data protection domain.
    pub dpd: u32,
    /// Sensitivity level.
    pub sens_level: u8,
    /// Integrity level.
    pub integ_level: u8,
    /// Sensitivity bitmap words.
    pub sens_bitmap: Vec<u64>,
    /// Integrity bitmap words.
    pub integ_bitmap: Vec<u64>,
}

impl SensitivityExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let dpd = r.u32()?;
        let sens_level = r.u8()?;
        let sens_len = usize::from(r.u8()?);
        let integ_level = r.u8()?;
        let integ_len = usize::from(r.u8()?);
        r.skip(4)?;
        if 16 + (sens_len + integ_len) * 8 != len {
            return Err(bad_len("sadb_sens", len));
        }
        let mut sens_bitmap = Vec::with_capacity(sens_len);
        for _ in 0..sens_len {
            sens_bitmap.push(r.u64()?);
        }
        let mut integ_bitmap = Vec::with_capacity(integ_len);
        for _ in 0..integ_len {
            integ_bitmap.push(r.u64()?);
        }
        Ok(Self {
            dpd,
            sens_level,
            integ_level,
            sens_bitmap,
            integ_bitmap,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.dpd);
        w.u8(self.sens_level);
        w.u8(u8::try_from(self.sens_bitmap.len()).unwrap_or(u8::MAX));
        w.u8(self.integ_level);
        w.u8(u8::try_from(self.integ_bitmap.len()).unwrap_or(u8::MAX));
        w.u32(0);
        for v in self.sens_bitmap.iter().take(255) {
            w.u64(*v);
        }
        for v in self.integ_bitmap.iter().take(255) {
            w.u64(*v);
        }
    }
}

/// `sadb_comb` (RFC 2367 §2.3.7), 72 octets: one acceptable combination in a proposal.
///
/// ```text
/// +---------------+---------------+-------------------------------+
/// |     auth      |    encrypt    |             flags             |
/// +---------------+---------------+-------------------------------+
/// |        auth_minbits           |         auth_maxbits          |
/// +-------------------------------+-------------------------------+
/// |       encrypt_minbits         |        encrypt_maxbits        |
/// +-------------------------------+-------------------------------+
/// |                            reserved                           |
/// +---------------------------------------------------------------+
/// |     soft_allocations          |       hard_allocations        |
/// +---------------------------------------------------------------+
/// | soft_bytes | hard_bytes | soft_addtime | hard_addtime |       |
/// | soft_usetime | hard_usetime            (64 bits each)         |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)] // field names are RFC 2367's
pub struct Comb {
    pub auth: u8,
    pub encrypt: u8,
    pub flags: u16,
    pub auth_minbits: u16,
    pub auth_maxbits: u16,
    pub encrypt_minbits: u16,
    pub encrypt_maxbits: u16,
    pub reserved: u32,
    pub soft_allocations: u32,
    pub hard_allocations: u32,
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_addtime: u64,
    pub hard_addtime: u64,
    pub soft_usetime: u64,
    pub hard_usetime: u64,
}

const COMB_LEN: usize = 72;

impl Comb {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auth: r.u8()?,
            encrypt: r.u8()?,
            flags: r.u16()?,
            auth_minbits: r.u16()?,
            auth_maxbits: r.u16()?,
            encrypt_minbits: r.u16()?,
            encrypt_maxbits: r.u16()?,
            reserved: r.u32()?,
            soft_allocations: r.u32()?,
            hard_allocations: r.u32()?,
            soft_bytes: r.u64()?,
            hard_bytes: r.u64()?,
            soft_addtime: r.u64()?,
            hard_addtime: r.u64()?,
            soft_usetime: r.u64()?,
            hard_usetime: r.u64()?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.u8(self.auth);
        w.u8(self.encrypt);
        w.u16(self.flags);
        w.u16(self.auth_minbits);
        w.u16(self.auth_maxbits);
        w.u16(self.encrypt_minbits);
        w.u16(self.encrypt_maxbits);
        w.u32(self.reserved);
        w.u32(self.soft_allocations);
        w.u32(self.hard_allocations);
        w.u64(self.soft_bytes);
        w.u64(self.hard_bytes);
        w.u64(self.soft_addtime);
        w.u64(self.hard_addtime);
        w.u64(self.soft_usetime);
        w.u64(self.hard_usetime);
    }
}

/// `sadb_prop` (RFC 2367 §2.3.7): 8 octets, then `sadb_comb`s.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |         sadb_prop_len         |       sadb_prop_exttype       |
/// +---------------+---------------+-------------------------------+
/// |    replay     |                  reserved                     |
/// +---------------+-----------------------------------------------+
/// >                     sadb_comb, 72 octets each                 <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProposalExt {
    /// Replay window (dialect units).
    pub replay: u8,
    /// The acceptable combinations.
    pub combs: Vec<Comb>,
}

impl ProposalExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let replay = r.u8()?;
        r.skip(3)?;
        if !r.remaining().is_multiple_of(COMB_LEN) {
            return Err(bad_len("sadb_prop", len));
        }
        let mut combs = Vec::with_capacity(r.remaining() / COMB_LEN);
        while r.remaining() > 0 {
            combs.push(Comb::decode(r)?);
        }
        Ok(Self { replay, combs })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.replay);
        w.zeros(3);
        for c in &self.combs {
            c.encode(w);
        }
    }
}

/// `sadb_alg` (RFC 2367 §2.3.8), 8 octets.
///
/// ```text
/// +---------------+---------------+-------------------------------+
/// |    alg_id     |   alg_ivlen   |         alg_minbits           |
/// +---------------+---------------+-------------------------------+
/// |          alg_maxbits          |         alg_reserved          |
/// +-------------------------------+-------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Alg {
    /// Algorithm id (`SADB_AALG_*` / `SADB_EALG_*`).
    pub id: u8,
    /// IV length in octets.
    pub ivlen: u8,
    /// Minimum key length in bits.
    pub minbits: u16,
    /// Maximum key length in bits.
    pub maxbits: u16,
    /// Reserved (kept: some kernels put flags here).
    pub reserved: u16,
}

/// `sadb_supported` (RFC 2367 §2.3.8): 8 octets, then `sadb_alg`s.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |      sadb_supported_len       |    sadb_supported_exttype     |
/// +-------------------------------+-------------------------------+
/// |                           reserved                            |
/// +---------------------------------------------------------------+
/// >                      sadb_alg, 8 octets each                  <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupportedExt {
    /// The algorithms.
    pub algs: Vec<Alg>,
}

impl SupportedExt {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.skip(4)?;
        let mut algs = Vec::with_capacity(r.remaining() / 8);
        while r.remaining() > 0 {
            algs.push(Alg {
                id: r.u8()?,
                ivlen: r.u8()?,
                minbits: r.u16()?,
                maxbits: r.u16()?,
                reserved: r.u16()?,
            });
        }
        Ok(Self { algs })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(0);
        for a in &self.algs {
            w.u8(a.id);
            w.u8(a.ivlen);
            w.u16(a.minbits);
            w.u16(a.maxbits);
            w.u16(a.reserved);
        }
    }
}

/// `sadb_spirange` (RFC 2367 §2.3.9), 16 octets.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |       sadb_spirange_len       |     sadb_spirange_exttype     |
/// +-------------------------------+-------------------------------+
/// |                       sadb_spirange_min                       |
/// +---------------------------------------------------------------+
/// |                       sadb_spirange_max                       |
/// +---------------------------------------------------------------+
/// |                     sadb_spirange_reserved                    |
/// +---------------------------------------------------------------+
/// ```
///
/// Unlike `sadb_sa_spi`, these are host-order numbers in both kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpiRangeExt {
    /// Lowest acceptable SPI.
    pub min: u32,
    /// Highest acceptable SPI.
    pub max: u32,
}

impl SpiRangeExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let v = Self {
            min: r.u32()?,
            max: r.u32()?,
        };
        r.skip(4)?;
        expect_end(r, "sadb_spirange", len)?;
        Ok(v)
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.min);
        w.u32(self.max);
        w.u32(0);
    }
}

/// `sadb_x_kmprivate` (KAME): 8 octets, then key-manager private data.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |     sadb_x_kmprivate_len      |   sadb_x_kmprivate_exttype    |
/// +-------------------------------+-------------------------------+
/// |                   sadb_x_kmprivate_reserved                   |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KmPrivateExt {
    /// The private octets (a multiple of 8 when decoded).
    pub data: Vec<u8>,
}

/// `sadb_x_ipsecrequest` (KAME), one transform of an IPsec policy, followed by the tunnel
/// endpoints when present.
///
/// ```text
/// Linux, 16 octets:                            FreeBSD/KAME, 8 octets:
/// +---------------+---------------+           +---------------+---------------+
/// |  len (octets) |     proto     |           |  len (octets) |     proto     |
/// +-------+-------+---------------+           +-------+-------+---------------+
/// | mode  | level |   reserved1   |           | mode  | level | reqid (16)    |
/// +-------+-------+---------------+           +-------+-------+---------------+
/// |          reqid (32)           |           > src sockaddr, dst sockaddr    <
/// +-------------------------------+           +-------------------------------+
/// |          reserved2            |
/// +-------------------------------+
/// > src sockaddr, dst sockaddr    <
/// +-------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpsecRequest {
    /// IP protocol (50 ESP, 51 AH, 108 IPComp).
    pub proto: u16,
    /// `IPSEC_MODE_*`.
    pub mode: u8,
    /// `IPSEC_LEVEL_*` (0 default, 1 use, 2 require, 3 unique).
    pub level: u8,
    /// Request id (16 bits on FreeBSD; the encoder truncates).
    pub reqid: u32,
    /// Tunnel endpoints (source, destination).
    pub endpoints: Option<(SockAddr, SockAddr)>,
}

impl IpsecRequest {
    fn header_len(d: Dialect) -> usize {
        match d {
            Dialect::Linux => 16,
            Dialect::FreeBsd => 8,
        }
    }

    fn decode(r: &mut Reader<'_>, d: Dialect) -> Result<Self, DecodeError> {
        let hdr = Self::header_len(d);
        let len = usize::from(r.u16()?);
        if len < hdr || len - 2 > r.remaining() {
            return Err(bad_len("sadb_x_ipsecrequest", len));
        }
        let mut body = Reader::new(r.bytes(len - 2)?, "sadb_x_ipsecrequest");
        let proto = body.u16()?;
        let mode = body.u8()?;
        let level = body.u8()?;
        let reqid = match d {
            Dialect::Linux => {
                body.skip(2)?;
                let reqid = body.u32()?;
                body.skip(4)?;
                reqid
            }
            Dialect::FreeBsd => u32::from(body.u16()?),
        };
        let endpoints = if body.remaining() > 0 {
            let src = SockAddr::decode(&mut body, d, false)?;
            let dst = SockAddr::decode(&mut body, d, false)?;
            expect_padding(&mut body, "sadb_x_ipsecrequest", len)?;
            Some((src, dst))
        } else {
            None
        };
        Ok(Self {
            proto,
            mode,
            level,
            reqid,
            endpoints,
        })
    }

    fn encode(&self, w: &mut Writer, d: Dialect) {
        let start = w.len();
        w.u16(0);
        w.u16(self.proto);
        w.u8(self.mode);
        w.u8(self.level);
        match d {
            Dialect::Linux => {
                w.u16(0);
                w.u32(self.reqid);
                w.u32(0);
            }
            Dialect::FreeBsd => w.u16(self.reqid as u16),
        }
        if let Some((src, dst)) = &self.endpoints {
            src.encode(w, d);
            dst.encode(w, d);
        }
        w.pad8_from(start);
        let len = w.len() - start;
        w.patch_u16(start, u16::try_from(len).unwrap_or(u16::MAX));
    }
}

/// `sadb_x_policy` (KAME), 16 octets, followed by `sadb_x_ipsecrequest`s when the type is
/// IPSEC.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |      sadb_x_policy_len        |     sadb_x_policy_exttype     |
/// +-------------------------------+---------------+---------------+
/// |      sadb_x_policy_type       |      dir      | reserved/scope|
/// +-------------------------------+---------------+---------------+
/// |                        sadb_x_policy_id                       |
/// +---------------------------------------------------------------+
/// |          sadb_x_policy_priority (FreeBSD: or ifindex)         |
/// +---------------------------------------------------------------+
/// >                     sadb_x_ipsecrequest ...                   <
/// +---------------------------------------------------------------+
/// ```
///
/// Octet 7 is reserved on Linux and the policy scope on FreeBSD (0 any, 1 global, 2 ifnet,
/// 4 pcb); with scope ifnet FreeBSD reads the priority field as an interface index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PolicyExt {
    /// `IPSEC_POLICY_*` (0 discard, 1 none, 2 ipsec, 3 entrust, 4 bypass).
    pub policy_type: u16,
    /// `IPSEC_DIR_*` (0 any, 1 in, 2 out, Linux 3 fwd).
    pub dir: u8,
    /// FreeBSD scope; reserved (0) on Linux.
    pub scope: u8,
    /// Kernel policy id (index).
    pub id: u32,
    /// Priority (FreeBSD scope ifnet: interface index).
    pub priority: u32,
    /// The transforms, innermost first.
    pub requests: Vec<IpsecRequest>,
}

impl PolicyExt {
    /// Length of the fixed part of the extension.
    pub const FIXED_LEN: usize = 16;

    pub(crate) fn decode(r: &mut Reader<'_>, len: usize, d: Dialect) -> Result<Self, DecodeError> {
        let policy_type = r.u16()?;
        let dir = r.u8()?;
        let scope = r.u8()?;
        let id = r.u32()?;
        let priority = r.u32()?;
        let mut requests = Vec::new();
        while r.remaining() > 0 {
            if r.remaining() < IpsecRequest::header_len(d) {
                return Err(bad_len("sadb_x_policy", len));
            }
            requests.push(IpsecRequest::decode(r, d)?);
        }
        Ok(Self {
            policy_type,
            dir,
            scope,
            id,
            priority,
            requests,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer, d: Dialect) {
        w.u16(self.policy_type);
        w.u8(self.dir);
        w.u8(self.scope);
        w.u32(self.id);
        w.u32(self.priority);
        for rq in &self.requests {
            rq.encode(w, d);
        }
    }

    /// The complete extension (header included), as `setsockopt(IP_IPSEC_POLICY)` takes it.
    pub fn to_bytes(&self, d: Dialect) -> Vec<u8> {
        let mut w = Writer::default();
        w.u16(0);
        w.u16(super::ExtensionType::Policy.number(d).unwrap_or(18));
        self.encode(&mut w, d);
        w.pad8_from(0);
        let words = u16::try_from(w.len() / 8).unwrap_or(u16::MAX);
        w.patch_u16(0, words);
        w.buf
    }
}

/// `sadb_x_sa2` (KAME), 16 octets.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |        sadb_x_sa2_len         |      sadb_x_sa2_exttype       |
/// +---------------+---------------+-------------------------------+
/// |     mode      |   reserved1   |           reserved2           |
/// +---------------+---------------+-------------------------------+
/// |                      sadb_x_sa2_sequence                      |
/// +---------------------------------------------------------------+
/// |                       sadb_x_sa2_reqid                        |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sa2Ext {
    /// `IPSEC_MODE_*` (0 any, 1 transport, 2 tunnel; 3 = BEET on Linux, TCPMD5 on FreeBSD).
    pub mode: u8,
    /// Sequence number.
    pub sequence: u32,
    /// Request id.
    pub reqid: u32,
}

impl Sa2Ext {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let mode = r.u8()?;
        r.skip(3)?;
        let v = Self {
            mode,
            sequence: r.u32()?,
            reqid: r.u32()?,
        };
        expect_end(r, "sadb_x_sa2", len)?;
        Ok(v)
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.mode);
        w.zeros(3);
        w.u32(self.sequence);
        w.u32(self.reqid);
    }
}

/// `sadb_x_sec_ctx` (Linux, extension 24): 8 octets, then the security context string.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |        sadb_x_sec_len         |      sadb_x_sec_exttype       |
/// +---------------+---------------+-------------------------------+
/// |  ctx_alg      |   ctx_doi     |            ctx_len            |
/// +---------------+---------------+-------------------------------+
/// >                 context, padded to 64 bits                    <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecCtxExt {
    /// LSM algorithm.
    pub alg: u8,
    /// DOI.
    pub doi: u8,
    /// The context octets (`ctx_len` of them).
    pub context: Vec<u8>,
}

impl SecCtxExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let alg = r.u8()?;
        let doi = r.u8()?;
        let ctx_len = usize::from(r.u16()?);
        if align8(8 + ctx_len) != len {
            return Err(bad_len("sadb_x_sec_ctx", len));
        }
        let context = r.bytes(ctx_len)?.to_vec();
        r.rest();
        Ok(Self { alg, doi, context })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.alg);
        w.u8(self.doi);
        w.u16(u16::try_from(self.context.len()).unwrap_or(u16::MAX));
        w.bytes(&self.context);
    }
}

/// `sadb_x_kmaddress` (Linux, extension 25): 8 octets, then local and remote sockaddrs.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |    sadb_x_kmaddress_len       |   sadb_x_kmaddress_exttype    |
/// +-------------------------------+-------------------------------+
/// |                   sadb_x_kmaddress_reserved                   |
/// +---------------------------------------------------------------+
/// >           local sockaddr, remote sockaddr, padding            <
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmAddressExt {
    /// Reserved word (kept: the kernel copies a value into it).
    pub reserved: u32,
    /// Local key-manager address.
    pub local: SockAddr,
    /// Remote key-manager address.
    pub remote: SockAddr,
}

impl KmAddressExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize, d: Dialect) -> Result<Self, DecodeError> {
        let reserved = r.u32()?;
        let local = SockAddr::decode(r, d, false)?;
        let remote = SockAddr::decode(r, d, false)?;
        expect_padding(r, "sadb_x_kmaddress", len)?;
        Ok(Self {
            reserved,
            local,
            remote,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer, d: Dialect) {
        w.u32(self.reserved);
        self.local.encode(w, d);
        self.remote.encode(w, d);
    }
}

/// `sadb_x_filter` (Linux, extension 26), 40 octets: restricts an SADB_DUMP.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |      sadb_x_filter_len        |    sadb_x_filter_exttype      |
/// +-------------------------------+-------------------------------+
/// |                  saddr (16 octets, xfrm_address_t)            |
/// |                  daddr (16 octets)                            |
/// +-------------------------------+---------------+---------------+
/// |            family             |     splen     |     dplen     |
/// +-------------------------------+---------------+---------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilterExt {
    /// Source address octets (IPv4 in the first four).
    pub saddr: [u8; 16],
    /// Destination address octets.
    pub daddr: [u8; 16],
    /// Address family (Linux numbering).
    pub family: u16,
    /// Source prefix length.
    pub splen: u8,
    /// Destination prefix length.
    pub dplen: u8,
}

impl FilterExt {
    pub(crate) fn decode(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        let v = Self {
            saddr: r.array16()?,
            daddr: r.array16()?,
            family: r.u16()?,
            splen: r.u8()?,
            dplen: r.u8()?,
        };
        expect_end(r, "sadb_x_filter", len)?;
        Ok(v)
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(&self.saddr);
        w.bytes(&self.daddr);
        w.u16(self.family);
        w.u8(self.splen);
        w.u8(self.dplen);
    }
}

/// Decodes the fixed 8-octet `sadb_x_nat_t_type`/`_port`/`_frag`/`sadb_x_sa_replay` bodies.
pub(crate) fn decode_small(
    r: &mut Reader<'_>,
    len: usize,
    what: &'static str,
) -> Result<[u8; 4], DecodeError> {
    let v = r.array4()?;
    expect_end(r, what, len)?;
    Ok(v)
}
