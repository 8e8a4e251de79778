//! The deterministic in-memory cluster: real [`consensus::Replica`]s driven
//! exactly per the driver contract in `consensus/src/lib.rs`, over the
//! simulated network, disks, clocks and clients.
//!
//! One event queue (ordered by true time, then insertion order) holds
//! message deliveries, ticks, fsync completions, nemesis faults and client
//! events. Nothing reads a wall clock and every collection iterates in a
//! fixed order, so a run is a pure function of `(seed, options)`.
//!
//! A run has four phases: the workload runs while the nemesis injects the
//! schedule; at `heal_at` everything is healed (links, paused and crashed
//! nodes) and the clients stop; once the cluster has settled, a final client
//! reads every key linearizably; once it has converged (or a deadline
//! passed), every node's final state is logged and the run ends.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use checker::{EventKind, History, LinkDirection, NodeEvent, PartitionWindow};
use consensus::{
    Action, ClientReply, ClientRequest, Config, Event, Input, IoSeq, Message, Mode, NodeId,
    Replica, Role, StepDownReason, Term,
};

use crate::clock::NodeClock;
use crate::grudge::{self, Grudge};
use crate::net::{Channel, CopyKind, LinkFaults, Network, SendOutcome};
use crate::rng::{SimRng, mix64};
use crate::schedule::{self, EpisodeKind, Fault, LinkScope, Scheduled, Shape, Target, Timing};
use crate::storage::{Disk, PendingWrite};
use crate::trace::{Trace, describe};
use crate::workload::{Command, Outcome, Workload, WorkloadOptions, WorkloadStats};

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

/// A deliberate driver bug, for checking that the simulator and checker can
/// catch a broken implementation at all (a negative control of the harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverBug {
    /// Ignore `Send::after`: votes and acks leave before the write they
    /// promise is durable, so a crash can make a node forget a vote it
    /// cast or an entry it acknowledged.
    SendBeforePersist,
}

/// Everything a run depends on besides the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    pub mode: Mode,
    pub nodes: usize,
    /// Inject the seeded fault schedule (off: a quiet run).
    pub faults: bool,
    /// Negative control: slow a leader's clock far beyond the drift bound.
    pub drift_beyond_bound: bool,
    /// Half of the clients read through the lease instead of ReadIndex.
    pub lease_reads: bool,
    /// A crash may keep a prefix of the writes that were not yet fsynced.
    pub torn_writes: bool,
    /// Record the text trace.
    pub trace: bool,
    /// Break the driver contract on purpose (harness negative control).
    pub driver_bug: Option<DriverBug>,
}

impl SimOptions {
    pub fn new(mode: Mode, nodes: usize) -> SimOptions {
        SimOptions {
            mode,
            nodes,
            faults: true,
            drift_beyond_bound: false,
            lease_reads: true,
            torn_writes: true,
            trace: false,
            driver_bug: None,
        }
    }
}

/// A fixed fault script: faults at true times, then heal-all at `heal_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub faults: Vec<Scheduled>,
    pub heal_at: u64,
}

/// Counters describing a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub steps: u64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub fsyncs: u64,
    pub crashes: u64,
    pub pauses: u64,
    pub leaders_elected: u64,
    pub max_term: Term,
    pub end_ns: u64,
    pub converged: bool,
    pub final_reads_done: bool,
    /// The run hit [`STEP_BUDGET`] and was cut short.
    pub step_budget_exceeded: bool,
    pub workload: WorkloadStats,
}

/// What a run produced: the inputs of the checker plus what the driver
/// itself saw go wrong.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub seed: u64,
    pub options: SimOptions,
    pub history: History,
    pub events: Vec<NodeEvent>,
    /// Driver-contract breaches (storage misuse, unknown request ids,
    /// rejected configuration), each a violation of its own.
    pub driver_violations: Vec<String>,
    /// Reads invoked from here on are the final reads.
    pub final_reads_from_ns: u64,
    /// Minority windows of clean partitions (for I6).
    pub partitions: Vec<PartitionWindow>,
    pub node_names: Vec<String>,
    pub kinds: BTreeSet<EpisodeKind>,
    pub stats: RunStats,
    pub trace: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Tick {
        node: usize,
        epoch: u64,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        channel: Channel,
        generation: u64,
        term: Term,
        message: Message,
        copy: CopyKind,
    },
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
    Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Faults,
    /// Healed; waiting for the clients to finish and a leader to settle.
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

struct HeldSend {
    after: IoSeq,
    to: NodeId,
    term: Term,
    message: Message,
    channel: Channel,
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
    held: Vec<HeldSend>,
    disk_slowdown: u64,
    /// Crash right after the next step that leaves writes unsynced.
    crash_armed: bool,
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
    phase: Phase,
    episode_grudges: BTreeMap<u64, Grudge>,
    episode_nodes: BTreeMap<u64, usize>,
    /// Client attempts sent to a node and not yet answered.
    in_flight: BTreeMap<u64, NodeId>,
    events: Vec<NodeEvent>,
    /// (event index, node index, lease end on the node's clock).
    lease_fixups: Vec<(usize, usize, u64)>,
    driver_violations: Vec<String>,
    open_minorities: BTreeMap<Vec<NodeId>, u64>,
    partitions: Vec<PartitionWindow>,
    final_reads_from_ns: u64,
    trace: Trace,
    stats: RunStats,
}

/// The timing every simulated replica runs with.
pub fn timing() -> Timing {
    timing_of(&base_config(1, vec![1], Mode::Safe))
}

/// The timing profile of the simulated replicas (the `fast` profile).
pub fn base_config(id: NodeId, members: Vec<NodeId>, mode: Mode) -> Config {
    Config::fast(id, members, CLUSTER_ID, mode)
}

fn timing_of(config: &Config) -> Timing {
    Timing {
        heartbeat_ns: config.heartbeat_interval_ns,
        election_min_ns: config.election_timeout_min_ns,
        election_max_ns: config.election_timeout_max_ns,
        lease_ns: config.lease_ns(),
    }
}

fn name_of(id: NodeId) -> String {
    format!("n{id}")
}

fn step_down_reason(reason: StepDownReason) -> checker::StepDownReason {
    match reason {
        StepDownReason::HigherTerm => checker::StepDownReason::HigherTerm,
        StepDownReason::QuorumLost => checker::StepDownReason::QuorumLost,
        StepDownReason::LeaseExpired => checker::StepDownReason::LeaseExpired,
    }
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Tick => "tick".to_string(),
        Input::Message {
            from,
            term,
            message,
        } => format!("msg from n{from} t{term} {}", describe(message)),
        Input::Client { id, request } => format!("client #{id} {request:?}"),
        Input::Persisted { upto } => format!("persisted upto {}", upto.0),
    }
}

impl Cluster {
    /// A run with the seeded random fault schedule.
    pub fn new(seed: u64, options: SimOptions) -> Cluster {
        Cluster::build(seed, options, None)
    }

    /// A run with a fixed fault script instead of the random schedule
    /// (clocks, workload and network jitter still come from the seed).
    pub fn scripted(seed: u64, options: SimOptions, script: Script) -> Cluster {
        Cluster::build(seed, options, Some(script))
    }

    fn build(seed: u64, options: SimOptions, script: Option<Script>) -> Cluster {
        assert!(
            (1..=9).contains(&options.nodes),
            "node count {} outside 1..=9",
            options.nodes
        );
        let ids = schedule::node_ids(options.nodes);
        // The schedule depends on (seed, nodes, options) only, never on the
        // mode: every mode faces the same faults for a seed.
        let mut config_rng = SimRng::stream(seed, "config");
        let snapshot_threshold = *config_rng.pick(&[16, 64, 256, 10_000]);
        let max_append_entries = *config_rng.pick(&[1, 4, 16, 64]);
        let configs: Vec<Config> = ids
            .iter()
            .map(|id| {
                let mut config = base_config(*id, ids.clone(), options.mode);
                config.snapshot_threshold = snapshot_threshold;
                config.max_append_entries = max_append_entries;
                config
            })
            .collect();
        let timing = timing_of(&configs[0]);
        let mut schedule_rng = SimRng::stream(seed, "schedule");
        let schedule = schedule::generate(
            &mut schedule_rng,
            options.nodes,
            timing,
            schedule::ScheduleOptions {
                faults: options.faults,
                drift_beyond_bound: options.drift_beyond_bound,
                rho: configs[0].clock_drift_bound,
            },
        );
        let mut schedule = schedule;
        if let Some(script) = script {
            let mut faults = script.faults;
            faults.sort_by_key(|scheduled| scheduled.at);
            schedule.faults = faults;
            schedule.heal_at = script.heal_at;
            schedule.kinds = BTreeSet::new();
        }
        let nodes = ids
            .iter()
            .zip(configs)
            .enumerate()
            .map(|(index, (id, config))| SimNode {
                id: *id,
                name: name_of(*id),
                config,
                clock: NodeClock::new(
                    schedule.clock_offsets_ns[index],
                    schedule.clock_rates_ppm[index],
                ),
                replica: None,
                incarnation: 0,
                tick_epoch: 0,
                paused: false,
                backlog: VecDeque::new(),
                disk: Disk::new(),
                held: Vec::new(),
                disk_slowdown: 1,
                crash_armed: false,
            })
            .collect();
        let mut workload_options = WorkloadOptions::default_for(options.nodes);
        workload_options.lease_reads = options.lease_reads;
        let client_latency = (
            workload_options.latency_min_ns,
            workload_options.latency_max_ns,
        );
        let workload = Workload::new(
            ids.clone(),
            workload_options,
            SimRng::stream(seed, "clients"),
        );
        let mut cluster = Cluster {
            seed,
            options,
            timing,
            now: 0,
            queue: BTreeMap::new(),
            next_seq: 0,
            nodes,
            ids: ids.clone(),
            net: Network::new(ids, LinkFaults::CLEAN),
            net_rng: SimRng::stream(seed, "net"),
            disk_rng: SimRng::stream(seed, "disk"),
            nemesis_rng: SimRng::stream(seed, "nemesis"),
            workload,
            client_latency,
            heal_at: schedule.heal_at,
            kinds: schedule.kinds.clone(),
            phase: Phase::Faults,
            episode_grudges: BTreeMap::new(),
            episode_nodes: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            events: Vec::new(),
            lease_fixups: Vec::new(),
            driver_violations: Vec::new(),
            open_minorities: BTreeMap::new(),
            partitions: Vec::new(),
            final_reads_from_ns: 0,
            trace: Trace::new(options.trace),
            stats: RunStats::default(),
        };
        cluster.trace.line(
            0,
            format_args!(
                "run seed={seed} mode={} nodes={} faults={} drift_beyond_bound={} snapshot_threshold={snapshot_threshold} max_append_entries={max_append_entries}",
                options.mode.name(),
                options.nodes,
                options.faults,
                options.drift_beyond_bound
            ),
        );
        for (index, node) in cluster.nodes.iter().enumerate() {
            cluster.trace.line(
                0,
                format_args!(
                    "{} clock offset={}ns rate={}ppm",
                    node.name, schedule.clock_offsets_ns[index], schedule.clock_rates_ppm[index]
                ),
            );
        }
        for Scheduled { at, fault } in schedule.faults {
            cluster.schedule(at, Ev::Fault(fault));
        }
        cluster.schedule(schedule.heal_at, Ev::HealAll);
        cluster
    }

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
        self.drive_workload(|w, _| w.start());
        // A hard stop in case the cluster never settles.
        let hard_stop = self.heal_at + 20_000 * MS;
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
        self.close_partition_windows();
        for (event_index, node_index, until) in std::mem::take(&mut self.lease_fixups) {
            let until_mono = self.nodes[node_index].clock.to_true(until);
            if let EventKind::LeaseExtended { until_mono_ns } = &mut self.events[event_index].kind {
                *until_mono_ns = until_mono;
            }
        }
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
            partitions: self.partitions,
            kinds: self.kinds,
            stats: self.stats,
            trace: self.trace.into_text(),
        }
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Tick { node, epoch } => self.tick(node, epoch),
            Ev::Deliver {
                from,
                to,
                channel,
                generation,
                term,
                message,
                copy,
            } => self.deliver(from, to, channel, generation, term, message, copy),
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
            Ev::Poll => self.poll(),
        }
    }

    // ----- nodes -------------------------------------------------------

    fn local_now(&self, index: usize) -> u64 {
        self.nodes[index].clock.local(self.now)
    }

    fn start_node(&mut self, index: usize) {
        let local = self.local_now(index);
        let node = &mut self.nodes[index];
        let restored = node.disk.durable().restore();
        let last_index = restored.last_index();
        let term = restored.term;
        let replica_seed =
            mix64(self.seed ^ mix64(node.id) ^ mix64(node.incarnation.wrapping_add(0x51)));
        match Replica::new(node.config.clone(), restored, replica_seed, local) {
            Ok(replica) => node.replica = Some(replica),
            Err(error) => {
                let text = format!(
                    "{}: the replica rejected its configuration: {error}",
                    node.name
                );
                self.violation(text);
                return;
            }
        }
        let name = node.name.clone();
        self.trace.line(
            self.now,
            format_args!("{name} start term={term} last_index={last_index}"),
        );
        self.push_event(index, local, term, EventKind::Started);
        self.push_event(index, local, term, EventKind::Recovered { last_index });
        let actions = self.nodes[index]
            .replica
            .as_mut()
            .map(Replica::take_actions)
            .unwrap_or_default();
        self.handle_actions(index, actions);
        self.schedule_tick(index);
    }

    fn schedule_tick(&mut self, index: usize) {
        let node = &self.nodes[index];
        let next_local = node.clock.local(self.now) + node.config.tick_interval_ns;
        let at = node.clock.to_true(next_local).max(self.now + 1);
        let epoch = node.tick_epoch;
        self.schedule(at, Ev::Tick { node: index, epoch });
    }

    fn tick(&mut self, index: usize, epoch: u64) {
        let node = &self.nodes[index];
        if node.tick_epoch != epoch || node.replica.is_none() || node.paused {
            return;
        }
        self.step_node(index, Input::Tick);
        self.schedule_tick(index);
    }

    fn step_node(&mut self, index: usize, input: Input) {
        let local = self.local_now(index);
        let node = &mut self.nodes[index];
        let Some(replica) = node.replica.as_mut() else {
            return;
        };
        if self.trace.enabled() {
            self.trace.line(
                self.now,
                format_args!("{} step @{local} {}", node.name, describe_input(&input)),
            );
        }
        replica.step(local, input);
        let actions = replica.take_actions();
        self.stats.steps += 1;
        self.handle_actions(index, actions);
        let node = &self.nodes[index];
        if node.crash_armed && node.replica.is_some() && node.disk.has_pending() {
            self.trace.line(
                self.now,
                format_args!("{} armed crash fires after a write", node.name),
            );
            self.crash(index);
        }
    }

    fn handle_actions(&mut self, index: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send {
                    to,
                    term,
                    message,
                    transport,
                    after,
                } => {
                    let channel = Channel::of(transport);
                    let honour_after =
                        self.options.driver_bug != Some(DriverBug::SendBeforePersist);
                    match after {
                        Some(seq) if honour_after && seq > self.nodes[index].disk.durable_seq() => {
                            self.nodes[index].held.push(HeldSend {
                                after: seq,
                                to,
                                term,
                                message,
                                channel,
                            });
                        }
                        _ => self.transmit(index, to, term, message, channel),
                    }
                }
                Action::Reply { id, reply } => self.reply(index, id, reply),
                Action::Event(event) => self.record(index, event),
                persist => {
                    let Some(write) = PendingWrite::from_action(&persist) else {
                        continue;
                    };
                    if self.trace.enabled() {
                        let name = &self.nodes[index].name;
                        let text = match &write {
                            PendingWrite::Meta {
                                term,
                                voted_for,
                                seq,
                            } => {
                                format!(
                                    "{name} persist meta term={term} voted_for={voted_for:?} seq={}",
                                    seq.0
                                )
                            }
                            PendingWrite::Append {
                                truncate_after,
                                entries,
                                seq,
                            } => format!(
                                "{name} persist append truncate_after={truncate_after:?} entries={:?} seq={}",
                                entries
                                    .iter()
                                    .map(|e| (e.index, e.term))
                                    .collect::<Vec<_>>(),
                                seq.0
                            ),
                            PendingWrite::InstallSnapshot { snapshot, seq } => format!(
                                "{name} persist snapshot {}@{} seq={}",
                                snapshot.last_index, snapshot.last_term, seq.0
                            ),
                            PendingWrite::Compact { snapshot } => {
                                format!(
                                    "{name} compact to {}@{}",
                                    snapshot.last_index, snapshot.last_term
                                )
                            }
                        };
                        self.trace.line(self.now, format_args!("{text}"));
                    }
                    if let Err(error) = self.nodes[index].disk.enqueue(write) {
                        let text = format!("{}: storage contract: {error}", self.nodes[index].name);
                        self.violation(text);
                    }
                }
            }
        }
        self.maybe_fsync(index);
    }

    fn push_event(&mut self, index: usize, local: u64, term: Term, kind: EventKind) {
        let node = &self.nodes[index];
        self.events.push(NodeEvent::new(
            node.name.clone(),
            self.now,
            local,
            term,
            kind,
        ));
    }

    fn record(&mut self, index: usize, event: Event) {
        let local = self.local_now(index);
        let name = |id: NodeId| name_of(id);
        let mut lease_until = None;
        let (term, kind) = match event.clone() {
            Event::ElectionStarted { term } => (Some(term), EventKind::ElectionStarted),
            Event::PreVoteRejected { term, by } => {
                (Some(term), EventKind::PreVoteRejected { by: name(by) })
            }
            Event::BecameLeader { term } => {
                self.stats.leaders_elected += 1;
                (Some(term), EventKind::BecameLeader)
            }
            Event::SteppedDown { term, reason } => (
                Some(term),
                EventKind::SteppedDown {
                    reason: step_down_reason(reason),
                },
            ),
            Event::LeaseExtended { term, until } => {
                lease_until = Some(until);
                (Some(term), EventKind::LeaseExtended { until_mono_ns: 0 })
            }
            Event::LeaseLost { term } => (Some(term), EventKind::LeaseLost),
            Event::QuorumLost { term } => (Some(term), EventKind::QuorumLost),
            Event::QuorumRegained { term } => (Some(term), EventKind::QuorumRegained),
            Event::PeerUp { peer } => (None, EventKind::PeerUp { peer: name(peer) }),
            Event::PeerDown { peer, inbound } => (
                None,
                EventKind::PeerDown {
                    peer: name(peer),
                    direction: if inbound {
                        LinkDirection::Inbound
                    } else {
                        LinkDirection::Outbound
                    },
                },
            ),
            Event::WriteCommitted { token } => (
                None,
                EventKind::WriteCommitted {
                    token: checker::Token {
                        term: token.term,
                        index: token.index,
                    },
                },
            ),
            Event::StaleTermRejected {
                from,
                their_term,
                our_term,
            } => (
                Some(our_term),
                EventKind::StaleTermRejected {
                    from: name(from),
                    their_term,
                },
            ),
            Event::WriteAccepted { term, index } => {
                (Some(term), EventKind::WriteAccepted { index })
            }
            Event::Applied {
                index, state_hash, ..
            } => (None, EventKind::Applied { index, state_hash }),
            Event::Truncated { after } => (None, EventKind::Truncated { after }),
        };
        let term = term.unwrap_or_else(|| {
            self.nodes[index]
                .replica
                .as_ref()
                .map_or(0, |replica| replica.status().term)
        });
        self.stats.max_term = self.stats.max_term.max(term);
        if self.trace.enabled() {
            let node_name = &self.nodes[index].name;
            self.trace.line(
                self.now,
                format_args!("{node_name} event t{term} {event:?}"),
            );
        }
        if let Some(until) = lease_until {
            self.lease_fixups.push((self.events.len(), index, until));
        }
        self.push_event(index, local, term, kind);
    }

    // ----- storage -----------------------------------------------------

    fn maybe_fsync(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if node.replica.is_none() || node.paused || !node.disk.start_fsync() {
            return;
        }
        let delay = self.disk_rng.range(50_000, 2 * MS) * node.disk_slowdown;
        let incarnation = node.incarnation;
        self.stats.fsyncs += 1;
        self.schedule(
            self.now + delay,
            Ev::Fsync {
                node: index,
                incarnation,
            },
        );
    }

    fn fsync_done(&mut self, index: usize, incarnation: u64) {
        let node = &mut self.nodes[index];
        if node.incarnation != incarnation || node.replica.is_none() {
            return;
        }
        match node.disk.finish_fsync() {
            Err(error) => {
                let text = format!("{}: storage contract: {error}", node.name);
                self.violation(text);
            }
            Ok(Some(upto)) => {
                self.trace.line(
                    self.now,
                    format_args!("{} fsync done upto {}", self.nodes[index].name, upto.0),
                );
                if self.nodes[index].paused {
                    self.nodes[index]
                        .backlog
                        .push_back(Input::Persisted { upto });
                } else {
                    self.persisted(index, upto);
                }
            }
            Ok(None) => {}
        }
        self.maybe_fsync(index);
    }

    /// Step 2 and 3 of the driver contract: release the sends that waited
    /// for `upto`, then tell the replica.
    fn persisted(&mut self, index: usize, upto: IoSeq) {
        let held = std::mem::take(&mut self.nodes[index].held);
        let (ready, waiting): (Vec<HeldSend>, Vec<HeldSend>) =
            held.into_iter().partition(|h| h.after <= upto);
        self.nodes[index].held = waiting;
        for send in ready {
            self.transmit(index, send.to, send.term, send.message, send.channel);
        }
        self.step_node(index, Input::Persisted { upto });
    }

    // ----- network -----------------------------------------------------

    fn transmit(
        &mut self,
        index: usize,
        to: NodeId,
        term: Term,
        message: Message,
        channel: Channel,
    ) {
        let from = self.nodes[index].id;
        self.stats.sent += 1;
        if !self.ids.contains(&to) || to == from {
            let text = format!(
                "{}: send to unknown or own node id {to}",
                self.nodes[index].name
            );
            self.violation(text);
            return;
        }
        match self
            .net
            .send(&mut self.net_rng, self.now, from, to, channel)
        {
            SendOutcome::Lost(loss) => {
                self.stats.lost += 1;
                if self.trace.enabled() {
                    self.trace.line(
                        self.now,
                        format_args!(
                            "n{from} -> n{to} {} t{term} LOST({}) {}",
                            channel.name(),
                            loss.name(),
                            describe(&message)
                        ),
                    );
                }
            }
            SendOutcome::InFlight(flights) => {
                for flight in flights {
                    if self.trace.enabled() {
                        self.trace.line(
                            self.now,
                            format_args!(
                                "n{from} -> n{to} {} t{term} gen{} eta {}{} {}",
                                channel.name(),
                                flight.generation,
                                flight.deliver_at,
                                flight.copy.name(),
                                describe(&message)
                            ),
                        );
                    }
                    self.schedule(
                        flight.deliver_at,
                        Ev::Deliver {
                            from,
                            to,
                            channel,
                            generation: flight.generation,
                            term,
                            message: message.clone(),
                            copy: flight.copy,
                        },
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        channel: Channel,
        generation: u64,
        term: Term,
        message: Message,
        copy: CopyKind,
    ) {
        let index = (to - 1) as usize;
        if self.nodes[index].replica.is_none() {
            self.stats.lost += 1;
            if channel == Channel::Stream {
                self.net.reset_connection(from, to);
            }
            self.trace.line(
                self.now,
                format_args!("n{from} -> n{to} {} LOST(receiver down)", channel.name()),
            );
            return;
        }
        if let Err(loss) = self.net.admit(from, to, channel, generation) {
            self.stats.lost += 1;
            self.trace.line(
                self.now,
                format_args!(
                    "n{from} -> n{to} {} gen{generation} LOST({})",
                    channel.name(),
                    loss.name()
                ),
            );
            return;
        }
        self.stats.delivered += 1;
        let input = Input::Message {
            from,
            term,
            message,
        };
        let node = &mut self.nodes[index];
        if node.paused {
            if node.backlog.len() < BACKLOG_LIMIT {
                node.backlog.push_back(input);
                self.trace.line(
                    self.now,
                    format_args!(
                        "n{from} -> n{to} {}{} queued (paused)",
                        channel.name(),
                        copy.name()
                    ),
                );
            }
            return;
        }
        self.step_node(index, input);
    }

    // ----- clients -----------------------------------------------------

    fn client_latency(&mut self) -> u64 {
        self.net_rng
            .range(self.client_latency.0, self.client_latency.1)
    }

    /// Calls into the workload, traces the history records it added and
    /// carries out its commands.
    fn drive_workload(&mut self, call: impl FnOnce(&mut Workload, u64) -> Vec<Command>) {
        let before = self.workload.history().len();
        let commands = call(&mut self.workload, self.now);
        self.trace_history_since(before);
        self.run_commands(commands);
    }

    fn trace_history_since(&mut self, before: usize) {
        if !self.trace.enabled() {
            return;
        }
        let ops: Vec<String> = self.workload.history().ops[before..]
            .iter()
            .map(|op| serde_json::to_string(op).expect("history ops serialize"))
            .collect();
        for op in ops {
            self.trace.line(self.now, format_args!("history {op}"));
        }
    }

    fn run_commands(&mut self, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::Send {
                    attempt,
                    node,
                    request,
                    delay,
                } => {
                    let incarnation = self.nodes[(node - 1) as usize].incarnation;
                    self.in_flight.insert(attempt, node);
                    self.schedule(
                        self.now + delay,
                        Ev::RequestArrives {
                            attempt,
                            node,
                            incarnation,
                            request,
                        },
                    );
                }
                Command::Wake { client, delay } => {
                    self.schedule(self.now + delay, Ev::ClientWake { client })
                }
                Command::Timeout {
                    client,
                    serial,
                    delay,
                } => self.schedule(self.now + delay, Ev::ClientTimeout { client, serial }),
            }
        }
    }

    fn request_arrives(
        &mut self,
        attempt: u64,
        node: NodeId,
        incarnation: u64,
        request: ClientRequest,
    ) {
        let index = (node - 1) as usize;
        if self.nodes[index].replica.is_none() {
            // Connection refused: the request reached no replica.
            self.in_flight.remove(&attempt);
            let at = self.now + self.client_latency();
            self.schedule(
                at,
                Ev::OutcomeArrives {
                    attempt,
                    node,
                    outcome: Outcome::Refused,
                },
            );
            return;
        }
        if self.nodes[index].incarnation != incarnation {
            // Sent to a process that has since died; its client saw the reset.
            return;
        }
        let input = Input::Client {
            id: attempt,
            request,
        };
        if self.nodes[index].paused {
            self.nodes[index].backlog.push_back(input);
            return;
        }
        self.step_node(index, input);
    }

    fn reply(&mut self, index: usize, id: u64, reply: ClientReply) {
        let node = self.nodes[index].id;
        if self.trace.enabled() {
            self.trace.line(
                self.now,
                format_args!("{} reply #{id} {reply:?}", self.nodes[index].name),
            );
        }
        if self.in_flight.remove(&id).is_none() {
            // Either already answered or never sent to this process.
            let text = format!(
                "{}: reply to request #{id}, which is not pending there",
                self.nodes[index].name
            );
            self.violation(text);
            return;
        }
        let at = self.now + self.client_latency();
        self.schedule(
            at,
            Ev::OutcomeArrives {
                attempt: id,
                node,
                outcome: Outcome::Reply(reply),
            },
        );
    }

    // ----- faults ------------------------------------------------------

    fn live(&self, index: usize) -> bool {
        self.nodes[index].replica.is_some()
    }

    /// The live node that leads the highest term, if any.
    fn leader(&self) -> Option<usize> {
        let mut best: Option<(Term, usize)> = None;
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some(replica) = &node.replica {
                let status = replica.status();
                if status.role == Role::Leader && best.is_none_or(|(term, _)| status.term > term) {
                    best = Some((status.term, index));
                }
            }
        }
        best.map(|(_, index)| index)
    }

    fn resolve(&mut self, target: Target) -> usize {
        let leader = self.leader();
        match (target, leader) {
            (Target::Leader, Some(leader)) => leader,
            (Target::Follower, Some(leader)) if self.nodes.len() > 1 => {
                let others: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != leader).collect();
                *self.nemesis_rng.pick(&others)
            }
            _ => self.nemesis_rng.below(self.nodes.len() as u64) as usize,
        }
    }

    fn resolve_id(&mut self, target: Target) -> NodeId {
        let index = self.resolve(target);
        self.ids[index]
    }

    fn resolve_shape(&mut self, shape: Shape) -> Grudge {
        let ids = self.ids.clone();
        match shape {
            Shape::RandomHalves => grudge::random_halves(&ids, &mut self.nemesis_rng),
            Shape::LeaderInMajority => {
                let leader = self.resolve_id(Target::Leader);
                grudge::leader_in_majority(leader, &ids, &mut self.nemesis_rng)
            }
            Shape::LeaderInMinority => {
                let leader = self.resolve_id(Target::Leader);
                grudge::leader_in_minority(leader, &ids, &mut self.nemesis_rng)
            }
            Shape::Isolate(target) => grudge::isolate(self.resolve_id(target), &ids),
            Shape::Bridge => {
                let mut shuffled = ids.clone();
                self.nemesis_rng.shuffle(&mut shuffled);
                grudge::bridge(&shuffled)
            }
            Shape::MajoritiesRing => grudge::majorities_ring(&ids, &mut self.nemesis_rng),
            Shape::OneWayIn(target) => grudge::one_way_in(self.resolve_id(target), &ids),
            Shape::OneWayOut(target) => grudge::one_way_out(self.resolve_id(target), &ids),
            Shape::CutLink => {
                if ids.len() < 2 {
                    return Grudge::new();
                }
                let mut shuffled = ids.clone();
                self.nemesis_rng.shuffle(&mut shuffled);
                grudge::cut_link(shuffled[0], shuffled[1])
            }
        }
    }

    fn resolve_scope(&mut self, scope: LinkScope) -> BTreeSet<(NodeId, NodeId)> {
        let ids = self.ids.clone();
        let all_pairs = || {
            ids.iter()
                .flat_map(|a| ids.iter().map(move |b| (*a, *b)))
                .filter(|(a, b)| a != b)
        };
        match scope {
            LinkScope::All => all_pairs().collect(),
            LinkScope::Node(target) => {
                let node = self.resolve_id(target);
                all_pairs()
                    .filter(|(a, b)| *a == node || *b == node)
                    .collect()
            }
            LinkScope::OneLink(target) => {
                let node = self.resolve_id(target);
                let peers: Vec<NodeId> = ids.iter().copied().filter(|n| *n != node).collect();
                if peers.is_empty() {
                    return BTreeSet::new();
                }
                let peer = *self.nemesis_rng.pick(&peers);
                [(node, peer)].into_iter().collect()
            }
        }
    }

    fn apply_fault(&mut self, fault: Fault) {
        if self.phase != Phase::Faults {
            return;
        }
        if self.trace.enabled() {
            self.trace
                .line(self.now, format_args!("nemesis {}", fault.describe()));
        }
        match fault {
            Fault::Partition { episode, shape } => {
                let grudge = self.resolve_shape(shape);
                self.trace.line(
                    self.now,
                    format_args!("nemesis partition#{episode} blocks {}", grudge.describe()),
                );
                self.episode_grudges.insert(episode, grudge.clone());
                self.net.partition(episode, grudge);
                self.network_changed();
            }
            Fault::Reapply { episode } => {
                if let Some(grudge) = self.episode_grudges.get(&episode) {
                    self.net.partition(episode, grudge.clone());
                    self.network_changed();
                }
            }
            Fault::Heal { episode } => {
                self.net.heal(episode);
                self.network_changed();
            }
            Fault::LinkFaults {
                episode,
                scope,
                channels,
                faults,
            } => {
                let links = self.resolve_scope(scope);
                if self.trace.enabled() {
                    self.trace.line(
                        self.now,
                        format_args!("nemesis link-faults#{episode} on {links:?}"),
                    );
                }
                self.net.add_faults(episode, links, channels, faults);
            }
            Fault::ClearLinkFaults { episode } => self.net.clear_faults(episode),
            Fault::Crash { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) {
                    self.episode_nodes.insert(episode, index);
                    self.crash(index);
                }
            }
            Fault::CrashAfterWrite { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) {
                    self.episode_nodes.insert(episode, index);
                    self.nodes[index].crash_armed = true;
                }
            }
            Fault::Restart { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    // An armed crash that never fired is called off.
                    self.nodes[index].crash_armed = false;
                    if !self.live(index) {
                        self.start_node(index);
                    }
                }
            }
            Fault::Pause { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) && !self.nodes[index].paused {
                    self.episode_nodes.insert(episode, index);
                    self.pause(index);
                }
            }
            Fault::Resume { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    self.resume(index);
                }
            }
            Fault::ClockRate { target, rate_ppm } => {
                let index = self.resolve(target);
                self.nodes[index].clock.set_rate(self.now, rate_ppm);
                self.trace.line(
                    self.now,
                    format_args!("{} clock rate now {rate_ppm}ppm", self.nodes[index].name),
                );
            }
            Fault::DiskStall {
                episode,
                target,
                factor,
            } => {
                let index = self.resolve(target);
                self.episode_nodes.insert(episode, index);
                self.nodes[index].disk_slowdown = factor;
            }
            Fault::DiskRecover { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    self.nodes[index].disk_slowdown = 1;
                }
            }
        }
    }

    fn crash(&mut self, index: usize) {
        let pending = self.nodes[index].disk.pending_len();
        let survivors = if self.options.torn_writes && self.disk_rng.chance(1, 2) {
            self.disk_rng.range(0, pending as u64 + 1) as usize
        } else {
            0
        };
        let node = &mut self.nodes[index];
        let result = node.disk.crash(survivors);
        node.replica = None;
        node.incarnation += 1;
        node.tick_epoch += 1;
        node.held.clear();
        node.backlog.clear();
        node.paused = false;
        node.disk_slowdown = 1;
        node.crash_armed = false;
        let id = node.id;
        self.stats.crashes += 1;
        self.trace.line(
            self.now,
            format_args!("n{id} CRASH ({survivors} of {pending} unsynced writes survive)"),
        );
        if let Err(error) = result {
            self.violation(format!("n{id}: storage contract (on crash): {error}"));
        }
        self.net.reset_node(id);
        let lost: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, node)| **node == id)
            .map(|(attempt, _)| *attempt)
            .collect();
        for attempt in lost {
            self.in_flight.remove(&attempt);
            let at = self.now + self.client_latency();
            self.schedule(
                at,
                Ev::OutcomeArrives {
                    attempt,
                    node: id,
                    outcome: Outcome::Reset,
                },
            );
        }
    }

    fn pause(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.paused = true;
        node.tick_epoch += 1;
        self.stats.pauses += 1;
        self.trace
            .line(self.now, format_args!("{} PAUSE", self.nodes[index].name));
    }

    fn resume(&mut self, index: usize) {
        if !self.nodes[index].paused {
            return;
        }
        self.nodes[index].paused = false;
        let backlog = std::mem::take(&mut self.nodes[index].backlog);
        self.trace.line(
            self.now,
            format_args!(
                "{} RESUME with {} queued inputs",
                self.nodes[index].name,
                backlog.len()
            ),
        );
        // The runtime wakes up with both overdue timers and readable
        // sockets; which it looks at first is up to the scheduler.
        let timers_first = self.nemesis_rng.chance(1, 2);
        if timers_first {
            self.step_node(index, Input::Tick);
        }
        for input in backlog {
            if !self.live(index) {
                break;
            }
            match input {
                Input::Persisted { upto } => self.persisted(index, upto),
                other => self.step_node(index, other),
            }
        }
        if !timers_first {
            self.step_node(index, Input::Tick);
        }
        self.maybe_fsync(index);
        self.schedule_tick(index);
    }

    /// Tracks minority sides of the current partitions (I6 windows): the
    /// components of the graph whose edges work in both directions.
    fn network_changed(&mut self) {
        let quorum = self.ids.len() / 2 + 1;
        let mut seen = BTreeSet::new();
        let mut minorities = BTreeSet::new();
        for start in &self.ids {
            if seen.contains(start) {
                continue;
            }
            let mut component = vec![*start];
            seen.insert(*start);
            let mut cursor = 0;
            while cursor < component.len() {
                let a = component[cursor];
                cursor += 1;
                for b in &self.ids {
                    if !seen.contains(b)
                        && !self.net.is_blocked(a, *b)
                        && !self.net.is_blocked(*b, a)
                    {
                        seen.insert(*b);
                        component.push(*b);
                    }
                }
            }
            if component.len() < quorum {
                component.sort_unstable();
                minorities.insert(component);
            }
        }
        let closed: Vec<Vec<NodeId>> = self
            .open_minorities
            .keys()
            .filter(|m| !minorities.contains(*m))
            .cloned()
            .collect();
        for minority in closed {
            let start = self.open_minorities.remove(&minority).expect("listed");
            self.partitions.push(PartitionWindow {
                start_ns: start,
                end_ns: self.now,
                minority: minority.iter().map(|id| name_of(*id)).collect(),
            });
        }
        for minority in minorities {
            self.open_minorities.entry(minority).or_insert(self.now);
        }
    }

    fn close_partition_windows(&mut self) {
        for (minority, start) in std::mem::take(&mut self.open_minorities) {
            self.partitions.push(PartitionWindow {
                start_ns: start,
                end_ns: self.now,
                minority: minority.iter().map(|id| name_of(*id)).collect(),
            });
        }
        self.partitions
            .sort_by(|a, b| (a.start_ns, &a.minority).cmp(&(b.start_ns, &b.minority)));
    }

    // ----- heal, final reads, convergence -------------------------------

    fn heal_all(&mut self) {
        self.trace.line(self.now, format_args!("nemesis HEAL ALL"));
        self.phase = Phase::Settling { since: self.now };
        self.workload.stop();
        self.net.heal_all();
        self.network_changed();
        for index in 0..self.nodes.len() {
            self.nodes[index].disk_slowdown = 1;
            self.nodes[index].crash_armed = false;
            if self.nodes[index].paused {
                self.resume(index);
            }
            if !self.live(index) {
                self.start_node(index);
            }
        }
        self.episode_nodes.clear();
        self.schedule(self.now + 50 * MS, Ev::Poll);
    }

    /// One leader at the highest term, every node live and applied up to
    /// the same commit index with the same state.
    fn converged(&self) -> bool {
        let statuses: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().map(Replica::status))
            .collect();
        if statuses.len() != self.nodes.len() {
            return false;
        }
        let leaders = statuses.iter().filter(|s| s.role == Role::Leader).count();
        let first = &statuses[0];
        leaders == 1
            && statuses.iter().all(|s| {
                s.term == first.term
                    && s.commit_index == first.commit_index
                    && s.applied_index == s.commit_index
                    && s.state_hash == first.state_hash
            })
    }

    fn poll(&mut self) {
        let settle_limit = 10 * self.timing.election_max_ns;
        match self.phase {
            Phase::Settling { since } => {
                let leader = self.leader();
                let clients_done = !self.workload.busy();
                if (clients_done && leader.is_some()) || self.now >= since + settle_limit {
                    self.phase = Phase::FinalReads { since: self.now };
                    self.final_reads_from_ns = self.now;
                    let guess = self.ids[leader.unwrap_or(0)];
                    self.trace.line(
                        self.now,
                        format_args!("final reads begin (leader guess n{guess})"),
                    );
                    self.drive_workload(|w, _| w.final_reads(guess));
                }
            }
            Phase::FinalReads { since } => {
                if self.workload.final_reads_done() || self.now >= since + settle_limit {
                    self.stats.final_reads_done = self.workload.final_reads_done();
                    self.phase = Phase::Converging { since: self.now };
                }
            }
            Phase::Converging { since } => {
                let converged = self.converged();
                if converged || self.now >= since + settle_limit {
                    self.stats.converged = converged;
                    self.finish();
                    return;
                }
            }
            Phase::Faults | Phase::Done => return,
        }
        self.schedule(self.now + 50 * MS, Ev::Poll);
    }

    /// Logs every live node's final state.
    fn finish(&mut self) {
        self.phase = Phase::Done;
        for index in 0..self.nodes.len() {
            let Some(status) = self.nodes[index].replica.as_ref().map(Replica::status) else {
                continue;
            };
            let local = self.local_now(index);
            self.trace.line(
                self.now,
                format_args!(
                    "{} final role={} term={} commit={} applied={} hash={:#x}",
                    self.nodes[index].name,
                    status.role.name(),
                    status.term,
                    status.commit_index,
                    status.applied_index,
                    status.state_hash
                ),
            );
            self.push_event(
                index,
                local,
                status.term,
                EventKind::FinalState {
                    commit_index: status.commit_index,
                    applied_index: status.applied_index,
                    state_hash: status.state_hash,
                },
            );
        }
    }
}
