//! I6 (b), fail fast: a minority answers writes within a bound `X`.
//!
//! For every partition window `[start, end)` with minority side `M`, every
//! write, CAS or delete sent to a node in `M` and invoked in
//! `[start + X, end)` must be answered: refused explicitly (`fail`) or
//! acknowledged (whether that ack was allowed is
//! `minority_never_acknowledges`' job), never left to time out (`info`:
//! the clients hang).
//!
//! A timeout only counts as a hang if the request could reach the node:
//! with `client_reach` given, timeouts of clients cut off from the node are
//! counted but not judged (a client in the majority region that still
//! targets the old leader times out through no fault of the leader). Nor
//! does a write that was still unanswered when the window ended and only
//! then gave up (a timeout or reset after the heal, or after the node
//! crashed, which ends its window): its fate belongs to what came after.
//!
//! A window that ends within `X` of its start is skipped (noted): the bound
//! never passed, so fail-fast has no instance there. If every window is that
//! short the check is not applicable, as without partition windows or
//! without a bound. A window that outlasted `X` but in which no write
//! reached the minority after `start + X` has nothing to judge and is
//! `unknown`.
//!
//! Invariant I6 (see crates/checker/README.md).
use crate::config::{ClientReach, PartitionWindow};
use crate::history::History;
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence, fmt_duration};

use super::minority::{unattributed_note, writes_to_minority};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "minority_fails_fast";

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

/// Flags every write sent to a window's minority from `start + bound_ns` on
/// that timed out although its client could reach the node
/// (`client_reach`; `None`: all could).
pub fn check_operations(
    operations: &[Operation],
    partitions: &[PartitionWindow],
    bound_ns: Option<u64>,
    client_reach: Option<&[ClientReach]>,
) -> CheckResult {
    if partitions.is_empty() {
        return CheckResult::not_applicable(NAME, "no partition left a minority in this run");
    }
    let Some(bound) = bound_ns else {
        return CheckResult::not_applicable(NAME, "no bound for minority answers configured");
    };
    let mut evidence = Evidence::default();
    let mut short = 0usize;
    for window in partitions {
        let deadline = window.start_ns.saturating_add(bound);
        if deadline >= window.end_ns {
            short += 1;
            continue;
        }
        let sent = writes_to_minority(operations, window, client_reach);
        let label = &sent.label;
        let mut judged = 0usize;
        let mut answered = 0usize;
        let mut unreachable_timeouts = 0usize;
        let mut outlived = 0usize;
        for write in sent.writes.iter().filter(|w| w.op.invoke_ns >= deadline) {
            let op = write.op;
            if !write.reached {
                unreachable_timeouts += 1;
                continue;
            }
            let gave_up_after_the_window =
                op.outcome == Outcome::Info && op.complete_ns.is_some_and(|t| t >= window.end_ns);
            if gave_up_after_the_window {
                outlived += 1;
                continue;
            }
            judged += 1;
            if op.outcome == Outcome::Info {
                evidence.violation(format!(
                    "{label}: write sent to minority node {} {} after the partition began (bound {}) was neither refused nor acknowledged: {op}",
                    write.node,
                    fmt_duration(op.invoke_ns - window.start_ns),
                    fmt_duration(bound)
                ));
            } else {
                answered += 1;
            }
        }
        let mut unreachable = if unreachable_timeouts > 0 {
            format!(", {unreachable_timeouts} timeouts of clients cut off from the node not judged")
        } else {
            String::new()
        };
        if outlived > 0 {
            unreachable.push_str(&format!(
                ", {outlived} still unanswered when the window ended not judged"
            ));
        }
        if judged == 0 {
            evidence.unknown(format!(
                "{label}: no write reached the minority after the bound {}{unreachable}{}; nothing to judge",
                fmt_duration(bound),
                unattributed_note(sent.unattributed)
            ));
            continue;
        }
        evidence.note(format!(
            "{label}: {judged} writes reached the minority after the bound {}, {answered} answered{unreachable}{}",
            fmt_duration(bound),
            unattributed_note(sent.unattributed)
        ));
    }
    if short == partitions.len() {
        return CheckResult::not_applicable(
            NAME,
            format!(
                "no partition outlasted the bound {} ({short} shorter windows): fail-fast has no instance in this run",
                fmt_duration(bound)
            ),
        );
    }
    if short > 0 {
        evidence.note(format!(
            "{short} partition windows ended within the bound {}: skipped",
            fmt_duration(bound)
        ));
    }
    evidence.finish(NAME)
}
