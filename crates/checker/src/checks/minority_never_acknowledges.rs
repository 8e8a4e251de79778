//! I6 (a), safety: a minority never acknowledges a write (split brain).
//!
//! For every partition window `[start, end)` with minority side `M`, no node
//! in `M` acknowledges (`ok`) a write, CAS or delete that was invoked at or
//! after `start` and acknowledged before `end`: it cannot have been
//! committed by a quorum. Whatever the timing. A window in which no write
//! reached the minority has nothing to judge and is `unknown`; a run without
//! partition windows is not applicable. Whether the minority answered fast
//! is the fail-fast check's job (`minority_fails_fast`); stale reads from
//! the minority (I6 c) are the linearizability check's.
//!
//! Invariant I6 (see crates/checker/README.md).
use crate::config::{ClientReach, PartitionWindow};
use crate::history::History;
use crate::operation::{Operation, Outcome, check_paired};
use crate::verdict::{CheckResult, Evidence, fmt_duration};

use super::minority::{unattributed_note, writes_to_minority};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "minority_never_acknowledges";

/// Pairs the history's records into operations, then runs
/// [`check_operations`]; a malformed history is `unknown`.
pub fn check(
    history: &History,
    partitions: &[PartitionWindow],
    client_reach: Option<&[ClientReach]>,
) -> CheckResult {
    check_paired(NAME, history, |operations| {
        check_operations(operations, partitions, client_reach)
    })
}

/// Flags every write a window's minority acknowledged inside the window.
/// `client_reach` only decides whether a timed-out write reached the node
/// (evidence that the window had something to judge).
pub fn check_operations(
    operations: &[Operation],
    partitions: &[PartitionWindow],
    client_reach: Option<&[ClientReach]>,
) -> CheckResult {
    if partitions.is_empty() {
        return CheckResult::not_applicable(NAME, "no partition left a minority in this run");
    }
    let mut evidence = Evidence::default();
    for window in partitions {
        let sent = writes_to_minority(operations, window, client_reach);
        let label = &sent.label;
        let mut rejected = 0usize;
        for write in &sent.writes {
            let op = write.op;
            let acked_inside =
                op.outcome == Outcome::Ok && op.complete_ns.is_some_and(|t| t < window.end_ns);
            if acked_inside {
                evidence.violation(format!(
                    "{label}: minority node {} acknowledged a write invoked {} after the partition began: {op}",
                    write.node,
                    fmt_duration(op.invoke_ns - window.start_ns)
                ));
            } else if op.outcome == Outcome::Fail {
                rejected += 1;
            }
        }
        let reached = sent.writes.iter().filter(|w| w.reached).count();
        if reached == 0 {
            evidence.unknown(format!(
                "{label}: no write reached the minority ({} sent to it{}); nothing to judge",
                sent.writes.len(),
                unattributed_note(sent.unattributed)
            ));
            continue;
        }
        evidence.note(format!(
            "{label}: {} writes sent to the minority ({reached} reached it), {rejected} rejected explicitly{}",
            sent.writes.len(),
            unattributed_note(sent.unattributed)
        ));
    }
    evidence.finish(NAME)
}
