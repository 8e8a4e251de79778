//! `splitlab up --system splitnode|etcd`: one member per lab node, its
//! command and the system's description recorded beside the journal so
//! `heal`, `fault restart` and role targets, run later from another process,
//! can start a node again and ask the nodes in the system's protocol.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client::{Peer, SplitnodeCommand};
use netlab::{Fault, Lab, NetlabError, ProcessSpec};

use super::{client_addrs, cluster_view};

/// Where `up --system` records how it started each node, so `heal` and
/// `fault restart` can start one again from another process.
fn specs_path(lab: &Lab) -> PathBuf {
    lab.run_dir().join("systems.json")
}

/// Where `up --system` records the description of the system it started.
fn description_path(lab: &Lab) -> PathBuf {
    lab.run_dir().join("system.toml")
}

/// The system `up --system` started in this lab (every option at its
/// default), if any.
pub(super) fn started_system(lab: &Lab) -> Option<crate::system::System> {
    let path = description_path(lab);
    let text = std::fs::read_to_string(&path).ok()?;
    crate::system::System::with_defaults(&text, &path.display().to_string()).ok()
}

pub(super) fn load_specs(lab: &Lab) -> BTreeMap<String, ProcessSpec> {
    std::fs::read_to_string(specs_path(lab))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Kills a node's process if it runs and starts it again from its recorded
/// spec (same data directory).
pub(super) fn restart_node(lab: &mut Lab, node: &str) -> Result<(), NetlabError> {
    let spec = load_specs(lab).remove(node).ok_or_else(|| {
        NetlabError::NoProcess(format!(
            "{node}: no recorded command (only nodes started by `splitlab up --system` restart)"
        ))
    })?;
    if lab.pid(node).is_some() {
        lab.apply(&Fault::Kill {
            node: node.to_string(),
        })?;
        // Not our child: the kernel takes a moment to tear the killed
        // process down (etcd's many threads take longer than splitnode's),
        // and spawn refuses while the recorded process still exists.
        let deadline = Instant::now() + Duration::from_secs(5);
        while lab.pid(node).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    lab.spawn(node, spec).map(|_| ())
}

/// The systems `up --system` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// This project's `splitnode`.
    Splitnode,
    /// etcd, the baseline the benches compare against, started from its
    /// description (`lab/systems/etcd.toml`) as `splitlab run --system etcd`
    /// starts it.
    Etcd,
}

impl System {
    /// The description's name (`lab/systems/<name>.toml` or built in).
    fn name(self) -> &'static str {
        match self {
            System::Splitnode => "splitnode",
            System::Etcd => "etcd",
        }
    }
}

/// Starts `system` on every node of a lab that is up; records the specs
/// and the description; waits up to 15 s for a leader (asked in the
/// system's protocol) and prints the client addresses.
pub fn start_system(
    lab: &mut Lab,
    system: System,
    splitnode: Option<PathBuf>,
    data_root: &Path,
) -> anyhow::Result<()> {
    // Resolved like `splitlab run --system NAME`: lab/systems/ above the
    // working directory, else the built-in description.
    let (file, text) =
        crate::system::find_system(Path::new("."), system.name()).map_err(anyhow::Error::msg)?;
    let description =
        crate::system::System::with_defaults(&text, &file).map_err(anyhow::Error::msg)?;
    if !description.description.companions.is_empty() {
        anyhow::bail!(
            "splitlab up does not start companion processes yet; system {} has [[companion]] \
             entries (run its scenarios with splitlab run)",
            description.name()
        );
    }
    let specs = if description.is_splitnode() {
        splitnode_specs(lab, splitnode, data_root)?
    } else {
        member_specs(lab, &description, data_root)?
    };
    std::fs::write(specs_path(lab), serde_json::to_string_pretty(&specs)?)?;
    std::fs::write(description_path(lab), &description.text)?;
    for (node, spec) in specs {
        lab.spawn(&node, spec)?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        let view = cluster_view(lab);
        if view.leader.is_some() || Instant::now() > deadline {
            break view.leader;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    say!(
        "{} cluster of {} started (data and logs in {}); leader: {}",
        description.name(),
        lab.topology().node_names().len(),
        data_root.display(),
        leader.as_deref().unwrap_or("none yet")
    );
    for (node, addr) in client_addrs(lab) {
        say!("  {node:<10} client http://{addr}");
    }
    Ok(())
}

/// One `splitnode` per node, bootstrapped, peers authenticated with a
/// fresh cluster key.
fn splitnode_specs(
    lab: &Lab,
    splitnode: Option<PathBuf>,
    data_root: &Path,
) -> anyhow::Result<BTreeMap<String, ProcessSpec>> {
    let exe = std::env::current_exe().unwrap_or_default();
    let binary = splitnode
        .or_else(|| client::find_splitnode(&exe))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "splitnode not found next to splitlab (build it: cargo build --release -p node, \
                 or pass --splitnode PATH)"
            )
        })?;
    let nodes = lab.topology().node_names();
    let addrs = |node: &str| -> anyhow::Result<(SocketAddr, SocketAddr)> {
        lab.peer_addr(node)
            .zip(lab.client_addr(node))
            .ok_or_else(|| anyhow::anyhow!("netlab has no address for node {node}"))
    };
    let mut specs = BTreeMap::new();
    for node in &nodes {
        let dir = data_root.join(node);
        std::fs::create_dir_all(&dir)?;
        let mut command = SplitnodeCommand::new(
            &binary,
            node.as_str(),
            lab.topology().name.clone(),
            addrs(node)?,
            &dir,
            "info",
        );
        command.bootstrap = true;
        // Like `splitlab run`: peers authenticate with a fresh key.
        let key = data_root.join("cluster.key");
        client::ensure_cluster_key(&key)?;
        command.cluster_key_file = Some(key);
        for peer in nodes.iter().filter(|peer| *peer != node) {
            let (peer_addr, client_addr) = addrs(peer)?;
            command.peers.push(Peer {
                name: peer.clone(),
                peer: peer_addr,
                client: client_addr,
            });
        }
        let mut spec = ProcessSpec::new(&command.binary, command.args());
        spec.stdout = Some(dir.join("splitnode.log"));
        spec.stderr = Some(dir.join("splitnode.log"));
        spec.env.extend(command.env());
        specs.insert(node.clone(), spec);
    }
    Ok(specs)
}

/// One member per node from the description's command template, with the
/// timing a scenario that sets none runs with (as `splitlab run` builds
/// them: data in `<node>/data`, the log beside it).
fn member_specs(
    lab: &Lab,
    system: &crate::system::System,
    data_root: &Path,
) -> anyhow::Result<BTreeMap<String, ProcessSpec>> {
    let timing = crate::run::scenario::NodeSettings::default().timing();
    let ms = |d: crate::run::duration::Dur| d.as_nanos() / 1_000_000;
    let nodes = lab.topology().node_names();
    let members = (nodes.iter())
        .map(|name| {
            lab.node_addr(name)
                .map(|addr| (name.clone(), IpAddr::from(addr)))
                .ok_or_else(|| anyhow::anyhow!("netlab has no address for node {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut specs = BTreeMap::new();
    for node in &nodes {
        let dir = data_root.join(node);
        std::fs::create_dir_all(&dir)?;
        let member = crate::system::MemberContext {
            name: node.clone(),
            cluster: lab.topology().name.clone(),
            data_dir: dir.join("data"),
            heartbeat_ms: ms(timing.heartbeat),
            election_timeout_ms: (
                ms(timing.election_timeout_min),
                ms(timing.election_timeout_max),
            ),
            members: members.clone(),
        };
        specs.insert(
            node.clone(),
            crate::system::member_spec(system, &member, &dir)?,
        );
    }
    Ok(specs)
}
