//! `ipsecadm directory`: the LDAP directory policy store (`man 5 ipsec-ldap`). Publishing
//! takes a policy of the `--location` store location (netsh `set store location`) and
//! writes it and its components to the directory; assignment and inheritance blocking
//! change a container (domain or organizational unit); `show` lists the directory's
//! policies and this host's assignment; `status` reads the running agent's status file:
//! where the active policy came from.
//!
//! `--location directory` (netsh `set store location=domain`) points the static commands
//! at the directory: `run_static` shows its policies, adds a policy and changes or assigns
//! one, each write through `Client::publish` / `Client::assign`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ipsec_directory::{dn, mapping, schema, Client, DirectoryConfig, Resolution};
use ipsec_policy::PolicySet;
use serde_json::json;
use uuid::Uuid;

use crate::cli::{PolicyArgs, StaticAdd, StaticCmd, StaticSet};
use crate::error::Error;
use crate::output::Table;
use crate::{parse, statics, Ctx};

type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCmd {
    /// Write a policy of the store location (and its filter lists and actions) to the
    /// directory.
    Publish(PublishArgs),
    /// Assign a published policy to a container (domain or organizational unit).
    Assign(AssignArgs),
    /// Remove a container's assignment.
    Unassign(ContainerArgs),
    /// Set or clear a container's blocking of inherited assignments.
    Blockinheritance(BlockArgs),
    /// Show the directory's policies and this host's assignment.
    Show(ConfigArg),
    /// Show where the running agent's policy came from (its status file).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// Directory configuration file.
    #[arg(long, value_name = "FILE", default_value = ipsec_directory::config::DEFAULT_PATH)]
    pub(crate) config: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// Name of the policy in the store location.
    #[arg(long)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) config: ConfigArg,
}

#[derive(Debug, Args)]
pub(crate) struct AssignArgs {
    /// DN of the container.
    #[arg(long, value_name = "DN")]
    pub(crate) container: String,
    /// Name of the published policy.
    #[arg(long)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) config: ConfigArg,
}

#[derive(Debug, Args)]
pub(crate) struct ContainerArgs {
    /// DN of the container.
    #[arg(long, value_name = "DN")]
    pub(crate) container: String,
    #[command(flatten)]
    pub(crate) config: ConfigArg,
}

#[derive(Debug, Args)]
pub(crate) struct BlockArgs {
    /// DN of the container.
    #[arg(long, value_name = "DN")]
    pub(crate) container: String,
    /// yes: ignore the parents' assignments; no: inherit them.
    #[arg(long, value_parser = parse::yes_no, action = clap::ArgAction::Set, value_name = "yes|no")]
    pub(crate) block: bool,
    #[command(flatten)]
    pub(crate) config: ConfigArg,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The agent's run directory.
    #[arg(long, value_name = "DIR", default_value = "/run/policyd")]
    pub(crate) rundir: PathBuf,
}

fn connect(config: &Path) -> Result<Client> {
    let cfg = DirectoryConfig::load(config).map_err(|e| {
        Error::Usage(format!(
            "the directory is not configured: {e} (see ipsec-ldap(5); --config or --directory-config names the file)"
        ))
    })?;
    Client::connect(&cfg).map_err(|e| Error::Service(e.to_string()))
}

fn dir_err(e: ipsec_directory::DirectoryError) -> Error {
    match e {
        ipsec_directory::DirectoryError::Unreachable { .. } => Error::Service(e.to_string()),
        _ => Error::Store(e.to_string()),
    }
}

pub(crate) fn run(ctx: &Ctx, cmd: DirectoryCmd) -> Result<()> {
    match cmd {
        DirectoryCmd::Publish(a) => {
            if ctx.directory.is_some() {
                return Err(Error::Usage(
                    "directory publish copies a policy of store location local or persistent; \
                     it cannot read from location directory"
                        .into(),
                ));
            }
            let store = ipsec_policy::Store::open(&ctx.store_dir)?;
            let set = store.location(ctx.location)?.set;
            drop(store);
            let id = set.policy_by_name(&a.name).map(|p| p.id).ok_or_else(|| {
                Error::Store(format!(
                    "no policy {:?} in store location {}",
                    a.name,
                    statics::location_name(ctx)
                ))
            })?;
            let dn = connect(&a.config.config)?
                .publish(&set, id)
                .map_err(dir_err)?;
            println!("published {:?} as {dn}", a.name);
        }
        DirectoryCmd::Assign(a) => {
            let mut c = connect(&a.config.config)?;
            let dn = c.policy_dn_by_name(&a.name).map_err(dir_err)?;
            c.assign(&a.container, Some(&dn)).map_err(dir_err)?;
            println!("assigned {:?} to {}", a.name, a.container);
        }
        DirectoryCmd::Unassign(a) => {
            connect(&a.config.config)?
                .assign(&a.container, None)
                .map_err(dir_err)?;
            println!("no policy assigned to {}", a.container);
        }
        DirectoryCmd::Blockinheritance(a) => {
            connect(&a.config.config)?
                .block_inheritance(&a.container, a.block)
                .map_err(dir_err)?;
            println!(
                "{} {} inherited assignments",
                a.container,
                if a.block { "blocks" } else { "inherits" }
            );
        }
        DirectoryCmd::Show(a) => show(ctx, &a.config)?,
        DirectoryCmd::Status(a) => status(ctx, &a.rundir)?,
    }
    Ok(())
}

fn show(ctx: &Ctx, config: &Path) -> Result<()> {
    let mut c = connect(config)?;
    let policies = c.policies().map_err(dir_err)?;
    let (host, r) = c.assignment().map_err(dir_err)?;
    let assignment = match &r {
        Resolution::Policy { policy, container } => format!("{policy} (assigned at {container})"),
        Resolution::Unassigned => "none".to_owned(),
        Resolution::Blocked { container } => format!("none (inheritance blocked at {container})"),
    };
    if ctx.json {
        let ps: Vec<_> = policies
            .iter()
            .map(|p| json!({"dn": p.dn, "name": p.name, "version": p.version}))
            .collect();
        println!(
            "{}",
            json!({"url": c.config().url, "container": c.config().container(), "policies": ps, "host": host, "assignment": assignment})
        );
        return Ok(());
    }
    println!("Directory: {}", c.config().url);
    println!("Container: {}", c.config().container());
    let mut t = Table::new(&["Policy", "Version", "DN"]);
    for p in &policies {
        t.row(vec![p.name.clone(), p.version.clone(), p.dn.clone()]);
    }
    print!("{}", t.render());
    println!("Host: {host}");
    println!("Assigned policy: {assignment}");
    Ok(())
}

/// Where the active policy came from, by the status file's `policy_state`.
fn source_text(v: &serde_json::Value) -> &'static str {
    match v["policy_state"].as_str() {
        Some("directory downloaded") => "directory",
        Some("cache downloaded") => "cache (directory policy cached locally)",
        Some("local downloaded") => "local store",
        _ => "none (waiting for a policy to be assigned)",
    }
}

/// The active policy's source for `dynamic show config`, from `status.json` in the
/// agent's run directory; says so when there is no readable status file.
pub(crate) fn active_source(run_dir: &Path) -> String {
    let path = run_dir.join("status.json");
    let v = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match v {
        Some(v) => match v["directory"]["assignment"].as_str() {
            Some(a) if v["policy_state"] != "local downloaded" => {
                format!("{} ({a})", source_text(&v))
            }
            _ => source_text(&v).to_owned(),
        },
        None => format!(
            "unknown (no readable agent status {}; is policyd running?)",
            path.display()
        ),
    }
}

fn status(ctx: &Ctx, run_dir: &Path) -> Result<()> {
    let path = run_dir.join("status.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Service(format!(
            "{}: {e} (is policyd running with this run directory?)",
            path.display()
        ))
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Service(format!("{}: {e}", path.display())))?;
    if ctx.json {
        println!("{v}");
        return Ok(());
    }
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let d = &v["directory"];
    let source = source_text(&v);
    println!("Policy state: {}", s(&v["policy_state"]));
    println!("Active policy source: {source}");
    println!("Operational mode: {}", s(&v["operational_mode"]));
    println!("Polling interval (s): {}", s(&v["polling_seconds"]));
    println!("Directory configured: {}", s(&d["configured"]));
    println!("Directory URL: {}", s(&d["url"]));
    println!("Host entry: {}", s(&d["host"]));
    println!("Assignment: {}", s(&d["assignment"]));
    let last = &d["last"];
    let last_text = match last["result"].as_str() {
        Some("policy") => format!(
            "policy {} version {}{}",
            s(&last["dn"]),
            s(&last["version"]),
            if last["downloaded"].as_bool() == Some(true) {
                " (downloaded)"
            } else {
                " (unchanged)"
            }
        ),
        Some("no-policy") => format!("no policy: {}", s(&last["reason"])),
        Some("failed") => format!("failed: {}", s(&last["error"])),
        Some(other) => other.to_owned(),
        None => "-".to_owned(),
    };
    println!("Last directory poll: {last_text}");
    println!("Last poll duration (ms): {}", s(&d["last_poll_ms"]));
    println!("Downloads since start: {}", s(&d["downloads"]));
    if !d["cache"].is_null() {
        println!("Cached copy: {}", s(&d["cache"]));
    }
    Ok(())
}

// ---------------------------------------------------------------- static, location directory

/// `static` commands on store location `directory`: show, add policy, set policy. The
/// others refer to components that only exist inside a published policy; they are made in
/// a local location and published with `directory publish`.
pub(crate) fn run_static(ctx: &Ctx, config: &Path, cmd: StaticCmd) -> Result<()> {
    match cmd {
        StaticCmd::Show(s) => {
            let mut c = connect(config)?;
            let (set, assigned) = download_all(&mut c)?;
            statics::show_set(ctx, s, &set, assigned)
        }
        StaticCmd::Add(StaticAdd::Policy(args)) => add_policy(ctx, config, &args),
        StaticCmd::Set(StaticSet::Policy(args)) => set_policy(ctx, config, &args),
        _ => Err(Error::Usage(
            "store location directory supports static show, add policy and set policy; \
             make other changes in store location local and copy the policy with \
             `ipsecadm directory publish`"
                .into(),
        )),
    }
}

/// Every policy of the directory's policy container, merged into one set (shared
/// components once), and the GUID of the policy that applies to this host.
fn download_all(c: &mut Client) -> Result<(PolicySet, Option<Uuid>)> {
    // A host without an entry has no assignment; that is not an error for show.
    let applies = match c.assignment() {
        Ok((_, Resolution::Policy { policy, .. })) => Some(policy),
        Ok(_) => None,
        Err(e @ ipsec_directory::DirectoryError::Unreachable { .. }) => return Err(dir_err(e)),
        Err(_) => None,
    };
    let mut set = PolicySet::default();
    let mut assigned = None;
    for p in c.policies().map_err(dir_err)? {
        let d = c.download(&p.dn).map_err(dir_err)?;
        if applies.as_deref().is_some_and(|a| dn::same(a, &d.dn)) {
            assigned = Some(d.id);
        }
        for x in d.set.policies {
            if set.policy(x.id).is_none() {
                set.policies.push(x);
            }
        }
        for x in d.set.filter_lists {
            if !set.filter_lists.iter().any(|l| l.id == x.id) {
                set.filter_lists.push(x);
            }
        }
        for x in d.set.filter_actions {
            if !set.filter_actions.iter().any(|a| a.id == x.id) {
                set.filter_actions.push(x);
            }
        }
    }
    Ok((set, assigned))
}

/// Whether `args` change a policy's settings (not only its assignment).
fn changes_settings(a: &PolicyArgs) -> bool {
    a.newname.is_some()
        || a.description.is_some()
        || a.mmpfs.is_some()
        || a.qmpermm.is_some()
        || a.mmlifetime.is_some()
        || a.pollinginterval.is_some()
        || a.mmsecmethods.is_some()
        || a.activatedefaultrule.is_some()
}

/// The container `assign=` changes: `--container`, else the domain.
fn assign_container(c: &Client, args: &PolicyArgs) -> String {
    args.container
        .clone()
        .unwrap_or_else(|| c.config().base.clone())
}

/// Sets or clears the assignment as `args.assign` says, after the policy `name` at
/// `policy_dn` was written (`written`): a failure says what is already in the directory.
fn apply_assign(
    c: &mut Client,
    args: &PolicyArgs,
    name: &str,
    policy_dn: &str,
    written: bool,
) -> Result<()> {
    let Some(assign) = args.assign else {
        return Ok(());
    };
    let container = assign_container(c, args);
    let r = if assign {
        c.assign(&container, Some(policy_dn))
    } else {
        // assign=no unassigns this policy only: another policy's assignment stays.
        match c.assigned_to(&container) {
            Ok(Some(d)) if dn::same(&d, policy_dn) => c.assign(&container, None),
            Ok(_) => {
                println!("{name:?} is not assigned to {container}; nothing to unassign");
                return Ok(());
            }
            Err(e) => Err(e),
        }
    };
    if let Err(e) = r {
        let e = dir_err(e);
        let msg = if written {
            format!("policy {name:?} was written to {policy_dn}, but the assignment failed: {e}")
        } else {
            e.to_string()
        };
        return Err(match e {
            Error::Service(_) => Error::Service(msg),
            _ => Error::Store(msg),
        });
    }
    if assign {
        println!("assigned {name:?} to {container}");
    } else {
        println!("no policy assigned to {container}");
    }
    Ok(())
}

fn add_policy(ctx: &Ctx, config: &Path, args: &PolicyArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(Error::Usage("add policy needs --name".into()));
    };
    if args.newname.is_some() || args.guid.is_some() {
        return Err(Error::Usage(
            "--newname and --guid apply to set policy only".into(),
        ));
    }
    if args.assign == Some(false) {
        return Err(Error::Usage(
            "add policy in store location directory takes assign=yes or no assign".into(),
        ));
    }
    let mut c = connect(config)?;
    let existing = c.policies().map_err(dir_err)?;
    let name = statics::new_name(existing.into_iter().map(|p| p.name), &name, "policy")?;
    let p = statics::new_policy(name.clone(), args);
    let id = p.id;
    let set = PolicySet {
        policies: vec![p],
        ..PolicySet::default()
    };
    let dn = c.publish(&set, id).map_err(dir_err)?;
    if !ctx.json {
        println!("added policy {name:?} {{{id}}} as {dn}");
    }
    apply_assign(&mut c, args, &name, &dn, true)
}

fn set_policy(ctx: &Ctx, config: &Path, args: &PolicyArgs) -> Result<()> {
    let r = statics::pick(&args.name, &args.guid)?.to_owned();
    if !changes_settings(args) && args.assign.is_none() {
        return Err(Error::Usage("set policy: nothing to change".into()));
    }
    let mut c = connect(config)?;
    let published = c.policies().map_err(dir_err)?;
    let by_guid = statics::parse_guid(&r)
        .map(|g| mapping::object_dn(schema::CLASS_POLICY, g, &c.config().container()));
    let Some(p) = published
        .iter()
        .find(|p| p.name == r)
        .or_else(|| {
            by_guid
                .as_deref()
                .and_then(|g| published.iter().find(|p| dn::same(&p.dn, g)))
        })
        .cloned()
    else {
        return Err(Error::Store(format!(
            "no policy {r:?} in the directory's policy container {}",
            c.config().container()
        )));
    };
    let mut name = p.name.clone();
    let mut written = false;
    if changes_settings(args) {
        let mut d = c.download(&p.dn).map_err(dir_err)?;
        if let Some(n) = &args.newname {
            let others = published
                .iter()
                .filter(|o| !dn::same(&o.dn, &p.dn))
                .map(|o| o.name.clone());
            name = statics::new_name(others, n, "policy")?;
        }
        let i = d
            .set
            .policies
            .iter()
            .position(|x| x.id == d.id)
            .ok_or_else(|| Error::Store(format!("{}: policy missing after download", p.dn)))?;
        let pol = &mut d.set.policies[i];
        pol.name = name.clone();
        statics::apply_policy_args(pol, args);
        pol.version += 1;
        c.publish(&d.set, d.id).map_err(dir_err)?;
        written = true;
        if !ctx.json {
            println!("changed policy {name:?} at {}", p.dn);
        }
    }
    apply_assign(&mut c, args, &name, &p.dn, written)
}
