//! The FUSE data disk's fault modes and its control protocol: one text
//! line per request on a unix socket (`pass`, `error`, `slow <µs>`,
//! `stats`), one JSON line back with the fsyncs of the window that a mode
//! change closes. Pure: the server and the lab share it.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What an fsync (or fdatasync, or a directory fsync) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncMode {
    /// Passed to the backing file.
    #[default]
    Pass,
    /// Fails with EIO without touching the backing file (`fsync-error`).
    Error,
    /// Passed to the backing file after this delay (`disk-slow`).
    Slow(Duration),
}

impl FsyncMode {
    /// The request line that sets this mode.
    pub fn to_line(self) -> String {
        match self {
            FsyncMode::Pass => "pass".into(),
            FsyncMode::Error => "error".into(),
            FsyncMode::Slow(delay) => format!("slow {}", delay.as_micros()),
        }
    }

    /// The mode's name in stats and reports.
    pub fn name(self) -> &'static str {
        match self {
            FsyncMode::Pass => "pass",
            FsyncMode::Error => "error",
            FsyncMode::Slow(_) => "slow",
        }
    }
}

/// One control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Switch to a mode; the answer closes the window that ran until now.
    Set(FsyncMode),
    /// The current window so far, nothing changed.
    Stats,
}

impl Request {
    /// Parses one request line.
    ///
    /// # Errors
    /// A line that is none of the requests, or a delay that is not a whole
    /// number of microseconds.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        let request = match (words.next(), words.next()) {
            (Some("pass"), None) => Request::Set(FsyncMode::Pass),
            (Some("error"), None) => Request::Set(FsyncMode::Error),
            (Some("slow"), Some(micros)) => {
                let micros: u64 = micros
                    .parse()
                    .map_err(|_| format!("slow: {micros:?} is not a number of microseconds"))?;
                Request::Set(FsyncMode::Slow(Duration::from_micros(micros)))
            }
            (Some("stats"), None) => Request::Stats,
            _ => return Err(format!("unknown request {line:?}")),
        };
        match words.next() {
            None => Ok(request),
            Some(extra) => Err(format!("unexpected {extra:?} in {line:?}")),
        }
    }

    /// The line that sends it.
    pub fn to_line(self) -> String {
        match self {
            Request::Set(mode) => mode.to_line(),
            Request::Stats => "stats".into(),
        }
    }
}

/// At most this many fsync latencies are kept per window (far above what a
/// fault of a few seconds sees; the counts stay exact past it).
const MAX_SAMPLES: usize = 100_000;

/// The fsyncs of one window (from one mode change to the next), as the
/// server counts them.
#[derive(Debug, Clone)]
pub struct Window {
    mode: FsyncMode,
    started: Instant,
    fsyncs: u64,
    failed: u64,
    delayed: u64,
    first_failed: Option<Duration>,
    latencies_us: Vec<u64>,
}

impl Window {
    /// A window in `mode` starting now.
    pub fn new(mode: FsyncMode) -> Window {
        Window {
            mode,
            started: Instant::now(),
            fsyncs: 0,
            failed: 0,
            delayed: 0,
            first_failed: None,
            latencies_us: Vec::new(),
        }
    }

    /// The mode in force.
    pub fn mode(&self) -> FsyncMode {
        self.mode
    }

    /// An fsync that was answered `latency` after it arrived, with
    /// `failed` when the answer was an error the mode injected, `delayed`
    /// when the mode held it back.
    pub fn record(&mut self, latency: Duration, failed: bool, delayed: bool) {
        self.fsyncs += 1;
        if failed {
            self.failed += 1;
            self.first_failed.get_or_insert(self.started.elapsed());
        }
        if delayed {
            self.delayed += 1;
        }
        if self.latencies_us.len() < MAX_SAMPLES {
            self.latencies_us.push(latency.as_micros() as u64);
        }
    }

    /// What the window saw so far.
    pub fn stats(&self) -> FsyncStats {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let ms = |q: f64| figures::percentile(&sorted, q).map(|us| us as f64 / 1000.0);
        FsyncStats {
            mode: self.mode.name().into(),
            delay_ms: match self.mode {
                FsyncMode::Slow(delay) => Some(delay.as_secs_f64() * 1000.0),
                _ => None,
            },
            window_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            fsyncs: self.fsyncs,
            failed: self.failed,
            delayed: self.delayed,
            first_failed_ms: self.first_failed.map(|at| at.as_secs_f64() * 1000.0),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: sorted.last().map(|us| *us as f64 / 1000.0),
        }
    }
}

/// The fsyncs of one window, as the server reports them: the lab's
/// measure of an fsync fault (`results.json` `faults[].achieved.disk`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsyncStats {
    /// The mode of the window (`pass`, `error`, `slow`).
    pub mode: String,
    /// The delay of a `slow` window, ms.
    pub delay_ms: Option<f64>,
    /// How long the window lasted, ms.
    pub window_ms: f64,
    /// fsync, fdatasync and directory fsync requests answered.
    pub fsyncs: u64,
    /// Of those, failed with EIO by the fault.
    pub failed: u64,
    /// Of those, held back by the fault.
    pub delayed: u64,
    /// When the first one failed, ms after the window started.
    pub first_failed_ms: Option<f64>,
    /// Time from request to answer, p50, ms.
    pub p50_ms: Option<f64>,
    /// The same, p99.
    pub p99_ms: Option<f64>,
    /// The same, the slowest.
    pub max_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_their_lines() {
        for request in [
            Request::Set(FsyncMode::Pass),
            Request::Set(FsyncMode::Error),
            Request::Set(FsyncMode::Slow(Duration::from_millis(50))),
            Request::Stats,
        ] {
            assert_eq!(Request::parse(&request.to_line()), Ok(request));
        }
        assert_eq!(
            Request::parse("slow 2500\n"),
            Ok(Request::Set(FsyncMode::Slow(Duration::from_micros(2500))))
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        for line in ["", "fail", "slow", "slow 5ms", "pass now", "stats 1"] {
            assert!(Request::parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn a_window_counts_failures_delays_and_latency() {
        let mut window = Window::new(FsyncMode::Slow(Duration::from_millis(20)));
        for ms in [20, 21, 22, 40] {
            window.record(Duration::from_millis(ms), false, true);
        }
        let stats = window.stats();
        assert_eq!((stats.fsyncs, stats.delayed, stats.failed), (4, 4, 0));
        assert_eq!(stats.delay_ms, Some(20.0));
        assert_eq!(stats.p50_ms, Some(21.0));
        assert_eq!(stats.max_ms, Some(40.0));
        assert_eq!(stats.first_failed_ms, None);

        let mut window = Window::new(FsyncMode::Error);
        assert_eq!(window.stats().p50_ms, None);
        window.record(Duration::from_micros(30), true, false);
        window.record(Duration::from_micros(40), true, false);
        let stats = window.stats();
        assert_eq!((stats.mode.as_str(), stats.failed), ("error", 2));
        assert!(stats.first_failed_ms.is_some());
    }
}
