//! Taking the floor's samples: appends + fdatasync on scratch files, UDP
//! round trips between namespaces, and echoes that answer only once their
//! own append (and a follower's) is durable.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::UdpSocket;
use std::os::unix::fs::FileExt;
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

/// Scratch logs preallocate this much at a time, as splitnode's log does.
const PREALLOCATE: u64 = 4 << 20;

/// A scratch log file that is removed again on drop.
struct ScratchLog {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    len: u64,
    /// The file's size; `None` where the filesystem has no `fallocate`.
    allocated: Option<u64>,
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
        let mut log = ScratchLog {
            file,
            path,
            len: 0,
            allocated: Some(0),
        };
        // The first sync also persists the new inode; a node's log exists already.
        log.append_and_sync()?;
        Ok(log)
    }

    /// What a node's group commit does: append into preallocated space
    /// (the cheapest durable write: the file's size stays, so the sync
    /// commits no metadata), then fdatasync.
    fn append_and_sync(&mut self) -> io::Result<()> {
        let end = self.len + RECORD_BYTES as u64;
        if let Some(allocated) = self.allocated.filter(|&allocated| end > allocated) {
            let grown = allocated + PREALLOCATE;
            self.allocated = match nix::fcntl::fallocate(
                &self.file,
                nix::fcntl::FallocateFlags::empty(),
                allocated as i64,
                PREALLOCATE as i64,
            ) {
                Ok(()) => Some(grown),
                // As splitnode's log does there: the file grows by its writes.
                Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENOSYS) => None,
                Err(errno) => return Err(errno.into()),
            };
        }
        self.file.write_all_at(&[b'x'; RECORD_BYTES], self.len)?;
        self.len = end;
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

/// The sockets of a quorum durable round trip (see [`super::Floor::quorum_rtt`]):
/// the leader's echo, the leader's socket towards its followers, and one
/// echo per follower, each made in its node's namespace.
pub struct QuorumSockets {
    /// Where the client's requests arrive.
    pub leader: UdpSocket,
    /// The leader's socket for its followers' traffic.
    pub leader_to_followers: UdpSocket,
    /// The followers' echoes, one per other node of the cluster.
    pub followers: Vec<UdpSocket>,
}

/// Round trips of a minimal quorum write from `client` (see
/// [`super::Floor::quorum_rtt`]), nanoseconds; every log lives in `dir`.
///
/// # Errors
/// File or socket failures, or an answer that did not come within a second.
pub fn quorum_round_trips(
    client: &UdpSocket,
    sockets: &QuorumSockets,
    dir: &Path,
    samples: usize,
) -> io::Result<Vec<u64>> {
    let cluster = sockets.followers.len() + 1;
    // Acknowledgements the leader waits for besides its own sync.
    let acks_needed = cluster / 2;
    let mut leader_log = ScratchLog::create(dir, "quorum-leader")?;
    let mut follower_logs = (0..sockets.followers.len())
        .map(|i| ScratchLog::create(dir, &format!("quorum-follower-{i}")))
        .collect::<io::Result<Vec<_>>>()?;
    let follower_addrs = (sockets.followers.iter())
        .map(UdpSocket::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    let to_followers = &sockets.leader_to_followers;
    to_followers.set_read_timeout(Some(ECHO_TIMEOUT))?;
    for follower in &sockets.followers {
        follower.set_read_timeout(Some(Duration::from_millis(20)))?;
    }
    let followers_done = AtomicBool::new(false);
    thread::scope(|scope| {
        let following: Vec<_> = (sockets.followers.iter())
            .zip(&mut follower_logs)
            .map(|(echo, log)| {
                let done = &followers_done;
                scope.spawn(move || echo_until(echo, done, |_| log.append_and_sync()))
            })
            .collect();
        // As a leader does: the append goes out first, so the followers'
        // fsyncs overlap the leader's; then it waits for a majority.
        let mut ack = [0u8; 64];
        let measured = round_trips(client, &sockets.leader, samples, |request| {
            for addr in &follower_addrs {
                to_followers.send_to(request, *addr)?;
            }
            leader_log.append_and_sync()?;
            let mut acks = 0;
            while acks < acks_needed {
                // A slower follower's answer to an earlier request is skipped.
                let (len, _) = to_followers.recv_from(&mut ack)?;
                acks += usize::from(ack[..len] == *request);
            }
            Ok(())
        });
        followers_done.store(true, Ordering::Relaxed);
        let followed = (following.into_iter())
            .map(|thread| joined(thread, "follower echo"))
            .collect::<io::Result<Vec<()>>>();
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
        let echoed = joined(echoing, "UDP echo");
        let latencies = measured?;
        echoed?;
        Ok(latencies)
    })
}

/// The result of a scoped echo thread; a panic becomes an error naming it.
fn joined(thread: thread::ScopedJoinHandle<'_, io::Result<()>>, what: &str) -> io::Result<()> {
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other(format!("{what} thread panicked"))))
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
        for followers in [1, 2, 4] {
            let sockets = QuorumSockets {
                leader: bind(),
                leader_to_followers: bind(),
                followers: (0..followers).map(|_| bind()).collect(),
            };
            let latencies = quorum_round_trips(&bind(), &sockets, &dir, 5).unwrap();
            assert_eq!(latencies.len(), 5, "{followers} followers");
            assert!(latencies.iter().all(|&ns| ns > 0), "{latencies:?}");
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        }
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
