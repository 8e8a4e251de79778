//! Runs many seeded fault schedules and reports the first violation.
//!
//! ```text
//! cargo run --release -p sim --bin fuzz -- --seeds 1000 --mode safe --nodes 3,5,7
//! ```
//!
//! Exit code 0: no violation; 1: at least one seed broke an invariant (a
//! checker invariant or the driver contract, named in `broke=`); 2: bad
//! arguments or I/O error; 3: the harness itself panicked on some seed (a
//! failure of the simulator, never counted as a caught violation). The last
//! line is always the one-line summary `seeds=N violations=V ...`, with
//! `undecided=` seeds and `undecided_checks=` per check.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use clap::Parser;
use sim::{DriverBug, Judgement, Mode, RunOutput, SimOptions};

#[derive(Debug, Parser)]
#[command(
    name = "fuzz",
    about = "Seeded fault schedules against the splitlab consensus core"
)]
struct Args {
    /// How many consecutive seeds to run, starting at --seed.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// safe | timeout-failover | unenforced-quorum | one-way-quorum | no-fencing
    #[arg(long, default_value = "safe", value_parser = parse_mode)]
    mode: Mode,
    /// Cluster sizes; each seed picks one (a function of the seed alone).
    #[arg(long, default_value = "3,5,7", value_parser = parse_nodes)]
    nodes: NodeChoices,
    /// Write the trace of every run (in seed order) to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Negative control: slow a leader's clock far beyond the drift bound.
    #[arg(long)]
    drift_beyond_bound: bool,
    /// Run without faults (a baseline).
    #[arg(long)]
    no_faults: bool,
    /// All reads go through ReadIndex (no lease reads).
    #[arg(long)]
    no_lease_reads: bool,
    /// Crashes lose every unsynced write (no torn write-back).
    #[arg(long)]
    no_torn_writes: bool,
    /// Harness negative control: break the driver contract on purpose
    /// (`send-before-persist`: release sends before their write is durable;
    /// `lose-vote-replies`: no election ever finishes).
    #[arg(long, value_parser = parse_driver_bug)]
    driver_bug: Option<DriverBug>,
    /// Stop after this many violating seeds (0: run them all).
    #[arg(long, default_value_t = 0)]
    max_failures: u64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write history.jsonl, events.jsonl and trace.txt of the first failing
    /// seed into this directory.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Evidence lines printed per broken invariant.
    #[arg(long, default_value_t = 12)]
    detail_lines: usize,
    /// Print aggregate coverage counters (fault kinds, elections, client
    /// outcomes) on a line before the summary.
    #[arg(long)]
    stats: bool,
}

/// Coverage counters summed over all seeds. Fault kinds count seeds in
/// which a fault of that kind took effect before the heal, not seeds whose
/// schedule merely planned one (`planned_not_fired` counts those).
#[derive(Debug, Default)]
struct Coverage {
    kinds: BTreeMap<String, u64>,
    planned_not_fired: BTreeMap<String, u64>,
    nodes: BTreeMap<usize, u64>,
    ok: u64,
    fail: u64,
    info: u64,
    leaders: u64,
    elections: u64,
    crashes: u64,
    pauses: u64,
    lost: u64,
    max_steps: u64,
    max_term: u64,
    budget_exceeded: u64,
}

impl Coverage {
    fn add(&mut self, output: &RunOutput) {
        for kind in &output.fired {
            *self.kinds.entry(format!("{kind:?}")).or_default() += 1;
        }
        for kind in output.kinds.difference(&output.fired) {
            *self
                .planned_not_fired
                .entry(format!("{kind:?}"))
                .or_default() += 1;
        }
        *self.nodes.entry(output.options.nodes).or_default() += 1;
        let stats = &output.stats;
        self.ok += stats.workload.ok;
        self.fail += stats.workload.fail;
        self.info += stats.workload.info;
        self.leaders += stats.leaders_elected;
        self.elections += stats.elections_started;
        self.crashes += stats.crashes;
        self.pauses += stats.pauses;
        self.lost += stats.lost;
        self.max_steps = self.max_steps.max(stats.steps);
        self.max_term = self.max_term.max(stats.max_term);
        self.budget_exceeded += u64::from(stats.step_budget_exceeded);
    }

    fn line(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let nodes: Vec<String> = self.nodes.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let not_fired: Vec<String> = self
            .planned_not_fired
            .iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        format!(
            "stats nodes={} kinds={} planned_not_fired={} ops_ok={} ops_fail={} ops_info={} leaders_elected={} elections_started={} crashes={} pauses={} messages_lost={} max_steps={} max_term={} step_budget_exceeded={}",
            nodes.join(","),
            kinds.join(","),
            if not_fired.is_empty() {
                "none".to_string()
            } else {
                not_fired.join(",")
            },
            self.ok,
            self.fail,
            self.info,
            self.leaders,
            self.elections,
            self.crashes,
            self.pauses,
            self.lost,
            self.max_steps,
            self.max_term,
            self.budget_exceeded
        )
    }
}

#[derive(Debug, Clone)]
struct NodeChoices(Vec<usize>);

fn parse_mode(text: &str) -> Result<Mode, String> {
    Mode::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
        format!(
            "unknown mode {text:?}; expected one of {}",
            names.join(", ")
        )
    })
}

fn parse_driver_bug(text: &str) -> Result<DriverBug, String> {
    match text {
        "send-before-persist" => Ok(DriverBug::SendBeforePersist),
        "lose-vote-replies" => Ok(DriverBug::LoseVoteReplies),
        _ => Err(format!(
            "unknown driver bug {text:?}; expected send-before-persist or lose-vote-replies"
        )),
    }
}

fn parse_nodes(text: &str) -> Result<NodeChoices, String> {
    let mut counts = Vec::new();
    for part in text.split(',') {
        let count: usize = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a node count"))?;
        if !(1..=9).contains(&count) {
            return Err(format!("node count {count} is outside 1..=9"));
        }
        counts.push(count);
    }
    Ok(NodeChoices(counts))
}

/// What one seed produced.
struct SeedResult {
    seed: u64,
    options: SimOptions,
    outcome: Result<(RunOutput, Judgement), String>,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn run_seed(seed: u64, args: &Args, trace: bool) -> SeedResult {
    let mut options = SimOptions::new(args.mode, sim::nodes_for_seed(seed, &args.nodes.0));
    options.faults = !args.no_faults;
    options.drift_beyond_bound = args.drift_beyond_bound;
    options.lease_reads = !args.no_lease_reads;
    options.torn_writes = !args.no_torn_writes;
    options.trace = trace;
    options.driver_bug = args.driver_bug;
    let outcome = std::panic::catch_unwind(|| {
        let output = sim::run(seed, options);
        let judgement = sim::judge(&output);
        (output, judgement)
    })
    .map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panic without a message".to_string())
    });
    SeedResult {
        seed,
        options,
        outcome,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.seeds == 0 {
        eprintln!("error: --seeds must be at least 1");
        return ExitCode::from(2);
    }
    // Panics inside a run (a replica assertion) become that seed's violation.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panic{location}: {message}")));
    }));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
        .min(args.seeds as usize);
    let trace = args.trace.is_some() || args.dump.is_some();
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failures = AtomicU64::new(0);
    let (sender, receiver) = mpsc::channel::<SeedResult>();

    let mut results: BTreeMap<u64, SeedResult> = BTreeMap::new();
    let mut trace_file = match &args.trace {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(std::io::BufWriter::new(file)),
            Err(error) => {
                eprintln!(
                    "error: cannot create trace file {}: {error}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut seeds_done = 0u64;
    let mut violations = 0u64;
    let mut undecided = 0u64;
    let mut undecided_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut harness_panics = 0u64;
    let mut not_converged = 0u64;
    let mut broken_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_failure: Option<u64> = None;
    let mut next_to_print = args.seed;
    let mut coverage = Coverage::default();
    let mut io_error = None;

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, stop, failures, args) = (&next, &stop, &failures, &args);
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let offset = next.fetch_add(1, Ordering::Relaxed);
                    if offset >= args.seeds {
                        break;
                    }
                    let result = run_seed(args.seed + offset, args, trace);
                    let failed = match &result.outcome {
                        Ok((_, judgement)) => judgement.violated(),
                        Err(_) => true,
                    };
                    if failed {
                        let count = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        if args.max_failures > 0 && count >= args.max_failures {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    if sender.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Report in seed order as results become contiguous.
        for result in receiver {
            results.insert(result.seed, result);
            while let Some(result) = results.remove(&next_to_print) {
                next_to_print += 1;
                seeds_done += 1;
                let reproduce = sim::reproduce_command(result.seed, &result.options);
                match &result.outcome {
                    Ok((output, judgement)) => {
                        if let Some(file) = trace_file.as_mut()
                            && let Err(error) = file.write_all(output.trace.as_bytes())
                        {
                            io_error = Some(format!("writing the trace: {error}"));
                        }
                        coverage.add(output);
                        if !output.stats.converged {
                            not_converged += 1;
                        }
                        let undecided_checks = judgement.undecided();
                        if !undecided_checks.is_empty() {
                            if undecided == 0 {
                                // The first undecided seed says why, so an
                                // undecided gate failure can be read.
                                println!(
                                    "UNDECIDED seed={} mode={} nodes={} checks={}",
                                    result.seed,
                                    result.options.mode.name(),
                                    result.options.nodes,
                                    undecided_checks.join(",")
                                );
                                print!("{}", judgement.describe_undecided(args.detail_lines));
                                println!("REPRODUCE WITH: {reproduce}");
                            }
                            undecided += 1;
                        }
                        for name in undecided_checks {
                            *undecided_counts.entry(name).or_default() += 1;
                        }
                        if judgement.violated() {
                            violations += 1;
                            let broken = judgement.broken();
                            for name in &broken {
                                *broken_counts.entry(name.clone()).or_default() += 1;
                            }
                            if first_failure.is_none() {
                                first_failure = Some(result.seed);
                                println!(
                                    "VIOLATION seed={} mode={} nodes={} broke={} faults={:?}",
                                    result.seed,
                                    result.options.mode.name(),
                                    result.options.nodes,
                                    broken.join(","),
                                    output.fired
                                );
                                // Re-judge with minimized counterexamples for readable evidence.
                                let detailed = sim::judge_with(output, true);
                                print!("{}", detailed.describe(args.detail_lines));
                                println!("REPRODUCE WITH: {reproduce}");
                                if let Some(dir) = &args.dump
                                    && let Err(error) = dump(dir, output)
                                {
                                    io_error =
                                        Some(format!("dumping to {}: {error}", dir.display()));
                                }
                            } else {
                                println!(
                                    "violation seed={} nodes={} broke={}",
                                    result.seed,
                                    result.options.nodes,
                                    broken.join(",")
                                );
                            }
                        }
                    }
                    Err(panic) => {
                        // The harness broke, not the system under test: a
                        // panic never counts as a caught violation.
                        harness_panics += 1;
                        println!(
                            "HARNESS PANIC seed={} mode={} nodes={}: {panic}",
                            result.seed,
                            result.options.mode.name(),
                            result.options.nodes
                        );
                        println!("REPRODUCE WITH: {reproduce}");
                    }
                }
            }
        }
    });
    if let Some(file) = trace_file.as_mut()
        && let Err(error) = file.flush()
    {
        io_error = Some(format!("writing the trace: {error}"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_minute = if elapsed > 0.0 {
        seeds_done as f64 * 60.0 / elapsed
    } else {
        0.0
    };
    let broke: Vec<String> = broken_counts
        .iter()
        .map(|(name, count)| format!("{name}:{count}"))
        .collect();
    let undecided_checks: Vec<String> = undecided_counts
        .iter()
        .map(|(name, count)| format!("{name}:{count}"))
        .collect();
    let nodes: Vec<String> = args.nodes.0.iter().map(usize::to_string).collect();
    if args.stats {
        println!("{}", coverage.line());
    }
    println!(
        "seeds={seeds_done} violations={violations} mode={} nodes={} first_failure={} broke={} undecided={undecided} undecided_checks={} harness_panics={harness_panics} not_converged={not_converged} jobs={jobs} elapsed={elapsed:.1}s seeds_per_minute={per_minute:.0}",
        args.mode.name(),
        nodes.join(","),
        first_failure.map_or("none".to_string(), |s| s.to_string()),
        if broke.is_empty() {
            "none".to_string()
        } else {
            broke.join(",")
        },
        if undecided_checks.is_empty() {
            "none".to_string()
        } else {
            undecided_checks.join(",")
        },
    );
    if let Some(error) = io_error {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    if harness_panics > 0 {
        eprintln!(
            "error: the harness panicked on {harness_panics} seeds (a simulator bug, not a caught violation)"
        );
        return ExitCode::from(3);
    }
    if violations > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn dump(dir: &std::path::Path, output: &RunOutput) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    output
        .history
        .save(&dir.join("history.jsonl"))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    checker::save_events(&dir.join("events.jsonl"), &output.events)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(dir.join("trace.txt"), &output.trace)?;
    let config = sim::check_config(output, true);
    std::fs::write(
        dir.join("check-config.json"),
        serde_json::to_string_pretty(&config).map_err(std::io::Error::other)?,
    )
}
