//! Support for policyd's lab tests: the kernel lab's helpers (`pfkey/tests/support`,
//! re-exported here) and [`agent`], the harness that runs the built `policyd` in a test
//! host. Included by `lab_policyd.rs` and `lab_directory.rs` as `mod support;`.

#![allow(dead_code, unreachable_pub, unused_imports)]

#[path = "../../../pfkey/tests/support/mod.rs"]
mod kernel_lab;

pub use kernel_lab::*;

pub mod agent;
