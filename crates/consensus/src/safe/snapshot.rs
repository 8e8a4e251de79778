//! Snapshots: compacting the local log once enough entries are applied,
//! and bringing a follower that fell behind the log start up to date with
//! InstallSnapshot, chunk by chunk.
//!
//! Transfer protocol (stop-and-wait, one chunk in flight per follower):
//! the leader sends the chunk at `offset`; the follower stages it in memory
//! if it continues exactly what it holds for that snapshot and answers with
//! the offset it wants next. The last chunk completes the staging: the
//! follower checks length and checksum, installs (one durable step, the
//! driver's `InstallSnapshot`) and answers `installed` once it is durable.
//! Staging is memory only, so a partial snapshot is never installed, and a
//! restarted follower answers "offset 0": the leader starts over. Staging
//! belongs to one leader term and one snapshot; a chunk of any other starts
//! a new one. A lost chunk or answer is resent after the retransmit timeout.
use std::sync::Arc;

use wire::{Index, Message, NodeId, Snapshot, SnapshotChunk, Term, snapshot_checksum};

use super::SafeReplica;
use super::heartbeat::Progress;
use crate::action::{Action, Transport, Write};
use crate::event::Event;
use crate::kv::Kv;
use crate::log::Log;

/// A snapshot on its way to one follower (leader side).
#[derive(Debug, Clone)]
pub(super) struct SnapshotTransfer {
    /// Kept while the log compacts further, so a transfer always finishes.
    snapshot: Arc<Snapshot>,
    checksum: u32,
    /// Offset of the chunk in flight, or of the next one to send.
    offset: u64,
    /// The chunk at `offset` is sent and not yet answered.
    in_flight: bool,
    /// When the chunk at `offset` was last sent (`None`: not yet).
    sent_at: Option<u64>,
}

impl SnapshotTransfer {
    fn start(snapshot: Arc<Snapshot>) -> SnapshotTransfer {
        SnapshotTransfer {
            checksum: snapshot_checksum(&snapshot.data),
            snapshot,
            offset: 0,
            in_flight: false,
            sent_at: None,
        }
    }

    /// The retransmit timer fired: the chunk in flight is presumed lost.
    pub(super) fn resend(&mut self) {
        self.in_flight = false;
    }
}

/// Chunks received so far of one snapshot (follower side, memory only).
#[derive(Debug, Clone)]
pub(super) struct IncomingSnapshot {
    /// The leader's term the chunks arrived in.
    term: Term,
    last_index: Index,
    last_term: Term,
    total_len: u64,
    checksum: u32,
    data: Vec<u8>,
}

impl IncomingSnapshot {
    fn is_for(&self, term: Term, chunk: &SnapshotChunk) -> bool {
        self.term == term
            && self.last_index == chunk.last_index
            && self.last_term == chunk.last_term
            && self.total_len == chunk.total_len
            && self.checksum == chunk.checksum
    }
}

/// The next chunk to send `progress`'s follower at `now`, if one may go
/// now. A new transfer takes the log's latest snapshot; one under way keeps
/// its own unless nothing of it went out yet. A chunk whose answer timed
/// out is resent only once the follower was heard from (`last_heard`) after
/// it went out: a cut-off or paused follower gets no stream of megabyte
/// chunks piling up in a send queue, and resumes on the heal.
pub(super) fn next_chunk(
    progress: &mut Progress,
    log: &Log,
    max_len: usize,
    now: u64,
    last_heard: Option<u64>,
) -> Option<SnapshotChunk> {
    let latest = log.snapshot()?;
    let stale = progress.snapshot.as_ref().is_none_or(|transfer| {
        transfer.offset == 0
            && !transfer.in_flight
            && transfer.snapshot.last_index < latest.last_index
    });
    if stale {
        progress.snapshot = Some(SnapshotTransfer::start(latest.clone()));
    }
    let transfer = progress.snapshot.as_mut()?;
    let unheard_since_sent = transfer
        .sent_at
        .is_some_and(|sent| last_heard.is_none_or(|heard| heard <= sent));
    if transfer.in_flight || unheard_since_sent {
        return None;
    }
    transfer.in_flight = true;
    transfer.sent_at = Some(now);
    Some(SnapshotChunk::of(
        &transfer.snapshot,
        transfer.checksum,
        transfer.offset,
        max_len,
    ))
}

impl SafeReplica {
    pub(super) fn on_install_snapshot(&mut self, from: NodeId, chunk: SnapshotChunk) {
        if self.leader.is_some() {
            return;
        }
        self.accept_leader(from);
        let last_index = chunk.last_index;
        if last_index <= self.commit {
            // Everything it covers is committed here, hence identical.
            self.follower_matched = self.follower_matched.max(last_index);
            self.answer_chunk(from, last_index, chunk.total_len, true);
            return;
        }
        let term = self.core.term;
        if !self
            .incoming_snapshot
            .as_ref()
            .is_some_and(|staged| staged.is_for(term, &chunk))
        {
            self.incoming_snapshot = (chunk.offset == 0).then(|| IncomingSnapshot {
                term,
                last_index,
                last_term: chunk.last_term,
                total_len: chunk.total_len,
                checksum: chunk.checksum,
                data: Vec::new(),
            });
        }
        let Some(staged) = self.incoming_snapshot.as_mut() else {
            self.answer_chunk(from, last_index, 0, false);
            return;
        };
        let held = staged.data.len() as u64;
        if chunk.offset != held {
            self.answer_chunk(from, last_index, held, false);
            return;
        }
        staged.data.extend_from_slice(&chunk.data);
        if !chunk.done {
            let held = staged.data.len() as u64;
            self.answer_chunk(from, last_index, held, false);
            return;
        }
        let Some(staged) = self.incoming_snapshot.take() else {
            return;
        };
        let complete = staged.data.len() as u64 == staged.total_len
            && snapshot_checksum(&staged.data) == staged.checksum;
        if !complete {
            self.answer_chunk(from, last_index, 0, false); // start over
            return;
        }
        let snapshot = Snapshot {
            last_index,
            last_term: staged.last_term,
            data: staged.data,
        };
        let total_len = staged.total_len;
        if self.install(snapshot) {
            self.answer_chunk(from, last_index, total_len, true);
        }
    }

    /// Replaces state and log with a complete, verified snapshot beyond our
    /// commit index. False (nothing changed, no answer: the leader resends)
    /// if the state does not decode.
    fn install(&mut self, snapshot: Snapshot) -> bool {
        let last_index = snapshot.last_index;
        let Ok(kv) = Kv::restore(&snapshot, self.core.config.max_sessions) else {
            return false;
        };
        let old_last = self.core.log.last_index();
        let discarded = self.core.log.install_snapshot(snapshot.clone());
        let truncate = (discarded && old_last > last_index).then_some(last_index);
        let seq = self.core.io.issue_log(
            Some(last_index).filter(|_| discarded),
            self.core.log.last_index(),
        );
        self.core
            .push(Action::Write(Write::InstallSnapshot { snapshot, seq }));
        if let Some(after) = truncate {
            let write = self
                .core
                .io
                .append(&mut self.core.log, Some(after), Vec::new());
            self.core.push(write);
            self.core.emit(Event::Truncated { after });
        }
        self.core.kv = kv;
        self.commit = last_index;
        self.core.emit(Event::Applied {
            index: last_index,
            term: self.core.kv.applied_term(),
            state_hash: self.core.kv.state_hash(),
        });
        self.follower_matched = self.follower_matched.max(last_index);
        true
    }

    /// Answers a chunk; an `installed` answer waits until the install (and
    /// everything before it) is durable.
    fn answer_chunk(&mut self, to: NodeId, last_index: Index, next_offset: u64, installed: bool) {
        let after = if installed {
            self.core.io.after_all()
        } else {
            None
        };
        let answer = Message::InstallSnapshotResponse {
            last_index,
            next_offset,
            installed,
        };
        self.core.send(to, answer, Transport::Stream, after);
    }

    pub(super) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        last_index: Index,
        next_offset: u64,
        installed: bool,
    ) {
        let base_retransmit = self.base_retransmit();
        let now = self.core.now;
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        progress.retransmit_after = base_retransmit;
        if installed {
            progress.match_index = progress.match_index.max(last_index);
            progress.next_index = progress.next_index.max(progress.match_index + 1);
            if progress
                .snapshot
                .as_ref()
                .is_some_and(|transfer| transfer.snapshot.last_index <= last_index)
            {
                progress.snapshot = None;
            }
            let in_flight = progress.next_index > progress.match_index + 1;
            progress.awaiting_since = in_flight.then_some(now);
            self.advance_commit();
            self.replicate_to(from, false);
            return;
        }
        let Some(transfer) = progress
            .snapshot
            .as_mut()
            .filter(|transfer| transfer.snapshot.last_index == last_index)
        else {
            return; // about a transfer we no longer run
        };
        if transfer.in_flight && next_offset == transfer.offset {
            // The answer to an earlier copy of the chunk now in flight.
            return;
        }
        transfer.offset = next_offset.min(transfer.snapshot.data.len() as u64);
        transfer.in_flight = false;
        transfer.sent_at = None;
        progress.awaiting_since = None;
        self.replicate_to(from, false);
    }

    pub(super) fn maybe_snapshot(&mut self) {
        let applied = self.core.kv.applied_index();
        if applied.saturating_sub(self.core.log.snapshot_index())
            < self.core.config.snapshot_threshold.max(1)
        {
            return;
        }
        let snapshot = self.core.kv.snapshot();
        self.core.log.compact_to(snapshot.clone());
        self.core.push(Action::Write(Write::Compact { snapshot }));
    }
}
