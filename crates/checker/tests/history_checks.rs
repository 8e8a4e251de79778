//! Negative controls and good cases for the checks judged from client
//! histories: no lost writes, linearizability, the minority never
//! acknowledges and fails fast, and progress.
mod support;

use checker::checks::{
    linearizability, minority_fails_fast, minority_never_acknowledges, no_lost_writes, progress,
};
use checker::{
    CheckResult, ClientReach, History, LinearizabilityBudget, OpKind, PartitionWindow,
    QuorumWindow, Verdict,
};
use support::{HistoryBuilder, MS, SEC, assert_check};

/// The linearizability verdict on `history` under the default budget.
fn linearize(history: &History) -> CheckResult {
    linearizability::check(history, &LinearizabilityBudget::default())
}

/// Asserts `text` says every one of `fragments`.
#[track_caller]
fn assert_mentions(text: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(text.contains(fragment), "no {fragment:?} in {text}");
    }
}

// ---- I4 no lost writes ----

#[test]
fn an_acknowledged_write_lost_after_heal_is_flagged() {
    // The old leader n1 acked x=2 in the minority; after heal the majority's
    // value 3 wins and 2 is gone, but 3 was written before 2 was acked...
    // here: 2 acked at 2 s, final read at 10 s sees 1 (written at 0 s).
    let history = HistoryBuilder::new()
        .write(1, "x", "1", 0, 100 * MS)
        .write(2, "x", "2", SEC, 2 * SEC)
        .read(3, "x", Some("1"), 10 * SEC, 10 * SEC + MS)
        .build();
    let result = no_lost_writes::check(&history, Some(9 * SEC));
    assert_check(&result, Verdict::Invalid, &["write(x, 2)"]);
    assert!(result.details[0].contains("lost"), "{result:?}");
}

#[test]
fn an_overwritten_or_visible_write_is_not_lost() {
    let history = HistoryBuilder::new()
        .write(1, "x", "1", 0, 100 * MS)
        .write(2, "x", "2", SEC, 2 * SEC)
        // A concurrent write of unknown outcome may have overwritten 2.
        .write_info(4, "x", "3", 1_500 * MS, 5 * SEC)
        .read(3, "x", Some("3"), 10 * SEC, 10 * SEC + MS)
        .write(5, "y", "a", 0, MS)
        .read(6, "y", Some("a"), 10 * SEC, 10 * SEC + MS)
        .build();
    let result = no_lost_writes::check(&history, Some(9 * SEC));
    assert_check(&result, Verdict::Valid, &[]);
}

#[test]
fn delete_and_cas_are_judged_by_the_value_they_leave() {
    let deleted = HistoryBuilder::new()
        .write(1, "x", "1", 0, MS)
        .delete(2, "x", 2 * MS, 3 * MS)
        .read(3, "x", None, SEC, SEC + MS)
        .build();
    assert_eq!(
        no_lost_writes::check(&deleted, None).verdict,
        Verdict::Valid
    );

    // An acked delete whose key is still there afterwards is lost.
    let resurrected = HistoryBuilder::new()
        .write(1, "x", "1", 0, MS)
        .delete(2, "x", 2 * MS, 3 * MS)
        .read(3, "x", Some("1"), SEC, SEC + MS)
        .build();
    let result = no_lost_writes::check(&resurrected, None);
    assert_check(&result, Verdict::Invalid, &["delete(x)"]);

    // A failed CAS is no overwrite: the acked write of 1 is lost.
    let failed_cas = HistoryBuilder::new()
        .write(1, "x", "0", 0, MS)
        .write(1, "x", "1", 2 * MS, 3 * MS)
        .cas(2, "x", "0", "9", 4 * MS, 5 * MS, OpKind::Fail)
        .read(3, "x", Some("9"), SEC, SEC + MS)
        .build();
    assert_eq!(
        no_lost_writes::check(&failed_cas, None).verdict,
        Verdict::Invalid
    );
}

#[test]
fn missing_final_reads_are_unknown() {
    let history = HistoryBuilder::new().write(1, "x", "1", 0, MS).build();
    let result = no_lost_writes::check(&history, Some(SEC));
    assert_check(&result, Verdict::Unknown, &[]);
    assert_eq!(
        no_lost_writes::check(&history, None).verdict,
        Verdict::Unknown
    );
}

// ---- I5 linearizability ----

#[test]
fn a_stale_read_is_not_linearizable() {
    let history = HistoryBuilder::new()
        .write(1, "x", "1", 0, 10 * MS)
        .write(2, "x", "2", 20 * MS, 30 * MS)
        // Served by the old leader in the minority after 2 was acked.
        .read(3, "x", Some("1"), 40 * MS, 50 * MS)
        .write(4, "y", "1", 0, 10 * MS)
        .build();
    let result = linearize(&history);
    assert_check(&result, Verdict::Invalid, &[]);
    let text = result.details.join("\n");
    assert_mentions(
        &text,
        &[
            "key x is not linearizable",
            "culprit: p3 read(x)→1",
            "involved: p2 write(x, 2)",
        ],
    );
    assert!(!text.contains("key y"), "{text}");
}

#[test]
fn a_non_linearizable_cas_is_flagged() {
    // Two CAS from the same value both succeed: a split brain.
    let history = HistoryBuilder::new()
        .write(1, "x", "0", 0, MS)
        .cas(2, "x", "0", "a", 10 * MS, 20 * MS, OpKind::Ok)
        .cas(3, "x", "0", "b", 30 * MS, 40 * MS, OpKind::Ok)
        .build();
    let result = linearize(&history);
    assert_check(&result, Verdict::Invalid, &["culprit: p3 cas(x, 0→b)"]);
}

#[test]
fn the_failing_window_is_the_shortest_prefix() {
    // A long valid prefix, then one bad read: the report names that read.
    let mut builder = HistoryBuilder::new();
    for i in 0..50u64 {
        let v = i.to_string();
        builder.write(1, "x", &v, i * 10 * MS, i * 10 * MS + MS);
        builder.read(2, "x", Some(&v), i * 10 * MS + 2 * MS, i * 10 * MS + 3 * MS);
    }
    builder.read(2, "x", Some("7"), SEC, SEC + MS);
    builder.write(1, "x", "late", 2 * SEC, 2 * SEC + MS);
    let result = linearize(&builder.build());
    assert_check(&result, Verdict::Invalid, &[]);
    let text = &result.details[0];
    assert_mentions(
        text,
        &[
            "ends at 1.001000s",
            "culprit: p2 read(x)→7 [1.000000s",
            "involved: p1 write(x, 49)",
            "involved: p1 write(x, 7)",
        ],
    );
    assert!(!text.contains("write(x, late)"), "{text}");
}

#[test]
fn concurrent_and_uncertain_operations_are_linearizable() {
    let history = HistoryBuilder::new()
        .write(1, "x", "1", 0, 10 * MS)
        // Concurrent write and reads may be ordered either way.
        .write(2, "x", "2", 20 * MS, 60 * MS)
        .read(3, "x", Some("1"), 25 * MS, 30 * MS)
        .read(4, "x", Some("2"), 35 * MS, 40 * MS)
        // A timed-out CAS that took effect later.
        .cas(5, "x", "2", "3", 70 * MS, 80 * MS, OpKind::Info)
        .read(3, "x", Some("3"), 200 * MS, 210 * MS)
        // A timed-out write that never took effect.
        .write_info(6, "x", "never", 220 * MS, 230 * MS)
        .read(4, "x", Some("3"), 300 * MS, 310 * MS)
        // Failed operations never happened.
        .cas(5, "x", "9", "bogus", 320 * MS, 330 * MS, OpKind::Fail)
        .delete(1, "x", 400 * MS, 410 * MS)
        .read(2, "x", None, 420 * MS, 430 * MS)
        .build();
    let result = linearize(&history);
    assert_check(&result, Verdict::Valid, &[]);
}

#[test]
fn an_info_write_cannot_take_effect_before_it_was_invoked() {
    let history = HistoryBuilder::new()
        .read(1, "x", Some("5"), 0, 10 * MS)
        .write_info(2, "x", "5", 20 * MS, 30 * MS)
        .build();
    let result = linearize(&history);
    assert_check(&result, Verdict::Invalid, &[]);
}

#[test]
fn the_budget_makes_a_pathological_history_unknown() {
    // Many concurrent unknown writes whose values are all read later in a
    // contradictory order: the search space explodes combinatorially.
    let mut builder = HistoryBuilder::new();
    let n = 29u64;
    for i in 0..n {
        builder.write_info(i, "x", &i.to_string(), 0, SEC);
    }
    for i in 0..n {
        let t = 2 * SEC + i * 10 * MS;
        builder.read(100 + i, "x", Some(&((i * 7) % n).to_string()), t, t + MS);
    }
    // A final read of a value nobody wrote: no linearization exists, but
    // proving it means exhausting the whole space.
    builder.read(200, "x", Some("nobody"), 10 * SEC, 10 * SEC + MS);
    let history = builder.build();
    let tight = LinearizabilityBudget {
        per_key_time_ms: 200,
        total_time_ms: 1_000,
        per_key_memory_bytes: 8 << 20,
        minimize_failures: true,
    };
    let result = linearizability::check(&history, &tight);
    assert_check(&result, Verdict::Unknown, &["budget exhausted"]);
}

#[test]
fn malformed_histories_are_unknown_not_valid() {
    let mut history = HistoryBuilder::new().write(1, "x", "1", 0, MS).build();
    history.ops.remove(0);
    let result = linearize(&history);
    assert_check(&result, Verdict::Unknown, &["malformed"]);
}

// ---- I6 the minority never acknowledges (a) and fails fast (b) ----

fn partition() -> PartitionWindow {
    PartitionWindow {
        start_ns: 10 * SEC,
        end_ns: 20 * SEC,
        minority: vec!["n1".to_string()],
    }
}

#[test]
fn an_ok_write_from_the_minority_is_flagged() {
    let history = HistoryBuilder::new()
        .write_at(1, "x", "1", 5 * SEC, 5 * SEC + MS, "n1", OpKind::Ok)
        .write_at(1, "x", "2", 12 * SEC, 12 * SEC + MS, "n1", OpKind::Ok)
        .build();
    let result = minority_never_acknowledges::check(&history, &[partition()], None);
    assert_check(
        &result,
        Verdict::Invalid,
        &["minority node n1 acknowledged"],
    );
    assert!(result.details[0].contains("write(x, 2)"), "{result:?}");
}

/// A history whose first write to the minority leader n1 times out within
/// the 2 s bound, which is tolerated.
fn after_a_tolerated_timeout() -> HistoryBuilder {
    let mut builder = HistoryBuilder::new();
    builder.write_at(
        1,
        "x",
        "1",
        10 * SEC + 100 * MS,
        11 * SEC,
        "n1",
        OpKind::Info,
    );
    builder
}

#[test]
fn a_minority_write_that_hangs_past_the_bound_is_flagged() {
    let history = after_a_tolerated_timeout()
        // Past the bound, the minority must answer with an error.
        .write_at(2, "x", "2", 15 * SEC, 16 * SEC, "n1", OpKind::Info)
        .build();
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), None);
    assert_check(&result, Verdict::Invalid, &[]);
    assert_eq!(
        result
            .details
            .iter()
            .filter(|d| d.contains("neither refused nor acknowledged"))
            .count(),
        1,
        "{result:?}"
    );
    // A minority that only hangs acknowledged nothing: no split brain, so
    // the safety check passes and only the fail-fast check fails.
    let safety = minority_never_acknowledges::check(&history, &[partition()], None);
    assert_check(&safety, Verdict::Valid, &["2 writes sent to the minority"]);
}

#[test]
fn a_minority_that_rejects_writes_is_valid() {
    let history = after_a_tolerated_timeout()
        .write_at(1, "x", "2", 15 * SEC, 15 * SEC + MS, "n1", OpKind::Fail)
        // The majority keeps serving.
        .write_at(2, "x", "3", 15 * SEC, 15 * SEC + MS, "n2", OpKind::Ok)
        // Acked after heal: the old leader rejoined.
        .write_at(3, "x", "4", 19 * SEC, 21 * SEC, "n1", OpKind::Ok)
        .build();
    let result = minority_never_acknowledges::check(&history, &[partition()], None);
    assert_check(&result, Verdict::Valid, &["1 rejected explicitly"]);
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), None);
    assert_check(
        &result,
        Verdict::Valid,
        &["2 writes reached the minority after the bound"],
    );
}

#[test]
fn a_window_in_which_no_write_reached_the_minority_is_unknown() {
    // Only the majority was written to: nothing tells whether n1 would
    // have acknowledged or answered.
    let history = HistoryBuilder::new()
        .write_at(2, "x", "1", 15 * SEC, 15 * SEC + MS, "n2", OpKind::Ok)
        .build();
    let result = minority_never_acknowledges::check(&history, &[partition()], None);
    assert_check(
        &result,
        Verdict::Unknown,
        &["no write reached the minority"],
    );
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), None);
    assert_check(&result, Verdict::Unknown, &["nothing to judge"]);
}

#[test]
fn without_partition_windows_the_minority_checks_do_not_apply() {
    let history = HistoryBuilder::new()
        .write_at(1, "x", "1", 15 * SEC, 15 * SEC + MS, "n1", OpKind::Ok)
        .build();
    let result = minority_never_acknowledges::check(&history, &[], None);
    assert_check(&result, Verdict::NotApplicable, &["no partition"]);
    let result = minority_fails_fast::check(&history, &[], Some(2 * SEC), None);
    assert_check(&result, Verdict::NotApplicable, &["no partition"]);
    let result = minority_fails_fast::check(&history, &[partition()], None, None);
    assert_check(&result, Verdict::NotApplicable, &["no bound"]);
}

/// p1's write to n1 timing out over `[invoke, timeout]`, and p2's write to
/// n1 refused at 15 s.
fn a_timeout_and_a_refusal(invoke_ns: u64, timeout_ns: u64) -> History {
    HistoryBuilder::new()
        .write_at(1, "x", "1", invoke_ns, timeout_ns, "n1", OpKind::Info)
        .write_at(2, "x", "2", 15 * SEC, 15 * SEC + MS, "n1", OpKind::Fail)
        .build()
}

#[test]
fn a_partition_shorter_than_the_bound_gives_fail_fast_no_instance() {
    let short = PartitionWindow {
        start_ns: 10 * SEC,
        end_ns: 11 * SEC,
        minority: vec!["n1".to_string()],
    };
    let history = a_timeout_and_a_refusal(10 * SEC + 500 * MS, 11 * SEC + 500 * MS);
    let only_short = std::slice::from_ref(&short);
    let result = minority_fails_fast::check(&history, only_short, Some(2 * SEC), None);
    assert_check(
        &result,
        Verdict::NotApplicable,
        &["no partition outlasted the bound 2.000s (1 shorter windows)"],
    );
    // Beside a window that outlasted the bound, the short one is noted.
    let result = minority_fails_fast::check(&history, &[short, partition()], Some(2 * SEC), None);
    assert_check(
        &result,
        Verdict::Valid,
        &[
            "1 writes reached the minority",
            "1 partition windows ended within the bound",
        ],
    );
}

#[test]
fn a_write_that_gave_up_only_after_the_window_ended_is_not_a_hang() {
    // Sent to n1 past the bound, still unanswered when the partition ended:
    // it timed out after the heal.
    let history = a_timeout_and_a_refusal(19 * SEC + 500 * MS, 20 * SEC + 500 * MS);
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), None);
    assert_check(
        &result,
        Verdict::Valid,
        &[
            "1 writes reached the minority after the bound 2.000s, 1 answered, 1 still unanswered when the window ended not judged",
        ],
    );
}

#[test]
fn timeouts_of_clients_cut_off_from_the_minority_are_not_hangs() {
    let history = HistoryBuilder::new()
        // p1 sits in the majority region but still targets the old leader.
        .write_at(1, "x", "1", 15 * SEC, 16 * SEC, "n1", OpKind::Info)
        // p2 shares the minority's region: its timeout is a hang.
        .write_at(2, "x", "2", 15 * SEC, 16 * SEC, "n1", OpKind::Info)
        .build();
    let reach = vec![
        ClientReach {
            process: 1,
            start_ns: 10 * SEC,
            end_ns: 20 * SEC,
            nodes: vec!["n2".into(), "n3".into()],
        },
        ClientReach {
            process: 2,
            start_ns: 10 * SEC,
            end_ns: 20 * SEC,
            nodes: vec!["n1".into()],
        },
    ];
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), Some(&reach));
    assert_check(
        &result,
        Verdict::Invalid,
        &["p2 write(x, 2)", "1 timeouts of clients cut off"],
    );
    // p2 gave up when n1 was no longer reachable (it crashed meanwhile):
    // the silence is the crash's, not a hang.
    let mut crashed = reach.clone();
    crashed[1].end_ns = 15 * SEC + 500 * MS;
    let result =
        minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), Some(&crashed));
    assert_check(
        &result,
        Verdict::Unknown,
        &["2 timeouts of clients cut off"],
    );
    let only_p1 = &reach[..1];
    let history = HistoryBuilder::new()
        .write_at(1, "x", "1", 15 * SEC, 16 * SEC, "n1", OpKind::Info)
        .build();
    let result = minority_fails_fast::check(&history, &[partition()], Some(2 * SEC), Some(only_p1));
    // The only write after the bound could not reach n1: nothing to judge.
    assert_check(&result, Verdict::Unknown, &["nothing to judge"]);
    assert!(
        result.details[0].contains("1 timeouts of clients cut off"),
        "{result:?}"
    );
}

// ---- I12 progress ----

fn quorum_window() -> QuorumWindow {
    QuorumWindow {
        start_ns: 10 * SEC,
        end_ns: 30 * SEC,
        nodes: vec!["n2".to_string(), "n3".to_string()],
    }
}

#[test]
fn no_progress_with_a_connected_quorum_is_flagged() {
    let history = HistoryBuilder::new()
        .write_at(1, "x", "1", 20 * SEC, 21 * SEC, "n2", OpKind::Fail)
        .write_at(1, "x", "2", 22 * SEC, 23 * SEC, "n3", OpKind::Info)
        // Successes outside the window or through other nodes do not count.
        .write_at(2, "x", "3", 5 * SEC, 5 * SEC + MS, "n2", OpKind::Ok)
        .write_at(2, "x", "4", 22 * SEC, 22 * SEC + MS, "n1", OpKind::Ok)
        .build();
    let result = progress::check(&history, &[quorum_window()], 5 * SEC);
    assert_check(&result, Verdict::Invalid, &["no write succeeded"]);
}

#[test]
fn a_write_still_in_flight_when_the_window_ends_is_no_evidence() {
    // Invoked 1 ms before the window ends, acknowledged 2 ms after it: the
    // quorum was cut before the write could finish, which says nothing.
    let with_late_ack = |builder: &mut HistoryBuilder| {
        builder
            .write_at(
                1,
                "x",
                "1",
                30 * SEC - MS,
                30 * SEC + 2 * MS,
                "n2",
                OpKind::Ok,
            )
            .build()
    };
    let late = with_late_ack(&mut HistoryBuilder::new());
    let result = progress::check(&late, &[quorum_window()], 5 * SEC);
    assert_check(
        &result,
        Verdict::Unknown,
        &["none finished before the window ended"],
    );
    // A refusal inside the window still is evidence.
    let refused = with_late_ack(HistoryBuilder::new().write_at(
        1,
        "x",
        "2",
        29 * SEC,
        29 * SEC + MS,
        "n2",
        OpKind::Fail,
    ));
    let result = progress::check(&refused, &[quorum_window()], 5 * SEC);
    assert_check(
        &result,
        Verdict::Invalid,
        &["no write succeeded; 1 attempts"],
    );
}

#[test]
fn progress_after_the_grace_period_is_valid() {
    let history = HistoryBuilder::new()
        // Failures during the grace period are allowed.
        .write_at(1, "x", "1", 11 * SEC, 12 * SEC, "n2", OpKind::Fail)
        .write_at(1, "x", "2", 16 * SEC, 16 * SEC + MS, "n3", OpKind::Ok)
        .build();
    let result = progress::check(&history, &[quorum_window()], 5 * SEC);
    assert_check(&result, Verdict::Valid, &[]);
}

#[test]
fn no_attempt_or_only_short_windows_mean_unknown() {
    let history = HistoryBuilder::new()
        .read_at(1, "x", None, 20 * SEC, 21 * SEC, "n2")
        .build();
    let result = progress::check(&history, &[quorum_window()], 5 * SEC);
    assert_check(&result, Verdict::Unknown, &[]);
    let short = QuorumWindow {
        start_ns: 10 * SEC,
        end_ns: 12 * SEC,
        nodes: vec![],
    };
    // Every window shorter than the grace: nothing was judged.
    let result = progress::check(&history, std::slice::from_ref(&short), 5 * SEC);
    assert_check(
        &result,
        Verdict::Unknown,
        &[
            "every quorum window is shorter than the grace period",
            "skipped",
        ],
    );
    // A short window next to a judged one is only noted as skipped.
    let history = HistoryBuilder::new()
        .write_at(1, "x", "1", 20 * SEC, 21 * SEC, "n2", OpKind::Ok)
        .build();
    let result = progress::check(&history, &[short, quorum_window()], 5 * SEC);
    assert_check(&result, Verdict::Valid, &["any node (all connected)"]);
    assert!(result.details[0].contains("skipped"), "{result:?}");
}
