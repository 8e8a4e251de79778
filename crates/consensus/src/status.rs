//! A read-only view of a replica, for `/status`, metrics and invariants.
use wire::{Index, NodeId, Term};

use crate::config::Mode;

/// Where a replica stands in the election cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one); the state every replica starts in.
    Follower,
    /// Asking for pre-votes; its term has not grown yet.
    PreCandidate,
    /// Asking for votes in a term it has already persisted.
    Candidate,
    /// Won its term; may serve writes while it holds a quorum.
    Leader,
}

impl Role {
    /// The snake_case name used in `/status` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// What a replica knows about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer.
    pub id: NodeId,
    /// We heard from the peer within the last election timeout.
    pub inbound_alive: bool,
    /// The peer acknowledged one of our heartbeats within the last election
    /// timeout (only a leader tracks this; followers report `false`).
    pub outbound_alive: bool,
    /// Highest index known to match our log (leaders only; 0 otherwise).
    pub match_index: Index,
}

/// A snapshot of a replica's state at its last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This replica.
    pub id: NodeId,
    /// The strategy it runs.
    pub mode: Mode,
    /// Its role now.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Its vote in `term`, if cast.
    pub voted_for: Option<NodeId>,
    /// The leader of `term` as far as this replica knows (itself if leading).
    pub leader: Option<NodeId>,
    /// Remaining lease in nanoseconds at the time of the last step (0: none).
    pub lease_remaining_ns: u64,
    /// A `safe` leader: it holds a valid lease. Otherwise: it heard from
    /// enough peers (itself included) to form a quorum.
    pub quorum_reachable: bool,
    /// One entry per other member.
    pub peers: Vec<PeerStatus>,
    /// First index still held as a log entry (the one after the snapshot).
    pub first_index: Index,
    /// Last index in the log.
    pub last_index: Index,
    /// Highest index known to be committed.
    pub commit_index: Index,
    /// Highest index applied to the KV state.
    pub applied_index: Index,
    /// Fingerprint of the KV state at `applied_index`.
    pub state_hash: u64,
}
