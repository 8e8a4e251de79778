//! The impure part of `splitlab run`: bring the lab up, start `splitnode` in
//! every namespace, drive clients and the fault timeline, heal, quiesce, read
//! the final state, and tear everything down on every path.
//!
//! Threads: the calling thread owns the [`Lab`] and runs the timeline; one
//! thread per client lives in its home node's namespace; status polls and
//! final reads run on a thread in the control namespace (linked to every
//! node, never faulted); one thread records the history.
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use checker::{EventKind, NodeEvent, Op, OpKind};
use netlab::{Fault, Lab, LabOptions, NetlabError, NetnsThread, ProcessSpec, Target, Topology};

use super::client::{self, NodeStatus, Outcome, Request, mono_ns};
use super::duration::Dur;
use super::judge::{FaultRecord, RunFrame};
use super::nemesis::{self, ActiveFaults, ActiveNet};
use super::progress::Progress;
use super::scenario::{FaultKind, Grudge, LoadedScenario, Plane, Role, Targets, Timing};
use super::targets::{self, ClusterView, SeededRng};
use super::workload::{self, ClientPlan, Counters, Generator};

/// History process ids at or above this are the runner's final reads.
pub const FINAL_READ_PROCESS: u64 = 1_000_000;

/// What a run produced, for judging and reporting.
pub struct Execution {
    pub history: Vec<Op>,
    /// Every node's event log plus the runner's `final_state` events.
    pub events: Vec<NodeEvent>,
    pub faults: Vec<FaultRecord>,
    pub frame: RunFrame,
    /// Set when a fault could not be applied on this machine.
    pub skipped: Option<String>,
    /// Lab bring-up and teardown durations (ms).
    pub lab_up_ms: f64,
    pub lab_down_ms: f64,
}

/// Tears the lab down when dropped, so every exit path (errors, panics,
/// Ctrl-C) removes namespaces and processes.
struct LabGuard {
    lab: Option<Lab>,
    down_ms: f64,
}

impl LabGuard {
    fn lab(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("the lab is up until teardown")
    }

    fn teardown(&mut self) -> Result<(), NetlabError> {
        match self.lab.take() {
            Some(lab) => {
                let took = lab.teardown()?;
                self.down_ms = took.as_secs_f64() * 1e3;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("splitlab: teardown failed: {error}; run `splitlab clean`");
        }
    }
}

/// Paths and settings the runner needs besides the scenario.
pub struct RunSetup<'a> {
    pub loaded: &'a LoadedScenario,
    pub topology: &'a Topology,
    pub seed: u64,
    pub run_dir: &'a Path,
    pub splitnode: &'a Path,
    pub cancel: Arc<AtomicBool>,
}

fn node_dir(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("nodes").join(node)
}

/// The `splitnode` command line for one node.
fn node_spec(setup: &RunSetup<'_>, lab: &Lab, node: &str) -> anyhow::Result<ProcessSpec> {
    let scenario = &setup.loaded.scenario;
    let settings = &scenario.nodes;
    let timing = settings.timing();
    let addr = |node: &str, client: bool| {
        if client {
            lab.client_addr(node)
        } else {
            lab.peer_addr(node)
        }
        .ok_or_else(|| anyhow::anyhow!("netlab has no address for node {node}"))
    };
    let dir = node_dir(setup.run_dir, node);
    std::fs::create_dir_all(&dir)?;
    let overrides = settings
        .overrides
        .iter()
        .find(|(name, _)| name.get_ref() == node)
        .map(|(_, o)| o.clone())
        .unwrap_or_default();
    let mode = overrides.mode.unwrap_or(settings.mode);
    let mut args: Vec<String> = vec![
        "--id".into(),
        node.into(),
        "--cluster".into(),
        scenario.name.clone(),
        "--listen-peer".into(),
        addr(node, false)?.to_string(),
        "--listen-client".into(),
        addr(node, true)?.to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--mode".into(),
        mode.name().into(),
        "--profile".into(),
        settings.profile.name().into(),
        "--heartbeat-ms".into(),
        (timing.heartbeat.as_nanos() / 1_000_000).to_string(),
        "--election-timeout-min-ms".into(),
        (timing.election_timeout_min.as_nanos() / 1_000_000).to_string(),
        "--election-timeout-max-ms".into(),
        (timing.election_timeout_max.as_nanos() / 1_000_000).to_string(),
        // A client request must not outlive the lab client's own timeout by
        // much, or every slow answer turns into an `info`.
        "--client-timeout-ms".into(),
        (scenario.workload.timeout.as_nanos() / 1_000_000)
            .max(100)
            .to_string(),
        // Harmless on restarts: the data directory then already holds state.
        "--bootstrap".into(),
    ];
    for peer in setup.topology.node_names() {
        if peer != node {
            args.push("--peer".into());
            args.push(format!("{peer}={}", addr(&peer, false)?));
            args.push("--peer-client".into());
            args.push(format!("{peer}={}", addr(&peer, true)?));
        }
    }
    if let Some(offset) = overrides.clock_offset_ms {
        args.push(format!("--test-clock-offset-ms={offset}"));
    }
    if let Some(rate) = overrides.clock_rate {
        args.push(format!("--test-clock-rate={rate}"));
    }
    let mut spec = ProcessSpec::new(setup.splitnode, args);
    spec.stdout = Some(dir.join("splitnode.log"));
    spec.stderr = Some(dir.join("splitnode.log"));
    spec.env.push(("RUST_LOG".into(), "warn".into()));
    Ok(spec)
}

/// Polls every node's `/status` from the control namespace, in parallel.
struct Observer {
    control: NetnsThread,
    nodes: Vec<(String, SocketAddr)>,
}

impl Observer {
    fn statuses(&self) -> Vec<NodeStatus> {
        let nodes = self.nodes.clone();
        self.control
            .run(move || {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = nodes
                        .iter()
                        .map(|(name, addr)| {
                            scope.spawn(move || {
                                client::status(*addr, name, Duration::from_millis(300))
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .filter_map(|handle| handle.join().ok().flatten())
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// The leader with the highest term, as seen right now.
    fn view(&self) -> (ClusterView, Vec<NodeStatus>) {
        let statuses = self.statuses();
        let leader = statuses
            .iter()
            .filter(|status| status.role == "leader")
            .max_by_key(|status| status.term)
            .map(|status| status.node.clone());
        let view = ClusterView {
            nodes: self.nodes.iter().map(|(name, _)| name.clone()).collect(),
            leader,
        };
        (view, statuses)
    }

    /// Waits up to `limit` for a leader; returns it with its term.
    fn wait_for_leader(&self, limit: Duration, cancel: &AtomicBool) -> Option<(String, u64)> {
        let deadline = mono_ns() + limit.as_nanos() as u64;
        while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
            let (view, statuses) = self.view();
            if let Some(leader) = view.leader {
                let term = statuses
                    .iter()
                    .find(|s| s.node == leader)
                    .map_or(0, |s| s.term);
                return Some((leader, term));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Waits until every node names the same leader and term for two
    /// election timeouts in a row (bounded), so the workload and the
    /// fault-free window start on a settled cluster rather than in the
    /// aftermath of start-up.
    fn wait_until_settled(
        &self,
        mut leader: (String, u64),
        timing: &Timing,
        cancel: &AtomicBool,
        progress: &Progress,
    ) -> (String, u64) {
        let needed = 2 * timing.election_timeout_max.as_nanos();
        let deadline = mono_ns() + 4 * needed.max(1_000_000_000);
        let mut stable_since: Option<(u64, (String, u64))> = None;
        while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
            let (view, statuses) = self.view();
            let agreed = view.leader.as_ref().and_then(|name| {
                let term = statuses.iter().find(|s| &s.node == name)?.term;
                let all_agree = statuses.len() == self.nodes.len()
                    && statuses
                        .iter()
                        .all(|s| s.leader.as_deref() == Some(name.as_str()) && s.term == term);
                all_agree.then(|| (name.clone(), term))
            });
            match (agreed, &stable_since) {
                (Some(current), Some((since, seen))) if *seen == current => {
                    if mono_ns() - since >= needed {
                        return current;
                    }
                }
                (Some(current), _) => stable_since = Some((mono_ns(), current)),
                (None, _) => stable_since = None,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some((_, current)) = stable_since {
            leader = current;
        }
        progress.note("the cluster did not settle on one leader; starting anyway");
        leader
    }

    /// One linearizable read through the control namespace.
    fn read(&self, addr: SocketAddr, key: &str, timeout: Duration) -> Outcome {
        let request = Request::Read { key: key.into() };
        self.control
            .run(move || client::execute(addr, &request, 0, 0, timeout))
            .unwrap_or(Outcome::Info {
                error: "control namespace thread stopped".into(),
            })
    }
}

/// Timeline actions in time order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Start(usize),
    End(usize),
    /// Flap: take the links down (`true`) or up.
    Flap(usize, bool),
}

fn schedule(loaded: &LoadedScenario) -> Vec<(u64, Action)> {
    let mut actions = Vec::new();
    for (index, step) in loaded.scenario.timeline.iter().enumerate() {
        let step = step.get_ref();
        let start = step.at.as_nanos();
        actions.push((start, Action::Start(index)));
        if let Some(duration) = step.duration {
            let end = start + duration.as_nanos();
            if step.fault == FaultKind::Flap {
                let half = (step.period.unwrap_or(Dur::from_millis(500)).as_nanos() / 2).max(1);
                let mut at = start + half;
                let mut down = false;
                while at < end {
                    actions.push((at, Action::Flap(index, down)));
                    down = !down;
                    at += half;
                }
            }
            actions.push((end, Action::End(index)));
        }
    }
    // Ends before starts at the same instant, so "isolate L2 while L1 heals"
    // never briefly applies both.
    actions.sort_by_key(|(at, action)| (*at, !matches!(action, Action::End(_))));
    actions
}

/// Process faults waiting to be undone at the final heal.
#[derive(Default)]
struct ProcessState {
    paused: BTreeMap<usize, Vec<String>>,
    killed: BTreeMap<usize, Vec<String>>,
}

fn is_unsupported(error: &NetlabError) -> bool {
    matches!(error, NetlabError::Unsupported(_))
}

/// Runs the scenario. The lab is torn down before this returns, whatever
/// happens.
pub fn execute(setup: &RunSetup<'_>) -> anyhow::Result<Execution> {
    let scenario = &setup.loaded.scenario;
    let timing = scenario.nodes.timing();
    let node_names = setup.topology.node_names();
    let progress = Progress::new(scenario.duration);

    progress.note(&format!(
        "building {} ({} nodes) ...",
        setup.topology.name,
        node_names.len()
    ));
    let up_started = mono_ns();
    let lab = Lab::up(
        setup.topology,
        &LabOptions {
            cancel: Some(setup.cancel.clone()),
            ..LabOptions::default()
        },
    )?;
    let lab_up_ms = (mono_ns() - up_started) as f64 / 1e6;
    let mut guard = LabGuard {
        lab: Some(lab),
        down_ms: 0.0,
    };
    let result = drive(setup, &mut guard, &timing, &node_names, &progress);
    guard.teardown()?;
    let mut execution = result?;
    execution.lab_up_ms = lab_up_ms;
    execution.lab_down_ms = guard.down_ms;
    // Node event logs are on the host file system; read them after the
    // processes are gone so every line is complete.
    for node in &node_names {
        let path = node_dir(setup.run_dir, node).join("events.jsonl");
        if path.exists() {
            let mut events = checker::load_events(&path)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            execution.events.append(&mut events);
        }
    }
    execution.events.sort_by_key(|event| event.mono_ns);
    Ok(execution)
}

fn drive(
    setup: &RunSetup<'_>,
    guard: &mut LabGuard,
    timing: &Timing,
    node_names: &[String],
    progress: &Progress,
) -> anyhow::Result<Execution> {
    let scenario = &setup.loaded.scenario;
    let cancel = &setup.cancel;
    let lab = guard.lab();
    // Preflight: a fault this machine has no backend for makes the run
    // SKIPPED before anything starts, never a failure halfway.
    if let Some(reason) = unsupported_step(lab, setup.loaded, node_names) {
        progress.note(&format!("SKIPPED: {reason}"));
        let now = mono_ns();
        return Ok(Execution {
            history: Vec::new(),
            events: Vec::new(),
            faults: Vec::new(),
            frame: RunFrame {
                workload_start_ns: now,
                workload_end_ns: now,
                healed_ns: now,
                final_reads_ns: now,
            },
            skipped: Some(reason),
            lab_up_ms: 0.0,
            lab_down_ms: 0.0,
        });
    }
    let mut pids = Vec::new();
    for node in node_names {
        let spec = node_spec(setup, lab, node)?;
        pids.push(format!("{node} {}", lab.spawn(node, spec)?));
    }
    std::fs::write(setup.run_dir.join("pids"), pids.join("\n") + "\n")?;
    let client_addrs: Vec<(String, SocketAddr)> = node_names
        .iter()
        .map(|node| {
            (
                node.clone(),
                lab.client_addr(node).expect("every node has an address"),
            )
        })
        .collect();
    let observer = Observer {
        control: lab.netns_thread(&Target::Control)?,
        nodes: client_addrs.clone(),
    };

    progress.note("waiting for a leader ...");
    let settle = Duration::from_nanos(20 * timing.election_timeout_max.as_nanos())
        .max(Duration::from_secs(10));
    let Some(mut leader) = observer.wait_for_leader(settle, cancel) else {
        anyhow::bail!(
            "no leader emerged within {:.1}s (see {}/nodes/*/splitnode.log)",
            settle.as_secs_f64(),
            setup.run_dir.display()
        );
    };
    leader = observer.wait_until_settled(leader, timing, cancel, progress);
    if let Some(preferred) = &scenario.nodes.prefer_leader {
        leader = steer_leadership(
            guard.lab(),
            &observer,
            preferred.get_ref(),
            leader,
            timing,
            cancel,
            progress,
        )?;
    }
    progress.note(&format!(
        "leader {} (term {}); starting clients",
        leader.0, leader.1
    ));

    // History recorder: one line per record, flushed as it goes so a crash
    // still leaves a readable history.
    let (history_tx, history_rx) = mpsc::channel::<Op>();
    let history_path = setup.run_dir.join("history.jsonl");
    let recorder = std::thread::Builder::new().name("history".into()).spawn(
        move || -> std::io::Result<Vec<Op>> {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&history_path)?);
            let mut ops = Vec::new();
            for op in history_rx {
                serde_json::to_writer(&mut file, &op)?;
                file.write_all(b"\n")?;
                ops.push(op);
            }
            file.flush()?;
            Ok(ops)
        },
    )?;

    let workload_start_ns = mono_ns();
    let end_ns = workload_start_ns + scenario.duration.as_nanos();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let homes = workload::place_clients(&scenario.workload, &setup.loaded.catalog);
    let mut clients = Vec::new();
    for (process, home) in homes.iter().enumerate() {
        let netns = guard.lab().netns_of(&Target::Node(home.clone()))?;
        let plan = ClientPlan {
            process: process as u64,
            home: home.clone(),
            nodes: client_addrs.clone(),
            route: scenario.workload.route,
            rate: scenario.workload.rate,
            timeout: scenario.workload.timeout.as_std(),
            generator: Generator::new(
                process as u64,
                scenario.workload.keys,
                scenario.workload.mix,
                setup.seed,
            ),
            end_ns,
        };
        let (tx, stop, counters) = (history_tx.clone(), stop.clone(), counters.clone());
        clients.push(
            std::thread::Builder::new()
                .name(format!("client-{process}"))
                .spawn(move || {
                    // The client's sockets are created inside its home
                    // node's namespace: cut the node off and its clients are
                    // cut off with it.
                    netlab::netns::in_netns(&netns, move || {
                        workload::run_client(plan, tx, stop, counters)
                    })
                })?,
        );
    }

    let timeline = run_timeline(
        setup,
        guard,
        &observer,
        workload_start_ns,
        end_ns,
        &counters,
        progress,
    );
    stop.store(true, Ordering::Relaxed);
    for handle in clients {
        if let Ok(Err(error)) = handle.join() {
            eprintln!("splitlab: a client could not enter its namespace: {error}");
        }
    }
    let workload_end_ns = mono_ns();
    let (mut faults, skipped, processes) = timeline?;

    // Heal everything: network faults, paused and killed processes.
    progress.note("healing ...");
    let lab = guard.lab();
    lab.heal_all()?;
    for nodes in processes.paused.values() {
        for node in nodes {
            lab.apply(&Fault::Cont { node: node.clone() })?;
        }
    }
    for nodes in processes.killed.values() {
        for node in nodes {
            lab.apply(&Fault::Restart { node: node.clone() })?;
        }
    }
    let healed_ns = mono_ns();
    for fault in &mut faults {
        if fault.end_ns.is_none() {
            fault.end_ns = Some(healed_ns);
        }
    }

    // Quiesce: wait until every node reports the same commit index and state
    // hash (or the bound runs out; the convergence check then says so).
    let bound = scenario
        .checks
        .convergence_within
        .unwrap_or(Dur(
            5 * timing.election_timeout_max.as_nanos() + 2_000_000_000
        ))
        .max(scenario.quiesce);
    progress.note("quiescing ...");
    let deadline = healed_ns + bound.as_nanos();
    let mut stable = 0;
    while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
        let (view, statuses) = observer.view();
        let converged = view.leader.is_some()
            && statuses.len() == node_names.len()
            && statuses.windows(2).all(|pair| {
                pair[0].commit_index == pair[1].commit_index
                    && pair[0].applied_index == pair[1].applied_index
                    && pair[0].state_hash == pair[1].state_hash
            });
        stable = if converged { stable + 1 } else { 0 };
        if stable >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }

    // Final reads: every key, through the leader, from the control namespace.
    let final_reads_ns = mono_ns();
    for key_index in 0..scenario.workload.keys {
        let key = format!("k{key_index}");
        for attempt in 0..6u64 {
            let (view, _) = observer.view();
            let target = view
                .leader
                .and_then(|leader| client_addrs.iter().position(|(n, _)| *n == leader))
                .unwrap_or(attempt as usize % client_addrs.len());
            let (node, addr) = client_addrs[target].clone();
            let request = Request::Read { key: key.clone() };
            let process = FINAL_READ_PROCESS + u64::from(key_index);
            let invoke = workload::invoke_op(process, &request, &node, mono_ns());
            let outcome = observer.read(addr, &key, Duration::from_secs(2));
            let done = workload::completion_op(&invoke, &outcome, mono_ns());
            let ok = done.kind == OpKind::Ok;
            let _ = history_tx.send(invoke);
            let _ = history_tx.send(done);
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    drop(history_tx);
    let history = recorder
        .join()
        .map_err(|_| anyhow::anyhow!("history recorder panicked"))??;

    // The end-of-run snapshot convergence is judged on.
    let mut events = Vec::new();
    let now = mono_ns();
    for status in observer.statuses() {
        events.push(NodeEvent::new(
            status.node.clone(),
            now,
            now,
            status.term,
            EventKind::FinalState {
                commit_index: status.commit_index,
                applied_index: status.applied_index,
                state_hash: status.state_hash,
            },
        ));
    }
    checker::save_events(&setup.run_dir.join("final_state.jsonl"), &events)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    drop(observer);

    let (ok, fail, info) = counters.snapshot();
    progress.finish(&format!(
        "workload done: {ok} ok, {fail} fail, {info} info; {} final reads",
        history
            .iter()
            .filter(|op| op.process >= FINAL_READ_PROCESS && op.kind != OpKind::Invoke)
            .count()
    ));
    Ok(Execution {
        history,
        events,
        faults,
        frame: RunFrame {
            workload_start_ns,
            workload_end_ns,
            healed_ns,
            final_reads_ns,
        },
        skipped,
        lab_up_ms: 0.0,
        lab_down_ms: 0.0,
    })
}

/// A representative netlab fault per network step (role targets are not
/// known yet, but backends depend on the kind of effect, not on who gets it).
fn representative_faults(loaded: &LoadedScenario, nodes: &[String]) -> Vec<(String, Fault)> {
    let mut out = Vec::new();
    let all_links = nemesis::links(nodes, nodes, None);
    for spanned in &loaded.scenario.timeline {
        let step = spanned.get_ref();
        let planes = nemesis::planes(step.plane);
        let fault = match step.fault {
            FaultKind::Partition if nodes.len() >= 2 => Fault::Partition {
                grudge: netlab::grudge::isolate_one(&nodes[0], nodes),
                planes,
            },
            FaultKind::Loss
            | FaultKind::Delay
            | FaultKind::Duplicate
            | FaultKind::Corrupt
            | FaultKind::Reorder
            | FaultKind::Rate => Fault::Shape {
                links: all_links.clone(),
                planes,
                shape: nemesis::shape_of(step),
            },
            FaultKind::LinkDown | FaultKind::Flap if nodes.len() >= 2 => Fault::LinkDown {
                a: nodes[0].clone(),
                b: nodes[1].clone(),
            },
            _ => continue,
        };
        out.push((step.describe(), fault));
    }
    out
}

/// The first timeline step this machine cannot apply, with the reason.
fn unsupported_step(lab: &Lab, loaded: &LoadedScenario, nodes: &[String]) -> Option<String> {
    representative_faults(loaded, nodes)
        .into_iter()
        .find_map(|(description, fault)| match lab.check_supported(&[fault]) {
            Err(error @ NetlabError::Unsupported(_)) => {
                Some(format!("step \"{description}\": {error}"))
            }
            _ => None,
        })
}

/// Pauses a leader that is not `preferred` for one election timeout so the
/// others elect again, until `preferred` leads (bounded attempts).
fn steer_leadership(
    lab: &mut Lab,
    observer: &Observer,
    preferred: &str,
    mut leader: (String, u64),
    timing: &Timing,
    cancel: &AtomicBool,
    progress: &Progress,
) -> anyhow::Result<(String, u64)> {
    for _ in 0..10 {
        if leader.0 == preferred || cancel.load(Ordering::Relaxed) {
            break;
        }
        progress.note(&format!(
            "steering leadership from {} to {preferred} ...",
            leader.0
        ));
        let pause = timing.election_timeout_max.as_std() + timing.heartbeat.as_std() * 2;
        lab.apply(&Fault::Stop {
            node: leader.0.clone(),
        })?;
        std::thread::sleep(pause);
        lab.apply(&Fault::Cont {
            node: leader.0.clone(),
        })?;
        std::thread::sleep(timing.election_timeout_max.as_std());
        leader = observer
            .wait_for_leader(Duration::from_secs(10), cancel)
            .ok_or_else(|| anyhow::anyhow!("no leader after steering leadership"))?;
    }
    if leader.0 != preferred {
        progress.note(&format!(
            "could not make {preferred} the leader; continuing with {}",
            leader.0
        ));
    }
    Ok(observer.wait_until_settled(leader, timing, cancel, progress))
}

type TimelineResult = anyhow::Result<(Vec<FaultRecord>, Option<String>, ProcessState)>;

fn run_timeline(
    setup: &RunSetup<'_>,
    guard: &mut LabGuard,
    observer: &Observer,
    start_ns: u64,
    end_ns: u64,
    counters: &Counters,
    progress: &Progress,
) -> TimelineResult {
    let scenario = &setup.loaded.scenario;
    let nodes: Vec<String> = setup.topology.node_names();
    let mut rng = SeededRng::new(setup.seed ^ 0x5EED_7157);
    let mut active = ActiveFaults::default();
    let mut processes = ProcessState::default();
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut record_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut flap_pairs: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
    let mut leader_label = String::from("?");
    let mut last_poll = 0u64;
    let actions = schedule(setup.loaded);
    let mut next = 0;
    loop {
        if setup.cancel.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted (Ctrl-C)");
        }
        let now = mono_ns();
        if now >= end_ns {
            break;
        }
        if now - last_poll >= 1_000_000_000 {
            let (view, statuses) = observer.view();
            leader_label = view.leader.map_or_else(
                || "none".to_string(),
                |leader| {
                    let term = statuses
                        .iter()
                        .find(|s| s.node == leader)
                        .map_or(0, |s| s.term);
                    format!("{leader} t{term}")
                },
            );
            last_poll = mono_ns();
        }
        let active_steps: Vec<String> = records
            .iter()
            .filter(|record| record.end_ns.is_none())
            .map(|record| record.description.clone())
            .collect();
        progress.update(
            now - start_ns,
            counters.snapshot(),
            &leader_label,
            &active_steps,
        );
        let Some(&(offset, action)) = actions.get(next) else {
            std::thread::sleep(Duration::from_millis(100).min(Duration::from_nanos(end_ns - now)));
            continue;
        };
        let due = start_ns + offset;
        if now < due {
            std::thread::sleep(Duration::from_nanos((due - now).min(100_000_000)));
            continue;
        }
        next += 1;
        let step_index = match action {
            Action::Start(i) | Action::End(i) | Action::Flap(i, _) => i,
        };
        let step = scenario.timeline[step_index].get_ref();
        let lab = guard.lab();
        let applied: Result<(), NetlabError> = match action {
            Action::Start(index) => {
                let (view, statuses) = observer.view();
                let leader_before = view.leader.as_ref().map(|leader| {
                    let term = statuses
                        .iter()
                        .find(|s| &s.node == leader)
                        .map_or(0, |s| s.term);
                    (leader.clone(), term)
                });
                let resolve = |targets: &Option<toml::Spanned<Targets>>, rng: &mut SeededRng| {
                    targets
                        .as_ref()
                        .map(|t| targets::resolve(t.get_ref(), &view, rng))
                        .transpose()
                };
                let targets = match resolve(&step.targets, &mut rng) {
                    Ok(targets) => targets.unwrap_or_default(),
                    Err(error) => {
                        anyhow::bail!("timeline step {} ({}): {error}", index + 1, step.describe())
                    }
                };
                let peers = match resolve(&step.peers, &mut rng) {
                    Ok(peers) => peers,
                    Err(error) => {
                        anyhow::bail!("timeline step {} ({}): {error}", index + 1, step.describe())
                    }
                };
                let description = describe_resolved(step, &targets, peers.as_deref());
                let mut record = FaultRecord {
                    step: index,
                    kind: step.fault,
                    description: description.clone(),
                    targets: targets.clone(),
                    grudge: None,
                    all_planes: step.plane == Plane::All,
                    start_ns: mono_ns(),
                    end_ns: None,
                    leader_before,
                };
                progress.event(&format!(
                    "+{:.1}s {description}",
                    (mono_ns() - start_ns) as f64 / 1e9
                ));
                let result = start_step(
                    lab,
                    step,
                    index,
                    &nodes,
                    &targets,
                    peers.as_deref(),
                    &mut rng,
                    &mut active,
                    &mut processes,
                    &mut flap_pairs,
                    &mut record,
                );
                // The fault is in force once netlab has applied it in every
                // namespace: writes a minority acknowledged before that were
                // legitimate, so the window starts here.
                record.start_ns = mono_ns();
                if matches!(step.fault, FaultKind::Restart | FaultKind::Heal) {
                    record.end_ns = Some(record.start_ns);
                }
                record_of.insert(index, records.len());
                records.push(record);
                result
            }
            Action::End(index) => {
                // The fault starts lifting as soon as the first namespace is
                // healed, so its window ends before the removal is applied.
                let lifting_ns = mono_ns();
                let result = end_step(
                    lab,
                    step,
                    index,
                    &mut active,
                    &mut processes,
                    &mut flap_pairs,
                );
                if let Some(record) = record_of.get(&index).map(|&i| &mut records[i]) {
                    record.end_ns = Some(lifting_ns);
                    progress.event(&format!(
                        "+{:.1}s end: {}",
                        (mono_ns() - start_ns) as f64 / 1e9,
                        record.description
                    ));
                }
                result
            }
            Action::Flap(index, down) => {
                let pairs = flap_pairs.get(&index).cloned().unwrap_or_default();
                pairs.into_iter().try_for_each(|(a, b)| {
                    lab.apply(&if down {
                        Fault::LinkDown { a, b }
                    } else {
                        Fault::LinkUp { a, b }
                    })
                })
            }
        };
        if let Err(error) = applied {
            if is_unsupported(&error) {
                return Ok((records, Some(error.to_string()), processes));
            }
            return Err(error.into());
        }
    }
    Ok((records, None, processes))
}

/// "partition isolate leader" → "partition isolate [n2] (leader)".
fn describe_resolved(
    step: &super::scenario::Step,
    targets: &[String],
    peers: Option<&[String]>,
) -> String {
    let mut text = step.describe();
    if !targets.is_empty() {
        text.push_str(&format!(" → [{}]", targets.join(", ")));
    }
    if let Some(peers) = peers {
        text.push_str(&format!(" ↔ [{}]", peers.join(", ")));
    }
    if !step.label.is_empty() {
        text = format!("{} ({text})", step.label);
    }
    text
}

#[allow(clippy::too_many_arguments)]
fn start_step(
    lab: &mut Lab,
    step: &super::scenario::Step,
    index: usize,
    nodes: &[String],
    targets: &[String],
    peers: Option<&[String]>,
    rng: &mut SeededRng,
    active: &mut ActiveFaults,
    processes: &mut ProcessState,
    flap_pairs: &mut BTreeMap<usize, Vec<(String, String)>>,
    record: &mut FaultRecord,
) -> Result<(), NetlabError> {
    let planes = nemesis::planes(step.plane);
    let apply_all =
        |lab: &mut Lab, faults: Vec<Fault>| faults.iter().try_for_each(|f| lab.apply(f));
    match step.fault {
        FaultKind::Partition => {
            let components: Option<Vec<Vec<String>>> =
                step.components.as_ref().map(|c| c.get_ref().clone());
            let grudge = targets::partition_grudge(
                step.grudge.unwrap_or(Grudge::Isolate),
                nodes,
                targets,
                peers,
                components.as_deref(),
                rng,
            );
            record.grudge = Some(grudge.clone());
            if let Some(Targets::Role(Role::BridgeAroundLeader)) =
                step.targets.as_ref().map(|t| t.get_ref())
            {
                record.targets = targets.to_vec();
            }
            let faults = active.start(index, ActiveNet::Partition { grudge, planes });
            apply_all(lab, faults)
        }
        FaultKind::Heal => {
            active.clear();
            lab.heal_all()
        }
        FaultKind::Loss
        | FaultKind::Delay
        | FaultKind::Duplicate
        | FaultKind::Corrupt
        | FaultKind::Reorder
        | FaultKind::Rate => {
            let links = nemesis::links(nodes, targets, peers);
            let faults = active.start(
                index,
                ActiveNet::Shape {
                    links,
                    planes,
                    shape: nemesis::shape_of(step),
                },
            );
            apply_all(lab, faults)
        }
        FaultKind::LinkDown => {
            let pairs = nemesis::pairs(&nemesis::links(nodes, targets, peers));
            let faults = active.start(index, ActiveNet::LinkDown { pairs });
            apply_all(lab, faults)
        }
        FaultKind::Flap => {
            let pairs = nemesis::pairs(&nemesis::links(nodes, targets, peers));
            flap_pairs.insert(index, pairs.clone());
            let faults = active.start(index, ActiveNet::LinkDown { pairs });
            apply_all(lab, faults)
        }
        FaultKind::Kill => {
            for node in targets {
                lab.apply(&Fault::Kill { node: node.clone() })?;
            }
            processes.killed.insert(index, targets.to_vec());
            Ok(())
        }
        FaultKind::Pause => {
            for node in targets {
                lab.apply(&Fault::Stop { node: node.clone() })?;
            }
            processes.paused.insert(index, targets.to_vec());
            Ok(())
        }
        FaultKind::Restart => targets
            .iter()
            .try_for_each(|node| lab.apply(&Fault::Restart { node: node.clone() })),
    }
}

fn end_step(
    lab: &mut Lab,
    step: &super::scenario::Step,
    index: usize,
    active: &mut ActiveFaults,
    processes: &mut ProcessState,
    flap_pairs: &mut BTreeMap<usize, Vec<(String, String)>>,
) -> Result<(), NetlabError> {
    match step.fault {
        FaultKind::Kill => {
            for node in processes.killed.remove(&index).unwrap_or_default() {
                lab.apply(&Fault::Restart { node })?;
            }
            Ok(())
        }
        FaultKind::Pause => {
            for node in processes.paused.remove(&index).unwrap_or_default() {
                lab.apply(&Fault::Cont { node })?;
            }
            Ok(())
        }
        FaultKind::Flap => {
            // The last toggle may have left links down or up; bring all up.
            let pairs = flap_pairs.remove(&index).unwrap_or_default();
            active.end(index);
            pairs
                .into_iter()
                .try_for_each(|(a, b)| lab.apply(&Fault::LinkUp { a, b }))
        }
        _ => active
            .end(index)
            .iter()
            .try_for_each(|fault| lab.apply(fault)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::scenario;

    #[test]
    fn preflight_checks_one_representative_fault_per_network_step() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/packet-chaos.toml");
        let (loaded, topology) = crate::run::load::load_scenario(&path).unwrap();
        let faults = representative_faults(&loaded, &topology.node_names());
        assert_eq!(faults.len(), 3);
        assert!(
            faults
                .iter()
                .all(|(_, f)| matches!(f, Fault::Shape { links, .. } if links.len() == 6))
        );
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/kill-restart.toml");
        let (loaded, topology) = crate::run::load::load_scenario(&path).unwrap();
        assert!(representative_faults(&loaded, &topology.node_names()).is_empty());
    }

    #[test]
    fn flaps_toggle_between_start_and_end_and_ends_sort_first() {
        let text = r#"
topology = "mesh-3"
duration = "20s"
[workload]
clients = 1
[[timeline]]
at = "1s"
for = "2s"
fault = "flap"
targets = "follower"
period = "1s"
[[timeline]]
at = "3s"
for = "1s"
fault = "partition"
targets = "leader"
"#;
        let parsed = scenario::parse(text, Path::new("f.toml")).unwrap();
        let loaded = LoadedScenario {
            path: "f.toml".into(),
            text: text.into(),
            scenario: parsed,
            catalog: scenario::NodeCatalog::new(vec!["n1".into(), "n2".into(), "n3".into()]),
        };
        let actions = schedule(&loaded);
        let s = 1_000_000_000u64;
        assert_eq!(
            actions,
            vec![
                (s, Action::Start(0)),
                (s + s / 2, Action::Flap(0, false)),
                (2 * s, Action::Flap(0, true)),
                (2 * s + s / 2, Action::Flap(0, false)),
                (3 * s, Action::End(0)),
                (3 * s, Action::Start(1)),
                (4 * s, Action::End(1)),
            ]
        );
    }
}
