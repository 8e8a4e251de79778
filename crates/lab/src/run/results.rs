//! `results.json` and the terminal summary. Pure (formatting only).
use std::collections::BTreeMap;

use checker::{CheckConfig, CheckResult, Op, OpKind};
use serde::{Deserialize, Serialize};

use super::figures::{Failover, show_ms};
use super::judge::{FaultRecord, RunFrame};
use super::runner::FINAL_READ_PROCESS;
use super::scenario::{Expectation, Timing};

/// Operation counts (completions) overall and per function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Operations the workload started.
    pub invoked: u64,
    /// Completions that took effect.
    pub ok: u64,
    /// Completions that certainly did not take effect.
    pub fail: u64,
    /// Completions with an unknown outcome (timeouts, 504).
    pub info: u64,
    /// "write" → {"ok": n, "fail": n, "info": n}
    pub by_fn: BTreeMap<String, BTreeMap<String, u64>>,
    /// The runner's final reads that succeeded.
    pub final_reads_ok: u64,
}

/// Latency of completed client operations, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Slowest operation.
    pub max_ms: f64,
}

/// Counts the workload's completions (the runner's final reads are counted
/// apart).
pub fn count(history: &[Op]) -> Counts {
    let mut counts = Counts::default();
    for op in history {
        if op.process >= FINAL_READ_PROCESS {
            if op.kind == OpKind::Ok {
                counts.final_reads_ok += 1;
            }
            continue;
        }
        let kind = match op.kind {
            OpKind::Invoke => {
                counts.invoked += 1;
                continue;
            }
            OpKind::Ok => {
                counts.ok += 1;
                "ok"
            }
            OpKind::Fail => {
                counts.fail += 1;
                "fail"
            }
            OpKind::Info => {
                counts.info += 1;
                "info"
            }
        };
        *counts
            .by_fn
            .entry(op.f.name().to_string())
            .or_default()
            .entry(kind.to_string())
            .or_default() += 1;
    }
    counts
}

/// (completion time, latency ns, kind) of every workload operation.
pub fn latencies(history: &[Op]) -> Vec<(u64, u64, OpKind)> {
    let mut open: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for op in history {
        if op.process >= FINAL_READ_PROCESS {
            continue;
        }
        match op.kind {
            OpKind::Invoke => {
                open.insert(op.process, op.time_ns);
            }
            kind => {
                if let Some(start) = open.remove(&op.process) {
                    out.push((op.time_ns, op.time_ns.saturating_sub(start), kind));
                }
            }
        }
    }
    out
}

/// p50, p99 and max latency of the workload's acknowledged operations.
pub fn latency_of_ok(history: &[Op]) -> Latency {
    let mut values: Vec<u64> = latencies(history)
        .into_iter()
        .filter(|(_, _, kind)| *kind == OpKind::Ok)
        .map(|(_, latency, _)| latency)
        .collect();
    if values.is_empty() {
        return Latency::default();
    }
    values.sort_unstable();
    // The workspace's one percentile definition (nearest rank), as in the
    // bench figures.
    let pick = |q: f64| ::figures::ms(::figures::percentile(&values, q).unwrap_or(0));
    Latency {
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
    }
}

/// Everything a run concluded; written to `results.json`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// The seed the run used.
    pub seed: u64,
    /// splitnode's consensus mode in this run.
    pub mode: String,
    /// Topology name.
    pub topology: String,
    /// Node names.
    pub nodes: Vec<String>,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// valid | invalid | unknown | skipped
    pub verdict: String,
    /// Process exit code of `splitlab run`.
    pub exit_code: i32,
    /// Why the run was skipped (a fault this machine cannot apply).
    pub skipped_reason: Option<String>,
    /// What broke, when the run did not finish.
    pub error: Option<String>,
    /// Every check's verdict.
    pub checks: Vec<CheckResult>,
    /// Checks the scenario turned off.
    #[serde(default)]
    pub skipped_checks: Vec<String>,
    /// Where the scenario's story did not happen (a steered leader that was
    /// not leading when the fault fired, ...): the expectation is then
    /// unknown, not met.
    #[serde(default)]
    pub premise_failures: Vec<String>,
    /// Client threads that panicked or stopped on an error: the run is then
    /// unknown at best (its history is incomplete).
    #[serde(default)]
    pub client_failures: Vec<String>,
    /// What the scenario expects the verdict to be.
    pub expect: Option<Expectation>,
    /// `None` when the scenario states no expectation.
    pub expectation_met: Option<bool>,
    /// Why the expectation was or was not met.
    pub expectation_detail: Option<String>,
    /// Operation counts.
    pub counts: Counts,
    /// Latency of acknowledged operations.
    pub latency: Latency,
    /// The node timing the run used.
    pub timing: Timing,
    /// Every fault applied, with its window.
    pub faults: Vec<FaultRecord>,
    /// Failover figures per fault.
    pub failover: Vec<Failover>,
    /// Phase times of the run (workload, heal, final reads).
    #[serialize_always]
    pub frame: Option<RunFrame>,
    /// The checker configuration used.
    pub check_config: CheckConfig,
    /// Lab bring-up time.
    pub lab_up_ms: f64,
    /// Lab teardown time.
    pub lab_down_ms: f64,
    /// One reason per network fault the live probes found not achieved
    /// (the verdict is then unknown).
    #[serde(default)]
    pub unachieved: Vec<String>,
    /// What the live probes cost.
    pub probe_cost: Option<super::achieved::ProbeCost>,
    /// The system under test (`lab/systems/<name>.toml`).
    #[serde(default = "default_system")]
    pub system: String,
    /// Checks the system cannot be judged on (needs internals it does not
    /// expose), with why: reported `not_applicable` by name.
    #[serde(default)]
    pub not_applicable: std::collections::BTreeMap<String, String>,
    /// Old leaders that still claimed leadership after their successor was
    /// elected (from native or observed leadership events).
    #[serde(default)]
    pub leader_overlaps: Vec<super::observer_leadership::LeaderOverlap>,
}

fn default_system() -> String {
    "splitnode".into()
}

/// What a run is, before anything ran: the scenario on a topology's nodes
/// with a seed, a start time and a system.
pub struct RunIdentity<'a> {
    /// The scenario as parsed.
    pub scenario: &'a super::scenario::Scenario,
    /// The seed the run uses.
    pub seed: u64,
    /// Topology name.
    pub topology: String,
    /// Node names.
    pub nodes: Vec<String>,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// The system under test and the checks it cannot be judged on.
    pub system: String,
    /// See [`Results::not_applicable`].
    pub not_applicable: std::collections::BTreeMap<String, String>,
}

impl Results {
    /// A run that has not been judged: verdict `unknown`, exit code failed,
    /// nothing counted, measured or applied yet.
    pub fn unjudged(run: RunIdentity<'_>) -> Results {
        let scenario = run.scenario;
        Results {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            seed: run.seed,
            mode: scenario.nodes.mode.name().into(),
            topology: run.topology,
            nodes: run.nodes,
            started_at: run.started_at,
            verdict: "unknown".into(),
            exit_code: crate::exit::ExitStatus::Failed.code(),
            skipped_reason: None,
            error: None,
            checks: Vec::new(),
            skipped_checks: scenario.skipped_checks(),
            expect: scenario.expectation().cloned(),
            expectation_met: None,
            expectation_detail: None,
            premise_failures: Vec::new(),
            client_failures: Vec::new(),
            counts: Counts::default(),
            latency: Latency::default(),
            timing: scenario.nodes.timing(),
            faults: Vec::new(),
            failover: Vec::new(),
            frame: None,
            check_config: CheckConfig::default(),
            lab_up_ms: 0.0,
            lab_down_ms: 0.0,
            unachieved: Vec::new(),
            probe_cost: None,
            system: run.system,
            not_applicable: run.not_applicable,
            leader_overlaps: Vec::new(),
        }
    }
}

/// The terminal summary.
pub fn summary(results: &Results, run_dir: &str) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        &mut out,
        format!(
            "\n== {} ({} mode, seed {}) on {} [{}]",
            results.scenario,
            results.mode,
            results.seed,
            results.topology,
            results.nodes.join(", ")
        ),
    );
    let c = &results.counts;
    line(
        &mut out,
        format!(
            "operations: {} invoked: {} ok, {} fail, {} info (timeouts/unknown); {} final reads ok",
            c.invoked, c.ok, c.fail, c.info, c.final_reads_ok
        ),
    );
    for (f, kinds) in &c.by_fn {
        let get = |k: &str| kinds.get(k).copied().unwrap_or(0);
        line(
            &mut out,
            format!(
                "  {f:<6} ok {:>6}  fail {:>6}  info {:>6}",
                get("ok"),
                get("fail"),
                get("info")
            ),
        );
    }
    line(
        &mut out,
        format!(
            "latency (ok): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            results.latency.p50_ms, results.latency.p99_ms, results.latency.max_ms
        ),
    );
    if !results.failover.is_empty() {
        line(
            &mut out,
            "failover, per fault (ms after the fault started):".into(),
        );
        for f in &results.failover {
            line(&mut out, format!("  #{} {}", f.step + 1, f.description));
            line(
                &mut out,
                format!(
                    "     leader before {}  detection {}{}  new leader {}{}  first ack'd write {}  client unavailability {}  old leader stepped down {}  lease ended {}",
                    f.leader_before
                        .as_ref()
                        .map_or("none".to_string(), |l| format!(
                            "{l} (t{})",
                            f.term_before.unwrap_or(0)
                        )),
                    show_ms(f.detection_ms),
                    f.detected_by
                        .as_ref()
                        .map_or(String::new(), |by| format!(" ({by})")),
                    show_ms(f.new_leader_ms),
                    f.new_leader.as_ref().map_or(String::new(), |l| format!(
                        " ({l} t{})",
                        f.new_term.unwrap_or(0)
                    )),
                    show_ms(f.first_ack_write_ms),
                    f.unavailability(),
                    show_ms(f.old_leader_stepped_down_ms),
                    show_ms(f.old_leader_lease_ended_ms),
                ),
            );
        }
    }
    let achieved = super::achieved::console_lines(&results.faults);
    if !achieved.is_empty() {
        line(&mut out, "faults, achieved vs asked (live probes):".into());
        for text in achieved {
            line(&mut out, text);
        }
    }
    if let Some(cost) = &results.probe_cost {
        line(
            &mut out,
            format!(
                "live probes: {} processes, {:.2} s CPU over {:.0} s ({:.1} % of one core)",
                cost.processes,
                cost.cpu_s,
                cost.wall_s,
                cost.cpu_pct_of_one_core()
            ),
        );
    }
    line(&mut out, "checks:".into());
    for check in &results.checks {
        if check.is_not_applicable() {
            // One line: the reason it cannot apply.
            let reason = check.details.first().map_or("", String::as_str);
            line(
                &mut out,
                format!("  {:<28} not applicable: {reason}", check.name),
            );
            continue;
        }
        line(&mut out, format!("  {:<28} {}", check.name, check.verdict));
        if !check.is_valid() {
            for detail in check.details.iter().take(4) {
                line(&mut out, format!("      {detail}"));
            }
        }
    }
    for skipped in &results.skipped_checks {
        line(&mut out, format!("  {skipped:<28} skipped by the scenario"));
    }
    for failure in &results.premise_failures {
        line(&mut out, format!("PREMISE NOT MET: {failure}"));
    }
    for failure in &results.client_failures {
        line(&mut out, format!("CLIENT FAILED: {failure}"));
    }
    for failure in &results.unachieved {
        line(&mut out, format!("FAULT NOT ACHIEVED: {failure}"));
    }
    if let Some(reason) = &results.skipped_reason {
        line(&mut out, format!("SKIPPED: {reason}"));
    }
    if let Some(error) = &results.error {
        line(&mut out, format!("ERROR: {error}"));
    }
    line(
        &mut out,
        format!(
            "VERDICT: {} (exit {})",
            results.verdict.to_uppercase(),
            results.exit_code
        ),
    );
    if let (Some(met), Some(detail)) = (results.expectation_met, &results.expectation_detail) {
        line(
            &mut out,
            format!(
                "expectation: {} — {detail}",
                if met { "met" } else { "NOT met" }
            ),
        );
    }
    line(&mut out, format!("report: {run_dir}/report.html"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::OpFn;

    #[test]
    fn counts_and_latencies_skip_final_reads() {
        let history = vec![
            Op::new(0, OpKind::Invoke, OpFn::Write, "k", 0),
            Op::new(0, OpKind::Ok, OpFn::Write, "k", 2_000_000),
            Op::new(1, OpKind::Invoke, OpFn::Read, "k", 0),
            Op::new(1, OpKind::Info, OpFn::Read, "k", 9_000_000),
            Op::new(FINAL_READ_PROCESS, OpKind::Invoke, OpFn::Read, "k", 10),
            Op::new(FINAL_READ_PROCESS, OpKind::Ok, OpFn::Read, "k", 20),
        ];
        let counts = count(&history);
        assert_eq!(
            (
                counts.invoked,
                counts.ok,
                counts.info,
                counts.final_reads_ok
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(counts.by_fn["write"]["ok"], 1);
        let latency = latency_of_ok(&history);
        assert_eq!(latency.p50_ms, 2.0);
        assert_eq!(latencies(&history).len(), 2);
    }

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let mut history = Vec::new();
        for (process, ms) in [1u64, 2, 3, 4].into_iter().enumerate() {
            let process = process as u64;
            history.push(Op::new(process, OpKind::Invoke, OpFn::Write, "k", 0));
            history.push(Op::new(
                process,
                OpKind::Ok,
                OpFn::Write,
                "k",
                ms * 1_000_000,
            ));
        }
        let latency = latency_of_ok(&history);
        // Rank ceil(0.5 * 4) = 2, the same statistic as the bench sweep's p50.
        assert_eq!(
            (latency.p50_ms, latency.p99_ms, latency.max_ms),
            (2.0, 4.0, 4.0)
        );
    }

    /// `results.json` leaves out the optional fields a run did not fill
    /// (`skip_serializing_none`) but keeps `frame` and a fault's `end_ns` as
    /// `null`, as it always wrote them.
    #[test]
    fn unset_options_are_left_out_except_frame_and_fault_end() {
        let results: Results = serde_json::from_value(serde_json::json!({
            "scenario": "s", "description": "d", "seed": 1, "mode": "safe",
            "topology": "mesh-3", "nodes": ["n1"], "started_at": "t",
            "verdict": "unknown", "exit_code": 1, "checks": [],
            "counts": Counts::default(), "latency": Latency::default(),
            "timing": {"heartbeat": "50ms", "election_timeout_min": "250ms",
                       "election_timeout_max": "500ms"},
            "faults": [{"step": 0, "kind": "loss", "description": "loss",
                        "targets": ["n1"], "start_ns": 5}],
            "failover": [], "check_config": {},
            "lab_up_ms": 1.0, "lab_down_ms": 1.0,
        }))
        .expect("a results record with every optional field missing");
        let json = serde_json::to_value(&results).expect("serializes");
        for absent in [
            "skipped_reason",
            "error",
            "expect",
            "expectation_met",
            "expectation_detail",
            "probe_cost",
        ] {
            assert!(json.get(absent).is_none(), "{absent} written: {json}");
        }
        assert_eq!(json["frame"], serde_json::Value::Null);
        let fault = json["faults"][0].as_object().expect("a fault record");
        assert_eq!(fault["end_ns"], serde_json::Value::Null);
        for absent in ["grudge", "leader_before", "achieved"] {
            assert!(!fault.contains_key(absent), "{absent} written: {json}");
        }
        let back: Results = serde_json::from_value(json.clone()).expect("reads back");
        assert_eq!(serde_json::to_value(&back).expect("serializes"), json);
    }
}
