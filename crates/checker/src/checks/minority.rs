//! What the two I6 checks share: which writes of a partition window were
//! sent to its minority side, and whether each could reach the node.
//!
//! The serving node is the completion's `node` (else the invocation's);
//! writes without a node cannot be attributed and are only counted.
use std::collections::BTreeSet;

use crate::config::{ClientReach, PartitionWindow};
use crate::operation::{Operation, Outcome};
use crate::verdict::fmt_ns;

/// One write, CAS or delete sent to a minority node during a window.
pub(crate) struct MinorityWrite<'a> {
    pub(crate) op: &'a Operation,
    pub(crate) node: &'a str,
    /// The node answered (`ok`/`fail`), or the client could reach it both
    /// when the write was invoked and when it gave up (a timeout then is
    /// the node's doing, not a cut or a crash that came in between).
    pub(crate) reached: bool,
}

/// The writes of one window that were sent to its minority.
pub(crate) struct WindowWrites<'a> {
    /// `partition [start .. end) minority {n1}` for evidence lines.
    pub(crate) label: String,
    pub(crate) writes: Vec<MinorityWrite<'a>>,
    /// Writes in the window whose serving node is unknown.
    pub(crate) unattributed: usize,
}

/// Whether client `op.process` could reach `node` when `op` was invoked
/// and, if it completed, when it did; without a reach list every client
/// reaches every node.
fn reaches(client_reach: Option<&[ClientReach]>, op: &Operation, node: &str) -> bool {
    let at = |time_ns: u64| {
        client_reach.is_none_or(|reach| {
            reach.iter().any(|r| {
                r.process == op.process
                    && r.start_ns <= time_ns
                    && time_ns < r.end_ns
                    && r.nodes.iter().any(|n| n == node)
            })
        })
    };
    at(op.invoke_ns) && op.complete_ns.is_none_or(at)
}

/// The mutations invoked in `[start, end)` of `window` and served by one of
/// its minority nodes.
pub(crate) fn writes_to_minority<'a>(
    operations: &'a [Operation],
    window: &PartitionWindow,
    client_reach: Option<&[ClientReach]>,
) -> WindowWrites<'a> {
    let minority: BTreeSet<&str> = window.minority.iter().map(String::as_str).collect();
    let mut writes = Vec::new();
    let mut unattributed = 0;
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
        let answered = matches!(op.outcome, Outcome::Ok | Outcome::Fail);
        writes.push(MinorityWrite {
            op,
            node,
            reached: answered || reaches(client_reach, op, node),
        });
    }
    WindowWrites {
        label: format!(
            "partition [{} .. {}) minority {{{}}}",
            fmt_ns(window.start_ns),
            fmt_ns(window.end_ns),
            window.minority.join(",")
        ),
        writes,
        unattributed,
    }
}

/// ", 3 writes without a node not attributed" or nothing.
pub(crate) fn unattributed_note(count: usize) -> String {
    if count > 0 {
        format!(", {count} writes without a node not attributed")
    } else {
        String::new()
    }
}
