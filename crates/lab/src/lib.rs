//! splitlab: the orchestrator. Topology and scenario files in, a verdict and
//! a report out.
//!
//! - [`commands`]: lab infrastructure commands (doctor, plan, up, status, down,
//!   clean, probe, fault) over the `netlab` crate, with their exit codes.
//! - [`run`]: `splitlab run` / `check`: scenarios, workload, timeline,
//!   verdicts and reports.

pub mod commands;
pub mod run;
