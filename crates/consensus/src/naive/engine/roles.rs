//! Role changes of the naive engine: self-promotion, the vote campaign
//! used by `no-fencing`, and stepping down (when a policy allows it).
use std::collections::BTreeSet;

use wire::{Message, NodeId, Payload, Term};

use super::NaiveReplica;
use crate::action::{ClientReply, Transport};
use crate::event::{Event, StepDownReason};
use crate::status::Role;

impl NaiveReplica {
    pub(super) fn campaign(&mut self) {
        let seq = self.core.start_term();
        self.core.role = Role::Candidate;
        self.votes = BTreeSet::from([self.core.config.id]);
        self.core.emit(Event::ElectionStarted {
            term: self.core.term,
        });
        if self.votes.len() >= self.core.config.quorum() {
            self.become_leader();
            return;
        }
        let message = Message::Vote {
            last_log_index: self.core.log.last_index(),
            last_log_term: self.core.log.last_term(),
        };
        self.core.broadcast(message, Transport::Stream, Some(seq));
    }

    pub(super) fn become_leader(&mut self) {
        self.core.role = Role::Leader;
        self.core.leader_id = Some(self.core.config.id);
        let next = self.core.log.last_index() + 1;
        self.progress = self
            .core
            .peers
            .iter()
            .map(|peer| (*peer, (next, 0)))
            .collect();
        self.core.emit(Event::BecameLeader {
            term: self.core.term,
        });
        self.core.append_own(Payload::Noop);
        self.replicate_all(false);
    }

    pub(super) fn step_down(&mut self, reason: StepDownReason) {
        if self.core.role == Role::Leader {
            self.core.emit(Event::SteppedDown {
                term: self.core.term,
                reason,
            });
            for (_, waiters) in std::mem::take(&mut self.pending) {
                for id in waiters {
                    let reply = ClientReply::Unknown {
                        reason: "stepped down before the write reached disk".to_owned(),
                    };
                    self.core.reply(id, reply);
                }
            }
        }
        self.core.role = Role::Follower;
        self.progress.clear();
        self.reset_silence_timer();
    }

    pub(super) fn on_vote(&mut self, from: NodeId, term: Term) {
        if self.core.role == Role::Leader && !self.policy.yields_to_newer_term() {
            return;
        }
        if term > self.core.term {
            if self.core.role == Role::Leader {
                self.step_down(StepDownReason::HigherTerm);
            }
            self.core.adopt_term(term);
            self.core.role = Role::Follower;
        }
        let granted =
            term == self.core.term && self.core.voted_for.is_none_or(|voted| voted == from);
        if !granted {
            self.core.refuse_vote(from);
            return;
        }
        self.core.grant_vote(from);
        self.reset_silence_timer();
    }
}
