//! Deterministic synthetic register histories, for benchmarks and tests.
//!
//! Clients run closed loops of reads, writes, compare-and-sets and deletes
//! over a key space; every operation takes effect at a random instant
//! inside its interval, in the order of those instants, against a true
//! register per key — so the history is linearizable by construction. A
//! fraction of mutations time out (`info`): half of them took effect, half
//! never did.
use std::collections::HashMap;

use seeded::SplitMix64;

use crate::history::{History, Op, OpFn, OpKind};

/// Shape of a synthetic workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Seed of the [`SplitMix64`] stream: the same workload gives the same history.
    pub seed: u64,
    /// How many operations the history holds in total.
    pub operations: usize,
    /// Size of the key space the clients spread over.
    pub keys: usize,
    /// Concurrent closed-loop clients (one process each).
    pub clients: u64,
    /// Per mille of mutations that time out (`info`).
    pub info_per_mille: u64,
    /// Shortest operation latency in nanoseconds.
    pub min_latency_ns: u64,
    /// Longest operation latency in nanoseconds (exclusive; above the minimum).
    pub max_latency_ns: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            seed: 1,
            operations: 100_000,
            keys: 100,
            clients: 16,
            info_per_mille: 20,
            min_latency_ns: 1_000_000,
            max_latency_ns: 50_000_000,
        }
    }
}

struct Planned {
    process: u64,
    f: OpFn,
    key: usize,
    value: Option<String>,
    expected: Option<String>,
    invoke_ns: u64,
    complete_ns: u64,
    /// When it takes effect; `None` for a timed-out op that never did.
    effect_ns: Option<u64>,
    timed_out: bool,
    read_result: Option<String>,
    applied: bool,
}

/// Generates a linearizable history for `workload`.
pub fn register_history(workload: &Workload) -> History {
    let mut rng = SplitMix64::new(workload.seed);
    let mut planned: Vec<Planned> = Vec::with_capacity(workload.operations);
    let mut clock: Vec<u64> = vec![0; workload.clients as usize];
    let mut next_value = 0u64;
    for n in 0..workload.operations {
        let process = n as u64 % workload.clients;
        let invoke_ns = clock[process as usize] + rng.range(0, 2_000_000);
        let latency = rng.range(workload.min_latency_ns, workload.max_latency_ns);
        let key = rng.range(0, workload.keys as u64) as usize;
        let roll = rng.range(0, 100);
        let f = match roll {
            0..45 => OpFn::Read,
            45..80 => OpFn::Write,
            80..95 => OpFn::Cas,
            _ => OpFn::Delete,
        };
        next_value += 1;
        let (value, expected) = match f {
            OpFn::Read | OpFn::Delete => (None, None),
            OpFn::Write | OpFn::Append => (Some(next_value.to_string()), None),
            // Expect a recent value so some CAS succeed.
            OpFn::Cas => (
                Some(next_value.to_string()),
                Some(next_value.saturating_sub(rng.range(1, 40)).to_string()),
            ),
        };
        let timed_out = f != OpFn::Read && rng.chance(workload.info_per_mille, 1000);
        let effect_ns = if timed_out && rng.chance(500, 1000) {
            None
        } else {
            Some(invoke_ns + rng.range(0, latency + 1))
        };
        let complete_ns = invoke_ns + latency;
        clock[process as usize] = complete_ns;
        planned.push(Planned {
            process,
            f,
            key,
            value,
            expected,
            invoke_ns,
            complete_ns,
            effect_ns,
            timed_out,
            read_result: None,
            applied: false,
        });
    }
    // Apply in effect order to the true registers.
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].effect_ns.is_some())
        .collect();
    order.sort_by_key(|&i| (planned[i].effect_ns, i));
    let mut registers: HashMap<usize, String> = HashMap::new();
    for i in order {
        let op = &mut planned[i];
        match op.f {
            OpFn::Read => op.read_result = registers.get(&op.key).cloned(),
            OpFn::Write => {
                registers.insert(op.key, op.value.clone().expect("writes carry a value"));
                op.applied = true;
            }
            OpFn::Delete => {
                registers.remove(&op.key);
                op.applied = true;
            }
            OpFn::Append => {
                let element = op.value.clone().expect("appends carry an element");
                registers
                    .entry(op.key)
                    .and_modify(|list| *list = format!("{list} {element}"))
                    .or_insert(element);
                op.applied = true;
            }
            OpFn::Cas => {
                if registers.get(&op.key) == op.expected.as_ref() {
                    registers.insert(op.key, op.value.clone().expect("cas carries a value"));
                    op.applied = true;
                }
            }
        }
    }
    let mut records: Vec<(u64, usize, Op)> = Vec::with_capacity(planned.len() * 2);
    for (i, op) in planned.into_iter().enumerate() {
        let key = format!("k{}", op.key);
        let mut invoke = Op::new(op.process, OpKind::Invoke, op.f, key, op.invoke_ns);
        invoke.value = op.value.clone();
        invoke.expected = op.expected.clone();
        let kind = if op.timed_out {
            OpKind::Info
        } else if op.f == OpFn::Cas && !op.applied {
            OpKind::Fail
        } else {
            OpKind::Ok
        };
        let mut done = invoke.complete(kind, op.complete_ns);
        if op.f == OpFn::Read {
            done.value = op.read_result;
        }
        if kind == OpKind::Fail {
            done.error = Some("cas_mismatch".to_string());
        }
        records.push((op.invoke_ns, 2 * i, invoke));
        records.push((op.complete_ns, 2 * i + 1, done));
    }
    records.sort_by_key(|(t, seq, _)| (*t, *seq));
    History::new(records.into_iter().map(|(_, _, op)| op).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let small = Workload {
            operations: 500,
            ..Workload::default()
        };
        assert_eq!(register_history(&small), register_history(&small));
        let other = Workload { seed: 2, ..small };
        assert_ne!(register_history(&small), register_history(&other));
        assert_eq!(register_history(&small).len(), 1_000);
    }
}
