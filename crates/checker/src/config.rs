//! What the checks need besides the history and the event logs: fault
//! windows from the nemesis timeline, bounds from the scenario, budgets.
//!
//! Serializable so a run directory can store it and `splitlab check` can
//! re-judge a run offline. Every field has a default; absent windows make
//! the corresponding check not applicable (and say so in its details).
use serde::{Deserialize, Serialize};

/// A partition that left `minority` (fewer than a quorum) cut off from the
/// rest, on the reference clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionWindow {
    /// When the partition was installed (reference clock, ns).
    pub start_ns: u64,
    /// When it healed (exclusive).
    pub end_ns: u64,
    /// Names of the nodes on the side without a quorum.
    pub minority: Vec<String>,
}

/// Which nodes a client process could reach during `[start_ns, end_ns)`
/// (clients placed in a region are cut off with it). Used by invariant I6 (b)
/// (see crates/checker/README.md): a timeout is only a "hang" of the minority
/// if the request could arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReach {
    /// The client, as `Op::process` in the history.
    pub process: u64,
    /// Start of the span (reference clock, ns).
    pub start_ns: u64,
    /// End of the span (exclusive).
    pub end_ns: u64,
    /// Names of the nodes the client could reach meanwhile.
    pub nodes: Vec<String>,
}

/// A window in which election activity is bounded: at most
/// `max_per_minute` distinct terms may start in any 60 s span inside it
/// (for windows shorter than a minute: in the whole window). Use
/// `max_per_minute = 1` for a fault-free window (invariant I11 b).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionWindow {
    /// Start of the window (reference clock, ns).
    pub start_ns: u64,
    /// End of the window (exclusive).
    pub end_ns: u64,
    /// Most distinct terms that may start in any 60 s span.
    pub max_per_minute: u64,
}

/// A window in which the node set `nodes` (a quorum) is fully connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumWindow {
    /// When the quorum became connected (reference clock, ns).
    pub start_ns: u64,
    /// When that ended (exclusive).
    pub end_ns: u64,
    /// The nodes a write may go through to count as progress: those not
    /// cut off from a connected quorum (in a partial partition several
    /// quorums overlap and only the leader's progresses); empty = any node.
    pub nodes: Vec<String>,
}

/// A heal that reconnected `rejoining` to `quorum`, which stayed fully
/// connected through the fault (I17): until `end_ns` the leader the quorum
/// had at `heal_ns` must keep leading and no higher term may start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejoinWindow {
    /// When the fault was removed (reference clock, ns).
    pub heal_ns: u64,
    /// End of the time a disruption is attributed to the rejoin (exclusive).
    pub end_ns: u64,
    /// The quorum that stayed connected throughout the fault.
    pub quorum: Vec<String>,
    /// The nodes the heal reconnected.
    pub rejoining: Vec<String>,
}

/// Limits for the linearizability search; exceeding one makes the affected
/// key `Unknown` instead of exhausting time or memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearizabilityBudget {
    /// Wall-clock time allowed for one key's search (milliseconds).
    pub per_key_time_ms: u64,
    /// Wall-clock time for the whole check; keys not reached become unknown.
    pub total_time_ms: u64,
    /// Approximate memory for one key's memo table (bytes).
    pub per_key_memory_bytes: u64,
    /// Whether to search for the shortest failing prefix of a
    /// non-linearizable key (costs a few extra searches).
    pub minimize_failures: bool,
}

impl Default for LinearizabilityBudget {
    fn default() -> Self {
        LinearizabilityBudget {
            per_key_time_ms: 5_000,
            total_time_ms: 60_000,
            per_key_memory_bytes: 512 << 20,
            minimize_failures: true,
        }
    }
}

/// Everything [`crate::check_all`] needs besides the history and events.
/// Invariant ids (I4, I6, ...) refer to the table in crates/checker/README.md.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckConfig {
    /// Partition windows with a minority side (I6).
    pub partitions: Vec<PartitionWindow>,
    /// I6 (b): writes sent to the minority later than `start + bound` must
    /// get an explicit error. `None` checks only I6 (a).
    pub minority_reject_bound_ns: Option<u64>,
    /// I6 (b): which nodes each client could reach, and when. `None`: every
    /// client reaches every node (as in the simulator); with a list, a
    /// minority write that timed out is judged only if its client could
    /// reach the node at invocation (the others are counted in the notes).
    pub client_reach: Option<Vec<ClientReach>>,
    /// Windows with an election-rate bound (I11).
    pub election_windows: Vec<ElectionWindow>,
    /// Windows with a connected quorum (I12).
    pub quorum_windows: Vec<QuorumWindow>,
    /// Heals that reconnected nodes to a quorum with a leader (I17).
    pub rejoin_windows: Vec<RejoinWindow>,
    /// I12: how long a quorum must have been connected before a write must
    /// have succeeded, typically `2·ET_max + T_live`.
    pub progress_grace_ns: u64,
    /// I4: reads invoked at or after this time are "final reads" (after heal
    /// and quiescence). `None`: the last read of each key is its final read.
    pub final_reads_from_ns: Option<u64>,
    /// I10: nodes that must report a final state. `None`: whichever nodes
    /// logged `final_state`.
    pub expected_live_nodes: Option<Vec<String>>,
    /// I5: the linearizability search's limits.
    pub linearizability: LinearizabilityBudget,
    /// The system under test never takes leases (every incorrect mode):
    /// `lease_exclusivity` is then not applicable instead of judged on zero
    /// lease windows.
    pub leaseless: bool,
    /// Nodes that ran and must have written an event log. One without any
    /// event of its own (the runner's `final_state` does not count) leaves
    /// every event-log check `unknown`: its evidence is missing. `None`:
    /// not checked.
    pub logging_nodes: Option<Vec<String>>,
}
