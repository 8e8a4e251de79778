//! What comes out of a replica.
use wire::{Entry, Index, Message, NodeId, Snapshot, Term, Token};

use crate::event::Event;
use crate::input::{IoSeq, RequestId};

/// Which socket a [`Action::Send`] goes over; decides whether loss is routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP, best effort (heartbeats and their acks).
    Datagram,
    /// TCP, ordered per peer connection (replication, votes).
    Stream,
}

/// A side effect the driver must carry out, in order (see the crate's driver
/// contract).
#[must_use = "actions must be executed by the driver"]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Durably record the term and vote.
    PersistMeta {
        /// The current term to store.
        term: Term,
        /// The vote cast in that term, if any.
        voted_for: Option<NodeId>,
        /// Acknowledge with [`crate::Input::Persisted`] once durable.
        seq: IoSeq,
    },
    /// Durably remove every entry with index > `truncate_after` (if set),
    /// then append `entries`. Only uncommitted suffixes are ever truncated.
    AppendLog {
        /// Drop every stored entry with a higher index first (`None`: keep all).
        truncate_after: Option<Index>,
        /// Entries to append, contiguous and in index order (may be empty).
        entries: Vec<Entry>,
        /// Acknowledge with [`crate::Input::Persisted`] once durable.
        seq: IoSeq,
    },
    /// Durably replace the state with `snapshot` and drop log entries it covers.
    InstallSnapshot {
        /// The snapshot received from the leader.
        snapshot: Snapshot,
        /// Acknowledge with [`crate::Input::Persisted`] once durable.
        seq: IoSeq,
    },
    /// The state machine up to `snapshot.last_index` was snapshotted locally;
    /// the driver may store it and drop log entries up to that index.
    CompactLog {
        /// The local snapshot; entries up to `snapshot.last_index` may go.
        snapshot: Snapshot,
    },
    /// Send a message to a peer. If `after` is set, hold it until that
    /// sequence number is durable (driver contract, step 3).
    Send {
        /// The peer addressed.
        to: NodeId,
        /// The term to put in the frame header.
        term: Term,
        /// The frame body.
        message: Message,
        /// UDP or TCP.
        transport: Transport,
        /// Hold the message until this write is durable (`None`: send now).
        after: Option<IoSeq>,
    },
    /// Answer a client request.
    Reply {
        /// The id the driver gave the request in [`crate::Input::Client`].
        id: RequestId,
        /// The outcome.
        reply: ClientReply,
    },
    /// Something an observer should know (event log, metrics, checker).
    Event(Event),
}

/// The payload of a successful client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResponse {
    /// A write was committed and applied at `token`. For a CAS, `applied`
    /// tells whether the comparison succeeded.
    Written {
        /// Where the write was committed; doubles as its fencing token.
        token: Token,
        /// False only for a CAS whose comparison failed (still committed).
        applied: bool,
    },
    /// The value of a key at `index` (`None`: absent).
    Value {
        /// The value read.
        value: Option<String>,
        /// The applied index the read observed.
        index: Index,
    },
}

/// Why a request was refused. A refused write was certainly not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// This replica is not the leader; retry at `leader` if known.
    NotLeader {
        /// The leader this replica last heard from in its current term.
        leader: Option<NodeId>,
    },
    /// A leader that no quorum has confirmed yet in this term (no lease
    /// so far, or its no-op is not committed).
    NoQuorum,
    /// A leader whose lease ran out: a quorum has not acknowledged a recent
    /// heartbeat round, so another leader may exist.
    LeaseExpired,
    /// Too many requests in flight.
    Overloaded,
}

impl Rejection {
    /// Stable name for the HTTP API and histories.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::NotLeader { .. } => "not_leader",
            Rejection::NoQuorum => "no_quorum",
            Rejection::LeaseExpired => "lease_expired",
            Rejection::Overloaded => "overloaded",
        }
    }
}

/// The one answer every client request gets (unless the replica crashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientReply {
    /// Done: committed and applied (writes) or served (reads).
    Ok(ClientResponse),
    /// Definitely not applied.
    Rejected(Rejection),
    /// Outcome unknown: the request may or may not have been applied
    /// (for example, leadership was lost while the entry was in flight).
    Unknown {
        /// Why the outcome cannot be known, for logs and histories.
        reason: String,
    },
}
