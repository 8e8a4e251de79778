//! Observable happenings, for the node's event log and the checker.
use wire::{Index, NodeId, Term, Token};

/// Why a leader became a follower, as recorded in [`Event::SteppedDown`].
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
    /// The snake_case name written to the event log.
    pub fn name(self) -> &'static str {
        match self {
            StepDownReason::HigherTerm => "higher_term",
            StepDownReason::QuorumLost => "quorum_lost",
            StepDownReason::LeaseExpired => "lease_expired",
        }
    }
}

/// Something a replica did that the event log and the checker need to see.
/// Times are nanoseconds on the replica's own clock; drivers add the true
/// host time when they record an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The replica became a candidate and voted for itself (after PreVote,
    /// if the strategy uses it).
    ElectionStarted {
        /// The new term, already persisted.
        term: Term,
    },
    /// A peer refused our pre-vote, so our term does not grow.
    PreVoteRejected {
        /// The term we would have campaigned in.
        term: Term,
        /// The peer that refused.
        by: NodeId,
    },
    /// The replica won `term`; the checker allows one per term (invariant I1,
    /// see crates/checker/README.md).
    BecameLeader {
        /// The term won.
        term: Term,
    },
    /// A leader (or candidate) returned to follower.
    SteppedDown {
        /// The term it leaves leadership of (or the newer term it saw).
        term: Term,
        /// What made it step down.
        reason: StepDownReason,
    },
    /// The lease now runs until `until` (own clock). Emitted on acquisition
    /// and on every extension.
    LeaseExtended {
        /// The leader's term.
        term: Term,
        /// End of the lease, nanoseconds on the replica's own clock.
        until: u64,
    },
    /// The lease ran out (or leadership ended) before it was renewed.
    LeaseLost {
        /// The term whose lease ended.
        term: Term,
    },
    /// The leader stopped hearing from a quorum; it refuses writes and
    /// CheckQuorum will make it step down.
    QuorumLost {
        /// The leader's term.
        term: Term,
    },
    /// A quorum acknowledged a heartbeat round again after `QuorumLost`.
    QuorumRegained {
        /// The leader's term.
        term: Term,
    },
    /// A peer became reachable: we heard it, or (as leader) it acked a round,
    /// within the minimum election timeout.
    PeerUp {
        /// The peer.
        peer: NodeId,
    },
    /// `inbound`: we stopped hearing from the peer; otherwise the peer
    /// stopped acknowledging us.
    PeerDown {
        /// The peer.
        peer: NodeId,
        /// Which direction went quiet.
        inbound: bool,
    },
    /// The leader saw a client write reach its commit index.
    WriteCommitted {
        /// Where it committed.
        token: Token,
    },
    /// Fencing: a message from an older term was refused (invariant I7, see
    /// crates/checker/README.md).
    StaleTermRejected {
        /// The sender.
        from: NodeId,
        /// The sender's (stale) term.
        their_term: Term,
        /// Our term, sent back in the refusal.
        our_term: Term,
    },
    /// A write was served (accepted into the log) while this replica believed
    /// it was leader of `term` — the "accepting writes" window the checker
    /// compares across nodes.
    WriteAccepted {
        /// The term the replica believed it led.
        term: Term,
        /// The log index the write was given.
        index: Index,
    },
    /// Entries up to `index` were applied; `state_hash` fingerprints the state.
    Applied {
        /// The highest applied index.
        index: Index,
        /// The term of the entry at `index`.
        term: Term,
        /// Fingerprint of the KV state after `index`; equal across replicas
        /// that applied the same entries (invariant I8).
        state_hash: u64,
    },
    /// A divergent, uncommitted suffix after `after` was removed.
    Truncated {
        /// The last index kept.
        after: Index,
    },
}

impl StepDownReason {
    /// The checker's spelling of this reason.
    pub fn checker_reason(self) -> checker::StepDownReason {
        match self {
            StepDownReason::HigherTerm => checker::StepDownReason::HigherTerm,
            StepDownReason::QuorumLost => checker::StepDownReason::QuorumLost,
            StepDownReason::LeaseExpired => checker::StepDownReason::LeaseExpired,
        }
    }
}

impl Event {
    /// The term the event names: the term it happened in, the term a
    /// refused pre-vote would have campaigned in, the term of a committed
    /// write's token. `None` for the events that name none (peer links,
    /// applies, truncations): the driver stamps those with the replica's
    /// current term.
    pub fn term(&self) -> Option<Term> {
        match self {
            Event::ElectionStarted { term }
            | Event::PreVoteRejected { term, .. }
            | Event::BecameLeader { term }
            | Event::SteppedDown { term, .. }
            | Event::LeaseExtended { term, .. }
            | Event::LeaseLost { term }
            | Event::QuorumLost { term }
            | Event::QuorumRegained { term }
            | Event::WriteAccepted { term, .. } => Some(*term),
            Event::StaleTermRejected { our_term, .. } => Some(*our_term),
            Event::WriteCommitted { token } => Some(token.term),
            Event::PeerUp { .. }
            | Event::PeerDown { .. }
            | Event::Applied { .. }
            | Event::Truncated { .. } => None,
        }
    }

    /// The event in the checker's vocabulary, as both drivers log it.
    /// `name_of` spells node ids; `lease_end` maps a lease end on the
    /// replica's clock (`LeaseExtended::until`) to the true monotonic clock,
    /// which only the driver knows.
    pub fn checker_kind(
        &self,
        name_of: &dyn Fn(NodeId) -> String,
        lease_end: impl FnOnce(u64) -> u64,
    ) -> checker::EventKind {
        use checker::EventKind;
        match self {
            Event::ElectionStarted { .. } => EventKind::ElectionStarted,
            Event::PreVoteRejected { by, .. } => EventKind::PreVoteRejected { by: name_of(*by) },
            Event::BecameLeader { .. } => EventKind::BecameLeader,
            Event::SteppedDown { reason, .. } => EventKind::SteppedDown {
                reason: reason.checker_reason(),
            },
            Event::LeaseExtended { until, .. } => EventKind::LeaseExtended {
                until_mono_ns: lease_end(*until),
            },
            Event::LeaseLost { .. } => EventKind::LeaseLost,
            Event::QuorumLost { .. } => EventKind::QuorumLost,
            Event::QuorumRegained { .. } => EventKind::QuorumRegained,
            Event::PeerUp { peer } => EventKind::PeerUp {
                peer: name_of(*peer),
            },
            Event::PeerDown { peer, inbound } => EventKind::PeerDown {
                peer: name_of(*peer),
                direction: if *inbound {
                    checker::LinkDirection::Inbound
                } else {
                    checker::LinkDirection::Outbound
                },
            },
            Event::WriteCommitted { token } => EventKind::WriteCommitted {
                token: checker::Token {
                    term: token.term,
                    index: token.index,
                },
            },
            Event::StaleTermRejected {
                from, their_term, ..
            } => EventKind::StaleTermRejected {
                from: name_of(*from),
                their_term: *their_term,
            },
            Event::WriteAccepted { index, .. } => EventKind::WriteAccepted { index: *index },
            Event::Applied {
                index, state_hash, ..
            } => EventKind::Applied {
                index: *index,
                state_hash: *state_hash,
            },
            Event::Truncated { after } => EventKind::Truncated { after: *after },
        }
    }
}
