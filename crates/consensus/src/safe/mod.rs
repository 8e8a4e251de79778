//! The `safe` strategy: Raft-style elections with PreVote and CheckQuorum,
//! leader leases from quorum-acknowledged heartbeat rounds, log replication
//! with quorum commit, snapshots, fencing tokens and exactly-once sessions.
//!
//! Code map (one concern per file):
//! - `mod.rs` — state, the input handlers, term rules, status;
//! - `election.rs` — timers, PreVote, votes, becoming leader or follower;
//! - `heartbeat.rs` — heartbeat rounds, the lease, CheckQuorum, peer liveness;
//! - `replication.rs` — appends, commit, apply;
//! - `snapshot.rs` — log compaction and chunked InstallSnapshot;
//! - `client.rs` — client writes and the three kinds of read.
mod client;
mod election;
mod heartbeat;
mod replication;
mod snapshot;

use std::collections::BTreeMap;

use wire::{Index, Message, NodeId, Term};

use crate::action::Transport;
use crate::event::{Event, StepDownReason};
use crate::input::{ClientRequest, IoSeq, RequestId, Restored};
use crate::replica::Strategy;
use crate::replica_core::Core;
use crate::status::{PeerStatus, Role, Status};
use crate::{Config, ConfigError};

/// What the local replica knows about one peer's liveness.
#[derive(Debug, Clone, Default)]
struct PeerLiveness {
    /// Last time any message from the peer arrived.
    last_heard: Option<u64>,
    inbound_up: bool,
    /// Last time the peer acknowledged one of our heartbeats (leader only).
    last_ack: Option<u64>,
    outbound_up: bool,
}

pub(crate) struct SafeReplica {
    core: Core,
    commit: Index,
    election_deadline: u64,
    /// Last contact with a live leader of our term (or start-up after a
    /// restart, when an old lease may still be running).
    last_leader_contact: Option<u64>,
    /// Highest index verified to match the current term's leader.
    follower_matched: Index,
    /// (Pre-)votes collected in the current campaign, ourselves included.
    votes: std::collections::BTreeSet<NodeId>,
    liveness: BTreeMap<NodeId, PeerLiveness>,
    leader: Option<heartbeat::LeaderState>,
    /// Snapshot chunks staged from the current leader (memory only).
    incoming_snapshot: Option<snapshot::IncomingSnapshot>,
}

impl SafeReplica {
    pub(crate) fn new(
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Self, ConfigError> {
        let core = Core::restore(config, restored, seed, now)?;
        let liveness = core
            .peers
            .iter()
            .map(|peer| (*peer, PeerLiveness::default()))
            .collect();
        let mut replica = SafeReplica {
            commit: core.log.snapshot_index(),
            election_deadline: 0,
            // After a restart a leader we acked before the crash may still
            // hold a lease: behave as if we just heard from it.
            last_leader_contact: (core.term > 0).then_some(now),
            follower_matched: 0,
            votes: Default::default(),
            liveness,
            leader: None,
            incoming_snapshot: None,
            core,
        };
        replica.reset_election_timer();
        Ok(replica)
    }

    fn quorum(&self) -> usize {
        self.core.config.quorum()
    }

    /// PreVotes travel at `term + 1` without changing anyone's term, and a
    /// vote request inside a leader lease is refused without adopting its
    /// term (Raft thesis §4.2.3), so a partitioned node rejoining cannot
    /// depose a healthy leader.
    fn handles_higher_term_itself(&self, message: &Message) -> bool {
        match message {
            Message::PreVote { .. } => true,
            Message::PreVoteResponse { granted } => *granted,
            Message::Vote { .. } => !self.may_vote_now(),
            _ => false,
        }
    }

    /// Fencing (invariant I7, see crates/checker/README.md): a request from
    /// an older term is refused and answered
    /// with our term; stale responses are dropped silently.
    fn reject_stale(&mut self, from: NodeId, their_term: Term, message: &Message) {
        let reply = match message {
            Message::PreVote { .. } => Message::PreVoteResponse { granted: false },
            Message::Vote { .. } => Message::VoteResponse { granted: false },
            Message::Append { .. }
            | Message::InstallSnapshot { .. }
            | Message::Heartbeat { .. } => Message::StaleTerm,
            _ => return,
        };
        self.core.emit(Event::StaleTermRejected {
            from,
            their_term,
            our_term: self.core.term,
        });
        let transport = if reply == Message::StaleTerm && message.is_datagram() {
            Transport::Datagram
        } else {
            Transport::Stream
        };
        self.core.send(from, reply, transport, None);
    }

    fn lease_until(&self) -> u64 {
        self.leader.as_ref().map_or(0, |leader| leader.lease_until)
    }
}

impl Strategy for SafeReplica {
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn on_tick(&mut self) {
        self.update_liveness();
        if self.core.role == Role::Leader {
            self.tick_leader();
        } else if self.core.now >= self.election_deadline {
            self.start_pre_vote();
        }
    }

    fn on_message(&mut self, from: NodeId, term: Term, message: Message) {
        if !self.liveness.contains_key(&from) {
            return; // not a member: the driver should have dropped it
        }
        self.note_heard(from);
        if term < self.core.term {
            self.reject_stale(from, term, &message);
            return;
        }
        if term > self.core.term && !self.handles_higher_term_itself(&message) {
            let leader = matches!(
                message,
                Message::Append { .. }
                    | Message::Heartbeat { .. }
                    | Message::InstallSnapshot { .. }
            )
            .then_some(from);
            self.become_follower(term, leader, StepDownReason::HigherTerm);
        }
        match message {
            Message::PreVote {
                last_log_index,
                last_log_term,
            } => self.on_pre_vote(from, term, last_log_index, last_log_term),
            Message::PreVoteResponse { granted } => self.on_pre_vote_response(from, term, granted),
            Message::Vote {
                last_log_index,
                last_log_term,
            } => self.on_vote(from, term, last_log_index, last_log_term),
            Message::VoteResponse { granted } => self.on_vote_response(from, term, granted),
            Message::Append {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => self.on_append(from, prev_log_index, prev_log_term, entries, leader_commit),
            Message::AppendResponse { answer } => self.on_append_answer(from, answer),
            Message::InstallSnapshot { chunk } => self.on_install_snapshot(from, chunk),
            Message::InstallSnapshotResponse {
                last_index,
                next_offset,
                installed,
            } => self.on_install_snapshot_response(from, last_index, next_offset, installed),
            Message::Heartbeat { seq, commit } => self.on_heartbeat(from, seq, commit),
            Message::HeartbeatAck { seq } => self.on_heartbeat_ack(from, seq),
            // A higher term was handled above; an equal one carries no news.
            Message::StaleTerm => {}
        }
    }

    fn on_client(&mut self, id: RequestId, request: ClientRequest) {
        match request {
            ClientRequest::Write { client, seq, op } => self.on_write(id, client, seq, op),
            ClientRequest::Read { key, mode } => self.on_read(id, key, mode),
        }
    }

    fn on_persisted(&mut self, upto: IoSeq) {
        self.core.io.persisted(upto);
        if self.core.role == Role::Leader {
            self.advance_commit();
        }
    }

    fn status(&self) -> Status {
        let leader = self.leader.as_ref();
        let peers = self
            .core
            .peers
            .iter()
            .map(|peer| {
                let liveness = &self.liveness[peer];
                PeerStatus {
                    id: *peer,
                    inbound_alive: liveness.inbound_up,
                    outbound_alive: leader.is_some() && liveness.outbound_up,
                    match_index: leader
                        .and_then(|leader| leader.progress.get(peer))
                        .map_or(0, |progress| progress.match_index),
                }
            })
            .collect();
        let quorum_reachable = match leader {
            Some(leader) => crate::lease::holds(self.core.now, leader.lease_until),
            None => {
                let heard = self
                    .liveness
                    .values()
                    .filter(|peer| peer.inbound_up)
                    .count();
                heard + 1 >= self.quorum()
            }
        };
        let lease_remaining_ns = self.lease_until().saturating_sub(self.core.now);
        self.core
            .status(peers, self.commit, lease_remaining_ns, quorum_reachable)
    }
}

#[cfg(test)]
mod tests;
