//! Durable state in the data directory.
//!
//! ```text
//! node.id     "name cluster\n" — written last at initialisation; its absence
//!             means "empty data directory" (see config::StartMode)
//! meta        append-only records (term, voted_for); the last valid one wins
//! log         append-only records, one per entry (term, index, payload)
//! snapshot    one record (last_index, last_term, data), replaced atomically
//! ```
//!
//! Every record is `length (u32 BE) | crc32 of payload (u32 BE) | payload`.
//! Writes only reach the OS page cache until [`Storage::sync`], which is the
//! single fsync of a group commit; the driver feeds `Input::Persisted` only
//! after it returns. On open, a torn or corrupt tail (a crash in the middle of
//! an append) is truncated and reported; everything before it was fsynced as
//! a whole record and is kept.
//!
//! Suffix truncation (`AppendLog.truncate_after`) uses an in-memory index of
//! record offsets: the file is cut at the first removed record. Snapshots
//! are written to a temporary file, fsynced, renamed over the old one and the
//! directory fsynced; then the log is rewritten (same dance) without the
//! entries the snapshot covers.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use consensus::Restored;
use wire::{Entry, Index, KvOp, NodeId, Payload, Snapshot, Term};

const RECORD_HEADER: usize = 8;
/// Meta records beyond this make the next write compact the file.
const META_COMPACT_AFTER: usize = 1024;
/// No single record may claim more than this (1 GiB): a corrupt length
/// must not make recovery allocate without bound.
const MAX_RECORD: usize = 1 << 30;

const IDENTITY_FILE: &str = "node.id";
const META_FILE: &str = "meta";
const LOG_FILE: &str = "log";
const SNAPSHOT_FILE: &str = "snapshot";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "data directory {0} holds no state; pass --bootstrap for the first start of a new \
         cluster, or --join-empty if this node lost its disk and must rejoin an existing one"
    )]
    Empty(PathBuf),
    #[error("data directory {dir} belongs to node `{found}`, not `{expected}`")]
    WrongIdentity {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}: corrupt record: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What recovery found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The data directory was empty and has been initialised.
    pub initialised: bool,
    pub torn_log_bytes: u64,
    pub torn_meta_bytes: u64,
    /// Log records dropped because they did not continue the log contiguously.
    pub discontiguous_entries: usize,
}

/// The node's durable storage. Not thread-safe; owned by the driver.
pub struct Storage {
    dir: PathBuf,
    log: File,
    /// `(index, offset)` of every record in the log file, in file order.
    log_records: Vec<(Index, u64)>,
    log_len: u64,
    log_dirty: bool,
    meta: File,
    meta_records: usize,
    meta_dirty: bool,
    snapshot_index: Index,
}

/// Appends one framed record to `out`.
fn frame_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("record larger than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits `bytes` into valid records. Returns `(offset, payload)` pairs and
/// the length of the valid prefix; anything after it is a torn tail.
fn scan_records(bytes: &[u8]) -> (Vec<(u64, &[u8])>, usize) {
    let mut records = Vec::new();
    let mut offset = 0;
    while bytes.len() - offset >= RECORD_HEADER {
        let head = &bytes[offset..offset + RECORD_HEADER];
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD || bytes.len() - offset - RECORD_HEADER < len {
            break;
        }
        let payload = &bytes[offset + RECORD_HEADER..offset + RECORD_HEADER + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push((offset as u64, payload));
        offset += RECORD_HEADER + len;
    }
    (records, offset)
}

// --- payload encodings ------------------------------------------------------

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_u64(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        let mut array = [0; 8];
        array.copy_from_slice(self.take(8)?);
        Some(u64::from_be_bytes(array))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u64()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

fn encode_meta(term: Term, voted_for: Option<NodeId>) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    put_u64(&mut out, term);
    out.push(u8::from(voted_for.is_some()));
    put_u64(&mut out, voted_for.unwrap_or(0));
    out
}

fn decode_meta(payload: &[u8]) -> Option<(Term, Option<NodeId>)> {
    let mut cursor = Cursor { rest: payload };
    let term = cursor.u64()?;
    let has_vote = cursor.u8()?;
    let vote = cursor.u64()?;
    match has_vote {
        0 => Some((term, None)),
        1 => Some((term, Some(vote))),
        _ => None,
    }
}

pub fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    put_u64(out, entry.term);
    put_u64(out, entry.index);
    match &entry.payload {
        Payload::Noop => out.push(0),
        Payload::Command { client, seq, op } => {
            out.push(1);
            put_u64(out, *client);
            put_u64(out, *seq);
            match op {
                KvOp::Put { key, value } => {
                    out.push(1);
                    put_str(out, key);
                    put_str(out, value);
                }
                KvOp::Delete { key } => {
                    out.push(2);
                    put_str(out, key);
                }
                KvOp::Cas {
                    key,
                    expected,
                    value,
                } => {
                    out.push(3);
                    put_str(out, key);
                    match expected {
                        None => out.push(0),
                        Some(expected) => {
                            out.push(1);
                            put_str(out, expected);
                        }
                    }
                    put_str(out, value);
                }
            }
        }
    }
}

pub fn decode_entry(payload: &[u8]) -> Option<Entry> {
    let mut cursor = Cursor { rest: payload };
    let term = cursor.u64()?;
    let index = cursor.u64()?;
    let payload = match cursor.u8()? {
        0 => Payload::Noop,
        1 => {
            let client = cursor.u64()?;
            let seq = cursor.u64()?;
            let op = match cursor.u8()? {
                1 => KvOp::Put {
                    key: cursor.string()?,
                    value: cursor.string()?,
                },
                2 => KvOp::Delete {
                    key: cursor.string()?,
                },
                3 => {
                    let key = cursor.string()?;
                    let expected = match cursor.u8()? {
                        0 => None,
                        1 => Some(cursor.string()?),
                        _ => return None,
                    };
                    KvOp::Cas {
                        key,
                        expected,
                        value: cursor.string()?,
                    }
                }
                _ => return None,
            };
            Payload::Command { client, seq, op }
        }
        _ => return None,
    };
    if !cursor.rest.is_empty() {
        return None;
    }
    Some(Entry {
        term,
        index,
        payload,
    })
}

fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + snapshot.data.len());
    put_u64(&mut out, snapshot.last_index);
    put_u64(&mut out, snapshot.last_term);
    out.extend_from_slice(&snapshot.data);
    out
}

fn decode_snapshot(payload: &[u8]) -> Option<Snapshot> {
    let mut cursor = Cursor { rest: payload };
    Some(Snapshot {
        last_index: cursor.u64()?,
        last_term: cursor.u64()?,
        data: cursor.rest.to_vec(),
    })
}

// --- file helpers -------------------------------------------------------------

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))
}

/// Writes `bytes` to `dir/name` atomically: temporary file, fsync, rename,
/// directory fsync. A crash leaves either the old or the new file.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(io_error(&target))?;
    sync_dir(dir)
}

fn read_all(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match File::open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(path))?;
            Ok(Some(bytes))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(path)(error)),
    }
}

fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error(path))
}

/// Cuts `path` to `len` bytes and fsyncs it (torn-tail repair).
fn truncate_file(path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    file.set_len(len).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// Whether `dir` holds this node's initialised state.
pub fn is_initialised(dir: &Path) -> bool {
    dir.join(IDENTITY_FILE).exists()
}

impl Storage {
    /// Opens (and if `allow_init`, initialises) the data directory and
    /// recovers the replica's state from it.
    pub fn open(
        dir: &Path,
        identity: &str,
        allow_init: bool,
    ) -> Result<(Storage, Restored, RecoveryReport), StorageError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut report = RecoveryReport::default();
        let identity_path = dir.join(IDENTITY_FILE);
        match read_all(&identity_path)? {
            Some(bytes) => {
                let found = String::from_utf8_lossy(&bytes).trim().to_owned();
                if found != identity {
                    return Err(StorageError::WrongIdentity {
                        dir: dir.to_owned(),
                        found,
                        expected: identity.to_owned(),
                    });
                }
            }
            None if allow_init => {
                // Start from nothing: stale files of an earlier, unfinished
                // initialisation are discarded.
                for name in [META_FILE, LOG_FILE, SNAPSHOT_FILE] {
                    let path = dir.join(name);
                    if path.exists() {
                        fs::remove_file(&path).map_err(io_error(&path))?;
                    }
                }
                let mut meta = Vec::new();
                frame_record(&encode_meta(0, None), &mut meta);
                write_atomically(dir, META_FILE, &meta)?;
                write_atomically(dir, LOG_FILE, &[])?;
                write_atomically(dir, IDENTITY_FILE, format!("{identity}\n").as_bytes())?;
                report.initialised = true;
            }
            None => return Err(StorageError::Empty(dir.to_owned())),
        }

        // Meta: the last valid record wins.
        let meta_path = dir.join(META_FILE);
        let meta_bytes = read_all(&meta_path)?.ok_or_else(|| StorageError::Corrupt {
            path: meta_path.clone(),
            reason: "missing (the directory was initialised but lost its meta record)".into(),
        })?;
        let (records, valid) = scan_records(&meta_bytes);
        let mut term = 0;
        let mut voted_for = None;
        for (_, payload) in &records {
            let (record_term, record_vote) =
                decode_meta(payload).ok_or_else(|| StorageError::Corrupt {
                    path: meta_path.clone(),
                    reason: "meta record with a valid checksum does not decode".into(),
                })?;
            term = record_term;
            voted_for = record_vote;
        }
        let meta_records = records.len();
        if valid < meta_bytes.len() {
            report.torn_meta_bytes = (meta_bytes.len() - valid) as u64;
            truncate_file(&meta_path, valid as u64)?;
        }

        // Snapshot.
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match read_all(&snapshot_path)? {
            None => None,
            Some(bytes) => {
                let (records, valid) = scan_records(&bytes);
                // Snapshots are written atomically, so anything but exactly
                // one valid record is real corruption, not a torn tail.
                if records.len() != 1 || valid != bytes.len() {
                    return Err(StorageError::Corrupt {
                        path: snapshot_path,
                        reason: "snapshot file is not exactly one valid record".into(),
                    });
                }
                Some(
                    decode_snapshot(records[0].1).ok_or_else(|| StorageError::Corrupt {
                        path: snapshot_path.clone(),
                        reason: "snapshot header does not decode".into(),
                    })?,
                )
            }
        };
        let snapshot_index = snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);

        // Log.
        let log_path = dir.join(LOG_FILE);
        let log_bytes = read_all(&log_path)?.unwrap_or_default();
        let (records, valid) = scan_records(&log_bytes);
        let mut entries: Vec<Entry> = Vec::new();
        let mut log_records = Vec::with_capacity(records.len());
        let mut cut = valid;
        for (offset, payload) in &records {
            let entry = decode_entry(payload).ok_or_else(|| StorageError::Corrupt {
                path: log_path.clone(),
                reason: format!(
                    "entry at offset {offset} has a valid checksum but does not decode"
                ),
            })?;
            let expected = entries
                .last()
                .map_or(snapshot_index + 1, |last| last.index + 1);
            if entry.index <= snapshot_index && entries.is_empty() {
                // Covered by the snapshot (compaction crashed before the
                // log rewrite): keep the record, skip the entry.
                log_records.push((entry.index, *offset));
                continue;
            }
            if entry.index != expected {
                // A gap can only come from a snapshot install that crashed
                // before the log rewrite; the entries after it are useless.
                report.discontiguous_entries = records.len() - log_records.len();
                cut = *offset as usize;
                break;
            }
            log_records.push((entry.index, *offset));
            entries.push(entry);
        }
        if cut < log_bytes.len() {
            report.torn_log_bytes = (log_bytes.len() - cut) as u64;
            truncate_file(&log_path, cut as u64)?;
        }

        let storage = Storage {
            log: open_append(&log_path)?,
            log_records,
            log_len: cut as u64,
            log_dirty: false,
            meta: open_append(&meta_path)?,
            meta_records,
            meta_dirty: false,
            snapshot_index,
            dir: dir.to_owned(),
        };
        let restored = Restored {
            term,
            voted_for,
            snapshot,
            entries,
        };
        Ok((storage, restored, report))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records the term and vote (durable after [`Storage::sync`]).
    pub fn persist_meta(
        &mut self,
        term: Term,
        voted_for: Option<NodeId>,
    ) -> Result<(), StorageError> {
        let mut record = Vec::new();
        frame_record(&encode_meta(term, voted_for), &mut record);
        if self.meta_records >= META_COMPACT_AFTER {
            // Replace the whole file with the one current record; this is
            // itself durable, so nothing is left to sync.
            write_atomically(&self.dir, META_FILE, &record)?;
            self.meta = open_append(&self.path(META_FILE))?;
            self.meta_records = 1;
            return Ok(());
        }
        let path = self.path(META_FILE);
        self.meta.write_all(&record).map_err(io_error(&path))?;
        self.meta_records += 1;
        self.meta_dirty = true;
        Ok(())
    }

    /// Removes entries after `truncate_after` (if set) and appends
    /// `entries` (durable after [`Storage::sync`]).
    pub fn append(
        &mut self,
        truncate_after: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        let path = self.path(LOG_FILE);
        if let Some(after) = truncate_after {
            let keep = self
                .log_records
                .partition_point(|(index, _)| *index <= after);
            if keep < self.log_records.len() {
                let offset = self.log_records[keep].1;
                self.log.set_len(offset).map_err(io_error(&path))?;
                self.log_records.truncate(keep);
                self.log_len = offset;
                self.log_dirty = true;
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::new();
        let mut payload = Vec::new();
        for entry in entries {
            payload.clear();
            encode_entry(entry, &mut payload);
            self.log_records
                .push((entry.index, self.log_len + buffer.len() as u64));
            frame_record(&payload, &mut buffer);
        }
        self.log.write_all(&buffer).map_err(io_error(&path))?;
        self.log_len += buffer.len() as u64;
        self.log_dirty = true;
        Ok(())
    }

    /// Replaces the snapshot atomically and drops log records up to
    /// `snapshot.last_index`. Durable when it returns.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        // Pending appends must be durable before the log is rewritten from
        // the file's contents.
        self.sync()?;
        let mut record = Vec::new();
        frame_record(&encode_snapshot(snapshot), &mut record);
        write_atomically(&self.dir, SNAPSHOT_FILE, &record)?;
        self.snapshot_index = snapshot.last_index;

        let keep_from = self
            .log_records
            .partition_point(|(index, _)| *index <= snapshot.last_index);
        if keep_from == 0 {
            return Ok(());
        }
        let path = self.path(LOG_FILE);
        let start = self
            .log_records
            .get(keep_from)
            .map_or(self.log_len, |(_, offset)| *offset);
        let bytes = read_all(&path)?.unwrap_or_default();
        let kept = bytes
            .get(start as usize..self.log_len as usize)
            .ok_or_else(|| StorageError::Corrupt {
                path: path.clone(),
                reason: "log shorter than its record index".into(),
            })?;
        write_atomically(&self.dir, LOG_FILE, kept)?;
        self.log = open_append(&path)?;
        self.log_records = self.log_records[keep_from..]
            .iter()
            .map(|(index, offset)| (*index, offset - start))
            .collect();
        self.log_len -= start;
        Ok(())
    }

    /// The group-commit fsync: makes every write since the last call durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.log_dirty {
            let path = self.path(LOG_FILE);
            self.log.sync_data().map_err(io_error(&path))?;
            self.log_dirty = false;
        }
        if self.meta_dirty {
            let path = self.path(META_FILE);
            self.meta.sync_data().map_err(io_error(&path))?;
            self.meta_dirty = false;
        }
        Ok(())
    }

    /// Index of the last entry in the log file (or of the snapshot).
    pub fn last_index(&self) -> Index {
        self.log_records
            .last()
            .map_or(self.snapshot_index, |(index, _)| *index)
            .max(self.snapshot_index)
    }

    pub fn log_bytes(&self) -> u64 {
        self.log_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
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

    fn open(dir: &TempDir) -> (Storage, Restored, RecoveryReport) {
        Storage::open(&dir.0, "n1 c1", true).expect("open")
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
        let dir = TempDir::new("truncate");
        let (mut storage, _, _) = open(&dir);
        let first: Vec<Entry> = (1..=5).map(|index| put(1, index, "k")).collect();
        storage.append(None, &first).unwrap();
        storage.sync().unwrap();
        storage
            .append(Some(2), &[put(2, 3, "x"), put(2, 4, "y")])
            .unwrap();
        storage.sync().unwrap();
        // Truncation to a point beyond the end is a no-op.
        storage.append(Some(10), &[]).unwrap();
        drop(storage);
        let (mut storage, restored, _) = open(&dir);
        let terms: Vec<(Index, Term)> =
            restored.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(terms, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
        // Truncate everything.
        storage.append(Some(0), &[put(5, 1, "z")]).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let (_, restored, _) = open(&dir);
        assert_eq!(restored.entries, vec![put(5, 1, "z")]);
    }

    #[test]
    fn torn_log_tail_is_truncated_at_every_cut_point() {
        let dir = TempDir::new("torn");
        let (mut storage, _, _) = open(&dir);
        storage
            .append(None, &[put(1, 1, "a"), put(1, 2, "b")])
            .unwrap();
        storage.sync().unwrap();
        let good_len = storage.log_bytes();
        storage.append(None, &[put(1, 3, "c")]).unwrap();
        storage.sync().unwrap();
        let full_len = storage.log_bytes();
        drop(storage);
        let log_path = dir.0.join(LOG_FILE);
        let full = fs::read(&log_path).unwrap();
        for cut in good_len..full_len {
            fs::write(&log_path, &full[..cut as usize]).unwrap();
            let (storage, restored, report) = open(&dir);
            assert_eq!(restored.entries.len(), 2, "cut at {cut}");
            assert_eq!(report.torn_log_bytes, cut - good_len, "cut at {cut}");
            assert_eq!(storage.log_bytes(), good_len);
            assert_eq!(fs::metadata(&log_path).unwrap().len(), good_len);
        }
    }

    #[test]
    fn corrupt_tail_byte_is_detected_by_the_checksum() {
        let dir = TempDir::new("corrupt");
        let (mut storage, _, _) = open(&dir);
        storage
            .append(None, &[put(1, 1, "a"), put(1, 2, "b")])
            .unwrap();
        storage.sync().unwrap();
        drop(storage);
        let log_path = dir.0.join(LOG_FILE);
        let mut bytes = fs::read(&log_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        fs::write(&log_path, &bytes).unwrap();
        let (mut storage, restored, report) = open(&dir);
        assert_eq!(restored.entries, vec![put(1, 1, "a")]);
        assert!(report.torn_log_bytes > 0);
        // Appending after the repair continues the log cleanly.
        storage.append(None, &[put(1, 2, "again")]).unwrap();
        storage.sync().unwrap();
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
        let dir = TempDir::new("snapshot");
        let (mut storage, _, _) = open(&dir);
        let entries: Vec<Entry> = (1..=10).map(|index| put(1, index, "k")).collect();
        storage.append(None, &entries).unwrap();
        storage.sync().unwrap();
        let snapshot = Snapshot {
            last_index: 7,
            last_term: 1,
            data: b"state".to_vec(),
        };
        storage.save_snapshot(&snapshot).unwrap();
        storage.append(None, &[put(2, 11, "n")]).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let (mut storage, restored, _) = open(&dir);
        assert_eq!(restored.snapshot, Some(snapshot));
        let indexes: Vec<Index> = restored.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![8, 9, 10, 11]);
        // Truncation still finds the right offsets after the rewrite.
        storage.append(Some(9), &[put(3, 10, "t")]).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let (_, restored, _) = open(&dir);
        let tail: Vec<(Index, Term)> = restored.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(tail, vec![(8, 1), (9, 1), (10, 3)]);
    }

    #[test]
    fn installed_snapshot_beyond_the_log_empties_it() {
        let dir = TempDir::new("install");
        let (mut storage, _, _) = open(&dir);
        storage
            .append(None, &[put(1, 1, "a"), put(1, 2, "b")])
            .unwrap();
        storage.sync().unwrap();
        let snapshot = Snapshot {
            last_index: 50,
            last_term: 4,
            data: vec![1, 2, 3],
        };
        storage.save_snapshot(&snapshot).unwrap();
        assert_eq!(storage.last_index(), 50);
        storage.append(None, &[put(4, 51, "c")]).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let (_, restored, _) = open(&dir);
        assert_eq!(restored.last_index(), 51);
        assert_eq!(restored.entries, vec![put(4, 51, "c")]);
    }

    #[test]
    fn stale_records_before_a_snapshot_are_skipped() {
        // Simulates a crash after the snapshot rename but before the log
        // rewrite: the log still starts at index 1.
        let dir = TempDir::new("stale");
        let (mut storage, _, _) = open(&dir);
        let entries: Vec<Entry> = (1..=4).map(|index| put(1, index, "k")).collect();
        storage.append(None, &entries).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let mut record = Vec::new();
        frame_record(
            &encode_snapshot(&Snapshot {
                last_index: 2,
                last_term: 1,
                data: vec![],
            }),
            &mut record,
        );
        write_atomically(&dir.0, SNAPSHOT_FILE, &record).unwrap();
        let (_, restored, report) = open(&dir);
        let indexes: Vec<Index> = restored.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![3, 4]);
        assert_eq!(report.torn_log_bytes, 0);
    }

    #[test]
    fn entry_encoding_round_trips_every_op() {
        let ops = [
            KvOp::Put {
                key: "k".into(),
                value: "ü".into(),
            },
            KvOp::Delete { key: "k".into() },
            KvOp::Cas {
                key: "k".into(),
                expected: None,
                value: "v".into(),
            },
            KvOp::Cas {
                key: "k".into(),
                expected: Some("old".into()),
                value: "".into(),
            },
        ];
        for op in ops {
            let entry = Entry {
                term: 9,
                index: 10,
                payload: Payload::Command {
                    client: u64::MAX,
                    seq: 3,
                    op,
                },
            };
            let mut bytes = Vec::new();
            encode_entry(&entry, &mut bytes);
            assert_eq!(decode_entry(&bytes), Some(entry));
            assert_eq!(decode_entry(&bytes[..bytes.len() - 1]), None);
        }
    }
}
