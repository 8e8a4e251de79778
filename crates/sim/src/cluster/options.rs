//! The public face of a run: the options it depends on besides the seed, a
//! fixed fault script, and what it hands back (history, events, counters).
use std::collections::BTreeSet;

use checker::{History, NodeEvent};
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
    /// Lose every vote reply: candidates start term after term and no
    /// election ever finishes (the negative control of `bounded_elections`
    /// and `progress`).
    LoseVoteReplies,
}

/// Everything a run depends on besides the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// The replication strategy every replica runs (safe or one of the incorrect ones).
    pub mode: Mode,
    /// Cluster size (1..=9); node ids are `1..=nodes`.
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
    /// Faults on, lease reads and torn writes on, tracing off, no driver bug.
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
    /// Faults to inject, at true times (sorted before the run).
    pub faults: Vec<Scheduled>,
    /// When the nemesis stops and everything is healed (true nanoseconds).
    pub heal_at: u64,
}

/// Counters describing a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Replica steps taken (inputs stepped).
    pub steps: u64,
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages that reached a replica.
    pub delivered: u64,
    /// Messages lost (partition, drop, reset, receiver down).
    pub lost: u64,
    /// Fsyncs started.
    pub fsyncs: u64,
    /// Process crashes injected.
    pub crashes: u64,
    /// Process pauses injected.
    pub pauses: u64,
    /// `BecameLeader` events seen.
    pub leaders_elected: u64,
    /// `ElectionStarted` events seen: elections started minus leaders
    /// elected is the elections that elected nobody (split or lost votes).
    pub elections_started: u64,
    /// Highest term any replica reported.
    pub max_term: Term,
    /// True time at which the run ended.
    pub end_ns: u64,
    /// Whether the cluster converged before the deadline.
    pub converged: bool,
    /// Whether the final linearizable reads finished.
    pub final_reads_done: bool,
    /// The run hit [`STEP_BUDGET`](super::STEP_BUDGET) and was cut short.
    pub step_budget_exceeded: bool,
    /// The clients' own counters.
    pub workload: WorkloadStats,
}

/// What a run produced: the inputs of the checker plus what the driver
/// itself saw go wrong.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The seed the run was drawn from.
    pub seed: u64,
    /// The options the run used.
    pub options: SimOptions,
    /// The clients' Jepsen-style history.
    pub history: History,
    /// Every replica event, in the checker's vocabulary.
    pub events: Vec<NodeEvent>,
    /// Driver-contract breaches (storage misuse, unknown request ids,
    /// rejected configuration), each a violation of its own.
    pub driver_violations: Vec<String>,
    /// Reads invoked from here on are the final reads.
    pub final_reads_from_ns: u64,
    /// The fault windows the checker judges: minority sides (I6), connected
    /// quorums (I12), calm stretches (I11).
    pub windows: super::FaultWindows,
    /// Node names (`n1`, `n2`, ...) in id order.
    pub node_names: Vec<String>,
    /// Fault kinds the schedule planned.
    pub kinds: BTreeSet<EpisodeKind>,
    /// Fault kinds of which at least one fault took effect before the heal
    /// (a partition that cut a link, a kill of a live node, ...): what
    /// coverage statistics count.
    pub fired: BTreeSet<EpisodeKind>,
    /// Counters describing the run.
    pub stats: RunStats,
    /// The text trace (empty unless `SimOptions::trace`).
    pub trace: String,
}
