//! Durable storage of one simulated node: what survives a crash.
//!
//! The replica's persistence actions are queued as *pending* durable steps
//! in the order they were issued. An fsync covers every step queued before
//! it started (group commit) and completes after a seeded delay; only then do
//! the steps reach the durable image, and only then may the driver report
//! `Input::Persisted` and release sends that wait for them. A crash throws
//! the pending steps away — except, optionally, a prefix of them, as a real
//! page cache may have written some of them back before the power went out
//! (the replica was never told, which is always safe for it).
//!
//! The steps and the recovery are those of `splitnode`'s storage
//! (`crates/node/src/storage`), so the fuzzer covers its crash points: a
//! snapshot (installed or local) is two durable steps, the snapshot file and
//! then the log rewritten without what the snapshot covers (an installed
//! snapshot also drops a suffix that does not extend it). A crash between the
//! two leaves the new snapshot over the old log; [`Disk::crash`] then runs the
//! node's recovery on the image: covered entries stay in the "file" and are
//! skipped on restore, an entry at the snapshot's index with another term is
//! dropped with everything after it, and any other break of index or term
//! continuity is reported.
//!
//! Writes that break the storage contract (for example an append that leaves
//! a hole in the log) are reported as [`StorageError`]s, which the simulator
//! records as violations of the driver contract.
use std::collections::VecDeque;

use consensus::{IoSeq, Write};
use wire::{Index, Snapshot, Term};

mod image;

pub use image::DurableImage;
use image::Step;

/// A write that breaks the storage contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// Sequence numbers must increase.
    SeqNotIncreasing {
        /// The last sequence number issued.
        previous: IoSeq,
        /// The one that did not exceed it.
        got: IoSeq,
    },
    /// Appended entries must continue the log without holes.
    Gap {
        /// The index that would continue the log.
        expected: Index,
        /// The index the append started at.
        got: Index,
    },
    /// An append overwrote existing entries without truncating them first.
    Overwrite {
        /// The first overwritten index.
        index: Index,
    },
    /// The log was truncated below the snapshot, which holds applied state.
    TruncateBelowSnapshot {
        /// Where the truncation started.
        after: Index,
        /// The snapshot index.
        snapshot: Index,
    },
    /// A local compaction referred to entries the log does not hold.
    CompactBeyondLog {
        /// The compaction point.
        snapshot: Index,
        /// The last index the log holds.
        last: Index,
    },
    /// A term must never decrease on disk.
    TermDecreased {
        /// The durable term.
        from: Term,
        /// The lower term written.
        to: Term,
    },
    /// Recovery found a log that does not continue its snapshot or itself
    /// (the node refuses to start on it).
    Discontinuous {
        /// The entry that breaks continuity.
        index: Index,
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::SeqNotIncreasing { previous, got } => {
                write!(f, "io seq {} issued after {}", got.0, previous.0)
            }
            StorageError::Gap { expected, got } => {
                write!(
                    f,
                    "append leaves a hole: expected index {expected}, got {got}"
                )
            }
            StorageError::Overwrite { index } => {
                write!(f, "append overwrites index {index} without truncating")
            }
            StorageError::TruncateBelowSnapshot { after, snapshot } => {
                write!(
                    f,
                    "truncate after {after} cuts into the snapshot at {snapshot}"
                )
            }
            StorageError::CompactBeyondLog { snapshot, last } => {
                write!(f, "compaction to {snapshot} but the log ends at {last}")
            }
            StorageError::TermDecreased { from, to } => {
                write!(f, "persisted term went from {from} down to {to}")
            }
            StorageError::Discontinuous { index, reason } => {
                write!(f, "recovery: entry {index} {reason}")
            }
        }
    }
}

/// A node's disk: the durable image plus writes waiting for fsync.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    durable: DurableImage,
    pending: VecDeque<Step>,
    /// How many of the oldest pending writes the running fsync covers.
    fsync_covers: Option<usize>,
    /// Highest sequence number on disk.
    durable_seq: IoSeq,
    /// Highest sequence number issued by this incarnation (ordering check).
    issued_seq: Option<IoSeq>,
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// What survives a crash right now.
    pub fn durable(&self) -> &DurableImage {
        &self.durable
    }

    /// Highest sequence number known durable.
    pub fn durable_seq(&self) -> IoSeq {
        self.durable_seq
    }

    /// Whether writes wait for an fsync.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether an fsync is in progress.
    pub fn fsync_running(&self) -> bool {
        self.fsync_covers.is_some()
    }

    /// Queues a write as the node's durable steps. Sequence numbers must
    /// increase.
    pub fn enqueue(&mut self, write: Write) -> Result<(), StorageError> {
        if let Some(seq) = write.seq() {
            if let Some(previous) = self.issued_seq
                && seq <= previous
            {
                return Err(StorageError::SeqNotIncreasing { previous, got: seq });
            }
            self.issued_seq = Some(seq);
        }
        match write {
            Write::InstallSnapshot { snapshot, seq } => {
                self.enqueue_snapshot(snapshot, true, Some(seq));
            }
            Write::Compact { snapshot } => self.enqueue_snapshot(snapshot, false, None),
            write => self.pending.push_back(Step::Write(write)),
        }
        Ok(())
    }

    /// A snapshot is two durable steps, as on the node: its file, then the
    /// log rewritten without the entries it covers.
    fn enqueue_snapshot(&mut self, snapshot: Snapshot, install: bool, seq: Option<IoSeq>) {
        let through = snapshot.last_index;
        self.pending
            .push_back(Step::SnapshotFile { snapshot, install });
        self.pending.push_back(Step::LogRewrite {
            through,
            drop_suffix: false,
            seq,
        });
    }

    /// Applies the oldest pending step to the durable image. An install
    /// decides on its suffix when its snapshot file lands, from the log as
    /// it is then, as the node decides from its log when it installs.
    fn apply_next(&mut self) -> Result<(), StorageError> {
        let step = self.pending.pop_front().expect("a pending step");
        if let Some(seq) = step.seq() {
            self.durable_seq = self.durable_seq.max(seq);
        }
        if let Step::SnapshotFile {
            snapshot,
            install: true,
        } = &step
        {
            let extends = self.durable.term_at(snapshot.last_index) == Some(snapshot.last_term);
            if !extends && let Some(Step::LogRewrite { drop_suffix, .. }) = self.pending.front_mut()
            {
                *drop_suffix = true;
            }
        }
        self.durable.apply(step)
    }

    /// Starts an fsync covering everything queued so far, if there is
    /// something to write and no fsync is running. Returns whether it started.
    pub fn start_fsync(&mut self) -> bool {
        if self.fsync_covers.is_some() || self.pending.is_empty() {
            return false;
        }
        self.fsync_covers = Some(self.pending.len());
        true
    }

    /// The running fsync finished: its writes are durable. Returns the new
    /// durable sequence number if it advanced.
    pub fn finish_fsync(&mut self) -> Result<Option<IoSeq>, StorageError> {
        let covers = self.fsync_covers.take().unwrap_or(0);
        let before = self.durable_seq;
        for _ in 0..covers.min(self.pending.len()) {
            self.apply_next()?;
        }
        Ok((self.durable_seq > before).then_some(self.durable_seq))
    }

    /// The process died. The first `survivors` pending durable steps made it
    /// to disk anyway (written back before the crash); the rest are lost.
    /// Then recovery repairs the image as the restarted node would.
    pub fn crash(&mut self, survivors: usize) -> Result<(), StorageError> {
        self.fsync_covers = None;
        let mut result = Ok(());
        for _ in 0..survivors.min(self.pending.len()) {
            if let Err(error) = self.apply_next() {
                result = Err(error);
                break;
            }
        }
        self.pending.clear();
        // What the restarted node's recovery does to its files.
        if result.is_ok()
            && let Err(error) = self.durable.recover()
        {
            result = Err(error);
        }
        // A restarted replica numbers its writes afresh.
        self.issued_seq = None;
        self.durable_seq = IoSeq(0);
        result
    }

    /// How many durable steps wait for an fsync (a snapshot is two).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
