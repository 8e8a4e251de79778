//! The durable image of one simulated node's disk (what its files hold) and
//! the durable steps that change it, with the node's recovery: the same steps
//! and repairs as `crates/node/src/storage`.
use std::collections::VecDeque;

use consensus::{IoSeq, Restored, Write};
use wire::{Entry, Index, NodeId, Snapshot, Term};

use super::StorageError;

/// What is on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableImage {
    /// The durable term.
    pub term: Term,
    /// The durable vote.
    pub voted_for: Option<NodeId>,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log file's entries in file order: contiguous, but after a crash
    /// between a snapshot's two durable steps it may still start with
    /// entries the snapshot covers (skipped on restore).
    pub log: VecDeque<Entry>,
}

/// One durable step of the node's storage, as queued for fsync.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// A term/vote record, an append or a truncation: one step each.
    Write(Write),
    /// The snapshot file replaced (the first step of a snapshot).
    SnapshotFile {
        snapshot: Snapshot,
        /// For an install: keep the log suffix only if it extends the
        /// snapshot; a local compaction always keeps it.
        install: bool,
    },
    /// The log rewritten without the entries the snapshot covers (the
    /// second step); completes `seq` for an install.
    LogRewrite {
        /// The snapshot's last index: entries up to it go.
        through: Index,
        /// Drop the whole log, not only the covered prefix.
        drop_suffix: bool,
        seq: Option<IoSeq>,
    },
}

impl Step {
    pub(super) fn seq(&self) -> Option<IoSeq> {
        match self {
            Step::Write(write) => write.seq(),
            Step::SnapshotFile { .. } => None,
            Step::LogRewrite { seq, .. } => *seq,
        }
    }
}

impl DurableImage {
    /// Index the snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    /// Index of the last durable entry (or of the snapshot).
    pub fn last_index(&self) -> Index {
        self.log
            .back()
            .map_or(0, |e| e.index)
            .max(self.snapshot_index())
    }

    /// The term at `index`: the snapshot's at its own index, else the log's
    /// (the node's storage answers the same way).
    pub(super) fn term_at(&self, index: Index) -> Option<Term> {
        if let Some(snapshot) = &self.snapshot
            && snapshot.last_index == index
        {
            return Some(snapshot.last_term);
        }
        let first = self.log.front()?.index;
        if index < first {
            return None;
        }
        self.log.get((index - first) as usize).map(|e| e.term)
    }

    pub(super) fn apply(&mut self, step: Step) -> Result<(), StorageError> {
        match step {
            Step::Write(write) => self.apply_write(write),
            Step::SnapshotFile { snapshot, install } => {
                if !install {
                    if snapshot.last_index <= self.snapshot_index() {
                        return Ok(()); // older than what we have: nothing to gain
                    }
                    if snapshot.last_index > self.last_index() {
                        return Err(StorageError::CompactBeyondLog {
                            snapshot: snapshot.last_index,
                            last: self.last_index(),
                        });
                    }
                }
                self.snapshot = Some(snapshot);
                Ok(())
            }
            Step::LogRewrite {
                through,
                drop_suffix,
                ..
            } => {
                if drop_suffix {
                    self.log.clear();
                } else {
                    // After a compaction to an older point (a no-op for the
                    // snapshot file) this drops nothing restore would use.
                    while self.log.front().is_some_and(|e| e.index <= through) {
                        self.log.pop_front();
                    }
                }
                Ok(())
            }
        }
    }

    fn apply_write(&mut self, write: Write) -> Result<(), StorageError> {
        match write {
            Write::Meta {
                term, voted_for, ..
            } => {
                if term < self.term {
                    return Err(StorageError::TermDecreased {
                        from: self.term,
                        to: term,
                    });
                }
                self.term = term;
                self.voted_for = voted_for;
            }
            Write::Append {
                truncate_after,
                entries,
                ..
            } => {
                if let Some(after) = truncate_after {
                    if after < self.snapshot_index() {
                        return Err(StorageError::TruncateBelowSnapshot {
                            after,
                            snapshot: self.snapshot_index(),
                        });
                    }
                    while self.log.back().is_some_and(|e| e.index > after) {
                        self.log.pop_back();
                    }
                }
                for entry in entries {
                    if entry.index <= self.snapshot_index() {
                        continue; // already covered by the snapshot
                    }
                    let expected = self.last_index() + 1;
                    if entry.index < expected {
                        return Err(StorageError::Overwrite { index: entry.index });
                    }
                    if entry.index > expected {
                        return Err(StorageError::Gap {
                            expected,
                            got: entry.index,
                        });
                    }
                    self.log.push_back(entry);
                }
            }
            Write::InstallSnapshot { .. } | Write::Compact { .. } => {
                unreachable!("snapshots are split into durable steps on enqueue")
            }
        }
        Ok(())
    }

    /// The node's recovery: an entry at the snapshot's index with another
    /// term (an install that stopped between its two durable steps) is
    /// dropped with everything after it; the rest must continue the snapshot
    /// with terms that never decrease. Returns how many entries went.
    pub(super) fn recover(&mut self) -> Result<usize, StorageError> {
        let (snapshot_index, snapshot_term) = self
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.last_index, s.last_term));
        if let Some(at) = self
            .log
            .iter()
            .position(|e| e.index == snapshot_index && e.term != snapshot_term)
        {
            let dropped = self.log.len() - at - 1;
            self.log.truncate(at);
            return Ok(dropped);
        }
        let mut previous = (snapshot_index, snapshot_term);
        for entry in self.log.iter().filter(|e| e.index > snapshot_index) {
            if entry.index != previous.0 + 1 {
                return Err(StorageError::Discontinuous {
                    index: entry.index,
                    reason: format!("does not follow index {}", previous.0),
                });
            }
            if entry.term < previous.1 {
                return Err(StorageError::Discontinuous {
                    index: entry.index,
                    reason: format!(
                        "has term {} below the term {} before it",
                        entry.term, previous.1
                    ),
                });
            }
            previous = (entry.index, entry.term);
        }
        Ok(0)
    }

    /// What a restarting replica gets back (entries the snapshot covers are
    /// skipped, as the node's recovery skips their records).
    pub fn restore(&self) -> Restored {
        let snapshot_index = self.snapshot_index();
        Restored {
            term: self.term,
            voted_for: self.voted_for,
            snapshot: self.snapshot.clone(),
            entries: self
                .log
                .iter()
                .filter(|e| e.index > snapshot_index)
                .cloned()
                .collect(),
        }
    }
}
