//! Client threads inside a lab namespace.
//!
//! `setns(2)` moves only the calling thread, and threads inherit the
//! namespace of the thread that creates them. Bench clients are therefore
//! plain `std` threads that enter the namespace first thing and then open
//! all their sockets; no tokio worker ever calls `setns`, and no packet to a
//! lab address leaves from the host namespace.

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::thread::{self, JoinHandle};

/// Spawns a named thread that enters namespace `netns` and then runs `work`.
///
/// # Errors
/// Thread creation failure. Failing to enter the namespace is reported by the
/// joined result, and `work` does not run.
pub fn spawn_in_netns<T: Send + 'static>(
    netns: &str,
    name: String,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<io::Result<T>>> {
    let path = netlab::netns::netns_path(netns);
    let netns = netns.to_string();
    thread::Builder::new().name(name).spawn(move || {
        let file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("open namespace {netns}: {e}")))?;
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| io::Error::other(format!("setns {netns}: {e}")))?;
        Ok(work())
    })
}

/// Runs `work` on a fresh thread inside `netns` and waits for it.
///
/// # Errors
/// Namespace entry failure or a panic in `work`.
pub fn run_in_netns<T: Send + 'static>(
    netns: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    spawn_in_netns(netns, "bench-ns".into(), work)?
        .join()
        .map_err(|_| io::Error::other(format!("work in namespace {netns} panicked")))?
}
