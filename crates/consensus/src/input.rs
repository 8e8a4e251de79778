//! What goes into a replica.
use wire::{Entry, Index, KvOp, Message, NodeId, Snapshot, Term};

use crate::config::ReadMode;

/// A sequence number for durable writes, issued by the replica in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IoSeq(pub u64);

/// The driver's handle for a client request; echoed in the reply.
pub type RequestId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    /// A mutation. `(client, seq)` makes retries exactly-once.
    Write {
        client: u64,
        seq: u64,
        op: KvOp,
    },
    Read {
        key: String,
        mode: ReadMode,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed; fire any due timers.
    Tick,
    /// A peer message (from UDP or TCP) whose frame header passed the
    /// driver's checks (version, cluster id, known sender, addressed to us).
    Message {
        from: NodeId,
        term: Term,
        message: Message,
    },
    Client {
        id: RequestId,
        request: ClientRequest,
    },
    /// Every durable write with a sequence number `<= upto` is on disk.
    Persisted { upto: IoSeq },
}

/// State recovered from durable storage at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl Restored {
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map(|entry| entry.index)
            .or(self.snapshot.as_ref().map(|snapshot| snapshot.last_index))
            .unwrap_or(0)
    }
}
