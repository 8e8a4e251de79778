//! `splitlab`: command-line entry point. Lab infrastructure commands live in
//! `lab::commands`; `run`/`check` in `lab::run`.

use clap::{Parser, Subcommand};
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
        /// Topology file (lab/topologies/*.toml).
        topology: PathBuf,
        /// Run id to use in names (default 0000).
        #[arg(long)]
        run: Option<RunId>,
    },
    /// Build a topology; returns once it is ready and journaled.
    Up {
        /// Topology file.
        topology: PathBuf,
        /// Run id (4 hex digits; default random).
        #[arg(long)]
        run: Option<RunId>,
        /// Stay in the foreground; Ctrl-C or SIGTERM tears the lab down.
        #[arg(long)]
        hold: bool,
        /// A fault to apply once up, as JSON, e.g.
        /// '{"fault":"partition","grudge":{"n1":["n3"]}}' (repeatable).
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
    /// Apply faults (JSON, see `up --fault`) to a running lab.
    Fault {
        /// Run id.
        #[arg(long)]
        run: Option<RunId>,
        /// Faults as JSON.
        #[arg(required = true)]
        faults: Vec<String>,
    },
    /// Run a scenario end to end and judge it.
    Run {
        /// Scenario file (lab/scenarios/*.toml).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Parent directory of run directories (default runs/).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
        /// Path of the splitnode binary.
        #[arg(long)]
        splitnode: Option<PathBuf>,
    },
    /// Re-judge a stored run directory offline.
    Check {
        /// Run directory.
        run_dir: PathBuf,
    },
    /// Benchmarks of real clusters (splitnode next to etcd).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Write latency and failover time against cluster size: table, results.json
    /// and an SVG plot in runs/<time>-bench-sweep/.
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Hidden helper: the NFQUEUE delay worker runs as this same executable.
    if args.get(1).map(String::as_str) == Some(netlab::DELAY_WORKER_ARG) {
        std::process::exit(netlab::delay_worker_main(&args[2..]));
    }
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Doctor => commands::doctor(),
        Command::Plan { topology, run } => commands::plan(&topology, run),
        Command::Up {
            topology,
            run,
            hold,
            faults,
        } => commands::up(&UpOptions {
            topology,
            run,
            hold,
            faults,
        }),
        Command::Status => commands::status(),
        Command::Down { run } => commands::down(run),
        Command::Clean { run, force } => commands::clean_command(run, force),
        Command::Probe { run, packets } => commands::probe_command(run, packets),
        Command::Fault { run, faults } => commands::fault_command(run, &faults),
        Command::Run {
            scenario,
            seed,
            runs_dir,
            splitnode,
        } => report(run_scenario(&RunOptions {
            scenario,
            seed,
            runs_dir,
            splitnode,
        })),
        Command::Check { run_dir } => report(check_run_dir(&run_dir)),
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
