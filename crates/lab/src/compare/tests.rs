//! The side-by-side table rendered from fixed results: one column per
//! system (any number of them), one row per check any run reported, the
//! failover decomposition per fault, overlaps, counts and latency.
use checker::{CheckResult, Verdict};

use super::table;
use crate::run::figures::Failover;
use crate::run::observer_leadership::LeaderOverlap;
use crate::run::results::Results;

/// A finished run of `system` with the given check verdicts; everything
/// else fixed.
fn results(system: &str, verdict: &str, checks: &[(&str, Verdict)]) -> Results {
    let mut results: Results = serde_json::from_value(serde_json::json!({
        "scenario": "isolate-follower",
        "description": "one follower cut off, then heal",
        "seed": 13,
        "mode": "safe",
        "topology": "mesh-3",
        "nodes": ["n1", "n2", "n3"],
        "started_at": "2026-12-02T13:00:00Z",
        "verdict": verdict,
        "exit_code": 0,
        "checks": [],
        "counts": {"invoked": 12, "ok": 10, "fail": 1, "info": 1, "by_fn": {}, "final_reads_ok": 3},
        "latency": {"p50_ms": 2.54, "p99_ms": 48.96, "max_ms": 90.0},
        "timing": {"heartbeat": "50ms", "election_timeout_min": "250ms", "election_timeout_max": "500ms"},
        "faults": [],
        "failover": [],
        "frame": null,
        "check_config": {},
        "lab_up_ms": 1.0,
        "lab_down_ms": 1.0,
        "system": system,
    }))
    .expect("a complete results fixture");
    results.checks = (checks.iter())
        .map(|(name, verdict)| CheckResult::new(name, *verdict, vec![]))
        .collect();
    results
}

fn failover(new_leader_ms: Option<f64>, unavailable_ms: f64, open: bool) -> Failover {
    Failover {
        step: 0,
        description: "n3 cut off".into(),
        start_ns: 1,
        end_ns: Some(2),
        window_end_ns: 2,
        leader_before: Some("n1".into()),
        term_before: Some(2),
        detection_ms: Some(12.4),
        detected_by: Some("n1 peer_down".into()),
        new_leader: new_leader_ms.map(|_| "n2".into()),
        new_term: new_leader_ms.map(|_| 3),
        new_leader_ms,
        first_ack_write_ms: Some(66.0),
        unavailable_ms: Some(unavailable_ms),
        unavailable_open: open,
        old_leader_stepped_down_ms: None,
        old_leader_lease_ended_ms: None,
        leaders_elected: usize::from(new_leader_ms.is_some()),
    }
}

fn overlap(stepped_down_ns: Option<u64>) -> LeaderOverlap {
    LeaderOverlap {
        old: "n1".into(),
        old_term: 2,
        new: "n2".into(),
        new_term: 20,
        elected_ns: 1_000_000_000,
        old_stepped_down_ns: stepped_down_ns,
    }
}

#[test]
fn two_systems_render_side_by_side() {
    let mut splitnode = results(
        "splitnode",
        "valid",
        &[
            ("election_safety", Verdict::Valid),
            ("rejoin_without_election", Verdict::Valid),
        ],
    );
    splitnode.failover = vec![failover(None, 199.4, false)];
    let mut etcd = results(
        "etcd",
        "invalid",
        &[
            ("election_safety", Verdict::Valid),
            ("lease_exclusivity", Verdict::NotApplicable),
            ("rejoin_without_election", Verdict::Invalid),
        ],
    );
    etcd.failover = vec![failover(Some(310.0), 2_204.6, true)];
    etcd.leader_overlaps = vec![overlap(Some(1_030_000_000)), overlap(None)];
    let table = table(&[("runs/a".into(), splitnode), ("runs/b".into(), etcd)]);
    let expected = "\
## isolate-follower

| | splitnode | etcd |
|---|---|---|
| verdict | valid | invalid |
| election_safety | valid | valid |
| rejoin_without_election | valid | invalid |
| lease_exclusivity | skipped | not_applicable |
| fault 1: n3 cut off: detect / new leader / first write (ms) | 12 / – / 66 | 12 / 310 / 66 |
| fault 1: longest write gap (ms) | 199 | ≥ 2205 |
| fault 1: old leader stepped down (ms) | – | – |
| old leader still claimed after successor elected (ms, each) | none | 30 (n1→n2), not seen to stop (n1→n2) |
| acknowledged writes lost (no_lost_writes) | – | – |
| ops ok / fail / info | 10 / 1 / 1 | 10 / 1 / 1 |
| latency p50 / p99 (ms) | 2.5 / 49.0 | 2.5 / 49.0 |

- splitnode: runs/a
- etcd: runs/b
";
    assert_eq!(table, expected, "\n{table}");
}

#[test]
fn any_number_of_systems_get_a_column_each() {
    let systems = ["splitnode", "etcd", "redis"];
    let columns: Vec<(String, Results)> = (systems.iter())
        .map(|system| {
            let mut run = results(system, "valid", &[("progress", Verdict::Valid)]);
            if *system == "redis" {
                run.failover = vec![failover(Some(5_000.0), 6_000.0, false)];
            }
            (format!("runs/{system}"), run)
        })
        .collect();
    let table = table(&columns);
    assert!(table.contains("| | splitnode | etcd | redis |\n|---|---|---|---|\n"));
    for line in table.lines().filter(|line| line.starts_with("| ")) {
        assert_eq!(line.matches(" | ").count(), systems.len(), "{line}");
    }
    // A fault only one run measured: the others show a dash.
    assert!(
        table.contains("| fault 1: longest write gap (ms) | – | – | 6000 |"),
        "{table}"
    );
    assert!(table.ends_with("- redis: runs/redis\n"));
}

#[test]
fn lost_writes_come_from_the_no_lost_writes_summary() {
    let mut redis = results("redis", "invalid", &[]);
    redis.checks = vec![CheckResult::new(
        "no_lost_writes",
        Verdict::Invalid,
        vec![
            "456 of 1940 acknowledged appends missing after heal".into(),
            "key a0: acknowledged p2 append(a0, 2-126) ... is missing from the final read".into(),
        ],
    )];
    let safe = results("etcd", "valid", &[("no_lost_writes", Verdict::Valid)]);
    let table = table(&[("runs/r".into(), redis), ("runs/e".into(), safe)]);
    assert!(
        table.contains("| acknowledged writes lost (no_lost_writes) | 456 of 1940 acknowledged appends | none |"),
        "{table}"
    );
}
