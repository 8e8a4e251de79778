//! File primitives for durable state: atomic replace (temporary file,
//! fsync, rename, directory fsync), whole-file reads, append handles, log
//! preallocation and torn-tail truncation, each mapping I/O errors to the
//! path involved.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, fallocate};

use super::StorageError;
use crate::failpoints::crash_point;

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))
}

/// Writes `bytes` to `dir/name` atomically: temporary file, fsync, rename,
/// directory fsync. A crash leaves either the old or the new file.
pub(super) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    crash_point!("atomic-temp-written");
    fs::rename(&tmp, &target).map_err(io_error(&target))?;
    sync_dir(dir)
}

pub(super) fn read_all(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
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

pub(super) fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error(path))
}

/// The log is written and read at explicit offsets (its preallocated tail
/// is not the end of its records), so it is not opened for appending.
pub(super) fn open_log(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))
}

/// What [`preallocate`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Preallocated {
    /// `file` is now `to` bytes long; the new space reads as zeros.
    Done,
    /// The filesystem has no `fallocate`: the file grows by its writes.
    Unsupported,
    /// No room for the whole chunk; the write may still fit on its own.
    NoSpace,
}

/// Extends `file` from `from` to `to` bytes with allocated, zero-reading
/// blocks. An append that overwrites such space leaves the file's size
/// alone, so its fdatasync flushes the data only, without the metadata
/// write a size change costs (a journal commit on journaled ext4, the
/// inode block without a journal; the reference VM's ext4 has none: a
/// 96-byte append + fdatasync p50 0.27-0.32 ms, into preallocated space
/// 0.15-0.22).
pub(super) fn preallocate(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
) -> Result<Preallocated, StorageError> {
    let offset = i64::try_from(from).unwrap_or(i64::MAX);
    let len = i64::try_from(to.saturating_sub(from)).unwrap_or(i64::MAX);
    match fallocate(file.as_fd(), FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(Preallocated::Done),
        Err(Errno::EOPNOTSUPP | Errno::ENOSYS) => Ok(Preallocated::Unsupported),
        Err(Errno::ENOSPC) => Ok(Preallocated::NoSpace),
        Err(errno) => Err(io_error(path)(io::Error::from(errno))),
    }
}

/// Whether preallocating the log saves anything on the filesystem holding
/// `dir`: not on tmpfs, where an fsync commits nothing and a
/// preallocated chunk would be memory held for nothing. (The lab's data
/// disks for disk faults are tmpfs, so there a full disk fails the node's
/// next write; on a disk, a node writes on into the chunk it holds.)
pub(super) fn preallocation_pays(dir: &Path) -> bool {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    match statfs(dir) {
        Ok(stats) => stats.filesystem_type() != TMPFS_MAGIC,
        // Unknown: try, and let fallocate's own answer decide.
        Err(_) => true,
    }
}

/// Cuts `path` to `len` bytes and fsyncs it (torn-tail repair).
pub(super) fn truncate_file(path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    file.set_len(len).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}
