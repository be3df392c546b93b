//! The local store: defaults, permissions, transactions that write all or nothing, and
//! clear errors on bad contents.

use std::os::unix::fs::PermissionsExt;

use ipsec_policy::defaults::{self, default_store};
use ipsec_policy::settings::{BootExemption, BootMode, ExemptionDirection};
use ipsec_policy::store::{CachedPolicy, DirectorySource, FILE_NAME};
use ipsec_policy::*;

fn open_new() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipsec");
    let store = Store::open(&dir).unwrap();
    (tmp, dir, store)
}

fn lab_id() -> uuid::Uuid {
    default_store()
        .policy_by_name(defaults::LAB_ANDY)
        .unwrap()
        .id
}

#[test]
fn new_store_holds_the_default_policies_unassigned() {
    let (_tmp, _dir, store) = open_new();
    let local = store.location(Location::Local).unwrap();
    assert_eq!(local.assigned, None);
    assert_eq!(local.set, default_store());
    let persistent = store.location(Location::Persistent).unwrap();
    assert_eq!(persistent, LocationContents::default());
    assert_eq!(store.settings().unwrap(), Settings::default());
    assert_eq!(store.cache().unwrap(), None);
    store.check().unwrap();
}

#[test]
fn store_file_is_0600_in_a_0700_directory() {
    let (_tmp, dir, store) = open_new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(store.path(), dir.join(FILE_NAME));
}

#[test]
fn default_directory_follows_the_operating_system() {
    let expected = if cfg!(target_os = "freebsd") {
        "/var/db/ipsec"
    } else {
        "/var/lib/ipsec"
    };
    assert_eq!(store::default_dir(), std::path::PathBuf::from(expected));
}

#[test]
fn assignment_persists_across_reopen() {
    let (_tmp, dir, store) = open_new();
    store.assign(Location::Local, Some(lab_id())).unwrap();
    drop(store);
    let store = Store::open(&dir).unwrap();
    assert_eq!(
        store.location(Location::Local).unwrap().assigned,
        Some(lab_id())
    );
}

#[test]
fn assigning_an_unknown_policy_changes_nothing() {
    let (_tmp, _dir, store) = open_new();
    let before = store.location(Location::Local).unwrap();
    let err = store
        .assign(Location::Local, Some(uuid::Uuid::new_v4()))
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownPolicy(_)), "{err}");
    assert_eq!(store.location(Location::Local).unwrap(), before);
}

#[test]
fn invalid_change_is_refused_whole() {
    let (_tmp, _dir, store) = open_new();
    let before = store.location(Location::Local).unwrap();
    let err = store
        .update(Location::Local, |c| {
            c.set.policies[0].name = "renamed".into(); // valid on its own
            c.set.policies[1].isakmp.methods.clear(); // invalid
            Ok(())
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("no main-mode security methods"),
        "{err}"
    );
    assert_eq!(store.location(Location::Local).unwrap(), before);
}

#[test]
fn update_raises_versions_of_what_changed() {
    let (_tmp, _dir, store) = open_new();
    let after = store
        .update(Location::Local, |c| {
            c.set.filter_actions[0].description = "changed".into();
            Ok(())
        })
        .unwrap();
    assert_eq!(after.set.filter_actions[0].version, 2);
    // Both Server and Secure Server use "Permit" for ICMP.
    let v = |name| after.set.policy_by_name(name).unwrap().version;
    assert_eq!(
        (
            v(defaults::SERVER),
            v(defaults::SECURE_SERVER),
            v(defaults::CLIENT)
        ),
        (2, 2, 1)
    );
}

#[test]
fn redacted_export_imports_back_with_the_stored_keys() {
    let (_tmp, _dir, store) = open_new();
    let text = store.export(Location::Local, ExportKeys::Redact).unwrap();
    assert!(!text.contains(defaults::LAB_PRESHARED_KEY));
    store.import(Location::Local, &text).unwrap();
    assert_eq!(
        store.location(Location::Local).unwrap().set,
        default_store()
    );
    // Into the empty persistent location the keys are unknown: refused, nothing written.
    let err = store.import(Location::Persistent, &text).unwrap_err();
    assert!(
        matches!(err, StoreError::File(FileError::RedactedKeyNotInStore(_))),
        "{err}"
    );
    assert_eq!(
        store.location(Location::Persistent).unwrap(),
        LocationContents::default()
    );
    let with_keys = store.export(Location::Local, ExportKeys::Include).unwrap();
    store.import(Location::Persistent, &with_keys).unwrap();
    assert_eq!(
        store.location(Location::Persistent).unwrap().set,
        default_store()
    );
}

#[test]
fn malformed_import_changes_nothing() {
    let (_tmp, _dir, store) = open_new();
    let before = store.export(Location::Local, ExportKeys::Include).unwrap();
    let mut text = before.clone();
    text.push_str("\n[[filter-list]]\nid = \"not-a-guid\"\n");
    assert!(matches!(
        store.import(Location::Local, &text),
        Err(StoreError::File(FileError::Syntax(_)))
    ));
    assert_eq!(
        store.export(Location::Local, ExportKeys::Include).unwrap(),
        before
    );
}

#[test]
fn corrupt_entry_is_reported_and_left_alone() {
    let (_tmp, _dir, store) = open_new();
    store
        .write_raw_for_tests("local", b"\xff\x00garbage")
        .unwrap();
    let err = store.location(Location::Local).unwrap_err();
    assert!(
        matches!(err, StoreError::CorruptEntry { key: "local", .. }),
        "{err}"
    );
    assert!(matches!(
        store.assign(Location::Local, None),
        Err(StoreError::CorruptEntry { .. })
    ));
    assert!(store.check().is_err());
    // Other entries still work.
    assert_eq!(store.settings().unwrap(), Settings::default());
}

#[test]
fn unknown_schema_version_is_refused_on_open() {
    let (_tmp, dir, store) = open_new();
    store.write_raw_for_tests("schema", b"2").unwrap();
    drop(store);
    let err = Store::open(&dir).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedSchema { ref found } if found == "2"),
        "{err}"
    );
}

#[test]
fn corrupt_file_gives_a_clear_error_and_is_not_rewritten() {
    let (_tmp, dir, store) = open_new();
    let path = store.path().to_path_buf();
    drop(store);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn cache_keeps_the_directory_source() {
    let (_tmp, _dir, store) = open_new();
    let cached = CachedPolicy {
        source: DirectorySource {
            dn: "cn=ipsecPolicy{x},cn=IP Security,cn=System,dc=example,dc=org".into(),
            version: 7,
            retrieved_unix: 1_700_000_000,
        },
        assigned: lab_id(),
        set: default_store(),
    };
    store.set_cache(&cached).unwrap();
    assert_eq!(store.cache().unwrap(), Some(cached.clone()));
    let mut bad = cached.clone();
    bad.set.policies[0].isakmp.master_key_lifetime_minutes = 1;
    assert!(matches!(store.set_cache(&bad), Err(StoreError::Invalid(_))));
    assert_eq!(store.cache().unwrap(), Some(cached));
    store.clear_cache().unwrap();
    assert_eq!(store.cache().unwrap(), None);
}

#[test]
fn settings_round_trip_and_ranges_are_checked() {
    let (_tmp, _dir, store) = open_new();
    let s = Settings {
        boot_mode: BootMode::Block,
        boot_exemptions: vec![BootExemption {
            protocol: Protocol::TCP,
            source_port: 0,
            destination_port: 22,
            direction: ExemptionDirection::Inbound,
        }],
        ipsec_exempt: 0,
        strong_crl_check: 2,
        ike_logging: true,
        ipsec_diagnostics: 7,
        directory_polling_minutes: 60,
        assignment_check_minutes: 30,
    };
    store.set_settings(&s).unwrap();
    assert_eq!(store.settings().unwrap(), s);
    let bad = Settings {
        ipsec_exempt: 4,
        ..s.clone()
    };
    assert!(matches!(
        store.set_settings(&bad),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.settings().unwrap(), s);
}

/// ipsecadm and policyd each open the store for one transaction: a second opener waits for
/// the first to close instead of failing with "Database already open" (seen when ipsecadm
/// ran while policyd polled).
#[test]
fn a_second_opener_waits_for_the_first_to_close() {
    let (_tmp, dir, first) = open_new();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let started = std::time::Instant::now();
    let second = Store::open(&dir).expect("the second open waits for the lock");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "the second open cannot have succeeded while the first held the file"
    );
    assert!(second.location(Location::Local).is_ok());
    holder.join().unwrap();
}

#[test]
fn the_offload_setting_persists_and_bumps_the_action_version() {
    let (_tmp, dir, store) = open_new();
    let i = default_store()
        .filter_actions
        .iter()
        .position(|a| matches!(a.action, Action::Negotiate(_)))
        .unwrap();
    let after = store
        .update(Location::Local, |c| {
            if let Action::Negotiate(n) = &mut c.set.filter_actions[i].action {
                n.offload = true;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(after.set.filter_actions[i].version, 2);
    drop(store);
    let store = Store::open(&dir).unwrap();
    let back = store.location(Location::Local).unwrap();
    assert!(
        matches!(&back.set.filter_actions[i].action, Action::Negotiate(n) if n.offload),
        "{:?}",
        back.set.filter_actions[i]
    );
    // The others (written without the key, as a store of the previous build has them)
    // read as "no offload".
    assert!(back
        .set
        .filter_actions
        .iter()
        .enumerate()
        .all(|(j, a)| j == i || !matches!(&a.action, Action::Negotiate(n) if n.offload)));
}

#[test]
fn aes_gcm_methods_persist_and_invalid_ones_are_refused_whole() {
    let (_tmp, dir, store) = open_new();
    let i = default_store()
        .filter_actions
        .iter()
        .position(|a| matches!(a.action, Action::Negotiate(_)))
        .unwrap();
    let gcm = vec![
        QuickModeMethod::esp_aead(Encryption::Aes128Gcm16),
        QuickModeMethod::esp_aead(Encryption::Aes256Gcm16),
    ];
    store
        .update(Location::Local, |c| {
            if let Action::Negotiate(n) = &mut c.set.filter_actions[i].action {
                n.methods = gcm.clone();
                n.offload = true;
            }
            Ok(())
        })
        .unwrap();
    // GCM with an integrity algorithm: refused, the stored set unchanged.
    let refused = store.update(Location::Local, |c| {
        if let Action::Negotiate(n) = &mut c.set.filter_actions[i].action {
            if let Some(esp) = &mut n.methods[0].esp {
                esp.integrity = Some(Integrity::Sha1);
            }
        }
        Ok(())
    });
    assert!(refused.is_err(), "{refused:?}");
    drop(store);
    let store = Store::open(&dir).unwrap();
    let back = store.location(Location::Local).unwrap();
    assert!(
        matches!(&back.set.filter_actions[i].action, Action::Negotiate(n) if n.methods == gcm && n.offload),
        "{:?}",
        back.set.filter_actions[i]
    );
    let text = store.export(Location::Local, ExportKeys::Redact).unwrap();
    assert!(text.contains("version = 3") && text.contains("aes256gcm16"));
}
