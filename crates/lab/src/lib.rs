//! splitlab: the orchestrator. Topology and scenario files in, a verdict and
//! a report out.
//!
//! - [`bench`]: `splitlab bench sweep` and the harness of the root benches
//!   (splitnode next to etcd in a netns mesh).
//! - [`commands`]: lab infrastructure commands (doctor, plan, up, status, down,
//!   clean, probe, fault) over the `netlab` crate, with their exit codes.
//! - [`run`]: `splitlab run` / `check`: scenarios, workload, timeline,
//!   verdicts and reports.

pub mod bench;
pub mod commands;
pub mod run;
