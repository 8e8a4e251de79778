//! Log replication: appends with log matching and conflict hints, quorum
//! commit, applying to the KV state, local snapshots and InstallSnapshot.
use wire::{AppendAnswer, Entry, Index, Message, NodeId, Payload, Term};

use super::{SafeReplica, snapshot};
use crate::action::{ClientReply, Transport};
use crate::event::Event;
use crate::quorum;
use crate::replica_core::{write_committed, written};
use crate::status::Role;

/// Appends with entries in flight per follower before we wait for answers
/// (Raft's `max_inflight_msgs`). Further entries batch up meanwhile, so a
/// slow or lossy link carries a few large appends rather than a flood.
const MAX_INFLIGHT_APPENDS: usize = 4;

impl SafeReplica {
    /// Sends every follower what it is missing. On a heartbeat tick, also
    /// refreshes lagging commit indexes and, if a peer left entries
    /// unanswered for its retransmit timeout (a reset stream loses them),
    /// resends from the last acknowledged index with exponential backoff.
    pub(super) fn replicate_all(&mut self, on_tick: bool) {
        for peer in self.core.peers.clone() {
            self.replicate_to(peer, on_tick);
        }
    }

    /// The first retransmit timeout: two heartbeats without an answer.
    pub(super) fn base_retransmit(&self) -> u64 {
        self.core.config.heartbeat_interval_ns.saturating_mul(2)
    }

    /// The leader's replication progress for `peer`; `None` unless leading.
    /// (`replicate_to` borrows the field directly: it reads the log while
    /// holding the progress.)
    pub(super) fn progress_mut(&mut self, peer: NodeId) -> Option<&mut super::heartbeat::Progress> {
        self.leader
            .as_mut()
            .and_then(|leader| leader.progress.get_mut(&peer))
    }

    pub(super) fn replicate_to(&mut self, peer: NodeId, on_tick: bool) {
        let last_index = self.core.log.last_index();
        let last_heard = self.liveness.get(&peer).and_then(|peer| peer.last_heard);
        let commit = self.commit;
        let now = self.core.now;
        let max_backoff = self.core.config.election_timeout_max_ns;
        let Some(progress) = self
            .leader
            .as_mut()
            .and_then(|leader| leader.progress.get_mut(&peer))
        else {
            return;
        };
        if on_tick
            && let Some(since) = progress.awaiting_since
            && now >= since.saturating_add(progress.retransmit_after)
        {
            progress.next_index = progress.match_index + 1;
            progress.awaiting_since = None;
            progress.inflight = 0;
            progress.retransmit_after =
                progress.retransmit_after.saturating_mul(2).min(max_backoff);
            if let Some(transfer) = progress.snapshot.as_mut() {
                transfer.resend();
            }
        }
        let behind = progress.next_index <= last_index;
        let refresh_commit =
            on_tick && progress.sent_commit < commit && progress.awaiting_since.is_none();
        if !(behind || refresh_commit) {
            return;
        }
        // Whatever we send or hold back now must be answered in time, or
        // the retransmit timer above starts over from `match_index`.
        if behind && progress.awaiting_since.is_none() {
            progress.awaiting_since = Some(now);
        }
        if behind && progress.inflight >= MAX_INFLIGHT_APPENDS {
            return;
        }
        if progress.next_index <= self.core.log.snapshot_index() {
            let max_len = self.core.config.snapshot_chunk_bytes;
            if let Some(chunk) =
                snapshot::next_chunk(progress, &self.core.log, max_len, now, last_heard)
            {
                let message = Message::InstallSnapshot { chunk };
                self.core.send(peer, message, Transport::Stream, None);
            }
            return;
        }
        progress.snapshot = None;
        let prev_log_index = progress.next_index - 1;
        let Some(prev_log_term) = self.core.log.term_at(prev_log_index) else {
            return;
        };
        let entries = self.core.log.slice(
            progress.next_index,
            last_index,
            self.core.config.max_append_entries.max(1),
        );
        progress.next_index = prev_log_index + entries.len() as Index + 1;
        progress.sent_commit = commit;
        if !entries.is_empty() {
            progress.inflight += 1;
        }
        let message = Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: commit,
        };
        self.core.send(peer, message, Transport::Stream, None);
    }

    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        mut prev_log_index: Index,
        mut prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        if self.leader.is_some() {
            return;
        }
        self.accept_leader(from);
        // Entries our snapshot covers are committed and therefore identical.
        let snapshot_index = self.core.log.snapshot_index();
        if prev_log_index < snapshot_index {
            entries.retain(|entry| entry.index > snapshot_index);
            prev_log_index = snapshot_index;
            prev_log_term = self.core.log.term_at(snapshot_index).unwrap_or(0);
        }
        if prev_log_index > self.core.log.last_index() {
            self.core
                .reject_append(from, self.core.log.last_index() + 1);
            return;
        }
        if self.core.log.term_at(prev_log_index) != Some(prev_log_term) {
            let hint = self
                .core
                .log
                .first_index_of_term_at(prev_log_index, self.commit + 1);
            self.core.reject_append(from, hint);
            return;
        }
        let mut truncate_after = None;
        let mut new_from = entries.len();
        for (position, entry) in entries.iter().enumerate() {
            match self.core.log.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    if entry.index <= self.commit {
                        // Would truncate a committed entry (invariant I9, see
                        // crates/checker/README.md): refuse the
                        // message rather than lose it.
                        self.core.reject_append(from, self.commit + 1);
                        return;
                    }
                    truncate_after = Some(entry.index - 1);
                }
                None => {}
            }
            new_from = position;
            break;
        }
        let match_index = prev_log_index + entries.len() as Index;
        let new_entries: Vec<Entry> = entries.drain(new_from..).collect();
        if let Some(after) = truncate_after {
            self.core.log.truncate_after(after);
            self.core.emit(Event::Truncated { after });
        }
        if !new_entries.is_empty() {
            self.core.write_log(truncate_after, new_entries);
        }
        self.follower_matched = self.follower_matched.max(match_index);
        let learned = leader_commit.min(match_index);
        if learned > self.commit {
            self.commit = learned;
            self.apply_committed();
        }
        self.core.accept_append(from, match_index);
    }

    pub(super) fn on_append_answer(&mut self, from: NodeId, answer: AppendAnswer) {
        let last_index = self.core.log.last_index();
        let base_retransmit = self.base_retransmit();
        let now = self.core.now;
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        // Any answer proves the stream works: reset the backoff.
        progress.retransmit_after = base_retransmit;
        progress.inflight = progress.inflight.saturating_sub(1);
        match answer {
            AppendAnswer::Matched(match_index) => {
                let match_index = match_index.min(last_index);
                if match_index > progress.match_index {
                    progress.match_index = match_index;
                }
                progress.next_index = progress.next_index.max(progress.match_index + 1);
                let in_flight = progress.next_index > progress.match_index + 1;
                progress.awaiting_since = in_flight.then_some(now);
                if !in_flight {
                    progress.inflight = 0;
                }
                self.advance_commit();
            }
            AppendAnswer::Conflict(conflict_index) => {
                if conflict_index <= progress.match_index {
                    return; // stale rejection of something since acknowledged
                }
                progress.next_index = conflict_index.min(last_index + 1);
                progress.awaiting_since = None;
                progress.inflight = 0;
            }
        }
        self.replicate_to(from, false);
    }

    /// Commits the highest index a quorum holds durably, if it is of our
    /// term (entries of earlier terms commit only underneath one).
    pub(super) fn advance_commit(&mut self) {
        let Some(leader) = self.leader.as_ref() else {
            return;
        };
        let mut matches = vec![self.core.io.durable_index().min(self.core.log.last_index())];
        matches.extend(
            leader
                .progress
                .values()
                .map(|progress| progress.match_index),
        );
        let candidate = quorum::quorum_index(&matches);
        if candidate <= self.commit || self.core.log.term_at(candidate) != Some(self.core.term) {
            return;
        }
        for index in self.commit + 1..=candidate {
            if let Some(event) = self.core.log.get(index).and_then(write_committed) {
                self.core.emit(event);
            }
        }
        self.commit = candidate;
        self.apply_committed();
    }

    /// Applies committed entries in order, answers the writes waiting on
    /// them, serves reads that waited for them, and snapshots if due.
    pub(super) fn apply_committed(&mut self) {
        while let Some((entry, result)) = self.core.apply_next(self.commit) {
            self.core.emit_applied(&entry);
            let Some(leader) = self.leader.as_mut() else {
                continue;
            };
            let waiters = leader
                .pending_writes
                .remove(&entry.index)
                .unwrap_or_default();
            if let Payload::Command { client, seq, .. } = &entry.payload {
                leader.inflight.remove(&(*client, *seq));
            }
            for waiter in waiters {
                let reply = match (&entry.payload, result) {
                    (Payload::Command { client, seq, .. }, Some(result))
                        if (*client, *seq) == (waiter.client, waiter.seq) =>
                    {
                        written(result)
                    }
                    _ => ClientReply::Unknown {
                        reason: "a different entry was committed at this index".to_owned(),
                    },
                };
                self.core.reply(waiter.id, reply);
            }
        }
        self.maybe_snapshot();
        if self.core.role == Role::Leader {
            self.serve_ready_reads();
        }
    }
}
