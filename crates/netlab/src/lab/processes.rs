//! The processes of a live lab: each node's main process (which process
//! faults act on), auxiliary processes, and waiting for them to go.

use super::{Lab, Target};
use crate::error::NetlabError;
use crate::journal::ProcessRecord;
use crate::process::{self, ProcessSignal, ProcessSpec};
use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How long a signalled process may take to reach the asked state (a
/// SIGSTOP lands within microseconds on an idle machine; this bounds a
/// loaded one).
pub const SIGNAL_SETTLE: Duration = Duration::from_millis(500);

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

    /// Sends a signal to a node's main process and checks that it took
    /// effect: `Stop` leaves the process stopped (`T` in `/proc/<pid>/stat`),
    /// `Cont` leaves it running, `Kill` reaps it.
    ///
    /// # Errors
    /// No process for the node; [`NetlabError::SignalNotApplied`] when the
    /// process has already exited (killing, stopping or terminating a dead
    /// process would otherwise pass as a fault that never happened) or did
    /// not reach the asked state within [`SIGNAL_SETTLE`]. `Cont` on an
    /// exited process is not an error: there is nothing left to resume (a
    /// kill step may end a pause early).
    pub fn signal(&mut self, node: &str, signal: ProcessSignal) -> Result<(), NetlabError> {
        let alive = self.main_alive(node)?;
        if let Err(why) = alive {
            if signal == ProcessSignal::Cont {
                return Ok(());
            }
            return Err(NetlabError::SignalNotApplied {
                node: node.into(),
                signal: signal.verb(),
                why,
            });
        }
        self.send_signal(node, signal)?;
        let pid = self.mains[node].record.pid;
        let wanted = |state: Option<char>| match signal {
            ProcessSignal::Stop => state == Some('T'),
            ProcessSignal::Cont => state != Some('T'),
            ProcessSignal::Kill | ProcessSignal::Term => true,
        };
        let deadline = Instant::now() + SIGNAL_SETTLE;
        loop {
            let state = process::process_state(pid);
            if wanted(state) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NetlabError::SignalNotApplied {
                    node: node.into(),
                    signal: signal.verb(),
                    why: format!(
                        "pid {pid} is in state {} {} ms after the signal",
                        state.map_or("gone".to_string(), String::from),
                        SIGNAL_SETTLE.as_millis()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `Ok(Ok(()))` when the node's main process runs, `Ok(Err(why))` when
    /// it has exited.
    fn main_alive(&mut self, node: &str) -> Result<Result<(), String>, NetlabError> {
        let main = self
            .mains
            .get_mut(node)
            .ok_or_else(|| NetlabError::NoProcess(node.into()))?;
        Ok(match &mut main.child {
            Some(child) => match child.try_wait() {
                Ok(None) => Ok(()),
                Ok(Some(status)) => Err(format!("its process already exited ({status})")),
                Err(e) => Err(format!("its process cannot be waited for: {e}")),
            },
            None if main.record.is_alive() => Ok(()),
            None => Err(format!("its process (pid {}) is gone", main.record.pid)),
        })
    }

    /// Sends `signal` if the process still runs (reaping it after SIGKILL);
    /// a process that is gone is left alone.
    fn send_signal(&mut self, node: &str, signal: ProcessSignal) -> Result<(), NetlabError> {
        let alive = self.main_alive(node)?.is_ok();
        let main = self
            .mains
            .get_mut(node)
            .ok_or_else(|| NetlabError::NoProcess(node.into()))?;
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
        // A restart also revives a killed node: no liveness check here.
        self.send_signal(node, ProcessSignal::Cont)?;
        self.send_signal(node, ProcessSignal::Kill)?;
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
