//! Node event logs: what each replica reports about itself.
//!
//! JSONL, one event per line:
//!
//! ```json
//! {"node":"n1","mono_ns":1000,"local_ns":1003,"term":2,"event":"became_leader"}
//! {"node":"n1","mono_ns":1500,"local_ns":1503,"term":2,"event":"lease_extended","until_mono_ns":9500}
//! {"node":"n2","mono_ns":9000,"local_ns":8990,"term":2,"event":"applied","index":12,"state_hash":991}
//! ```
//!
//! `mono_ns` is the reference clock (true host `CLOCK_MONOTONIC` in the lab,
//! true time in the simulator); `local_ns` is the node's own, possibly skewed
//! clock. `term` is the node's current term when it logged the event. Lease
//! ends are mapped onto the reference clock by the driver (`until_mono_ns`),
//! since only the driver knows the node's clock offset and drift.
//!
//! The variants mirror `consensus::Event`, plus the driver-level `started`,
//! `recovered` and `final_state` (the end-of-run snapshot convergence is
//! judged on). Peers are node names, as in `node`.
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::history::Token;
use crate::jsonl::{self, JsonlError};

/// Why a leader stepped down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepDownReason {
    /// Saw a message with a higher term.
    HigherTerm,
    /// CheckQuorum: no quorum heard within an election timeout.
    QuorumLost,
    /// The lease ran out and could not be renewed.
    LeaseExpired,
}

/// Which half of a link to a peer went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// We stopped hearing from the peer.
    Inbound,
    /// The peer stopped acknowledging us.
    Outbound,
}

/// What happened (`"event"` in JSON, fields inline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The process started (fresh or restarted).
    Started,
    /// State was restored from disk up to `last_index`.
    Recovered {
        /// Last log index restored (0: empty).
        last_index: u64,
    },
    /// This node started an election for `term`.
    ElectionStarted,
    /// A pre-vote for `term + 1` was rejected by `by`.
    PreVoteRejected {
        /// The peer that refused.
        by: String,
    },
    /// This node became leader of `term` (invariant I1: one per term).
    BecameLeader,
    /// This node stopped leading.
    SteppedDown {
        /// What made it step down.
        reason: StepDownReason,
    },
    /// The lease of `(node, term)` now runs until `until_mono_ns` on the
    /// reference clock. Emitted on acquisition and every extension.
    LeaseExtended {
        /// Lease end on the reference clock (ns), drift included.
        until_mono_ns: u64,
    },
    /// The lease ended unrenewed; closes the lease window early.
    LeaseLost,
    /// The leader stopped hearing from a quorum.
    QuorumLost,
    /// A quorum acknowledged the leader again.
    QuorumRegained,
    /// A peer became reachable.
    PeerUp {
        /// The peer's name.
        peer: String,
    },
    /// A peer went quiet in one direction.
    PeerDown {
        /// The peer's name.
        peer: String,
        /// Which direction.
        direction: LinkDirection,
    },
    /// A write with this fencing token was committed (leader side).
    WriteCommitted {
        /// Where it committed.
        token: Token,
    },
    /// A write was accepted into the log at `index` while this node believed
    /// it was leader of `term` — the "accepting writes" window.
    WriteAccepted {
        /// The log index the write was given.
        index: u64,
    },
    /// Entries up to `index` were applied; `state_hash` fingerprints the
    /// state machine after applying them.
    Applied {
        /// Highest applied index.
        index: u64,
        /// State fingerprint after it; equal on nodes at the same index (I8).
        state_hash: u64,
    },
    /// A divergent, uncommitted suffix after `after` was removed.
    Truncated {
        /// The last index kept.
        after: u64,
    },
    /// A message from `from` carrying the older `their_term` was rejected.
    StaleTermRejected {
        /// The sender's name.
        from: String,
        /// The sender's term, lower than ours.
        their_term: u64,
    },
    /// A leader sent its snapshot to `peer`, which had fallen behind the
    /// leader's log start.
    SnapshotSent {
        /// The follower's name.
        peer: String,
        /// Last index the snapshot covers.
        last_index: u64,
        /// Size of the snapshot's state, bytes.
        bytes: u64,
    },
    /// A follower durably installed a snapshot received from its leader:
    /// it caught up by snapshot, not by log.
    SnapshotInstalled {
        /// Last index the snapshot covers.
        last_index: u64,
        /// Size of the snapshot's state, bytes.
        bytes: u64,
    },
    /// The node durably snapshotted its applied state and dropped the log
    /// prefix up to `last_index`.
    Compacted {
        /// Last index the snapshot covers.
        last_index: u64,
        /// Size of the snapshot's state, bytes.
        bytes: u64,
    },
    /// End-of-run snapshot (after heal and quiescence), one per live node.
    /// The event's `term` is the node's final term.
    FinalState {
        /// The node's commit index.
        commit_index: u64,
        /// The node's applied index.
        applied_index: u64,
        /// Fingerprint of the state at `applied_index` (compared by I10).
        state_hash: u64,
    },
}

impl EventKind {
    /// The `"event"` tag.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Recovered { .. } => "recovered",
            EventKind::ElectionStarted => "election_started",
            EventKind::PreVoteRejected { .. } => "pre_vote_rejected",
            EventKind::BecameLeader => "became_leader",
            EventKind::SteppedDown { .. } => "stepped_down",
            EventKind::LeaseExtended { .. } => "lease_extended",
            EventKind::LeaseLost => "lease_lost",
            EventKind::QuorumLost => "quorum_lost",
            EventKind::QuorumRegained => "quorum_regained",
            EventKind::PeerUp { .. } => "peer_up",
            EventKind::PeerDown { .. } => "peer_down",
            EventKind::WriteCommitted { .. } => "write_committed",
            EventKind::WriteAccepted { .. } => "write_accepted",
            EventKind::Applied { .. } => "applied",
            EventKind::Truncated { .. } => "truncated",
            EventKind::StaleTermRejected { .. } => "stale_term_rejected",
            EventKind::SnapshotSent { .. } => "snapshot_sent",
            EventKind::SnapshotInstalled { .. } => "snapshot_installed",
            EventKind::Compacted { .. } => "compacted",
            EventKind::FinalState { .. } => "final_state",
        }
    }
}

/// One line of a node's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    /// The node's name (as in the topology).
    pub node: String,
    /// Reference clock (true monotonic), nanoseconds.
    pub mono_ns: u64,
    /// The node's own clock, nanoseconds.
    pub local_ns: u64,
    /// The node's current term.
    pub term: u64,
    /// What happened, with its fields inline in JSON.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl NodeEvent {
    /// An event of `node` at `mono_ns` (reference) / `local_ns` (own clock).
    pub fn new(
        node: impl Into<String>,
        mono_ns: u64,
        local_ns: u64,
        term: u64,
        kind: EventKind,
    ) -> Self {
        NodeEvent {
            node: node.into(),
            mono_ns,
            local_ns,
            term,
            kind,
        }
    }
}

/// Reads a JSONL event log; parse errors name the line.
pub fn load_events(path: &Path) -> Result<Vec<NodeEvent>, JsonlError> {
    jsonl::load(path)
}

/// Writes an event log to `path` as JSONL.
pub fn save_events(path: &Path, events: &[NodeEvent]) -> Result<(), JsonlError> {
    jsonl::save(path, events)
}

/// Reads an event log from a stream.
pub fn read_events(reader: impl Read) -> Result<Vec<NodeEvent>, JsonlError> {
    jsonl::read_from(reader, "<events>")
}

/// Writes an event log as JSONL to a stream.
pub fn write_events(writer: impl Write, events: &[NodeEvent]) -> Result<(), JsonlError> {
    jsonl::write_to(writer, events, "<events>")
}
