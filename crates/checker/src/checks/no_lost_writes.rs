//! I4 No acknowledged write lost.
//!
//! For each key, its final read is the `ok` read invoked last (among reads
//! invoked at or after `final_reads_from_ns` when that is configured: the
//! reads after heal and quiescence). Every acknowledged write, CAS or delete
//! of the key that completed before the final read began must be visible
//! in it: the read returns the value it left (a delete leaves the key
//! absent), or a value left by another mutation that may have taken effect
//! after it — one that was acknowledged or is of unknown outcome (`info`),
//! and did not definitely finish before the write was invoked. Failed
//! operations never count as overwrites.
//!
//! An acknowledged append (list-append workload) is lost when its unique
//! element is not in the final read of its key: later appends never remove
//! an element, so nothing can explain it away. The count comes first
//! ("412 of 1337 acknowledged appends missing after heal").
//!
//! This is a coarse, fast check with clear evidence ("this acked write is
//! gone"); the linearizability check covers every read in between.
//!
//! Invariant I4 (see crates/checker/README.md); after Jepsen set-full
//! "lost" and openraft "Durability".
use std::collections::BTreeMap;

use crate::history::{History, LIST_SEPARATOR, OpFn};
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "no_lost_writes";

/// Missing appends listed one by one after the count; the rest are counted.
const MISSING_SHOWN: usize = 20;

/// Pairs the history's records into operations, then runs
/// [`check_operations`]; a malformed history is `unknown`.
pub fn check(history: &History, final_reads_from_ns: Option<u64>) -> CheckResult {
    check_paired(NAME, history, |operations| {
        check_operations(operations, final_reads_from_ns)
    })
}

/// Whether `other` may have taken effect after `write` (it did not
/// definitely finish before `write` began) and before `read` finished.
fn may_follow(other: &Operation, write: &Operation, read: &Operation) -> bool {
    let after_write = other
        .definite_end_ns()
        .is_none_or(|end| end > write.invoke_ns);
    let before_read_end = read.complete_ns.is_none_or(|end| other.invoke_ns < end);
    after_write && before_read_end
}

/// Checks each key's final read against the acknowledged mutations that
/// finished before it began.
pub fn check_operations(operations: &[Operation], final_reads_from_ns: Option<u64>) -> CheckResult {
    let mut evidence = Evidence::default();
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut verified = 0usize;
    let mut unverifiable = 0usize;
    let mut acked_total = 0usize;
    // Appends leave unique elements: each one must be in its key's final
    // read, whatever happened after it.
    let mut appends = 0usize;
    let mut missing: Vec<String> = Vec::new();
    for (key, ops) in &by_key {
        let acked: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|op| op.is_ok_mutation())
            .collect();
        acked_total += acked.len();
        if acked.is_empty() {
            continue;
        }
        let final_read = ops
            .iter()
            .copied()
            .filter(|op| op.f == OpFn::Read && op.outcome == Outcome::Ok)
            .filter(|op| final_reads_from_ns.is_none_or(|from| op.invoke_ns >= from))
            .max_by_key(|op| (op.invoke_ns, op.complete_ns));
        let Some(read) = final_read else {
            if final_reads_from_ns.is_some() {
                evidence.unknown(format!(
                    "key {key}: {} acknowledged writes but no final read",
                    acked.len()
                ));
            }
            unverifiable += acked.len();
            continue;
        };
        let seen = read.value.as_deref();
        let mutations: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|op| op.f.is_mutation() && op.outcome != Outcome::Fail)
            .collect();
        for write in &acked {
            let Some(acked_at) = write.complete_ns else {
                continue;
            };
            if acked_at >= read.invoke_ns {
                unverifiable += 1;
                if final_reads_from_ns.is_some() {
                    evidence.unknown(format!(
                        "key {key}: acknowledged write not followed by a final read: {write}"
                    ));
                }
                continue;
            }
            verified += 1;
            if write.f == OpFn::Append {
                appends += 1;
                let element = write.value.as_deref().unwrap_or_default();
                let list: Vec<&str> = seen
                    .unwrap_or_default()
                    .split(LIST_SEPARATOR)
                    .filter(|present| !present.is_empty())
                    .collect();
                if !list.contains(&element) {
                    // The whole list would drown the line: its length says enough.
                    missing.push(format!(
                        "key {key}: acknowledged {write} is missing from the final read ({} elements)",
                        list.len()
                    ));
                }
                continue;
            }
            if seen == write.resulting_value() {
                continue;
            }
            let overwritten = mutations.iter().any(|other| {
                other.invoke_position != write.invoke_position
                    && other.resulting_value() == seen
                    && may_follow(other, write, read)
            });
            if !overwritten {
                evidence.violation(format!(
                    "key {key}: acknowledged {write} is lost: final read {read} and no operation that may follow the write leaves {}",
                    seen.unwrap_or("∅ (absent)")
                ));
            }
        }
    }
    if !missing.is_empty() {
        evidence.violation(format!(
            "{} of {appends} acknowledged appends missing after heal",
            missing.len()
        ));
        let shown = missing.len().min(MISSING_SHOWN);
        for detail in missing.drain(..shown) {
            evidence.violation(detail);
        }
        if !missing.is_empty() {
            evidence.violation(format!("... and {} more missing appends", missing.len()));
        }
    } else if appends > 0 {
        evidence.note(format!(
            "all {appends} acknowledged appends present in the final reads"
        ));
    }
    if acked_total == 0 {
        evidence.unknown("no acknowledged write: nothing to verify".to_string());
    } else if verified == 0 {
        evidence.unknown(format!(
            "none of the {acked_total} acknowledged writes was followed by a read of its key"
        ));
    }
    evidence.note(format!(
        "{verified} acknowledged writes verified against final reads, {unverifiable} not verifiable"
    ));
    evidence.finish(NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpKind};

    fn append(process: u64, key: &str, element: &str, at: u64) -> [Op; 2] {
        let invoke = Op::new(process, OpKind::Invoke, OpFn::Append, key, at).with_value(element);
        let ok = invoke.complete(OpKind::Ok, at + 5);
        [invoke, ok]
    }

    fn final_read(key: &str, list: &str, at: u64) -> [Op; 2] {
        let invoke = Op::new(99, OpKind::Invoke, OpFn::Read, key, at);
        let ok = invoke.complete(OpKind::Ok, at + 5).with_value(list);
        [invoke, ok]
    }

    fn judge(ops: Vec<[Op; 2]>) -> CheckResult {
        check(&History::new(ops.concat()), Some(1000))
    }

    #[test]
    fn every_acknowledged_append_must_be_in_the_final_read() {
        let present = judge(vec![
            append(1, "a0", "1-1", 10),
            append(2, "a0", "2-1", 20),
            final_read("a0", "1-1 2-1", 1000),
        ]);
        assert!(present.is_valid(), "{present:?}");
        assert!(
            present
                .details
                .iter()
                .any(|d| d.contains("all 2 acknowledged appends present")),
            "{present:?}"
        );
        // The other side's list replaced ours on heal: two of three are gone,
        // and a later append cannot explain an element away.
        let lost = judge(vec![
            append(1, "a0", "1-1", 10),
            append(2, "a0", "2-1", 20),
            append(3, "a0", "3-1", 30),
            final_read("a0", "3-1", 1000),
        ]);
        assert!(lost.is_invalid(), "{lost:?}");
        assert_eq!(
            lost.details[0],
            "2 of 3 acknowledged appends missing after heal"
        );
        assert!(lost.details[1].contains("1-1"), "{lost:?}");
        assert!(lost.details[2].contains("2-1"), "{lost:?}");
    }

    #[test]
    fn missing_appends_are_counted_past_the_listed_ones() {
        let mut ops: Vec<[Op; 2]> = (0..25)
            .map(|n| append(n, "a0", &format!("{n}-1"), 10 + n * 10))
            .collect();
        ops.push(final_read("a0", "", 1000));
        let lost = judge(ops);
        assert_eq!(
            lost.details[0],
            "25 of 25 acknowledged appends missing after heal"
        );
        assert!(
            lost.details
                .iter()
                .any(|d| d == "... and 5 more missing appends"),
            "{lost:?}"
        );
    }
}
