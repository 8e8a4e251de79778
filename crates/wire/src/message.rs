//! Peer messages exchanged between replicas.
//!
//! The same types travel over UDP (heartbeats and their acks, one message per
//! datagram) and over TCP (everything else). Every message is wrapped in a
//! [`crate::Frame`] that carries the protocol version, cluster id, sender,
//! receiver and the sender's term, so a receiver can reject a frame before it
//! looks at the body.

/// A replica's identity. The node binary derives it from the node's name
/// (see `node::config`); the simulator numbers replicas 1..=N.
pub type NodeId = u64;
/// A Raft term, called the *generation* or *epoch* in the design notes.
pub type Term = u64;
/// A log index; the first entry has index 1, 0 means "before the log".
pub type Index = u64;

/// A fencing token: the `(term, index)` at which a write was committed.
/// Tokens are totally ordered; a storage layer may reject any write whose
/// token is lower than the highest one it has accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Token {
    pub term: Term,
    pub index: Index,
}

/// A key-value mutation, as replicated in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Writes `value` only if the current value equals `expected`
    /// (`None` means "the key must be absent").
    Cas {
        key: String,
        expected: Option<String>,
        value: String,
    },
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Appended by every new leader so it can commit entries of earlier terms.
    Noop,
    /// A client command. `(client, seq)` identifies it for exactly-once application.
    Command { client: u64, seq: u64, op: KvOp },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// A snapshot of the state machine at `last_index`. `data` is opaque to the
/// wire layer; the consensus crate encodes and decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last_index: Index,
    pub last_term: Term,
    pub data: Vec<u8>,
}

/// The body of a frame. The sender's term lives in the frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// PreVote: "would you vote for me at `header.term` (= current + 1)?"
    /// Does not change the receiver's term or vote.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// RequestVote for `header.term`.
    Vote {
        last_log_index: Index,
        last_log_term: Term,
    },
    VoteResponse {
        granted: bool,
    },
    /// AppendEntries. An empty `entries` is a probe.
    Append {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    },
    /// `match_index` is the highest index known to match the leader's log on
    /// success; on failure `conflict_index` is where the leader should retry.
    AppendResponse {
        success: bool,
        match_index: Index,
        conflict_index: Index,
    },
    InstallSnapshot {
        snapshot: Snapshot,
    },
    InstallSnapshotResponse {
        last_index: Index,
    },
    /// UDP liveness round. `seq` increases by one per round per leader term;
    /// acks are matched to the round's send time by `seq`, never by arrival time.
    Heartbeat {
        seq: u64,
        commit: Index,
    },
    HeartbeatAck {
        seq: u64,
    },
    /// Sent by a replica that rejects a message because its term is stale;
    /// the frame header carries the receiver's (higher) current term.
    StaleTerm,
}

impl Message {
    /// True for messages that travel over UDP (best effort, one per datagram).
    pub fn is_datagram(&self) -> bool {
        matches!(
            self,
            Message::Heartbeat { .. } | Message::HeartbeatAck { .. }
        )
    }
}
