//! The public face of a run: the options it depends on besides the seed, a
//! fixed fault script, and what it hands back (history, events, counters).
use std::collections::BTreeSet;

use checker::{History, NodeEvent, PartitionWindow};
use consensus::{Mode, Term};

use crate::schedule::{EpisodeKind, Scheduled};
use crate::workload::WorkloadStats;

/// A deliberate driver bug, for checking that the simulator and checker can
/// catch a broken implementation at all (a negative control of the harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverBug {
    /// Ignore `Send::after`: votes and acks leave before the write they
    /// promise is durable, so a crash can make a node forget a vote it
    /// cast or an entry it acknowledged.
    SendBeforePersist,
}

/// Everything a run depends on besides the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    pub mode: Mode,
    pub nodes: usize,
    /// Inject the seeded fault schedule (off: a quiet run).
    pub faults: bool,
    /// Negative control: slow a leader's clock far beyond the drift bound.
    pub drift_beyond_bound: bool,
    /// Half of the clients read through the lease instead of ReadIndex.
    pub lease_reads: bool,
    /// A crash may keep a prefix of the writes that were not yet fsynced.
    pub torn_writes: bool,
    /// Record the text trace.
    pub trace: bool,
    /// Break the driver contract on purpose (harness negative control).
    pub driver_bug: Option<DriverBug>,
}

impl SimOptions {
    pub fn new(mode: Mode, nodes: usize) -> SimOptions {
        SimOptions {
            mode,
            nodes,
            faults: true,
            drift_beyond_bound: false,
            lease_reads: true,
            torn_writes: true,
            trace: false,
            driver_bug: None,
        }
    }
}

/// A fixed fault script: faults at true times, then heal-all at `heal_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub faults: Vec<Scheduled>,
    pub heal_at: u64,
}

/// Counters describing a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub steps: u64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub fsyncs: u64,
    pub crashes: u64,
    pub pauses: u64,
    pub leaders_elected: u64,
    pub max_term: Term,
    pub end_ns: u64,
    pub converged: bool,
    pub final_reads_done: bool,
    /// The run hit [`STEP_BUDGET`](super::STEP_BUDGET) and was cut short.
    pub step_budget_exceeded: bool,
    pub workload: WorkloadStats,
}

/// What a run produced: the inputs of the checker plus what the driver
/// itself saw go wrong.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub seed: u64,
    pub options: SimOptions,
    pub history: History,
    pub events: Vec<NodeEvent>,
    /// Driver-contract breaches (storage misuse, unknown request ids,
    /// rejected configuration), each a violation of its own.
    pub driver_violations: Vec<String>,
    /// Reads invoked from here on are the final reads.
    pub final_reads_from_ns: u64,
    /// Minority windows of clean partitions (for I6).
    pub partitions: Vec<PartitionWindow>,
    pub node_names: Vec<String>,
    pub kinds: BTreeSet<EpisodeKind>,
    pub stats: RunStats,
    pub trace: String,
}
