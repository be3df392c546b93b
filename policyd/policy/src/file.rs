//! The import/export file format: a readable, versioned TOML document.
//!
//! ```toml
//! format = "ipsec-policy"
//! version = 1
//!
//! [[policy]]            # Policy, with [policy.isakmp], [[policy.rule]], [policy.default-response]
//! [[filter-list]]       # FilterList, with [[filter-list.filter]]
//! [[filter-action]]     # FilterAction, with [filter-action.action] (kind = permit|block|negotiate)
//! ```
//!
//! The field names are those of [`crate::model`] in kebab-case. Export → import → export is
//! byte-identical.
//!
//! Versions: 1 is the original format; 2 adds `offload = true` to a negotiating filter
//! action (`[filter-action.action]`); 3 adds the AES-GCM ciphers `aes128gcm16` and
//! `aes256gcm16` (in ESP quick-mode methods). [`export`] writes the lowest version that can
//! hold the set (version 1 unless some filter action asks for offload or some method uses
//! AES-GCM), so a set without them exports exactly as before and stays readable by builds
//! that know only the older versions, and an older build refuses a file it cannot read by
//! its version instead of failing on an unknown name. [`parse`] reads all three; a setting
//! in a file whose version predates it is refused (it cannot have been written by an
//! exporter). Preshared keys are written only with [`ExportKeys::Include`]; otherwise
//! each is written as `key = { redacted = true }`, and [`import`] takes such a key from the
//! store (same rule or default response rule, same position among its preshared keys) or
//! refuses the file.
//!
//! [`import`] merges the file into a store location's set (objects with a known GUID are
//! replaced, others added) and validates the result as a whole before returning it: the
//! caller writes it in one transaction or not at all. Nothing here does I/O or panics on
//! any input.

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::validate::{validate, ObjectRef, ValidationErrors};

/// The `format` value of a policy file.
pub const FORMAT: &str = "ipsec-policy";
/// The highest file format version this crate writes and reads (module docs).
pub const VERSION: i64 = 3;
/// The original version, written when no filter action asks for offload and no method
/// uses AES-GCM.
pub const VERSION_1: i64 = 1;
/// The version that added a filter action's `offload` setting.
pub const VERSION_OFFLOAD: i64 = 2;
/// The version that added the AES-GCM ciphers.
pub const VERSION_AES_GCM: i64 = 3;

/// The lowest version that can hold `set`.
fn version_for(set: &PolicySet) -> i64 {
    if uses_aes_gcm(set) {
        VERSION_AES_GCM
    } else if uses_offload(set) {
        VERSION_OFFLOAD
    } else {
        VERSION_1
    }
}

fn uses_offload(set: &PolicySet) -> bool {
    set.filter_actions
        .iter()
        .any(|a| matches!(&a.action, Action::Negotiate(n) if n.offload))
}

/// Whether any main-mode or quick-mode method of the set names an AES-GCM cipher (parse
/// does not validate, so main mode counts too).
fn uses_aes_gcm(set: &PolicySet) -> bool {
    let qm = |ms: &[QuickModeMethod]| {
        ms.iter()
            .filter_map(|m| m.esp.and_then(|e| e.encryption))
            .any(Encryption::is_aead)
    };
    set.filter_actions
        .iter()
        .any(|a| matches!(&a.action, Action::Negotiate(n) if qm(&n.methods)))
        || set.policies.iter().any(|p| {
            qm(&p.default_response.methods)
                || p.isakmp.methods.iter().any(|m| m.encryption.is_aead())
        })
}

/// Whether an export carries the preshared keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKeys {
    /// Write `key = { redacted = true }` instead of each key (the default).
    Redact,
    /// Write the keys in clear text: the file then needs the store's protection.
    Include,
}

/// Why a file cannot be read, written or imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Not TOML, or TOML that does not match the format.
    #[error("malformed policy file: {0}")]
    Syntax(String),
    /// The `format` key is missing or names another format.
    #[error("not a policy file: format = {0:?}, expected \"ipsec-policy\"")]
    NotAPolicyFile(Option<String>),
    /// A version this crate does not read.
    #[error("policy file version {0:?} is not supported (this version reads versions 1 to 3)")]
    UnsupportedVersion(Option<i64>),
    /// A file uses a setting of a later version (`offload`, AES-GCM).
    #[error("policy file version {version} cannot hold {setting}; write version = {needs}")]
    NewerSetting {
        /// The file's version.
        version: i64,
        /// What it holds that its version cannot.
        setting: &'static str,
        /// The first version that can hold it.
        needs: i64,
    },
    /// A redacted key with no key in the store to stand for it.
    #[error("{0}: the file's preshared key is redacted and the store has no key for it; export with keys or set the key after import")]
    RedactedKeyNotInStore(ObjectRef),
    /// The merged set does not validate.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The set cannot be written as TOML (e.g. a change version above 2^63 - 1).
    #[error("cannot write the policy file: {0}")]
    Serialize(String),
}

#[derive(Deserialize)]
struct Header {
    format: Option<toml::Value>,
    version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Body {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: i64,
    #[serde(default)]
    policy: Vec<Policy>,
    #[serde(default)]
    filter_list: Vec<FilterList>,
    #[serde(default)]
    filter_action: Vec<FilterAction>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct BodyOut<'a> {
    format: &'a str,
    version: i64,
    policy: &'a [Policy],
    filter_list: &'a [FilterList],
    filter_action: &'a [FilterAction],
}

/// Writes a set as a policy file.
pub fn export(set: &PolicySet, keys: ExportKeys) -> Result<String, FileError> {
    let redacted;
    let set = match keys {
        ExportKeys::Include => set,
        ExportKeys::Redact => {
            redacted = set.redacted();
            &redacted
        }
    };
    toml::to_string(&BodyOut {
        format: FORMAT,
        version: version_for(set),
        policy: &set.policies,
        filter_list: &set.filter_lists,
        filter_action: &set.filter_actions,
    })
    .map_err(|e| FileError::Serialize(e.to_string()))
}

/// Reads a policy file without validating it (it may hold redacted keys).
pub fn parse(text: &str) -> Result<PolicySet, FileError> {
    let header: Header = toml::from_str(text).map_err(|e| FileError::Syntax(e.to_string()))?;
    match header.format {
        Some(toml::Value::String(f)) if f == FORMAT => {}
        Some(toml::Value::String(f)) => return Err(FileError::NotAPolicyFile(Some(f))),
        Some(other) => return Err(FileError::NotAPolicyFile(Some(other.to_string()))),
        None => return Err(FileError::NotAPolicyFile(None)),
    }
    let version = match header.version {
        Some(toml::Value::Integer(v)) if (VERSION_1..=VERSION).contains(&v) => v,
        Some(toml::Value::Integer(v)) => return Err(FileError::UnsupportedVersion(Some(v))),
        _ => return Err(FileError::UnsupportedVersion(None)),
    };
    let body: Body = toml::from_str(text).map_err(|e| FileError::Syntax(e.to_string()))?;
    let set = PolicySet {
        policies: body.policy,
        filter_lists: body.filter_list,
        filter_actions: body.filter_action,
    };
    if version < VERSION_OFFLOAD && uses_offload(&set) {
        return Err(FileError::NewerSetting {
            version,
            setting: "a filter action's offload setting",
            needs: VERSION_OFFLOAD,
        });
    }
    if version < VERSION_AES_GCM && uses_aes_gcm(&set) {
        return Err(FileError::NewerSetting {
            version,
            setting: "an AES-GCM cipher (aes128gcm16, aes256gcm16)",
            needs: VERSION_AES_GCM,
        });
    }
    Ok(set)
}

/// Reads a policy file and merges it into `existing`: redacted keys are taken from
/// `existing`, objects whose GUID `existing` already has are replaced in place, new ones are
/// appended. Returns the merged set only if it validates.
pub fn import(text: &str, existing: &PolicySet) -> Result<PolicySet, FileError> {
    let mut incoming = parse(text)?;
    restore_keys(&mut incoming, existing)?;
    let merged = merge(existing, incoming);
    validate(&merged).map_err(FileError::Invalid)?;
    Ok(merged)
}

/// `base` with every object of `incoming` replacing the one with its GUID, or appended.
pub fn merge(base: &PolicySet, incoming: PolicySet) -> PolicySet {
    fn merge_vec<T>(base: &[T], incoming: Vec<T>, id: impl Fn(&T) -> uuid::Uuid) -> Vec<T>
    where
        T: Clone,
    {
        let mut out = base.to_vec();
        for item in incoming {
            match out.iter_mut().find(|x| id(x) == id(&item)) {
                Some(slot) => *slot = item,
                None => out.push(item),
            }
        }
        out
    }
    PolicySet {
        policies: merge_vec(&base.policies, incoming.policies, |p| p.id),
        filter_lists: merge_vec(&base.filter_lists, incoming.filter_lists, |l| l.id),
        filter_actions: merge_vec(&base.filter_actions, incoming.filter_actions, |a| a.id),
    }
}

/// The preshared keys of a method list, in order.
fn keys_of(methods: &[AuthMethod]) -> impl Iterator<Item = &PresharedKey> {
    methods.iter().filter_map(|m| match m {
        AuthMethod::PresharedKey { key } => Some(key),
        _ => None,
    })
}

fn restore(
    methods: &mut [AuthMethod],
    stored: Option<&[AuthMethod]>,
    object: impl Fn() -> ObjectRef,
) -> Result<(), FileError> {
    let stored: Vec<&PresharedKey> = stored.map(|m| keys_of(m).collect()).unwrap_or_default();
    let mut n = 0;
    for m in methods {
        if let AuthMethod::PresharedKey { key } = m {
            if *key == PresharedKey::Redacted {
                match stored.get(n) {
                    Some(PresharedKey::Secret(s)) => *key = PresharedKey::Secret(s.clone()),
                    _ => return Err(FileError::RedactedKeyNotInStore(object())),
                }
            }
            n += 1;
        }
    }
    Ok(())
}

fn restore_keys(incoming: &mut PolicySet, existing: &PolicySet) -> Result<(), FileError> {
    for p in &mut incoming.policies {
        let old = existing.policy(p.id);
        let name = p.name.clone();
        for r in &mut p.rules {
            let stored = old
                .and_then(|o| o.rules.iter().find(|x| x.id == r.id))
                .map(|x| x.auth_methods.as_slice());
            let (rid, rname) = (r.id, r.name.clone());
            restore(&mut r.auth_methods, stored, || ObjectRef {
                kind: "rule",
                name: format!("{name}/{rname}"),
                id: rid,
            })?;
        }
        let dr = &mut p.default_response;
        let stored = old
            .filter(|o| o.default_response.id == dr.id)
            .map(|o| o.default_response.auth_methods.as_slice());
        let did = dr.id;
        restore(&mut dr.auth_methods, stored, || ObjectRef {
            kind: "default response rule",
            name: name.clone(),
            id: did,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{self, default_store};

    #[test]
    fn default_store_round_trips_byte_identically() {
        let set = default_store();
        let text = export(&set, ExportKeys::Include).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(back, set);
        assert_eq!(export(&back, ExportKeys::Include).unwrap(), text);
        assert!(
            text.starts_with("format = \"ipsec-policy\"\nversion = 1\n"),
            "{text}"
        );
    }

    #[test]
    fn export_redacts_keys_by_default() {
        let text = export(&default_store(), ExportKeys::Redact).unwrap();
        assert!(!text.contains(defaults::LAB_PRESHARED_KEY));
        assert!(text.contains("redacted = true"));
        let with = export(&default_store(), ExportKeys::Include).unwrap();
        assert!(with.contains(defaults::LAB_PRESHARED_KEY));
    }

    #[test]
    fn redacted_key_is_taken_from_the_store() {
        let set = default_store();
        let text = export(&set, ExportKeys::Redact).unwrap();
        assert_eq!(import(&text, &set).unwrap(), set);
    }

    #[test]
    fn redacted_key_unknown_to_the_store_is_refused() {
        let text = export(&default_store(), ExportKeys::Redact).unwrap();
        let err = import(&text, &PolicySet::default()).unwrap_err();
        assert!(
            matches!(err, FileError::RedactedKeyNotInStore(ref o) if o.kind == "rule"),
            "{err}"
        );
    }

    #[test]
    fn refuses_other_formats_and_versions() {
        assert_eq!(parse("version = 1"), Err(FileError::NotAPolicyFile(None)));
        assert_eq!(
            parse("format = \"x\"\nversion = 1"),
            Err(FileError::NotAPolicyFile(Some("x".into())))
        );
        assert_eq!(
            parse("format = \"ipsec-policy\"\nversion = 4"),
            Err(FileError::UnsupportedVersion(Some(4)))
        );
        assert!(matches!(
            parse("format = \"ipsec-policy\"\nversion = 1\nbogus = 3"),
            Err(FileError::Syntax(_))
        ));
        assert!(matches!(parse("[[["), Err(FileError::Syntax(_))));
    }

    fn with_offload() -> PolicySet {
        let mut set = default_store();
        let a = set
            .filter_actions
            .iter_mut()
            .find(|a| matches!(a.action, Action::Negotiate(_)))
            .unwrap();
        if let Action::Negotiate(n) = &mut a.action {
            n.offload = true;
        }
        set
    }

    #[test]
    fn offload_is_written_as_version_2_and_round_trips_byte_identically() {
        let set = with_offload();
        let text = export(&set, ExportKeys::Include).unwrap();
        assert!(
            text.starts_with("format = \"ipsec-policy\"\nversion = 2\n"),
            "{text}"
        );
        assert_eq!(text.matches("offload = true").count(), 1, "{text}");
        let back = parse(&text).unwrap();
        assert_eq!(back, set);
        assert_eq!(export(&back, ExportKeys::Include).unwrap(), text);
    }

    #[test]
    fn a_set_without_offload_is_written_as_version_1_without_the_key() {
        let text = export(&default_store(), ExportKeys::Include).unwrap();
        assert!(!text.contains("offload"), "{text}");
        // A version-2 file without offload reads too (a later export writes version 1).
        let v2 = text.replacen("version = 1", "version = 2", 1);
        assert_eq!(parse(&v2).unwrap(), default_store());
    }

    #[test]
    fn an_old_version_1_file_reads_with_offload_off() {
        // Written by the build before the setting existed: no `offload` key anywhere.
        let old = "format = \"ipsec-policy\"\nversion = 1\npolicy = []\nfilter-list = []\n\n[[filter-action]]\n\
                   id = \"6a0e6cb2-2b4b-4bd0-9d7e-0c0f2f9d4a11\"\nversion = 3\nname = \"Old\"\n\
                   description = \"\"\n\n[filter-action.action]\nkind = \"negotiate\"\n\
                   inbound-pass-through = false\nfall-back-to-clear = true\nqm-pfs = false\n\n\
                   [[filter-action.action.methods]]\nlifetime-kb = 100000\nlifetime-seconds = 3600\n\n\
                   [filter-action.action.methods.esp]\nencryption = \"aes128\"\nintegrity = \"sha1\"\n";
        let set = parse(old).unwrap();
        let Action::Negotiate(n) = &set.filter_actions[0].action else {
            panic!("{set:?}")
        };
        assert!(!n.offload && n.fall_back_to_clear);
        assert_eq!(export(&set, ExportKeys::Include).unwrap(), old);
    }

    #[test]
    fn offload_in_a_version_1_file_is_refused() {
        let text = export(&with_offload(), ExportKeys::Include)
            .unwrap()
            .replacen("version = 2", "version = 1", 1);
        assert!(matches!(
            parse(&text),
            Err(FileError::NewerSetting {
                version: 1,
                needs: 2,
                ..
            })
        ));
    }

    fn with_aes_gcm(offload: bool) -> PolicySet {
        let mut set = default_store();
        let a = set
            .filter_actions
            .iter_mut()
            .find(|a| matches!(a.action, Action::Negotiate(_)))
            .unwrap();
        if let Action::Negotiate(n) = &mut a.action {
            n.methods
                .insert(0, QuickModeMethod::esp_aead(Encryption::Aes128Gcm16));
            n.methods
                .insert(1, QuickModeMethod::esp_aead(Encryption::Aes256Gcm16));
            n.offload = offload;
        }
        set
    }

    #[test]
    fn aes_gcm_is_written_as_version_3_and_round_trips_byte_identically() {
        for offload in [false, true] {
            let set = with_aes_gcm(offload);
            let text = export(&set, ExportKeys::Include).unwrap();
            assert!(
                text.starts_with("format = \"ipsec-policy\"\nversion = 3\n"),
                "{text}"
            );
            assert_eq!(text.matches("encryption = \"aes128gcm16\"").count(), 1);
            assert_eq!(text.matches("encryption = \"aes256gcm16\"").count(), 1);
            assert_eq!(text.contains("offload = true"), offload);
            let back = parse(&text).unwrap();
            assert_eq!(back, set);
            assert_eq!(export(&back, ExportKeys::Include).unwrap(), text);
            assert_eq!(import(&text, &set).unwrap(), set);
        }
        // A GCM method stands alone in its ESP table: no integrity key.
        let text = export(&with_aes_gcm(false), ExportKeys::Include).unwrap();
        assert!(
            text.contains("[filter-action.action.methods.esp]\nencryption = \"aes128gcm16\"\n\n"),
            "{text}"
        );
    }

    #[test]
    fn aes_gcm_in_an_older_version_is_refused() {
        let text = export(&with_aes_gcm(true), ExportKeys::Include).unwrap();
        for old in [1, 2] {
            let t = text.replacen("version = 3", &format!("version = {old}"), 1);
            let err = parse(&t).unwrap_err();
            assert!(
                matches!(err, FileError::NewerSetting { needs, .. } if needs == if old == 1 { 2 } else { 3 }),
                "{err}"
            );
        }
        let t = export(&with_aes_gcm(false), ExportKeys::Include)
            .unwrap()
            .replacen("version = 3", "version = 2", 1);
        let err = parse(&t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy file version 2 cannot hold an AES-GCM cipher (aes128gcm16, aes256gcm16); write version = 3"
        );
        // An offload-only set is still version 2.
        let t = export(&with_offload(), ExportKeys::Include).unwrap();
        assert!(t.starts_with("format = \"ipsec-policy\"\nversion = 2\n"));
    }

    #[test]
    fn import_validates_the_merged_set_before_returning_it() {
        let set = default_store();
        let mut bad = set.clone();
        bad.policies[0].isakmp.methods.clear();
        let text = export(&bad, ExportKeys::Include).unwrap();
        assert!(matches!(import(&text, &set), Err(FileError::Invalid(_))));
    }

    #[test]
    fn import_replaces_objects_by_guid_and_appends_new_ones() {
        let set = default_store();
        let mut changed = PolicySet {
            filter_actions: vec![set.filter_actions[0].clone()],
            ..Default::default()
        };
        changed.filter_actions[0].description = "changed".into();
        let mut new_list = set.filter_lists[0].clone();
        new_list.id = new_id();
        new_list.name = "New list".into();
        for f in &mut new_list.filters {
            f.id = new_id();
        }
        changed.filter_lists.push(new_list);
        let merged = import(&export(&changed, ExportKeys::Include).unwrap(), &set).unwrap();
        assert_eq!(merged.filter_actions.len(), set.filter_actions.len());
        assert_eq!(merged.filter_actions[0].description, "changed");
        assert_eq!(merged.filter_lists.len(), set.filter_lists.len() + 1);
    }
}
