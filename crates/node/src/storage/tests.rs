//! Durability tests: refusal of empty or foreign directories, reopen,
//! suffix truncation, torn tails against mid-file corruption, meta
//! compaction, snapshots and the repair of an interrupted install.
use std::fs;
use std::path::{Path, PathBuf};

use consensus::Restored;
use wire::{Entry, Index, KvOp, Payload, Snapshot};

use super::files::preallocation_pays;
use super::*;

pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir(), tag)
    }

    /// Under the workspace's `target/`: on the disk the build is on, never
    /// a tmpfs `/tmp`, so the log preallocates there.
    fn on_disk(tag: &str) -> TempDir {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
        let dir = TempDir::under(&target, tag);
        fs::create_dir_all(&dir.0).unwrap();
        assert!(
            preallocation_pays(&dir.0),
            "{} is on tmpfs; these tests need a disk",
            dir.0.display()
        );
        dir
    }

    fn under(base: &Path, tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = base.join(format!(
            "splitnode-storage-{tag}-{}-{unique}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(term: Term, index: Index, key: &str) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command {
            client: 7,
            seq: index,
            op: KvOp::Put {
                key: key.into(),
                value: format!("v{index}"),
            },
        },
    }
}

/// `put(term, i, key)` for every index `1..=last`.
fn puts(term: Term, last: Index, key: &str) -> Vec<Entry> {
    (1..=last).map(|index| put(term, index, key)).collect()
}

fn open(dir: &TempDir) -> (Storage, Restored, RecoveryReport) {
    Storage::open(&dir.0, "n1 c1", true).expect("open")
}

/// Appends `entries` (after truncating to `truncate`, if given) and syncs.
fn append_synced(storage: &mut Storage, truncate: Option<Index>, entries: &[Entry]) {
    storage.append(truncate, entries).unwrap();
    storage.sync().unwrap();
}

/// A fresh directory `tag` whose log holds `entries`, still open.
fn logged(tag: &str, entries: &[Entry]) -> (TempDir, Storage) {
    logged_in(TempDir::new(tag), entries)
}

fn logged_in(dir: TempDir, entries: &[Entry]) -> (TempDir, Storage) {
    let (mut storage, _, _) = open(&dir);
    append_synced(&mut storage, None, entries);
    (dir, storage)
}

/// Puts `snapshot` in place as an install does before it rewrites the log
/// (the state a crash between the two steps leaves).
fn write_snapshot_file(dir: &TempDir, snapshot: &Snapshot) {
    let mut record = Vec::new();
    frame_record(&encode_snapshot(snapshot), &mut record);
    write_atomically(&dir.0, SNAPSHOT_FILE, &record).unwrap();
}

fn index_terms(restored: &Restored) -> Vec<(Index, Term)> {
    restored.entries.iter().map(|e| (e.index, e.term)).collect()
}

fn indexes(restored: &Restored) -> Vec<Index> {
    restored.entries.iter().map(|e| e.index).collect()
}

#[test]
fn empty_directory_is_refused_without_init() {
    let dir = TempDir::new("empty");
    match Storage::open(&dir.0, "n1 c1", false) {
        Err(StorageError::Empty(_)) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an empty directory must be refused"),
    }
    let (_, restored, report) = open(&dir);
    assert!(report.initialised);
    assert_eq!(restored, Restored::default());
    // Now initialised, it opens without the flag.
    let (_, _, report) = Storage::open(&dir.0, "n1 c1", false).unwrap();
    assert!(!report.initialised);
}

#[test]
fn another_nodes_directory_is_refused() {
    let dir = TempDir::new("identity");
    drop(open(&dir));
    assert!(matches!(
        Storage::open(&dir.0, "n2 c1", true),
        Err(StorageError::WrongIdentity { .. })
    ));
}

#[test]
fn entries_and_meta_survive_reopen() {
    let dir = TempDir::new("reopen");
    let (mut storage, _, _) = open(&dir);
    storage.persist_meta(3, Some(42)).unwrap();
    storage
        .append(
            None,
            &[
                put(3, 1, "a"),
                put(3, 2, "b"),
                Entry {
                    term: 3,
                    index: 3,
                    payload: Payload::Noop,
                },
            ],
        )
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (storage, restored, report) = open(&dir);
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(restored.term, 3);
    assert_eq!(restored.voted_for, Some(42));
    assert_eq!(restored.entries.len(), 3);
    assert_eq!(restored.entries[1], put(3, 2, "b"));
    assert_eq!(storage.last_index(), 3);
}

#[test]
fn suffix_truncation_rewrites_the_tail() {
    let first = puts(1, 5, "k");
    let (dir, mut storage) = logged("truncate", &first);
    append_synced(&mut storage, Some(2), &[put(2, 3, "x"), put(2, 4, "y")]);
    // Truncation to a point beyond the end is a no-op.
    storage.append(Some(10), &[]).unwrap();
    drop(storage);
    let (mut storage, restored, _) = open(&dir);
    let terms: Vec<(Index, Term)> = index_terms(&restored);
    assert_eq!(terms, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
    // Truncate everything.
    append_synced(&mut storage, Some(0), &[put(5, 1, "z")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.entries, vec![put(5, 1, "z")]);
}

#[test]
fn torn_log_tail_is_truncated_at_every_cut_point() {
    let (dir, mut storage) = logged("torn", &[put(1, 1, "a"), put(1, 2, "b")]);
    let good_len = storage.log_bytes();
    append_synced(&mut storage, None, &[put(1, 3, "c")]);
    let full_len = storage.log_bytes();
    drop(storage);
    let log_path = dir.0.join(LOG_FILE);
    let full = fs::read(&log_path).unwrap();
    for cut in good_len..full_len {
        let tail = &full[good_len as usize..cut as usize];
        fs::write(&log_path, &full[..cut as usize]).unwrap();
        let (storage, restored, report) = open(&dir);
        assert_eq!(restored.entries.len(), 2, "cut at {cut}");
        assert_eq!(storage.log_bytes(), good_len);
        // A torn record's written part may be only the zero high bytes of
        // its length: that reads as free space, not as a tear.
        let torn = tail
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last + 1);
        assert_eq!(report.torn_log_bytes, torn as u64, "cut at {cut}");
        let file_len = fs::metadata(&log_path).unwrap().len();
        assert_eq!(
            file_len,
            if torn > 0 { good_len } else { cut },
            "cut at {cut}"
        );
    }
}

#[test]
fn appends_fill_preallocated_space_that_reopening_keeps() {
    let (dir, mut storage) = logged_in(TempDir::on_disk("prealloc"), &[put(1, 1, "a")]);
    let log_path = dir.0.join(LOG_FILE);
    let allocated = fs::metadata(&log_path).unwrap().len();
    assert_eq!(allocated, LOG_CHUNK);
    append_synced(&mut storage, None, &[put(1, 2, "b")]);
    assert_eq!(fs::metadata(&log_path).unwrap().len(), allocated);
    drop(storage);

    let (mut storage, restored, report) = open(&dir);
    assert_eq!(indexes(&restored), vec![1, 2]);
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(fs::metadata(&log_path).unwrap().len(), allocated);
    // The next append goes after the last record, not after the zeros.
    append_synced(&mut storage, None, &[put(1, 3, "c")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(indexes(&restored), vec![1, 2, 3]);
}

#[test]
fn a_log_on_tmpfs_is_not_preallocated() {
    let shm = Path::new("/dev/shm");
    assert!(!preallocation_pays(shm), "/dev/shm is not a tmpfs here");
    let (dir, storage) = logged_in(TempDir::under(shm, "tmpfs"), &[put(1, 1, "a")]);
    let file_len = fs::metadata(dir.0.join(LOG_FILE)).unwrap().len();
    assert_eq!(file_len, storage.log_bytes());
}

#[test]
fn a_log_grows_chunk_by_chunk() {
    let (dir, mut storage) = logged_in(TempDir::on_disk("chunks"), &[put(1, 1, "a")]);
    let big = "x".repeat(LOG_CHUNK as usize / 2);
    for index in 2..=4 {
        append_synced(&mut storage, None, &[put(1, index, &big)]);
    }
    let log_path = dir.0.join(LOG_FILE);
    let file_len = fs::metadata(&log_path).unwrap().len();
    assert_eq!(file_len % LOG_CHUNK, 0);
    assert!(file_len >= storage.log_bytes() && file_len - storage.log_bytes() < LOG_CHUNK);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(indexes(&restored), vec![1, 2, 3, 4]);
}

#[test]
fn a_torn_record_inside_preallocated_space_is_dropped() {
    let (dir, mut storage) = logged_in(TempDir::on_disk("torn-prealloc"), &[put(1, 1, "a")]);
    let good_len = storage.log_bytes();
    append_synced(&mut storage, None, &[put(1, 2, "b")]);
    let full_len = storage.log_bytes();
    drop(storage);
    let log_path = dir.0.join(LOG_FILE);
    let mut bytes = fs::read(&log_path).unwrap();
    let allocated = bytes.len();
    // The second record's last bytes never reached the disk; the byte
    // before them did, garbled.
    let torn_end = full_len as usize - 3;
    bytes[torn_end..full_len as usize].fill(0);
    bytes[torn_end - 1] = 0xff;
    fs::write(&log_path, &bytes).unwrap();
    let (mut storage, restored, report) = open(&dir);
    assert_eq!(indexes(&restored), vec![1]);
    assert_eq!(report.torn_log_bytes, torn_end as u64 - good_len);
    assert!(fs::metadata(&log_path).unwrap().len() < allocated as u64);
    append_synced(&mut storage, None, &[put(1, 2, "again")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.entries[1], put(1, 2, "again"));
}

#[test]
fn corrupt_tail_byte_is_detected_by_the_checksum() {
    let (dir, storage) = logged("corrupt", &[put(1, 1, "a"), put(1, 2, "b")]);
    let last = storage.log_bytes() as usize - 1;
    drop(storage);
    let log_path = dir.0.join(LOG_FILE);
    let mut bytes = fs::read(&log_path).unwrap();
    bytes[last] ^= 0x55;
    fs::write(&log_path, &bytes).unwrap();
    let (mut storage, restored, report) = open(&dir);
    assert_eq!(restored.entries, vec![put(1, 1, "a")]);
    assert!(report.torn_log_bytes > 0);
    // Appending after the repair continues the log cleanly.
    append_synced(&mut storage, None, &[put(1, 2, "again")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.entries.len(), 2);
    assert_eq!(restored.entries[1], put(1, 2, "again"));
}

#[test]
fn torn_meta_tail_keeps_the_last_complete_record() {
    let dir = TempDir::new("meta");
    let (mut storage, _, _) = open(&dir);
    storage.persist_meta(1, Some(5)).unwrap();
    storage.persist_meta(2, None).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let meta_path = dir.0.join(META_FILE);
    let mut bytes = fs::read(&meta_path).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 17, 1, 2]);
    fs::write(&meta_path, &bytes).unwrap();
    let (_, restored, report) = open(&dir);
    assert_eq!((restored.term, restored.voted_for), (2, None));
    assert_eq!(report.torn_meta_bytes, 6);
}

#[test]
fn meta_file_is_compacted() {
    let dir = TempDir::new("metacompact");
    let (mut storage, _, _) = open(&dir);
    for term in 1..=(META_COMPACT_AFTER as u64 + 10) {
        storage.persist_meta(term, Some(term)).unwrap();
    }
    storage.sync().unwrap();
    drop(storage);
    let size = fs::metadata(dir.0.join(META_FILE)).unwrap().len();
    assert!(size < 100 * 25, "meta file is {size} bytes");
    let (_, restored, _) = open(&dir);
    let last = META_COMPACT_AFTER as u64 + 10;
    assert_eq!((restored.term, restored.voted_for), (last, Some(last)));
}

#[test]
fn snapshot_drops_covered_entries() {
    let entries = puts(1, 10, "k");
    let (dir, mut storage) = logged("snapshot", &entries);
    let snapshot = Snapshot {
        last_index: 7,
        last_term: 1,
        data: b"state".to_vec(),
    };
    storage.compact(&snapshot).unwrap();
    append_synced(&mut storage, None, &[put(2, 11, "n")]);
    drop(storage);
    let (mut storage, restored, _) = open(&dir);
    assert_eq!(restored.snapshot, Some(snapshot));
    let indexes: Vec<Index> = indexes(&restored);
    assert_eq!(indexes, vec![8, 9, 10, 11]);
    // Truncation still finds the right offsets after the rewrite.
    append_synced(&mut storage, Some(9), &[put(3, 10, "t")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    let tail: Vec<(Index, Term)> = index_terms(&restored);
    assert_eq!(tail, vec![(8, 1), (9, 1), (10, 3)]);
}

#[test]
fn installed_snapshot_beyond_the_log_empties_it() {
    let (dir, mut storage) = logged("install", &[put(1, 1, "a"), put(1, 2, "b")]);
    let snapshot = Snapshot {
        last_index: 50,
        last_term: 4,
        data: vec![1, 2, 3],
    };
    storage.install_snapshot(&snapshot).unwrap();
    assert_eq!(storage.last_index(), 50);
    append_synced(&mut storage, None, &[put(4, 51, "c")]);
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.last_index(), 51);
    assert_eq!(restored.entries, vec![put(4, 51, "c")]);
}

#[test]
fn stale_records_before_a_snapshot_are_skipped() {
    // Simulates a crash after the snapshot rename but before the log
    // rewrite: the log still starts at index 1.
    let entries = puts(1, 4, "k");
    let (dir, storage) = logged("stale", &entries);
    drop(storage);
    write_snapshot_file(
        &dir,
        &Snapshot {
            last_index: 2,
            last_term: 1,
            data: vec![],
        },
    );
    let (_, restored, report) = open(&dir);
    assert_eq!(indexes(&restored), vec![3, 4]);
    assert_eq!(report.torn_log_bytes, 0);
}

fn snapshot_at(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        last_index,
        last_term,
        data: format!("state@{last_index}").into_bytes(),
    }
}

fn expect_corrupt(dir: &TempDir) -> String {
    match Storage::open(&dir.0, "n1 c1", false) {
        Err(error @ StorageError::Corrupt { .. }) => error.to_string(),
        Err(other) => panic!("expected corruption, got {other}"),
        Ok((_, restored, _)) => panic!("corruption accepted: {restored:?}"),
    }
}

#[test]
fn flipped_bit_mid_log_refuses_to_start() {
    let entries = puts(1, 5, "k");
    let (dir, storage) = logged("bitflip", &entries);
    let third = storage.log_records[2].offset;
    drop(storage);
    let log_path = dir.0.join(LOG_FILE);
    let clean = fs::read(&log_path).unwrap();
    // A flip in the payload (checksum mismatch) and one in the length field
    // (garbage framing) are both corruption when valid records follow.
    for flip_at in [third as usize + 20, third as usize + 1] {
        let mut bytes = clean.clone();
        bytes[flip_at] ^= 0x04;
        fs::write(&log_path, &bytes).unwrap();
        let message = expect_corrupt(&dir);
        assert!(message.contains(&format!("byte {third}")), "{message}");
        assert!(message.contains("log index 3"), "{message}");
        assert!(message.contains("--join-empty"), "{message}");
        // Nothing was cut: the operator still has every byte.
        assert_eq!(fs::read(&log_path).unwrap(), bytes);
    }
    fs::write(&log_path, &clean).unwrap();
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.entries, entries);
}

#[test]
fn flipped_bit_in_an_earlier_meta_record_refuses_to_start() {
    let dir = TempDir::new("metaflip");
    let (mut storage, _, _) = open(&dir);
    storage.persist_meta(1, Some(5)).unwrap();
    storage.persist_meta(2, Some(6)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let meta_path = dir.0.join(META_FILE);
    let mut bytes = fs::read(&meta_path).unwrap();
    // Second record (term 1): header 8 + payload 17 per record.
    bytes[25 + 8 + 3] ^= 0x10;
    fs::write(&meta_path, &bytes).unwrap();
    let message = expect_corrupt(&dir);
    assert!(message.contains("byte 25"), "{message}");
}

#[test]
fn zero_filled_tail_is_free_space_not_a_tear() {
    let (dir, storage) = logged("zeros", &[put(1, 1, "a")]);
    let good = storage.log_bytes();
    drop(storage);
    let log_path = dir.0.join(LOG_FILE);
    let mut bytes = fs::read(&log_path).unwrap();
    bytes.truncate(good as usize);
    bytes.extend_from_slice(&[0; 4096]);
    fs::write(&log_path, &bytes).unwrap();
    let (storage, restored, report) = open(&dir);
    assert_eq!(restored.entries, vec![put(1, 1, "a")]);
    assert_eq!(report.torn_log_bytes, 0);
    assert_eq!(storage.log_bytes(), good);
    assert_eq!(fs::metadata(&log_path).unwrap().len(), good + 4096);
}

#[test]
fn install_over_a_conflicting_suffix_drops_it() {
    let stale = puts(1, 6, "old");
    let (dir, mut storage) = logged("install-conflict", &stale);
    // The leader's index 4 has term 2: our 4..=6 do not extend it.
    storage.install_snapshot(&snapshot_at(4, 2)).unwrap();
    assert_eq!(storage.last_index(), 4);
    drop(storage);
    let (_, restored, report) = open(&dir);
    assert_eq!(restored.snapshot, Some(snapshot_at(4, 2)));
    assert!(restored.entries.is_empty());
    assert_eq!(report, RecoveryReport::default());
}

#[test]
fn install_over_a_matching_suffix_keeps_it() {
    let entries = puts(2, 6, "k");
    let (dir, mut storage) = logged("install-match", &entries);
    storage.install_snapshot(&snapshot_at(4, 2)).unwrap();
    drop(storage);
    let (_, restored, _) = open(&dir);
    assert_eq!(restored.entries, entries[4..].to_vec());
}

#[test]
fn install_interrupted_before_the_log_rewrite_is_repaired() {
    // The crash point between the two durable steps: the new snapshot is in
    // place, the log still holds the suffix the install was dropping.
    let stale = puts(1, 6, "old");
    let (dir, storage) = logged("install-crash", &stale);
    drop(storage);
    write_snapshot_file(&dir, &snapshot_at(4, 2));
    let (mut storage, restored, report) = open(&dir);
    assert!(restored.entries.is_empty(), "{:?}", restored.entries);
    assert_eq!(report.conflicting_entries, 2);
    // The repair is durable and appending continues the snapshot.
    append_synced(&mut storage, None, &[put(2, 5, "new")]);
    drop(storage);
    let (_, restored, report) = open(&dir);
    assert_eq!(restored.entries, vec![put(2, 5, "new")]);
    assert_eq!(report.conflicting_entries, 0);
}

#[test]
fn a_log_that_breaks_continuity_is_refused() {
    // Terms going down.
    let (dir, storage) = logged("terms", &[put(3, 1, "a"), put(2, 2, "b")]);
    drop(storage);
    let message = expect_corrupt(&dir);
    assert!(
        message.contains("term 2, lower than the term 3"),
        "{message}"
    );

    // A suffix whose first entry is older than the snapshot's term.
    let (dir, mut storage) = logged("snapterm", &[put(1, 1, "a")]);
    storage.compact(&snapshot_at(1, 1)).unwrap();
    append_synced(&mut storage, None, &[put(1, 2, "b")]);
    drop(storage);
    write_snapshot_file(&dir, &snapshot_at(1, 5));
    let message = expect_corrupt(&dir);
    assert!(message.contains("lower than the term 5"), "{message}");

    // A gap.
    let dir = TempDir::new("gap");
    let (mut storage, _, _) = open(&dir);
    storage.append(None, &[put(1, 1, "a")]).unwrap();
    append_synced(&mut storage, None, &[put(1, 3, "c")]);
    drop(storage);
    let message = expect_corrupt(&dir);
    assert!(
        message.contains("index 3 where index 2 must follow"),
        "{message}"
    );
}

#[test]
fn stale_temporary_files_are_removed() {
    let dir = TempDir::new("tmp");
    drop(open(&dir));
    fs::write(dir.0.join("log.tmp"), b"half a rewrite").unwrap();
    let (_, _, report) = open(&dir);
    assert_eq!(report.stale_temp_files, 1);
    assert!(!dir.0.join("log.tmp").exists());
}
