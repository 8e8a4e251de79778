//! Named, seeded regressions: every violation the fuzzer found in the safe
//! mode is pinned here with the event sequence that broke it, so it stays
//! fixed. Each entry is run by `tests/scenarios.rs`.
use consensus::Mode;

use crate::cluster::SimOptions;

/// A pinned run that once broke an invariant.
#[derive(Debug, Clone, Copy)]
pub struct Regression {
    pub name: &'static str,
    pub seed: u64,
    pub options: SimOptions,
    /// What went wrong, and how it was fixed.
    pub story: &'static str,
}

/// Every pinned regression (safe mode must pass all of them).
pub fn regressions() -> Vec<Regression> {
    let _ = Mode::Safe;
    Vec::new()
}
