//! Failover figures per fault event, from the node event logs and the
//! client history on the shared monotonic clock. Pure.
//!
//! For a fault that fired at `t0` while node L led term T:
//! - **detection**: first sign any node noticed (`peer_down`, `quorum_lost`,
//!   `lease_lost`, `stepped_down`, `election_started`);
//! - **new leader**: first `became_leader` for a term above T;
//! - **first acknowledged write**: first `ok` write or CAS completed after
//!   t0 (with a new leader: carrying its term or later);
//! - **client unavailability**: longest gap between consecutive
//!   acknowledged writes that overlaps the fault window, as clients saw it;
//! - **old leader stepped down**: L's first `stepped_down` (or
//!   `lease_lost`) after t0.
use checker::{EventKind, NodeEvent, Op, OpFn, OpKind};
use serde::{Deserialize, Serialize};

use super::judge::FaultRecord;

/// Milliseconds after the fault started (`None`: did not happen in the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// Index of the fault's step in the scenario.
    pub step: usize,
    /// What the fault was.
    pub description: String,
    /// When it started (shared monotonic clock).
    pub start_ns: u64,
    /// When it ended, if it did before the run ended.
    pub end_ns: Option<u64>,
    /// The leader when it started.
    pub leader_before: Option<String>,
    /// That leader's term.
    pub term_before: Option<u64>,
    /// First sign any node noticed.
    pub detection_ms: Option<f64>,
    /// Which node noticed first, and how.
    pub detected_by: Option<String>,
    /// The first leader elected for a later term.
    pub new_leader: Option<String>,
    /// Its term.
    pub new_term: Option<u64>,
    /// When it was elected.
    pub new_leader_ms: Option<f64>,
    /// First acknowledged write after the fault started.
    pub first_ack_write_ms: Option<f64>,
    /// Longest gap between acknowledged writes overlapping the fault.
    pub unavailable_ms: Option<f64>,
    /// When the old leader stepped down or lost its lease.
    pub old_leader_stepped_down_ms: Option<f64>,
    /// Elections (`became_leader`) between the fault start and its end + 1 s.
    pub leaders_elected: usize,
}

fn ms(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

fn is_write(op: &Op) -> bool {
    matches!(op.f, OpFn::Write | OpFn::Cas | OpFn::Delete)
}

/// Figures for every fault record.
pub fn failover_figures(
    faults: &[FaultRecord],
    events: &[NodeEvent],
    history: &[Op],
    end_ns: u64,
) -> Vec<Failover> {
    let mut acked_writes: Vec<(u64, Option<u64>)> = history
        .iter()
        .filter(|op| op.kind == OpKind::Ok && is_write(op))
        .map(|op| (op.time_ns, op.token.map(|token| token.term)))
        .collect();
    acked_writes.sort_by_key(|(time, _)| *time);
    faults
        .iter()
        .map(|fault| figures_for(fault, events, &acked_writes, end_ns))
        .collect()
}

fn figures_for(
    fault: &FaultRecord,
    events: &[NodeEvent],
    acked: &[(u64, Option<u64>)],
    end_ns: u64,
) -> Failover {
    let t0 = fault.start_ns;
    let window_end = fault.end_ns.unwrap_or(end_ns);
    let (leader_before, term_before) = match &fault.leader_before {
        Some((leader, term)) => (Some(leader.clone()), Some(*term)),
        None => (None, None),
    };
    let after: Vec<&NodeEvent> = events.iter().filter(|event| event.mono_ns >= t0).collect();
    let detection = after.iter().find(|event| {
        matches!(
            event.kind,
            EventKind::PeerDown { .. }
                | EventKind::QuorumLost
                | EventKind::LeaseLost
                | EventKind::SteppedDown { .. }
                | EventKind::ElectionStarted
        )
    });
    let new_leader = after.iter().find(|event| {
        matches!(event.kind, EventKind::BecameLeader)
            && term_before.is_none_or(|term| event.term > term)
    });
    let stepped_down = leader_before.as_ref().and_then(|leader| {
        after.iter().find(|event| {
            event.node == *leader
                && matches!(
                    event.kind,
                    EventKind::SteppedDown { .. } | EventKind::LeaseLost
                )
        })
    });
    let min_term = new_leader.map(|event| event.term);
    let first_ack = acked.iter().find(|(time, term)| {
        *time >= t0 && min_term.is_none_or(|min| term.is_none_or(|term| term >= min))
    });
    // Longest gap between acknowledged writes that overlaps the fault.
    let before = acked
        .iter()
        .rev()
        .find(|(time, _)| *time < t0)
        .map(|(time, _)| *time);
    let mut previous = before.unwrap_or(t0);
    let mut longest: Option<u64> = None;
    for (time, _) in acked.iter().filter(|(time, _)| *time >= t0) {
        if previous > window_end {
            break;
        }
        longest = Some(longest.unwrap_or(0).max(time - previous));
        previous = *time;
    }
    let leaders_elected = after
        .iter()
        .filter(|event| {
            matches!(event.kind, EventKind::BecameLeader)
                && event.mono_ns <= window_end + 1_000_000_000
        })
        .count();
    Failover {
        step: fault.step,
        description: fault.description.clone(),
        start_ns: t0,
        end_ns: fault.end_ns,
        leader_before,
        term_before,
        detection_ms: detection.map(|event| ms(t0, event.mono_ns)),
        detected_by: detection.map(|event| format!("{} {}", event.node, event.kind.name())),
        new_leader: new_leader.map(|event| event.node.clone()),
        new_term: new_leader.map(|event| event.term),
        new_leader_ms: new_leader.map(|event| ms(t0, event.mono_ns)),
        first_ack_write_ms: first_ack.map(|(time, _)| ms(t0, *time)),
        unavailable_ms: longest.map(|gap| gap as f64 / 1e6),
        old_leader_stepped_down_ms: stepped_down.map(|event| ms(t0, event.mono_ns)),
        leaders_elected,
    }
}

/// "12.3 ms" / "—".
pub fn show_ms(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms >= 1000.0 => format!("{:.2} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::scenario::FaultKind;
    use checker::StepDownReason;

    const MS: u64 = 1_000_000;

    fn event(node: &str, at_ms: u64, term: u64, kind: EventKind) -> NodeEvent {
        NodeEvent::new(node, at_ms * MS, at_ms * MS, term, kind)
    }

    fn write_ok(at_ms: u64, term: u64) -> Op {
        Op::new(1, OpKind::Ok, OpFn::Write, "k", at_ms * MS)
            .with_value("v")
            .with_token(term, at_ms)
    }

    #[test]
    fn figures_follow_the_seed_story() {
        let fault = FaultRecord {
            step: 0,
            kind: FaultKind::Partition,
            description: "isolate us-east".into(),
            targets: vec!["us-east".into()],
            grudge: None,
            all_planes: true,
            start_ns: 1000 * MS,
            end_ns: Some(5000 * MS),
            leader_before: Some(("us-east".into(), 2)),
        };
        let events = vec![
            event("us-east", 900, 2, EventKind::BecameLeader),
            event(
                "us-west",
                1300,
                2,
                EventKind::PeerDown {
                    peer: "us-east".into(),
                    direction: checker::LinkDirection::Inbound,
                },
            ),
            event("us-west", 1500, 3, EventKind::ElectionStarted),
            event("us-west", 1600, 3, EventKind::BecameLeader),
            event(
                "us-east",
                1700,
                2,
                EventKind::SteppedDown {
                    reason: StepDownReason::QuorumLost,
                },
            ),
        ];
        let history = vec![
            write_ok(950, 2),
            write_ok(1200, 2),
            write_ok(1800, 3),
            write_ok(1900, 3),
        ];
        let figures = failover_figures(&[fault], &events, &history, 10_000 * MS);
        let f = &figures[0];
        assert_eq!(f.detection_ms, Some(300.0));
        assert_eq!(f.detected_by.as_deref(), Some("us-west peer_down"));
        assert_eq!(f.new_leader.as_deref(), Some("us-west"));
        assert_eq!(f.new_term, Some(3));
        assert_eq!(f.new_leader_ms, Some(600.0));
        // The write at 1200 ms still carried term 2 (acknowledged by the old
        // leader before it noticed); the first write of the new term is at 1800.
        assert_eq!(f.first_ack_write_ms, Some(800.0));
        assert_eq!(f.unavailable_ms, Some(600.0));
        assert_eq!(f.old_leader_stepped_down_ms, Some(700.0));
        assert_eq!(f.leaders_elected, 1);
    }

    #[test]
    fn nothing_happening_gives_empty_figures() {
        let fault = FaultRecord {
            step: 0,
            kind: FaultKind::Loss,
            description: "loss".into(),
            targets: vec![],
            grudge: None,
            all_planes: true,
            start_ns: 1000 * MS,
            end_ns: Some(2000 * MS),
            leader_before: Some(("n1".into(), 1)),
        };
        let figures = failover_figures(&[fault], &[], &[], 3000 * MS);
        assert_eq!(figures[0].new_leader, None);
        assert_eq!(figures[0].unavailable_ms, None);
        assert_eq!(show_ms(figures[0].detection_ms), "—");
        assert_eq!(show_ms(Some(1500.0)), "1.50 s");
    }
}
