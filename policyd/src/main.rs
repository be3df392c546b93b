//! policyd: the IPsec policy agent.
//!
//! `policyd --boot` applies the boot mode early at boot and exits; `policyd` runs the agent:
//! the start-up sequence and the service loop of [`service`], with the effects implemented
//! here (the store opened per transaction, rtnetlink, `nft`, XFRM, the ikd supervisor).
//! `man 8 policyd` documents the options.

mod boot;
mod control;
mod directory;
mod exemptions;
mod ikdconf;
mod interfaces;
mod negotiation;
mod service;
mod supervise;

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipsec_policy::{Location, Store, StoreError};
use pfkey::KernelInterface;

use crate::boot::Firewall;
use crate::service::{Agent, CacheView, Effects, StoreView};
use crate::supervise::Supervisor;

const USAGE: &str = "usage: policyd [--boot] [--store DIR] [--pid-file PATH] [--ikd PATH|--no-ikd]
               [--run-dir DIR] [--control-dir DIR] [--nft PATH] [--poll-interval SECONDS]
               [--directory CONFIG]
       policyd --version | --help";

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    boot: bool,
    store: PathBuf,
    pid_file: PathBuf,
    ikd: Option<PathBuf>,
    no_ikd: bool,
    run_dir: PathBuf,
    control_dir: PathBuf,
    nft: PathBuf,
    poll_interval: Option<Duration>,
    directory: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            boot: false,
            store: ipsec_policy::store::default_dir(),
            pid_file: PathBuf::from("/run/policyd.pid"),
            ikd: None,
            no_ikd: false,
            run_dir: PathBuf::from("/run/policyd"),
            control_dir: PathBuf::from(ipsec_control::DEFAULT_DIR),
            nft: default_nft(),
            poll_interval: None,
            directory: None,
        }
    }
}

fn default_nft() -> PathBuf {
    ["/usr/sbin/nft", "/sbin/nft"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nft"))
}

enum Parsed {
    Run(Options),
    Exit(ExitCode),
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let a = a
            .into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--boot" => o.boot = true,
            "--store" => o.store = value("--store")?.into(),
            "--pid-file" => o.pid_file = value("--pid-file")?.into(),
            "--ikd" => o.ikd = Some(value("--ikd")?.into()),
            "--no-ikd" => o.no_ikd = true,
            "--run-dir" => o.run_dir = value("--run-dir")?.into(),
            "--control-dir" => o.control_dir = value("--control-dir")?.into(),
            "--directory" => o.directory = Some(value("--directory")?.into()),
            "--nft" => o.nft = value("--nft")?.into(),
            "--poll-interval" => {
                let v = value("--poll-interval")?;
                let s = v
                    .to_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|&s| s > 0);
                let s = s.ok_or_else(|| {
                    format!("--poll-interval: {v:?} is not a positive number of seconds")
                })?;
                o.poll_interval = Some(Duration::from_secs(s));
            }
            "--version" | "-V" => {
                println!("policyd {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Parsed::Run(o))
}

/// Runs `nft -f -` with `script` on its standard input.
fn run_nft(nft: &Path, script: &str) -> Result<(), String> {
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", nft.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Opens the store, reads everything the agent needs and closes it; retries for a moment
/// when ipsecadm holds the file.
/// Opens the store and runs `f` on it, retrying for 2 s while another process (ipsecadm)
/// holds it.
fn with_store<T>(dir: &Path, f: impl Fn(&Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        match Store::open(dir).and_then(|s| f(&s)) {
            Err(StoreError::Database { .. }) if attempt < 20 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn read_store(dir: &Path) -> Result<StoreView, StoreError> {
    let cache_dir = dir.to_path_buf();
    with_store(dir, |s| {
        Ok(StoreView {
            settings: s.settings()?,
            local: s.location(Location::Local)?,
            persistent: s.location(Location::Persistent)?,
            // Read when a source asks for it. A corrupt cache is reported and skipped (the
            // local policy applies), never a reason to refuse the whole store.
            cache: {
                let dir = cache_dir.clone();
                CacheView::lazy(move || {
                    with_store(&dir, Store::cache).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "the cached directory policy is corrupt; skipped");
                        None
                    })
                })
            },
        })
    })
}

/// Events of the service loop.
#[derive(Debug)]
enum Event {
    Hangup,
    Terminate,
    Child,
    Interfaces,
    /// A request on the control socket.
    Control(control::Query),
}

struct RealEffects {
    options: Options,
    kernel: Box<dyn KernelInterface>,
    ikd: Option<Supervisor>,
    /// The configuration ikd runs with (it holds preshared keys: zeroized when replaced).
    ikd_config: Option<zeroize::Zeroizing<String>>,
    /// The number of the last `configure` sent to ikd.
    ikd_generation: u64,
    events: mpsc::Sender<Event>,
}

impl RealEffects {
    fn write_ikd_config(&self, config: &str) -> Result<PathBuf, String> {
        let dir = &self.options.run_dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("ikd.conf");
        let tmp = dir.join(".ikd.conf.new");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(config.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

use std::os::unix::fs::DirBuilderExt as _;

impl Effects for RealEffects {
    fn read_store(&mut self) -> Result<StoreView, StoreError> {
        read_store(&self.options.store)
    }

    fn start_interface_manager(&mut self) -> Result<ipsec_policy::InterfaceSnapshot, String> {
        interfaces::watch(self.events.clone(), || Event::Interfaces).map_err(|e| e.to_string())?;
        interfaces::snapshot().map_err(|e| e.to_string())
    }

    fn snapshot(&mut self) -> Result<ipsec_policy::InterfaceSnapshot, String> {
        interfaces::snapshot().map_err(|e| e.to_string())
    }

    fn set_firewall(&mut self, firewall: &Firewall) -> Result<(), String> {
        tracing::info!(?firewall, "boot firewall");
        run_nft(&self.options.nft, &firewall.script())
    }

    fn kernel(&mut self) -> &mut dyn KernelInterface {
        self.kernel.as_mut()
    }

    fn exemptions(
        &mut self,
        level: ipsec_exempt::Level,
    ) -> Option<ipsec_agent::exempt::ExemptEnvironment> {
        Some(exemptions::environment(level))
    }

    fn configure_ikd(&mut self, config: &str) -> Result<(), String> {
        if self.options.no_ikd {
            return Ok(());
        }
        if self.ikd_config.as_deref().map(String::as_str) == Some(config) && self.ikd.is_some() {
            return Ok(());
        }
        // Written for ikd's later (re)starts, whatever happens below.
        let path = self.write_ikd_config(config)?;
        self.ikd_config = Some(zeroize::Zeroizing::new(config.to_owned()));
        if let Some(s) = &mut self.ikd {
            if s.pid().is_none() {
                tracing::info!(
                    "ikd configuration changed while ikd waits to be restarted: the restart reads it"
                );
                return Ok(());
            }
            self.ikd_generation += 1;
            let generation = self.ikd_generation;
            let socket = self.options.control_dir.join(ipsec_control::IKD_SOCKET);
            let started = Instant::now();
            match supervise::configure_live(&socket, generation, config) {
                Ok(summary) => tracing::info!(
                    generation,
                    took_ms = started.elapsed().as_millis() as u64,
                    %summary,
                    "ikd configuration changed: applied live"
                ),
                Err(why) => {
                    tracing::warn!(generation, reason = %why,
                        "ikd configuration changed but ikd did not take it live: restarting ikd");
                    s.stop();
                    s.start();
                }
            }
        } else {
            let program =
                supervise::ikd_program(self.options.ikd.clone(), std::env::current_exe().ok());
            let control = self.options.control_dir.join(ipsec_control::IKD_SOCKET);
            let mut s = Supervisor::new(
                program,
                vec![
                    "--config".into(),
                    path.into_os_string(),
                    "--control".into(),
                    control.into_os_string(),
                    "--policyd".into(),
                    self.options
                        .control_dir
                        .join(ipsec_control::POLICYD_SOCKET)
                        .into_os_string(),
                ],
            );
            s.start();
            self.ikd = Some(s);
        }
        Ok(())
    }

    fn stop_ikd(&mut self) {
        if let Some(s) = &mut self.ikd {
            s.stop();
        }
    }
}

/// After ikd died: removes the SAs in the stack's reqid band. The next ikd does not know
/// them, so it could neither rekey nor delete them, and the peer would keep using keys
/// nobody manages. The kernel policies stay, so the traffic they secure is held (never
/// sent in clear) until the new ikd negotiates again on the next ACQUIRE, with
/// INITIAL-CONTACT, which makes the peer drop its side of the old SAs.
fn remove_orphaned_sas(kernel: &mut dyn KernelInterface) {
    let own = pfkey::Ownership::default();
    let sas = match kernel.dump_sas() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the SAs of the dead ikd");
            return;
        }
    };
    let mut removed = 0;
    for sa in sas.iter().filter(|s| own.owns_sa(s)) {
        match kernel.delete_sa(&sa.id) {
            Ok(()) => removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(spi = %format_args!("{:08x}", sa.id.spi), error = %e,
                "cannot remove an SA of the dead ikd"),
        }
    }
    tracing::info!(
        sas = removed,
        "SAs of the dead ikd removed; the next ikd renegotiates"
    );
}

fn boot_only(o: &Options) -> ExitCode {
    let (fw, ok) = match read_store(&o.store) {
        Ok(v) => (
            Firewall::for_mode(v.settings.boot_mode, &v.settings.boot_exemptions),
            true,
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the store: applying boot mode block");
            (
                Firewall::for_mode(ipsec_policy::settings::BootMode::Block, &[]),
                false,
            )
        }
    };
    match run_nft(&o.nft, &fw.script()) {
        Ok(()) => {
            tracing::info!(?fw, "boot mode applied");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot apply the boot mode");
            ExitCode::from(1)
        }
    }
}

fn write_pid_file(path: &Path) -> Result<(), String> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn run(o: Options) -> ExitCode {
    let (tx, rx) = mpsc::channel();
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGCHLD,
    ]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let stx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let ev = match sig {
                    signal_hook::consts::SIGHUP => Event::Hangup,
                    signal_hook::consts::SIGCHLD => Event::Child,
                    _ => Event::Terminate,
                };
                if stx.send(ev).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the signal thread");
        return ExitCode::from(1);
    }
    if let Err(e) = write_pid_file(&o.pid_file) {
        tracing::error!(error = %e, "cannot write the pid file");
        return ExitCode::from(1);
    }
    // XFRM on Linux; PF_KEY on FreeBSD (type-checked only: see tests/freebsd-check).
    #[cfg(target_os = "linux")]
    let opened = pfkey::xfrm::XfrmKernel::open().map(|k| Box::new(k) as Box<dyn KernelInterface>);
    #[cfg(not(target_os = "linux"))]
    let opened = pfkey::pfkey::PfKeyKernel::open().map(|k| Box::new(k) as Box<dyn KernelInterface>);
    let kernel = match opened {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the kernel interface");
            let _ = std::fs::remove_file(&o.pid_file);
            return ExitCode::from(1);
        }
    };
    let pid_file = o.pid_file.clone();
    let poll_override = o.poll_interval;
    let control_path = o.control_dir.join(ipsec_control::POLICYD_SOCKET);
    // Before ikd starts, so its first question finds the socket.
    let control_ok = match control::start(&control_path, tx.clone(), Event::Control) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "no control socket: ikd cannot report silent peers");
            false
        }
    };
    let mut fx = RealEffects {
        options: o,
        kernel,
        ikd: None,
        ikd_config: None,
        ikd_generation: 0,
        events: tx,
    };
    let run_dir = fx.options.run_dir.clone();
    let dir_state = directory::shared(fx.options.directory.as_deref(), &fx.options.store);
    let mut agent = Agent::new(directory::sources(&dir_state), poll_override);
    agent.start(&mut fx);
    directory::write_status(&run_dir, &agent, &dir_state);
    tracing::info!(state = %agent.state(), mode = ?agent.mode(), "policy agent started");

    let mut next_poll = Instant::now() + agent.polling_interval();
    let mut interfaces_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut deadline = next_poll;
        if let Some(t) = fx.ikd.as_ref().and_then(Supervisor::deadline) {
            deadline = deadline.min(t);
        }
        if let Some(t) = interfaces_at {
            deadline = deadline.min(t);
        }
        let event = rx.recv_timeout(deadline.saturating_duration_since(now));
        match event {
            Ok(Event::Terminate) => break,
            Ok(Event::Hangup) => {
                agent.refresh(&mut fx);
                directory::write_status(&run_dir, &agent, &dir_state);
                next_poll = Instant::now() + agent.polling_interval();
            }
            Ok(Event::Interfaces) => {
                // Debounce: one re-read after a burst of notifications.
                interfaces_at.get_or_insert_with(|| Instant::now() + Duration::from_millis(200));
            }
            Ok(Event::Control(q)) => {
                let _ = q
                    .reply
                    .send(control::answer(&mut agent, &mut fx, &q.request));
            }
            Ok(Event::Child) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let died = fx.ikd.as_mut().is_some_and(|s| {
            s.poll();
            s.take_exited()
        });
        if died {
            remove_orphaned_sas(fx.kernel.as_mut());
            agent.remove_dynamic_filters(&mut fx);
        }
        let now = Instant::now();
        if interfaces_at.is_some_and(|t| now >= t) {
            interfaces_at = None;
            agent.interfaces_changed(&mut fx);
        }
        if now >= next_poll {
            agent.poll(&mut fx);
            directory::write_status(&run_dir, &agent, &dir_state);
            next_poll = Instant::now() + agent.polling_interval();
        }
    }
    tracing::info!("stopping: service stopped by the administrator (operational mode permit)");
    agent.shutdown(&mut fx);
    if control_ok {
        let _ = std::fs::remove_file(&control_path);
    }
    let _ = std::fs::remove_file(&pid_file);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Exit(code)) => return code,
        Err(e) => {
            eprintln!("policyd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.boot {
        boot_only(&options)
    } else {
        run(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Options, String> {
        match parse_args(a.iter().map(OsString::from))? {
            Parsed::Run(o) => Ok(o),
            Parsed::Exit(_) => Err("exit".into()),
        }
    }

    #[test]
    fn options() {
        let o = parse(&[]).expect("defaults");
        assert_eq!(o.pid_file, PathBuf::from("/run/policyd.pid"));
        assert!(!o.boot);
        let o = parse(&[
            "--boot",
            "--store",
            "/s",
            "--pid-file",
            "/p",
            "--ikd",
            "/i",
            "--run-dir",
            "/r",
            "--control-dir",
            "/c",
            "--poll-interval",
            "2",
            "--directory",
            "/etc/ipsec/directory.toml",
        ])
        .expect("all");
        assert!(o.boot);
        assert_eq!(o.store, PathBuf::from("/s"));
        assert_eq!(o.ikd, Some(PathBuf::from("/i")));
        assert_eq!(o.control_dir, PathBuf::from("/c"));
        assert_eq!(o.poll_interval, Some(Duration::from_secs(2)));
        assert_eq!(
            o.directory,
            Some(PathBuf::from("/etc/ipsec/directory.toml"))
        );
        assert!(parse(&["--poll-interval", "0"]).is_err());
        assert!(parse(&["--store"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn store_view_of_a_new_store_has_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = read_store(dir.path()).expect("store");
        assert_eq!(v.settings, ipsec_policy::Settings::default());
        assert_eq!(v.local.assigned, None);
        assert_eq!(v.persistent.assigned, None);
    }
}
