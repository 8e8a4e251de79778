//! Micro benchmarks: wire codec, consensus step, checker throughput.
//! Run with `cargo bench --bench micro`; CI runs `cargo bench -- --test`.
use checker::synthetic::{Workload, register_history};
use consensus::{Action, ClientRequest, Config, Input, Mode, Outbound, Replica, Restored, Role};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::hint::black_box;
use wire::{Entry, Frame, KvOp, Message, NodeId, Payload};

fn append_frame(entries: usize, value_len: usize) -> Frame {
    let entries = (1..=entries as u64)
        .map(|index| Entry {
            term: 7,
            index,
            payload: Payload::Command {
                client: 42,
                seq: index,
                op: KvOp::Put {
                    key: format!("key-{index}"),
                    value: "v".repeat(value_len),
                },
            },
        })
        .collect();
    frame_1_to_2(Message::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries,
        leader_commit: 0,
    })
}

/// `message` as node 1 sends it to node 2 in term 7.
fn frame_1_to_2(message: Message) -> Frame {
    Frame::new(1, 1, 2, 7, message)
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (name, frame) in [
        (
            "heartbeat",
            frame_1_to_2(Message::Heartbeat {
                seq: 99,
                commit: 1234,
            }),
        ),
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
            b.iter(|| {
                wire::decode(black_box(&bytes), wire::DEFAULT_MAX_FRAME).expect("valid frame")
            })
        });
    }
    group.finish();
}

/// Three replicas with instant fsync and instant delivery: enough to measure
/// what the pure core costs per committed write, with no I/O in the way.
struct InstantCluster {
    now: u64,
    replicas: Vec<Replica>,
    /// Messages in flight, as the input their receiver will step.
    queue: VecDeque<(NodeId, Input)>,
    replies: usize,
}

impl InstantCluster {
    fn new(size: u64) -> InstantCluster {
        let members: Vec<NodeId> = (1..=size).collect();
        let replicas = members
            .iter()
            .map(|&id| {
                let config = Config::fast(id, members.clone(), 1, Mode::Safe);
                Replica::new(config, Restored::default(), id, 0).expect("valid config")
            })
            .collect();
        InstantCluster {
            now: 0,
            replicas,
            queue: VecDeque::new(),
            replies: 0,
        }
    }

    fn step(&mut self, id: NodeId, input: Input) {
        let replica = &mut self.replicas[id as usize - 1];
        replica.step(self.now, input);
        let mut persisted = None;
        for action in replica.take_actions() {
            match action {
                Action::Write(write) => persisted = write.seq().or(persisted),
                Action::Send(Outbound {
                    to, term, message, ..
                }) => self.queue.push_back((
                    to,
                    Input::Message {
                        from: id,
                        term,
                        message,
                    },
                )),
                Action::Reply { .. } => self.replies += 1,
                Action::Event(_) => {}
            }
        }
        if let Some(upto) = persisted {
            self.step(id, Input::Persisted { upto });
        }
    }

    fn deliver(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            self.step(to, input);
        }
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..10_000 {
            self.now += 10_000_000;
            for id in 1..=self.replicas.len() as u64 {
                self.step(id, Input::Tick);
            }
            self.deliver();
            if let Some(leader) = self
                .replicas
                .iter()
                .find(|r| r.status().role == Role::Leader)
            {
                return leader.status().id;
            }
        }
        panic!("no leader elected");
    }
}

fn consensus_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus");
    for size in [1u64, 3, 5] {
        let mut cluster = InstantCluster::new(size);
        let leader = cluster.elect();
        let mut seq = 0;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("committed_write/{size}_replicas"), |b| {
            b.iter(|| {
                seq += 1;
                let before = cluster.replies;
                let op = KvOp::Put {
                    key: format!("k{}", seq % 100),
                    value: "v".into(),
                };
                cluster.step(
                    leader,
                    Input::Client {
                        id: seq,
                        request: ClientRequest::Write { client: 1, seq, op },
                    },
                );
                cluster.deliver();
                assert_eq!(
                    cluster.replies,
                    before + 1,
                    "the write must be acknowledged"
                );
            })
        });
    }
    group.finish();
}

fn checker_throughput(c: &mut Criterion) {
    let history = register_history(&Workload {
        operations: 10_000,
        keys: 10,
        ..Workload::default()
    });
    let config = checker::CheckConfig::default();
    let mut group = c.benchmark_group("checker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(history.ops.len() as u64));
    group.bench_function("check_all/10k_ops_10_keys", |b| {
        b.iter(|| {
            let report = checker::check_all(&checker::CheckInput {
                history: &history,
                events: &[],
                config: &config,
            });
            black_box(report)
        })
    });
    group.finish();
}

criterion_group!(benches, codec, consensus_step, checker_throughput);
criterion_main!(benches);
