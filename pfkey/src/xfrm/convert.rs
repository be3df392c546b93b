//! Mapping between the XFRM codec and the [`crate::model`] types.
//!
//! Outbound (model → wire) functions validate the request first (families, key lengths,
//! algorithm combinations) and fail with [`Error::Invalid`] before anything reaches the
//! kernel. Inbound (wire → model) functions fail with [`Error::Unsupported`] for kernel
//! objects the model cannot express (BEET mode, IPIP states, SHA-256 with 96-bit truncation,
//! unknown algorithms...); dumps skip those. No I/O here.
//!
//! Algorithms (kernel names from `net/xfrm/xfrm_algo.c`; the compat names the kernel also
//! accepts are recognised on input):
//!
//! | model | attribute | kernel name | key bits | ICV / truncation |
//! |---|---|---|---|---|
//! | `Null` | ALG_CRYPT | `ecb(cipher_null)` | 0 | |
//! | `DesCbc` | ALG_CRYPT | `cbc(des)` | 64 | |
//! | `TripleDesCbc` | ALG_CRYPT | `cbc(des3_ede)` | 192 | |
//! | `AesCbc` | ALG_CRYPT | `cbc(aes)` | 128/192/256 | |
//! | `AesGcm` | ALG_AEAD | `rfc4106(gcm(aes))` | 160/224/288 (key + 32-bit salt) | 64/96/128 |
//! | `HmacMd5_96` | ALG_AUTH_TRUNC | `hmac(md5)` | 128 | 96 |
//! | `HmacSha1_96` | ALG_AUTH_TRUNC | `hmac(sha1)` | 160 | 96 |
//! | `HmacSha256_128` | ALG_AUTH_TRUNC | `hmac(sha256)` | 256 | 128 (RFC 4868; the kernel's default is 96) |
//! | `HmacSha384_192` | ALG_AUTH_TRUNC | `hmac(sha384)` | 384 | 192 |
//! | `HmacSha512_256` | ALG_AUTH_TRUNC | `hmac(sha512)` | 512 | 256 |
//! | `Deflate` | ALG_COMP | `deflate` | 0 | |
//!
//! Every integrity algorithm goes out as `XFRMA_ALG_AUTH_TRUNC` with an explicit truncation,
//! so no kernel default is relied upon. The kernel reports both `XFRMA_ALG_AUTH` and
//! `XFRMA_ALG_AUTH_TRUNC` on read-back; the latter wins.

use std::net::IpAddr;

use super::codec::{
    state_flags, AddressFamily, AlgName, Algo, AlgoAead, AlgoAuth, Be16, Be32, EncapTmpl,
    LifetimeCfg, LifetimeCur, PolicyActionCode, PolicyDir, ReplayStateEsn, SpdAttr, UserAcquire,
    UserExpire, UserMapping, UserOffload, UserPolexpire, UserTmpl, UserpolicyId, UserpolicyInfo,
    UsersaId, UsersaInfo, WithAttrs, XfrmAddress, XfrmAttr, XfrmId, XfrmMark, XfrmMode,
    XfrmSelector, UDP_ENCAP_ESPINUDP, XFRM_INF, XFRM_OFFLOAD_INBOUND,
};
use crate::{
    Acquire, CompressionAlgorithm, CurrentLifetime, Direction, EncryptionAlgorithm, Error, Expire,
    Family, IntegrityAlgorithm, Key, Lifetime, Mapping, Mark, Mode, Policy, PolicyAction,
    PolicyExpire, PolicyId, Prefix, Result, SaId, SecurityAssociation, SecurityProtocol, Selector,
    SpdInfo, Template, TemplateLevel, UdpEncapsulation, UpperLayer,
};

const BACKEND: &str = "xfrm";

/// The largest replay window the fixed `replay_window` field really gives (its bitmap is 32
/// bits wide).
const LEGACY_REPLAY_WINDOW_MAX: u32 = 32;

fn unsupported(what: &'static str) -> Error {
    Error::Unsupported {
        backend: BACKEND,
        what,
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// The `AF_*` value of a family.
pub fn family_to_wire(f: Family) -> AddressFamily {
    match f {
        Family::V4 => AddressFamily::INET,
        Family::V6 => AddressFamily::INET6,
    }
}

/// The family of an `AF_*` value, if it is IPv4 or IPv6.
pub fn family_from_wire(f: AddressFamily) -> Option<Family> {
    match f {
        AddressFamily::INET => Some(Family::V4),
        AddressFamily::INET6 => Some(Family::V6),
        _ => None,
    }
}

fn addr(a: &XfrmAddress, f: AddressFamily, what: &'static str) -> Result<IpAddr> {
    a.to_ip(f).ok_or_else(|| unsupported(what))
}

fn mode_to_wire(m: Mode) -> XfrmMode {
    match m {
        Mode::Transport => XfrmMode::TRANSPORT,
        Mode::Tunnel => XfrmMode::TUNNEL,
    }
}

fn mode_from_wire(m: XfrmMode) -> Result<Mode> {
    match m {
        XfrmMode::TRANSPORT => Ok(Mode::Transport),
        XfrmMode::TUNNEL => Ok(Mode::Tunnel),
        _ => Err(unsupported("XFRM mode other than transport or tunnel")),
    }
}

/// The kernel's policy direction code.
pub fn direction_to_wire(d: Direction) -> PolicyDir {
    match d {
        Direction::In => PolicyDir::IN,
        Direction::Out => PolicyDir::OUT,
        Direction::Fwd => PolicyDir::FWD,
    }
}

/// The direction of a kernel policy direction code.
pub fn direction_from_wire(d: PolicyDir) -> Result<Direction> {
    match d {
        PolicyDir::IN => Ok(Direction::In),
        PolicyDir::OUT => Ok(Direction::Out),
        PolicyDir::FWD => Ok(Direction::Fwd),
        _ => Err(unsupported("policy direction")),
    }
}

fn protocol_from_wire(p: u8) -> Result<SecurityProtocol> {
    SecurityProtocol::from_ip_proto(p)
        .ok_or_else(|| unsupported("XFRM protocol other than ESP, AH or IPComp"))
}

/// The selector of a model selector. Both prefixes must have the same family.
pub fn selector_to_wire(s: &Selector) -> Result<XfrmSelector> {
    let family = s.source.family();
    if s.destination.family() != family {
        return Err(invalid(format!(
            "selector mixes families: {} and {}",
            s.source, s.destination
        )));
    }
    if s.source.len > family.max_prefix() || s.destination.len > family.max_prefix() {
        return Err(invalid(format!(
            "selector prefix too long: {} -> {}",
            s.source, s.destination
        )));
    }
    let mut sel = XfrmSelector {
        daddr: XfrmAddress::from_ip(s.destination.addr),
        saddr: XfrmAddress::from_ip(s.source.addr),
        family: family_to_wire(family),
        prefixlen_d: s.destination.len,
        prefixlen_s: s.source.len,
        ..XfrmSelector::default()
    };
    if let UpperLayer::Proto {
        proto,
        source_port,
        destination_port,
    } = s.upper
    {
        sel.proto = proto;
        if let Some(p) = source_port {
            sel.sport = Be16(p);
            sel.sport_mask = Be16(0xffff);
        }
        if let Some(p) = destination_port {
            sel.dport = Be16(p);
            sel.dport_mask = Be16(0xffff);
        }
    }
    Ok(sel)
}

/// The model selector of a kernel selector; `None` for an `AF_UNSPEC` (empty) selector.
pub fn selector_from_wire(sel: &XfrmSelector) -> Result<Option<Selector>> {
    if sel.family == AddressFamily::UNSPEC {
        return Ok(None);
    }
    let source = addr(&sel.saddr, sel.family, "selector family")?;
    let destination = addr(&sel.daddr, sel.family, "selector family")?;
    let port = |p: Be16, mask: Be16| (mask.0 != 0).then_some(p.0);
    let upper = if sel.proto == 0 {
        UpperLayer::Any
    } else {
        UpperLayer::Proto {
            proto: sel.proto,
            source_port: port(sel.sport, sel.sport_mask),
            destination_port: port(sel.dport, sel.dport_mask),
        }
    };
    Ok(Some(Selector {
        source: Prefix {
            addr: source,
            len: sel.prefixlen_s,
        },
        destination: Prefix {
            addr: destination,
            len: sel.prefixlen_d,
        },
        upper,
    }))
}

/// Kernel lifetime limits of a model lifetime. Unlimited byte and packet counts are
/// `XFRM_INF`; unlimited times are 0 (what the kernel and `ip xfrm` use).
pub fn lifetime_to_wire(l: &Lifetime) -> LifetimeCfg {
    LifetimeCfg {
        soft_byte_limit: l.soft_bytes.unwrap_or(XFRM_INF),
        hard_byte_limit: l.hard_bytes.unwrap_or(XFRM_INF),
        soft_packet_limit: l.soft_packets.unwrap_or(XFRM_INF),
        hard_packet_limit: l.hard_packets.unwrap_or(XFRM_INF),
        soft_add_expires_seconds: l.soft_add_seconds.unwrap_or(0),
        hard_add_expires_seconds: l.hard_add_seconds.unwrap_or(0),
        soft_use_expires_seconds: l.soft_use_seconds.unwrap_or(0),
        hard_use_expires_seconds: l.hard_use_seconds.unwrap_or(0),
    }
}

/// Model lifetime of kernel limits: `XFRM_INF` means none, and so does 0 for times.
pub fn lifetime_from_wire(l: &LifetimeCfg) -> Lifetime {
    let count = |v: u64| (v != XFRM_INF).then_some(v);
    let time = |v: u64| (v != XFRM_INF && v != 0).then_some(v);
    Lifetime {
        soft_bytes: count(l.soft_byte_limit),
        hard_bytes: count(l.hard_byte_limit),
        soft_packets: count(l.soft_packet_limit),
        hard_packets: count(l.hard_packet_limit),
        soft_add_seconds: time(l.soft_add_expires_seconds),
        hard_add_seconds: time(l.hard_add_expires_seconds),
        soft_use_seconds: time(l.soft_use_expires_seconds),
        hard_use_seconds: time(l.hard_use_expires_seconds),
    }
}

fn current_from_wire(c: &LifetimeCur) -> CurrentLifetime {
    CurrentLifetime {
        bytes: c.bytes,
        packets: c.packets,
        add_time: c.add_time,
        use_time: c.use_time,
    }
}

fn mark_attr(m: &Option<Mark>) -> Option<XfrmAttr> {
    m.map(|m| {
        XfrmAttr::Mark(XfrmMark {
            v: m.value,
            m: m.mask,
        })
    })
}

fn mark_from_attrs(attrs: &[XfrmAttr]) -> Option<Mark> {
    attrs.iter().find_map(|a| match a {
        XfrmAttr::Mark(m) => Some(Mark {
            value: m.v,
            mask: m.m,
        }),
        _ => None,
    })
}

fn check_key(what: &str, key: &Key, allowed: &[usize]) -> Result<()> {
    if allowed.contains(&key.bits()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what}: key of {} bits, expected {}",
            key.bits(),
            allowed
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }
}

fn encryption_attr(alg: EncryptionAlgorithm, key: &Key) -> Result<XfrmAttr> {
    use EncryptionAlgorithm::*;
    let crypt = |name: &str, bits: &[usize]| -> Result<XfrmAttr> {
        check_key(name, key, bits)?;
        Ok(XfrmAttr::AlgCrypt(Algo::new(name, key.clone())))
    };
    match alg {
        Null => crypt("ecb(cipher_null)", &[0]),
        DesCbc => crypt("cbc(des)", &[64]),
        TripleDesCbc => crypt("cbc(des3_ede)", &[192]),
        AesCbc => crypt("cbc(aes)", &[128, 192, 256]),
        AesGcm { icv_bits } => {
            check_key("rfc4106(gcm(aes))", key, &[160, 224, 288])?;
            if !matches!(icv_bits, 64 | 96 | 128) {
                return Err(invalid(format!(
                    "AES-GCM ICV of {icv_bits} bits, expected 64, 96 or 128"
                )));
            }
            Ok(XfrmAttr::AlgAead(AlgoAead {
                name: AlgName::new("rfc4106(gcm(aes))"),
                key_bits: u32::try_from(key.bits()).unwrap_or(u32::MAX),
                icv_bits: u32::from(icv_bits),
                key: key.clone(),
            }))
        }
    }
}

fn integrity_name(alg: IntegrityAlgorithm) -> &'static str {
    match alg {
        IntegrityAlgorithm::HmacMd5_96 => "hmac(md5)",
        IntegrityAlgorithm::HmacSha1_96 => "hmac(sha1)",
        IntegrityAlgorithm::HmacSha256_128 => "hmac(sha256)",
        IntegrityAlgorithm::HmacSha384_192 => "hmac(sha384)",
        IntegrityAlgorithm::HmacSha512_256 => "hmac(sha512)",
    }
}

fn integrity_attr(alg: IntegrityAlgorithm, key: &Key) -> Result<XfrmAttr> {
    let name = integrity_name(alg);
    check_key(name, key, &[alg.key_bits()])?;
    Ok(XfrmAttr::AlgAuthTrunc(AlgoAuth {
        name: AlgName::new(name),
        key_bits: u32::try_from(key.bits()).unwrap_or(u32::MAX),
        trunc_bits: alg.truncation_bits(),
        key: key.clone(),
    }))
}

fn integrity_from_wire(name: &str, trunc_bits: u32) -> Option<IntegrityAlgorithm> {
    use IntegrityAlgorithm::*;
    let alg = match name {
        "hmac(md5)" | "md5" => HmacMd5_96,
        "hmac(sha1)" | "sha1" => HmacSha1_96,
        "hmac(sha256)" | "sha256" => HmacSha256_128,
        "hmac(sha384)" | "sha384" => HmacSha384_192,
        "hmac(sha512)" | "sha512" => HmacSha512_256,
        _ => return None,
    };
    (alg.truncation_bits() == trunc_bits).then_some(alg)
}

/// The kernel's default truncation for `XFRMA_ALG_AUTH` (no explicit truncation).
fn default_truncation(name: &str) -> u32 {
    match name {
        "hmac(sha384)" | "sha384" => 192,
        "hmac(sha512)" | "sha512" => 256,
        _ => 96,
    }
}

fn encryption_from_wire(name: &str) -> Option<EncryptionAlgorithm> {
    use EncryptionAlgorithm::*;
    Some(match name {
        "ecb(cipher_null)" | "cipher_null" => Null,
        "cbc(des)" | "des" => DesCbc,
        "cbc(des3_ede)" | "des3_ede" => TripleDesCbc,
        "cbc(aes)" | "aes" => AesCbc,
        _ => return None,
    })
}

/// Checks that an SA can be installed: families agree, the algorithms fit the protocol, and
/// every key has the length its algorithm needs.
pub fn validate_sa(sa: &SecurityAssociation) -> Result<()> {
    let family = sa.family();
    if Family::of(&sa.source) != family {
        return Err(invalid(format!(
            "SA endpoints mix families: {} -> {}",
            sa.source, sa.id.destination
        )));
    }
    match sa.id.protocol {
        SecurityProtocol::Esp => {
            let Some((enc, _)) = &sa.encryption else {
                return Err(invalid("ESP SA without an encryption algorithm (use Null)"));
            };
            if enc.is_aead() && sa.integrity.is_some() {
                return Err(invalid("AES-GCM SA with a separate integrity algorithm"));
            }
            if sa.compression.is_some() {
                return Err(invalid("ESP SA with a compression algorithm"));
            }
        }
        SecurityProtocol::Ah => {
            if sa.integrity.is_none() || sa.encryption.is_some() || sa.compression.is_some() {
                return Err(invalid("AH SA needs exactly an integrity algorithm"));
            }
        }
        SecurityProtocol::Comp => {
            if sa.compression.is_none() || sa.encryption.is_some() || sa.integrity.is_some() {
                return Err(invalid("IPComp SA needs exactly a compression algorithm"));
            }
        }
    }
    if sa.encapsulation.is_some() && sa.id.protocol != SecurityProtocol::Esp {
        return Err(invalid("UDP encapsulation applies to ESP only"));
    }
    if let Some(enc) = &sa.encapsulation {
        if let Some(oa) = enc.original_address {
            if Family::of(&oa) != family {
                return Err(invalid("NAT-OA address of another family than the SA"));
            }
        }
    }
    if sa.esn && sa.id.protocol == SecurityProtocol::Comp {
        return Err(invalid("ESN on an IPComp SA"));
    }
    Ok(())
}

fn is_unrestricted(sel: &Selector) -> bool {
    sel.source.len == 0
        && sel.destination.len == 0
        && sel.source.addr.is_unspecified()
        && sel.destination.addr.is_unspecified()
        && sel.upper == UpperLayer::Any
}

/// The NEWSA/UPDSA body and attributes for an SA; `with_offload` adds `XFRMA_OFFLOAD_DEV`
/// when the SA asks for offload.
pub fn sa_to_wire(sa: &SecurityAssociation, with_offload: bool) -> Result<WithAttrs<UsersaInfo>> {
    validate_sa(sa)?;
    let family = sa.family();
    let mut info = UsersaInfo {
        id: XfrmId {
            daddr: XfrmAddress::from_ip(sa.id.destination),
            spi: Be32(sa.id.spi),
            proto: sa.id.protocol.ip_proto(),
        },
        saddr: XfrmAddress::from_ip(sa.source),
        lft: lifetime_to_wire(&sa.lifetime),
        family: family_to_wire(family),
        mode: mode_to_wire(sa.mode),
        reqid: sa.reqid,
        ..UsersaInfo::default()
    };
    match &sa.selector {
        Some(sel) => info.sel = selector_to_wire(sel)?,
        // A tunnel SA without selector carries either inner family, as strongSwan's do.
        None if sa.mode == Mode::Tunnel => info.flags |= state_flags::AF_UNSPEC,
        None => {}
    }
    if sa.id.protocol == SecurityProtocol::Ah && family == Family::V4 {
        // RFC 4302 §3.3.3.2.1: AH on IPv4 is 32-bit aligned; Linux pads to 64 bits unless told.
        info.flags |= state_flags::ALIGN4;
    }
    let mut attrs = Vec::new();
    if let Some((alg, key)) = &sa.encryption {
        attrs.push(encryption_attr(*alg, key)?);
    }
    if let Some((alg, key)) = &sa.integrity {
        attrs.push(integrity_attr(*alg, key)?);
    }
    if let Some(CompressionAlgorithm::Deflate) = sa.compression {
        attrs.push(XfrmAttr::AlgComp(Algo::new(
            "deflate",
            Key::new(Vec::new()),
        )));
    }
    if let Some(enc) = &sa.encapsulation {
        attrs.push(XfrmAttr::Encap(EncapTmpl {
            encap_type: UDP_ENCAP_ESPINUDP,
            sport: Be16(enc.source_port),
            dport: Be16(enc.destination_port),
            oa: enc
                .original_address
                .map(XfrmAddress::from_ip)
                .unwrap_or_default(),
        }));
    }
    if sa.esn || sa.replay_window > LEGACY_REPLAY_WINDOW_MAX {
        // The legacy replay state is a 32-bit bitmap: Linux silently clamps larger windows
        // in `replay_window` to 32. Larger windows and ESN need the ESN replay state (as
        // strongSwan does); the fixed field must then be 0 (the kernel rejects both).
        if sa.esn {
            info.flags |= state_flags::ESN;
        }
        let words = sa.replay_window.div_ceil(32) as usize;
        attrs.push(XfrmAttr::ReplayEsnVal(ReplayStateEsn {
            replay_window: sa.replay_window,
            bmp: vec![0; words],
            ..ReplayStateEsn::default()
        }));
    } else {
        info.replay_window = u8::try_from(sa.replay_window).unwrap_or(u8::MAX);
    }
    attrs.extend(mark_attr(&sa.mark));
    if with_offload {
        if let Some(o) = &sa.offload {
            attrs.push(XfrmAttr::OffloadDev(UserOffload {
                ifindex: i32::try_from(o.ifindex)
                    .map_err(|_| invalid(format!("ifindex {} out of range", o.ifindex)))?,
                flags: if o.inbound { XFRM_OFFLOAD_INBOUND } else { 0 },
            }));
        }
    }
    Ok(WithAttrs::new(info, attrs))
}

/// The SA of a NEWSA message (a GETSA answer, a dump entry or an ALLOCSPI answer).
pub fn sa_from_wire(m: &WithAttrs<UsersaInfo>) -> Result<SecurityAssociation> {
    let info = &m.body;
    let family = info.family;
    let protocol = protocol_from_wire(info.id.proto)?;
    let mut sa = SecurityAssociation::new(
        SaId {
            destination: addr(&info.id.daddr, family, "SA family")?,
            spi: info.id.spi.0,
            protocol,
        },
        addr(&info.saddr, family, "SA family")?,
        mode_from_wire(info.mode)?,
        info.reqid,
    );
    sa.replay_window = u32::from(info.replay_window);
    sa.lifetime = lifetime_from_wire(&info.lft);
    sa.current = current_from_wire(&info.curlft);
    // Linux fills in the family of an empty transport-mode selector, so an SA installed
    // without one reads back as any/any: both mean "no restriction".
    sa.selector = selector_from_wire(&info.sel)?.filter(|sel| !is_unrestricted(sel));
    sa.esn = info.flags & state_flags::ESN != 0;
    let mut auth_default = None;
    for a in &m.attrs {
        match a {
            XfrmAttr::AlgCrypt(alg) => {
                let alg_enc = alg
                    .name
                    .as_str()
                    .and_then(encryption_from_wire)
                    .ok_or_else(|| unsupported("encryption algorithm"))?;
                sa.encryption = Some((alg_enc, alg.key.clone()));
            }
            XfrmAttr::AlgAead(alg) => {
                if alg.name.as_str() != Some("rfc4106(gcm(aes))") {
                    return Err(unsupported("AEAD algorithm"));
                }
                let icv_bits =
                    u16::try_from(alg.icv_bits).map_err(|_| unsupported("AEAD ICV length"))?;
                sa.encryption = Some((EncryptionAlgorithm::AesGcm { icv_bits }, alg.key.clone()));
            }
            XfrmAttr::AlgAuthTrunc(alg) => {
                let alg_int = alg
                    .name
                    .as_str()
                    .and_then(|n| integrity_from_wire(n, alg.trunc_bits))
                    .ok_or_else(|| unsupported("integrity algorithm or truncation"))?;
                sa.integrity = Some((alg_int, alg.key.clone()));
            }
            XfrmAttr::AlgAuth(alg) => auth_default = Some(alg),
            XfrmAttr::AlgComp(alg) => match alg.name.as_str() {
                Some("deflate") => sa.compression = Some(CompressionAlgorithm::Deflate),
                _ => return Err(unsupported("compression algorithm")),
            },
            XfrmAttr::Encap(e) => {
                if e.encap_type != UDP_ENCAP_ESPINUDP {
                    return Err(unsupported("encapsulation type other than ESP-in-UDP"));
                }
                sa.encapsulation = Some(UdpEncapsulation {
                    source_port: e.sport.0,
                    destination_port: e.dport.0,
                    original_address: (e.oa != XfrmAddress::default())
                        .then(|| e.oa.to_ip(family))
                        .flatten(),
                });
            }
            XfrmAttr::ReplayEsnVal(r) => sa.replay_window = r.replay_window,
            XfrmAttr::Mark(mk) => {
                sa.mark = Some(Mark {
                    value: mk.v,
                    mask: mk.m,
                })
            }
            XfrmAttr::OffloadDev(o) => {
                sa.offload = Some(crate::OffloadRequest {
                    ifindex: u32::try_from(o.ifindex).unwrap_or_default(),
                    inbound: o.flags & XFRM_OFFLOAD_INBOUND != 0,
                })
            }
            _ => {}
        }
    }
    if sa.integrity.is_none() {
        if let Some(alg) = auth_default {
            let name = alg.name.as_str().unwrap_or_default();
            let alg_int = integrity_from_wire(name, default_truncation(name))
                .ok_or_else(|| unsupported("integrity algorithm or truncation"))?;
            sa.integrity = Some((alg_int, alg.key.clone()));
        }
    }
    Ok(sa)
}

/// The GETSA/DELSA body and attributes for an SA identity.
pub fn sa_id_to_wire(id: &SaId, mark: Option<Mark>) -> WithAttrs<UsersaId> {
    WithAttrs::new(
        UsersaId {
            daddr: XfrmAddress::from_ip(id.destination),
            spi: Be32(id.spi),
            family: family_to_wire(Family::of(&id.destination)),
            proto: id.protocol.ip_proto(),
        },
        mark_attr(&mark).into_iter().collect(),
    )
}

fn template_to_wire(t: &Template, selector_family: Family) -> Result<UserTmpl> {
    let mut tmpl = UserTmpl {
        id: XfrmId {
            proto: t.protocol.ip_proto(),
            ..XfrmId::default()
        },
        family: family_to_wire(selector_family),
        reqid: t.reqid,
        mode: mode_to_wire(t.mode),
        optional: u8::from(t.level == TemplateLevel::Use),
        aalgos: !0,
        ealgos: !0,
        calgos: !0,
        ..UserTmpl::default()
    };
    match (t.mode, t.tunnel) {
        (Mode::Tunnel, Some((src, dst))) => {
            if Family::of(&src) != Family::of(&dst) {
                return Err(invalid(format!(
                    "tunnel endpoints mix families: {src} -> {dst}"
                )));
            }
            tmpl.family = family_to_wire(Family::of(&src));
            tmpl.saddr = XfrmAddress::from_ip(src);
            tmpl.id.daddr = XfrmAddress::from_ip(dst);
        }
        (Mode::Tunnel, None) => return Err(invalid("tunnel-mode template without endpoints")),
        (Mode::Transport, Some(_)) => {
            return Err(invalid("transport-mode template with tunnel endpoints"))
        }
        (Mode::Transport, None) => {}
    }
    Ok(tmpl)
}

fn template_from_wire(t: &UserTmpl) -> Result<Template> {
    let mode = mode_from_wire(t.mode)?;
    let tunnel = match mode {
        Mode::Tunnel => Some((
            addr(&t.saddr, t.family, "template family")?,
            addr(&t.id.daddr, t.family, "template family")?,
        )),
        Mode::Transport => None,
    };
    Ok(Template {
        protocol: protocol_from_wire(t.id.proto)?,
        mode,
        reqid: t.reqid,
        tunnel,
        level: if t.optional != 0 {
            TemplateLevel::Use
        } else {
            TemplateLevel::Require
        },
    })
}

/// The NEWPOLICY/UPDPOLICY body and attributes for a policy.
pub fn policy_to_wire(p: &Policy) -> Result<WithAttrs<UserpolicyInfo>> {
    let dir = direction_to_wire(p.id.direction);
    if let Some(index) = p.index {
        // The kernel keeps the direction in the low three bits of the index.
        if index & 7 != u32::from(dir.0) {
            return Err(invalid(format!(
                "policy index {index:#x} does not carry direction {:?} in its low 3 bits",
                p.id.direction
            )));
        }
    }
    let family = p.id.selector.family();
    let mut info = UserpolicyInfo {
        sel: selector_to_wire(&p.id.selector)?,
        lft: lifetime_to_wire(&p.lifetime),
        priority: p.priority,
        index: p.index.unwrap_or(0),
        dir,
        action: PolicyActionCode::ALLOW,
        ..UserpolicyInfo::default()
    };
    let mut attrs = Vec::new();
    match &p.action {
        PolicyAction::Allow => {}
        PolicyAction::Block => info.action = PolicyActionCode::BLOCK,
        PolicyAction::Protect(templates) => {
            if templates.is_empty() {
                return Err(invalid("protect policy without templates"));
            }
            let ts = templates
                .iter()
                .map(|t| template_to_wire(t, family))
                .collect::<Result<Vec<_>>>()?;
            attrs.push(XfrmAttr::Tmpl(ts));
        }
    }
    attrs.extend(mark_attr(&p.id.mark));
    Ok(WithAttrs::new(info, attrs))
}

/// The policy of a NEWPOLICY message.
pub fn policy_from_wire(m: &WithAttrs<UserpolicyInfo>) -> Result<Policy> {
    let info = &m.body;
    let selector = selector_from_wire(&info.sel)?
        .ok_or_else(|| unsupported("policy selector without family"))?;
    let templates = m
        .attrs
        .iter()
        .find_map(|a| match a {
            XfrmAttr::Tmpl(ts) => Some(ts.as_slice()),
            _ => None,
        })
        .unwrap_or_default();
    let action = match info.action {
        PolicyActionCode::BLOCK => PolicyAction::Block,
        PolicyActionCode::ALLOW if templates.is_empty() => PolicyAction::Allow,
        PolicyActionCode::ALLOW => PolicyAction::Protect(
            templates
                .iter()
                .map(template_from_wire)
                .collect::<Result<_>>()?,
        ),
        _ => return Err(unsupported("policy action")),
    };
    Ok(Policy {
        id: PolicyId {
            selector,
            direction: direction_from_wire(info.dir)?,
            mark: mark_from_attrs(&m.attrs),
        },
        action,
        priority: info.priority,
        index: Some(info.index),
        lifetime: lifetime_from_wire(&info.lft),
    })
}

/// The GETPOLICY/DELPOLICY body and attributes for a policy identity.
pub fn policy_id_to_wire(id: &PolicyId) -> Result<WithAttrs<UserpolicyId>> {
    Ok(WithAttrs::new(
        UserpolicyId {
            sel: selector_to_wire(&id.selector)?,
            index: 0,
            dir: direction_to_wire(id.direction),
        },
        mark_attr(&id.mark).into_iter().collect(),
    ))
}

/// SPD counts of a NEWSPDINFO answer.
pub fn spd_info_from_wire(attrs: &[SpdAttr]) -> Result<SpdInfo> {
    attrs
        .iter()
        .find_map(|a| match a {
            SpdAttr::Info(c) => Some(SpdInfo {
                inbound: c.incnt,
                outbound: c.outcnt,
                forward: c.fwdcnt,
                socket_inbound: c.inscnt,
                socket_outbound: c.outscnt,
            }),
            _ => None,
        })
        .ok_or(Error::Decode(crate::DecodeError::Missing("XFRMA_SPD_INFO")))
}

/// The ACQUIRE event of an `xfrm_user_acquire` message.
pub fn acquire_from_wire(m: &WithAttrs<UserAcquire>) -> Result<Acquire> {
    let a = &m.body;
    let templates: &[UserTmpl] = m
        .attrs
        .iter()
        .find_map(|x| match x {
            XfrmAttr::Tmpl(ts) => Some(ts.as_slice()),
            _ => None,
        })
        .unwrap_or_default();
    // The kernel sends every template of the policy; the one being acquired is the first
    // with the acquired protocol.
    let tmpl = templates
        .iter()
        .find(|t| t.id.proto == a.id.proto)
        .or_else(|| templates.first());
    let family = [
        tmpl.map(|t| t.family).unwrap_or_default(),
        a.sel.family,
        a.policy.sel.family,
    ]
    .into_iter()
    .find(|f| family_from_wire(*f).is_some())
    .ok_or_else(|| unsupported("ACQUIRE without address family"))?;
    let selector = match selector_from_wire(&a.sel)? {
        Some(s) => Some(s),
        None => selector_from_wire(&a.policy.sel)?,
    };
    Ok(Acquire {
        sequence: a.seq,
        policy_index: Some(a.policy.index),
        policy_direction: direction_from_wire(a.policy.dir).ok(),
        source: addr(&a.saddr, family, "ACQUIRE family")?,
        destination: addr(&a.id.daddr, family, "ACQUIRE family")?,
        selector,
        template: tmpl.map(template_from_wire).transpose()?,
    })
}

/// The EXPIRE event of an `xfrm_user_expire` message.
pub fn expire_from_wire(m: &WithAttrs<UserExpire>) -> Result<Expire> {
    let s = &m.body.state;
    Ok(Expire {
        id: SaId {
            destination: addr(&s.id.daddr, s.family, "EXPIRE family")?,
            spi: s.id.spi.0,
            protocol: protocol_from_wire(s.id.proto)?,
        },
        source: addr(&s.saddr, s.family, "EXPIRE family")?,
        reqid: Some(s.reqid),
        hard: m.body.hard != 0,
    })
}

/// The POLEXPIRE event of an `xfrm_user_polexpire` message.
pub fn polexpire_from_wire(m: &WithAttrs<UserPolexpire>) -> Result<PolicyExpire> {
    let p = &m.body.pol;
    Ok(PolicyExpire {
        id: PolicyId {
            selector: selector_from_wire(&p.sel)?
                .ok_or_else(|| unsupported("policy selector without family"))?,
            direction: direction_from_wire(p.dir)?,
            mark: mark_from_attrs(&m.attrs),
        },
        index: Some(p.index),
        hard: m.body.hard != 0,
    })
}

/// The MAPPING event of an `xfrm_user_mapping` message. The message carries no family: an
/// address whose last twelve octets are zero is taken as IPv4 (no IPv6 peer address of
/// interest has that form).
pub fn mapping_from_wire(m: &WithAttrs<UserMapping>) -> Result<Mapping> {
    let u = &m.body;
    let family = if u
        .id
        .daddr
        .0
        .get(4..)
        .is_some_and(|t| t.iter().all(|&b| b == 0))
    {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    Ok(Mapping {
        id: SaId {
            destination: addr(&u.id.daddr, family, "MAPPING family")?,
            spi: u.id.spi.0,
            protocol: protocol_from_wire(u.id.proto)?,
        },
        old: (addr(&u.old_saddr, family, "MAPPING family")?, u.old_sport.0),
        new: (addr(&u.new_saddr, family, "MAPPING family")?, u.new_sport.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OffloadRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn esp_sa() -> SecurityAssociation {
        SecurityAssociation::new(
            SaId {
                destination: ip("192.0.2.12"),
                spi: 0x1234,
                protocol: SecurityProtocol::Esp,
            },
            ip("192.0.2.11"),
            Mode::Transport,
            0x3001,
        )
        .with_encryption(EncryptionAlgorithm::AesCbc, Key::new(vec![1; 16]))
        .with_integrity(IntegrityAlgorithm::HmacSha256_128, Key::new(vec![2; 32]))
    }

    fn through_wire(sa: &SecurityAssociation) -> SecurityAssociation {
        sa_from_wire(&sa_to_wire(sa, true).unwrap()).unwrap()
    }

    #[test]
    fn sha256_goes_out_as_auth_trunc_with_128_bits() {
        let m = sa_to_wire(&esp_sa(), false).unwrap();
        let auth = m
            .attrs
            .iter()
            .find_map(|a| match a {
                XfrmAttr::AlgAuthTrunc(a) => Some(a),
                _ => None,
            })
            .unwrap();
        assert_eq!(auth.name.as_str(), Some("hmac(sha256)"));
        assert_eq!((auth.key_bits, auth.trunc_bits), (256, 128));
    }

    #[test]
    fn sa_fields_survive_the_wire_mapping() {
        let mut sa = esp_sa();
        sa.selector = Some(Selector::hosts(ip("192.0.2.11"), ip("192.0.2.12")));
        sa.mark = Some(Mark {
            value: 7,
            mask: 0xff,
        });
        sa.encapsulation = Some(UdpEncapsulation {
            source_port: 4500,
            destination_port: 4501,
            original_address: Some(ip("203.0.113.7")),
        });
        sa.lifetime = Lifetime {
            soft_add_seconds: Some(2),
            hard_add_seconds: Some(4),
            hard_bytes: Some(1 << 30),
            ..Lifetime::default()
        };
        sa.offload = Some(OffloadRequest {
            ifindex: 3,
            inbound: true,
        });
        assert_eq!(through_wire(&sa), sa);
    }

    #[test]
    fn every_algorithm_survives_the_wire_mapping() {
        let encs = [
            (EncryptionAlgorithm::Null, 0),
            (EncryptionAlgorithm::DesCbc, 8),
            (EncryptionAlgorithm::TripleDesCbc, 24),
            (EncryptionAlgorithm::AesCbc, 32),
        ];
        let ints = [
            IntegrityAlgorithm::HmacMd5_96,
            IntegrityAlgorithm::HmacSha1_96,
            IntegrityAlgorithm::HmacSha256_128,
            IntegrityAlgorithm::HmacSha384_192,
            IntegrityAlgorithm::HmacSha512_256,
        ];
        for (enc, len) in encs {
            for int in ints {
                let mut sa = esp_sa();
                sa.encryption = Some((enc, Key::new(vec![3; len])));
                sa.integrity = Some((int, Key::new(vec![4; int.key_bits() / 8])));
                assert_eq!(through_wire(&sa), sa, "{enc:?} {int:?}");
            }
        }
        let mut gcm = esp_sa();
        gcm.integrity = None;
        gcm.encryption = Some((
            EncryptionAlgorithm::AesGcm { icv_bits: 128 },
            Key::new(vec![5; 20]),
        ));
        assert_eq!(through_wire(&gcm), gcm);
    }

    #[test]
    fn wrong_key_length_is_invalid_before_the_kernel() {
        let mut sa = esp_sa();
        sa.encryption = Some((EncryptionAlgorithm::TripleDesCbc, Key::new(vec![0; 16])));
        let err = sa_to_wire(&sa, false).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref m) if m.contains("cbc(des3_ede)")),
            "{err}"
        );
        let mut sa = esp_sa();
        sa.integrity = Some((IntegrityAlgorithm::HmacSha1_96, Key::new(vec![0; 16])));
        assert!(matches!(sa_to_wire(&sa, false), Err(Error::Invalid(_))));
    }

    #[test]
    fn replay_window_above_32_and_esn_use_the_esn_replay_state() {
        let mut wide = esp_sa();
        wide.replay_window = 64;
        let m = sa_to_wire(&wide, false).unwrap();
        assert_eq!(
            (m.body.replay_window, m.body.flags & state_flags::ESN),
            (0, 0)
        );
        assert_eq!(sa_from_wire(&m).unwrap(), wide);
        let mut sa = esp_sa();
        sa.replay_window = 1024;
        sa.esn = true;
        let m = sa_to_wire(&sa, false).unwrap();
        assert_eq!(m.body.replay_window, 0);
        assert_eq!(m.body.flags & state_flags::ESN, state_flags::ESN);
        assert!(m.attrs.iter().any(|a| matches!(a,
            XfrmAttr::ReplayEsnVal(r) if r.replay_window == 1024 && r.bmp.len() == 32)));
        assert_eq!(sa_from_wire(&m).unwrap(), sa);
    }

    #[test]
    fn sa_selector_filled_in_by_the_kernel_reads_back_as_none() {
        let mut m = sa_to_wire(&esp_sa(), false).unwrap();
        m.body.sel.family = AddressFamily::INET;
        assert_eq!(sa_from_wire(&m).unwrap().selector, None);
    }

    #[test]
    fn sha256_with_kernel_default_truncation_is_not_modelled() {
        let mut m = sa_to_wire(&esp_sa(), false).unwrap();
        m.attrs.retain(|a| !matches!(a, XfrmAttr::AlgAuthTrunc(_)));
        m.attrs.push(XfrmAttr::AlgAuth(Algo::new(
            "hmac(sha256)",
            Key::new(vec![0; 32]),
        )));
        assert!(matches!(sa_from_wire(&m), Err(Error::Unsupported { .. })));
        m.attrs.pop();
        m.attrs.push(XfrmAttr::AlgAuth(Algo::new(
            "hmac(sha1)",
            Key::new(vec![0; 20]),
        )));
        assert_eq!(
            sa_from_wire(&m).unwrap().integrity.map(|i| i.0),
            Some(IntegrityAlgorithm::HmacSha1_96)
        );
    }

    fn protect_policy(mode: Mode) -> Policy {
        Policy {
            id: PolicyId {
                selector: Selector {
                    source: Prefix {
                        addr: ip("198.51.100.0"),
                        len: 24,
                    },
                    destination: Prefix::host(ip("203.0.113.5")),
                    upper: UpperLayer::Proto {
                        proto: 17,
                        source_port: None,
                        destination_port: Some(53),
                    },
                },
                direction: Direction::Out,
                mark: Some(Mark { value: 1, mask: 3 }),
            },
            action: PolicyAction::Protect(vec![Template {
                protocol: SecurityProtocol::Esp,
                mode,
                reqid: 0x3002,
                tunnel: (mode == Mode::Tunnel).then(|| (ip("192.0.2.11"), ip("192.0.2.12"))),
                level: TemplateLevel::Require,
            }]),
            priority: 5000,
            index: Some(0x1001),
            lifetime: Lifetime::default(),
        }
    }

    #[test]
    fn policies_survive_the_wire_mapping() {
        for mode in [Mode::Transport, Mode::Tunnel] {
            let p = protect_policy(mode);
            assert_eq!(policy_from_wire(&policy_to_wire(&p).unwrap()).unwrap(), p);
        }
        let mut block = protect_policy(Mode::Transport);
        block.action = PolicyAction::Block;
        assert_eq!(
            policy_from_wire(&policy_to_wire(&block).unwrap()).unwrap(),
            block
        );
        let mut allow = block.clone();
        allow.action = PolicyAction::Allow;
        assert_eq!(
            policy_from_wire(&policy_to_wire(&allow).unwrap()).unwrap(),
            allow
        );
    }

    #[test]
    fn policy_index_must_carry_its_direction() {
        let mut p = protect_policy(Mode::Transport);
        p.index = Some(0x1000);
        assert!(matches!(policy_to_wire(&p), Err(Error::Invalid(_))));
    }

    #[test]
    fn tunnel_template_without_endpoints_is_invalid() {
        let mut p = protect_policy(Mode::Tunnel);
        if let PolicyAction::Protect(ts) = &mut p.action {
            ts[0].tunnel = None;
        }
        assert!(matches!(policy_to_wire(&p), Err(Error::Invalid(_))));
    }

    #[test]
    fn mapping_infers_the_family_from_the_address_octets() {
        let m = UserMapping {
            id: XfrmId {
                daddr: XfrmAddress::from_ip(ip("192.0.2.11")),
                spi: Be32(0x77),
                proto: 50,
            },
            reqid: 1,
            old_saddr: XfrmAddress::from_ip(ip("203.0.113.1")),
            new_saddr: XfrmAddress::from_ip(ip("203.0.113.2")),
            old_sport: Be16(4500),
            new_sport: Be16(40000),
        };
        let v4 = mapping_from_wire(&WithAttrs::new(m, vec![])).unwrap();
        assert_eq!(v4.new, (ip("203.0.113.2"), 40000));
        assert_eq!(v4.id.destination, ip("192.0.2.11"));
        let m6 = UserMapping {
            id: XfrmId {
                daddr: XfrmAddress::from_ip(ip("2001:db8::11")),
                ..m.id
            },
            old_saddr: XfrmAddress::from_ip(ip("2001:db8::1")),
            new_saddr: XfrmAddress::from_ip(ip("2001:db8::2")),
            ..m
        };
        let v6 = mapping_from_wire(&WithAttrs::new(m6, vec![])).unwrap();
        assert_eq!(v6.old, (ip("2001:db8::1"), 4500));
    }

    #[test]
    fn acquire_takes_addresses_and_template_from_the_message() {
        let p = policy_to_wire(&protect_policy(Mode::Tunnel)).unwrap();
        let tmpl = match &p.attrs[0] {
            XfrmAttr::Tmpl(ts) => ts.clone(),
            _ => unreachable!(),
        };
        let acq = UserAcquire {
            id: XfrmId {
                daddr: XfrmAddress::from_ip(ip("192.0.2.12")),
                spi: Be32(0),
                proto: 50,
            },
            saddr: XfrmAddress::from_ip(ip("192.0.2.11")),
            sel: selector_to_wire(&Selector::hosts(ip("198.51.100.1"), ip("203.0.113.5"))).unwrap(),
            policy: p.body,
            seq: 99,
            ..UserAcquire::default()
        };
        let a = acquire_from_wire(&WithAttrs::new(acq, vec![XfrmAttr::Tmpl(tmpl)])).unwrap();
        assert_eq!(a.sequence, 99);
        assert_eq!(a.destination, ip("192.0.2.12"));
        assert_eq!(a.policy_direction, Some(Direction::Out));
        assert_eq!(a.template.unwrap().reqid, 0x3002);
        assert_eq!(
            a.selector.unwrap().destination,
            Prefix::host(ip("203.0.113.5"))
        );
    }
}
