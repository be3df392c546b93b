//! `ipsecadm` end to end against temporary stores: the seed's lab policy built entirely with
//! `static` commands, export → import → export identity, malformed imports that change
//! nothing, usage errors, JSON output, and `dynamic set config` validation.

use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "cli-lab-key-not-secret";

fn ipsecadm(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipsecadm"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run ipsecadm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and requires exit 0; returns stdout.
fn ok(store: &Path, args: &[&str]) -> String {
    let out = ipsecadm(store, args);
    assert!(
        out.status.success(),
        "ipsecadm {args:?}: {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs and requires exit `code` with a message on stderr.
fn fails(store: &Path, args: &[&str], code: i32) -> String {
    let out = ipsecadm(store, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "ipsecadm {args:?}\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(!err.trim().is_empty(), "no message for {args:?}");
    err
}

/// The seed's lab on h1: block inbound telnet from everyone, negotiate telnet with the other
/// host (192.0.2.12) using a preshared key. Netsh-style and --option-style arguments mixed.
fn build_lab(store: &Path) {
    for args in [
        &[
            "static",
            "add",
            "filterlist",
            "name=Lab telnet from anywhere",
        ][..],
        &[
            "static",
            "add",
            "filter",
            "filterlist=Lab telnet from anywhere",
            "srcaddr=any",
            "dstaddr=me",
            "protocol=tcp",
            "dstport=23",
            "mirrored=no",
            "description=telnet from anywhere",
        ],
        &[
            "static",
            "add",
            "filterlist",
            "--name",
            "Lab telnet from peer",
        ],
        &[
            "static",
            "add",
            "filter",
            "--filterlist",
            "Lab telnet from peer",
            "--srcaddr",
            "192.0.2.12",
            "--dstaddr",
            "me",
            "--protocol",
            "tcp",
            "--dstport",
            "23",
        ],
        &[
            "static",
            "add",
            "filteraction",
            "name=Lab block",
            "action=block",
        ],
        &[
            "static",
            "add",
            "filteraction",
            "name=Lab ESP",
            "action=negotiate",
            "qmsecmethods=ESP[3DES,SHA1] ESP[AES128,SHA1]:3600s/50000kb",
            "inpass=no",
            "soft=no",
            "qmpfs=no",
        ],
        &[
            "static",
            "add",
            "policy",
            "name=Lab CLI",
            "activatedefaultrule=no",
            "mmsecmethods=3DES-SHA1-2 AES128-SHA1-14",
        ],
        &[
            "static",
            "add",
            "rule",
            "policy=Lab CLI",
            "name=Block telnet",
            "filterlist=Lab telnet from anywhere",
            "filteraction=Lab block",
        ],
        &[
            "static",
            "add",
            "rule",
            "policy=Lab CLI",
            "name=Negotiate telnet",
            "filterlist=Lab telnet from peer",
            "filteraction=Lab ESP",
            &format!("psk={KEY}"),
            "kerberos=yes",
        ],
        &["static", "set", "policy", "name=Lab CLI", "assign=yes"],
    ] {
        ok(store, args);
    }
}

fn export(store: &Path) -> String {
    ok(
        store,
        &["static", "exportpolicy", "--file", "-", "--withkeys"],
    )
}

#[test]
fn lab_policy_built_with_static_commands_round_trips() {
    let a = tempfile::tempdir().unwrap();
    build_lab(a.path());
    let shown = ok(a.path(), &["static", "show", "policy", "name=Lab CLI"]);
    assert!(shown.contains("Assigned          : yes"), "{shown}");
    assert!(shown.contains("preshared-key, kerberos"), "{shown}");

    let first = export(a.path());
    assert!(first.contains(KEY));
    let file = a.path().join("lab.toml");
    std::fs::write(&file, &first).unwrap();

    let b = tempfile::tempdir().unwrap();
    ok(
        b.path(),
        &["static", "importpolicy", "--file", file.to_str().unwrap()],
    );
    assert_eq!(export(b.path()), first);

    // A redacted export imports back into the store that holds the keys.
    let redacted = ok(a.path(), &["static", "exportpolicy", "file=-"]);
    assert!(!redacted.contains(KEY));
    let rfile = a.path().join("redacted.toml");
    std::fs::write(&rfile, &redacted).unwrap();
    ok(
        b.path(),
        &["static", "importpolicy", "--file", rfile.to_str().unwrap()],
    );
    assert_eq!(export(b.path()), first);
}

#[test]
fn keys_are_never_shown() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    for args in [
        &["static", "show", "all"][..],
        &["--json", "static", "show", "all"],
        &["static", "show", "rule", "--policy", "Lab CLI"],
        &["--json", "static", "show", "rule"],
        &["static", "show", "policy"],
        &["static", "exportpolicy", "--file", "-"],
    ] {
        let out = ok(s.path(), args);
        assert!(!out.contains(KEY), "{args:?} printed the key");
    }
}

#[test]
fn malformed_import_changes_nothing() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    let before = export(s.path());
    let bad = s.path().join("bad.toml");
    for content in [
        "this is [not toml".to_owned(),
        "format = \"ipsec-policy\"\nversion = 99\n".to_owned(),
        // Valid TOML, but the rule references a filter list that does not exist.
        before.replacen(
            "filter-list = \"",
            "filter-list = \"00000000-0000-4000-8000-",
            1,
        ),
        // A valid file with one broken object still changes nothing.
        before.replacen(
            "master-key-lifetime-minutes = 480",
            "master-key-lifetime-minutes = 1",
            1,
        ),
    ] {
        std::fs::write(&bad, &content).unwrap();
        let err = fails(
            s.path(),
            &["static", "importpolicy", "--file", bad.to_str().unwrap()],
            2,
        );
        assert!(err.contains("unchanged"), "{err}");
        assert_eq!(export(s.path()), before);
    }
    fails(
        s.path(),
        &["static", "importpolicy", "--file", "/nonexistent/x.toml"],
        2,
    );
    assert_eq!(export(s.path()), before);
}

#[test]
fn bad_arguments_exit_1_with_a_message() {
    let s = tempfile::tempdir().unwrap();
    for args in [
        &[][..],
        &["static"],
        &["static", "bogus"],
        &[
            "static",
            "add",
            "filter",
            "filterlist=x",
            "srcaddr=999.0.2.1",
            "dstaddr=any",
        ],
        &[
            "static",
            "add",
            "filter",
            "filterlist=x",
            "srcaddr=any",
            "dstaddr=any",
            "mirrored=maybe",
        ],
        &[
            "static",
            "add",
            "filteraction",
            "name=x",
            "qmsecmethods=ESP[3DES]",
        ],
        &[
            "static",
            "add",
            "filteraction",
            "name=x",
            "action=block",
            "qmpfs=yes",
        ],
        &["static", "add", "rule", "policy=p", "name=r"],
        &[
            "static",
            "add",
            "policy",
            "mmsecmethods=3DES-SHA1-9",
            "name=x",
        ],
        &["dynamic", "set", "config"],
        &["dynamic", "set", "config", "bootmode=sometimes"],
        &["dynamic", "set", "config", "bootexemptions=tcp:88"],
        &["--location", "elsewhere", "static", "show", "all"],
    ] {
        fails(s.path(), args, 1);
    }
    assert!(ipsecadm(s.path(), &["--help"]).status.success());
}

#[test]
fn validation_and_reference_errors_exit_2() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    let before = export(s.path());
    fails(
        s.path(),
        &[
            "static",
            "delete",
            "filterlist",
            "name=Lab telnet from peer",
        ],
        2,
    );
    fails(
        s.path(),
        &["static", "delete", "filteraction", "name=Lab ESP"],
        2,
    );
    fails(s.path(), &["static", "add", "policy", "name=Lab CLI"], 2);
    fails(
        s.path(),
        &[
            "static",
            "set",
            "policy",
            "name=No such policy",
            "assign=yes",
        ],
        2,
    );
    fails(
        s.path(),
        &["static", "set", "policy", "name=Lab CLI", "mmlifetime=1"],
        2,
    );
    // Ports with ICMP do not validate.
    fails(
        s.path(),
        &[
            "static",
            "add",
            "filter",
            "filterlist=Lab telnet from peer",
            "srcaddr=any",
            "dstaddr=me",
            "protocol=icmp",
            "dstport=7",
        ],
        2,
    );
    assert_eq!(export(s.path()), before);
}

#[test]
fn objects_by_guid_set_delete_and_assignment() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    let v: serde_json::Value = serde_json::from_str(&ok(
        s.path(),
        &["--json", "static", "show", "policy", "name=Lab CLI"],
    ))
    .unwrap();
    let guid = v[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(v[0]["assigned"], true);
    ok(
        s.path(),
        &[
            "static",
            "set",
            "policy",
            &format!("guid={{{guid}}}"),
            "newname=Lab renamed",
            "description=renamed",
        ],
    );
    ok(s.path(), &["static", "show", "policy", "--name", &guid]);

    // Assigning another policy unassigns the first.
    ok(
        s.path(),
        &[
            "static",
            "set",
            "policy",
            "name=Client (Respond Only)",
            "assign=yes",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(s.path(), &["--json", "static", "show", "all"])).unwrap();
    let assigned: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["assigned"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(assigned, ["Client (Respond Only)"]);

    // The persistent location is separate.
    let v: serde_json::Value = serde_json::from_str(&ok(
        s.path(),
        &[
            "--location",
            "persistent",
            "--json",
            "static",
            "show",
            "all",
        ],
    ))
    .unwrap();
    assert!(v["policies"].as_array().unwrap().is_empty());
    assert_eq!(v["location"], "persistent");

    // Filters by spec, rules, defaultrule.
    ok(
        s.path(),
        &[
            "static",
            "set",
            "defaultrule",
            "policy=Lab renamed",
            "activate=yes",
            "kerberos=yes",
            "qmsecmethods=ESP[AES256,SHA256]",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(
        s.path(),
        &[
            "--json",
            "static",
            "show",
            "defaultrule",
            "--policy",
            "Lab renamed",
        ],
    ))
    .unwrap();
    assert_eq!(v["active"], true);
    ok(
        s.path(),
        &[
            "static",
            "set",
            "rule",
            "policy=Lab renamed",
            "name=Negotiate telnet",
            "activate=no",
            "conntype=lan",
        ],
    );
    ok(
        s.path(),
        &[
            "static",
            "delete",
            "rule",
            "policy=Lab renamed",
            "name=Negotiate telnet",
        ],
    );
    ok(
        s.path(),
        &[
            "static",
            "delete",
            "filter",
            "filterlist=Lab telnet from peer",
            "srcaddr=192.0.2.12",
        ],
    );
    fails(
        s.path(),
        &[
            "static",
            "delete",
            "filter",
            "filterlist=Lab telnet from peer",
            "srcaddr=192.0.2.12",
        ],
        2,
    );
    ok(
        s.path(),
        &[
            "static",
            "delete",
            "filterlist",
            "name=Lab telnet from peer",
        ],
    );
    ok(
        s.path(),
        &["static", "delete", "policy", "name=Lab renamed"],
    );
}

#[test]
fn json_output_parses() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    for args in [
        &["--json", "static", "show", "policy"][..],
        &["--json", "static", "show", "policy", "name=Lab CLI"],
        &["--json", "static", "show", "filterlist"],
        &["--json", "static", "show", "filteraction", "name=Lab ESP"],
        &["--json", "static", "show", "rule"],
        &["--json", "static", "show", "defaultrule", "policy=Lab CLI"],
        &["--json", "static", "show", "all"],
        &["--json", "dynamic", "show", "config"],
    ] {
        let out = ok(s.path(), args);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"));
    }
}

#[test]
fn dynamic_set_config_is_validated() {
    let s = tempfile::tempdir().unwrap();
    ok(
        s.path(),
        &[
            "dynamic",
            "set",
            "config",
            "bootmode=block",
            "bootexemptions=tcp:88:in,udp:0:88:out",
            "ipsecexempt=0",
            "strongcrlcheck=2",
            "ikelogging=yes",
            "ipsecdiagnostics=7",
            "directorypolling=60",
            "assignmentcheck=30",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(s.path(), &["--json", "dynamic", "show", "config"])).unwrap();
    assert_eq!(v["boot-mode"], "block");
    assert_eq!(v["boot-exemptions"].as_array().unwrap().len(), 2);
    assert_eq!(v["ipsec-exempt"], 0);
    assert_eq!(v["strong-crl-check"], 2);
    assert_eq!(v["ike-logging"], true);
    assert_eq!(v["directory-polling-minutes"], 60);
    let before = ok(s.path(), &["dynamic", "show", "config"]);
    for args in [
        &["dynamic", "set", "config", "ipsecexempt=4"][..],
        &["dynamic", "set", "config", "strongcrlcheck=3"],
        &["dynamic", "set", "config", "ipsecdiagnostics=8"],
        &["dynamic", "set", "config", "directorypolling=0"],
        &["dynamic", "set", "config", "bootexemptions=icmp:7:in"],
        &[
            "dynamic",
            "set",
            "config",
            "bootmode=permit",
            "assignmentcheck=99999",
        ],
    ] {
        fails(s.path(), args, 2);
    }
    assert_eq!(ok(s.path(), &["dynamic", "show", "config"]), before);
    ok(
        s.path(),
        &["dynamic", "set", "config", "bootexemptions=none"],
    );
}

#[test]
fn services_not_available_exit_3() {
    let s = tempfile::tempdir().unwrap();
    // No ikd listens in an empty control directory.
    let ctl = s.path().join("run");
    let ctl = ctl.to_str().unwrap();
    let err = fails(
        s.path(),
        &["--control-dir", ctl, "dynamic", "show", "mmsas"],
        3,
    );
    assert!(err.contains("ikd control channel not available"), "{err}");
    assert!(err.contains("ikd.sock"), "names the socket: {err}");
    let pid = s.path().join("none.pid");
    fails(
        s.path(),
        &["dynamic", "refresh", "--pidfile", pid.to_str().unwrap()],
        3,
    );
}

#[test]
fn psk_file_keeps_the_key_off_the_command_line() {
    use std::os::unix::fs::PermissionsExt as _;
    let a = tempfile::tempdir().unwrap();
    build_lab(a.path());
    let key = "file key, documentation only";
    let file = a.path().join("lab.psk");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let file_arg = format!("psk-file={}", file.display());
    let set = |store: &Path, code: Option<i32>| {
        let args = [
            "static",
            "set",
            "rule",
            "policy=Lab CLI",
            "name=Negotiate telnet",
            &file_arg,
            "kerberos=yes",
        ];
        match code {
            None => {
                ok(store, &args);
                String::new()
            }
            Some(c) => fails(store, &args, c),
        }
    };

    // Readable by group or others: refused, nothing changed.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = export(a.path());
    let err = set(a.path(), Some(1));
    assert!(err.contains("lets group or others read it"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(key), "the key leaked into the message: {err}");
    assert_eq!(export(a.path()), before);

    // A directory is not a key file.
    let dir_arg = format!("psk-file={}", a.path().display());
    let err = fails(
        a.path(),
        &[
            "static",
            "set",
            "rule",
            "policy=Lab CLI",
            "name=Negotiate telnet",
            &dir_arg,
        ],
        1,
    );
    assert!(err.contains("not a regular file"), "{err}");
    let missing = format!("psk-file={}", a.path().join("none").display());
    let err = fails(
        a.path(),
        &[
            "static",
            "set",
            "rule",
            "policy=Lab CLI",
            "name=Negotiate telnet",
            &missing,
        ],
        1,
    );
    assert!(err.contains("preshared key file"), "{err}");

    // Mode 0600: the key (without its newline) replaces the old one, in order before
    // Kerberos.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    set(a.path(), None);
    let after = export(a.path());
    assert!(after.contains(&format!("{key:?}")), "{after}");
    assert!(!after.contains(KEY), "old key kept: {after}");
    let shown = ok(a.path(), &["static", "show", "policy", "name=Lab CLI"]);
    assert!(shown.contains("preshared-key, kerberos"), "{shown}");
}

#[test]
fn offload_is_set_shown_and_exported_as_version_2() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    let before = export(s.path());
    assert!(
        before.starts_with("format = \"ipsec-policy\"\nversion = 1\n"),
        "{before}"
    );
    assert!(!before.contains("offload"), "{before}");
    ok(
        s.path(),
        &[
            "static",
            "set",
            "filteraction",
            "name=Lab ESP",
            "offload=yes",
        ],
    );
    let shown = ok(
        s.path(),
        &["static", "show", "filteraction", "name=Lab ESP"],
    );
    assert!(shown.contains("negotiate +offload"), "{shown}");
    let json = ok(
        s.path(),
        &["--json", "static", "show", "filteraction", "name=Lab ESP"],
    );
    assert!(
        json.contains("\"offload\": true") || json.contains("\"offload\":true"),
        "{json}"
    );
    let after = export(s.path());
    assert!(
        after.starts_with("format = \"ipsec-policy\"\nversion = 2\n"),
        "{after}"
    );
    assert_eq!(after.matches("offload = true").count(), 1, "{after}");
    // Round trip through another store.
    let file = s.path().join("offload.toml");
    std::fs::write(&file, &after).unwrap();
    let b = tempfile::tempdir().unwrap();
    ok(
        b.path(),
        &["static", "importpolicy", "--file", file.to_str().unwrap()],
    );
    assert_eq!(export(b.path()), after);
    // Off again: the file is version 1 again, as before.
    ok(
        s.path(),
        &[
            "static",
            "set",
            "filteraction",
            "--name",
            "Lab ESP",
            "--offload",
            "no",
        ],
    );
    let shown = ok(
        s.path(),
        &["static", "show", "filteraction", "name=Lab ESP"],
    );
    assert!(!shown.contains("+offload"), "{shown}");
    assert!(export(s.path()).starts_with("format = \"ipsec-policy\"\nversion = 1\n"));
    // Offload is a negotiate setting.
    let e = fails(
        s.path(),
        &[
            "static",
            "add",
            "filteraction",
            "name=X",
            "action=block",
            "offload=yes",
        ],
        1,
    );
    assert!(e.contains("--offload"), "{e}");
}

#[test]
fn aes_gcm_is_set_shown_and_exported_as_version_3() {
    let s = tempfile::tempdir().unwrap();
    build_lab(s.path());
    ok(
        s.path(),
        &[
            "static",
            "set",
            "filteraction",
            "name=Lab ESP",
            "qmsecmethods=ESP[AES128GCM16,NONE] ESP[AES256GCM16,NONE]:7200s ESP[AES128,SHA1]",
            "offload=yes",
        ],
    );
    let shown = ok(
        s.path(),
        &["static", "show", "filteraction", "name=Lab ESP"],
    );
    assert!(
        shown.contains(
            "ESP[AES128GCM16,NONE]:3600s/100000kb ESP[AES256GCM16,NONE]:7200s/100000kb ESP[AES128,SHA1]"
        ),
        "{shown}"
    );
    let after = export(s.path());
    assert!(
        after.starts_with("format = \"ipsec-policy\"\nversion = 3\n"),
        "{after}"
    );
    assert_eq!(
        after.matches("encryption = \"aes128gcm16\"").count(),
        1,
        "{after}"
    );
    assert_eq!(
        after.matches("encryption = \"aes256gcm16\"").count(),
        1,
        "{after}"
    );
    // Round trip through another store.
    let file = s.path().join("gcm.toml");
    std::fs::write(&file, &after).unwrap();
    let b = tempfile::tempdir().unwrap();
    ok(
        b.path(),
        &["static", "importpolicy", "--file", file.to_str().unwrap()],
    );
    assert_eq!(export(b.path()), after);
    // An AEAD takes no integrity algorithm; it is not a main-mode cipher: refused with the
    // fix, the store unchanged.
    let e = fails(
        s.path(),
        &[
            "static",
            "set",
            "filteraction",
            "name=Lab ESP",
            "qmsecmethods=ESP[AES128GCM16,SHA1]",
        ],
        1,
    );
    assert!(e.contains("ESP[AES128GCM16,NONE]"), "{e}");
    let e = fails(
        s.path(),
        &[
            "static",
            "set",
            "policy",
            "name=Lab CLI",
            "mmsecmethods=AES128GCM16-SHA1-14",
        ],
        1,
    );
    assert!(e.contains("not for main mode"), "{e}");
    // A file that smuggles integrity into a GCM method is refused by validation.
    let bad = after.replacen(
        "encryption = \"aes128gcm16\"\n",
        "encryption = \"aes128gcm16\"\nintegrity = \"sha1\"\n",
        1,
    );
    std::fs::write(&file, &bad).unwrap();
    let e = fails(
        s.path(),
        &["static", "importpolicy", "--file", file.to_str().unwrap()],
        2,
    );
    assert!(e.contains("AEAD"), "{e}");
    assert_eq!(export(s.path()), after);
}
