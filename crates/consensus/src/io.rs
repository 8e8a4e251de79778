//! Durable-write bookkeeping: hands out [`IoSeq`]s in order, remembers
//! which one the driver reported durable, and tracks the highest log index
//! known to be on disk (a leader counts only its *durable* log toward the
//! commit quorum).
use std::collections::VecDeque;

use wire::{Entry, Index};

use crate::action::{Action, Write};
use crate::input::IoSeq;
use crate::log::Log;

#[derive(Debug, Clone, Default)]
pub(crate) struct IoTracker {
    last_issued: u64,
    persisted: u64,
    /// Log writes not yet durable: (seq, last log index once it is).
    pending_log: VecDeque<(u64, Index)>,
    durable_index: Index,
}

impl IoTracker {
    /// Everything restored from disk is durable up to `durable_index`.
    pub(crate) fn new(durable_index: Index) -> IoTracker {
        IoTracker {
            durable_index,
            ..IoTracker::default()
        }
    }

    /// A sequence number for a metadata write.
    pub(crate) fn issue(&mut self) -> IoSeq {
        self.last_issued += 1;
        IoSeq(self.last_issued)
    }

    /// A sequence number for a log write that leaves the log ending at
    /// `last_index`. A truncation to `truncate_after` also lowers the
    /// durable index we may claim, since the removed entries are gone.
    pub(crate) fn issue_log(&mut self, truncate_after: Option<Index>, last_index: Index) -> IoSeq {
        if let Some(after) = truncate_after {
            self.durable_index = self.durable_index.min(after);
            for (_, pending_last) in &mut self.pending_log {
                *pending_last = (*pending_last).min(after);
            }
        }
        let seq = self.issue();
        self.pending_log.push_back((seq.0, last_index));
        seq
    }

    /// Appends `entries` to `log` (whose truncation to `truncate_after`, if
    /// any, is already done) and returns the write that makes both durable.
    pub(crate) fn append(
        &mut self,
        log: &mut Log,
        truncate_after: Option<Index>,
        entries: Vec<Entry>,
    ) -> Action {
        for entry in &entries {
            log.append(entry.clone());
        }
        let seq = self.issue_log(truncate_after, log.last_index());
        Action::Write(Write::Append {
            truncate_after,
            entries,
            seq,
        })
    }

    /// Records that the driver made everything up to `upto` durable.
    pub(crate) fn persisted(&mut self, upto: IoSeq) {
        self.persisted = self.persisted.max(upto.0.min(self.last_issued));
        while let Some(&(seq, last_index)) = self.pending_log.front() {
            if seq > self.persisted {
                break;
            }
            self.durable_index = last_index;
            self.pending_log.pop_front();
        }
    }

    /// The `after` for a reply that acknowledges state written so far:
    /// `None` if everything issued is already durable.
    pub(crate) fn after_all(&self) -> Option<IoSeq> {
        (self.last_issued > self.persisted).then_some(IoSeq(self.last_issued))
    }

    pub(crate) fn durable_index(&self) -> Index {
        self.durable_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_index_follows_persisted_log_writes_in_order() {
        let mut io = IoTracker::new(2);
        let meta = io.issue();
        let first = io.issue_log(None, 5);
        let second = io.issue_log(None, 8);
        assert_eq!(io.after_all(), Some(second));
        io.persisted(meta);
        assert_eq!(io.durable_index(), 2);
        io.persisted(first);
        assert_eq!(io.durable_index(), 5);
        io.persisted(second);
        assert_eq!(io.durable_index(), 8);
        assert_eq!(io.after_all(), None);
    }

    #[test]
    fn truncation_lowers_durable_and_pending_indexes() {
        let mut io = IoTracker::new(6);
        let first = io.issue_log(None, 9);
        let _second = io.issue_log(Some(4), 5);
        io.persisted(first);
        assert_eq!(io.durable_index(), 4);
    }

    #[test]
    fn persisted_beyond_issued_is_clamped() {
        let mut io = IoTracker::new(0);
        io.persisted(IoSeq(10));
        let seq = io.issue();
        assert_eq!(io.after_all(), Some(seq));
    }
}
