//! The scenario model (`lab/scenarios/*.toml`): the whole file, node
//! settings, workload, checks and expectations, and the node catalog names
//! are validated against. The timeline vocabulary lives in `step`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::step::Step;
use crate::run::duration::Dur;

/// The whole scenario file. The step type is a parameter only so the parser
/// can first read the file's flat steps with serde (`Scenario<RawStep>`) and
/// then type them; everything downstream sees `Scenario` with typed steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario<S = Step> {
    /// Defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// One line for reports and the run banner.
    #[serde(default)]
    pub description: String,
    /// Seeds the workload, the role choices and the majorities ring.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Which topology the lab builds.
    pub topology: TopologySource,
    /// How long the client workload runs, from the moment a leader exists.
    pub duration: Dur,
    /// Time allowed after the final heal for the cluster to settle before the
    /// final reads and state comparison.
    #[serde(default = "default_quiesce")]
    pub quiesce: Dur,
    #[serde(default)]
    /// How the nodes are started.
    pub nodes: NodeSettings,
    /// The client workload.
    pub workload: Workload,
    /// The fault timeline (the runner orders its entries by time).
    #[serde(default = "Vec::new")]
    pub timeline: Vec<Spanned<S>>,
    /// Bounds for the checks, and checks to leave out.
    #[serde(default)]
    pub checks: Checks,
    /// What the run must conclude (the museum and CI use it); spanned so
    /// validation can point at it.
    #[serde(default)]
    pub expect: Option<Spanned<Expectation>>,
}

fn default_seed() -> u64 {
    1
}

fn default_quiesce() -> Dur {
    Dur::from_secs(5)
}

/// `topology = "wan-3dc"` (a file in `lab/topologies/`, or a path ending in
/// `.toml`) or an inline `[topology]` table in netlab's topology format.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TopologySource {
    /// A topology name, or a path ending in `.toml`.
    Named(String),
    /// A topology written inline.
    Inline(toml::Table),
}

/// How the nodes decide who may lead (splitnode's `--mode`); every mode but
/// `safe` is a museum piece that is known to break. Spelled in scenario
/// files by [`Mode::name`].
pub use consensus::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
/// The timing profile: heartbeat and election timeouts together.
pub enum Profile {
    /// Heartbeat 50 ms, election timeout 250–500 ms.
    Fast,
    /// Heartbeat 100 ms, election timeout 1000–2000 ms.
    Default,
}

impl Profile {
    /// The `--profile` value `splitnode` takes.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Default => "default",
        }
    }
}

/// How every node is started, plus per-node overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    #[serde(default = "default_mode")]
    /// The mode of every node without an override.
    pub mode: Mode,
    #[serde(default = "default_profile")]
    /// The timing profile; the three fields below override parts of it.
    pub profile: Profile,
    /// Heartbeat interval.
    pub heartbeat: Option<Dur>,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Option<Dur>,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Option<Dur>,
    /// Before the workload starts, steer leadership to this node (the seed's
    /// story wants the primary in US-East): while another node leads, it is
    /// paused for one election timeout so the others elect again.
    pub prefer_leader: Option<Spanned<String>>,
    /// Per-node settings, keyed by node name.
    #[serde(default)]
    pub overrides: BTreeMap<Spanned<String>, NodeOverride>,
    /// The nodes' log filter (tracing env-filter syntax, e.g. `"info"` or
    /// `"warn,node=debug"`); absent = `warn`.
    pub log: Option<String>,
    /// The system under test: a description in `lab/systems/` (absent:
    /// `splitnode`); `splitlab run --system` overrides it.
    pub system: Option<Spanned<String>>,
    /// The system's options (`[nodes.options]`, e.g. `pre-vote = "true"`),
    /// checked against its description.
    #[serde(default)]
    pub options: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Start the nodes with a freshly generated cluster key (peer frames
    /// MACed, strangers refused); `false` only to show what a rogue sender
    /// does to an unauthenticated cluster.
    #[serde(default = "default_cluster_key")]
    pub cluster_key: bool,
}

fn default_cluster_key() -> bool {
    true
}

fn default_mode() -> Mode {
    Mode::Safe
}

fn default_profile() -> Profile {
    Profile::Fast
}

impl<S> Scenario<S> {
    /// The expectation without its location.
    pub fn expectation(&self) -> Option<&Expectation> {
        self.expect.as_ref().map(Spanned::get_ref)
    }

    /// Names of the checks the scenario skips.
    pub fn skipped_checks(&self) -> Vec<String> {
        self.checks
            .skip
            .iter()
            .map(|name| name.get_ref().clone())
            .collect()
    }
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            mode: Mode::Safe,
            profile: Profile::Fast,
            heartbeat: None,
            election_timeout_min: None,
            election_timeout_max: None,
            prefer_leader: None,
            overrides: BTreeMap::new(),
            log: None,
            system: None,
            options: BTreeMap::new(),
            cluster_key: true,
        }
    }
}

/// Timing in force for a run, after the profile and the overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Heartbeat interval.
    pub heartbeat: Dur,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Dur,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Dur,
}

impl Timing {
    /// The minority write-rejection deadline X = 2·ET_max + 2·HB (invariant I6, see crates/checker/README.md).
    pub fn minority_reject_bound(&self) -> Dur {
        Dur(2 * self.election_timeout_max.0 + 2 * self.heartbeat.0)
    }
}

impl NodeSettings {
    /// The timing in force: the profile's, with the overrides applied.
    pub fn timing(&self) -> Timing {
        let (heartbeat, min, max) = match self.profile {
            Profile::Fast => (50, 250, 500),
            Profile::Default => (100, 1000, 2000),
        };
        Timing {
            heartbeat: self.heartbeat.unwrap_or(Dur::from_millis(heartbeat)),
            election_timeout_min: self.election_timeout_min.unwrap_or(Dur::from_millis(min)),
            election_timeout_max: self.election_timeout_max.unwrap_or(Dur::from_millis(max)),
        }
    }
}

/// One node's deviations from the common settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOverride {
    /// This node's mode instead of the common one.
    pub mode: Option<Mode>,
    /// Test-only clock hook: a static offset of the node's clock (may be negative, e.g. "-3s" is written as `clock_offset_ms = -3000`).
    pub clock_offset_ms: Option<i64>,
    /// Test-only clock hook: the node's clock runs at this rate (1.0 = true time).
    pub clock_rate: Option<f64>,
}

/// The client workload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// How many client threads run.
    pub clients: u32,
    /// Where clients run: `"spread"` (round-robin over nodes) or a table of
    /// node or region name → number of clients. A client runs inside the
    /// namespace of its home node, so a partition that cuts the node off cuts
    /// its clients off too.
    #[serde(default)]
    pub placement: Placement,
    /// Which node a client sends to.
    #[serde(default)]
    pub route: Route,
    /// Number of keys (`k0`..`k{n-1}`) the operations spread over.
    #[serde(default = "default_keys")]
    pub keys: u32,
    #[serde(default)]
    /// How often each operation kind is chosen.
    pub mix: Mix,
    /// Operations per second per client; absent = closed loop (next op as
    /// soon as the previous one completes).
    pub rate: Option<f64>,
    /// Per-operation timeout; a timed-out operation is recorded as `info`.
    #[serde(default = "default_op_timeout")]
    pub timeout: Dur,
}

fn default_keys() -> u32 {
    5
}

fn default_op_timeout() -> Dur {
    Dur::from_secs(1)
}

#[derive(Debug, Clone, Default)]
/// Where the workload's clients run.
pub enum Placement {
    #[default]
    /// Round-robin over the nodes.
    Spread,
    /// A string other than "spread" (rejected by validation).
    Named(String),
    /// Node or region name → number of clients.
    Table(BTreeMap<Spanned<String>, u32>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
/// How a client picks the node it sends to.
pub enum Route {
    /// Always the home node, like the seed's users who keep writing to the
    /// primary in their own data center.
    Home,
    /// Start at the home node and follow `leader` hints from 503 answers
    /// (client failover).
    #[default]
    FollowLeader,
}

/// Relative weights of the operation kinds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    /// Weight of blind writes.
    pub write: u32,
    #[serde(default)]
    /// Weight of linearizable reads.
    pub read: u32,
    #[serde(default)]
    /// Weight of compare-and-set.
    pub cas: u32,
    #[serde(default)]
    /// Weight of appends of a unique element to a list key (`a0`, `a1`,
    /// ...; the register keys are `k0`, ...): every acknowledged append
    /// must be in the final read, so lost writes show by count.
    pub append: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            write: 50,
            read: 40,
            cas: 10,
            append: 0,
        }
    }
}

/// Bounds for the checks. Absent values are derived from the timing profile.
/// Invariant ids refer to the table in crates/checker/README.md.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// I6: writes to a minority must be rejected within this bound.
    pub minority_reject_within: Option<Dur>,
    /// I11: elections started per minute under flapping/partial faults.
    pub max_elections_per_minute: Option<f64>,
    /// I10: time after the final heal for every node to converge.
    pub convergence_within: Option<Dur>,
    /// I12: a connected quorum must commit a write within this bound.
    pub progress_within: Option<Dur>,
    /// Checks this scenario deliberately leaves out, by name (for example
    /// `progress` when it removes the quorum on purpose). Validated against
    /// the checker's names; listed as skipped in results and reports.
    #[serde(default)]
    pub skip: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
/// The verdict a scenario is expected to reach.
pub enum ExpectedVerdict {
    /// Every check passes.
    Valid,
    /// Some check fails.
    Invalid,
}

/// `expect = { verdict = "invalid", broken = ["election_safety"] }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The verdict the run must reach.
    pub verdict: ExpectedVerdict,
    /// Checks that must be among the failed ones; required (and only
    /// allowed) with `verdict = "invalid"`, so an invalid run passes only
    /// for the expected reason.
    #[serde(default)]
    pub broken: Vec<String>,
    /// Museum entries: the same scenario in `safe` mode, which must be valid.
    pub safe_twin: Option<String>,
}

/// The node names (and region labels) a scenario is validated against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCatalog {
    /// Node names, in topology order.
    pub nodes: Vec<String>,
    /// region → nodes carrying that region label.
    pub regions: BTreeMap<String, Vec<String>>,
}

impl NodeCatalog {
    /// A catalog of `nodes` without regions.
    pub fn new(nodes: Vec<String>) -> NodeCatalog {
        NodeCatalog {
            nodes,
            regions: BTreeMap::new(),
        }
    }

    /// Whether `name` is a node.
    pub fn contains(&self, name: &str) -> bool {
        self.nodes.iter().any(|node| node == name)
    }

    /// Nodes named `name`, or carrying region `name`.
    pub fn resolve_place(&self, name: &str) -> Option<Vec<String>> {
        if self.contains(name) {
            Some(vec![name.to_string()])
        } else {
            self.regions.get(name).cloned()
        }
    }

    pub(crate) fn valid_names(&self) -> String {
        let mut names: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        for region in self.regions.keys() {
            if !self.contains(region) {
                names.push(region);
            }
        }
        names.join(", ")
    }
}

/// A scenario problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |newline| {
            before[newline + 1..].chars().count()
        })
        + 1;
    (line, column)
}

/// A scenario loaded from disk, with its topology resolved and validated.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file as read (copied into the run directory).
    pub text: String,
    /// The parsed, validated scenario.
    pub scenario: Scenario,
    /// The names its topology defines.
    pub catalog: NodeCatalog,
}

/// Formats a list of problems, one per line.
pub fn format_problems(problems: &[ScenarioError]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
