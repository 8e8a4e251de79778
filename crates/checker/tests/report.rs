//! `check_all`: verdict merging, JSON for results.json, configuration
//! defaults.
mod support;

use checker::{
    CheckConfig, CheckInput, EventKind, History, PartitionWindow, Report, Verdict, check_all,
};
use support::{HistoryBuilder, MS, SEC, assert_check, ev};

/// `check_all` over one run's records.
fn run_checks(history: &History, events: &[checker::NodeEvent], config: &CheckConfig) -> Report {
    check_all(&CheckInput {
        history,
        events,
        config,
    })
}

/// Asserts the run's merged verdict (printing the whole report if not).
#[track_caller]
fn assert_run(report: &Report, verdict: Verdict) {
    assert_eq!(report.verdict, verdict, "{}", report.to_json_pretty());
}

/// Final reads start at 1 s; everything else by default.
fn final_reads_after_1s() -> CheckConfig {
    CheckConfig {
        final_reads_from_ns: Some(SEC),
        ..CheckConfig::default()
    }
}

/// The healthy history judged with `events` from the nodes that write
/// event logs, `logging` (final reads after 1 s).
fn healthy_history_logged_by(logging: &[&str], events: &[checker::NodeEvent]) -> Report {
    let config = CheckConfig {
        logging_nodes: Some(logging.iter().map(|node| node.to_string()).collect()),
        ..final_reads_after_1s()
    };
    run_checks(&healthy_history(), events, &config)
}

fn healthy_events() -> Vec<checker::NodeEvent> {
    let final_state = EventKind::FinalState {
        commit_index: 3,
        applied_index: 3,
        state_hash: 77,
    };
    vec![
        ev("n1", 0, 1, EventKind::ElectionStarted),
        ev("n1", MS, 1, EventKind::BecameLeader),
        ev("n1", MS, 1, EventKind::LeaseExtended { until_mono_ns: SEC }),
        ev("n1", 2 * SEC, 1, final_state.clone()),
        ev("n2", 2 * SEC, 1, final_state),
    ]
}

fn healthy_history() -> History {
    HistoryBuilder::new()
        .write(1, "x", "1", 10 * MS, 20 * MS)
        .read(2, "x", Some("1"), 30 * MS, 40 * MS)
        .read(2, "x", Some("1"), SEC, SEC + MS)
        .build()
}

#[test]
fn a_healthy_run_is_valid_with_every_check_reported() {
    let history = healthy_history();
    let events = healthy_events();
    let config = CheckConfig {
        expected_live_nodes: Some(vec!["n1".into(), "n2".into()]),
        ..final_reads_after_1s()
    };
    let report = run_checks(&history, &events, &config);
    assert_run(&report, Verdict::Valid);
    assert_eq!(report.results.len(), 11);
    assert!(report.invalid_checks().is_empty());
    // No quorum window configured: listed as not applicable, by name, and
    // not counted as valid.
    let vacuous = report.result("progress").unwrap();
    assert_check(vacuous, Verdict::NotApplicable, &["no quorum windows"]);
}

#[test]
fn a_run_with_an_empty_events_file_is_unknown() {
    let report = healthy_history_logged_by(&["n1", "n2"], &[]);
    assert_run(&report, Verdict::Unknown);
    for name in [
        "election_safety",
        "lease_exclusivity",
        "log_agreement",
        "convergence",
    ] {
        let result = report.result(name).unwrap();
        assert_eq!(result.verdict, Verdict::Unknown, "{result:?}");
    }
}

#[test]
fn a_node_without_an_event_log_leaves_the_event_checks_unknown() {
    // n3 ran (it is a logging node) but wrote nothing: n1's log alone
    // cannot show that n3 never led.
    let report = healthy_history_logged_by(&["n1", "n3"], &healthy_events());
    assert_run(&report, Verdict::Unknown);
    let safety = report.result("election_safety").unwrap();
    assert_check(safety, Verdict::Unknown, &["no event log from n3"]);
}

#[test]
fn zero_acknowledged_writes_and_no_keys_are_unknown() {
    let history = HistoryBuilder::new()
        .read(2, "x", None, SEC, SEC + MS)
        .build();
    let report = run_checks(&history, &healthy_events(), &CheckConfig::default());
    let lost = report.result("no_lost_writes").unwrap();
    assert_check(lost, Verdict::Unknown, &["no acknowledged write"]);
    let empty = History::new(Vec::new());
    let report = run_checks(&empty, &healthy_events(), &CheckConfig::default());
    let lin = report.result("linearizability").unwrap();
    assert_eq!(lin.verdict, Verdict::Unknown, "{lin:?}");
}

#[test]
fn a_system_without_leases_lists_lease_exclusivity_as_not_applicable() {
    let history = healthy_history();
    let config = CheckConfig {
        leaseless: true,
        ..final_reads_after_1s()
    };
    let report = run_checks(&history, &healthy_events(), &config);
    let lease = report.result("lease_exclusivity").unwrap();
    assert_eq!(lease.verdict, Verdict::NotApplicable, "{lease:?}");
    assert_run(&report, Verdict::Valid);
    // Nothing but not-applicable results is not a valid run.
    let only = Report::from_results(vec![lease.clone()]);
    assert_eq!(only.verdict, Verdict::Unknown);
}

#[test]
fn one_violation_makes_the_run_invalid_and_names_the_check() {
    let mut history = healthy_history();
    // The old leader, cut off in a minority, acknowledges a write.
    history.ops.extend(
        HistoryBuilder::new()
            .write_at(7, "y", "2", 500 * MS, 510 * MS, "n3", checker::OpKind::Ok)
            .read(8, "y", Some("2"), SEC, SEC + MS)
            .build()
            .ops,
    );
    let events = healthy_events();
    let config = CheckConfig {
        partitions: vec![PartitionWindow {
            start_ns: 400 * MS,
            end_ns: 900 * MS,
            minority: vec!["n3".into()],
        }],
        ..CheckConfig::default()
    };
    let report = run_checks(&history, &events, &config);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(report.invalid_checks(), vec!["minority_never_acknowledges"]);
}

#[test]
fn unknown_wins_over_valid_but_not_over_invalid() {
    let history = healthy_history();
    // No final_state at all: convergence cannot be judged.
    let events = vec![ev("n1", MS, 1, EventKind::BecameLeader)];
    let config = CheckConfig::default();
    let report = run_checks(&history, &events, &config);
    assert_run(&report, Verdict::Unknown);
    let mut events = events;
    events.push(ev("n2", 2 * MS, 1, EventKind::BecameLeader));
    let report = run_checks(&history, &events, &config);
    assert_eq!(report.verdict, Verdict::Invalid);
}

#[test]
fn a_malformed_history_is_unknown_for_history_checks() {
    let mut history = healthy_history();
    history.ops.remove(0);
    let events = healthy_events();
    let config = CheckConfig::default();
    let report = run_checks(&history, &events, &config);
    assert_eq!(report.verdict, Verdict::Unknown);
    let lin = report.result("linearizability").unwrap();
    assert!(lin.details[0].contains("malformed history"), "{lin:?}");
    assert_eq!(
        report.result("election_safety").unwrap().verdict,
        Verdict::Valid
    );
}

#[test]
fn reports_and_configs_round_trip_through_json() {
    let history = healthy_history();
    let events = healthy_events();
    let config = CheckConfig::default();
    let report = run_checks(&history, &events, &config);
    let json = report.to_json_pretty();
    assert!(json.contains("\"verdict\": \"valid\""), "{json}");
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);

    let empty: CheckConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, CheckConfig::default());
    let partial: CheckConfig = serde_json::from_str(
        r#"{"progress_grace_ns": 5, "linearizability": {"per_key_time_ms": 9}}"#,
    )
    .unwrap();
    assert_eq!(partial.progress_grace_ns, 5);
    assert_eq!(partial.linearizability.per_key_time_ms, 9);
    assert_eq!(partial.linearizability.total_time_ms, 60_000);
    let text = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<CheckConfig>(&text).unwrap(), config);
}
