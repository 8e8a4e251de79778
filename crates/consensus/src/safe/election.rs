//! Elections: randomized timers, PreVote, votes, and role changes.
use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use wire::{Entry, Index, Message, NodeId, Payload, Term};

use super::SafeReplica;
use super::heartbeat::LeaderState;
use crate::IoSeq;
use crate::action::{Action, ClientReply, Rejection, Transport};
use crate::event::{Event, StepDownReason};
use crate::lease;
use crate::status::Role;

/// A timeout drawn uniformly from `[min, max)` (just `min` if the range is empty).
pub(crate) fn random_timeout(rng: &mut ChaCha8Rng, min: u64, max: u64) -> u64 {
    if max <= min {
        return min;
    }
    min + rng.next_u64() % (max - min)
}

impl SafeReplica {
    pub(super) fn reset_election_timer(&mut self) {
        let timeout = random_timeout(
            &mut self.rng,
            self.config.election_timeout_min_ns,
            self.config.election_timeout_max_ns,
        );
        self.election_deadline = self.now.saturating_add(timeout);
    }

    pub(super) fn tick(&mut self) {
        self.update_liveness();
        if self.role == Role::Leader {
            self.tick_leader();
        } else if self.now >= self.election_deadline {
            self.start_pre_vote();
        }
    }

    /// True if we may grant a (pre)vote now: no live leader (ourselves
    /// included) may still hold a lease we helped to build.
    pub(super) fn may_vote_now(&self) -> bool {
        match &self.leader {
            Some(leader) => !lease::holds(self.now, leader.lease_until),
            None => lease::may_grant_vote(
                self.now,
                self.last_leader_contact,
                self.config.election_timeout_min_ns,
            ),
        }
    }

    /// PreVote (Raft thesis §9.6): ask whether we *could* win at
    /// `term + 1` before touching our term, so a node that cannot reach a
    /// quorum never inflates terms.
    fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader_id = None;
        self.vote_for_ourselves();
        self.reset_election_timer();
        if self.votes.len() >= self.quorum() {
            self.start_election();
            return;
        }
        self.request_votes(self.term + 1, pre_vote, None);
    }

    fn start_election(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.follower_matched = 0;
        self.vote_for_ourselves();
        let seq = self.persist_meta();
        self.emit(Event::ElectionStarted { term: self.term });
        self.reset_election_timer();
        if self.votes.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        self.request_votes(self.term, vote, Some(seq));
    }

    /// A new round's ballot box: our own vote only.
    fn vote_for_ourselves(&mut self) {
        self.votes.clear();
        self.votes.insert(self.config.id);
    }

    /// Asks every peer for its (pre-)vote on our last log position, at
    /// `term`, once `after` is durable.
    fn request_votes(
        &mut self,
        term: Term,
        request: fn(Index, Term) -> Message,
        after: Option<IoSeq>,
    ) {
        let message = request(self.log.last_index(), self.log.last_term());
        for peer in self.peers.clone() {
            self.send_with_term(peer, term, message.clone(), Transport::Stream, after);
        }
    }

    pub(super) fn on_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        let granted = term > self.term
            && self.log.is_up_to_date(last_index, last_term)
            && self.may_vote_now();
        // A grant echoes the asked-for term; a refusal carries ours.
        let reply_term = if granted { term } else { self.term };
        self.send_with_term(
            from,
            reply_term,
            Message::PreVoteResponse { granted },
            Transport::Stream,
            None,
        );
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        if !granted {
            self.emit(Event::PreVoteRejected {
                term: self.term + 1,
                by: from,
            });
            return;
        }
        if term != self.term + 1 {
            return; // an answer to an older campaign
        }
        self.votes.insert(from);
        if self.votes.len() >= self.quorum() {
            self.start_election();
        }
    }

    pub(super) fn on_vote(&mut self, from: NodeId, term: Term, last_index: Index, last_term: Term) {
        let granted = term == self.term
            && self.role != Role::Leader
            && self.voted_for.is_none_or(|voted| voted == from)
            && self.log.is_up_to_date(last_index, last_term)
            && self.may_vote_now();
        if !granted {
            self.send(
                from,
                Message::VoteResponse { granted: false },
                Transport::Stream,
                None,
            );
            return;
        }
        self.voted_for = Some(from);
        self.role = Role::Follower;
        // Persist-before-send: the grant leaves only once the vote is durable
        // (invariant I1 across restarts, see crates/checker/README.md).
        let seq = self.persist_meta();
        self.reset_election_timer();
        self.send(
            from,
            Message::VoteResponse { granted: true },
            Transport::Stream,
            Some(seq),
        );
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::Candidate || term != self.term || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= self.quorum() {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.incoming_snapshot = None;
        self.leader_id = Some(self.config.id);
        self.votes.clear();
        let mut leader = LeaderState::new(self.config.id, self.quorum(), self.now);
        for peer in &self.peers {
            leader.add_peer(*peer, self.log.last_index() + 1, self.base_retransmit());
        }
        self.leader = Some(leader);
        for liveness in self.liveness.values_mut() {
            liveness.last_ack = None;
            liveness.outbound_up = false;
        }
        self.emit(Event::BecameLeader { term: self.term });
        // A no-op of our own term lets us commit (and learn the commit
        // index of) entries from earlier terms (Raft §5.4.2).
        let entry = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            payload: Payload::Noop,
        };
        if let Some(leader) = self.leader.as_mut() {
            leader.noop_index = entry.index;
        }
        self.append_local(entry);
        self.heartbeat_round();
        self.replicate_all(false);
        self.advance_commit();
    }

    /// Becomes a follower, adopting `term` first if it is newer. A leader
    /// stepping down fails its pending requests: writes as "unknown" (they
    /// may still commit), reads as "not leader" (they changed nothing).
    pub(super) fn become_follower(
        &mut self,
        term: Term,
        leader: Option<NodeId>,
        reason: StepDownReason,
    ) {
        let old_term = self.term;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.follower_matched = 0;
            self.persist_meta();
        }
        if let Some(state) = self.leader.take() {
            if lease::holds(self.now, state.lease_until) {
                self.emit(Event::LeaseLost { term: old_term });
            }
            self.emit(Event::SteppedDown {
                term: old_term,
                reason,
            });
            for (_, waiters) in state.pending_writes {
                for waiter in waiters {
                    let reply = ClientReply::Unknown {
                        reason: format!("leadership of term {old_term} lost before commit"),
                    };
                    self.out.push(Action::Reply {
                        id: waiter.id,
                        reply,
                    });
                }
            }
            for read in state.pending_reads {
                let reply = ClientReply::Rejected(Rejection::NotLeader { leader });
                self.out.push(Action::Reply { id: read.id, reply });
            }
        }
        if self.role != Role::Follower || leader.is_some() {
            self.reset_election_timer();
        }
        self.role = Role::Follower;
        self.leader_id = leader;
        self.votes.clear();
    }

    /// Called on every message from the current leader of our term.
    pub(super) fn accept_leader(&mut self, from: NodeId) {
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from), StepDownReason::HigherTerm);
        }
        self.leader_id = Some(from);
        self.last_leader_contact = Some(self.now);
        self.reset_election_timer();
    }
}

/// A pre-vote request for a log ending at `last_log_index` in `last_log_term`.
fn pre_vote(last_log_index: Index, last_log_term: Term) -> Message {
    Message::PreVote {
        last_log_index,
        last_log_term,
    }
}

/// A vote request for a log ending at `last_log_index` in `last_log_term`.
fn vote(last_log_index: Index, last_log_term: Term) -> Message {
    Message::Vote {
        last_log_index,
        last_log_term,
    }
}
