//! Linearizability check of a deterministic 100k-operation history over
//! 100 keys from 16 clients, with overlapping operations and ~2 % of
//! mutations timing out (`info`). Target: at most 10 s and 1 GiB.
use std::hint::black_box;

use checker::checks::linearizability;
use checker::synthetic::{Workload, register_history};
use checker::{History, LinearizabilityBudget, Verdict, pair_operations};
use criterion::{Criterion, criterion_group, criterion_main};

/// Checks `workload`'s generated history once (it must be valid, and its
/// summary is printed), then benches `check_operations` on it as `name`.
/// Returns the history for further benches.
fn bench_workload(c: &mut Criterion, name: &str, workload: &Workload) -> History {
    let history = register_history(workload);
    let operations = pair_operations(&history).expect("generated histories are well formed");
    let budget = LinearizabilityBudget::default();
    let first = linearizability::check_operations(&operations, &budget);
    assert_eq!(first.verdict, Verdict::Valid, "{first:?}");
    eprintln!("{}", first.details.join("\n"));
    let mut group = c.benchmark_group("linearizability");
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| linearizability::check_operations(black_box(&operations), &budget))
    });
    group.finish();
    history
}

fn bench_linearizability(c: &mut Criterion) {
    let history = bench_workload(c, "100k_ops_100_keys_16_clients", &Workload::default());
    let budget = LinearizabilityBudget::default();
    let mut group = c.benchmark_group("linearizability");
    group.sample_size(10);
    group.bench_function("100k_ops_pair_and_check_from_history", |b| {
        b.iter(|| linearizability::check(black_box(&history), &budget))
    });
    group.finish();
}

/// A harsher shape: 64 clients and 10 % timeouts, so operations on the same
/// key overlap far more and many unknown-outcome writes stay pending.
fn bench_contended(c: &mut Criterion) {
    let workload = Workload {
        clients: 64,
        info_per_mille: 100,
        ..Workload::default()
    };
    bench_workload(c, "100k_ops_100_keys_64_clients_10pct_info", &workload);
}

/// One hot key under heavy contention: 5k operations from 16 clients, each
/// overlapping about 15 others. Exponential in the worst case; this tracks
/// how far the pruning carries.
fn bench_hot_key(c: &mut Criterion) {
    let workload = Workload {
        operations: 5_000,
        keys: 1,
        clients: 16,
        info_per_mille: 100,
        ..Workload::default()
    };
    bench_workload(c, "5k_ops_1_key_16_clients_10pct_info", &workload);
}

/// What `splitlab check` pays before judging: parsing history.jsonl.
fn bench_parse(c: &mut Criterion) {
    let text = register_history(&Workload::default()).to_jsonl_string();
    let mut group = c.benchmark_group("jsonl");
    group.sample_size(10);
    group.bench_function("parse_100k_op_history", |b| {
        b.iter(|| History::read_jsonl(black_box(text.as_bytes())).expect("valid JSONL"))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_linearizability,
    bench_contended,
    bench_hot_key,
    bench_parse
);
criterion_main!(benches);
