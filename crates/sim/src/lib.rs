//! splitlab's deterministic simulator.
//!
//! Runs real [`consensus::Replica`]s in one thread over a simulated network,
//! disks, clocks and clients, injects a seeded fault schedule, records a
//! Jepsen-style history plus every replica event, and judges the run with
//! the `checker` crate. A run is a pure function of `(seed, options)`: the
//! same seed gives a byte-identical [`RunOutput::trace`].
//!
//! Code map:
//! - [`rng`]: named ChaCha8 streams derived from the seed;
//! - [`clock`]: per-node clocks (offset, piecewise rate) and their inverse;
//! - [`net`]: directed links with loss/delay/duplication/reordering, separate
//!   datagram and stream behaviour, layered partitions;
//! - [`storage`]: the durable image, pending writes, fsync and crash model;
//! - [`workload`]: clients and the history they record;
//! - [`schedule`]: fault schedules (the nemesis plan) drawn from the seed;
//! - [`cluster`]: the event loop that drives the replicas per the driver
//!   contract;
//! - [`scenarios`]: scenario rows (`#N`, defined in `crates/checker/README.md`)
//!   as fixed fault scripts with expected outcomes (and any regression the
//!   fuzzer finds);
//! - `bin/fuzz.rs`: many seeds, one summary line.
#![warn(missing_docs, unreachable_pub)]
pub mod clock;
pub mod cluster;
pub mod net;
pub mod rng;
pub mod scenarios;
pub mod schedule;
pub mod storage;
pub mod trace;
pub mod workload;

use std::collections::BTreeSet;

use checker::{CheckConfig, CheckInput, ClientReach, LinearizabilityBudget, Report, Verdict};

pub use cluster::{
    Cluster, DriverBug, FaultWindows, RunOutput, RunStats, Running, Script, SimOptions,
};
pub use consensus::Mode;

/// Runs one seed.
pub fn run(seed: u64, options: SimOptions) -> RunOutput {
    Cluster::new(seed, options).run()
}

/// The heartbeat and longest election timeout of every simulated replica,
/// from which the fail-fast bound, the settling time and the progress grace
/// follow (`checker::windows::ElectionTiming`, the lab's formulas).
pub fn election_timing() -> checker::windows::ElectionTiming {
    let timing = cluster::timing();
    checker::windows::ElectionTiming {
        heartbeat_ns: timing.heartbeat_ns,
        election_timeout_max_ns: timing.election_max_ns,
    }
}

/// The node count a seed uses when several are allowed: a function of the
/// seed alone, so `--nodes N` with the chosen `N` reproduces the same run.
pub fn nodes_for_seed(seed: u64, choices: &[usize]) -> usize {
    assert!(!choices.is_empty(), "no node counts to choose from");
    choices[(seeded::mix64(seed ^ 0x006e_6f64_6573) % choices.len() as u64) as usize]
}

/// The checker's verdict on a run plus the driver's own findings.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// The checker's report on the run's history and events.
    pub report: Report,
    /// Driver-contract breaches the simulator itself saw (storage misuse, stray replies).
    pub driver_violations: Vec<String>,
}

/// Name used for driver-contract breaches in summaries.
pub const DRIVER_CONTRACT: &str = "driver_contract";

impl Judgement {
    /// Whether any invariant broke.
    pub fn violated(&self) -> bool {
        self.report.verdict == Verdict::Invalid || !self.driver_violations.is_empty()
    }

    /// The invariants that broke, checker names first.
    pub fn broken(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .report
            .invalid_checks()
            .into_iter()
            .map(str::to_string)
            .collect();
        if !self.driver_violations.is_empty() {
            names.push(DRIVER_CONTRACT.to_string());
        }
        names
    }

    /// Checks that could not decide.
    pub fn undecided(&self) -> Vec<String> {
        let names = self.report.unknown_checks();
        names.into_iter().map(str::to_string).collect()
    }

    /// Evidence for every check that could not decide, at most `lines`
    /// lines each.
    pub fn describe_undecided(&self, lines: usize) -> String {
        let mut text = String::new();
        for result in self.report.results.iter().filter(|r| r.is_unknown()) {
            let heading = format!("{} is UNKNOWN", result.name);
            push_evidence(&mut text, &heading, &result.details, lines);
        }
        text
    }

    /// Evidence for every broken invariant, at most `lines` lines each.
    pub fn describe(&self, lines: usize) -> String {
        let mut text = String::new();
        for result in self.report.results.iter().filter(|r| r.is_invalid()) {
            let heading = format!("{} is INVALID", result.name);
            push_evidence(&mut text, &heading, &result.details, lines);
        }
        if !self.driver_violations.is_empty() {
            let heading = format!("{DRIVER_CONTRACT} broken");
            push_evidence(&mut text, &heading, &self.driver_violations, lines);
        }
        text
    }
}

/// Appends `heading` and at most `lines` of `details` below it to `text`.
fn push_evidence(text: &mut String, heading: &str, details: &[String], lines: usize) {
    text.push_str(&format!("  {heading}:\n"));
    for line in details.iter().take(lines) {
        text.push_str(&format!("    {line}\n"));
    }
}

/// What the checker is told about a simulated run. `minimize` asks the
/// linearizability search for the shortest failing prefix (slower; worth it
/// only when the evidence is going to be read).
pub fn check_config(output: &RunOutput, minimize: bool) -> CheckConfig {
    let bounds = election_timing();
    CheckConfig {
        partitions: output.windows.partitions.clone(),
        minority_reject_bound_ns: Some(bounds.minority_reject_bound_ns()),
        election_windows: output.windows.elections.clone(),
        quorum_windows: output.windows.quorums.clone(),
        progress_grace_ns: bounds.progress_grace_ns(),
        client_reach: Some(client_reach(output)),
        final_reads_from_ns: (output.final_reads_from_ns > 0).then_some(output.final_reads_from_ns),
        expected_live_nodes: Some(output.node_names.clone()),
        logging_nodes: Some(output.node_names.clone()),
        // Only the safe strategy takes leases.
        leaseless: output.options.mode != Mode::Safe,
        linearizability: LinearizabilityBudget {
            per_key_time_ms: 2_000,
            total_time_ms: 10_000,
            per_key_memory_bytes: 256 << 20,
            minimize_failures: minimize,
        },
        ..CheckConfig::default()
    }
}

/// Every client (each process id in the history) reaches every node whose
/// process runs: clients sit on their node's side of any partition, but a
/// crashed or paused node answers nobody (its silence is not the minority
/// hanging, I6 b).
fn client_reach(output: &RunOutput) -> Vec<ClientReach> {
    let processes: BTreeSet<u64> = output.history.ops.iter().map(|op| op.process).collect();
    output
        .windows
        .running
        .iter()
        .flat_map(|stretch| {
            processes.iter().map(|process| ClientReach {
                process: *process,
                start_ns: stretch.start_ns,
                end_ns: stretch.end_ns,
                nodes: stretch.nodes.clone(),
            })
        })
        .collect()
}

/// Judges a run with every check of the checker crate.
pub fn judge(output: &RunOutput) -> Judgement {
    judge_with(output, false)
}

/// [`judge`], optionally minimizing linearizability counterexamples.
pub fn judge_with(output: &RunOutput, minimize: bool) -> Judgement {
    let config = check_config(output, minimize);
    let report = checker::check_all(&CheckInput {
        history: &output.history,
        events: &output.events,
        config: &config,
    });
    Judgement {
        report,
        driver_violations: output.driver_violations.clone(),
    }
}

/// The command line that reproduces one run.
pub fn reproduce_command(seed: u64, options: &SimOptions) -> String {
    let mut command = format!(
        "cargo run --release -p sim --bin fuzz -- --seed {seed} --mode {} --nodes {}",
        options.mode.name(),
        options.nodes
    );
    if options.drift_beyond_bound {
        command.push_str(" --drift-beyond-bound");
    }
    if !options.faults {
        command.push_str(" --no-faults");
    }
    if !options.lease_reads {
        command.push_str(" --no-lease-reads");
    }
    if !options.torn_writes {
        command.push_str(" --no-torn-writes");
    }
    match options.driver_bug {
        Some(DriverBug::SendBeforePersist) => command.push_str(" --driver-bug send-before-persist"),
        Some(DriverBug::LoseVoteReplies) => command.push_str(" --driver-bug lose-vote-replies"),
        None => {}
    }
    command
}
