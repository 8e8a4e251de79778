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
//!
//! Rooms: [`record`] (framing and payload codecs), [`files`] (atomic
//! replace, fsync, truncation), [`recovery`] (open: identity check, torn-tail
//! repair); this file holds the write path the driver calls.
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use wire::{Entry, Index, NodeId, Snapshot, Term};

mod files;
mod record;
mod recovery;
#[cfg(test)]
mod tests;

use files::{io_error, open_append, read_all, write_atomically};
use record::{encode_entry, encode_meta, encode_snapshot, frame_record};

/// Meta records beyond this make the next write compact the file.
const META_COMPACT_AFTER: usize = 1024;

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

/// What recovery found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RecoveryReport {
    /// The data directory was empty and has been initialised.
    pub initialised: bool,
    pub torn_log_bytes: u64,
    pub torn_meta_bytes: u64,
    /// Log records dropped because they did not continue the log contiguously.
    pub discontiguous_entries: usize,
}

/// The node's durable storage. Not thread-safe; owned by the driver.
pub(crate) struct Storage {
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
    pub(crate) fn append(
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
    pub(crate) fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
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
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
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
    #[cfg(test)]
    pub(crate) fn last_index(&self) -> Index {
        self.log_records
            .last()
            .map_or(self.snapshot_index, |(index, _)| *index)
            .max(self.snapshot_index)
    }

    #[cfg(test)]
    pub(crate) fn log_bytes(&self) -> u64 {
        self.log_len
    }
}
