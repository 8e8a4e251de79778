//! Shared set-up of the cluster benches (`quorum_write`, `failover`): root
//! check, binaries, a scratch directory, and criterion's `--test` mode.
#![allow(dead_code)] // each bench uses a different subset

use bench::cluster::BenchLab;
use bench::system::{Binaries, find_etcd};
use client::find_splitnode;
use std::path::PathBuf;
use std::process::Command;

/// Everything a cluster bench needs.
pub struct Env {
    pub binaries: Binaries,
    /// Scratch directory for node data and logs (removed when `Env` drops,
    /// also when a bench panics).
    pub work_dir: PathBuf,
    /// `cargo bench -- --test`: run every bench once with tiny counts.
    pub test_mode: bool,
}

impl Env {
    /// Brings up a lab of `size` nodes in its own folder of the scratch
    /// directory; panics (failing the bench) when it cannot.
    pub fn lab(&self, size: usize) -> BenchLab {
        BenchLab::up(size, &self.work_dir.join(format!("mesh-{size}")), true)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The heading of the results table, marked under `--test` (where
    /// `test_note` says why the figures mean nothing).
    pub fn heading(&self, title: &str, test_note: &str) -> String {
        if self.test_mode {
            format!("{title} [--test: {test_note}]")
        } else {
            title.to_owned()
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

/// True when criterion runs in `--test` mode.
pub fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Makes sure `splitnode` is built (release), returning its path.
fn splitnode() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable path");
    if std::env::var_os("SPLITNODE_BIN").is_none() {
        // Under `cargo bench` the binary may be stale or missing: build it
        // (a no-op when fresh). Cargo does not hold the build lock while
        // bench executables run.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-q",
                "-p",
                "node",
                "--bin",
                "splitnode",
            ])
            .args(["--manifest-path", manifest])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "bench: `cargo build --release -p node` failed ({status:?}); looking for an existing splitnode"
            );
        }
    }
    find_splitnode(&exe).unwrap_or_else(|| {
        panic!(
            "splitnode not found next to {} (build it: cargo build --release -p node, or set SPLITNODE_BIN)",
            exe.display()
        )
    })
}

/// Checks root and finds the binaries. `None` (after saying why) when the
/// bench cannot run here; under `CI=true` that is a failure instead.
pub fn prepare(bench: &str) -> Option<Env> {
    if !nix::unistd::geteuid().is_root() {
        let why = format!("{bench}: needs root (it builds network namespaces); skipped");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("{why}");
        return None;
    }
    let etcd = find_etcd();
    match &etcd {
        Some(path) => eprintln!("{bench}: etcd baseline: {}", path.display()),
        None => eprintln!(
            "{bench}: etcd not found (install etcd-server: scripts/setup.sh); running the splitnode half only"
        ),
    }
    let binaries = Binaries {
        splitnode: splitnode(),
        etcd,
    };
    let work_dir =
        std::env::temp_dir().join(format!("splitlab-bench-{bench}-{}", std::process::id()));
    Some(Env {
        binaries,
        work_dir,
        test_mode: test_mode(),
    })
}
