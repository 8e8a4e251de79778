//! The naive engine's data path: appends, overwrites, applying on receipt
//! (or, on a primary, on its own fsync), and client requests.
use wire::{AppendAnswer, Entry, Index, KvOp, Message, NodeId, Payload, Term};

use super::NaiveReplica;
use crate::action::{ClientReply, Transport};
use crate::config::ReadMode;
use crate::event::{Event, StepDownReason};
use crate::input::RequestId;
use crate::kv::Kv;
use crate::replica_core::{write_committed, written};
use crate::status::Role;

impl NaiveReplica {
    pub(super) fn replicate_all(&mut self, resend: bool) {
        for peer in self.core.peers.clone() {
            self.replicate_to(peer, resend);
        }
    }

    pub(super) fn replicate_to(&mut self, peer: NodeId, resend: bool) {
        let last = self.core.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&peer) else {
            return;
        };
        if resend {
            *next = *matched + 1;
        } else if *next > last {
            return;
        }
        let prev_log_index = *next - 1;
        let prev_log_term = self.core.log.term_at(prev_log_index).unwrap_or(0);
        let entries = self
            .core
            .log
            .slice(*next, last, self.core.config.max_append_entries.max(1));
        *next = prev_log_index + entries.len() as Index + 1;
        let message = Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.core.kv.applied_index(),
        };
        self.core.send(peer, message, Transport::Stream, None);
    }

    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
    ) {
        if self.core.role == Role::Leader {
            if !(term > self.core.term && self.policy.yields_to_newer_term()) {
                return; // a primary listens to nobody
            }
            self.step_down(StepDownReason::HigherTerm);
        }
        if !self.policy.accepts_append(self.core.term, term) {
            self.core.emit(Event::StaleTermRejected {
                from,
                their_term: term,
                our_term: self.core.term,
            });
            self.core
                .send(from, Message::StaleTerm, Transport::Stream, None);
            return;
        }
        self.core.adopt_term(term);
        self.core.role = Role::Follower;
        self.core.leader_id = Some(from);
        self.reset_silence_timer();
        if prev_index > self.core.log.last_index() {
            self.core
                .reject_append(from, self.core.log.last_index() + 1);
            return;
        }
        if prev_index >= self.core.log.first_index()
            && self.core.log.term_at(prev_index) != Some(prev_term)
        {
            let hint = self.core.log.first_index_of_term_at(prev_index, 1);
            self.core.reject_append(from, hint);
            return;
        }
        let match_index = prev_index + entries.len() as Index;
        let mut truncate_after = None;
        let mut fresh = Vec::new();
        for entry in entries {
            if !fresh.is_empty() || entry.index > self.core.log.last_index() {
                fresh.push(entry);
            } else if self.core.log.term_at(entry.index) != Some(entry.term) {
                // No commit index to protect: acknowledged writes go too.
                truncate_after = Some(entry.index - 1);
                self.core.log.truncate_after(entry.index - 1);
                fresh.push(entry);
            }
        }
        if let Some(after) = truncate_after {
            self.core.emit(Event::Truncated { after });
            if after < self.core.kv.applied_index() {
                self.rebuild_state(after);
            }
        }
        if !fresh.is_empty() {
            self.core.write_log(truncate_after, fresh);
        }
        self.apply_up_to(self.core.log.last_index());
        self.core.accept_append(from, match_index);
    }

    /// Replays the log up to `upto` from scratch after a truncation below the
    /// applied index (there is no snapshot in the naive engine's own writes).
    pub(super) fn rebuild_state(&mut self, upto: Index) {
        let mut kv = match self.core.log.snapshot() {
            Some(snapshot) => Kv::restore(snapshot, self.core.config.max_sessions)
                .unwrap_or_else(|_| Kv::new(self.core.config.max_sessions)),
            None => Kv::new(self.core.config.max_sessions),
        };
        for index in self.core.log.first_index()..=upto {
            if let Some(entry) = self.core.log.get(index) {
                kv.apply(entry);
            }
        }
        self.core.kv = kv;
    }

    pub(super) fn on_append_answer(&mut self, from: NodeId, answer: AppendAnswer) {
        let last = self.core.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&from) else {
            return;
        };
        match answer {
            AppendAnswer::Matched(match_index) => {
                *matched = (*matched).max(match_index.min(last));
                *next = (*next).max(*matched + 1);
                self.replicate_to(from, false);
            }
            AppendAnswer::Conflict(conflict_index) => {
                // Retry from the hint on the next heartbeat, not at once: with
                // two unfenced primaries overwriting the same replica, immediate
                // retries would bounce at network speed.
                let retry_from = conflict_index.clamp(1, last + 1);
                *next = retry_from;
                *matched = (*matched).min(retry_from - 1);
            }
        }
    }

    pub(super) fn apply_up_to(&mut self, upto: Index) {
        while let Some((entry, result)) = self.core.apply_next(upto) {
            if self.core.role == Role::Leader
                && let Some(event) = write_committed(&entry)
            {
                self.core.emit(event);
            }
            self.core.emit_applied(&entry);
            for id in self.pending.remove(&entry.index).unwrap_or_default() {
                let reply = match result {
                    Some(result) => written(result),
                    None => ClientReply::Unknown {
                        reason: "entry replaced".to_owned(),
                    },
                };
                self.core.reply(id, reply);
            }
        }
    }

    /// A primary trusts its own copy; anyone may serve stale reads.
    pub(super) fn on_read(&mut self, id: RequestId, key: &str, mode: ReadMode) {
        if mode == ReadMode::Stale || self.core.role == Role::Leader {
            self.core.reply(id, self.core.local_read(key));
        } else {
            self.core.reject(id, self.core.not_leader());
        }
    }

    pub(super) fn on_write(&mut self, id: RequestId, client: u64, seq: u64, op: KvOp) {
        if self.core.role != Role::Leader {
            self.core.reject(id, self.core.not_leader());
            return;
        }
        if let Some(Ok(result)) = self.core.kv.session_result(client, seq) {
            self.core.reply(id, written(result));
            return;
        }
        if let Err(rejection) = self.policy.admit_write(self.view()) {
            self.core.reject(id, rejection);
            return;
        }
        let index = self.core.append_own(Payload::Command { client, seq, op });
        self.pending.entry(index).or_default().push(id);
        self.core.emit(Event::WriteAccepted {
            term: self.core.term,
            index,
        });
        self.replicate_all(false);
    }
}
