//! The scenario file model (`lab/scenarios/*.toml`) and its validation. Pure.
//!
//! A scenario names a topology, the node settings, a client workload, a
//! timeline of faults and the checks with their bounds. Parsing denies unknown
//! fields (the error carries line:column); validation then checks every node
//! name against the topology and every fault step for the fields its kind
//! needs, again with line:column and the list of valid names.
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
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::duration::Dur;

/// The whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file stem.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds the workload, the role choices and the majorities ring.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub topology: TopologySource,
    /// How long the client workload runs, from the moment a leader exists.
    pub duration: Dur,
    /// Time allowed after the final heal for the cluster to settle before the
    /// final reads and state comparison.
    #[serde(default = "default_quiesce")]
    pub quiesce: Dur,
    #[serde(default)]
    pub nodes: NodeSettings,
    pub workload: Workload,
    #[serde(default)]
    pub timeline: Vec<Spanned<Step>>,
    #[serde(default)]
    pub checks: Checks,
    /// What the run must conclude (the museum and CI use it).
    #[serde(default)]
    pub expect: Option<Expectation>,
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
    Named(String),
    Inline(toml::Table),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Safe,
    TimeoutFailover,
    UnenforcedQuorum,
    OneWayQuorum,
    NoFencing,
}

impl Mode {
    /// The `--mode` value `splitnode` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Safe => "safe",
            Mode::TimeoutFailover => "timeout-failover",
            Mode::UnenforcedQuorum => "unenforced-quorum",
            Mode::OneWayQuorum => "one-way-quorum",
            Mode::NoFencing => "no-fencing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Heartbeat 50 ms, election timeout 250–500 ms.
    Fast,
    /// Heartbeat 100 ms, election timeout 1000–2000 ms.
    Default,
}

impl Profile {
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
    pub mode: Mode,
    #[serde(default = "default_profile")]
    pub profile: Profile,
    pub heartbeat: Option<Dur>,
    pub election_timeout_min: Option<Dur>,
    pub election_timeout_max: Option<Dur>,
    /// Before the workload starts, steer leadership to this node (the seed's
    /// story wants the primary in US-East): while another node leads, it is
    /// paused for one election timeout so the others elect again.
    pub prefer_leader: Option<Spanned<String>>,
    /// Per-node settings, keyed by node name.
    #[serde(default)]
    pub overrides: BTreeMap<Spanned<String>, NodeOverride>,
}

fn default_mode() -> Mode {
    Mode::Safe
}

fn default_profile() -> Profile {
    Profile::Fast
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
        }
    }
}

/// Timing in force for a run, after the profile and the overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub heartbeat: Dur,
    pub election_timeout_min: Dur,
    pub election_timeout_max: Dur,
}

impl Timing {
    /// The minority write-rejection deadline X = 2·ET_max + 2·HB (SCENARIOS.md §0).
    pub fn minority_reject_bound(&self) -> Dur {
        Dur(2 * self.election_timeout_max.0 + 2 * self.heartbeat.0)
    }
}

impl NodeSettings {
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
pub enum Placement {
    #[default]
    Spread,
    Named(String),
    Table(BTreeMap<Spanned<String>, u32>),
}

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlacementVisitor;
        impl<'de> serde::de::Visitor<'de> for PlacementVisitor {
            type Value = Placement;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "\"spread\" or a table of node/region name = client count"
                )
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Placement, E> {
                Ok(Placement::Named(value.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Placement, A::Error> {
                let mut table = BTreeMap::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let count: u32 = map.next_value()?;
                    table.insert(key, count);
                }
                Ok(Placement::Table(table))
            }
        }
        deserializer.deserialize_any(PlacementVisitor)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
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
    pub write: u32,
    #[serde(default)]
    pub read: u32,
    #[serde(default)]
    pub cas: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            write: 50,
            read: 40,
            cas: 10,
        }
    }
}

/// Every fault kind netlab and the process supervisor can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Drop packets per a grudge (see [`Grudge`]).
    Partition,
    /// Remove every network fault.
    Heal,
    Loss,
    Delay,
    Duplicate,
    Corrupt,
    Reorder,
    /// Bandwidth limit (`rate = "1mbit"`).
    Rate,
    /// Set the targets' links down for `for`.
    LinkDown,
    /// Toggle the targets' links down/up every `period` for `for`.
    Flap,
    /// SIGKILL the targets; with `for`, restart them afterwards.
    Kill,
    /// SIGSTOP the targets; SIGCONT after `for`.
    Pause,
    /// SIGKILL then immediately start again from the same data directory.
    Restart,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Heal => "heal",
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Reorder => "reorder",
            FaultKind::Rate => "rate",
            FaultKind::LinkDown => "link-down",
            FaultKind::Flap => "flap",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
        }
    }

    fn needs_percent(self) -> bool {
        matches!(
            self,
            FaultKind::Loss | FaultKind::Duplicate | FaultKind::Corrupt | FaultKind::Reorder
        )
    }

    fn is_shape(self) -> bool {
        self.needs_percent() || matches!(self, FaultKind::Delay | FaultKind::Rate)
    }

    fn is_process(self) -> bool {
        matches!(
            self,
            FaultKind::Kill | FaultKind::Pause | FaultKind::Restart
        )
    }
}

/// How a partition's groups drop each other (Jepsen's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grudge {
    /// The targets and everyone else cannot reach each other (both directions).
    #[default]
    Isolate,
    /// The targets receive nothing from the others (they can still send).
    OneWayIn,
    /// Nothing the targets send reaches the others (they can still receive).
    OneWayOut,
    /// Explicit `components = [["a","b"], ["c"]]`, cut from each other.
    Components,
    /// Two halves that cannot talk, joined by one node that reaches both
    /// (with `targets = "bridge-around-leader"` the leader is that node).
    Bridge,
    /// Every node sees a majority, no two see the same one.
    MajoritiesRing,
    /// Only the links between the targets and `peers` are cut (partial
    /// partition: A–B cut, both still reach C).
    Links,
}

impl Grudge {
    pub fn name(self) -> &'static str {
        match self {
            Grudge::Isolate => "isolate",
            Grudge::OneWayIn => "one-way-in",
            Grudge::OneWayOut => "one-way-out",
            Grudge::Components => "components",
            Grudge::Bridge => "bridge",
            Grudge::MajoritiesRing => "majorities-ring",
            Grudge::Links => "links",
        }
    }
}

/// Which traffic a network fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plane {
    #[default]
    All,
    /// UDP heartbeats only.
    Heartbeat,
    /// TCP replication only.
    Replication,
    /// Client HTTP only.
    Client,
}

/// A role resolved when the step fires, by asking every node's `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Followers,
    /// One follower, chosen with the scenario seed.
    Follower,
    /// The leader plus followers up to a minority (N − Q nodes in all).
    MinorityWithLeader,
    /// A quorum of followers (Q nodes, leader excluded).
    MajorityWithoutLeader,
    /// A minority of followers (N − Q nodes, leader excluded).
    MinorityWithoutLeader,
    /// The leader plus followers up to a quorum.
    MajorityWithLeader,
    /// The leader as the bridge between two halves of the followers.
    BridgeAroundLeader,
    All,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Followers => "followers",
            Role::Follower => "follower",
            Role::MinorityWithLeader => "minority-with-leader",
            Role::MajorityWithoutLeader => "majority-without-leader",
            Role::MinorityWithoutLeader => "minority-without-leader",
            Role::MajorityWithLeader => "majority-with-leader",
            Role::BridgeAroundLeader => "bridge-around-leader",
            Role::All => "all",
        }
    }

    pub const ALL: [Role; 9] = [
        Role::Leader,
        Role::Followers,
        Role::Follower,
        Role::MinorityWithLeader,
        Role::MajorityWithoutLeader,
        Role::MinorityWithoutLeader,
        Role::MajorityWithLeader,
        Role::BridgeAroundLeader,
        Role::All,
    ];

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// Whether resolving this role needs to know the current leader.
    pub fn needs_leader(self) -> bool {
        !matches!(self, Role::All)
    }
}

/// `targets = "leader"` or `targets = ["n1", "n2"]`. A string that is not a
/// role name is taken as a single node name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    Role(Role),
    Nodes(Vec<String>),
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::Role(role) => write!(f, "{}", role.name()),
            Targets::Nodes(nodes) => write!(f, "[{}]", nodes.join(", ")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TargetsRaw {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match TargetsRaw::deserialize(deserializer)? {
            TargetsRaw::One(name) => match Role::from_name(&name) {
                Some(role) => Targets::Role(role),
                None => Targets::Nodes(vec![name]),
            },
            TargetsRaw::Many(names) => Targets::Nodes(names),
        })
    }
}

/// One timeline step. Which optional fields apply depends on `fault`;
/// validation rejects the ones that do not.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Offset from the start of the workload.
    pub at: Dur,
    /// How long the fault lasts; absent = until the final heal.
    #[serde(rename = "for")]
    pub duration: Option<Dur>,
    pub fault: FaultKind,
    pub targets: Option<Spanned<Targets>>,
    /// Link faults: the other ends (default: every other node).
    pub peers: Option<Spanned<Targets>>,
    pub grudge: Option<Grudge>,
    pub components: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(default)]
    pub plane: Plane,
    pub percent: Option<f64>,
    pub delay: Option<Dur>,
    pub jitter: Option<Dur>,
    /// Bandwidth such as `"1mbit"`, `"500kbit"`.
    pub rate: Option<String>,
    /// Flap period (one down + one up phase).
    pub period: Option<Dur>,
    /// A note shown in the report.
    #[serde(default)]
    pub label: String,
}

impl Step {
    /// A short human description ("partition isolate leader for 10s").
    pub fn describe(&self) -> String {
        let mut text = self.fault.name().to_string();
        if let Some(grudge) = self.grudge {
            text.push(' ');
            text.push_str(grudge.name());
        }
        if let Some(targets) = &self.targets {
            text.push(' ');
            text.push_str(&targets.get_ref().to_string());
        }
        if let Some(peers) = &self.peers {
            text.push_str(" ↔ ");
            text.push_str(&peers.get_ref().to_string());
        }
        if let Some(percent) = self.percent {
            text.push_str(&format!(" {percent}%"));
        }
        if let Some(delay) = self.delay {
            text.push_str(&format!(" {delay}"));
            if let Some(jitter) = self.jitter {
                text.push_str(&format!("±{jitter}"));
            }
        }
        if let Some(rate) = &self.rate {
            text.push_str(&format!(" {rate}"));
        }
        if self.plane != Plane::All {
            text.push_str(&format!(" ({:?} plane)", self.plane).to_lowercase());
        }
        if let Some(duration) = self.duration {
            text.push_str(&format!(" for {duration}"));
        }
        text
    }
}

/// Bounds for the checks. Absent values are derived from the timing profile.
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
    /// Names of checks to leave out (for example `progress` when a
    /// scenario removes the quorum on purpose).
    #[serde(default)]
    pub skip: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedVerdict {
    Valid,
    Invalid,
}

/// `expect = { verdict = "invalid", broken = ["election_safety"] }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub verdict: ExpectedVerdict,
    /// Checks that must be among the failed ones (invalid verdicts).
    #[serde(default)]
    pub broken: Vec<String>,
    /// Museum entries: the same scenario in `safe` mode, which must be valid.
    pub safe_twin: Option<String>,
}

/// The node names (and region labels) a scenario is validated against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCatalog {
    pub nodes: Vec<String>,
    /// region → nodes carrying that region label.
    pub regions: BTreeMap<String, Vec<String>>,
}

impl NodeCatalog {
    pub fn new(nodes: Vec<String>) -> NodeCatalog {
        NodeCatalog {
            nodes,
            regions: BTreeMap::new(),
        }
    }

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

    fn valid_names(&self) -> String {
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
    pub file: String,
    pub line: usize,
    pub column: usize,
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

/// Parses scenario text. Syntax errors, wrong types and unknown fields are
/// reported with line:column.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let mut scenario: Scenario = toml::from_str(text).map_err(|error| {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        ScenarioError {
            file: file.display().to_string(),
            line,
            column,
            message: error.message().to_string(),
        }
    })?;
    if scenario.name.is_empty() {
        scenario.name = file.file_stem().map_or_else(
            || "scenario".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
    }
    Ok(scenario)
}

/// Collects every validation problem instead of stopping at the first.
struct Problems<'a> {
    text: &'a str,
    file: String,
    list: Vec<ScenarioError>,
}

impl Problems<'_> {
    fn at(&mut self, span: std::ops::Range<usize>, message: String) {
        let (line, column) = line_column(self.text, span.start);
        self.list.push(ScenarioError {
            file: self.file.clone(),
            line,
            column,
            message,
        });
    }
}

/// Checks names and per-fault fields against the topology's node catalog.
/// Returns every problem found.
pub fn validate(
    scenario: &Scenario,
    catalog: &NodeCatalog,
    text: &str,
    file: &Path,
) -> Result<(), Vec<ScenarioError>> {
    let mut problems = Problems {
        text,
        file: file.display().to_string(),
        list: Vec::new(),
    };
    let whole = 0..0;
    let cluster_size = catalog.nodes.len();
    if cluster_size == 0 {
        problems.at(whole.clone(), "the topology has no nodes".into());
    }

    for name in scenario.nodes.overrides.keys() {
        if !catalog.contains(name.get_ref()) {
            problems.at(
                name.span(),
                format!(
                    "nodes.overrides: unknown node {:?}; valid nodes: {}",
                    name.get_ref(),
                    catalog.nodes.join(", ")
                ),
            );
        }
    }
    if let Some(preferred) = &scenario.nodes.prefer_leader
        && !catalog.contains(preferred.get_ref())
    {
        problems.at(
            preferred.span(),
            format!(
                "nodes.prefer_leader: unknown node {:?}; valid nodes: {}",
                preferred.get_ref(),
                catalog.nodes.join(", ")
            ),
        );
    }
    for (name, settings) in &scenario.nodes.overrides {
        if let Some(rate) = settings.clock_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.at(
                name.span(),
                format!("nodes.overrides.{}: clock_rate must be > 0", name.get_ref()),
            );
        }
    }
    let timing = scenario.nodes.timing();
    if timing.election_timeout_min >= timing.election_timeout_max
        || timing.heartbeat >= timing.election_timeout_min
    {
        problems.at(
            whole.clone(),
            format!(
                "nodes: need heartbeat < election_timeout_min < election_timeout_max (got {}, {}, {})",
                timing.heartbeat, timing.election_timeout_min, timing.election_timeout_max
            ),
        );
    }

    validate_workload(&scenario.workload, catalog, &mut problems);
    if scenario.duration == Dur::ZERO {
        problems.at(whole.clone(), "duration must be > 0".into());
    }

    for step in &scenario.timeline {
        validate_step(step, scenario, catalog, &mut problems);
    }
    if let Some(expect) = &scenario.expect
        && expect.verdict == ExpectedVerdict::Valid
        && !expect.broken.is_empty()
    {
        problems.at(
            whole,
            "expect: `broken` only makes sense with verdict = \"invalid\"".into(),
        );
    }

    if problems.list.is_empty() {
        Ok(())
    } else {
        Err(problems.list)
    }
}

fn validate_workload(workload: &Workload, catalog: &NodeCatalog, problems: &mut Problems<'_>) {
    let whole = 0..0;
    if workload.keys == 0 {
        problems.at(whole.clone(), "workload.keys must be >= 1".into());
    }
    let mix = workload.mix;
    if mix.write + mix.read + mix.cas == 0 {
        problems.at(whole.clone(), "workload.mix: all weights are zero".into());
    }
    if let Some(rate) = workload.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        problems.at(whole.clone(), "workload.rate must be > 0 ops/s".into());
    }
    if workload.timeout == Dur::ZERO {
        problems.at(whole.clone(), "workload.timeout must be > 0".into());
    }
    match &workload.placement {
        Placement::Spread => {}
        Placement::Named(name) => {
            if name != "spread" {
                problems.at(
                    whole,
                    format!("workload.placement: {name:?} is not \"spread\" or a table of node/region = count"),
                );
            }
        }
        Placement::Table(table) => {
            let placed: u32 = table.values().sum();
            for name in table.keys() {
                if catalog.resolve_place(name.get_ref()).is_none() {
                    problems.at(
                        name.span(),
                        format!(
                            "workload.placement: unknown node or region {:?}; valid names: {}",
                            name.get_ref(),
                            catalog.valid_names()
                        ),
                    );
                }
            }
            if placed != workload.clients {
                problems.at(
                    whole,
                    format!(
                        "workload.placement places {placed} clients but workload.clients = {}",
                        workload.clients
                    ),
                );
            }
        }
    }
}

fn check_nodes(
    targets: &Spanned<Targets>,
    field: &str,
    catalog: &NodeCatalog,
    problems: &mut Problems<'_>,
) {
    if let Targets::Nodes(names) = targets.get_ref() {
        if names.is_empty() {
            problems.at(targets.span(), format!("{field}: empty node list"));
        }
        let unknown: Vec<&String> = names.iter().filter(|n| !catalog.contains(n)).collect();
        if !unknown.is_empty() {
            let roles: Vec<&str> = Role::ALL.iter().map(|role| role.name()).collect();
            problems.at(
                targets.span(),
                format!(
                    "{field}: unknown node(s) {unknown:?}; valid nodes: {}; roles: {}",
                    catalog.nodes.join(", "),
                    roles.join(", ")
                ),
            );
        }
    }
}

fn validate_step(
    spanned: &Spanned<Step>,
    scenario: &Scenario,
    catalog: &NodeCatalog,
    problems: &mut Problems<'_>,
) {
    let step = spanned.get_ref();
    let span = spanned.span();
    let kind = step.fault.name();
    let disallow = |present: bool, field: &str, problems: &mut Problems<'_>| {
        if present {
            problems.at(
                span.clone(),
                format!("timeline: `{field}` does not apply to fault {kind:?}"),
            );
        }
    };

    if step.at >= scenario.duration {
        problems.at(
            span.clone(),
            format!(
                "timeline: step at {} starts after the workload ends (duration {})",
                step.at, scenario.duration
            ),
        );
    }
    if let Some(targets) = &step.targets {
        check_nodes(targets, "targets", catalog, problems);
    }
    if let Some(peers) = &step.peers {
        check_nodes(peers, "peers", catalog, problems);
    }
    if let Some(components) = &step.components {
        let mut seen = BTreeSet::new();
        for name in components.get_ref().iter().flatten() {
            if !catalog.contains(name) {
                problems.at(
                    components.span(),
                    format!(
                        "components: unknown node {name:?}; valid nodes: {}",
                        catalog.nodes.join(", ")
                    ),
                );
            } else if !seen.insert(name.clone()) {
                problems.at(
                    components.span(),
                    format!("components: node {name:?} is in two components"),
                );
            }
        }
    }

    let fault = step.fault;
    disallow(
        fault != FaultKind::Partition && step.grudge.is_some(),
        "grudge",
        problems,
    );
    disallow(
        step.components.is_some() && step.grudge != Some(Grudge::Components),
        "components (needs grudge = \"components\")",
        problems,
    );
    disallow(
        !fault.needs_percent() && step.percent.is_some(),
        "percent",
        problems,
    );
    disallow(
        !matches!(fault, FaultKind::Delay | FaultKind::Reorder) && step.delay.is_some(),
        "delay",
        problems,
    );
    disallow(
        !matches!(fault, FaultKind::Delay | FaultKind::Reorder) && step.jitter.is_some(),
        "jitter",
        problems,
    );
    disallow(
        fault != FaultKind::Rate && step.rate.is_some(),
        "rate",
        problems,
    );
    disallow(
        fault != FaultKind::Flap && step.period.is_some(),
        "period",
        problems,
    );
    disallow(
        (fault.is_process() || fault == FaultKind::Heal) && step.plane != Plane::All,
        "plane",
        problems,
    );
    disallow(
        (fault.is_process() || fault == FaultKind::Heal) && step.peers.is_some(),
        "peers",
        problems,
    );
    disallow(
        fault == FaultKind::Heal && (step.targets.is_some() || step.duration.is_some()),
        "targets/for",
        problems,
    );

    let needs_targets = match fault {
        FaultKind::Heal => false,
        FaultKind::Partition => !matches!(
            step.grudge.unwrap_or_default(),
            Grudge::Components | Grudge::MajoritiesRing | Grudge::Bridge
        ),
        _ => true,
    };
    if needs_targets && step.targets.is_none() {
        problems.at(
            span.clone(),
            format!("timeline: fault {kind:?} needs `targets`"),
        );
    }
    if fault.needs_percent() {
        match step.percent {
            Some(percent) if percent > 0.0 && percent <= 100.0 => {}
            Some(percent) => problems.at(
                span.clone(),
                format!("timeline: percent must be in (0, 100], got {percent}"),
            ),
            None => problems.at(
                span.clone(),
                format!("timeline: fault {kind:?} needs `percent`"),
            ),
        }
    }
    if fault == FaultKind::Delay && step.delay.is_none() {
        problems.at(
            span.clone(),
            "timeline: fault \"delay\" needs `delay`".into(),
        );
    }
    if fault == FaultKind::Rate {
        match &step.rate {
            Some(rate) if parse_rate_bits(rate).is_some() => {}
            Some(rate) => problems.at(
                span.clone(),
                format!("timeline: rate {rate:?} is not like \"1mbit\", \"500kbit\" or \"2gbit\""),
            ),
            None => problems.at(span.clone(), "timeline: fault \"rate\" needs `rate`".into()),
        }
    }
    if fault == FaultKind::Flap {
        if step.period.is_none_or(|period| period == Dur::ZERO) {
            problems.at(
                span.clone(),
                "timeline: fault \"flap\" needs `period` > 0".into(),
            );
        }
        if step.duration.is_none() {
            problems.at(span.clone(), "timeline: fault \"flap\" needs `for`".into());
        }
    }
    if fault == FaultKind::Pause && step.duration.is_none() {
        problems.at(
            span.clone(),
            "timeline: fault \"pause\" needs `for` (when to SIGCONT)".into(),
        );
    }
    if fault == FaultKind::Restart && step.duration.is_some() {
        problems.at(
            span.clone(),
            "timeline: \"restart\" is immediate; use fault = \"kill\" with `for` to restart later"
                .into(),
        );
    }
    if fault.is_shape()
        && let Some(Targets::Role(Role::BridgeAroundLeader)) =
            step.targets.as_ref().map(|t| t.get_ref())
    {
        problems.at(
            span.clone(),
            "timeline: bridge-around-leader only applies to partitions".into(),
        );
    }
    if fault == FaultKind::Partition {
        let grudge = step.grudge.unwrap_or_default();
        if grudge == Grudge::Components {
            match &step.components {
                Some(components) if components.get_ref().len() >= 2 => {}
                _ => problems.at(
                    span.clone(),
                    "timeline: grudge \"components\" needs `components` with >= 2 groups".into(),
                ),
            }
        }
        if grudge == Grudge::Links && step.peers.is_none() {
            problems.at(
                span.clone(),
                "timeline: grudge \"links\" needs `peers`".into(),
            );
        }
        if matches!(grudge, Grudge::Bridge | Grudge::MajoritiesRing) && catalog.nodes.len() < 3 {
            problems.at(
                span.clone(),
                format!("timeline: grudge {:?} needs >= 3 nodes", grudge.name()),
            );
        }
    }
}

/// Parses `"1mbit"`, `"500kbit"`, `"2gbit"`, `"800bit"` into bits per second.
pub fn parse_rate_bits(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return None,
    };
    let bits = value * scale;
    (bits.is_finite() && bits >= 1.0).then_some(bits as u64)
}

/// A scenario loaded from disk, with its topology resolved and validated.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub text: String,
    pub scenario: Scenario,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog3() -> NodeCatalog {
        let mut catalog = NodeCatalog::new(vec!["n1".into(), "n2".into(), "n3".into()]);
        catalog.regions.insert("east".into(), vec!["n1".into()]);
        catalog
    }

    const BASE: &str = r#"
topology = "mesh-3"
duration = "20s"
[workload]
clients = 2
"#;

    fn load(extra: &str) -> Result<Scenario, Vec<ScenarioError>> {
        let text = format!("{BASE}{extra}");
        let scenario = parse(&text, Path::new("t.toml")).map_err(|e| vec![e])?;
        validate(&scenario, &catalog3(), &text, Path::new("t.toml"))?;
        Ok(scenario)
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let scenario = load("").unwrap();
        assert_eq!(scenario.name, "t");
        assert_eq!(scenario.nodes.mode, Mode::Safe);
        assert_eq!(scenario.workload.keys, 5);
        assert_eq!(
            scenario.nodes.timing().minority_reject_bound(),
            Dur::from_millis(1100)
        );
    }

    #[test]
    fn unknown_field_is_reported_with_line_and_column() {
        let error = load("colour = \"red\"\n").unwrap_err();
        assert_eq!(error.len(), 1);
        assert_eq!((error[0].line, error[0].column), (6, 1), "{}", error[0]);
        assert!(
            error[0].message.contains("unknown field `colour`"),
            "{}",
            error[0]
        );
    }

    #[test]
    fn unknown_field_inside_a_step_is_located() {
        let error =
            load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"leader\"\n").unwrap_err();
        assert_eq!(error[0].line, 9, "{}", error[0]);
        assert!(error[0].message.contains("unknown field `target`"));
    }

    #[test]
    fn unknown_target_names_list_the_valid_ones() {
        let error =
            load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = [\"n1\", \"n9\"]\n")
                .unwrap_err();
        assert_eq!(error.len(), 1);
        assert_eq!((error[0].line, error[0].column), (9, 11), "{}", error[0]);
        assert!(error[0].message.contains("\"n9\""));
        assert!(error[0].message.contains("valid nodes: n1, n2, n3"));
        assert!(error[0].message.contains("minority-with-leader"));
    }

    #[test]
    fn a_single_unknown_name_is_not_mistaken_for_a_role() {
        let error =
            load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = \"leadr\"\n").unwrap_err();
        assert!(error[0].message.contains("\"leadr\""), "{}", error[0]);
    }

    #[test]
    fn role_targets_parse() {
        let scenario =
            load("[[timeline]]\nat = \"1s\"\nfor = \"2s\"\nfault = \"partition\"\ntargets = \"minority-with-leader\"\n")
                .unwrap();
        let step = scenario.timeline[0].get_ref();
        assert_eq!(
            step.targets.as_ref().unwrap().get_ref(),
            &Targets::Role(Role::MinorityWithLeader)
        );
    }

    #[test]
    fn fields_that_do_not_apply_to_the_fault_are_rejected() {
        let error = load(
            "[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = \"leader\"\npercent = 20.0\n",
        )
        .unwrap_err();
        assert!(
            error[0].message.contains("`percent` does not apply"),
            "{}",
            error[0]
        );
        assert_eq!(error[0].line, 6);
    }

    #[test]
    fn missing_fault_parameters_are_reported() {
        let cases = [
            ("fault = \"loss\"\ntargets = \"all\"\n", "needs `percent`"),
            ("fault = \"delay\"\ntargets = \"all\"\n", "needs `delay`"),
            (
                "fault = \"rate\"\ntargets = \"all\"\nrate = \"fast\"\n",
                "is not like",
            ),
            ("fault = \"flap\"\ntargets = \"leader\"\n", "needs `period`"),
            ("fault = \"pause\"\ntargets = \"leader\"\n", "needs `for`"),
            (
                "fault = \"partition\"\ngrudge = \"components\"\n",
                "needs `components`",
            ),
            (
                "fault = \"partition\"\ngrudge = \"links\"\ntargets = \"leader\"\n",
                "needs `peers`",
            ),
            ("fault = \"kill\"\n", "needs `targets`"),
        ];
        for (step, expected) in cases {
            let error = load(&format!("[[timeline]]\nat = \"1s\"\n{step}")).unwrap_err();
            assert!(
                error.iter().any(|e| e.message.contains(expected)),
                "{step}: {error:?}"
            );
        }
    }

    #[test]
    fn placement_must_name_nodes_or_regions_and_add_up() {
        let text = "topology = \"mesh-3\"\nduration = \"5s\"\n[workload]\nclients = 3\nplacement = { east = 1, n2 = 1, mars = 1 }\n";
        let scenario = parse(text, Path::new("p.toml")).unwrap();
        let error = validate(&scenario, &catalog3(), text, Path::new("p.toml")).unwrap_err();
        assert_eq!(error.len(), 1, "{error:?}");
        assert!(error[0].message.contains("\"mars\""));
        assert!(error[0].message.contains("east"));
    }

    #[test]
    fn step_after_the_end_is_rejected() {
        let error = load("[[timeline]]\nat = \"30s\"\nfault = \"heal\"\n").unwrap_err();
        assert!(error[0].message.contains("after the workload ends"));
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate_bits("1mbit"), Some(1_000_000));
        assert_eq!(parse_rate_bits("500kbit"), Some(500_000));
        assert_eq!(parse_rate_bits("1.5gbit"), Some(1_500_000_000));
        assert_eq!(parse_rate_bits("1mb"), None);
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
