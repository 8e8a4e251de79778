//! A cluster under test inside a netlab mesh: the lab (namespaces, veths,
//! partitions), the server processes (splitnode or etcd, one per node
//! namespace), and their client APIs seen from the control namespace.
//!
//! [`BenchLab`] is a drop guard: however a bench ends (error or panic), its
//! processes are killed and its namespaces deleted.

use super::http::{HttpConn, base64};
use super::netns::run_in_netns;
use anyhow::{Context, anyhow, bail};
use netlab::grudge::isolate_one;
use netlab::{Fault, Lab, LabOptions, NetlabError, Planes, ProcessSignal, ProcessSpec, Topology};
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// etcd's client port (gRPC and its HTTP/JSON gateway).
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// This project's node.
    Splitnode,
    /// The baseline: Debian's etcd-server (3.4).
    Etcd,
}

impl System {
    /// Name used in tables and bench ids.
    pub fn name(self) -> &'static str {
        match self {
            System::Splitnode => "splitnode",
            System::Etcd => "etcd",
        }
    }
}

/// Timing profile, applied identically to both systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// heartbeat 50 ms, election timeout 250 ms (randomised up to 500 ms).
    Fast,
    /// heartbeat 100 ms, election timeout 1000 ms (randomised up to 2000 ms).
    Default,
}

impl Profile {
    /// Parses `fast` / `default`.
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "fast" => Some(Profile::Fast),
            "default" => Some(Profile::Default),
            _ => None,
        }
    }

    /// Name as splitnode's `--profile` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Default => "default",
        }
    }

    /// Heartbeat interval.
    pub fn heartbeat_ms(self) -> u64 {
        match self {
            Profile::Fast => 50,
            Profile::Default => 100,
        }
    }

    /// The election timeout (lower end). Both systems randomise it in
    /// `[t, 2t]`: splitnode's profiles say so, etcd does it internally.
    pub fn election_ms(self) -> u64 {
        match self {
            Profile::Fast => 250,
            Profile::Default => 1000,
        }
    }
}

/// Where the server binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `splitnode`.
    pub splitnode: PathBuf,
    /// `etcd`, when installed.
    pub etcd: Option<PathBuf>,
}

/// Finds `etcd`: `$SPLITLAB_ETCD`, then `$PATH`, then `/usr/bin/etcd`.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPLITLAB_ETCD") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| Some(PathBuf::from("/usr/bin/etcd")).filter(|p| p.is_file()))
}

/// What one node says about leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's own id as its peers name it (splitnode: name; etcd: member id).
    pub id: String,
    /// The node believes it is the leader.
    pub claims_leader: bool,
    /// The leader it follows (same id space as `id`), if any.
    pub leader: Option<String>,
}

/// Parses a leadership view out of a status answer.
///
/// # Errors
/// A body that is not the system's status JSON.
pub fn parse_view(system: System, body: &[u8]) -> Result<NodeView, String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("status JSON: {e}"))?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match system {
        System::Splitnode => {
            let id = json.get("id").and_then(text).ok_or("status without id")?;
            let role = json
                .get("role")
                .and_then(Value::as_str)
                .ok_or("status without role")?;
            let leader = json.get("leader").and_then(text);
            Ok(NodeView {
                claims_leader: role == "leader",
                id,
                leader,
            })
        }
        System::Etcd => {
            let id = json
                .get("header")
                .and_then(|h| h.get("member_id"))
                .and_then(text)
                .ok_or("status without header.member_id")?;
            // The gateway omits zero values: no `leader` means no leader.
            let leader = json.get("leader").and_then(text).filter(|l| l != "0");
            Ok(NodeView {
                claims_leader: leader.as_deref() == Some(id.as_str()),
                id,
                leader,
            })
        }
    }
}

/// Asks one node for its leadership view.
///
/// # Errors
/// Transport errors, non-200 answers, unparsable bodies.
pub fn view(conn: &mut HttpConn, system: System, timeout: Duration) -> io::Result<NodeView> {
    let answer = match system {
        System::Splitnode => conn.request("GET", "/status", b"", timeout)?,
        System::Etcd => conn.request("POST", "/v3/maintenance/status", b"{}", timeout)?,
    };
    if answer.status != 200 {
        return Err(io::Error::other(format!(
            "status answered {}",
            answer.status
        )));
    }
    parse_view(system, &answer.body).map_err(io::Error::other)
}

/// The Prometheus counter that counts a system's write-path fsyncs:
/// splitnode's log/meta syncs, etcd's WAL syncs.
pub fn fsync_metric(system: System) -> &'static str {
    match system {
        System::Splitnode => "splitnode_fsyncs_total",
        System::Etcd => "etcd_disk_wal_fsync_duration_seconds_count",
    }
}

/// The value of an unlabelled sample `name` in Prometheus text.
pub fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.split_once(char::is_whitespace)?;
            (metric == name)
                .then(|| value.trim().parse().ok())
                .flatten()
        })
}

/// One write. `Ok(true)` when acknowledged (committed), `Ok(false)` when the
/// server refused or could not commit it.
///
/// # Errors
/// Transport errors and timeouts (outcome unknown).
pub fn put(
    conn: &mut HttpConn,
    system: System,
    key: &str,
    value: &str,
    timeout: Duration,
) -> io::Result<bool> {
    Ok(put_answer(conn, system, key, value, timeout)?.status == 200)
}

/// The leader's client address a refusing splitnode names in its 503 body
/// (`leader_client_addr`); etcd followers forward writes themselves.
pub fn leader_hint(body: &[u8]) -> Option<SocketAddr> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("leader_client_addr")?.as_str()?.parse().ok()
}

/// One write, with the whole answer (status 200: acknowledged).
///
/// # Errors
/// Transport errors and timeouts (outcome unknown).
pub fn put_answer(
    conn: &mut HttpConn,
    system: System,
    key: &str,
    value: &str,
    timeout: Duration,
) -> io::Result<super::http::Answer> {
    let answer = match system {
        System::Splitnode => {
            conn.request("PUT", &format!("/kv/{key}"), value.as_bytes(), timeout)?
        }
        System::Etcd => {
            let body = format!(
                r#"{{"key":"{}","value":"{}"}}"#,
                base64(key.as_bytes()),
                base64(value.as_bytes())
            );
            conn.request("POST", "/v3/kv/put", body.as_bytes(), timeout)?
        }
    };
    Ok(answer)
}

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
        })
    }

    fn lab(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("the lab is up until drop")
    }

    fn lab_ref(&self) -> &Lab {
        self.lab.as_ref().expect("the lab is up until drop")
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
                .map(|a| SocketAddr::from((a, ETCD_CLIENT_PORT))),
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
        let mut args: Vec<String> = Vec::new();
        match system {
            System::Splitnode => {
                let peer = |n: &str| lab.peer_addr(n).expect("planned node").to_string();
                let client = |n: &str| lab.client_addr(n).expect("planned node").to_string();
                args.extend([
                    "--id".into(),
                    node.into(),
                    "--cluster".into(),
                    "bench".into(),
                    "--listen-peer".into(),
                    peer(node),
                    "--listen-client".into(),
                    client(node),
                    "--data-dir".into(),
                    data.display().to_string(),
                    "--profile".into(),
                    profile.name().into(),
                    "--bootstrap".into(),
                ]);
                for other in self.nodes.iter().filter(|n| *n != node) {
                    args.push("--peer".into());
                    args.push(format!("{other}={}", peer(other)));
                    args.push("--peer-client".into());
                    args.push(format!("{other}={}", client(other)));
                }
            }
            System::Etcd => {
                let addr = |n: &str| lab.node_addr(n).expect("planned node");
                let members: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("{n}=http://{}:{ETCD_PEER_PORT}", addr(n)))
                    .collect();
                let me = addr(node);
                args.extend([
                    format!("--name={node}"),
                    format!("--data-dir={}", data.display()),
                    format!("--listen-peer-urls=http://{me}:{ETCD_PEER_PORT}"),
                    format!("--initial-advertise-peer-urls=http://{me}:{ETCD_PEER_PORT}"),
                    format!("--listen-client-urls=http://{me}:{ETCD_CLIENT_PORT}"),
                    format!("--advertise-client-urls=http://{me}:{ETCD_CLIENT_PORT}"),
                    format!("--initial-cluster={}", members.join(",")),
                    "--initial-cluster-state=new".into(),
                    "--initial-cluster-token=splitlab-bench".into(),
                    format!("--heartbeat-interval={}", profile.heartbeat_ms()),
                    format!("--election-timeout={}", profile.election_ms()),
                    "--pre-vote=true".into(),
                    "--logger=zap".into(),
                    "--log-level=warn".into(),
                ]);
            }
        }
        let mut spec = ProcessSpec::new(binary, args);
        let log = dir.join(format!("{}.log", system.name()));
        spec.stdout = Some(log.clone());
        spec.stderr = Some(log);
        spec.env.push(("SPLITNODE_LOG".into(), "warn".into()));
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

    /// Every node's leadership view (`None`: no answer), polled from the
    /// control namespace.
    ///
    /// # Errors
    /// No cluster running, or the namespace cannot be entered.
    pub fn views(&self) -> anyhow::Result<Vec<Option<NodeView>>> {
        let (system, _) = self
            .running
            .ok_or_else(|| anyhow!("no cluster is running"))?;
        let addrs: Vec<SocketAddr> = self
            .nodes
            .iter()
            .map(|n| self.client_addr(system, n))
            .collect();
        let views = run_in_netns(&self.control_netns, move || {
            addrs
                .into_iter()
                .map(|addr| view(&mut HttpConn::new(addr), system, Duration::from_millis(300)).ok())
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
                        .request("GET", "/metrics", b"", Duration::from_secs(2))
                        .ok()?;
                    let text = String::from_utf8_lossy(&answer.body);
                    prometheus_value(&text, fsync_metric(system))
                })
                .sum::<Option<f64>>()
        })?;
        Ok(total)
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

    /// Waits until every node answers, exactly one claims leadership and all
    /// follow it; returns its name.
    ///
    /// # Errors
    /// Timeout (with the last views seen).
    pub fn stable_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let views = self.views()?;
            if let Some(leader) = agreed_leader(&self.nodes, &views) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                bail!("no agreed leader within {timeout:?}; last views: {views:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The node every answering node agrees is the leader, when all answered.
pub fn agreed_leader(nodes: &[String], views: &[Option<NodeView>]) -> Option<String> {
    let views: Vec<&NodeView> = views.iter().map(Option::as_ref).collect::<Option<_>>()?;
    let mut claimants = nodes.iter().zip(&views).filter(|(_, v)| v.claims_leader);
    let (name, leader) = claimants.next()?;
    if claimants.next().is_some() {
        return None;
    }
    views
        .iter()
        .all(|v| v.leader.as_deref() == Some(leader.id.as_str()))
        .then(|| name.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitnode_and_etcd_status_views() {
        let status = br#"{"id":"n2","role":"follower","term":3,"leader":"n1"}"#;
        assert_eq!(
            parse_view(System::Splitnode, status).unwrap(),
            NodeView {
                id: "n2".into(),
                claims_leader: false,
                leader: Some("n1".into())
            }
        );
        let leader = br#"{"header":{"cluster_id":"1","member_id":"77"},"leader":"77"}"#;
        assert!(parse_view(System::Etcd, leader).unwrap().claims_leader);
        let lost = br#"{"header":{"member_id":"77"},"version":"3.4.23"}"#;
        let lost = parse_view(System::Etcd, lost).unwrap();
        assert!(!lost.claims_leader && lost.leader.is_none());
        assert!(parse_view(System::Etcd, b"{}").is_err());
        assert!(parse_view(System::Splitnode, b"nope").is_err());
    }

    #[test]
    fn leader_hints_from_refusals() {
        let refusal =
            br#"{"error":"not_leader","leader":"n3","leader_client_addr":"10.77.0.3:7000"}"#;
        assert_eq!(
            leader_hint(refusal),
            Some("10.77.0.3:7000".parse().unwrap())
        );
        assert_eq!(
            leader_hint(br#"{"error":"no_quorum","leader_client_addr":null}"#),
            None
        );
        assert_eq!(leader_hint(b"garbage"), None);
    }

    #[test]
    fn prometheus_counters_by_exact_name() {
        let text = "# HELP x\nsplitnode_fsyncs_total 42\nsplitnode_fsyncs_total_x 1\n\
                    etcd_disk_wal_fsync_duration_seconds_count 7\nlabelled{a=\"b\"} 3\n";
        assert_eq!(
            prometheus_value(text, fsync_metric(System::Splitnode)),
            Some(42.0)
        );
        assert_eq!(
            prometheus_value(text, fsync_metric(System::Etcd)),
            Some(7.0)
        );
        assert_eq!(prometheus_value(text, "labelled"), None);
        assert_eq!(prometheus_value(text, "missing"), None);
    }

    #[test]
    fn agreement_needs_every_node_and_one_claimant() {
        let nodes: Vec<String> = ["n1", "n2"].map(String::from).to_vec();
        let v = |id: &str, claims: bool, leader: Option<&str>| {
            Some(NodeView {
                id: id.into(),
                claims_leader: claims,
                leader: leader.map(String::from),
            })
        };
        let good = [v("n1", true, Some("n1")), v("n2", false, Some("n1"))];
        assert_eq!(agreed_leader(&nodes, &good), Some("n1".into()));
        let lagging = [v("n1", true, Some("n1")), v("n2", false, None)];
        assert_eq!(agreed_leader(&nodes, &lagging), None);
        let silent = [v("n1", true, Some("n1")), None];
        assert_eq!(agreed_leader(&nodes, &silent), None);
        let two = [v("n1", true, Some("n1")), v("n2", true, Some("n2"))];
        assert_eq!(agreed_leader(&nodes, &two), None);
    }
}
