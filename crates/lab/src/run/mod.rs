//! `splitlab run` / `splitlab check`: scenarios, workload, timeline, verdicts, report.
//! (Owned by the scenario-runner task.)

pub mod client;
pub mod duration;
pub mod judge;
pub mod load;
pub mod scenario;
pub mod targets;
pub mod workload;

use std::path::{Path, PathBuf};

/// Options of `splitlab run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Parent of the run directory (default `runs/`).
    pub runs_dir: Option<PathBuf>,
    /// Path of the `splitnode` binary (default: next to the current executable).
    pub splitnode: Option<PathBuf>,
}

/// Runs a scenario end to end; returns the process exit code (0 valid, 1 invalid, 2 unknown/skipped).
pub fn run_scenario(_options: &RunOptions) -> anyhow::Result<i32> {
    anyhow::bail!("splitlab run is not built yet")
}

/// Re-judges a stored run directory offline; returns the exit code.
pub fn check_run_dir(_dir: &Path) -> anyhow::Result<i32> {
    anyhow::bail!("splitlab check is not built yet")
}
