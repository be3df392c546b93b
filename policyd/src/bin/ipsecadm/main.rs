//! `ipsecadm`: the administrator's command line for IPsec policy, modelled on
//! `netsh ipsec static` and `netsh ipsec dynamic`. See `man/ipsecadm.8`.
//!
//! - `static`: policies, filter lists, filters, filter actions, rules and default response
//!   rules in the local store (opened per command: redb locks the file), every change
//!   validated whole before it is committed; assignment, import and export.
//! - `dynamic`: the kernel's SAs and policies, agent settings, immediate kernel rules and a
//!   refresh request to the agent.
//! - `directory`: publish a store location's policy to the LDAP directory, assign it to a
//!   container, show the directory's policies and where the agent's policy came from.
//!   With `--location directory` the static commands show, add and change policies in the
//!   directory itself.
//!
//! Exit codes: 0 ok, 1 usage, 2 validation/store/file, 3 service not available, 4 kernel.

mod cli;
mod directory;
mod dynamics;
mod error;
mod ikdctl;
mod output;
mod parse;
mod snapshot;
mod statics;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use ipsec_policy::{AuthMethod, Location, PresharedKey, Secret};

use crate::cli::{Cli, LocationArg, Mode};
use crate::error::{EXIT_OK, EXIT_USAGE};

/// What every command needs besides its own arguments.
pub(crate) struct Ctx {
    pub(crate) store_dir: PathBuf,
    pub(crate) location: Location,
    /// Store location `directory`: the directory configuration file. The static commands
    /// then work on the directory instead of `location`.
    pub(crate) directory: Option<PathBuf>,
    pub(crate) json: bool,
    /// The control socket directory (ipsec-control(7)).
    pub(crate) control_dir: PathBuf,
    /// The authentication options of the command, in command-line order.
    pub(crate) auth: Vec<AuthMethod>,
}

/// Options that never take a value: `name=value` right after them is rewritten.
const FLAGS: &[&str] = &["--json", "--help", "--version", "--withkeys"];

/// Rewrites netsh-style `name=value` arguments to `--name=value`. An argument right after an
/// option that takes a value is that option's value and is left alone.
fn netsh_style(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut value_expected = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 && !value_expected {
            if let Some((k, v)) = arg.to_str().and_then(|s| s.split_once('=')) {
                if k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    out.push(OsString::from(format!("--{}={v}", k.to_ascii_lowercase())));
                    continue;
                }
            }
        }
        value_expected = arg
            .to_str()
            .is_some_and(|s| s.starts_with("--") && !s.contains('=') && !FLAGS.contains(&s));
        out.push(arg);
    }
    out
}

/// The innermost subcommand's matches.
fn leaf(matches: &ArgMatches) -> &ArgMatches {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m
}

/// Positions of an argument that this command has and that was given.
fn indices<'a>(m: &'a ArgMatches, id: &str) -> Result<Option<clap::parser::Indices<'a>>, ()> {
    if m.try_contains_id(id).unwrap_or(false) {
        Ok(m.indices_of(id))
    } else {
        Err(())
    }
}

/// `--kerberos`, `--psk`, `--psk-file` and `--rootca` in the order given.
fn auth_order(m: &ArgMatches) -> Vec<AuthMethod> {
    let mut items: Vec<(usize, AuthMethod)> = Vec::new();
    if let (Ok(Some(true)), Ok(Some(mut idx))) = (
        m.try_get_one::<bool>("kerberos").map(|v| v.copied()),
        indices(m, "kerberos"),
    ) {
        items.push((idx.next().unwrap_or(0), AuthMethod::Kerberos));
    }
    if let (Ok(Some(values)), Ok(Some(idx))) = (m.try_get_many::<String>("psk"), indices(m, "psk"))
    {
        for (v, i) in values.zip(idx) {
            items.push((
                i,
                AuthMethod::PresharedKey {
                    key: PresharedKey::Secret(Secret::new(v.clone())),
                },
            ));
        }
    }
    for id in ["psk_file", "rootca"] {
        if let (Ok(Some(values)), Ok(Some(idx))) =
            (m.try_get_many::<AuthMethod>(id), indices(m, id))
        {
            for (v, i) in values.zip(idx) {
                items.push((i, v.clone()));
            }
        }
    }
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, m)| m).collect()
}

fn run(args: Vec<OsString>) -> i32 {
    let args = netsh_style(args);
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EXIT_OK,
                _ => EXIT_USAGE,
            };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return EXIT_USAGE;
        }
    };
    let ctx = Ctx {
        store_dir: cli
            .store
            .clone()
            .unwrap_or_else(ipsec_policy::store::default_dir),
        location: match cli.location {
            LocationArg::Local | LocationArg::Directory => Location::Local,
            LocationArg::Persistent => Location::Persistent,
        },
        directory: (cli.location == LocationArg::Directory).then(|| {
            cli.directory_config
                .clone()
                .unwrap_or_else(|| PathBuf::from(ipsec_directory::config::DEFAULT_PATH))
        }),
        json: cli.json,
        control_dir: cli
            .control_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(ipsec_control::DEFAULT_DIR)),
        auth: auth_order(leaf(&matches)),
    };
    let result = match cli.mode {
        Mode::Static(cmd) => statics::run(&ctx, cmd),
        Mode::Dynamic(cmd) => dynamics::run(&ctx, cmd),
        Mode::Directory(cmd) => directory::run(&ctx, cmd),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("ipsecadm: {e}");
            e.exit_code()
        }
    }
}

fn main() {
    std::process::exit(run(std::env::args_os().collect()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn netsh_style_rewrites_name_value() {
        let out = netsh_style(os(&[
            "ipsecadm",
            "static",
            "add",
            "filter",
            "filterlist=Telnet",
            "--description",
            "a=b",
            "srcaddr=any",
        ]));
        assert_eq!(
            out,
            os(&[
                "ipsecadm",
                "static",
                "add",
                "filter",
                "--filterlist=Telnet",
                "--description",
                "a=b",
                "--srcaddr=any"
            ])
        );
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
