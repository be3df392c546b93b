//! The local store: one transactional, crash-safe redb database file holding
//!
//! - the **local** policies and which one is assigned ([`Location::Local`]),
//! - the **persistent** policies and which one is assigned ([`Location::Persistent`]),
//!   applied before the local or directory policy at start-up,
//! - the **cached** copy of the last directory policy with its source ([`CachedPolicy`]),
//! - the agent [`Settings`].
//!
//! Every change is one redb write transaction (read, modify, validate, commit), committed
//! with immediate durability: a writer killed at any point leaves the previous or the new
//! state, never a mix. Each entry is a versioned TOML document (the policy file format plus
//! a header), so a store entry and an export read the same way. A schema version or entry
//! this crate does not understand gives [`StoreError`] and nothing is written.
//!
//! The file is `policy.redb` in the store directory ([`default_dir`]: `/var/lib/ipsec` on
//! Linux, `/var/db/ipsec` on FreeBSD), created with mode 0600 in a 0700 directory because
//! it holds preshared keys. redb locks the file: one process opens the store at a time, so
//! `ipsecadm` goes through the agent or opens the store while the agent is stopped.
//!
//! Not here: the directory (LDAP) client, which only calls [`Store::set_cache`].

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::defaults::default_store;
use crate::file::{self, ExportKeys, FileError};
use crate::model::PolicySet;
use crate::settings::Settings;
use crate::validate::{validate, validate_settings, ValidationErrors};

/// The store's file name inside its directory.
pub const FILE_NAME: &str = "policy.redb";
/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("ipsec");
const KEY_SCHEMA: &str = "schema";
const KEY_LOCAL: &str = "local";
const KEY_PERSISTENT: &str = "persistent";
const KEY_CACHE: &str = "cache";
const KEY_SETTINGS: &str = "settings";

/// The default store directory of this operating system.
pub fn default_dir() -> PathBuf {
    if cfg!(target_os = "freebsd") {
        PathBuf::from("/var/db/ipsec")
    } else {
        PathBuf::from("/var/lib/ipsec")
    }
}

/// A store location with its own policies and assignment (netsh `set store location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// Local policies.
    Local,
    /// Persistent policies, applied first at start-up.
    Persistent,
}

impl Location {
    fn key(self) -> &'static str {
        match self {
            Self::Local => KEY_LOCAL,
            Self::Persistent => KEY_PERSISTENT,
        }
    }
}

/// What one location holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LocationContents {
    /// The assigned policy, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Uuid>,
    /// The policies, filter lists and filter actions.
    pub set: PolicySet,
}

/// The cached copy of the last directory policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CachedPolicy {
    /// Where it came from.
    pub source: DirectorySource,
    /// The assigned policy within `set`.
    pub assigned: Uuid,
    /// The policy and the shared objects it uses.
    pub set: PolicySet,
}

/// The directory source of a cached policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DirectorySource {
    /// Distinguished name of the policy object.
    pub dn: String,
    /// Its change version in the directory (`whenChanged`).
    pub version: u64,
    /// When it was retrieved, in seconds since the Unix epoch.
    pub retrieved_unix: u64,
}

/// Why a store operation failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation on the store directory or file.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The database itself (corrupt file, locked by another process, I/O).
    #[error("policy store {path}: {source}")]
    Database {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        source: Box<redb::Error>,
    },
    /// The store was written by a newer (or unknown) version of this software.
    #[error("policy store schema version {found:?} is not supported (this version reads {SCHEMA_VERSION}); nothing was changed")]
    UnsupportedSchema {
        /// The stored value.
        found: String,
    },
    /// An entry does not decode.
    #[error("policy store entry {key:?} is corrupt: {reason}; nothing was changed")]
    CorruptEntry {
        /// The entry.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The change would leave invalid policies or settings.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// An assignment names a policy the location does not hold.
    #[error("no policy {{{0}}} in this store location")]
    UnknownPolicy(Uuid),
    /// An import or export failed.
    #[error(transparent)]
    File(#[from] FileError),
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    db: redb::Database,
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Entry<T> {
    format: String,
    version: i64,
    data: T,
}

const ENTRY_FORMAT: &str = "ipsec-policy-store";

fn encode<T: Serialize>(key: &'static str, data: &T) -> Result<Vec<u8>, StoreError> {
    let entry = Entry {
        format: ENTRY_FORMAT.to_owned(),
        version: SCHEMA_VERSION,
        data,
    };
    toml::to_string(&entry)
        .map(String::into_bytes)
        .map_err(|e| StoreError::CorruptEntry {
            key,
            reason: format!("cannot encode: {e}"),
        })
}

fn decode<T: for<'de> Deserialize<'de>>(key: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::CorruptEntry { key, reason };
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?;
    let entry: Entry<T> = toml::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if entry.format != ENTRY_FORMAT || entry.version != SCHEMA_VERSION {
        return Err(corrupt(format!(
            "format {:?} version {}, expected {ENTRY_FORMAT:?} version {SCHEMA_VERSION}",
            entry.format, entry.version
        )));
    }
    Ok(entry.data)
}

/// How long [`Store::open`] waits for another process (policyd reading the store, another
/// `ipsecadm`) to close the file before it reports the store as busy.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the redb file, retrying while another process holds its lock: every user of the
/// store opens it for one transaction and closes it again, so the lock is short-lived.
fn open_waiting_for_lock(path: &Path) -> Result<redb::Database, redb::DatabaseError> {
    let started = std::time::Instant::now();
    loop {
        match redb::Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens the store in `dir`, creating the directory (0700), the file (0600) and, in a
    /// new store, the default contents: the embedded default policies in the local
    /// location (none assigned), an empty persistent location, default settings. While
    /// another process has the file open it waits up to 10 s for it to close.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        let path = dir.join(FILE_NAME);
        // Create the file with its final mode before redb writes a byte into it.
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err(&path))?;
        let db = open_waiting_for_lock(&path).map_err(|e| StoreError::Database {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let store = Self { db, path };
        store.initialise()?;
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err<E: Into<redb::Error>>(&self) -> impl Fn(E) -> StoreError + '_ {
        move |e| StoreError::Database {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn initialise(&self) -> Result<(), StoreError> {
        match self.raw(KEY_SCHEMA)? {
            Some(v) if v == SCHEMA_VERSION.to_string().as_bytes() => return Ok(()),
            Some(v) => {
                return Err(StoreError::UnsupportedSchema {
                    found: String::from_utf8_lossy(&v).into_owned(),
                })
            }
            None => {}
        }
        let local = LocationContents {
            assigned: None,
            set: default_store(),
        };
        let entries = [
            (KEY_LOCAL, encode(KEY_LOCAL, &local)?),
            (
                KEY_PERSISTENT,
                encode(KEY_PERSISTENT, &LocationContents::default())?,
            ),
            (KEY_SETTINGS, encode(KEY_SETTINGS, &Settings::default())?),
            (KEY_SCHEMA, SCHEMA_VERSION.to_string().into_bytes()),
        ];
        self.write(|txn_entries| {
            txn_entries.extend(entries);
            Ok(())
        })
    }

    fn raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(self.db_err())?;
        let table = match txn.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.db_err()(e)),
        };
        let value = table.get(key).map_err(self.db_err())?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn read<T: for<'de> Deserialize<'de>>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.raw(key)?.map(|b| decode(key, &b)).transpose()
    }

    fn read_required<T: for<'de> Deserialize<'de>>(
        &self,
        key: &'static str,
    ) -> Result<T, StoreError> {
        self.read(key)?.ok_or_else(|| StoreError::CorruptEntry {
            key,
            reason: "missing".into(),
        })
    }

    /// Runs `prepare` to collect the entries to write, then writes them all in one
    /// transaction. `prepare` runs before the transaction starts writing, so an error in it
    /// writes nothing.
    fn write(
        &self,
        prepare: impl FnOnce(&mut Vec<(&'static str, Vec<u8>)>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut entries = Vec::new();
        prepare(&mut entries)?;
        let txn = self.db.begin_write().map_err(self.db_err())?;
        {
            let mut table = txn.open_table(TABLE).map_err(self.db_err())?;
            for (k, v) in &entries {
                table.insert(*k, v.as_slice()).map_err(self.db_err())?;
            }
        }
        txn.commit().map_err(self.db_err())
    }

    /// A location's policies and assignment.
    pub fn location(&self, location: Location) -> Result<LocationContents, StoreError> {
        self.read_required(location.key())
    }

    /// Changes a location: `change` edits a copy, the result is validated (the set, and the
    /// assignment must name a policy of the set) and written in one transaction. On any
    /// error nothing is written. Returns the new contents.
    ///
    /// The write transaction is held from the read to the commit, so concurrent writers in
    /// this process cannot interleave.
    pub fn update<F>(&self, location: Location, change: F) -> Result<LocationContents, StoreError>
    where
        F: FnOnce(&mut LocationContents) -> Result<(), StoreError>,
    {
        let key = location.key();
        let txn = self.db.begin_write().map_err(self.db_err())?;
        let new = {
            let mut table = txn.open_table(TABLE).map_err(self.db_err())?;
            let old: LocationContents = match table.get(key).map_err(self.db_err())? {
                Some(v) => decode(key, v.value())?,
                None => {
                    return Err(StoreError::CorruptEntry {
                        key,
                        reason: "missing".into(),
                    })
                }
            };
            let mut new = old.clone();
            change(&mut new)?;
            validate(&new.set).map_err(StoreError::Invalid)?;
            if let Some(id) = new.assigned {
                if new.set.policy(id).is_none() {
                    return Err(StoreError::UnknownPolicy(id));
                }
            }
            crate::versions::bump(&old.set, &mut new.set);
            let bytes = encode(key, &new)?;
            table.insert(key, bytes.as_slice()).map_err(self.db_err())?;
            new
        };
        txn.commit().map_err(self.db_err())?;
        Ok(new)
    }

    /// Assigns a policy of the location (or none).
    pub fn assign(&self, location: Location, policy: Option<Uuid>) -> Result<(), StoreError> {
        self.update(location, |c| {
            c.assigned = policy;
            Ok(())
        })
        .map(drop)
    }

    /// Imports a policy file into a location (merging by GUID, keys of redacted entries
    /// taken from the location), validating the whole result first.
    pub fn import(&self, location: Location, text: &str) -> Result<LocationContents, StoreError> {
        self.update(location, |c| {
            c.set = file::import(text, &c.set)?;
            Ok(())
        })
    }

    /// Exports a location's policies.
    pub fn export(&self, location: Location, keys: ExportKeys) -> Result<String, StoreError> {
        Ok(file::export(&self.location(location)?.set, keys)?)
    }

    /// The cached directory policy, if any.
    pub fn cache(&self) -> Result<Option<CachedPolicy>, StoreError> {
        self.read(KEY_CACHE)
    }

    /// Replaces the cached directory policy after validating it.
    pub fn set_cache(&self, cached: &CachedPolicy) -> Result<(), StoreError> {
        validate(&cached.set).map_err(StoreError::Invalid)?;
        self.set_cache_validated(cached)
    }

    /// [`Store::set_cache`] for a set the caller has just validated with [`validate`] (the
    /// directory client validates every download): it is not validated again.
    pub fn set_cache_validated(&self, cached: &CachedPolicy) -> Result<(), StoreError> {
        if cached.set.policy(cached.assigned).is_none() {
            return Err(StoreError::UnknownPolicy(cached.assigned));
        }
        let bytes = encode(KEY_CACHE, cached)?;
        self.write(|e| {
            e.push((KEY_CACHE, bytes));
            Ok(())
        })
    }

    /// Forgets the cached directory policy.
    pub fn clear_cache(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(self.db_err())?;
        {
            let mut table = txn.open_table(TABLE).map_err(self.db_err())?;
            table.remove(KEY_CACHE).map_err(self.db_err())?;
        }
        txn.commit().map_err(self.db_err())
    }

    /// The agent settings.
    pub fn settings(&self) -> Result<Settings, StoreError> {
        self.read_required(KEY_SETTINGS)
    }

    /// Replaces the agent settings after checking their ranges.
    pub fn set_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        validate_settings(settings).map_err(StoreError::Invalid)?;
        let bytes = encode(KEY_SETTINGS, settings)?;
        self.write(|e| {
            e.push((KEY_SETTINGS, bytes));
            Ok(())
        })
    }

    /// Reads and checks every entry: the schema, both locations, the cache and the
    /// settings, each decoded and validated. What the agent runs at start-up.
    pub fn check(&self) -> Result<(), StoreError> {
        for location in [Location::Local, Location::Persistent] {
            let c = self.location(location)?;
            validate(&c.set).map_err(StoreError::Invalid)?;
            if let Some(id) = c.assigned {
                if c.set.policy(id).is_none() {
                    return Err(StoreError::UnknownPolicy(id));
                }
            }
        }
        if let Some(c) = self.cache()? {
            validate(&c.set).map_err(StoreError::Invalid)?;
        }
        validate_settings(&self.settings()?).map_err(StoreError::Invalid)
    }

    /// Writes raw bytes under an entry key. For tests of corrupt stores only.
    #[doc(hidden)]
    pub fn write_raw_for_tests(&self, key: &'static str, bytes: &[u8]) -> Result<(), StoreError> {
        let bytes = bytes.to_vec();
        self.write(|e| {
            e.push((key, bytes));
            Ok(())
        })
    }
}
