//! Data disks for disk faults: a size-limited tmpfs per node, mounted by the
//! lab (source name `sl-<run>-disk-<node>`, journaled before the mount),
//! filled with a filler file for `disk-full` and emptied again; the mount
//! table as far as lab disks go (the FUSE disks of [`crate::fusedisk`] sit
//! on top of the tmpfs disks and come off first); and what this kernel
//! offers for the fsync faults (`splitlab doctor`).
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
    mounts().iter().any(|m| m.source == source && m.at == path)
}

/// Whether `path` carries a FUSE mount whose source is `source`.
pub fn is_fuse_mounted(path: &Path, source: &str) -> bool {
    (mounts().iter()).any(|m| m.source == source && m.at == path && m.is_fuse())
}

/// `(source, mount point)` of every data disk mounted with a lab source
/// name: the tmpfs disks (`sl-<run>-disk-<node>`) and the FUSE disks over
/// them (`sl-<run>-fuse-<node>`).
pub fn lab_mounts() -> Vec<(String, PathBuf)> {
    mounts()
        .into_iter()
        .filter(|m| {
            m.source.starts_with(crate::naming::NETNS_PREFIX)
                && ((m.fstype == "tmpfs" && m.source.contains("-disk-"))
                    || (m.is_fuse() && is_fuse_source(&m.source)))
        })
        .map(|m| (m.source, m.at))
        .collect()
}

fn is_fuse_source(source: &str) -> bool {
    source.starts_with(crate::naming::NETNS_PREFIX) && source.contains("-fuse-")
}

struct Mount {
    source: String,
    at: PathBuf,
    fstype: String,
}

impl Mount {
    fn is_fuse(&self) -> bool {
        self.fstype == "fuse" || self.fstype.starts_with("fuse.")
    }
}

fn mounts() -> Vec<Mount> {
    let text = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            Some(Mount {
                source: unescape(fields.next()?),
                at: unescape(fields.next()?).into(),
                fstype: fields.next()?.to_string(),
            })
        })
        .collect()
}

/// Detaches every lab FUSE mount at `path` (the topmost first), whether
/// or not its server still runs; the files stay in the directory
/// underneath. `source`: only that one.
///
/// # Errors
/// umount2(2) failures.
pub fn detach_fuse(path: &Path, source: Option<&str>) -> io::Result<()> {
    let on_path = || {
        (mounts().into_iter()).any(|m| {
            m.at == path
                && m.is_fuse()
                && is_fuse_source(&m.source)
                && source.is_none_or(|s| s == m.source)
        })
    };
    // Stacked mounts come off one at a time, the topmost first; a bound
    // guards against a foreign mount that keeps the lab's one covered.
    for _ in 0..8 {
        if !on_path() {
            return Ok(());
        }
        nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    }
    Ok(())
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
    // A FUSE disk over the tmpfs passes through to it: it comes off first,
    // and its files are the tmpfs's own.
    detach_fuse(path, None)?;
    if is_fuse_source(source) || !is_mounted(path, source) {
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

/// Failing or slow fsync (`fsync-error`, `disk-slow`) are served by the
/// FUSE data disk ([`crate::fusedisk`]), which needs `/dev/fuse` and the
/// `fuse` filesystem. Why this machine cannot serve them, worded to follow
/// "this machine lacks" (`splitlab doctor` and the refusal of such a step);
/// `None` when it can.
pub fn block_faults_unavailable() -> Option<String> {
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let has_fuse_fs = filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("fuse"));
    let has_device = Path::new("/dev/fuse").exists();
    let missing: Vec<&str> = [
        (!has_device).then_some("/dev/fuse"),
        (!has_fuse_fs).then_some("the \"fuse\" filesystem in /proc/filesystems"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "{} (the FUSE data disk that fails or delays fsync needs CONFIG_FUSE_FS: \
         `modprobe fuse`, or a container started with --device /dev/fuse)",
        missing.join(" and ")
    ))
}

/// Whether the kernel has device-mapper (`splitlab doctor` says so; the
/// lab does not use it: the FUSE data disk serves the fsync faults).
pub fn has_device_mapper() -> bool {
    let devices = fs::read_to_string("/proc/devices").unwrap_or_default();
    devices
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some("device-mapper"))
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
