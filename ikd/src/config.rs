//! The configuration file (`ikd.conf`, TOML): parsing, validation, and the translation into
//! the engine's [`EndpointConfig`].
//!
//! The file follows the shape of the policy model that `policyd` owns (main-mode security
//! methods in preference order with their lifetime and quick-mode limit; peers with their
//! preshared keys; connections with traffic selectors and quick-mode security methods) until
//! policyd delivers these settings over its control channel. `man 5 ikd.conf` documents it.
//!
//! What this module does: read the file (refusing one that group or others may access,
//! because it holds preshared keys), parse it, validate it as a whole, and report the first
//! problem with the file path and the key (`connections[1].methods[0].lifetime-seconds`).
//! What it does not do: open sockets, talk to the kernel or log. Preshared keys live in
//! zeroizing buffers and are never printed by `Debug`.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ikecrypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use ikengine::{
    ChildConfig, EncapsulationMode, EndpointConfig, EspCipher, Identity, IntegrityAlgorithm,
    IpsecProtocol, MainModeProposal, PeerAddress, PeerConfig, QuickModeProposal,
    QuickModeTransform, RetransmitSchedule, Subnet, TrafficSelector,
};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Reqids ikd gives the SAs (and policy templates) of its connections when the file names
/// none: `0x3800 + index`, the upper half of the stack's owned band (policyd uses the lower).
pub(crate) const DEFAULT_REQID_BASE: u32 = 0x3800;
/// Kernel priority of the protect policies ikd installs (inside the stack's owned band).
pub(crate) const POLICY_PRIORITY: u32 = 50_000;

/// A configuration error: the file, where in it, and what is wrong.
#[derive(Debug)]
pub(crate) struct ConfigError {
    /// The file.
    pub(crate) path: PathBuf,
    /// The key (`peers[0].preshared-key`) or an empty string for file-level problems.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.path.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which kernel interface installs SAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum KernelBackend {
    /// Linux XFRM netlink.
    Xfrm,
    /// PF_KEY v2.
    Pfkey,
    /// No kernel: SPIs and SAs are kept in memory only (`pfkey::memory::MemoryKernel`),
    /// nothing protects traffic. For benchmarks and tests.
    #[serde(alias = "memory")]
    None,
}

/// Who installs the protect policies of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PolicyMode {
    /// ikd installs them at start and removes them at exit.
    Install,
    /// policyd (or the administrator) does; ikd only negotiates.
    External,
}

/// When a connection is negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StartMode {
    /// When the kernel raises an ACQUIRE for its traffic (the Windows behaviour).
    Acquire,
    /// At daemon start (and on ACQUIRE afterwards).
    Initiate,
    /// Never initiated: only answered.
    Respond,
}

/// The validated configuration.
#[derive(Debug)]
pub(crate) struct Config {
    /// The file it came from.
    pub(crate) path: PathBuf,
    /// Addresses to listen on; empty: the wildcard addresses of both families.
    pub(crate) local_addresses: Vec<IpAddr>,
    /// The kernel interface.
    pub(crate) kernel: KernelBackend,
    /// Who installs policies.
    pub(crate) policies: PolicyMode,
    /// New responder main modes allowed per peer and second (0: unlimited), and the burst.
    pub(crate) responder_rate: (u32, u32),
    /// How long to wait at shutdown for deletes to leave.
    pub(crate) shutdown_grace: Duration,
    /// The connections, in file order (index = child index in the engine).
    pub(crate) connections: Vec<Connection>,
    /// What the engine negotiates.
    pub(crate) endpoint: Arc<EndpointConfig>,
}

/// One connection, resolved for the daemon (policies, reqid, start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connection {
    /// Its name (the engine's child name).
    pub(crate) name: String,
    /// The peer's name.
    pub(crate) peer: String,
    /// The peer's address, if fixed.
    pub(crate) remote: Option<IpAddr>,
    /// Our address towards the peer, if known.
    pub(crate) local: Option<IpAddr>,
    /// The traffic, if it can be resolved (fixed addresses or explicit subnets).
    pub(crate) selector: Option<TrafficSelector>,
    /// Transport or tunnel.
    pub(crate) mode: EncapsulationMode,
    /// ESP or AH (of every method).
    pub(crate) protocol: IpsecProtocol,
    /// Reqid of its SAs and policy templates.
    pub(crate) reqid: u32,
    /// When to negotiate.
    pub(crate) start: StartMode,
    /// Request crypto offload to the device the peer is reached through (`kernel.rs`).
    pub(crate) offload: bool,
}

// ------------------------------------------------------------------ file shape (serde)

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    #[serde(default)]
    daemon: DaemonFile,
    main_mode: MainModeFile,
    #[serde(default)]
    peers: Vec<PeerFile>,
    #[serde(default)]
    connections: Vec<ConnectionFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct DaemonFile {
    #[serde(default)]
    local_addresses: Vec<IpAddr>,
    #[serde(default = "default_kernel")]
    kernel: KernelBackend,
    #[serde(default = "default_policies")]
    policies: PolicyMode,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    retransmit_seconds: Option<Vec<u32>>,
    #[serde(default = "default_half_open_timeout")]
    half_open_timeout_seconds: u32,
    #[serde(default = "default_max_half_open")]
    max_half_open: usize,
    #[serde(default = "default_rate")]
    responder_rate_per_second: u32,
    #[serde(default = "default_burst")]
    responder_burst: u32,
    #[serde(default)]
    send_ms_vendor_id: bool,
    #[serde(default)]
    responder_commit: bool,
    #[serde(default)]
    policy_lookup: bool,
    #[serde(default = "default_true")]
    initial_contact: bool,
    #[serde(default = "default_grace")]
    shutdown_grace_ms: u32,
}

impl Default for DaemonFile {
    fn default() -> Self {
        Self {
            local_addresses: Vec::new(),
            kernel: default_kernel(),
            policies: default_policies(),
            identity: None,
            retransmit_seconds: None,
            half_open_timeout_seconds: default_half_open_timeout(),
            max_half_open: default_max_half_open(),
            responder_rate_per_second: default_rate(),
            responder_burst: default_burst(),
            send_ms_vendor_id: false,
            responder_commit: false,
            policy_lookup: false,
            initial_contact: true,
            shutdown_grace_ms: default_grace(),
        }
    }
}

/// XFRM on Linux, PF_KEY elsewhere (FreeBSD).
fn default_kernel() -> KernelBackend {
    if cfg!(target_os = "linux") {
        KernelBackend::Xfrm
    } else {
        KernelBackend::Pfkey
    }
}
fn default_policies() -> PolicyMode {
    PolicyMode::Install
}
fn default_half_open_timeout() -> u32 {
    90
}
fn default_max_half_open() -> usize {
    1024
}
fn default_rate() -> u32 {
    10
}
fn default_burst() -> u32 {
    20
}
fn default_true() -> bool {
    true
}
fn default_grace() -> u32 {
    500
}
fn default_mm_lifetime() -> u32 {
    480
}
fn default_qm_seconds() -> u32 {
    3600
}
fn default_qm_kb() -> u32 {
    100_000
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct MainModeFile {
    #[serde(default = "default_mm_lifetime")]
    lifetime_minutes: u32,
    #[serde(default)]
    quick_modes_per_main_mode: u32,
    methods: Vec<MainModeMethodFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct MainModeMethodFile {
    encryption: Encryption,
    integrity: Integrity,
    dh_group: Group,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
enum Encryption {
    #[serde(rename = "null")]
    Null,
    #[serde(rename = "des")]
    Des,
    #[serde(rename = "3des")]
    TripleDes,
    #[serde(rename = "aes128")]
    Aes128,
    #[serde(rename = "aes192")]
    Aes192,
    #[serde(rename = "aes256")]
    Aes256,
    /// ESP only (RFC 4106, 16-octet ICV): the cipher netdevsim can offload.
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Integrity {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Group {
    Group1,
    Group2,
    Group5,
    Group14,
    Group15,
    Group16,
    Group17,
    Group18,
    Group19,
    Group20,
    Group21,
}

/// A preshared key from the file: zeroized on drop, never printed.
struct Psk(Zeroizing<String>);

impl<'de> Deserialize<'de> for Psk {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self(Zeroizing::new(s)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PeerFile {
    name: String,
    address: String,
    #[serde(default)]
    local: Option<IpAddr>,
    preshared_key: Psk,
    #[serde(default)]
    identity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConnectionFile {
    name: String,
    peer: String,
    #[serde(default)]
    local_subnet: Option<String>,
    #[serde(default)]
    remote_subnet: Option<String>,
    #[serde(default)]
    protocol: u8,
    #[serde(default)]
    local_port: u16,
    #[serde(default)]
    remote_port: u16,
    #[serde(default = "default_mode")]
    mode: Mode,
    #[serde(default = "default_start")]
    start: StartMode,
    #[serde(default)]
    pfs: Option<Group>,
    #[serde(default)]
    reqid: Option<u32>,
    #[serde(default)]
    offload: bool,
    methods: Vec<QuickModeMethodFile>,
}

fn default_mode() -> Mode {
    Mode::Transport
}
fn default_start() -> StartMode {
    StartMode::Acquire
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Transport,
    Tunnel,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct QuickModeMethodFile {
    #[serde(default)]
    esp: Option<EspFile>,
    #[serde(default)]
    ah: Option<Integrity>,
    #[serde(default = "default_qm_seconds")]
    lifetime_seconds: u32,
    #[serde(default = "default_qm_kb")]
    lifetime_kb: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EspFile {
    encryption: Encryption,
    #[serde(default)]
    integrity: Option<Integrity>,
}

// ------------------------------------------------------------------ loading

/// Reads, checks and validates the file at `path`.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.to_owned(),
        key: String::new(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    check_mode(path, &meta)?;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| err("not UTF-8".into()))?;
    parse(text, path)
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError {
            path: path.to_owned(),
            key: String::new(),
            message: format!(
                "mode {mode:04o} lets group or others access preshared keys; \
                 chmod 600 it (like sshd, ikd refuses such a file)"
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    Ok(())
}

/// The bare key of a `key = value` line around offset `at` (only a key name, never a
/// value, so an error can name it without quoting a secret).
fn key_on_line(text: &str, at: usize) -> Option<&str> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    bare.then_some(key)
}

/// Parses and validates configuration text; `path` is only used in errors.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    // The line number and the parser's message, never the offending line itself (it may
    // be a preshared key, and the message may travel back over the control socket).
    let file: File = toml::from_str(text).map_err(|e| ConfigError {
        path: path.to_owned(),
        key: String::new(),
        message: match e.span().and_then(|s| text.get(..s.start)) {
            Some(before) => {
                let line = before.matches('\n').count() + 1;
                match key_on_line(text, before.len()) {
                    Some(key) => format!("line {line}, key {key}: {}", e.message().trim_end()),
                    None => format!("line {line}: {}", e.message().trim_end()),
                }
            }
            None => e.message().trim_end().to_owned(),
        },
    })?;
    Validator { path }.build(file)
}

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn err<T>(&self, key: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            path: self.path.to_owned(),
            key: key.into(),
            message: message.into(),
        })
    }

    fn build(&self, file: File) -> Result<Config, ConfigError> {
        let d = &file.daemon;
        let identity = match &d.identity {
            None => Identity::Address,
            Some(s) => self.identity(s, "daemon.identity")?,
        };
        let mut ep = EndpointConfig::new(identity);
        if let Some(r) = &d.retransmit_seconds {
            if r.len() < 2 {
                return self.err(
                    "daemon.retransmit-seconds",
                    "needs at least two intervals (first send, then the wait before giving up)",
                );
            }
            if r.iter().skip(1).any(|s| *s == 0) {
                return self.err(
                    "daemon.retransmit-seconds",
                    "intervals after the first must be at least 1 second",
                );
            }
            ep.retransmit = RetransmitSchedule {
                intervals: r
                    .iter()
                    .map(|s| Duration::from_secs(u64::from(*s)))
                    .collect(),
            };
        }
        if d.half_open_timeout_seconds == 0 {
            return self.err("daemon.half-open-timeout-seconds", "must be at least 1");
        }
        ep.half_open_timeout = Duration::from_secs(u64::from(d.half_open_timeout_seconds));
        if d.max_half_open == 0 {
            return self.err("daemon.max-half-open", "must be at least 1");
        }
        ep.max_half_open = d.max_half_open;
        ep.send_ms_vendor_id = d.send_ms_vendor_id;
        ep.responder_commit = d.responder_commit;
        ep.policy_lookup = d.policy_lookup;
        ep.initial_contact = d.initial_contact;
        if d.responder_rate_per_second > 0 && d.responder_burst == 0 {
            return self.err(
                "daemon.responder-burst",
                "must be at least 1 when a rate is set",
            );
        }
        if d.kernel == KernelBackend::None && d.policies == PolicyMode::Install {
            return self.err(
                "daemon.kernel",
                "\"none\" installs nothing in the kernel, so it cannot install policies: \
                 set policies = \"external\"",
            );
        }
        let mut seen = HashSet::new();
        for (i, a) in d.local_addresses.iter().enumerate() {
            if a.is_unspecified() || a.is_multicast() {
                return self.err(
                    format!("daemon.local-addresses[{i}]"),
                    format!("{a} is not a unicast address (leave the list empty for wildcard)"),
                );
            }
            if !seen.insert(*a) {
                return self.err(format!("daemon.local-addresses[{i}]"), format!("{a} twice"));
            }
        }

        // Main mode.
        let mm = &file.main_mode;
        if mm.methods.is_empty() {
            return self.err(
                "main-mode.methods",
                "at least one security method is needed",
            );
        }
        if !(5..=71_582_788).contains(&mm.lifetime_minutes) {
            return self.err(
                "main-mode.lifetime-minutes",
                "must be 5..=71582788 (Windows limits)",
            );
        }
        for (i, m) in mm.methods.iter().enumerate() {
            let key = format!("main-mode.methods[{i}]");
            let encryption = match m.encryption {
                Encryption::Null => {
                    return self.err(format!("{key}.encryption"), "null is for ESP only");
                }
                Encryption::Aes128Gcm16 | Encryption::Aes256Gcm16 => {
                    return self.err(format!("{key}.encryption"), "AES-GCM is for ESP only");
                }
                Encryption::Des => CipherAlgorithm::DesCbc,
                Encryption::TripleDes => CipherAlgorithm::TripleDesCbc,
                Encryption::Aes128 => CipherAlgorithm::Aes128Cbc,
                Encryption::Aes192 => CipherAlgorithm::Aes192Cbc,
                Encryption::Aes256 => CipherAlgorithm::Aes256Cbc,
            };
            let mut p = MainModeProposal::psk(encryption, hash(m.integrity), group(m.dh_group));
            p.lifetime = Duration::from_secs(u64::from(mm.lifetime_minutes) * 60);
            p.quick_modes_per_main_mode =
                (mm.quick_modes_per_main_mode > 0).then_some(mm.quick_modes_per_main_mode);
            if ep.main_mode_proposals.contains(&p) {
                return self.err(key, "the same method twice");
            }
            ep.main_mode_proposals.push(p);
        }

        // Peers.
        let single_local = (d.local_addresses.len() == 1).then(|| d.local_addresses[0]);
        let mut peers: Vec<(String, Option<IpAddr>, Option<IpAddr>)> = Vec::new();
        for (i, p) in file.peers.iter().enumerate() {
            let key = format!("peers[{i}]");
            if p.name.is_empty() {
                return self.err(format!("{key}.name"), "must not be empty");
            }
            if peers.iter().any(|(n, _, _)| *n == p.name) {
                return self.err(format!("{key}.name"), format!("\"{}\" twice", p.name));
            }
            let address = if p.address == "any" {
                PeerAddress::Any
            } else {
                match p.address.parse::<IpAddr>() {
                    Ok(a) if !a.is_unspecified() && !a.is_multicast() => PeerAddress::Address(a),
                    _ => {
                        return self.err(
                            format!("{key}.address"),
                            format!("\"{}\" is neither a unicast address nor \"any\"", p.address),
                        );
                    }
                }
            };
            if p.preshared_key.0.is_empty() {
                return self.err(format!("{key}.preshared-key"), "must not be empty");
            }
            let local = p.local.or(single_local);
            if let (Some(l), PeerAddress::Address(r)) = (local, address) {
                if l.is_ipv4() != r.is_ipv4() {
                    return self.err(
                        format!("{key}.local"),
                        format!("{l} and the peer's {r} are of different families"),
                    );
                }
            }
            if let Some(l) = p.local {
                if !d.local_addresses.is_empty() && !d.local_addresses.contains(&l) {
                    return self.err(
                        format!("{key}.local"),
                        format!("{l} is not in daemon.local-addresses"),
                    );
                }
            }
            let mut pc = PeerConfig::psk(&p.name, address, p.preshared_key.0.as_bytes());
            if let Some(l) = local {
                pc = pc.with_local(l);
            }
            if let Some(id) = &p.identity {
                pc = pc.with_identity(self.identity(id, &format!("{key}.identity"))?);
            }
            ep.peers.push(pc);
            let remote = match address {
                PeerAddress::Address(a) => Some(a),
                PeerAddress::Any => None,
            };
            peers.push((p.name.clone(), remote, local));
        }
        if file.peers.iter().filter(|p| p.address == "any").count() > 1 {
            return self.err("peers", "only one peer may have address \"any\"");
        }

        // Connections.
        let mut connections = Vec::new();
        let mut reqids = HashSet::new();
        for (i, c) in file.connections.iter().enumerate() {
            let key = format!("connections[{i}]");
            if c.name.is_empty() {
                return self.err(format!("{key}.name"), "must not be empty");
            }
            if connections.iter().any(|x: &Connection| x.name == c.name) {
                return self.err(format!("{key}.name"), format!("\"{}\" twice", c.name));
            }
            let Some((_, remote, local)) = peers.iter().find(|(n, _, _)| *n == c.peer) else {
                return self.err(
                    format!("{key}.peer"),
                    format!("no peer named \"{}\"", c.peer),
                );
            };
            let (remote, local) = (*remote, *local);
            let mode = match c.mode {
                Mode::Transport => EncapsulationMode::Transport,
                Mode::Tunnel => EncapsulationMode::Tunnel,
            };
            let local_subnet =
                self.subnet(c.local_subnet.as_deref(), &format!("{key}.local-subnet"))?;
            let remote_subnet =
                self.subnet(c.remote_subnet.as_deref(), &format!("{key}.remote-subnet"))?;
            if mode == EncapsulationMode::Tunnel {
                if local_subnet.is_none() || remote_subnet.is_none() {
                    return self.err(
                        key,
                        "tunnel mode needs local-subnet and remote-subnet \
                         (the tunnel endpoints are the IKE addresses)",
                    );
                }
                if remote.is_none() || local.is_none() {
                    return self.err(
                        key,
                        "tunnel mode needs a peer with a fixed address and a local address",
                    );
                }
            }
            if let (Some(l), Some(r)) = (local_subnet, remote_subnet) {
                if l.addr.is_ipv4() != r.addr.is_ipv4() {
                    return self.err(key, "local-subnet and remote-subnet of different families");
                }
            }
            if (c.local_port != 0 || c.remote_port != 0) && !matches!(c.protocol, 6 | 17 | 132) {
                return self.err(key, "ports need protocol 6 (TCP), 17 (UDP) or 132 (SCTP)");
            }
            let selector = match (
                local_subnet.or_else(|| local.map(Subnet::host)),
                remote_subnet.or_else(|| remote.map(Subnet::host)),
            ) {
                (Some(l), Some(r)) if l.addr.is_ipv4() == r.addr.is_ipv4() => {
                    Some(TrafficSelector {
                        local: l,
                        remote: r,
                        protocol: c.protocol,
                        local_port: c.local_port,
                        remote_port: c.remote_port,
                    })
                }
                (Some(_), Some(_)) => {
                    return self.err(key, "the traffic selector mixes address families");
                }
                _ => None,
            };
            let start = c.start;
            if start != StartMode::Respond && (remote.is_none() || local.is_none()) {
                return self.err(
                    format!("{key}.start"),
                    "initiating needs a peer with a fixed address and a local address \
                     (peers[].local, or a single daemon.local-addresses entry); use \
                     start = \"respond\"",
                );
            }
            if d.policies == PolicyMode::Install && (selector.is_none() || remote.is_none()) {
                return self.err(
                    key,
                    "policies = \"install\" needs a peer with a fixed address and a local \
                     address (or policies = \"external\")",
                );
            }
            let reqid = c.reqid.unwrap_or(DEFAULT_REQID_BASE + i as u32);
            if !pfkey::Ownership::default().reqids.contains(&reqid) {
                return self.err(
                    format!("{key}.reqid"),
                    "must be in 0x3000..=0x3fff (owned band)",
                );
            }
            if !reqids.insert(reqid) {
                return self.err(format!("{key}.reqid"), format!("{reqid:#x} used twice"));
            }
            if c.methods.is_empty() {
                return self.err(
                    format!("{key}.methods"),
                    "at least one security method is needed",
                );
            }
            let pfs = c.pfs.map(group);
            let mut proposals = Vec::new();
            let mut protocol = None;
            for (j, m) in c.methods.iter().enumerate() {
                let mkey = format!("{key}.methods[{j}]");
                let p = self.qm_method(m, mode, pfs, &mkey)?;
                if *protocol.get_or_insert(p.protocol) != p.protocol {
                    return self.err(
                        mkey,
                        "every method of a connection must use the same protocol (ESP or AH)",
                    );
                }
                proposals.push(p);
            }
            let Some(protocol) = protocol else {
                return self.err(
                    format!("{key}.methods"),
                    "at least one security method is needed",
                );
            };
            let mut child = ChildConfig::new(&c.name, &c.peer, proposals[0].clone());
            child.proposals = proposals;
            if let Some(ts) = selector {
                child = child.with_selector(ts);
            }
            ep.children.push(child);
            connections.push(Connection {
                name: c.name.clone(),
                peer: c.peer.clone(),
                remote,
                local,
                selector,
                mode,
                protocol,
                reqid,
                start,
                offload: c.offload,
            });
        }

        Ok(Config {
            path: self.path.to_owned(),
            local_addresses: d.local_addresses.clone(),
            kernel: d.kernel,
            policies: d.policies,
            responder_rate: (d.responder_rate_per_second, d.responder_burst),
            shutdown_grace: Duration::from_millis(u64::from(d.shutdown_grace_ms)),
            connections,
            endpoint: Arc::new(ep),
        })
    }

    fn qm_method(
        &self,
        m: &QuickModeMethodFile,
        mode: EncapsulationMode,
        pfs: Option<DhGroup>,
        key: &str,
    ) -> Result<QuickModeProposal, ConfigError> {
        if !(30..=172_800).contains(&m.lifetime_seconds) {
            return self.err(format!("{key}.lifetime-seconds"), "must be 30..=172800");
        }
        if m.lifetime_kb != 0 && m.lifetime_kb < 1024 {
            return self.err(
                format!("{key}.lifetime-kb"),
                "must be 0 (no limit) or at least 1024",
            );
        }
        let transform = match (&m.esp, m.ah) {
            (Some(_), Some(_)) => {
                return self.err(key, "AH+ESP bundles are not supported yet: use esp or ah");
            }
            (None, None) => return self.err(key, "needs esp = { .. } or ah = \"..\""),
            (Some(esp), None) => {
                let encryption = match esp.encryption {
                    Encryption::Null => EspCipher::Null,
                    Encryption::Des => EspCipher::Des,
                    Encryption::TripleDes => EspCipher::TripleDes,
                    Encryption::Aes128 => EspCipher::Aes128,
                    Encryption::Aes192 => EspCipher::Aes192,
                    Encryption::Aes256 => EspCipher::Aes256,
                    Encryption::Aes128Gcm16 => EspCipher::AesGcm128,
                    Encryption::Aes256Gcm16 => EspCipher::AesGcm256,
                };
                if encryption.is_aead() && esp.integrity.is_some() {
                    return self.err(
                        format!("{key}.esp"),
                        "AES-GCM is an AEAD: no integrity algorithm",
                    );
                }
                if encryption == EspCipher::Null && esp.integrity.is_none() {
                    return self.err(
                        format!("{key}.esp"),
                        "null encryption needs an integrity algorithm",
                    );
                }
                (
                    IpsecProtocol::Esp,
                    QuickModeTransform {
                        encryption: Some(encryption),
                        integrity: esp.integrity.map(integrity),
                    },
                )
            }
            (None, Some(ah)) => (
                IpsecProtocol::Ah,
                QuickModeTransform {
                    encryption: None,
                    integrity: Some(integrity(ah)),
                },
            ),
        };
        let mut p = QuickModeProposal::esp(EspCipher::Aes128, IntegrityAlgorithm::HmacSha1, mode);
        p.protocol = transform.0;
        p.transforms = vec![transform.1];
        p.pfs = pfs;
        p.lifetime_seconds = m.lifetime_seconds;
        p.lifetime_kilobytes = (m.lifetime_kb > 0).then_some(m.lifetime_kb);
        Ok(p)
    }

    fn identity(&self, s: &str, key: &str) -> Result<Identity, ConfigError> {
        if s == "address" {
            return Ok(Identity::Address);
        }
        let parsed = match s.split_once(':') {
            Some(("fqdn", v)) if !v.is_empty() => Some(Identity::Fqdn(v.to_owned())),
            Some(("user-fqdn", v)) if !v.is_empty() => Some(Identity::UserFqdn(v.to_owned())),
            Some(("key-id", v)) if !v.is_empty() => Some(Identity::KeyId(v.as_bytes().to_vec())),
            _ => None,
        };
        match parsed {
            Some(id) => Ok(id),
            None => self.err(
                key,
                format!(
                    "\"{s}\": expected \"address\", \"fqdn:NAME\", \"user-fqdn:USER@NAME\" \
                     or \"key-id:TEXT\""
                ),
            ),
        }
    }

    fn subnet(&self, s: Option<&str>, key: &str) -> Result<Option<Subnet>, ConfigError> {
        let Some(s) = s else { return Ok(None) };
        let bad = || self.err(key, format!("\"{s}\" is not an address or ADDRESS/PREFIX"));
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let Ok(addr) = addr.parse::<IpAddr>() else {
            return bad();
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(l) if l <= max => l,
                _ => return bad(),
            },
        };
        Ok(Some(Subnet { addr, prefix_len }))
    }
}

fn hash(i: Integrity) -> HashAlgorithm {
    match i {
        Integrity::Md5 => HashAlgorithm::Md5,
        Integrity::Sha1 => HashAlgorithm::Sha1,
        Integrity::Sha256 => HashAlgorithm::Sha2_256,
        Integrity::Sha384 => HashAlgorithm::Sha2_384,
        Integrity::Sha512 => HashAlgorithm::Sha2_512,
    }
}

fn integrity(i: Integrity) -> IntegrityAlgorithm {
    match i {
        Integrity::Md5 => IntegrityAlgorithm::HmacMd5,
        Integrity::Sha1 => IntegrityAlgorithm::HmacSha1,
        Integrity::Sha256 => IntegrityAlgorithm::HmacSha256,
        Integrity::Sha384 => IntegrityAlgorithm::HmacSha384,
        Integrity::Sha512 => IntegrityAlgorithm::HmacSha512,
    }
}

fn group(g: Group) -> DhGroup {
    match g {
        Group::Group1 => DhGroup::Modp768,
        Group::Group2 => DhGroup::Modp1024,
        Group::Group5 => DhGroup::Modp1536,
        Group::Group14 => DhGroup::Modp2048,
        Group::Group15 => DhGroup::Modp3072,
        Group::Group16 => DhGroup::Modp4096,
        Group::Group17 => DhGroup::Modp6144,
        Group::Group18 => DhGroup::Modp8192,
        Group::Group19 => DhGroup::Ecp256,
        Group::Group20 => DhGroup::Ecp384,
        Group::Group21 => DhGroup::Ecp521,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[daemon]
local-addresses = ["192.0.2.11"]
retransmit-seconds = [0, 1, 2]

[main-mode]
lifetime-minutes = 60
quick-modes-per-main-mode = 5
methods = [
  { encryption = "aes256", integrity = "sha256", dh-group = "group19" },
  { encryption = "3des", integrity = "sha1", dh-group = "group2" },
]

[[peers]]
name = "h2"
address = "192.0.2.12"
preshared-key = "very secret"

[[peers]]
name = "roamers"
address = "any"
preshared-key = "other secret"
identity = "fqdn:roamer.example"

[[connections]]
name = "h1-h2"
peer = "h2"
pfs = "group14"
methods = [
  { esp = { encryption = "aes128", integrity = "sha1" }, lifetime-seconds = 600, lifetime-kb = 0 },
  { esp = { encryption = "3des", integrity = "md5" } },
]

[[connections]]
name = "net"
peer = "h2"
mode = "tunnel"
start = "initiate"
local-subnet = "198.51.100.1"
remote-subnet = "198.51.100.0/24"
methods = [ { esp = { encryption = "aes256", integrity = "sha256" } } ]

[[connections]]
name = "any"
peer = "roamers"
start = "respond"
methods = [ { ah = "sha1" } ]
"#;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/etc/ikd.conf"))
    }

    fn err(text: &str) -> String {
        match p(text) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn external(text: &str) -> String {
        text.replace("[daemon]\n", "[daemon]\npolicies = \"external\"\n")
    }

    #[test]
    fn kernel_none_needs_external_policies() {
        let none = GOOD.replace("[daemon]\n", "[daemon]\nkernel = \"none\"\n");
        assert!(err(&none).contains("daemon.kernel"), "{}", err(&none));
        assert_eq!(
            p(&external(&none)).expect("valid").kernel,
            KernelBackend::None
        );
        let memory = external(&GOOD.replace("[daemon]\n", "[daemon]\nkernel = \"memory\"\n"));
        assert_eq!(p(&memory).expect("valid").kernel, KernelBackend::None);
    }

    #[test]
    fn parses_a_full_file() {
        let c = p(&external(GOOD)).expect("valid");
        assert_eq!(c.kernel, KernelBackend::Xfrm);
        assert_eq!(c.policies, PolicyMode::External);
        let ep = &c.endpoint;
        assert_eq!(ep.main_mode_proposals.len(), 2);
        let mm = ep.main_mode_proposals[0];
        assert_eq!(mm.encryption, CipherAlgorithm::Aes256Cbc);
        assert_eq!(mm.hash, HashAlgorithm::Sha2_256);
        assert_eq!(mm.group, DhGroup::Ecp256);
        assert_eq!(mm.lifetime, Duration::from_secs(3600));
        assert_eq!(mm.quick_modes_per_main_mode, Some(5));
        assert_eq!(ep.retransmit.intervals.len(), 3);
        assert_eq!(ep.peers.len(), 2);
        assert_eq!(ep.peers[0].local, Some("192.0.2.11".parse().unwrap()));
        assert_eq!(ep.peers[1].address, PeerAddress::Any);
        assert_eq!(
            ep.peers[1].identity,
            Some(Identity::Fqdn("roamer.example".into()))
        );
        assert_eq!(ep.children.len(), 3);
        let ch = &ep.children[0];
        assert_eq!(ch.proposals.len(), 2);
        assert_eq!(ch.proposals[0].pfs, Some(DhGroup::Modp2048));
        assert_eq!(ch.proposals[0].lifetime_seconds, 600);
        assert_eq!(ch.proposals[0].lifetime_kilobytes, None);
        assert_eq!(ch.proposals[1].lifetime_kilobytes, Some(100_000));
        let ts = ch.selector.expect("host-to-host selector");
        assert!(ts.local.is_host() && ts.remote.is_host());
        let tun = &c.connections[1];
        assert_eq!(tun.mode, EncapsulationMode::Tunnel);
        assert_eq!(tun.start, StartMode::Initiate);
        assert_eq!(tun.reqid, DEFAULT_REQID_BASE + 1);
        assert_eq!(tun.selector.expect("selector").remote.prefix_len, 24);
        let ah = &c.connections[2];
        assert_eq!(ah.protocol, IpsecProtocol::Ah);
        assert_eq!(ah.remote, None);
        assert_eq!(ah.selector, None);
    }

    #[test]
    fn offload_is_per_connection_and_off_by_default() {
        let c = p(&external(GOOD)).expect("valid");
        assert!(c.connections.iter().all(|c| !c.offload));
        let on = external(GOOD).replacen(
            "peer = \"h2\"\npfs",
            "peer = \"h2\"\noffload = true\npfs",
            1,
        );
        let c = p(&on).expect("valid");
        assert_eq!(
            c.connections.iter().map(|c| c.offload).collect::<Vec<_>>(),
            [true, false, false]
        );
        let e = err(&external(GOOD).replacen(
            "peer = \"h2\"\npfs",
            "peer = \"h2\"\noffload = \"yes\"\npfs",
            1,
        ));
        assert!(e.contains("offload"), "{e}");
    }

    #[test]
    fn aes_gcm_is_an_esp_cipher_without_integrity() {
        let gcm = external(GOOD).replacen(
            "{ esp = { encryption = \"aes256\", integrity = \"sha256\" } }",
            "{ esp = { encryption = \"aes256gcm16\" } }",
            1,
        );
        let c = p(&gcm).expect("valid");
        let t = &c.endpoint.children[1].proposals[0].transforms[0];
        assert_eq!(
            (t.encryption, t.integrity),
            (Some(EspCipher::AesGcm256), None)
        );
        let e = err(&external(GOOD).replacen(
            "{ esp = { encryption = \"aes256\", integrity = \"sha256\" } }",
            "{ esp = { encryption = \"aes128gcm16\", integrity = \"sha256\" } }",
            1,
        ));
        assert!(e.contains("AEAD"), "{e}");
        let e = err(&external(GOOD).replacen(
            "encryption = \"aes256\", integrity = \"sha256\", dh-group",
            "encryption = \"aes128gcm16\", integrity = \"sha256\", dh-group",
            1,
        ));
        assert!(e.contains("ESP only"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = p(&external(GOOD)).expect("valid");
        let text = format!("{c:?}");
        assert!(!text.contains("very secret"), "{text}");
        assert!(!text.contains("other secret"), "{text}");
    }

    #[test]
    fn install_needs_fixed_peers() {
        let e = err(GOOD);
        assert!(
            e.contains("connections[2]") && e.contains("external"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = err(&external(GOOD).replace("lifetime-seconds = 600", "lifetime-seconds = 5"));
        assert!(
            e.starts_with("/etc/ikd.conf: connections[0].methods[0].lifetime-seconds:"),
            "{e}"
        );
        let e = err(&external(GOOD).replace("group19", "group99"));
        assert!(
            e.starts_with("/etc/ikd.conf:") && e.contains("group99"),
            "{e}"
        );
        let e = err(&external(GOOD).replace("peer = \"roamers\"", "peer = \"nobody\""));
        assert!(
            e.contains("connections[2].peer") && e.contains("nobody"),
            "{e}"
        );
        let e = err(&external(GOOD).replace("\"very secret\"", "\"\""));
        assert!(
            e.contains("peers[0].preshared-key: must not be empty"),
            "{e}"
        );
        let e = err(&external(GOOD).replace("retransmit-seconds", "retransmit-secs"));
        assert!(e.contains("retransmit-secs"), "{e}");
        let e = err(&external(GOOD).replace(
            "{ ah = \"sha1\" }",
            "{ ah = \"sha1\", esp = { encryption = \"3des\" } }",
        ));
        assert!(
            e.contains("connections[2].methods[0]") && e.contains("bundle"),
            "{e}"
        );
        let e = err(&external(GOOD).replace("name = \"net\"", "name = \"h1-h2\""));
        assert!(e.contains("connections[1].name"), "{e}");
        let e = err(&external(GOOD).replace("remote-subnet = \"198.51.100.0/24\"", ""));
        assert!(e.contains("connections[1]") && e.contains("tunnel"), "{e}");
        let e = err(&external(GOOD).replace("start = \"respond\"", "start = \"acquire\""));
        assert!(e.contains("connections[2].start"), "{e}");
        let e = err(&external(GOOD).replace("peer = \"h2\"\npfs", "peer = \"h2\"\nreqid = 5\npfs"));
        assert!(e.contains("connections[0].reqid"), "{e}");
        let e = err(&external(GOOD).replace("\"198.51.100.0/24\"", "\"198.51.100.0/33\""));
        assert!(e.contains("connections[1].remote-subnet"), "{e}");
        let e = err("[main-mode]\nmethods = []\n");
        assert!(e.contains("main-mode.methods"), "{e}");
        let e = err("not toml at all [");
        assert!(e.starts_with("/etc/ikd.conf: line 1: "), "{e}");
        // A syntax error on a key's line names the line, never its text.
        let e = err(&external(GOOD).replacen("preshared-key = \"", "preshared-key = \"\n", 1));
        assert!(e.contains("line "), "{e}");
        assert!(!e.contains("preshared-key"), "{e}");
    }

    #[test]
    fn refuses_files_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ikd-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ikd.conf");
        std::fs::write(&path, external(GOOD)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).is_ok());
        let e = load(&dir.join("missing.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.conf: cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ikd.conf");
        let text = std::fs::read_to_string(&path).unwrap();
        p(&text).unwrap();
    }
}
