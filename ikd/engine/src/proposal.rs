//! SA payloads: building our main-mode and quick-mode proposals, choosing from a peer's
//! (the first initiator transform we accept, in the initiator's order), checking a
//! responder's choice, and converting identities and traffic selectors to ID payloads.
//!
//! Lifetimes: as main-mode responder we accept the initiator's lifetime and expire at the
//! shorter of it and ours; as quick-mode responder likewise, and we send RESPONDER-LIFETIME
//! when ours is shorter (RFC 2407 §4.5.4). A transform with an attribute we do not know is
//! skipped, as RFC 2408 requires. AH+ESP bundles and IPComp are not offered or accepted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use isakmp::{
    AuthenticationMethod, DataAttribute, Doi, IdData, IdPayload, IpsecAttributeType,
    IsakmpTransformId, LifeType, OakleyAttributeType, ProposalPayload, ProtocolId, SaPayload,
    Situation, TransformPayload,
};

use crate::config::{
    EncapsulationMode, EspCipher, Identity, IntegrityAlgorithm, IpsecProtocol, MainModeProposal,
    QuickModeProposal, QuickModeTransform, Subnet,
};

/// A negotiated ISAKMP SA suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IkeSuite {
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) hash: HashAlgorithm,
    pub(crate) auth: AuthenticationMethod,
    pub(crate) group: DhGroup,
    pub(crate) lifetime: Duration,
    pub(crate) qm_limit: Option<u32>,
}

fn duration_attr(t: u16, v: u64) -> DataAttribute {
    match u16::try_from(v) {
        Ok(v) => DataAttribute::basic(t, v),
        Err(_) => {
            let v = u32::try_from(v).unwrap_or(u32::MAX);
            DataAttribute::variable(t, v.to_be_bytes().to_vec())
        }
    }
}

fn key_bits(cipher: CipherAlgorithm) -> Option<u16> {
    match cipher {
        CipherAlgorithm::Aes128Cbc => Some(128),
        CipherAlgorithm::Aes192Cbc => Some(192),
        CipherAlgorithm::Aes256Cbc => Some(256),
        _ => None,
    }
}

/// Our main-mode SA payload: one ISAKMP proposal, one transform per security method.
pub(crate) fn build_mm_sa(proposals: &[MainModeProposal]) -> SaPayload {
    use OakleyAttributeType as A;
    let transforms = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut attributes = vec![DataAttribute::basic(
                A::ENCRYPTION_ALGORITHM,
                p.encryption.oakley_id(),
            )];
            if let Some(bits) = key_bits(p.encryption) {
                attributes.push(DataAttribute::basic(A::KEY_LENGTH, bits));
            }
            attributes.extend([
                DataAttribute::basic(A::HASH_ALGORITHM, p.hash.oakley_id()),
                DataAttribute::basic(A::AUTHENTICATION_METHOD, p.auth_method.0),
                DataAttribute::basic(A::GROUP_DESCRIPTION, p.group.oakley_id()),
                DataAttribute::basic(A::LIFE_TYPE, LifeType::SECONDS.0),
                duration_attr(A::LIFE_DURATION.0, p.lifetime.as_secs()),
            ]);
            TransformPayload {
                number: u8::try_from(i + 1).unwrap_or(u8::MAX),
                transform_id: IsakmpTransformId::KEY_IKE.0,
                attributes,
            }
        })
        .collect();
    SaPayload {
        doi: Doi::IPSEC,
        situation: Situation::IDENTITY_ONLY,
        proposals: vec![ProposalPayload {
            number: 1,
            protocol_id: ProtocolId::ISAKMP,
            spi: Vec::new(),
            transforms,
        }],
    }
}

/// The attributes of a phase-1 transform, if we implement all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MmTransform {
    cipher: CipherAlgorithm,
    hash: HashAlgorithm,
    auth: AuthenticationMethod,
    group: DhGroup,
    lifetime: Option<u64>,
}

fn parse_mm_transform(t: &TransformPayload) -> Option<MmTransform> {
    use OakleyAttributeType as A;
    if t.transform_id != IsakmpTransformId::KEY_IKE.0 {
        return None;
    }
    let (mut enc, mut bits, mut hash, mut auth, mut group) = (None, None, None, None, None);
    let mut life_type = None;
    let mut lifetime = None;
    for a in &t.attributes {
        match a.oakley_type() {
            A::ENCRYPTION_ALGORITHM => enc = Some(a.as_u16()?),
            A::KEY_LENGTH => bits = Some(a.as_u16()?),
            A::HASH_ALGORITHM => hash = Some(HashAlgorithm::from_oakley(a.as_u16()?)?),
            A::AUTHENTICATION_METHOD => auth = Some(AuthenticationMethod(a.as_u16()?)),
            A::GROUP_DESCRIPTION => group = Some(DhGroup::from_oakley(a.as_u16()?)?),
            A::LIFE_TYPE => life_type = Some(LifeType(a.as_u16()?)),
            A::LIFE_DURATION => {
                let v = a.as_u64()?;
                match life_type {
                    Some(LifeType::SECONDS) => lifetime = Some(v),
                    // Kilobyte lifetimes of ISAKMP SAs are accepted and not enforced.
                    Some(_) => {}
                    None => return None,
                }
            }
            _ => return None,
        }
    }
    Some(MmTransform {
        cipher: CipherAlgorithm::from_oakley(enc?, bits)?,
        hash: hash?,
        auth: auth?,
        group: group?,
        lifetime,
    })
}

fn matches_mm(t: &MmTransform, p: &MainModeProposal) -> bool {
    t.cipher == p.encryption && t.hash == p.hash && t.auth == p.auth_method && t.group == p.group
}

/// As responder: the first initiator transform (in its order) that one of `ours` accepts
/// with authentication method `auth`. Returns the suite and the SA payload to send back
/// (the initiator's proposal reduced to the chosen transform).
pub(crate) fn choose_mm(
    sa: &SaPayload,
    ours: &[MainModeProposal],
    auth: AuthenticationMethod,
) -> Option<(IkeSuite, SaPayload)> {
    for p in &sa.proposals {
        if p.protocol_id != ProtocolId::ISAKMP {
            continue;
        }
        for t in &p.transforms {
            let Some(parsed) = parse_mm_transform(t) else {
                continue;
            };
            if parsed.auth != auth {
                continue;
            }
            if let Some(o) = ours.iter().find(|o| matches_mm(&parsed, o)) {
                let theirs = parsed.lifetime.map_or(o.lifetime, Duration::from_secs);
                let suite = IkeSuite {
                    cipher: parsed.cipher,
                    hash: parsed.hash,
                    auth,
                    group: parsed.group,
                    lifetime: theirs.min(o.lifetime),
                    qm_limit: o.quick_modes_per_main_mode,
                };
                let echo = SaPayload {
                    doi: sa.doi,
                    situation: sa.situation,
                    proposals: vec![ProposalPayload {
                        number: p.number,
                        protocol_id: p.protocol_id,
                        spi: p.spi.clone(),
                        transforms: vec![t.clone()],
                    }],
                };
                return Some((suite, echo));
            }
        }
    }
    None
}

/// As initiator: the responder's MM2 SA must hold exactly one of the transforms we sent.
pub(crate) fn check_mm_choice(sa: &SaPayload, ours: &[MainModeProposal]) -> Option<IkeSuite> {
    let [p] = sa.proposals.as_slice() else {
        return None;
    };
    let [t] = p.transforms.as_slice() else {
        return None;
    };
    let parsed = parse_mm_transform(t)?;
    let o = ours
        .iter()
        .find(|o| matches_mm(&parsed, o) && parsed.lifetime == Some(o.lifetime.as_secs()))?;
    Some(IkeSuite {
        cipher: parsed.cipher,
        hash: parsed.hash,
        auth: parsed.auth,
        group: parsed.group,
        lifetime: o.lifetime,
        qm_limit: o.quick_modes_per_main_mode,
    })
}

/// A negotiated IPsec SA suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildSuite {
    pub(crate) protocol: IpsecProtocol,
    pub(crate) encryption: Option<EspCipher>,
    pub(crate) integrity: Option<IntegrityAlgorithm>,
    pub(crate) mode: EncapsulationMode,
    pub(crate) pfs: Option<DhGroup>,
    pub(crate) lifetime_seconds: u32,
    pub(crate) lifetime_kilobytes: Option<u32>,
}

fn esp_id(c: EspCipher) -> (u8, Option<u16>) {
    match c {
        EspCipher::Null => (11, None),
        EspCipher::Des => (2, None),
        EspCipher::TripleDes => (3, None),
        EspCipher::Aes128 => (12, Some(128)),
        EspCipher::Aes192 => (12, Some(192)),
        EspCipher::Aes256 => (12, Some(256)),
        // RFC 4106 §8.1: ESP_AES_GCM_16, Key Length required.
        EspCipher::AesGcm128 => (20, Some(128)),
        EspCipher::AesGcm256 => (20, Some(256)),
    }
}

fn esp_from(id: u8, bits: Option<u16>) -> Option<EspCipher> {
    match (id, bits) {
        (11, None) => Some(EspCipher::Null),
        (2, None | Some(64)) => Some(EspCipher::Des),
        (3, None | Some(192)) => Some(EspCipher::TripleDes),
        // RFC 3602: AES without Key Length means 128 bits (strongSwan, racoon agree).
        (12, None | Some(128)) => Some(EspCipher::Aes128),
        (12, Some(192)) => Some(EspCipher::Aes192),
        (12, Some(256)) => Some(EspCipher::Aes256),
        (20, Some(128)) => Some(EspCipher::AesGcm128),
        (20, Some(256)) => Some(EspCipher::AesGcm256),
        _ => None,
    }
}

fn auth_alg_id(i: IntegrityAlgorithm) -> u16 {
    match i {
        IntegrityAlgorithm::HmacMd5 => 1,
        IntegrityAlgorithm::HmacSha1 => 2,
        IntegrityAlgorithm::HmacSha256 => 5,
        IntegrityAlgorithm::HmacSha384 => 6,
        IntegrityAlgorithm::HmacSha512 => 7,
    }
}

fn integ_from(id: u16) -> Option<IntegrityAlgorithm> {
    match id {
        1 => Some(IntegrityAlgorithm::HmacMd5),
        2 => Some(IntegrityAlgorithm::HmacSha1),
        5 => Some(IntegrityAlgorithm::HmacSha256),
        6 => Some(IntegrityAlgorithm::HmacSha384),
        7 => Some(IntegrityAlgorithm::HmacSha512),
        _ => None,
    }
}

fn ah_id(i: IntegrityAlgorithm) -> u8 {
    match i {
        IntegrityAlgorithm::HmacMd5 => 2,
        IntegrityAlgorithm::HmacSha1 => 3,
        IntegrityAlgorithm::HmacSha256 => 5,
        IntegrityAlgorithm::HmacSha384 => 6,
        IntegrityAlgorithm::HmacSha512 => 7,
    }
}

fn mode_id(m: EncapsulationMode) -> u16 {
    match m {
        EncapsulationMode::Tunnel => 1,
        EncapsulationMode::Transport => 2,
    }
}

/// Our quick-mode SA payload: one proposal per configured proposal, carrying `spi`.
pub(crate) fn build_qm_sa(proposals: &[QuickModeProposal], spi: u32) -> SaPayload {
    use IpsecAttributeType as A;
    let proposals = proposals
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let transforms = p
                .transforms
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    let mut attributes = vec![
                        DataAttribute::basic(A::SA_LIFE_TYPE, LifeType::SECONDS.0),
                        duration_attr(A::SA_LIFE_DURATION.0, u64::from(p.lifetime_seconds)),
                    ];
                    if let Some(kb) = p.lifetime_kilobytes {
                        attributes
                            .push(DataAttribute::basic(A::SA_LIFE_TYPE, LifeType::KILOBYTES.0));
                        attributes.push(duration_attr(A::SA_LIFE_DURATION.0, u64::from(kb)));
                    }
                    if let Some(g) = p.pfs {
                        attributes.push(DataAttribute::basic(A::GROUP_DESCRIPTION, g.oakley_id()));
                    }
                    attributes.push(DataAttribute::basic(A::ENCAPSULATION_MODE, mode_id(p.mode)));
                    if let Some(i) = t.integrity {
                        attributes.push(DataAttribute::basic(
                            A::AUTHENTICATION_ALGORITHM,
                            auth_alg_id(i),
                        ));
                    }
                    let transform_id = match (p.protocol, t.encryption, t.integrity) {
                        (IpsecProtocol::Esp, Some(c), _) => {
                            let (id, bits) = esp_id(c);
                            if let Some(bits) = bits {
                                attributes.push(DataAttribute::basic(A::KEY_LENGTH, bits));
                            }
                            id
                        }
                        (IpsecProtocol::Esp, None, _) => 11,
                        (IpsecProtocol::Ah, _, Some(i)) => ah_id(i),
                        (IpsecProtocol::Ah, _, None) => 0,
                    };
                    TransformPayload {
                        number: u8::try_from(ti + 1).unwrap_or(u8::MAX),
                        transform_id,
                        attributes,
                    }
                })
                .collect();
            ProposalPayload {
                number: u8::try_from(pi + 1).unwrap_or(u8::MAX),
                protocol_id: p.protocol.protocol_id(),
                spi: spi.to_be_bytes().to_vec(),
                transforms,
            }
        })
        .collect();
    SaPayload {
        doi: Doi::IPSEC,
        situation: Situation::IDENTITY_ONLY,
        proposals,
    }
}

fn parse_qm_transform(protocol: IpsecProtocol, t: &TransformPayload) -> Option<ChildSuite> {
    use IpsecAttributeType as A;
    let (mut life_type, mut secs, mut kb) = (None, None, None);
    let (mut group, mut mode, mut integ, mut bits) = (None, None, None, None);
    for a in &t.attributes {
        match a.ipsec_type() {
            A::SA_LIFE_TYPE => life_type = Some(LifeType(a.as_u16()?)),
            A::SA_LIFE_DURATION => {
                let v = u32::try_from(a.as_u64()?).unwrap_or(u32::MAX);
                match life_type? {
                    LifeType::SECONDS => secs = Some(v),
                    LifeType::KILOBYTES => kb = Some(v),
                    _ => return None,
                }
            }
            A::GROUP_DESCRIPTION => group = Some(DhGroup::from_oakley(a.as_u16()?)?),
            A::ENCAPSULATION_MODE => {
                mode = Some(match a.as_u16()? {
                    1 => EncapsulationMode::Tunnel,
                    2 => EncapsulationMode::Transport,
                    _ => return None,
                });
            }
            A::AUTHENTICATION_ALGORITHM => integ = Some(integ_from(a.as_u16()?)?),
            A::KEY_LENGTH => bits = Some(a.as_u16()?),
            _ => return None,
        }
    }
    let encryption = match protocol {
        // An AEAD carries no Authentication Algorithm (RFC 4106 §8.1).
        IpsecProtocol::Esp => match esp_from(t.transform_id, bits)? {
            c if c.is_aead() && integ.is_some() => return None,
            c => Some(c),
        },
        IpsecProtocol::Ah => {
            if Some(t.transform_id) != integ.map(ah_id) {
                return None;
            }
            None
        }
    };
    Some(ChildSuite {
        protocol,
        encryption,
        integrity: integ,
        // RFC 2407 §4.5: no Encapsulation Mode attribute means transport... but most
        // implementations always send it; default to transport.
        mode: mode.unwrap_or(EncapsulationMode::Transport),
        pfs: group,
        lifetime_seconds: secs.unwrap_or(28_800),
        lifetime_kilobytes: kb,
    })
}

fn offered(p: &QuickModeProposal, s: &ChildSuite) -> bool {
    p.protocol == s.protocol
        && p.mode == s.mode
        && p.pfs == s.pfs
        && p.transforms.contains(&QuickModeTransform {
            encryption: s.encryption.filter(|_| s.protocol == IpsecProtocol::Esp),
            integrity: s.integrity,
        })
}

/// The responder's choice of a quick-mode proposal.
pub(crate) struct QmChoice {
    pub(crate) suite: ChildSuite,
    pub(crate) peer_spi: u32,
    /// The chosen proposal with the chosen transform; its SPI is replaced by ours.
    pub(crate) echo: ProposalPayload,
    pub(crate) sa_doi: Doi,
    pub(crate) sa_situation: Situation,
    /// Our lifetime was shorter: send RESPONDER-LIFETIME.
    pub(crate) shortened: bool,
}

/// As responder: the first initiator proposal/transform one of `ours` accepts.
pub(crate) fn choose_qm(sa: &SaPayload, ours: &[QuickModeProposal]) -> Option<QmChoice> {
    for p in &sa.proposals {
        let Some(protocol) = IpsecProtocol::from_protocol_id(p.protocol_id) else {
            continue;
        };
        let Ok(spi) = <[u8; 4]>::try_from(p.spi.as_slice()) else {
            continue;
        };
        for t in &p.transforms {
            let Some(mut suite) = parse_qm_transform(protocol, t) else {
                continue;
            };
            let Some(o) = ours.iter().find(|o| offered(o, &suite)) else {
                continue;
            };
            let mut shortened = false;
            if suite.lifetime_seconds > o.lifetime_seconds {
                suite.lifetime_seconds = o.lifetime_seconds;
                shortened = true;
            }
            if let Some(ours_kb) = o.lifetime_kilobytes {
                if suite.lifetime_kilobytes.is_none_or(|kb| kb > ours_kb) {
                    suite.lifetime_kilobytes = Some(ours_kb);
                    shortened = true;
                }
            }
            return Some(QmChoice {
                suite,
                peer_spi: u32::from_be_bytes(spi),
                echo: ProposalPayload {
                    number: p.number,
                    protocol_id: p.protocol_id,
                    spi: p.spi.clone(),
                    transforms: vec![t.clone()],
                },
                sa_doi: sa.doi,
                sa_situation: sa.situation,
                shortened,
            });
        }
    }
    None
}

/// As initiator: QM2 must hold one proposal with one transform we offered; returns it and
/// the responder's SPI.
pub(crate) fn check_qm_choice(
    sa: &SaPayload,
    ours: &[QuickModeProposal],
) -> Option<(ChildSuite, u32)> {
    let [p] = sa.proposals.as_slice() else {
        return None;
    };
    let [t] = p.transforms.as_slice() else {
        return None;
    };
    let protocol = IpsecProtocol::from_protocol_id(p.protocol_id)?;
    let spi = u32::from_be_bytes(<[u8; 4]>::try_from(p.spi.as_slice()).ok()?);
    let suite = parse_qm_transform(protocol, t)?;
    ours.iter()
        .any(|o| offered(o, &suite))
        .then_some((suite, spi))
}

/// The SA life attributes for a RESPONDER-LIFETIME notify.
pub(crate) fn lifetime_attributes(suite: &ChildSuite) -> Vec<u8> {
    use IpsecAttributeType as A;
    let mut attrs = vec![
        DataAttribute::basic(A::SA_LIFE_TYPE, LifeType::SECONDS.0),
        duration_attr(A::SA_LIFE_DURATION.0, u64::from(suite.lifetime_seconds)),
    ];
    if let Some(kb) = suite.lifetime_kilobytes {
        attrs.push(DataAttribute::basic(A::SA_LIFE_TYPE, LifeType::KILOBYTES.0));
        attrs.push(duration_attr(A::SA_LIFE_DURATION.0, u64::from(kb)));
    }
    let mut out = Vec::new();
    // Encoding our own small attributes cannot fail.
    let _ = isakmp::payload::encode_attributes(&attrs, &mut out);
    out
}

/// Applies a RESPONDER-LIFETIME notify's attributes (only ever shortening).
pub(crate) fn apply_responder_lifetime(suite: &mut ChildSuite, data: &[u8]) {
    let Ok(attrs) = isakmp::payload::decode_attributes(data) else {
        return;
    };
    let mut life_type = None;
    for a in attrs {
        match a.ipsec_type() {
            IpsecAttributeType::SA_LIFE_TYPE => life_type = a.as_u16().map(LifeType),
            IpsecAttributeType::SA_LIFE_DURATION => {
                let Some(v) = a.as_u64() else { continue };
                let v = u32::try_from(v).unwrap_or(u32::MAX);
                match life_type {
                    Some(LifeType::SECONDS) => {
                        suite.lifetime_seconds = suite.lifetime_seconds.min(v);
                    }
                    Some(LifeType::KILOBYTES) => {
                        suite.lifetime_kilobytes =
                            Some(suite.lifetime_kilobytes.map_or(v, |k| k.min(v)));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// IDci/IDcr for a prefix, protocol and port.
pub(crate) fn subnet_id(s: &Subnet, protocol: u8, port: u16) -> IdPayload {
    let data = match s.addr {
        IpAddr::V4(a) if s.is_host() => IdData::Ipv4Addr(a),
        IpAddr::V6(a) if s.is_host() => IdData::Ipv6Addr(a),
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(s.prefix_len))
                .unwrap_or(0);
            IdData::Ipv4Subnet {
                address: Ipv4Addr::from(u32::from(a) & mask),
                mask: Ipv4Addr::from(mask),
            }
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(s.prefix_len))
                .unwrap_or(0);
            IdData::Ipv6Subnet {
                address: Ipv6Addr::from(u128::from(a) & mask),
                mask: Ipv6Addr::from(mask),
            }
        }
    };
    IdPayload {
        protocol,
        port,
        data,
    }
}

fn prefix_of(mask: &[u8]) -> Option<u8> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let bits = u8::try_from(ones).ok()?;
    // Contiguous: the mask equals the one built from its popcount.
    let mut left = usize::from(bits);
    for b in mask {
        let take = left.min(8);
        let want = if take == 0 { 0 } else { 0xffu8 << (8 - take) };
        if *b != want {
            return None;
        }
        left -= take;
    }
    Some(bits)
}

/// A quick-mode ID as a prefix, protocol and port; `None` for ranges and names.
pub(crate) fn id_subnet(id: &IdPayload) -> Option<(Subnet, u8, u16)> {
    let s = match &id.data {
        IdData::Ipv4Addr(a) => Subnet::host(IpAddr::V4(*a)),
        IdData::Ipv6Addr(a) => Subnet::host(IpAddr::V6(*a)),
        IdData::Ipv4Subnet { address, mask } => Subnet {
            addr: IpAddr::V4(*address),
            prefix_len: prefix_of(&mask.octets())?,
        },
        IdData::Ipv6Subnet { address, mask } => Subnet {
            addr: IpAddr::V6(*address),
            prefix_len: prefix_of(&mask.octets())?,
        },
        IdData::Ipv4Range { start, end } if start == end => Subnet::host(IpAddr::V4(*start)),
        IdData::Ipv6Range { start, end } if start == end => Subnet::host(IpAddr::V6(*start)),
        _ => return None,
    };
    Some((s, id.protocol, id.port))
}

/// Our IDii/IDir.
pub(crate) fn identity_id(identity: &Identity, local: IpAddr) -> IdPayload {
    let data = match identity {
        Identity::Address => match local {
            IpAddr::V4(a) => IdData::Ipv4Addr(a),
            IpAddr::V6(a) => IdData::Ipv6Addr(a),
        },
        Identity::Fqdn(s) => IdData::Fqdn(s.as_bytes().to_vec()),
        Identity::UserFqdn(s) => IdData::UserFqdn(s.as_bytes().to_vec()),
        Identity::KeyId(k) => IdData::KeyId(k.clone()),
    };
    IdPayload {
        protocol: 0,
        port: 0,
        data,
    }
}

/// Whether the peer's IDii/IDir is the identity we require of it.
pub(crate) fn identity_matches(expected: &Identity, got: &IdPayload, peer: IpAddr) -> bool {
    identity_id(expected, peer).data == got.data
}

/// Whether a data attribute value is TV (used in tests).
#[cfg(test)]
pub(crate) fn is_basic(a: &DataAttribute) -> bool {
    matches!(a.value, isakmp::AttributeValue::Basic(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_takes_the_first_initiator_transform_it_accepts() {
        let ours = [
            MainModeProposal::psk(
                CipherAlgorithm::Aes128Cbc,
                HashAlgorithm::Sha1,
                DhGroup::Modp2048,
            ),
            MainModeProposal::psk(
                CipherAlgorithm::TripleDesCbc,
                HashAlgorithm::Sha1,
                DhGroup::Modp1024,
            ),
        ];
        // The initiator prefers 3DES; the responder prefers AES but follows the initiator.
        let sa = build_mm_sa(&[ours[1], ours[0]]);
        let (suite, echo) = choose_mm(&sa, &ours, AuthenticationMethod::PRE_SHARED_KEY).unwrap();
        assert_eq!(suite.cipher, CipherAlgorithm::TripleDesCbc);
        assert_eq!(echo.proposals[0].transforms.len(), 1);
        assert_eq!(check_mm_choice(&echo, &ours), Some(suite));
    }

    #[test]
    fn aes_gcm_is_transform_20_with_a_key_length_and_no_authentication() {
        let mut ours = QuickModeProposal::esp(
            EspCipher::Aes128,
            IntegrityAlgorithm::HmacSha1,
            EncapsulationMode::Transport,
        );
        ours.transforms = vec![QuickModeTransform {
            encryption: Some(EspCipher::AesGcm128),
            integrity: None,
        }];
        let sa = build_qm_sa(std::slice::from_ref(&ours), 0x1234);
        let t = &sa.proposals[0].transforms[0];
        assert_eq!(t.transform_id, 20);
        assert!(t
            .attributes
            .iter()
            .any(|a| a.ipsec_type() == IpsecAttributeType::KEY_LENGTH && a.as_u16() == Some(128)));
        assert!(!t
            .attributes
            .iter()
            .any(|a| a.ipsec_type() == IpsecAttributeType::AUTHENTICATION_ALGORITHM));
        let choice = choose_qm(&sa, std::slice::from_ref(&ours)).expect("accepted");
        assert_eq!(choice.suite.encryption, Some(EspCipher::AesGcm128));
        assert_eq!(choice.suite.integrity, None);
        assert_eq!(EspCipher::AesGcm128.key_len(), 16 + 4);
        assert_eq!(EspCipher::AesGcm256.key_len(), 32 + 4);
        // GCM with an Authentication Algorithm is malformed (RFC 4106 §8.1): not accepted.
        let mut bad = sa.clone();
        bad.proposals[0].transforms[0]
            .attributes
            .push(DataAttribute::basic(
                IpsecAttributeType::AUTHENTICATION_ALGORITHM,
                2u16,
            ));
        assert!(choose_qm(&bad, std::slice::from_ref(&ours)).is_none());
        // GCM without a Key Length is not guessed.
        let mut nokey = sa;
        nokey.proposals[0].transforms[0]
            .attributes
            .retain(|a| a.ipsec_type() != IpsecAttributeType::KEY_LENGTH);
        assert!(choose_qm(&nokey, &[ours]).is_none());
    }

    #[test]
    fn long_lifetimes_are_variable_attributes() {
        let a = duration_attr(12, 28_800);
        assert!(is_basic(&a));
        let b = duration_attr(12, 100_000);
        assert_eq!(b.as_u64(), Some(100_000));
        assert!(!is_basic(&b));
    }

    #[test]
    fn subnet_ids_round_trip() {
        let s = Subnet {
            addr: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
        };
        let id = subnet_id(&s, 0, 0);
        assert_eq!(id_subnet(&id), Some((s, 0, 0)));
        let h = Subnet::host("2001:db8::1".parse().unwrap());
        assert_eq!(id_subnet(&subnet_id(&h, 17, 500)), Some((h, 17, 500)));
    }
}
