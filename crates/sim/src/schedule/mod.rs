//! Fault schedules as data: what the nemesis does, and when.
//!
//! A schedule is generated from the seed before the run starts and is a pure
//! function of `(seed, node count, options)` — the same faults at the same
//! times in every mode, which makes the modes comparable seed by seed.
//! Targets such as "the leader" are resolved when the fault fires, because
//! who leads depends on the run.
//!
//! This module holds the vocabulary (targets, partition shapes, faults,
//! episodes); [`generate`] draws a schedule from the seed.
use std::collections::BTreeSet;

use wire::NodeId;

use crate::net::{Channel, LinkFaults};

mod generate;

pub use generate::generate;

/// A node chosen when the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The live node that leads the highest term (a random node if none).
    Leader,
    /// A uniformly random node.
    Any,
    /// A random node that is not the leader.
    Follower,
}

/// A partition kind, resolved to a [`faults::Grudge`] when it fires (who
/// leads, and random choices, depend on the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionShape {
    RandomHalves,
    LeaderInMajority,
    LeaderInMinority,
    Isolate(Target),
    Bridge,
    MajoritiesRing,
    OneWayIn(Target),
    OneWayOut(Target),
    /// One link cut both ways; the others still reach both ends (Nifty).
    CutLink,
}

/// Which links a fault layer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkScope {
    All,
    /// Every link to and from the target.
    Node(Target),
    /// Traffic from the target to one random peer.
    OneLink(Target),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Partition {
        episode: u64,
        shape: PartitionShape,
    },
    /// Re-applies an episode's partition as first resolved (flapping).
    Reapply {
        episode: u64,
    },
    Heal {
        episode: u64,
    },
    LinkFaults {
        episode: u64,
        scope: LinkScope,
        channels: BTreeSet<Channel>,
        faults: LinkFaults,
    },
    ClearLinkFaults {
        episode: u64,
    },
    Crash {
        episode: u64,
        target: Target,
    },
    /// Crash the target right after its next step that leaves writes
    /// unsynced — after that step's sends went out, before the fsync
    /// (SIGKILL between persist and fsync).
    CrashAfterWrite {
        episode: u64,
        target: Target,
    },
    Restart {
        episode: u64,
    },
    Pause {
        episode: u64,
        target: Target,
    },
    Resume {
        episode: u64,
    },
    /// From now on the target's clock runs at `1 + rate_ppm / 1e6`.
    ClockRate {
        target: Target,
        rate_ppm: i64,
    },
    /// Fsyncs on the target take `factor` times longer.
    DiskStall {
        episode: u64,
        target: Target,
        factor: u64,
    },
    DiskRecover {
        episode: u64,
    },
}

impl Fault {
    /// Short description for traces.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { episode, shape } => format!("partition#{episode} {shape:?}"),
            Fault::Reapply { episode } => format!("reapply#{episode}"),
            Fault::Heal { episode } => format!("heal#{episode}"),
            Fault::LinkFaults {
                episode,
                scope,
                channels,
                faults,
            } => format!("link-faults#{episode} {scope:?} {channels:?} {faults:?}"),
            Fault::ClearLinkFaults { episode } => format!("clear-link-faults#{episode}"),
            Fault::Crash { episode, target } => format!("crash#{episode} {target:?}"),
            Fault::CrashAfterWrite { episode, target } => {
                format!("crash-after-write#{episode} {target:?}")
            }
            Fault::Restart { episode } => format!("restart#{episode}"),
            Fault::Pause { episode, target } => format!("pause#{episode} {target:?}"),
            Fault::Resume { episode } => format!("resume#{episode}"),
            Fault::ClockRate { target, rate_ppm } => format!("clock-rate {target:?} {rate_ppm}ppm"),
            Fault::DiskStall {
                episode,
                target,
                factor,
            } => format!("disk-stall#{episode} {target:?} x{factor}"),
            Fault::DiskRecover { episode } => format!("disk-recover#{episode}"),
        }
    }
}

/// The fault kinds a schedule draws from; every seed picks a few.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EpisodeKind {
    Partition,
    Flapping,
    Cascading,
    LinkFaults,
    Crash,
    CrashAfterWrite,
    Pause,
    ClockDrift,
    DiskStall,
    DriftBeyondBound,
}

/// Timing knobs the schedule needs (from the replica config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_ns: u64,
    pub election_min_ns: u64,
    pub election_max_ns: u64,
    pub lease_ns: u64,
}

/// A fault at a time (true nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub at: u64,
    pub fault: Fault,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub faults: Vec<Scheduled>,
    /// Every kind of episode used, for coverage statistics.
    pub kinds: BTreeSet<EpisodeKind>,
    /// When the nemesis stops and the cluster is healed.
    pub heal_at: u64,
    /// Initial clock rate deviation and offset per node (index = id - 1).
    pub clock_rates_ppm: Vec<i64>,
    pub clock_offsets_ns: Vec<u64>,
}

/// Options that change what a schedule may contain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleOptions {
    /// Inject faults at all (off: a quiet run, for baselines and tests).
    pub faults: bool,
    /// Negative control: slow the leader's clock far beyond `rho`.
    pub drift_beyond_bound: bool,
    /// The configured clock-rate bound.
    pub rho: f64,
}

/// Nodes named in a schedule are ids `1..=n`.
pub fn node_ids(nodes: usize) -> Vec<NodeId> {
    (1..=nodes as NodeId).collect()
}
