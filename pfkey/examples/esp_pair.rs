//! Statically keyed ESP between two hosts, through the `pfkey` trait: the kernel half of the
//! README's demo until ikd negotiates the keys.
//!
//! ```text
//! esp_pair install --local A --remote B --keys FILE [--backend xfrm|pfkey] [--tunnel LA LB]
//! esp_pair show [--backend xfrm|pfkey]
//! esp_pair remove [--backend xfrm|pfkey]
//! ```
//!
//! `install` adds an outbound and an inbound ESP SA (AES-128-CBC + HMAC-SHA1-96) and the
//! matching out/in (and, in tunnel mode, fwd) protect policies, all owned by this system
//! (reqid 0x3001, priority 10000). FILE holds the keys as `name=hex` lines: `spi_ab`,
//! `spi_ba`, `enc_ab`, `auth_ab`, `enc_ba`, `auth_ba`, where "ab" is the direction from the
//! numerically lower address to the higher one, so both hosts read the same file. FILE must
//! be mode 0600. `show` prints SAs (never keys) with their counters and policies; `remove`
//! deletes what this system owns and nothing else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;

use pfkey::{
    Direction, EncryptionAlgorithm, IntegrityAlgorithm, KernelInterface, Key, Mode, Ownership,
    Policy, PolicyAction, PolicyId, Prefix, SaId, SecurityAssociation, SecurityProtocol, Selector,
    Template, TemplateLevel,
};

const REQID: u32 = 0x3001;
const PRIORITY: u32 = 10_000;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esp_pair: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let command = args
        .first()
        .ok_or("usage: esp_pair install|show|remove [options]")?;
    let mut options: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let values = match flag.as_str() {
            "--tunnel" => 2,
            "--local" | "--remote" | "--keys" | "--backend" => 1,
            other => return Err(format!("unknown option {other}")),
        };
        let mut taken = Vec::new();
        for _ in 0..values {
            taken.push(
                rest.next()
                    .ok_or_else(|| format!("{flag} needs {values} value(s)"))?
                    .as_str(),
            );
        }
        options.insert(flag.as_str(), taken);
    }
    let mut kernel = open(options.get("--backend").map_or("xfrm", |v| v[0]))?;
    match command.as_str() {
        "install" => install(kernel.as_mut(), &options),
        "show" => show(kernel.as_mut()),
        "remove" => {
            let removed = Ownership::default()
                .delete_owned(kernel.as_mut())
                .map_err(|e| e.to_string())?;
            println!(
                "removed {} SAs and {} policies",
                removed.sas, removed.policies
            );
            Ok(())
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn open(backend: &str) -> Result<Box<dyn KernelInterface>, String> {
    match backend {
        "xfrm" => Ok(Box::new(
            pfkey::xfrm::XfrmKernel::open().map_err(|e| e.to_string())?,
        )),
        "pfkey" => Ok(Box::new(
            pfkey::pfkey::PfKeyKernel::open().map_err(|e| e.to_string())?,
        )),
        other => Err(format!("unknown backend {other} (xfrm or pfkey)")),
    }
}

fn address(options: &HashMap<&str, Vec<&str>>, flag: &str, index: usize) -> Result<IpAddr, String> {
    let value = options
        .get(flag)
        .and_then(|v| v.get(index))
        .ok_or_else(|| format!("{flag} is required"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: {value} is not an IP address"))
}

fn read_keys(path: &str) -> Result<HashMap<String, Vec<u8>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{path}: key file must not be readable by group or others (chmod 600)"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut keys = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, hex) = line
            .split_once('=')
            .ok_or_else(|| format!("{path}:{}: expected name=hex", n + 1))?;
        let bytes =
            decode_hex(hex.trim()).ok_or_else(|| format!("{path}:{}: {name}: bad hex", n + 1))?;
        keys.insert(name.trim().to_string(), bytes);
    }
    Ok(keys)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

fn install(
    kernel: &mut dyn KernelInterface,
    options: &HashMap<&str, Vec<&str>>,
) -> Result<(), String> {
    let local = address(options, "--local", 0)?;
    let remote = address(options, "--remote", 0)?;
    let keys = read_keys(options.get("--keys").ok_or("--keys is required")?[0])?;
    let key = |name: &str| {
        keys.get(name)
            .cloned()
            .ok_or_else(|| format!("key file lacks {name}"))
    };
    let spi = |name: &str| -> Result<u32, String> {
        let bytes: [u8; 4] = key(name)?
            .try_into()
            .map_err(|_| format!("{name}: 4 octets"))?;
        Ok(u32::from_be_bytes(bytes))
    };
    // "ab" runs from the lower address to the higher one.
    let (out_suffix, in_suffix) = if local < remote {
        ("ab", "ba")
    } else {
        ("ba", "ab")
    };
    let tunnel = match options.get("--tunnel") {
        Some(_) => Some((
            address(options, "--tunnel", 0)?,
            address(options, "--tunnel", 1)?,
        )),
        None => None,
    };
    let mode = if tunnel.is_some() {
        Mode::Tunnel
    } else {
        Mode::Transport
    };

    let sa = |src: IpAddr, dst: IpAddr, suffix: &str| -> Result<SecurityAssociation, String> {
        Ok(SecurityAssociation::new(
            SaId {
                destination: dst,
                spi: spi(&format!("spi_{suffix}"))?,
                protocol: SecurityProtocol::Esp,
            },
            src,
            mode,
            REQID,
        )
        .with_encryption(
            EncryptionAlgorithm::AesCbc,
            Key::new(key(&format!("enc_{suffix}"))?),
        )
        .with_integrity(
            IntegrityAlgorithm::HmacSha1_96,
            Key::new(key(&format!("auth_{suffix}"))?),
        ))
    };
    let outbound = sa(local, remote, out_suffix)?;
    let inbound = sa(remote, local, in_suffix)?;

    let (local_net, remote_net) = match tunnel {
        Some((l, r)) => (Prefix::host(l), Prefix::host(r)),
        None => (Prefix::host(local), Prefix::host(remote)),
    };
    let template = |src: IpAddr, dst: IpAddr| Template {
        protocol: SecurityProtocol::Esp,
        mode,
        reqid: REQID,
        tunnel: tunnel.map(|_| (src, dst)),
        level: TemplateLevel::Require,
    };
    let policy = |sel: Selector, direction: Direction, t: Template| Policy {
        id: PolicyId {
            selector: sel,
            direction,
            mark: None,
        },
        action: PolicyAction::Protect(vec![t]),
        priority: PRIORITY,
        index: None,
        lifetime: Default::default(),
    };
    let mut policies = vec![
        policy(
            Selector::between(local_net, remote_net),
            Direction::Out,
            template(local, remote),
        ),
        policy(
            Selector::between(remote_net, local_net),
            Direction::In,
            template(remote, local),
        ),
    ];
    if tunnel.is_some() {
        policies.push(policy(
            Selector::between(remote_net, local_net),
            Direction::Fwd,
            template(remote, local),
        ));
    }

    let err = |e: pfkey::Error| e.to_string();
    kernel.add_sa(&outbound).map_err(err)?;
    kernel.add_sa(&inbound).map_err(err)?;
    for p in &policies {
        kernel.update_policy(p).map_err(err)?;
    }
    println!(
        "{}: installed ESP {:?} SAs out 0x{:08x} / in 0x{:08x} and {} policies between {local} and {remote}",
        kernel.backend_name(),
        mode,
        outbound.id.spi,
        inbound.id.spi,
        policies.len()
    );
    Ok(())
}

fn show(kernel: &mut dyn KernelInterface) -> Result<(), String> {
    let err = |e: pfkey::Error| e.to_string();
    println!(
        "{:<16} {:<16} {:<10} {:<6} {:<9} {:>8} {:>10}",
        "source", "destination", "spi", "proto", "mode", "packets", "bytes"
    );
    for sa in kernel.dump_sas().map_err(err)? {
        println!(
            "{:<16} {:<16} 0x{:08x} {:<6} {:<9} {:>8} {:>10}",
            sa.source.to_string(),
            sa.id.destination.to_string(),
            sa.id.spi,
            format!("{:?}", sa.id.protocol).to_lowercase(),
            format!("{:?}", sa.mode).to_lowercase(),
            sa.current.packets,
            sa.current.bytes
        );
    }
    for p in kernel.dump_policies().map_err(err)? {
        let action = match &p.action {
            PolicyAction::Allow => "allow".to_string(),
            PolicyAction::Block => "block".to_string(),
            PolicyAction::Protect(t) => format!(
                "protect {:?}",
                t.iter().map(|t| t.protocol).collect::<Vec<_>>()
            ),
        };
        println!(
            "policy {:?} {} -> {} prio {} {}",
            p.id.direction, p.id.selector.source, p.id.selector.destination, p.priority, action
        );
    }
    Ok(())
}
