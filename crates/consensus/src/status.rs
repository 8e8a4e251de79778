//! A read-only view of a replica, for `/status`, metrics and invariants.
use wire::{Index, NodeId, Term};

use crate::config::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub id: NodeId,
    /// We heard from the peer within the last election timeout.
    pub inbound_alive: bool,
    /// The peer acknowledged one of our heartbeats within the last election
    /// timeout (only a leader tracks this; followers report `false`).
    pub outbound_alive: bool,
    pub match_index: Index,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub mode: Mode,
    pub role: Role,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    /// Remaining lease in nanoseconds at the time of the last step (0: none).
    pub lease_remaining_ns: u64,
    pub quorum_reachable: bool,
    pub peers: Vec<PeerStatus>,
    pub first_index: Index,
    pub last_index: Index,
    pub commit_index: Index,
    pub applied_index: Index,
    pub state_hash: u64,
}
