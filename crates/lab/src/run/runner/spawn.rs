//! Starting what a run runs: one `splitnode` per node namespace (command
//! line from the client crate's typed builder), the history recorder, and
//! one client thread per workload client inside its home node's namespace.
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::thread::JoinHandle;

use checker::Op;
use client::{Peer, SplitnodeCommand};
use netlab::{Lab, ProcessSpec, Target};

use super::RunSetup;
use crate::run::workload::{self, ClientPlan, Counters, Generator};

/// The node log filter when the scenario does not set `nodes.log`: quiet
/// enough that a long run's logs stay small, loud enough for trouble.
pub(super) const DEFAULT_NODE_LOG: &str = "warn";

/// Where one node keeps its data, events and log.
pub(super) fn node_dir(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("nodes").join(node)
}

/// The `splitnode` process for one node.
fn node_spec(setup: &RunSetup<'_>, lab: &Lab, node: &str) -> anyhow::Result<ProcessSpec> {
    let scenario = &setup.loaded.scenario;
    let settings = &scenario.nodes;
    let timing = settings.timing();
    let addrs = |node: &str| -> anyhow::Result<(SocketAddr, SocketAddr)> {
        lab.peer_addr(node)
            .zip(lab.client_addr(node))
            .ok_or_else(|| anyhow::anyhow!("netlab has no address for node {node}"))
    };
    let dir = node_dir(setup.run_dir, node);
    std::fs::create_dir_all(&dir)?;
    let overrides = settings
        .overrides
        .iter()
        .find(|(name, _)| name.get_ref() == node)
        .map(|(_, o)| o.clone())
        .unwrap_or_default();
    let log_level = settings.log.as_deref().unwrap_or(DEFAULT_NODE_LOG);
    let ms = |d: crate::run::duration::Dur| d.as_nanos() / 1_000_000;
    let mut command = SplitnodeCommand::new(
        setup.splitnode,
        node,
        scenario.name.clone(),
        addrs(node)?,
        &dir,
        log_level,
    );
    if lab.has_data_disk(node) {
        command.data_dir = dir.join("data"); // see node_faults::mount_data_disk
    }
    command.mode = Some(overrides.mode.unwrap_or(settings.mode).name().into());
    command.profile = Some(settings.profile.name().into());
    command.heartbeat_ms = Some(ms(timing.heartbeat));
    command.election_timeout_ms = Some((
        ms(timing.election_timeout_min),
        ms(timing.election_timeout_max),
    ));
    // A client request must not outlive the lab client's own timeout by
    // much, or every slow answer turns into an `info`.
    command.client_timeout_ms = Some(ms(scenario.workload.timeout).max(100));
    // Harmless on restarts: the data directory then already holds state.
    command.bootstrap = true;
    for peer in setup.topology.node_names() {
        if peer != node {
            let (peer_addr, client_addr) = addrs(&peer)?;
            command.peers.push(Peer {
                name: peer,
                peer: peer_addr,
                client: client_addr,
            });
        }
    }
    command.test_clock_offset_ms = overrides.clock_offset_ms;
    command.test_clock_rate = overrides.clock_rate;
    if settings.cluster_key {
        command.cluster_key_file = Some(cluster_key_file(setup.run_dir)?);
    }
    let mut spec = ProcessSpec::new(&command.binary, command.args());
    spec.stdout = Some(dir.join("splitnode.log"));
    spec.stderr = Some(dir.join("splitnode.log"));
    spec.env.extend(command.env());
    Ok(spec)
}

/// The run's cluster key file (`cluster.key` in the run directory): a
/// fresh random key per run, shared by every node, restarts included.
pub(super) fn cluster_key_file(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = run_dir.join("cluster.key");
    client::ensure_cluster_key(&path)
        .map_err(|error| anyhow::anyhow!("cluster key {}: {error}", path.display()))?;
    Ok(path)
}

/// One member of a system started from its description's template: its
/// main process and its companions.
fn member_specs(
    setup: &RunSetup<'_>,
    lab: &Lab,
    node: &str,
) -> anyhow::Result<(ProcessSpec, Vec<ProcessSpec>)> {
    let timing = setup.loaded.scenario.nodes.timing();
    let ms = |d: crate::run::duration::Dur| d.as_nanos() / 1_000_000;
    let dir = node_dir(setup.run_dir, node);
    std::fs::create_dir_all(&dir)?;
    let members = (setup.topology.node_names().into_iter())
        .map(|name| {
            let addr = lab.node_addr(&name);
            addr.map(|addr| (name.clone(), std::net::IpAddr::from(addr)))
                .ok_or_else(|| anyhow::anyhow!("netlab has no address for node {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let member = crate::system::MemberContext {
        name: node.to_string(),
        cluster: setup.loaded.scenario.name.clone(),
        data_dir: dir.join("data"),
        heartbeat_ms: ms(timing.heartbeat),
        election_timeout_ms: (
            ms(timing.election_timeout_min),
            ms(timing.election_timeout_max),
        ),
        members,
    };
    let main = crate::system::member_spec(setup.system, &member, &dir)?;
    let companions = crate::system::companion_specs(setup.system, &member, &dir)?;
    Ok((main, companions))
}

/// Starts every node (and its companions, journaled so teardown stops
/// them; process faults act on the main process only) and writes `pids`
/// (one "node pid" per main process) into the run directory.
pub(super) fn start_nodes(setup: &RunSetup<'_>, lab: &mut Lab) -> anyhow::Result<()> {
    let mut pids = Vec::new();
    for node in setup.topology.node_names() {
        let (spec, companions) = if setup.system.is_splitnode() {
            (node_spec(setup, lab, &node)?, Vec::new())
        } else {
            member_specs(setup, lab, &node)?
        };
        pids.push(format!("{node} {}", lab.spawn(&node, spec)?));
        for companion in companions {
            lab.spawn_aux(&Target::Node(node.clone()), &companion)?;
        }
    }
    std::fs::write(setup.run_dir.join("pids"), pids.join("\n") + "\n")?;
    Ok(())
}

/// The history recorder thread; it returns every record once all senders
/// are dropped.
pub(super) type Recorder = JoinHandle<std::io::Result<Vec<Op>>>;

/// The history recorder: one line per record in `history.jsonl`, flushed as
/// it goes so a crash still leaves a readable history.
pub(super) fn start_recorder(run_dir: &Path) -> std::io::Result<(mpsc::Sender<Op>, Recorder)> {
    let (history_tx, history_rx) = mpsc::channel::<Op>();
    let history_path = run_dir.join("history.jsonl");
    let recorder = std::thread::Builder::new().name("history".into()).spawn(
        move || -> std::io::Result<Vec<Op>> {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&history_path)?);
            let mut ops = Vec::new();
            for op in history_rx {
                serde_json::to_writer(&mut file, &op)?;
                file.write_all(b"\n")?;
                ops.push(op);
            }
            file.flush()?;
            Ok(ops)
        },
    )?;
    Ok((history_tx, recorder))
}

/// What the client threads share with the runner.
pub(super) struct ClientShared {
    /// Where every operation is recorded.
    pub(super) history: mpsc::Sender<Op>,
    /// Set to stop the clients early.
    pub(super) stop: Arc<AtomicBool>,
    /// Live ok/fail/info counts for the progress line.
    pub(super) counters: Arc<Counters>,
}

/// A client thread: outer `Err` when it could not enter its namespace,
/// inner `Err` when the client stopped early (see `workload::run_client`).
pub(super) type ClientThread = JoinHandle<std::io::Result<Result<(), String>>>;

/// Starts one thread per workload client, each inside its home node's
/// namespace, running until `end_ns`.
pub(super) fn start_clients(
    setup: &RunSetup<'_>,
    lab: &Lab,
    client_addrs: &[(String, SocketAddr)],
    shared: &ClientShared,
    end_ns: u64,
) -> anyhow::Result<Vec<ClientThread>> {
    let scenario = &setup.loaded.scenario;
    let homes = workload::place_clients(&scenario.workload, &setup.loaded.catalog);
    let mut clients = Vec::new();
    for (process, home) in homes.iter().enumerate() {
        let netns = lab.netns_of(&Target::Node(home.clone()))?;
        let plan = ClientPlan {
            process: process as u64,
            home: home.clone(),
            nodes: client_addrs.to_vec(),
            route: scenario.workload.route,
            rate: scenario.workload.rate,
            timeout: scenario.workload.timeout.as_std(),
            generator: Generator::new(
                process as u64,
                scenario.workload.keys,
                scenario.workload.mix,
                setup.seed,
            ),
            end_ns,
            protocol: setup.system.protocol(),
        };
        let (tx, stop, counters) = (
            shared.history.clone(),
            shared.stop.clone(),
            shared.counters.clone(),
        );
        clients.push(
            std::thread::Builder::new()
                .name(format!("client-{process}"))
                .spawn(move || {
                    // The client's sockets are created inside its home
                    // node's namespace: cut the node off and its clients are
                    // cut off with it.
                    netlab::netns::in_netns(&netns, move || {
                        workload::run_client(plan, tx, stop, counters)
                    })
                })?,
        );
    }
    Ok(clients)
}
