//! Replica configuration and its validation.
use serde::{Deserialize, Serialize};
use wire::NodeId;

/// Which replication strategy the replica runs. Only [`Mode::Safe`] is
/// correct; the other four reproduce common incorrect designs (numbered
/// #1–#4, as in `naive/` and the museum scenarios) so the lab can show each
/// one break. In scenario files and results (serde) a mode is spelled by
/// its [`Mode::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Raft-style quorum elections with PreVote, CheckQuorum, leases and fencing.
    Safe,
    /// #1: each replica promotes itself after a heartbeat timeout, no quorum.
    TimeoutFailover,
    /// #2: quorum is checked and logged, but writes proceed anyway.
    UnenforcedQuorum,
    /// #3: quorum counted from heartbeats *received*; no vote, no split detection.
    OneWayQuorum,
    /// #4: elections happen, but the old leader keeps writing and replicas
    /// accept any generation.
    NoFencing,
}

impl Mode {
    /// Every mode, `Safe` first; the order of help texts and sweeps.
    pub const ALL: [Mode; 5] = [
        Mode::Safe,
        Mode::TimeoutFailover,
        Mode::UnenforcedQuorum,
        Mode::OneWayQuorum,
        Mode::NoFencing,
    ];

    /// The name used on command lines and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Safe => "safe",
            Mode::TimeoutFailover => "timeout-failover",
            Mode::UnenforcedQuorum => "unenforced-quorum",
            Mode::OneWayQuorum => "one-way-quorum",
            Mode::NoFencing => "no-fencing",
        }
    }

    /// The inverse of [`Mode::name`]; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// ReadIndex: confirm leadership with a quorum heartbeat round issued
    /// after the read arrived, wait until applied >= commit at arrival.
    Linearizable,
    /// Served locally by a leader that holds a valid lease at serve time.
    Lease,
    /// Served from local state by any replica; may be stale.
    Stale,
}

/// Everything a replica needs to know at start-up; checked by
/// [`Config::validate`]. Durations are nanoseconds on the replica's own clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// This replica's id.
    pub id: NodeId,
    /// All voters, including `id`.
    pub members: Vec<NodeId>,
    /// Cluster id put in every frame header; frames of other clusters are dropped.
    pub cluster: u64,
    /// The strategy to run.
    pub mode: Mode,
    /// How often a leader sends a heartbeat round (and retransmits appends).
    pub heartbeat_interval_ns: u64,
    /// Election timeouts are drawn uniformly from `[min, max)`.
    pub election_timeout_min_ns: u64,
    /// Upper bound (exclusive) of the election timeout.
    pub election_timeout_max_ns: u64,
    /// Bound `rho >= 1` on the clock-rate ratio between any two replicas.
    /// The lease is `election_timeout_min / rho - lease_margin`.
    pub clock_drift_bound: f64,
    /// Safety margin subtracted from the lease on top of the drift bound.
    pub lease_margin_ns: u64,
    /// How often the driver must call `Tick`.
    pub tick_interval_ns: u64,
    /// Maximum entries per `Append` message.
    pub max_append_entries: usize,
    /// Take a snapshot and compact the log once this many applied entries
    /// sit in the log; followers further behind get the snapshot.
    pub snapshot_threshold: u64,
    /// Pending client requests beyond this are rejected (back-pressure).
    pub max_pending_requests: usize,
    /// Largest snapshot chunk a leader sends, in bytes: a snapshot of any
    /// size travels in chunks of this size, each in its own frame, so it
    /// must sit well under the driver's frame limit.
    pub snapshot_chunk_bytes: usize,
    /// Client sessions kept for exactly-once writes; a new client beyond it
    /// evicts the least recently used tenth. Part of the replicated
    /// state's rules: must be equal on every member. See
    /// [`DEFAULT_MAX_SESSIONS`](crate::DEFAULT_MAX_SESSIONS) for the
    /// de-duplication window it implies.
    pub max_sessions: usize,
}

/// Default [`Config::snapshot_chunk_bytes`]: 1 MiB, a sixteenth of
/// [`wire::DEFAULT_MAX_FRAME`].
pub const DEFAULT_SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Why [`Replica::new`](crate::Replica::new) refused a configuration or
/// restored state. The message starts with the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `members` has this many entries, outside 1..=9.
    #[error("members: cluster size {0} is outside 1..=9")]
    ClusterSize(usize),
    /// This id appears twice in `members`.
    #[error("members: {0} is listed twice")]
    DuplicateMember(NodeId),
    /// `id` is missing from `members`.
    #[error("id: {0} is not one of the members")]
    NotAMember(NodeId),
    /// Any other out-of-range field (timings, limits, a snapshot that does not decode).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's name as in [`Config`].
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A timing profile: the defaults every timing value starts from, named
/// as splitnode's `--profile` and the bench take them. Both randomise the
/// election timeout in `[election_ms, election_max_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// heartbeat 50 ms, election timeout 250–500 ms (the lab's choice).
    Fast,
    /// heartbeat 100 ms, election timeout 1000–2000 ms (etcd's defaults).
    Default,
}

impl Profile {
    /// The profile named `fast` or `default`.
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "fast" => Some(Profile::Fast),
            "default" => Some(Profile::Default),
            _ => None,
        }
    }

    /// Its name, as [`Profile::from_name`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Default => "default",
        }
    }

    /// Heartbeat interval, ms.
    pub fn heartbeat_ms(self) -> u64 {
        match self {
            Profile::Fast => 50,
            Profile::Default => 100,
        }
    }

    /// Lower end of the election timeout (ET_min), ms.
    pub fn election_ms(self) -> u64 {
        match self {
            Profile::Fast => 250,
            Profile::Default => 1000,
        }
    }

    /// Upper end (exclusive) of the election timeout, ms.
    pub fn election_max_ms(self) -> u64 {
        2 * self.election_ms()
    }
}

impl Config {
    /// The `fast` profile: heartbeat 50 ms, election timeout 250–500 ms.
    pub fn fast(id: NodeId, members: Vec<NodeId>, cluster: u64, mode: Mode) -> Config {
        Config::for_profile(Profile::Fast, id, members, cluster, mode)
    }

    /// The configuration `profile` gives every timing value.
    pub fn for_profile(
        profile: Profile,
        id: NodeId,
        members: Vec<NodeId>,
        cluster: u64,
        mode: Mode,
    ) -> Config {
        let heartbeat_ms = profile.heartbeat_ms();
        const MS: u64 = 1_000_000;
        Config {
            id,
            members,
            cluster,
            mode,
            heartbeat_interval_ns: heartbeat_ms * MS,
            election_timeout_min_ns: profile.election_ms() * MS,
            election_timeout_max_ns: profile.election_max_ms() * MS,
            clock_drift_bound: 1.01,
            lease_margin_ns: heartbeat_ms * MS / 5,
            tick_interval_ns: heartbeat_ms * MS / 5,
            max_append_entries: 256,
            snapshot_threshold: 10_000,
            max_pending_requests: 10_000,
            snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK_BYTES,
            max_sessions: crate::DEFAULT_MAX_SESSIONS,
        }
    }

    /// Votes needed for a quorum: a strict majority, so never below 2 for a
    /// two-node cluster.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Every member but this node.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .copied()
            .filter(|id| *id != self.id)
            .collect()
    }

    /// The lease length `L = ET_min / rho - margin` (nanoseconds).
    pub fn lease_ns(&self) -> u64 {
        let bound = (self.election_timeout_min_ns as f64 / self.clock_drift_bound) as u64;
        bound.saturating_sub(self.lease_margin_ns)
    }

    /// Checks the configuration. Returns warnings (for example an even
    /// cluster size) that the caller should log.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let size = self.members.len();
        if !(1..=9).contains(&size) {
            return Err(ConfigError::ClusterSize(size));
        }
        let mut seen = std::collections::BTreeSet::new();
        for member in &self.members {
            if !seen.insert(*member) {
                return Err(ConfigError::DuplicateMember(*member));
            }
        }
        if !seen.contains(&self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        let invalid =
            |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.heartbeat_interval_ns == 0 {
            return invalid("heartbeat_interval_ns", "must be positive".into());
        }
        if self.election_timeout_min_ns < 2 * self.heartbeat_interval_ns {
            return invalid(
                "election_timeout_min_ns",
                format!(
                    "{} ns is less than two heartbeat intervals ({} ns): one lost heartbeat would start an election",
                    self.election_timeout_min_ns,
                    2 * self.heartbeat_interval_ns
                ),
            );
        }
        if self.election_timeout_max_ns <= self.election_timeout_min_ns {
            return invalid(
                "election_timeout_max_ns",
                format!(
                    "{} ns must exceed election_timeout_min_ns ({} ns) so timeouts can be randomised",
                    self.election_timeout_max_ns, self.election_timeout_min_ns
                ),
            );
        }
        if !self.clock_drift_bound.is_finite() || self.clock_drift_bound < 1.0 {
            return invalid(
                "clock_drift_bound",
                format!("{} must be a finite ratio >= 1", self.clock_drift_bound),
            );
        }
        if self.lease_ns() == 0 {
            return invalid(
                "lease_margin_ns",
                format!(
                    "leaves no lease: election_timeout_min / rho = {} ns",
                    (self.election_timeout_min_ns as f64 / self.clock_drift_bound) as u64
                ),
            );
        }
        if self.tick_interval_ns == 0 || self.tick_interval_ns > self.heartbeat_interval_ns {
            return invalid(
                "tick_interval_ns",
                format!(
                    "{} ns must be positive and at most the heartbeat interval ({} ns)",
                    self.tick_interval_ns, self.heartbeat_interval_ns
                ),
            );
        }
        if self.max_append_entries == 0 {
            return invalid("max_append_entries", "must be at least 1".into());
        }
        if self.snapshot_threshold == 0 {
            return invalid("snapshot_threshold", "must be at least 1".into());
        }
        if self.max_pending_requests == 0 {
            return invalid("max_pending_requests", "must be at least 1".into());
        }
        if self.snapshot_chunk_bytes == 0 {
            return invalid("snapshot_chunk_bytes", "must be at least 1".into());
        }
        if self.max_sessions == 0 {
            return invalid("max_sessions", "must be at least 1".into());
        }
        let mut warnings = Vec::new();
        if size.is_multiple_of(2) {
            warnings.push(format!(
                "members: an even cluster size ({size}) tolerates no more failures than {} nodes; quorum stays {}",
                size - 1,
                self.quorum()
            ));
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn serde_spells_every_mode_by_its_name() {
        for mode in Mode::ALL {
            let quoted = format!("\"{}\"", mode.name());
            assert_eq!(serde_json::to_string(&mode).unwrap(), quoted);
            assert_eq!(serde_json::from_str::<Mode>(&quoted).unwrap(), mode);
        }
    }
}
