//! `splitlab bench sweep`: write latency and failover time against cluster
//! size, for splitnode and (when installed) etcd, into
//! `runs/<time>-bench-sweep/` as `table.txt`, `results.json` and `sweep.svg`.
//! Each size's lab also measures the physical floor (see [`crate::floor`]),
//! and the table divides the write figures by it.

use crate::cluster::BenchLab;
use crate::failover::{failover_once, median_goal, p99_goal};
use crate::floor::{Floor, FloorRaw, FloorSamples, write_floor_goal};
use crate::load::{BatchResult, ClientPool};
use crate::system::{Profile, System, fsync_duration_metric};
use crate::table::{Goal, Row, render_noted};
use anyhow::{Context, bail};
use client::Histogram;
use figures::stamp::utc_stamp;
use figures::svg::{Panel, Series, plot};
use figures::{Summary, ms};
use serde_json::json;
use std::path::{Path, PathBuf};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Cluster sizes.
    pub sizes: Vec<usize>,
    /// Sequential writes measured per cluster (after a 10 % warm-up).
    pub ops: u64,
    /// Failover repetitions per cluster (sizes of 3 and more).
    pub reps: usize,
    /// Timing profile for both systems.
    pub profile: Profile,
    /// Parent of the run directory.
    pub runs_dir: PathBuf,
    /// The splitnode binary.
    pub splitnode: PathBuf,
    /// The etcd binary, if it should run too.
    pub etcd: Option<PathBuf>,
}

/// The figures of one cluster.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Which system.
    pub system: System,
    /// Nodes.
    pub size: usize,
    /// Sequential write latency.
    pub write: Summary,
    /// Time to the first acknowledged write after isolating the leader.
    pub failover: Option<Summary>,
    /// Time until the isolated leader stopped claiming leadership.
    pub step_down: Option<Summary>,
    /// The physical floor measured in this size's lab (the same for every
    /// system run there).
    pub floor: Floor,
    /// The leader's own write-path fsyncs during the measured writes (its
    /// `/metrics` histogram, after minus before); `None` when it exposes
    /// none or did not answer.
    pub leader_fsync: Option<Histogram>,
    /// The leader's own write latency (request in to commit) over the
    /// measured writes, where the system exposes it (splitnode).
    pub leader_write: Option<Histogram>,
}

/// The measured writes run in this many turns, each after a turn of the
/// floor: the disk and the host drift by tens of percent within a minute
/// on a shared VM, so a floor taken once before the writes can make a
/// figure look better or worse than it is against the machine it ran on.
const TURNS: u64 = 4;

/// Measures one system in `lab`, taking the floor in turns with its writes
/// (the cluster up, idle during each floor turn).
fn measure(
    lab: &mut BenchLab,
    system: System,
    options: &SweepOptions,
    binary: &Path,
) -> anyhow::Result<SweepPoint> {
    let size = lab.nodes().len();
    eprintln!("sweep: {} x{size}: starting", system.name());
    let leader = lab.start(system, options.profile, binary)?;
    let pool = ClientPool::for_cluster(lab, system, &leader, 1)?;
    let check = |batch: &BatchResult| {
        if batch.failures > 0 {
            bail!(
                "{} x{size}: {} writes failed, first: {}",
                system.name(),
                batch.failures,
                batch.first_failure.clone().unwrap_or_default()
            );
        }
        Ok(())
    };
    check(&pool.run((options.ops / 10).max(1)))?;
    let turn_samples = FloorSamples::default().per_turn(TURNS as usize);
    let mut floor_raw = FloorRaw::default();
    let mut latencies_ns = Vec::with_capacity(options.ops as usize);
    let metrics_before = lab.metrics_text(&leader)?;
    for turn in 0..TURNS {
        floor_raw.extend(lab.floor_samples(turn_samples)?);
        let ops = options.ops / TURNS + u64::from(turn < options.ops % TURNS);
        let batch = pool.run(ops);
        check(&batch)?;
        latencies_ns.extend(batch.latencies_ns);
    }
    let metrics_after = lab.metrics_text(&leader)?;
    drop(pool);
    let floor = Floor::of(&floor_raw);
    eprintln!(
        "sweep: {} x{size}: {} (in {TURNS} turns between the writes)",
        system.name(),
        floor.describe_for(size)
    );
    // What the leader itself saw during the measured writes.
    let during = |family: &str| {
        let read = |text: &Option<String>| Histogram::read(text.as_deref()?, family);
        let (before, after) = (read(&metrics_before)?, read(&metrics_after)?);
        Some(after.since(&before)).filter(|during| during.count > 0.0)
    };
    let leader_fsync = during(fsync_duration_metric(system));
    let leader_write = match system {
        System::Splitnode => during("splitnode_write_latency_seconds"),
        System::Etcd => None,
    };
    let write = Summary::of(&latencies_ns);
    if let Some(fsyncs) = &leader_fsync {
        let inside = leader_write.as_ref().map_or(String::new(), |writes| {
            format!(
                ", request in to commit inside the leader: mean {}, p50 {}, p99 {}",
                seconds_as_ms(writes.mean()),
                seconds_as_ms(writes.quantile(0.5)),
                seconds_as_ms(writes.quantile(0.99))
            )
        });
        // p99 beside p50: whether a write's tail is the disk's, the
        // leader's or outside it (scheduling, the wire).
        eprintln!(
            "sweep: {} x{size}: the leader's own fsyncs during the writes: {}, mean {}, p50 {}, p99 {}{inside}; at the client: write mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
            system.name(),
            fsyncs.count,
            seconds_as_ms(fsyncs.mean()),
            seconds_as_ms(fsyncs.quantile(0.5)),
            seconds_as_ms(fsyncs.quantile(0.99)),
            ms(write.mean_ns),
            ms(write.p50_ns),
            ms(write.p99_ns)
        );
    }
    let (mut failover, mut step_down) = (Vec::new(), Vec::new());
    if size >= 3 {
        for rep in 0..options.reps {
            let sample =
                failover_once(lab).with_context(|| format!("failover repetition {}", rep + 1))?;
            eprintln!(
                "sweep: {} x{size}: failover {}: first write {:.1} ms, old leader {} stepped down {:.1} ms (partition installed in {:.1} ms)",
                system.name(),
                rep + 1,
                sample.first_write.as_secs_f64() * 1e3,
                sample.old_leader,
                sample.old_leader_stepped_down.as_secs_f64() * 1e3,
                sample.partition_apply.as_secs_f64() * 1e3
            );
            failover.push(sample.first_write);
            step_down.push(sample.old_leader_stepped_down);
        }
    }
    lab.stop()?;
    let some = |v: &[std::time::Duration]| (!v.is_empty()).then(|| Summary::of_durations(v));
    Ok(SweepPoint {
        system,
        size,
        write,
        failover: some(&failover),
        step_down: some(&step_down),
        floor,
        leader_fsync,
        leader_write,
    })
}

/// Count, mean and p50 (ms) of a histogram delta, for results.json.
fn histogram_figures(h: &Histogram) -> serde_json::Value {
    json!({
        "count": h.count,
        "mean_ms": h.mean().map(|s| s * 1e3),
        "p50_ms": h.quantile(0.5).map(|s| s * 1e3),
    })
}

/// "0.212 ms", or "not resolved" for a figure the histogram cannot give.
fn seconds_as_ms(seconds: Option<f64>) -> String {
    seconds.map_or("not resolved".into(), |s| format!("{:.3} ms", s * 1e3))
}

/// Runs the sweep; returns the run directory and the figures.
///
/// # Errors
/// Bad options, lab or cluster failures.
pub fn run_sweep(options: &SweepOptions) -> anyhow::Result<(PathBuf, Vec<SweepPoint>)> {
    if options.sizes.is_empty() || options.sizes.iter().any(|&s| s == 0 || s > 50) {
        bail!(
            "--sizes must list cluster sizes between 1 and 50, got {:?}",
            options.sizes
        );
    }
    if options.ops == 0 {
        bail!("--ops must be at least 1");
    }
    if !options.splitnode.is_file() {
        bail!(
            "splitnode not found at {} (build it: cargo build --release -p node, or pass --splitnode)",
            options.splitnode.display()
        );
    }
    let now = std::time::SystemTime::now();
    let mut run_dir = options
        .runs_dir
        .join(format!("{}-bench-sweep", utc_stamp(now)));
    let mut suffix = 1;
    while run_dir.exists() {
        suffix += 1;
        run_dir = options
            .runs_dir
            .join(format!("{}-bench-sweep-{suffix}", utc_stamp(now)));
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("create {}", run_dir.display()))?;
    let mut systems = vec![(System::Splitnode, options.splitnode.clone())];
    match &options.etcd {
        Some(etcd) => systems.push((System::Etcd, etcd.clone())),
        None => eprintln!(
            "sweep: etcd not found (install etcd-server: scripts/setup.sh); measuring splitnode only"
        ),
    }
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut points = Vec::new();
    for &size in &sizes {
        let mut lab = BenchLab::up(size, &run_dir.join("nodes"), false)?;
        for (system, binary) in &systems {
            points.push(measure(&mut lab, *system, options, binary)?);
        }
    }
    write_outputs(&run_dir, options, &sizes, &points)?;
    Ok((run_dir, points))
}

fn find(points: &[SweepPoint], system: System, size: usize) -> Option<&SweepPoint> {
    points.iter().find(|p| p.system == system && p.size == size)
}

/// The comparison table of a sweep.
pub fn sweep_rows(points: &[SweepPoint], sizes: &[usize], profile: Profile) -> Vec<Row> {
    // One figure in ms at one size, splitnode next to etcd.
    let ms_row = |figure: &str, size: usize, pick: &dyn Fn(&SweepPoint) -> Option<u64>| {
        let value = |system| find(points, system, size).and_then(pick).map(ms);
        Row::new(
            format!("{figure}, {size} nodes"),
            "ms",
            value(System::Splitnode),
            value(System::Etcd),
        )
    };
    // A figure as a multiple of the floor measured in the same lab.
    let ratio_row = |figure: &str, size: usize, pick: &dyn Fn(&SweepPoint) -> Option<f64>| {
        let value = |system| find(points, system, size).and_then(pick);
        Row::new(
            format!("{figure}, {size} nodes"),
            "x",
            value(System::Splitnode),
            value(System::Etcd),
        )
    };
    let mut rows = Vec::new();
    for &size in sizes {
        rows.push(
            ms_row("write p50", size, &|p| Some(p.write.p50_ns))
                .goal(Goal::write_p50_vs_etcd(size)),
        );
        rows.push(ms_row("write p99", size, &|p| Some(p.write.p99_ns)));
        let mut over_floor = ratio_row("write p50 / floor", size, &|p| {
            p.floor.ratio_to_write_floor(size, p.write.p50_ns)
        });
        over_floor.goal = write_floor_goal(size);
        rows.push(over_floor);
        if size == 1 {
            rows.push(ratio_row("write p50 / durable round trip", size, &|p| {
                p.floor.ratio_to_durable_rtt(p.write.p50_ns)
            }));
        }
        if size >= 3 {
            rows.push(ratio_row("write p50 / shared-disk floor", size, &|p| {
                p.floor.ratio_to_shared_disk_floor(size, p.write.p50_ns)
            }));
            rows.push(ratio_row(
                "write p50 / quorum durable round trip",
                size,
                &|p| p.floor.ratio_to_quorum_rtt(p.write.p50_ns),
            ));
        }
        // The disk as the leader met it during the writes, beside the floor
        // taken between them: the system's figure over its own fsync leaves
        // out how the disk drifted.
        let leader_fsync_ns = |p: &SweepPoint, pick: fn(&Histogram) -> Option<f64>| {
            p.leader_fsync
                .as_ref()
                .and_then(pick)
                .map(|s| (s * 1e9) as u64)
        };
        rows.push(ms_row("leader's own fsync mean", size, &|p| {
            leader_fsync_ns(p, Histogram::mean)
        }));
        rows.push(ratio_row(
            "write p50 / leader's own fsync p50",
            size,
            &|p| {
                let fsync_ns = leader_fsync_ns(p, |h| h.quantile(0.5))?;
                (fsync_ns > 0).then(|| p.write.p50_ns as f64 / fsync_ns as f64)
            },
        ));
    }
    for &size in sizes.iter().filter(|&&s| s >= 3) {
        rows.push(
            ms_row("failover median", size, &|p| p.failover.map(|s| s.p50_ns))
                .goal(median_goal(profile)),
        );
        rows.push(
            ms_row("failover p99", size, &|p| p.failover.map(|s| s.p99_ns)).goal(p99_goal(profile)),
        );
        rows.push(ms_row("old leader steps down (median)", size, &|p| {
            p.step_down.map(|s| s.p50_ns)
        }));
    }
    if sizes.contains(&3) && sizes.contains(&7) {
        rows.push(Row::p50_growth_3_to_7("write p50", |system, size| {
            find(points, system, size).map(|p| p.write.p50_ns as f64)
        }));
    }
    rows
}

fn write_outputs(
    run_dir: &Path,
    options: &SweepOptions,
    sizes: &[usize],
    points: &[SweepPoint],
) -> anyhow::Result<()> {
    let title = format!(
        "bench sweep: profile {} (heartbeat {} ms, election {} ms), {} sequential writes, {} failovers per size",
        options.profile.name(),
        options.profile.heartbeat_ms(),
        options.profile.election_ms(),
        options.ops,
        options.reps
    );
    let notes: Vec<String> = points
        .iter()
        .map(|p| {
            format!(
                "{} nodes, {}'s turns: {}",
                p.size,
                p.system.name(),
                p.floor.describe_for(p.size)
            )
        })
        .collect();
    let table = render_noted(&title, &notes, &sweep_rows(points, sizes, options.profile));
    println!("{table}");
    std::fs::write(run_dir.join("table.txt"), &table)?;
    let summary = |s: &Summary| json!({"count": s.count, "p50_ms": ms(s.p50_ns), "p99_ms": ms(s.p99_ns), "mean_ms": ms(s.mean_ns), "max_ms": ms(s.max_ns)});
    let results: Vec<_> = points
        .iter()
        .map(|p| {
            json!({
                "system": p.system.name(),
                "size": p.size,
                "write": summary(&p.write),
                "write_p50_over_floor": p.floor.ratio_to_write_floor(p.size, p.write.p50_ns),
                "write_p50_over_shared_disk_floor": p.floor.ratio_to_shared_disk_floor(p.size, p.write.p50_ns),
                "write_p50_over_durable_round_trip": p.floor.ratio_to_durable_rtt(p.write.p50_ns),
                "write_p50_over_quorum_durable_round_trip": p.floor.ratio_to_quorum_rtt(p.write.p50_ns),
                "failover_first_write": p.failover.as_ref().map(summary),
                "old_leader_step_down": p.step_down.as_ref().map(summary),
                "floor": {
                    "fsync": summary(&p.floor.fsync),
                    "fsync_pair": summary(&p.floor.fsync_pair),
                    "rtt": summary(&p.floor.rtt),
                    "durable_rtt": summary(&p.floor.durable_rtt),
                    "quorum_rtt": p.floor.quorum_rtt.as_ref().map(summary),
                    "write_floor_ms": ms(p.floor.write_floor_ns(p.size)),
                    "shared_disk_floor_ms": p.floor.shared_disk_floor_ns(p.size).map(ms),
                },
                "leader_fsync": p.leader_fsync.as_ref().map(histogram_figures),
                "leader_write": p.leader_write.as_ref().map(histogram_figures),
            })
        })
        .collect();
    let doc = json!({"profile": options.profile.name(), "ops": options.ops, "reps": options.reps, "sizes": sizes, "floor_turns": TURNS, "points": results});
    std::fs::write(
        run_dir.join("results.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    let mut latency = Vec::new();
    let mut failover = Vec::new();
    for system in [System::Splitnode, System::Etcd] {
        let of = |pick: &dyn Fn(&SweepPoint) -> Option<u64>| -> Vec<(usize, f64)> {
            sizes
                .iter()
                .filter_map(|&size| {
                    find(points, system, size)
                        .and_then(pick)
                        .map(|ns| (size, ms(ns)))
                })
                .collect()
        };
        let push = |into: &mut Vec<Series>, label: &str, dashed, points: Vec<(usize, f64)>| {
            if !points.is_empty() {
                into.push(Series {
                    label: format!("{} {label}", system.name()),
                    colour: system.colour().into(),
                    dashed,
                    points,
                });
            }
        };
        push(&mut latency, "p50", false, of(&|p| Some(p.write.p50_ns)));
        push(&mut latency, "p99", true, of(&|p| Some(p.write.p99_ns)));
        push(
            &mut failover,
            "median",
            false,
            of(&|p| p.failover.map(|s| s.p50_ns)),
        );
        push(
            &mut failover,
            "p99",
            true,
            of(&|p| p.failover.map(|s| s.p99_ns)),
        );
    }
    let panels = [
        Panel {
            title: "sequential write latency (ms)".into(),
            series: latency,
        },
        Panel {
            title: "failover: leader isolated -> first write (ms)".into(),
            series: failover,
        },
    ];
    std::fs::write(
        run_dir.join("sweep.svg"),
        plot(&title, &panels, sizes, "cluster size (nodes)"),
    )?;
    Ok(())
}

/// `splitlab bench sweep`: runs the sweep and says where its files went;
/// returns the run directory.
///
/// # Errors
/// As [`run_sweep`].
pub fn sweep_command(options: &SweepOptions) -> anyhow::Result<PathBuf> {
    let (run_dir, _) = run_sweep(options)?;
    println!(
        "sweep: wrote table.txt, results.json and sweep.svg to {}",
        run_dir.display()
    );
    Ok(run_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50_ms: u64) -> Summary {
        Summary {
            count: 10,
            p50_ns: p50_ms * 1_000_000,
            p99_ns: 2 * p50_ms * 1_000_000,
            mean_ns: 0,
            max_ns: 0,
        }
    }

    #[test]
    fn rows_compare_sizes_and_growth() {
        // A 1 ms fsync, 1.5 ms for two at once, a 0.5 ms round trip, a
        // 1.25 ms durable one: write floor 1.5 ms, shared-disk floor 2 ms.
        let floor = Floor::of(&FloorRaw {
            fsync: vec![1_000_000],
            fsync_pair: vec![1_500_000],
            rtt: vec![500_000],
            durable_rtt: vec![1_250_000],
            quorum_rtt: Some(vec![1_600_000]),
        });
        let point = |system, size, p50| SweepPoint {
            system,
            size,
            write: summary(p50),
            failover: (size >= 3).then(|| summary(300)),
            step_down: None,
            floor,
            // Ten fsyncs within (0.75, 1] ms, ten within (1, 2] ms: the p50
            // is 1 ms, the mean 1.2 ms.
            leader_fsync: (system == System::Splitnode).then(|| Histogram {
                buckets: vec![(0.000_75, 0.0), (0.001, 10.0), (0.002, 20.0)],
                sum: 0.024,
                count: 20.0,
            }),
            leader_write: None,
        };
        let points = [
            point(System::Splitnode, 1, 2),
            point(System::Splitnode, 3, 2),
            point(System::Splitnode, 7, 3),
            point(System::Etcd, 3, 8),
        ];
        let rows = sweep_rows(&points, &[1, 3, 7], Profile::Fast);
        let row = |figure: &str| {
            rows.iter()
                .find(|r| r.figure == figure)
                .unwrap_or_else(|| panic!("no row {figure:?}"))
        };
        let p50_3 = row("write p50, 3 nodes");
        assert_eq!((p50_3.splitnode, p50_3.etcd), (Some(2.0), Some(8.0)));
        assert_eq!(p50_3.goal, Some(Goal::RatioAtMost(0.4)));
        let p50_7 = row("write p50, 7 nodes");
        assert_eq!(p50_7.goal, Some(Goal::RatioAtMost(0.5)));
        let over_floor = row("write p50 / floor, 3 nodes");
        assert_eq!(over_floor.unit, "x");
        assert_eq!(
            over_floor.splitnode.map(|r| (r * 1e3).round()),
            Some(1333.0)
        );
        assert_eq!(over_floor.etcd.map(|r| (r * 1e3).round()), Some(5333.0));
        assert_eq!(over_floor.goal, Some(Goal::AtMost(2.0)));
        let shared = row("write p50 / shared-disk floor, 7 nodes");
        assert_eq!((shared.splitnode, shared.goal), (Some(1.5), None));
        let durable = row("write p50 / durable round trip, 1 nodes");
        assert_eq!((durable.splitnode, durable.etcd), (Some(1.6), None));
        assert!(
            rows.iter()
                .all(|r| r.figure != "write p50 / durable round trip, 3 nodes")
        );
        let quorum = row("write p50 / quorum durable round trip, 3 nodes");
        assert_eq!(quorum.splitnode, Some(1.25));
        let own_fsync = row("leader's own fsync mean, 3 nodes");
        assert_eq!((own_fsync.splitnode, own_fsync.etcd), (Some(1.2), None));
        let over_own_fsync = row("write p50 / leader's own fsync p50, 3 nodes");
        assert_eq!(over_own_fsync.splitnode, Some(2.0));
        let growth = rows.iter().find(|r| r.figure.contains("growth")).unwrap();
        assert_eq!(growth.splitnode, Some(1.5));
        assert_eq!(
            growth.goal.unwrap().met(growth.splitnode, growth.etcd),
            Some(false)
        );
        let p99 = row("failover p99, 3 nodes");
        assert_eq!(p99.goal, Some(Goal::AtMost(400.0)));
        let median = row("failover median, 3 nodes");
        assert_eq!(median.goal, Some(Goal::AtMost(280.0)));
    }
}
