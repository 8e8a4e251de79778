//! The passthrough filesystem: every request is served from a backing
//! directory through a file descriptor opened before the FUSE mount covered
//! it (so the mount can sit on the very directory it passes through, and
//! the files are simply there again once it is gone). Only fsync, fdatasync
//! and directory fsync go through the fault mode.
//!
//! Inode numbers are the backing inode numbers, with the backing root and
//! inode 1 swapped (FUSE's root is 1); each known inode remembers its path
//! relative to the backing root. The kernel serialises what needs it (one
//! writer per inode, rename locking), so plain POSIX calls on the backing
//! files give the node the POSIX semantics its recovery relies on.
mod ops;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat2};
use nix::libc;
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, UtimensatFlags, fchmodat, fstat, fstatat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};

use super::control::{FsyncMode, Window};

/// How long the kernel may cache attributes and names: every change goes
/// through this mount, so the kernel's cache is never stale.
const TTL: Duration = Duration::from_secs(1);

/// The fault mode and its counters, shared with the control thread.
pub(crate) type SharedWindow = Arc<Mutex<Window>>;

pub(crate) fn lock(window: &SharedWindow) -> MutexGuard<'_, Window> {
    window.lock().unwrap_or_else(|e| e.into_inner())
}

struct Known {
    /// Relative to the backing root; `None` once unlinked (only open
    /// handles reach it then).
    path: Option<PathBuf>,
    lookups: u64,
}

struct OpenDir {
    handle: Arc<File>,
    entries: Vec<(u64, FileType, OsString)>,
}

/// See the module docs.
pub(crate) struct Passthrough {
    root: OwnedFd,
    root_ino: u64,
    known: Mutex<HashMap<u64, Known>>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    dirs: Mutex<HashMap<u64, OpenDir>>,
    next_handle: AtomicU64,
    window: SharedWindow,
}

fn errno(error: nix::Error) -> Errno {
    Errno::from_i32(error as i32)
}

fn io_errno(error: &io::Error) -> Errno {
    Errno::from_i32(error.raw_os_error().unwrap_or(libc::EIO))
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn time(seconds: i64, nanos: i64) -> SystemTime {
    let offset = Duration::new(seconds.unsigned_abs(), nanos.clamp(0, 999_999_999) as u32);
    if seconds >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn timespec(time: Option<TimeOrNow>) -> TimeSpec {
    match time {
        None => TimeSpec::UTIME_OMIT,
        Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(at)) => {
            let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            TimeSpec::from_duration(since)
        }
    }
}

/// Open flags for the backing file: the kernel already placed every write
/// (an `O_APPEND` writer's offset is the file size), and creation is done.
fn backing_flags(flags: i32) -> OFlag {
    let mut flags = OFlag::from_bits_truncate(flags);
    flags.remove(OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOCTTY);
    flags | OFlag::O_CLOEXEC
}

impl Passthrough {
    /// Serves the directory `root` (an fd opened before the mount).
    pub(crate) fn new(root: OwnedFd, window: SharedWindow) -> io::Result<Passthrough> {
        let root_ino = fstat(&root).map_err(io::Error::from)?.st_ino;
        Ok(Passthrough {
            root,
            root_ino,
            known: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            window,
        })
    }

    /// Backing inode ↔ FUSE inode (the same swap both ways).
    fn swap_root(&self, ino: u64) -> u64 {
        if ino == self.root_ino {
            INodeNo::ROOT.0
        } else if ino == INodeNo::ROOT.0 {
            self.root_ino
        } else {
            ino
        }
    }

    fn attr(&self, stat: &FileStat) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.swap_root(stat.st_ino)),
            size: stat.st_size as u64,
            blocks: stat.st_blocks as u64,
            atime: time(stat.st_atime, stat.st_atime_nsec),
            mtime: time(stat.st_mtime, stat.st_mtime_nsec),
            ctime: time(stat.st_ctime, stat.st_ctime_nsec),
            crtime: UNIX_EPOCH,
            kind: kind_of(stat.st_mode),
            perm: (stat.st_mode & 0o7777) as u16,
            nlink: stat.st_nlink as u32,
            uid: stat.st_uid,
            gid: stat.st_gid,
            rdev: stat.st_rdev as u32,
            blksize: stat.st_blksize as u32,
            flags: 0,
        }
    }

    fn path_of(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        if ino == INodeNo::ROOT {
            return Ok(PathBuf::from("."));
        }
        (guard(&self.known).get(&ino.0))
            .and_then(|known| known.path.clone())
            .ok_or(Errno::ENOENT)
    }

    fn child_path(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        if name.as_bytes().contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        let parent = self.path_of(parent)?;
        Ok(if parent == Path::new(".") {
            PathBuf::from(name)
        } else {
            parent.join(name)
        })
    }

    fn stat_path(&self, path: &Path) -> Result<FileStat, Errno> {
        fstatat(&self.root, path, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)
    }

    /// A lookup the kernel now holds: its inode remembers `path`.
    fn remember(&self, stat: &FileStat, path: PathBuf) -> FileAttr {
        let attr = self.attr(stat);
        if attr.ino != INodeNo::ROOT {
            let mut known = guard(&self.known);
            let entry = known.entry(attr.ino.0).or_insert(Known {
                path: None,
                lookups: 0,
            });
            entry.path = Some(path);
            entry.lookups += 1;
        }
        attr
    }

    fn entry_of(&self, path: PathBuf, reply: ReplyEntry) {
        match self.stat_path(&path) {
            Ok(stat) => reply.entry(&TTL, &self.remember(&stat, path), Generation(0)),
            Err(error) => reply.error(error),
        }
    }

    /// Makes `name` in `parent` by `make` (given its path under the root)
    /// and replies with the new entry.
    fn make_entry(
        &self,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEntry,
        make: impl FnOnce(&Path) -> nix::Result<()>,
    ) {
        let made = (self.child_path(parent, name))
            .and_then(|path| make(&path).map_err(errno).map(|()| path));
        match made {
            Ok(path) => self.entry_of(path, reply),
            Err(error) => reply.error(error),
        }
    }

    /// The inode at `path` no longer has that name.
    fn forget_path(&self, stat: &FileStat) {
        let ino = self.swap_root(stat.st_ino);
        if let Some(known) = guard(&self.known).get_mut(&ino) {
            known.path = None;
        }
    }

    fn file(&self, handle: FileHandle) -> Result<Arc<File>, Errno> {
        (guard(&self.files).get(&handle.0).cloned()).ok_or(Errno::EBADF)
    }

    fn new_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// An fsync in the mode in force: passed on, failed with EIO, or
    /// passed on after the delay (on its own thread, so the delay holds up
    /// only this request, as a slow disk would).
    fn fsync_with(
        &self,
        sync: impl FnOnce() -> io::Result<()> + Send + 'static,
        reply: ReplyEmpty,
    ) {
        let arrived = Instant::now();
        let mode = lock(&self.window).mode();
        match mode {
            FsyncMode::Pass => {
                let result = sync();
                lock(&self.window).record(arrived.elapsed(), false, false);
                answer(result, reply);
            }
            FsyncMode::Error => {
                lock(&self.window).record(arrived.elapsed(), true, false);
                reply.error(Errno::EIO);
            }
            FsyncMode::Slow(delay) => {
                let window = self.window.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(delay.saturating_sub(arrived.elapsed()));
                    let result = sync();
                    lock(&window).record(arrived.elapsed(), false, true);
                    answer(result, reply);
                });
            }
        }
    }
}

fn answer(result: io::Result<()>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(io_errno(&error)),
    }
}

impl Passthrough {
    fn remove(&self, parent: INodeNo, name: &OsStr, flags: UnlinkatFlags, reply: ReplyEmpty) {
        let removed = self.child_path(parent, name).and_then(|path| {
            let stat = self.stat_path(&path)?;
            unlinkat(&self.root, &path, flags).map_err(errno)?;
            Ok(stat)
        });
        match removed {
            Ok(stat) => {
                if stat.st_nlink <= 1 || kind_of(stat.st_mode) == FileType::Directory {
                    self.forget_path(&stat);
                }
                reply.ok();
            }
            Err(error) => reply.error(error),
        }
    }

    fn rename_paths(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        let replaced = self.stat_path(&to).ok();
        renameat2(
            &self.root,
            &from,
            &self.root,
            &to,
            nix::fcntl::RenameFlags::from_bits_truncate(flags.bits()),
        )
        .map_err(errno)?;
        let moved = self.stat_path(&to)?;
        let moved_ino = self.swap_root(moved.st_ino);
        let exchanged = flags.bits() & libc::RENAME_EXCHANGE != 0;
        let mut known = guard(&self.known);
        // A moved directory takes every remembered path below it along.
        let below = |path: &Path, top: &Path| path.strip_prefix(top).ok().map(Path::to_path_buf);
        for (ino, entry) in known.iter_mut() {
            let Some(path) = entry.path.clone() else {
                continue;
            };
            if *ino == moved_ino {
                entry.path = Some(to.clone());
            } else if let Some(rest) = below(&path, &from).filter(|r| !r.as_os_str().is_empty()) {
                entry.path = Some(to.join(rest));
            } else if let Some(replaced) = &replaced
                && *ino == self.swap_root(replaced.st_ino)
            {
                entry.path = exchanged.then(|| from.clone());
            }
        }
        Ok(())
    }

    fn read_dir(&self, ino: INodeNo) -> Result<OpenDir, Errno> {
        let path = self.path_of(ino)?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let handle = File::from(openat(&self.root, &path, flags, Mode::empty()).map_err(errno)?);
        let mut listing =
            nix::dir::Dir::openat(&self.root, &path, flags, Mode::empty()).map_err(errno)?;
        let mut entries = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(errno)?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
            let kind = match entry.file_type() {
                Some(nix::dir::Type::Directory) => FileType::Directory,
                Some(nix::dir::Type::Symlink) => FileType::Symlink,
                Some(nix::dir::Type::File) => FileType::RegularFile,
                _ => {
                    let child = if path == Path::new(".") {
                        PathBuf::from(&name)
                    } else {
                        path.join(&name)
                    };
                    self.stat_path(&child)
                        .map_or(FileType::RegularFile, |stat| kind_of(stat.st_mode))
                }
            };
            entries.push((self.swap_root(entry.ino()), kind, name));
        }
        Ok(OpenDir {
            handle: Arc::new(handle),
            entries,
        })
    }
}
