//! Client requests: writes (leader only, lease checked at serve time,
//! exactly-once by `(client, seq)`) and reads (ReadIndex, lease, stale).
use wire::{KvOp, Payload};

use super::SafeReplica;
use super::heartbeat::{PendingRead, PendingWrite};
use crate::action::{ClientReply, ClientResponse, Rejection};
use crate::config::ReadMode;
use crate::event::Event;
use crate::input::RequestId;
use crate::lease;
use crate::replica_core::written;

impl SafeReplica {
    /// Why this replica cannot serve a leader-only request right now, if it
    /// cannot: not leader, or leader without a valid lease at this instant.
    fn leadership_problem(&self) -> Option<Rejection> {
        let Some(leader) = self.leader.as_ref() else {
            return Some(self.core.not_leader());
        };
        if lease::holds(self.core.now, leader.lease_until) {
            None
        } else if leader.lease_until == 0 {
            Some(Rejection::NoQuorum) // never confirmed by a quorum yet
        } else {
            Some(Rejection::LeaseExpired)
        }
    }

    pub(super) fn on_write(&mut self, id: RequestId, client: u64, seq: u64, op: KvOp) {
        if self.leader.is_none() {
            self.core.reject(id, self.core.not_leader());
            return;
        }
        // Exactly-once: a retry of an applied request gets the first answer.
        match self.core.kv.session_result(client, seq) {
            Some(Ok(result)) => {
                self.core.reply(id, written(result));
                return;
            }
            Some(Err(())) => {
                let reason = "superseded by a later request of the same client".to_owned();
                self.core.reply(id, ClientReply::Unknown { reason });
                return;
            }
            None => {}
        }
        if let Some(problem) = self.leadership_problem() {
            self.core.reject(id, problem);
            return;
        }
        let max_pending = self.core.config.max_pending_requests;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let waiter = PendingWrite { id, client, seq };
        // A retry of a request already in the log waits for that entry.
        if let Some(index) = leader.inflight.get(&(client, seq)) {
            leader
                .pending_writes
                .entry(*index)
                .or_default()
                .push(waiter);
            return;
        }
        if leader.pending_requests() >= max_pending {
            self.core.reject(id, Rejection::Overloaded);
            return;
        }
        let index = self.core.append_own(Payload::Command { client, seq, op });
        leader.pending_writes.entry(index).or_default().push(waiter);
        leader.inflight.insert((client, seq), index);
        self.core.emit(Event::WriteAccepted {
            term: self.core.term,
            index,
        });
        self.replicate_all(false);
        self.advance_commit();
    }

    pub(super) fn on_read(&mut self, id: RequestId, key: String, mode: ReadMode) {
        if mode == ReadMode::Stale {
            self.core.reply(id, self.core.local_read(&key));
            return;
        }
        let lease_read = mode == ReadMode::Lease;
        let problem = if lease_read {
            self.leadership_problem()
        } else {
            self.leader.is_none().then(|| self.core.not_leader())
        };
        if let Some(problem) = problem {
            self.core.reject(id, problem);
            return;
        }
        let commit = self.commit;
        let max_pending = self.core.config.max_pending_requests;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        // Until our no-op commits we do not know the true commit index.
        if commit < leader.noop_index {
            self.core.reject(id, Rejection::NoQuorum);
            return;
        }
        if leader.pending_requests() >= max_pending {
            self.core.reject(id, Rejection::Overloaded);
            return;
        }
        let needs_round = if lease_read {
            0
        } else {
            leader.rounds.last_seq() + 1
        };
        leader.pending_reads.push(PendingRead {
            id,
            key,
            read_index: commit,
            needs_round,
            lease_read,
        });
        if lease_read {
            self.serve_ready_reads();
        } else {
            // ReadIndex: a round issued after the read arrived must reach a
            // quorum, proving no newer leader existed at that moment.
            self.heartbeat_round();
        }
    }

    /// Answers every pending read whose round is confirmed (or, for a lease
    /// read, whose lease still holds now) and whose index has been applied.
    pub(super) fn serve_ready_reads(&mut self) {
        let applied = self.core.kv.applied_index();
        let now = self.core.now;
        let kv = &self.core.kv;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let lease_valid = lease::holds(now, leader.lease_until);
        let mut replies = Vec::new();
        leader.pending_reads.retain(|read| {
            if read.needs_round != 0 || read.read_index > applied {
                return true;
            }
            if read.lease_read && !lease_valid {
                replies.push((read.id, ClientReply::Rejected(Rejection::LeaseExpired)));
                return false;
            }
            let response = ClientResponse::Value {
                value: kv.get(&read.key),
                index: applied,
            };
            replies.push((read.id, ClientReply::Ok(response)));
            false
        });
        for (id, reply) in replies {
            self.core.reply(id, reply);
        }
    }
}
