//! From what happened during a run to the checker's input: fault windows on
//! the shared monotonic clock become partition, election and quorum windows;
//! the scenario's bounds become the checker's bounds. Pure.
//! Invariant ids (I6, I11, I12) refer to crates/checker/README.md.
use checker::{
    CheckConfig, CheckInput, CheckResult, ClientReach, ElectionWindow, History, NodeEvent,
    PartitionWindow, QuorumWindow, Report, Verdict, check_all, checks,
};
use netlab::grudge::Grudge;
use serde::{Deserialize, Serialize};

use super::scenario::{Expectation, ExpectedVerdict, FaultKind, Mode, Scenario, Timing};

/// Every check the checker runs, by name (for `expect.broken` and `skip`).
pub const CHECK_NAMES: [&str; 11] = [
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
    checks::rejoin_without_election::NAME,
];

/// One timeline step as it was actually executed.
#[serde_with::skip_serializing_none]
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
    pub grudge: Option<Grudge>,
    /// Whether the partition cuts every plane (only then does it isolate).
    #[serde(default)]
    pub all_planes: bool,
    /// When the fault was in force (monotonic ns).
    pub start_ns: u64,
    /// When the fault was removed (`None`: it was never applied or the run
    /// stopped before its end; the final heal then closes it).
    #[serialize_always]
    pub end_ns: Option<u64>,
    /// The leader and its term just before the fault fired.
    pub leader_before: Option<(String, u64)>,
    /// Network faults: what each directed link was asked to do and what the
    /// live probes measured (see `run::achieved`).
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

/// Whether `a` and `b` exchange packets in both directions under `grudge`.
fn linked<'g>(grudge: &'g Grudge) -> impl Fn(&str, &str) -> bool + 'g {
    |a, b| !grudge.drops(a, b) && !grudge.drops(b, a)
}

/// Nodes that cannot reach a quorum directly (both directions) under the
/// grudge: they must not acknowledge writes (I6).
pub fn minority_of(nodes: &[String], grudge: &Grudge) -> Vec<String> {
    checker::windows::minority(nodes, nodes.len(), linked(grudge))
}

/// The largest set of nodes that are pairwise connected in both directions,
/// if it is a quorum (I12).
pub fn connected_quorum(nodes: &[String], grudge: &Grudge) -> Option<Vec<String>> {
    checker::windows::connected_quorum(nodes, nodes.len(), linked(grudge))
}

/// The nodes a write may go through to count as progress (I12) while a
/// fully connected quorum exists: every node not cut off from a quorum,
/// as the simulator counts them. A partial partition leaves several
/// overlapping quorums ({A,C} and {B,C} when A-B is cut) and only the one
/// holding the leader can progress, so judging the first largest clique
/// alone failed a correct run whenever the leader sat in the other one.
pub fn progress_nodes(nodes: &[String], grudge: &Grudge) -> Option<Vec<String>> {
    connected_quorum(nodes, grudge)?;
    let cut_off = minority_of(nodes, grudge);
    Some(
        nodes
            .iter()
            .filter(|node| !cut_off.contains(node))
            .cloned()
            .collect(),
    )
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
    let bounds = checker::windows::ElectionTiming {
        heartbeat_ns: timing.heartbeat.as_nanos(),
        election_timeout_max_ns: timing.election_timeout_max.as_nanos(),
    };
    config.progress_grace_ns = scenario
        .checks
        .progress_within
        .map_or(bounds.progress_grace_ns(), |bound| bound.as_nanos());
    config.rejoin_windows = rejoin::rejoin_windows(
        nodes,
        faults,
        frame,
        config.progress_grace_ns,
        2 * timing.minority_reject_bound().as_nanos(),
    );

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
            if let Some(quorum_nodes) = progress_nodes(nodes, grudge) {
                config.quorum_windows.push(QuorumWindow {
                    start_ns: fault.start_ns,
                    end_ns: end_of(fault),
                    nodes: quorum_nodes,
                });
            }
        }
        if fault.kind == FaultKind::Forge {
            // Forged frames cut nothing: the whole cluster stays connected,
            // so writes must go on while the rogue sends (I12).
            config.quorum_windows.push(QuorumWindow {
                start_ns: fault.start_ns,
                end_ns: end_of(fault),
                nodes: nodes.to_vec(),
            });
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
    let settled = last_fault_end + bounds.settle_ns();
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
/// step aimed at a role around the leader found a leader to aim at (the
/// leader when the fault fired: as the runner saw it, else from `events`). Returns
/// one line per premise that did not hold; an expectation judged on a run
/// whose premise failed is unknown, not met.
pub fn premise_failures(
    scenario: &Scenario,
    faults: &[FaultRecord],
    events: &[NodeEvent],
) -> Vec<String> {
    use super::scenario::{Role, Targets};
    let mut failures = Vec::new();
    let first = faults.iter().min_by_key(|fault| fault.start_ns);
    if let (Some(preferred), Some(first)) = (&scenario.nodes.prefer_leader, first) {
        let preferred = preferred.get_ref();
        // The runner asks once as the fault fires, and on a loaded host that
        // one answer can time out; the leadership events (native, or
        // observed every 20 ms) then tell who led.
        let leader_before = first.leader_before.clone().or_else(|| {
            checks::rejoin_without_election::leader_at(events, first.start_ns)
                .map(|(node, term)| (node.to_string(), term))
        });
        match &leader_before {
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

mod rejoin;

#[cfg(test)]
mod tests;
