//! Named network namespaces and running code inside them.
//!
//! `setns(2)` moves only the calling *thread*, so everything here runs on a
//! dedicated OS thread: a scoped thread for one-off work ([`in_netns`]) or a
//! long-lived [`NetnsThread`]. Never call these from code that then keeps
//! running on a shared tokio worker in the wrong namespace — they never setns
//! the caller's thread. Sockets keep the namespace they were created in, so a
//! socket made here can be used from any thread afterwards. Processes spawned
//! from such a thread inherit its namespace (no `pre_exec` needed).

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

/// Where named namespaces live (as `ip netns` expects).
pub const NETNS_DIR: &str = "/run/netns";

/// Path of a named namespace.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// True when `/run/netns/<name>` exists.
pub fn netns_exists(name: &str) -> bool {
    netns_path(name).exists()
}

fn nix_err(context: &str, e: nix::Error) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{context}: {e}"))
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so the
/// namespace bind mounts propagate to other mount namespaces.
pub(crate) fn ensure_netns_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let shared = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself first.
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| nix_err("bind-mount /run/netns", e))?;
            shared().map_err(|e| nix_err("make /run/netns shared", e))
        }
        Err(e) => Err(nix_err("make /run/netns shared", e)),
    }
}

/// Creates a named namespace without forking: a scratch thread unshares its
/// network namespace and bind-mounts it at `/run/netns/<name>`.
///
/// # Errors
/// `AlreadyExists` when the name is taken; mount/unshare failures.
pub fn create_netns(name: &str) -> io::Result<()> {
    ensure_netns_dir()?;
    let path = netns_path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let target = path.clone();
    let made = thread::scope(|scope| {
        scope
            .spawn(move || -> io::Result<()> {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| nix_err("unshare(CLONE_NEWNET)", e))?;
                // /proc/self would name the main thread's namespace; this thread moved.
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| nix_err("bind-mount the new namespace", e))
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Deletes a named namespace (detach the bind mount, remove the file).
/// Returns false when it did not exist. Processes still inside keep the
/// namespace alive: kill them first.
///
/// # Errors
/// Unexpected unmount/unlink failures.
pub fn delete_netns(name: &str) -> io::Result<bool> {
    let path = netns_path(name);
    if !path.exists() {
        return Ok(false);
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(nix_err(&format!("umount {}", path.display()), e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Names in `/run/netns` that start with `prefix`, sorted.
pub fn list_netns(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn enter(name: &str) -> io::Result<()> {
    let file = File::open(netns_path(name))
        .map_err(|e| io::Error::new(e.kind(), format!("open namespace {name}: {e}")))?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| nix_err(&format!("setns {name}"), e))
}

/// Runs `work` on a fresh thread that has entered namespace `name`, and
/// returns its result. The caller's thread never changes namespace.
///
/// # Errors
/// When the namespace cannot be entered, or `work` panics.
pub fn in_netns<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(name)?;
                Ok(work())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(io::Error::other(format!(
                    "work in namespace {name} panicked"
                )))
            })
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// A long-lived thread inside one namespace that runs submitted closures in
/// order. Cheap to call repeatedly (no thread creation per call). Dropping it
/// stops the thread after the queued jobs.
pub struct NetnsThread {
    netns: String,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl NetnsThread {
    /// Starts the thread and enters `netns`.
    ///
    /// # Errors
    /// When the namespace cannot be entered.
    pub fn start(netns: &str) -> io::Result<NetnsThread> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let name = netns.to_string();
        let thread = thread::Builder::new()
            .name(format!("netns-{netns}"))
            .spawn(move || {
                let entered = enter(&name);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for job in queue {
                        job();
                    }
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("namespace thread died"))??;
        Ok(NetnsThread {
            netns: netns.to_string(),
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// The namespace this thread lives in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Runs `work` on the namespace thread and waits for its result.
    ///
    /// # Errors
    /// When the thread has stopped or `work` panicked.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("namespace thread stopped"))?
            .send(job)
            .map_err(|_| io::Error::other("namespace thread stopped"))?;
        rx.recv()
            .map_err(|_| io::Error::other(format!("job in namespace {} panicked", self.netns)))
    }
}

impl Drop for NetnsThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Inode of a namespace file (to find which processes are inside).
pub fn netns_inode(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// PIDs whose network namespace is `name` (like `ip netns pids`).
pub fn pids_in_netns(name: &str) -> Vec<u32> {
    let Some(target) = netns_inode(&netns_path(name)) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    if let Ok(proc_dir) = std::fs::read_dir("/proc") {
        for entry in proc_dir.filter_map(Result::ok) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if netns_inode(&ns) == Some(target) {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids
}
