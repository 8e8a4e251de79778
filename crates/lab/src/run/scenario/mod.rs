//! Scenario files (`lab/scenarios/*.toml`): the model, reading it from TOML
//! (`parse`, with line:column errors) and checking it against a topology
//! (`validate`). Pure: nothing here touches the kernel or the disk.
//!
//! A scenario names a topology, the node settings, a client workload, a
//! timeline of faults and the checks with their bounds:
//!
//! ```toml
//! name = "us-east-isolated"
//! seed = 7
//! topology = "wan-3dc"                 # lab/topologies/wan-3dc.toml, or an inline [topology] table
//! duration = "30s"                     # how long the workload runs
//! [nodes]
//! mode = "safe"
//! profile = "fast"
//! [workload]
//! clients = 6
//! placement = { us-east = 2, us-west = 2, eu = 2 }
//! [[timeline]]
//! at = "8s"
//! for = "12s"
//! fault = "partition"
//! grudge = "isolate"
//! targets = "leader"
//! ```
mod model;
mod parse;
mod step;
mod validate;

pub use model::{
    Checks, Expectation, ExpectedVerdict, LoadedScenario, Mix, Mode, NodeCatalog, NodeOverride,
    NodeSettings, Placement, Profile, Route, Scenario, ScenarioError, Timing, TopologySource,
    Workload, format_problems, line_column,
};
pub use parse::{parse, parse_rate_bits};
pub use step::{Effect, FaultKind, Links, PartitionKind, Plane, Role, Step, StepFault, Targets};
pub use validate::validate;

#[cfg(test)]
mod node_fault_tests;
#[cfg(test)]
mod tests;
