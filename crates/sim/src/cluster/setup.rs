//! Building a run: replica configurations and timing, the seeded schedule (or
//! a fixed script), clocks, disks and clients, and the opening trace lines.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use consensus::{Config, Mode, NodeId};

use super::{CLUSTER_ID, Cluster, Ev, Phase, SimNode, Trace, name_of};
use super::{RunStats, Script, SimOptions};
use crate::clock::NodeClock;
use crate::net::{LinkFaults, Network};
use crate::rng::SimRng;
use crate::schedule::{self, Scheduled, Timing};
use crate::storage::Disk;
use crate::workload::{Workload, WorkloadOptions};

/// The timing every simulated replica runs with.
pub fn timing() -> Timing {
    timing_of(&base_config(1, vec![1], Mode::Safe))
}

/// Snapshot chunk size in the simulator: tiny, so every snapshot transfer
/// the fuzzer provokes spans many chunks (and faults land between them).
const SIM_SNAPSHOT_CHUNK_BYTES: usize = 64;

/// The timing profile of the simulated replicas (the `fast` profile), with
/// 64-byte snapshot chunks.
pub fn base_config(id: NodeId, members: Vec<NodeId>, mode: Mode) -> Config {
    let mut config = Config::fast(id, members, CLUSTER_ID, mode);
    config.snapshot_chunk_bytes = SIM_SNAPSHOT_CHUNK_BYTES;
    config
}

fn timing_of(config: &Config) -> Timing {
    Timing {
        heartbeat_ns: config.heartbeat_interval_ns,
        election_min_ns: config.election_timeout_min_ns,
        election_max_ns: config.election_timeout_max_ns,
        lease_ns: config.lease_ns(),
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
            schedule.episode_kinds = BTreeMap::new();
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
                crash_armed: None,
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
            episode_kinds: schedule.episode_kinds.clone(),
            fired: BTreeSet::new(),
            phase: Phase::Faults,
            episode_grudges: BTreeMap::new(),
            episode_nodes: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            events: Vec::new(),
            lease_fixups: Vec::new(),
            driver_violations: Vec::new(),
            stretches: Vec::new(),
            workload_end_ns: u64::MAX,
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
}
