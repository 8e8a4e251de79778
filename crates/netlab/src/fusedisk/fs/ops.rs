//! The FUSE requests, each served from the backing directory through the
//! helpers of the parent module; only the fsync family consults the fault
//! mode.
use super::*;

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child_path(parent, name) {
            Ok(path) => self.entry_of(path, reply),
            Err(error) => reply.error(error),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut known = guard(&self.known);
        if let Some(entry) = known.get_mut(&ino.0) {
            entry.lookups = entry.lookups.saturating_sub(nlookup);
            if entry.lookups == 0 {
                known.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let stat = match fh.and_then(|fh| self.file(fh).ok()) {
            Some(file) => fstat(file.as_fd()).map_err(errno),
            None => self.path_of(ino).and_then(|path| self.stat_path(&path)),
        };
        match stat {
            Ok(stat) => reply.attr(&TTL, &self.attr(&stat)),
            Err(error) => reply.error(error),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let open = fh.and_then(|fh| self.file(fh).ok());
        let result = (|| -> Result<FileStat, Errno> {
            if let Some(size) = size {
                match &open {
                    Some(file) => file.set_len(size).map_err(|e| io_errno(&e))?,
                    None => {
                        let path = self.path_of(ino)?;
                        let fd = openat(
                            &self.root,
                            &path,
                            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(errno)?;
                        File::from(fd).set_len(size).map_err(|e| io_errno(&e))?;
                    }
                }
            }
            if mode.is_some()
                || uid.is_some()
                || gid.is_some()
                || atime.is_some()
                || mtime.is_some()
            {
                let path = self.path_of(ino)?;
                if let Some(mode) = mode {
                    fchmodat(
                        &self.root,
                        &path,
                        Mode::from_bits_truncate(mode & 0o7777),
                        FchmodatFlags::FollowSymlink,
                    )
                    .map_err(errno)?;
                }
                if uid.is_some() || gid.is_some() {
                    fchownat(
                        &self.root,
                        &path,
                        uid.map(Uid::from_raw),
                        gid.map(Gid::from_raw),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno)?;
                }
                if atime.is_some() || mtime.is_some() {
                    nix::sys::stat::utimensat(
                        &self.root,
                        &path,
                        &timespec(atime),
                        &timespec(mtime),
                        UtimensatFlags::NoFollowSymlink,
                    )
                    .map_err(errno)?;
                }
            }
            match &open {
                Some(file) => fstat(file.as_fd()).map_err(errno),
                None => self.stat_path(&self.path_of(ino)?),
            }
        })();
        match result {
            Ok(stat) => reply.attr(&TTL, &self.attr(&stat)),
            Err(error) => reply.error(error),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match (self.path_of(ino)).and_then(|path| readlinkat(&self.root, &path).map_err(errno)) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(error) => reply.error(error),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.make_entry(parent, name, reply, |path| {
            nix::sys::stat::mkdirat(&self.root, path, Mode::from_bits_truncate(mode & !umask))
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, UnlinkatFlags::NoRemoveDir, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, UnlinkatFlags::RemoveDir, reply);
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.make_entry(parent, link_name, reply, |path| {
            symlinkat(target, &self.root, path)
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.rename_paths(parent, name, newparent, newname, flags) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = (self.path_of(ino)).and_then(|path| {
            openat(&self.root, &path, backing_flags(flags.0), Mode::empty()).map_err(errno)
        });
        match opened {
            Ok(fd) => {
                let handle = self.new_handle();
                guard(&self.files).insert(handle, Arc::new(File::from(fd)));
                reply.opened(FileHandle(handle), FopenFlags::empty());
            }
            Err(error) => reply.error(error),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let created = self.child_path(parent, name).and_then(|path| {
            let mut oflags = backing_flags(flags) | OFlag::O_CREAT;
            if flags & libc::O_EXCL != 0 {
                oflags |= OFlag::O_EXCL;
            }
            let fd = openat(
                &self.root,
                &path,
                oflags,
                Mode::from_bits_truncate(mode & !umask),
            )
            .map_err(errno)?;
            let stat = fstat(&fd).map_err(errno)?;
            Ok((fd, stat, path))
        });
        match created {
            Ok((fd, stat, path)) => {
                let attr = self.remember(&stat, path);
                let handle = self.new_handle();
                guard(&self.files).insert(handle, Arc::new(File::from(fd)));
                reply.created(
                    &TTL,
                    &attr,
                    Generation(0),
                    FileHandle(handle),
                    FopenFlags::empty(),
                );
            }
            Err(error) => reply.error(error),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file = match self.file(fh) {
            Ok(file) => file,
            Err(error) => return reply.error(error),
        };
        let mut buffer = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read_at(&mut buffer[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return reply.error(io_errno(&error)),
            }
        }
        reply.data(&buffer[..filled]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match (self.file(fh)).and_then(|file| {
            file.write_all_at(data, offset)
                .map_err(|error| io_errno(&error))
        }) {
            Ok(()) => reply.written(data.len() as u32),
            Err(error) => reply.error(error),
        }
    }

    /// Passed on, so a node's preallocated log behaves as on the backing
    /// disk (without it the node falls back to growing the file per write).
    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
            return reply.error(Errno::EFBIG);
        };
        match self.file(fh).and_then(|file| {
            nix::fcntl::fallocate(
                file.as_fd(),
                nix::fcntl::FallocateFlags::from_bits_retain(mode),
                offset,
                length,
            )
            .map_err(|errno| Errno::from_i32(errno as i32))
        }) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Writes reach the backing file at once; a close has nothing left
        // to hand on.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guard(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.file(fh) {
            Ok(file) => self.fsync_with(
                move || {
                    if datasync {
                        file.sync_data()
                    } else {
                        file.sync_all()
                    }
                },
                reply,
            ),
            Err(error) => reply.error(error),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.read_dir(ino) {
            Ok(dir) => {
                let handle = self.new_handle();
                guard(&self.dirs).insert(handle, dir);
                reply.opened(FileHandle(handle), FopenFlags::empty());
            }
            Err(error) => reply.error(error),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dirs = guard(&self.dirs);
        let Some(dir) = dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (index, (ino, kind, name)) in dir.entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), index as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        guard(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let handle = guard(&self.dirs).get(&fh.0).map(|dir| dir.handle.clone());
        match handle {
            Some(dir) => self.fsync_with(move || dir.sync_all(), reply),
            None => reply.error(Errno::EBADF),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::fstatvfs(&self.root) {
            Ok(stats) => reply.statfs(
                stats.blocks(),
                stats.blocks_free(),
                stats.blocks_available(),
                stats.files(),
                stats.files_free(),
                stats.block_size() as u32,
                stats.name_max() as u32,
                stats.fragment_size() as u32,
            ),
            Err(error) => reply.error(errno(error)),
        }
    }
}
