//! Crash cleanup (`splitlab clean`) and run inspection (`splitlab status`).
//! Cleanup is by record and by prefix, never by pattern over processes:
//! only PIDs recorded in a journal (with matching start time) are killed, and
//! only `sl-<run>-*` namespaces are deleted; FUSE data disks are detached
//! and only their recorded server is killed. Idempotent: a second run finds
//! nothing and succeeds.

use crate::journal::{FuseDiskRecord, Journal, ProcessRecord};
use crate::naming::{NETNS_PREFIX, RunId, run_of_netns};
use crate::netns;
use crate::process::{ProcessSignal, signal_pid};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// What `clean` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanReport {
    /// Runs whose journal was processed and removed.
    pub runs: Vec<RunId>,
    /// Runs skipped because their owner process is alive (use `force`).
    pub skipped_live: Vec<RunId>,
    /// PIDs killed (all recorded).
    pub killed: Vec<u32>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Processes found inside lab namespaces that no journal recorded: not
    /// killed (they keep their namespace alive until they exit); a journal-less
    /// namespace with processes inside is left in place.
    pub unrecorded: Vec<(String, u32)>,
    /// Data disks (tmpfs mounts `sl-<run>-disk-<node>`, and FUSE mounts
    /// `sl-<run>-fuse-<node>` over them) unmounted, files kept.
    pub disks: Vec<std::path::PathBuf>,
}

/// Removes what crashed (or detached) runs left. With `only`, just that run.
/// Runs whose owner is alive are skipped unless `force`.
///
/// # Errors
/// Namespace deletion failures.
pub fn clean(state_dir: &Path, only: Option<&RunId>, force: bool) -> std::io::Result<CleanReport> {
    let mut report = CleanReport::default();
    let me = std::process::id();
    let mut handled: BTreeSet<RunId> = BTreeSet::new();
    let runs: Vec<RunId> = match only {
        Some(run) => vec![run.clone()],
        None => Journal::list(state_dir),
    };
    for run in runs {
        let Ok(journal) = Journal::load(state_dir, &run) else {
            // No readable journal: drop the debris; its namespaces (if any)
            // go through the prefix rules below.
            Journal::remove(state_dir, &run)?;
            continue;
        };
        let owner_alive = journal.owner.pid != me && journal.owner.is_alive();
        if owner_alive && !force {
            report.skipped_live.push(run.clone());
            handled.insert(run.clone());
            continue;
        }
        kill_recorded(&journal.processes, &mut report.killed);
        for record in FuseDiskRecord::list(&Journal::dir(state_dir, &run)) {
            let server = record.server.iter().cloned().collect::<Vec<_>>();
            kill_recorded(&server, &mut report.killed);
            crate::disk::detach_fuse(&record.path, Some(&record.source))?;
            report.disks.push(record.path.clone());
        }
        for record in &journal.disks {
            crate::disk::unmount_keeping_files(&record.path, &record.source)?;
            report.disks.push(record.path.clone());
        }
        let mut names = journal.plan.namespaces.clone();
        for extra in netns::list_netns(&run.netns_prefix()) {
            if !names.contains(&extra) {
                names.push(extra);
            }
        }
        delete_namespaces(&names, &mut report)?;
        Journal::remove(state_dir, &run)?;
        handled.insert(run.clone());
        report.runs.push(run);
    }
    // Namespaces without a journal here (a removed state dir, or a doctor
    // probe that died): delete by prefix, kill nothing. One with processes
    // inside belongs to a live lab journaled elsewhere (another state dir):
    // leave it and report it.
    for name in netns::list_netns(NETNS_PREFIX) {
        let Some(run) = run_of_netns(&name) else {
            continue;
        };
        if handled.contains(&run) || only.is_some_and(|o| *o != run) {
            continue;
        }
        let inside = netns::pids_in_netns(&name);
        if inside.is_empty() {
            delete_namespaces(&[name], &mut report)?;
        } else {
            report
                .unrecorded
                .extend(inside.into_iter().map(|pid| (name.clone(), pid)));
        }
    }
    // Data disks of runs without a journal here: unmount those whose run
    // has no live process in its namespaces (as for namespaces above).
    for (source, path) in crate::disk::lab_mounts() {
        let Some(run) = run_of_netns(&source) else {
            continue;
        };
        if handled.contains(&run) || only.is_some_and(|o| *o != run) {
            continue;
        }
        let busy = (netns::list_netns(&run.netns_prefix()).iter())
            .any(|name| !netns::pids_in_netns(name).is_empty());
        if !busy {
            crate::disk::unmount_keeping_files(&path, &source)?;
            report.disks.push(path);
        }
    }
    Ok(report)
}

fn kill_recorded(records: &[ProcessRecord], killed: &mut Vec<u32>) {
    let alive: Vec<&ProcessRecord> = records.iter().filter(|r| r.is_alive()).collect();
    for record in &alive {
        let _ = signal_pid(record.pid, ProcessSignal::Kill);
        killed.push(record.pid);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive.iter().any(|r| r.is_alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn delete_namespaces(names: &[String], report: &mut CleanReport) -> std::io::Result<()> {
    for name in names {
        for pid in netns::pids_in_netns(name) {
            report.unrecorded.push((name.clone(), pid));
        }
        if netns::delete_netns(name)? {
            report.namespaces.push(name.clone());
        }
    }
    Ok(())
}

/// One run as seen by `splitlab status`.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// Run id.
    pub run: RunId,
    /// The journal (if readable).
    pub journal: Option<Journal>,
    /// Is the recorded owner alive?
    pub owner_alive: bool,
    /// Namespaces of the run that exist.
    pub namespaces: Vec<String>,
    /// Recorded processes still alive.
    pub live_processes: Vec<ProcessRecord>,
}

/// Every run known by journal or by namespace prefix.
pub fn inspect(state_dir: &Path) -> Vec<RunStatus> {
    let mut runs: BTreeSet<RunId> = Journal::list(state_dir).into_iter().collect();
    for name in netns::list_netns(NETNS_PREFIX) {
        if let Some(run) = run_of_netns(&name) {
            runs.insert(run);
        }
    }
    runs.into_iter()
        .map(|run| {
            let journal = Journal::load(state_dir, &run).ok();
            let owner_alive = journal.as_ref().is_some_and(|j| j.owner.is_alive());
            let live_processes = journal
                .as_ref()
                .map(|j| {
                    j.processes
                        .iter()
                        .filter(|p| p.is_alive())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            RunStatus {
                namespaces: netns::list_netns(&run.netns_prefix()),
                run,
                journal,
                owner_alive,
                live_processes,
            }
        })
        .collect()
}
