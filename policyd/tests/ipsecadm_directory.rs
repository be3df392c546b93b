//! `ipsecadm directory` against a throwaway slapd: publish a local policy, assign it to an
//! organizational unit, show it as this host's assignment, block inheritance; `status`
//! reads an agent status file.

#[path = "../directory/tests/support/slapd.rs"]
mod slapd;

use std::path::Path;
use std::process::{Command, Output};

const IPSECADM: &str = env!("CARGO_BIN_EXE_ipsecadm");

fn adm(store: &Path, args: &[&str]) -> Output {
    Command::new(IPSECADM)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run ipsecadm")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ipsecadm failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn publish_assign_show_block() {
    assert!(slapd::available(), "slapd missing: run tests/setup");
    let s = slapd::Slapd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let config = tmp.path().join("directory.toml");
    std::fs::write(&config, s.config("h1")).expect("config");
    let cfg = format!("config={}", config.display());
    let policy = ipsec_policy::defaults::SECURE_SERVER;

    let out = ok(&adm(
        &store,
        &["directory", "publish", &format!("name={policy}"), &cfg],
    ));
    assert!(out.contains("cn=ipsecPolicy{"), "{out}");
    ok(&adm(
        &store,
        &[
            "directory",
            "assign",
            "container=ou=Servers,dc=example,dc=org",
            &format!("name={policy}"),
            &cfg,
        ],
    ));
    let out = ok(&adm(&store, &["directory", "show", &cfg]));
    assert!(out.contains(policy), "{out}");
    assert!(
        out.contains("Host: cn=h1,ou=Web,ou=Servers,dc=example,dc=org"),
        "{out}"
    );
    assert!(
        out.contains("(assigned at ou=Servers,dc=example,dc=org)"),
        "{out}"
    );

    ok(&adm(
        &store,
        &[
            "directory",
            "blockinheritance",
            "container=ou=Web,ou=Servers,dc=example,dc=org",
            "block=yes",
            &cfg,
        ],
    ));
    let out = ok(&adm(&store, &["--json", "directory", "show", &cfg]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["assignment"],
        "none (inheritance blocked at ou=Web,ou=Servers,dc=example,dc=org)"
    );

    // Unknown policy name and unreachable directory: exit codes 2 and 3.
    let o = adm(&store, &["directory", "publish", "name=nope", &cfg]);
    assert_eq!(o.status.code(), Some(2));
    drop(s);
    let o = adm(&store, &["directory", "show", &cfg]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn status_reads_the_agent_status_file() {
    let run = tempfile::tempdir().expect("run dir");
    let o = adm(
        run.path(),
        &[
            "directory",
            "status",
            &format!("rundir={}", run.path().display()),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    std::fs::write(
        run.path().join("status.json"),
        r#"{"pid":1,"written_unix":0,"policy_state":"cache downloaded","operational_mode":"secure","polling_seconds":180,
"directory":{"configured":true,"url":"ldap://x","host":"cn=h1","assignment":"p","last":{"result":"failed","error":"directory ldap://x: connection refused"},
"last_poll_unix":1,"last_poll_ms":1.5,"cache":"cn=p version 3 retrieved at 5"}}"#,
    )
    .expect("status");
    let out = ok(&adm(
        run.path(),
        &[
            "directory",
            "status",
            &format!("rundir={}", run.path().display()),
        ],
    ));
    assert!(out.contains("Active policy source: cache"), "{out}");
    assert!(
        out.contains("Last directory poll: failed: directory ldap://x: connection refused"),
        "{out}"
    );
    assert!(out.contains("Cached copy: cn=p version 3"), "{out}");
}
