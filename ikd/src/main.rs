//! ikd: the IKEv1 keying daemon (main mode, quick mode, informational exchanges with
//! preshared keys), modelled on Windows Server 2003's IKE module.
//!
//! This file is the event loop: a single thread polls the IKE sockets, the kernel's event
//! socket and a signalfd, with the engine's next timer as the poll timeout, feeds what
//! arrives to the sans-IO [`ikengine::Endpoint`], and carries out what the engine asks
//! (datagrams to send, SPIs to reserve, SA pairs to install, SAs to delete, events to log).
//! The protocol lives in the engine, the file format in [`config`], the engine↔kernel
//! mapping in [`convert`], kernel bookkeeping in [`kernel`] and the sockets in [`net`].
//!
//! Its state (ISAKMP SAs, SA pairs, counters) is served on a root-only control socket
//! ([`control`], `ipsec-control(7)`), `/run/ipsec/ikd.sock` unless `--control` or
//! `--no-control` says otherwise.
//!
//! Settings change live: policyd's `configure` request on the control socket, or SIGHUP
//! (re-reading the configuration file), go through the start-up parser and
//! [`Daemon::apply_config`], which hands the engine the new configuration with
//! [`Endpoint::reconfigure`] (SAs the new settings still cover stay) and adjusts what the
//! daemon keeps per connection: reqids, kernel policies (`policies = "install"`), the
//! listening sockets, connections to initiate.
//!
//! What it does not do (yet): NAT-T port floating, a pid file, or daemonizing (it runs in
//! the foreground under a service manager).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ikengine::{
    Action, ChildName, Endpoint, Event, FailureReason, KernelEvent, Path, ReconfigureReport,
    SpiAllocationFailed,
};
use ipsec_control::{ConfigText, ErrorCode, Request, Response};
use tracing::{debug, error, info, warn};

mod bench;
mod config;
mod control;
mod convert;
mod dynamic;
mod fallback;
mod kernel;
mod lookup;
mod net;
mod offload;
mod route;

use bench::{Bench, BenchArgs};
use config::{Config, KernelBackend, PolicyMode, StartMode};
use kernel::Kernel;
use net::{IkeSocket, Signals};

const USAGE: &str = "usage: ikd [--config FILE] [--control SOCKET | --no-control] [--policyd SOCKET]\n       (defaults /etc/ikd.conf, /run/ipsec/ikd.sock)\n       ikd --check-config FILE\n       ikd --config FILE --bench-initiate N [--inflight K] --connection NAME\n       ikd --version";
const DEFAULT_CONFIG: &str = "/etc/ikd.conf";
/// The non-ESP marker in front of IKE on port 4500 (RFC 3948 §2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];
const NAT_T_PORT: u16 = 4500;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config_path = PathBuf::from(DEFAULT_CONFIG);
    let mut check_only = false;
    let mut policyd_path: Option<PathBuf> = None;
    let mut control_path =
        Some(PathBuf::from(ipsec_control::DEFAULT_DIR).join(ipsec_control::IKD_SOCKET));
    let (mut bench_setups, mut bench_inflight, mut bench_connection) = (None, 1u32, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench-initiate" | "--inflight" | "--connection" => {
                let Some(v) = it.next() else {
                    eprintln!("ikd: {a} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                if a == "--connection" {
                    bench_connection = Some(v.clone());
                    continue;
                }
                match v.parse::<u32>() {
                    Ok(n) if n > 0 && a == "--bench-initiate" => bench_setups = Some(n),
                    Ok(n) if n > 0 => bench_inflight = n,
                    _ => {
                        eprintln!("ikd: {a} needs a positive number, not {v:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--no-control" => control_path = None,
            "--policyd" => match it.next() {
                Some(p) => policyd_path = Some(PathBuf::from(p)),
                None => {
                    eprintln!("ikd: --policyd needs a socket path\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--control" => match it.next() {
                Some(p) => control_path = Some(PathBuf::from(p)),
                None => {
                    eprintln!("ikd: --control needs a socket path\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--config" | "-c" | "--check-config" => {
                check_only |= a == "--check-config";
                match it.next() {
                    Some(p) => config_path = PathBuf::from(p),
                    None => {
                        eprintln!("ikd: {a} needs a file\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--version" | "-V" => {
                println!("ikd {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("ikd: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ikd: {e}");
            return ExitCode::from(1);
        }
    };
    if check_only {
        println!(
            "{}: OK ({} main-mode methods, {} peers, {} connections)",
            config_path.display(),
            config.endpoint.main_mode_proposals.len(),
            config.endpoint.peers.len(),
            config.connections.len()
        );
        return ExitCode::SUCCESS;
    }
    let bench = match (bench_setups, bench_connection) {
        (None, None) => None,
        (Some(setups), Some(connection)) => {
            if !config.connections.iter().any(|c| c.name == connection) {
                eprintln!(
                    "ikd: --connection {connection:?} is not in {}",
                    config_path.display()
                );
                return ExitCode::from(2);
            }
            Some(BenchArgs {
                setups,
                inflight: bench_inflight,
                connection,
            })
        }
        _ => {
            eprintln!("ikd: --bench-initiate and --connection go together\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // The benchmark is a one-shot client run: no control socket.
    let control_path = control_path.filter(|_| bench.is_none());
    match run(config, bench, control_path, policyd_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Everything the loop owns.
struct Daemon {
    config: Config,
    endpoint: Endpoint,
    kernel: Kernel,
    sockets: Vec<IkeSocket>,
    signals: Signals,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    reqids: HashMap<ChildName, u32>,
    rate_limited: u64,
    bench: Option<Bench>,
    control: Option<control::Control>,
    fallback: Option<fallback::FallBack>,
    dynamic: Option<dynamic::Dynamic>,
    lookups: lookup::Lookups,
    /// Offload requests and outcomes per SA (`offload.rs`).
    offload: offload::Offload,
}

fn run(
    mut config: Config,
    bench: Option<BenchArgs>,
    control_path: Option<PathBuf>,
    policyd_path: Option<PathBuf>,
) -> Result<(), String> {
    if config.kernel == KernelBackend::None {
        warn!("kernel = \"none\": SAs are kept in memory only, NO traffic is protected (benchmark/test backend)");
    }
    if bench.is_some() && config.endpoint.initial_contact {
        // The responder would answer INITIAL-CONTACT on one setup by dropping the others.
        info!("benchmark: INITIAL-CONTACT turned off");
        Arc::make_mut(&mut config.endpoint).initial_contact = false;
    }
    // Signals first, so a SIGTERM during start-up is not lost.
    let signals = Signals::open().map_err(|e| format!("signalfd: {e}"))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("OS random generator: {e}"))?;
    let endpoint = Endpoint::new(
        Arc::clone(&config.endpoint),
        Arc::new(ikecrypto::RustCryptoProvider::new()),
        seed,
    );
    zeroize::Zeroize::zeroize(&mut seed);
    let mut kernel = Kernel::open(config.kernel)
        .map_err(|e| format!("kernel interface ({:?}): {e}", config.kernel))?;
    let sockets = open_sockets(&config.local_addresses)?;
    let limiter = rate_limiter(config.responder_rate);
    let reqids = reqid_map(&config.connections);
    if config.policies == PolicyMode::Install {
        match kernel.install_policies(&config.connections) {
            Ok(n) => info!(policies = n, "protect policies installed"),
            Err(e) => {
                let c = kernel.cleanup();
                return Err(format!(
                    "cannot install policies: {e} (removed again: {} policies)",
                    c.policies
                ));
            }
        }
    }
    info!(
        config = %config.path.display(),
        kernel = kernel.backend_name(),
        sockets = ?sockets.iter().map(|s| s.local).collect::<Vec<_>>(),
        peers = config.endpoint.peers.len(),
        connections = config.connections.len(),
        "ikd started"
    );
    let mut d = Daemon {
        config,
        endpoint,
        kernel,
        sockets,
        signals,
        limiter,
        reqids,
        rate_limited: 0,
        bench: None,
        control: control_path.and_then(|p| control::Control::open(&p, Instant::now())),
        fallback: policyd_path.clone().map(fallback::FallBack::new),
        dynamic: policyd_path.clone().map(dynamic::Dynamic::new),
        lookups: lookup::Lookups::new(policyd_path)
            .map_err(|e| format!("policy lookup wake-up socket: {e}"))?,
        offload: offload::Offload::default(),
    };
    let now = Instant::now();
    if let Some(args) = &bench {
        info!(setups = args.setups, inflight = args.inflight, connection = %args.connection, "benchmark");
        d.bench = Some(Bench::new(args, now));
        let result = d.event_loop();
        let b = d.bench.take();
        let s = d.endpoint.statistics();
        let (mm, qm) = (s.main_modes_started, s.quick_modes_completed);
        if let (Ok(()), Some(b)) = (&result, &b) {
            println!("{}", b.report(mm, qm));
            // Before the deletes: lets an observer read the peer's CPU time for the setups
            // alone (tests/interop/bench-ikd-vs-charon).
            std::thread::sleep(bench::REPORT_PAUSE);
        }
        d.shutdown();
        result?;
        let Some(b) = b else { return Ok(()) };
        return match b.missing() {
            0 => Ok(()),
            f => Err(format!(
                "benchmark: {f} of {} setups not established",
                b.total
            )),
        };
    }
    let initiate: Vec<String> = d
        .config
        .connections
        .iter()
        .filter(|c| c.start == StartMode::Initiate)
        .map(|c| c.name.clone())
        .collect();
    for name in initiate {
        info!(connection = %name, "initiating at start");
        if let Err(e) = d.endpoint.initiate(now, &ChildName::from(name.as_str())) {
            warn!(connection = %name, error = %e, "cannot initiate");
        }
    }
    let result = d.event_loop();
    d.shutdown();
    result
}

/// The per-peer limiter of new responder main modes (`None`: unlimited).
fn rate_limiter(rate: (u32, u32)) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    match rate {
        (0, _) => None,
        (rate, burst) => {
            let quota = NonZeroU32::new(rate)
                .map(|r| Quota::per_second(r).allow_burst(NonZeroU32::new(burst).unwrap_or(r)));
            quota.map(RateLimiter::keyed)
        }
    }
}

fn reqid_map(connections: &[config::Connection]) -> HashMap<ChildName, u32> {
    connections
        .iter()
        .map(|c| (ChildName::from(c.name.as_str()), c.reqid))
        .collect()
}

fn open_sockets(addresses: &[IpAddr]) -> Result<Vec<IkeSocket>, String> {
    let wildcard = addresses.is_empty();
    let addrs: Vec<IpAddr> = if wildcard {
        vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]
    } else {
        addresses.to_vec()
    };
    let mut sockets = Vec::new();
    for a in addrs {
        for port in [500, NAT_T_PORT] {
            match IkeSocket::open(SocketAddr::new(a, port), port == NAT_T_PORT) {
                Ok(s) => sockets.push(s),
                // A host without IPv6 still runs on IPv4 with the wildcard.
                Err(e) if wildcard && a.is_ipv6() => {
                    warn!(error = %e, "no IPv6 IKE socket");
                    break;
                }
                Err(e) => return Err(format!("IKE socket {a} port {port}: {e}")),
            }
        }
    }
    Ok(sockets)
}

/// Whether a datagram starts a new responder main mode (zero responder cookie, identity
/// protection, message ID 0).
fn is_new_main_mode(datagram: &[u8]) -> bool {
    datagram.len() >= 28
        && datagram[8..16].iter().all(|b| *b == 0)
        && datagram[18] == 2
        && datagram[20..24].iter().all(|b| *b == 0)
}

impl Daemon {
    fn event_loop(&mut self) -> Result<(), String> {
        let mut buf = vec![0u8; 65536];
        let mut last_cleanup = Instant::now();
        loop {
            self.drain(Instant::now());
            if self.bench_step() {
                return Ok(());
            }
            let now = Instant::now();
            let deadline = self.endpoint.poll_timeout();
            let fallback_at = self
                .fallback
                .as_ref()
                .and_then(fallback::FallBack::deadline);
            let wake = [deadline, fallback_at, self.lookups.deadline()]
                .into_iter()
                .flatten()
                .min();
            let mut timeout = wake.map(|t| t.saturating_duration_since(now));
            if self.bench.is_some() {
                // Wake up now and then to notice a stalled run.
                timeout =
                    Some(timeout.map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1))));
            }
            let mut fds: Vec<_> = self.sockets.iter().map(IkeSocket::raw_fd).collect();
            fds.push(self.kernel.events_fd());
            let control_at = self.control.as_ref().map(|c| {
                fds.push(c.raw_fd());
                fds.len() - 1
            });
            fds.push(self.lookups.raw_fd());
            fds.push(self.signals.raw_fd());
            let ready = net::poll_readable(&fds, timeout).map_err(|e| format!("poll: {e}"))?;
            let now = Instant::now();
            if ready.last() == Some(&true) {
                while let Some(sig) = self.signals.read() {
                    if sig == libc::SIGHUP as u32 {
                        self.reload(now);
                        continue;
                    }
                    info!(signal = sig, "shutting down");
                    return Ok(());
                }
            }
            for i in 0..self.sockets.len() {
                if ready.get(i) == Some(&true) {
                    self.receive(i, &mut buf, now);
                }
            }
            if ready.get(self.sockets.len()) == Some(&true) {
                self.kernel_events(now);
            }
            if let Some(i) = control_at {
                if ready.get(i) == Some(&true) {
                    if let Some(c) = self.control.take() {
                        let started = c.started();
                        c.serve(|req| self.control_request(req, started));
                        self.control = Some(c);
                    }
                }
            }
            // policyd's verdicts (and lookups out of budget), whatever woke us.
            for (request, answer) in self.lookups.ready(Instant::now()) {
                self.endpoint
                    .handle_policy_answer(Instant::now(), request, answer);
                self.drain(Instant::now());
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                self.endpoint.handle_timeout(Instant::now());
            }
            if let Some(f) = &mut self.fallback {
                f.due(Instant::now(), &self.endpoint);
            }
            if let Some(d) = &mut self.dynamic {
                d.sweep(&self.endpoint);
            }
            if now.duration_since(last_cleanup) > Duration::from_secs(60) {
                if let Some(l) = &self.limiter {
                    l.retain_recent();
                }
                last_cleanup = now;
            }
        }
    }

    /// Answers one control request.
    fn control_request(&mut self, req: &Request, started: Instant) -> Response {
        match req {
            Request::Configure { generation, config } => self.configure(*generation, config),
            other => {
                let view = self.offload_view();
                control::answer(
                    other,
                    &self.endpoint,
                    self.rate_limited,
                    &view,
                    started,
                    Instant::now(),
                )
            }
        }
    }

    /// policyd's `configure`: the text is parsed like the file at start-up; a parse or
    /// validation error changes nothing. The text is never logged.
    fn configure(&mut self, generation: u64, text: &ConfigText) -> Response {
        let now = Instant::now();
        let parsed = config::parse(text.as_str(), std::path::Path::new("configure"));
        let new = match parsed {
            Ok(c) => c,
            Err(e) => {
                warn!(generation, error = %e, "configure refused: invalid configuration");
                return Response::Error {
                    code: ErrorCode::InvalidConfiguration,
                    message: e.to_string(),
                };
            }
        };
        let r = self.apply_config(now, new);
        self.drain(now);
        match r {
            Ok(rep) => {
                info!(
                    generation,
                    isakmp_sas_kept = rep.isakmp_sas_kept,
                    isakmp_sas_deleted = rep.isakmp_sas_deleted,
                    sa_pairs_kept = rep.children_kept,
                    sa_pairs_deleted = rep.children_deleted,
                    exchanges_abandoned = rep.exchanges_abandoned,
                    "configuration applied (control socket)"
                );
                Response::Configured {
                    generation,
                    isakmp_sas_kept: rep.isakmp_sas_kept as u64,
                    isakmp_sas_deleted: rep.isakmp_sas_deleted as u64,
                    sa_pairs_kept: rep.children_kept as u64,
                    sa_pairs_deleted: rep.children_deleted as u64,
                    exchanges_abandoned: rep.exchanges_abandoned as u64,
                }
            }
            Err(e) => {
                warn!(generation, error = %e, "configure refused");
                Response::Error {
                    code: ErrorCode::Failed,
                    message: e,
                }
            }
        }
    }

    /// SIGHUP: re-reads the configuration file through the same path as `configure`.
    fn reload(&mut self, now: Instant) {
        let path = self.config.path.clone();
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "SIGHUP: configuration not reloaded");
                return;
            }
        };
        let r = self.apply_config(now, new);
        self.drain(now);
        match r {
            Ok(rep) => info!(
                config = %path.display(),
                isakmp_sas_kept = rep.isakmp_sas_kept,
                isakmp_sas_deleted = rep.isakmp_sas_deleted,
                sa_pairs_kept = rep.children_kept,
                sa_pairs_deleted = rep.children_deleted,
                exchanges_abandoned = rep.exchanges_abandoned,
                "configuration reloaded (SIGHUP)"
            ),
            Err(e) => warn!(error = %e, "SIGHUP: configuration not reloaded"),
        }
    }

    /// Puts a new, validated configuration in force without a restart: the kernel backend
    /// and the policy mode cannot change (an error, nothing changed); listening sockets are
    /// reopened if the addresses changed (on failure the old ones are restored and nothing
    /// else changes); kernel policies of removed or changed connections are replaced
    /// (`policies = "install"`); the engine keeps the SAs the new configuration covers. A
    /// connection whose reqid changed loses its SAs (they carry the old reqid) and is
    /// negotiated afresh. New `start = "initiate"` connections are initiated.
    fn apply_config(&mut self, now: Instant, mut new: Config) -> Result<ReconfigureReport, String> {
        if new.kernel != self.config.kernel {
            return Err(format!(
                "kernel = {:?} cannot change while ikd runs ({:?}): restart ikd",
                new.kernel, self.config.kernel
            ));
        }
        if new.policies != self.config.policies {
            return Err(format!(
                "policies = {:?} cannot change while ikd runs ({:?}): restart ikd",
                new.policies, self.config.policies
            ));
        }
        if new.local_addresses != self.config.local_addresses {
            // Same addresses cannot be bound twice: close, open, or restore.
            self.sockets.clear();
            match open_sockets(&new.local_addresses) {
                Ok(s) => {
                    info!(sockets = ?s.iter().map(|s| s.local).collect::<Vec<_>>(), "IKE sockets reopened");
                    self.sockets = s;
                }
                Err(e) => {
                    self.sockets =
                        open_sockets(&self.config.local_addresses).unwrap_or_else(|e2| {
                            error!(error = %e2, "old IKE sockets not reopened either");
                            Vec::new()
                        });
                    return Err(e);
                }
            }
        }
        if self.config.policies == PolicyMode::Install {
            let (removed, installed) = self
                .kernel
                .replace_policies(&self.config.connections, &new.connections)
                .map_err(|e| format!("kernel policies: {e}"))?;
            if removed + installed > 0 {
                info!(removed, installed, "protect policies updated");
            }
        }
        // SAs of a connection whose reqid changed carry the old one: drop them first.
        let moved: Vec<&str> = new
            .connections
            .iter()
            .filter(|c| {
                self.reqids
                    .get(&ChildName::from(c.name.as_str()))
                    .is_some_and(|r| *r != c.reqid)
            })
            .map(|c| c.name.as_str())
            .collect();
        let mut report = ReconfigureReport::default();
        if !moved.is_empty() {
            let mut without = (*new.endpoint).clone();
            without
                .children
                .retain(|c| !moved.contains(&c.name.0.as_str()));
            report = self.endpoint.reconfigure(now, Arc::new(without));
        }
        let second = self.endpoint.reconfigure(now, Arc::clone(&new.endpoint));
        report.isakmp_sas_kept = second.isakmp_sas_kept;
        report.isakmp_sas_deleted += second.isakmp_sas_deleted;
        report.children_deleted += second.children_deleted;
        report.children_kept = second.children_kept;
        report.exchanges_abandoned += second.exchanges_abandoned;
        self.reqids = reqid_map(&new.connections);
        if new.responder_rate != self.config.responder_rate {
            self.limiter = rate_limiter(new.responder_rate);
        }
        let initiate: Vec<String> = new
            .connections
            .iter()
            .filter(|c| {
                c.start == StartMode::Initiate
                    && !self.config.connections.iter().any(|o| o.name == c.name)
            })
            .map(|c| c.name.clone())
            .collect();
        new.path = self.config.path.clone();
        self.config = new;
        for name in initiate {
            info!(connection = %name, "initiating new connection");
            if let Err(e) = self.endpoint.initiate(now, &ChildName::from(name.as_str())) {
                warn!(connection = %name, error = %e, "cannot initiate");
            }
        }
        Ok(report)
    }

    /// Benchmark mode: starts setups up to the in-flight limit; true when all have ended.
    fn bench_step(&mut self) -> bool {
        loop {
            let now = Instant::now();
            let Some(b) = &mut self.bench else {
                return false;
            };
            if b.done(now) {
                return true;
            }
            if !b.take_start(now) {
                return false;
            }
            let child = b.child.clone();
            if let Err(e) = self.endpoint.initiate_new_main_mode(now, &child) {
                error!(connection = %child, error = %e, "benchmark: cannot initiate");
                if let Some(b) = &mut self.bench {
                    b.finished(now, false);
                }
            }
            self.drain(now);
        }
    }

    fn bench_finished(&mut self, now: Instant, child: Option<&ChildName>, ok: bool) {
        if let Some(b) = &mut self.bench {
            if child.is_none_or(|c| *c == b.child) {
                b.finished(now, ok);
            }
        }
    }

    fn receive(&mut self, i: usize, buf: &mut [u8], now: Instant) {
        // Bounded so one busy socket cannot starve the others.
        for _ in 0..64 {
            let Some(sock) = self.sockets.get(i) else {
                return;
            };
            let port = sock.local.port();
            let (n, remote, local_ip) = match sock.recv(buf) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    debug!(socket = %sock.local, error = %e, "receive failed");
                    continue;
                }
            };
            let Some(mut datagram) = buf.get(..n) else {
                continue;
            };
            if port == NAT_T_PORT {
                if datagram == [0xff] {
                    debug!(%remote, "NAT-T keepalive");
                    continue;
                }
                match datagram.strip_prefix(&NON_ESP_MARKER) {
                    Some(rest) => datagram = rest,
                    None => {
                        debug!(%remote, "non-IKE datagram on port 4500 dropped");
                        continue;
                    }
                }
            }
            if is_new_main_mode(datagram) {
                if let Some(l) = &self.limiter {
                    if l.check_key(&remote.ip()).is_err() {
                        self.rate_limited += 1;
                        debug!(%remote, dropped = self.rate_limited, "new main mode over the per-peer rate, dropped");
                        continue;
                    }
                }
            }
            let path = Path {
                local: SocketAddr::new(local_ip, port),
                remote,
            };
            self.endpoint.handle_datagram(now, path, datagram);
            self.drain(now);
        }
    }

    fn kernel_events(&mut self, now: Instant) {
        for _ in 0..256 {
            let ev = match self.kernel.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "kernel event socket");
                    return;
                }
            };
            if let pfkey::KernelEvent::Expire(x) = &ev {
                if x.hard {
                    self.kernel.forget_sa(&x.id);
                    self.offload.removed(&x.id, None);
                }
            }
            let owns = |r: u32| self.kernel.owns_reqid(r);
            let Some(e) = convert::kernel_event(&ev, owns) else {
                debug!(event = ?ev, "kernel event ignored");
                continue;
            };
            match &e {
                KernelEvent::Acquire {
                    local,
                    remote,
                    selector,
                } => {
                    info!(%local, %remote, ?selector, "ACQUIRE");
                    if let Some(f) = &mut self.fallback {
                        f.acquire(now, *local, *remote);
                    }
                }
                KernelEvent::Expire {
                    spi,
                    destination,
                    hard,
                    ..
                } => info!(spi = %format_args!("{spi:08x}"), %destination, hard, "EXPIRE"),
                _ => {}
            }
            self.endpoint.handle_kernel_event(now, e);
            self.drain(now);
        }
    }

    /// Sends every queued datagram and carries out every queued action, until both queues
    /// are empty (answering an SPI request can queue more).
    fn drain(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.endpoint.poll_transmit() {
                self.transmit(&t.path, &t.contents);
            }
            let Some(action) = self.endpoint.poll_action() else {
                return;
            };
            self.act(now, action);
        }
    }

    fn transmit(&self, path: &Path, contents: &[u8]) {
        let port = path.local.port();
        let sock = self
            .sockets
            .iter()
            .find(|s| s.local.port() == port && s.local.ip() == path.local.ip())
            .or_else(|| {
                self.sockets.iter().find(|s| {
                    s.local.port() == port
                        && s.local.ip().is_unspecified()
                        && s.local.is_ipv4() == path.local.is_ipv4()
                })
            });
        let Some(sock) = sock else {
            warn!(local = %path.local, remote = %path.remote, "no socket to send from");
            return;
        };
        let r = if port == NAT_T_PORT {
            let mut v = Vec::with_capacity(contents.len() + 4);
            v.extend_from_slice(&NON_ESP_MARKER);
            v.extend_from_slice(contents);
            sock.send(&v, path.remote, path.local.ip())
        } else {
            sock.send(contents, path.remote, path.local.ip())
        };
        if let Err(e) = r {
            warn!(local = %path.local, remote = %path.remote, error = %e, "send failed");
        }
    }

    fn act(&mut self, now: Instant, action: Action) {
        match action {
            Action::AllocSpi {
                request,
                protocol,
                source,
                destination,
            } => {
                let r = self
                    .kernel
                    .allocate_spi(protocol, source, destination)
                    .map_err(|e| {
                        warn!(%source, %destination, error = %e, "SPI allocation failed");
                        SpiAllocationFailed(e.to_string())
                    });
                self.endpoint.handle_spi_allocated(now, request, r);
            }
            Action::LookupPolicy {
                request,
                local,
                peer,
                selector,
                peer_identity,
            } => {
                if let Some(answer) =
                    self.lookups
                        .ask(now, request, local, peer, &selector, peer_identity)
                {
                    self.endpoint.handle_policy_answer(now, request, answer);
                }
            }
            Action::InstallSaPair(pair) => {
                let Some(&reqid) = self.reqids.get(&pair.child) else {
                    error!(child = %pair.child, "SA pair for an unknown connection not installed");
                    return;
                };
                let (i, o) = (&pair.inbound, &pair.outbound);
                let algs = format!(
                    "{:?} {:?} {}{}",
                    i.protocol,
                    i.mode,
                    i.encryption
                        .as_ref()
                        .map(|(c, _)| format!("{c:?}-"))
                        .unwrap_or_default(),
                    i.integrity
                        .as_ref()
                        .map(|(a, _)| format!("{a:?}"))
                        .unwrap_or_default(),
                );
                let wanted = self
                    .config
                    .connections
                    .iter()
                    .any(|c| c.name == pair.child.0 && c.offload);
                // The device the peer is reached through (route.rs says why not the device
                // holding our address); looked up for every pair, so a rekey follows a
                // route change.
                let egress = if wanted {
                    route::egress(o.destination, Some(i.destination))
                } else {
                    Err(route::RouteError::NoDevice)
                };
                let name = pair.child.0.as_str();
                let plans = [
                    self.offload.plan(name, wanted, &egress, true),
                    self.offload.plan(name, wanted, &egress, false),
                ];
                let requests = [plans[0].request.clone(), plans[1].request.clone()];
                let installed = self.kernel.install_pair(&pair, reqid, requests);
                self.bench_finished(now, Some(&pair.child), installed.is_ok());
                if let (Ok(_), Some(d)) = (&installed, &mut self.dynamic) {
                    d.installed(&pair, reqid);
                }
                let installed = installed.map(|outcomes| {
                    let [pi, po] = plans;
                    let [oi, oo] = outcomes;
                    let proto = convert::protocol(i.protocol);
                    let ids = [(i, pi, oi), (o, po, oo)].map(|(sa, plan, outcome)| {
                        let id = pfkey::SaId {
                            destination: sa.destination,
                            spi: sa.spi,
                            protocol: proto,
                        };
                        self.offload.record(name, id, plan, &outcome)
                    });
                    ids.map(|r| r.describe())
                });
                match installed {
                    Ok([offload_in, offload_out]) => info!(
                        child = %pair.child,
                        peer = %o.destination,
                        inbound_spi = %format_args!("{:08x}", i.spi),
                        outbound_spi = %format_args!("{:08x}", o.spi),
                        transform = %algs,
                        lifetime_s = i.lifetime.hard_seconds,
                        lifetime_kb = ?i.lifetime.hard_kilobytes,
                        reqid = %format_args!("{reqid:#x}"),
                        offload_in = %offload_in,
                        offload_out = %offload_out,
                        "SA pair installed"
                    ),
                    Err(e) => error!(
                        child = %pair.child,
                        peer = %o.destination,
                        error = %e,
                        "SA pair not installed"
                    ),
                }
            }
            Action::DeleteSa {
                spi,
                protocol,
                destination,
                source,
            } => {
                let id = pfkey::SaId {
                    destination,
                    spi,
                    protocol: convert::protocol(protocol),
                };
                let bytes = if self.offload.is_offloaded(&id) {
                    self.kernel.sa_bytes(&id)
                } else {
                    None
                };
                self.offload.removed(&id, bytes);
                match self.kernel.delete_sa(&id) {
                    Ok(()) => {
                        info!(spi = %format_args!("{spi:08x}"), %source, %destination, "SA deleted")
                    }
                    Err(e) => {
                        warn!(spi = %format_args!("{spi:08x}"), %destination, error = %e, "SA not deleted")
                    }
                }
            }
            Action::Event(e) => {
                log_event(&e);
                if let Event::ExchangeFailed { child, .. } = &e {
                    self.bench_finished(now, child.as_ref(), false);
                }
                if let Event::ExchangeFailed {
                    peer,
                    quick_mode: true,
                    ..
                } = &e
                {
                    let n = self.kernel.drop_larval(peer.ip());
                    if n > 0 {
                        debug!(%peer, spis = n, "unused SPI reservations deleted");
                    }
                }
            }
            other => debug!(action = ?other, "unhandled engine action"),
        }
    }

    /// The offload counters and per-SA records for the control socket: the byte counters
    /// of the offloaded SAs are read from the kernel now.
    fn offload_view(&mut self) -> offload::View {
        let mut live = 0u64;
        for id in self.offload.offloaded() {
            live = live.saturating_add(self.kernel.sa_bytes(&id).unwrap_or(0));
        }
        let by_sa = self
            .endpoint
            .children()
            .into_iter()
            .flat_map(|c| {
                let proto = convert::protocol(c.protocol);
                [(c.local, c.inbound_spi), (c.peer, c.outbound_spi)].map(|(destination, spi)| {
                    pfkey::SaId {
                        destination,
                        spi,
                        protocol: proto,
                    }
                })
            })
            .filter_map(|id| self.offload.get(&id).map(|r| (id, r.describe())))
            .collect();
        offload::View {
            counters: self.offload.counters(live),
            by_sa,
        }
    }

    /// Sends deletes for everything, lets them leave, removes what this process installed.
    fn shutdown(&mut self) {
        let now = Instant::now();
        self.endpoint.delete_all(now);
        self.drain(now);
        // Deletes are sent synchronously; the grace lets the peer's kernel and daemon see
        // them before our SAs vanish (and lets late retransmissions of theirs arrive).
        std::thread::sleep(self.config.shutdown_grace);
        let c = self.kernel.cleanup();
        info!(
            sas = c.sas,
            policies = c.policies,
            errors = c.errors,
            "ikd stopped: owned SAs and policies removed"
        );
    }
}

fn log_event(e: &Event) {
    match e {
        Event::IsakmpSaEstablished { sa, peer, role } => {
            info!(%peer, ?role, sa = sa.0, "main mode established")
        }
        Event::IsakmpSaDeleted { sa, peer } => info!(%peer, sa = sa.0, "ISAKMP SA deleted"),
        Event::ExchangeFailed {
            peer,
            quick_mode,
            child,
            reason,
        } => {
            let reason = match reason {
                FailureReason::Timeout => "no answer (retransmissions exhausted)".to_owned(),
                FailureReason::Stale => "stale (half-open timeout)".to_owned(),
                FailureReason::PeerNotify(n) => format!("peer sent {n}"),
                FailureReason::LocalError(n) => format!("rejected: {n}"),
                FailureReason::SpiAllocation => "SPI allocation failed".to_owned(),
                FailureReason::Reconfigured => "ended by a reconfiguration".to_owned(),
                other => format!("{other:?}"),
            };
            warn!(
                %peer,
                exchange = if *quick_mode { "quick mode" } else { "main mode" },
                child = ?child.as_ref().map(|c| c.0.as_str()),
                %reason,
                "negotiation failed"
            )
        }
        Event::ChildEstablished {
            child,
            peer,
            inbound_spi,
            outbound_spi,
        } => info!(
            %child,
            %peer,
            inbound_spi = %format_args!("{inbound_spi:08x}"),
            outbound_spi = %format_args!("{outbound_spi:08x}"),
            "quick mode established"
        ),
        Event::InitialContact { peer } => info!(%peer, "INITIAL-CONTACT: older SAs dropped"),
        Event::NotifyReceived { peer, notify_type } => {
            info!(%peer, notify = %notify_type, "notify received")
        }
        other => info!(event = ?other, "engine event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_main_mode_detection() {
        let mut d = [0u8; 28];
        d[..8].copy_from_slice(&[1; 8]);
        d[18] = 2;
        assert!(is_new_main_mode(&d));
        d[9] = 1;
        assert!(!is_new_main_mode(&d));
        d[9] = 0;
        d[18] = 32;
        assert!(!is_new_main_mode(&d));
        assert!(!is_new_main_mode(&d[..10]));
    }
}
