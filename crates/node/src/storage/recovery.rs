//! Opening a data directory: the identity check and initialisation, then
//! recovery of meta, snapshot and log with torn-tail repair.
use std::fs;
use std::path::Path;

use consensus::Restored;
use wire::Entry;

use super::files::{io_error, open_append, read_all, truncate_file, write_atomically};
use super::record::{
    decode_entry, decode_meta, decode_snapshot, encode_meta, frame_record, scan_records,
};
use super::{
    IDENTITY_FILE, LOG_FILE, META_FILE, RecoveryReport, SNAPSHOT_FILE, Storage, StorageError,
};

impl Storage {
    /// Opens (and if `allow_init`, initialises) the data directory and
    /// recovers the replica's state from it.
    pub(crate) fn open(
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
}
