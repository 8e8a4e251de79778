//! Observable happenings, for the node's event log and the checker.
use wire::{Index, NodeId, Term, Token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDownReason {
    /// Saw a message with a higher term.
    HigherTerm,
    /// CheckQuorum: no quorum heard within an election timeout.
    QuorumLost,
    /// The lease ran out and could not be renewed.
    LeaseExpired,
}

impl StepDownReason {
    pub fn name(self) -> &'static str {
        match self {
            StepDownReason::HigherTerm => "higher_term",
            StepDownReason::QuorumLost => "quorum_lost",
            StepDownReason::LeaseExpired => "lease_expired",
        }
    }
}

/// Times are nanoseconds on the replica's own clock; drivers add the true
/// host time when they record an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ElectionStarted {
        term: Term,
    },
    PreVoteRejected {
        term: Term,
        by: NodeId,
    },
    BecameLeader {
        term: Term,
    },
    SteppedDown {
        term: Term,
        reason: StepDownReason,
    },
    /// The lease now runs until `until` (own clock). Emitted on acquisition
    /// and on every extension.
    LeaseExtended {
        term: Term,
        until: u64,
    },
    LeaseLost {
        term: Term,
    },
    QuorumLost {
        term: Term,
    },
    QuorumRegained {
        term: Term,
    },
    PeerUp {
        peer: NodeId,
    },
    /// `inbound`: we stopped hearing from the peer; otherwise the peer
    /// stopped acknowledging us.
    PeerDown {
        peer: NodeId,
        inbound: bool,
    },
    WriteCommitted {
        token: Token,
    },
    StaleTermRejected {
        from: NodeId,
        their_term: Term,
        our_term: Term,
    },
    /// A write was served (accepted into the log) while this replica believed
    /// it was leader of `term` — the "accepting writes" window the checker
    /// compares across nodes.
    WriteAccepted {
        term: Term,
        index: Index,
    },
    /// Entries up to `index` were applied; `state_hash` fingerprints the state.
    Applied {
        index: Index,
        term: Term,
        state_hash: u64,
    },
    /// A divergent, uncommitted suffix after `after` was removed.
    Truncated {
        after: Index,
    },
}
