//! The directory and cache policy sources of the retrieval chain (issue #6) and the status
//! file `ipsecadm directory status` reads.
//!
//! [`LdapSource`] connects at each poll, checks the host's assignment (at start, every
//! `assignment-check-minutes`, and on a refresh), compares the assigned policy's
//! version-only fingerprint with the last download and downloads the policy whole only when
//! it changed; a downloaded policy is validated and written to the store's cache before it
//! is returned. [`CacheSource`] returns the cached copy only when the directory is
//! configured but could not deliver (unreachable, or no good policy yet); a cache that does
//! not decode or validate is reported and skipped. When the directory answers that no
//! policy is assigned, the cache is cleared and the local policy applies.
//!
//! A policy read while it is being published does not match the component digests its
//! head records ([`DirectoryError::Inconsistent`]): it is read again a few times, then
//! handled like a malformed one. A malformed directory policy is logged with the entry at
//! fault and the last good policy (in memory, else the cache) stays. Not here: the LDAP details (`ipsec-directory`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipsec_directory::{Client, DirectoryConfig, DirectoryError, Fingerprint, Resolution};
use ipsec_policy::store::{CachedPolicy, DirectorySource as CacheOrigin};
use ipsec_policy::Store;
use serde::Serialize;

use crate::service::{Agent, PolicySource, PolicyState, Retrieval, Retrieved, StoreView};

/// How often a poll reads again a policy that is being published
/// ([`DirectoryError::Inconsistent`]).
const INCONSISTENT_RETRIES: usize = 5;
/// The pause before reading it again.
const INCONSISTENT_PAUSE: Duration = Duration::from_millis(100);

/// The last good directory policy.
#[derive(Debug, Clone)]
struct Current {
    dn: String,
    version: u64,
    fingerprint: Fingerprint,
    retrieved: Retrieved,
}

/// What the directory said at the last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub(crate) enum LastResult {
    /// No directory configured.
    NotConfigured,
    /// Not polled yet.
    NotPolled,
    /// A policy, freshly downloaded or unchanged.
    Policy {
        /// Its DN.
        dn: String,
        /// Its ipsecVersion.
        version: u64,
        /// Whether this poll downloaded it.
        downloaded: bool,
    },
    /// Reachable, but nothing is assigned to this host.
    NoPolicy {
        /// Why.
        reason: String,
    },
    /// The directory could not deliver.
    Failed {
        /// The error.
        error: String,
    },
}

/// State shared by the two sources and the status file.
#[derive(Debug)]
pub(crate) struct DirectoryState {
    config: Option<Result<DirectoryConfig, String>>,
    store_dir: PathBuf,
    assignment: Option<(Instant, String, Resolution)>,
    force_assignment: bool,
    current: Option<Current>,
    last: LastResult,
    last_poll: Option<(u64, Duration)>,
    cache_note: Option<String>,
    downloads: u64,
}

/// The shared state.
pub(crate) type Shared = Arc<Mutex<DirectoryState>>;

fn lock(s: &Shared) -> MutexGuard<'_, DirectoryState> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loads the configuration (`None`: no directory) and makes the shared state.
pub(crate) fn shared(config: Option<&Path>, store_dir: &Path) -> Shared {
    let config = config.map(|p| DirectoryConfig::load(p).map_err(|e| e.to_string()));
    if let Some(Err(e)) = &config {
        tracing::error!(error = %e, "directory configuration unusable; the cached directory policy applies");
    }
    let last = if config.is_some() {
        LastResult::NotPolled
    } else {
        LastResult::NotConfigured
    };
    Arc::new(Mutex::new(DirectoryState {
        config,
        store_dir: store_dir.to_path_buf(),
        assignment: None,
        force_assignment: true,
        current: None,
        last,
        last_poll: None,
        cache_note: None,
        downloads: 0,
    }))
}

/// The chain directory → cache → local over `shared`.
pub(crate) fn sources(shared: &Shared) -> Vec<Box<dyn PolicySource>> {
    vec![
        Box::new(LdapSource(shared.clone())),
        Box::new(CacheSource(shared.clone())),
        Box::new(crate::service::LocalSource),
    ]
}

/// The directory source.
#[derive(Debug)]
pub(crate) struct LdapSource(Shared);

impl DirectoryState {
    fn poll(&mut self) -> Retrieval {
        let cfg = match &self.config {
            None => return Retrieval::NotConfigured,
            Some(Err(e)) => return Retrieval::Failed(e.clone()),
            Some(Ok(c)) => c.clone(),
        };
        let mut client = match Client::connect(&cfg) {
            Ok(c) => c,
            Err(e) => return Retrieval::Failed(e.to_string()),
        };
        let due = self.force_assignment
            || self
                .assignment
                .as_ref()
                .is_none_or(|(at, _, _)| at.elapsed() >= cfg.assignment_interval());
        if due {
            match client.assignment() {
                Ok((host, r)) => {
                    tracing::info!(host = %host, resolution = ?r, "directory assignment checked");
                    self.assignment = Some((Instant::now(), host, r));
                    self.force_assignment = false;
                }
                Err(e) => return Retrieval::Failed(e.to_string()),
            }
        }
        let resolution = self
            .assignment
            .as_ref()
            .map_or(Resolution::Unassigned, |(_, _, r)| r.clone());
        let policy_dn = match resolution {
            Resolution::Policy { policy, .. } => policy,
            Resolution::Unassigned | Resolution::Blocked { .. } => {
                if self.current.take().is_some() || due {
                    self.clear_cache();
                }
                let reason = match resolution {
                    Resolution::Blocked { container } => {
                        format!("inheritance blocked at {container}")
                    }
                    _ => "no policy assigned to this host".to_owned(),
                };
                self.last = LastResult::NoPolicy {
                    reason: reason.clone(),
                };
                return Retrieval::NoPolicy;
            }
        };
        if let Some(cur) = &self.current {
            if ipsec_directory::dn::same(&cur.dn, &policy_dn) {
                match client.fingerprint(&policy_dn) {
                    Ok(f) if f == cur.fingerprint => {
                        tracing::debug!(dn = %policy_dn, "directory policy unchanged");
                        self.last = LastResult::Policy {
                            dn: cur.dn.clone(),
                            version: cur.version,
                            downloaded: false,
                        };
                        return Retrieval::Policy(cur.retrieved.clone());
                    }
                    Ok(_) => tracing::info!(dn = %policy_dn, "directory policy changed"),
                    Err(e) => return Retrieval::Failed(e.to_string()),
                }
            }
        }
        let started = Instant::now();
        // A publish in progress shows as an inconsistent policy: read again a few times
        // before keeping the last good one until the next poll.
        let mut downloaded = client.download(&policy_dn);
        for _ in 0..INCONSISTENT_RETRIES {
            if !matches!(downloaded, Err(DirectoryError::Inconsistent { .. })) {
                break;
            }
            std::thread::sleep(INCONSISTENT_PAUSE);
            downloaded = client.download(&policy_dn);
        }
        match downloaded {
            Ok(d) => {
                tracing::info!(
                    dn = %d.dn,
                    version = d.version,
                    entries = d.entries,
                    ms = started.elapsed().as_millis() as u64,
                    "directory policy downloaded and validated"
                );
                let retrieved = Retrieved {
                    set: d.set.clone(),
                    policy: d.id,
                    validated: true,
                };
                let cached = CachedPolicy {
                    source: CacheOrigin {
                        dn: d.dn.clone(),
                        version: d.version,
                        retrieved_unix: now_unix(),
                    },
                    assigned: d.id,
                    set: d.set,
                };
                // Validated by the download: the cache write does not validate it again.
                if let Err(e) =
                    Store::open(&self.store_dir).and_then(|s| s.set_cache_validated(&cached))
                {
                    tracing::error!(error = %e, "cannot write the directory policy to the cache");
                }
                self.last = LastResult::Policy {
                    dn: d.dn.clone(),
                    version: d.version,
                    downloaded: true,
                };
                self.downloads += 1;
                self.current = Some(Current {
                    dn: d.dn,
                    version: d.version,
                    fingerprint: d.fingerprint,
                    retrieved: retrieved.clone(),
                });
                Retrieval::Policy(retrieved)
            }
            Err(e) => {
                tracing::error!(error = %e, "directory policy rejected; the last good policy stays");
                match &self.current {
                    Some(cur) => {
                        self.last = LastResult::Failed {
                            error: format!("{e} (last good version {} kept)", cur.version),
                        };
                        Retrieval::Policy(cur.retrieved.clone())
                    }
                    None => Retrieval::Failed(e.to_string()),
                }
            }
        }
    }

    fn clear_cache(&self) {
        if let Err(e) = Store::open(&self.store_dir).and_then(|s| s.clear_cache()) {
            tracing::error!(error = %e, "cannot clear the cached directory policy");
        }
    }
}

impl PolicySource for LdapSource {
    fn name(&self) -> &'static str {
        "directory"
    }
    fn state(&self) -> PolicyState {
        PolicyState::DirectoryDownloaded
    }
    fn retrieve(&self, _: &StoreView) -> Retrieval {
        let mut s = lock(&self.0);
        let started = Instant::now();
        let r = s.poll();
        if let Retrieval::Failed(e) = &r {
            s.last = LastResult::Failed { error: e.clone() };
        }
        if s.config.is_some() {
            s.last_poll = Some((now_unix(), started.elapsed()));
        }
        r
    }
    fn refresh(&self) {
        lock(&self.0).force_assignment = true;
    }
    fn next_check(&self) -> Option<Duration> {
        let s = lock(&self.0);
        let cfg = s.config.as_ref()?.as_ref().ok()?;
        Some(match &s.assignment {
            Some((at, _, _)) => cfg.assignment_interval().saturating_sub(at.elapsed()),
            None => cfg.assignment_interval(),
        })
    }
}

/// The cached copy of the last directory policy.
#[derive(Debug)]
pub(crate) struct CacheSource(Shared);

impl PolicySource for CacheSource {
    fn name(&self) -> &'static str {
        "cache"
    }
    fn state(&self) -> PolicyState {
        PolicyState::CacheDownloaded
    }
    fn retrieve(&self, view: &StoreView) -> Retrieval {
        let mut s = lock(&self.0);
        match &s.last {
            LastResult::NotConfigured => return Retrieval::NotConfigured,
            LastResult::NoPolicy { .. } => return Retrieval::NoPolicy,
            _ => {}
        }
        let Some(c) = view.cache.get() else {
            return Retrieval::NoPolicy;
        };
        let usable = ipsec_policy::validate(&c.set)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                c.set
                    .policy(c.assigned)
                    .map(|_| ())
                    .ok_or_else(|| format!("assigned policy {{{}}} is missing", c.assigned))
            });
        match usable {
            Ok(()) => {
                s.cache_note = Some(format!(
                    "{} version {} retrieved at {}",
                    c.source.dn, c.source.version, c.source.retrieved_unix
                ));
                Retrieval::Policy(Retrieved {
                    set: c.set.clone(),
                    policy: c.assigned,
                    validated: true,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "the cached directory policy is unusable; skipped");
                Retrieval::Failed(format!("cached directory policy unusable: {e}"))
            }
        }
    }
}

/// The status file: `<run-dir>/status.json`.
pub(crate) fn status_path(run_dir: &Path) -> PathBuf {
    run_dir.join("status.json")
}

#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    written_unix: u64,
    policy_state: String,
    operational_mode: String,
    polling_seconds: u64,
    directory: DirStatus<'a>,
}

#[derive(Serialize)]
struct DirStatus<'a> {
    configured: bool,
    url: Option<&'a str>,
    host: Option<&'a str>,
    assignment: Option<String>,
    last: &'a LastResult,
    last_poll_unix: Option<u64>,
    last_poll_ms: Option<f64>,
    downloads: u64,
    cache: Option<&'a str>,
}

/// Writes the agent's state and the directory's to the status file (atomically).
pub(crate) fn write_status(run_dir: &Path, agent: &Agent, shared: &Shared) {
    // Before the lock: the agent's polling interval asks the sources, which lock too.
    let polling_seconds = agent.polling_interval().as_secs();
    let s = lock(shared);
    let cfg = s.config.as_ref().and_then(|c| c.as_ref().ok());
    let status = Status {
        pid: std::process::id(),
        written_unix: now_unix(),
        policy_state: agent.state().to_string(),
        operational_mode: format!("{:?}", agent.mode()).to_lowercase(),
        polling_seconds,
        directory: DirStatus {
            configured: s.config.is_some(),
            url: cfg.map(|c| c.url.as_str()),
            host: s.assignment.as_ref().map(|(_, h, _)| h.as_str()),
            assignment: s.assignment.as_ref().map(|(_, _, r)| match r {
                Resolution::Policy { policy, container } => {
                    format!("{policy} (assigned at {container})")
                }
                Resolution::Unassigned => "none".to_owned(),
                Resolution::Blocked { container } => {
                    format!("none (inheritance blocked at {container})")
                }
            }),
            last: &s.last,
            last_poll_unix: s.last_poll.map(|(t, _)| t),
            last_poll_ms: s.last_poll.map(|(_, d)| d.as_secs_f64() * 1000.0),
            downloads: s.downloads,
            cache: if agent.state() == PolicyState::CacheDownloaded {
                s.cache_note.as_deref()
            } else {
                None
            },
        },
    };
    let text = match serde_json::to_string_pretty(&status) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode the status");
            return;
        }
    };
    let path = status_path(run_dir);
    let tmp = run_dir.join(".status.json.tmp");
    if let Err(e) = std::fs::create_dir_all(run_dir)
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path))
    {
        tracing::warn!(error = %e, path = %path.display(), "cannot write the status file");
    }
}

#[cfg(test)]
mod tests;
