//! `ipsecadm directory`: the LDAP directory policy store (`man 5 ipsec-ldap`). Publishing
//! takes a policy of the `--location` store location (netsh `set store location`) and
//! writes it and its components to the directory; assignment and inheritance blocking
//! change a container (domain or organizational unit); `show` lists the directory's
//! policies and this host's assignment; `status` reads the running agent's status file:
//! where the active policy came from.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ipsec_directory::{Client, DirectoryConfig, Resolution};
use serde_json::json;

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
    let cfg = DirectoryConfig::load(config).map_err(|e| Error::Usage(e.to_string()))?;
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
    let source = match v["policy_state"].as_str() {
        Some("directory downloaded") => "directory",
        Some("cache downloaded") => "cache (directory policy cached locally)",
        Some("local downloaded") => "local store",
        _ => "none (waiting for a policy to be assigned)",
    };
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
