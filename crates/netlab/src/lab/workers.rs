//! NFQUEUE delay workers of a live lab: starting one per namespace that
//! needs delay, retiring replaced ones, and alternating queue numbers so a new
//! worker binds its queues before the old one lets go.

use super::Lab;
use crate::error::NetlabError;
use crate::journal::ProcessRecord;
use crate::nfqueue::{DELAY_WORKER_ARG, WorkerConfig};
use crate::process;
use crate::render::{FIRST_QUEUE, NsConfig, SECOND_QUEUE};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running delay worker; `child` is `None` when an earlier orchestrator
/// started it (it is then managed by PID).
pub(super) struct DelayWorker {
    pub(super) child: Option<Child>,
    pub(super) record: ProcessRecord,
}

impl Lab {
    pub(super) fn start_worker(
        &mut self,
        node: &str,
        ns: &str,
        config: &NsConfig,
    ) -> Result<DelayWorker, NetlabError> {
        let worker_config = WorkerConfig {
            queues: config.delay_queues.clone(),
        };
        let json = serde_json::to_string(&worker_config)
            .map_err(|e| NetlabError::io("encode worker config", io::Error::other(e)))?;
        let log_path = self.run_dir().join(format!("{node}.delay.log"));
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
        })
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
