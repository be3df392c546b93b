//! SASL GSSAPI bind with the host's keytab, end to end (issue #6 point 3): a throwaway MIT
//! KDC (tests/support/kdc.rs) with `ldap/localhost` and `host/localhost`, a throwaway slapd
//! (tests/support/slapd.rs) with SASL GSSAPI (`sasl-host localhost`, its keytab through
//! `KRB5_KTNAME`, `uid=host/localhost,cn=gssapi,cn=auth` mapped to the host entry `cn=h1`)
//! that lets only authenticated clients read. The client binds with the host keytab
//! through `KRB5_CLIENT_KTNAME` and reads the policy published for it; with a stale keytab
//! the bind fails with a clear error and nothing is read.
//!
//! The Kerberos environment is per process, so each bind runs in a child process of this
//! test binary (the ignored test `child_bind_and_download`) with its own environment and
//! credentials cache. Only with the crate feature `gssapi`:
//! `cargo test -p ipsec-directory --features gssapi --test gssapi`.

#![cfg(feature = "gssapi")]

mod support;

use ipsec_directory::{Client, DirectoryConfig, Resolution};
use std::path::Path;
use std::process::Command;
use support::kdc::{Kdc, REALM};
use support::slapd::{Slapd, BASE};

const HOST_DN: &str = "cn=h1,ou=Web,ou=Servers,dc=example,dc=org";
const SERVERS: &str = "ou=Servers,dc=example,dc=org";

/// Runs `child_bind_and_download` with `config` and the host keytab `keytab`; returns its
/// stdout and whether it exited successfully.
fn bind_in_child(kdc: &Kdc, config: &Path, keytab: &Path, cache: &str) -> (String, bool) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_bind_and_download",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env("KRB5_CLIENT_KTNAME", keytab)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}", kdc.dir.join(cache).display()),
        )
        .env_remove("KRB5_KTNAME")
        .env("IPSEC_GSSAPI_TEST_CONFIG", config)
        .output()
        .expect("child runs");
    // Only the child's own lines: its libtest summary would be counted by tests/run.
    let stdout: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("test child_bind_and_download ... "))
        .filter(|l| !l.starts_with("test ") && !l.starts_with("running "))
        .map(|l| format!("{l}\n"))
        .collect();
    eprintln!(
        "child ({cache}):\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, out.status.success())
}

#[test]
fn gssapi_bind_with_the_host_keytab() {
    assert!(
        support::kdc::available(),
        "krb5kdc, kdb5_util or kadmin.local is missing: run tests/setup (krb5-kdc, krb5-admin-server)"
    );
    assert!(
        support::slapd::available(),
        "/usr/sbin/slapd is missing: run tests/setup (Debian slapd + ldap-utils)"
    );
    let kdc = Kdc::start();
    kdc.add_principal("ldap/localhost");
    kdc.add_principal("host/localhost");
    let ldap_keytab = kdc.keytab("ldap/localhost", "ldap.keytab");
    // Exported first, so made stale by the next export: the "wrong keytab".
    let stale_keytab = kdc.keytab("host/localhost", "stale-host.keytab");
    let host_keytab = kdc.keytab("host/localhost", "host.keytab");

    let realm = REALM.to_lowercase();
    let extra = format!(
        "sasl-host localhost
sasl-realm {REALM}
authz-regexp \"^uid=host/localhost(,cn={realm})?,cn=gssapi,cn=auth$\" \"{HOST_DN}\"
access to * by users read by * none
"
    );
    let krb5_conf = kdc.krb5_conf();
    let s = Slapd::start_with(
        &extra,
        &[
            ("KRB5_CONFIG", krb5_conf.as_path()),
            ("KRB5_KTNAME", ldap_keytab.as_path()),
        ],
    );

    // Publish a policy and assign it to ou=Servers, as the admin (simple bind).
    let set = ipsec_policy::defaults::default_store();
    let id = set.policies[0].id;
    let mut admin =
        Client::connect(&DirectoryConfig::parse("admin", &s.config("h1")).expect("config"))
            .expect("admin bind");
    let dn = admin.publish(&set, id).expect("publish");
    admin.assign(SERVERS, Some(&dn)).expect("assign");

    // Only authenticated clients read: anonymously, the host entry is not even found.
    let anonymous = format!(
        "url = \"{}\"\nbase = \"{BASE}\"\nhost-cn = \"h1\"\nbind = \"anonymous\"\n",
        s.url()
    );
    let mut anon = Client::connect(&DirectoryConfig::parse("anon", &anonymous).expect("config"))
        .expect("anonymous bind");
    assert!(anon.assignment().is_err(), "anonymous read the host entry");

    // The host's configuration: GSSAPI, no bind DN or password.
    let config = s.dir.join("host.conf");
    std::fs::write(
        &config,
        format!(
            "url = \"{}\"\nbase = \"{BASE}\"\nhost-cn = \"h1\"\nbind = \"gssapi\"\nsasl-host = \"localhost\"\ntimeout-seconds = 5\n",
            s.url()
        ),
    )
    .expect("host.conf");

    // The host keytab: bound, the assignment resolved and the policy read.
    let (out, ok) = bind_in_child(&kdc, &config, &host_keytab, "ccache-good");
    assert!(ok, "the child failed: {out}");
    assert!(out.contains(&format!("host: {HOST_DN}")), "{out}");
    assert!(out.contains(&format!("policy: {id}")), "{out}");
    let log = std::fs::read_to_string(kdc.dir.join("kdc.log")).unwrap_or_default();
    assert!(
        log.contains("host/localhost@EXAMPLE.TEST for ldap/localhost@EXAMPLE.TEST"),
        "no service ticket for ldap/localhost in the KDC log:\n{log}"
    );

    // A stale keytab: the bind fails with a clear error; nothing is read.
    let (out, ok) = bind_in_child(&kdc, &config, &stale_keytab, "ccache-stale");
    assert!(ok, "the child failed: {out}");
    assert!(out.contains("bind error: "), "{out}");
    assert!(
        out.contains("SASL GSSAPI bind (service ldap/localhost) failed"),
        "{out}"
    );
    assert!(!out.contains("policy: "), "{out}");
}

/// One bind with the process's Kerberos environment; prints `host: DN` and `policy: ID`,
/// or `bind error: ...`. Run by `gssapi_bind_with_the_host_keytab` in a child process.
#[test]
#[ignore = "run by gssapi_bind_with_the_host_keytab in a child process"]
fn child_bind_and_download() {
    let Ok(path) = std::env::var("IPSEC_GSSAPI_TEST_CONFIG") else {
        return;
    };
    let cfg = DirectoryConfig::load(Path::new(&path)).expect("config");
    match Client::connect(&cfg) {
        Err(e) => println!("bind error: {e}"),
        Ok(mut c) => {
            let (host, r) = c.assignment().expect("assignment");
            println!("host: {host}");
            let Resolution::Policy { policy, .. } = r else {
                panic!("no policy assigned: {r:?}");
            };
            let d = c.download(&policy).expect("download");
            println!("policy: {}", d.id);
        }
    }
}
