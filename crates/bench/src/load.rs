//! Write load: a pool of client threads inside the control namespace, each
//! with one keep-alive connection, writing its own key. One client is the
//! sequential pattern; 16 or 64 are the concurrent ones.
//!
//! Clients start at the leader. If a write is refused or its connection
//! breaks (leadership moved, e.g. under CPU starvation), the client retries
//! the same write at the leader named in the refusal, else at the next node,
//! until it is acknowledged or [`WRITE_TIMEOUT`] passes. A write's latency
//! runs from its first attempt to its acknowledgement, as a real client
//! would see it; retries are counted.

use crate::cluster::BenchLab;
use crate::netns::spawn_in_netns;
use crate::system::{System, leader_hint, put_answer};
use client::HttpConn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one write may take, retries included, before it counts as failed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before retrying a refused write (a new leader needs a moment).
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// What one batch of writes produced.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// Wall time from handing out the batch to the last answer.
    pub elapsed: Duration,
    /// Latency of every acknowledged write, nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Writes not acknowledged within [`WRITE_TIMEOUT`].
    pub failures: u64,
    /// Attempts that were refused or broke and were retried.
    pub retries: u64,
    /// The first failure or retry cause, for messages.
    pub first_failure: Option<String>,
}

struct Batch {
    remaining: Arc<AtomicI64>,
    done: Sender<BatchResult>,
}

/// Client threads with persistent connections, waiting for batches.
pub struct ClientPool {
    jobs: Vec<Sender<Batch>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// One client's connection and where it currently sends writes.
struct Client {
    system: System,
    targets: Vec<SocketAddr>,
    current: usize,
    conn: HttpConn,
}

impl Client {
    fn switch(&mut self, to: Option<SocketAddr>) {
        self.current = match to.and_then(|a| self.targets.iter().position(|t| *t == a)) {
            Some(index) if index != self.current => index,
            _ => (self.current + 1) % self.targets.len(),
        };
        self.conn = HttpConn::new(self.targets[self.current]);
    }

    /// Writes until acknowledged; returns the latency.
    fn write(&mut self, key: &str, value: &str, result: &mut BatchResult) -> Option<Duration> {
        let started = Instant::now();
        let deadline = started + WRITE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                result.failures += 1;
                result.first_failure.get_or_insert_with(|| {
                    format!("write to {key} not acknowledged within {WRITE_TIMEOUT:?}")
                });
                return None;
            }
            let target = self.conn.addr();
            let hint = match put_answer(&mut self.conn, self.system, key, value, left) {
                Ok(answer) if answer.status == 200 => return Some(started.elapsed()),
                Ok(answer) => {
                    result.first_failure.get_or_insert_with(|| {
                        format!(
                            "{target} answered {}: {}",
                            answer.status,
                            answer.body.chars().take(200).collect::<String>()
                        )
                    });
                    leader_hint(&answer.body)
                }
                Err(e) => {
                    result
                        .first_failure
                        .get_or_insert_with(|| format!("{target}: {e}"));
                    None
                }
            };
            result.retries += 1;
            self.switch(hint);
            std::thread::sleep(RETRY_PAUSE);
        }
    }
}

fn client_loop(
    system: System,
    targets: Vec<SocketAddr>,
    leader: usize,
    index: usize,
    jobs: Receiver<Batch>,
) {
    let mut client = Client {
        system,
        conn: HttpConn::new(targets[leader]),
        targets,
        current: leader,
    };
    let key = format!("bench-c{index}");
    let mut seq: u64 = 0;
    for batch in jobs {
        let mut result = BatchResult::default();
        while batch.remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
            seq += 1;
            let value = format!("{seq:016}");
            if let Some(latency) = client.write(&key, &value, &mut result) {
                result.latencies_ns.push(latency.as_nanos() as u64);
            }
        }
        let _ = batch.done.send(result);
    }
}

impl ClientPool {
    /// Starts `clients` threads in `netns`, all writing to `targets[leader]`
    /// first (`targets`: every node's client address).
    ///
    /// # Errors
    /// Thread creation failures, or `leader` out of range.
    pub fn start(
        netns: &str,
        system: System,
        targets: &[SocketAddr],
        leader: usize,
        clients: usize,
    ) -> io::Result<ClientPool> {
        if leader >= targets.len() {
            return Err(io::Error::other(format!(
                "leader index {leader} out of {} targets",
                targets.len()
            )));
        }
        let mut jobs = Vec::with_capacity(clients);
        let mut threads = Vec::with_capacity(clients);
        for index in 0..clients {
            let (tx, rx) = mpsc::channel();
            jobs.push(tx);
            threads.push(spawn_in_netns(netns, format!("bench-client-{index}"), {
                let targets = targets.to_vec();
                move || client_loop(system, targets, leader, index, rx)
            })?);
        }
        Ok(ClientPool { jobs, threads })
    }

    /// A pool for the cluster running in `lab`, starting at `leader`.
    ///
    /// # Errors
    /// As [`ClientPool::start`]; an unknown leader name.
    pub fn for_cluster(
        lab: &BenchLab,
        system: System,
        leader: &str,
        clients: usize,
    ) -> io::Result<ClientPool> {
        let targets: Vec<SocketAddr> = lab
            .nodes()
            .iter()
            .map(|n| lab.client_addr(system, n))
            .collect();
        let index = lab
            .nodes()
            .iter()
            .position(|n| n == leader)
            .ok_or_else(|| io::Error::other(format!("unknown leader {leader}")))?;
        ClientPool::start(lab.control_netns(), system, &targets, index, clients)
    }

    /// Performs `ops` writes spread over all clients; returns when all are
    /// answered.
    pub fn run(&self, ops: u64) -> BatchResult {
        let remaining = Arc::new(AtomicI64::new(ops as i64));
        let (done, results) = mpsc::channel();
        let started = Instant::now();
        let mut handed = 0;
        for job in &self.jobs {
            let batch = Batch {
                remaining: remaining.clone(),
                done: done.clone(),
            };
            if job.send(batch).is_ok() {
                handed += 1;
            }
        }
        drop(done);
        let mut total = BatchResult::default();
        for result in results.iter().take(handed) {
            total.latencies_ns.extend(result.latencies_ns);
            total.failures += result.failures;
            total.retries += result.retries;
            if total.first_failure.is_none() {
                total.first_failure = result.first_failure;
            }
        }
        total.elapsed = started.elapsed();
        if handed < self.jobs.len() {
            total.failures += 1;
            total
                .first_failure
                .get_or_insert_with(|| "a client thread died (namespace entry failed?)".into());
        }
        total
    }
}

impl Drop for ClientPool {
    fn drop(&mut self) {
        self.jobs.clear();
        for thread in self.threads.drain(..) {
            if let Ok(Err(e)) = thread.join() {
                eprintln!("bench: client thread failed: {e}");
            }
        }
    }
}
