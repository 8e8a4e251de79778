//! Sequential quorum write latency of a real 3-node `splitnode` cluster on
//! loopback, fsync on (the data directories are on the temp dir's disk; the
//! benchmark prints the file system type so a tmpfs run is recognisable).
//!
//! One keep-alive HTTP connection to the leader; each iteration is one
//! `PUT /kv/bench-N` that returns only after a quorum fsynced the entry and
//! the leader applied it. Besides criterion's estimate, every latency is
//! recorded and p50 / p99 / max (nearest rank, `figures::percentile`) are
//! printed at the end.
//!
//! Run: `cargo bench -p node --bench quorum_write`
#[path = "../tests/support/mod.rs"]
mod support;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use support::{Cluster, ClusterOptions, HttpConn};

fn quorum_write(criterion: &mut Criterion) {
    let cluster = Cluster::start(
        "bench",
        ClusterOptions {
            size: 3,
            net: 40,
            mode: "safe",
            extra: Vec::new(),
        },
    );
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    // Warm up: the leader's first entries and all connections established.
    cluster.write("warmup", "x", Duration::from_secs(20));
    let leader = &cluster.nodes[leader];
    let mut conn = HttpConn::connect(leader.client_addr, Duration::from_secs(10)).expect("connect");
    let latencies = RefCell::new(Vec::new());
    let mut counter = 0u64;
    let value = "v".repeat(64);

    let mut group = criterion.benchmark_group("splitnode");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("sequential_quorum_write_3_nodes_fsync", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                counter += 1;
                let path = format!("/kv/bench-{counter}");
                let start = Instant::now();
                let response = conn
                    .request("PUT", &path, value.as_bytes(), &[])
                    .expect("write request");
                let elapsed = start.elapsed();
                assert_eq!(response.status, 200, "{}", response.body);
                total += elapsed;
                latencies.borrow_mut().push(elapsed);
            }
            total
        });
    });
    group.finish();

    let mut sorted = latencies.into_inner();
    sorted.sort_unstable();
    let fs_type = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&cluster.dir.0)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "quorum_write: {} sequential writes, 3 nodes, fsync on ({fs_type}): p50 = {:?}, p99 = {:?}, max = {:?}",
        sorted.len(),
        figures::percentile(&sorted, 0.50).unwrap_or_default(),
        figures::percentile(&sorted, 0.99).unwrap_or_default(),
        sorted.last().copied().unwrap_or_default(),
    );
    let metrics = leader.metrics().unwrap_or_default();
    println!(
        "quorum_write: leader fsyncs = {}, writes ok = {}",
        support::metric(&metrics, "splitnode_fsyncs_total"),
        support::metric(&metrics, "splitnode_writes_ok_total"),
    );
}

criterion_group!(benches, quorum_write);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
