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

use crate::render::DelayQueue;
use nfq::{Queue, Verdict};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use seeded::SplitMix64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The hidden subcommand that runs the worker.
pub const DELAY_WORKER_ARG: &str = "__netlab-delay-worker";

/// What one worker serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// Queues to bind, with their delay.
    pub queues: Vec<DelayQueue>,
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
        last_due: HashMap::new(),
        held: BTreeMap::new(),
        sequence: 0,
    };
    let mut draining = false;

    loop {
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
                Ok(msg) => scheduler.schedule(msg),
                // ENOENT: the kernel dropped what it announced (rules were
                // replaced while packets were queued); the queue is still fine.
                Err(e) if packet_gone(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // 1. Take every waiting packet and give it a release time.
        loop {
            match queue.recv() {
                Ok(msg) => scheduler.schedule(msg),
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
            let mut msg = entry.remove();
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
    last_due: HashMap<u16, Instant>,
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
                let mut due = if immediate {
                    now
                } else {
                    now + Duration::from_nanos((delay_us * 1000.0) as u64)
                };
                // Without a reorder request, keep packet order (jitter widens
                // gaps but never overtakes), like a real path.
                if spec.reorder_pct <= 0.0 {
                    let last = self.last_due.entry(spec.num).or_insert(due);
                    if due < *last {
                        due = *last;
                    }
                    *last = due;
                }
                due
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
