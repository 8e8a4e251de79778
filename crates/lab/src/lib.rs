//! splitlab: the orchestrator. Topology and scenario files in, a verdict and
//! a report out.
//!
//! - [`commands`]: lab infrastructure commands (doctor, plan, up, status, down,
//!   clean, probe, fault) over the `netlab` crate.
//! - [`exit`]: the exit statuses every subcommand ends with.
//! - [`run`]: `splitlab run` / `check`: scenarios, workload, timeline,
//!   verdicts and reports.

#![warn(missing_docs, unreachable_pub)]

pub mod commands;
pub mod exit;
pub mod run;
