//! Test support: real `splitnode` clusters on loopback, driven through the
//! workspace's one client toolkit (the `client` crate).
//!
//! Every cluster lives on its own `127.0.<net>.<i>` addresses and its own
//! ports and temp dir, so tests can run in parallel; every child process is
//! SIGKILLed when its [`Node`] is dropped, even if the test panics.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{LeaderView, Peer, SplitnodeCommand, WaitError};
use serde_json::Value;

// Each test binary uses a different subset of the support module.
#[allow(unused_imports)]
pub use client::{HttpConn, Response};

pub const BIN: &str = env!("CARGO_BIN_EXE_splitnode");

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("splitnode-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// One request on a fresh connection.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<Response> {
    http_with(addr, method, path, body, &[])
}

/// One request with extra headers on a fresh connection.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> Option<Response> {
    let deadline = Instant::now() + Duration::from_secs(8);
    client::request(addr, method, path, headers, body, deadline).ok()
}

/// Sends raw bytes and returns whatever comes back before the server closes
/// (or the timeout).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Processes

pub struct Node {
    pub name: String,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub child: Option<Child>,
}

impl Node {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{name} {pid} failed");
        }
    }

    /// SIGTERM, then wait for a graceful exit; returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take()?;
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn start(&mut self, extra: &[&str]) {
        self.start_with_env(extra, &[]);
    }

    /// Starts the node with extra environment variables (e.g. `FAILPOINTS`).
    pub fn start_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open node log");
        let child = Command::new(BIN)
            .args(&self.args)
            .args(extra)
            .envs([client::log_env("info")])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn splitnode");
        self.child = Some(child);
    }

    /// The exit code if the process has exited (it is then no longer
    /// running); `None` while it runs.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status.code())
    }

    pub fn status(&self) -> Option<Value> {
        let response = http(self.client_addr, "GET", "/status", "")?;
        (response.status == 200).then(|| response.json())
    }

    /// The node's leadership view, when it answers `/status`.
    pub fn view(&self) -> Option<LeaderView> {
        client::parse_status(&self.name, &self.status()?).map(|status| status.view())
    }

    pub fn metrics(&self) -> Option<String> {
        http(self.client_addr, "GET", "/metrics", "").map(|response| response.body)
    }

    pub fn put(&self, key: &str, value: &str) -> Option<Response> {
        http(self.client_addr, "PUT", &format!("/kv/{key}"), value)
    }

    pub fn get(&self, key: &str, mode: &str) -> Option<Response> {
        http(
            self.client_addr,
            "GET",
            &format!("/kv/{key}?read={mode}"),
            "",
        )
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data_dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // A stopped process must be continued to die promptly.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(pid.to_string())
                .status();
        }
        self.kill();
    }
}

/// Reads one counter or labelled series from Prometheus text (0 when
/// absent).
pub fn metric(text: &str, series: &str) -> u64 {
    client::sample(text, series).map_or(0, |value| value as u64)
}

/// Fields drop in order: the nodes (killed) before the directory (removed).
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub dir: TempDir,
}

/// Options for [`Cluster::start`].
pub struct ClusterOptions {
    pub size: usize,
    /// Third octet of the loopback addresses: unique per test.
    pub net: u8,
    pub mode: &'static str,
    pub extra: Vec<String>,
}

impl Cluster {
    pub fn start(tag: &str, options: ClusterOptions) -> Cluster {
        let dir = TempDir::new(tag);
        let names: Vec<String> = (1..=options.size).map(|i| format!("n{i}")).collect();
        let peer_addr = |i: usize| -> SocketAddr {
            format!("127.0.{}.{}:7100", options.net, i + 1)
                .parse()
                .unwrap()
        };
        let client_addr = |i: usize| -> SocketAddr {
            format!("127.0.{}.{}:7000", options.net, i + 1)
                .parse()
                .unwrap()
        };
        let mut nodes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let data_dir = dir.0.join(name);
            let mut command = SplitnodeCommand::new(
                BIN,
                name,
                format!("it-{tag}"),
                (peer_addr(i), client_addr(i)),
                &data_dir,
                "info",
            );
            command.mode = Some(options.mode.into());
            command.profile = Some("fast".into());
            // Debug builds on a shared 2-core box: a little more slack than
            // the fast profile avoids needless elections.
            command.election_timeout_ms = Some((400, 800));
            command.peers = (names.iter().enumerate())
                .filter(|(j, _)| *j != i)
                .map(|(j, peer)| Peer {
                    name: peer.clone(),
                    peer: peer_addr(j),
                    client: client_addr(j),
                })
                .collect();
            command.extra = options.extra.clone();
            nodes.push(Node {
                name: name.clone(),
                peer_addr: peer_addr(i),
                client_addr: client_addr(i),
                data_dir,
                args: command.args(),
                child: None,
            });
        }
        for node in &mut nodes {
            node.start(&["--bootstrap"]);
        }
        Cluster { nodes, dir }
    }

    /// Waits until exactly one running node reports itself leader and every
    /// running node agrees on it; returns its index.
    pub fn wait_for_leader(&self, within: Duration) -> usize {
        let running = || self.nodes.iter().filter(|node| node.is_running());
        let poll = || Ok::<_, std::convert::Infallible>(running().filter_map(Node::view).collect());
        let interval = Duration::from_millis(50);
        match client::wait_for_agreed_leader(running().count(), within, interval, poll) {
            Ok(leader) => (self.nodes.iter())
                .position(|node| node.name == leader.node)
                .expect("the leader is one of the nodes"),
            Err(WaitError::Timeout(views)) => {
                panic!("no single agreed leader within {within:?}: {views:?}")
            }
            Err(WaitError::Poll(never)) => match never {},
        }
    }

    /// Writes through the current leader, retrying on 503/504 and leader
    /// changes until `within` passes. Returns the JSON of the success.
    pub fn write(&self, key: &str, value: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let leader = self.wait_for_leader(deadline.saturating_duration_since(Instant::now()));
            if let Some(response) = self.nodes[leader].put(key, value)
                && response.status == 200
            {
                return response.json();
            }
            assert!(
                Instant::now() < deadline,
                "write {key} did not succeed within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `i` serves `key` = `value` with a stale read.
    pub fn wait_for_value(&self, i: usize, key: &str, value: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(response) = self.nodes[i].get(key, "stale")
                && response.status == 200
                && response.json()["value"].as_str() == Some(value)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve {key}={value} within {within:?}",
                self.nodes[i].name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn file_exists(path: &Path) -> bool {
    path.exists()
}
