//! I6 The minority rejects writes within X.
//!
//! For every partition window `[start, end)` with minority side `M`:
//! - (a) safety: no node in `M` acknowledges (`ok`) a write, CAS or delete
//!   that was invoked at or after `start` and acknowledged before `end` — it
//!   cannot have been committed by a quorum. Whatever the timing.
//! - (b) responsiveness (when a bound `X` is configured): every write sent to
//!   a node in `M` and invoked in `[start + X, end)` ends with an explicit
//!   error (`fail`), never a timeout (`info`).
//!
//! A timeout only counts as a hang if the request could reach the node: with
//! `client_reach` given, timeouts of clients cut off from the node are
//! counted but not judged (a client in the majority region that still
//! targets the old leader times out through no fault of the leader).
//!
//! The serving node is the completion's `node` (else the invocation's).
//! Writes without a node cannot be attributed and are only counted. Stale
//! reads from the minority (I6 c) are the linearizability check's job.
//!
//! Invariant I6 (see crates/checker/README.md).
use std::collections::BTreeSet;

use crate::config::{ClientReach, PartitionWindow};
use crate::history::History;
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence, fmt_duration, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "minority_rejects_writes";

/// Pairs the history's records into operations, then runs
/// [`check_operations`]; a malformed history is `unknown`.
pub fn check(
    history: &History,
    partitions: &[PartitionWindow],
    bound_ns: Option<u64>,
    client_reach: Option<&[ClientReach]>,
) -> CheckResult {
    check_paired(NAME, history, |operations| {
        check_operations(operations, partitions, bound_ns, client_reach)
    })
}

/// Judges writes served by each window's minority: (a) none acknowledged;
/// (b) with `bound_ns`, none left hanging after `start + bound_ns` by a
/// client that could reach the node (`client_reach`; `None`: all could).
pub fn check_operations(
    operations: &[Operation],
    partitions: &[PartitionWindow],
    bound_ns: Option<u64>,
    client_reach: Option<&[ClientReach]>,
) -> CheckResult {
    let mut evidence = Evidence::default();
    let reaches = |op: &Operation, node: &str| {
        client_reach.is_none_or(|reach| {
            reach.iter().any(|r| {
                r.process == op.process
                    && r.start_ns <= op.invoke_ns
                    && op.invoke_ns < r.end_ns
                    && r.nodes.iter().any(|n| n == node)
            })
        })
    };
    if partitions.is_empty() {
        evidence.note("not applicable: no partition windows configured".to_string());
        return evidence.finish(NAME);
    }
    for window in partitions {
        let minority: BTreeSet<&str> = window.minority.iter().map(String::as_str).collect();
        let label = format!(
            "partition [{} .. {}) minority {{{}}}",
            fmt_ns(window.start_ns),
            fmt_ns(window.end_ns),
            window.minority.join(",")
        );
        let mut sent_to_minority = 0usize;
        let mut rejected = 0usize;
        let mut unattributed = 0usize;
        let mut unreachable_timeouts = 0usize;
        for op in operations.iter().filter(|op| op.f.is_mutation()) {
            if op.invoke_ns < window.start_ns || op.invoke_ns >= window.end_ns {
                continue;
            }
            let Some(node) = op.node.as_deref() else {
                unattributed += 1;
                continue;
            };
            if !minority.contains(node) {
                continue;
            }
            sent_to_minority += 1;
            let acked_inside =
                op.outcome == Outcome::Ok && op.complete_ns.is_some_and(|t| t < window.end_ns);
            if acked_inside {
                evidence.violation(format!(
                    "{label}: minority node {node} acknowledged a write invoked {} after the partition began: {op}",
                    fmt_duration(op.invoke_ns - window.start_ns)
                ));
                continue;
            }
            if op.outcome == Outcome::Fail {
                rejected += 1;
            }
            if let Some(bound) = bound_ns {
                let deadline = window.start_ns.saturating_add(bound);
                if op.invoke_ns >= deadline && op.outcome == Outcome::Info && !reaches(op, node) {
                    unreachable_timeouts += 1;
                } else if op.invoke_ns >= deadline && op.outcome == Outcome::Info {
                    evidence.violation(format!(
                        "{label}: write sent to minority node {node} {} after the partition began (bound {}) got no explicit error: {op}",
                        fmt_duration(op.invoke_ns - window.start_ns),
                        fmt_duration(bound)
                    ));
                }
            }
        }
        evidence.note(format!(
            "{label}: {sent_to_minority} writes sent to the minority, {rejected} rejected explicitly{}{}",
            if unattributed > 0 {
                format!(", {unattributed} writes without a node not attributed")
            } else {
                String::new()
            },
            if unreachable_timeouts > 0 {
                format!(", {unreachable_timeouts} timeouts of clients cut off from the node not judged")
            } else {
                String::new()
            }
        ));
    }
    evidence.finish(NAME)
}
