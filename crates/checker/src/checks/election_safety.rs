//! I1 Election safety: at most one leader per term.
//!
//! Judged from `became_leader` events: for every term, the set of distinct
//! nodes that logged it has at most one member. A node that becomes leader
//! of the same term twice (e.g. logged before and after a restart) is still
//! one leader.
//!
//! Invariant I1 (see crates/checker/README.md); Raft "Election Safety: at
//! most one leader can be elected in a given term" (thesis, fig. 3.2).
use std::collections::BTreeMap;

use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "election_safety";

/// Flags every term with `became_leader` from more than one node.
pub fn check(events: &[NodeEvent]) -> CheckResult {
    // term -> node -> first time it logged became_leader for that term
    let mut leaders: BTreeMap<u64, BTreeMap<&str, u64>> = BTreeMap::new();
    for event in events {
        if event.kind == EventKind::BecameLeader {
            let first = leaders
                .entry(event.term)
                .or_default()
                .entry(event.node.as_str())
                .or_insert(event.mono_ns);
            *first = (*first).min(event.mono_ns);
        }
    }
    if leaders.is_empty() {
        return CheckResult::no_evidence(NAME, "no node became leader: nothing to judge");
    }
    let mut evidence = Evidence::default();
    for (term, nodes) in &leaders {
        if nodes.len() > 1 {
            let list: Vec<String> = nodes
                .iter()
                .map(|(node, at)| format!("{node} (at {})", fmt_ns(*at)))
                .collect();
            evidence.violation(format!(
                "term {term} has {} leaders: {}",
                nodes.len(),
                list.join(", ")
            ));
        }
    }
    evidence.note(format!(
        "{} terms had a leader{}",
        leaders.len(),
        leaders
            .keys()
            .next_back()
            .map(|t| format!(", highest term {t}"))
            .unwrap_or_default()
    ));
    evidence.finish(NAME)
}
