//! `man/ipsec-ldap.5` is lint-clean (`mandoc -T lint -W warning`) and names every schema
//! attribute and object class. The lint is skipped with a note when mandoc is missing.

use std::process::Command;

use ipsec_directory::schema::*;

#[test]
fn ipsec_ldap_5_documents_the_schema_and_lints_clean() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../man/ipsec-ldap.5");
    let text = std::fs::read_to_string(path).expect("man/ipsec-ldap.5");
    for &name in ALL_NAMES {
        assert!(text.contains(&format!("Cm {name}")), "{name} undocumented");
    }
    match Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning", path])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "mandoc -T lint:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("mandoc not installed: lint skipped"),
    }
}
