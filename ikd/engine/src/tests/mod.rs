//! Engine tests: two [`crate::Endpoint`]s talking through the [`util::Pair`] harness (fake
//! clock, in-memory network), written as the exchanges they exercise.

mod exchanges;
mod failures;
mod fuzz;
mod informational;
mod kernel;
mod policy;
mod reconfigure;
mod util;
