//! policyd: the IPsec policy agent (stores, retrieval, SPD programming, ikd supervision).
//!
//! Not built yet: see issue #4. It will use only the `pfkey::KernelInterface` trait.

fn main() {
    eprintln!("policyd: not implemented yet (issue #4)");
    std::process::exit(2);
}
