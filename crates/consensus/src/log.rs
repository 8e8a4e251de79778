//! The in-memory mirror of the replicated log: entries after the latest
//! snapshot, plus that snapshot's boundary. The durable copy lives with the
//! driver; every mutation here is paired with a `Write::Append`,
//! `Write::InstallSnapshot` or `Write::Compact` action issued by the caller.
use std::sync::Arc;

use wire::{AppendAnswer, Entry, Index, Message, Snapshot, Term};

/// A follower's answer to an append that left its log matching the leader's
/// up to `match_index`.
pub(crate) fn append_accepted(match_index: Index) -> Message {
    Message::AppendResponse {
        answer: AppendAnswer::Matched(match_index),
    }
}

/// A follower's refusal of an append, hinting where the leader should resume
/// (never below index 1).
pub(crate) fn append_rejected(conflict_index: Index) -> Message {
    Message::AppendResponse {
        answer: AppendAnswer::Conflict(conflict_index.max(1)),
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    /// Index and term of the last entry covered by the snapshot (0, 0: none).
    snapshot_index: Index,
    snapshot_term: Term,
    /// Entries `snapshot_index + 1 ..= last_index`, contiguous.
    entries: Vec<Entry>,
    /// The latest snapshot, kept to ship to followers behind the log start
    /// (shared: a transfer in progress keeps its snapshot while the log
    /// compacts further).
    snapshot: Option<Arc<Snapshot>>,
}

impl Log {
    /// Builds the log from restored state, dropping any entry the snapshot
    /// already covers and stopping at the first gap.
    pub(crate) fn restore(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> Log {
        let (snapshot_index, snapshot_term) = snapshot
            .as_ref()
            .map_or((0, 0), |snapshot| (snapshot.last_index, snapshot.last_term));
        let mut log = Log {
            snapshot_index,
            snapshot_term,
            entries: Vec::with_capacity(entries.len()),
            snapshot: snapshot.map(Arc::new),
        };
        for entry in entries {
            if entry.index <= log.snapshot_index {
                continue;
            }
            if entry.index != log.last_index() + 1 {
                break;
            }
            log.entries.push(entry);
        }
        log
    }

    pub(crate) fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    pub(crate) fn snapshot(&self) -> Option<&Arc<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The first index still held as an entry.
    pub(crate) fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    pub(crate) fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as Index
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot_term, |entry| entry.term)
    }

    /// The term at `index`, if known (the snapshot boundary counts).
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.get(index).map(|entry| entry.term)
    }

    pub(crate) fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Entries `from ..= to`, at most `max` of them (empty if `from` is
    /// compacted away or past the end).
    pub(crate) fn slice(&self, from: Index, to: Index, max: usize) -> Vec<Entry> {
        if from <= self.snapshot_index || from > to {
            return Vec::new();
        }
        let start = (from - self.snapshot_index - 1) as usize;
        let end = ((to.min(self.last_index()) - self.snapshot_index) as usize).min(start + max);
        self.entries
            .get(start..end)
            .map(<[Entry]>::to_vec)
            .unwrap_or_default()
    }

    /// True if `(index, term)` is at least as up to date as our last entry
    /// (Raft §5.4.1).
    pub(crate) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        debug_assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        self.entries.push(entry);
    }

    /// Removes every entry after `after`. The caller guarantees they are
    /// uncommitted.
    pub(crate) fn truncate_after(&mut self, after: Index) {
        if after < self.snapshot_index {
            self.entries.clear();
            return;
        }
        self.entries
            .truncate((after - self.snapshot_index) as usize);
    }

    /// The first index of the term that `index` belongs to, walking back no
    /// further than `floor`: the conflict hint that lets a leader skip a
    /// whole divergent term in one round trip.
    pub(crate) fn first_index_of_term_at(&self, index: Index, floor: Index) -> Index {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut first = index;
        while first > floor.max(self.first_index()) && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// Replaces everything up to `snapshot.last_index` with the snapshot.
    /// Entries after it survive only if the log agrees with the snapshot at
    /// its boundary (Raft §7); returns true if the suffix was discarded.
    pub(crate) fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let keeps_suffix = self.term_at(snapshot.last_index) == Some(snapshot.last_term)
            && snapshot.last_index <= self.last_index();
        if keeps_suffix {
            self.compact_to(snapshot);
            false
        } else {
            self.snapshot_index = snapshot.last_index;
            self.snapshot_term = snapshot.last_term;
            self.entries.clear();
            self.snapshot = Some(Arc::new(snapshot));
            true
        }
    }

    /// Drops entries up to `snapshot.last_index`, which must be in the log.
    pub(crate) fn compact_to(&mut self, snapshot: Snapshot) {
        let drop = snapshot.last_index.saturating_sub(self.snapshot_index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot_index = snapshot.last_index;
        self.snapshot_term = snapshot.last_term;
        self.snapshot = Some(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Payload;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Noop,
        }
    }

    fn log_with_terms(terms: &[Term]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(position, term)| entry(position as Index + 1, *term))
            .collect();
        Log::restore(None, entries)
    }

    #[test]
    fn restore_drops_covered_entries_and_stops_at_gaps() {
        let snapshot = Snapshot {
            last_index: 2,
            last_term: 1,
            data: vec![],
        };
        let log = Log::restore(
            Some(snapshot),
            vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(5, 2)],
        );
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
    }

    #[test]
    fn slice_respects_bounds_and_max() {
        let log = log_with_terms(&[1, 1, 2, 2, 3]);
        let indexes = |entries: Vec<Entry>| entries.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(indexes(log.slice(2, 5, 2)), vec![2, 3]);
        assert_eq!(indexes(log.slice(4, 9, 10)), vec![4, 5]);
        assert!(log.slice(6, 9, 10).is_empty());
        assert!(log.slice(0, 3, 10).is_empty());
    }

    #[test]
    fn conflict_hint_skips_whole_term_but_not_below_floor() {
        let log = log_with_terms(&[1, 2, 2, 2, 3]);
        assert_eq!(log.first_index_of_term_at(4, 0), 2);
        assert_eq!(log.first_index_of_term_at(4, 3), 3);
        assert_eq!(log.first_index_of_term_at(5, 0), 5);
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_with_terms(&[1, 2]);
        assert!(log.is_up_to_date(2, 2));
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(5, 1));
        assert!(!log.is_up_to_date(1, 2));
    }

    #[test]
    fn snapshot_keeps_matching_suffix_and_drops_conflicting_one() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        let discarded = log.install_snapshot(Snapshot {
            last_index: 2,
            last_term: 1,
            data: vec![],
        });
        assert!(!discarded);
        assert_eq!((log.first_index(), log.last_index()), (3, 4));

        let mut log = log_with_terms(&[1, 1, 2, 2]);
        let discarded = log.install_snapshot(Snapshot {
            last_index: 3,
            last_term: 5,
            data: vec![],
        });
        assert!(discarded);
        assert_eq!((log.first_index(), log.last_index()), (4, 3));
        assert_eq!(log.last_term(), 5);
    }

    #[test]
    fn truncate_keeps_prefix() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        log.truncate_after(2);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.last_term(), 1);
    }
}
