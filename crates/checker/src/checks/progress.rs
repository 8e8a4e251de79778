//! I12 Liveness with a connected quorum: if a quorum `S` is fully connected
//! and stable, writes through `S` succeed.
//!
//! For every quorum window `[start, end)`, after a grace period (`2·ET_max`
//! of stability plus `T_live`, configured as `progress_grace_ns`) at least
//! one write, CAS or delete served by a node of `S` (or by an unnamed node)
//! must be acknowledged inside `[start + grace, end)`. Windows shorter than
//! the grace are skipped. Only attempts that finished (refused or timed out)
//! before the window ended are evidence of no progress: one still in flight
//! when a new fault cut the quorum says nothing about the connected quorum.
//! If no client even tried to write through `S` there, or none of its
//! attempts finished inside the window, the window is unknown rather than
//! valid.
//!
//! Invariant I12 (see crates/checker/README.md); after openraft's
//! partial-network liveness test.
use std::collections::BTreeSet;

use crate::config::QuorumWindow;
use crate::history::History;
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "progress";

/// Pairs the history's records into operations, then runs
/// [`check_operations`]; a malformed history is `unknown`.
pub fn check(history: &History, windows: &[QuorumWindow], grace_ns: u64) -> CheckResult {
    check_paired(NAME, history, |operations| {
        check_operations(operations, windows, grace_ns)
    })
}

/// Requires an acknowledged write through each window's quorum within
/// `[start + grace_ns, end)`.
pub fn check_operations(
    operations: &[Operation],
    windows: &[QuorumWindow],
    grace_ns: u64,
) -> CheckResult {
    let mut evidence = Evidence::default();
    if windows.is_empty() {
        return CheckResult::not_applicable(NAME, "no quorum windows configured");
    }
    let mut judged = 0usize;
    for window in windows {
        let quorum: BTreeSet<&str> = window.nodes.iter().map(String::as_str).collect();
        let through_quorum = |op: &Operation| {
            quorum.is_empty() || op.node.as_deref().is_none_or(|n| quorum.contains(n))
        };
        let from = window.start_ns.saturating_add(grace_ns);
        let who = if window.nodes.is_empty() {
            "any node (all connected)".to_string()
        } else {
            format!("quorum {{{}}}", window.nodes.join(","))
        };
        let label = format!(
            "{who} connected [{} .. {}), judged from {}",
            fmt_ns(window.start_ns),
            fmt_ns(window.end_ns),
            fmt_ns(from)
        );
        if from >= window.end_ns {
            evidence.note(format!("{label}: skipped, shorter than the grace period"));
            continue;
        }
        judged += 1;
        let mutations = || {
            operations
                .iter()
                .filter(|op| op.f.is_mutation() && through_quorum(op))
        };
        let succeeded = mutations()
            .filter(|op| op.outcome == Outcome::Ok)
            .filter(|op| {
                op.complete_ns
                    .is_some_and(|t| t >= from && t < window.end_ns)
            })
            .count();
        if succeeded > 0 {
            evidence.note(format!("{label}: {succeeded} writes succeeded"));
            continue;
        }
        let invoked: Vec<&Operation> = mutations()
            .filter(|op| op.invoke_ns >= from && op.invoke_ns < window.end_ns)
            .collect();
        if invoked.is_empty() {
            evidence.unknown(format!(
                "{label}: no write was attempted through the quorum"
            ));
            continue;
        }
        let attempts: Vec<&Operation> = invoked
            .iter()
            .copied()
            .filter(|op| op.complete_ns.is_some_and(|t| t < window.end_ns))
            .collect();
        if attempts.is_empty() {
            evidence.unknown(format!(
                "{label}: {} writes were attempted through the quorum, none finished before the window ended",
                invoked.len()
            ));
            continue;
        }
        let failed = attempts
            .iter()
            .filter(|op| op.outcome == Outcome::Fail)
            .count();
        let examples: Vec<String> = attempts.iter().take(3).map(|op| op.to_string()).collect();
        evidence.violation(format!(
            "{label}: no write succeeded; {} attempts ({failed} failed, {} timed out or unknown), e.g. {}",
            attempts.len(),
            attempts.len() - failed,
            examples.join("; ")
        ));
    }
    if judged == 0 {
        evidence.unknown(format!(
            "every quorum window is shorter than the grace period ({}): nothing to judge",
            crate::verdict::fmt_duration(grace_ns)
        ));
    }
    evidence.finish(NAME)
}
