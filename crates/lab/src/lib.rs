//! splitlab: the orchestrator. Topology and scenario files in, a verdict and
//! a report out. `run` owns scenarios, workload, timeline, verdicts and reports.

pub mod run;
