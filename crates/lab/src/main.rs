//! `splitlab`: command-line entry point. Lab infrastructure commands live in
//! `lab::commands`, the scenario-vocabulary lab commands in `lab::adhoc`,
//! `run`/`check` in `lab::run` and `lab::batch`.

use clap::{Args, Parser, Subcommand};
use lab::adhoc::{self, FaultArgs, System};
use lab::batch::{BatchOptions, run_batch};
use lab::commands::{self, UpOptions};
use lab::exit::ExitStatus;
use lab::run::{RunOptions, check_run_dir, run_scenario};
use netlab::RunId;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "splitlab",
    version,
    about = "A chaos lab for split brain on one Linux box"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check root, namespaces, veth, netem, nft, iptables NFQUEUE, tbf, cgroup freezer.
    Doctor,
    /// Validate a topology and print the plan (changes nothing).
    Plan {
        /// Topology file, or the name of a built-in one (mesh-3, mesh-5, mesh-7, wan-3dc).
        topology: PathBuf,
        /// Run id to use in names (default 0000).
        #[arg(long)]
        run: Option<RunId>,
    },
    /// Build a topology; returns once it is ready and journaled.
    Up {
        /// Topology file, or the name of a built-in one (mesh-3, mesh-5, mesh-7, wan-3dc).
        topology: PathBuf,
        /// Run id (4 hex digits; default random).
        #[arg(long)]
        run: Option<RunId>,
        /// Stay in the foreground; Ctrl-C or SIGTERM tears the lab down.
        #[arg(long)]
        hold: bool,
        /// Start a cluster on every node once the lab is up.
        #[arg(long, value_enum)]
        system: Option<System>,
        /// Path of the splitnode binary (for --system splitnode).
        #[arg(long)]
        splitnode: Option<PathBuf>,
        /// Parent directory of the cluster's data and logs (default runs/).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
        /// A low-level netlab fault to apply once up, as JSON, e.g.
        /// '{"fault":"partition","grudge":{"n1":["n3"]}}' (repeatable;
        /// `splitlab fault` speaks the scenario vocabulary).
        #[arg(long = "fault")]
        faults: Vec<String>,
    },
    /// List labs (journals and sl-* namespaces), their faults and processes.
    Status,
    /// Tear a lab down (the only one, or --run).
    Down {
        /// Run id.
        #[arg(long)]
        run: Option<RunId>,
    },
    /// Remove what crashed runs left (by journal and sl- prefix; kills only recorded PIDs).
    Clean {
        /// Only this run.
        #[arg(long)]
        run: Option<RunId>,
        /// Also clean runs whose owner process is still alive.
        #[arg(long)]
        force: bool,
    },
    /// Measure every directed link (UDP and TCP): achieved vs requested.
    Probe {
        /// Run id.
        #[arg(long)]
        run: Option<RunId>,
        /// UDP datagrams per directed link.
        #[arg(long, default_value_t = 200)]
        packets: u32,
    },
    /// Apply one fault to a running lab, written like a scenario timeline
    /// step: `fault partition --grudge isolate --targets leader`,
    /// `fault loss 30% --targets n1`, `fault pause --targets follower --for 5s`.
    Fault(FaultCommand),
    /// Lift every fault: network faults off, paused nodes continued, nodes
    /// started by `up --system` running again.
    Heal {
        /// Run id.
        #[arg(long)]
        run: Option<RunId>,
    },
    /// Run a command inside a node's network namespace:
    /// `splitlab exec n1 -- ip addr`.
    Exec {
        /// Run id.
        #[arg(long)]
        run: Option<RunId>,
        /// The node whose namespace the command runs in.
        node: String,
        /// The command and its arguments (after --).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run scenarios end to end and judge them. One file: its verdict is the
    /// exit code. Several files or directories (their *.toml), or --junit /
    /// --json / --strict: each is judged against its `expect`, a summary
    /// table follows, exit 0 when every expectation held, 1 otherwise.
    Run {
        /// Scenario files or directories (default: the built-in
        /// us-east-isolated scenario).
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
        /// Look up named topologies here after the scenario's directories
        /// and before the built-in ones.
        #[arg(long)]
        topologies: Option<PathBuf>,
        /// Run on this system instead of each scenario's `[nodes] system`
        /// (a description in lab/systems/, e.g. etcd).
        #[arg(long)]
        system: Option<String>,
        /// Write a JUnit XML report (one testcase per scenario).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a JSON summary.
        #[arg(long)]
        json: Option<PathBuf>,
        /// A skipped scenario (a fault this kernel cannot apply) fails the batch.
        #[arg(long)]
        strict: bool,
    },
    /// Re-judge a stored run directory offline.
    Check {
        /// Run directory.
        run_dir: PathBuf,
    },
    /// Run one scenario on several systems and print one side-by-side table.
    Compare {
        /// The scenario file.
        scenario: PathBuf,
        /// Systems to run it on, comma-separated (descriptions in lab/systems/).
        #[arg(long, value_delimiter = ',', default_value = "splitnode,etcd")]
        systems: Vec<String>,
        #[command(flatten)]
        run: RunArgs,
        /// Where to write the table (default `RUNS/compare-SCENARIO.md`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Benchmarks of real clusters (splitnode next to etcd).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// `splitlab fault`: the keys of a `[[timeline]]` step as flags.
#[derive(Args)]
struct FaultCommand {
    /// Run id.
    #[arg(long)]
    run: Option<RunId>,
    /// The fault: partition, heal, loss, delay, duplicate, corrupt, reorder,
    /// rate, link-down, flap, kill, pause, restart.
    #[arg(required_unless_present = "json")]
    kind: Option<String>,
    /// Its value: 30% (loss, duplicate, corrupt, reorder), 50ms (delay), 1mbit (rate).
    value: Option<String>,
    /// Partition kind: isolate, one-way-in, one-way-out, components, bridge,
    /// majorities-ring, links.
    #[arg(long)]
    grudge: Option<String>,
    /// A role (leader, followers, follower, minority-with-leader, ..., all)
    /// or comma-separated node names.
    #[arg(long)]
    targets: Option<String>,
    /// The other ends of link faults (role or node names).
    #[arg(long)]
    peers: Option<String>,
    /// Traffic plane: all, heartbeat, replication, client.
    #[arg(long)]
    plane: Option<String>,
    /// Lift the fault after this long (the command waits), e.g. 10s.
    #[arg(long = "for")]
    duration: Option<String>,
    /// Delay variation (delay, reorder).
    #[arg(long)]
    jitter: Option<String>,
    /// Down+up period (flap).
    #[arg(long)]
    period: Option<String>,
    /// Groups of a components partition: n1,n2/n3.
    #[arg(long)]
    components: Option<String>,
    /// Seeds role choices (which follower) and rings.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instead: netlab's low-level JSON faults (as `up --fault`).
    #[arg(long, conflicts_with = "kind")]
    json: Vec<String>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Write latency and failover time against cluster size: table, results.json
    /// and an SVG plot in `runs/<time>-bench-sweep/`.
    Sweep {
        /// Cluster sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,3,5,7")]
        sizes: Vec<usize>,
        /// Sequential writes measured per cluster.
        #[arg(long, default_value_t = 500)]
        ops: u64,
        /// Failover repetitions per cluster of 3 or more nodes.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Timing profile of both systems: fast or default.
        #[arg(long, default_value = "fast")]
        profile: String,
        /// Parent directory of run directories (default runs/).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
        /// Path of the splitnode binary.
        #[arg(long)]
        splitnode: Option<PathBuf>,
        /// Skip the etcd baseline even when etcd is installed.
        #[arg(long)]
        no_etcd: bool,
    },
}

/// Where a scenario run puts its results and what it starts: shared by
/// `run` and `compare`.
#[derive(clap::Args)]
struct RunArgs {
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Parent directory of run directories (default runs/).
    #[arg(long)]
    runs_dir: Option<PathBuf>,
    /// Path of the splitnode binary.
    #[arg(long)]
    splitnode: Option<PathBuf>,
}

impl RunArgs {
    /// The run options of `scenario` with these overrides.
    fn options(self, scenario: PathBuf) -> RunOptions {
        RunOptions {
            scenario,
            seed: self.seed,
            runs_dir: self.runs_dir,
            splitnode: self.splitnode,
            ..RunOptions::default()
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Hidden helper: the NFQUEUE delay worker runs as this same executable.
    if args.get(1).map(String::as_str) == Some(netlab::DELAY_WORKER_ARG) {
        std::process::exit(netlab::delay_worker_main(&args[2..]));
    }
    // Hidden helper: the live probe beside every run (issue 10).
    if args.get(1).map(String::as_str) == Some(netlab::LIVE_PROBE_ARG) {
        std::process::exit(netlab::live_probe_main(&args[2..]));
    }
    // Hidden helper: the FUSE data disk of a node under an fsync fault.
    if args.get(1).map(String::as_str) == Some(netlab::FUSE_DISK_ARG) {
        std::process::exit(netlab::fuse_disk_main(&args[2..]));
    }
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Doctor => commands::doctor(),
        Command::Plan { topology, run } => commands::plan(&topology, run),
        Command::Up {
            topology,
            run,
            hold,
            system,
            splitnode,
            runs_dir,
            faults,
        } => commands::up(&UpOptions {
            topology,
            run,
            hold,
            faults,
            system,
            splitnode,
            runs_dir,
        }),
        Command::Status => commands::status(),
        Command::Down { run } => commands::down(run),
        Command::Clean { run, force } => commands::clean_command(run, force),
        Command::Probe { run, packets } => commands::probe_command(run, packets),
        Command::Fault(fault) if !fault.json.is_empty() => {
            commands::fault_command(fault.run, &fault.json)
        }
        Command::Fault(fault) => adhoc::fault(
            fault.run,
            &FaultArgs {
                kind: fault.kind.unwrap_or_default(),
                value: fault.value,
                grudge: fault.grudge,
                targets: fault.targets,
                peers: fault.peers,
                plane: fault.plane,
                duration: fault.duration,
                jitter: fault.jitter,
                period: fault.period,
                components: fault.components,
                seed: fault.seed,
            },
        ),
        Command::Heal { run } => adhoc::heal(run),
        Command::Exec { run, node, command } => {
            std::process::exit(adhoc::exec(run, &node, &command))
        }
        Command::Run {
            scenarios,
            run,
            topologies,
            system,
            junit,
            json,
            strict,
        } => run_command(
            scenarios,
            RunOptions {
                topologies,
                system,
                ..run.options(PathBuf::new())
            },
            junit,
            json,
            strict,
        ),
        Command::Check { run_dir } => report(check_run_dir(&run_dir)),
        Command::Compare {
            scenario,
            systems,
            run,
            out,
        } => match commands::preflight() {
            Err(status) => status,
            Ok(_) => report(lab::compare::compare(&lab::compare::CompareOptions {
                run: run.options(scenario),
                systems,
                out,
            })),
        },
        Command::Bench {
            command:
                BenchCommand::Sweep {
                    sizes,
                    ops,
                    reps,
                    profile,
                    runs_dir,
                    splitnode,
                    no_etcd,
                },
        } => bench_sweep(sizes, ops, reps, &profile, runs_dir, splitnode, no_etcd),
    };
    std::process::exit(status.code());
}

/// `splitlab run`: one scenario (its verdict is the exit code) or a batch.
fn run_command(
    scenarios: Vec<PathBuf>,
    options: RunOptions,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    strict: bool,
) -> ExitStatus {
    if let Err(status) = commands::preflight() {
        return status;
    }
    let scenarios = if scenarios.is_empty() {
        match default_scenario(&options) {
            Ok(path) => vec![path],
            Err(e) => return report(Err(e)),
        }
    } else {
        scenarios
    };
    let single = matches!(scenarios.as_slice(), [one] if one.is_file());
    if single && junit.is_none() && json.is_none() && !strict {
        return report(run_scenario(&RunOptions {
            scenario: scenarios[0].clone(),
            ..options
        }));
    }
    report(run_batch(&BatchOptions {
        paths: scenarios,
        run: options,
        junit,
        json,
        strict,
    }))
}

/// `lab/scenarios/us-east-isolated.toml` when run from the repository;
/// elsewhere the built-in copy, written into the runs directory so the run
/// keeps the file it ran.
fn default_scenario(options: &RunOptions) -> anyhow::Result<PathBuf> {
    let builtin = lab::builtin::DEFAULT_SCENARIO;
    let in_repo = PathBuf::from(format!("lab/scenarios/{}.toml", builtin.name));
    if in_repo.is_file() {
        return Ok(in_repo);
    }
    let runs = options
        .runs_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs"));
    std::fs::create_dir_all(&runs)?;
    let path = runs.join(format!("{}.toml", builtin.name));
    std::fs::write(&path, builtin.text)?;
    eprintln!("no scenario given: running the built-in {}", builtin.name);
    Ok(path)
}

fn bench_sweep(
    sizes: Vec<usize>,
    ops: u64,
    reps: usize,
    profile: &str,
    runs_dir: Option<PathBuf>,
    splitnode: Option<PathBuf>,
    no_etcd: bool,
) -> ExitStatus {
    let Some(profile) = bench::system::Profile::from_name(profile) else {
        eprintln!("error: --profile must be fast or default, got {profile:?}");
        return ExitStatus::Failed;
    };
    let exe = std::env::current_exe().unwrap_or_default();
    let splitnode = splitnode
        .or_else(|| client::find_splitnode(&exe))
        .unwrap_or_else(|| PathBuf::from("splitnode"));
    report(
        bench::sweep::sweep_command(&bench::sweep::SweepOptions {
            sizes,
            ops,
            reps,
            profile,
            runs_dir: runs_dir.unwrap_or_else(|| PathBuf::from("runs")),
            splitnode,
            etcd: if no_etcd {
                None
            } else {
                bench::system::find_etcd()
            },
        })
        .map(|_| ExitStatus::Success),
    )
}

/// Prints a command's error; an error ends it as an infrastructure failure.
fn report(result: anyhow::Result<ExitStatus>) -> ExitStatus {
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitStatus::Failed
        }
    }
}
