//! The naive engine's data path: appends, overwrites, applying on receipt
//! (or, on a primary, on its own fsync), and client requests.
use wire::{Entry, Index, KvOp, Message, NodeId, Payload, Term, Token};

use super::NaiveReplica;
use crate::action::{Action, ClientReply, ClientResponse, Rejection, Transport};
use crate::config::ReadMode;
use crate::event::{Event, StepDownReason};
use crate::input::{ClientRequest, IoSeq, RequestId};
use crate::kv::Kv;
use crate::log::{append_accepted, append_rejected};
use crate::status::Role;

impl NaiveReplica {
    pub(super) fn append_local(&mut self, payload: Payload) -> Index {
        let entry = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            payload,
        };
        let index = entry.index;
        let write = self.io.append(&mut self.log, None, vec![entry]);
        self.out.push(write);
        index
    }

    pub(super) fn replicate_all(&mut self, resend: bool) {
        for peer in self.peers.clone() {
            self.replicate_to(peer, resend);
        }
    }

    pub(super) fn replicate_to(&mut self, peer: NodeId, resend: bool) {
        let last = self.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&peer) else {
            return;
        };
        if resend {
            *next = *matched + 1;
        } else if *next > last {
            return;
        }
        let prev_log_index = *next - 1;
        let prev_log_term = self.log.term_at(prev_log_index).unwrap_or(0);
        let entries = self
            .log
            .slice(*next, last, self.config.max_append_entries.max(1));
        *next = prev_log_index + entries.len() as Index + 1;
        let message = Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.kv.applied_index(),
        };
        self.send(peer, message, Transport::Stream, None);
    }

    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
    ) {
        if self.role == Role::Leader {
            if !(term > self.term && self.policy.yields_to_newer_term()) {
                return; // a primary listens to nobody
            }
            self.step_down(StepDownReason::HigherTerm);
        }
        if !self.policy.accepts_append(self.term, term) {
            self.emit(Event::StaleTermRejected {
                from,
                their_term: term,
                our_term: self.term,
            });
            self.send(from, Message::StaleTerm, Transport::Stream, None);
            return;
        }
        self.adopt_term(term);
        self.role = Role::Follower;
        self.leader_id = Some(from);
        self.reset_silence_timer();
        if prev_index > self.log.last_index() {
            self.reject_append(from, self.log.last_index() + 1);
            return;
        }
        if prev_index >= self.log.first_index() && self.log.term_at(prev_index) != Some(prev_term) {
            let hint = self.log.first_index_of_term_at(prev_index, 1);
            self.reject_append(from, hint);
            return;
        }
        let match_index = prev_index + entries.len() as Index;
        let mut truncate_after = None;
        let mut fresh = Vec::new();
        for entry in entries {
            if !fresh.is_empty() || entry.index > self.log.last_index() {
                fresh.push(entry);
            } else if self.log.term_at(entry.index) != Some(entry.term) {
                // No commit index to protect: acknowledged writes go too.
                truncate_after = Some(entry.index - 1);
                self.log.truncate_after(entry.index - 1);
                fresh.push(entry);
            }
        }
        if let Some(after) = truncate_after {
            self.emit(Event::Truncated { after });
            if after < self.kv.applied_index() {
                self.rebuild_state(after);
            }
        }
        if !fresh.is_empty() {
            let write = self.io.append(&mut self.log, truncate_after, fresh);
            self.out.push(write);
        }
        self.apply_up_to(self.log.last_index());
        let after = self.io.after_all();
        self.send(from, append_accepted(match_index), Transport::Stream, after);
    }

    pub(super) fn reject_append(&mut self, from: NodeId, conflict_index: Index) {
        self.send(
            from,
            append_rejected(conflict_index),
            Transport::Stream,
            None,
        );
    }

    /// Replays the log up to `upto` from scratch after a truncation below the
    /// applied index (there is no snapshot in the naive engine's own writes).
    pub(super) fn rebuild_state(&mut self, upto: Index) {
        let mut kv = match self.log.snapshot() {
            Some(snapshot) => Kv::restore(snapshot, self.config.max_sessions)
                .unwrap_or_else(|_| Kv::new(self.config.max_sessions)),
            None => Kv::new(self.config.max_sessions),
        };
        for index in self.log.first_index()..=upto {
            if let Some(entry) = self.log.get(index) {
                kv.apply(entry);
            }
        }
        self.kv = kv;
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        conflict_index: Index,
    ) {
        let last = self.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&from) else {
            return;
        };
        if success {
            *matched = (*matched).max(match_index.min(last));
            *next = (*next).max(*matched + 1);
            self.replicate_to(from, false);
        } else {
            // Retry from the hint on the next heartbeat, not at once: with
            // two unfenced primaries overwriting the same replica, immediate
            // retries would bounce at network speed.
            let retry_from = conflict_index.clamp(1, last + 1);
            *next = retry_from;
            *matched = (*matched).min(retry_from - 1);
        }
    }

    pub(super) fn on_persisted(&mut self, upto: IoSeq) {
        self.io.persisted(upto);
        if self.role == Role::Leader {
            // The flaw: on our own disk means acknowledged.
            self.apply_up_to(self.io.durable_index());
        }
    }

    pub(super) fn apply_up_to(&mut self, upto: Index) {
        while self.kv.applied_index() < upto {
            let Some(entry) = self.log.get(self.kv.applied_index() + 1).cloned() else {
                break;
            };
            let result = self.kv.apply(&entry);
            let leading = self.role == Role::Leader;
            if leading && matches!(entry.payload, Payload::Command { .. }) {
                let token = Token {
                    term: entry.term,
                    index: entry.index,
                };
                self.emit(Event::WriteCommitted { token });
            }
            self.emit(Event::Applied {
                index: entry.index,
                term: entry.term,
                state_hash: self.kv.state_hash(),
            });
            for id in self.pending.remove(&entry.index).unwrap_or_default() {
                let reply = match result {
                    Some(result) => ClientReply::Ok(ClientResponse::Written {
                        token: result.token,
                        applied: result.applied,
                    }),
                    None => ClientReply::Unknown {
                        reason: "entry replaced".to_owned(),
                    },
                };
                self.out.push(Action::Reply { id, reply });
            }
        }
    }

    pub(super) fn on_client(&mut self, id: RequestId, request: ClientRequest) {
        match request {
            ClientRequest::Write { client, seq, op } => self.on_write(id, client, seq, op),
            ClientRequest::Read { key, mode } => {
                // A primary trusts its own copy; anyone may serve stale reads.
                let reply = if mode == ReadMode::Stale || self.role == Role::Leader {
                    ClientReply::Ok(ClientResponse::Value {
                        value: self.kv.get(&key),
                        index: self.kv.applied_index(),
                    })
                } else {
                    ClientReply::Rejected(Rejection::NotLeader {
                        leader: self.leader_id,
                    })
                };
                self.out.push(Action::Reply { id, reply });
            }
        }
    }

    pub(super) fn on_write(&mut self, id: RequestId, client: u64, seq: u64, op: KvOp) {
        if self.role != Role::Leader {
            let reply = ClientReply::Rejected(Rejection::NotLeader {
                leader: self.leader_id,
            });
            self.out.push(Action::Reply { id, reply });
            return;
        }
        if let Some(Ok(result)) = self.kv.session_result(client, seq) {
            let reply = ClientReply::Ok(ClientResponse::Written {
                token: result.token,
                applied: result.applied,
            });
            self.out.push(Action::Reply { id, reply });
            return;
        }
        if let Err(rejection) = self.policy.admit_write(self.view()) {
            self.out.push(Action::Reply {
                id,
                reply: ClientReply::Rejected(rejection),
            });
            return;
        }
        let index = self.append_local(Payload::Command { client, seq, op });
        self.pending.entry(index).or_default().push(id);
        self.emit(Event::WriteAccepted {
            term: self.term,
            index,
        });
        self.replicate_all(false);
    }
}
