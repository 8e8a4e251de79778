//! Negative controls and good cases for the checks judged from node events:
//! election safety, lease exclusivity, log agreement, convergence and
//! bounded elections.
mod support;

use checker::checks::{
    bounded_elections, convergence, election_safety, lease_exclusivity, log_agreement,
};
use checker::{ElectionWindow, EventKind, History, NodeEvent, StepDownReason, Token, Verdict};
use support::{MS, SEC, assert_check, ev};

/// `node` became leader of `term` at `mono_ns`.
fn leader(node: &str, mono_ns: u64, term: u64) -> NodeEvent {
    ev(node, mono_ns, term, EventKind::BecameLeader)
}

fn lease(until_mono_ns: u64) -> EventKind {
    EventKind::LeaseExtended { until_mono_ns }
}

fn applied(index: u64, state_hash: u64) -> EventKind {
    EventKind::Applied { index, state_hash }
}

fn committed(term: u64, index: u64) -> EventKind {
    EventKind::WriteCommitted {
        token: Token { term, index },
    }
}

fn final_state(commit_index: u64, state_hash: u64) -> EventKind {
    EventKind::FinalState {
        commit_index,
        applied_index: commit_index,
        state_hash,
    }
}

// ---- I1 election safety ----

#[test]
fn two_leaders_in_one_term_are_flagged() {
    let events = vec![
        leader("n1", 100 * MS, 3),
        leader("n2", 150 * MS, 3),
        leader("n3", 900 * MS, 4),
    ];
    let result = election_safety::check(&events);
    assert_check(&result, Verdict::Invalid, &["term 3 has 2 leaders"]);
    assert!(result.details[0].contains("n1") && result.details[0].contains("n2"));
}

#[test]
fn one_leader_per_term_is_valid_even_if_logged_twice() {
    let events = vec![
        leader("n1", 100 * MS, 3),
        leader("n1", 120 * MS, 3),
        leader("n2", 900 * MS, 4),
        ev("n3", 950 * MS, 4, EventKind::ElectionStarted),
    ];
    let result = election_safety::check(&events);
    assert_check(&result, Verdict::Valid, &[]);
}

// ---- I3 lease exclusivity ----

#[test]
fn overlapping_leases_from_clock_drift_are_flagged() {
    // n1 runs slow: it believes its lease lasts until 1.4 s (true clock),
    // while n2 was elected and got a lease at 1.2 s.
    let events = vec![
        leader("n1", SEC, 5),
        ev("n1", SEC, 5, lease(SEC + 400 * MS)),
        leader("n2", SEC + 200 * MS, 6),
        ev("n2", SEC + 200 * MS, 6, lease(SEC + 600 * MS)),
    ];
    let result = lease_exclusivity::check(&events);
    assert_check(&result, Verdict::Invalid, &[]);
    let line = &result.details[0];
    assert!(
        line.contains("n1 term 5") && line.contains("n2 term 6"),
        "{line}"
    );
    assert!(line.contains("200.000ms"), "{line}");
}

#[test]
fn handover_after_expiry_is_valid() {
    let events = vec![
        ev("n1", SEC, 5, lease(SEC + 300 * MS)),
        ev("n1", SEC + 100 * MS, 5, lease(SEC + 400 * MS)),
        ev("n2", SEC + 400 * MS, 6, lease(SEC + 800 * MS)),
        ev("n2", SEC + 700 * MS, 6, lease(SEC + 1_000 * MS)),
    ];
    let result = lease_exclusivity::check(&events);
    assert_check(&result, Verdict::Valid, &["2 lease windows"]);
}

#[test]
fn a_lease_reported_lost_ends_early() {
    // n1 reports losing its lease (stepping down) before n2 acquires one.
    let events = vec![
        ev("n1", SEC, 5, lease(SEC + 500 * MS)),
        ev(
            "n1",
            SEC + 100 * MS,
            5,
            EventKind::SteppedDown {
                reason: StepDownReason::HigherTerm,
            },
        ),
        ev("n2", SEC + 200 * MS, 6, lease(SEC + 600 * MS)),
    ];
    assert_eq!(lease_exclusivity::check(&events).verdict, Verdict::Valid);
    // Without the step-down the same leases overlap.
    let without: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::SteppedDown { .. }))
        .cloned()
        .collect();
    assert_eq!(lease_exclusivity::check(&without).verdict, Verdict::Invalid);
}

#[test]
fn a_lease_extended_after_a_higher_term_starts_a_new_window() {
    // The same node re-acquiring the lease in a later term is not an overlap
    // with itself; a lease extended by another node in between is.
    let events = vec![
        ev("n1", SEC, 5, lease(SEC + 500 * MS)),
        leader("n1", SEC + 100 * MS, 7),
        ev("n1", SEC + 100 * MS, 7, lease(SEC + 600 * MS)),
    ];
    let result = lease_exclusivity::check(&events);
    assert_check(&result, Verdict::Valid, &[]);
    let windows = lease_exclusivity::lease_windows(&events);
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0].end_ns, SEC + 100 * MS);
}

// ---- I8 log agreement ----

#[test]
fn divergent_state_hash_at_one_index_is_flagged() {
    let events = vec![
        ev("n1", SEC, 2, applied(7, 0xaaaa)),
        ev("n2", SEC, 2, applied(7, 0xaaaa)),
        ev("n3", SEC, 2, applied(7, 0xbbbb)),
    ];
    let result = log_agreement::check(&events, &History::default());
    assert_check(&result, Verdict::Invalid, &["applied index 7;"]);
    assert!(result.details[0].contains("n3"), "{result:?}");
}

#[test]
fn a_divergent_suffix_is_reported_as_one_run() {
    let mut events = Vec::new();
    for index in 10..20 {
        events.push(ev("n1", SEC, 2, applied(index, index)));
        events.push(ev("n2", SEC, 3, applied(index, 1000 + index)));
    }
    events.push(ev("n1", SEC, 2, applied(30, 1)));
    events.push(ev("n2", SEC, 3, applied(30, 2)));
    let result = log_agreement::check(&events, &History::default());
    assert_check(
        &result,
        Verdict::Invalid,
        &["applied indexes 10..=19 (10 indexes)", "applied index 30;"],
    );
    assert_eq!(result.details.len(), 3, "{result:?}");
}

#[test]
fn one_index_committed_under_two_terms_is_flagged() {
    let events = vec![
        ev("n1", SEC, 2, committed(2, 9)),
        ev("n3", SEC, 3, committed(3, 9)),
    ];
    let result = log_agreement::check(&events, &History::default());
    assert_check(&result, Verdict::Invalid, &["index 9"]);
}

#[test]
fn one_token_acknowledged_to_two_clients_is_flagged() {
    use checker::{Op, OpFn, OpKind};
    let history = History::new(vec![
        Op::new(1, OpKind::Invoke, OpFn::Write, "a", 1).with_value("x"),
        Op::new(2, OpKind::Invoke, OpFn::Write, "b", 2).with_value("y"),
        Op::new(1, OpKind::Ok, OpFn::Write, "a", 3)
            .with_token(4, 11)
            .with_node("n1"),
        Op::new(2, OpKind::Ok, OpFn::Write, "b", 4)
            .with_token(5, 11)
            .with_node("n2"),
    ]);
    let result = log_agreement::check(&[], &history);
    assert_check(&result, Verdict::Invalid, &["two terms"]);
}

#[test]
fn agreeing_logs_are_valid() {
    let events = vec![
        ev("n1", SEC, 2, applied(7, 0xaaaa)),
        ev("n2", SEC, 2, applied(7, 0xaaaa)),
        ev("n2", SEC, 2, applied(8, 0xcccc)),
        ev("n1", 2 * SEC, 2, final_state(8, 0xcccc)),
        ev("n1", SEC, 2, committed(2, 8)),
    ];
    let result = log_agreement::check(&events, &History::default());
    assert_check(&result, Verdict::Valid, &[]);
}

// ---- I10 convergence ----

#[test]
fn nodes_that_disagree_after_heal_are_flagged() {
    let events = vec![
        ev("n1", 10 * SEC, 4, final_state(20, 0x1111)),
        ev("n2", 10 * SEC, 4, final_state(20, 0x1111)),
        ev("n3", 10 * SEC, 4, final_state(18, 0x2222)),
    ];
    let result = convergence::check(&events, None);
    assert_check(&result, Verdict::Invalid, &["n3"]);
}

#[test]
fn converged_nodes_are_valid_and_missing_ones_unknown() {
    let events = vec![
        ev("n1", 10 * SEC, 4, final_state(20, 0x1111)),
        ev("n2", 10 * SEC, 4, final_state(20, 0x1111)),
    ];
    assert_eq!(convergence::check(&events, None).verdict, Verdict::Valid);
    let expected = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
    let result = convergence::check(&events, Some(&expected));
    assert_check(&result, Verdict::Unknown, &["n3"]);
    assert_eq!(convergence::check(&[], None).verdict, Verdict::Unknown);
}

// ---- I11 bounded elections ----

fn elections(times_ms: &[u64]) -> Vec<checker::NodeEvent> {
    times_ms
        .iter()
        .enumerate()
        .map(|(i, t)| ev("n2", t * MS, i as u64 + 2, EventKind::ElectionStarted))
        .collect()
}

#[test]
fn an_election_storm_is_flagged() {
    // 12 elections within 30 s under flapping; bound 10 per minute.
    let times: Vec<u64> = (0..12).map(|i| 1_000 + i * 2_500).collect();
    let window = ElectionWindow {
        start_ns: 0,
        end_ns: 120 * SEC,
        max_per_minute: 10,
    };
    let result = bounded_elections::check(&elections(&times), &[window]);
    assert_check(&result, Verdict::Invalid, &["12 elections"]);
}

#[test]
fn spread_out_elections_and_shared_terms_are_valid() {
    // 12 elections over 4 minutes: at most 3 in any minute.
    let times: Vec<u64> = (0..12).map(|i| 1_000 + i * 20_000).collect();
    let mut events = elections(&times);
    // A second candidate for the same term counts once.
    events.push(ev("n3", 1_500 * MS, 2, EventKind::ElectionStarted));
    let window = ElectionWindow {
        start_ns: 0,
        end_ns: 300 * SEC,
        max_per_minute: 3,
    };
    let result = bounded_elections::check(&events, &[window]);
    assert_check(&result, Verdict::Valid, &[]);
}

#[test]
fn a_fault_free_window_allows_one_election() {
    let events = elections(&[1_000, 5_000]);
    let quiet = ElectionWindow {
        start_ns: 0,
        end_ns: 10 * SEC,
        max_per_minute: 1,
    };
    assert_eq!(
        bounded_elections::check(&events, std::slice::from_ref(&quiet)).verdict,
        Verdict::Invalid
    );
    assert_eq!(
        bounded_elections::check(&events[..1], &[quiet]).verdict,
        Verdict::Valid
    );
}
