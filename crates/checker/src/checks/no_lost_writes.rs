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
//! This is a coarse, fast check with clear evidence ("this acked write is
//! gone"); the linearizability check covers every read in between.
//!
//! Invariant I4 (see crates/checker/README.md); after Jepsen set-full
//! "lost" and openraft "Durability".
use std::collections::BTreeMap;

use crate::history::{History, OpFn};
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "no_lost_writes";

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
