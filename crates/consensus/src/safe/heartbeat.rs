//! Heartbeat rounds, the leader lease, CheckQuorum and peer liveness.
//!
//! Heartbeats travel as datagrams. The leader numbers its rounds; a round
//! acknowledged by a quorum extends the lease to the round's *send* time
//! plus `L` ([`crate::lease`]), confirms pending ReadIndex reads, and proves
//! the leader still leads. A peer counts only by acknowledging our rounds
//! (bidirectional liveness): hearing a peer's messages is not enough.
use std::collections::BTreeMap;

use wire::{Index, Message, NodeId};

use super::SafeReplica;
use crate::action::Transport;
use crate::event::{Event, StepDownReason};
use crate::input::RequestId;
use crate::lease::{self, Confirmed, HeartbeatRounds};

/// Replication progress of one follower.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    pub(super) next_index: Index,
    pub(super) match_index: Index,
    /// The commit index we last told this peer through an append.
    pub(super) sent_commit: Index,
    /// When we sent entries (or a snapshot) that are not yet acknowledged.
    pub(super) awaiting_since: Option<u64>,
    /// How long to wait for an answer before resending from `match_index`;
    /// doubles on every silent timeout so a slow link is not flooded.
    pub(super) retransmit_after: u64,
    /// Appends with entries sent but not yet answered.
    pub(super) inflight: usize,
    /// The snapshot being sent, while the peer is behind our log start.
    pub(super) snapshot: Option<super::snapshot::SnapshotTransfer>,
}

#[derive(Debug, Clone)]
pub(super) struct PendingWrite {
    pub(super) id: RequestId,
    pub(super) client: u64,
    pub(super) seq: u64,
}

#[derive(Debug, Clone)]
pub(super) struct PendingRead {
    pub(super) id: RequestId,
    pub(super) key: String,
    /// The commit index when the read arrived; served once applied.
    pub(super) read_index: Index,
    /// The first heartbeat round issued after the read arrived; a quorum
    /// ack of it (or a later round) confirms we were still leader.
    pub(super) needs_round: u64,
    /// Lease reads skip the round but recheck the lease when served.
    pub(super) lease_read: bool,
}

/// State that exists only while leading.
#[derive(Debug, Clone)]
pub(super) struct LeaderState {
    pub(super) progress: BTreeMap<NodeId, Progress>,
    pub(super) rounds: HeartbeatRounds,
    pub(super) next_heartbeat_at: u64,
    pub(super) lease_until: u64,
    pub(super) lease_valid: bool,
    pub(super) quorum_lost: bool,
    /// Send time of the latest quorum-acknowledged round, or the election.
    pub(super) last_quorum_contact: u64,
    pub(super) noop_index: Index,
    pub(super) pending_writes: BTreeMap<Index, Vec<PendingWrite>>,
    /// `(client, seq)` of commands in the log but not yet applied.
    pub(super) inflight: BTreeMap<(u64, u64), Index>,
    pub(super) pending_reads: Vec<PendingRead>,
}

impl LeaderState {
    pub(super) fn new(own_id: NodeId, quorum: usize, now: u64) -> LeaderState {
        LeaderState {
            progress: BTreeMap::new(),
            rounds: HeartbeatRounds::new(own_id, quorum),
            next_heartbeat_at: now,
            lease_until: 0,
            lease_valid: false,
            quorum_lost: false,
            last_quorum_contact: now,
            noop_index: 0,
            pending_writes: BTreeMap::new(),
            inflight: BTreeMap::new(),
            pending_reads: Vec::new(),
        }
    }

    pub(super) fn add_peer(&mut self, peer: NodeId, next_index: Index, retransmit_after: u64) {
        let progress = Progress {
            next_index,
            match_index: 0,
            sent_commit: 0,
            awaiting_since: None,
            retransmit_after,
            inflight: 0,
            snapshot: None,
        };
        self.progress.insert(peer, progress);
    }

    pub(super) fn pending_requests(&self) -> usize {
        self.pending_writes.values().map(Vec::len).sum::<usize>() + self.pending_reads.len()
    }
}

impl SafeReplica {
    pub(super) fn tick_leader(&mut self) {
        let Some(leader) = self.leader.as_ref() else {
            return;
        };
        if self.core.now >= leader.next_heartbeat_at {
            self.heartbeat_round();
            self.replicate_all(true);
        }
        self.check_lease();
        self.check_quorum();
    }

    /// Sends one numbered heartbeat round to every peer.
    pub(super) fn heartbeat_round(&mut self) {
        let now = self.core.now;
        let et_max = self.core.config.election_timeout_max_ns;
        let interval = self.core.config.heartbeat_interval_ns;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        leader.next_heartbeat_at = now.saturating_add(interval);
        let (seq, confirmed) = leader.rounds.start(now);
        // Acks for rounds older than an election timeout are worthless: the
        // lease they would grant has already run out.
        leader.rounds.prune_before(now.saturating_sub(et_max));
        let message = Message::Heartbeat {
            seq,
            commit: self.commit,
        };
        self.core.broadcast(message, Transport::Datagram, None);
        if let Some(confirmed) = confirmed {
            self.on_round_confirmed(confirmed);
        }
    }

    pub(super) fn on_heartbeat_ack(&mut self, from: NodeId, seq: u64) {
        let now = self.core.now;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let confirmed = leader.rounds.ack(seq, from);
        if let Some(liveness) = self.liveness.get_mut(&from) {
            liveness.last_ack = Some(now);
        }
        self.update_liveness();
        if let Some(confirmed) = confirmed {
            self.on_round_confirmed(confirmed);
        }
    }

    fn on_round_confirmed(&mut self, confirmed: Confirmed) {
        let until = lease::lease_end(confirmed.sent_at, self.core.config.lease_ns());
        let term = self.core.term;
        let now = self.core.now;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        leader.last_quorum_contact = leader.last_quorum_contact.max(confirmed.sent_at);
        for read in &mut leader.pending_reads {
            if !read.lease_read && read.needs_round <= confirmed.seq {
                read.needs_round = 0;
            }
        }
        let mut events = Vec::new();
        if until > leader.lease_until && lease::holds(now, until) {
            leader.lease_until = until;
            events.push(Event::LeaseExtended { term, until });
            if !leader.lease_valid {
                leader.lease_valid = true;
                if leader.quorum_lost {
                    leader.quorum_lost = false;
                    events.push(Event::QuorumRegained { term });
                }
            }
        }
        for event in events {
            self.core.emit(event);
        }
        self.serve_ready_reads();
    }

    /// The lease ran out without renewal: writes and lease reads are now
    /// refused until a quorum acknowledges a new round.
    fn check_lease(&mut self) {
        let term = self.core.term;
        let now = self.core.now;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        if leader.lease_valid && !lease::holds(now, leader.lease_until) {
            leader.lease_valid = false;
            leader.quorum_lost = true;
            self.core.emit(Event::LeaseLost { term });
            self.core.emit(Event::QuorumLost { term });
        }
    }

    /// CheckQuorum: no quorum acknowledged any round sent within the last
    /// minimum election timeout, so a majority may be electing someone else.
    fn check_quorum(&mut self) {
        let Some(leader) = self.leader.as_ref() else {
            return;
        };
        let deadline = leader
            .last_quorum_contact
            .saturating_add(self.core.config.election_timeout_min_ns);
        if self.core.now >= deadline {
            if !leader.quorum_lost {
                self.core.emit(Event::QuorumLost {
                    term: self.core.term,
                });
            }
            self.become_follower(self.core.term, None, StepDownReason::QuorumLost);
        }
    }

    /// A follower's side of a heartbeat: the leader is alive, so refuse
    /// votes for `ET_min`, learn the commit index as far as our log is known
    /// to match, and acknowledge the round by its number.
    pub(super) fn on_heartbeat(&mut self, from: NodeId, seq: u64, commit: Index) {
        if self.leader.is_some() {
            return; // two leaders in one term cannot happen; ignore
        }
        self.accept_leader(from);
        let learned = commit.min(self.follower_matched);
        if learned > self.commit {
            self.commit = learned;
            self.apply_committed();
        }
        self.core.send(
            from,
            Message::HeartbeatAck { seq },
            Transport::Datagram,
            None,
        );
    }

    pub(super) fn note_heard(&mut self, from: NodeId) {
        if let Some(liveness) = self.liveness.get_mut(&from) {
            liveness.last_heard = Some(self.core.now);
        }
        self.update_liveness();
    }

    /// Emits `PeerUp`/`PeerDown` on every change. Inbound: we heard the peer
    /// within `ET_min`. Outbound (leader only): it acked a round within
    /// `ET_min`.
    pub(super) fn update_liveness(&mut self) {
        let window = self.core.config.election_timeout_min_ns;
        let now = self.core.now;
        let leading = self.leader.is_some();
        let recent = |at: Option<u64>| at.is_some_and(|at| now < at.saturating_add(window));
        let mut events = Vec::new();
        for (peer, liveness) in &mut self.liveness {
            let inbound = recent(liveness.last_heard);
            if inbound != liveness.inbound_up {
                liveness.inbound_up = inbound;
                events.push(if inbound {
                    Event::PeerUp { peer: *peer }
                } else {
                    Event::PeerDown {
                        peer: *peer,
                        inbound: true,
                    }
                });
            }
            let outbound = leading && recent(liveness.last_ack);
            if outbound != liveness.outbound_up {
                liveness.outbound_up = outbound;
                if outbound {
                    events.push(Event::PeerUp { peer: *peer });
                } else if leading {
                    events.push(Event::PeerDown {
                        peer: *peer,
                        inbound: false,
                    });
                }
            }
        }
        for event in events {
            self.core.emit(event);
        }
    }
}
