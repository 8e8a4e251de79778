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
use std::collections::{BTreeMap, BTreeSet};

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
    /// Two random halves (Jepsen `partition-random-halves`).
    RandomHalves,
    /// Random halves with the leader on the majority side.
    LeaderInMajority,
    /// The leader plus a few others cut off as a minority.
    LeaderInMinority,
    /// One node cut off from everybody, both ways.
    Isolate(Target),
    /// Two halves joined only through one node (Jepsen `bridge`).
    Bridge,
    /// Every node sees a different majority (Jepsen `majorities-ring`).
    MajoritiesRing,
    /// The target hears nobody but can still send.
    OneWayIn(Target),
    /// Nobody hears the target, which still receives.
    OneWayOut(Target),
    /// One link cut both ways; the others still reach both ends (Nifty).
    CutLink,
}

/// Which links a fault layer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkScope {
    /// Every directed link.
    All,
    /// Every link to and from the target.
    Node(Target),
    /// Traffic from the target to one random peer.
    OneLink(Target),
}

/// One nemesis action. Faults of one episode share its `episode` id, so the
/// action that ends an episode finds what the one that started it did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Cuts links per a partition shape resolved when it fires.
    Partition {
        /// The episode this fault belongs to.
        episode: u64,
        /// Which partition to resolve when the fault fires.
        shape: PartitionShape,
    },
    /// Re-applies an episode's partition as first resolved (flapping).
    Reapply {
        /// The episode this fault belongs to.
        episode: u64,
    },
    /// Lifts the episode's partition.
    Heal {
        /// The episode this fault belongs to.
        episode: u64,
    },
    /// Adds loss, delay, duplication or reordering to some links.
    LinkFaults {
        /// The episode this fault belongs to.
        episode: u64,
        /// Which links the layer covers.
        scope: LinkScope,
        /// Which channels (datagram, stream) it affects.
        channels: BTreeSet<Channel>,
        /// The faults the layer adds.
        faults: LinkFaults,
    },
    /// Removes the episode's link faults.
    ClearLinkFaults {
        /// The episode this fault belongs to.
        episode: u64,
    },
    /// Kills the target process; unsynced writes may be lost or torn.
    Crash {
        /// The episode this fault belongs to.
        episode: u64,
        /// The node it hits, chosen when the fault fires.
        target: Target,
    },
    /// Crash the target right after its next step that leaves writes
    /// unsynced — after that step's sends went out, before the fsync
    /// (SIGKILL between persist and fsync).
    CrashAfterWrite {
        /// The episode this fault belongs to.
        episode: u64,
        /// The node it hits, chosen when the fault fires.
        target: Target,
    },
    /// Restarts the node the episode crashed.
    Restart {
        /// The episode this fault belongs to.
        episode: u64,
    },
    /// Freezes the target process (inputs queue up).
    Pause {
        /// The episode this fault belongs to.
        episode: u64,
        /// The node it hits, chosen when the fault fires.
        target: Target,
    },
    /// Resumes the node the episode paused.
    Resume {
        /// The episode this fault belongs to.
        episode: u64,
    },
    /// From now on the target's clock runs at `1 + rate_ppm / 1e6`.
    ClockRate {
        /// The episode this fault belongs to.
        episode: u64,
        /// The node it hits, chosen when the fault fires.
        target: Target,
        /// Rate deviation in ppm.
        rate_ppm: i64,
    },
    /// Fsyncs on the target take `factor` times longer.
    DiskStall {
        /// The episode this fault belongs to.
        episode: u64,
        /// The node it hits, chosen when the fault fires.
        target: Target,
        /// Slow-down factor for fsync durations.
        factor: u64,
    },
    /// Fsyncs on the episode's node are fast again.
    DiskRecover {
        /// The episode this fault belongs to.
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
            Fault::ClockRate {
                target, rate_ppm, ..
            } => format!("clock-rate {target:?} {rate_ppm}ppm"),
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
    /// One partition, later healed.
    Partition,
    /// A partition healed and reapplied several times.
    Flapping,
    /// Partitions that overlap and move from node to node.
    Cascading,
    /// Loss, delay, duplication or reordering on some links.
    LinkFaults,
    /// A process crash and restart.
    Crash,
    /// A crash right after a write, before its fsync.
    CrashAfterWrite,
    /// A process pause and resume.
    Pause,
    /// Clock rate changes within the drift bound.
    ClockDrift,
    /// Slow fsyncs on one node.
    DiskStall,
    /// A leader's clock slowed far beyond the bound (negative control).
    DriftBeyondBound,
}

/// Timing knobs the schedule needs (from the replica config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Leader heartbeat interval.
    pub heartbeat_ns: u64,
    /// Shortest election timeout.
    pub election_min_ns: u64,
    /// Longest election timeout.
    pub election_max_ns: u64,
    /// Leader lease duration.
    pub lease_ns: u64,
}

/// A fault at a time (true nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// True time (nanoseconds) at which the fault fires.
    pub at: u64,
    /// The fault.
    pub fault: Fault,
}

/// A run's nemesis plan and initial clocks, drawn from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Faults in firing order.
    pub faults: Vec<Scheduled>,
    /// Every kind of episode planned.
    pub kinds: BTreeSet<EpisodeKind>,
    /// The kind of each episode, by id (coverage counts the kinds whose
    /// faults took effect).
    pub episode_kinds: BTreeMap<u64, EpisodeKind>,
    /// When the nemesis stops and the cluster is healed.
    pub heal_at: u64,
    /// Initial clock rate deviation and offset per node (index = id - 1).
    pub clock_rates_ppm: Vec<i64>,
    /// Initial clock offset per node (index = id - 1).
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
