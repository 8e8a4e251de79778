//! splitlab: the orchestrator. Topology and scenario files in, a verdict and
//! a report out.
//!
//! - [`commands`]: lab infrastructure commands (doctor, plan, up, status, down,
//!   clean, probe) over the `netlab` crate, and the privilege preflight.
//! - [`adhoc`]: the interactive lab in the scenario vocabulary (fault, heal,
//!   `up --system`, exec).
//! - [`exit`]: the exit statuses every subcommand ends with.
//! - [`run`]: `splitlab run` / `check`: scenarios, workload, timeline,
//!   verdicts and reports.
//! - [`batch`] + [`junit`]: many scenarios in one command, their summary
//!   table, JSON and JUnit files.
//! - [`builtin`]: the topologies and default scenario compiled in.

#![warn(missing_docs, unreachable_pub)]

pub mod adhoc;
pub mod batch;
pub mod builtin;
pub mod commands;
pub mod compare;
pub mod exit;
pub mod junit;
pub mod run;
pub mod system;
