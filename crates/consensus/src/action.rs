//! What comes out of a replica.
use wire::{Entry, Index, Message, NodeId, Snapshot, Term, Token};

use crate::event::Event;
use crate::input::{IoSeq, RequestId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP, best effort (heartbeats and their acks).
    Datagram,
    /// TCP, ordered per peer connection (replication, votes).
    Stream,
}

#[must_use = "actions must be executed by the driver"]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Durably record the term and vote.
    PersistMeta {
        term: Term,
        voted_for: Option<NodeId>,
        seq: IoSeq,
    },
    /// Durably remove every entry with index > `truncate_after` (if set),
    /// then append `entries`. Only uncommitted suffixes are ever truncated.
    AppendLog {
        truncate_after: Option<Index>,
        entries: Vec<Entry>,
        seq: IoSeq,
    },
    /// Durably replace the state with `snapshot` and drop log entries it covers.
    InstallSnapshot { snapshot: Snapshot, seq: IoSeq },
    /// The state machine up to `snapshot.last_index` was snapshotted locally;
    /// the driver may store it and drop log entries up to that index.
    CompactLog { snapshot: Snapshot },
    /// Send a message to a peer. If `after` is set, hold it until that
    /// sequence number is durable (driver contract, step 3).
    Send {
        to: NodeId,
        term: Term,
        message: Message,
        transport: Transport,
        after: Option<IoSeq>,
    },
    /// Answer a client request.
    Reply { id: RequestId, reply: ClientReply },
    /// Something an observer should know (event log, metrics, checker).
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResponse {
    /// A write was committed and applied at `token`. For a CAS, `applied`
    /// tells whether the comparison succeeded.
    Written { token: Token, applied: bool },
    /// The value of a key at `index` (`None`: absent).
    Value { value: Option<String>, index: Index },
}

/// Why a request was refused. A refused write was certainly not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NotLeader {
        leader: Option<NodeId>,
    },
    NoQuorum,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientReply {
    Ok(ClientResponse),
    /// Definitely not applied.
    Rejected(Rejection),
    /// Outcome unknown: the request may or may not have been applied
    /// (for example, leadership was lost while the entry was in flight).
    Unknown {
        reason: String,
    },
}
