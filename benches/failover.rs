//! Failover time of splitnode and etcd clusters (3 and 5 nodes) in a netns
//! mesh, for the `fast` (heartbeat 50 ms, election 250 ms) and `default`
//! (100 / 1000 ms) profiles, both systems with the same settings and PreVote
//! on. One iteration isolates the current leader with a netlab partition and
//! measures, from the moment the partition is in place:
//! - until the first write acknowledged by a majority-side node (criterion's
//!   figure);
//! - until the old leader's own status stops claiming leadership;
//!
//! then heals and waits for the cluster to settle. Needs root.
//! `cargo bench --bench failover`; CI runs `-- --test` (one failover each).

#[path = "support/mod.rs"]
mod support;

use bench::cluster::BenchLab;
use bench::failover::{
    FailoverSample, MEDIAN_GOAL_MARGIN_MS, P99_GOAL_MARGIN_MS, failover_once, median_goal, p99_goal,
};
use bench::system::{Profile, System};
use bench::table::{Row, render};
use criterion::{BenchmarkId, Criterion, SamplingMode};
use figures::{Summary, ms};
use std::collections::BTreeMap;
use std::time::Duration;

const SIZES: [usize; 2] = [3, 5];
const PROFILES: [Profile; 2] = [Profile::Fast, Profile::Default];

type Results = BTreeMap<(Profile, usize, System), Vec<FailoverSample>>;

fn bench_cluster(
    c: &mut Criterion,
    lab: &mut BenchLab,
    system: System,
    profile: Profile,
    binary: &std::path::Path,
    results: &mut Results,
) {
    let size = lab.nodes().len();
    lab.start(system, profile, binary)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut samples = Vec::new();
    let mut group = c.benchmark_group(format!("failover/{}", profile.name()));
    // One failover per iteration, 10 samples (criterion's minimum) after a
    // one-iteration warm-up.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(profile.election_ms() * 20));
    group.bench_function(BenchmarkId::new(system.name(), size), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sample = failover_once(lab).unwrap_or_else(|e| panic!("{e:#}"));
                total += sample.first_write;
                samples.push(sample);
            }
            total
        });
    });
    group.finish();
    results.insert((profile, size, system), samples);
    lab.stop().expect("stop cluster");
}

fn table(results: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    for profile in PROFILES {
        for size in SIZES {
            let summary = |system, pick: fn(&FailoverSample) -> Duration| {
                results.get(&(profile, size, system)).map(|samples| {
                    Summary::of_durations(&samples.iter().map(pick).collect::<Vec<_>>())
                })
            };
            let both = |pick: fn(&FailoverSample) -> Duration, q: fn(&Summary) -> u64| {
                (
                    summary(System::Splitnode, pick).as_ref().map(q).map(ms),
                    summary(System::Etcd, pick).as_ref().map(q).map(ms),
                )
            };
            let label = format!("{}, {size} nodes", profile.name());
            let write = |s: &FailoverSample| s.first_write;
            let down = |s: &FailoverSample| s.old_leader_stepped_down;
            let (s, e) = both(write, |s| s.p50_ns);
            rows.push(
                Row::new(format!("first write median, {label}"), "ms", s, e)
                    .goal(median_goal(profile)),
            );
            let (s, e) = both(write, |s| s.p99_ns);
            rows.push(
                Row::new(format!("first write p99, {label}"), "ms", s, e).goal(p99_goal(profile)),
            );
            let (s, e) = both(down, |s| s.p50_ns);
            rows.push(Row::new(
                format!("old leader steps down median, {label}"),
                "ms",
                s,
                e,
            ));
            let (s, e) = both(down, |s| s.p99_ns);
            rows.push(Row::new(
                format!("old leader steps down p99, {label}"),
                "ms",
                s,
                e,
            ));
            let apply = |s: &FailoverSample| s.partition_apply;
            let (s, e) = both(apply, |s| s.max_ns);
            rows.push(Row::new(
                format!("partition install time (max; figures count from its end), {label}"),
                "ms",
                s,
                e,
            ));
        }
    }
    rows
}

fn main() {
    let Some(env) = support::prepare("failover") else {
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let mut results = Results::new();
    for size in SIZES {
        let mut lab = env.lab(size);
        for profile in PROFILES {
            for (system, binary) in env.binaries.installed() {
                bench_cluster(&mut c, &mut lab, system, profile, binary, &mut results);
            }
        }
    }
    c.final_summary();
    let counts: Vec<String> = results
        .iter()
        .map(|((profile, size, system), s)| {
            format!("{} {} x{size}: {}", system.name(), profile.name(), s.len())
        })
        .collect();
    let title = format!(
        "failover: leader isolated, splitnode vs etcd (same heartbeat/election, PreVote on); \
         targets: first write median <= ET_min + {MEDIAN_GOAL_MARGIN_MS} ms, \
         p99 <= ET_min + {P99_GOAL_MARGIN_MS} ms (ET_min: fast {} ms, default {} ms)",
        Profile::Fast.election_ms(),
        Profile::Default.election_ms()
    );
    println!(
        "{}",
        render(
            &env.heading(&title, "one failover each, figures meaningless"),
            &table(&results)
        )
    );
    println!("failovers recorded: {}", counts.join("; "));
}
