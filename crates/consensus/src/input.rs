//! What goes into a replica.
use wire::{Entry, Index, KvOp, Message, NodeId, Snapshot, Term};

use crate::config::ReadMode;

/// A sequence number for durable writes, issued by the replica in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IoSeq(
    /// Increases by one per durable write this replica instance issues;
    /// 0 is never issued.
    pub u64,
);

/// The driver's handle for a client request; echoed in the reply.
pub type RequestId = u64;

/// A client's request as the driver hands it to the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    /// A mutation. `(client, seq)` makes retries exactly-once.
    Write {
        /// The client session.
        client: u64,
        /// The client's request number; a retry reuses it.
        seq: u64,
        /// The mutation.
        op: KvOp,
    },
    /// A read of one key.
    Read {
        /// The key read.
        key: String,
        /// How strongly the read must be confirmed.
        mode: ReadMode,
    },
}

/// Everything that can happen to a replica; fed through [`crate::Replica::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed; fire any due timers.
    Tick,
    /// A peer message (from UDP or TCP) whose frame header passed the
    /// driver's checks (version, cluster id, known sender, addressed to us).
    Message {
        /// The sender from the frame header.
        from: NodeId,
        /// The sender's term from the frame header.
        term: Term,
        /// The frame body.
        message: Message,
    },
    /// A client request; answered by exactly one [`crate::Action::Reply`].
    Client {
        /// The driver's handle, echoed in the reply.
        id: RequestId,
        /// The request.
        request: ClientRequest,
    },
    /// Every durable write with a sequence number `<= upto` is on disk.
    Persisted {
        /// The highest durable sequence number.
        upto: IoSeq,
    },
}

/// State recovered from durable storage at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// The last persisted term (0 on a fresh node).
    pub term: Term,
    /// The last persisted vote in `term`; restoring it prevents a double vote.
    pub voted_for: Option<NodeId>,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl Restored {
    /// Index of the last restored entry, or of the snapshot if the log after
    /// it is empty; 0 for an empty node.
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map(|entry| entry.index)
            .or(self.snapshot.as_ref().map(|snapshot| snapshot.last_index))
            .unwrap_or(0)
    }
}
