//! I5 Linearizability of reads and writes, per key, against a register
//! model with read, write, compare-and-set and delete.
//!
//! The history is split by key (jepsen `independent`; linearizability is
//! compositional) and each key is searched with the WGL algorithm
//! ([`crate::wgl`]). Failed operations never happened. Operations of unknown
//! outcome (`info`, or never completed) may take effect at any point after
//! their invocation, or never (Knossos `:info`; etcd robustness gives them
//! return time ∞); an unknown read constrains nothing and is dropped. So is
//! an unknown write whose value no read or CAS ever mentions: applying it
//! could only break later reads, never explain them.
//!
//! Each key has a time and memory budget; when it runs out the key is
//! `unknown` rather than exhausting the machine. For a key that is not
//! linearizable, the report names the shortest failing prefix of the key's
//! history (the failure is monotone in the prefix: cutting at time `T`
//! keeps operations invoked by `T`, and those still running at `T` become
//! unknown) and the operations around the one whose completion made it fail.
//!
//! Invariant I5 (see crates/checker/README.md); Wing & Gong 1993, Lowe
//! 2017, Porcupine, Knossos.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::config::LinearizabilityBudget;
use crate::history::{History, OpFn};
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence, fmt_ns};
use crate::wgl::{self, ABSENT, Effect, Limits, RegisterOp, UNSEEN, Value};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "linearizability";

/// At most this many operations are listed around a failure.
const MAX_LISTED_OPS: usize = 12;

/// Pairs the history's records into operations, then runs
/// [`check_operations`]; a malformed history is `unknown`.
pub fn check(history: &History, budget: &LinearizabilityBudget) -> CheckResult {
    check_paired(NAME, history, |operations| {
        check_operations(operations, budget)
    })
}

/// Verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyVerdict {
    /// Some order explains every completed operation of the key.
    Linearizable,
    /// Not linearizable; the evidence lines.
    NotLinearizable(Vec<String>),
    /// The budget ran out.
    Unknown(String),
}

/// Searches every key within `budget`; keys the budget does not reach are
/// `unknown`.
pub fn check_operations(operations: &[Operation], budget: &LinearizabilityBudget) -> CheckResult {
    let started = Instant::now();
    let total_deadline = started + Duration::from_millis(budget.total_time_ms);
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    if by_key.is_empty() {
        return CheckResult::no_evidence(NAME, "no operations: nothing to judge");
    }
    let mut evidence = Evidence::default();
    let mut checked = 0usize;
    let mut lists = 0usize;
    let mut configurations = 0u64;
    for (key, ops) in &by_key {
        if ops.iter().any(|op| op.f == OpFn::Append) {
            // A list, not a register: no_lost_writes judges its appends.
            lists += 1;
            continue;
        }
        let now = Instant::now();
        if now >= total_deadline {
            evidence.unknown(format!(
                "key {key}: not checked, total time budget of {} ms exhausted",
                budget.total_time_ms
            ));
            continue;
        }
        let deadline = total_deadline.min(now + Duration::from_millis(budget.per_key_time_ms));
        let limits = Limits {
            deadline,
            max_memo_bytes: budget.per_key_memory_bytes,
        };
        let (verdict, explored) = check_key(ops, &limits, budget.minimize_failures);
        configurations += explored;
        checked += 1;
        match verdict {
            KeyVerdict::Linearizable => {}
            KeyVerdict::NotLinearizable(lines) => evidence.violation(format!(
                "key {key} is not linearizable: {}",
                lines.join("; ")
            )),
            KeyVerdict::Unknown(reason) => evidence.unknown(format!("key {key}: {reason}")),
        }
    }
    if lists > 0 {
        evidence.note(format!(
            "{lists} list keys (appends) left to no_lost_writes: the register model does not apply"
        ));
        if checked == 0 {
            evidence.unknown("no register key: nothing to judge".to_string());
        }
    }
    evidence.note(format!(
        "{checked} keys, {} operations checked in {} ms ({configurations} configurations explored)",
        operations.len(),
        started.elapsed().as_millis()
    ));
    evidence.finish(NAME)
}

/// The register operations of one key, with the originals they came from.
struct KeyModel<'a> {
    ops: Vec<RegisterOp>,
    sources: Vec<&'a Operation>,
}

fn build_model<'a>(ops: &[&'a Operation]) -> KeyModel<'a> {
    let mut values: HashMap<&str, Value> = HashMap::new();
    let mut intern = |value: Option<&'a str>| -> Value {
        match value {
            None => ABSENT,
            Some(v) => {
                let next = values.len() as Value + 1;
                *values.entry(v).or_insert(next)
            }
        }
    };
    // Values some completed read or any CAS mentions: only unknown writes
    // of these can matter.
    let mut mentioned: Vec<Value> = Vec::new();
    for op in ops {
        match (op.f, op.outcome) {
            (OpFn::Read, Outcome::Ok) => mentioned.push(intern(op.value.as_deref())),
            (OpFn::Cas, Outcome::Ok | Outcome::Info) => {
                mentioned.push(intern(op.expected.as_deref()))
            }
            _ => {}
        }
    }
    let mut model = KeyModel {
        ops: Vec::with_capacity(ops.len()),
        sources: Vec::with_capacity(ops.len()),
    };
    for &op in ops {
        let return_ns = match op.outcome {
            Outcome::Fail => continue,
            Outcome::Ok => op.complete_ns,
            Outcome::Info => None,
        };
        let effect = match op.f {
            OpFn::Read if op.outcome == Outcome::Ok => Effect::Read(intern(op.value.as_deref())),
            OpFn::Read => continue,
            OpFn::Write => Effect::Write(intern(op.value.as_deref())),
            OpFn::Delete => Effect::Write(ABSENT),
            // List keys never reach the register model (see `check`).
            OpFn::Append => continue,
            OpFn::Cas => Effect::Cas {
                expected: intern(op.expected.as_deref()),
                new: intern(op.value.as_deref()),
            },
        };
        let result = match effect {
            Effect::Write(v) | Effect::Cas { new: v, .. } => Some(v),
            Effect::Read(_) => None,
        };
        let unseen = result.is_some_and(|v| !mentioned.contains(&v));
        if unseen && return_ns.is_none() {
            // An unknown write nobody observes: assume it never happened.
            continue;
        }
        let effect = match effect {
            Effect::Write(_) if unseen => Effect::Write(UNSEEN),
            Effect::Cas { expected, .. } if unseen => Effect::Cas {
                expected,
                new: UNSEEN,
            },
            other => other,
        };
        model.ops.push(RegisterOp {
            effect,
            call_ns: op.invoke_ns,
            return_ns,
        });
        model.sources.push(op);
    }
    model
}

/// The prefix of the key's history up to time `cut`: operations invoked by
/// `cut`; those still running at `cut` become of unknown outcome (reads
/// are dropped).
fn prefix(ops: &[RegisterOp], cut: u64) -> Vec<RegisterOp> {
    ops.iter()
        .filter(|op| op.call_ns <= cut)
        .filter_map(|op| match op.return_ns {
            Some(ret) if ret <= cut => Some(*op),
            _ => match op.effect {
                Effect::Read(_) => None,
                _ => Some(RegisterOp {
                    return_ns: None,
                    ..*op
                }),
            },
        })
        .collect()
}

/// Checks one key's operations (all of the same key).
pub(crate) fn check_key(ops: &[&Operation], limits: &Limits, minimize: bool) -> (KeyVerdict, u64) {
    let model = build_model(ops);
    let (outcome, stats) = wgl::check(&model.ops, limits);
    let mut explored = stats.configurations;
    let verdict = match outcome {
        wgl::Outcome::Linearizable => KeyVerdict::Linearizable,
        wgl::Outcome::Unknown(reason) => KeyVerdict::Unknown(format!(
            "undecided over {} operations: {reason}",
            model.ops.len()
        )),
        wgl::Outcome::NotLinearizable => {
            let lines = if minimize {
                let (lines, more) = explain_failure(&model, limits);
                explored += more;
                lines
            } else {
                vec![format!(
                    "no linearization of its {} operations exists",
                    model.ops.len()
                )]
            };
            KeyVerdict::NotLinearizable(lines)
        }
    };
    (verdict, explored)
}

/// Binary-searches the shortest failing prefix and lists the operations
/// around the completion that made it fail.
fn explain_failure(model: &KeyModel<'_>, limits: &Limits) -> (Vec<String>, u64) {
    let mut cuts: Vec<u64> = model.ops.iter().filter_map(|op| op.return_ns).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut explored = 0u64;
    // Invariant: the prefix at cuts[high] fails (the whole history does).
    let (mut low, mut high) = (0usize, cuts.len() - 1);
    let mut undecided = None;
    while low < high {
        let middle = (low + high) / 2;
        let (outcome, stats) = wgl::check(&prefix(&model.ops, cuts[middle]), limits);
        explored += stats.configurations;
        match outcome {
            wgl::Outcome::NotLinearizable => high = middle,
            wgl::Outcome::Linearizable => low = middle + 1,
            wgl::Outcome::Unknown(reason) => {
                undecided = Some(reason);
                break;
            }
        }
    }
    let cut = cuts[high];
    let mut lines = Vec::new();
    if let Some(reason) = undecided {
        lines.push(format!(
            "failing prefix ends by {} (not minimized further: {reason})",
            fmt_ns(cut)
        ));
    } else {
        lines.push(format!(
            "the shortest failing prefix ends at {}, when this completed",
            fmt_ns(cut)
        ));
    }
    // The culprits: completions at the cut.
    let culprits: Vec<usize> = (0..model.ops.len())
        .filter(|&i| model.ops[i].return_ns == Some(cut))
        .collect();
    // The operations that explain the failure: those concurrent with a
    // culprit, the last mutation that definitely preceded it, and the
    // latest mutation producing the value a culprit read or expected.
    let mut involved: Vec<usize> = Vec::new();
    let concurrent = |i: usize, c: usize| {
        let (a, b) = (&model.ops[i], &model.ops[c]);
        a.call_ns <= cut && a.return_ns.is_none_or(|r| r >= b.call_ns)
    };
    for &c in &culprits {
        involved.extend((0..model.ops.len()).filter(|&i| i != c && concurrent(i, c)));
        let call = model.ops[c].call_ns;
        let last_definite_mutation = (0..model.ops.len())
            .filter(|&i| !matches!(model.ops[i].effect, Effect::Read(_)))
            .filter(|&i| model.ops[i].return_ns.is_some_and(|r| r < call))
            .max_by_key(|&i| model.ops[i].return_ns);
        involved.extend(last_definite_mutation);
        let wanted = match model.ops[c].effect {
            Effect::Read(v) => Some(v),
            Effect::Cas { expected, .. } => Some(expected),
            Effect::Write(_) => None,
        };
        let producer = (0..model.ops.len())
            .filter(|&i| i != c && model.ops[i].call_ns <= cut)
            .filter(|&i| match (model.ops[i].effect, wanted) {
                (Effect::Write(v) | Effect::Cas { new: v, .. }, Some(w)) => v == w,
                _ => false,
            })
            .max_by_key(|&i| model.ops[i].call_ns);
        involved.extend(producer);
    }
    involved.retain(|i| !culprits.contains(i));
    involved.sort_by_key(|&i| (model.ops[i].call_ns, i));
    involved.dedup();
    for &c in &culprits {
        lines.push(format!("culprit: {}", model.sources[c]));
    }
    let skipped = involved.len().saturating_sub(MAX_LISTED_OPS);
    for &i in &involved[skipped..] {
        lines.push(format!("involved: {}", model.sources[i]));
    }
    if skipped > 0 {
        lines.push(format!(
            "({skipped} earlier involved operations not listed)"
        ));
    }
    (lines, explored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seeded::SplitMix64;

    /// Exhaustive search over orders: the reference the optimized search
    /// must agree with on small histories.
    fn brute_force(ops: &[&Operation]) -> bool {
        let live: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|op| op.outcome != Outcome::Fail)
            .filter(|op| !(op.f == OpFn::Read && op.outcome == Outcome::Info))
            .collect();
        fn search(live: &[&Operation], used: &mut Vec<bool>, state: Option<&str>) -> bool {
            let all_ok_done = live
                .iter()
                .zip(used.iter())
                .all(|(op, &u)| u || op.outcome != Outcome::Ok);
            if all_ok_done {
                return true;
            }
            for i in 0..live.len() {
                if used[i] {
                    continue;
                }
                let op = live[i];
                // Every unused completed op must not have returned before
                // this one was invoked.
                let blocked = live.iter().zip(used.iter()).any(|(p, &u)| {
                    !u && p.outcome == Outcome::Ok
                        && p.complete_ns.is_some_and(|r| r < op.invoke_ns)
                });
                if blocked {
                    continue;
                }
                let next: Option<Option<&str>> = match op.f {
                    OpFn::Read => (op.value.as_deref() == state).then_some(state),
                    OpFn::Write => Some(op.value.as_deref()),
                    OpFn::Delete => Some(None),
                    OpFn::Cas => (op.expected.as_deref() == state).then_some(op.value.as_deref()),
                    // A register has no lists: an append never linearizes.
                    OpFn::Append => None,
                };
                if let Some(next) = next {
                    used[i] = true;
                    if search(live, used, next) {
                        return true;
                    }
                    used[i] = false;
                }
            }
            false
        }
        let mut used = vec![false; live.len()];
        search(&live, &mut used, None)
    }

    fn random_history(rng: &mut SplitMix64, n: usize) -> Vec<Operation> {
        let values = ["a", "b", "c"];
        (0..n)
            .map(|i| {
                let invoke_ns = rng.range(0, 40);
                let complete_ns = invoke_ns + rng.range(0, 15);
                let f = match rng.range(0, 10) {
                    0..4 => OpFn::Read,
                    4..7 => OpFn::Write,
                    7..9 => OpFn::Cas,
                    _ => OpFn::Delete,
                };
                let pick = |rng: &mut SplitMix64| {
                    let i = rng.range(0, values.len() as u64 + 1) as usize;
                    values.get(i).map(|v| v.to_string())
                };
                let outcome = match rng.range(0, 10) {
                    0 => Outcome::Info,
                    1 => Outcome::Fail,
                    _ => Outcome::Ok,
                };
                let value = match f {
                    OpFn::Delete => None,
                    OpFn::Read => pick(rng),
                    _ => Some(values[rng.range(0, 3) as usize].to_string()),
                };
                let expected = if f == OpFn::Cas { pick(rng) } else { None };
                Operation {
                    process: i as u64,
                    f,
                    key: "k".to_string(),
                    value,
                    expected,
                    invoke_ns,
                    complete_ns: (outcome != Outcome::Info).then_some(complete_ns),
                    outcome,
                    node: None,
                    token: None,
                    error: None,
                    invoke_position: i,
                }
            })
            .collect()
    }

    #[test]
    fn agrees_with_exhaustive_search_on_random_small_histories() {
        let mut rng = SplitMix64::new(42);
        let limits = Limits {
            deadline: Instant::now() + Duration::from_secs(60),
            max_memo_bytes: 64 << 20,
        };
        let (mut valid, mut invalid) = (0, 0);
        for round in 0..20_000 {
            let n = 2 + round % 8;
            let history = random_history(&mut rng, n);
            let refs: Vec<&Operation> = history.iter().collect();
            let expected = brute_force(&refs);
            let (verdict, _) = check_key(&refs, &limits, false);
            let got = match verdict {
                KeyVerdict::Linearizable => true,
                KeyVerdict::NotLinearizable(_) => false,
                KeyVerdict::Unknown(reason) => panic!("unknown on a tiny history: {reason}"),
            };
            assert_eq!(
                got,
                expected,
                "round {round}: {:#?}",
                history.iter().map(|op| op.to_string()).collect::<Vec<_>>()
            );
            if expected { valid += 1 } else { invalid += 1 }
        }
        // Both outcomes must be well represented for the test to mean much.
        assert!(
            valid > 300 && invalid > 300,
            "valid {valid} invalid {invalid}"
        );
    }
}
