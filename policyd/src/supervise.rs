//! ikd supervision: start it, restart it with exponential backoff when it dies, stop it,
//! and hand it a changed configuration live ([`configure_live`], the `configure` request
//! of `ipsec-control(7)` version 2) instead of restarting it.
//!
//! [`Backoff`] is the pure schedule: the first restart waits 1 s, each further one doubles
//! up to 60 s, and a run that lasted at least 5 minutes resets the schedule. [`Supervisor`]
//! owns the one child process it started and signals only that PID (it never searches for
//! processes by name). The PID cannot be reused while the supervisor holds the unreaped
//! child, so signalling it never hits another process.
#![allow(unsafe_code)] // libc::kill on our own child's PID (see SAFETY below)

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipsec_control::ConfigText;

/// The first restart delay.
pub(crate) const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The longest restart delay.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay to [`INITIAL_DELAY`].
pub(crate) const RESET_AFTER: Duration = Duration::from_secs(300);
/// How long ikd has to exit after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// The restart schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: INITIAL_DELAY,
        }
    }
}

impl Backoff {
    /// The delay before the next start, given how long the run that just ended lasted.
    pub(crate) fn after_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESET_AFTER {
            self.next = INITIAL_DELAY;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

/// What [`Supervisor::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not started (no program, or stopped).
    Idle,
    /// Running with this PID.
    Running(u32),
    /// Waiting to restart at this instant.
    Waiting(Instant),
}

/// The ikd process this agent started.
#[derive(Debug)]
pub(crate) struct Supervisor {
    program: PathBuf,
    args: Vec<OsString>,
    child: Option<(Child, Instant)>,
    restart_at: Option<Instant>,
    backoff: Backoff,
    restarts: u64,
    exited: bool,
}

impl Supervisor {
    /// A supervisor for `program args...` (not started yet).
    pub(crate) fn new(program: PathBuf, args: Vec<OsString>) -> Self {
        Self {
            program,
            args,
            child: None,
            restart_at: None,
            backoff: Backoff::default(),
            restarts: 0,
            exited: false,
        }
    }

    /// How many times the child was restarted after dying.
    #[cfg(test)]
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The running child's PID.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|(c, _)| c.id())
    }

    /// Starts the child now (a start failure schedules a retry like a death would).
    pub(crate) fn start(&mut self) {
        if self.child.is_some() {
            return;
        }
        self.restart_at = None;
        match Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => {
                tracing::info!(program = %self.program.display(), pid = child.id(), "ikd started");
                self.child = Some((child, Instant::now()));
            }
            Err(e) => {
                let delay = self.backoff.after_exit(Duration::ZERO);
                tracing::error!(program = %self.program.display(), error = %e,
                    retry_in_s = delay.as_secs(), "cannot start ikd");
                self.restart_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Reaps a dead child (scheduling its restart) and starts it again when the delay is
    /// over. Call on SIGCHLD and on every loop tick.
    pub(crate) fn poll(&mut self) -> Status {
        if let Some((child, started)) = &mut self.child {
            match child.try_wait() {
                Ok(None) => return Status::Running(child.id()),
                Ok(Some(status)) => {
                    let uptime = started.elapsed();
                    let delay = self.backoff.after_exit(uptime);
                    tracing::warn!(pid = child.id(), %status, uptime_s = uptime.as_secs(),
                        restart_in_ms = delay.as_millis() as u64, "ikd exited; restarting");
                    self.child = None;
                    self.restart_at = Some(Instant::now() + delay);
                    self.restarts += 1;
                    self.exited = true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot check ikd");
                    return Status::Running(child.id());
                }
            }
        }
        match self.restart_at {
            Some(at) if Instant::now() >= at => {
                self.start();
                match self.pid() {
                    Some(pid) => Status::Running(pid),
                    None => self.restart_at.map_or(Status::Idle, Status::Waiting),
                }
            }
            Some(at) => Status::Waiting(at),
            None => Status::Idle,
        }
    }

    /// Whether the child died (was reaped by [`Supervisor::poll`]) since the last call.
    pub(crate) fn take_exited(&mut self) -> bool {
        std::mem::take(&mut self.exited)
    }

    /// When the loop must wake up next for this supervisor.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.restart_at
    }

    /// Stops the child: SIGTERM, then SIGKILL after [`STOP_GRACE`]. No restart follows.
    pub(crate) fn stop(&mut self) {
        self.restart_at = None;
        let Some((mut child, _)) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        // SAFETY: kill(2) takes no pointers. `raw` is the PID of our own child, which we
        // have not reaped (`child` is still held), so it cannot have been reused.
        let rc = unsafe { libc::kill(raw, libc::SIGTERM) };
        if rc != 0 {
            tracing::warn!(pid, error = %std::io::Error::last_os_error(), "SIGTERM to ikd failed");
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(pid, %status, "ikd stopped");
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => break,
            }
        }
        tracing::warn!(pid, "ikd ignored SIGTERM for 5 s; sending SIGKILL");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends ikd (listening on `socket`) the whole new configuration text with `configure`.
/// Returns a summary of what ikd kept and deleted, or why it did not take it (not
/// reachable, speaks only version 1, invalid text, refused), for the caller to restart ikd
/// and log. The text holds preshared keys: it is wrapped in [`ConfigText`] (zeroized,
/// never printed) and never logged here.
pub(crate) fn configure_live(
    socket: &Path,
    generation: u64,
    config: &str,
) -> Result<String, String> {
    let mut client =
        ipsec_control::Client::connect(socket, concat!("policyd ", env!("CARGO_PKG_VERSION")))
            .map_err(|e| format!("ikd's control socket: {e}"))?;
    if client.version() < ipsec_control::CONFIGURE_VERSION {
        return Err(format!(
            "ikd speaks control protocol version {} (configure needs {})",
            client.version(),
            ipsec_control::CONFIGURE_VERSION
        ));
    }
    let request = ipsec_control::Request::Configure {
        generation,
        config: ConfigText::new(config.to_owned()),
    };
    match client.call(&request) {
        Ok(ipsec_control::Response::Configured {
            generation: g,
            isakmp_sas_kept,
            isakmp_sas_deleted,
            sa_pairs_kept,
            sa_pairs_deleted,
            exchanges_abandoned,
        }) if g == generation => Ok(format!(
            "ISAKMP SAs kept {isakmp_sas_kept}, deleted {isakmp_sas_deleted}; \
             SA pairs kept {sa_pairs_kept}, deleted {sa_pairs_deleted}; \
             negotiations abandoned {exchanges_abandoned}"
        )),
        Ok(other) => Err(format!("ikd answered {} to configure", other.name())),
        Err(e) => Err(e.to_string()),
    }
}

/// The ikd program: `explicit` if given, else `ikd` next to this executable, else `ikd`
/// from `PATH`.
pub(crate) fn ikd_program(explicit: Option<PathBuf>, this_exe: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(dir) = this_exe.as_deref().and_then(Path::parent) {
        let candidate = dir.join("ikd");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("ikd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backoff_doubles_to_sixty_seconds() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.after_exit(secs(2)).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn backoff_resets_after_five_minutes_of_uptime() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.after_exit(secs(1));
        }
        assert_eq!(b.after_exit(secs(299)), secs(32));
        assert_eq!(b.after_exit(secs(300)), secs(1));
        assert_eq!(b.after_exit(secs(10)), secs(2));
    }

    #[test]
    fn program_lookup() {
        let explicit = PathBuf::from("/opt/ikd");
        assert_eq!(ikd_program(Some(explicit.clone()), None), explicit);
        assert_eq!(ikd_program(None, None), PathBuf::from("ikd"));
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("policyd");
        assert_eq!(ikd_program(None, Some(exe.clone())), PathBuf::from("ikd"));
        std::fs::write(dir.path().join("ikd"), b"").expect("write");
        assert_eq!(ikd_program(None, Some(exe)), dir.path().join("ikd"));
    }

    #[test]
    fn restarts_a_dead_child_and_stops_a_live_one() {
        let mut s = Supervisor::new("/bin/sh".into(), vec!["-c".into(), "exit 3".into()]);
        s.start();
        let first = s.pid();
        assert!(first.is_some());
        // Wait for the exit, then for the 1 s delay.
        let deadline = Instant::now() + secs(5);
        while s.restarts() == 0 && Instant::now() < deadline {
            s.poll();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(s.restarts(), 1);
        assert!(s.take_exited(), "the death is reported once");
        assert!(!s.take_exited());
        assert!(matches!(s.poll(), Status::Waiting(_) | Status::Running(_)));

        let mut s = Supervisor::new("/bin/sh".into(), vec!["-c".into(), "sleep 30".into()]);
        s.start();
        assert!(matches!(s.poll(), Status::Running(_)));
        let t = Instant::now();
        s.stop();
        assert!(t.elapsed() < secs(4), "SIGTERM ends sleep");
        assert_eq!(s.poll(), Status::Idle);
    }

    #[test]
    fn a_missing_program_is_retried_not_fatal() {
        let mut s = Supervisor::new("/nonexistent/ikd".into(), vec![]);
        s.start();
        assert_eq!(s.pid(), None);
        assert!(matches!(s.poll(), Status::Waiting(_)));
        assert!(s.deadline().is_some());
        s.stop();
        assert_eq!(s.poll(), Status::Idle);
    }

    /// A fake ikd control socket answering `configure` with `answer`.
    fn fake_ikd(answer: ipsec_control::Response, check: impl Fn(&str) + Sync) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ikd.sock");
        let mut l = ipsec_control::Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        l.allow_uids(vec![unsafe { libc::geteuid() }]);
        l.set_blocking(true).expect("blocking");
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                let mut c = l.accept("ikd test").expect("accept").expect("conn");
                c.serve(1, |r| match r {
                    ipsec_control::Request::Configure { config, .. } => {
                        check(config.as_str());
                        answer.clone()
                    }
                    _ => ipsec_control::Response::Done,
                })
            });
            let r = configure_live(&path, 9, "[main-mode]\n# psk\n");
            let _ = server.join();
            match r {
                Ok(s) => format!("ok: {s}"),
                Err(e) => format!("err: {e}"),
            }
        })
    }

    #[test]
    fn configure_live_reports_what_ikd_kept_or_why_it_refused() {
        let ok = fake_ikd(
            ipsec_control::Response::Configured {
                generation: 9,
                isakmp_sas_kept: 1,
                isakmp_sas_deleted: 0,
                sa_pairs_kept: 2,
                sa_pairs_deleted: 1,
                exchanges_abandoned: 0,
            },
            |text| assert_eq!(text, "[main-mode]\n# psk\n"),
        );
        assert!(
            ok.starts_with("ok: ") && ok.contains("SA pairs kept 2, deleted 1"),
            "{ok}"
        );
        let refused = fake_ikd(
            ipsec_control::Response::Error {
                code: ipsec_control::ErrorCode::InvalidConfiguration,
                message: "configure: line 2: expected a table".into(),
            },
            |_| {},
        );
        assert!(
            refused.starts_with("err: ") && refused.contains("line 2"),
            "{refused}"
        );
        let stale = fake_ikd(
            ipsec_control::Response::Configured {
                generation: 8,
                isakmp_sas_kept: 0,
                isakmp_sas_deleted: 0,
                sa_pairs_kept: 0,
                sa_pairs_deleted: 0,
                exchanges_abandoned: 0,
            },
            |_| {},
        );
        assert!(stale.starts_with("err: "), "{stale}");
        let dir = tempfile::tempdir().expect("tempdir");
        let e = configure_live(&dir.path().join("none.sock"), 1, "x").expect_err("no ikd");
        assert!(e.contains("control socket"), "{e}");
    }
}
