//! From what happened during a run to the checker's input: fault windows on
//! the shared monotonic clock become partition, election and quorum windows;
//! the scenario's bounds become the checker's bounds. Pure.
//! Invariant ids (I6, I11, I12) refer to crates/checker/README.md.
use std::collections::BTreeSet;

use checker::{
    CheckConfig, CheckInput, CheckResult, ClientReach, ElectionWindow, History, NodeEvent,
    PartitionWindow, QuorumWindow, Report, Verdict, check_all, checks,
};
use netlab::grudge::Grudge;
use serde::{Deserialize, Serialize};

use super::scenario::{Expectation, ExpectedVerdict, FaultKind, Mode, Scenario, Timing};

/// Every check the checker runs, by name (for `expect.broken` and `skip`).
pub const CHECK_NAMES: [&str; 10] = [
    checks::election_safety::NAME,
    checks::lease_exclusivity::NAME,
    checks::no_lost_writes::NAME,
    checks::linearizability::NAME,
    checks::log_agreement::NAME,
    checks::convergence::NAME,
    checks::minority_never_acknowledges::NAME,
    checks::minority_fails_fast::NAME,
    checks::bounded_elections::NAME,
    checks::progress::NAME,
];

/// One timeline step as it was actually executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Position in the scenario's timeline.
    pub step: usize,
    /// What kind of fault the step applied.
    pub kind: FaultKind,
    /// The step as the report shows it, with resolved targets.
    pub description: String,
    /// Resolved targets (concrete node names).
    pub targets: Vec<String>,
    /// For partitions: node → nodes it drops packets from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grudge: Option<Grudge>,
    /// Whether the partition cuts every plane (only then does it isolate).
    #[serde(default)]
    pub all_planes: bool,
    /// When the fault was in force (monotonic ns).
    pub start_ns: u64,
    /// When the fault was removed (`None`: it was never applied or the run
    /// stopped before its end; the final heal then closes it).
    pub end_ns: Option<u64>,
    /// The leader and its term just before the fault fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_before: Option<(String, u64)>,
    /// Network faults: what each directed link was asked to do and what the
    /// live probes measured (see `run::achieved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved: Option<super::achieved::FaultAchieved>,
}

/// Timestamps that frame the run (reference clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFrame {
    /// When the clients started (monotonic ns).
    pub workload_start_ns: u64,
    /// When the clients stopped (monotonic ns).
    pub workload_end_ns: u64,
    /// When the last fault was healed.
    pub healed_ns: u64,
    /// Final reads start here.
    pub final_reads_ns: u64,
}

fn quorum(size: usize) -> usize {
    size / 2 + 1
}

/// Nodes connected to `node` in both directions, itself included.
fn neighbourhood(node: &str, nodes: &[String], grudge: &Grudge) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|other| {
            *other == node
                || (!grudge.drops(node, other.as_str()) && !grudge.drops(other.as_str(), node))
        })
        .cloned()
        .collect()
}

/// Nodes that cannot reach a quorum directly (both directions) under the
/// grudge: they must not acknowledge writes (I6).
pub fn minority_of(nodes: &[String], grudge: &Grudge) -> Vec<String> {
    nodes
        .iter()
        .filter(|node| neighbourhood(node, nodes, grudge).len() < quorum(nodes.len()))
        .cloned()
        .collect()
}

/// The largest set of nodes that are pairwise connected in both directions,
/// if it is a quorum (I12). Brute force: clusters have at most 9 nodes.
pub fn connected_quorum(nodes: &[String], grudge: &Grudge) -> Option<Vec<String>> {
    let size = nodes.len();
    if size > 16 {
        return None;
    }
    let mut best: Vec<String> = Vec::new();
    for mask in 1u32..(1 << size) {
        if (mask.count_ones() as usize) <= best.len() {
            continue;
        }
        let members: Vec<&String> = (0..size)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &nodes[i])
            .collect();
        let clique = members.iter().all(|a| {
            members
                .iter()
                .all(|b| a == b || (!grudge.drops(*a, *b) && !grudge.drops(*b, *a)))
        });
        if clique {
            best = members.into_iter().cloned().collect();
        }
    }
    (best.len() >= quorum(size)).then_some(best)
}

/// Which nodes each client (process `i` lives in the namespace of
/// `homes[i]`) could reach, piecewise over the run: a client reaches a node
/// when neither drops the other's packets under the partitions in force.
pub fn client_reach(
    homes: &[String],
    nodes: &[String],
    faults: &[FaultRecord],
    frame: &RunFrame,
) -> Vec<ClientReach> {
    let partitions: Vec<(u64, u64, &Grudge)> = faults
        .iter()
        .filter(|f| f.kind == FaultKind::Partition && f.all_planes)
        .filter_map(|f| {
            let grudge = f.grudge.as_ref()?;
            Some((f.start_ns, f.end_ns.unwrap_or(frame.healed_ns), grudge))
        })
        .collect();
    let mut cuts: Vec<u64> = vec![
        frame.workload_start_ns,
        frame.final_reads_ns.max(frame.healed_ns),
    ];
    for (start, end, _) in &partitions {
        cuts.push(*start);
        cuts.push(*end);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut reach = Vec::new();
    for segment in cuts.windows(2) {
        let (start, end) = (segment[0], segment[1]);
        let active: Vec<&Grudge> = partitions
            .iter()
            .filter(|(s, e, _)| *s <= start && start < *e)
            .map(|(_, _, grudge)| *grudge)
            .collect();
        for (process, home) in homes.iter().enumerate() {
            let reachable = nodes
                .iter()
                .filter(|node| {
                    *node == home
                        || active
                            .iter()
                            .all(|g| !g.drops(home, *node) && !g.drops(*node, home))
                })
                .cloned()
                .collect();
            reach.push(ClientReach {
                process: process as u64,
                start_ns: start,
                end_ns: end,
                nodes: reachable,
            });
        }
    }
    reach
}

/// Builds the checker's configuration from the scenario and the executed
/// timeline. `homes[i]` is the node whose namespace client `i` runs in.
pub fn check_config(
    scenario: &Scenario,
    timing: &Timing,
    nodes: &[String],
    homes: &[String],
    faults: &[FaultRecord],
    frame: &RunFrame,
) -> CheckConfig {
    let mut config = CheckConfig {
        minority_reject_bound_ns: Some(
            scenario
                .checks
                .minority_reject_within
                .unwrap_or_else(|| timing.minority_reject_bound())
                .as_nanos(),
        ),
        final_reads_from_ns: Some(frame.final_reads_ns),
        expected_live_nodes: Some(nodes.to_vec()),
        client_reach: Some(client_reach(homes, nodes, faults, frame)),
        // Only the safe mode takes leases; in a run without a safe node
        // lease exclusivity cannot apply.
        leaseless: !runs_safe_mode(scenario, nodes),
        logging_nodes: Some(nodes.to_vec()),
        ..CheckConfig::default()
    };
    let et_max = timing.election_timeout_max.as_nanos();
    let live_bound = timing.minority_reject_bound().as_nanos() + 2 * et_max + 200_000_000;
    config.progress_grace_ns = scenario
        .checks
        .progress_within
        .map_or(2 * et_max + live_bound, |bound| bound.as_nanos());

    let end_of = |fault: &FaultRecord| fault.end_ns.unwrap_or(frame.healed_ns);
    for fault in faults {
        if let (FaultKind::Partition, Some(grudge), true) =
            (fault.kind, &fault.grudge, fault.all_planes)
        {
            let minority = minority_of(nodes, grudge);
            if !minority.is_empty() {
                config.partitions.push(PartitionWindow {
                    start_ns: fault.start_ns,
                    end_ns: end_of(fault),
                    minority,
                });
            }
            if let Some(quorum_nodes) = connected_quorum(nodes, grudge) {
                config.quorum_windows.push(QuorumWindow {
                    start_ns: fault.start_ns,
                    end_ns: end_of(fault),
                    nodes: quorum_nodes,
                });
            }
        }
        if let Some(max) = scenario.checks.max_elections_per_minute {
            config.election_windows.push(ElectionWindow {
                start_ns: fault.start_ns,
                end_ns: end_of(fault),
                max_per_minute: max.ceil() as u64,
            });
        }
    }

    // Fault-free stretches: before the first fault and after the last heal
    // has settled, every node is connected (the quorum is the whole
    // cluster) and at most one election may happen (I11 b, I12).
    let first_fault = faults.iter().map(|f| f.start_ns).min();
    let calm_until = first_fault.unwrap_or(frame.workload_end_ns);
    if calm_until > frame.workload_start_ns {
        config.quorum_windows.push(QuorumWindow {
            start_ns: frame.workload_start_ns,
            end_ns: calm_until,
            nodes: nodes.to_vec(),
        });
        config.election_windows.push(ElectionWindow {
            start_ns: frame.workload_start_ns,
            end_ns: calm_until,
            max_per_minute: 1,
        });
    }
    // After the last fault has ended (not the final heal at the end of the
    // workload) and two election timeouts have passed, the cluster must be
    // calm and writable again.
    let last_fault_end = faults.iter().map(end_of).max().unwrap_or(frame.healed_ns);
    let settled = last_fault_end + 2 * et_max;
    if !faults.is_empty() && frame.workload_end_ns > settled {
        config.quorum_windows.push(QuorumWindow {
            start_ns: settled,
            end_ns: frame.workload_end_ns,
            nodes: nodes.to_vec(),
        });
        config.election_windows.push(ElectionWindow {
            start_ns: settled,
            end_ns: frame.workload_end_ns,
            max_per_minute: 1,
        });
    }
    config
}

/// Whether any node runs the safe mode (the only one that takes leases).
fn runs_safe_mode(scenario: &Scenario, nodes: &[String]) -> bool {
    nodes.iter().any(|node| {
        scenario
            .nodes
            .overrides
            .iter()
            .find(|(name, _)| name.get_ref() == node)
            .and_then(|(_, settings)| settings.mode)
            .unwrap_or(scenario.nodes.mode)
            == Mode::Safe
    })
}

/// Whether the story the scenario tells actually happened: a steered
/// leader (`prefer_leader`) still led when the first fault fired, and every
/// step aimed at a role around the leader found a leader to aim at. Returns
/// one line per premise that did not hold; an expectation judged on a run
/// whose premise failed is unknown, not met.
pub fn premise_failures(scenario: &Scenario, faults: &[FaultRecord]) -> Vec<String> {
    use super::scenario::{Role, Targets};
    let mut failures = Vec::new();
    let first = faults.iter().min_by_key(|fault| fault.start_ns);
    if let (Some(preferred), Some(first)) = (&scenario.nodes.prefer_leader, first) {
        let preferred = preferred.get_ref();
        match &first.leader_before {
            Some((leader, _)) if leader == preferred => {}
            Some((leader, term)) => failures.push(format!(
                "prefer_leader = {preferred:?}, but {leader} led (term {term}) when step #{} ({}) fired",
                first.step + 1,
                first.description
            )),
            None => failures.push(format!(
                "prefer_leader = {preferred:?}, but no leader was known when step #{} ({}) fired",
                first.step + 1,
                first.description
            )),
        }
    }
    for fault in faults {
        let Some(step) = scenario.timeline.get(fault.step) else {
            continue;
        };
        let Some(targets) = step.get_ref().targets() else {
            continue;
        };
        let aims_at_leader = matches!(
            targets.get_ref(),
            Targets::Role(role) if *role != Role::All
        );
        if aims_at_leader && fault.leader_before.is_none() {
            failures.push(format!(
                "step #{} ({}) aims at the leader's role, but no leader was known when it fired",
                fault.step + 1,
                fault.description
            ));
        }
    }
    failures
}

/// The checker's report with the scenario's `skip` list applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// Every check's result and the overall verdict.
    pub report: Report,
    /// Checks left out on the scenario's request.
    pub skipped_checks: Vec<String>,
}

/// Runs every check, then drops the skipped ones and re-merges the verdict.
pub fn judge(
    history: &History,
    events: &[NodeEvent],
    config: &CheckConfig,
    skip: &[String],
) -> Judgement {
    let report = check_all(&CheckInput {
        history,
        events,
        config,
    });
    let (skipped, kept): (Vec<CheckResult>, Vec<CheckResult>) = report
        .results
        .into_iter()
        .partition(|result| skip.contains(&result.name));
    Judgement {
        report: Report::from_results(kept),
        skipped_checks: skipped.into_iter().map(|result| result.name).collect(),
    }
}

/// Whether the verdict matches the scenario's expectation; `Err` says why
/// not. A run whose premise failed (see [`premise_failures`]) meets no
/// expectation: its verdict is about another story.
pub fn meets_expectation(
    expect: &Expectation,
    report: &Report,
    premise_failures: &[String],
) -> Result<(), String> {
    if !premise_failures.is_empty() {
        return Err(format!(
            "unknown: the scenario's premise did not hold: {}",
            premise_failures.join("; ")
        ));
    }
    let unknown = || {
        let names = report.unknown_checks();
        if names.is_empty() {
            String::new()
        } else {
            format!("; undecided: {}", names.join(", "))
        }
    };
    match expect.verdict {
        ExpectedVerdict::Valid if report.verdict == Verdict::Valid => Ok(()),
        ExpectedVerdict::Valid => {
            let failed = report.invalid_checks();
            let failed = if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(", ")
            };
            Err(format!(
                "expected valid, got {} (failed: {failed}{})",
                report.verdict,
                unknown()
            ))
        }
        ExpectedVerdict::Invalid => {
            let failed = report.invalid_checks();
            let missing: Vec<&String> = expect
                .broken
                .iter()
                .filter(|name| !failed.contains(&name.as_str()))
                .collect();
            if report.verdict != Verdict::Invalid {
                Err(format!(
                    "expected invalid, got {}{}",
                    report.verdict,
                    unknown()
                ))
            } else if expect.broken.is_empty() {
                Err("expected invalid, but the scenario names no check it expects broken".into())
            } else if !missing.is_empty() {
                Err(format!(
                    "invalid, but not for the expected reason: {missing:?} did not fail (failed: {})",
                    failed.join(", ")
                ))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let error =
            meets_expectation(&expect(&["election_safety"]), &report, &premise).unwrap_err();
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
        assert!(premise_failures(&scenario, &[isolate_n1(Some(("n1".into(), 2)))]).is_empty());
        let failures = premise_failures(&scenario, &[isolate_n1(Some(("n2".into(), 3)))]);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("n2 led (term 3)"), "{failures:?}");
        let failures = premise_failures(&scenario, &[isolate_n1(None)]);
        assert!(failures[0].contains("no leader was known"), "{failures:?}");
        // Whatever the verdict, the expectation is then unknown, not met.
        let report =
            Report::from_results(vec![CheckResult::new("progress", Verdict::Valid, vec![])]);
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
        assert!(premise_failures(&scenario, &[isolate_n1(Some(("n1".into(), 1)))]).is_empty());
        let failures = premise_failures(&scenario, &[isolate_n1(None)]);
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
}
