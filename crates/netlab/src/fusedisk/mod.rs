//! FUSE data disks for the fsync faults (`fsync-error`, `disk-slow`) on a
//! kernel without device-mapper: a lab-owned server process per node
//! (`splitlab __fuse-disk`, a hidden mode of the lab's own executable, like
//! the delay worker) mounts a passthrough of the node's data directory on
//! that very directory (source `sl-<run>-fuse-<node>`), and the lab switches
//! its fsync mode at run time over a unix socket in the run's state
//! directory: pass, fail with EIO, or delay.
//!
//! Lifecycle: the mount is journaled (`<state dir>/<run>/fuse-<node>.json`,
//! see [`crate::journal::FuseDiskRecord`]) before the server starts; the
//! server is an `aux` process of the lab (killed at teardown); teardown and
//! `splitlab clean` detach the mount ([`crate::disk::unmount_keeping_files`]
//! and [`crate::clean`]), and the files stay in the directory underneath.
//!
//! The lab mounts with mount(2) itself (root, `/dev/fuse`; fuser then
//! serves the descriptor): no libfuse, no fusermount.
pub mod control;
mod fs;

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, OwnedFd};

use fuser::{Config, Session, SessionACL};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use self::control::Window;
pub use self::control::{FsyncMode, FsyncStats, Request};
use self::fs::{Passthrough, SharedWindow, lock};
use crate::error::NetlabError;
use crate::journal::{FuseDiskRecord, ProcessRecord};
use crate::lab::{Lab, Target};
use crate::process::ProcessSpec;

/// First argument of the hidden FUSE server mode.
pub const FUSE_DISK_ARG: &str = "__fuse-disk";

/// How long the lab waits for a server to mount and answer.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Mounts the FUSE filesystem of `/dev/fuse` descriptor `device` over
/// `path` with mount(2) (root needs neither libfuse nor fusermount).
///
/// The lab does the mount rather than fuser's `Session::new`, whose
/// session end unmounts the mount point by path: with this mount already
/// detached that would take the node's tmpfs data disk underneath instead,
/// before its files are kept. Here nothing is unmounted on exit; teardown
/// and `splitlab clean` detach the mount by record.
fn mount_over(path: &Path, source: &str, device: &OwnedFd) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let root_mode = std::fs::metadata(path)?.permissions().mode();
    let options = format!(
        "fd={},rootmode={root_mode:o},user_id={},group_id={},default_permissions,allow_other",
        device.as_raw_fd(),
        nix::unistd::geteuid(),
        nix::unistd::getegid()
    );
    nix::mount::mount(
        Some(source),
        path,
        Some("fuse"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| io::Error::other(format!("mount FUSE at {}: {e}", path.display())))
}

/// Opens `path` as the backing root (before anything covers it), mounts
/// the passthrough of it over the same path and returns the session that
/// serves it.
fn session(path: &Path, source: &str, window: SharedWindow) -> io::Result<Session<Passthrough>> {
    let root = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::other(format!("open {}: {e}", path.display())))?;
    let filesystem = Passthrough::new(root, window)?;
    let device: OwnedFd = (std::fs::OpenOptions::new().read(true).write(true))
        .open("/dev/fuse")
        .map_err(|e| io::Error::new(e.kind(), format!("open /dev/fuse: {e}")))?
        .into();
    mount_over(path, source, &device)?;
    // Nodes may run as any user; the kernel checks permissions itself
    // (default_permissions).
    Session::from_fd(filesystem, device, SessionACL::All, Config::default())
}

/// Answers control requests on `listener` for as long as the process runs.
fn serve_control(listener: UnixListener, window: SharedWindow) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let window = window.clone();
        std::thread::spawn(move || {
            let Ok(mut writer) = stream.try_clone() else {
                return;
            };
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let answer = match Request::parse(&line) {
                    Ok(Request::Stats) => serde_json::to_string(&lock(&window).stats()),
                    Ok(Request::Set(mode)) => {
                        let mut window = lock(&window);
                        let closed = window.stats();
                        *window = Window::new(mode);
                        serde_json::to_string(&closed)
                    }
                    Err(why) => Ok(format!("error: {why}")),
                };
                let answer = answer.unwrap_or_else(|e| format!("error: {e}"));
                if writeln!(writer, "{answer}").is_err() {
                    return;
                }
            }
        });
    }
}

/// The hidden `__fuse-disk` mode: `--mountpoint DIR --source NAME --socket
/// PATH`. Mounts, then answers the socket until the mount goes away.
/// Returns the process exit code.
pub fn fuse_disk_main(args: &[String]) -> i32 {
    let value = |flag: &str| {
        (args.iter().position(|a| a == flag))
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(mountpoint), Some(source), Some(socket)) =
        (value("--mountpoint"), value("--source"), value("--socket"))
    else {
        eprintln!("usage: splitlab {FUSE_DISK_ARG} --mountpoint DIR --source NAME --socket PATH");
        return 64;
    };
    let socket = PathBuf::from(socket);
    let window: SharedWindow = Arc::new(Mutex::new(Window::new(FsyncMode::Pass)));
    let session = match session(Path::new(&mountpoint), &source, window.clone()) {
        Ok(session) => session,
        Err(error) => {
            eprintln!("fuse-disk: {error}");
            return 1;
        }
    };
    // The socket answers only once the mount is in place: an answer tells
    // the lab that the node's data directory is ours.
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("fuse-disk: bind {}: {error}", socket.display());
            return 1;
        }
    };
    std::thread::spawn(move || serve_control(listener, window));
    eprintln!("fuse-disk: serving {mountpoint} as {source}");
    let served = session.run();
    let _ = std::fs::remove_file(&socket);
    match served {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("fuse-disk: {error}");
            1
        }
    }
}

/// Sends one request to the server behind `socket`; returns its answer
/// (for a mode change: the window that it closed).
///
/// # Errors
/// Connection failures, a timeout, or an error answer.
pub fn request(socket: &Path, request: Request) -> io::Result<FsyncStats> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    writeln!(&stream, "{}", request.to_line())?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    if let Some(why) = line.strip_prefix("error: ") {
        return Err(io::Error::other(why.trim().to_string()));
    }
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The control socket of `node`'s FUSE disk in the run directory `run_dir`.
pub fn socket_path(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join(format!("fuse-{node}.sock"))
}

/// The mount source of `node`'s FUSE disk in a run with `prefix`
/// (`sl-<run>-`).
pub fn source_name(prefix: &str, node: &str) -> String {
    format!("{prefix}fuse-{node}")
}

/// Mounts a FUSE passthrough over `path`, `node`'s data directory, served
/// by a lab-owned `splitlab __fuse-disk` process; returns once the server
/// answers with the mount in place. Journaled before the server starts.
///
/// # Errors
/// Journal, spawn failures, or a server that did not come up (its log is
/// quoted).
pub fn mount_fuse_disk(
    lab: &mut Lab,
    node: &str,
    path: &Path,
) -> Result<FuseDiskRecord, NetlabError> {
    let run_dir = lab.run_dir();
    let mut record = FuseDiskRecord {
        node: node.to_string(),
        path: path.to_path_buf(),
        source: source_name(&lab.run_id().netns_prefix(), node),
        socket: socket_path(&run_dir, node),
        server: None,
    };
    record
        .save(&run_dir)
        .map_err(|e| NetlabError::io(format!("journal the FUSE disk of {node}"), e))?;
    let log = lab.log_dir().join(format!("fuse-{node}.log"));
    let mut spec = ProcessSpec::new(
        lab.helper_exe(),
        [
            FUSE_DISK_ARG.into(),
            "--mountpoint".into(),
            path.as_os_str().to_owned(),
            "--source".into(),
            record.source.clone().into(),
            "--socket".into(),
            record.socket.as_os_str().to_owned(),
        ],
    );
    spec.stdout = Some(log.clone());
    spec.stderr = Some(log.clone());
    let mut child = lab.spawn_aux(&Target::Control, &spec)?;
    record.server = Some(ProcessRecord::of(child.id(), "fuse-disk", Some(node), None));
    record
        .save(&run_dir)
        .map_err(|e| NetlabError::io(format!("journal the FUSE disk of {node}"), e))?;
    let deadline = Instant::now() + READY_WITHIN;
    let failure = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(format!("its server exited ({status})"));
        }
        if request(&record.socket, Request::Stats).is_ok()
            && crate::disk::is_fuse_mounted(path, &record.source)
        {
            break None;
        }
        if Instant::now() > deadline {
            break Some(format!(
                "its server did not answer within {}s",
                READY_WITHIN.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Reap the server whenever it exits (teardown kills it by record).
    std::thread::spawn(move || child.wait());
    match failure {
        None => Ok(record),
        Some(why) => {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log_text.lines().rev().take(5).collect();
            Err(NetlabError::io(
                format!("FUSE data disk of {node} at {}", path.display()),
                io::Error::other(format!(
                    "{why}; {}: {}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )),
            ))
        }
    }
}

/// Whether `node` has a FUSE data disk in this lab.
pub fn has_fuse_disk(lab: &Lab, node: &str) -> bool {
    socket_path(&lab.run_dir(), node).exists()
}

/// Sets the fsync mode of `node`'s FUSE disk; returns the fsyncs of the
/// window the change closed.
///
/// # Errors
/// No FUSE disk for the node, or its server did not answer.
pub fn set_fsync_mode(lab: &Lab, node: &str, mode: FsyncMode) -> Result<FsyncStats, NetlabError> {
    let socket = socket_path(&lab.run_dir(), node);
    if !socket.exists() {
        return Err(NetlabError::InvalidFault(format!(
            "node {node} has no FUSE data disk (mounted before the nodes start when the \
             scenario has an fsync-error or disk-slow step)"
        )));
    }
    request(&socket, Request::Set(mode)).map_err(|e| {
        NetlabError::io(
            format!("set fsync mode {} on the FUSE disk of {node}", mode.name()),
            e,
        )
    })
}

/// `splitlab doctor`'s probe: mounts the passthrough (in this process) on
/// a scratch directory of the state directory, writes and reads a file,
/// checks that fsync fails with EIO in the error mode and waits in the slow
/// mode, and unmounts. `Ok` says what it measured, `Err` why it failed.
pub fn probe(state_dir: &Path, prefix: &str) -> Result<String, String> {
    let dir = state_dir.join(format!("{prefix}fuse-probe"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let result = probe_in(&dir, &source_name(prefix, "probe"));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn probe_in(dir: &Path, source: &str) -> Result<String, String> {
    let window: SharedWindow = Arc::new(Mutex::new(Window::new(FsyncMode::Pass)));
    let mounted = session(dir, source, window.clone())
        .and_then(Session::spawn)
        .map_err(|e| format!("{e}: needs root, /dev/fuse and the fuse filesystem"))?;
    let checked = (|| -> Result<String, String> {
        let file_path = dir.join("probe");
        let mut file = std::fs::File::create(&file_path).map_err(|e| format!("create: {e}"))?;
        file.write_all(b"sl").map_err(|e| format!("write: {e}"))?;
        file.sync_all()
            .map_err(|e| format!("fsync in pass mode: {e}"))?;
        if std::fs::read(&file_path).map_err(|e| format!("read: {e}"))? != b"sl" {
            return Err("reading back through the mount gave other bytes".into());
        }
        *lock(&window) = Window::new(FsyncMode::Error);
        match file.sync_all() {
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {}
            other => return Err(format!("fsync in error mode gave {other:?}, not EIO")),
        }
        let delay = Duration::from_millis(20);
        *lock(&window) = Window::new(FsyncMode::Slow(delay));
        let started = Instant::now();
        file.sync_all()
            .map_err(|e| format!("fsync in slow mode: {e}"))?;
        let took = started.elapsed();
        if took < delay {
            return Err(format!("a slow fsync took {took:?}, less than {delay:?}"));
        }
        Ok(format!(
            "FUSE passthrough (fuser, no libfuse): probe mount passed write/read, fsync failed \
             with EIO in error mode, took {:.1} ms in 20 ms slow mode",
            took.as_secs_f64() * 1000.0
        ))
    })();
    // The session ends once the mount is gone.
    let detached = crate::disk::detach_fuse(dir, Some(source));
    let _ = mounted.join();
    detached.map_err(|e| format!("detaching the probe mount: {e}"))?;
    checked
}
