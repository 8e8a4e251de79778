//! Opening a data directory: the identity check and initialisation, then
//! recovery of meta, snapshot and log: torn tails dropped, an interrupted
//! snapshot install repaired, corruption and broken continuity refused.
use std::fs;
use std::path::Path;

use consensus::Restored;
use wire::{Entry, Index, Term};

use super::files::{
    io_error, open_append, open_log, preallocation_pays, read_all, truncate_file, write_atomically,
};
use super::record::{
    decode_entry, decode_meta, decode_snapshot, encode_meta, frame_record, scan_records,
    valid_record_after,
};
use super::{
    IDENTITY_FILE, LOG_FILE, LogRecord, META_FILE, RecoveryReport, SNAPSHOT_FILE, Storage,
    StorageError,
};

/// Where the valid prefix of an append-only file ends: at its end, or at a
/// torn tail that may be dropped. A bad record followed by a valid one is
/// an error naming `what` sits at the bad offset.
fn valid_prefix_end(
    path: &Path,
    bytes: &[u8],
    valid: usize,
    decodes: impl Fn(&[u8]) -> bool,
    what: impl FnOnce() -> String,
) -> Result<usize, StorageError> {
    if valid == bytes.len() {
        return Ok(valid);
    }
    match valid_record_after(bytes, valid, decodes) {
        None => Ok(valid),
        Some(next) => Err(StorageError::corrupt(
            path,
            format!(
                "bad record at byte {valid} ({}) is followed by a valid record at byte {next}, \
                 so it is not a torn tail; dropping it would forget fsynced state",
                what()
            ),
        )),
    }
}

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
        // A crash inside an atomic replace leaves its temporary file behind;
        // the target is intact (old or new), so the temporary is garbage.
        for name in [META_FILE, LOG_FILE, SNAPSHOT_FILE] {
            let tmp = dir.join(format!("{name}.tmp"));
            if tmp.exists() {
                fs::remove_file(&tmp).map_err(io_error(&tmp))?;
                report.stale_temp_files += 1;
            }
        }

        let (term, voted_for, meta_records) = recover_meta(dir, &mut report)?;
        let snapshot = recover_snapshot(dir)?;
        let (snapshot_index, snapshot_term) = snapshot
            .as_ref()
            .map_or((0, 0), |snapshot| (snapshot.last_index, snapshot.last_term));
        let log_path = dir.join(LOG_FILE);
        let recovered = recover_log(&log_path, snapshot_index, snapshot_term, &mut report)?;

        let storage = Storage {
            log: open_log(&log_path)?,
            log_records: recovered.records,
            log_len: recovered.len,
            log_allocated: recovered.allocated,
            log_preallocates: preallocation_pays(dir),
            log_dirty: false,
            meta: open_append(&dir.join(META_FILE))?,
            meta_records,
            meta_dirty: false,
            snapshot_index,
            snapshot_term,
            dir: dir.to_owned(),
        };
        let restored = Restored {
            term,
            voted_for,
            snapshot,
            entries: recovered.entries,
        };
        Ok((storage, restored, report))
    }
}

/// Meta: the last valid record wins; a torn last record is dropped.
fn recover_meta(
    dir: &Path,
    report: &mut RecoveryReport,
) -> Result<(Term, Option<wire::NodeId>, usize), StorageError> {
    let meta_path = dir.join(META_FILE);
    let meta_bytes = read_all(&meta_path)?.ok_or_else(|| {
        StorageError::corrupt(
            &meta_path,
            "missing (the directory was initialised but lost its meta record)",
        )
    })?;
    let (records, valid) = scan_records(&meta_bytes);
    let mut term = 0;
    let mut voted_for = None;
    for (offset, payload) in &records {
        (term, voted_for) = decode_meta(payload).ok_or_else(|| {
            StorageError::corrupt(
                &meta_path,
                format!("meta record at byte {offset} has a valid checksum but does not decode"),
            )
        })?;
    }
    let end = valid_prefix_end(
        &meta_path,
        &meta_bytes,
        valid,
        |payload| decode_meta(payload).is_some(),
        || format!("meta record {}, after term {term}", records.len() + 1),
    )?;
    if end < meta_bytes.len() {
        report.torn_meta_bytes = (meta_bytes.len() - end) as u64;
        truncate_file(&meta_path, end as u64)?;
    }
    Ok((term, voted_for, records.len()))
}

/// Snapshot: written atomically, so anything but exactly one valid record
/// is corruption, not a torn tail.
fn recover_snapshot(dir: &Path) -> Result<Option<wire::Snapshot>, StorageError> {
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let Some(bytes) = read_all(&snapshot_path)? else {
        return Ok(None);
    };
    let (records, valid) = scan_records(&bytes);
    if records.len() != 1 || valid != bytes.len() {
        return Err(StorageError::corrupt(
            &snapshot_path,
            "snapshot file is not exactly one valid record",
        ));
    }
    decode_snapshot(records[0].1)
        .map(Some)
        .ok_or_else(|| StorageError::corrupt(&snapshot_path, "snapshot header does not decode"))
}

/// The log as recovered: entries after the snapshot, the file's records,
/// where they end and the file's size after repair.
struct RecoveredLog {
    entries: Vec<Entry>,
    records: Vec<LogRecord>,
    len: u64,
    allocated: u64,
}

/// Log: records the snapshot covers are skipped (a compaction or install
/// that stopped before its log rewrite); if the log holds the snapshot's
/// last index with another term, what follows is the suffix an interrupted
/// install should have dropped, and it goes. Everything else must continue
/// the snapshot without a gap and with terms that never decrease. Zeros
/// after the last record are preallocated space and stay.
fn recover_log(
    log_path: &Path,
    snapshot_index: Index,
    snapshot_term: Term,
    report: &mut RecoveryReport,
) -> Result<RecoveredLog, StorageError> {
    let log_bytes = read_all(log_path)?.unwrap_or_default();
    let (records, valid) = scan_records(&log_bytes);
    let mut entries: Vec<Entry> = Vec::new();
    let mut log_records = Vec::with_capacity(records.len());
    let mut conflict_at = None;
    for (position, (offset, payload)) in records.iter().enumerate() {
        let entry = decode_entry(payload).ok_or_else(|| {
            StorageError::corrupt(
                log_path,
                format!("entry at byte {offset} has a valid checksum but does not decode"),
            )
        })?;
        let record = LogRecord {
            index: entry.index,
            term: entry.term,
            offset: *offset,
        };
        if entry.index <= snapshot_index && entries.is_empty() {
            if entry.index == snapshot_index && entry.term != snapshot_term {
                // This record and all after it go (the snapshot covers this
                // one; the rest conflict with it), so the next open does not
                // find the conflict again under entries appended since.
                conflict_at = Some(*offset);
                report.conflicting_entries = records.len() - position - 1;
                break;
            }
            log_records.push(record);
            continue;
        }
        let (expected, previous_term) = entries
            .last()
            .map_or((snapshot_index + 1, snapshot_term), |last| {
                (last.index + 1, last.term)
            });
        if entry.index != expected {
            return Err(StorageError::corrupt(
                log_path,
                format!(
                    "entry at byte {offset} has index {} where index {expected} must follow",
                    entry.index
                ),
            ));
        }
        if entry.term < previous_term {
            return Err(StorageError::corrupt(
                log_path,
                format!(
                    "entry at byte {offset} (index {}) has term {}, lower than the term {previous_term} before it",
                    entry.index, entry.term
                ),
            ));
        }
        log_records.push(record);
        entries.push(entry);
    }
    let cut = match conflict_at {
        Some(offset) => offset as usize,
        None if log_bytes[valid..].iter().all(|&byte| byte == 0) => {
            return Ok(RecoveredLog {
                entries,
                records: log_records,
                len: valid as u64,
                allocated: log_bytes.len() as u64,
            });
        }
        None => {
            let next_index = log_records
                .last()
                .map_or(snapshot_index + 1, |record| record.index + 1);
            valid_prefix_end(
                log_path,
                &log_bytes,
                valid,
                |payload| decode_entry(payload).is_some(),
                || format!("log index {next_index}"),
            )?
        }
    };
    if cut < log_bytes.len() {
        if conflict_at.is_none() {
            // The zeros after the torn bytes were free space, not the tear.
            let torn_end = log_bytes
                .iter()
                .rposition(|&byte| byte != 0)
                .map_or(cut, |last| (last + 1).max(cut));
            report.torn_log_bytes = (torn_end - cut) as u64;
        }
        truncate_file(log_path, cut as u64)?;
    }
    Ok(RecoveredLog {
        entries,
        records: log_records,
        len: cut as u64,
        allocated: cut as u64,
    })
}
