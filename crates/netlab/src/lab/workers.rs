//! NFQUEUE delay workers of a live lab: starting one per namespace that
//! needs delay, retiring replaced ones, alternating queue numbers so a new
//! worker binds its queues before the old one lets go, and watching the
//! serving ones (alive, heartbeat fresh, packet loop not stalled).

use super::Lab;
use crate::error::NetlabError;
use crate::journal::ProcessRecord;
use crate::nfqueue::{DELAY_WORKER_ARG, WorkerConfig, WorkerStats};
use crate::process;
use crate::render::{FIRST_QUEUE, NsConfig, SECOND_QUEUE};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A heartbeat older than this, or a packet loop silent this long while it
/// holds packets, means the worker stalled (ten missed heartbeats; the
/// longest sleep of a healthy loop is 200 µs).
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// A running delay worker; `child` is `None` when an earlier orchestrator
/// started it (it is then managed by PID).
pub(super) struct DelayWorker {
    pub(super) child: Option<Child>,
    pub(super) record: ProcessRecord,
    /// Its heartbeat file (none for workers of an earlier orchestrator).
    pub(super) stats: Option<PathBuf>,
    /// Its log (stderr).
    pub(super) log: PathBuf,
    pub(super) started: Instant,
}

/// A delay worker that stopped serving its queues: its packets are dropped
/// (fail-closed), so the delay fault it implements is not what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProblem {
    /// The node whose namespace it serves.
    pub node: String,
    /// Its pid.
    pub pid: u32,
    /// What is wrong ("exited: exit status: 1", "stalled: ...").
    pub what: String,
    /// Its log file (kept in [`Lab::log_dir`]).
    pub log: PathBuf,
    /// The log's last line, if any.
    pub last_log_line: Option<String>,
}

impl std::fmt::Display for WorkerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delay worker of {} (pid {}) {}; log {}",
            self.node,
            self.pid,
            self.what,
            self.log.display()
        )?;
        if let Some(line) = &self.last_log_line {
            write!(f, " (last line: {line})")?;
        }
        Ok(())
    }
}

fn read_stats(path: &std::path::Path) -> Option<WorkerStats> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a heartbeat says about a live worker, given the wall clock `now_ms`.
fn stall_of(stats: &WorkerStats, now_ms: u64) -> Option<String> {
    let age = now_ms.saturating_sub(stats.unix_ms);
    let limit = STALL_AFTER.as_millis() as u64;
    if age > limit {
        Some(format!("stalled: no heartbeat for {age} ms"))
    } else if stats.loop_silent_ms > limit {
        Some(format!(
            "stalled: holds {} packets, packet loop silent for {} ms",
            stats.held, stats.loop_silent_ms
        ))
    } else {
        None
    }
}

impl Lab {
    pub(super) fn start_worker(
        &mut self,
        node: &str,
        ns: &str,
        config: &NsConfig,
    ) -> Result<DelayWorker, NetlabError> {
        let first_queue = config.delay_queues.first().map_or(0, |q| q.num);
        let stats_path = self
            .log_dir()
            .join(format!("{node}.delay-q{first_queue}.stats"));
        // A stale file from an earlier worker on these queues must not pass
        // for this one's heartbeat.
        let _ = std::fs::remove_file(&stats_path);
        let worker_config = WorkerConfig {
            queues: config.delay_queues.clone(),
            stats: Some(stats_path.clone()),
        };
        let json = serde_json::to_string(&worker_config)
            .map_err(|e| NetlabError::io("encode worker config", io::Error::other(e)))?;
        let log_path = self.log_dir().join(format!("{node}.delay.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| NetlabError::io(format!("open {}", log_path.display()), e))?;
        let mut command = Command::new(&self.helper_exe);
        command
            .arg(DELAY_WORKER_ARG)
            .arg(json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = process::spawn_command_in(ns, command).map_err(|e| {
            NetlabError::io(
                format!("start delay worker {}", self.helper_exe.display()),
                e,
            )
        })?;
        let record = ProcessRecord::of(child.id(), "delay-worker", Some(node), Some(ns));
        self.journal.processes.push(record.clone());
        self.save()?;
        let mut line = String::new();
        let stdout = child.stdout.take();
        let ready = stdout
            .map(|out| BufReader::new(out).read_line(&mut line))
            .transpose()
            .map_err(|e| NetlabError::io("read delay worker", e))?;
        if ready.unwrap_or(0) == 0 || line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(NetlabError::io(
                format!("delay worker in {ns} did not start"),
                io::Error::other(log_text.lines().last().unwrap_or("no output").to_string()),
            ));
        }
        Ok(DelayWorker {
            child: Some(child),
            record,
            stats: Some(stats_path),
            log: log_path,
            started: Instant::now(),
        })
    }

    /// Every serving delay worker that exited or stalled (empty: all
    /// healthy). Call it while faults are in force: a dead worker drops the
    /// packets of its queues (fail-closed), so its delay fault is not
    /// achieved. Retiring workers (draining after a swap) are not checked.
    pub fn delay_worker_problems(&self) -> Vec<WorkerProblem> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut problems = Vec::new();
        for (node, worker) in &self.workers {
            // By /proc, not `try_wait`: callers hold the lab shared. An
            // unreaped child of ours is a zombie ('Z').
            let exited = match process::process_state(worker.record.pid) {
                None | Some('Z' | 'X') => Some("exited (see its log)".to_string()),
                Some(_) if !worker.record.is_alive() => Some("exited (pid reused)".to_string()),
                Some(_) => None,
            };
            let what = exited.or_else(|| {
                let path = worker.stats.as_ref()?;
                match read_stats(path) {
                    Some(stats) => stall_of(&stats, now_ms),
                    None if worker.started.elapsed() > STALL_AFTER => {
                        Some(format!("stalled: no heartbeat in {}", path.display()))
                    }
                    None => None,
                }
            });
            if let Some(what) = what {
                let last_log_line = std::fs::read_to_string(&worker.log)
                    .ok()
                    .and_then(|text| text.lines().last().map(str::to_string));
                problems.push(WorkerProblem {
                    node: node.clone(),
                    pid: worker.record.pid,
                    what,
                    log: worker.log.clone(),
                    last_log_line,
                });
            }
        }
        problems
    }

    /// The latest heartbeat of the delay worker serving `node`'s namespace
    /// (none: no worker, or no heartbeat yet). Its `late_us_total` over a
    /// window says how much the worker's own scheduling added to the delay
    /// it was asked for.
    pub fn delay_worker_stats(&self, node: &str) -> Option<WorkerStats> {
        read_stats(self.workers.get(node)?.stats.as_ref()?)
    }

    pub(super) fn reap_retiring(&mut self) {
        self.retiring.retain_mut(|worker| match &mut worker.child {
            Some(child) => !matches!(child.try_wait(), Ok(Some(_))),
            None => worker.record.is_alive(),
        });
    }
}

/// True when a namespace's delay queues (or the rules feeding them) change,
/// which needs a fresh worker.
pub(super) fn delay_changed(old: &NsConfig, new: &NsConfig) -> bool {
    old.delay_queues != new.delay_queues || old.iptables != new.iptables
}

/// The queue bases for the next apply: every namespace whose delay setup
/// changes (`applied` → `next`, both rendered with `bases`) moves to the other
/// queue range, so its new worker can bind while the old one still holds
/// the current queues.
pub(super) fn flipped_queue_bases(
    applied: &BTreeMap<String, NsConfig>,
    next: &BTreeMap<String, NsConfig>,
    bases: &BTreeMap<String, u16>,
) -> BTreeMap<String, u16> {
    let empty = NsConfig::default();
    let mut next_bases = bases.clone();
    for (node, config) in next {
        let old = applied.get(node).unwrap_or(&empty);
        if delay_changed(old, config) {
            let current = bases.get(node).copied().unwrap_or(FIRST_QUEUE);
            let flipped = if current == FIRST_QUEUE {
                SECOND_QUEUE
            } else {
                FIRST_QUEUE
            };
            next_bases.insert(node.clone(), flipped);
        }
    }
    next_bases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_tell_healthy_from_stalled() {
        let fresh = WorkerStats {
            unix_ms: 10_000,
            held: 3,
            loop_silent_ms: 1,
            ..WorkerStats::default()
        };
        assert_eq!(stall_of(&fresh, 10_400), None);
        let old = stall_of(&fresh, 12_500).unwrap();
        assert!(old.contains("no heartbeat for 2500 ms"), "{old}");
        let stuck = WorkerStats {
            loop_silent_ms: 4_000,
            ..fresh
        };
        let stuck = stall_of(&stuck, 10_050).unwrap();
        assert!(stuck.contains("holds 3 packets"), "{stuck}");
    }
}
