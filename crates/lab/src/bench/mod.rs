//! Benchmarks of real clusters in a netns mesh, splitnode next to etcd:
//! the reusable harness behind the root `benches/quorum_write.rs` and
//! `benches/failover.rs`, and `splitlab bench sweep`.
//!
//! - [`cluster`]: [`cluster::BenchLab`] (a netlab mesh as a drop guard), the
//!   two systems' command lines, status and write calls.
//! - [`load`]: client threads in the control namespace (sequential and
//!   concurrent write patterns).
//! - [`failover`]: one leader-isolation measurement.
//! - [`stats`], [`table`], [`svg`]: percentiles, side-by-side tables, plots (pure).
//! - [`sweep`]: `splitlab bench sweep`.
//! - [`netns`], [`http`]: threads inside namespaces, a keep-alive HTTP client.
//!
//! Every client socket is created on a thread that entered a lab namespace
//! (the control namespace), so no bench packet leaves from the host
//! namespace.

pub mod cluster;
pub mod failover;
pub mod http;
pub mod load;
pub mod netns;
pub mod stats;
pub mod svg;
pub mod sweep;
pub mod table;

use std::path::{Path, PathBuf};

/// Finds `splitnode`: `$SPLITNODE_BIN`, else next to `exe` or one directory
/// up (bench and test executables live in `target/<profile>/deps/`).
pub fn find_splitnode(exe: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPLITNODE_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("splitnode"))
        .find(|p| p.is_file())
}
