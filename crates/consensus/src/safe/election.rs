//! Elections: randomized timers, PreVote, votes, and role changes.
use wire::{Index, Message, NodeId, Payload, Term};

use super::SafeReplica;
use super::heartbeat::LeaderState;
use crate::IoSeq;
use crate::action::{ClientReply, Rejection, Transport};
use crate::event::{Event, StepDownReason};
use crate::lease;
use crate::status::Role;

impl SafeReplica {
    /// Arms the election timer with a ranked timeout. The members that
    /// could stand (all but the known leader) are put in an order every
    /// member computes alike — by a hash of (term, id), so it changes with
    /// every term — and rank `r` of `n` fires at `ET_min + r·S + U[0, S/4)`
    /// with `S = (ET_max − ET_min) / n`. Distinct ranks keep two followers
    /// of the same view from timing out together (a split vote), and the
    /// first rank fires close to `ET_min`, the floor the leases allow,
    /// instead of at a uniform draw's mean. A new order per term means a
    /// first-ranked member that cannot win (partitioned, its PreVote
    /// refused) does not hold the first slot once someone else wins, and
    /// who takes over from a failed leader is not fixed by node ids (the
    /// lab steers leadership by pausing leaders until the one it wants
    /// wins). Every timeout is still at least `ET_min`, so the lease bound
    /// is unchanged.
    pub(super) fn reset_election_timer(&mut self) {
        let config = &self.core.config;
        let (min, max) = (
            config.election_timeout_min_ns,
            config.election_timeout_max_ns,
        );
        let leader = self.core.leader_id;
        let mut standing: Vec<NodeId> = config
            .members
            .iter()
            .copied()
            .filter(|member| Some(*member) != leader)
            .collect();
        let term = self.core.term;
        standing
            .sort_unstable_by_key(|member| (seeded::mix64(term ^ seeded::mix64(*member)), *member));
        let Some(rank) = standing.iter().position(|member| *member == config.id) else {
            // Not a member we know of: fall back to a uniform draw.
            self.election_deadline = self.core.election_deadline();
            return;
        };
        let (rank, ranks) = (rank as u64, standing.len() as u64);
        let slot = max.saturating_sub(min) / ranks;
        let timeout = min + rank * slot + self.core.draw_below(slot / 4);
        self.election_deadline = self.core.now.saturating_add(timeout);
    }

    /// True if we may grant a (pre)vote now: no live leader (ourselves
    /// included) may still hold a lease we helped to build.
    pub(super) fn may_vote_now(&self) -> bool {
        match &self.leader {
            Some(leader) => !lease::holds(self.core.now, leader.lease_until),
            None => lease::may_grant_vote(
                self.core.now,
                self.last_leader_contact,
                self.core.config.election_timeout_min_ns,
            ),
        }
    }

    /// PreVote (Raft thesis §9.6): ask whether we *could* win at
    /// `term + 1` before touching our term, so a node that cannot reach a
    /// quorum never inflates terms.
    pub(super) fn start_pre_vote(&mut self) {
        self.core.role = Role::PreCandidate;
        self.core.leader_id = None;
        self.vote_for_ourselves();
        self.reset_election_timer();
        if self.votes.len() >= self.quorum() {
            self.start_election();
            return;
        }
        self.request_votes(self.core.term + 1, pre_vote, None);
    }

    fn start_election(&mut self) {
        let seq = self.core.start_term();
        self.core.role = Role::Candidate;
        self.follower_matched = 0;
        self.vote_for_ourselves();
        self.core.emit(Event::ElectionStarted {
            term: self.core.term,
        });
        self.reset_election_timer();
        if self.votes.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        self.request_votes(self.core.term, vote, Some(seq));
    }

    /// A new round's ballot box: our own vote only.
    fn vote_for_ourselves(&mut self) {
        self.votes.clear();
        self.votes.insert(self.core.config.id);
    }

    /// Asks every peer for its (pre-)vote on our last log position, at
    /// `term`, once `after` is durable.
    fn request_votes(
        &mut self,
        term: Term,
        request: fn(Index, Term) -> Message,
        after: Option<IoSeq>,
    ) {
        let message = request(self.core.log.last_index(), self.core.log.last_term());
        self.core
            .broadcast_with_term(term, message, Transport::Stream, after);
    }

    pub(super) fn on_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        let granted = term > self.core.term
            && self.core.log.is_up_to_date(last_index, last_term)
            && self.may_vote_now();
        // A grant echoes the asked-for term; a refusal carries ours.
        let reply_term = if granted { term } else { self.core.term };
        self.core.send_with_term(
            from,
            reply_term,
            Message::PreVoteResponse { granted },
            Transport::Stream,
            None,
        );
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.core.role != Role::PreCandidate {
            return;
        }
        if !granted {
            self.core.emit(Event::PreVoteRejected {
                term: self.core.term + 1,
                by: from,
            });
            return;
        }
        if term != self.core.term + 1 {
            return; // an answer to an older campaign
        }
        self.votes.insert(from);
        if self.votes.len() >= self.quorum() {
            self.start_election();
        }
    }

    pub(super) fn on_vote(&mut self, from: NodeId, term: Term, last_index: Index, last_term: Term) {
        let granted = term == self.core.term
            && self.core.role != Role::Leader
            && self.core.voted_for.is_none_or(|voted| voted == from)
            && self.core.log.is_up_to_date(last_index, last_term)
            && self.may_vote_now();
        if !granted {
            self.core.refuse_vote(from);
            return;
        }
        self.core.role = Role::Follower;
        self.core.grant_vote(from);
        self.reset_election_timer();
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.core.role != Role::Candidate || term != self.core.term || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= self.quorum() {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.core.role = Role::Leader;
        self.incoming_snapshot = None;
        self.core.leader_id = Some(self.core.config.id);
        self.votes.clear();
        let mut leader = LeaderState::new(self.core.config.id, self.quorum(), self.core.now);
        for peer in &self.core.peers {
            leader.add_peer(
                *peer,
                self.core.log.last_index() + 1,
                self.base_retransmit(),
            );
        }
        self.leader = Some(leader);
        for liveness in self.liveness.values_mut() {
            liveness.last_ack = None;
            liveness.outbound_up = false;
        }
        self.core.emit(Event::BecameLeader {
            term: self.core.term,
        });
        // A no-op of our own term lets us commit (and learn the commit
        // index of) entries from earlier terms (Raft §5.4.2).
        let noop_index = self.core.append_own(Payload::Noop);
        if let Some(leader) = self.leader.as_mut() {
            leader.noop_index = noop_index;
        }
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
        let old_term = self.core.term;
        if self.core.adopt_term(term) {
            self.follower_matched = 0;
        }
        if let Some(state) = self.leader.take() {
            if lease::holds(self.core.now, state.lease_until) {
                self.core.emit(Event::LeaseLost { term: old_term });
            }
            self.core.emit(Event::SteppedDown {
                term: old_term,
                reason,
            });
            for (_, waiters) in state.pending_writes {
                for waiter in waiters {
                    let reply = ClientReply::Unknown {
                        reason: format!("leadership of term {old_term} lost before commit"),
                    };
                    self.core.reply(waiter.id, reply);
                }
            }
            for read in state.pending_reads {
                self.core.reject(read.id, Rejection::NotLeader { leader });
            }
        }
        let rearm = self.core.role != Role::Follower || leader.is_some();
        // Role and leader first: the timer's rank depends on who leads.
        self.core.role = Role::Follower;
        self.core.leader_id = leader;
        self.votes.clear();
        if rearm {
            self.reset_election_timer();
        }
    }

    /// Called on every message from the current leader of our term.
    pub(super) fn accept_leader(&mut self, from: NodeId) {
        if self.core.role != Role::Follower {
            self.become_follower(self.core.term, Some(from), StepDownReason::HigherTerm);
        }
        self.core.leader_id = Some(from);
        self.last_leader_contact = Some(self.core.now);
        self.reset_election_timer();
    }
}

/// A pre-vote request for a log ending at `last_log_index` in `last_log_term`.
pub(super) fn pre_vote(last_log_index: Index, last_log_term: Term) -> Message {
    Message::PreVote {
        last_log_index,
        last_log_term,
    }
}

/// A vote request for a log ending at `last_log_index` in `last_log_term`.
pub(super) fn vote(last_log_index: Index, last_log_term: Term) -> Message {
    Message::Vote {
        last_log_index,
        last_log_term,
    }
}
