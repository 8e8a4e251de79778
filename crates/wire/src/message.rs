//! Peer messages exchanged between replicas.
//!
//! The same types travel over UDP (heartbeats and their acks, one message per
//! datagram) and over TCP (everything else). Every message is wrapped in a
//! [`crate::Frame`] that carries the protocol version, cluster id, sender,
//! receiver and the sender's term, so a receiver can reject a frame before it
//! looks at the body.
use crate::chunk::SnapshotChunk;

/// A replica's identity. The node binary derives it from the node's name
/// (see `node::config`); the simulator numbers replicas 1..=N.
pub type NodeId = u64;
/// A Raft term (also called *generation* or *epoch*): at most one leader is
/// elected per term, and a message from an older term is refused (fencing).
pub type Term = u64;
/// A log index; the first entry has index 1, 0 means "before the log".
pub type Index = u64;

/// A fencing token: the `(term, index)` at which a write was committed.
/// Tokens are totally ordered; a storage layer may reject any write whose
/// token is lower than the highest one it has accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Token {
    /// Term of the leader that committed the write; compared first.
    pub term: Term,
    /// Log index of the write within that term's log.
    pub index: Index,
}

/// A key-value mutation, as replicated in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Sets `key` to `value`, whatever it held before.
    Put {
        /// The key written.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`; deleting an absent key succeeds.
    Delete {
        /// The key removed.
        key: String,
    },
    /// Writes `value` only if the current value equals `expected`
    /// (`None` means "the key must be absent").
    Cas {
        /// The key compared and written.
        key: String,
        /// The value the key must hold now, or `None` for "absent".
        expected: Option<String>,
        /// The value written when the comparison holds.
        value: String,
    },
    /// Appends `element` to the list held by `key` (an absent key holds the
    /// empty list). Lists are stored as their elements joined by
    /// [`LIST_SEPARATOR`]; the client API refuses elements containing it, so
    /// every acknowledged append leaves exactly one trace a later read finds.
    Append {
        /// The list's key.
        key: String,
        /// The element appended.
        element: String,
    },
}

/// Separates the elements of a list value built by [`KvOp::Append`].
pub const LIST_SEPARATOR: char = ' ';

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Appended by every new leader so it can commit entries of earlier terms.
    Noop,
    /// A client command. `(client, seq)` identifies it for exactly-once application.
    Command {
        /// The client session the command belongs to.
        client: u64,
        /// Per-client sequence number; a repeated `(client, seq)` is not applied twice.
        seq: u64,
        /// The mutation to apply.
        op: KvOp,
    },
}

/// One replicated log entry. Two entries with the same `index` and `term`
/// are identical (Raft's log matching property).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Term of the leader that appended the entry.
    pub term: Term,
    /// Position in the log, starting at 1.
    pub index: Index,
    /// What the entry carries.
    pub payload: Payload,
}

/// A snapshot of the state machine at `last_index`. `data` is opaque to the
/// wire layer; the consensus crate encodes and decodes it. It travels as
/// [`SnapshotChunk`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Index of the last entry the snapshot covers.
    pub last_index: Index,
    /// Term of that entry, so the log after it can be matched.
    pub last_term: Term,
    /// The encoded state machine.
    pub data: Vec<u8>,
}

/// A follower's answer to an append. On the wire: a success byte, the match
/// index and the conflict index, the one that does not apply being 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAnswer {
    /// The entries were appended and persisted: the follower's log matches
    /// the leader's up to this index.
    Matched(Index),
    /// Refused: the leader should retry from this index.
    Conflict(Index),
}

/// The body of a frame. The sender's term lives in the frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// PreVote: "would you vote for me at `header.term` (= current + 1)?"
    /// Does not change the receiver's term or vote.
    PreVote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of that entry; with the index it says how up to date the log is.
        last_log_term: Term,
    },
    /// Answer to [`Message::PreVote`].
    PreVoteResponse {
        /// True if the receiver would vote for the candidate.
        granted: bool,
    },
    /// RequestVote for `header.term`.
    Vote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of that entry.
        last_log_term: Term,
    },
    /// Answer to [`Message::Vote`]; sent only after the vote is persisted.
    VoteResponse {
        /// True if the receiver voted for the candidate in `header.term`.
        granted: bool,
    },
    /// AppendEntries. An empty `entries` is a probe.
    Append {
        /// Index of the entry just before `entries`; the follower must hold it.
        prev_log_index: Index,
        /// Term of that entry; a mismatch makes the follower refuse.
        prev_log_term: Term,
        /// Entries to append after `prev_log_index`, in index order.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
    },
    /// A follower's answer to an `Append`.
    AppendResponse {
        /// Appended (and persisted) up to an index, or refused with a hint.
        answer: AppendAnswer,
    },
    /// One chunk of a snapshot, sent when the leader has already compacted
    /// the entries the follower lacks. The follower stages chunks in order
    /// and replaces its state only once the whole snapshot arrived and its
    /// checksum holds.
    InstallSnapshot {
        /// The chunk, naming the whole snapshot it belongs to.
        chunk: SnapshotChunk,
    },
    /// Answer to every [`Message::InstallSnapshot`] chunk: how far the
    /// follower got, so the leader sends the next chunk (or resumes where
    /// the follower's staging stands, `0` after a restart).
    InstallSnapshotResponse {
        /// The `last_index` of the snapshot the answered chunk belongs to.
        last_index: Index,
        /// Bytes of that snapshot the follower holds staged: the offset of
        /// the chunk it wants next.
        next_offset: u64,
        /// True once the follower holds state up to `last_index` durably
        /// (installed now, or already there): `last_index` is then its match
        /// index. Sent only after the install is persisted.
        installed: bool,
    },
    /// UDP liveness round. `seq` increases by one per round per leader term;
    /// acks are matched to the round's send time by `seq`, never by arrival time.
    Heartbeat {
        /// The round number.
        seq: u64,
        /// The leader's commit index, so idle followers learn commits.
        commit: Index,
    },
    /// Answer to [`Message::Heartbeat`]; a quorum of acks extends the lease.
    HeartbeatAck {
        /// The round acknowledged.
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
