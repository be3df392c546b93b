//! The agent's decisions: the start-up sequence, policy retrieval, the service loop's
//! reactions and shutdown, against an [`Effects`] trait so that tests drive them with
//! fakes and the daemon with the real store, rtnetlink, nft, XFRM and ikd.
//!
//! # Start-up (seed, "Policy Agent Initialization")
//!
//! 1. initialise the intervals from the store settings ([`Step::InitIntervals`]);
//! 2. start the interface manager ([`Step::StartInterfaceManager`]);
//! 3. set the driver mode: the boot mode's firewall, kept until a policy is applied
//!    ([`Step::SetDriverMode`]);
//! 4. start ikd ([`Step::StartIkd`]);
//! 5. load the policy: the persistent policy first and alone ([`Step::ApplyPersistent`]),
//!    then the persistent and the retrieved one together ([`Step::ApplyAssigned`]); when both
//!    are in the kernel the boot firewall is removed ([`Step::OpenFirewall`]);
//! 6. the service loop (the caller): [`Agent::poll`] at [`Agent::polling_interval`],
//!    [`Agent::interfaces_changed`], [`Agent::refresh`] on SIGHUP, [`Agent::shutdown`] on
//!    SIGTERM.
//!
//! # Retrieval
//!
//! [`PolicySource`]s are asked in order directory → cache → local; the first that has a
//! policy wins and names the [`PolicyState`]. The daemon's directory and cache sources are
//! in `crate::directory` (LDAP, issue #6); the stubs here report "not configured" (tests,
//! no directory). The local source returns the assigned local policy. Without a policy the state is [`PolicyState::Initial`] and polling uses the
//! default interval.
//!
//! # Operational modes
//!
//! [`OperationalMode::Boot`] until the first complete apply; [`OperationalMode::Secure`]
//! once the policies are in the kernel; [`OperationalMode::Block`] when the persistent
//! policy (or the store itself) cannot be read or applied: the block ruleset with the boot
//! exemptions is (re)installed and stays until a later poll succeeds;
//! [`OperationalMode::Permit`] after [`Agent::shutdown`] (service stopped by the
//! administrator: owned kernel policies and the boot table removed, ikd stopped).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use ipsec_agent::apply::execute;
use ipsec_agent::{apply, compile, plan, CompileOptions, DesiredState, ReqidKey};
use ipsec_policy::settings::BootMode;
use ipsec_policy::store::CachedPolicy;
use ipsec_policy::{InterfaceSnapshot, LocationContents, Policy, PolicySet, Settings, StoreError};
use pfkey::{KernelInterface, Ownership};
use uuid::Uuid;

use crate::boot::Firewall;
use crate::ikdconf::{self, Applied};
use ipsec_agent::exempt::{
    apply_exemptions, exemption_policies, remove_exemptions, ExemptEnvironment,
};

/// Everything the agent reads from the store in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreView {
    /// Agent settings.
    pub(crate) settings: Settings,
    /// The local location.
    pub(crate) local: LocationContents,
    /// The persistent location.
    pub(crate) persistent: LocationContents,
    /// The cached directory policy.
    pub(crate) cache: CacheView,
}

/// The cached directory policy, decoded only when a source asks for it: the cache source
/// needs it only when the directory cannot deliver, and decoding a large policy costs more
/// than a whole unchanged poll.
pub(crate) struct CacheView {
    load: Option<Box<dyn Fn() -> Option<CachedPolicy>>>,
    cell: std::cell::OnceCell<Option<CachedPolicy>>,
}

impl CacheView {
    /// A cache read from the store by `load` when first asked for.
    pub(crate) fn lazy(load: impl Fn() -> Option<CachedPolicy> + 'static) -> Self {
        Self {
            load: Some(Box::new(load)),
            cell: std::cell::OnceCell::new(),
        }
    }

    /// The cached policy (`None`: none, or unusable).
    pub(crate) fn get(&self) -> Option<&CachedPolicy> {
        self.cell
            .get_or_init(|| self.load.as_ref().and_then(|f| f()))
            .as_ref()
    }
}

impl From<Option<CachedPolicy>> for CacheView {
    fn from(c: Option<CachedPolicy>) -> Self {
        Self {
            load: None,
            cell: std::cell::OnceCell::from(c),
        }
    }
}

impl Clone for CacheView {
    fn clone(&self) -> Self {
        match self.cell.get() {
            Some(c) => c.clone().into(),
            None => Self {
                load: None,
                cell: std::cell::OnceCell::from(self.get().cloned()),
            },
        }
    }
}

impl PartialEq for CacheView {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for CacheView {}

impl fmt::Debug for CacheView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.get() {
            Some(c) => f.debug_tuple("CacheView").field(c).finish(),
            None => f.write_str("CacheView(not read yet)"),
        }
    }
}

/// The agent's side effects. Each method is one step the tests can record.
pub(crate) trait Effects {
    /// Opens the store, reads it whole and closes it.
    fn read_store(&mut self) -> Result<StoreView, StoreError>;
    /// Starts watching interfaces; returns the first snapshot.
    fn start_interface_manager(&mut self) -> Result<InterfaceSnapshot, String>;
    /// A fresh snapshot.
    fn snapshot(&mut self) -> Result<InterfaceSnapshot, String>;
    /// Makes the boot firewall hold `firewall`.
    fn set_firewall(&mut self, firewall: &Firewall) -> Result<(), String>;
    /// The kernel.
    fn kernel(&mut self) -> &mut dyn KernelInterface;
    /// Writes ikd's configuration and starts ikd, or, when the configuration changed,
    /// hands it to the running ikd live (restarting ikd only if it does not take it).
    fn configure_ikd(&mut self, config: &str) -> Result<(), String>;
    /// Stops ikd.
    fn stop_ikd(&mut self);
    /// Prepares the default exemptions for `level` (sets the kernel module's level when it
    /// is loaded) and returns what the exemption policies depend on; `None` when this
    /// implementation does not manage exemptions (the default, e.g. the tests' fake).
    fn exemptions(&mut self, _level: ipsec_exempt::Level) -> Option<ExemptEnvironment> {
        None
    }
}

/// The seed's named policy states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyState {
    /// No policy loaded.
    Initial,
    /// Retrieved from the directory.
    DirectoryDownloaded,
    /// Loaded from the cache of the last directory policy.
    CacheDownloaded,
    /// Loaded from the local store.
    LocalDownloaded,
}

impl fmt::Display for PolicyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initial => "initial",
            Self::DirectoryDownloaded => "directory downloaded",
            Self::CacheDownloaded => "cache downloaded",
            Self::LocalDownloaded => "local downloaded",
        })
    }
}

/// The agent's operational mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationalMode {
    /// The boot mode's firewall is in force (before the first complete apply).
    Boot(BootMode),
    /// The policies are applied.
    Secure,
    /// The persistent policy cannot be applied: everything but the exemptions is blocked.
    Block,
    /// The agent was stopped by the administrator: nothing is filtered.
    Permit,
}

/// A policy one source delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retrieved {
    /// The set holding it.
    pub(crate) set: PolicySet,
    /// The policy's GUID in `set`.
    pub(crate) policy: Uuid,
    /// The source has validated `set` ([`ipsec_policy::validate`]; the directory client
    /// validates each download, the cache source the cached copy): compiling it does not
    /// validate it again.
    pub(crate) validated: bool,
}

/// What a source answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retrieval {
    /// A policy.
    Policy(Retrieved),
    /// The source exists but assigns no policy.
    NoPolicy,
    /// The source is not configured on this computer.
    NotConfigured,
    /// The source failed.
    Failed(String),
}

/// One place a policy can come from.
pub(crate) trait PolicySource {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// The state a policy from here puts the agent in.
    fn state(&self) -> PolicyState;
    /// Retrieves the policy.
    fn retrieve(&self, view: &StoreView) -> Retrieval;
    /// A refresh was requested: re-check everything at the next retrieval.
    fn refresh(&self) {}
    /// The longest the agent may wait before the next poll for this source's own periodic
    /// check (the directory's assignment check).
    fn next_check(&self) -> Option<Duration> {
        None
    }
}

/// A directory that is not configured (tests; the daemon's is `crate::directory`).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct DirectorySource;

#[cfg(test)]
impl PolicySource for DirectorySource {
    fn name(&self) -> &'static str {
        "directory"
    }
    fn state(&self) -> PolicyState {
        PolicyState::DirectoryDownloaded
    }
    fn retrieve(&self, _: &StoreView) -> Retrieval {
        Retrieval::NotConfigured
    }
}

/// The cache of a directory that is not configured (tests; the daemon's is
/// `crate::directory`).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct CacheSource;

#[cfg(test)]
impl PolicySource for CacheSource {
    fn name(&self) -> &'static str {
        "cache"
    }
    fn state(&self) -> PolicyState {
        PolicyState::CacheDownloaded
    }
    fn retrieve(&self, _: &StoreView) -> Retrieval {
        Retrieval::NotConfigured
    }
}

/// The assigned local policy.
#[derive(Debug, Default)]
pub(crate) struct LocalSource;

impl PolicySource for LocalSource {
    fn name(&self) -> &'static str {
        "local"
    }
    fn state(&self) -> PolicyState {
        PolicyState::LocalDownloaded
    }
    fn retrieve(&self, view: &StoreView) -> Retrieval {
        match view.local.assigned {
            None => Retrieval::NoPolicy,
            Some(id) if view.local.set.policy(id).is_some() => Retrieval::Policy(Retrieved {
                set: view.local.set.clone(),
                policy: id,
                validated: false,
            }),
            Some(id) => Retrieval::Failed(format!("assigned policy {{{id}}} is missing")),
        }
    }
}

/// A policy and the state its source gives.
pub(crate) type Found = (Retrieved, PolicyState);
/// What each source answered, in order.
pub(crate) type Trail = Vec<(&'static str, Retrieval)>;

/// The chain without a directory: directory → cache → local (tests).
#[cfg(test)]
pub(crate) fn default_sources() -> Vec<Box<dyn PolicySource>> {
    vec![
        Box::new(DirectorySource),
        Box::new(CacheSource),
        Box::new(LocalSource),
    ]
}

/// Asks the sources in order; the first policy wins. Also returns what each source said,
/// for logs and tests.
pub(crate) fn retrieve(
    sources: &[Box<dyn PolicySource>],
    view: &StoreView,
) -> (Option<Found>, Trail) {
    let mut trail = Vec::new();
    for s in sources {
        let r = s.retrieve(view);
        if let Retrieval::Policy(p) = &r {
            let found = (p.clone(), s.state());
            trail.push((s.name(), r));
            return (Some(found), trail);
        }
        trail.push((s.name(), r));
    }
    (None, trail)
}

/// One recorded step of the agent (start-up order, tests, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Settings read, intervals set.
    InitIntervals,
    /// Interface manager started.
    StartInterfaceManager,
    /// Boot firewall set for this mode.
    SetDriverMode(BootMode),
    /// ikd configured and started.
    StartIkd,
    /// Persistent policy applied (`false`: there is none).
    ApplyPersistent(bool),
    /// Persistent + retrieved policy applied, with the resulting state.
    ApplyAssigned(PolicyState),
    /// Boot firewall removed.
    OpenFirewall,
    /// Block mode entered.
    EnterBlock,
}

/// The inputs of the last successful apply, to detect changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Applied0 {
    persistent: Option<Retrieved>,
    assigned: Option<Retrieved>,
    snapshot: InterfaceSnapshot,
}

/// The agent's state.
pub(crate) struct Agent {
    sources: Vec<Box<dyn PolicySource>>,
    ownership: Ownership,
    settings: Settings,
    state: PolicyState,
    mode: OperationalMode,
    polling: Duration,
    polling_override: Option<Duration>,
    snapshot: InterfaceSnapshot,
    reqids: BTreeMap<ReqidKey, u32>,
    applied: Option<Applied0>,
    /// The kernel state of the last successful apply (for the fall-back-to-clear hook and
    /// ikd's `match-negotiation`).
    desired: Option<DesiredState>,
    /// The connections of the ikd.conf generated last, for `match-negotiation`.
    negotiation: ikdconf::NegotiationIndex,
    /// Whether the owned kernel policies are exactly `desired` (nothing installed or removed
    /// outside an apply since): the next apply plans against it instead of a kernel dump.
    spd_exact: bool,
    /// The default response rule's dynamic filters, by peer (kept through applies).
    dynamic: BTreeMap<std::net::IpAddr, Vec<pfkey::Policy>>,
    steps: Vec<Step>,
    /// The default-exemption policies installed (`None`: none, or not managed).
    exemptions: Option<Vec<pfkey::Policy>>,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("state", &self.state)
            .field("mode", &self.mode)
            .field("polling", &self.polling)
            .finish_non_exhaustive()
    }
}

fn minutes(m: u32) -> Duration {
    Duration::from_secs(u64::from(m) * 60)
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The persistent policy could not be applied.
    #[error("persistent policy: {0}")]
    Persistent(String),
    /// The retrieved policy could not be applied (the persistent one is in force).
    #[error("assigned policy: {0}")]
    Assigned(String),
}

impl Agent {
    /// A new agent with these sources; `polling_override` replaces every polling interval.
    pub(crate) fn new(
        sources: Vec<Box<dyn PolicySource>>,
        polling_override: Option<Duration>,
    ) -> Self {
        let settings = Settings::default();
        Self {
            sources,
            ownership: Ownership::default(),
            polling: polling_override
                .unwrap_or_else(|| minutes(settings.directory_polling_minutes)),
            settings,
            state: PolicyState::Initial,
            mode: OperationalMode::Boot(BootMode::Stateful),
            polling_override,
            snapshot: InterfaceSnapshot::default(),
            reqids: BTreeMap::new(),
            applied: None,
            desired: None,
            negotiation: ikdconf::NegotiationIndex::default(),
            spd_exact: false,
            dynamic: BTreeMap::new(),
            steps: Vec::new(),
            exemptions: None,
        }
    }

    /// The policy state.
    pub(crate) fn state(&self) -> PolicyState {
        self.state
    }

    /// The operational mode.
    pub(crate) fn mode(&self) -> OperationalMode {
        self.mode
    }

    /// The interval until the next store poll: the policy's polling interval, or sooner
    /// when a source's periodic check is due.
    pub(crate) fn polling_interval(&self) -> Duration {
        self.sources
            .iter()
            .filter_map(|s| s.next_check())
            .fold(self.polling, Duration::min)
    }

    /// The steps taken so far.
    #[cfg(test)]
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    fn step(&mut self, s: Step) {
        tracing::debug!(step = ?s, "agent step");
        self.steps.push(s);
    }

    fn default_polling(&self) -> Duration {
        self.polling_override
            .unwrap_or_else(|| minutes(self.settings.directory_polling_minutes))
    }

    /// The start-up sequence (module docs). Errors are logged and reflected in the mode;
    /// the service loop runs in every case.
    pub(crate) fn start(&mut self, fx: &mut dyn Effects) {
        let view = fx.read_store();
        match &view {
            Ok(v) => {
                self.settings = v.settings.clone();
                self.polling = self.default_polling();
            }
            Err(e) => tracing::error!(error = %e, "cannot read the policy store"),
        }
        self.step(Step::InitIntervals);

        match fx.start_interface_manager() {
            Ok(s) => self.snapshot = s,
            Err(e) => tracing::error!(error = %e, "interface manager: no snapshot"),
        }
        self.step(Step::StartInterfaceManager);

        let boot = self.settings.boot_mode;
        let fw = Firewall::for_mode(boot, &self.settings.boot_exemptions);
        if let Err(e) = fx.set_firewall(&fw) {
            tracing::error!(error = %e, mode = ?boot, "cannot set the boot mode");
        }
        self.mode = OperationalMode::Boot(boot);
        self.step(Step::SetDriverMode(boot));

        let Ok(view) = view else {
            self.start_ikd(fx, &[], &DesiredState::default());
            self.enter_block(fx);
            return;
        };
        let (found, _) = retrieve(&self.sources, &view);
        let ikd_inputs = self.ikd_inputs(&view, found.as_ref().map(|(r, _)| r));
        let ikd_refs: Vec<Applied<'_>> = ikd_inputs
            .iter()
            .filter_map(|r| {
                r.set.policy(r.policy).map(|policy| Applied {
                    set: &r.set,
                    policy,
                })
            })
            .collect();
        let desired = self.compile_all(&ikd_inputs).unwrap_or_default();
        self.start_ikd(fx, &ikd_refs, &desired);
        let _ = self.load(fx, &view);
    }

    fn ikd_inputs(&self, view: &StoreView, found: Option<&Retrieved>) -> Vec<Retrieved> {
        let mut v = Vec::new();
        if let Some(id) = view.persistent.assigned {
            v.push(Retrieved {
                set: view.persistent.set.clone(),
                policy: id,
                validated: false,
            });
        }
        v.extend(found.cloned());
        v
    }

    fn start_ikd(&mut self, fx: &mut dyn Effects, applied: &[Applied<'_>], d: &DesiredState) {
        let (text, index) = ikdconf::generate_indexed(applied, d);
        self.negotiation = index;
        if let Err(e) = fx.configure_ikd(&text) {
            tracing::error!(error = %e, "cannot start ikd");
        }
        self.step(Step::StartIkd);
    }

    fn compile_one(
        &self,
        r: &Retrieved,
        reqids: &BTreeMap<ReqidKey, u32>,
    ) -> Result<DesiredState, String> {
        let policy: &Policy = r
            .set
            .policy(r.policy)
            .ok_or_else(|| format!("policy {{{}}} is missing", r.policy))?;
        if !r.validated {
            ipsec_policy::validate(&r.set).map_err(|e| e.to_string())?;
        }
        compile(
            &r.set,
            policy,
            &self.snapshot,
            &CompileOptions {
                gateway: false,
                previous_reqids: reqids.clone(),
                ownership: self.ownership.clone(),
            },
        )
        .map_err(|e| e.to_string())
    }

    /// Compiles the policies (persistent first) and merges them: an entry of a later policy
    /// with the same kernel identity as an earlier one is dropped (the persistent policy
    /// wins), reqids are united.
    fn compile_all(&self, inputs: &[Retrieved]) -> Result<DesiredState, String> {
        let mut merged = DesiredState::default();
        // Identities merged so far (a set, not a scan of the merged entries per entry).
        let mut ids = HashSet::new();
        for r in inputs {
            let d = self.compile_one(r, &self.reqids)?;
            for e in d.entries {
                if ids.insert(e.policy.id) {
                    merged.entries.push(e);
                }
            }
            for (key, reqid) in d.reqids {
                if merged.reqids.values().any(|&r| r == reqid) {
                    return Err(format!(
                        "reqid {reqid:#x} of rule {{{}}} is taken by the persistent policy",
                        key.rule
                    ));
                }
                merged.reqids.insert(key, reqid);
            }
            merged.notes.extend(d.notes);
        }
        Ok(merged)
    }

    /// Applies `d` to the kernel. When the owned kernel policies are known to be exactly the
    /// last applied state ([`Agent::spd_exact`]) the plan is made against that state instead
    /// of a dump of the whole SPD (tens of thousands of policies for a large policy); if that
    /// plan fails in the kernel (something changed behind the agent's back) it was rolled
    /// back, and the apply is redone against a dump.
    fn apply_state(&mut self, fx: &mut dyn Effects, d: &DesiredState) -> Result<(), String> {
        let started = Instant::now();
        let exact = self.spd_exact;
        self.spd_exact = false;
        if let (true, Some(prev)) = (exact, &self.desired) {
            let installed: Vec<pfkey::Policy> = prev.policies().cloned().collect();
            match plan(&installed, d, &self.ownership)
                .and_then(|changes| execute(fx.kernel(), &changes))
            {
                Ok(report) => {
                    tracing::info!(
                        ?report,
                        ms = started.elapsed().as_millis() as u64,
                        "kernel policies applied (planned against the last applied state)"
                    );
                    self.spd_exact = true;
                    return Ok(());
                }
                Err(e) => tracing::warn!(error = %e,
                    "applying against the last applied state failed; re-planning against the kernel"),
            }
        }
        let report = apply(fx.kernel(), d, &self.ownership).map_err(|e| e.to_string())?;
        tracing::info!(
            ?report,
            ms = started.elapsed().as_millis() as u64,
            "kernel policies applied"
        );
        self.spd_exact = true;
        Ok(())
    }

    fn enter_block(&mut self, fx: &mut dyn Effects) {
        let fw = Firewall::for_mode(BootMode::Block, &self.settings.boot_exemptions);
        if let Err(e) = fx.set_firewall(&fw) {
            tracing::error!(error = %e, "cannot enter block mode");
        }
        if self.mode != OperationalMode::Block {
            tracing::warn!("operational mode block: the persistent policy cannot be applied");
        }
        self.mode = OperationalMode::Block;
        self.applied = None;
        self.desired = None;
        self.step(Step::EnterBlock);
    }

    /// The default exemptions follow the `ipsecexempt` setting: the kernel module's level
    /// and the allow policies (`ipsec_agent::exempt`), reinstalled when they change.
    fn sync_exemptions(&mut self, fx: &mut dyn Effects) {
        let level = ipsec_exempt::Level::from_u32(u32::from(self.settings.ipsec_exempt))
            .unwrap_or_default();
        let Some(env) = fx.exemptions(level) else {
            return;
        };
        let desired = exemption_policies(level, &env);
        if self.exemptions.as_ref() == Some(&desired) {
            return;
        }
        self.spd_exact = false;
        match apply_exemptions(fx.kernel(), &desired) {
            Ok(r) => {
                tracing::info!(
                    level = level.value(),
                    module = env.module_mark.is_some(),
                    added = r.added,
                    removed = r.removed,
                    skipped_ipv6 = r.skipped,
                    "default exemptions"
                );
                self.exemptions = Some(desired);
            }
            Err(e) => tracing::error!(error = %e, "cannot install the default exemptions"),
        }
    }

    /// Loads and applies the policies from `view`: persistent alone, then persistent plus
    /// the retrieved one, then opens the firewall.
    fn load(&mut self, fx: &mut dyn Effects, view: &StoreView) -> Result<(), ApplyError> {
        self.settings = view.settings.clone();
        self.sync_exemptions(fx);
        let persistent = view.persistent.assigned.map(|id| Retrieved {
            set: view.persistent.set.clone(),
            policy: id,
            validated: false,
        });
        let (found, trail) = retrieve(&self.sources, view);
        for (name, r) in &trail {
            match r {
                Retrieval::Failed(e) => {
                    tracing::warn!(source = name, error = %e, "policy source failed")
                }
                other => {
                    tracing::debug!(source = name, result = ?std::mem::discriminant(other), "policy source")
                }
            }
        }
        let candidate = Applied0 {
            persistent: persistent.clone(),
            assigned: found.as_ref().map(|(r, _)| r.clone()),
            snapshot: self.snapshot.clone(),
        };
        if self.applied.as_ref() == Some(&candidate) && self.mode == OperationalMode::Secure {
            tracing::debug!("policy unchanged");
            return Ok(());
        }

        // 1. The persistent policy, alone, only while it is not in force yet (at start or
        //    out of block mode): afterwards the combined apply below is one diff.
        let persistent_state = match &persistent {
            Some(p) => match self.compile_all(std::slice::from_ref(p)) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(error = %e, "persistent policy cannot be compiled");
                    self.enter_block(fx);
                    return Err(ApplyError::Persistent(e));
                }
            },
            None => None,
        };
        if self.applied.is_none() {
            if let Some(d) = &persistent_state {
                if let Err(e) = self.apply_state(fx, d) {
                    tracing::error!(error = %e, "persistent policy cannot be applied");
                    self.enter_block(fx);
                    return Err(ApplyError::Persistent(e));
                }
                // The kernel holds the persistent policy alone, not `self.desired`.
                self.spd_exact = false;
            }
            self.step(Step::ApplyPersistent(persistent_state.is_some()));
        }

        // 2. Persistent + retrieved.
        let inputs: Vec<Retrieved> = persistent
            .iter()
            .cloned()
            .chain(candidate.assigned.clone())
            .collect();
        let state = found.as_ref().map_or(PolicyState::Initial, |(_, s)| *s);
        let desired = match self.compile_all(&inputs) {
            Ok(mut d) => {
                // The default response rule's dynamic filters stay while their SAs live.
                for p in self.dynamic.values().flatten() {
                    if !d.entries.iter().any(|e| e.policy.id == p.id) {
                        d.entries.push(ipsec_agent::DesiredEntry {
                            policy: p.clone(),
                            rule: Uuid::nil(),
                            filter: Uuid::nil(),
                            fall_back_to_clear: false,
                        });
                    }
                }
                d
            }
            Err(e) => {
                tracing::error!(error = %e, "the retrieved policy cannot be compiled; keeping the previous state");
                return Err(ApplyError::Assigned(e));
            }
        };
        if let Err(e) = self.apply_state(fx, &desired) {
            tracing::error!(error = %e, "the retrieved policy cannot be applied; keeping the previous state");
            if self.mode == OperationalMode::Block {
                return Err(ApplyError::Persistent(e));
            }
            return Err(ApplyError::Assigned(e));
        }
        self.reqids = desired.reqids.clone();
        self.desired = Some(desired.clone());
        self.state = state;
        self.polling = match found.as_ref() {
            Some((r, _)) => self.polling_override.unwrap_or_else(|| {
                r.set.policy(r.policy).map_or_else(
                    || self.default_polling(),
                    |p| minutes(p.polling_interval_minutes),
                )
            }),
            None => self.default_polling(),
        };
        self.step(Step::ApplyAssigned(state));
        tracing::info!(state = %state, polling_s = self.polling.as_secs(), "policy applied");

        // ikd follows the applied policies.
        let refs: Vec<Applied<'_>> = inputs
            .iter()
            .filter_map(|r| {
                r.set.policy(r.policy).map(|policy| Applied {
                    set: &r.set,
                    policy,
                })
            })
            .collect();
        let (text, index) = ikdconf::generate_indexed(&refs, &desired);
        self.negotiation = index;
        if let Err(e) = fx.configure_ikd(&text) {
            tracing::error!(error = %e, "cannot configure ikd");
        }

        // 3. Everything is in the kernel: drop the boot (or block) firewall.
        if self.mode != OperationalMode::Secure {
            if let Err(e) = fx.set_firewall(&Firewall::Open) {
                tracing::error!(error = %e, "cannot remove the boot firewall");
            } else {
                self.step(Step::OpenFirewall);
            }
        }
        self.mode = OperationalMode::Secure;
        self.applied = Some(candidate);
        Ok(())
    }

    /// A polling-interval timeout or a refresh request: reads the store and re-applies
    /// when anything changed.
    pub(crate) fn poll(&mut self, fx: &mut dyn Effects) {
        match fx.read_store() {
            Ok(view) => {
                let _ = self.load(fx, &view);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the policy store; retrying at the next poll");
                if self.applied.is_none() && !matches!(self.mode, OperationalMode::Boot(_)) {
                    self.enter_block(fx);
                }
            }
        }
    }

    /// SIGHUP (`ipsecadm refresh`): poll now.
    pub(crate) fn refresh(&mut self, fx: &mut dyn Effects) {
        tracing::info!("refresh requested");
        for s in &self.sources {
            s.refresh();
        }
        self.poll(fx);
    }

    /// Interface addresses may have changed: re-expand and re-apply when the snapshot
    /// differs.
    pub(crate) fn interfaces_changed(&mut self, fx: &mut dyn Effects) {
        let snapshot = match fx.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the interfaces");
                return;
            }
        };
        if snapshot == self.snapshot {
            return;
        }
        tracing::info!(
            addresses = snapshot.addresses.len(),
            "interface addresses changed"
        );
        self.snapshot = snapshot;
        if self.mode == OperationalMode::Secure || self.mode == OperationalMode::Block {
            self.poll(fx);
        }
    }

    /// SIGTERM: stop ikd, remove the owned kernel objects and the boot firewall (operational
    /// mode permit).
    pub(crate) fn shutdown(&mut self, fx: &mut dyn Effects) {
        fx.stop_ikd();
        if self.exemptions.take().is_some() {
            if let Err(e) = remove_exemptions(fx.kernel()) {
                tracing::error!(error = %e, "cannot remove the default exemptions");
            }
        }
        match self.ownership.delete_owned(fx.kernel()) {
            Ok(r) => tracing::info!(
                policies = r.policies,
                sas = r.sas,
                "owned kernel objects removed"
            ),
            Err(e) => tracing::error!(error = %e, "cannot remove the owned kernel objects"),
        }
        if let Err(e) = fx.set_firewall(&Firewall::Open) {
            tracing::error!(error = %e, "cannot remove the boot firewall");
        }
        self.mode = OperationalMode::Permit;
        self.applied = None;
        self.desired = None;
        self.dynamic.clear();
    }

    /// ikd reports that `peer` does not answer IKE (seed: fall back to clear, "soft SA").
    /// For every outbound filter of the applied policies whose action allows unsecured
    /// communication with non-IPsec-aware computers and whose destination covers `peer`,
    /// installs the agent's fall-back policies ([`DesiredState::fall_back_to_clear`]):
    /// narrow `allow` policies for that peer with an idle lifetime, which later applies
    /// keep. Returns how many kernel policies were installed.
    pub(crate) fn fall_back_to_clear(
        &mut self,
        fx: &mut dyn Effects,
        peer: std::net::IpAddr,
    ) -> Result<usize, FallBackError> {
        let desired = self.desired.as_ref().ok_or(FallBackError::NotApplied)?;
        let soft: Vec<pfkey::Policy> = desired
            .entries
            .iter()
            .filter(|e| e.fall_back_to_clear && e.policy.id.direction == pfkey::Direction::Out)
            .filter_map(|e| desired.fall_back_to_clear(&e.policy.id, peer).ok())
            .flatten()
            .collect();
        if soft.is_empty() {
            return Err(FallBackError::NotAllowed(peer));
        }
        let mut installed = 0;
        self.spd_exact = false;
        for p in &soft {
            fx.kernel()
                .update_policy(p)
                .map_err(|e| FallBackError::Kernel(e.to_string()))?;
            installed += 1;
        }
        tracing::warn!(%peer, policies = installed,
            idle_s = ipsec_agent::compile::SOFT_CLEAR_IDLE_SECONDS,
            "peer does not answer IKE: falling back to clear (soft SA)");
        Ok(installed)
    }
}

impl Agent {
    /// ikd asks which connection answers a peer's quick mode (`match-negotiation`): the
    /// verdict of [`crate::negotiation::verdict`] from the last applied state. An error
    /// when no policy is applied (ikd then matches locally).
    pub(crate) fn match_negotiation(
        &self,
        q: &ipsec_control::NegotiationQuery,
    ) -> Result<ipsec_control::NegotiationVerdict, String> {
        let desired = self.desired.as_ref().ok_or("no policy is applied")?;
        Ok(crate::negotiation::verdict(desired, &self.negotiation, q))
    }

    /// ikd answered `peer` with the default response rule (seed, step 3) and installed SAs
    /// with `reqid`: installs the dynamic filter, a pair of host-to-host kernel policies
    /// for the negotiated traffic (outbound `require`, inbound `use`, like a negotiate
    /// filter) at the highest priority of the owned band, so the replies go through those
    /// SAs. It stays through later applies until [`Agent::remove_dynamic_filter`].
    pub(crate) fn add_dynamic_filter(
        &mut self,
        fx: &mut dyn Effects,
        filter: &DynamicFilter,
    ) -> Result<usize, String> {
        use pfkey::{Direction, Policy, PolicyAction, PolicyId, Prefix, Selector, Template};
        if self.desired.is_none() {
            return Err("no policy is applied".into());
        }
        let d = filter;
        if !self.ownership.reqids.contains(&d.reqid) {
            return Err(format!("reqid {:#x} is outside the owned band", d.reqid));
        }
        let upper = |sport: u16, dport: u16| match d.protocol {
            0 => pfkey::UpperLayer::Any,
            proto => pfkey::UpperLayer::Proto {
                proto,
                source_port: (sport != 0).then_some(sport),
                destination_port: (dport != 0).then_some(dport),
            },
        };
        let template = |level| Template {
            protocol: if d.ah {
                pfkey::SecurityProtocol::Ah
            } else {
                pfkey::SecurityProtocol::Esp
            },
            mode: pfkey::Mode::Transport,
            reqid: d.reqid,
            tunnel: None,
            level,
        };
        let policy = |source, destination, upper, direction, level| Policy {
            id: PolicyId {
                selector: Selector {
                    source: Prefix::host(source),
                    destination: Prefix::host(destination),
                    upper,
                },
                direction,
                mark: None,
            },
            action: PolicyAction::Protect(vec![template(level)]),
            priority: *self.ownership.priorities.start(),
            index: None,
            lifetime: pfkey::Lifetime::default(),
        };
        let policies = vec![
            policy(
                d.local,
                d.peer,
                upper(d.local_port, d.remote_port),
                Direction::Out,
                pfkey::TemplateLevel::Require,
            ),
            policy(
                d.peer,
                d.local,
                upper(d.remote_port, d.local_port),
                Direction::In,
                pfkey::TemplateLevel::Use,
            ),
        ];
        self.spd_exact = false;
        for p in &policies {
            fx.kernel().update_policy(p).map_err(|e| e.to_string())?;
        }
        tracing::info!(peer = %d.peer, local = %d.local, protocol = d.protocol,
            reqid = %format_args!("{:#x}", d.reqid), "default response rule: dynamic filter installed");
        let n = policies.len();
        self.dynamic.insert(d.peer, policies);
        Ok(n)
    }

    /// ikd died (its SAs were removed): removes every dynamic filter.
    pub(crate) fn remove_dynamic_filters(&mut self, fx: &mut dyn Effects) {
        let peers: Vec<std::net::IpAddr> = self.dynamic.keys().copied().collect();
        for peer in peers {
            if let Err(e) = self.remove_dynamic_filter(fx, peer) {
                tracing::error!(%peer, error = %e, "cannot remove the dynamic filter");
            }
        }
    }

    /// The last default-response SA with `peer` is gone: removes its dynamic filter.
    pub(crate) fn remove_dynamic_filter(
        &mut self,
        fx: &mut dyn Effects,
        peer: std::net::IpAddr,
    ) -> Result<usize, String> {
        let Some(policies) = self.dynamic.remove(&peer) else {
            return Ok(0);
        };
        self.spd_exact = false;
        let mut n = 0;
        for p in &policies {
            match fx.kernel().delete_policy(&p.id) {
                Ok(()) => n += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        tracing::info!(%peer, policies = n, "default response rule: dynamic filter removed");
        Ok(n)
    }
}

/// A dynamic filter ikd asked for (see [`Agent::add_dynamic_filter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DynamicFilter {
    /// Our address.
    pub(crate) local: std::net::IpAddr,
    /// The peer.
    pub(crate) peer: std::net::IpAddr,
    /// IP protocol (0 any).
    pub(crate) protocol: u8,
    /// Our port (0 any).
    pub(crate) local_port: u16,
    /// The peer's port (0 any).
    pub(crate) remote_port: u16,
    /// The SAs' reqid.
    pub(crate) reqid: u32,
    /// AH instead of ESP.
    pub(crate) ah: bool,
}

/// Why [`Agent::fall_back_to_clear`] installed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FallBackError {
    /// No policy is applied.
    #[error("no policy is applied")]
    NotApplied,
    /// No applied filter towards the peer allows falling back to clear.
    #[error("no rule allowing unsecured communication with non-IPsec-aware computers covers {0}")]
    NotAllowed(std::net::IpAddr),
    /// The kernel refused a policy.
    #[error("kernel: {0}")]
    Kernel(String),
}

#[cfg(test)]
mod tests;
