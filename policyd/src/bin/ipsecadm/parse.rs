//! Parsing and formatting of netsh-style values: yes/no, addresses with masks, protocols,
//! main-mode and quick-mode security methods, boot exemptions, CA names.

use std::net::IpAddr;

use ipsec_policy::settings::{BootExemption, BootMode, ExemptionDirection};
use ipsec_policy::{
    mask_addr, max_prefix, ConnectionType, DhGroup, Encryption, Endpoint, EspTransform, Integrity,
    MainModeMethod, Protocol, QuickModeMethod, Subnet, DEFAULT_QM_LIFETIME_KB,
    DEFAULT_QM_LIFETIME_SECONDS,
};

/// A main-mode method list as one argument.
#[derive(Debug, Clone)]
pub(crate) struct MmList(pub(crate) Vec<MainModeMethod>);
/// A quick-mode method list as one argument.
#[derive(Debug, Clone)]
pub(crate) struct QmList(pub(crate) Vec<QuickModeMethod>);
/// A boot exemption list as one argument.
#[derive(Debug, Clone)]
pub(crate) struct Exemptions(pub(crate) Vec<BootExemption>);
/// A tunnel endpoint or `none`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tunnel(pub(crate) Option<IpAddr>);

pub(crate) fn mm_list(s: &str) -> Result<MmList, String> {
    mm_methods(s).map(MmList)
}
pub(crate) fn qm_list(s: &str) -> Result<QmList, String> {
    qm_methods(s).map(QmList)
}
pub(crate) fn exemptions(s: &str) -> Result<Exemptions, String> {
    boot_exemptions(s).map(Exemptions)
}
pub(crate) fn tunnel_arg(s: &str) -> Result<Tunnel, String> {
    tunnel(s).map(Tunnel)
}

/// `yes|no` (also `true|false`, `on|off`, `1|0`).
pub(crate) fn yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" => Ok(true),
        "no" | "n" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not yes or no")),
    }
}

/// A filter address: `any`, `me`, `dns`, `dhcp`, `wins`, `gateway`, an address or a subnet.
pub(crate) fn endpoint(s: &str) -> Result<Endpoint, String> {
    s.to_ascii_lowercase()
        .parse::<Endpoint>()
        .map_err(|e| e.to_string())
}

/// A mask: a prefix length (`24`) or a dotted mask (`255.255.255.0`).
pub(crate) fn mask(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>() {
        if n <= 128 {
            return Ok(n);
        }
    }
    let addr: IpAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not a prefix length or a mask"))?;
    let bits: u128 = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    };
    let len = bits.leading_ones();
    if bits.checked_shl(len).unwrap_or(0) != 0 {
        return Err(format!("{s:?} is not a contiguous mask"));
    }
    u8::try_from(len).map_err(|_| format!("{s:?} is not a mask"))
}

/// An address with an optional mask: a masked address becomes a subnet (host bits cleared),
/// a full-length mask leaves the address.
pub(crate) fn endpoint_with_mask(e: Endpoint, mask: Option<u8>) -> Result<Endpoint, String> {
    let Some(len) = mask else { return Ok(e) };
    match e {
        Endpoint::Address(a) if len == max_prefix(a) => Ok(e),
        Endpoint::Address(a) => Subnet::new(mask_addr(a, len), len)
            .map(Endpoint::Subnet)
            .map_err(|err| err.to_string()),
        Endpoint::Subnet(s) if s.prefix_len() == len => Ok(e),
        other => Err(format!("a mask applies to an address, not to {other}")),
    }
}

/// A protocol: `any`, `tcp`, `udp`, `icmp`, `icmpv6` or a number 0-255.
pub(crate) fn protocol(s: &str) -> Result<Protocol, String> {
    let lower = s.to_ascii_lowercase();
    if let Ok(n) = lower.parse::<u8>() {
        return Ok(Protocol::Number(n));
    }
    lower.parse::<Protocol>().map_err(|e| e.to_string())
}

/// A connection type: `all`, `lan`, `dialup` (or `remote-access`).
pub(crate) fn conntype(s: &str) -> Result<ConnectionType, String> {
    match s.to_ascii_lowercase().as_str() {
        "all" => Ok(ConnectionType::All),
        "lan" => Ok(ConnectionType::Lan),
        "dialup" | "remote-access" | "remoteaccess" => Ok(ConnectionType::RemoteAccess),
        _ => Err(format!("{s:?} is not a connection type (all, lan, dialup)")),
    }
}

pub(crate) fn conntype_name(c: ConnectionType) -> &'static str {
    match c {
        ConnectionType::All => "all",
        ConnectionType::Lan => "lan",
        ConnectionType::RemoteAccess => "dialup",
    }
}

/// A tunnel endpoint: an address, or `none`.
pub(crate) fn tunnel(s: &str) -> Result<Option<IpAddr>, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{s:?} is not an IP address or none"))
}

fn encryption(s: &str) -> Result<Encryption, String> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "DES" => Encryption::Des,
        "3DES" => Encryption::TripleDes,
        "AES128" | "AES" => Encryption::Aes128,
        "AES192" => Encryption::Aes192,
        "AES256" => Encryption::Aes256,
        "AES128GCM16" => Encryption::Aes128Gcm16,
        "AES256GCM16" => Encryption::Aes256Gcm16,
        _ => {
            return Err(format!(
                "{s:?} is not a cipher (DES, 3DES, AES128, AES192, AES256; in ESP also AES128GCM16, AES256GCM16)"
            ))
        }
    })
}

pub(crate) fn encryption_name(e: Encryption) -> &'static str {
    match e {
        Encryption::Des => "DES",
        Encryption::TripleDes => "3DES",
        Encryption::Aes128 => "AES128",
        Encryption::Aes192 => "AES192",
        Encryption::Aes256 => "AES256",
        Encryption::Aes128Gcm16 => "AES128GCM16",
        Encryption::Aes256Gcm16 => "AES256GCM16",
        _ => "?",
    }
}

fn integrity(s: &str) -> Result<Integrity, String> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "MD5" => Integrity::Md5,
        "SHA1" => Integrity::Sha1,
        "SHA256" => Integrity::Sha256,
        "SHA384" => Integrity::Sha384,
        "SHA512" => Integrity::Sha512,
        _ => {
            return Err(format!(
                "{s:?} is not an integrity algorithm (MD5, SHA1, SHA256, SHA384, SHA512)"
            ))
        }
    })
}

pub(crate) fn integrity_name(i: Integrity) -> &'static str {
    match i {
        Integrity::Md5 => "MD5",
        Integrity::Sha1 => "SHA1",
        Integrity::Sha256 => "SHA256",
        Integrity::Sha384 => "SHA384",
        Integrity::Sha512 => "SHA512",
        _ => "?",
    }
}

fn dh_group(s: &str) -> Result<DhGroup, String> {
    use DhGroup::*;
    Ok(match s {
        "1" => Group1,
        "2" => Group2,
        // netsh's "3" is its 2048-bit group.
        "3" | "14" => Group14,
        "5" => Group5,
        "15" => Group15,
        "16" => Group16,
        "17" => Group17,
        "18" => Group18,
        "19" => Group19,
        "20" => Group20,
        "21" => Group21,
        _ => return Err(format!("{s:?} is not a DH group (1, 2, 3=14, 5, 14-21)")),
    })
}

fn dh_group_number(g: DhGroup) -> u8 {
    use DhGroup::*;
    match g {
        Group1 => 1,
        Group2 => 2,
        Group5 => 5,
        Group14 => 14,
        Group15 => 15,
        Group16 => 16,
        Group17 => 17,
        Group18 => 18,
        Group19 => 19,
        Group20 => 20,
        Group21 => 21,
        _ => 0,
    }
}

/// Main-mode methods: `3DES-SHA1-2 AES128-SHA1-14 ...` (cipher-hash-group, space or comma
/// separated).
pub(crate) fn mm_methods(s: &str) -> Result<Vec<MainModeMethod>, String> {
    let mut out = Vec::new();
    for item in s.split(|c: char| c.is_whitespace() || c == ',') {
        if item.is_empty() {
            continue;
        }
        let parts: Vec<&str> = item.split('-').collect();
        let [enc, integ, group] = parts.as_slice() else {
            return Err(format!(
                "{item:?} is not a main-mode method (cipher-hash-group, e.g. 3DES-SHA1-2)"
            ));
        };
        let encryption = encryption(enc)?;
        if encryption.is_aead() {
            return Err(format!(
                "{enc:?} is for ESP quick-mode methods only, not for main mode"
            ));
        }
        out.push(MainModeMethod {
            encryption,
            integrity: integrity(integ)?,
            dh_group: dh_group(group)?,
        });
    }
    if out.is_empty() {
        return Err("no main-mode security method given".into());
    }
    Ok(out)
}

pub(crate) fn mm_method_string(m: &MainModeMethod) -> String {
    format!(
        "{}-{}-{}",
        encryption_name(m.encryption),
        integrity_name(m.integrity),
        dh_group_number(m.dh_group)
    )
}

pub(crate) fn mm_methods_string(ms: &[MainModeMethod]) -> String {
    ms.iter()
        .map(mm_method_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quick-mode methods, netsh style: `ESP[3DES,SHA1] AH[MD5]+ESP[DES,NONE]:3600s/50000kb`.
/// AES-GCM (an AEAD) is written `ESP[AES128GCM16,NONE]` or `ESP[AES256GCM16,NONE]`.
/// Methods are separated by spaces; lifetimes follow a colon as `<n>s` and/or `<n>kb`
/// (or `<n>k`), separated by `/`.
pub(crate) fn qm_methods(s: &str) -> Result<Vec<QuickModeMethod>, String> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        out.push(qm_method(item)?);
    }
    if out.is_empty() {
        return Err("no quick-mode security method given".into());
    }
    Ok(out)
}

fn qm_method(item: &str) -> Result<QuickModeMethod, String> {
    let bad = || {
        format!("{item:?} is not a quick-mode method (e.g. ESP[3DES,SHA1], AH[SHA1]+ESP[AES128,NONE]:3600s/50000kb)")
    };
    let (protos, lifetimes) = match item.split_once(':') {
        Some((p, l)) => (p, Some(l)),
        None => (item, None),
    };
    let mut method = QuickModeMethod {
        ah: None,
        esp: None,
        lifetime_kb: DEFAULT_QM_LIFETIME_KB,
        lifetime_seconds: DEFAULT_QM_LIFETIME_SECONDS,
    };
    for part in protos.split('+') {
        let upper = part.to_ascii_uppercase();
        let (name, rest) = upper.split_once('[').ok_or_else(bad)?;
        let args = rest.strip_suffix(']').ok_or_else(bad)?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        match (name, args.as_slice()) {
            ("AH", [i]) if method.ah.is_none() => method.ah = Some(integrity(i)?),
            ("ESP", [e, i]) if method.esp.is_none() => {
                let encryption = if *e == "NONE" {
                    None
                } else {
                    Some(encryption(e)?)
                };
                let integrity = if *i == "NONE" {
                    None
                } else {
                    Some(integrity(i)?)
                };
                if let (Some(e), Some(_)) = (encryption, integrity) {
                    if e.is_aead() {
                        return Err(format!(
                            "{item:?}: {} is an AEAD cipher and takes no integrity algorithm (write ESP[{},NONE])",
                            encryption_name(e),
                            encryption_name(e)
                        ));
                    }
                }
                method.esp = Some(EspTransform {
                    encryption,
                    integrity,
                });
            }
            _ => return Err(bad()),
        }
    }
    if let Some(l) = lifetimes {
        for part in l.split('/') {
            let p = part.to_ascii_lowercase();
            if let Some(n) = p.strip_suffix("kb").or_else(|| p.strip_suffix('k')) {
                method.lifetime_kb = n.parse().map_err(|_| bad())?;
            } else if let Some(n) = p.strip_suffix('s') {
                method.lifetime_seconds = n.parse().map_err(|_| bad())?;
            } else {
                return Err(bad());
            }
        }
    }
    Ok(method)
}

pub(crate) fn qm_method_string(m: &QuickModeMethod) -> String {
    let mut parts = Vec::new();
    if let Some(i) = m.ah {
        parts.push(format!("AH[{}]", integrity_name(i)));
    }
    if let Some(e) = m.esp {
        parts.push(format!(
            "ESP[{},{}]",
            e.encryption.map_or("NONE", encryption_name),
            e.integrity.map_or("NONE", integrity_name)
        ));
    }
    format!(
        "{}:{}s/{}kb",
        parts.join("+"),
        m.lifetime_seconds,
        m.lifetime_kb
    )
}

pub(crate) fn qm_methods_string(ms: &[QuickModeMethod]) -> String {
    ms.iter()
        .map(qm_method_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A boot mode: `permit`, `block` or `stateful`.
pub(crate) fn boot_mode(s: &str) -> Result<BootMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "permit" => Ok(BootMode::Permit),
        "block" => Ok(BootMode::Block),
        "stateful" => Ok(BootMode::Stateful),
        _ => Err(format!(
            "{s:?} is not a boot mode (permit, block, stateful)"
        )),
    }
}

pub(crate) fn boot_mode_name(m: BootMode) -> &'static str {
    match m {
        BootMode::Permit => "permit",
        BootMode::Block => "block",
        BootMode::Stateful => "stateful",
    }
}

/// Boot exemptions: `none`, or a comma- or space-separated list of
/// `protocol:dstport:direction` or `protocol:srcport:dstport:direction` (direction `in`,
/// `inbound`, `out` or `outbound`).
pub(crate) fn boot_exemptions(s: &str) -> Result<Vec<BootExemption>, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in s.split(|c: char| c == ',' || c.is_whitespace()) {
        if item.is_empty() {
            continue;
        }
        let bad = || {
            format!("{item:?} is not a boot exemption (protocol:port:in|out or protocol:srcport:dstport:in|out)")
        };
        let parts: Vec<&str> = item.split(':').collect();
        let (proto, sport, dport, dir) = match parts.as_slice() {
            [p, d, dir] => (*p, "0", *d, *dir),
            [p, s, d, dir] => (*p, *s, *d, *dir),
            _ => return Err(bad()),
        };
        let direction = match dir.to_ascii_lowercase().as_str() {
            "in" | "inbound" => ExemptionDirection::Inbound,
            "out" | "outbound" => ExemptionDirection::Outbound,
            _ => return Err(bad()),
        };
        out.push(BootExemption {
            protocol: protocol(proto).map_err(|_| bad())?,
            source_port: sport.parse().map_err(|_| bad())?,
            destination_port: dport.parse().map_err(|_| bad())?,
            direction,
        });
    }
    Ok(out)
}

pub(crate) fn boot_exemptions_string(list: &[BootExemption]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|e| {
            format!(
                "{}:{}:{}:{}",
                e.protocol,
                e.source_port,
                e.destination_port,
                match e.direction {
                    ExemptionDirection::Inbound => "in",
                    ExemptionDirection::Outbound => "out",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A root CA for certificate authentication: `"<CA DN> [certmap:yes|no] [excludecaname:yes|no]"`
/// (the options at the end, as netsh writes them).
/// `--psk-file PATH`: the preshared key in a regular file that group and others cannot
/// access (like ssh's private keys); one trailing newline (LF or CRLF) is dropped.
pub(crate) fn psk_file(path: &str) -> Result<ipsec_policy::AuthMethod, String> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let fail = |why: String| format!("preshared key file {path}: {why}");
    let mut f = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let md = f.metadata().map_err(|e| fail(e.to_string()))?;
    if !md.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "mode {mode:04o} lets group or others read it (chmod 600 {path})"
        )));
    }
    // Sized up front so reading does not leave reallocated copies of the key behind; the
    // buffer is zeroized on drop (inside the Secret).
    let cap = usize::try_from(md.len()).unwrap_or(0).saturating_add(1);
    let mut read = String::with_capacity(cap);
    let result = f.read_to_string(&mut read);
    let read = ipsec_policy::Secret::new(read);
    result.map_err(|e| fail(format!("{e} (the key must be UTF-8 text)")))?;
    let text = read.expose();
    let text = text
        .strip_suffix('\n')
        .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if text.is_empty() {
        return Err(fail("empty".into()));
    }
    Ok(ipsec_policy::AuthMethod::PresharedKey {
        key: ipsec_policy::PresharedKey::Secret(ipsec_policy::Secret::new(text)),
    })
}

pub(crate) fn rootca(s: &str) -> Result<ipsec_policy::AuthMethod, String> {
    let mut ca = s.trim().to_owned();
    let mut map_to_account = false;
    let mut exclude_ca_name = false;
    while let Some((head, last)) = ca
        .clone()
        .rsplit_once(char::is_whitespace)
        .map(|(h, l)| (h.to_owned(), l.to_owned()))
    {
        let lower = last.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("certmap:") {
            map_to_account = yes_no(v)?;
        } else if let Some(v) = lower.strip_prefix("excludecaname:") {
            exclude_ca_name = yes_no(v)?;
        } else {
            break;
        }
        ca = head.trim_end().to_owned();
    }
    if ca.is_empty() {
        return Err("rootca needs a CA name".into());
    }
    Ok(ipsec_policy::AuthMethod::Certificate {
        ca,
        exclude_ca_name,
        map_to_account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qm_methods_round_trip() {
        let m = qm_methods("ESP[3DES,SHA1] AH[MD5]+ESP[AES128,NONE]:3600s/50000kb").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].lifetime_kb, 50_000);
        let s = qm_methods_string(&m);
        assert_eq!(qm_methods(&s).unwrap(), m);
        assert!(qm_methods("ESP[3DES]").is_err());
        assert!(qm_methods("ESP[3DES,SHA1]:10x").is_err());
    }

    #[test]
    fn aes_gcm_is_an_esp_cipher_without_integrity() {
        let m = qm_methods("ESP[AES128GCM16,NONE] esp[aes256gcm16,none]:7200s").unwrap();
        assert_eq!(
            m,
            vec![
                QuickModeMethod::esp_aead(Encryption::Aes128Gcm16),
                QuickModeMethod {
                    lifetime_seconds: 7200,
                    ..QuickModeMethod::esp_aead(Encryption::Aes256Gcm16)
                },
            ]
        );
        assert_eq!(
            qm_methods_string(&m),
            "ESP[AES128GCM16,NONE]:3600s/100000kb ESP[AES256GCM16,NONE]:7200s/100000kb"
        );
        assert_eq!(qm_methods(&qm_methods_string(&m)).unwrap(), m);
        let e = qm_methods("ESP[AES128GCM16,SHA1]").unwrap_err();
        assert!(
            e.contains("AEAD") && e.contains("ESP[AES128GCM16,NONE]"),
            "{e}"
        );
        let e = mm_methods("AES256GCM16-SHA1-14").unwrap_err();
        assert!(e.contains("not for main mode"), "{e}");
        assert!(qm_methods("ESP[AES192GCM16,NONE]").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(mask("255.255.255.0"), Ok(24));
        assert_eq!(mask("16"), Ok(16));
        assert!(mask("255.0.255.0").is_err());
    }

    #[test]
    fn boot_exemption_forms() {
        let e = boot_exemptions("tcp:88:in,udp:0:88:outbound").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(boot_exemptions_string(&e), "tcp:0:88:in,udp:0:88:out");
        assert!(boot_exemptions("tcp:88").is_err());
        assert!(boot_exemptions("none").unwrap().is_empty());
    }

    #[test]
    fn rootca_options() {
        let m = rootca("CN=Lab CA, O=Example certmap:yes").unwrap();
        assert_eq!(
            m,
            ipsec_policy::AuthMethod::Certificate {
                ca: "CN=Lab CA, O=Example".into(),
                exclude_ca_name: false,
                map_to_account: true
            }
        );
    }
}
