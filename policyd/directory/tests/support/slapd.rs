//! A throwaway OpenLDAP slapd for tests: its own config, database and socket in a scratch
//! directory, listening on 127.0.0.1 on a free port, killed by PID when dropped. Never
//! touches a system slapd. Needs Debian's `slapd` (tests/setup installs it).
//!
//! The tree (base `dc=example,dc=org`, admin `cn=admin,dc=example,dc=org` / `secret`):
//!
//! ```text
//! dc=example,dc=org
//! ├── ou=IP Security            policy container
//! ├── cn=h4                     host at the domain level
//! ├── ou=Servers
//! │   ├── cn=h2
//! │   └── ou=Web
//! │       └── cn=h1
//! └── ou=Isolated
//!     └── cn=h3
//! ```

#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The base DN.
pub const BASE: &str = "dc=example,dc=org";
/// The admin DN.
pub const ADMIN: &str = "cn=admin,dc=example,dc=org";
/// The admin password.
pub const PASSWORD: &str = "secret";

/// A running slapd.
pub struct Slapd {
    child: Option<Child>,
    /// Scratch directory (config, database, password file).
    pub dir: PathBuf,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The LDAPS port on 127.0.0.1 (with [`Slapd::start_tls`]).
    pub ldaps_port: Option<u16>,
    _tmp: Option<tempfile::TempDir>,
}

const TREE: &str = "dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=IP Security,dc=example,dc=org
objectClass: organizationalUnit
ou: IP Security

dn: cn=h4,dc=example,dc=org
objectClass: device
cn: h4

dn: ou=Servers,dc=example,dc=org
objectClass: organizationalUnit
ou: Servers

dn: cn=h2,ou=Servers,dc=example,dc=org
objectClass: device
cn: h2

dn: ou=Web,ou=Servers,dc=example,dc=org
objectClass: organizationalUnit
ou: Web

dn: cn=h1,ou=Web,ou=Servers,dc=example,dc=org
objectClass: device
cn: h1

dn: ou=Isolated,dc=example,dc=org
objectClass: organizationalUnit
ou: Isolated

dn: cn=h3,ou=Isolated,dc=example,dc=org
objectClass: device
cn: h3
";

/// A TCP port on 127.0.0.1 that nothing listens on (also used by the KDC harness).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` within `limit`.
pub fn listening_within(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Stops a server the test started: SIGTERM to its PID, up to 10 s to exit, then SIGKILL.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn ldapi_url(socket: &Path) -> String {
    format!(
        "ldapi://{}",
        socket.display().to_string().replace('/', "%2F")
    )
}

/// Whether slapd is installed.
pub fn available() -> bool {
    Path::new("/usr/sbin/slapd").exists()
}

impl Slapd {
    /// Starts a slapd in a new temporary directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, free_port(), true);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a slapd with TLS (StartTLS on the ldap port, and an LDAPS port): a test CA
    /// (`tls/ca.pem`) and a server certificate for 127.0.0.1 made with openssl.
    pub fn start_tls() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        std::fs::write(
            tls.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext");
        for args in [
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ipsec-test-CA",
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf",
        ] {
            let out = Command::new("openssl")
                .args(args.split(' '))
                .current_dir(&tls)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut s = Self::start_in(&dir, free_port(), true);
        s._tmp = Some(tmp);
        s
    }

    /// The test CA of [`Slapd::start_tls`].
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// Starts a slapd on `dir` (created and filled with the tree when `init`), or restarts
    /// one on an existing directory (`init` false).
    pub fn start_in(dir: &Path, port: u16, init: bool) -> Self {
        Self::start_in_with(dir, port, init, "", &[])
    }

    /// Starts a slapd in a new temporary directory with `extra` global configuration lines
    /// (before the access rules: SASL settings, a stricter `access` rule) and `env` added to
    /// slapd's environment (e.g. `KRB5_KTNAME`).
    pub fn start_with(extra: &str, env: &[(&str, &Path)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in_with(&dir, free_port(), true, extra, env);
        s._tmp = Some(tmp);
        s
    }

    fn start_in_with(
        dir: &Path,
        port: u16,
        init: bool,
        extra: &str,
        env: &[(&str, &Path)],
    ) -> Self {
        let db = dir.join("db");
        let conf = dir.join("slapd.conf");
        let tls = dir.join("tls");
        let ldaps_port = tls.exists().then(free_port);
        if init {
            std::fs::create_dir_all(&db).expect("db dir");
            let schema = dir.join("ipsec-policy.schema");
            std::fs::write(&schema, ipsec_directory::schema::SCHEMA).expect("schema");
            let tls_conf = if tls.exists() {
                format!(
                    "TLSCACertificateFile {t}/ca.pem\nTLSCertificateFile {t}/server.pem\nTLSCertificateKeyFile {t}/server.key\n",
                    t = tls.display()
                )
            } else {
                String::new()
            };
            let text = format!(
                "{tls_conf}{extra}include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {schema}
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
sockbuf_max_incoming_auth 67108864
sizelimit unlimited
access to * by * read
database mdb
maxsize 1073741824
suffix \"{BASE}\"
rootdn \"{ADMIN}\"
rootpw {PASSWORD}
directory {db}
index objectClass eq
index ipsecOwnersReference eq
",
                schema = schema.display(),
                dir = dir.display(),
                db = db.display(),
            );
            std::fs::write(&conf, text).expect("slapd.conf");
            let ldif = dir.join("tree.ldif");
            std::fs::write(&ldif, TREE).expect("tree.ldif");
            let out = Command::new("/usr/sbin/slapadd")
                .arg("-f")
                .arg(&conf)
                .arg("-l")
                .arg(&ldif)
                .output()
                .expect("slapadd runs");
            assert!(
                out.status.success(),
                "slapadd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::File::create(dir.join("slapd.log")).expect("log");
        let child = Command::new("/usr/sbin/slapd")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ {}{}",
                ldapi_url(&dir.join("ldapi")),
                ldaps_port.map_or(String::new(), |p| format!(" ldaps://127.0.0.1:{p}/"))
            ))
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd starts");
        let s = Self {
            child: Some(child),
            dir: dir.to_path_buf(),
            port,
            ldaps_port,
            _tmp: None,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        if listening_within(self.port, Duration::from_secs(30)) {
            return;
        }
        panic!(
            "slapd did not listen on {}: {}",
            self.port,
            std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
        );
    }

    /// Milliseconds `ldapsearch` (the peer the benchmarks compare with) takes for one
    /// search as the administrator; the error is its stderr when it fails.
    pub fn timed_ldapsearch(
        &self,
        base: &str,
        scope: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<f64, String> {
        let t = Instant::now();
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-H", &self.url(), "-D", ADMIN, "-w", PASSWORD])
            .args(["-b", base, "-s", scope, filter])
            .args(attrs)
            .output()
            .map_err(|e| format!("ldapsearch: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The `ldapi://` URL of the Unix socket (reachable from every network namespace).
    pub fn ldapi(&self) -> String {
        ldapi_url(&self.dir.join("ldapi"))
    }

    /// Writes the admin password file (0600) once and returns its path (never rewritten:
    /// a client of another thread may be reading it).
    pub fn password_file(&self) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt as _;
        let p = self.dir.join("admin.secret");
        if p.exists() {
            return p;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .expect("password file");
        writeln!(f, "{PASSWORD}").expect("write");
        p
    }

    /// A directory configuration text for `host_cn`, bound as the admin.
    pub fn config(&self, host_cn: &str) -> String {
        format!(
            "url = \"{}\"\nbase = \"{BASE}\"\nhost-cn = \"{host_cn}\"\nbind = \"simple\"\nbind-dn = \"{ADMIN}\"\npassword-file = \"{}\"\ntimeout-seconds = 5\n",
            self.url(),
            self.password_file().display()
        )
    }

    /// Runs ldapmodify as the admin with `ldif`; panics on failure.
    pub fn ldapmodify(&self, ldif: &str) {
        let mut c = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ADMIN, "-w", PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif");
        let out = c.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops slapd (SIGTERM to our child, by PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The median of a non-empty set of timings.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// How many of the benchmark's filters go to the negotiating rule: each filter of a
/// negotiating rule takes a reqid of its own from the 4,096 the agent owns
/// (`ipsec_agent::compile`, "Reqids"), so a 10,000-filter negotiating rule cannot compile.
pub const BENCH_NEGOTIATED: usize = 3_000;

/// One benchmark filter: TCP "my address" ↔ 198.51.100.(i / 40), port `port + i % 40`,
/// mirrored.
pub fn bench_filter(i: usize, port: u16) -> ipsec_policy::Filter {
    let host = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 0)) + (i as u32 / 40);
    ipsec_policy::Filter {
        id: uuid::Uuid::new_v4(),
        version: 1,
        description: String::new(),
        source: ipsec_policy::Endpoint::MyAddress,
        destination: std::net::Ipv4Addr::from(host)
            .to_string()
            .parse()
            .expect("endpoint"),
        mirrored: true,
        protocol: ipsec_policy::Protocol::TCP,
        source_port: 0,
        destination_port: port.wrapping_add((i % 40) as u16),
    }
}

/// The filters of policy `id` of `set` (of the lists its rules use).
pub fn filters_of(set: &ipsec_policy::PolicySet, id: uuid::Uuid) -> usize {
    let Some(p) = set.policy(id) else { return 0 };
    let mut lists: Vec<uuid::Uuid> = p.rules.iter().map(|r| r.filter_list).collect();
    lists.sort();
    lists.dedup();
    lists
        .iter()
        .filter_map(|l| set.filter_list(*l))
        .map(|l| l.filters.len())
        .sum()
}

/// The benchmark's policy: `n` filters added to policy `id` of `set`, the first
/// [`BENCH_NEGOTIATED`] to its first rule's filter list (negotiated), the others to a new
/// filter list of a new rule with a permit action (hosts from 198.51.100.75 up, no overlap).
pub fn bench_policy(
    set: &ipsec_policy::PolicySet,
    id: uuid::Uuid,
    n: usize,
) -> ipsec_policy::PolicySet {
    let mut set = set.clone();
    let Some(first) = set.policy(id).and_then(|p| p.rules.first()).cloned() else {
        panic!("policy {id} has no rule");
    };
    let negotiated = n.min(BENCH_NEGOTIATED);
    if let Some(l) = set
        .filter_lists
        .iter_mut()
        .find(|l| l.id == first.filter_list)
    {
        l.filters
            .extend((0..negotiated).map(|i| bench_filter(i, 10_000)));
        l.version += 1;
    }
    if n > negotiated {
        let permit = set
            .filter_actions
            .iter()
            .find(|a| a.action == ipsec_policy::Action::Permit)
            .map(|a| a.id)
            .expect("a permit filter action");
        let list = ipsec_policy::FilterList {
            id: uuid::Uuid::new_v4(),
            version: 1,
            name: "Benchmark: permitted hosts".into(),
            description: String::new(),
            filters: (negotiated..n).map(|i| bench_filter(i, 10_000)).collect(),
        };
        let rule = ipsec_policy::Rule {
            id: uuid::Uuid::new_v4(),
            name: "Benchmark: permit".into(),
            filter_list: list.id,
            filter_action: permit,
            ..first
        };
        set.filter_lists.push(list);
        if let Some(p) = set.policies.iter_mut().find(|p| p.id == id) {
            p.rules.push(rule);
        }
    }
    set
}
