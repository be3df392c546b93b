//! Every `ipsecadm` subcommand path and every long option is documented in
//! `man/ipsecadm.8`: a command as a `.It Cm <path>` item, an option as `Fl -<option>`.
//! The command tree is read from `ipsecadm ... --help`, recursively.
//!
//! `mandoc -T lint` runs on the page when mandoc is installed
//! (Debian: `apt-get install mandoc`); without it that part is skipped with a note.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn man_page() -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man/ipsecadm.8");
    let text = std::fs::read_to_string(&path).expect("read man/ipsecadm.8");
    (path, text)
}

fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ipsecadm"))
        .args(path)
        .arg("--help")
        .output()
        .expect("run ipsecadm --help");
    assert!(out.status.success(), "ipsecadm {path:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The lines of a help section ("Commands:", "Options:").
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| l.trim() != title)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// Every subcommand path and the long options of each.
fn walk(path: Vec<String>, commands: &mut Vec<Vec<String>>, options: &mut BTreeSet<String>) {
    let text = help(&path);
    for line in section(&text, "Options:") {
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(opt) = word.strip_prefix("--") {
                let opt: String = opt
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !opt.is_empty() {
                    options.insert(opt);
                }
            }
        }
    }
    for line in section(&text, "Commands:") {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name == "help" {
            continue;
        }
        let mut sub = path.clone();
        sub.push(name.to_owned());
        commands.push(sub.clone());
        walk(sub, commands, options);
    }
}

#[test]
fn every_command_and_option_is_documented() {
    let (_, man) = man_page();
    let mut commands = Vec::new();
    let mut options = BTreeSet::new();
    walk(Vec::new(), &mut commands, &mut options);
    assert!(commands.len() > 30, "command tree too small: {commands:?}");

    let items: Vec<&str> = man
        .lines()
        .filter_map(|l| l.strip_prefix(".It Cm "))
        .collect();
    let mut missing = Vec::new();
    for c in &commands {
        let p = c.join(" ");
        let documented = items.iter().any(|i| {
            i.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        });
        if !documented {
            missing.push(format!("command `{p}` (.It Cm {p})"));
        }
    }
    for o in &options {
        if !man.contains(&format!("Fl -{o}")) {
            missing.push(format!("option --{o} (Fl -{o})"));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented in man/ipsecadm.8:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn man_page_is_mdoc_and_lints_clean() {
    let (path, man) = man_page();
    for macro_ in [
        ".Dd ",
        ".Dt IPSECADM 8",
        ".Sh NAME",
        ".Sh SYNOPSIS",
        ".Sh EXIT STATUS",
        ".Sh FILES",
        ".Sh EXAMPLES",
    ] {
        assert!(man.contains(macro_), "man page lacks {macro_}");
    }
    match Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(&path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "mandoc -T lint:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("mandoc not installed (apt-get install mandoc): lint skipped"),
    }
}
