//! Micro benchmarks: wire codec, consensus step, checker throughput.
//! Run with `cargo bench --bench micro`; CI runs `cargo bench -- --test`.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wire::{Entry, Frame, Header, KvOp, Message, PROTOCOL_VERSION, Payload};

fn append_frame(entries: usize, value_len: usize) -> Frame {
    let entries = (1..=entries as u64)
        .map(|index| Entry {
            term: 7,
            index,
            payload: Payload::Command {
                client: 42,
                seq: index,
                op: KvOp::Put { key: format!("key-{index}"), value: "v".repeat(value_len) },
            },
        })
        .collect();
    Frame {
        header: Header { version: PROTOCOL_VERSION, cluster: 1, from: 1, to: 2, term: 7 },
        message: Message::Append { prev_log_index: 0, prev_log_term: 0, entries, leader_commit: 0 },
    }
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (name, frame) in [
        ("heartbeat", Frame {
            header: Header { version: PROTOCOL_VERSION, cluster: 1, from: 1, to: 2, term: 7 },
            message: Message::Heartbeat { seq: 99, commit: 1234 },
        }),
        ("append_1x100B", append_frame(1, 100)),
        ("append_64x100B", append_frame(64, 100)),
    ] {
        let bytes = wire::encode_to_vec(&frame);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            let mut out = Vec::with_capacity(bytes.len());
            b.iter(|| {
                out.clear();
                wire::encode(black_box(&frame), &mut out);
                black_box(out.len())
            })
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| wire::decode(black_box(&bytes), wire::DEFAULT_MAX_FRAME).expect("valid frame"))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
