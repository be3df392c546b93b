//! The policyd harness of the lab tests: start the built `policyd` in a test host's network
//! namespace on a scratch directory, signal it, stop it (also when dropped), read its log,
//! and wait for conditions. Not here: preparing stores or directories (the tests do that).
//!
//! Layout of the scratch directory `dir`: the store in `dir/store`, the run directory (status
//! file) in `dir/run`, the PID file `dir/policyd.pid` and the log (stderr, `RUST_LOG=
//! policyd=debug,ikd=info`) `dir/policyd.log`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ip_in, IP};

/// The policyd binary under test.
pub const POLICYD: &str = env!("CARGO_BIN_EXE_policyd");

/// Polls `f` every 20 ms until it is true or `timeout` has passed; then once more.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// `ip xfrm policy` in `ns`.
pub fn xfrm_policies(ns: &str) -> String {
    String::from_utf8_lossy(&ip_in(ns, &["xfrm", "policy"]).stdout).into_owned()
}

/// The store directory of scratch directory `dir`.
pub fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// The run directory of scratch directory `dir`.
pub fn run_dir(dir: &Path) -> PathBuf {
    dir.join("run")
}

/// The log of the agent last started on `dir` (empty when there is none).
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("policyd.log")).unwrap_or_default()
}

/// A policyd running in a test host; stopped with SIGTERM (20 s, then killed) when dropped.
pub struct Agent {
    child: Option<Child>,
}

impl Agent {
    /// Starts `policyd --store DIR/store --pid-file DIR/policyd.pid --run-dir DIR/run ARGS`
    /// in `ns` and waits up to `timeout` for its PID file (panics with the log if none).
    pub fn start(ns: &str, dir: &Path, args: &[OsString], timeout: Duration) -> Self {
        let log_file = std::fs::File::create(dir.join("policyd.log")).expect("log");
        let pid_file = dir.join("policyd.pid");
        let _ = std::fs::remove_file(&pid_file);
        // `ip netns exec` execs policyd: the child's PID is policyd's.
        let child = Command::new(IP)
            .args(["netns", "exec", ns, POLICYD, "--store"])
            .arg(store_dir(dir))
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--run-dir")
            .arg(run_dir(dir))
            .args(args)
            .env("RUST_LOG", "policyd=debug,ikd=info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn policyd");
        assert!(
            wait_until(timeout, || pid_file.exists()),
            "no pid file:\n{}",
            log(dir)
        );
        Agent { child: Some(child) }
    }

    /// Its PID (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `sig` (as `kill` takes it, e.g. `-HUP`); panics when that fails.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} {}", self.pid());
    }

    /// `ipsecadm dynamic refresh`: SIGHUP.
    pub fn refresh(&self) {
        self.signal("-HUP");
    }

    /// SIGTERM and wait; true when it exited 0 within 10 s (killed otherwise).
    pub fn stop(&mut self) -> bool {
        self.stop_within(Duration::from_secs(10))
    }

    /// SIGTERM and wait; true when it exited 0 within `limit` (killed otherwise).
    pub fn stop_within(&mut self, limit: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_within(Duration::from_secs(20));
    }
}
