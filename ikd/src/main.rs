//! ikd: the IKEv1 keying daemon (main mode, quick mode, informational exchanges).
//!
//! Not built yet: see issue #3. It will use only the `pfkey::KernelInterface` trait.

fn main() {
    eprintln!("ikd: not implemented yet (issue #3)");
    std::process::exit(2);
}
