//! The live probe beside every run: one helper process per node namespace
//! (started through [`Lab::spawn_aux`], journaled, so teardown and
//! `splitlab clean` stop it) exchanging probes with every other node on
//! probe ports the fault rules treat like the plane they stand for
//! ([`Ports::probe_port`](crate::Ports::probe_port)). The lab reads the
//! records back to measure what each directed link actually did.

pub mod record;
mod worker;

pub use worker::{
    KIND_BULK, KIND_STREAM, LIVE_PROBE_ARG, LiveProbeConfig, ProbePeer, live_probe_main, mono_ns,
};

use crate::error::NetlabError;
use crate::journal::process_cpu_ticks;
use crate::lab::{Lab, Target};
use crate::process::ProcessSpec;
use crate::shaping::Planes;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Default time between probe ticks: 50 probes/s per directed link and plane.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(20);

/// The running probes of a lab. Dropping it stops them (SIGKILL and reap),
/// so every path out of a run ends them before the lab is torn down.
pub struct LiveProbes {
    dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl LiveProbes {
    /// Directory holding the probes' records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// CPU time the probes have used so far, clock ticks summed over all of
    /// them (`/proc/<pid>/stat` utime + stime).
    pub fn cpu_ticks(&self) -> u64 {
        self.children
            .iter()
            .filter_map(|(_, child)| process_cpu_ticks(child.id()))
            .sum()
    }

    /// Nodes whose probe has exited (a dead probe measures nothing).
    pub fn exited(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .filter_map(|(node, child)| (!matches!(child.try_wait(), Ok(None))).then_some(node))
            .map(|node| node.clone())
            .collect()
    }

    /// Stops every probe now.
    pub fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for LiveProbes {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Lab {
    /// Starts a live probe in every node namespace, writing its records to
    /// `dir` (created if missing), and waits until each has bound its ports.
    ///
    /// # Errors
    /// Spawn failures, or a probe that is not ready within 5 s (its log,
    /// `<dir>/<node>.log`, says why).
    pub fn start_live_probes(
        &mut self,
        dir: &Path,
        interval: Duration,
    ) -> Result<LiveProbes, NetlabError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetlabError::io(format!("create {}", dir.display()), e))?;
        let names = self.topology().node_names();
        let ports = self.topology().ports;
        let mut probes = LiveProbes {
            dir: dir.to_path_buf(),
            children: Vec::new(),
        };
        for (index, node) in names.iter().enumerate() {
            let addr_of = |name: &str| {
                self.node_addr(name)
                    .ok_or_else(|| NetlabError::NoProcess(format!("{name} has no address")))
            };
            let peers = names
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(i, name)| {
                    Ok(ProbePeer {
                        index: i as u8,
                        addr: addr_of(name)?,
                    })
                })
                .collect::<Result<Vec<_>, NetlabError>>()?;
            let config = LiveProbeConfig {
                node: node.clone(),
                index: index as u8,
                addr: addr_of(node)?,
                peers,
                ports,
                interval_us: interval.as_micros() as u64,
                out_dir: dir.to_path_buf(),
            };
            let json = serde_json::to_string(&config)
                .map_err(|e| NetlabError::io("encode probe config", io::Error::other(e)))?;
            let spec = ProcessSpec {
                stderr: Some(dir.join(format!("{node}.log"))),
                ..ProcessSpec::new(self.helper_exe(), [LIVE_PROBE_ARG.to_string(), json])
            };
            let child = self.spawn_aux(&Target::Node(node.clone()), &spec)?;
            probes.children.push((node.clone(), child));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for node in &names {
            let ready = dir.join(format!("{node}.ready"));
            while !ready.exists() {
                if Instant::now() >= deadline || !probes.exited().is_empty() {
                    let log = std::fs::read_to_string(dir.join(format!("{node}.log")))
                        .unwrap_or_default();
                    return Err(NetlabError::io(
                        format!("live probe in {node} did not start"),
                        io::Error::other(log.lines().last().unwrap_or("no output").to_string()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(probes)
    }

    /// A bulk-transfer connection from `from` to `to`'s replication probe
    /// port (connected from inside `from`'s namespace); hand it to
    /// [`bulk_throughput_kbit`] on any thread.
    ///
    /// # Errors
    /// Connect failures (a cut link times out).
    pub fn bulk_stream(&self, from: &str, to: &str, timeout: Duration) -> io::Result<TcpStream> {
        let addr = self
            .node_addr(to)
            .ok_or_else(|| io::Error::other(format!("{to} has no address")))?;
        let port = self.topology().ports.probe_port(Planes::Replication);
        self.tcp_connect(
            &Target::Node(from.to_string()),
            SocketAddr::from((addr, port)),
            timeout,
        )
    }
}

/// Sends `bytes` over a [`Lab::bulk_stream`] and returns the achieved
/// throughput in kbit/s: bytes counted by the receiving probe over the time
/// until it answered (for rate-limit faults).
///
/// # Errors
/// Transfer failures or `timeout` on a write or the answer.
pub fn bulk_throughput_kbit(
    mut stream: TcpStream,
    bytes: usize,
    timeout: Duration,
) -> io::Result<f64> {
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    let started = Instant::now();
    stream.write_all(&[KIND_BULK])?;
    let chunk = vec![0x5au8; 16 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count)?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-6);
    Ok(u64::from_le_bytes(count) as f64 * 8.0 / 1000.0 / elapsed)
}
