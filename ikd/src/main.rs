//! ikd: the IKEv1 keying daemon (main mode, quick mode, informational exchanges).
//!
//! This step provides `ikd --check-config FILE`; the daemon itself follows.

use std::path::PathBuf;
use std::process::ExitCode;

#[allow(dead_code)] // the daemon (next step) reads the rest
mod config;
#[allow(dead_code)] // used by the daemon (next step) and by its tests
mod convert;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, file] if flag == "--check-config" => match config::load(&PathBuf::from(file)) {
            Ok(c) => {
                println!(
                    "{}: OK ({} peers, {} connections)",
                    file,
                    c.endpoint.peers.len(),
                    c.connections.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ikd: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: ikd --check-config FILE");
            ExitCode::from(2)
        }
    }
}
