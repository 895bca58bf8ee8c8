//! Checks: pure functions of a recorded [`History`](crate::observe::history::History), one per
//! file, each unit-tested on synthetic histories.

pub mod verdict;

pub use verdict::{run_check, Check, CheckResult, Verdict};
