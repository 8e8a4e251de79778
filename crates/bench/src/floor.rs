//! The physical floor under a write on this machine, measured in the same run
//! as the figures it bounds: one fdatasync on the nodes' disk, two at once
//! (nodes sharing one disk), a UDP round trip between lab namespaces, and a
//! durable round trip (a request that waits for an fdatasync before its
//! answer, as a 1-node write does, idle gaps and wake-ups included).

use crate::table::Goal;
use figures::{Summary, ms};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// About the size of one small replicated write in a node's log.
const RECORD_BYTES: usize = 96;
/// Round trips sent before measuring, so neighbour resolution and cold
/// caches stay out of the figures.
const RTT_WARM_UP: usize = 10;
/// A datagram between two veths of one host that takes this long is lost.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);

/// How many samples of each kind [`crate::cluster::BenchLab::floor`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorSamples {
    /// Single append + fdatasync.
    pub fsync: usize,
    /// Two concurrent append + fdatasync.
    pub fsync_pair: usize,
    /// UDP round trips between two lab namespaces.
    pub rtt: usize,
    /// Durable round trips: request, append + fdatasync, answer.
    pub durable_rtt: usize,
}

impl Default for FloorSamples {
    /// Well under a second on a virtio disk, and enough for a stable median.
    fn default() -> Self {
        FloorSamples {
            fsync: 200,
            fsync_pair: 100,
            rtt: 500,
            durable_rtt: 300,
        }
    }
}

/// What the machine itself costs a write, as latency summaries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Floor {
    /// Append a small record, then fdatasync, on the nodes' disk.
    pub fsync: Summary,
    /// Two such appends to two files at once, until both are durable: what a
    /// leader and a follower sharing one disk pay together.
    pub fsync_pair: Summary,
    /// UDP round trip between two lab namespaces.
    pub rtt: Summary,
    /// From the client's namespace to a node's and back, the answer sent
    /// only after an append + fdatasync there: what the simplest durable
    /// server costs a sequential client, with the idle time between
    /// requests (on a VM, an idle vCPU wakes slower from the disk's
    /// interrupt than one that syncs back to back).
    pub durable_rtt: Summary,
}

impl Floor {
    /// Summarises raw samples (nanoseconds).
    pub fn of(
        fsync_ns: &[u64],
        fsync_pair_ns: &[u64],
        rtt_ns: &[u64],
        durable_rtt_ns: &[u64],
    ) -> Floor {
        Floor {
            fsync: Summary::of(fsync_ns),
            fsync_pair: Summary::of(fsync_pair_ns),
            rtt: Summary::of(rtt_ns),
            durable_rtt: Summary::of(durable_rtt_ns),
        }
    }

    /// The least a write acknowledged by a cluster of `size` can take if the
    /// nodes had disks of their own: one fsync, plus one round trip to a
    /// follower once there is one.
    pub fn write_floor_ns(&self, size: usize) -> u64 {
        if size <= 1 {
            self.fsync.p50_ns
        } else {
            self.fsync.p50_ns + self.rtt.p50_ns
        }
    }

    /// The write floor when every node shares this one disk (3 nodes and
    /// more): the quorum's fsyncs contend, so two at once plus a round trip.
    pub fn shared_disk_floor_ns(&self, size: usize) -> Option<u64> {
        (size >= 3).then_some(self.fsync_pair.p50_ns + self.rtt.p50_ns)
    }

    /// `latency_ns` as a multiple of [`Floor::write_floor_ns`]; `None` when
    /// the floor measured zero.
    pub fn ratio_to_write_floor(&self, size: usize, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.write_floor_ns(size))
    }

    /// `latency_ns` as a multiple of [`Floor::shared_disk_floor_ns`].
    pub fn ratio_to_shared_disk_floor(&self, size: usize, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.shared_disk_floor_ns(size)?)
    }

    /// `latency_ns` as a multiple of the durable round trip p50 (a 1-node
    /// write's floor as a request/response loop meets it).
    pub fn ratio_to_durable_rtt(&self, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.durable_rtt.p50_ns)
    }

    /// One line for logs and table headings.
    pub fn describe(&self) -> String {
        format!(
            "floor: fsync p50 {:.3} ms, 2 fsyncs at once p50 {:.3} ms, namespace RTT p50 {:.3} ms, durable round trip p50 {:.3} ms",
            ms(self.fsync.p50_ns),
            ms(self.fsync_pair.p50_ns),
            ms(self.rtt.p50_ns),
            ms(self.durable_rtt.p50_ns)
        )
    }

    /// [`Floor::describe`] plus the floors that apply to a cluster of `size`.
    pub fn describe_for(&self, size: usize) -> String {
        let mut text = format!(
            "{}; write floor {:.3} ms",
            self.describe(),
            ms(self.write_floor_ns(size))
        );
        if let Some(shared) = self.shared_disk_floor_ns(size) {
            text.push_str(&format!(", shared-disk floor {:.3} ms", ms(shared)));
        }
        text
    }
}

fn ratio(latency_ns: u64, floor_ns: u64) -> Option<f64> {
    (floor_ns > 0).then(|| latency_ns as f64 / floor_ns as f64)
}

/// The target for a write p50 over [`Floor::write_floor_ns`]: 1.5x
/// alone, 2x with a quorum of 3 or more. A 2-node cluster has none.
pub fn write_floor_goal(size: usize) -> Option<Goal> {
    match size {
        0 | 1 => Some(Goal::AtMost(1.5)),
        2 => None,
        _ => Some(Goal::AtMost(2.0)),
    }
}

/// A scratch log file that is removed again on drop.
struct ScratchLog {
    file: File,
    path: PathBuf,
}

impl ScratchLog {
    fn create(dir: &Path, name: &str) -> io::Result<ScratchLog> {
        let path = dir.join(format!("floor-{}-{name}.log", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        let mut log = ScratchLog { file, path };
        // The first sync also persists the new inode; a node's log exists already.
        log.append_and_sync()?;
        Ok(log)
    }

    /// What a node's group commit does: append, then fdatasync. The file
    /// grows, so the sync persists its size too, as the node's log's does.
    fn append_and_sync(&mut self) -> io::Result<()> {
        self.file.write_all(&[b'x'; RECORD_BYTES])?;
        self.file.sync_data()
    }

    /// Appends and syncs `samples` times, each after `barrier` (when given)
    /// released it; returns when each sync started and ended. Never stops
    /// early, so a partner waiting at the barrier is never stranded.
    fn timed_syncs(
        &mut self,
        samples: usize,
        barrier: Option<&Barrier>,
    ) -> io::Result<Vec<(Instant, Instant)>> {
        let mut times = Vec::with_capacity(samples);
        let mut first_error = None;
        for _ in 0..samples {
            if let Some(barrier) = barrier {
                barrier.wait();
            }
            let started = Instant::now();
            let synced = self.append_and_sync();
            times.push((started, Instant::now()));
            if let Err(e) = synced {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("append + fdatasync {}: {e}", self.path.display()),
            )),
            None => Ok(times),
        }
    }
}

impl Drop for ScratchLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn nanos(duration: Duration) -> u64 {
    duration.as_nanos() as u64
}

/// Latency of `samples` appends of a small record to a file in `dir`, each
/// followed by fdatasync, nanoseconds. `dir` should be on the nodes' disk.
///
/// # Errors
/// File creation, write or sync failures.
pub fn fsync_latency(dir: &Path, samples: usize) -> io::Result<Vec<u64>> {
    let mut log = ScratchLog::create(dir, "single")?;
    let times = log.timed_syncs(samples, None)?;
    Ok(times.iter().map(|(s, e)| nanos(*e - *s)).collect())
}

/// Latency of `samples` pairs of append + fdatasync on two files in `dir`,
/// issued at once from two threads: from the earlier start to the later
/// end, nanoseconds.
///
/// # Errors
/// File creation, write or sync failures.
pub fn fsync_pair_latency(dir: &Path, samples: usize) -> io::Result<Vec<u64>> {
    let mut first = ScratchLog::create(dir, "pair-a")?;
    let mut second = ScratchLog::create(dir, "pair-b")?;
    let barrier = Barrier::new(2);
    let (first_times, second_times) = thread::scope(|scope| {
        let partner = scope.spawn(|| second.timed_syncs(samples, Some(&barrier)));
        let mine = first.timed_syncs(samples, Some(&barrier));
        let theirs = partner
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("fsync pair thread panicked")));
        (mine, theirs)
    });
    Ok(first_times?
        .iter()
        .zip(&second_times?)
        .map(|((s1, e1), (s2, e2))| nanos(*e1.max(e2) - *s1.min(s2)))
        .collect())
}

/// Round-trip times of `samples` datagrams from `client` to `echo` and back,
/// nanoseconds. Both sockets keep the namespace they were created in, so the
/// caller picks the path by where it made them.
///
/// # Errors
/// Socket failures, or an echo that did not come back within a second.
pub fn udp_round_trips(
    client: &UdpSocket,
    echo: &UdpSocket,
    samples: usize,
) -> io::Result<Vec<u64>> {
    round_trips(client, echo, samples, || Ok(()))
}

/// Like [`udp_round_trips`], but the echo answers each datagram only after
/// appending a small record to a file in `dir` and fdatasyncing it.
///
/// # Errors
/// File or socket failures, or an answer that did not come within a second.
pub fn durable_round_trips(
    client: &UdpSocket,
    echo: &UdpSocket,
    dir: &Path,
    samples: usize,
) -> io::Result<Vec<u64>> {
    let mut log = ScratchLog::create(dir, "durable")?;
    round_trips(client, echo, samples, move || log.append_and_sync())
}

/// Measures round trips from `client` to `echo`, which runs
/// `before_answer` for each datagram before it sends it back.
fn round_trips(
    client: &UdpSocket,
    echo: &UdpSocket,
    samples: usize,
    mut before_answer: impl FnMut() -> io::Result<()> + Send,
) -> io::Result<Vec<u64>> {
    let echo_addr = echo.local_addr()?;
    client.connect(echo_addr)?;
    client.set_read_timeout(Some(ECHO_TIMEOUT))?;
    // Short, so the echo thread notices the end soon after the last round trip.
    echo.set_read_timeout(Some(Duration::from_millis(20)))?;
    let finished = AtomicBool::new(false);
    thread::scope(|scope| {
        let echoing = scope.spawn(|| -> io::Result<()> {
            let mut buf = [0u8; 64];
            while !finished.load(Ordering::Relaxed) {
                match echo.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        before_answer()?;
                        echo.send_to(&buf[..len], from)?;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        let measured = measure_round_trips(client, samples)
            .map_err(|e| io::Error::new(e.kind(), format!("UDP echo via {echo_addr}: {e}")));
        finished.store(true, Ordering::Relaxed);
        let echoed = echoing
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("UDP echo thread panicked")));
        let latencies = measured?;
        echoed?;
        Ok(latencies)
    })
}

fn measure_round_trips(client: &UdpSocket, samples: usize) -> io::Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(samples);
    let mut buf = [0u8; 64];
    for sequence in 0..(RTT_WARM_UP + samples) as u64 {
        let sent = Instant::now();
        client.send(&sequence.to_le_bytes())?;
        // A late echo of an earlier datagram is not this round trip.
        loop {
            let len = client.recv(&mut buf)?;
            if buf[..len] == sequence.to_le_bytes() {
                break;
            }
        }
        if sequence >= RTT_WARM_UP as u64 {
            latencies.push(nanos(sent.elapsed()));
        }
    }
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn floor() -> Floor {
        Floor::of(&[171_000], &[262_000], &[15_000], &[250_000])
    }

    #[test]
    fn write_floors_by_cluster_size() {
        let floor = floor();
        assert_eq!(floor.write_floor_ns(1), 171_000);
        assert_eq!(floor.write_floor_ns(2), 186_000);
        assert_eq!(floor.write_floor_ns(5), 186_000);
        assert_eq!(floor.shared_disk_floor_ns(2), None);
        assert_eq!(floor.shared_disk_floor_ns(3), Some(277_000));
        assert_eq!(floor.ratio_to_write_floor(1, 342_000), Some(2.0));
        assert_eq!(floor.ratio_to_shared_disk_floor(3, 554_000), Some(2.0));
        assert_eq!(floor.ratio_to_shared_disk_floor(1, 554_000), None);
        assert_eq!(Floor::default().ratio_to_write_floor(1, 5), None);
        assert_eq!(floor.ratio_to_durable_rtt(375_000), Some(1.5));
    }

    #[test]
    fn goals_over_the_floor_by_cluster_size() {
        assert_eq!(write_floor_goal(1), Some(Goal::AtMost(1.5)));
        assert_eq!(write_floor_goal(2), None);
        assert_eq!(write_floor_goal(3), Some(Goal::AtMost(2.0)));
        assert_eq!(write_floor_goal(7), Some(Goal::AtMost(2.0)));
    }

    #[test]
    fn descriptions_name_every_figure() {
        let floor = floor();
        assert_eq!(
            floor.describe(),
            "floor: fsync p50 0.171 ms, 2 fsyncs at once p50 0.262 ms, namespace RTT p50 0.015 ms, durable round trip p50 0.250 ms"
        );
        assert!(floor.describe_for(1).ends_with("; write floor 0.171 ms"));
        assert!(
            floor
                .describe_for(3)
                .ends_with("; write floor 0.186 ms, shared-disk floor 0.277 ms")
        );
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bench-floor-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fsync_latency_takes_every_sample_and_cleans_up() {
        let dir = scratch_dir("single");
        let latencies = fsync_latency(&dir, 5).unwrap();
        assert_eq!(latencies.len(), 5);
        assert!(latencies.iter().all(|&ns| ns > 0), "{latencies:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fsync_pairs_take_every_sample() {
        let dir = scratch_dir("pair");
        let latencies = fsync_pair_latency(&dir, 3).unwrap();
        assert_eq!(latencies.len(), 3);
        assert!(latencies.iter().all(|&ns| ns > 0), "{latencies:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durable_round_trips_answer_every_request_and_clean_up() {
        let dir = scratch_dir("durable");
        let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let latencies = durable_round_trips(&bind(), &bind(), &dir, 5).unwrap();
        assert_eq!(latencies.len(), 5);
        assert!(latencies.iter().all(|&ns| ns > 0), "{latencies:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn udp_round_trips_over_loopback() {
        let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let latencies = udp_round_trips(&bind(), &bind(), 20).unwrap();
        assert_eq!(latencies.len(), 20);
        assert!(latencies.iter().all(|&ns| ns > 0));
    }
}
