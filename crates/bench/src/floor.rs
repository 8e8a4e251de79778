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
    /// Quorum durable round trips (labs of two nodes and more).
    pub quorum_rtt: usize,
}

impl Default for FloorSamples {
    /// Well under a second on a virtio disk, and enough for a stable median.
    fn default() -> Self {
        FloorSamples {
            fsync: 200,
            fsync_pair: 100,
            rtt: 500,
            durable_rtt: 300,
            quorum_rtt: 300,
        }
    }
}

impl FloorSamples {
    /// Each count divided over `blocks` measurements (rounded up), for a
    /// floor taken in turns with the writes it bounds.
    pub fn per_block(self, blocks: usize) -> FloorSamples {
        let share = |n: usize| n.div_ceil(blocks.max(1));
        FloorSamples {
            fsync: share(self.fsync),
            fsync_pair: share(self.fsync_pair),
            rtt: share(self.rtt),
            durable_rtt: share(self.durable_rtt),
            quorum_rtt: share(self.quorum_rtt),
        }
    }
}

/// The floor's raw samples (nanoseconds), pooled over the turns in which
/// they were taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorRaw {
    /// See [`Floor::fsync`].
    pub fsync: Vec<u64>,
    /// See [`Floor::fsync_pair`].
    pub fsync_pair: Vec<u64>,
    /// See [`Floor::rtt`].
    pub rtt: Vec<u64>,
    /// See [`Floor::durable_rtt`].
    pub durable_rtt: Vec<u64>,
    /// See [`Floor::quorum_rtt`]; `None` in a 1-node lab.
    pub quorum_rtt: Option<Vec<u64>>,
}

impl FloorRaw {
    /// Adds the samples of a later turn.
    pub fn extend(&mut self, later: FloorRaw) {
        self.fsync.extend(later.fsync);
        self.fsync_pair.extend(later.fsync_pair);
        self.rtt.extend(later.rtt);
        self.durable_rtt.extend(later.durable_rtt);
        if let Some(quorum) = later.quorum_rtt {
            self.quorum_rtt.get_or_insert_with(Vec::new).extend(quorum);
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
    /// The simplest quorum write, in labs of two nodes and more: from the
    /// client's namespace to a "leader" echo in the first node's, which
    /// forwards the request to a "follower" echo in the second node's and
    /// then appends + fdatasyncs; the follower appends + fdatasyncs and
    /// answers; the leader answers once both are durable. Both files are
    /// on the one disk, as the nodes' are.
    pub quorum_rtt: Option<Summary>,
}

impl Floor {
    /// Summarises raw samples.
    pub fn of(raw: &FloorRaw) -> Floor {
        Floor {
            fsync: Summary::of(&raw.fsync),
            fsync_pair: Summary::of(&raw.fsync_pair),
            rtt: Summary::of(&raw.rtt),
            durable_rtt: Summary::of(&raw.durable_rtt),
            quorum_rtt: raw.quorum_rtt.as_deref().map(Summary::of),
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

    /// `latency_ns` as a multiple of the quorum durable round trip p50.
    pub fn ratio_to_quorum_rtt(&self, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.quorum_rtt?.p50_ns)
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
        let mut text = self.describe();
        if let Some(quorum) = self.quorum_rtt {
            text.push_str(&format!(
                ", quorum durable round trip p50 {:.3} ms",
                ms(quorum.p50_ns)
            ));
        }
        text.push_str(&format!(
            "; write floor {:.3} ms",
            ms(self.write_floor_ns(size))
        ));
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
    round_trips(client, echo, samples, |_| Ok(()))
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
    round_trips(client, echo, samples, move |_| log.append_and_sync())
}

/// The sockets of a quorum durable round trip (see [`Floor::quorum_rtt`]):
/// the leader's echo, the leader's socket towards the follower, and the
/// follower's echo, each made in its node's namespace.
pub struct QuorumSockets {
    /// Where the client's requests arrive.
    pub leader: UdpSocket,
    /// The leader's socket for the follower's traffic.
    pub leader_to_follower: UdpSocket,
    /// The follower's echo.
    pub follower: UdpSocket,
}

/// Round trips of a minimal quorum write from `client` (see
/// [`Floor::quorum_rtt`]), nanoseconds; both logs live in `dir`.
///
/// # Errors
/// File or socket failures, or an answer that did not come within a second.
pub fn quorum_round_trips(
    client: &UdpSocket,
    sockets: &QuorumSockets,
    dir: &Path,
    samples: usize,
) -> io::Result<Vec<u64>> {
    let mut leader_log = ScratchLog::create(dir, "quorum-leader")?;
    let mut follower_log = ScratchLog::create(dir, "quorum-follower")?;
    let to_follower = &sockets.leader_to_follower;
    to_follower.connect(sockets.follower.local_addr()?)?;
    to_follower.set_read_timeout(Some(ECHO_TIMEOUT))?;
    sockets
        .follower
        .set_read_timeout(Some(Duration::from_millis(20)))?;
    let follower_done = AtomicBool::new(false);
    thread::scope(|scope| {
        let following = scope.spawn(|| {
            echo_until(&sockets.follower, &follower_done, |_| {
                follower_log.append_and_sync()
            })
        });
        // As a leader does: the append goes out first, so the follower's
        // fsync overlaps the leader's.
        let mut ack = [0u8; 64];
        let measured = round_trips(client, &sockets.leader, samples, |request| {
            to_follower.send(request)?;
            leader_log.append_and_sync()?;
            loop {
                let len = to_follower.recv(&mut ack)?;
                if ack[..len] == *request {
                    return Ok(());
                }
            }
        });
        follower_done.store(true, Ordering::Relaxed);
        let followed = following
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("follower echo thread panicked")));
        let latencies = measured?;
        followed?;
        Ok(latencies)
    })
}

/// Measures round trips from `client` to `echo`, which runs
/// `before_answer` on each datagram before it sends it back.
fn round_trips(
    client: &UdpSocket,
    echo: &UdpSocket,
    samples: usize,
    before_answer: impl FnMut(&[u8]) -> io::Result<()> + Send,
) -> io::Result<Vec<u64>> {
    let echo_addr = echo.local_addr()?;
    client.connect(echo_addr)?;
    client.set_read_timeout(Some(ECHO_TIMEOUT))?;
    // Short, so the echo thread notices the end soon after the last round trip.
    echo.set_read_timeout(Some(Duration::from_millis(20)))?;
    let finished = AtomicBool::new(false);
    thread::scope(|scope| {
        let echoing = scope.spawn(|| echo_until(echo, &finished, before_answer));
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

/// Answers every datagram on `echo` with itself, after `before_answer`,
/// until `finished` (checked at least every read timeout).
fn echo_until(
    echo: &UdpSocket,
    finished: &AtomicBool,
    mut before_answer: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = [0u8; 64];
    while !finished.load(Ordering::Relaxed) {
        match echo.recv_from(&mut buf) {
            Ok((len, from)) => {
                before_answer(&buf[..len])?;
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
        Floor::of(&FloorRaw {
            fsync: vec![171_000],
            fsync_pair: vec![262_000],
            rtt: vec![15_000],
            durable_rtt: vec![250_000],
            quorum_rtt: Some(vec![400_000]),
        })
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
        assert_eq!(floor.ratio_to_quorum_rtt(600_000), Some(1.5));
    }

    #[test]
    fn turns_pool_their_samples() {
        let samples = FloorSamples::default().per_block(4);
        assert_eq!(
            (samples.fsync, samples.rtt, samples.quorum_rtt),
            (50, 125, 75)
        );
        let turn = |ns: u64, quorum: bool| FloorRaw {
            fsync: vec![ns],
            fsync_pair: vec![ns],
            rtt: vec![ns],
            durable_rtt: vec![ns],
            quorum_rtt: quorum.then(|| vec![ns]),
        };
        let mut raw = turn(1, false);
        raw.extend(turn(2, true));
        raw.extend(turn(3, true));
        assert_eq!(raw.fsync, vec![1, 2, 3]);
        assert_eq!(raw.quorum_rtt, Some(vec![2, 3]));
        assert_eq!(Floor::of(&raw).durable_rtt.count, 3);
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
    fn quorum_round_trips_answer_every_request_and_clean_up() {
        let dir = scratch_dir("quorum");
        let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sockets = QuorumSockets {
            leader: bind(),
            leader_to_follower: bind(),
            follower: bind(),
        };
        let latencies = quorum_round_trips(&bind(), &sockets, &dir, 5).unwrap();
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
