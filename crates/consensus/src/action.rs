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
    /// Carry out a write against durable storage.
    Write(Write),
    /// Send a message to a peer.
    Send(Outbound),
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

/// A write the driver must carry out against durable storage, in the order
/// issued (driver contract, steps 2 and 9).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Durably record the term and vote.
    Meta {
        /// The current term to store.
        term: Term,
        /// The vote cast in that term, if any.
        voted_for: Option<NodeId>,
        /// Acknowledge with [`crate::Input::Persisted`] once durable.
        seq: IoSeq,
    },
    /// Durably remove every entry with index > `truncate_after` (if set),
    /// then append `entries`. Only uncommitted suffixes are ever truncated.
    Append {
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
    /// the driver may store it and drop log entries up to that index. Needs
    /// no acknowledgement.
    Compact {
        /// The local snapshot; entries up to `snapshot.last_index` may go.
        snapshot: Snapshot,
    },
}

impl Write {
    /// The sequence number to acknowledge once this write is durable (none
    /// for a local compaction).
    pub fn seq(&self) -> Option<IoSeq> {
        match self {
            Write::Meta { seq, .. }
            | Write::Append { seq, .. }
            | Write::InstallSnapshot { seq, .. } => Some(*seq),
            Write::Compact { .. } => None,
        }
    }
}

/// A message for a peer, as [`Action::Send`] hands it to the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The peer addressed.
    pub to: NodeId,
    /// The term to put in the frame header.
    pub term: Term,
    /// The frame body.
    pub message: Message,
    /// UDP or TCP.
    pub transport: Transport,
    /// Hold the message until this write is durable (`None`: send now;
    /// driver contract, step 3).
    pub after: Option<IoSeq>,
}

impl Outbound {
    /// Whether the message must still be held back when everything up to
    /// `durable` is durable: it waits for a later write.
    pub fn waits_for(&self, durable: IoSeq) -> bool {
        self.after.is_some_and(|seq| seq > durable)
    }
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
