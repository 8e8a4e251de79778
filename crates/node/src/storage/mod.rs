//! Durable state in the data directory.
//!
//! ```text
//! node.id     "name cluster\n" — written last at initialisation; its absence
//!             means "empty data directory" (see config::StartMode)
//! meta        append-only records (term, voted_for); the last valid one wins
//! log         append-only records, one per entry (term, index, payload),
//!             then zeros: space preallocated in [`LOG_CHUNK`] steps
//! snapshot    one record (last_index, last_term, data), replaced atomically
//! ```
//!
//! Every record is `length (u32 BE) | crc32 of payload (u32 BE) | payload`.
//! Writes only reach the OS page cache until [`Storage::sync`], which is the
//! single fsync of a group commit; the driver feeds `Input::Persisted` only
//! after it returns. The log's appends overwrite preallocated zeros, so the
//! file's size (metadata the fdatasync would also have to commit) changes
//! once per chunk, not once per write. On open, zeros after the last record
//! are that free space; an incomplete last record (a crash in the middle of
//! an append) is truncated and reported; a bad record followed by valid
//! ones is corruption and the node refuses to start (see [`RESTORE_HINT`]).
//!
//! Suffix truncation (`consensus::Write::Append`'s `truncate_after`) uses an
//! in-memory index of record offsets: the file is cut at the first removed
//! record. Installing or taking a snapshot is two durable steps, each atomic (temporary file,
//! fsync, rename, directory fsync): the snapshot file, then the log rewritten
//! without the entries the snapshot covers (and, for an installed snapshot,
//! without a suffix that does not extend it). A crash between the two leaves
//! the new snapshot with the old log; recovery repairs exactly that state
//! (covered records skipped, a suffix that does not continue the snapshot's
//! last index and term dropped) and refuses anything else that breaks term
//! or index continuity.
//!
//! Rooms: [`record`] (framing and payload codecs), [`files`] (atomic
//! replace, fsync, truncation), [`recovery`] (open: identity check, torn-tail
//! and snapshot-install repair, corruption and continuity checks); this file
//! holds the write path the driver calls.
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use wire::{Entry, Index, NodeId, Snapshot, Term};

mod files;
mod record;
mod recovery;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_errors;

use crate::failpoints::crash_point;
use files::{Preallocated, io_error, open_append, open_log, preallocate, write_atomically};
use record::{encode_entry, encode_meta, encode_snapshot, frame_record};

/// Meta records beyond this make the next write compact the file.
const META_COMPACT_AFTER: usize = 1024;

/// The log file grows in steps of this much preallocated space (about
/// 150 000 small writes each), so only one fdatasync in that many commits
/// a new file size.
pub(crate) const LOG_CHUNK: u64 = 16 << 20;

const IDENTITY_FILE: &str = "node.id";
const META_FILE: &str = "meta";
const LOG_FILE: &str = "log";
const SNAPSHOT_FILE: &str = "snapshot";

/// What an operator does about storage the node refuses to use: repeated in
/// every corruption error and in the crate README ("Corrupt storage").
pub(crate) const RESTORE_HINT: &str = "to restore this member from its peers, stop it, move its data \
     directory aside (keep it for diagnosis) and start it again with --join-empty: it rejoins \
     with an empty log, withholds its vote until it follows a leader (a wiped member has \
     forgotten the votes it cast) and catches up from the leader's log or snapshot; never \
     restore more members at once than the cluster can lose (a majority must keep its disks)";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The directory was never initialised and no start mode allows it.
    #[error(
        "data directory {0} holds no state; pass --bootstrap for the first start of a new \
         cluster, or --join-empty if this node lost its disk and must rejoin an existing one"
    )]
    Empty(PathBuf),
    /// `node.id` names another node or cluster.
    #[error("data directory {dir} belongs to node `{found}`, not `{expected}`")]
    WrongIdentity {
        /// The data directory.
        dir: PathBuf,
        /// The identity stored there.
        found: String,
        /// This node's identity.
        expected: String,
    },
    /// The content is inconsistent in a way no crash can produce.
    #[error("{path}: corrupt: {reason}; refusing to start; {hint}", hint = RESTORE_HINT)]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset and log index where known.
        reason: String,
    },
}

impl StorageError {
    fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// What recovery found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RecoveryReport {
    /// The data directory was empty and has been initialised.
    pub initialised: bool,
    pub torn_log_bytes: u64,
    pub torn_meta_bytes: u64,
    /// Log entries dropped because they did not extend the snapshot (a
    /// snapshot install interrupted between its two durable steps).
    pub conflicting_entries: usize,
    /// Stale temporary files of an interrupted atomic replace, removed.
    pub stale_temp_files: usize,
}

/// The node's durable storage. Not thread-safe; owned by the driver.
pub(crate) struct Storage {
    dir: PathBuf,
    log: File,
    /// Every record in the log file, in file order.
    log_records: Vec<LogRecord>,
    /// Where the records end and the next append goes.
    log_len: u64,
    /// The file's size: `log_len` plus the preallocated zeros after it.
    log_allocated: u64,
    /// False on tmpfs (nothing to save there) and once the filesystem
    /// refused `fallocate`: appends then grow the file.
    log_preallocates: bool,
    log_dirty: bool,
    meta: File,
    meta_records: usize,
    meta_dirty: bool,
    snapshot_index: Index,
    snapshot_term: Term,
}

/// Which of the two appended-to files a [`SyncJob`] flushes.
#[derive(Debug, Clone, Copy)]
enum SyncedFile {
    Log,
    Meta,
}

/// One fsync of everything written before [`Storage::begin_sync`]: log
/// first, then meta, as [`Storage::sync`] has always done.
pub(crate) struct SyncJob {
    files: Vec<(SyncedFile, PathBuf, File)>,
}

impl SyncJob {
    /// True if nothing was written since the last sync.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Flushes the files to the disk (`fdatasync`); blocks.
    pub(crate) fn run(self) -> Result<(), StorageError> {
        for (which, path, file) in &self.files {
            sync_file(*which, file, || path.clone())?;
        }
        Ok(())
    }
}

/// fdatasync of one of the two appended-to files, then its crash point.
/// `path` is built only for an error: this runs once per write.
fn sync_file(
    which: SyncedFile,
    file: &File,
    path: impl FnOnce() -> PathBuf,
) -> Result<(), StorageError> {
    file.sync_data().map_err(|source| StorageError::Io {
        path: path(),
        source,
    })?;
    match which {
        SyncedFile::Log => {
            crash_point!("log-synced");
        }
        SyncedFile::Meta => {
            crash_point!("meta-synced");
        }
    }
    Ok(())
}

/// Where one entry's record sits in the log file.
#[derive(Debug, Clone, Copy)]
struct LogRecord {
    index: Index,
    term: Term,
    offset: u64,
}

impl Storage {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records the term and vote (durable after [`Storage::sync`]).
    pub(crate) fn persist_meta(
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
            crash_point!("meta-compacted");
            self.meta = open_append(&self.path(META_FILE))?;
            self.meta_records = 1;
            return Ok(());
        }
        let path = self.path(META_FILE);
        self.meta.write_all(&record).map_err(io_error(&path))?;
        self.meta_records += 1;
        self.meta_dirty = true;
        crash_point!("meta-written");
        Ok(())
    }

    /// Removes entries after `truncate_after` (if set) and appends
    /// `entries` (durable after [`Storage::sync`]).
    pub(crate) fn append(
        &mut self,
        truncate_after: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        let path = self.path(LOG_FILE);
        if let Some(after) = truncate_after {
            let keep = self
                .log_records
                .partition_point(|record| record.index <= after);
            if keep < self.log_records.len() {
                let offset = self.log_records[keep].offset;
                // Cutting the file (not zeroing the suffix) drops the
                // preallocated space too; the next append allocates anew.
                self.log.set_len(offset).map_err(io_error(&path))?;
                self.log_records.truncate(keep);
                self.log_len = offset;
                self.log_allocated = offset;
                self.log_dirty = true;
                crash_point!("log-truncated");
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
            self.log_records.push(LogRecord {
                index: entry.index,
                term: entry.term,
                offset: self.log_len + buffer.len() as u64,
            });
            frame_record(&payload, &mut buffer);
        }
        let end = self.log_len + buffer.len() as u64;
        if end > self.log_allocated {
            self.grow_log(end)?;
        }
        self.log
            .write_all_at(&buffer, self.log_len)
            .map_err(io_error(&path))?;
        self.log_len = end;
        self.log_allocated = self.log_allocated.max(end);
        self.log_dirty = true;
        crash_point!("log-appended");
        Ok(())
    }

    /// Preallocates log space up to the chunk boundary after `end`. Where
    /// the filesystem cannot (or the disk has no room for a whole chunk),
    /// the write itself extends the file.
    fn grow_log(&mut self, end: u64) -> Result<(), StorageError> {
        if !self.log_preallocates {
            return Ok(());
        }
        let target = end.div_ceil(LOG_CHUNK) * LOG_CHUNK;
        let path = self.path(LOG_FILE);
        match preallocate(&self.log, &path, self.log_allocated, target)? {
            Preallocated::Done => self.log_allocated = target,
            Preallocated::Unsupported => self.log_preallocates = false,
            Preallocated::NoSpace => {}
        }
        Ok(())
    }

    /// Installs a snapshot received from the leader: the suffix after
    /// `snapshot.last_index` survives only if the log holds that index with
    /// the snapshot's term (Raft §7); otherwise the whole log goes. Durable
    /// when it returns.
    pub(crate) fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let extends = self.term_at(snapshot.last_index) == Some(snapshot.last_term);
        self.replace_snapshot(snapshot, extends)
    }

    /// Stores a local snapshot of applied state and drops the log prefix it
    /// covers. Durable when it returns.
    pub(crate) fn compact(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        if snapshot.last_index <= self.snapshot_index {
            return Ok(()); // no newer than the stored one
        }
        self.replace_snapshot(snapshot, true)
    }

    /// The term of the entry at `index`, from the log or the snapshot.
    fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index && index > 0 {
            return Some(self.snapshot_term);
        }
        let at = self
            .log_records
            .partition_point(|record| record.index < index);
        self.log_records
            .get(at)
            .filter(|record| record.index == index)
            .map(|record| record.term)
    }

    /// Two durable steps, each atomic: the snapshot file, then the log
    /// rewritten from the first entry after the snapshot (or emptied when
    /// the suffix does not extend it). Recovery repairs a crash in between.
    fn replace_snapshot(
        &mut self,
        snapshot: &Snapshot,
        keep_suffix: bool,
    ) -> Result<(), StorageError> {
        // Pending appends must be durable before the log is rewritten from
        // the file's contents.
        self.sync()?;
        crash_point!("snapshot-before");
        let mut record = Vec::new();
        frame_record(&encode_snapshot(snapshot), &mut record);
        write_atomically(&self.dir, SNAPSHOT_FILE, &record)?;
        self.snapshot_index = snapshot.last_index;
        self.snapshot_term = snapshot.last_term;
        crash_point!("snapshot-written");

        let keep_from = if keep_suffix {
            self.log_records
                .partition_point(|record| record.index <= snapshot.last_index)
        } else {
            self.log_records.len()
        };
        if keep_from == 0 {
            return Ok(());
        }
        let path = self.path(LOG_FILE);
        let start = self
            .log_records
            .get(keep_from)
            .map_or(self.log_len, |record| record.offset);
        let mut kept = vec![0; (self.log_len - start) as usize];
        self.log
            .read_exact_at(&mut kept, start)
            .map_err(io_error(&path))?;
        write_atomically(&self.dir, LOG_FILE, &kept)?;
        self.log = open_log(&path)?;
        self.log_allocated = kept.len() as u64;
        self.log_records = self.log_records[keep_from..]
            .iter()
            .map(|record| LogRecord {
                offset: record.offset - start,
                ..*record
            })
            .collect();
        self.log_len -= start;
        crash_point!("snapshot-log-rewritten");
        Ok(())
    }

    /// The group-commit fsync: makes every write since the last call durable.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        // On the files themselves: the inline path (every sequential write)
        // pays no dup/close for a job it does not hand off, and no path.
        if self.log_dirty {
            sync_file(SyncedFile::Log, &self.log, || self.path(LOG_FILE))?;
            self.log_dirty = false;
        }
        if self.meta_dirty {
            sync_file(SyncedFile::Meta, &self.meta, || self.path(META_FILE))?;
            self.meta_dirty = false;
        }
        Ok(())
    }

    /// Takes what a sync must flush — handles to the log and meta files
    /// written since the last sync — so the fsync can run on another thread
    /// while the driver goes on. Writes made after this call are not
    /// covered: they wait for the next sync. A handle is a duplicate of the
    /// file descriptor, so a file replaced afterwards (compaction renames a
    /// new log into place, with its own fsync) does not disturb the job.
    pub(crate) fn begin_sync(&mut self) -> Result<SyncJob, StorageError> {
        let mut files = Vec::with_capacity(2);
        if self.log_dirty {
            let path = self.path(LOG_FILE);
            let file = self.log.try_clone().map_err(io_error(&path))?;
            files.push((SyncedFile::Log, path, file));
            self.log_dirty = false;
        }
        if self.meta_dirty {
            let path = self.path(META_FILE);
            let file = self.meta.try_clone().map_err(io_error(&path))?;
            files.push((SyncedFile::Meta, path, file));
            self.meta_dirty = false;
        }
        Ok(SyncJob { files })
    }

    /// Index of the last entry in the log file (or of the snapshot).
    #[cfg(test)]
    pub(crate) fn last_index(&self) -> Index {
        self.log_records
            .last()
            .map_or(self.snapshot_index, |record| record.index)
            .max(self.snapshot_index)
    }

    #[cfg(test)]
    pub(crate) fn log_bytes(&self) -> u64 {
        self.log_len
    }
}
