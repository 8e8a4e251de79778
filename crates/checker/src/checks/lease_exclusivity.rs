//! I3 Lease exclusivity: no two nodes hold a valid lease at the same instant
//! of the reference clock.
//!
//! A lease window of `(node, term)` opens at the `mono_ns` of a
//! `lease_extended` event (the node cannot serve under the lease before it
//! knows it has one) and runs to the largest `until_mono_ns` reported for it
//! (the driver maps the node's lease end onto the reference clock, including
//! the node's drift). The window is cut short only by what the node itself
//! reported: `lease_lost` or `stepped_down` in that term, a later event of
//! the same node with a higher term, or a restart (`started`). Windows of
//! different `(node, term)` pairs must be disjoint (half-open intervals).
//!
//! Invariant I3 (see crates/checker/README.md); Raft thesis §6.4.1
//! (`L <= ET_min / rho`). Clock drift beyond the bound is the negative
//! control this check must flag.
use std::collections::BTreeMap;

use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence, fmt_duration, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "lease_exclusivity";

/// One continuous lease of a node in a term, on the reference clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseWindow {
    /// The lease holder.
    pub node: String,
    /// The term it led.
    pub term: u64,
    /// When the node first knew it held the lease (reference clock, ns).
    pub start_ns: u64,
    /// Exclusive end.
    pub end_ns: u64,
}

/// Reconstructs every node's lease windows from its events.
pub fn lease_windows(events: &[NodeEvent]) -> Vec<LeaseWindow> {
    let mut by_node: BTreeMap<&str, Vec<&NodeEvent>> = BTreeMap::new();
    for event in events {
        by_node.entry(event.node.as_str()).or_default().push(event);
    }
    let mut windows = Vec::new();
    for (node, mut node_events) in by_node {
        node_events.sort_by_key(|e| e.mono_ns);
        let mut open: Option<LeaseWindow> = None;
        for event in node_events {
            let now = event.mono_ns;
            // The window may already have run out on its own.
            if let Some(window) = open.take_if(|w| w.end_ns <= now) {
                windows.push(window);
            }
            let ends_lease = match &event.kind {
                EventKind::LeaseLost | EventKind::SteppedDown { .. } => {
                    open.as_ref().is_some_and(|w| event.term >= w.term)
                }
                EventKind::Started => true,
                _ => open.as_ref().is_some_and(|w| event.term > w.term),
            };
            if ends_lease && let Some(mut window) = open.take() {
                window.end_ns = window.end_ns.min(now);
                windows.push(window);
            }
            if let EventKind::LeaseExtended { until_mono_ns } = event.kind {
                match open.as_mut() {
                    Some(window) if window.term == event.term => {
                        window.end_ns = window.end_ns.max(until_mono_ns);
                    }
                    _ => {
                        if let Some(mut window) = open.take() {
                            window.end_ns = window.end_ns.min(now);
                            windows.push(window);
                        }
                        if until_mono_ns > now {
                            open = Some(LeaseWindow {
                                node: node.to_string(),
                                term: event.term,
                                start_ns: now,
                                end_ns: until_mono_ns,
                            });
                        }
                    }
                }
            }
        }
        windows.extend(open);
    }
    windows.retain(|w| w.end_ns > w.start_ns);
    windows.sort_by(|a, b| (a.start_ns, &a.node, a.term).cmp(&(b.start_ns, &b.node, b.term)));
    windows
}

/// The result for a system that never takes leases (every incorrect mode):
/// the property cannot apply.
pub fn not_applicable() -> CheckResult {
    CheckResult::not_applicable(NAME, "the system under test takes no leases")
}

/// Flags every pair of overlapping lease windows of different
/// `(node, term)`; `unknown` when no node held a lease. For a system that
/// takes no leases use [`not_applicable`] instead.
pub fn check(events: &[NodeEvent]) -> CheckResult {
    let windows = lease_windows(events);
    if windows.is_empty() {
        return CheckResult::no_evidence(NAME, "no node held a lease: nothing to judge");
    }
    let mut evidence = Evidence::default();
    for (i, a) in windows.iter().enumerate() {
        for b in &windows[i + 1..] {
            if b.start_ns >= a.end_ns {
                break; // sorted by start: no later window can overlap `a`
            }
            if a.node == b.node && a.term == b.term {
                continue;
            }
            let overlap = a.end_ns.min(b.end_ns) - b.start_ns;
            evidence.violation(format!(
                "{} term {} lease [{} .. {}) overlaps {} term {} lease [{} .. {}) by {}",
                a.node,
                a.term,
                fmt_ns(a.start_ns),
                fmt_ns(a.end_ns),
                b.node,
                b.term,
                fmt_ns(b.start_ns),
                fmt_ns(b.end_ns),
                fmt_duration(overlap),
            ));
        }
    }
    evidence.note(format!("{} lease windows", windows.len()));
    evidence.finish(NAME)
}
