//! Role changes of the naive engine: self-promotion, the vote campaign
//! used by `no-fencing`, and stepping down (when a policy allows it).
use std::collections::BTreeSet;

use wire::{Message, NodeId, Payload, Term};

use super::NaiveReplica;
use crate::action::{Action, ClientReply, Transport};
use crate::event::{Event, StepDownReason};
use crate::status::Role;

impl NaiveReplica {
    pub(super) fn campaign(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.votes = BTreeSet::from([self.config.id]);
        let seq = self.persist_meta();
        self.emit(Event::ElectionStarted { term: self.term });
        if self.votes.len() >= self.config.quorum() {
            self.become_leader();
            return;
        }
        let message = Message::Vote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.peers.clone() {
            self.send(peer, message.clone(), Transport::Stream, Some(seq));
        }
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader_id = Some(self.config.id);
        let next = self.log.last_index() + 1;
        self.progress = self.peers.iter().map(|peer| (*peer, (next, 0))).collect();
        self.emit(Event::BecameLeader { term: self.term });
        self.append_local(Payload::Noop);
        self.replicate_all(false);
    }

    pub(super) fn step_down(&mut self, reason: StepDownReason) {
        if self.role == Role::Leader {
            self.emit(Event::SteppedDown {
                term: self.term,
                reason,
            });
            for (_, waiters) in std::mem::take(&mut self.pending) {
                for id in waiters {
                    let reply = ClientReply::Unknown {
                        reason: "stepped down before the write reached disk".to_owned(),
                    };
                    self.out.push(Action::Reply { id, reply });
                }
            }
        }
        self.role = Role::Follower;
        self.progress.clear();
        self.reset_silence_timer();
    }

    pub(super) fn on_vote(&mut self, from: NodeId, term: Term) {
        if self.role == Role::Leader && !self.policy.yields_to_newer_term() {
            return;
        }
        if term > self.term {
            if self.role == Role::Leader {
                self.step_down(StepDownReason::HigherTerm);
            }
            self.adopt_term(term);
            self.role = Role::Follower;
        }
        let granted = term == self.term && self.voted_for.is_none_or(|voted| voted == from);
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
        let seq = self.persist_meta();
        self.reset_silence_timer();
        self.send(
            from,
            Message::VoteResponse { granted: true },
            Transport::Stream,
            Some(seq),
        );
    }
}
