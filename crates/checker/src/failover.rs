//! Failover figures: the one definition of how long after a fault the
//! cluster noticed, elected a new leader, acknowledged writes again, and when
//! the old leader stopped claiming leadership. Pure; the lab feeds it node
//! events and the client history, the failover bench its client observations.
//!
//! Every figure of a fault uses only evidence inside the fault's window,
//! from its start to its heal or the next fault (whichever is first), so a
//! later fault's election is never credited to an earlier one. Figures are
//! nanoseconds after the window's start.

use serde::{Deserialize, Serialize};

use crate::{EventKind, NodeEvent, Op, OpFn, OpKind};

/// The stretch of time one fault's figures may draw on: `[start_ns, end_ns)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// When the fault was in force (same clock as the evidence).
    pub start_ns: u64,
    /// Its heal, the next fault's start, or the end of observation.
    pub end_ns: u64,
}

impl FaultWindow {
    /// Windows for faults given as `(start, end)` (end `None`: never healed),
    /// in the same order: each ends at its own end, the start of the next
    /// fault to start after it, or `horizon_ns`, whichever comes first.
    pub fn for_faults(faults: &[(u64, Option<u64>)], horizon_ns: u64) -> Vec<FaultWindow> {
        faults
            .iter()
            .map(|&(start_ns, end)| {
                let next = faults
                    .iter()
                    .map(|&(other, _)| other)
                    .filter(|&other| other > start_ns)
                    .min();
                let end_ns = [end, next, Some(horizon_ns)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(horizon_ns)
                    .max(start_ns);
                FaultWindow { start_ns, end_ns }
            })
            .collect()
    }

    fn contains(&self, at_ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&at_ns)
    }

    fn offset(&self, at_ns: u64) -> u64 {
        at_ns.saturating_sub(self.start_ns)
    }
}

/// A node started or stopped claiming leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// The node.
    pub node: String,
    /// When (same clock as the window).
    pub at_ns: u64,
    /// The term it claims (`None`: the observer could not tell).
    pub term: Option<u64>,
    /// True: it now claims leadership; false: it stopped claiming.
    pub leads: bool,
}

/// A first sign that a node noticed something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sign {
    /// The node that noticed.
    pub node: String,
    /// When.
    pub at_ns: u64,
    /// How (the event name, e.g. `peer_down`).
    pub how: String,
}

/// Everything the figures are computed from, on one clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Leadership claims starting and ending.
    pub role_changes: Vec<RoleChange>,
    /// `(node, when)`: a leader's lease ended unrenewed.
    pub lease_ends: Vec<(String, u64)>,
    /// Nodes noticing the fault.
    pub signs: Vec<Sign>,
    /// `(completed at, fencing term if known)` of every acknowledged write,
    /// in completion order.
    pub acked_writes: Vec<(u64, Option<u64>)>,
}

impl Evidence {
    /// Evidence from node events and a client history: `became_leader` and
    /// `stepped_down` (and a node's `started`: a process starts as a
    /// follower) are role changes, `lease_lost` ends a lease, and every `ok`
    /// write, CAS, delete or append is an acknowledged write.
    pub fn from_run(events: &[NodeEvent], history: &[Op]) -> Evidence {
        let mut evidence = Evidence::default();
        for event in events {
            let leads = match event.kind {
                EventKind::BecameLeader => Some(true),
                EventKind::SteppedDown { .. } | EventKind::Started => Some(false),
                _ => None,
            };
            if let Some(leads) = leads {
                evidence.role_changes.push(RoleChange {
                    node: event.node.clone(),
                    at_ns: event.mono_ns,
                    term: Some(event.term),
                    leads,
                });
            }
            if matches!(event.kind, EventKind::LeaseLost) {
                evidence
                    .lease_ends
                    .push((event.node.clone(), event.mono_ns));
            }
            if matches!(
                event.kind,
                EventKind::PeerDown { .. }
                    | EventKind::QuorumLost
                    | EventKind::LeaseLost
                    | EventKind::SteppedDown { .. }
                    | EventKind::ElectionStarted
            ) {
                evidence.signs.push(Sign {
                    node: event.node.clone(),
                    at_ns: event.mono_ns,
                    how: event.kind.name().to_string(),
                });
            }
        }
        evidence.acked_writes = history
            .iter()
            .filter(|op| op.kind == OpKind::Ok && op.f != OpFn::Read)
            .map(|op| (op.time_ns, op.token.map(|token| token.term)))
            .collect();
        evidence.sort();
        evidence
    }

    /// Puts every list in time order (the figures take the first match).
    pub fn sort(&mut self) {
        self.role_changes.sort_by_key(|change| change.at_ns);
        self.lease_ends.sort_by_key(|(_, at)| *at);
        self.signs.sort_by_key(|sign| sign.at_ns);
        self.acked_writes.sort_by_key(|(at, _)| *at);
    }
}

/// The longest stretch inside the window without an acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailability {
    /// Its length (a lower bound when `resumed` is false).
    pub ns: u64,
    /// False: it was still open when the window ended (writes had not
    /// resumed), so the true figure is at least `ns`.
    pub resumed: bool,
}

/// One fault's figures, nanoseconds after the window's start (`None`: not
/// seen inside the window).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailoverFigures {
    /// First sign any node noticed, and who and how.
    pub detection: Option<(u64, String)>,
    /// First leader elected for a term above the old leader's: when, who,
    /// which term (if known).
    pub new_leader: Option<(u64, String, Option<u64>)>,
    /// First acknowledged write (of the new leader's term or later when
    /// both are known).
    pub first_ack_write: Option<u64>,
    /// Longest stretch without acknowledged writes, open tail included.
    pub unavailable: Option<Unavailability>,
    /// When the old leader stopped claiming leadership (a role change).
    pub old_leader_stepped_down: Option<u64>,
    /// When the old leader's lease ended unrenewed.
    pub old_leader_lease_ended: Option<u64>,
    /// Leaders elected inside the window.
    pub leaders_elected: usize,
}

/// The figures of the fault whose window is `window`, while `leader_before`
/// (node, term if known) led when it started. `leader_before` `None`: no
/// leader, so no step-down or lease figures.
pub fn measure(
    window: FaultWindow,
    leader_before: Option<(&str, Option<u64>)>,
    evidence: &Evidence,
) -> FailoverFigures {
    let inside = |at: u64| window.contains(at);
    let term_before = leader_before.and_then(|(_, term)| term);
    let old_leader = leader_before.map(|(node, _)| node);
    let detection = evidence
        .signs
        .iter()
        .find(|sign| inside(sign.at_ns))
        .map(|sign| {
            (
                window.offset(sign.at_ns),
                format!("{} {}", sign.node, sign.how),
            )
        });
    let elections = || {
        evidence
            .role_changes
            .iter()
            .filter(move |change| change.leads && inside(change.at_ns))
    };
    let new_leader = elections()
        .find(|change| match (term_before, change.term) {
            (Some(before), Some(term)) => term > before,
            // Without terms a new leader is any other node taking over.
            _ => Some(change.node.as_str()) != old_leader,
        })
        .map(|change| {
            (
                window.offset(change.at_ns),
                change.node.clone(),
                change.term,
            )
        });
    let min_term = new_leader.as_ref().and_then(|(_, _, term)| *term);
    let acked: Vec<&(u64, Option<u64>)> = evidence
        .acked_writes
        .iter()
        .filter(|(at, _)| inside(*at))
        .collect();
    let first_ack_write = acked
        .iter()
        .find(|(_, term)| match (min_term, term) {
            (Some(min), Some(term)) => *term >= min,
            _ => true,
        })
        .map(|(at, _)| window.offset(*at));
    let old_leader_stepped_down = old_leader.and_then(|leader| {
        evidence
            .role_changes
            .iter()
            .find(|change| change.node == leader && !change.leads && inside(change.at_ns))
            .map(|change| window.offset(change.at_ns))
    });
    let old_leader_lease_ended = old_leader.and_then(|leader| {
        evidence
            .lease_ends
            .iter()
            .find(|(node, at)| node == leader && inside(*at))
            .map(|(_, at)| window.offset(*at))
    });
    FailoverFigures {
        detection,
        new_leader,
        first_ack_write,
        // No acknowledged write in the whole run: nothing to measure by.
        unavailable: if evidence.acked_writes.is_empty() {
            None
        } else {
            unavailability(window, &acked)
        },
        old_leader_stepped_down,
        old_leader_lease_ended,
        leaders_elected: elections().count(),
    }
}

/// Longest gap between the window's start, the acknowledged writes inside
/// it, and its end; the last gap is open (writes had not resumed when the
/// window ended). `None` for an empty window.
fn unavailability(window: FaultWindow, acked: &[&(u64, Option<u64>)]) -> Option<Unavailability> {
    if window.end_ns <= window.start_ns {
        return None;
    }
    let mut longest: Option<Unavailability> = None;
    let mut previous = window.start_ns;
    let closings = acked
        .iter()
        .map(|(at, _)| (*at, true))
        .chain([(window.end_ns, false)]);
    for (at, resumed) in closings {
        let gap = Unavailability {
            ns: at - previous,
            resumed,
        };
        if longest.is_none_or(|best| gap.ns > best.ns) {
            longest = Some(gap);
        }
        previous = at;
    }
    longest
}

#[cfg(test)]
mod tests;
