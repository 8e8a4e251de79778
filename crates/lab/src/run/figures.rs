//! Failover figures per fault event, in milliseconds for results.json and
//! the report. The definitions live in `checker::failover` (shared with the
//! failover bench); this room only chooses the windows and the evidence.
//!
//! A fault's window runs from its start to its end, the next fault (a heal
//! included) or the moment the clients stopped, whichever is first; an
//! instantaneous fault (`restart`) has no end of its own, so its window runs
//! to the next fault. A killed leader stops claiming leadership when it is
//! killed.
use checker::failover::{self, Evidence, FaultWindow, RoleChange};
use checker::{NodeEvent, Op};
use serde::{Deserialize, Serialize};

use super::judge::FaultRecord;
use super::scenario::FaultKind;

/// Milliseconds after the fault started (`None`: did not happen inside the
/// fault's window).
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
    /// Where the evidence for these figures stops: the fault's end, the
    /// next fault or the end of the workload, whichever came first.
    #[serde(default)]
    pub window_end_ns: u64,
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
    /// First acknowledged write after the fault started (of the new
    /// leader's term or later, when there is one).
    pub first_ack_write_ms: Option<f64>,
    /// Longest stretch inside the window without an acknowledged write.
    pub unavailable_ms: Option<f64>,
    /// True when that stretch was still open at the window's end (writes
    /// had not resumed): `unavailable_ms` is then a lower bound.
    #[serde(default)]
    pub unavailable_open: bool,
    /// When the old leader stopped claiming leadership (`stepped_down`, or
    /// the kill of its process).
    pub old_leader_stepped_down_ms: Option<f64>,
    /// When the old leader's lease ended unrenewed (`lease_lost`).
    #[serde(default)]
    pub old_leader_lease_ended_ms: Option<f64>,
    /// Elections (`became_leader`) inside the window.
    pub leaders_elected: usize,
}

impl Failover {
    /// The client unavailability as shown: "1.20 s", "≥ 5.00 s (not
    /// resumed)" or "—".
    pub fn unavailability(&self) -> String {
        if self.unavailable_open && self.unavailable_ms.is_some() {
            format!("≥ {} (not resumed)", show_ms(self.unavailable_ms))
        } else {
            show_ms(self.unavailable_ms)
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Figures for every fault record; `workload_end_ns` is when the clients
/// stopped (no figure looks past it).
pub fn failover_figures(
    faults: &[FaultRecord],
    events: &[NodeEvent],
    history: &[Op],
    workload_end_ns: u64,
) -> Vec<Failover> {
    let mut evidence = Evidence::from_run(events, history);
    for fault in faults {
        if matches!(fault.kind, FaultKind::Kill | FaultKind::Restart) {
            evidence
                .role_changes
                .extend(fault.targets.iter().map(|node| RoleChange {
                    node: node.clone(),
                    at_ns: fault.start_ns,
                    term: None,
                    leads: false,
                }));
        }
    }
    evidence.sort();
    let spans: Vec<(u64, Option<u64>)> = faults
        .iter()
        .map(|fault| {
            let instantaneous =
                fault.kind != FaultKind::Heal && fault.end_ns == Some(fault.start_ns);
            (fault.start_ns, fault.end_ns.filter(|_| !instantaneous))
        })
        .collect();
    let windows = FaultWindow::for_faults(&spans, workload_end_ns);
    faults
        .iter()
        .zip(windows)
        .map(|(fault, window)| figures_for(fault, window, &evidence))
        .collect()
}

fn figures_for(fault: &FaultRecord, window: FaultWindow, evidence: &Evidence) -> Failover {
    let leader_before = fault
        .leader_before
        .as_ref()
        .map(|(leader, term)| (leader.as_str(), Some(*term)));
    let figures = failover::measure(window, leader_before, evidence);
    let (new_leader_ms, new_leader, new_term) = match figures.new_leader {
        Some((at, node, term)) => (Some(ms(at)), Some(node), term),
        None => (None, None, None),
    };
    Failover {
        step: fault.step,
        description: fault.description.clone(),
        start_ns: fault.start_ns,
        end_ns: fault.end_ns,
        window_end_ns: window.end_ns,
        leader_before: fault
            .leader_before
            .as_ref()
            .map(|(leader, _)| leader.clone()),
        term_before: fault.leader_before.as_ref().map(|(_, term)| *term),
        detection_ms: figures.detection.as_ref().map(|(at, _)| ms(*at)),
        detected_by: figures.detection.map(|(_, by)| by),
        new_leader,
        new_term,
        new_leader_ms,
        first_ack_write_ms: figures.first_ack_write.map(ms),
        unavailable_ms: figures.unavailable.map(|gap| ms(gap.ns)),
        unavailable_open: figures.unavailable.is_some_and(|gap| !gap.resumed),
        old_leader_stepped_down_ms: figures.old_leader_stepped_down.map(ms),
        old_leader_lease_ended_ms: figures.old_leader_lease_ended.map(ms),
        leaders_elected: figures.leaders_elected,
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
    use checker::fixture::{MS, event, write_ok};
    use checker::{EventKind, StepDownReason};

    fn record(step: usize, kind: FaultKind, start_ms: u64, end_ms: Option<u64>) -> FaultRecord {
        FaultRecord {
            step,
            kind,
            description: format!("{} #{step}", kind.name()),
            targets: vec!["us-east".into()],
            grudge: None,
            all_planes: true,
            start_ns: start_ms * MS,
            end_ns: end_ms.map(|end| end * MS),
            leader_before: Some(("us-east".into(), 2)),
            achieved: None,
        }
    }

    #[test]
    fn figures_follow_the_seed_story() {
        let fault = record(0, FaultKind::Partition, 1000, Some(5000));
        let events = vec![
            event("us-east", 900, 2, EventKind::BecameLeader),
            event("us-east", 1250, 2, EventKind::LeaseLost),
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
        let mut history = vec![write_ok(950, 2), write_ok(1200, 2)];
        history.extend((0..40).map(|n| write_ok(1800 + n * 100, 3)));
        let figures = failover_figures(&[fault], &events, &history, 10_000 * MS);
        let f = &figures[0];
        assert_eq!(f.window_end_ns, 5000 * MS);
        assert_eq!(f.detection_ms, Some(250.0));
        assert_eq!(f.detected_by.as_deref(), Some("us-east lease_lost"));
        assert_eq!(f.new_leader.as_deref(), Some("us-west"));
        assert_eq!(f.new_term, Some(3));
        assert_eq!(f.new_leader_ms, Some(600.0));
        assert_eq!(f.first_ack_write_ms, Some(800.0));
        assert_eq!(f.unavailable_ms, Some(600.0));
        assert!(!f.unavailable_open);
        assert_eq!(f.old_leader_lease_ended_ms, Some(250.0));
        assert_eq!(f.old_leader_stepped_down_ms, Some(700.0));
        assert_eq!(f.leaders_elected, 1);
    }

    #[test]
    fn writes_that_never_resume_are_an_open_lower_bound() {
        let fault = record(0, FaultKind::Partition, 1000, None);
        let history = vec![write_ok(900, 2)];
        let figures = failover_figures(&[fault], &[], &history, 4000 * MS);
        assert_eq!(figures[0].unavailable_ms, Some(3000.0));
        assert!(figures[0].unavailable_open);
        assert_eq!(figures[0].unavailability(), "≥ 3.00 s (not resumed)");
    }

    #[test]
    fn a_later_fault_keeps_its_own_election_and_a_kill_ends_the_claim() {
        // A restart of the leader at 1000 ms (instantaneous: its window runs
        // to the next fault), then a partition at 3000 ms whose election at
        // 3500 ms must not be credited to the restart.
        let faults = [
            record(0, FaultKind::Restart, 1000, Some(1000)),
            record(1, FaultKind::Partition, 3000, Some(6000)),
        ];
        let events = vec![event("us-west", 3500, 3, EventKind::BecameLeader)];
        let figures = failover_figures(&faults, &events, &[], 8000 * MS);
        assert_eq!(figures[0].window_end_ns, 3000 * MS);
        assert_eq!(figures[0].new_leader, None);
        assert_eq!(figures[0].leaders_elected, 0);
        assert_eq!(figures[0].old_leader_stepped_down_ms, Some(0.0));
        assert_eq!(figures[1].new_leader_ms, Some(500.0));
    }

    #[test]
    fn nothing_happening_gives_empty_figures() {
        let mut fault = record(0, FaultKind::Loss, 1000, Some(2000));
        fault.leader_before = Some(("n1".into(), 1));
        let figures = failover_figures(&[fault], &[], &[], 3000 * MS);
        assert_eq!(figures[0].new_leader, None);
        // No acknowledged write anywhere: no unavailability figure.
        assert_eq!(figures[0].unavailable_ms, None);
        assert_eq!(show_ms(figures[0].detection_ms), "—");
        assert_eq!(show_ms(Some(1500.0)), "1.50 s");
    }
}
