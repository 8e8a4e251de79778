//! A cluster under test inside a netlab mesh: the lab (namespaces, veths,
//! partitions), the server processes (splitnode or etcd, one per node
//! namespace), and their client APIs seen from the control namespace.
//!
//! [`BenchLab`] is a drop guard: however a bench ends (error or panic), its
//! processes are killed and its namespaces deleted.

use crate::floor::{
    FloorRaw, FloorSamples, QuorumSockets, durable_round_trips, fsync_latency, fsync_pair_latency,
    quorum_round_trips, udp_round_trips,
};
use crate::netns::run_in_netns;
use crate::system::{Profile, System, etcd_description, fsync_metric, view};
use anyhow::{Context, anyhow, bail};
use client::system::MemberContext;
use client::{HttpConn, LeaderView, Peer, SplitnodeCommand, WaitError};
use netlab::grudge::isolate_one;
use netlab::{
    Fault, Lab, LabOptions, NetlabError, Planes, ProcessSignal, ProcessSpec, Target, Topology,
};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A mesh lab plus the cluster currently running in it. Dropping it kills
/// every process and deletes every namespace (and, if it created it, the
/// work directory).
pub struct BenchLab {
    lab: Option<Lab>,
    nodes: Vec<String>,
    control_netns: String,
    work_dir: PathBuf,
    remove_work_dir: bool,
    running: Option<(System, Profile)>,
    /// Cluster key file for splitnode clusters started from now on.
    cluster_key: Option<PathBuf>,
}

impl BenchLab {
    /// Builds a full mesh of `size` nodes (`n1..nN`). Node data and logs go
    /// under `work_dir` (created; removed on drop when `remove_work_dir`).
    ///
    /// # Errors
    /// Not root, missing tools, or bring-up failures.
    pub fn up(size: usize, work_dir: &Path, remove_work_dir: bool) -> anyhow::Result<BenchLab> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("create {}", work_dir.display()))?;
        let topology = Topology::full_mesh(size);
        let mut attempt = 0;
        let lab = loop {
            attempt += 1;
            match Lab::up(&topology, &LabOptions::default()) {
                Ok(lab) => break lab,
                // A random run id taken by another lab on the box: pick again.
                Err(NetlabError::RunExists(_)) if attempt < 8 => continue,
                Err(e) => return Err(anyhow!(e).context(format!("bring up a {size}-node mesh"))),
            }
        };
        Ok(BenchLab {
            nodes: topology.node_names(),
            control_netns: lab.plan().control_netns.clone(),
            lab: Some(lab),
            work_dir: work_dir.to_path_buf(),
            remove_work_dir,
            running: None,
            cluster_key: None,
        })
    }

    fn lab(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("the lab is up until drop")
    }

    fn lab_ref(&self) -> &Lab {
        self.lab.as_ref().expect("the lab is up until drop")
    }

    /// Starts the next splitnode clusters with this cluster key file (peer
    /// frames MACed) or, with `None`, unkeyed. Takes effect at [`BenchLab::start`].
    pub fn set_cluster_key(&mut self, key_file: Option<PathBuf>) {
        self.cluster_key = key_file;
    }

    /// Node names, `n1..nN`.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The control namespace (linked to every node, never faulted): where
    /// bench clients run.
    pub fn control_netns(&self) -> &str {
        &self.control_netns
    }

    /// The cluster currently running.
    pub fn running(&self) -> Option<(System, Profile)> {
        self.running
    }

    /// Client API address of `node` for `system`.
    ///
    /// # Panics
    /// Unknown node.
    pub fn client_addr(&self, system: System, node: &str) -> SocketAddr {
        let lab = self.lab_ref();
        match system {
            System::Splitnode => lab.client_addr(node),
            System::Etcd => lab
                .node_addr(node)
                .zip(etcd_description().client_port())
                .map(|(addr, port)| SocketAddr::from((addr, port))),
        }
        .unwrap_or_else(|| panic!("no node {node} in this lab"))
    }

    fn node_dir(&self, system: System, node: &str) -> PathBuf {
        self.work_dir
            .join(format!("{}-{}", system.name(), self.nodes.len()))
            .join(node)
    }

    fn spec(&self, system: System, profile: Profile, binary: &Path, node: &str) -> ProcessSpec {
        let lab = self.lab_ref();
        let dir = self.node_dir(system, node);
        let data = dir.join("data");
        let log = dir.join(format!("{}.log", system.name()));
        let mut spec = match system {
            System::Splitnode => {
                let peer = |n: &str| lab.peer_addr(n).expect("planned node");
                let client = |n: &str| lab.client_addr(n).expect("planned node");
                let mut command = SplitnodeCommand::new(
                    binary,
                    node,
                    "bench",
                    (peer(node), client(node)),
                    &data,
                    "warn",
                );
                command.profile = Some(profile.name().into());
                command.bootstrap = true;
                command.cluster_key_file = self.cluster_key.clone();
                command.peers = (self.nodes.iter().filter(|n| *n != node))
                    .map(|other| Peer {
                        name: other.clone(),
                        peer: peer(other),
                        client: client(other),
                    })
                    .collect();
                let mut spec = ProcessSpec::new(binary, command.args());
                spec.env.extend(command.env());
                spec
            }
            System::Etcd => {
                // The lab's etcd description renders the command line.
                let member = MemberContext {
                    name: node.to_string(),
                    cluster: "bench".into(),
                    data_dir: data,
                    heartbeat_ms: profile.heartbeat_ms(),
                    election_timeout_ms: (profile.election_ms(), 2 * profile.election_ms()),
                    members: (self.nodes.iter())
                        .map(|n| (n.clone(), lab.node_addr(n).expect("planned node").into()))
                        .collect(),
                };
                let args = etcd_description()
                    .member_args(&member)
                    .expect("the built-in etcd template renders");
                ProcessSpec::new(binary, args)
            }
        };
        spec.stdout = Some(log.clone());
        spec.stderr = Some(log);
        spec
    }

    /// Starts `system` on every node with `profile` and waits until all
    /// nodes follow one leader. Stops whatever ran before.
    ///
    /// # Errors
    /// Spawn failures, or no agreed leader within 30 s (the error names the
    /// node logs).
    pub fn start(
        &mut self,
        system: System,
        profile: Profile,
        binary: &Path,
    ) -> anyhow::Result<String> {
        self.stop()?;
        for node in self.nodes.clone() {
            let dir = self.node_dir(system, &node);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let spec = self.spec(system, profile, binary, &node);
            self.lab()
                .spawn(&node, spec)
                .with_context(|| format!("start {} on {node}", system.name()))?;
        }
        self.running = Some((system, profile));
        self.stable_leader(Duration::from_secs(30))
            .with_context(|| {
                format!(
                    "{} cluster of {} did not elect a leader (logs under {})",
                    system.name(),
                    self.nodes.len(),
                    self.work_dir.display()
                )
            })
    }

    /// Kills the running cluster (SIGKILL) and deletes its data directories
    /// (logs and splitnode's `events.jsonl` stay).
    ///
    /// # Errors
    /// Signal failures.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some((system, _)) = self.running.take() else {
            return Ok(());
        };
        for node in self.nodes.clone() {
            self.lab().signal(&node, ProcessSignal::Kill)?;
            let dir = self.node_dir(system, &node);
            // splitnode's event log explains odd figures; keep it next to the logs.
            let _ = std::fs::rename(dir.join("data/events.jsonl"), dir.join("events.jsonl"));
            let _ = std::fs::remove_dir_all(dir.join("data"));
        }
        Ok(())
    }

    /// Cuts `node` off from every other node (all planes, both directions).
    /// The control namespace still reaches it.
    ///
    /// # Errors
    /// Fault application failures.
    pub fn isolate(&mut self, node: &str) -> anyhow::Result<()> {
        let grudge = isolate_one(node, &self.nodes);
        self.lab().apply(&Fault::Partition {
            grudge,
            planes: Planes::All,
        })?;
        Ok(())
    }

    /// Removes every partition.
    ///
    /// # Errors
    /// Fault application failures.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        self.lab().apply(&Fault::Heal)?;
        Ok(())
    }

    /// The leadership views of the nodes that answered, polled from the
    /// control namespace.
    ///
    /// # Errors
    /// No cluster running, or the namespace cannot be entered.
    pub fn views(&self) -> anyhow::Result<Vec<LeaderView>> {
        let (system, _) = self
            .running
            .ok_or_else(|| anyhow!("no cluster is running"))?;
        let nodes: Vec<(String, SocketAddr)> = self
            .nodes
            .iter()
            .map(|n| (n.clone(), self.client_addr(system, n)))
            .collect();
        let views = run_in_netns(&self.control_netns, move || {
            nodes
                .into_iter()
                .filter_map(|(node, addr)| {
                    let timeout = Duration::from_millis(300);
                    view(&mut HttpConn::new(addr), system, &node, timeout).ok()
                })
                .collect::<Vec<_>>()
        })?;
        Ok(views)
    }

    /// Write-path fsyncs so far, summed over every node (see
    /// [`fsync_metric`]); `None` when a node did not answer.
    ///
    /// # Errors
    /// No cluster running, or the namespace cannot be entered.
    pub fn fsyncs(&self) -> anyhow::Result<Option<f64>> {
        let (system, _) = self
            .running
            .ok_or_else(|| anyhow!("no cluster is running"))?;
        let addrs: Vec<SocketAddr> = self
            .nodes
            .iter()
            .map(|n| self.client_addr(system, n))
            .collect();
        let total = run_in_netns(&self.control_netns, move || {
            addrs
                .into_iter()
                .map(|addr| {
                    let answer = HttpConn::new(addr)
                        .request_within("GET", "/metrics", b"", &[], Duration::from_secs(2))
                        .ok()?;
                    client::sample(&answer.body, fsync_metric(system))
                })
                .sum::<Option<f64>>()
        })?;
        Ok(total)
    }

    /// `node`'s `/metrics` text now; `None` when it did not answer.
    ///
    /// # Errors
    /// No cluster running, or the namespace cannot be entered.
    pub fn metrics_text(&self, node: &str) -> anyhow::Result<Option<String>> {
        let (system, _) = self
            .running
            .ok_or_else(|| anyhow!("no cluster is running"))?;
        let addr = self.client_addr(system, node);
        Ok(run_in_netns(&self.control_netns, move || {
            let answer = HttpConn::new(addr)
                .request_within("GET", "/metrics", b"", &[], Duration::from_secs(2))
                .ok()?;
            (answer.status == 200).then_some(answer.body)
        })?)
    }

    /// CPU seconds (user + system) the running cluster's server processes
    /// have used so far, summed over every node; `None` when a process is
    /// gone. The difference over a pattern tells whether a figure is bound by
    /// the machine's cores rather than by the protocol.
    pub fn cpu_seconds(&mut self) -> Option<f64> {
        // /proc reports USER_HZ ticks, which the kernel fixes at 100 for userspace.
        const USER_HZ: f64 = 100.0;
        let mut ticks = 0;
        for node in self.nodes.clone() {
            ticks += netlab::journal::process_cpu_ticks(self.lab().pid(&node)?)?;
        }
        Some(ticks as f64 / USER_HZ)
    }

    /// Round trips of a small UDP datagram between two lab namespaces (`n1`
    /// to `n2`; the control namespace to `n1` in a 1-node lab), nanoseconds.
    /// Both sockets are made inside their namespaces, so the datagrams cross
    /// the lab's veths as peer traffic does.
    ///
    /// # Errors
    /// Namespace entry or socket failures, or a lost echo.
    pub fn namespace_rtt(&self, samples: usize) -> anyhow::Result<Vec<u64>> {
        let (from, to) = match self.nodes.as_slice() {
            [] => bail!("a lab without nodes has no round trip"),
            [only] => (Target::Control, only),
            [first, second, ..] => (Target::Node(first.clone()), second),
        };
        let echo = self.echo_socket(to)?;
        Ok(udp_round_trips(
            &self.sending_socket(&from)?,
            &echo,
            samples,
        )?)
    }

    /// Durable round trips (see [`durable_round_trips`]) along a client
    /// write's path: from the control namespace, where the bench's clients
    /// run, to the first node's namespace, whose echo syncs to `dir`.
    ///
    /// # Errors
    /// Namespace entry, file or socket failures, or a lost answer.
    pub fn durable_round_trips(&self, dir: &Path, samples: usize) -> anyhow::Result<Vec<u64>> {
        let node = self
            .nodes
            .first()
            .ok_or_else(|| anyhow!("a lab without nodes has no durable round trip"))?;
        let echo = self.echo_socket(node)?;
        let client = self.sending_socket(&Target::Control)?;
        Ok(durable_round_trips(&client, &echo, dir, samples)?)
    }

    /// Quorum durable round trips (see [`quorum_round_trips`]) from the
    /// control namespace through the first node's namespace (the "leader")
    /// and every other node's (the "followers"), all syncing to `dir`;
    /// `None` in a 1-node lab.
    ///
    /// # Errors
    /// Namespace entry, file or socket failures, or a lost answer.
    pub fn quorum_round_trips(
        &self,
        dir: &Path,
        samples: usize,
    ) -> anyhow::Result<Option<Vec<u64>>> {
        let [leader, followers @ ..] = self.nodes.as_slice() else {
            return Ok(None);
        };
        if followers.is_empty() {
            return Ok(None);
        }
        let sockets = QuorumSockets {
            leader: self.echo_socket(leader)?,
            leader_to_followers: self.sending_socket(&Target::Node(leader.clone()))?,
            followers: (followers.iter())
                .map(|follower| self.echo_socket(follower))
                .collect::<anyhow::Result<_>>()?,
        };
        let client = self.sending_socket(&Target::Control)?;
        Ok(Some(quorum_round_trips(&client, &sockets, dir, samples)?))
    }

    /// A UDP socket in `node`'s namespace on its lab address; port 0, an
    /// ephemeral port, never the nodes' peer or client port.
    fn echo_socket(&self, node: &str) -> anyhow::Result<UdpSocket> {
        let lab = self.lab_ref();
        let addr = lab.node_addr(node).expect("planned node");
        lab.udp_bind(&Target::Node(node.into()), SocketAddr::from((addr, 0)))
            .with_context(|| format!("bind a UDP echo socket in {node}'s namespace"))
    }

    /// A UDP socket in `target`'s namespace on any address, ephemeral port.
    fn sending_socket(&self, target: &Target) -> anyhow::Result<UdpSocket> {
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        self.lab_ref()
            .udp_bind(target, unspecified)
            .with_context(|| match target {
                Target::Control => "bind a UDP socket in the control namespace".to_string(),
                Target::Node(node) => format!("bind a UDP socket in {node}'s namespace"),
            })
    }

    /// One turn of the physical floor under this lab's writes: fsyncs in
    /// the work directory (the disk the nodes' data directories are on),
    /// [`BenchLab::namespace_rtt`], and the durable and quorum round trips.
    ///
    /// # Errors
    /// Disk or socket failures.
    pub fn floor_samples(&self, samples: FloorSamples) -> anyhow::Result<FloorRaw> {
        let dir = self.work_dir.join("floor");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let measured = (|| -> anyhow::Result<FloorRaw> {
            Ok(FloorRaw {
                fsync: fsync_latency(&dir, samples.fsync)?,
                fsync_pair: fsync_pair_latency(&dir, samples.fsync_pair)?,
                rtt: self.namespace_rtt(samples.rtt)?,
                durable_rtt: self.durable_round_trips(&dir, samples.durable_rtt)?,
                quorum_rtt: self.quorum_round_trips(&dir, samples.quorum_rtt)?,
            })
        })();
        let _ = std::fs::remove_dir(&dir);
        measured.context("measure the physical floor")
    }

    /// Waits until every node answers, exactly one claims leadership and all
    /// follow it; returns its name.
    ///
    /// # Errors
    /// Timeout (with the last views seen).
    pub fn stable_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        let interval = Duration::from_millis(20);
        match client::wait_for_agreed_leader(self.nodes.len(), timeout, interval, || self.views()) {
            Ok(leader) => Ok(leader.node),
            Err(WaitError::Poll(error)) => Err(error),
            Err(WaitError::Timeout(views)) => Err(anyhow!(
                "no agreed leader within {timeout:?}; last views: {views:?}"
            )),
        }
    }
}

impl Drop for BenchLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take()
            && let Err(e) = lab.teardown()
        {
            eprintln!("bench: lab teardown failed: {e}; run `splitlab clean`");
        }
        if self.remove_work_dir {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}
