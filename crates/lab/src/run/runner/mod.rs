//! The impure part of `splitlab run`, phase by phase: bring the lab up,
//! start `splitnode` in every namespace (`spawn`), wait for a settled leader
//! (`observer`), drive clients and the fault timeline (`timeline`, faults
//! applied by the nemesis), then heal, quiesce, read the final state and
//! tear everything down on every path (`endgame`).
//!
//! Threads: the calling thread owns the [`Lab`] and runs the timeline; one
//! thread per client lives in its home node's namespace; status polls and
//! final reads run on a thread in the control namespace (linked to every
//! node, never faulted); one thread records the history.
mod endgame;
mod node_faults;
mod observer;
mod spawn;
mod timeline;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use checker::{NodeEvent, Op, OpKind};
use client::mono_ns;
use netlab::{Lab, LabOptions, Target, Topology};

use self::endgame::LabGuard;
use self::observer::Observer;
use self::spawn::ClientShared;
use self::timeline::Window;
use super::achieved::ProbeCost;
use super::achieved::live::LiveMeasure;
use super::judge::{FaultRecord, RunFrame};
use super::nemesis;
use super::observer_leadership::LeadershipWatch;
use super::progress::Progress;
use super::scenario::{LoadedScenario, Timing};
use super::workload::Counters;

/// History process ids at or above this are the runner's final reads.
pub const FINAL_READ_PROCESS: u64 = 1_000_000;

/// What a run produced, for judging and reporting.
pub struct Execution {
    /// Every client operation plus the final reads.
    pub history: Vec<Op>,
    /// Every node's event log plus the runner's `final_state` events.
    pub events: Vec<NodeEvent>,
    /// One window per timeline step that fired.
    pub faults: Vec<FaultRecord>,
    /// When the workload, the heal and the final reads happened.
    pub frame: RunFrame,
    /// Set when a fault could not be applied on this machine.
    pub skipped: Option<String>,
    /// Client threads that panicked or stopped on an error (the history
    /// then lacks their operations: the run cannot be judged valid).
    pub client_failures: Vec<String>,
    /// Lab bring-up duration (ms).
    pub lab_up_ms: f64,
    /// Lab teardown duration (ms).
    pub lab_down_ms: f64,
    /// What the live probes cost (`None`: they never started).
    pub probe_cost: Option<ProbeCost>,
}

/// Paths and settings the runner needs besides the scenario.
pub struct RunSetup<'a> {
    /// The validated scenario.
    pub loaded: &'a LoadedScenario,
    /// Its resolved topology.
    pub topology: &'a Topology,
    /// The seed in force (the scenario's, or `--seed`).
    pub seed: u64,
    /// Where the run's files go.
    pub run_dir: &'a Path,
    /// The `splitnode` binary.
    pub splitnode: &'a Path,
    /// The system under test (how members start, the client protocol,
    /// where leadership comes from).
    pub system: &'a crate::system::System,
    /// Set by Ctrl-C / SIGTERM; the runner then stops and tears down.
    pub cancel: Arc<AtomicBool>,
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
            // Delay-worker logs and heartbeats outlive the lab.
            log_dir: Some(setup.run_dir.join("netlab")),
            ..LabOptions::default()
        },
    )?;
    let lab_up_ms = (mono_ns() - up_started) as f64 / 1e6;
    let mut guard = LabGuard::new(lab);
    let result = drive(setup, &mut guard, &timing, &node_names, &progress);
    guard.teardown()?;
    let mut execution = result?;
    execution.lab_up_ms = lab_up_ms;
    execution.lab_down_ms = guard.down_ms;
    // Node event logs are on the host file system; read them after the
    // processes are gone so every line is complete.
    for node in &node_names {
        let path = spawn::node_dir(setup.run_dir, node).join("events.jsonl");
        if path.exists() {
            let mut events = checker::load_events(&path)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            execution.events.append(&mut events);
        }
    }
    execution.events.sort_by_key(|event| event.mono_ns);
    Ok(execution)
}

/// Every phase between lab bring-up and teardown.
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
    let unsupported = nemesis::unsupported_step(lab, setup.loaded, node_names)
        .or_else(|| node_faults::unsupported_for_system(setup));
    if let Some(reason) = unsupported {
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
            client_failures: Vec::new(),
            lab_up_ms: 0.0,
            lab_down_ms: 0.0,
            probe_cost: None,
        });
    }
    // The live probes measure every fault; they run (and are stopped when
    // `probes` drops) before the nodes start.
    let probes_started = mono_ns();
    let mut probes = lab.start_live_probes(
        &setup.run_dir.join("probes"),
        netlab::liveprobe::DEFAULT_INTERVAL,
    )?;
    let mut live = LiveMeasure::default();
    let lab = guard.lab();
    if node_faults::needs_data_disks(scenario) {
        for node in node_names {
            let dir = spawn::node_dir(setup.run_dir, node);
            node_faults::mount_data_disk(lab, scenario, node, &dir)?;
        }
    }
    spawn::start_nodes(setup, lab)?;
    let client_addrs: Vec<(String, SocketAddr)> = node_names
        .iter()
        .map(|node| {
            (
                node.clone(),
                crate::system::client_addr(setup.system, lab, node)
                    .expect("every node has an address"),
            )
        })
        .collect();
    let observer = Observer::new(
        lab.netns_thread(&Target::Control)?,
        client_addrs.clone(),
        setup.system.protocol(),
    );
    // Systems without an event log are watched from the control namespace
    // for the whole run (stopped before teardown, below).
    let watch = if setup.system.observed() {
        Some(LeadershipWatch::start(
            &lab.netns_of(&Target::Control)?,
            &client_addrs,
            setup.system.protocol(),
        )?)
    } else {
        None
    };
    let leader = elect(setup, guard, &observer, timing, progress)?;
    progress.note(&format!(
        "leader {} (term {}); starting clients",
        leader.0, leader.1
    ));

    let (history_tx, recorder) = spawn::start_recorder(setup.run_dir)?;
    let workload_start_ns = mono_ns();
    let window = Window {
        start_ns: workload_start_ns,
        end_ns: workload_start_ns + scenario.duration.as_nanos(),
    };
    let shared = ClientShared {
        history: history_tx,
        stop: Arc::new(AtomicBool::new(false)),
        counters: Arc::new(Counters::default()),
    };
    let clients = spawn::start_clients(setup, guard.lab(), &client_addrs, &shared, window.end_ns)?;
    let timeline = timeline::run_timeline(
        setup,
        guard,
        &observer,
        &window,
        &shared.counters,
        progress,
        &mut live,
    );
    shared.stop.store(true, Ordering::Relaxed);
    let mut client_failures = Vec::new();
    for (process, handle) in clients.into_iter().enumerate() {
        let failure = match handle.join() {
            Ok(Ok(Ok(()))) => continue,
            Ok(Ok(Err(error))) => format!("client {process} stopped: {error}"),
            Ok(Err(error)) => format!("client {process} could not enter its namespace: {error}"),
            Err(panic) => format!("client {process} panicked: {}", panic_message(&*panic)),
        };
        eprintln!("splitlab: {failure}");
        client_failures.push(failure);
    }
    let workload_end_ns = mono_ns();
    let timeline = timeline?;
    let mut faults = timeline.records;
    let mut nemesis = timeline.nemesis;

    // Heal everything: network faults, paused and killed processes.
    progress.note("healing ...");
    for fault in faults.iter_mut().filter(|fault| fault.end_ns.is_none()) {
        live.on_end(guard.lab(), fault.step, fault);
    }
    nemesis.heal_everything(guard.lab())?;
    let healed_ns = mono_ns();
    for fault in &mut faults {
        if fault.end_ns.is_none() {
            fault.end_ns = Some(healed_ns);
        }
    }
    progress.note("quiescing ...");
    endgame::quiesce(scenario, timing, &observer, healed_ns, cancel);
    let final_reads_ns = mono_ns();
    endgame::final_reads(
        scenario.workload.keys,
        scenario.workload.mix.append > 0,
        &observer,
        &client_addrs,
        &shared.history,
    );
    let counters = shared.counters.clone();
    drop(shared);
    let history = recorder
        .join()
        .map_err(|_| anyhow::anyhow!("history recorder panicked"))??;
    let mut events = endgame::final_state(&observer);
    checker::save_events(&setup.run_dir.join("final_state.jsonl"), &events)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    drop(observer);
    if let Some(watch) = watch {
        events.append(&mut watch.finish(&setup.run_dir.join("nodes"))?);
    }

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
        skipped: timeline.skipped,
        client_failures,
        lab_up_ms: 0.0,
        lab_down_ms: 0.0,
        probe_cost: Some(ProbeCost {
            processes: node_names.len(),
            cpu_s: probes.cpu_ticks() as f64 / clock_ticks_per_second(),
            wall_s: (mono_ns() - probes_started) as f64 / 1e9,
            exited: probes.exited(),
        }),
    })
}

/// `sysconf(_SC_CLK_TCK)`: the unit of /proc/<pid>/stat CPU times.
fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |ticks| ticks as f64)
}

/// The text of a thread's panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".to_string())
}

/// Waits for a leader, lets the cluster settle and, when the scenario
/// prefers a leader, steers leadership there; returns the leader and term.
fn elect(
    setup: &RunSetup<'_>,
    guard: &mut LabGuard,
    observer: &Observer,
    timing: &Timing,
    progress: &Progress,
) -> anyhow::Result<(String, u64)> {
    let cancel = &setup.cancel;
    progress.note("waiting for a leader ...");
    let settle = Duration::from_nanos(20 * timing.election_timeout_max.as_nanos())
        .max(Duration::from_secs(10));
    let Some(leader) = observer.wait_for_leader(settle, cancel) else {
        anyhow::bail!(
            "no leader emerged within {:.1}s (see {}/nodes/*/splitnode.log)",
            settle.as_secs_f64(),
            setup.run_dir.display()
        );
    };
    let leader = observer.wait_until_settled(leader, timing, cancel, progress);
    match &setup.loaded.scenario.nodes.prefer_leader {
        Some(preferred) => observer::steer_leadership(
            guard.lab(),
            observer,
            preferred.get_ref(),
            leader,
            timing,
            cancel,
            progress,
        ),
        None => Ok(leader),
    }
}
