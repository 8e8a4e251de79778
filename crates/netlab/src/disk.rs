//! Data disks for disk faults: a size-limited tmpfs per node, mounted by the
//! lab (source name `sl-<run>-disk-<node>`, journaled before the mount),
//! filled with a filler file for `disk-full` and emptied again; and what
//! this kernel offers for block-level faults (`splitlab doctor`).
//!
//! tmpfs rather than a loop-mounted image: no loop device or mkfs, a write
//! past the limit fails with ENOSPC at once, and the mount is the only
//! kernel object to clean up.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

/// The filler file `disk-full` writes into a data disk.
pub const FILLER: &str = "sl-filler";

/// One mounted data disk, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    /// The node whose data directory it holds.
    pub node: String,
    /// The mount point.
    pub path: PathBuf,
    /// The mount source (`sl-<run>-disk-<node>`): how `clean` recognises it.
    pub source: String,
    /// The size limit.
    pub size_bytes: u64,
}

/// What filling a disk achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillReport {
    /// Bytes the filler took.
    pub filler_bytes: u64,
    /// Bytes still free to an unprivileged writer afterwards (0 = full).
    pub free_bytes: u64,
}

/// Mounts a tmpfs of `size_bytes` at `record.path` (created if missing).
///
/// # Errors
/// mkdir or mount(2) failures.
pub fn mount(record: &DiskRecord) -> io::Result<()> {
    fs::create_dir_all(&record.path)?;
    let options = format!("size={},mode=0755", record.size_bytes);
    nix::mount::mount(
        Some(record.source.as_str()),
        &record.path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|errno| io::Error::other(format!("mount tmpfs at {}: {errno}", record.path.display())))
}

/// Bytes free at `path` (`f_bavail * f_frsize`).
///
/// # Errors
/// statvfs(2) failures.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let stats = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(stats.blocks_available() * stats.fragment_size())
}

/// Writes the filler into the disk at `path` until the filesystem refuses
/// with ENOSPC; returns what it took and what is left (0 when full).
///
/// # Errors
/// Any failure other than ENOSPC.
pub fn fill(path: &Path) -> io::Result<FillReport> {
    let mut filler = File::create(path.join(FILLER))?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) if error.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(FillReport {
        filler_bytes: written,
        free_bytes: free_bytes(path)?,
    })
}

/// Removes the filler; returns the bytes free afterwards.
///
/// # Errors
/// unlink(2) failures other than "not there".
pub fn unfill(path: &Path) -> io::Result<u64> {
    match fs::remove_file(path.join(FILLER)) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    free_bytes(path)
}

/// Whether `path` is a mount point whose source is `source` (per
/// `/proc/self/mounts`).
pub fn is_mounted(path: &Path, source: &str) -> bool {
    mounts().iter().any(|(src, at)| src == source && at == path)
}

/// `(source, mount point)` of every tmpfs mounted with a lab source name.
pub fn lab_mounts() -> Vec<(String, PathBuf)> {
    mounts()
        .into_iter()
        .filter(|(source, _)| {
            source.starts_with(crate::naming::NETNS_PREFIX) && source.contains("-disk-")
        })
        .collect()
}

fn mounts() -> Vec<(String, PathBuf)> {
    let text = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let source = fields.next()?;
            let at = fields.next()?;
            (fields.next() == Some("tmpfs")).then(|| (source.to_string(), unescape(at).into()))
        })
        .collect()
}

/// `/proc/self/mounts` writes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(byte) => out.push(char::from(byte)),
                Err(_) => out.push_str(&code),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Unmounts the disk at `path`, keeping its files: the filler is dropped,
/// everything else is copied to the directory underneath the mount, so a
/// run's data directory outlives its disk. A busy mount is detached.
///
/// # Errors
/// Copy or umount(2) failures (a path that is not mounted is not one).
pub fn unmount_keeping_files(path: &Path, source: &str) -> io::Result<()> {
    if !is_mounted(path, source) {
        return Ok(());
    }
    let _ = unfill(path);
    let keep = path.with_file_name(format!(
        "{}.sl-keep",
        path.file_name()
            .map_or("disk".into(), |n| n.to_string_lossy())
    ));
    let _ = fs::remove_dir_all(&keep);
    copy_flat(path, &keep)?;
    if nix::mount::umount(path).is_err() {
        nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    }
    copy_flat(&keep, path)?;
    fs::remove_dir_all(&keep)
}

/// Copies the regular files and symlinks of `from` into `to` (a data
/// directory is flat).
fn copy_flat(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            let _ = fs::remove_file(&target);
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `splitlab doctor`'s disk-full probe: mounts a 1 MiB tmpfs (source
/// `<prefix>disk-probe`) in the state directory, fills it and unmounts it.
/// `Ok` says what it measured, `Err` why it failed.
pub fn probe_disk_full(state_dir: &Path, prefix: &str) -> Result<String, String> {
    let record = DiskRecord {
        node: "probe".into(),
        path: state_dir.join(format!("{prefix}disk-probe")),
        source: format!("{prefix}disk-probe"),
        size_bytes: 1 << 20,
    };
    mount(&record).map_err(|e| format!("{e}: needs root (CAP_SYS_ADMIN) and tmpfs"))?;
    let filled = fill(&record.path);
    let unmounted = nix::mount::umount(&record.path);
    let _ = fs::remove_dir_all(&record.path);
    let filled = filled.map_err(|e| format!("filling a 1 MiB tmpfs: {e}"))?;
    unmounted.map_err(|e| format!("unmounting the probe tmpfs: {e}"))?;
    if filled.free_bytes > 0 {
        return Err(format!(
            "a filled tmpfs still reports {} bytes free",
            filled.free_bytes
        ));
    }
    Ok(format!(
        "size-limited tmpfs per node: a 1 MiB probe took {} KiB and then reported ENOSPC, 0 bytes free",
        filled.filler_bytes >> 10
    ))
}

/// Block-level disk faults (failing or slow fsync) need device-mapper
/// (dm-flakey, dm-delay, dm-error) under a loop device. Why this machine
/// cannot do them, worded to follow "this machine lacks" (`splitlab doctor`
/// and the refusal of an `fsync-error` or `disk-slow` step); `None` would
/// mean it can, which no backend here offers yet.
pub fn block_faults_unavailable() -> Option<String> {
    let devices = fs::read_to_string("/proc/devices").unwrap_or_default();
    let has_dm = devices
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some("device-mapper"));
    if has_dm {
        return Some(
            "a dm-flakey/dm-delay backend in this lab (the kernel has device-mapper, but the lab \
             does not drive it yet)"
                .into(),
        );
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let modules = Path::new("/lib/modules").join(&release);
    let loadable = if modules.is_dir() {
        format!("{} holds no dm module to load", modules.display())
    } else {
        format!("there is no {} to load dm modules from", modules.display())
    };
    let fuse = if Path::new("/dev/fuse").exists() {
        " (/dev/fuse exists, but the lab has no FUSE backend that could fail fsync instead)"
    } else {
        ""
    };
    Some(format!(
        "device-mapper (dm-flakey, dm-delay, dm-error): kernel {release} has no \"device-mapper\" \
         in /proc/devices and {loadable}; failing or slow fsync needs a kernel with \
         CONFIG_BLK_DEV_DM, CONFIG_DM_FLAKEY and CONFIG_DM_DELAY{fuse}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_are_unescaped() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn a_missing_filler_is_not_an_error() {
        let dir = std::env::temp_dir().join(format!("sl-disk-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(unfill(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
