//! Test support: real `splitnode` clusters on loopback and a tiny HTTP client.
//!
//! Every cluster lives on its own `127.0.<net>.<i>` addresses and its own
//! ports and temp dir, so tests can run in parallel; every child process is
//! SIGKILLed when its [`Node`] is dropped, even if the test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A keep-alive HTTP/1.1 connection over a raw `TcpStream`.
pub struct HttpConn {
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<HttpConn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            reader: BufReader::new(stream),
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> std::io::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        read_response(&mut self.reader)
    }
}

/// Reads one response with a Content-Length body.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no response",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One request on a fresh connection.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<Response> {
    http_with(addr, method, path, body, &[])
}

pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> Option<Response> {
    let mut conn = HttpConn::connect(addr, Duration::from_secs(8)).ok()?;
    conn.request(method, path, body.as_bytes(), headers).ok()
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
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open node log");
        let child = Command::new(BIN)
            .args(&self.args)
            .args(extra)
            .env("SPLITNODE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn splitnode");
        self.child = Some(child);
    }

    pub fn status(&self) -> Option<Value> {
        let response = http(self.client_addr, "GET", "/status", "")?;
        (response.status == 200).then(|| response.json())
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

/// Reads one counter or labelled series from Prometheus text.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            let value = rest.strip_prefix(' ')?;
            value.trim().parse::<f64>().ok().map(|value| value as u64)
        })
        .unwrap_or(0)
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
            let mut args: Vec<String> = vec![
                "--id".into(),
                name.clone(),
                "--cluster".into(),
                format!("it-{tag}"),
                "--listen-peer".into(),
                peer_addr(i).to_string(),
                "--listen-client".into(),
                client_addr(i).to_string(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--mode".into(),
                options.mode.into(),
                "--profile".into(),
                "fast".into(),
                // Debug builds on a shared 2-core box: a little more slack
                // than the fast profile avoids needless elections.
                "--election-timeout-min-ms".into(),
                "400".into(),
                "--election-timeout-max-ms".into(),
                "800".into(),
            ];
            for (j, peer) in names.iter().enumerate() {
                if i != j {
                    args.push("--peer".into());
                    args.push(format!("{peer}={}", peer_addr(j)));
                    args.push("--peer-client".into());
                    args.push(format!("{peer}={}", client_addr(j)));
                }
            }
            args.extend(options.extra.iter().cloned());
            nodes.push(Node {
                name: name.clone(),
                peer_addr: peer_addr(i),
                client_addr: client_addr(i),
                data_dir,
                args,
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
        let deadline = Instant::now() + within;
        loop {
            let statuses: Vec<(usize, Value)> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, node)| node.is_running())
                .filter_map(|(i, node)| node.status().map(|status| (i, status)))
                .collect();
            let leaders: Vec<usize> = statuses
                .iter()
                .filter(|(_, status)| status["role"] == "leader")
                .map(|(i, _)| *i)
                .collect();
            if let [leader] = leaders[..] {
                let name = &self.nodes[leader].name;
                let running = self.nodes.iter().filter(|node| node.is_running()).count();
                if statuses.len() == running
                    && statuses
                        .iter()
                        .all(|(_, status)| status["leader"].as_str() == Some(name))
                {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no single agreed leader within {within:?}: {statuses:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
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
