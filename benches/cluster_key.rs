//! What the cluster key costs: quorum writes on a 3-node splitnode cluster in
//! a netns mesh with the key off and on, in the same run. Rounds alternate
//! (off, on, off, on, ...) on fresh clusters so drift of a shared box hits
//! both sides alike; every acknowledged write of a variant is pooled.
//! - sequential: one client, one write at a time (p50, p99);
//! - concurrent-16: 16 clients (throughput, p50, p99).
//!
//! Needs root. `cargo bench --bench cluster_key` (`-- --test`: one tiny
//! round). The budget: the key may cost at most 5 % of p50.

#[path = "support/mod.rs"]
mod support;

use bench::load::ClientPool;
use bench::system::{Profile, System};
use figures::{Summary, ms};
use std::collections::BTreeMap;
use std::time::Duration;

const PATTERNS: [(&str, usize); 2] = [("sequential", 1), ("concurrent-16", 16)];
const VARIANTS: [&str; 2] = ["key off", "key on"];

#[derive(Default)]
struct Pooled {
    latencies_ns: Vec<u64>,
    ops: u64,
    elapsed: Duration,
    failures: u64,
}

fn main() {
    let Some(env) = support::prepare("cluster_key") else {
        return;
    };
    let (rounds, writes) = if env.test_mode { (1, 5) } else { (4, 2000) };
    let key_file = env.work_dir.join("cluster.key");
    std::fs::create_dir_all(&env.work_dir).expect("create the work directory");
    client::ensure_cluster_key(&key_file).expect("write the key file");

    let mut lab = env.lab(3);
    let mut pooled: BTreeMap<(&str, &str), Pooled> = BTreeMap::new();
    for round in 0..rounds {
        // Odd rounds run the variants the other way round, so neither one
        // always starts on the disk and page cache the other left behind
        // (off always first read the key as +5.4-5.9 % of p50 on two runs).
        let mut order = VARIANTS;
        if round % 2 == 1 {
            order.reverse();
        }
        for variant in order {
            let keyed = variant == "key on";
            lab.set_cluster_key(keyed.then(|| key_file.clone()));
            lab.start(System::Splitnode, Profile::Fast, &env.binaries.splitnode)
                .unwrap_or_else(|e| panic!("{e:#}"));
            for (pattern, clients) in PATTERNS {
                let leader = lab
                    .stable_leader(Duration::from_secs(30))
                    .unwrap_or_else(|e| panic!("{e:#}"));
                let pool = ClientPool::for_cluster(&lab, System::Splitnode, &leader, clients)
                    .expect("client threads");
                // Warm-up: connections, page cache, the leader's first batches.
                let _ = pool.run(writes as u64 / 10 + 1);
                let batch = pool.run(writes as u64);
                let entry = pooled.entry((pattern, variant)).or_default();
                entry.ops += batch.latencies_ns.len() as u64;
                entry.elapsed += batch.elapsed;
                entry.failures += batch.failures;
                entry.latencies_ns.extend(batch.latencies_ns);
                println!(
                    "round {round} {variant} {pattern}: {} acknowledged, {} failed",
                    entry.ops, entry.failures
                );
            }
        }
    }

    let heading = env.heading(
        "cluster_key: splitnode x3, key off vs on (profile fast, same run, alternating rounds)",
        "a handful of writes, figures meaningless",
    );
    println!("== {heading} ==");
    println!(
        "{:<14} {:<8} {:>9} {:>9} {:>12} {:>8}",
        "pattern", "key", "p50 ms", "p99 ms", "writes/s", "failed"
    );
    for (pattern, _) in PATTERNS {
        let mut p50 = Vec::new();
        for variant in VARIANTS {
            let entry = &pooled[&(pattern, variant)];
            let summary = Summary::of(&entry.latencies_ns);
            let throughput = entry.ops as f64 / entry.elapsed.as_secs_f64().max(1e-9);
            p50.push(summary.p50_ns);
            println!(
                "{:<14} {:<8} {:>9.3} {:>9.3} {:>12.0} {:>8}",
                pattern,
                variant.trim_start_matches("key "),
                ms(summary.p50_ns),
                ms(summary.p99_ns),
                throughput,
                entry.failures
            );
        }
        let cost = p50[1] as f64 / p50[0].max(1) as f64 - 1.0;
        println!(
            "{pattern}: the key costs {:+.1} % of p50 (budget +5 %): {}",
            cost * 100.0,
            if cost <= 0.05 { "within" } else { "OVER" }
        );
    }
}
