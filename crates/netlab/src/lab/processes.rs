//! The processes of a live lab: each node's main process (which process
//! faults act on), auxiliary processes, and waiting for them to go.

use super::{Lab, Target};
use crate::error::NetlabError;
use crate::journal::ProcessRecord;
use crate::process::{self, ProcessSignal, ProcessSpec};
use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A node's main process; `child` is `None` when an earlier orchestrator
/// started it (it is then managed by PID).
pub(super) struct MainProcess {
    pub(super) spec: ProcessSpec,
    pub(super) child: Option<Child>,
    pub(super) record: ProcessRecord,
}

impl Lab {
    /// Starts the main process of `node` (e.g. `splitnode`) in its namespace
    /// and records it. Process faults (`kill`, `stop`, `cont`, `restart`) act
    /// on it.
    ///
    /// # Errors
    /// Unknown node, a main process already running, or spawn failure.
    pub fn spawn(&mut self, node: &str, spec: ProcessSpec) -> Result<u32, NetlabError> {
        let ns = self.netns_of(&Target::Node(node.to_string()))?;
        if let Some(main) = self.mains.get_mut(node) {
            let running = match &mut main.child {
                Some(child) => matches!(child.try_wait(), Ok(None)),
                None => main.record.is_alive(),
            };
            if running {
                return Err(NetlabError::io(
                    format!("spawn on {node}"),
                    io::Error::new(io::ErrorKind::AlreadyExists, "a main process is running"),
                ));
            }
        }
        let child = process::spawn_in(&ns, &spec).map_err(|e| NetlabError::io("spawn", e))?;
        let record = ProcessRecord::of(child.id(), "node", Some(node), Some(&ns));
        let pid = child.id();
        self.journal.processes.push(record.clone());
        self.mains.insert(
            node.to_string(),
            MainProcess {
                spec,
                child: Some(child),
                record,
            },
        );
        self.save()?;
        Ok(pid)
    }

    /// Starts an extra process (e.g. a client) in `target`'s namespace. The
    /// caller owns the `Child`; the PID is journaled so teardown and
    /// `splitlab clean` stop it too.
    ///
    /// # Errors
    /// Unknown target or spawn failure.
    pub fn spawn_aux(&mut self, target: &Target, spec: &ProcessSpec) -> Result<Child, NetlabError> {
        let ns = self.netns_of(target)?;
        let child = process::spawn_in(&ns, spec).map_err(|e| NetlabError::io("spawn", e))?;
        let node = match target {
            Target::Node(n) => Some(n.as_str()),
            Target::Control => None,
        };
        self.journal
            .processes
            .push(ProcessRecord::of(child.id(), "aux", node, Some(&ns)));
        self.save()?;
        Ok(child)
    }

    /// PID of a node's main process, if it is running.
    pub fn pid(&mut self, node: &str) -> Option<u32> {
        let main = self.mains.get_mut(node)?;
        match &mut main.child {
            Some(child) => matches!(child.try_wait(), Ok(None)).then(|| child.id()),
            None => main.record.is_alive().then_some(main.record.pid),
        }
    }

    /// Exit status of a node's main process once it has exited (our children only).
    ///
    /// # Errors
    /// No process for the node.
    pub fn try_wait(&mut self, node: &str) -> Result<Option<ExitStatus>, NetlabError> {
        let main = self
            .mains
            .get_mut(node)
            .ok_or_else(|| NetlabError::NoProcess(node.into()))?;
        match &mut main.child {
            Some(child) => child.try_wait().map_err(|e| NetlabError::io("wait", e)),
            None => Ok(None),
        }
    }

    /// Sends a signal to a node's main process.
    ///
    /// # Errors
    /// No process for the node.
    pub fn signal(&mut self, node: &str, signal: ProcessSignal) -> Result<(), NetlabError> {
        let main = self
            .mains
            .get_mut(node)
            .ok_or_else(|| NetlabError::NoProcess(node.into()))?;
        let alive = match &mut main.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => main.record.is_alive(),
        };
        if alive {
            process::signal_pid(main.record.pid, signal)
                .map_err(|e| NetlabError::io(format!("signal {node}"), e))?;
        }
        if signal == ProcessSignal::Kill
            && let Some(child) = &mut main.child
        {
            let _ = child.wait();
        }
        Ok(())
    }

    /// Kills (if running) and starts a node's main process again with the
    /// same spec (its data directory is the caller's business).
    ///
    /// # Errors
    /// No process for the node, or spawn failure.
    pub fn restart(&mut self, node: &str) -> Result<u32, NetlabError> {
        let spec = {
            let main = self
                .mains
                .get_mut(node)
                .ok_or_else(|| NetlabError::NoProcess(node.into()))?;
            if main.spec.program.as_os_str().is_empty() {
                return Err(NetlabError::NoProcess(format!(
                    "{node} (started by an earlier orchestrator; its spec is unknown)"
                )));
            }
            main.spec.clone()
        };
        self.signal(node, ProcessSignal::Cont)?;
        self.signal(node, ProcessSignal::Kill)?;
        self.mains.remove(node);
        self.spawn(node, spec)
    }
}

/// Waits until a process is gone (reaping our own children).
pub(super) fn wait_gone(child: &mut Option<Child>, record: &ProcessRecord, deadline: Instant) {
    loop {
        let gone = match child {
            Some(c) => matches!(c.try_wait(), Ok(Some(_)) | Err(_)),
            None => !record.is_alive(),
        };
        if gone || Instant::now() >= deadline {
            if !gone {
                let _ = process::signal_pid(record.pid, ProcessSignal::Kill);
                if let Some(c) = child {
                    let _ = c.wait();
                }
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
