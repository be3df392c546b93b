//! A writer killed at any moment never leaves the store half-written.
//!
//! The test binary spawns itself as the writer: with `IPSEC_POLICY_CRASH_CHILD=<dir>` set,
//! `crash_child` loops writing large transactions into the store in `<dir>`; the parent
//! kills it at varying moments, reopens the store and checks every entry and the invariant
//! each transaction keeps (the list's generation equals the policy's).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipsec_policy::*;

const CHILD_ENV: &str = "IPSEC_POLICY_CRASH_CHILD";
const LIST_NAME: &str = "crash test list";
const FILTERS: usize = 400;

fn generation(c: &LocationContents) -> (u64, Option<u64>) {
    let policy_gen = c
        .set
        .policies
        .first()
        .and_then(|p| p.description.strip_prefix("generation "))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let list_gen = c
        .set
        .filter_lists
        .iter()
        .find(|l| l.name == LIST_NAME)
        .map(|l| {
            let gens: Vec<u64> = l
                .filters
                .iter()
                .filter_map(|f| f.description.parse().ok())
                .collect();
            assert_eq!(gens.len(), FILTERS, "the list is whole");
            assert!(
                gens.iter().all(|g| *g == gens[0]),
                "one generation per list"
            );
            gens[0]
        });
    (policy_gen, list_gen)
}

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Only runs as the child of the test below.
    };
    let store = Store::open(std::path::Path::new(&dir)).expect("child opens the store");
    loop {
        store
            .update(Location::Local, |c| {
                let g = generation(c).0 + 1;
                c.set.filter_lists.retain(|l| l.name != LIST_NAME);
                c.set.filter_lists.push(FilterList {
                    id: new_id(),
                    version: 1,
                    name: LIST_NAME.into(),
                    description: String::new(),
                    filters: (0..FILTERS)
                        .map(|i| Filter {
                            id: new_id(),
                            version: 1,
                            description: g.to_string(),
                            source: Endpoint::Address(
                                Ipv4Addr::from(0x0a00_0000 + i as u32).into(),
                            ),
                            destination: Endpoint::MyAddress,
                            mirrored: true,
                            protocol: Protocol::TCP,
                            source_port: 0,
                            destination_port: 23,
                        })
                        .collect(),
                });
                c.set.policies[0].description = format!("generation {g}");
                Ok(())
            })
            .expect("child writes");
        let mut s = store.settings().expect("settings");
        s.ipsec_diagnostics = (s.ipsec_diagnostics + 1) % 8;
        store.set_settings(&s).expect("child writes settings");
    }
}

#[test]
fn killed_writer_never_leaves_the_store_half_written() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipsec");
    drop(Store::open(&dir).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut last = 0;
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + (round * 53) % 400));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = Store::open(&dir).expect("the store opens after a killed writer");
        store.check().expect("every entry is whole and valid");
        let (policy_gen, list_gen) = generation(&store.location(Location::Local).unwrap());
        assert_eq!(
            list_gen.unwrap_or(0),
            policy_gen,
            "one transaction, both or neither"
        );
        assert!(policy_gen >= last, "committed generations never go back");
        last = policy_gen;
    }
    assert!(last > 0, "the writer committed at least once");
}
