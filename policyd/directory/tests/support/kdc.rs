//! A throwaway MIT Kerberos KDC for tests: its own krb5.conf, kdc.conf, database and log in a
//! scratch directory, realm [`REALM`], listening on 127.0.0.1 on a free port (UDP and TCP),
//! killed by PID when dropped. Never touches a system KDC or /etc/krb5.conf: everything it
//! runs gets `KRB5_CONFIG` and `KRB5_KDC_PROFILE` pointing into the scratch directory.
//! Needs Debian's `krb5-kdc` and `krb5-admin-server` (for `kadmin.local`; tests/setup
//! installs them without configuring or starting a system KDC).
//!
//! Host names are never canonicalised (`rdns = false`, `dns_canonicalize_hostname =
//! false`): a test uses `localhost` for every principal and as the SASL host.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::slapd::{free_port, listening_within, terminate};

/// The realm.
pub const REALM: &str = "EXAMPLE.TEST";

const TOOLS: [&str; 3] = [
    "/usr/sbin/krb5kdc",
    "/usr/sbin/kdb5_util",
    "/usr/sbin/kadmin.local",
];

/// Whether the KDC tools are installed.
pub fn available() -> bool {
    TOOLS.iter().all(|t| Path::new(t).exists())
}

/// A running KDC.
pub struct Kdc {
    child: Option<Child>,
    /// Scratch directory (configuration, database, keytabs, log).
    pub dir: PathBuf,
    /// The port on 127.0.0.1 (UDP and TCP).
    pub port: u16,
    _tmp: tempfile::TempDir,
}

impl Kdc {
    /// Creates the realm's database and starts krb5kdc.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        std::fs::write(
            dir.join("krb5.conf"),
            format!(
                "[libdefaults]
 default_realm = {REALM}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
[realms]
 {REALM} = {{
  kdc = 127.0.0.1:{port}
 }}
[domain_realm]
 localhost = {REALM}
"
            ),
        )
        .expect("krb5.conf");
        std::fs::write(
            dir.join("kdc.conf"),
            format!(
                "[kdcdefaults]
 kdc_listen = 127.0.0.1:{port}
 kdc_tcp_listen = 127.0.0.1:{port}
[realms]
 {REALM} = {{
  database_name = {d}/principal
  key_stash_file = {d}/stash
  acl_file = {d}/kadm5.acl
  kdc_listen = 127.0.0.1:{port}
  kdc_tcp_listen = 127.0.0.1:{port}
 }}
[logging]
 kdc = FILE:{d}/kdc.log
",
                d = dir.display()
            ),
        )
        .expect("kdc.conf");
        let mut kdc = Self {
            child: None,
            dir,
            port,
            _tmp: tmp,
        };
        kdc.run(
            "/usr/sbin/kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "throwaway-master-key"],
        );
        let log = std::fs::File::create(kdc.dir.join("krb5kdc.stderr")).expect("log");
        let child = kdc
            .command("/usr/sbin/krb5kdc")
            .arg("-n")
            .arg("-P")
            .arg(kdc.dir.join("krb5kdc.pid"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("krb5kdc starts");
        kdc.child = Some(child);
        kdc.wait_ready();
        kdc
    }

    /// A command with the scratch `KRB5_CONFIG` and `KRB5_KDC_PROFILE`.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"));
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("kerberos tool runs");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The scratch krb5.conf (for `KRB5_CONFIG`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// Adds `principal` (without realm) with a random key.
    pub fn add_principal(&self, principal: &str) {
        self.kadmin(&format!("addprinc -randkey {principal}"));
    }

    /// Exports `principal` to a new keytab file `name` in the scratch directory (mode 0600)
    /// and returns its path. Each export draws a new key: a keytab exported earlier for the
    /// same principal is stale from then on.
    pub fn keytab(&self, principal: &str, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = self.dir.join(name);
        self.kadmin(&format!("ktadd -k {} {principal}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }

    fn kadmin(&self, query: &str) {
        let out = self.run("/usr/sbin/kadmin.local", &["-r", REALM, "-q", query]);
        // kadmin.local exits 0 on most failures: check what it printed.
        let err = out.to_lowercase();
        assert!(
            !err.contains("error") && !err.contains("while "),
            "kadmin.local -q {query:?}: {out}"
        );
    }

    fn wait_ready(&self) {
        if listening_within(self.port, Duration::from_secs(30)) {
            return;
        }
        panic!(
            "krb5kdc did not listen on {}: {}{}",
            self.port,
            std::fs::read_to_string(self.dir.join("krb5kdc.stderr")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default()
        );
    }

    /// Stops krb5kdc (SIGTERM to our child, by PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}
