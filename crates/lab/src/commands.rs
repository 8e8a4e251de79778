//! The lab-infrastructure commands of `splitlab`: doctor, plan, up, status,
//! down, clean, probe, fault. Each returns an [`ExitStatus`] (0 ok,
//! 2 infrastructure error, 3 not root, 4 missing tool, 5 invalid input,
//! 6 unsupported fault, 130 interrupted); `main` prints errors.

/// Prints a line to stdout, ignoring a closed pipe (`splitlab up | head -1` must
/// not panic after the lab is up).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use crate::exit::ExitStatus;
use netlab::clean::{clean, inspect};
use netlab::doctor::run_doctor;
use netlab::journal::state_dir;
use netlab::probe::{ProbeOptions, format_table, probe};
use netlab::{Fault, Lab, LabOptions, NetlabError, RunId, Topology};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Prints the error; returns the status it ends the command with.
pub fn fail(error: &NetlabError) -> ExitStatus {
    eprintln!("error: {error}");
    ExitStatus::of_error(error)
}

/// Sets the returned flag on SIGINT or SIGTERM (handlers installed through
/// tokio on a private thread; children get default dispositions back at exec).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                let _ = ready_tx.send(());
                return;
            };
            let _ = ready_tx.send(());
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                setter.store(true, Ordering::SeqCst);
            }
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(2));
    flag
}

/// `splitlab doctor`.
pub fn doctor() -> ExitStatus {
    let checks = run_doctor();
    let mut basics_ok = true;
    for check in &checks {
        let mark = if check.ok { "yes" } else { "NO " };
        let kind = if check.basic { "basic" } else { "fault" };
        say!("{mark}  {:<17} [{kind}] {}", check.name, check.detail);
        if check.basic && !check.ok {
            basics_ok = false;
        }
    }
    if basics_ok {
        say!("basics present: `splitlab up` can build labs");
        return ExitStatus::Success;
    }
    say!("basics missing: fix the NO lines marked [basic] (scripts/setup.sh installs the tools)");
    let privilege_names: Vec<&str> = netlab::doctor::privilege_checks()
        .iter()
        .map(|check| check.name)
        .collect();
    let missing = |names: &[&str]| {
        checks
            .iter()
            .any(|check| !check.ok && names.contains(&check.name))
    };
    if missing(&["root"]) {
        ExitStatus::NotRoot
    } else if missing(&privilege_names) {
        say!("privileges missing: {}", netlab::doctor::PRIVILEGE_FIX);
        ExitStatus::Failed
    } else {
        ExitStatus::MissingTool
    }
}

/// Before `run` or `up` creates anything: may this process build labs?
/// Prints exactly what is missing and how to get it; `Err` carries the
/// status to end with (3 when not root at all, else 2).
pub fn preflight() -> Result<(), ExitStatus> {
    let Some(problem) = netlab::doctor::privilege_problem() else {
        return Ok(());
    };
    eprintln!("error: {problem}");
    Err(if nix::unistd::geteuid().is_root() {
        ExitStatus::Failed
    } else {
        ExitStatus::NotRoot
    })
}

/// A topology file, or the name of a built-in one (`mesh-3`) when no such
/// file exists.
fn load(path: &Path) -> Result<Topology, NetlabError> {
    if !path.exists()
        && let Some(file) = path.to_str().and_then(crate::builtin::topology)
    {
        return crate::run::load::TopologyFile::Builtin(file)
            .load()
            .map_err(NetlabError::from);
    }
    Topology::load(path).map_err(NetlabError::from)
}

/// `splitlab plan <topology>`: validates and prints the plan; changes nothing.
pub fn plan(path: &Path, run: Option<RunId>) -> ExitStatus {
    match load(path) {
        Ok(topology) => {
            let run = run.unwrap_or_else(|| "0000".parse().expect("valid literal"));
            {
                use std::io::Write as _;
                let _ = write!(std::io::stdout(), "{}", netlab::plan(&run, &topology));
            }
            for base in &topology.shapes {
                say!(
                    "# base shape {} -> {}: {}",
                    base.from,
                    base.to,
                    base.shape.describe()
                );
            }
            ExitStatus::Success
        }
        Err(e) => fail(&e),
    }
}

/// Options of `splitlab up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Topology file.
    pub topology: PathBuf,
    /// Run id.
    pub run: Option<RunId>,
    /// Stay in the foreground until Ctrl-C / SIGTERM, then tear down.
    pub hold: bool,
    /// Faults (netlab's JSON) to apply once the lab is up.
    pub faults: Vec<String>,
    /// A cluster to start in the lab once it is up.
    pub system: Option<crate::adhoc::System>,
    /// The `splitnode` binary for `--system splitnode`.
    pub splitnode: Option<PathBuf>,
    /// Parent of the directory that keeps the cluster's data and logs.
    pub runs_dir: Option<PathBuf>,
}

fn parse_fault(text: &str) -> Result<Fault, NetlabError> {
    serde_json::from_str(text).map_err(|e| NetlabError::InvalidFault(format!("{text}: {e}")))
}

/// `splitlab up`.
pub fn up(options: &UpOptions) -> ExitStatus {
    let topology = match load(&options.topology) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let faults: Vec<Fault> = match options.faults.iter().map(|f| parse_fault(f)).collect() {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    for fault in &faults {
        if let Err(message) = fault.validate(&topology) {
            return fail(&NetlabError::InvalidFault(message));
        }
    }
    if let Err(status) = preflight() {
        return status;
    }
    let cancel = interrupt_flag();
    let lab_options = LabOptions {
        run: options.run.clone(),
        cancel: Some(cancel.clone()),
        ..LabOptions::default()
    };
    let started = Instant::now();
    let mut lab = match Lab::up(&topology, &lab_options) {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    let took = started.elapsed();
    for fault in &faults {
        if let Err(e) = lab.apply(fault) {
            let code = fail(&e);
            let _ = lab.teardown();
            return code;
        }
        say!("fault applied: {}", fault.describe());
    }
    let timings = lab.timings();
    say!(
        "lab {} is up: topology {} ({} nodes) in {:.0} ms (namespaces+links {:.0} ms, capability probe {:.0} ms, base shaping {:.0} ms)",
        lab.run_id(),
        topology.name,
        topology.nodes.len(),
        took.as_secs_f64() * 1e3,
        timings.plan.as_secs_f64() * 1e3,
        timings.probe.as_secs_f64() * 1e3,
        timings.shaping.as_secs_f64() * 1e3,
    );
    for node in &lab.plan().nodes {
        say!("  {:<10} {:<15} netns {}", node.name, node.addr, node.netns);
    }
    say!(
        "  control    {:<15} netns {}",
        lab.plan().control_addr,
        lab.plan().control_netns
    );
    say!("journal: {}", lab.run_dir().join("journal.json").display());
    if let Some(system) = options.system {
        let stamp = ::figures::stamp::utc_stamp(std::time::SystemTime::now());
        let data_root = options
            .runs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs"))
            .join(format!("{stamp}-lab-{}", lab.run_id()))
            .join("nodes");
        if let Err(e) =
            crate::adhoc::start_system(&mut lab, system, options.splitnode.clone(), &data_root)
        {
            eprintln!("error: {e:#}");
            let _ = lab.teardown();
            return ExitStatus::Failed;
        }
    }
    if !options.hold {
        say!("tear down with: splitlab down --run {}", lab.run_id());
        lab.detach();
        return ExitStatus::Success;
    }
    say!("holding; Ctrl-C tears the lab down");
    while !cancel.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    match lab.teardown() {
        Ok(took) => {
            say!("lab torn down in {:.0} ms", took.as_secs_f64() * 1e3);
            ExitStatus::Success
        }
        Err(e) => fail(&e),
    }
}

/// Picks the run: the given one, or the only one there is.
pub fn pick_run(run: Option<RunId>) -> Result<RunId, NetlabError> {
    if let Some(run) = run {
        return Ok(run);
    }
    let runs = netlab::journal::Journal::list(&state_dir());
    match runs.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(NetlabError::InvalidFault(
            "no lab is up (no journal in the state directory)".into(),
        )),
        many => Err(NetlabError::InvalidFault(format!(
            "several labs are up ({}); pass --run ID",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `splitlab down`.
pub fn down(run: Option<RunId>) -> ExitStatus {
    let run = match pick_run(run) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match Lab::attach(&run, &LabOptions::default()).and_then(Lab::teardown) {
        Ok(took) => {
            say!("lab {run} torn down in {:.0} ms", took.as_secs_f64() * 1e3);
            ExitStatus::Success
        }
        Err(e) => fail(&e),
    }
}

/// `splitlab status`.
pub fn status() -> ExitStatus {
    let runs = inspect(&state_dir());
    if runs.is_empty() {
        say!("no labs");
        return ExitStatus::Success;
    }
    for status in runs {
        match &status.journal {
            Some(journal) => {
                say!(
                    "run {}  topology {}  state {:?}  owner pid {} ({})  namespaces {}/{}  live processes {}",
                    status.run,
                    journal.topology.name,
                    journal.state,
                    journal.owner.pid,
                    if status.owner_alive { "alive" } else { "gone" },
                    status.namespaces.len(),
                    journal.plan.namespaces.len(),
                    status.live_processes.len(),
                );
                for (planes, grudge) in &journal.net.partitions {
                    let cuts: Vec<String> = grudge
                        .cut_links()
                        .map(|(f, t)| format!("{f}->{t}"))
                        .collect();
                    say!("  partition [{planes}] {}", cuts.join(" "));
                }
                for entry in &journal.net.shapes {
                    say!(
                        "  shape [{}] {}->{}: {}",
                        entry.planes,
                        entry.from,
                        entry.to,
                        entry.shape.describe()
                    );
                }
                for (a, b) in &journal.net.down {
                    say!("  link down {a}--{b}");
                }
                for p in &status.live_processes {
                    say!(
                        "  pid {} {} {}",
                        p.pid,
                        p.role,
                        p.node.as_deref().unwrap_or("-")
                    );
                }
            }
            None => say!(
                "run {}  NO JOURNAL  namespaces: {}  (remove with splitlab clean)",
                status.run,
                status.namespaces.join(" ")
            ),
        }
    }
    ExitStatus::Success
}

/// `splitlab clean`.
pub fn clean_command(run: Option<RunId>, force: bool) -> ExitStatus {
    if !nix::unistd::geteuid().is_root() {
        return fail(&NetlabError::NotRoot);
    }
    match clean(&state_dir(), run.as_ref(), force) {
        Ok(report) => {
            for run in &report.skipped_live {
                say!("skipped run {run}: its owner process is alive (use --force)");
            }
            for (ns, pid) in &report.unrecorded {
                say!("warning: pid {pid} in {ns} was not recorded by any journal; not killed");
            }
            for path in &report.disks {
                say!("unmounted data disk {} (files kept)", path.display());
            }
            say!(
                "cleaned {} run(s): killed {} recorded process(es), deleted {} namespace(s), unmounted {} data disk(s)",
                report.runs.len(),
                report.killed.len(),
                report.namespaces.len(),
                report.disks.len()
            );
            ExitStatus::Success
        }
        Err(e) => fail(&NetlabError::io("clean", e)),
    }
}

/// `splitlab probe`.
pub fn probe_command(run: Option<RunId>, packets: u32) -> ExitStatus {
    let run = match pick_run(run) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let lab = match Lab::attach(&run, &LabOptions::default()) {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    let options = ProbeOptions {
        udp_packets: packets,
        ..ProbeOptions::default()
    };
    let code = match probe(&lab, &options) {
        Ok(results) => {
            {
                use std::io::Write as _;
                let _ = write!(std::io::stdout(), "{}", format_table(&results));
            }
            ExitStatus::Success
        }
        Err(e) => fail(&e),
    };
    lab.detach();
    code
}

/// `splitlab fault --json`: applies netlab's low-level JSON faults to a
/// running lab and leaves it up (the scenario vocabulary is [`crate::adhoc`]).
pub fn fault_command(run: Option<RunId>, faults: &[String]) -> ExitStatus {
    let run = match pick_run(run) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let parsed: Vec<Fault> = match faults.iter().map(|f| parse_fault(f)).collect() {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let mut lab = match Lab::attach(&run, &LabOptions::default()) {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    if let Some(pid) = lab.foreign_owner() {
        lab.detach();
        return fail(&NetlabError::InvalidFault(format!(
            "lab {run} is owned by live process {pid}; apply faults through it"
        )));
    }
    let mut code = ExitStatus::Success;
    for fault in &parsed {
        match lab.apply(fault) {
            Ok(()) => say!("fault applied: {}", fault.describe()),
            Err(e) => {
                code = fail(&e);
                break;
            }
        }
    }
    lab.detach();
    code
}
