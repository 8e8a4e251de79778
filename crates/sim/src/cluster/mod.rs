//! The deterministic in-memory cluster: real [`consensus::Replica`]s driven
//! exactly per the driver contract in `consensus/src/lib.rs`, over the
//! simulated network, disks, clocks and clients.
//!
//! One event queue (ordered by true time, then insertion order) holds
//! message deliveries, ticks, fsync completions, nemesis faults and client
//! events. Nothing reads a wall clock and every collection iterates in a
//! fixed order, so a run is a pure function of `(seed, options)`.
//!
//! A run has five phases: the workload runs while the nemesis injects the
//! schedule; at `heal_at` everything is healed (links, paused and crashed
//! nodes) and the clients keep running for the recovery time (so every run
//! has a calm stretch in which writes must progress and elections settle);
//! then the clients stop; once the cluster has settled, a final client
//! reads every key linearizably; once it has converged (or a deadline
//! passed), every node's final state is logged and the run ends.
//!
//! This module owns the state and the run loop; the rooms around it:
//! `setup` builds a run, `driver` applies replica steps and their actions
//! (persistence included), `events` turns replica events into checker events,
//! `transport` moves messages, `clients` connects the workload, `nemesis`
//! applies faults, `partition` resolves partition shapes, `windows` derives
//! the checker's fault windows from the faults in force, `endgame` heals,
//! runs the final reads and waits for convergence.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use checker::{EventKind, NodeEvent};
use consensus::{ClientRequest, Config, Input, NodeId, Outbound, Replica};
use faults::Grudge;

use crate::clock::NodeClock;
use crate::net::Network;
use crate::rng::SimRng;
use crate::schedule::{EpisodeKind, Fault, Timing};
use crate::storage::Disk;
use crate::trace::Trace;
use crate::workload::{Outcome, Workload};

mod clients;
mod driver;
mod endgame;
mod events;
mod nemesis;
mod options;
mod partition;
mod setup;
mod transport;
mod windows;

use transport::Delivery;

pub use options::{DriverBug, RunOutput, RunStats, Script, SimOptions};
pub use setup::{base_config, timing};
pub use windows::{FaultWindows, Running};

const MS: u64 = 1_000_000;
/// The cluster id every simulated frame would carry.
pub const CLUSTER_ID: u64 = 0x5117_1ab5;
/// Inputs a paused process can have queued (socket buffers) before drops.
const BACKLOG_LIMIT: usize = 20_000;
/// Replica steps after which a run is cut short. A healthy run of seven
/// nodes takes a few tens of thousands; some incorrect strategies ping-pong
/// messages between two self-declared leaders without end, and judging the
/// history up to that point is as conclusive as simulating millions more.
pub const STEP_BUDGET: u64 = 200_000;

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Tick {
        node: usize,
        epoch: u64,
    },
    Deliver(Delivery),
    Fsync {
        node: usize,
        incarnation: u64,
    },
    Fault(Fault),
    ClientWake {
        client: usize,
    },
    ClientTimeout {
        client: usize,
        serial: u64,
    },
    RequestArrives {
        attempt: u64,
        node: NodeId,
        incarnation: u64,
        request: ClientRequest,
    },
    OutcomeArrives {
        attempt: u64,
        node: NodeId,
        outcome: Outcome,
    },
    HealAll,
    StopClients,
    Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Faults,
    /// Healed, the clients still running: the cluster must recover (I11,
    /// I12 judge this stretch in every run).
    Recovering,
    /// The clients stopped; waiting for them to finish and a leader to settle.
    Settling {
        since: u64,
    },
    FinalReads {
        since: u64,
    },
    Converging {
        since: u64,
    },
    Done,
}

struct SimNode {
    id: NodeId,
    name: String,
    config: Config,
    clock: NodeClock,
    replica: Option<Replica>,
    /// Bumped by every crash: fsyncs and client connections of an older
    /// incarnation are void.
    incarnation: u64,
    /// Bumped whenever the tick chain restarts (pause, crash).
    tick_epoch: u64,
    paused: bool,
    backlog: VecDeque<Input>,
    disk: Disk,
    held: Vec<Outbound>,
    disk_slowdown: u64,
    /// Crash right after the next step that leaves writes unsynced (the
    /// episode that armed it).
    crash_armed: Option<u64>,
}

/// The simulator for one run.
pub struct Cluster {
    seed: u64,
    options: SimOptions,
    timing: Timing,
    now: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    next_seq: u64,
    nodes: Vec<SimNode>,
    ids: Vec<NodeId>,
    net: Network,
    net_rng: SimRng,
    disk_rng: SimRng,
    nemesis_rng: SimRng,
    workload: Workload,
    client_latency: (u64, u64),
    heal_at: u64,
    kinds: BTreeSet<EpisodeKind>,
    /// Which episode kind each planned episode belongs to.
    episode_kinds: BTreeMap<u64, EpisodeKind>,
    /// Episode kinds with at least one fault that took effect.
    fired: BTreeSet<EpisodeKind>,
    phase: Phase,
    episode_grudges: BTreeMap<u64, Grudge<NodeId>>,
    episode_nodes: BTreeMap<u64, usize>,
    /// Client attempts sent to a node and not yet answered.
    in_flight: BTreeMap<u64, NodeId>,
    events: Vec<NodeEvent>,
    /// (event index, node index, lease end on the node's clock).
    lease_fixups: Vec<(usize, usize, u64)>,
    driver_violations: Vec<String>,
    /// The faults in force, from each change on (see `windows`).
    stretches: Vec<(u64, windows::Snapshot)>,
    /// When the clients stopped (the heal).
    workload_end_ns: u64,
    final_reads_from_ns: u64,
    trace: Trace,
    stats: RunStats,
}

fn name_of(id: NodeId) -> String {
    format!("n{id}")
}

impl Cluster {
    fn schedule(&mut self, at: u64, event: Ev) {
        self.next_seq += 1;
        self.queue.insert((at.max(self.now), self.next_seq), event);
    }

    fn violation(&mut self, text: String) {
        self.trace.line(self.now, format_args!("VIOLATION {text}"));
        self.driver_violations.push(text);
    }

    /// Runs to the end and hands back what happened.
    pub fn run(mut self) -> RunOutput {
        for index in 0..self.nodes.len() {
            self.start_node(index);
        }
        self.faults_changed();
        self.drive_workload(|w, _| w.start());
        // A hard stop in case the cluster never settles.
        let hard_stop = self.heal_at + self.recovery_ns() + 20_000 * MS;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > hard_stop || self.phase == Phase::Done {
                break;
            }
            if self.stats.steps >= STEP_BUDGET {
                self.stats.step_budget_exceeded = true;
                self.trace.line(
                    self.now,
                    format_args!("step budget of {STEP_BUDGET} exhausted: cutting the run short"),
                );
                break;
            }
            self.now = at;
            self.handle(event);
        }
        if self.phase != Phase::Done {
            self.finish();
        }
        for (event_index, node_index, until) in std::mem::take(&mut self.lease_fixups) {
            let until_mono = self.nodes[node_index].clock.to_true(until);
            if let EventKind::LeaseExtended { until_mono_ns } = &mut self.events[event_index].kind {
                *until_mono_ns = until_mono;
            }
        }
        let timing = crate::election_timing();
        let windows = windows::windows(
            &self.stretches,
            self.now,
            self.workload_end_ns.min(self.now),
            windows::WindowBounds {
                settle_ns: timing.settle_ns(),
                min_quorum_ns: timing.progress_grace_ns() + self.workload.op_timeout_ns(),
            },
        );
        self.stats.end_ns = self.now;
        self.stats.workload = self.workload.stats();
        self.trace
            .line(self.now, format_args!("end {:?}", self.stats));
        RunOutput {
            seed: self.seed,
            options: self.options,
            node_names: self.nodes.iter().map(|n| n.name.clone()).collect(),
            history: self.workload.into_history(),
            events: self.events,
            driver_violations: self.driver_violations,
            final_reads_from_ns: self.final_reads_from_ns,
            windows,
            kinds: self.kinds,
            fired: self.fired,
            stats: self.stats,
            trace: self.trace.into_text(),
        }
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Tick { node, epoch } => self.tick(node, epoch),
            Ev::Deliver(delivery) => self.deliver(delivery),
            Ev::Fsync { node, incarnation } => self.fsync_done(node, incarnation),
            Ev::Fault(fault) => self.apply_fault(fault),
            Ev::ClientWake { client } => self.drive_workload(|w, now| w.wake(client, now)),
            Ev::ClientTimeout { client, serial } => {
                self.drive_workload(|w, now| w.timeout(client, serial, now))
            }
            Ev::RequestArrives {
                attempt,
                node,
                incarnation,
                request,
            } => self.request_arrives(attempt, node, incarnation, request),
            Ev::OutcomeArrives {
                attempt,
                node,
                outcome,
            } => self.drive_workload(|w, now| w.outcome(attempt, node, outcome, now)),
            Ev::HealAll => self.heal_all(),
            Ev::StopClients => self.stop_clients(),
            Ev::Poll => self.poll(),
        }
    }
}
