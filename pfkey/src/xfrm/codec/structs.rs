//! The fixed-size XFRM structures of `<linux/xfrm.h>` (LP64 layout, offsets as on x86_64).
//!
//! Each type mirrors one uapi `struct`; field names follow the header. Padding is written as
//! zeros and ignored on input. Values the kernel defines as enumerations are newtypes with
//! associated constants, so that unknown values survive a decode/encode round trip.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{Be16, Be32, Put, Reader, Struct};
use crate::DecodeError;

macro_rules! newtype_consts {
    ($(#[$m:meta])* $name:ident($inner:ty) { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
        pub struct $name(pub $inner);
        impl $name {
            $($(#[$cm])* pub const $c: Self = Self($v);)*
        }
    };
}

newtype_consts! {
    /// An address family (`AF_*`), native order.
    AddressFamily(u16) {
        /// `AF_UNSPEC`.
        UNSPEC = 0,
        /// `AF_INET`.
        INET = 2,
        /// `AF_INET6`.
        INET6 = 10,
    }
}

newtype_consts! {
    /// An XFRM mode (`XFRM_MODE_*`).
    XfrmMode(u8) {
        /// Transport mode.
        TRANSPORT = 0,
        /// Tunnel mode.
        TUNNEL = 1,
        /// Mobile IPv6 route optimization.
        ROUTEOPTIMIZATION = 2,
        /// Mobile IPv6 inbound trigger.
        IN_TRIGGER = 3,
        /// Bound end-to-end tunnel.
        BEET = 4,
    }
}

newtype_consts! {
    /// A policy direction (`XFRM_POLICY_IN/OUT/FWD`).
    PolicyDir(u8) {
        /// Inbound.
        IN = 0,
        /// Outbound.
        OUT = 1,
        /// Forward.
        FWD = 2,
    }
}

newtype_consts! {
    /// A policy action (`XFRM_POLICY_ALLOW/BLOCK`).
    PolicyActionCode(u8) {
        /// Allow (with templates: protect).
        ALLOW = 0,
        /// Block.
        BLOCK = 1,
    }
}

/// `xfrm_usersa_info.flags` bits (`XFRM_STATE_*`).
pub mod state_flags {
    /// Do not copy ECN bits on decapsulation.
    pub const NOECN: u8 = 1;
    /// Do not copy DSCP on decapsulation.
    pub const DECAP_DSCP: u8 = 2;
    /// Do not set DF on the outer header.
    pub const NOPMTUDISC: u8 = 4;
    /// Accept packets from any source (wildcard receive).
    pub const WILDRECV: u8 = 8;
    /// Let ICMP errors through the inbound policy check.
    pub const ICMP: u8 = 16;
    /// Tunnel SA carries either inner family.
    pub const AF_UNSPEC: u8 = 32;
    /// AH on IPv4 aligned to 32 bits (RFC 4302 §3.3.3.2.1).
    pub const ALIGN4: u8 = 64;
    /// Extended sequence numbers.
    pub const ESN: u8 = 128;
}

/// `XFRM_INF`: no limit.
pub const XFRM_INF: u64 = u64::MAX;

/// `xfrm_address_t` (16 octets): an IPv4 address in the first four octets, or an IPv6
/// address. Which one depends on a family field elsewhere, so the raw octets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct XfrmAddress(pub [u8; 16]);

impl XfrmAddress {
    /// The address of an [`IpAddr`].
    pub fn from_ip(addr: IpAddr) -> Self {
        let mut a = [0u8; 16];
        match addr {
            IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => a = v6.octets(),
        }
        Self(a)
    }

    /// The address, read according to `family`; `None` for other families.
    pub fn to_ip(&self, family: AddressFamily) -> Option<IpAddr> {
        match family {
            AddressFamily::INET => {
                let [a, b, c, d, ..] = self.0;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            AddressFamily::INET6 => Some(IpAddr::V6(Ipv6Addr::from(self.0))),
            _ => None,
        }
    }
}

impl Struct for XfrmAddress {
    const SIZE: usize = 16;
    const NAME: &'static str = "xfrm_address_t";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(r.array()?))
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

/// `struct xfrm_selector` (56 octets).
///
/// ```text
///  0 daddr (16)        16 saddr (16)
/// 32 dport be16  34 dport_mask be16  36 sport be16  38 sport_mask be16
/// 40 family u16  42 prefixlen_d u8  43 prefixlen_s u8  44 proto u8  45 pad (3)
/// 48 ifindex i32  52 user u32 (uid)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct XfrmSelector {
    pub daddr: XfrmAddress,
    pub saddr: XfrmAddress,
    pub dport: Be16,
    pub dport_mask: Be16,
    pub sport: Be16,
    pub sport_mask: Be16,
    pub family: AddressFamily,
    pub prefixlen_d: u8,
    pub prefixlen_s: u8,
    pub proto: u8,
    pub ifindex: i32,
    pub user: u32,
}

impl Struct for XfrmSelector {
    const SIZE: usize = 56;
    const NAME: &'static str = "xfrm_selector";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let daddr = XfrmAddress::read(r)?;
        let saddr = XfrmAddress::read(r)?;
        let dport = r.be16()?;
        let dport_mask = r.be16()?;
        let sport = r.be16()?;
        let sport_mask = r.be16()?;
        let family = AddressFamily(r.u16()?);
        let prefixlen_d = r.u8()?;
        let prefixlen_s = r.u8()?;
        let proto = r.u8()?;
        r.skip(3)?;
        Ok(Self {
            daddr,
            saddr,
            dport,
            dport_mask,
            sport,
            sport_mask,
            family,
            prefixlen_d,
            prefixlen_s,
            proto,
            ifindex: r.i32()?,
            user: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.daddr.write(out);
        self.saddr.write(out);
        out.put_be16(self.dport);
        out.put_be16(self.dport_mask);
        out.put_be16(self.sport);
        out.put_be16(self.sport_mask);
        out.put_u16(self.family.0);
        out.put_u8(self.prefixlen_d);
        out.put_u8(self.prefixlen_s);
        out.put_u8(self.proto);
        out.put_zeros(3);
        out.put_i32(self.ifindex);
        out.put_u32(self.user);
    }
}

/// `struct xfrm_id` (24 octets): `daddr` 0, `spi` (be32) 16, `proto` 20, pad 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct XfrmId {
    pub daddr: XfrmAddress,
    pub spi: Be32,
    pub proto: u8,
}

impl Struct for XfrmId {
    const SIZE: usize = 24;
    const NAME: &'static str = "xfrm_id";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let daddr = XfrmAddress::read(r)?;
        let spi = r.be32()?;
        let proto = r.u8()?;
        r.skip(3)?;
        Ok(Self { daddr, spi, proto })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.daddr.write(out);
        out.put_be32(self.spi);
        out.put_u8(self.proto);
        out.put_zeros(3);
    }
}

/// `struct xfrm_lifetime_cfg` (64 octets): eight `u64` limits, [`XFRM_INF`] = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct LifetimeCfg {
    pub soft_byte_limit: u64,
    pub hard_byte_limit: u64,
    pub soft_packet_limit: u64,
    pub hard_packet_limit: u64,
    pub soft_add_expires_seconds: u64,
    pub hard_add_expires_seconds: u64,
    pub soft_use_expires_seconds: u64,
    pub hard_use_expires_seconds: u64,
}

impl Default for LifetimeCfg {
    /// Every limit infinite.
    fn default() -> Self {
        Self {
            soft_byte_limit: XFRM_INF,
            hard_byte_limit: XFRM_INF,
            soft_packet_limit: XFRM_INF,
            hard_packet_limit: XFRM_INF,
            soft_add_expires_seconds: 0,
            hard_add_expires_seconds: 0,
            soft_use_expires_seconds: 0,
            hard_use_expires_seconds: 0,
        }
    }
}

impl Struct for LifetimeCfg {
    const SIZE: usize = 64;
    const NAME: &'static str = "xfrm_lifetime_cfg";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            soft_byte_limit: r.u64()?,
            hard_byte_limit: r.u64()?,
            soft_packet_limit: r.u64()?,
            hard_packet_limit: r.u64()?,
            soft_add_expires_seconds: r.u64()?,
            hard_add_expires_seconds: r.u64()?,
            soft_use_expires_seconds: r.u64()?,
            hard_use_expires_seconds: r.u64()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        for v in [
            self.soft_byte_limit,
            self.hard_byte_limit,
            self.soft_packet_limit,
            self.hard_packet_limit,
            self.soft_add_expires_seconds,
            self.hard_add_expires_seconds,
            self.soft_use_expires_seconds,
            self.hard_use_expires_seconds,
        ] {
            out.put_u64(v);
        }
    }
}

/// `struct xfrm_lifetime_cur` (32 octets): bytes, packets, add_time, use_time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct LifetimeCur {
    pub bytes: u64,
    pub packets: u64,
    pub add_time: u64,
    pub use_time: u64,
}

impl Struct for LifetimeCur {
    const SIZE: usize = 32;
    const NAME: &'static str = "xfrm_lifetime_cur";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bytes: r.u64()?,
            packets: r.u64()?,
            add_time: r.u64()?,
            use_time: r.u64()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.bytes, self.packets, self.add_time, self.use_time] {
            out.put_u64(v);
        }
    }
}

/// `struct xfrm_stats` (12 octets): replay_window, replay, integrity_failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct XfrmStats {
    pub replay_window: u32,
    pub replay: u32,
    pub integrity_failed: u32,
}

impl Struct for XfrmStats {
    const SIZE: usize = 12;
    const NAME: &'static str = "xfrm_stats";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            replay_window: r.u32()?,
            replay: r.u32()?,
            integrity_failed: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.replay_window);
        out.put_u32(self.replay);
        out.put_u32(self.integrity_failed);
    }
}

/// `struct xfrm_usersa_info` (224 octets): the fixed part of NEWSA/UPDSA.
///
/// ```text
///   0 sel (56)   56 id (24)   80 saddr (16)   96 lft (64)   160 curlft (32)   192 stats (12)
/// 204 seq u32   208 reqid u32   212 family u16   214 mode u8   215 replay_window u8
/// 216 flags u8  217 pad (7)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UsersaInfo {
    pub sel: XfrmSelector,
    pub id: XfrmId,
    pub saddr: XfrmAddress,
    pub lft: LifetimeCfg,
    pub curlft: LifetimeCur,
    pub stats: XfrmStats,
    pub seq: u32,
    pub reqid: u32,
    pub family: AddressFamily,
    pub mode: XfrmMode,
    pub replay_window: u8,
    pub flags: u8,
}

impl Struct for UsersaInfo {
    const SIZE: usize = 224;
    const NAME: &'static str = "xfrm_usersa_info";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            sel: XfrmSelector::read(r)?,
            id: XfrmId::read(r)?,
            saddr: XfrmAddress::read(r)?,
            lft: LifetimeCfg::read(r)?,
            curlft: LifetimeCur::read(r)?,
            stats: XfrmStats::read(r)?,
            seq: r.u32()?,
            reqid: r.u32()?,
            family: AddressFamily(r.u16()?),
            mode: XfrmMode(r.u8()?),
            replay_window: r.u8()?,
            flags: r.u8()?,
        };
        r.skip(7)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.sel.write(out);
        self.id.write(out);
        self.saddr.write(out);
        self.lft.write(out);
        self.curlft.write(out);
        self.stats.write(out);
        out.put_u32(self.seq);
        out.put_u32(self.reqid);
        out.put_u16(self.family.0);
        out.put_u8(self.mode.0);
        out.put_u8(self.replay_window);
        out.put_u8(self.flags);
        out.put_zeros(7);
    }
}

/// `struct xfrm_usersa_id` (24 octets): daddr 0, spi (be32) 16, family 20, proto 22, pad 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UsersaId {
    pub daddr: XfrmAddress,
    pub spi: Be32,
    pub family: AddressFamily,
    pub proto: u8,
}

impl Struct for UsersaId {
    const SIZE: usize = 24;
    const NAME: &'static str = "xfrm_usersa_id";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            daddr: XfrmAddress::read(r)?,
            spi: r.be32()?,
            family: AddressFamily(r.u16()?),
            proto: r.u8()?,
        };
        r.skip(1)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.daddr.write(out);
        out.put_be32(self.spi);
        out.put_u16(self.family.0);
        out.put_u8(self.proto);
        out.put_zeros(1);
    }
}

/// `struct xfrm_userspi_info` (232 octets): info (224), min u32, max u32 (host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserspiInfo {
    pub info: UsersaInfo,
    pub min: u32,
    pub max: u32,
}

impl Struct for UserspiInfo {
    const SIZE: usize = 232;
    const NAME: &'static str = "xfrm_userspi_info";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            info: UsersaInfo::read(r)?,
            min: r.u32()?,
            max: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.info.write(out);
        out.put_u32(self.min);
        out.put_u32(self.max);
    }
}

/// `struct xfrm_userpolicy_info` (168 octets).
///
/// ```text
///   0 sel (56)   56 lft (64)   120 curlft (32)   152 priority u32   156 index u32
/// 160 dir u8   161 action u8   162 flags u8   163 share u8   164 pad (4)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserpolicyInfo {
    pub sel: XfrmSelector,
    pub lft: LifetimeCfg,
    pub curlft: LifetimeCur,
    pub priority: u32,
    pub index: u32,
    pub dir: PolicyDir,
    pub action: PolicyActionCode,
    pub flags: u8,
    pub share: u8,
}

impl Struct for UserpolicyInfo {
    const SIZE: usize = 168;
    const NAME: &'static str = "xfrm_userpolicy_info";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            sel: XfrmSelector::read(r)?,
            lft: LifetimeCfg::read(r)?,
            curlft: LifetimeCur::read(r)?,
            priority: r.u32()?,
            index: r.u32()?,
            dir: PolicyDir(r.u8()?),
            action: PolicyActionCode(r.u8()?),
            flags: r.u8()?,
            share: r.u8()?,
        };
        r.skip(4)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.sel.write(out);
        self.lft.write(out);
        self.curlft.write(out);
        out.put_u32(self.priority);
        out.put_u32(self.index);
        out.put_u8(self.dir.0);
        out.put_u8(self.action.0);
        out.put_u8(self.flags);
        out.put_u8(self.share);
        out.put_zeros(4);
    }
}

/// `struct xfrm_userpolicy_id` (64 octets): sel (56), index u32 56, dir u8 60, pad 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserpolicyId {
    pub sel: XfrmSelector,
    pub index: u32,
    pub dir: PolicyDir,
}

impl Struct for UserpolicyId {
    const SIZE: usize = 64;
    const NAME: &'static str = "xfrm_userpolicy_id";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            sel: XfrmSelector::read(r)?,
            index: r.u32()?,
            dir: PolicyDir(r.u8()?),
        };
        r.skip(3)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.sel.write(out);
        out.put_u32(self.index);
        out.put_u8(self.dir.0);
        out.put_zeros(3);
    }
}

/// `struct xfrm_user_tmpl` (64 octets).
///
/// ```text
///  0 id (24)   24 family u16   26 pad (2)   28 saddr (16)   44 reqid u32
/// 48 mode u8   49 share u8   50 optional u8   51 pad   52 aalgos u32   56 ealgos   60 calgos
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserTmpl {
    pub id: XfrmId,
    pub family: AddressFamily,
    pub saddr: XfrmAddress,
    pub reqid: u32,
    pub mode: XfrmMode,
    pub share: u8,
    pub optional: u8,
    pub aalgos: u32,
    pub ealgos: u32,
    pub calgos: u32,
}

impl Struct for UserTmpl {
    const SIZE: usize = 64;
    const NAME: &'static str = "xfrm_user_tmpl";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = XfrmId::read(r)?;
        let family = AddressFamily(r.u16()?);
        r.skip(2)?;
        let saddr = XfrmAddress::read(r)?;
        let reqid = r.u32()?;
        let mode = XfrmMode(r.u8()?);
        let share = r.u8()?;
        let optional = r.u8()?;
        r.skip(1)?;
        Ok(Self {
            id,
            family,
            saddr,
            reqid,
            mode,
            share,
            optional,
            aalgos: r.u32()?,
            ealgos: r.u32()?,
            calgos: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        out.put_u16(self.family.0);
        out.put_zeros(2);
        self.saddr.write(out);
        out.put_u32(self.reqid);
        out.put_u8(self.mode.0);
        out.put_u8(self.share);
        out.put_u8(self.optional);
        out.put_zeros(1);
        out.put_u32(self.aalgos);
        out.put_u32(self.ealgos);
        out.put_u32(self.calgos);
    }
}

/// `struct xfrm_user_acquire` (280 octets).
///
/// ```text
///   0 id (24)   24 saddr (16)   40 sel (56)   96 policy (168)
/// 264 aalgos u32   268 ealgos u32   272 calgos u32   276 seq u32
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserAcquire {
    pub id: XfrmId,
    pub saddr: XfrmAddress,
    pub sel: XfrmSelector,
    pub policy: UserpolicyInfo,
    pub aalgos: u32,
    pub ealgos: u32,
    pub calgos: u32,
    pub seq: u32,
}

impl Struct for UserAcquire {
    const SIZE: usize = 280;
    const NAME: &'static str = "xfrm_user_acquire";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: XfrmId::read(r)?,
            saddr: XfrmAddress::read(r)?,
            sel: XfrmSelector::read(r)?,
            policy: UserpolicyInfo::read(r)?,
            aalgos: r.u32()?,
            ealgos: r.u32()?,
            calgos: r.u32()?,
            seq: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        self.saddr.write(out);
        self.sel.write(out);
        self.policy.write(out);
        out.put_u32(self.aalgos);
        out.put_u32(self.ealgos);
        out.put_u32(self.calgos);
        out.put_u32(self.seq);
    }
}

/// `struct xfrm_user_expire` (232 octets): state (224), hard u8 224, pad 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserExpire {
    pub state: UsersaInfo,
    pub hard: u8,
}

impl Struct for UserExpire {
    const SIZE: usize = 232;
    const NAME: &'static str = "xfrm_user_expire";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            state: UsersaInfo::read(r)?,
            hard: r.u8()?,
        };
        r.skip(7)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.state.write(out);
        out.put_u8(self.hard);
        out.put_zeros(7);
    }
}

/// `struct xfrm_user_polexpire` (176 octets): pol (168), hard u8 168, pad 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserPolexpire {
    pub pol: UserpolicyInfo,
    pub hard: u8,
}

impl Struct for UserPolexpire {
    const SIZE: usize = 176;
    const NAME: &'static str = "xfrm_user_polexpire";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            pol: UserpolicyInfo::read(r)?,
            hard: r.u8()?,
        };
        r.skip(7)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.pol.write(out);
        out.put_u8(self.hard);
        out.put_zeros(7);
    }
}

/// `struct xfrm_usersa_flush` (1 octet): proto (0 = every protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UsersaFlush {
    pub proto: u8,
}

impl Struct for UsersaFlush {
    const SIZE: usize = 1;
    const NAME: &'static str = "xfrm_usersa_flush";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { proto: r.u8()? })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.proto);
    }
}

/// `struct xfrm_user_mapping` (64 octets): id (24), reqid u32 24, old_saddr 28, new_saddr 44,
/// old_sport be16 60, new_sport be16 62. The family is not in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserMapping {
    pub id: XfrmId,
    pub reqid: u32,
    pub old_saddr: XfrmAddress,
    pub new_saddr: XfrmAddress,
    pub old_sport: Be16,
    pub new_sport: Be16,
}

impl Struct for UserMapping {
    const SIZE: usize = 64;
    const NAME: &'static str = "xfrm_user_mapping";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: XfrmId::read(r)?,
            reqid: r.u32()?,
            old_saddr: XfrmAddress::read(r)?,
            new_saddr: XfrmAddress::read(r)?,
            old_sport: r.be16()?,
            new_sport: r.be16()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.id.write(out);
        out.put_u32(self.reqid);
        self.old_saddr.write(out);
        self.new_saddr.write(out);
        out.put_be16(self.old_sport);
        out.put_be16(self.new_sport);
    }
}

/// `UDP_ENCAP_ESPINUDP` (RFC 3948 encapsulation, non-ESP marker).
pub const UDP_ENCAP_ESPINUDP: u16 = 2;

/// `struct xfrm_encap_tmpl` (24 octets): encap_type u16 0, sport be16 2, dport be16 4, pad 2,
/// encap_oa 8 (NAT-OA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct EncapTmpl {
    pub encap_type: u16,
    pub sport: Be16,
    pub dport: Be16,
    pub oa: XfrmAddress,
}

impl Struct for EncapTmpl {
    const SIZE: usize = 24;
    const NAME: &'static str = "xfrm_encap_tmpl";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let encap_type = r.u16()?;
        let sport = r.be16()?;
        let dport = r.be16()?;
        r.skip(2)?;
        Ok(Self {
            encap_type,
            sport,
            dport,
            oa: XfrmAddress::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u16(self.encap_type);
        out.put_be16(self.sport);
        out.put_be16(self.dport);
        out.put_zeros(2);
        self.oa.write(out);
    }
}

/// `struct xfrm_mark` (8 octets): v, m.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct XfrmMark {
    pub v: u32,
    pub m: u32,
}

impl Struct for XfrmMark {
    const SIZE: usize = 8;
    const NAME: &'static str = "xfrm_mark";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            v: r.u32()?,
            m: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.v);
        out.put_u32(self.m);
    }
}

/// `xfrm_user_offload.flags`: the SA is inbound.
pub const XFRM_OFFLOAD_INBOUND: u8 = 2;
/// `xfrm_user_offload.flags`: packet offload (Linux 6.2+).
pub const XFRM_OFFLOAD_PACKET: u8 = 4;

/// `struct xfrm_user_offload` (8 octets): ifindex i32, flags u8, pad 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserOffload {
    pub ifindex: i32,
    pub flags: u8,
}

impl Struct for UserOffload {
    const SIZE: usize = 8;
    const NAME: &'static str = "xfrm_user_offload";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            ifindex: r.i32()?,
            flags: r.u8()?,
        };
        r.skip(3)?;
        Ok(v)
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_i32(self.ifindex);
        out.put_u8(self.flags);
        out.put_zeros(3);
    }
}

/// `struct xfrm_replay_state` (12 octets): oseq, seq, bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct ReplayState {
    pub oseq: u32,
    pub seq: u32,
    pub bitmap: u32,
}

impl Struct for ReplayState {
    const SIZE: usize = 12;
    const NAME: &'static str = "xfrm_replay_state";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            oseq: r.u32()?,
            seq: r.u32()?,
            bitmap: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.oseq);
        out.put_u32(self.seq);
        out.put_u32(self.bitmap);
    }
}

/// `struct xfrm_userpolicy_type` (6 octets): type u8 0, pad 1, reserved1 u16 2, reserved2 u8
/// 4, pad 1 (the `u16` aligns the struct to 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct UserpolicyType {
    pub kind: u8,
    pub reserved1: u16,
    pub reserved2: u8,
}

impl Struct for UserpolicyType {
    const SIZE: usize = 6;
    const NAME: &'static str = "xfrm_userpolicy_type";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = r.u8()?;
        r.skip(1)?;
        let reserved1 = r.u16()?;
        let reserved2 = r.u8()?;
        r.skip(1)?;
        Ok(Self {
            kind,
            reserved1,
            reserved2,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.kind);
        out.put_zeros(1);
        out.put_u16(self.reserved1);
        out.put_u8(self.reserved2);
        out.put_zeros(1);
    }
}

/// `struct xfrmu_spdinfo` (24 octets): policy counts by direction, global then per-socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct SpdCounts {
    pub incnt: u32,
    pub outcnt: u32,
    pub fwdcnt: u32,
    pub inscnt: u32,
    pub outscnt: u32,
    pub fwdscnt: u32,
}

impl Struct for SpdCounts {
    const SIZE: usize = 24;
    const NAME: &'static str = "xfrmu_spdinfo";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            incnt: r.u32()?,
            outcnt: r.u32()?,
            fwdcnt: r.u32()?,
            inscnt: r.u32()?,
            outscnt: r.u32()?,
            fwdscnt: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        for v in [
            self.incnt,
            self.outcnt,
            self.fwdcnt,
            self.inscnt,
            self.outscnt,
            self.fwdscnt,
        ] {
            out.put_u32(v);
        }
    }
}

/// `struct xfrmu_spdhinfo` / `struct xfrmu_sadhinfo` (8 octets): hash count, hash maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct HashInfo {
    pub count: u32,
    pub max: u32,
}

impl Struct for HashInfo {
    const SIZE: usize = 8;
    const NAME: &'static str = "xfrmu_spdhinfo";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            count: r.u32()?,
            max: r.u32()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.count);
        out.put_u32(self.max);
    }
}

/// `struct xfrmu_spdhthresh` (2 octets): lbits, rbits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct HashThresh {
    pub lbits: u8,
    pub rbits: u8,
}

impl Struct for HashThresh {
    const SIZE: usize = 2;
    const NAME: &'static str = "xfrmu_spdhthresh";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            lbits: r.u8()?,
            rbits: r.u8()?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.lbits);
        out.put_u8(self.rbits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truncations_fail<T: Struct + std::fmt::Debug>(value: &T) {
        let bytes = value.to_bytes();
        assert_eq!(bytes.len(), T::SIZE, "{} size", T::NAME);
        for cut in 0..bytes.len() {
            let err = T::decode_exact(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
        }
    }

    #[test]
    fn structure_sizes_match_the_x86_64_uapi_layout() {
        assert_eq!(XfrmSelector::default().to_bytes().len(), 56);
        assert_eq!(XfrmId::default().to_bytes().len(), 24);
        assert_eq!(LifetimeCfg::default().to_bytes().len(), 64);
        assert_eq!(LifetimeCur::default().to_bytes().len(), 32);
        assert_eq!(UsersaInfo::default().to_bytes().len(), 224);
        assert_eq!(UsersaId::default().to_bytes().len(), 24);
        assert_eq!(UserspiInfo::default().to_bytes().len(), 232);
        assert_eq!(UserpolicyInfo::default().to_bytes().len(), 168);
        assert_eq!(UserpolicyId::default().to_bytes().len(), 64);
        assert_eq!(UserTmpl::default().to_bytes().len(), 64);
        assert_eq!(UserAcquire::default().to_bytes().len(), 280);
        assert_eq!(UserExpire::default().to_bytes().len(), 232);
        assert_eq!(UserPolexpire::default().to_bytes().len(), 176);
        assert_eq!(UserMapping::default().to_bytes().len(), 64);
        assert_eq!(EncapTmpl::default().to_bytes().len(), 24);
        assert_eq!(UserOffload::default().to_bytes().len(), 8);
        assert_eq!(UserpolicyType::default().to_bytes().len(), 6);
    }

    fn sample_selector() -> XfrmSelector {
        XfrmSelector {
            daddr: XfrmAddress::from_ip("198.51.100.2".parse().unwrap()),
            saddr: XfrmAddress::from_ip("198.51.100.1".parse().unwrap()),
            dport: Be16(500),
            dport_mask: Be16(0xffff),
            sport: Be16(4500),
            sport_mask: Be16(0xffff),
            family: AddressFamily::INET,
            prefixlen_d: 32,
            prefixlen_s: 24,
            proto: 17,
            ifindex: 3,
            user: 1000,
        }
    }

    #[test]
    fn selector_fields_sit_at_the_uapi_offsets() {
        let b = sample_selector().to_bytes();
        assert_eq!(&b[0..4], &[198, 51, 100, 2]);
        assert_eq!(&b[16..20], &[198, 51, 100, 1]);
        assert_eq!(&b[32..34], &500u16.to_be_bytes());
        assert_eq!(&b[36..38], &4500u16.to_be_bytes());
        assert_eq!(&b[40..42], &2u16.to_ne_bytes());
        assert_eq!((b[42], b[43], b[44]), (32, 24, 17));
        assert_eq!(&b[48..52], &3i32.to_ne_bytes());
    }

    #[test]
    fn usersa_info_fields_sit_at_the_uapi_offsets() {
        let info = UsersaInfo {
            sel: sample_selector(),
            id: XfrmId {
                daddr: XfrmAddress::from_ip("192.0.2.12".parse().unwrap()),
                spi: Be32(0x0102_0304),
                proto: 50,
            },
            reqid: 0x3001,
            family: AddressFamily::INET,
            mode: XfrmMode::TUNNEL,
            replay_window: 32,
            flags: state_flags::AF_UNSPEC,
            ..Default::default()
        };
        let b = info.to_bytes();
        assert_eq!(&b[72..76], &[1, 2, 3, 4]);
        assert_eq!(b[76], 50);
        assert_eq!(&b[208..212], &0x3001u32.to_ne_bytes());
        assert_eq!((b[214], b[215], b[216]), (1, 32, 32));
        assert_eq!(UsersaInfo::decode_exact(&b).unwrap(), info);
    }

    #[test]
    fn policy_and_template_fields_sit_at_the_uapi_offsets() {
        let p = UserpolicyInfo {
            sel: sample_selector(),
            priority: 7,
            index: 0x1009,
            dir: PolicyDir::OUT,
            action: PolicyActionCode::BLOCK,
            ..Default::default()
        };
        let b = p.to_bytes();
        assert_eq!(&b[152..156], &7u32.to_ne_bytes());
        assert_eq!(&b[156..160], &0x1009u32.to_ne_bytes());
        assert_eq!((b[160], b[161]), (1, 1));
        let t = UserTmpl {
            family: AddressFamily::INET6,
            reqid: 9,
            mode: XfrmMode::TUNNEL,
            optional: 1,
            aalgos: !0,
            ..Default::default()
        };
        let b = t.to_bytes();
        assert_eq!(&b[24..26], &10u16.to_ne_bytes());
        assert_eq!(&b[44..48], &9u32.to_ne_bytes());
        assert_eq!((b[48], b[50]), (1, 1));
        assert_eq!(&b[52..56], &[0xff; 4]);
    }

    #[test]
    fn every_truncated_structure_fails_typed() {
        truncations_fail(&sample_selector());
        truncations_fail(&UsersaInfo::default());
        truncations_fail(&UsersaId::default());
        truncations_fail(&UserspiInfo::default());
        truncations_fail(&UserpolicyInfo::default());
        truncations_fail(&UserpolicyId::default());
        truncations_fail(&UserTmpl::default());
        truncations_fail(&UserAcquire::default());
        truncations_fail(&UserExpire::default());
        truncations_fail(&UserPolexpire::default());
        truncations_fail(&UserMapping::default());
        truncations_fail(&EncapTmpl::default());
        truncations_fail(&UserOffload::default());
        truncations_fail(&SpdCounts::default());
    }

    #[test]
    fn oversized_structure_is_a_bad_length() {
        let mut b = XfrmMark { v: 1, m: 2 }.to_bytes();
        b.push(0);
        assert_eq!(
            XfrmMark::decode_exact(&b),
            Err(DecodeError::BadLength {
                what: "xfrm_mark",
                len: 9
            })
        );
    }

    #[test]
    fn ipv4_address_reads_back_only_with_its_family() {
        let a = XfrmAddress::from_ip("203.0.113.5".parse().unwrap());
        assert_eq!(
            a.to_ip(AddressFamily::INET),
            Some("203.0.113.5".parse().unwrap())
        );
        assert_eq!(a.to_ip(AddressFamily::UNSPEC), None);
        let b = XfrmAddress::from_ip("2001:db8::1".parse().unwrap());
        assert_eq!(
            b.to_ip(AddressFamily::INET6),
            Some("2001:db8::1".parse().unwrap())
        );
    }
}
