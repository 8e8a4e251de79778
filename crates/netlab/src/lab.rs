//! `Lab`: a live lab. Brings a plan up (journal first, then kernel), applies
//! faults, runs processes inside namespaces, hands out sockets created inside
//! lab namespaces, and tears everything down. Synchronous API: callable from
//! plain threads or (via `spawn_blocking`) from async code; netlink work runs
//! on the private executor thread of [`Rtnl`].
//!
//! ### Correctness requirements
//! 1. Call [`Lab::teardown`] on every path (or [`Lab::detach`] on purpose);
//!    dropping a live lab only prints a `splitlab clean` hint.
//! 2. Reach nodes only through [`Lab::tcp_connect`], [`Lab::udp_bind`],
//!    [`Lab::in_netns`] or a [`NetnsThread`]: sockets made in the host's
//!    namespace cannot (and must not) reach lab addresses.
//! 3. Sockets and `NetnsThread`s keep their namespace alive; drop them before
//!    teardown, or the kernel keeps the veths until they close.

use crate::caps::Capabilities;
use crate::doctor::probe_capabilities;
use crate::error::NetlabError;
use crate::fault::{Fault, NetState};
use crate::journal::{Journal, ProcessRecord, RunState};
use crate::naming::RunId;
use crate::netns::{self, NetnsThread};
use crate::nfqueue::{DELAY_WORKER_ARG, WorkerConfig};
use crate::plan::{Plan, Step, plan};
use crate::process::{self, ProcessSignal, ProcessSpec};
use crate::render::{FIRST_QUEUE, NsConfig, SECOND_QUEUE, render};
use crate::rtnl::Rtnl;
use crate::tc;
use crate::tools::{find_tool, run_in};
use crate::topology::Topology;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
}

struct MainProcess {
    spec: ProcessSpec,
    child: Option<Child>,
    record: ProcessRecord,
}

struct DelayWorker {
    child: Option<Child>,
    record: ProcessRecord,
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
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(crate::journal::state_dir);
        let run = options.run.clone().unwrap_or_else(RunId::random);
        if Journal::path(&state_dir, &run).exists()
            || !netns::list_netns(&run.netns_prefix()).is_empty()
        {
            return Err(NetlabError::RunExists(run));
        }
        let helper_exe = match &options.helper_exe {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| NetlabError::io("locate the current executable", e))?,
        };
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
        };
        // Journal first: a crash from here on is cleanable by record.
        journal
            .save(&state_dir)
            .map_err(|e| NetlabError::io(format!("write journal in {}", state_dir.display()), e))?;
        let mut lab = Lab {
            journal,
            state_dir,
            helper_exe,
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
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(crate::journal::state_dir);
        if !Journal::path(&state_dir, run).exists() {
            return Err(NetlabError::NoSuchRun(run.clone()));
        }
        let mut journal =
            Journal::load(&state_dir, run).map_err(|e| NetlabError::io("read journal", e))?;
        let helper_exe = match &options.helper_exe {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| NetlabError::io("locate the current executable", e))?,
        };
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
                        node,
                        DelayWorker {
                            child: None,
                            record: record.clone(),
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
        let mut lab = Lab {
            journal,
            state_dir,
            helper_exe,
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

    /// The journal directory of this run.
    pub fn run_dir(&self) -> PathBuf {
        Journal::dir(&self.state_dir, &self.journal.run)
    }

    /// Address of a node.
    pub fn node_addr(&self, node: &str) -> Option<Ipv4Addr> {
        self.journal.plan.node(node).map(|n| n.addr)
    }

    /// `addr:peer_port` of a node (UDP heartbeats and TCP replication).
    pub fn peer_addr(&self, node: &str) -> Option<SocketAddr> {
        let port = self.journal.plan.ports.peer;
        self.node_addr(node).map(|a| SocketAddr::from((a, port)))
    }

    /// `addr:client_port` of a node.
    pub fn client_addr(&self, node: &str) -> Option<SocketAddr> {
        let port = self.journal.plan.ports.client;
        self.node_addr(node).map(|a| SocketAddr::from((a, port)))
    }

    /// The namespace of a target.
    ///
    /// # Errors
    /// Unknown node (with the valid names).
    pub fn netns_of(&self, target: &Target) -> Result<String, NetlabError> {
        match target {
            Target::Control => Ok(self.journal.plan.control_netns.clone()),
            Target::Node(node) => self
                .journal
                .plan
                .node(node)
                .map(|n| n.netns.clone())
                .ok_or_else(|| {
                    NetlabError::InvalidFault(format!(
                        "unknown node {node:?}; valid names: {}",
                        self.journal.topology.node_names().join(", ")
                    ))
                }),
        }
    }

    /// Runs `work` on a fresh thread inside the target's namespace.
    ///
    /// # Errors
    /// Unknown target or namespace entry failure.
    pub fn in_netns<T: Send>(
        &self,
        target: &Target,
        work: impl FnOnce() -> T + Send,
    ) -> Result<T, NetlabError> {
        let ns = self.netns_of(target)?;
        netns::in_netns(&ns, work).map_err(|e| NetlabError::io(format!("enter {ns}"), e))
    }

    /// A long-lived thread inside the target's namespace.
    ///
    /// # Errors
    /// Unknown target or namespace entry failure.
    pub fn netns_thread(&self, target: &Target) -> Result<NetnsThread, NetlabError> {
        let ns = self.netns_of(target)?;
        NetnsThread::start(&ns).map_err(|e| NetlabError::io(format!("enter {ns}"), e))
    }

    /// A TCP connection opened from inside `from`'s namespace.
    ///
    /// # Errors
    /// Connect failures (timeouts, refusals, unreachable).
    pub fn tcp_connect(
        &self,
        from: &Target,
        to: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        self.in_netns(from, || TcpStream::connect_timeout(&to, timeout))
            .map_err(io::Error::other)?
    }

    /// A UDP socket bound inside `at`'s namespace.
    ///
    /// # Errors
    /// Bind failures.
    pub fn udp_bind(&self, at: &Target, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.in_netns(at, || UdpSocket::bind(addr))
            .map_err(io::Error::other)?
    }

    /// A TCP listener bound inside `at`'s namespace.
    ///
    /// # Errors
    /// Bind failures.
    pub fn tcp_listen(&self, at: &Target, addr: SocketAddr) -> io::Result<TcpListener> {
        self.in_netns(at, || TcpListener::bind(addr))
            .map_err(io::Error::other)?
    }

    // ----- processes ---------------------------------------------------------

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

    // ----- faults ------------------------------------------------------------

    /// Applies a fault (network or process). Network faults are rendered to
    /// the full desired state and applied per namespace atomically.
    ///
    /// # Errors
    /// Invalid references, an unsupported effect (naming the missing kernel
    /// feature), or a tool failure.
    pub fn apply(&mut self, fault: &Fault) -> Result<(), NetlabError> {
        fault
            .validate(&self.journal.topology)
            .map_err(NetlabError::InvalidFault)?;
        match fault {
            Fault::Kill { node } => self.signal(node, ProcessSignal::Kill),
            Fault::Stop { node } => self.signal(node, ProcessSignal::Stop),
            Fault::Cont { node } => self.signal(node, ProcessSignal::Cont),
            Fault::Restart { node } => self.restart(node).map(|_| ()),
            network => {
                let mut next = self.journal.net.clone();
                next.apply(network);
                self.apply_net(next)
            }
        }
    }

    /// Checks, without touching the kernel, that every fault is valid and
    /// that this machine has a backend for each (applied one after another
    /// from the current state). Use it before a run to report a scenario as
    /// SKIPPED rather than failing halfway.
    ///
    /// # Errors
    /// [`NetlabError::InvalidFault`] or [`NetlabError::Unsupported`] (naming
    /// the missing kernel feature).
    pub fn check_supported(&self, faults: &[Fault]) -> Result<(), NetlabError> {
        let mut state = self.journal.net.clone();
        for fault in faults {
            fault
                .validate(&self.journal.topology)
                .map_err(NetlabError::InvalidFault)?;
            state.apply(fault);
            render(
                &self.journal.run,
                &self.journal.topology,
                &state,
                &self.journal.capabilities,
                &self.journal.queue_bases,
            )?;
        }
        Ok(())
    }

    /// Removes every network fault (partitions, fault shapes, downed links);
    /// base shaping stays.
    ///
    /// # Errors
    /// As [`Lab::apply`].
    pub fn heal_all(&mut self) -> Result<(), NetlabError> {
        let next = NetState::from_topology(&self.journal.topology);
        self.apply_net(next)
    }

    fn apply_net(&mut self, next: NetState) -> Result<(), NetlabError> {
        let run = self.journal.run.clone();
        let topology = self.journal.topology.clone();
        let caps = self.journal.capabilities;
        let bases = self.journal.queue_bases.clone();
        let same = render(&run, &topology, &next, &caps, &bases)?;
        let empty = NsConfig::default();
        let mut next_bases = bases.clone();
        for (node, config) in &same {
            let old = self.applied.get(node).unwrap_or(&empty);
            if old.delay_queues != config.delay_queues || old.iptables != config.iptables {
                let current = bases.get(node).copied().unwrap_or(FIRST_QUEUE);
                let flipped = if current == FIRST_QUEUE {
                    SECOND_QUEUE
                } else {
                    FIRST_QUEUE
                };
                next_bases.insert(node.clone(), flipped);
            }
        }
        let configs = render(&run, &topology, &next, &caps, &next_bases)?;
        // 1. Make before break: new delay consumers bind their queues first.
        let mut fresh: BTreeMap<String, DelayWorker> = BTreeMap::new();
        let mut commands: Vec<(String, Vec<ToolCall>)> = Vec::new();
        for (node, config) in &configs {
            let old = self.applied.get(node).cloned().unwrap_or_default();
            let ns = run.node_netns(node);
            if delay_changed(&old, config) && !config.delay_queues.is_empty() {
                let worker = self.start_worker(node, &ns, config)?;
                fresh.insert(node.clone(), worker);
            }
            let calls = ns_tool_calls(&ns, &old, config);
            if !calls.is_empty() {
                commands.push((ns, calls));
            }
        }
        // 2. All namespaces at once: a fault should land everywhere at about
        //    the same instant (each namespace's change is itself atomic).
        let failures: Vec<NetlabError> = std::thread::scope(|scope| {
            let handles: Vec<_> = commands
                .iter()
                .map(|(ns, calls)| scope.spawn(move || run_calls(ns, calls)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(result) => result.err(),
                    Err(_) => Some(NetlabError::io(
                        "apply",
                        io::Error::other("namespace apply thread panicked"),
                    )),
                })
                .collect()
        });
        // 3. Retire replaced consumers (they drain what they hold, then exit).
        for (node, config) in &configs {
            let old = self.applied.get(node).cloned().unwrap_or_default();
            if delay_changed(&old, config) {
                if let Some(old_worker) = self.workers.remove(node) {
                    let _ = process::signal_pid(old_worker.record.pid, ProcessSignal::Term);
                    self.retiring.push(old_worker);
                }
                if let Some(worker) = fresh.remove(node) {
                    self.workers.insert(node.clone(), worker);
                }
            }
        }
        if let Some(failure) = failures.into_iter().next() {
            // Leave `applied` as it was so the next apply retries everything.
            return Err(failure);
        }
        for (node, config) in &configs {
            self.applied.insert(node.clone(), config.clone());
        }
        self.journal.queue_bases = next_bases;
        // Links: down what is newly down, restore what came back.
        let before = self.journal.net.down.clone();
        for (a, b) in next.down.difference(&before) {
            self.set_link_pair(a, b, false)?;
        }
        for (a, b) in before.difference(&next.down) {
            self.set_link_pair(a, b, true)?;
        }
        self.journal.net = next;
        self.reap_retiring();
        self.save()
    }

    fn set_link_pair(&mut self, a: &str, b: &str, up: bool) -> Result<(), NetlabError> {
        let plan = &self.journal.plan;
        let (Some(na), Some(nb)) = (plan.node(a), plan.node(b)) else {
            return Ok(());
        };
        let rtnl = self.rtnl.as_ref().ok_or_else(|| {
            NetlabError::io("link change", io::Error::other("lab already torn down"))
        })?;
        let ends = [
            (na.netns.clone(), plan.run.mesh_ifname(na.index, nb.index)),
            (nb.netns.clone(), plan.run.mesh_ifname(nb.index, na.index)),
        ];
        for (ns, ifname) in &ends {
            rtnl.set_link(ns, ifname, up).map_err(|e| {
                NetlabError::io(
                    format!("set {ifname} in {ns} {}", if up { "up" } else { "down" }),
                    e,
                )
            })?;
        }
        if up {
            // Host routes over a device are flushed when it goes down.
            let routes: Vec<Step> = plan
                .link_steps(a, b)
                .into_iter()
                .filter(|s| matches!(s, Step::AddRoute { .. }))
                .collect();
            rtnl.execute(routes).map_err(|f| NetlabError::Step {
                step: f.step,
                source: f.source,
            })?;
        }
        Ok(())
    }

    fn start_worker(
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

    fn reap_retiring(&mut self) {
        self.retiring.retain_mut(|worker| match &mut worker.child {
            Some(child) => !matches!(child.try_wait(), Ok(Some(_))),
            None => worker.record.is_alive(),
        });
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
        let mut failure = None;
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

fn delay_changed(old: &NsConfig, new: &NsConfig) -> bool {
    old.delay_queues != new.delay_queues || old.iptables != new.iptables
}

/// One tool invocation inside a namespace.
struct ToolCall {
    tool: &'static str,
    args: Vec<String>,
    stdin: String,
    /// "Already gone" is fine (removing a qdisc that is not there).
    ignore_failure: bool,
}

/// The commands that move a namespace from `old` to `new`, in order: nft
/// table (one transaction), NFQUEUE rules (one transaction), qdiscs.
fn ns_tool_calls(ns: &str, old: &NsConfig, new: &NsConfig) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    if old.nft != new.nft && (old.nft_active || new.nft_active) {
        calls.push(ToolCall {
            tool: "nft",
            args: vec!["-f".into(), "-".into()],
            stdin: new.nft.clone(),
            ignore_failure: false,
        });
    }
    if delay_changed(old, new) {
        calls.push(ToolCall {
            tool: "iptables-restore",
            args: Vec::new(),
            stdin: new.iptables.clone(),
            ignore_failure: false,
        });
    }
    for q in &old.qdiscs {
        if !new.qdiscs.iter().any(|n| n.ifname() == q.ifname()) {
            calls.push(ToolCall {
                tool: "tc",
                args: tc::qdisc_delete_args(ns, q.ifname()),
                stdin: String::new(),
                ignore_failure: true,
            });
        }
    }
    for q in &new.qdiscs {
        if !old.qdiscs.contains(q) {
            calls.push(ToolCall {
                tool: "tc",
                args: tc::qdisc_replace_args(ns, q),
                stdin: String::new(),
                ignore_failure: false,
            });
        }
    }
    calls
}

fn run_calls(ns: &str, calls: &[ToolCall]) -> Result<(), NetlabError> {
    for call in calls {
        match run_in(ns, call.tool, &call.args, &call.stdin) {
            Ok(_) => {}
            Err(_) if call.ignore_failure => {}
            Err(e) => return Err(NetlabError::io(call.tool, e)),
        }
    }
    Ok(())
}

/// Waits until a process is gone (reaping our own children).
fn wait_gone(child: &mut Option<Child>, record: &ProcessRecord, deadline: Instant) {
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

    fn assert_send<T: Send>() {}

    #[test]
    fn handles_can_move_to_worker_threads() {
        // The run engineer drives a Lab from spawn_blocking / std threads.
        assert_send::<Lab>();
        assert_send::<NetnsThread>();
    }
}
