//! `splitlab up --system splitnode`: one `splitnode` per lab node, its
//! command recorded beside the journal so `heal` and `fault restart`, run
//! later from another process, can start a node again.
use std::net::SocketAddr;
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

pub(super) fn load_specs(lab: &Lab) -> std::collections::BTreeMap<String, ProcessSpec> {
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
    }
    lab.spawn(node, spec).map(|_| ())
}

/// The systems `up --system` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// This project's `splitnode`.
    Splitnode,
    /// etcd, the baseline the benches compare against (not yet: see
    /// `splitlab bench`).
    Etcd,
}

/// Starts `system` on every node of a lab that is up; records the specs;
/// waits up to 15 s for a leader and prints the client addresses.
pub fn start_system(
    lab: &mut Lab,
    system: System,
    splitnode: Option<PathBuf>,
    data_root: &Path,
) -> anyhow::Result<()> {
    if system == System::Etcd {
        anyhow::bail!(
            "--system etcd is not supported by `up` yet (etcd runs in `splitlab bench`); \
             use --system splitnode"
        );
    }
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
    let mut specs = std::collections::BTreeMap::new();
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
    std::fs::write(specs_path(lab), serde_json::to_string_pretty(&specs)?)?;
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
        "splitnode cluster of {} started (data and logs in {}); leader: {}",
        nodes.len(),
        data_root.display(),
        leader.as_deref().unwrap_or("none yet")
    );
    for (node, addr) in client_addrs(lab) {
        say!("  {node:<10} client http://{addr}");
    }
    Ok(())
}
