//! `Lab`: a live lab and its lifecycle. Brings a plan up (journal first, then
//! kernel), reopens a running lab from its journal, and tears everything down.
//!
//! The rest lives in submodules: `sockets` (reaching nodes), `processes`,
//! `apply` (fault application) and `workers` (NFQUEUE delay workers).
//! Synchronous API: callable from plain threads or (via `spawn_blocking`) from
//! async code; netlink work runs on the private executor thread of [`Rtnl`].
//!
//! ### Correctness requirements
//! 1. Call [`Lab::teardown`] on every path (or [`Lab::detach`] on purpose);
//!    dropping a live lab only prints a `splitlab clean` hint.
//! 2. Reach nodes only through [`Lab::tcp_connect`], [`Lab::udp_bind`],
//!    [`Lab::in_netns`] or a [`NetnsThread`](crate::NetnsThread): sockets made
//!    in the host's namespace cannot (and must not) reach lab addresses.
//! 3. Sockets and `NetnsThread`s keep their namespace alive; drop them before
//!    teardown, or the kernel keeps the veths until they close.

mod apply;
mod disks;
mod processes;
mod sockets;
mod workers;

use crate::caps::Capabilities;
use crate::doctor::probe_capabilities;
use crate::error::NetlabError;
use crate::fault::NetState;
use crate::journal::{Journal, ProcessRecord, RunState};
use crate::naming::RunId;
use crate::netns;
use crate::plan::{Plan, plan};
use crate::process::{self, ProcessSignal, ProcessSpec};
use crate::render::{NsConfig, render};
use crate::rtnl::Rtnl;
use crate::tools::find_tool;
use crate::topology::Topology;
pub use processes::SIGNAL_SETTLE;
use processes::{MainProcess, wait_gone};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workers::DelayWorker;
pub use workers::{STALL_AFTER, WorkerProblem};

/// Where code or sockets should live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A node's namespace (faulted with the node).
    Node(String),
    /// The control namespace: linked to every node, never faulted.
    Control,
}

/// Options of [`Lab::up`] / [`Lab::attach`].
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Run id (default: random).
    pub run: Option<RunId>,
    /// Journal directory (default: [`crate::journal::state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// Executable that understands the hidden delay-worker subcommand
    /// (default: the current executable; `splitlab` does).
    pub helper_exe: Option<PathBuf>,
    /// Set to true (e.g. by a Ctrl-C handler) to abort bring-up cleanly.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where helper logs and heartbeats go (delay workers:
    /// `<node>.delay.log`, `<node>.delay-q<queue>.stats`). Default: the
    /// journal's run directory, which teardown removes; `splitlab run` points
    /// it into the run's output directory so the logs outlive the lab.
    pub log_dir: Option<PathBuf>,
}

impl LabOptions {
    fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(crate::journal::state_dir)
    }

    fn log_dir(&self, state_dir: &std::path::Path, run: &RunId) -> Result<PathBuf, NetlabError> {
        let dir = self
            .log_dir
            .clone()
            .unwrap_or_else(|| Journal::dir(state_dir, run));
        std::fs::create_dir_all(&dir)
            .map_err(|e| NetlabError::io(format!("create {}", dir.display()), e))?;
        Ok(dir)
    }

    fn helper_exe(&self) -> Result<PathBuf, NetlabError> {
        match &self.helper_exe {
            Some(path) => Ok(path.clone()),
            None => std::env::current_exe()
                .map_err(|e| NetlabError::io("locate the current executable", e)),
        }
    }
}

/// How long bring-up and teardown took (reported by `splitlab up/down`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Namespaces, veths, addresses, routes.
    pub plan: Duration,
    /// Capability probe.
    pub probe: Duration,
    /// Base shaping (nft, NFQUEUE workers, qdiscs).
    pub shaping: Duration,
}

/// A live lab. See the module docs for the rules.
#[must_use = "a lab must be torn down (or detached on purpose)"]
pub struct Lab {
    journal: Journal,
    state_dir: PathBuf,
    helper_exe: PathBuf,
    log_dir: PathBuf,
    rtnl: Option<Rtnl>,
    applied: BTreeMap<String, NsConfig>,
    workers: BTreeMap<String, DelayWorker>,
    retiring: Vec<DelayWorker>,
    mains: BTreeMap<String, MainProcess>,
    finished: bool,
    timings: Timings,
}

fn ensure_root() -> Result<(), NetlabError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(NetlabError::NotRoot)
    }
}

fn ensure_tools() -> Result<(), NetlabError> {
    for (tool, package) in [("nft", "nftables"), ("tc", "iproute2")] {
        if find_tool(tool).is_none() {
            return Err(NetlabError::MissingTool { tool, package });
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Lab {
    /// Validates, journals, builds the lab, probes capabilities and applies the
    /// topology's base shaping. On any failure (or cancellation) everything
    /// created so far is removed before returning.
    ///
    /// # Errors
    /// Not root, missing tools, existing run, a failed step, an unsupported
    /// base shape, or interruption.
    pub fn up(topology: &Topology, options: &LabOptions) -> Result<Lab, NetlabError> {
        ensure_root()?;
        ensure_tools()?;
        topology.validate()?;
        let state_dir = options.state_dir();
        let run = options.run.clone().unwrap_or_else(RunId::random);
        if Journal::path(&state_dir, &run).exists()
            || !netns::list_netns(&run.netns_prefix()).is_empty()
        {
            return Err(NetlabError::RunExists(run));
        }
        let helper_exe = options.helper_exe()?;
        let log_dir = options.log_dir(&state_dir, &run)?;
        let the_plan = plan(&run, topology);
        let journal = Journal {
            run: run.clone(),
            state: RunState::Applying,
            owner: ProcessRecord::of(std::process::id(), "orchestrator", None, None),
            created_unix_ms: now_ms(),
            topology: topology.clone(),
            plan: the_plan.clone(),
            capabilities: Capabilities::default(),
            net: NetState::default(),
            processes: Vec::new(),
            queue_bases: BTreeMap::new(),
            disks: Vec::new(),
        };
        // Journal first: a crash from here on is cleanable by record.
        journal
            .save(&state_dir)
            .map_err(|e| NetlabError::io(format!("write journal in {}", state_dir.display()), e))?;
        let mut lab = Lab {
            journal,
            state_dir,
            helper_exe,
            log_dir,
            rtnl: None,
            applied: BTreeMap::new(),
            workers: BTreeMap::new(),
            retiring: Vec::new(),
            mains: BTreeMap::new(),
            finished: false,
            timings: Timings::default(),
        };
        match lab.bring_up(&the_plan, topology, options.cancel.as_deref()) {
            Ok(()) => Ok(lab),
            Err(e) => {
                let _ = lab.teardown_inner();
                Err(e)
            }
        }
    }

    fn bring_up(
        &mut self,
        the_plan: &Plan,
        topology: &Topology,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), NetlabError> {
        let cancelled = || cancel.is_some_and(|c| c.load(Ordering::SeqCst));
        let started = Instant::now();
        let rtnl = Rtnl::start().map_err(|e| NetlabError::io("start rtnetlink", e))?;
        for chunk in the_plan.steps.chunks(24) {
            if cancelled() {
                return Err(NetlabError::Interrupted);
            }
            rtnl.execute(chunk.to_vec())
                .map_err(|f| NetlabError::Step {
                    step: f.step,
                    source: f.source,
                })?;
        }
        self.rtnl = Some(rtnl);
        self.timings.plan = started.elapsed();
        if cancelled() {
            return Err(NetlabError::Interrupted);
        }
        let probing = Instant::now();
        self.journal.capabilities = probe_capabilities(&the_plan.control_netns);
        self.timings.probe = probing.elapsed();
        let shaping = Instant::now();
        // What a fresh namespace already is: no table, an empty filter table.
        self.applied = render(
            &self.journal.run,
            topology,
            &NetState::default(),
            &self.journal.capabilities,
            &self.journal.queue_bases,
        )?;
        self.apply_net(NetState::from_topology(topology))?;
        self.timings.shaping = shaping.elapsed();
        if cancelled() {
            return Err(NetlabError::Interrupted);
        }
        self.journal.state = RunState::Ready;
        self.save()
    }

    /// Opens a running lab from its journal (for `down`, `probe`, `fault`, or
    /// a second orchestrator). Ownership (and journal writes) pass to the
    /// caller only if the recorded owner is dead; see [`Lab::foreign_owner`].
    /// Processes started by an earlier owner are managed by PID.
    ///
    /// # Errors
    /// No such run, unreadable journal, or namespaces gone.
    pub fn attach(run: &RunId, options: &LabOptions) -> Result<Lab, NetlabError> {
        ensure_root()?;
        let state_dir = options.state_dir();
        if !Journal::path(&state_dir, run).exists() {
            return Err(NetlabError::NoSuchRun(run.clone()));
        }
        let mut journal =
            Journal::load(&state_dir, run).map_err(|e| NetlabError::io("read journal", e))?;
        let helper_exe = options.helper_exe()?;
        // Take ownership only from a dead owner: a live orchestrator keeps its
        // lab, and `clean` must keep treating that lab as live.
        let take_over = !journal.owner.is_alive();
        if take_over {
            journal.owner = ProcessRecord::of(std::process::id(), "orchestrator", None, None);
        }
        let applied = render(
            &journal.run,
            &journal.topology,
            &journal.net,
            &journal.capabilities,
            &journal.queue_bases,
        )
        .unwrap_or_default();
        let mut workers = BTreeMap::new();
        let mut mains = BTreeMap::new();
        for record in journal.processes.iter().filter(|r| r.is_alive()) {
            let Some(node) = record.node.clone() else {
                continue;
            };
            match record.role.as_str() {
                "delay-worker" => {
                    workers.insert(
                        node.clone(),
                        DelayWorker {
                            child: None,
                            record: record.clone(),
                            stats: None,
                            log: Journal::dir(&state_dir, run).join(format!("{node}.delay.log")),
                            started: Instant::now(),
                        },
                    );
                }
                "node" => {
                    mains.insert(
                        node,
                        MainProcess {
                            spec: ProcessSpec::default(),
                            child: None,
                            record: record.clone(),
                        },
                    );
                }
                _ => {}
            }
        }
        let rtnl = Rtnl::start().map_err(|e| NetlabError::io("start rtnetlink", e))?;
        let log_dir = options.log_dir(&state_dir, run)?;
        let mut lab = Lab {
            journal,
            state_dir,
            helper_exe,
            log_dir,
            rtnl: Some(rtnl),
            applied,
            workers,
            retiring: Vec::new(),
            mains,
            finished: false,
            timings: Timings::default(),
        };
        if take_over {
            lab.save()?;
        }
        Ok(lab)
    }

    /// PID of the live process that owns this lab, when it is not us
    /// (changes made here would then race with the owner's journal writes).
    pub fn foreign_owner(&self) -> Option<u32> {
        let owner = &self.journal.owner;
        (owner.pid != std::process::id() && owner.is_alive()).then_some(owner.pid)
    }

    fn save(&mut self) -> Result<(), NetlabError> {
        self.journal.processes.retain(ProcessRecord::is_alive);
        self.journal
            .save(&self.state_dir)
            .map_err(|e| NetlabError::io("write journal", e))
    }

    /// The run id.
    pub fn run_id(&self) -> &RunId {
        &self.journal.run
    }

    /// The realised plan (nodes, addresses, namespaces).
    pub fn plan(&self) -> &Plan {
        &self.journal.plan
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.journal.topology
    }

    /// Probed backends.
    pub fn capabilities(&self) -> &Capabilities {
        &self.journal.capabilities
    }

    /// Desired network state (base shaping + active faults).
    pub fn net_state(&self) -> &NetState {
        &self.journal.net
    }

    /// Bring-up timings.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// The executable that serves the hidden helper subcommands (delay
    /// worker, live probe).
    pub fn helper_exe(&self) -> &std::path::Path {
        &self.helper_exe
    }

    /// Where helper logs and heartbeats go (the `log_dir` field of [`LabOptions`]).
    pub fn log_dir(&self) -> &std::path::Path {
        &self.log_dir
    }

    /// The journal directory of this run.
    pub fn run_dir(&self) -> PathBuf {
        Journal::dir(&self.state_dir, &self.journal.run)
    }
    // ----- teardown ----------------------------------------------------------

    /// Stops every process, deletes every namespace, removes the journal.
    ///
    /// # Errors
    /// Namespace deletion failures (the journal then stays for `clean`).
    pub fn teardown(mut self) -> Result<Duration, NetlabError> {
        let started = Instant::now();
        self.teardown_inner()?;
        Ok(started.elapsed())
    }

    /// Leaves the lab running (e.g. `splitlab up` returning); the journal
    /// keeps it cleanable with `splitlab down` / `splitlab clean`.
    pub fn detach(mut self) {
        self.finished = true;
    }

    fn teardown_inner(&mut self) -> Result<(), NetlabError> {
        self.finished = true;
        self.journal.state = RunState::TearingDown;
        let _ = self.journal.save(&self.state_dir);
        // Main processes get a short grace period together, then SIGKILL.
        for main in self.mains.values() {
            let _ = process::signal_pid(main.record.pid, ProcessSignal::Cont);
            let _ = process::signal_pid(main.record.pid, ProcessSignal::Term);
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        for main in self.mains.values_mut() {
            wait_gone(&mut main.child, &main.record, deadline);
        }
        let mut records: Vec<ProcessRecord> = self.journal.processes.clone();
        records.extend(self.workers.values().map(|w| w.record.clone()));
        records.extend(self.retiring.iter().map(|w| w.record.clone()));
        for record in &records {
            if record.is_alive() {
                let _ = process::signal_pid(record.pid, ProcessSignal::Kill);
            }
        }
        let kill_deadline = Instant::now() + Duration::from_secs(2);
        for worker in self.workers.values_mut().chain(self.retiring.iter_mut()) {
            wait_gone(&mut worker.child, &worker.record, kill_deadline);
        }
        for main in self.mains.values_mut() {
            wait_gone(&mut main.child, &main.record, kill_deadline);
        }
        for record in &records {
            let mut none = None;
            wait_gone(&mut none, record, kill_deadline);
        }
        // Our netlink sockets hold the namespaces: close them first.
        drop(self.rtnl.take());
        // Every process is gone: data disks can go, their files kept.
        let mut failure = self.unmount_data_disks().err();
        let mut names = self.journal.plan.namespaces.clone();
        for extra in netns::list_netns(&self.journal.run.netns_prefix()) {
            if !names.contains(&extra) {
                names.push(extra);
            }
        }
        for name in names {
            if let Err(e) = netns::delete_netns(&name) {
                failure = Some(NetlabError::io(format!("delete namespace {name}"), e));
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Journal::remove(&self.state_dir, &self.journal.run)
                .map_err(|e| NetlabError::io("remove journal", e)),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.finished {
            eprintln!(
                "warning: lab {} dropped without teardown; its namespaces and processes are still \
                 up. Remove them with: splitlab down --run {} (or splitlab clean)",
                self.journal.run, self.journal.run
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::NetnsThread;

    fn assert_send<T: Send>() {}

    #[test]
    fn handles_can_move_to_worker_threads() {
        // The run engineer drives a Lab from spawn_blocking / std threads.
        assert_send::<Lab>();
        assert_send::<NetnsThread>();
    }
}
