//! The interactive lab in the scenarios' language: `splitlab fault` reads
//! its command line as one timeline step (same parser, same validation,
//! same role resolution and the same nemesis as a scenario), `heal` lifts
//! everything, `up --system splitnode|etcd` starts a cluster, `exec` runs a
//! command inside a node's namespace.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use netlab::{Fault, Lab, LabOptions, NetlabError, RunId, Target, Topology};

use crate::commands::{fail, interrupt_flag, pick_run};
use crate::exit::ExitStatus;
use crate::run::judge::FaultRecord;
use crate::run::load::catalog_of;
use crate::run::nemesis::Nemesis;
use crate::run::scenario::{self, FaultKind, Step};
use crate::run::targets::ClusterView;

/// Prints a line to stdout, ignoring a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod system;

pub use self::system::{System, start_system};
use self::system::{load_specs, restart_node, started_system};

/// `splitlab fault KIND [VALUE] --targets ...`: one timeline step, written
/// on the command line with the keys of a `[[timeline]]` table.
#[derive(Debug, Clone, Default)]
pub struct FaultArgs {
    /// The `fault` key: partition, loss, delay, kill, pause, ...
    pub kind: String,
    /// The kind's main value: `30%` for loss/duplicate/corrupt/reorder,
    /// `50ms` for delay, `1mbit` for rate.
    pub value: Option<String>,
    /// The `grudge` key of a partition (isolate, one-way-in, bridge, ...).
    pub grudge: Option<String>,
    /// A role (`leader`, `followers`, ...) or comma-separated node names.
    pub targets: Option<String>,
    /// The other ends of link faults, like `targets`.
    pub peers: Option<String>,
    /// The `plane` key: all, heartbeat, replication, client.
    pub plane: Option<String>,
    /// The `for` key: lift the fault after this long (the command waits).
    pub duration: Option<String>,
    /// The `jitter` key of delay and reorder.
    pub jitter: Option<String>,
    /// The `period` key of flap.
    pub period: Option<String>,
    /// Groups of a `components` partition: `n1,n2/n3,n4`.
    pub components: Option<String>,
    /// Seeds role choices (which follower) and rings.
    pub seed: u64,
}

/// `"leader"` → a string (role or one node), `"n1,n2"` → an array.
fn targets_value(text: &str) -> toml::Value {
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    match names.as_slice() {
        [one] => toml::Value::String(one.to_string()),
        many => toml::Value::Array(many.iter().map(|n| toml::Value::from(*n)).collect()),
    }
}

/// The `[[timeline]]` table the command line stands for.
fn step_table(args: &FaultArgs) -> Result<toml::Table, String> {
    let mut table = toml::Table::new();
    table.insert("at".into(), "0s".into());
    table.insert("fault".into(), args.kind.as_str().into());
    if let Some(value) = &args.value {
        let key = match args.kind.as_str() {
            "loss" | "duplicate" | "corrupt" | "reorder" => "percent",
            "delay" => "delay",
            "rate" => "rate",
            other => {
                return Err(format!(
                    "fault {other:?} takes no value (got {value:?}); values go with \
                     loss/duplicate/corrupt/reorder (30%), delay (50ms) and rate (1mbit)"
                ));
            }
        };
        let value = if key == "percent" {
            let number = value.trim().trim_end_matches('%');
            toml::Value::Float(
                number
                    .parse::<f64>()
                    .map_err(|_| format!("{value:?} is not a percentage like 30%"))?,
            )
        } else {
            toml::Value::String(value.clone())
        };
        table.insert(key.into(), value);
    }
    let text_keys = [
        ("grudge", &args.grudge),
        ("plane", &args.plane),
        ("for", &args.duration),
        ("jitter", &args.jitter),
        ("period", &args.period),
    ];
    for (key, value) in text_keys {
        if let Some(value) = value {
            table.insert(key.into(), value.as_str().into());
        }
    }
    for (key, value) in [("targets", &args.targets), ("peers", &args.peers)] {
        if let Some(value) = value {
            table.insert(key.into(), targets_value(value));
        }
    }
    if let Some(groups) = &args.components {
        let groups: Vec<toml::Value> = groups
            .split('/')
            .map(|group| toml::Value::Array(group.split(',').map(|n| n.trim().into()).collect()))
            .collect();
        table.insert("components".into(), toml::Value::Array(groups));
    }
    Ok(table)
}

/// Parses and validates the command line as the one step of a scenario on
/// `topology`, exactly as a scenario file's timeline step is.
pub fn step_of(args: &FaultArgs, topology: &Topology) -> Result<Step, String> {
    let mut document = toml::Table::new();
    document.insert("topology".into(), topology.name.as_str().into());
    document.insert("duration".into(), "3600s".into());
    let mut workload = toml::Table::new();
    workload.insert("clients".into(), 1.into());
    document.insert("workload".into(), workload.into());
    document.insert(
        "timeline".into(),
        toml::Value::Array(vec![step_table(args)?.into()]),
    );
    let text = toml::to_string(&document).map_err(|e| e.to_string())?;
    let origin = Path::new("command line");
    let messages = |problems: Vec<scenario::ScenarioError>| {
        problems
            .into_iter()
            .map(|problem| problem.message)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let parsed = scenario::parse(&text, origin).map_err(messages)?;
    scenario::validate(&parsed, &catalog_of(topology), &text, origin).map_err(messages)?;
    parsed
        .timeline
        .into_iter()
        .next()
        .map(|step| step.into_inner())
        .ok_or_else(|| "no step".to_string())
}

/// Every node with its client address (the started system's client port;
/// splitnode's when `up` started none).
pub(super) fn client_addrs(lab: &Lab) -> Vec<(String, SocketAddr)> {
    let system = started_system(lab);
    lab.topology()
        .node_names()
        .into_iter()
        .filter_map(|node| {
            let addr = match &system {
                Some(system) => crate::system::client_addr(system, lab, &node),
                None => lab.client_addr(&node),
            };
            addr.map(|addr| (node, addr))
        })
        .collect()
}

/// What the nodes say right now, asked from the control namespace in the
/// started system's protocol.
pub(super) fn cluster_view(lab: &Lab) -> ClusterView {
    let nodes = client_addrs(lab);
    let protocol =
        started_system(lab).map_or(client::Protocol::Splitnode, |system| system.protocol());
    let statuses = lab
        .netns_thread(&Target::Control)
        .ok()
        .and_then(|control| {
            control
                .run(move || {
                    let mut member_ids = std::collections::BTreeMap::new();
                    protocol.poll_statuses(&nodes, Duration::from_millis(300), &mut member_ids)
                })
                .ok()
        })
        .unwrap_or_default();
    ClusterView {
        nodes: lab.topology().node_names(),
        leader: client::newest_leader(&statuses).map(|(leader, _)| leader),
    }
}

/// Attaches to the run for a change, refusing a lab a live process owns.
fn attach_for_change(run: Option<RunId>) -> Result<Lab, NetlabError> {
    let run = pick_run(run)?;
    let lab = Lab::attach(&run, &LabOptions::default())?;
    if let Some(pid) = lab.foreign_owner() {
        lab.detach();
        return Err(NetlabError::InvalidFault(format!(
            "lab {run} is owned by live process {pid}; apply faults through it"
        )));
    }
    Ok(lab)
}

/// `splitlab fault`: applies one step now; with `--for`, waits and lifts it.
pub fn fault(run: Option<RunId>, args: &FaultArgs) -> ExitStatus {
    let mut lab = match attach_for_change(run) {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    let status = apply_step(&mut lab, args);
    lab.detach();
    status
}

fn apply_step(lab: &mut Lab, args: &FaultArgs) -> ExitStatus {
    let step = match step_of(args, lab.topology()) {
        Ok(step) => step,
        Err(message) => return fail(&NetlabError::InvalidFault(message)),
    };
    let view = cluster_view(lab);
    let mut nemesis = Nemesis::new(view.nodes.clone(), args.seed);
    let resolved = match nemesis.resolve(&step, &view) {
        Ok(resolved) => resolved,
        Err(e) => return fail(&NetlabError::InvalidFault(e.to_string())),
    };
    let mut record = FaultRecord {
        step: 0,
        kind: step.kind(),
        description: step.describe(),
        targets: resolved.targets.clone(),
        grudge: None,
        all_planes: false,
        start_ns: 0,
        end_ns: None,
        leader_before: None,
        achieved: None,
    };
    let started = if step.kind() == FaultKind::Restart {
        restart_all(lab, &resolved.targets)
    } else {
        nemesis.start(lab, 0, &step, &resolved, &mut record)
    };
    if let Err(e) = started {
        return fail(&e);
    }
    let targets = if resolved.targets.is_empty() {
        String::new()
    } else {
        format!(" (targets: {})", resolved.targets.join(", "))
    };
    say!("fault applied: {}{targets}", step.describe());
    if let Some(grudge) = &record.grudge {
        let cuts: Vec<String> = grudge
            .cut_links()
            .map(|(f, t)| format!("{f}->{t}"))
            .collect();
        say!("  cut: {}", cuts.join(" "));
    }
    let Some(duration) = step.duration() else {
        return ExitStatus::Success;
    };
    say!("holding for {duration}; Ctrl-C lifts it early");
    let cancel = interrupt_flag();
    let until = Instant::now() + duration.as_std();
    while Instant::now() < until && !cancel.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lifted = if step.kind() == FaultKind::Kill {
        restart_all(lab, &resolved.targets)
    } else {
        nemesis.end(lab, 0, &step, None)
    };
    match lifted {
        Ok(()) => {
            say!("lifted: {}", step.describe());
            ExitStatus::Success
        }
        Err(e) => fail(&e),
    }
}

/// Starts each of `nodes` again from its recorded command (`restart`, and
/// the end of a timed `kill`).
fn restart_all(lab: &mut Lab, nodes: &[String]) -> Result<(), NetlabError> {
    nodes.iter().try_for_each(|node| restart_node(lab, node))
}

/// `splitlab heal`: every network fault off, paused nodes continued, and
/// nodes `up --system` started that are gone started again.
pub fn heal(run: Option<RunId>) -> ExitStatus {
    let mut lab = match attach_for_change(run) {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    let mut status = match lab.heal_all() {
        Ok(()) => ExitStatus::Success,
        Err(e) => fail(&e),
    };
    for node in lab.topology().node_names() {
        if lab.pid(&node).is_some() {
            let _ = lab.apply(&Fault::Cont { node });
        } else if load_specs(&lab).contains_key(&node)
            && let Err(e) = restart_node(&mut lab, &node)
        {
            status = fail(&e);
        }
    }
    if status == ExitStatus::Success {
        say!("healed: no network faults; every node process running");
    }
    lab.detach();
    status
}

/// `splitlab exec NODE -- COMMAND...`: runs the command inside the node's
/// network namespace with this terminal; returns its exit code (128 +
/// signal when a signal ended it).
pub fn exec(run: Option<RunId>, node: &str, command: &[String]) -> i32 {
    let netns = pick_run(run)
        .and_then(|run| Lab::attach(&run, &LabOptions::default()))
        .and_then(|lab| {
            let netns = lab.netns_of(&Target::Node(node.to_string()));
            lab.detach();
            netns
        });
    let netns = match netns {
        Ok(netns) => netns,
        Err(e) => return fail(&e).code(),
    };
    let Some((program, args)) = command.split_first() else {
        eprintln!("error: exec needs a command after --");
        return ExitStatus::InvalidInput.code();
    };
    let mut child = std::process::Command::new(program);
    child.args(args);
    // Spawned from a thread inside the namespace; the child keeps this
    // terminal's process group, so Ctrl-C and interactive shells work.
    match netlab::netns::in_netns(&netns, move || child.status()) {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt as _;
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        }
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: exec {program} in {netns}: {e}");
            ExitStatus::Failed.code()
        }
    }
}

#[cfg(test)]
mod tests;
