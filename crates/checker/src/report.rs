//! Runs every check and merges the verdicts (jepsen `compose` +
//! `check-safe`: a check that panics becomes `Unknown`, not a crash).
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::checks;
use crate::config::CheckConfig;
use crate::event::NodeEvent;
use crate::history::History;
use crate::operation::{Operation, pair_operations};
use crate::verdict::{CheckResult, Verdict};

/// Everything the checks look at.
#[derive(Debug, Clone, Copy)]
pub struct CheckInput<'a> {
    /// The clients' history (history.jsonl).
    pub history: &'a History,
    /// Every node's events, merged (events.jsonl).
    pub events: &'a [NodeEvent],
    /// Fault windows, bounds and budgets from the scenario and timeline.
    pub config: &'a CheckConfig,
}

/// All results plus the merged verdict; this is what results.json holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The worst verdict of `results`.
    pub verdict: Verdict,
    /// One result per check, in [`check_all`]'s order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Merges the results' verdicts into the report's. Not-applicable
    /// results do not count; if nothing was judged at all the report is
    /// `unknown`.
    pub fn from_results(results: Vec<CheckResult>) -> Self {
        let verdict = match results
            .iter()
            .fold(Verdict::NotApplicable, |acc, r| acc.merge(r.verdict))
        {
            Verdict::NotApplicable => Verdict::Unknown,
            judged => judged,
        };
        Report { verdict, results }
    }

    /// The result of the check called `name`, if it ran.
    pub fn result(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// Names of the checks that could not decide.
    pub fn unknown_checks(&self) -> Vec<&str> {
        self.names_of(CheckResult::is_unknown)
    }

    /// Names of the checks that found a violation.
    pub fn invalid_checks(&self) -> Vec<&str> {
        self.names_of(CheckResult::is_invalid)
    }

    fn names_of(&self, which: fn(&CheckResult) -> bool) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| which(r))
            .map(|r| r.name.as_str())
            .collect()
    }

    /// The report as results.json stores it.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// Runs `check`, turning a panic into an `Unknown` result.
fn guarded(name: &str, check: impl FnOnce() -> CheckResult) -> CheckResult {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            CheckResult::new(
                name,
                Verdict::Unknown,
                vec![format!("the check crashed: {message}")],
            )
        }
    }
}

/// Runs every check on the input.
pub fn check_all(input: &CheckInput<'_>) -> Report {
    let CheckInput {
        history,
        events,
        config,
    } = *input;
    let paired: Result<Vec<Operation>, String> =
        pair_operations(history).map_err(|e| e.to_string());
    let on_ops = |name: &str, check: &dyn Fn(&[Operation]) -> CheckResult| match &paired {
        Ok(ops) => guarded(name, || check(ops)),
        Err(error) => CheckResult::malformed_history(name, error),
    };
    let results = vec![
        guarded(checks::election_safety::NAME, || {
            checks::election_safety::check(events)
        }),
        guarded(checks::lease_exclusivity::NAME, || {
            if config.leaseless {
                checks::lease_exclusivity::not_applicable()
            } else {
                checks::lease_exclusivity::check(events)
            }
        }),
        on_ops(checks::no_lost_writes::NAME, &|ops| {
            checks::no_lost_writes::check_operations(ops, config.final_reads_from_ns)
        }),
        on_ops(checks::linearizability::NAME, &|ops| {
            checks::linearizability::check_operations(ops, &config.linearizability)
        }),
        guarded(checks::log_agreement::NAME, || {
            checks::log_agreement::check(events, history)
        }),
        guarded(checks::convergence::NAME, || {
            checks::convergence::check(events, config.expected_live_nodes.as_deref())
        }),
        on_ops(checks::minority_never_acknowledges::NAME, &|ops| {
            checks::minority_never_acknowledges::check_operations(
                ops,
                &config.partitions,
                config.client_reach.as_deref(),
            )
        }),
        on_ops(checks::minority_fails_fast::NAME, &|ops| {
            checks::minority_fails_fast::check_operations(
                ops,
                &config.partitions,
                config.minority_reject_bound_ns,
                config.client_reach.as_deref(),
            )
        }),
        guarded(checks::bounded_elections::NAME, || {
            checks::bounded_elections::check(events, &config.election_windows)
        }),
        guarded(checks::rejoin_without_election::NAME, || {
            checks::rejoin_without_election::check(events, &config.rejoin_windows)
        }),
        on_ops(checks::progress::NAME, &|ops| {
            checks::progress::check_operations(
                ops,
                &config.quorum_windows,
                config.progress_grace_ns,
            )
        }),
    ];
    Report::from_results(missing_logs_leave_unknown(results, events, config))
}

/// Checks that read the nodes' event logs: a node without a log leaves them
/// without part of their evidence.
const EVENT_LOG_CHECKS: [&str; 5] = [
    checks::election_safety::NAME,
    checks::lease_exclusivity::NAME,
    checks::log_agreement::NAME,
    checks::bounded_elections::NAME,
    checks::rejoin_without_election::NAME,
];

/// A `valid` event-log check becomes `unknown` when a node of
/// `config.logging_nodes` logged nothing (its `events.jsonl` missing or
/// empty): "no violation seen" is not evidence when a log is missing.
fn missing_logs_leave_unknown(
    mut results: Vec<CheckResult>,
    events: &[NodeEvent],
    config: &CheckConfig,
) -> Vec<CheckResult> {
    let Some(nodes) = &config.logging_nodes else {
        return results;
    };
    let silent: Vec<&str> = nodes
        .iter()
        .map(String::as_str)
        .filter(|node| {
            !events.iter().any(|event| {
                event.node == *node && !matches!(event.kind, crate::EventKind::FinalState { .. })
            })
        })
        .collect();
    if silent.is_empty() {
        return results;
    }
    for result in results
        .iter_mut()
        .filter(|r| r.is_valid() && EVENT_LOG_CHECKS.contains(&r.name.as_str()))
    {
        result.verdict = Verdict::Unknown;
        result.details.insert(
            0,
            format!(
                "no event log from {} (events.jsonl missing or empty): judged without its evidence",
                silent.join(", ")
            ),
        );
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crashing_check_becomes_unknown() {
        let result = guarded("boom", || panic!("index out of range"));
        assert_eq!(result.verdict, Verdict::Unknown);
        assert!(
            result.details[0].contains("index out of range"),
            "{result:?}"
        );
        let ok = guarded("fine", || CheckResult::new("fine", Verdict::Valid, vec![]));
        assert_eq!(ok.verdict, Verdict::Valid);
    }
}
