//! `splitlab run` / `splitlab check`: scenarios, workload, timeline, verdicts, report.
//!
//! Data flows one way:
//!
//! ```text
//! lab/scenarios/x.toml ─load─► LoadedScenario + netlab Topology        (pure)
//!   ─runner::execute─► Execution {history, events, faults, frame}      (lab, nodes, clients)
//!   ─judge::check_config─► CheckConfig ─checker::check_all─► Report    (pure)
//!   ─figures / results / report─► runs/<time>-<name>/{results.json, report.html}
//! ```
//!
//! Module map: [`scenario`] (TOML model + validation), [`load`] (topology
//! resolution), [`targets`] (role-aware targets, grudges), [`nemesis`]
//! (steps → netlab faults), [`workload`] (clients, over the `client` crate's
//! HTTP API), [`runner`] (the impure orchestration), [`judge`] (checker input and
//! verdicts), [`figures`] (failover figures), [`results`] + [`report`] +
//! [`progress`] (output).
pub mod achieved;
pub mod duration;
pub mod figures;
pub mod judge;
pub mod load;
pub mod nemesis;
pub mod observer_leadership;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod targets;
pub mod workload;

use std::path::{Path, PathBuf};

use anyhow::Context;
use checker::{History, NodeEvent, Op};

use self::results::Results;
use crate::exit::ExitStatus;

/// Options of `splitlab run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Parent of the run directory (default `runs/`).
    pub runs_dir: Option<PathBuf>,
    /// Path of the `splitnode` binary (default: next to the current executable).
    pub splitnode: Option<PathBuf>,
    /// Where named topologies are looked up after the scenario's own
    /// directories and before the built-in ones (`--topologies DIR`).
    pub topologies: Option<PathBuf>,
    /// Runs the scenario on this system instead of its `[nodes] system`
    /// (`--system etcd`: a description in `lab/systems/`).
    pub system: Option<String>,
}

/// `(YYYYmmdd-HHMMSS, RFC 3339)` of the current UTC time.
fn utc_now() -> (String, String) {
    let now = std::time::SystemTime::now();
    (
        ::figures::stamp::utc_stamp(now),
        ::figures::stamp::utc_rfc3339(now),
    )
}

fn default_splitnode() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("splitnode")))
        .unwrap_or_else(|| PathBuf::from("splitnode"))
}

/// Runs a scenario end to end; returns its exit status (valid, invalid, or failed for unknown/skipped/broken).
pub fn run_scenario(options: &RunOptions) -> anyhow::Result<ExitStatus> {
    run_scenario_outcome(options).map(|(status, _)| status)
}

/// [`run_scenario`], also returning the run directory (where
/// `results.json` and `report.html` are) for callers that summarize runs.
pub fn run_scenario_outcome(options: &RunOptions) -> anyhow::Result<(ExitStatus, PathBuf)> {
    let (loaded, topology) =
        load::load_scenario_with(&options.scenario, options.topologies.as_deref())?;
    let scenario = &loaded.scenario;
    let system = crate::system::resolve(&loaded, options.system.as_deref())?;
    let seed = options.seed.unwrap_or(scenario.seed);
    let (stamp, started_at) = utc_now();
    let runs = options
        .runs_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs"));
    let mut run_dir = runs.join(format!("{stamp}-{}", scenario.name));
    let mut suffix = 1;
    while run_dir.exists() {
        suffix += 1;
        run_dir = runs.join(format!("{stamp}-{}-{suffix}", scenario.name));
    }
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let run_dir = std::fs::canonicalize(&run_dir).unwrap_or(run_dir);
    std::fs::write(run_dir.join("scenario.toml"), &loaded.text)?;
    std::fs::write(run_dir.join("topology.toml"), topology.to_toml())?;
    std::fs::write(run_dir.join("system.toml"), &system.text)?;
    let splitnode = options.splitnode.clone().unwrap_or_else(default_splitnode);
    if system.is_splitnode() && !splitnode.exists() {
        anyhow::bail!(
            "splitnode not found at {} (build it: cargo build --release -p node, or pass its path)",
            splitnode.display()
        );
    }
    eprintln!(
        "splitlab run {} — {}\n  system {}, mode {}, topology {}, seed {seed}, run dir {}",
        scenario.name,
        scenario.description,
        system.name(),
        scenario.nodes.mode.name(),
        topology.name,
        run_dir.display()
    );
    // Ctrl-C / SIGTERM set the flag; the runner then stops and tears down.
    let cancel = crate::commands::interrupt_flag();
    let setup = runner::RunSetup {
        loaded: &loaded,
        topology: &topology,
        seed,
        run_dir: &run_dir,
        splitnode: &splitnode,
        system: &system,
        cancel,
    };
    let mut results = Results::unjudged(results::RunIdentity {
        scenario,
        seed,
        topology: topology.name.clone(),
        nodes: topology.node_names(),
        started_at,
        system: system.name().to_string(),
        not_applicable: system.not_applicable(),
    });
    match runner::execute(&setup) {
        Ok(execution) => {
            results.faults = execution.faults;
            results.premise_failures =
                judge::premise_failures(scenario, &results.faults, &execution.events);
            results.client_failures = execution.client_failures;
            results.frame = Some(execution.frame);
            results.skipped_reason = execution.skipped;
            results.lab_up_ms = execution.lab_up_ms;
            results.lab_down_ms = execution.lab_down_ms;
            results.probe_cost = execution.probe_cost;
            achieved::measure::measure_run(
                &mut results.faults,
                &run_dir.join("probes"),
                &results.nodes,
                execution.frame.healed_ns,
            );
            let homes = workload::place_clients(&scenario.workload, &loaded.catalog);
            results.check_config = judge::check_config(
                scenario,
                &results.timing,
                &results.nodes,
                &homes,
                &results.faults,
                &execution.frame,
            );
            finish(
                &mut results,
                &execution.history,
                &execution.events,
                &run_dir,
            )
            .map(|status| (status, run_dir))
        }
        Err(error) => {
            results.error = Some(format!("{error:#}"));
            let history = History::load(&run_dir.join("history.jsonl"))
                .map(|h| h.ops)
                .unwrap_or_default();
            results.counts = results::count(&history);
            results.latency = results::latency_of_ok(&history);
            write_outputs(&results, &history, &[], &run_dir)?;
            print!(
                "{}",
                results::summary(&results, &run_dir.display().to_string())
            );
            Ok((ExitStatus::Failed, run_dir))
        }
    }
}

/// Judges, computes figures, writes results.json and report.html, prints the
/// summary; returns the exit status.
fn finish(
    results: &mut Results,
    history: &[Op],
    events: &[NodeEvent],
    run_dir: &Path,
) -> anyhow::Result<ExitStatus> {
    let skip = results.skipped_checks.clone();
    let mut judgement = judge::judge(
        &History::new(history.to_vec()),
        events,
        &results.check_config,
        &skip,
    );
    crate::system::mark_not_applicable(&mut judgement.report, &results.not_applicable);
    if !results.client_failures.is_empty() {
        // Operations of a failed client are missing from the history: what
        // the checks saw is not the whole run.
        judgement.report.verdict = judgement.report.verdict.merge(checker::Verdict::Unknown);
    }
    // A fault that was not achieved tested another story: never valid.
    results.unachieved = achieved::judge_run(&mut results.faults, results.probe_cost.as_ref());
    if !results.unachieved.is_empty() {
        judgement.report.verdict = judgement.report.verdict.merge(checker::Verdict::Unknown);
    }
    results.checks = judgement.report.results.clone();
    results.skipped_checks = judgement.skipped_checks;
    results.counts = results::count(history);
    results.latency = results::latency_of_ok(history);
    let end = results.frame.map_or(0, |frame| frame.workload_end_ns);
    results.failover = figures::failover_figures(&results.faults, events, history, end);
    let kills: Vec<(String, u64)> = (results.faults.iter())
        .filter(|fault| fault.kind == scenario::FaultKind::Kill)
        .flat_map(|fault| {
            fault
                .targets
                .iter()
                .map(|node| (node.clone(), fault.start_ns))
        })
        .collect();
    results.leader_overlaps = observer_leadership::leader_overlaps(events, &kills, end);
    // Leadership steered before the workload is set-up, not a finding.
    let start = results.frame.map_or(0, |frame| frame.workload_start_ns);
    results
        .leader_overlaps
        .retain(|overlap| overlap.elected_ns >= start);
    let status;
    if results.skipped_reason.is_some() {
        // A fault this machine cannot apply makes the run inconclusive,
        // whatever the checks say about the part that did run.
        results.verdict = "skipped".into();
        status = ExitStatus::Failed;
    } else {
        results.verdict = judgement.report.verdict.name().into();
        status = ExitStatus::of_verdict(judgement.report.verdict);
        if let Some(expect) = &results.expect {
            let premises = [results.premise_failures.clone(), results.unachieved.clone()].concat();
            let met = judge::meets_expectation(expect, &judgement.report, &premises);
            results.expectation_met = Some(met.is_ok());
            results.expectation_detail = Some(match met {
                Ok(()) => format!(
                    "expected {}{}",
                    results.verdict,
                    if expect.broken.is_empty() {
                        String::new()
                    } else {
                        format!(" with {} failing", expect.broken.join(", "))
                    }
                ),
                Err(why) if results.client_failures.is_empty() => why,
                Err(why) => format!(
                    "{why}; client failures: {}",
                    results.client_failures.join("; ")
                ),
            });
        }
    }
    results.exit_code = status.code();
    write_outputs(results, history, events, run_dir)?;
    print!(
        "{}",
        results::summary(results, &run_dir.display().to_string())
    );
    Ok(status)
}

fn write_outputs(
    results: &Results,
    history: &[Op],
    events: &[NodeEvent],
    run_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::write(
        run_dir.join("results.json"),
        serde_json::to_string_pretty(results)? + "\n",
    )?;
    std::fs::write(
        run_dir.join("report.html"),
        report::render(results, history, events),
    )?;
    Ok(())
}

/// Every node's event log in a run directory plus the runner's final state.
fn load_run_events(dir: &Path) -> anyhow::Result<Vec<NodeEvent>> {
    let mut events = Vec::new();
    let nodes = dir.join("nodes");
    if nodes.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&nodes)?
            .flatten()
            .map(|entry| entry.path().join("events.jsonl"))
            .filter(|path| path.exists())
            .collect();
        entries.sort();
        for path in entries {
            events.extend(checker::load_events(&path).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        // What the lab observed (etcd): derived again from the raw samples,
        // so a re-check uses the current derivation.
        events.extend(observer_leadership::load_observed(&nodes)?);
    }
    let final_state = dir.join("final_state.jsonl");
    if final_state.exists() {
        events.extend(checker::load_events(&final_state).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    events.sort_by_key(|event| event.mono_ns);
    Ok(events)
}

/// Re-judges a stored run directory offline; returns its exit status.
pub fn check_run_dir(dir: &Path) -> anyhow::Result<ExitStatus> {
    let results_path = dir.join("results.json");
    let text = std::fs::read_to_string(&results_path)
        .with_context(|| format!("{} is not a run directory (no results.json)", dir.display()))?;
    let mut results: Results = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a splitlab results file", results_path.display()))?;
    if results.frame.is_none() {
        anyhow::bail!(
            "{}: the run never got to its workload ({}); nothing to judge",
            dir.display(),
            results.error.as_deref().unwrap_or("no error recorded")
        );
    }
    let history = History::load(&dir.join("history.jsonl")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let events = load_run_events(dir)?;
    // The probe records are the stored measurements: measure them again
    // (finish re-judges every fault against its tolerance).
    if let Some(frame) = results.frame {
        achieved::measure::measure_run(
            &mut results.faults,
            &dir.join("probes"),
            &results.nodes,
            frame.healed_ns,
        );
    }
    eprintln!(
        "splitlab check {}: {} history records, {} node events",
        dir.display(),
        history.len(),
        events.len()
    );
    finish(&mut results, &history.ops, &events, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results_for(skipped_reason: Option<String>) -> Results {
        let scenario = scenario::parse(
            "topology = \"mesh-3\"\nduration = \"5s\"\nexpect = { verdict = \"valid\" }\n[workload]\nclients = 1\n",
            Path::new("s.toml"),
        )
        .unwrap();
        Results {
            skipped_reason,
            frame: Some(judge::RunFrame {
                workload_start_ns: 1,
                workload_end_ns: 2,
                healed_ns: 2,
                final_reads_ns: 3,
            }),
            ..Results::unjudged(results::RunIdentity {
                scenario: &scenario,
                seed: 1,
                topology: "mesh-3".into(),
                nodes: vec!["n1".into(), "n2".into(), "n3".into()],
                started_at: utc_now().1,
                system: "splitnode".into(),
                not_applicable: Default::default(),
            })
        }
    }

    #[test]
    fn an_unapplicable_fault_is_skipped_never_valid() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut results = results_for(Some("cannot apply delay: this machine lacks netem".into()));
        let code = finish(&mut results, &[], &[], dir).unwrap();
        let written = std::fs::read_to_string(dir.join("results.json")).unwrap();
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert_eq!(code, ExitStatus::Failed);
        assert_eq!(results.verdict, "skipped");
        assert_eq!(
            results.expectation_met, None,
            "a skipped run meets no expectation"
        );
        assert!(written.contains("\"verdict\": \"skipped\""));
        assert!(html.contains("SKIPPED"));
    }

    #[test]
    fn stored_runs_are_rejudged_offline() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut results = results_for(None);
        finish(&mut results, &[], &[], dir).unwrap();
        std::fs::write(dir.join("history.jsonl"), "").unwrap();
        let code = check_run_dir(dir).unwrap();
        let rejudged: Results =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(code.code(), results.exit_code);
        assert_eq!(rejudged.verdict, results.verdict);
        assert_eq!(rejudged.checks.len(), results.checks.len());
    }

    #[test]
    fn utc_stamps_are_well_formed() {
        let (stamp, rfc) = utc_now();
        assert_eq!(stamp.len(), 15);
        assert!(rfc.ends_with('Z') && rfc.len() == 20, "{rfc}");
    }
}
