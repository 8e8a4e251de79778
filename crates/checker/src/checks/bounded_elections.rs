//! I11 Bounded disruption: elections started per minute stay within a bound.
//!
//! An election is a distinct term that some node started
//! (`election_started`, logged with the new term); several candidates of the
//! same term count once. For each configured window, the largest number of
//! distinct terms started in any 60 s span inside the window (the whole
//! window if shorter) must not exceed the window's bound.
//!
//! Invariant I11 (see crates/checker/README.md); after etcd-io/raft's
//! prevote/checkquorum tests.
use std::collections::BTreeMap;

use crate::config::ElectionWindow;
use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "bounded_elections";

const MINUTE_NS: u64 = 60_000_000_000;

/// Judges `election_started` events against each window's bound; not
/// applicable without windows.
pub fn check(events: &[NodeEvent], windows: &[ElectionWindow]) -> CheckResult {
    let mut evidence = Evidence::default();
    if windows.is_empty() {
        return CheckResult::not_applicable(NAME, "no election windows configured");
    }
    // term -> (first start time, first node)
    let mut started: BTreeMap<u64, (u64, &str)> = BTreeMap::new();
    for event in events {
        if event.kind == EventKind::ElectionStarted {
            let slot = started
                .entry(event.term)
                .or_insert((event.mono_ns, &event.node));
            if event.mono_ns < slot.0 {
                *slot = (event.mono_ns, &event.node);
            }
        }
    }
    let mut elections: Vec<(u64, u64, &str)> = started
        .iter()
        .map(|(term, (at, node))| (*at, *term, *node))
        .collect();
    elections.sort();

    for window in windows {
        let inside: Vec<&(u64, u64, &str)> = elections
            .iter()
            .filter(|(at, _, _)| *at >= window.start_ns && *at < window.end_ns)
            .collect();
        // Sliding 60 s span: for each election as the span's first, count
        // the elections within the next minute.
        let mut worst = (0usize, 0usize);
        let mut end = 0usize;
        for begin in 0..inside.len() {
            end = end.max(begin);
            while end < inside.len() && inside[end].0 < inside[begin].0.saturating_add(MINUTE_NS) {
                end += 1;
            }
            if end - begin > worst.1 - worst.0 {
                worst = (begin, end);
            }
        }
        let count = (worst.1 - worst.0) as u64;
        let label = format!(
            "window [{} .. {}) bound {}/min",
            fmt_ns(window.start_ns),
            fmt_ns(window.end_ns),
            window.max_per_minute
        );
        if count > window.max_per_minute {
            let list: Vec<String> = inside[worst.0..worst.1]
                .iter()
                .map(|(at, term, node)| format!("term {term} by {node} at {}", fmt_ns(*at)))
                .collect();
            evidence.violation(format!(
                "{label}: {count} elections within one minute: {}",
                list.join(", ")
            ));
        } else {
            evidence.note(format!(
                "{label}: at most {count} elections per minute ({} in total)",
                inside.len()
            ));
        }
    }
    evidence.finish(NAME)
}
