//! Unit tests of the disk model: the storage contract, fsync and crashes
//! (torn writes included), and the two durable steps of a snapshot with the
//! recovery that repairs a crash between them.
use super::*;
use consensus::Restored;
use wire::{Entry, NodeId, Payload};

fn entry(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Noop,
    }
}

fn append(truncate_after: Option<Index>, entries: Vec<Entry>, seq: u64) -> Write {
    Write::Append {
        truncate_after,
        entries,
        seq: IoSeq(seq),
    }
}

/// Entries `1..=last`, all of `term`.
fn entries_through(last: Index, term: Term) -> Vec<Entry> {
    (1..=last).map(|index| entry(term, index)).collect()
}

fn meta(term: Term, voted_for: Option<NodeId>, seq: u64) -> Write {
    Write::Meta {
        term,
        voted_for,
        seq: IoSeq(seq),
    }
}

fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        last_index,
        last_term,
        data: vec![1, 2, 3],
    }
}

fn install(last_index: Index, last_term: Term, seq: u64) -> Write {
    Write::InstallSnapshot {
        snapshot: snapshot(last_index, last_term),
        seq: IoSeq(seq),
    }
}

fn compact(last_index: Index, last_term: Term) -> Write {
    Write::Compact {
        snapshot: snapshot(last_index, last_term),
    }
}

/// A disk with `writes` queued in order (each must be accepted).
fn disk_with(writes: Vec<Write>) -> Disk {
    let mut disk = Disk::new();
    for write in writes {
        disk.enqueue(write).unwrap();
    }
    disk
}

/// Runs one whole fsync over what is queued.
fn sync(disk: &mut Disk) {
    assert!(disk.start_fsync(), "an fsync was already running");
    disk.finish_fsync().unwrap();
}

fn indexes(restored: &Restored) -> Vec<Index> {
    restored.entries.iter().map(|entry| entry.index).collect()
}

#[test]
fn nothing_is_durable_before_fsync_completes() {
    let mut disk = disk_with(vec![meta(3, Some(2), 1)]);
    assert!(disk.start_fsync());
    disk.enqueue(append(None, vec![entry(3, 1)], 2)).unwrap();
    assert_eq!(disk.durable().term, 0);
    assert!(!disk.start_fsync(), "one fsync at a time");
    assert_eq!(disk.finish_fsync().unwrap(), Some(IoSeq(1)));
    assert_eq!(disk.durable().term, 3);
    assert_eq!(
        disk.durable().last_index(),
        0,
        "the append came after the fsync started"
    );
    assert!(disk.start_fsync());
    assert_eq!(disk.finish_fsync().unwrap(), Some(IoSeq(2)));
    assert_eq!(disk.durable().last_index(), 1);
}

#[test]
fn crash_loses_unsynced_writes_except_survivors() {
    let mut disk = disk_with(vec![append(None, vec![entry(1, 1)], 1)]);
    sync(&mut disk);
    disk.enqueue(append(None, vec![entry(1, 2)], 2)).unwrap();
    disk.enqueue(append(None, vec![entry(1, 3)], 3)).unwrap();
    disk.start_fsync();
    disk.crash(1).unwrap();
    let restored = disk.durable().restore();
    assert_eq!(restored.last_index(), 2);
    assert!(!disk.has_pending() && !disk.fsync_running());
    // The restarted replica starts numbering again.
    disk.enqueue(append(None, vec![entry(2, 3)], 1)).unwrap();
}

#[test]
fn truncation_replaces_a_suffix() {
    let mut disk = disk_with(vec![
        append(None, entries_through(3, 1), 1),
        append(Some(1), vec![entry(2, 2)], 2),
    ]);
    sync(&mut disk);
    let terms: Vec<Term> = disk.durable().log.iter().map(|e| e.term).collect();
    assert_eq!(terms, vec![1, 2]);
}

#[test]
fn contract_breaches_are_reported() {
    let breaches = [
        (
            vec![append(None, vec![entry(1, 2)], 1)],
            StorageError::Gap {
                expected: 1,
                got: 2,
            },
        ),
        (
            vec![
                append(None, vec![entry(1, 1)], 1),
                append(None, vec![entry(2, 1)], 2),
            ],
            StorageError::Overwrite { index: 1 },
        ),
        (
            vec![meta(5, None, 1), meta(4, None, 2)],
            StorageError::TermDecreased { from: 5, to: 4 },
        ),
    ];
    for (writes, breach) in breaches {
        let mut disk = disk_with(writes);
        assert!(disk.start_fsync());
        assert_eq!(disk.finish_fsync(), Err(breach));
    }

    let mut disk = disk_with(vec![append(None, vec![], 5)]);
    assert!(matches!(
        disk.enqueue(append(None, vec![], 5)),
        Err(StorageError::SeqNotIncreasing { .. })
    ));
}

#[test]
fn compaction_drops_the_covered_prefix() {
    let mut disk = disk_with(vec![append(None, entries_through(5, 1), 1), compact(3, 1)]);
    sync(&mut disk);
    let restored = disk.durable().restore();
    assert_eq!(restored.snapshot.as_ref().map(|s| s.last_index), Some(3));
    assert_eq!(indexes(&restored), vec![4, 5]);
    assert_eq!(restored.last_index(), 5);
}

#[test]
fn installed_snapshot_keeps_only_a_matching_suffix() {
    let mut disk = disk_with(vec![
        append(None, entries_through(5, 1), 1),
        install(3, 1, 2),
    ]);
    sync(&mut disk);
    assert_eq!(disk.durable().last_index(), 5);

    disk.enqueue(install(4, 9, 3)).unwrap();
    sync(&mut disk);
    assert_eq!(disk.durable().last_index(), 4);
    assert!(disk.durable().log.is_empty());
    // Appends continue after the snapshot; entries it covers are skipped.
    disk.enqueue(append(None, vec![entry(9, 4), entry(9, 5)], 4))
        .unwrap();
    sync(&mut disk);
    assert_eq!(disk.durable().last_index(), 5);
}

#[test]
fn a_snapshot_is_two_durable_steps() {
    let disk = disk_with(vec![compact(0, 0)]);
    assert_eq!(disk.pending_len(), 2, "snapshot file, then log rewrite");
}

#[test]
fn install_interrupted_between_its_steps_is_repaired_on_crash() {
    // The node's crash point `snapshot-written`: the new snapshot is durable,
    // the log still holds the suffix the install was dropping.
    let mut disk = disk_with(vec![append(None, entries_through(6, 1), 1)]);
    sync(&mut disk);
    disk.enqueue(install(4, 2, 2)).unwrap();
    disk.crash(1).unwrap();
    let restored = disk.durable().restore();
    assert_eq!(restored.snapshot.as_ref().map(|s| s.last_index), Some(4));
    assert!(restored.entries.is_empty(), "{:?}", restored.entries);
    // The repair is on the image: a new append continues the snapshot.
    disk.enqueue(append(None, vec![entry(2, 5)], 1)).unwrap();
    sync(&mut disk);
    assert_eq!(disk.durable().restore().entries, vec![entry(2, 5)]);
}

#[test]
fn compaction_interrupted_between_its_steps_keeps_the_suffix() {
    let mut disk = disk_with(vec![append(None, entries_through(5, 1), 1), compact(3, 1)]);
    disk.crash(2).unwrap();
    // The covered records are still in the "file", skipped on restore.
    assert_eq!(disk.durable().log.len(), 5);
    assert_eq!(indexes(&disk.durable().restore()), vec![4, 5]);
}

#[test]
fn recovery_reports_a_log_that_breaks_term_continuity() {
    let mut disk = disk_with(vec![append(None, vec![entry(3, 1), entry(2, 2)], 1)]);
    assert!(matches!(
        disk.crash(1),
        Err(StorageError::Discontinuous { index: 2, .. })
    ));
}
