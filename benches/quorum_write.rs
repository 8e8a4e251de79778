//! Quorum write latency and throughput of splitnode clusters of 1, 3, 5 and
//! 7 nodes in a netns mesh, next to etcd clusters of 3 and 5 members with the
//! same heartbeat/election settings (PreVote on), driven with the same client
//! pattern from the lab's control namespace:
//! - sequential: one client, one write at a time (p50, p99);
//! - concurrent: 16 and 64 clients, each with its own connection and key
//!   (throughput, p99).
//!
//! Needs root. `cargo bench --bench quorum_write`; CI runs `-- --test`
//! (one write per pattern). Ends with a side-by-side table: splitnode,
//! etcd, their ratio and the target, under the physical floor
//! measured right before and right after each system's sequential writes
//! (fsync, two fsyncs at once, namespace round trip, durable and quorum
//! round trips) and each sequential p50 as a multiple of its own floor.

#[path = "support/mod.rs"]
mod support;

use bench::cluster::BenchLab;
use bench::floor::{Floor, FloorRaw, FloorSamples, write_floor_goal};
use bench::load::ClientPool;
use bench::system::{Profile, System};
use bench::table::{Goal, Row, render_noted};
use criterion::{BenchmarkId, Criterion, Throughput};
use figures::{Summary, ms};
use std::collections::BTreeMap;
use std::time::Duration;

const SIZES: [usize; 4] = [1, 3, 5, 7];
const ETCD_SIZES: [usize; 2] = [3, 5];
const PATTERNS: [(&str, usize); 3] = [
    ("sequential", 1),
    ("concurrent-16", 16),
    ("concurrent-64", 64),
];

/// Every acknowledged write of one (system, size, pattern), across criterion's
/// warm-up and samples.
#[derive(Default)]
struct Recorded {
    latencies_ns: Vec<u64>,
    ops: u64,
    elapsed: Duration,
    /// Write-path fsyncs summed over all nodes during the pattern (evidence
    /// for what bounds the figures: group commit or not).
    fsyncs: Option<f64>,
    /// CPU seconds used by all server processes during the pattern.
    cpu_seconds: Option<f64>,
    /// Writes not acknowledged within the client timeout.
    failures: u64,
    /// Refused or broken attempts that were retried.
    retries: u64,
    first_failure: Option<String>,
}

impl Recorded {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn fsyncs_per_write(&self) -> Option<f64> {
        self.fsyncs.map(|f| f / self.ops.max(1) as f64)
    }

    fn cpu_ms_per_write(&self) -> Option<f64> {
        self.cpu_seconds.map(|s| s * 1e3 / self.ops.max(1) as f64)
    }
}

type Results = BTreeMap<(System, usize, &'static str), Recorded>;
/// The physical floor around each system's sequential writes, per cluster
/// size: taken in two turns, right before and right after them, because
/// this VM's disk drifts within a minute.
type Floors = BTreeMap<(System, usize), FloorRaw>;

fn bench_cluster(
    c: &mut Criterion,
    lab: &mut BenchLab,
    system: System,
    binary: &std::path::Path,
    results: &mut Results,
    floors: &mut Floors,
) {
    let size = lab.nodes().len();
    lab.start(system, Profile::Fast, binary)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let floor_turn = |lab: &BenchLab| {
        lab.floor_samples(FloorSamples::default().per_turn(2))
            .unwrap_or_else(|e| panic!("{e:#}"))
    };
    for (pattern, clients) in PATTERNS {
        let sequential = clients == 1;
        let mut floor = sequential.then(|| floor_turn(lab));
        // Leadership may have moved (a starved leader loses its lease).
        let leader = lab
            .stable_leader(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let pool = ClientPool::for_cluster(lab, system, &leader, clients).expect("client threads");
        let mut recorded = Recorded::default();
        let fsyncs_before = lab.fsyncs().expect("scrape metrics");
        let cpu_before = lab.cpu_seconds();
        let mut group = c.benchmark_group(format!("quorum_write/{pattern}"));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        if clients > 1 {
            group.throughput(Throughput::Elements(1));
        }
        group.bench_function(BenchmarkId::new(system.name(), size), |b| {
            b.iter_custom(|iters| {
                let batch = pool.run(iters);
                assert!(
                    !batch.latencies_ns.is_empty(),
                    "{} x{size} {pattern}: no write acknowledged, first failure: {}",
                    system.name(),
                    batch.first_failure.unwrap_or_default()
                );
                recorded.failures += batch.failures;
                recorded.retries += batch.retries;
                if recorded.first_failure.is_none() {
                    recorded.first_failure = batch.first_failure;
                }
                recorded.ops += iters;
                recorded.elapsed += batch.elapsed;
                recorded.latencies_ns.extend(batch.latencies_ns);
                batch.elapsed
            });
        });
        group.finish();
        if let Some(mut raw) = floor.take() {
            raw.extend(floor_turn(lab));
            eprintln!(
                "quorum_write {} x{size}: {}",
                system.name(),
                Floor::of(&raw).describe_for(size)
            );
            floors.insert((system, size), raw);
        }
        let fsyncs_after = lab.fsyncs().expect("scrape metrics");
        recorded.fsyncs = fsyncs_before.zip(fsyncs_after).map(|(b, a)| a - b);
        recorded.cpu_seconds = cpu_before.zip(lab.cpu_seconds()).map(|(b, a)| a - b);
        results.insert((system, size, pattern), recorded);
    }
    lab.stop().expect("stop cluster");
}

fn table(results: &Results, floors: &Floors) -> Vec<Row> {
    let get = |system, size, pattern| results.get(&(system, size, pattern));
    let figure =
        |system, size, pattern, pick: fn(&Recorded) -> f64| get(system, size, pattern).map(pick);
    let p50 = |r: &Recorded| ms(Summary::of(&r.latencies_ns).p50_ns);
    let p99 = |r: &Recorded| ms(Summary::of(&r.latencies_ns).p99_ns);
    let tput = |r: &Recorded| r.throughput();
    let mut rows = Vec::new();
    for size in SIZES {
        let both = |pattern, pick| {
            (
                figure(System::Splitnode, size, pattern, pick),
                figure(System::Etcd, size, pattern, pick),
            )
        };
        let (s, e) = both("sequential", p50);
        rows.push(
            Row::new(format!("sequential p50, {size} nodes"), "ms", s, e)
                .goal(Goal::write_p50_vs_etcd(size)),
        );
        let floor_of = |system| floors.get(&(system, size)).map(Floor::of);
        let (splitnode_floor, etcd_floor) = (floor_of(System::Splitnode), floor_of(System::Etcd));
        if splitnode_floor.is_some() || etcd_floor.is_some() {
            // Each system's p50 against the floor taken around its own writes.
            let over_floor = |figure: &str, ratio: &dyn Fn(&Floor, u64) -> Option<f64>| {
                let over = |system, floor: &Option<Floor>| {
                    let p50_ns = Summary::of(&get(system, size, "sequential")?.latencies_ns).p50_ns;
                    ratio(floor.as_ref()?, p50_ns)
                };
                Row::new(
                    format!("sequential p50 / {figure}, {size} nodes"),
                    "x",
                    over(System::Splitnode, &splitnode_floor),
                    over(System::Etcd, &etcd_floor),
                )
            };
            let mut row = over_floor("floor", &|floor, p50_ns| {
                floor.ratio_to_write_floor(size, p50_ns)
            });
            row.goal = write_floor_goal(size);
            rows.push(row);
            if size == 1 {
                rows.push(over_floor("durable round trip", &|floor, p50_ns| {
                    floor.ratio_to_durable_rtt(p50_ns)
                }));
            }
            if size >= 3 {
                rows.push(over_floor("shared-disk floor", &|floor, p50_ns| {
                    floor.ratio_to_shared_disk_floor(size, p50_ns)
                }));
                rows.push(over_floor("quorum durable round trip", &|floor, p50_ns| {
                    floor.ratio_to_quorum_rtt(p50_ns)
                }));
            }
        }
        let (s, e) = both("sequential", p99);
        rows.push(Row::new(
            format!("sequential p99, {size} nodes"),
            "ms",
            s,
            e,
        ));
        for pattern in ["concurrent-16", "concurrent-64"] {
            let (s, e) = both(pattern, tput);
            rows.push(
                Row::new(format!("{pattern} throughput, {size} nodes"), "ops/s", s, e)
                    .goal(Goal::RatioAtLeast(3.0)),
            );
            let (s, e) = both(pattern, p99);
            rows.push(Row::new(format!("{pattern} p99, {size} nodes"), "ms", s, e));
        }
    }
    for size in SIZES {
        for pattern in ["sequential", "concurrent-64"] {
            let per_write =
                |system| get(system, size, pattern).and_then(Recorded::fsyncs_per_write);
            rows.push(Row::new(
                format!("{pattern} fsyncs per write (all nodes), {size} nodes"),
                "fsync",
                per_write(System::Splitnode),
                per_write(System::Etcd),
            ));
            let cpu = |system| get(system, size, pattern).and_then(Recorded::cpu_ms_per_write);
            rows.push(Row::new(
                format!("{pattern} server CPU per write (all nodes), {size} nodes"),
                "ms",
                cpu(System::Splitnode),
                cpu(System::Etcd),
            ));
        }
    }
    rows.push(Row::p50_growth_3_to_7("sequential p50", |system, size| {
        figure(system, size, "sequential", p50)
    }));
    rows
}

fn main() {
    let Some(env) = support::prepare("quorum_write") else {
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let mut results = Results::new();
    let mut floors = Floors::new();
    for size in SIZES {
        let mut lab = env.lab(size);
        let compared = |system: &System| *system != System::Etcd || ETCD_SIZES.contains(&size);
        for (system, binary) in env.binaries.installed().filter(|(s, _)| compared(s)) {
            bench_cluster(&mut c, &mut lab, system, binary, &mut results, &mut floors);
        }
    }
    c.final_summary();
    let counts: Vec<String> = results
        .iter()
        .map(|((system, size, pattern), r)| {
            let mut text = format!(
                "{} x{size} {pattern}: {} acknowledged, {} retried attempts, {} failed",
                system.name(),
                r.latencies_ns.len(),
                r.retries,
                r.failures
            );
            if let Some(first) = r
                .first_failure
                .as_ref()
                .filter(|_| r.retries + r.failures > 0)
            {
                text.push_str(&format!(" (first: {first})"));
            }
            text
        })
        .collect();
    let notes: Vec<String> = floors
        .iter()
        .map(|((system, size), raw)| {
            format!(
                "{size} nodes, around {}'s sequential writes: {}",
                system.name(),
                Floor::of(raw).describe_for(*size)
            )
        })
        .collect();
    println!(
        "{}",
        render_noted(
            &env.heading(
                "quorum_write: splitnode vs etcd (profile fast: heartbeat 50 ms, election 250 ms, PreVote)",
                "single writes, figures meaningless"
            ),
            &notes,
            &table(&results, &floors)
        )
    );
    println!("writes recorded:\n  {}", counts.join("\n  "));
}
