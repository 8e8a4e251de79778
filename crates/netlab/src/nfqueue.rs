//! The delay worker: a helper process that consumes the NFQUEUE queues of one
//! namespace and releases each packet once its delay has passed (delay, jitter
//! and reorder without netem, which many kernels lack; see [`crate::caps`]).
//!
//! It runs as `<helper exe> __netlab-delay-worker '<json config>'`, started by
//! `Lab` inside the receiver's namespace and recorded in the run journal. It
//! prints `ready` on stdout once its queues are bound (rules are installed only
//! after that, so no packet meets an unbound queue). On SIGTERM it stops
//! taking new packets into account for exit, releases what it holds at the
//! scheduled times, and exits; SIGKILL drops held packets.
//!
//! Why a process, not a thread: `splitlab up` returns while the lab stays up,
//! so the consumer must outlive the command that set it up.
//!
//! Watched: with `stats` set, a heartbeat thread rewrites a [`WorkerStats`]
//! file every [`HEARTBEAT`] (packets taken and released, packets held, how
//! long the packet loop has been silent while it holds packets); `Lab`
//! reads it to tell a live worker from an exited or stalled one.
//!
//! Fail-closed: queues are bound without fail-open and the rules have no
//! `--queue-bypass`, so a full queue drops and a dead worker turns the link
//! into a black hole, never into an undelayed link. The queue sits in
//! PREROUTING, before the nft partition rules (INPUT): a packet held here
//! when a partition starts meets that partition when it is released, so it
//! is dropped, not leaked.

use crate::render::DelayQueue;
use nfq::{Queue, Verdict};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use seeded::SplitMix64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The hidden subcommand that runs the worker.
pub const DELAY_WORKER_ARG: &str = "__netlab-delay-worker";

/// What one worker serves.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// Queues to bind, with their delay.
    pub queues: Vec<DelayQueue>,
    /// Where the heartbeat thread writes [`WorkerStats`] (none: no heartbeat).
    pub stats: Option<PathBuf>,
}

/// How often the worker rewrites its stats file.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// A worker's heartbeat, rewritten every [`HEARTBEAT`] (atomically: write a
/// temporary file, then rename it over the old one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    /// The worker's pid.
    pub pid: u32,
    /// Heartbeats written so far.
    pub beats: u64,
    /// Wall-clock time of this heartbeat, ms since the Unix epoch.
    pub unix_ms: u64,
    /// Packets taken from the queues.
    pub received: u64,
    /// Packets released (accepted) back to the kernel.
    pub released: u64,
    /// Packets held right now.
    pub held: u64,
    /// How long the packet loop has not come round while it held packets,
    /// ms (0 while idle: waiting for packets is not a stall).
    pub loop_silent_ms: u64,
    /// Sum over released packets of how late each left after its due time,
    /// µs: the worker's own scheduling delay, which adds to the asked delay
    /// (divide a difference by `released` for the mean over a window).
    #[serde(default)]
    pub late_us_total: u64,
}

/// Counters the packet loop publishes for the heartbeat thread.
#[derive(Default)]
struct Progress {
    received: AtomicU64,
    released: AtomicU64,
    held: AtomicU64,
    late_us_total: AtomicU64,
    /// Monotonic ns (since `started`) of the last loop pass; 0 while idle.
    busy_at_ns: AtomicU64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Rewrites `path` with the current stats every [`HEARTBEAT`], forever (the
/// thread dies with the process).
fn heartbeat(path: &Path, progress: &Progress, started: Instant) {
    let tmp = path.with_extension("tmp");
    let mut beats = 0u64;
    loop {
        beats += 1;
        let busy_at = progress.busy_at_ns.load(Ordering::Relaxed);
        let now_ns = started.elapsed().as_nanos() as u64;
        let stats = WorkerStats {
            pid: std::process::id(),
            beats,
            unix_ms: unix_ms(),
            received: progress.received.load(Ordering::Relaxed),
            released: progress.released.load(Ordering::Relaxed),
            held: progress.held.load(Ordering::Relaxed),
            late_us_total: progress.late_us_total.load(Ordering::Relaxed),
            loop_silent_ms: if busy_at == 0 {
                0
            } else {
                now_ns.saturating_sub(busy_at) / 1_000_000
            },
        };
        if let Ok(text) = serde_json::to_string(&stats)
            && std::fs::write(&tmp, text).is_ok()
        {
            let _ = std::fs::rename(&tmp, path);
        }
        std::thread::sleep(HEARTBEAT);
    }
}

/// Kernel queue length: the default 1024 overflows at a few kpps × 50 ms.
const QUEUE_MAX_LEN: u32 = 65_536;
/// Longest sleep between polls while packets are held (the nfq socket has no
/// fd to wait on together with a timer); when nothing is held the worker
/// blocks in `recv` instead.
const BUSY_POLL: Duration = Duration::from_micros(200);

/// Entry point of the hidden subcommand; returns the exit code.
pub fn delay_worker_main(args: &[String]) -> i32 {
    let Some(config_text) = args.first() else {
        eprintln!("usage: {DELAY_WORKER_ARG} '<json config>'");
        return 2;
    };
    let config: WorkerConfig = match serde_json::from_str(config_text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("delay worker: bad config: {e}");
            return 2;
        }
    };
    match run_worker(&config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("delay worker: {e}");
            1
        }
    }
}

fn run_worker(config: &WorkerConfig) -> io::Result<()> {
    let mut terminate = SigSet::empty();
    terminate.add(Signal::SIGTERM);
    terminate.thread_block().map_err(io::Error::from)?;
    let signals = SignalFd::with_flags(&terminate, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(io::Error::from)?;

    let mut queue = Queue::open()?;
    let mut by_num: HashMap<u16, DelayQueue> = HashMap::new();
    for q in &config.queues {
        queue.bind(q.num)?;
        queue.set_copy_range(q.num, 0)?;
        queue.set_queue_max_len(q.num, QUEUE_MAX_LEN)?;
        queue.set_fail_open(q.num, false)?;
        by_num.insert(q.num, q.clone());
    }
    queue.set_nonblocking(true);
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    if let Some(path) = config.stats.clone() {
        // Spawned after SIGTERM is blocked, so the signal reaches the packet
        // loop, never this thread.
        let progress = progress.clone();
        std::thread::spawn(move || heartbeat(&path, &progress, started));
    }
    {
        let mut out = io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id());
    let mut scheduler = Scheduler {
        by_num,
        rng: SplitMix64::new(seed),
        held: BTreeMap::new(),
        sequence: 0,
    };
    let mut draining = false;

    let mark_busy = |held: usize| {
        progress.held.store(held as u64, Ordering::Relaxed);
        let at = if held == 0 {
            0
        } else {
            (started.elapsed().as_nanos() as u64).max(1)
        };
        progress.busy_at_ns.store(at, Ordering::Relaxed);
    };
    loop {
        mark_busy(scheduler.held.len());
        if scheduler.held.is_empty() {
            if draining {
                return Ok(());
            }
            // Idle: sleep in the kernel until the next packet (no polling, no
            // added latency). SIGTERM may end the process here: nothing is held.
            terminate.thread_unblock().map_err(io::Error::from)?;
            queue.set_nonblocking(false);
            let first = queue.recv();
            terminate.thread_block().map_err(io::Error::from)?;
            queue.set_nonblocking(true);
            match first {
                Ok(msg) => {
                    progress.received.fetch_add(1, Ordering::Relaxed);
                    scheduler.schedule(msg);
                }
                // ENOENT: the kernel dropped what it announced (rules were
                // replaced while packets were queued); the queue is still fine.
                Err(e) if packet_gone(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // 1. Take every waiting packet and give it a release time.
        loop {
            match queue.recv() {
                Ok(msg) => {
                    progress.received.fetch_add(1, Ordering::Relaxed);
                    scheduler.schedule(msg);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if packet_gone(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // 2. Release what is due.
        let now = Instant::now();
        while let Some(entry) = scheduler.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let late_us = Instant::now()
                .saturating_duration_since(entry.key().0)
                .as_micros() as u64;
            let mut msg = entry.remove();
            progress.released.fetch_add(1, Ordering::Relaxed);
            progress.late_us_total.fetch_add(late_us, Ordering::Relaxed);
            msg.set_verdict(Verdict::Accept);
            match queue.verdict(msg) {
                Err(e) if !packet_gone(&e) => return Err(e),
                _ => {}
            }
        }
        // 3. On SIGTERM, finish what is held, then exit (checked above).
        if !draining && matches!(signals.read_signal(), Ok(Some(_))) {
            draining = true;
        }
        // 4. Sleep until the next release, but poll for arrivals meanwhile.
        let pause = scheduler
            .held
            .keys()
            .next()
            .map(|(due, _)| due.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::ZERO)
            .min(BUSY_POLL);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Release times for queued packets.
struct Scheduler {
    by_num: HashMap<u16, DelayQueue>,
    /// Jitter and reorder draws: speed matters here, not cryptography.
    rng: SplitMix64,
    held: BTreeMap<(Instant, u64), nfq::Message>,
    sequence: u64,
}

impl Scheduler {
    fn schedule(&mut self, msg: nfq::Message) {
        let now = Instant::now();
        let due = match self.by_num.get(&msg.get_queue_num()) {
            None => now,
            Some(spec) => {
                let jitter = spec.jitter_us as f64;
                let offset = (self.rng.unit_f64() * 2.0 - 1.0) * jitter;
                let delay_us = (spec.delay_us as f64 + offset).max(0.0);
                let immediate =
                    spec.reorder_pct > 0.0 && self.rng.unit_f64() * 100.0 < spec.reorder_pct;
                // Each packet draws its own delay, as netem does: with
                // jitter wider than the gap between packets they overtake
                // each other. Keeping order instead (each release no earlier
                // than the previous one) skews every delay towards the top
                // of the jitter range: 50 ms ± 10 ms at 1 kpps measured a
                // p50 of 55.4 ms, outside the ±10 % tolerance.
                if immediate {
                    now
                } else {
                    now + Duration::from_nanos((delay_us * 1000.0) as u64)
                }
            }
        };
        self.sequence += 1;
        self.held.insert((due, self.sequence), msg);
    }
}

/// A verdict or receive for a packet the kernel already flushed (its queue
/// rules were replaced, e.g. when a partition heals) fails with ENOENT. That
/// packet is gone, not the queue: keep serving, or the link turns into a
/// black hole.
fn packet_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
}
