//! Mapping between the kernel model ([`crate::model`]) and PF_KEY messages.
//!
//! Builders return [`Error::Unsupported`] when PF_KEY (or one dialect of it) cannot express
//! a request, and [`Error::Invalid`] for requests no kernel would accept (wrong key length,
//! mixed address families); nothing is sent in either case. Parsers return
//! [`DecodeError`] when a kernel message lacks what the model needs.
//!
//! Decisions and their reasons:
//!
//! - **HMAC-SHA2-256 on Linux is refused.** `af_key` sets `alg_trunc_len` from the
//!   algorithm table (`pfkey_msg2xfrm_state`: `x->aalg->alg_trunc_len =
//!   a->uinfo.auth.icv_truncbits`), which is 96 bits for `hmac(sha256)`. RFC 4868 requires
//!   128-bit truncation, so the SA would send and expect 12-octet ICVs and every packet
//!   exchanged with a conforming peer would be dropped. Use XFRM (`XFRMA_ALG_AUTH_TRUNC`).
//!   SHA2-384/512 are fine: their kernel defaults (192/256) match RFC 4868. On read-back
//!   id 5 is reported as [`IntegrityAlgorithm::HmacSha256_128`]: PF_KEY does not show the
//!   truncation.
//! - **AES-GCM on Linux is refused.** `af_key` looks encryption ids up with
//!   `xfrm_ealg_get_byid`, i.e. in the cipher table only; AEAD transforms live in a separate
//!   table, so the kernel answers ENOSYS. FreeBSD accepts ids 18–20.
//! - **Marks**: refused (no PF_KEY field). **ESN**: refused on Linux; FreeBSD has
//!   `SADB_X_SAFLAGS_ESN`. **Offload**: ignored, reported as
//!   [`OffloadOutcome::NotRequested`] by the backend. **SA selectors**: ignored — PF_KEY has
//!   no SA selector (`ADDRESS_PROXY` only sets the source half on Linux); the policies
//!   already restrict which packets reach the SA. Read-back gives `selector: None`.
//! - **Replay window**: the model counts packets. Linux `sadb_sa_replay` is packets and the
//!   kernel silently caps it at 32, so larger windows are refused rather than changed.
//!   FreeBSD counts octets of bitmap: we send `ceil(packets / 8)` and, for windows above
//!   2040 packets, `SADB_X_EXT_SA_REPLAY` in packets.
//! - **Policy priority**: Linux `af_key` stores `sadb_x_policy_priority` as the XFRM
//!   priority. FreeBSD (since the 2017 IPsec rework) orders each direction's SPD by the same
//!   field (`key_insertsp`: lower first) when the policy scope is global; with scope ifnet
//!   the field is an interface index. We always send scope global on FreeBSD, and report
//!   priority 0 for ifnet-scoped policies read back.
//! - **Policy index**: PF_KEY cannot choose one on add; a requested index is ignored and the
//!   kernel's is read back.
//! - **Reqids**: both kernels bind a template to a reqid only at level `unique`, and replace
//!   reqids above `IPSEC_MANUAL_REQID_MAX` (0x3fff) with their own; so a required template
//!   with a reqid is sent as level unique, reqids above 0x3fff are refused, and level `use`
//!   cannot carry a reqid.
//! - **Deleting/getting SAs**: Linux requires an ADDRESS_SRC of the same family but looks SAs
//!   up by destination, SPI and protocol; callers pass the source if they know it, the
//!   unspecified address otherwise.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::codec::consts::*;
use super::codec::{
    AddressExt, AddressKind, Dialect, Extension, IpsecRequest, KeyExt, KeyKind, LifetimeExt,
    LifetimeKind, Message, PolicyExt, PortKind, Sa2Ext, SaExt, SockAddr, SpiRangeExt,
};
use crate::{
    Acquire, CompressionAlgorithm, CurrentLifetime, DecodeError, Direction, EncryptionAlgorithm,
    Error, Expire, Family, IntegrityAlgorithm, KernelEvent, Key, Lifetime, Mode, Policy,
    PolicyAction, PolicyId, Prefix, Result, SaId, SecurityAssociation, SecurityProtocol, Selector,
    Template, TemplateLevel, UdpEncapsulation, UpperLayer,
};

const BACKEND: &str = "pfkey";

fn unsupported(what: &'static str) -> Error {
    Error::Unsupported {
        backend: BACKEND,
        what,
    }
}

/// Header fields every request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The dialect to build for.
    pub dialect: Dialect,
    /// Sequence number the reply will echo.
    pub seq: u32,
    /// Our pid (the reply echoes it).
    pub pid: u32,
}

impl Header {
    fn message(&self, msg_type: u8, satype: u8) -> Message {
        Message::new(msg_type, satype, self.seq, self.pid)
    }
}

/// `SADB_SATYPE_*` of a protocol.
pub fn satype(protocol: SecurityProtocol) -> u8 {
    match protocol {
        SecurityProtocol::Esp => SADB_SATYPE_ESP,
        SecurityProtocol::Ah => SADB_SATYPE_AH,
        SecurityProtocol::Comp => SADB_X_SATYPE_IPCOMP,
    }
}

/// The protocol of a `SADB_SATYPE_*`.
pub fn protocol_from_satype(satype: u8) -> Option<SecurityProtocol> {
    match satype {
        SADB_SATYPE_ESP => Some(SecurityProtocol::Esp),
        SADB_SATYPE_AH => Some(SecurityProtocol::Ah),
        SADB_X_SATYPE_IPCOMP => Some(SecurityProtocol::Comp),
        _ => None,
    }
}

fn host_address(kind: AddressKind, addr: IpAddr) -> Extension {
    Extension::Address(
        kind,
        AddressExt {
            proto: IPSEC_ULPROTO_ANY,
            prefixlen: Family::of(&addr).max_prefix(),
            addr: SockAddr::from_ip(addr, 0),
        },
    )
}

fn mode_number(mode: Mode) -> u8 {
    match mode {
        Mode::Transport => IPSEC_MODE_TRANSPORT,
        Mode::Tunnel => IPSEC_MODE_TUNNEL,
    }
}

fn mode_from_number(mode: u8) -> Result<Mode, DecodeError> {
    match mode {
        // Linux maps IPSEC_MODE_ANY to transport (pfkey_mode_to_xfrm).
        IPSEC_MODE_ANY | IPSEC_MODE_TRANSPORT => Ok(Mode::Transport),
        IPSEC_MODE_TUNNEL => Ok(Mode::Tunnel),
        // BEET (Linux) and TCPMD5 (FreeBSD) are not modelled.
        other => Err(DecodeError::BadValue {
            what: "IPsec mode",
            value: u64::from(other),
        }),
    }
}

/// `SADB_GETSPI`: reserve an SPI for an inbound SA from `source` (peer) to `destination`.
pub fn getspi(
    h: Header,
    source: IpAddr,
    destination: IpAddr,
    protocol: SecurityProtocol,
    reqid: u32,
    range: &RangeInclusive<u32>,
) -> Result<Message> {
    if Family::of(&source) != Family::of(&destination) {
        return Err(Error::Invalid(
            "SPI allocation with mixed address families".into(),
        ));
    }
    if range.start() > range.end() {
        return Err(Error::Invalid(format!("empty SPI range {range:?}")));
    }
    Ok(h.message(SADB_GETSPI, satype(protocol))
        .with(Extension::Sa2(Sa2Ext {
            mode: IPSEC_MODE_ANY,
            sequence: 0,
            reqid,
        }))
        .with(host_address(AddressKind::Source, source))
        .with(host_address(AddressKind::Destination, destination))
        .with(Extension::SpiRange(SpiRangeExt {
            min: *range.start(),
            max: *range.end(),
        })))
}

fn encryption_id(alg: EncryptionAlgorithm, d: Dialect) -> Result<(u8, &'static [usize])> {
    Ok(match alg {
        EncryptionAlgorithm::Null => (SADB_EALG_NULL, &[0]),
        EncryptionAlgorithm::DesCbc => (SADB_EALG_DESCBC, &[64]),
        EncryptionAlgorithm::TripleDesCbc => (SADB_EALG_3DESCBC, &[192]),
        EncryptionAlgorithm::AesCbc => (SADB_X_EALG_AESCBC, &[128, 192, 256]),
        EncryptionAlgorithm::AesGcm { .. } if d == Dialect::Linux => {
            // See the module documentation: af_key only searches the cipher table.
            return Err(unsupported("AES-GCM over Linux af_key (use XFRM)"));
        }
        // Key plus 32-bit salt (RFC 4106 §8.1).
        EncryptionAlgorithm::AesGcm { icv_bits: 64 } => {
            (SADB_X_EALG_AES_GCM_ICV8, &[160, 224, 288])
        }
        EncryptionAlgorithm::AesGcm { icv_bits: 96 } => {
            (SADB_X_EALG_AES_GCM_ICV12, &[160, 224, 288])
        }
        EncryptionAlgorithm::AesGcm { icv_bits: 128 } => {
            (SADB_X_EALG_AES_GCM_ICV16, &[160, 224, 288])
        }
        EncryptionAlgorithm::AesGcm { icv_bits } => {
            return Err(Error::Invalid(format!("AES-GCM ICV of {icv_bits} bits")))
        }
    })
}

fn encryption_from_id(id: u8) -> Result<Option<EncryptionAlgorithm>, DecodeError> {
    Ok(Some(match id {
        SADB_EALG_NONE => return Ok(None),
        SADB_EALG_NULL => EncryptionAlgorithm::Null,
        SADB_EALG_DESCBC => EncryptionAlgorithm::DesCbc,
        SADB_EALG_3DESCBC => EncryptionAlgorithm::TripleDesCbc,
        SADB_X_EALG_AESCBC => EncryptionAlgorithm::AesCbc,
        SADB_X_EALG_AES_GCM_ICV8 => EncryptionAlgorithm::AesGcm { icv_bits: 64 },
        SADB_X_EALG_AES_GCM_ICV12 => EncryptionAlgorithm::AesGcm { icv_bits: 96 },
        SADB_X_EALG_AES_GCM_ICV16 => EncryptionAlgorithm::AesGcm { icv_bits: 128 },
        other => {
            return Err(DecodeError::BadValue {
                what: "sadb_sa_encrypt",
                value: u64::from(other),
            })
        }
    }))
}

fn integrity_id(alg: IntegrityAlgorithm, d: Dialect) -> Result<u8> {
    Ok(match alg {
        IntegrityAlgorithm::HmacMd5_96 => SADB_AALG_MD5HMAC,
        IntegrityAlgorithm::HmacSha1_96 => SADB_AALG_SHA1HMAC,
        IntegrityAlgorithm::HmacSha256_128 if d == Dialect::Linux => {
            // af_key gives hmac(sha256) the table's 96-bit truncation, not RFC 4868's 128:
            // peers would drop every packet. See the module documentation.
            return Err(unsupported(
                "HMAC-SHA2-256-128 over Linux af_key (the kernel would truncate to 96 bits; use XFRM)",
            ));
        }
        IntegrityAlgorithm::HmacSha256_128 => SADB_X_AALG_SHA2_256HMAC,
        IntegrityAlgorithm::HmacSha384_192 => SADB_X_AALG_SHA2_384HMAC,
        IntegrityAlgorithm::HmacSha512_256 => SADB_X_AALG_SHA2_512HMAC,
    })
}

fn integrity_from_id(id: u8) -> Result<Option<IntegrityAlgorithm>, DecodeError> {
    Ok(Some(match id {
        SADB_AALG_NONE => return Ok(None),
        SADB_AALG_MD5HMAC => IntegrityAlgorithm::HmacMd5_96,
        SADB_AALG_SHA1HMAC => IntegrityAlgorithm::HmacSha1_96,
        SADB_X_AALG_SHA2_256HMAC => IntegrityAlgorithm::HmacSha256_128,
        SADB_X_AALG_SHA2_384HMAC => IntegrityAlgorithm::HmacSha384_192,
        SADB_X_AALG_SHA2_512HMAC => IntegrityAlgorithm::HmacSha512_256,
        other => {
            return Err(DecodeError::BadValue {
                what: "sadb_sa_auth",
                value: u64::from(other),
            })
        }
    }))
}

fn lifetime_exts(l: &Lifetime) -> Result<Option<(LifetimeExt, LifetimeExt)>> {
    if *l == Lifetime::default() {
        return Ok(None);
    }
    let packets = |p: Option<u64>| {
        u32::try_from(p.unwrap_or(0))
            .map_err(|_| Error::Invalid("PF_KEY packet limits are 32-bit".into()))
    };
    let hard = LifetimeExt {
        allocations: packets(l.hard_packets)?,
        bytes: l.hard_bytes.unwrap_or(0),
        addtime: l.hard_add_seconds.unwrap_or(0),
        usetime: l.hard_use_seconds.unwrap_or(0),
    };
    let soft = LifetimeExt {
        allocations: packets(l.soft_packets)?,
        bytes: l.soft_bytes.unwrap_or(0),
        addtime: l.soft_add_seconds.unwrap_or(0),
        usetime: l.soft_use_seconds.unwrap_or(0),
    };
    Ok(Some((hard, soft)))
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

fn lifetime_from(msg: &Message) -> Lifetime {
    let mut l = Lifetime::default();
    if let Some(h) = msg.lifetime(LifetimeKind::Hard) {
        l.hard_packets = nonzero(u64::from(h.allocations));
        l.hard_bytes = nonzero(h.bytes);
        l.hard_add_seconds = nonzero(h.addtime);
        l.hard_use_seconds = nonzero(h.usetime);
    }
    if let Some(s) = msg.lifetime(LifetimeKind::Soft) {
        l.soft_packets = nonzero(u64::from(s.allocations));
        l.soft_bytes = nonzero(s.bytes);
        l.soft_add_seconds = nonzero(s.addtime);
        l.soft_use_seconds = nonzero(s.usetime);
    }
    l
}

fn check_key(what: &str, key: &Key, allowed: &[usize]) -> Result<()> {
    if allowed.contains(&key.bits()) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} key is {} bits, expected {allowed:?}",
            key.bits()
        )))
    }
}

/// `SADB_ADD` or `SADB_UPDATE` (`msg_type`) for an SA.
pub fn sa_message(h: Header, msg_type: u8, sa: &SecurityAssociation) -> Result<Message> {
    let d = h.dialect;
    if sa.mark.is_some() {
        return Err(unsupported("marks"));
    }
    if sa.esn && d == Dialect::Linux {
        return Err(unsupported("extended sequence numbers over Linux af_key"));
    }
    if Family::of(&sa.source) != sa.family() {
        return Err(Error::Invalid("SA with mixed address families".into()));
    }
    if sa.reqid > IPSEC_MANUAL_REQID_MAX && d == Dialect::FreeBsd && sa.reqid > 0xffff {
        return Err(Error::Invalid(format!(
            "reqid {} does not fit FreeBSD",
            sa.reqid
        )));
    }
    let mut auth = SADB_AALG_NONE;
    let mut encrypt = SADB_EALG_NONE;
    let mut keys = Vec::new();
    match sa.id.protocol {
        SecurityProtocol::Esp => {
            let Some((alg, key)) = &sa.encryption else {
                return Err(Error::Invalid(
                    "ESP SA without an encryption transform".into(),
                ));
            };
            let (id, sizes) = encryption_id(*alg, d)?;
            check_key("encryption", key, sizes)?;
            encrypt = id;
            if alg.is_aead() && sa.integrity.is_some() {
                return Err(Error::Invalid(
                    "AEAD transform with an integrity transform".into(),
                ));
            }
            if let Some((ialg, ikey)) = &sa.integrity {
                auth = integrity_id(*ialg, d)?;
                check_key("integrity", ikey, &[ialg.key_bits()])?;
                keys.push(Extension::Key(KeyKind::Auth, KeyExt::new(ikey.clone())));
            }
            // Linux requires KEY_ENCRYPT for every ESP SA, zero bits for NULL.
            keys.push(Extension::Key(KeyKind::Encrypt, KeyExt::new(key.clone())));
            if sa.compression.is_some() {
                return Err(Error::Invalid("compression on an ESP SA".into()));
            }
        }
        SecurityProtocol::Ah => {
            let Some((ialg, ikey)) = &sa.integrity else {
                return Err(Error::Invalid(
                    "AH SA without an integrity transform".into(),
                ));
            };
            if sa.encryption.is_some() || sa.compression.is_some() {
                return Err(Error::Invalid(
                    "AH SA with encryption or compression".into(),
                ));
            }
            auth = integrity_id(*ialg, d)?;
            check_key("integrity", ikey, &[ialg.key_bits()])?;
            keys.push(Extension::Key(KeyKind::Auth, KeyExt::new(ikey.clone())));
        }
        SecurityProtocol::Comp => {
            // KAME overloads sadb_sa_encrypt with the compression algorithm.
            match sa.compression {
                Some(CompressionAlgorithm::Deflate) => encrypt = SADB_X_CALG_DEFLATE,
                None => return Err(Error::Invalid("IPComp SA without an algorithm".into())),
            }
            if sa.encryption.is_some() || sa.integrity.is_some() {
                return Err(Error::Invalid("IPComp SA with keys".into()));
            }
        }
    }
    let (replay, replay_ext) = match d {
        Dialect::Linux => {
            if sa.replay_window > 32 {
                return Err(unsupported(
                    "replay windows above 32 packets over Linux af_key (capped silently)",
                ));
            }
            (sa.replay_window as u8, None)
        }
        Dialect::FreeBsd => {
            let octets = sa.replay_window.div_ceil(8);
            let ext = (sa.replay_window > 255 * 8).then_some(Extension::SaReplay(sa.replay_window));
            (octets.min(255) as u8, ext)
        }
    };
    let flags = if sa.esn {
        SADB_X_SAFLAGS_ESN_FREEBSD
    } else {
        0
    };
    let mut msg = h
        .message(msg_type, satype(sa.id.protocol))
        .with(Extension::Sa(SaExt {
            spi: sa.id.spi,
            replay,
            state: SADB_SASTATE_MATURE,
            auth,
            encrypt,
            flags,
        }))
        .with(Extension::Sa2(Sa2Ext {
            mode: mode_number(sa.mode),
            sequence: 0,
            reqid: sa.reqid,
        }));
    if let Some((hard, soft)) = lifetime_exts(&sa.lifetime)? {
        msg.extensions
            .push(Extension::Lifetime(LifetimeKind::Hard, hard));
        msg.extensions
            .push(Extension::Lifetime(LifetimeKind::Soft, soft));
    }
    msg.extensions
        .push(host_address(AddressKind::Source, sa.source));
    msg.extensions
        .push(host_address(AddressKind::Destination, sa.id.destination));
    msg.extensions.extend(keys);
    if let Some(encap) = &sa.encapsulation {
        if sa.id.protocol != SecurityProtocol::Esp {
            return Err(Error::Invalid("UDP encapsulation of a non-ESP SA".into()));
        }
        msg.extensions.push(Extension::NatTType(UDP_ENCAP_ESPINUDP));
        msg.extensions
            .push(Extension::NatTPort(PortKind::Source, encap.source_port));
        msg.extensions.push(Extension::NatTPort(
            PortKind::Destination,
            encap.destination_port,
        ));
        // af_key ignores NAT_T_OA (it zeroes encap_oa); FreeBSD uses it for transport-mode
        // checksum fix-up.
        if let (Some(oa), Dialect::FreeBsd) = (encap.original_address, d) {
            msg.extensions.push(host_address(AddressKind::NatTOa, oa));
        }
    }
    if let Some(ext) = replay_ext {
        msg.extensions.push(ext);
    }
    Ok(msg)
}

/// `SADB_DELETE` or `SADB_GET` (`msg_type`) for one SA. `source` may be unspecified on Linux.
pub fn sa_id_message(h: Header, msg_type: u8, id: &SaId, source: IpAddr) -> Result<Message> {
    if Family::of(&source) != Family::of(&id.destination) {
        return Err(Error::Invalid("SA id with mixed address families".into()));
    }
    Ok(h.message(msg_type, satype(id.protocol))
        .with(Extension::Sa(SaExt {
            spi: id.spi,
            ..SaExt::default()
        }))
        .with(host_address(AddressKind::Source, source))
        .with(host_address(AddressKind::Destination, id.destination)))
}

/// `SADB_FLUSH` of every SA or those of one protocol.
pub fn flush(h: Header, protocol: Option<SecurityProtocol>) -> Message {
    h.message(SADB_FLUSH, protocol.map_or(SADB_SATYPE_UNSPEC, satype))
}

/// `SADB_DUMP` of every SA.
pub fn dump(h: Header) -> Message {
    h.message(SADB_DUMP, SADB_SATYPE_UNSPEC)
}

/// `SADB_REGISTER` for one protocol: the socket then receives ACQUIREs for it.
pub fn register(h: Header, protocol: SecurityProtocol) -> Message {
    h.message(SADB_REGISTER, satype(protocol))
}

fn ip_of(msg: &Message, kind: AddressKind, what: &'static str) -> Result<IpAddr, DecodeError> {
    msg.address(kind)
        .and_then(|a| a.addr.ip())
        .ok_or(DecodeError::Missing(what))
}

/// The SA in a GET/DUMP/ADD/UPDATE/GETSPI/EXPIRE message. Keys are empty when the kernel
/// did not include them (EXPIRE).
pub fn sa_from_message(msg: &Message, d: Dialect) -> Result<SecurityAssociation, DecodeError> {
    let protocol = protocol_from_satype(msg.satype).ok_or_else(|| DecodeError::BadValue {
        what: "sadb_msg_satype",
        value: u64::from(msg.satype),
    })?;
    let sa = msg.sa().ok_or(DecodeError::Missing("SA extension"))?;
    let source = ip_of(msg, AddressKind::Source, "ADDRESS_SRC")?;
    let destination = ip_of(msg, AddressKind::Destination, "ADDRESS_DST")?;
    let (mode, reqid) = match msg.sa2() {
        Some(sa2) => (mode_from_number(sa2.mode)?, sa2.reqid),
        None => (Mode::Transport, 0),
    };
    let id = SaId {
        destination,
        spi: sa.spi,
        protocol,
    };
    let mut out = SecurityAssociation::new(id, source, mode, reqid);
    let key = |kind| {
        msg.key(kind)
            .map_or_else(|| Key::new(Vec::new()), |k| k.key.clone())
    };
    match protocol {
        SecurityProtocol::Comp => {
            out.compression = match sa.encrypt {
                SADB_X_CALG_DEFLATE => Some(CompressionAlgorithm::Deflate),
                other => {
                    return Err(DecodeError::BadValue {
                        what: "sadb_sa_encrypt (compression)",
                        value: u64::from(other),
                    })
                }
            }
        }
        _ => {
            out.encryption = encryption_from_id(sa.encrypt)?.map(|a| (a, key(KeyKind::Encrypt)));
            out.integrity = integrity_from_id(sa.auth)?.map(|a| (a, key(KeyKind::Auth)));
        }
    }
    out.replay_window = match d {
        Dialect::Linux => u32::from(sa.replay),
        Dialect::FreeBsd => msg
            .extensions
            .iter()
            .find_map(|e| match e {
                Extension::SaReplay(p) => Some(*p),
                _ => None,
            })
            .unwrap_or_else(|| u32::from(sa.replay) * 8),
    };
    out.esn = d == Dialect::FreeBsd && sa.flags & SADB_X_SAFLAGS_ESN_FREEBSD != 0;
    out.lifetime = lifetime_from(msg);
    if let Some(c) = msg.lifetime(LifetimeKind::Current) {
        out.current = CurrentLifetime {
            bytes: c.bytes,
            packets: u64::from(c.allocations),
            add_time: c.addtime,
            use_time: c.usetime,
        };
    }
    if msg.nat_t_type().is_some() {
        out.encapsulation = Some(UdpEncapsulation {
            source_port: msg.nat_t_port(PortKind::Source).unwrap_or(0),
            destination_port: msg.nat_t_port(PortKind::Destination).unwrap_or(0),
            original_address: msg.address(AddressKind::NatTOa).and_then(|a| a.addr.ip()),
        });
    }
    Ok(out)
}

fn selector_addresses(sel: &Selector) -> Result<(Extension, Extension)> {
    if sel.source.family() != sel.destination.family() {
        return Err(Error::Invalid(
            "selector with mixed address families".into(),
        ));
    }
    let (proto, sport, dport) = match sel.upper {
        UpperLayer::Any => (IPSEC_ULPROTO_ANY, 0, 0),
        UpperLayer::Proto {
            proto,
            source_port,
            destination_port,
        } => (
            proto,
            source_port.unwrap_or(0),
            destination_port.unwrap_or(0),
        ),
    };
    let ext = |kind, p: &Prefix, port| {
        Extension::Address(
            kind,
            AddressExt {
                proto,
                prefixlen: p.len,
                addr: SockAddr::from_ip(p.addr, port),
            },
        )
    };
    Ok((
        ext(AddressKind::Source, &sel.source, sport),
        ext(AddressKind::Destination, &sel.destination, dport),
    ))
}

fn direction_number(dir: Direction, d: Dialect) -> Result<u8> {
    Ok(match (dir, d) {
        (Direction::In, _) => IPSEC_DIR_INBOUND,
        (Direction::Out, _) => IPSEC_DIR_OUTBOUND,
        (Direction::Fwd, Dialect::Linux) => IPSEC_DIR_FWD,
        (Direction::Fwd, Dialect::FreeBsd) => {
            return Err(unsupported(
                "forward policies on FreeBSD (it checks them as out)",
            ))
        }
    })
}

fn direction_from_number(dir: u8, d: Dialect) -> Result<Direction, DecodeError> {
    match (dir, d) {
        (IPSEC_DIR_INBOUND, _) => Ok(Direction::In),
        (IPSEC_DIR_OUTBOUND, _) => Ok(Direction::Out),
        (IPSEC_DIR_FWD, Dialect::Linux) => Ok(Direction::Fwd),
        (other, _) => Err(DecodeError::BadValue {
            what: "sadb_x_policy_dir",
            value: u64::from(other),
        }),
    }
}

fn request_from_template(t: &Template, d: Dialect) -> Result<IpsecRequest> {
    if t.reqid > IPSEC_MANUAL_REQID_MAX {
        return Err(Error::Invalid(format!(
            "template reqid {:#x} above IPSEC_MANUAL_REQID_MAX (the kernel would replace it)",
            t.reqid
        )));
    }
    let level = match (t.level, t.reqid) {
        (TemplateLevel::Require, 0) => IPSEC_LEVEL_REQUIRE,
        (TemplateLevel::Require, _) => IPSEC_LEVEL_UNIQUE,
        (TemplateLevel::Use, 0) => IPSEC_LEVEL_USE,
        (TemplateLevel::Use, _) => {
            return Err(unsupported("a reqid on an optional (level use) template"))
        }
    };
    let endpoints = match (t.mode, t.tunnel) {
        (Mode::Tunnel, Some((src, dst))) => {
            if Family::of(&src) != Family::of(&dst) {
                return Err(Error::Invalid("tunnel endpoints of mixed families".into()));
            }
            Some((SockAddr::from_ip(src, 0), SockAddr::from_ip(dst, 0)))
        }
        (Mode::Tunnel, None) => {
            return Err(Error::Invalid(
                "tunnel-mode template without endpoints".into(),
            ))
        }
        (Mode::Transport, _) => None,
    };
    let _ = d;
    Ok(IpsecRequest {
        proto: u16::from(t.protocol.ip_proto()),
        mode: mode_number(t.mode),
        level,
        reqid: t.reqid,
        endpoints,
    })
}

fn template_from_request(rq: &IpsecRequest) -> Result<Template, DecodeError> {
    let protocol = u8::try_from(rq.proto)
        .ok()
        .and_then(SecurityProtocol::from_ip_proto)
        .ok_or_else(|| DecodeError::BadValue {
            what: "sadb_x_ipsecrequest_proto",
            value: u64::from(rq.proto),
        })?;
    let mode = mode_from_number(rq.mode)?;
    let tunnel = match &rq.endpoints {
        Some((s, d)) if mode == Mode::Tunnel => s.ip().zip(d.ip()),
        _ => None,
    };
    Ok(Template {
        protocol,
        mode,
        reqid: rq.reqid,
        tunnel,
        level: if rq.level == IPSEC_LEVEL_USE {
            TemplateLevel::Use
        } else {
            TemplateLevel::Require
        },
    })
}

/// `SADB_X_SPDADD` or `SADB_X_SPDUPDATE` (`msg_type`) for a policy.
pub fn policy_message(h: Header, msg_type: u8, policy: &Policy) -> Result<Message> {
    let d = h.dialect;
    if policy.id.mark.is_some() {
        return Err(unsupported("marks"));
    }
    let (src, dst) = selector_addresses(&policy.id.selector)?;
    let (policy_type, requests) = match &policy.action {
        PolicyAction::Allow => (IPSEC_POLICY_NONE, Vec::new()),
        PolicyAction::Block => (IPSEC_POLICY_DISCARD, Vec::new()),
        PolicyAction::Protect(templates) => {
            if templates.is_empty() {
                return Err(Error::Invalid("protect policy without templates".into()));
            }
            let requests = templates
                .iter()
                .map(|t| request_from_template(t, d))
                .collect::<Result<Vec<_>>>()?;
            (IPSEC_POLICY_IPSEC, requests)
        }
    };
    let mut msg = h
        .message(msg_type, SADB_SATYPE_UNSPEC)
        .with(src)
        .with(dst)
        .with(Extension::Policy(PolicyExt {
            policy_type,
            dir: direction_number(policy.id.direction, d)?,
            scope: match d {
                Dialect::Linux => 0,
                Dialect::FreeBsd => IPSEC_POLICYSCOPE_GLOBAL,
            },
            id: 0,
            priority: policy.priority,
            requests,
        }));
    if let Some((hard, soft)) = lifetime_exts(&policy.lifetime)? {
        msg.extensions
            .push(Extension::Lifetime(LifetimeKind::Hard, hard));
        msg.extensions
            .push(Extension::Lifetime(LifetimeKind::Soft, soft));
    }
    Ok(msg)
}

/// `SADB_X_SPDDELETE` for a policy, by selector and direction.
pub fn policy_id_message(h: Header, msg_type: u8, id: &PolicyId) -> Result<Message> {
    if id.mark.is_some() {
        return Err(unsupported("marks"));
    }
    let (src, dst) = selector_addresses(&id.selector)?;
    Ok(h.message(msg_type, SADB_SATYPE_UNSPEC)
        .with(src)
        .with(dst)
        .with(Extension::Policy(PolicyExt {
            policy_type: IPSEC_POLICY_IPSEC,
            dir: direction_number(id.direction, h.dialect)?,
            scope: match h.dialect {
                Dialect::Linux => 0,
                Dialect::FreeBsd => IPSEC_POLICYSCOPE_GLOBAL,
            },
            ..PolicyExt::default()
        })))
}

/// `SADB_X_SPDFLUSH`.
pub fn policy_flush(h: Header) -> Message {
    h.message(SADB_X_SPDFLUSH, SADB_SATYPE_UNSPEC)
}

/// `SADB_X_SPDDUMP`.
pub fn policy_dump(h: Header) -> Message {
    h.message(SADB_X_SPDDUMP, SADB_SATYPE_UNSPEC)
}

fn prefix_of(a: &AddressExt, what: &'static str) -> Result<Prefix, DecodeError> {
    let addr = a.addr.ip().ok_or(DecodeError::Missing(what))?;
    if a.prefixlen > Family::of(&addr).max_prefix() {
        return Err(DecodeError::BadValue {
            what: "sadb_address_prefixlen",
            value: u64::from(a.prefixlen),
        });
    }
    Ok(Prefix {
        addr,
        len: a.prefixlen,
    })
}

/// The policy in an SPDADD/SPDUPDATE/SPDGET/SPDDUMP message.
pub fn policy_from_message(msg: &Message, d: Dialect) -> Result<Policy, DecodeError> {
    let src = msg
        .address(AddressKind::Source)
        .ok_or(DecodeError::Missing("ADDRESS_SRC"))?;
    let dst = msg
        .address(AddressKind::Destination)
        .ok_or(DecodeError::Missing("ADDRESS_DST"))?;
    let pol = msg.policy().ok_or(DecodeError::Missing("X_POLICY"))?;
    let port = |p: u16| (p != 0).then_some(p);
    let upper = if src.proto == IPSEC_ULPROTO_ANY {
        UpperLayer::Any
    } else {
        UpperLayer::Proto {
            proto: src.proto,
            source_port: port(src.addr.port()),
            destination_port: port(dst.addr.port()),
        }
    };
    let selector = Selector {
        source: prefix_of(src, "ADDRESS_SRC address")?,
        destination: prefix_of(dst, "ADDRESS_DST address")?,
        upper,
    };
    let action = match pol.policy_type {
        IPSEC_POLICY_DISCARD => PolicyAction::Block,
        IPSEC_POLICY_NONE | IPSEC_POLICY_BYPASS => PolicyAction::Allow,
        IPSEC_POLICY_IPSEC => PolicyAction::Protect(
            pol.requests
                .iter()
                .map(template_from_request)
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(DecodeError::BadValue {
                what: "sadb_x_policy_type",
                value: u64::from(other),
            })
        }
    };
    let priority = match d {
        Dialect::FreeBsd if pol.scope == IPSEC_POLICYSCOPE_IFNET => 0,
        _ => pol.priority,
    };
    Ok(Policy {
        id: PolicyId {
            selector,
            direction: direction_from_number(pol.dir, d)?,
            mark: None,
        },
        action,
        priority,
        index: Some(pol.id),
        lifetime: lifetime_from(msg),
    })
}

/// The event in a kernel-originated message, `None` for messages that are not events.
///
/// - ACQUIRE: Linux sends ADDRESS_SRC/DST, X_POLICY (id and direction of the policy) and a
///   PROPOSAL, but no reqid or mode; a template is reported only when an X_SA2 is present.
/// - EXPIRE: SA, SA2, LIFETIME_CURRENT and LIFETIME_SOFT (soft) or LIFETIME_HARD (hard).
/// - X_NAT_T_NEW_MAPPING is not reported: it lacks the SA's destination, so it cannot name
///   the SA as [`crate::Mapping`] requires.
pub fn event_from_message(msg: &Message, d: Dialect) -> Result<Option<KernelEvent>, DecodeError> {
    if msg.errno != 0 {
        return Ok(None);
    }
    match msg.msg_type {
        SADB_ACQUIRE => {
            let source = ip_of(msg, AddressKind::Source, "ADDRESS_SRC")?;
            let destination = ip_of(msg, AddressKind::Destination, "ADDRESS_DST")?;
            let pol = msg.policy();
            let template = match (msg.sa2(), protocol_from_satype(msg.satype)) {
                (Some(sa2), Some(protocol)) => {
                    let mode = mode_from_number(sa2.mode)?;
                    Some(Template {
                        protocol,
                        mode,
                        reqid: sa2.reqid,
                        tunnel: (mode == Mode::Tunnel).then_some((source, destination)),
                        level: TemplateLevel::Require,
                    })
                }
                _ => None,
            };
            Ok(Some(KernelEvent::Acquire(Acquire {
                sequence: msg.seq,
                policy_index: pol.map(|p| p.id),
                policy_direction: pol.and_then(|p| direction_from_number(p.dir, d).ok()),
                source,
                destination,
                selector: None,
                template,
            })))
        }
        SADB_EXPIRE => {
            let sa = sa_from_message(msg, d)?;
            Ok(Some(KernelEvent::Expire(Expire {
                id: sa.id,
                source: sa.source,
                reqid: msg.sa2().map(|s| s.reqid),
                hard: msg.lifetime(LifetimeKind::Hard).is_some(),
            })))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn h(dialect: Dialect) -> Header {
        Header {
            dialect,
            seq: 7,
            pid: 42,
        }
    }

    fn esp_sa() -> SecurityAssociation {
        SecurityAssociation::new(
            SaId {
                destination: ip(12),
                spi: 0x1234,
                protocol: SecurityProtocol::Esp,
            },
            ip(11),
            Mode::Transport,
            0x3001,
        )
        .with_encryption(EncryptionAlgorithm::AesCbc, Key::new(vec![1; 16]))
        .with_integrity(IntegrityAlgorithm::HmacSha1_96, Key::new(vec![2; 20]))
        .with_lifetime(Lifetime {
            soft_add_seconds: Some(2),
            hard_add_seconds: Some(4),
            ..Lifetime::default()
        })
    }

    #[test]
    fn sa_survives_message_round_trip_in_both_dialects() {
        for d in [Dialect::Linux, Dialect::FreeBsd] {
            let sa = esp_sa();
            let msg = sa_message(h(d), SADB_ADD, &sa).unwrap();
            let back = Message::decode(&msg.encode(d), d).unwrap();
            assert_eq!(back, msg);
            assert_eq!(sa_from_message(&back, d).unwrap(), sa, "{d:?}");
        }
    }

    #[test]
    fn replay_window_is_packets_on_linux_and_octets_on_freebsd() {
        let sa = esp_sa();
        let linux = sa_message(h(Dialect::Linux), SADB_ADD, &sa).unwrap();
        let bsd = sa_message(h(Dialect::FreeBsd), SADB_ADD, &sa).unwrap();
        assert_eq!(linux.sa().unwrap().replay, 32);
        assert_eq!(bsd.sa().unwrap().replay, 4);
        let mut big = esp_sa();
        big.replay_window = 4096;
        let bsd = sa_message(h(Dialect::FreeBsd), SADB_ADD, &big).unwrap();
        assert_eq!(bsd.sa().unwrap().replay, 255);
        assert_eq!(
            sa_from_message(&bsd, Dialect::FreeBsd)
                .unwrap()
                .replay_window,
            4096
        );
        assert!(matches!(
            sa_message(h(Dialect::Linux), SADB_ADD, &big),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn hmac_sha256_is_refused_on_linux_but_not_freebsd() {
        let sa = esp_sa().with_integrity(IntegrityAlgorithm::HmacSha256_128, Key::new(vec![3; 32]));
        assert!(matches!(
            sa_message(h(Dialect::Linux), SADB_ADD, &sa),
            Err(Error::Unsupported {
                backend: "pfkey",
                ..
            })
        ));
        let msg = sa_message(h(Dialect::FreeBsd), SADB_ADD, &sa).unwrap();
        assert_eq!(msg.sa().unwrap().auth, SADB_X_AALG_SHA2_256HMAC);
    }

    #[test]
    fn aes_gcm_is_refused_on_linux_and_carries_the_icv_in_the_id_on_freebsd() {
        let mut sa = esp_sa();
        sa.integrity = None;
        sa.encryption = Some((
            EncryptionAlgorithm::AesGcm { icv_bits: 128 },
            Key::new(vec![4; 20]),
        ));
        assert!(matches!(
            sa_message(h(Dialect::Linux), SADB_ADD, &sa),
            Err(Error::Unsupported { .. })
        ));
        let msg = sa_message(h(Dialect::FreeBsd), SADB_ADD, &sa).unwrap();
        assert_eq!(msg.sa().unwrap().encrypt, SADB_X_EALG_AES_GCM_ICV16);
    }

    #[test]
    fn wrong_key_length_is_invalid() {
        let sa = esp_sa().with_encryption(EncryptionAlgorithm::TripleDesCbc, Key::new(vec![1; 16]));
        let err = sa_message(h(Dialect::Linux), SADB_ADD, &sa).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref m) if m.contains("128 bits")),
            "{err}"
        );
    }

    #[test]
    fn marks_are_unsupported() {
        let mut sa = esp_sa();
        sa.mark = Some(crate::Mark { value: 1, mask: 1 });
        assert!(matches!(
            sa_message(h(Dialect::Linux), SADB_ADD, &sa),
            Err(Error::Unsupported { .. })
        ));
    }

    fn tunnel_policy(dir: Direction) -> Policy {
        Policy {
            id: PolicyId {
                selector: Selector {
                    source: Prefix {
                        addr: "198.51.100.0".parse().unwrap(),
                        len: 24,
                    },
                    destination: Prefix {
                        addr: "203.0.113.0".parse().unwrap(),
                        len: 24,
                    },
                    upper: UpperLayer::Proto {
                        proto: 6,
                        source_port: None,
                        destination_port: Some(443),
                    },
                },
                direction: dir,
                mark: None,
            },
            action: PolicyAction::Protect(vec![Template {
                protocol: SecurityProtocol::Esp,
                mode: Mode::Tunnel,
                reqid: 0x3002,
                tunnel: Some((ip(11), ip(12))),
                level: TemplateLevel::Require,
            }]),
            priority: 5000,
            index: Some(99),
            lifetime: Lifetime::default(),
        }
    }

    #[test]
    fn policy_survives_message_round_trip_in_both_dialects() {
        for d in [Dialect::Linux, Dialect::FreeBsd] {
            let p = tunnel_policy(Direction::Out);
            let mut msg = policy_message(h(d), SADB_X_SPDADD, &p).unwrap();
            let pol = msg.policy().unwrap();
            assert_eq!(pol.requests[0].level, IPSEC_LEVEL_UNIQUE);
            // The kernel assigns the index; pretend it chose 99.
            if let Some(Extension::Policy(pol)) = msg
                .extensions
                .iter_mut()
                .find(|e| matches!(e, Extension::Policy(_)))
            {
                pol.id = 99;
            }
            let back = Message::decode(&msg.encode(d), d).unwrap();
            assert_eq!(policy_from_message(&back, d).unwrap(), p, "{d:?}");
        }
    }

    #[test]
    fn forward_policies_are_unsupported_on_freebsd() {
        let p = tunnel_policy(Direction::Fwd);
        assert!(policy_message(h(Dialect::Linux), SADB_X_SPDADD, &p).is_ok());
        assert!(matches!(
            policy_message(h(Dialect::FreeBsd), SADB_X_SPDADD, &p),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn reqids_above_the_manual_maximum_are_refused() {
        let mut p = tunnel_policy(Direction::Out);
        if let PolicyAction::Protect(t) = &mut p.action {
            t[0].reqid = 0x4000;
        }
        assert!(matches!(
            policy_message(h(Dialect::Linux), SADB_X_SPDADD, &p),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn expire_with_hard_lifetime_is_a_hard_expire() {
        let sa = esp_sa();
        let mut msg = sa_message(h(Dialect::Linux), SADB_EXPIRE, &sa).unwrap();
        msg.extensions
            .retain(|e| !matches!(e, Extension::Lifetime(LifetimeKind::Soft, _)));
        let ev = event_from_message(&msg, Dialect::Linux).unwrap();
        match ev {
            Some(KernelEvent::Expire(e)) => {
                assert!(e.hard);
                assert_eq!(e.id, sa.id);
                assert_eq!(e.reqid, Some(0x3001));
            }
            other => panic!("{other:?}"),
        }
    }
}
