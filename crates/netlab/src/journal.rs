//! The run journal: everything a run created, written to disk BEFORE the
//! kernel changes it describes, so `splitlab clean` can undo a crashed run by
//! record rather than by pattern.
//!
//! Location: `<state dir>/<run>/journal.json`, state dir `/run/splitlab` by
//! default (tmpfs: it vanishes at reboot exactly like the namespaces it
//! describes), overridable with `SPLITLAB_STATE_DIR`. Updates are atomic
//! (write to a temporary file, then rename). The delay workers' stderr goes to
//! `<state dir>/<run>/<node>.delay.log`.

use crate::caps::Capabilities;
use crate::fault::NetState;
use crate::naming::RunId;
use crate::plan::Plan;
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/run/splitlab";

/// The state directory: `$SPLITLAB_STATE_DIR` or [`DEFAULT_STATE_DIR`].
pub fn state_dir() -> PathBuf {
    std::env::var_os("SPLITLAB_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// A process identified robustly: PID plus its kernel start time, so a
/// recycled PID is never mistaken for ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// PID.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
    /// What it is: "orchestrator", "node", "aux", "delay-worker".
    pub role: String,
    /// Node it belongs to (none for the orchestrator / control processes).
    pub node: Option<String>,
    /// Namespace it runs in.
    pub netns: Option<String>,
}

/// `/proc/<pid>/stat` fields 3.. (state first) of a live process, `None` if
/// it is gone (or a zombie).
fn live_stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X") | None) {
        return None;
    }
    // Field 3 (the state) is consumed; fields 4.. are numbers. The signed
    // ones (priority, nice) read as 0: no caller uses them.
    Some(fields.map(|f| f.parse().unwrap_or(0)).collect())
}

/// Start time of a live process, `None` if it is gone (or a zombie).
pub fn process_start_time(pid: u32) -> Option<u64> {
    live_stat_fields(pid)?.get(22 - 4).copied()
}

/// CPU time a live process has used so far (user + system, fields 14 and
/// 15 of `/proc/<pid>/stat`, in clock ticks), `None` if it is gone.
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let fields = live_stat_fields(pid)?;
    Some(fields.get(14 - 4)? + fields.get(15 - 4)?)
}

impl ProcessRecord {
    /// Records a live process.
    pub fn of(pid: u32, role: &str, node: Option<&str>, netns: Option<&str>) -> ProcessRecord {
        ProcessRecord {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            role: role.to_string(),
            node: node.map(str::to_string),
            netns: netns.map(str::to_string),
        }
    }

    /// True while the very same process (PID and start time) is alive.
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|t| t == self.start_time)
    }
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Namespaces are being created.
    Applying,
    /// The lab is up.
    Ready,
    /// Teardown started.
    TearingDown,
}

/// Everything recorded about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// Run id.
    pub run: RunId,
    /// Lifecycle state.
    pub state: RunState,
    /// The process that owns the lab right now (updated by `Lab::attach`).
    pub owner: ProcessRecord,
    /// Milliseconds since the Unix epoch at creation.
    pub created_unix_ms: u64,
    /// The topology as validated.
    pub topology: Topology,
    /// The plan (namespaces, names, steps).
    pub plan: Plan,
    /// Probed backends.
    pub capabilities: Capabilities,
    /// Desired network conditions (base + active faults).
    pub net: NetState,
    /// Every process started in the lab (nodes, aux, delay workers).
    pub processes: Vec<ProcessRecord>,
    /// First NFQUEUE number in use per node namespace (alternates between two
    /// ranges so a new delay worker binds before the old one leaves).
    #[serde(default)]
    pub queue_bases: std::collections::BTreeMap<String, u16>,
    /// Data disks mounted for nodes (see [`crate::disk`]).
    #[serde(default)]
    pub disks: Vec<crate::disk::DiskRecord>,
}

/// A FUSE data disk (see [`crate::fusedisk`]), journaled in its own file
/// of the run directory (`fuse-<node>.json`) before its server starts, and
/// again with the server's PID once it runs: `splitlab clean` detaches the
/// mount and kills only that process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuseDiskRecord {
    /// The node whose data directory it covers.
    pub node: String,
    /// The mount point (the node's data directory, also the backing one).
    pub path: PathBuf,
    /// The mount source (`sl-<run>-fuse-<node>`).
    pub source: String,
    /// The server's control socket.
    pub socket: PathBuf,
    /// The server, once started.
    pub server: Option<ProcessRecord>,
}

impl FuseDiskRecord {
    fn file(run_dir: &Path, node: &str) -> PathBuf {
        run_dir.join(format!("fuse-{node}.json"))
    }

    /// Writes the record into `run_dir` atomically.
    ///
    /// # Errors
    /// File system failures.
    pub fn save(&self, run_dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(run_dir)?;
        let path = FuseDiskRecord::file(run_dir, &self.node);
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Every FUSE disk record of the run directory `run_dir` (unreadable
    /// ones are skipped: their mounts are still found by source name).
    pub fn list(run_dir: &Path) -> Vec<FuseDiskRecord> {
        let mut records: Vec<FuseDiskRecord> = std::fs::read_dir(run_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        name.starts_with("fuse-") && name.ends_with(".json")
                    })
                    .filter_map(|entry| std::fs::read(entry.path()).ok())
                    .filter_map(|text| serde_json::from_slice(&text).ok())
                    .collect()
            })
            .unwrap_or_default();
        records.sort_by(|a, b| a.node.cmp(&b.node));
        records
    }
}

impl Journal {
    /// Directory of a run.
    pub fn dir(state_dir: &Path, run: &RunId) -> PathBuf {
        state_dir.join(run.as_str())
    }

    /// Path of a run's journal.
    pub fn path(state_dir: &Path, run: &RunId) -> PathBuf {
        Journal::dir(state_dir, run).join("journal.json")
    }

    /// Writes atomically.
    ///
    /// # Errors
    /// File system failures.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        let dir = Journal::dir(state_dir, &self.run);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("journal.json.tmp{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, Journal::path(state_dir, &self.run))
    }

    /// Reads one run's journal.
    ///
    /// # Errors
    /// Missing or unreadable journal.
    pub fn load(state_dir: &Path, run: &RunId) -> io::Result<Journal> {
        let path = Journal::path(state_dir, run);
        let text = std::fs::read(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Every run with a journal directory, sorted.
    pub fn list(state_dir: &Path) -> Vec<RunId> {
        let mut runs: Vec<RunId> = std::fs::read_dir(state_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|name| name.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        runs.sort();
        runs
    }

    /// Removes a run's directory (journal and logs).
    ///
    /// # Errors
    /// File system failures other than "already gone".
    pub fn remove(state_dir: &Path, run: &RunId) -> io::Result<()> {
        match std::fs::remove_dir_all(Journal::dir(state_dir, run)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_a_start_time() {
        let me = ProcessRecord::of(std::process::id(), "test", None, None);
        assert!(me.start_time > 0);
        assert!(me.is_alive());
        let recycled = ProcessRecord {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.is_alive());
    }

    #[test]
    fn fuse_disk_records_round_trip_in_a_run_directory() {
        let dir = std::env::temp_dir().join(format!("sl-journal-fuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let record = FuseDiskRecord {
            node: "n2".into(),
            path: "/tmp/x/n2/data".into(),
            source: "sl-0001-fuse-n2".into(),
            socket: dir.join("fuse-n2.sock"),
            server: None,
        };
        record.save(&dir).unwrap();
        let started = FuseDiskRecord {
            server: Some(ProcessRecord::of(
                std::process::id(),
                "fuse-disk",
                Some("n2"),
                None,
            )),
            ..record
        };
        started.save(&dir).unwrap();
        std::fs::write(dir.join("journal.json"), "{}").unwrap();
        assert_eq!(FuseDiskRecord::list(&dir), vec![started]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(FuseDiskRecord::list(&dir).is_empty());
    }

    #[test]
    fn cpu_ticks_grow_with_work() {
        let me = std::process::id();
        let before = process_cpu_ticks(me).expect("own stat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let after = process_cpu_ticks(me).expect("own stat");
        // 100 ms of spinning is at least ~10 ticks at USER_HZ=100; allow slack.
        assert!(after >= before + 3, "ticks {before} -> {after}");
        assert_eq!(process_cpu_ticks(u32::MAX), None);
    }
}
