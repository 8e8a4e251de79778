//! Write load: a pool of client threads inside the control namespace, each
//! with one keep-alive connection to the leader, writing its own key.
//! One client is the sequential pattern; 16 or 64 are the concurrent ones.

use super::cluster::{System, put};
use super::http::HttpConn;
use super::netns::spawn_in_netns;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one write may take before it counts as failed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one batch of writes produced.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// Wall time from handing out the batch to the last answer.
    pub elapsed: Duration,
    /// Latency of every acknowledged write, nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Writes refused, timed out or broken.
    pub failures: u64,
    /// The first failure, for the error message.
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

fn client_loop(system: System, target: SocketAddr, index: usize, jobs: Receiver<Batch>) {
    let mut conn = HttpConn::new(target);
    let key = format!("bench-c{index}");
    let mut seq: u64 = 0;
    for batch in jobs {
        let mut result = BatchResult::default();
        while batch.remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
            seq += 1;
            let value = format!("{seq:016}");
            let started = Instant::now();
            match put(&mut conn, system, &key, &value, WRITE_TIMEOUT) {
                Ok(true) => result
                    .latencies_ns
                    .push(started.elapsed().as_nanos() as u64),
                Ok(false) => {
                    result.failures += 1;
                    result
                        .first_failure
                        .get_or_insert_with(|| format!("{target} refused a write"));
                }
                Err(e) => {
                    result.failures += 1;
                    result
                        .first_failure
                        .get_or_insert_with(|| format!("{target}: {e}"));
                }
            }
        }
        let _ = batch.done.send(result);
    }
}

impl ClientPool {
    /// Starts `clients` threads in `netns`, all writing to `target`.
    ///
    /// # Errors
    /// Thread creation failures.
    pub fn start(
        netns: &str,
        system: System,
        target: SocketAddr,
        clients: usize,
    ) -> io::Result<ClientPool> {
        let mut jobs = Vec::with_capacity(clients);
        let mut threads = Vec::with_capacity(clients);
        for index in 0..clients {
            let (tx, rx) = mpsc::channel();
            jobs.push(tx);
            threads.push(spawn_in_netns(
                netns,
                format!("bench-client-{index}"),
                move || client_loop(system, target, index, rx),
            )?);
        }
        Ok(ClientPool { jobs, threads })
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
