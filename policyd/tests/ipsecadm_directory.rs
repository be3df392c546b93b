//! `ipsecadm directory` against a throwaway slapd: publish a local policy, assign it to an
//! organizational unit, show it as this host's assignment, block inheritance; `status`
//! reads an agent status file. With `--location directory` the static commands add, show,
//! change and assign policies in the directory itself.

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

fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn directory_policy(config: &Path, name: &str) -> Option<ipsec_policy::Policy> {
    let cfg = ipsec_directory::DirectoryConfig::load(config).expect("config");
    let mut c = ipsec_directory::Client::connect(&cfg).expect("connect");
    let p = c
        .policies()
        .expect("policies")
        .into_iter()
        .find(|p| p.name == name)?;
    let d = c.download(&p.dn).expect("download");
    d.set.policy(d.id).cloned()
}

#[test]
fn static_commands_on_store_location_directory() {
    assert!(slapd::available(), "slapd missing: run tests/setup");
    let s = slapd::Slapd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let config = tmp.path().join("directory.toml");
    std::fs::write(&config, s.config("h1")).expect("config");
    let dir = |args: &[&str]| {
        let mut v = vec![
            "--location".to_owned(),
            "directory".to_owned(),
            format!("directory-config={}", config.display()),
        ];
        v.extend(args.iter().map(|a| a.to_string()));
        Command::new(IPSECADM)
            .arg("--store")
            .arg(&store)
            .args(&v)
            .output()
            .expect("run ipsecadm")
    };

    // Add: written to the directory, not to the local store.
    let out = ok(&dir(&[
        "static",
        "add",
        "policy",
        "name=Dir policy",
        "description=first",
    ]));
    assert!(out.contains("cn=ipsecPolicy{"), "{out}");
    let p = directory_policy(&config, "Dir policy").expect("published");
    assert_eq!(p.description, "first");
    let local = ok(&adm(&store, &["static", "show", "policy"]));
    assert!(!local.contains("Dir policy"), "{local}");
    fails(&dir(&["static", "add", "policy", "name=Dir policy"]), 2);

    // Show reads the directory.
    let out = ok(&dir(&["static", "show", "policy"]));
    assert!(out.contains("Dir policy"), "{out}");
    let out = ok(&dir(&[
        "--json",
        "static",
        "show",
        "policy",
        "name=Dir policy",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["description"], "first", "{out}");

    // Set and assign in one command; the assignment is this host's.
    ok(&dir(&[
        "static",
        "set",
        "policy",
        "name=Dir policy",
        "description=second",
        "assign=yes",
        "container=ou=Servers,dc=example,dc=org",
    ]));
    let p2 = directory_policy(&config, "Dir policy").expect("published");
    assert_eq!(p2.description, "second");
    assert_eq!(p2.version, p.version + 1);
    let cfg = format!("config={}", config.display());
    let out = ok(&adm(&store, &["directory", "show", &cfg]));
    assert!(
        out.contains("(assigned at ou=Servers,dc=example,dc=org)"),
        "{out}"
    );
    let out = ok(&dir(&[
        "--json",
        "static",
        "show",
        "policy",
        "name=Dir policy",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["assigned"], true, "{out}");

    // assign=no on a container assigned another policy leaves it alone.
    ok(&dir(&["static", "add", "policy", "name=Second"]));
    let out = ok(&dir(&[
        "static",
        "set",
        "policy",
        "name=Second",
        "assign=no",
        "container=ou=Servers,dc=example,dc=org",
    ]));
    assert!(out.contains("nothing to unassign"), "{out}");
    let out = ok(&adm(&store, &["directory", "show", &cfg]));
    assert!(
        out.contains("(assigned at ou=Servers,dc=example,dc=org)"),
        "{out}"
    );

    // Commands the directory location does not support, and publishing from it.
    fails(&dir(&["static", "add", "filterlist", "name=x"]), 1);
    fails(&dir(&["directory", "publish", "name=Dir policy", &cfg]), 1);
    fails(
        &dir(&["static", "set", "policy", "name=nope", "assign=yes"]),
        2,
    );

    // Unreachable directory: exit 3, nothing written anywhere.
    let down = tmp.path().join("down.toml");
    std::fs::write(
        &down,
        s.config("h1").replace(&s.url(), "ldap://127.0.0.1:9"),
    )
    .expect("config");
    let unreachable = |args: &[&str]| {
        Command::new(IPSECADM)
            .arg("--store")
            .arg(&store)
            .args(["--location", "directory"])
            .arg(format!("--directory-config={}", down.display()))
            .args(args)
            .output()
            .expect("run ipsecadm")
    };
    fails(&unreachable(&["static", "add", "policy", "name=Other"]), 3);
    fails(
        &unreachable(&[
            "static",
            "set",
            "policy",
            "name=Dir policy",
            "description=third",
            "assign=no",
        ]),
        3,
    );
    fails(&unreachable(&["static", "show", "policy"]), 3);
    assert!(directory_policy(&config, "Other").is_none());
    assert_eq!(
        directory_policy(&config, "Dir policy").expect("kept"),
        p2,
        "the unreachable set changed the policy"
    );
    let out = ok(&adm(&store, &["directory", "show", &cfg]));
    assert!(
        out.contains("(assigned at ou=Servers,dc=example,dc=org)"),
        "{out}"
    );

    // assign=no of the assigned policy removes the assignment.
    ok(&dir(&[
        "static",
        "set",
        "policy",
        "name=Dir policy",
        "assign=no",
        "container=ou=Servers,dc=example,dc=org",
    ]));
    let out = ok(&adm(&store, &["directory", "show", &cfg]));
    assert!(out.contains("Assigned policy: none"), "{out}");

    // Not configured: exit 1 with a message naming the file.
    let err = fails(
        &Command::new(IPSECADM)
            .arg("--store")
            .arg(&store)
            .args(["--location", "directory"])
            .arg(format!(
                "--directory-config={}",
                tmp.path().join("missing.toml").display()
            ))
            .args(["static", "show", "policy"])
            .output()
            .expect("run ipsecadm"),
        1,
    );
    assert!(err.contains("not configured"), "{err}");
}

#[test]
fn dynamic_show_config_shows_the_policy_source() {
    let run = tempfile::tempdir().expect("run dir");
    let rundir = format!("rundir={}", run.path().display());
    let out = ok(&adm(run.path(), &["dynamic", "show", "config", &rundir]));
    assert!(out.contains("policysource     : unknown"), "{out}");
    std::fs::write(
        run.path().join("status.json"),
        r#"{"policy_state":"directory downloaded","directory":{"assignment":"cn=p (assigned at ou=Web)"}}"#,
    )
    .expect("status");
    let out = ok(&adm(run.path(), &["dynamic", "show", "config", &rundir]));
    assert!(
        out.contains("policysource     : directory (cn=p (assigned at ou=Web))"),
        "{out}"
    );
    let out = ok(&adm(
        run.path(),
        &["--json", "dynamic", "show", "config", &rundir],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["policy-source"], "directory (cn=p (assigned at ou=Web))");
}
