//! What the lab's privileged test binaries (`netlab_privileged`, `container`)
//! share: where splitlab and the repository are, the skip-or-fail rule for a
//! machine that lacks root or tools, and running a host tool.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The tests of one binary share kernel state, so they run one at a time
/// (CI also passes `--test-threads=1`).
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock when `ready()` says this machine can run the test;
/// `None`: skip it.
pub(crate) fn serial_when(ready: impl FnOnce() -> bool) -> Option<MutexGuard<'static, ()>> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ready().then_some(serial)
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn splitlab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_splitlab"))
}

/// What this machine lacks of root and the lab's `tools`.
pub(crate) fn missing_root_and_tools(tools: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in tools {
        if netlab::tools::find_tool(tool).is_none() {
            missing.push(format!("{tool} (run scripts/setup.sh)"));
        }
    }
    missing
}

/// True when nothing is `missing`; otherwise false (skip, printing why), or
/// a panic under `CI=true` so that a CI machine that lost its privileges is
/// noticed.
pub(crate) fn ready_or_skip(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{test} needs: {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason} (CI=true: failing instead of skipping)");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

/// Standard output of a host tool (`args[0]`, found as netlab finds it).
pub(crate) fn host(args: &[&str]) -> String {
    let out = Command::new(netlab::tools::find_tool(args[0]).expect("tool"))
        .args(&args[1..])
        .output()
        .expect("run host tool");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
