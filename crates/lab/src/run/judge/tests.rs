//! Tests of the run judge: partition geometry, check configuration,
//! premises and expectations.
use super::*;
use netlab::grudge;

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

#[test]
fn isolated_node_is_the_minority_and_the_rest_a_quorum() {
    let nodes = names(3);
    let g = grudge::isolate_one("n1", &nodes);
    assert_eq!(minority_of(&nodes, &g), vec!["n1"]);
    assert_eq!(
        connected_quorum(&nodes, &g),
        Some(vec!["n2".to_string(), "n3".to_string()])
    );
}

#[test]
fn even_split_has_no_quorum_and_everyone_is_minority() {
    let nodes = names(4);
    let g = grudge::complete(&[nodes[..2].to_vec(), nodes[2..].to_vec()]);
    assert_eq!(minority_of(&nodes, &g).len(), 4);
    assert_eq!(connected_quorum(&nodes, &g), None);
}

#[test]
fn one_way_cut_isolates_for_quorum_purposes() {
    let nodes = names(3);
    // n2 and n3 drop what n1 sends: n1 cannot send.
    let g = grudge::one_way(&["n1".to_string()], &nodes[1..]);
    assert_eq!(minority_of(&nodes, &g), vec!["n1"]);
}

#[test]
fn partial_partition_leaves_no_minority() {
    let nodes = names(3);
    let g = grudge::complete(&[vec!["n1".to_string()], vec!["n2".to_string()]]);
    assert!(minority_of(&nodes, &g).is_empty());
    assert_eq!(connected_quorum(&nodes, &g).map(|q| q.len()), Some(2));
    // Both {n1,n3} and {n2,n3} are quorums; the leader's progresses, so a
    // write through any of the three counts (the CI run that judged only
    // {n1,n3} failed a correct run whose leader was n2).
    assert_eq!(progress_nodes(&nodes, &g), Some(names(3)));
}

#[test]
fn progress_nodes_leave_out_the_cut_off_and_need_a_quorum() {
    let nodes = names(5);
    let g = grudge::isolate_one("n1", &nodes);
    assert_eq!(progress_nodes(&nodes, &g), Some(nodes[1..].to_vec()));
    let g = grudge::complete(&[
        nodes[..2].to_vec(),
        nodes[2..4].to_vec(),
        nodes[4..].to_vec(),
    ]);
    assert_eq!(progress_nodes(&nodes, &g), None);
}

#[test]
fn expectation_requires_the_named_checks_to_fail() {
    let report = Report::from_results(vec![
        CheckResult::new("election_safety", Verdict::Invalid, vec![]),
        CheckResult::new("no_lost_writes", Verdict::Valid, vec![]),
    ]);
    let expect = |broken: &[&str]| Expectation {
        verdict: ExpectedVerdict::Invalid,
        broken: broken.iter().map(|s| s.to_string()).collect(),
        safe_twin: None,
    };
    assert!(meets_expectation(&expect(&["election_safety"]), &report, &[]).is_ok());
    let error = meets_expectation(&expect(&["no_lost_writes"]), &report, &[]).unwrap_err();
    assert!(error.contains("not for the expected reason"), "{error}");
    let error = meets_expectation(&expect(&[]), &report, &[]).unwrap_err();
    assert!(error.contains("names no check"), "{error}");
    let premise = vec!["prefer_leader = \"n1\", but n2 led".to_string()];
    let error = meets_expectation(&expect(&["election_safety"]), &report, &premise).unwrap_err();
    assert!(
        error.starts_with("unknown: the scenario's premise"),
        "{error}"
    );
    let valid = Expectation {
        verdict: ExpectedVerdict::Valid,
        broken: vec![],
        safe_twin: None,
    };
    assert!(meets_expectation(&valid, &report, &[]).is_err());
}

fn isolate_n1(leader_before: Option<(String, u64)>) -> FaultRecord {
    FaultRecord {
        step: 0,
        kind: FaultKind::Partition,
        description: "isolate n1".into(),
        targets: vec!["n1".into()],
        grudge: Some(grudge::isolate_one("n1", &names(3))),
        all_planes: true,
        start_ns: 10,
        end_ns: Some(20),
        leader_before,
        achieved: None,
    }
}

#[test]
fn a_steered_leader_that_did_not_lead_fails_the_premise() {
    let text = "topology = \"mesh-3\"\nduration = \"30s\"\n[nodes]\nprefer_leader = \"n1\"\n[workload]\nclients = 1\n[[timeline]]\nat = \"5s\"\nfor = \"5s\"\nfault = \"partition\"\ngrudge = \"isolate\"\ntargets = \"n1\"\n";
    let scenario = crate::run::scenario::parse(text, std::path::Path::new("p.toml")).unwrap();
    assert!(premise_failures(&scenario, &[isolate_n1(Some(("n1".into(), 2)))], &[]).is_empty());
    let failures = premise_failures(&scenario, &[isolate_n1(Some(("n2".into(), 3)))], &[]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("n2 led (term 3)"), "{failures:?}");
    let failures = premise_failures(&scenario, &[isolate_n1(None)], &[]);
    assert!(failures[0].contains("no leader was known"), "{failures:?}");
    // The runner's one query timed out, but the events say n1 led: met;
    // a leader that had stepped down before the fault does not count.
    let led = |down: bool| {
        let mut events = vec![NodeEvent::new(
            "n1",
            2,
            2,
            2,
            checker::EventKind::BecameLeader,
        )];
        if down {
            let reason = checker::StepDownReason::QuorumLost;
            events.push(NodeEvent::new(
                "n1",
                5,
                5,
                2,
                checker::EventKind::SteppedDown { reason },
            ));
        }
        premise_failures(&scenario, &[isolate_n1(None)], &events)
    };
    assert!(led(false).is_empty(), "{:?}", led(false));
    assert!(led(true)[0].contains("no leader was known"));
    // Whatever the verdict, the expectation is then unknown, not met.
    let report = Report::from_results(vec![CheckResult::new("progress", Verdict::Valid, vec![])]);
    let valid = Expectation {
        verdict: ExpectedVerdict::Valid,
        broken: vec![],
        safe_twin: None,
    };
    let error = meets_expectation(&valid, &report, &failures).unwrap_err();
    assert!(error.starts_with("unknown:"), "{error}");
}

#[test]
fn a_role_target_without_a_leader_fails_the_premise() {
    let text = "topology = \"mesh-3\"\nduration = \"30s\"\n[workload]\nclients = 1\n[[timeline]]\nat = \"5s\"\nfor = \"5s\"\nfault = \"partition\"\ngrudge = \"isolate\"\ntargets = \"leader\"\n";
    let scenario = crate::run::scenario::parse(text, std::path::Path::new("p.toml")).unwrap();
    assert!(premise_failures(&scenario, &[isolate_n1(Some(("n1".into(), 1)))], &[]).is_empty());
    let failures = premise_failures(&scenario, &[isolate_n1(None)], &[]);
    assert!(
        failures[0].contains("aims at the leader's role"),
        "{failures:?}"
    );
}

#[test]
fn a_museum_run_whose_minority_only_hangs_does_not_meet_its_expectation() {
    use checker::{Op, OpFn, OpKind};
    let s = 1_000_000_000u64;
    let write = |process: u64, node: &str, at: u64, kind: OpKind| {
        vec![
            Op::new(process, OpKind::Invoke, OpFn::Write, "k0", at)
                .with_value(format!("v{at}"))
                .with_node(node),
            Op::new(process, kind, OpFn::Write, "k0", at + s / 2)
                .with_value(format!("v{at}"))
                .with_node(node),
        ]
    };
    // n1 is cut off from 10 s to 20 s: its client's writes hang (info),
    // none is acknowledged; the majority keeps writing.
    let mut ops = Vec::new();
    ops.extend(write(0, "n1", 15 * s, OpKind::Info));
    ops.extend(write(1, "n2", 15 * s, OpKind::Ok));
    let history = History::new(ops);
    let config = CheckConfig {
        partitions: vec![PartitionWindow {
            start_ns: 10 * s,
            end_ns: 20 * s,
            minority: vec!["n1".into()],
        }],
        minority_reject_bound_ns: Some(2 * s),
        ..CheckConfig::default()
    };
    let judgement = judge(&history, &[], &config, &[]);
    let report = &judgement.report;
    let verdict = |name: &str| report.result(name).unwrap().verdict;
    assert_eq!(
        verdict(checks::minority_never_acknowledges::NAME),
        Verdict::Valid
    );
    assert_eq!(verdict(checks::minority_fails_fast::NAME), Verdict::Invalid);
    let museum = Expectation {
        verdict: ExpectedVerdict::Invalid,
        broken: vec![checks::minority_never_acknowledges::NAME.into()],
        safe_twin: None,
    };
    let error = meets_expectation(&museum, report, &[]).unwrap_err();
    assert!(error.contains("not for the expected reason"), "{error}");
}

#[test]
fn museum_modes_take_no_leases() {
    let text = "topology = \"mesh-3\"\nduration = \"30s\"\n[nodes]\nmode = \"timeout-failover\"\n[workload]\nclients = 1\n";
    let scenario = crate::run::scenario::parse(text, std::path::Path::new("m.toml")).unwrap();
    let frame = RunFrame {
        workload_start_ns: 1,
        workload_end_ns: 2,
        healed_ns: 2,
        final_reads_ns: 3,
    };
    let timing = scenario.nodes.timing();
    let config = check_config(&scenario, &timing, &names(3), &[], &[], &frame);
    assert!(config.leaseless);
}

#[test]
fn fault_windows_become_checker_windows() {
    let text = "topology = \"mesh-3\"\nduration = \"30s\"\n[workload]\nclients = 1\n";
    let scenario = crate::run::scenario::parse(text, std::path::Path::new("w.toml")).unwrap();
    let timing = scenario.nodes.timing();
    let nodes = names(3);
    let s = 1_000_000_000u64;
    let fault = FaultRecord {
        step: 0,
        kind: FaultKind::Partition,
        description: "isolate n1".into(),
        targets: vec!["n1".into()],
        grudge: Some(grudge::isolate_one("n1", &nodes)),
        all_planes: true,
        start_ns: 10 * s,
        end_ns: Some(20 * s),
        leader_before: Some(("n1".into(), 1)),
        achieved: None,
    };
    let frame = RunFrame {
        workload_start_ns: 5 * s,
        workload_end_ns: 35 * s,
        healed_ns: 35 * s,
        final_reads_ns: 40 * s,
    };
    let homes = vec!["n1".to_string(), "n2".to_string()];
    let config = check_config(&scenario, &timing, &nodes, &homes, &[fault], &frame);
    let reach = config.client_reach.as_ref().unwrap();
    // Segments: [5,10) healthy, [10,20) partitioned, [20,40) healed.
    assert_eq!(reach.len(), 6);
    let during: Vec<&ClientReach> = reach.iter().filter(|r| r.start_ns == 10 * s).collect();
    assert_eq!(
        during[0].nodes,
        vec!["n1"],
        "n1's client is cut off with n1"
    );
    assert_eq!(during[1].nodes, vec!["n2", "n3"]);
    assert_eq!(config.partitions.len(), 1);
    assert_eq!(config.partitions[0].minority, vec!["n1"]);
    assert_eq!(
        (config.partitions[0].start_ns, config.partitions[0].end_ns),
        (10 * s, 20 * s)
    );
    assert_eq!(config.minority_reject_bound_ns, Some(1_100_000_000));
    assert_eq!(config.final_reads_from_ns, Some(40 * s));
    // The majority during the fault, the calm stretch before it and the
    // calm stretch from 2·ET_max after it ended.
    let windows: Vec<(u64, u64, usize)> = config
        .quorum_windows
        .iter()
        .map(|w| (w.start_ns, w.end_ns, w.nodes.len()))
        .collect();
    // The calm stretches name the whole cluster as the connected quorum.
    assert_eq!(
        windows,
        vec![(10 * s, 20 * s, 2), (5 * s, 10 * s, 3), (21 * s, 35 * s, 3)]
    );
    assert!(!config.leaseless);
    assert_eq!(config.logging_nodes, Some(nodes.clone()));
    assert_eq!(config.election_windows.len(), 2);
}
