//! The timeline vocabulary: fault kinds, partition kinds, roles, targets and
//! the typed [`Step`], whose [`StepFault`] variant carries exactly the fields
//! that fault kind takes (the parser builds it; nothing downstream re-checks).
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::run::duration::Dur;

/// Every fault kind netlab and the process supervisor can apply (the
/// `fault = "..."` key of a timeline step; also recorded per fault window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Drop packets per a partition kind (see [`PartitionKind`]).
    Partition,
    /// Remove every network fault.
    Heal,
    /// Drop a percentage of packets.
    Loss,
    /// Delay packets (with optional jitter).
    Delay,
    /// Duplicate a percentage of packets.
    Duplicate,
    /// Corrupt a percentage of packets.
    Corrupt,
    /// Reorder a percentage of packets.
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
    /// Fill the targets' data disks (ENOSPC) for `for`; then empty them and
    /// restart the nodes that fail-stopped.
    DiskFull,
    /// Failing fsync (EIO) on the targets' data disks for `for` (a FUSE
    /// passthrough over the data disk; refused where the kernel has no
    /// FUSE); then the nodes that fail-stopped are restarted.
    FsyncError,
    /// Slow fsync on the targets' data disks: each held back by `delay`
    /// (default 50 ms) for `for`, on the same FUSE
    /// passthrough as `fsync-error`.
    DiskSlow,
    /// A rogue sender forges peer frames with a huge term to the targets
    /// for `for`.
    Forge,
}

impl FaultKind {
    /// The name used in scenario files and reports.
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
            FaultKind::DiskFull => "disk-full",
            FaultKind::FsyncError => "fsync-error",
            FaultKind::DiskSlow => "disk-slow",
            FaultKind::Forge => "forge",
        }
    }
}

/// How a partition's groups drop each other (Jepsen's vocabulary; the
/// `grudge = "..."` key of a partition step). netlab turns the chosen kind
/// into its own map of who drops whose packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKind {
    /// The targets and everyone else cannot reach each other (both directions).
    #[default]
    Isolate,
    /// The targets receive no packet from the others, TCP ACKs and
    /// handshakes included (they can still send datagrams): a dead fibre
    /// into the targets. A TCP stream from the targets stalls too, since its
    /// ACKs never arrive. Written `one-way-all-in` (`one-way-in` also reads).
    #[serde(rename = "one-way-all-in", alias = "one-way-in")]
    OneWayIn,
    /// No packet the targets send reaches the others, TCP ACKs included: a
    /// dead fibre out of the targets; TCP streams towards them stall too.
    /// Written `one-way-all-out` (`one-way-out` also reads).
    #[serde(rename = "one-way-all-out", alias = "one-way-out")]
    OneWayOut,
    /// The targets receive no payload from the others (UDP datagrams, TCP
    /// segments with data), while TCP's pure ACKs and control packets still
    /// pass, so TCP streams from the targets keep flowing: an asymmetric
    /// data path.
    OneWayDataIn,
    /// No payload the targets send reaches the others; their pure ACKs and
    /// control packets still do, so TCP streams towards them keep flowing.
    OneWayDataOut,
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

impl PartitionKind {
    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::Isolate => "isolate",
            PartitionKind::OneWayIn => "one-way-all-in",
            PartitionKind::OneWayOut => "one-way-all-out",
            PartitionKind::OneWayDataIn => "one-way-data-in",
            PartitionKind::OneWayDataOut => "one-way-data-out",
            PartitionKind::Components => "components",
            PartitionKind::Bridge => "bridge",
            PartitionKind::MajoritiesRing => "majorities-ring",
            PartitionKind::Links => "links",
        }
    }

    /// Whether the cut drops payload only (pure ACKs and control packets
    /// pass: `netlab::Fault::DataPartition`) rather than every packet.
    pub fn is_data_only(self) -> bool {
        matches!(
            self,
            PartitionKind::OneWayDataIn | PartitionKind::OneWayDataOut
        )
    }

    /// Whether the kind picks its own groups, so `targets` may be left out.
    pub fn targets_optional(self) -> bool {
        matches!(
            self,
            PartitionKind::Components | PartitionKind::MajoritiesRing | PartitionKind::Bridge
        )
    }
}

/// Which traffic a network fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plane {
    /// Every kind of traffic.
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
    /// The current leader.
    Leader,
    /// Every node but the leader.
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
    /// Every node.
    All,
}

impl Role {
    /// The name used in scenario files.
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

    /// Every role, in the order error messages list them.
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

    /// The role spelled `name` in a scenario file, if any.
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
    /// Resolved against the cluster when the step fires.
    Role(Role),
    /// Fixed node names.
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

/// The links a link-level fault acts on: between `targets` and `peers`
/// (default: every other node), on one traffic plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Links {
    /// One end of every affected link.
    pub targets: Spanned<Targets>,
    /// The other ends; absent = every node that is not a target.
    pub peers: Option<Spanned<Targets>>,
    /// Which traffic is affected.
    pub plane: Plane,
}

/// What a shaping fault does to the packets on its links.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Drop `percent` of packets.
    Loss {
        /// In (0, 100].
        percent: f64,
    },
    /// Duplicate `percent` of packets.
    Duplicate {
        /// In (0, 100].
        percent: f64,
    },
    /// Corrupt `percent` of packets.
    Corrupt {
        /// In (0, 100].
        percent: f64,
    },
    /// Send `percent` of packets at once, delaying the rest.
    Reorder {
        /// In (0, 100].
        percent: f64,
        /// Delay of the packets that are not reordered.
        delay: Option<Dur>,
        /// Variation of that delay.
        jitter: Option<Dur>,
    },
    /// Delay every packet.
    Delay {
        /// Mean added delay.
        delay: Dur,
        /// Variation of the delay.
        jitter: Option<Dur>,
    },
    /// Limit bandwidth.
    Rate {
        /// As written in the file (`"1mbit"`), for descriptions.
        text: String,
        /// The same in bits per second.
        bits_per_sec: u64,
    },
}

impl Effect {
    /// The fault kind this effect is written as.
    pub fn kind(&self) -> FaultKind {
        match self {
            Effect::Loss { .. } => FaultKind::Loss,
            Effect::Duplicate { .. } => FaultKind::Duplicate,
            Effect::Corrupt { .. } => FaultKind::Corrupt,
            Effect::Reorder { .. } => FaultKind::Reorder,
            Effect::Delay { .. } => FaultKind::Delay,
            Effect::Rate { .. } => FaultKind::Rate,
        }
    }
}

/// The fault of one timeline step, with the fields its kind takes. `for`
/// lives here too: some kinds need it (pause, flap), some forbid it (heal,
/// restart), the others take it optionally (absent = until the final heal).
#[derive(Debug, Clone, PartialEq)]
pub enum StepFault {
    /// Drop packets between groups of nodes.
    Partition {
        /// The `grudge` key as written (absent = isolate).
        kind: Option<PartitionKind>,
        /// Required unless the kind picks its own groups.
        targets: Option<Spanned<Targets>>,
        /// The other side (required by `links`).
        peers: Option<Spanned<Targets>>,
        /// The groups of a `components` partition (present exactly then).
        components: Option<Spanned<Vec<Vec<String>>>>,
        /// Which traffic is cut.
        plane: Plane,
        /// How long the partition lasts.
        duration: Option<Dur>,
    },
    /// Remove every network fault at once.
    Heal,
    /// Loss, delay, duplication, corruption, reordering or a rate limit.
    Shape {
        /// Where.
        links: Links,
        /// What.
        effect: Effect,
        /// How long.
        duration: Option<Dur>,
    },
    /// Links down.
    LinkDown {
        /// Which links.
        links: Links,
        /// How long.
        duration: Option<Dur>,
    },
    /// Links toggling down and up.
    Flap {
        /// Which links.
        links: Links,
        /// One down plus one up phase (> 0).
        period: Dur,
        /// How long the flapping lasts.
        duration: Dur,
    },
    /// SIGKILL.
    Kill {
        /// Which processes.
        targets: Spanned<Targets>,
        /// When to start them again (absent = at the final heal).
        duration: Option<Dur>,
    },
    /// SIGSTOP, then SIGCONT.
    Pause {
        /// Which processes.
        targets: Spanned<Targets>,
        /// When to SIGCONT.
        duration: Dur,
    },
    /// SIGKILL and start again at once.
    Restart {
        /// Which processes.
        targets: Spanned<Targets>,
    },
    /// A fault of the targets' data disks.
    Disk {
        /// `DiskFull`, `FsyncError` or `DiskSlow`.
        kind: FaultKind,
        /// Whose disks.
        targets: Spanned<Targets>,
        /// When the disk is healthy again (and fail-stopped nodes restart).
        duration: Dur,
        /// How long each fsync is held back (`DiskSlow` only).
        delay: Option<Dur>,
    },
    /// Forged peer frames from a rogue sender.
    Forge {
        /// The members that receive forgeries.
        targets: Spanned<Targets>,
        /// How long the rogue sends.
        duration: Dur,
    },
}

/// How long `disk-slow` holds back each fsync when the step gives no
/// `delay`: a slow disk's fsync, well below an election timeout.
pub(crate) const DEFAULT_FSYNC_DELAY_MS: u64 = 50;

/// The longest `delay` a `disk-slow` step takes: past it a node is not slow
/// but stuck, which `pause` expresses.
pub(crate) const MAX_FSYNC_DELAY_MS: u64 = 5_000;

/// One timeline step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Offset from the start of the workload.
    pub at: Dur,
    /// The fault and its parameters.
    pub fault: StepFault,
    /// A note shown in the report.
    pub label: String,
}

impl Step {
    /// The kind of fault this step applies.
    pub fn kind(&self) -> FaultKind {
        match &self.fault {
            StepFault::Partition { .. } => FaultKind::Partition,
            StepFault::Heal => FaultKind::Heal,
            StepFault::Shape { effect, .. } => effect.kind(),
            StepFault::LinkDown { .. } => FaultKind::LinkDown,
            StepFault::Flap { .. } => FaultKind::Flap,
            StepFault::Kill { .. } => FaultKind::Kill,
            StepFault::Pause { .. } => FaultKind::Pause,
            StepFault::Restart { .. } => FaultKind::Restart,
            StepFault::Disk { kind, .. } => *kind,
            StepFault::Forge { .. } => FaultKind::Forge,
        }
    }

    /// How long the fault lasts (`for`); absent = until the final heal, or
    /// immediate for heal and restart.
    pub fn duration(&self) -> Option<Dur> {
        match &self.fault {
            StepFault::Partition { duration, .. }
            | StepFault::Shape { duration, .. }
            | StepFault::LinkDown { duration, .. }
            | StepFault::Kill { duration, .. } => *duration,
            StepFault::Flap { duration, .. }
            | StepFault::Pause { duration, .. }
            | StepFault::Disk { duration, .. }
            | StepFault::Forge { duration, .. } => Some(*duration),
            StepFault::Heal | StepFault::Restart { .. } => None,
        }
    }

    /// The nodes the step is aimed at, as written (heal has none).
    pub fn targets(&self) -> Option<&Spanned<Targets>> {
        match &self.fault {
            StepFault::Partition { targets, .. } => targets.as_ref(),
            StepFault::Heal => None,
            StepFault::Shape { links, .. }
            | StepFault::LinkDown { links, .. }
            | StepFault::Flap { links, .. } => Some(&links.targets),
            StepFault::Kill { targets, .. }
            | StepFault::Pause { targets, .. }
            | StepFault::Disk { targets, .. }
            | StepFault::Forge { targets, .. }
            | StepFault::Restart { targets } => Some(targets),
        }
    }

    /// The other ends of the affected links, as written.
    pub fn peers(&self) -> Option<&Spanned<Targets>> {
        match &self.fault {
            StepFault::Partition { peers, .. } => peers.as_ref(),
            StepFault::Shape { links, .. }
            | StepFault::LinkDown { links, .. }
            | StepFault::Flap { links, .. } => links.peers.as_ref(),
            _ => None,
        }
    }

    /// The traffic plane of a network fault (`All` for process faults).
    pub fn plane(&self) -> Plane {
        match &self.fault {
            StepFault::Partition { plane, .. } => *plane,
            StepFault::Shape { links, .. }
            | StepFault::LinkDown { links, .. }
            | StepFault::Flap { links, .. } => links.plane,
            _ => Plane::All,
        }
    }

    /// A short human description ("partition isolate leader for 10s").
    pub fn describe(&self) -> String {
        let mut text = self.kind().name().to_string();
        if let StepFault::Partition {
            kind: Some(kind), ..
        } = &self.fault
        {
            text.push(' ');
            text.push_str(kind.name());
        }
        if let Some(targets) = self.targets() {
            text.push(' ');
            text.push_str(&targets.get_ref().to_string());
        }
        if let Some(peers) = self.peers() {
            text.push_str(" ↔ ");
            text.push_str(&peers.get_ref().to_string());
        }
        if let StepFault::Shape { effect, .. } = &self.fault {
            describe_effect(effect, &mut text);
        }
        if let StepFault::Disk {
            delay: Some(delay), ..
        } = &self.fault
        {
            text.push_str(&format!(" {delay}"));
        }
        let plane = self.plane();
        if plane != Plane::All {
            text.push_str(&format!(" ({plane:?} plane)").to_lowercase());
        }
        if let Some(duration) = self.duration() {
            text.push_str(&format!(" for {duration}"));
        }
        text
    }
}

/// Appends " 20%", " 75ms±10ms", " 1mbit" in the order the fields were
/// always described: percent, then delay with jitter, then rate.
fn describe_effect(effect: &Effect, text: &mut String) {
    let (percent, delay, jitter) = match effect {
        Effect::Loss { percent } | Effect::Duplicate { percent } | Effect::Corrupt { percent } => {
            (Some(*percent), None, None)
        }
        Effect::Reorder {
            percent,
            delay,
            jitter,
        } => (Some(*percent), *delay, *jitter),
        Effect::Delay { delay, jitter } => (None, Some(*delay), *jitter),
        Effect::Rate { text: rate, .. } => {
            text.push_str(&format!(" {rate}"));
            return;
        }
    };
    if let Some(percent) = percent {
        text.push_str(&format!(" {percent}%"));
    }
    if let Some(delay) = delay {
        text.push_str(&format!(" {delay}"));
        if let Some(jitter) = jitter {
            text.push_str(&format!("±{jitter}"));
        }
    }
}
