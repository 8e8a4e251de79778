//! Clocks: the host's true CLOCK_MONOTONIC and the node's own clock.
//!
//! The node's clock is what the replica sees (`step(now, ..)`) and what every
//! timer in the node is measured on. Normally it *is* CLOCK_MONOTONIC. The
//! test-only hooks `--test-clock-offset-ms` and `--test-clock-rate` turn it
//! into `local = start + offset + (mono - start) * rate`, which is how the
//! lab injects clock skew and drift into one process. Event records carry
//! both clocks; lease ends are mapped back onto CLOCK_MONOTONIC with
//! [`NodeClock::mono_of_local`], because only this process knows its skew.
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

use crate::config::TestClock;

/// CLOCK_MONOTONIC in nanoseconds. Every network namespace on the host
/// shares this clock, which is what lets the checker compare events from
/// different nodes.
pub(crate) fn mono_ns() -> u64 {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .expect("clock_gettime(CLOCK_MONOTONIC) is always supported on Linux");
    (now.tv_sec() as u64) * 1_000_000_000 + now.tv_nsec() as u64
}

/// The node's own (possibly skewed) clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeClock {
    start_mono: u64,
    offset_ns: i64,
    rate: f64,
}

/// A reading of both clocks at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub mono_ns: u64,
    pub local_ns: u64,
}

impl NodeClock {
    pub(crate) fn new(test_clock: TestClock) -> NodeClock {
        NodeClock::starting_at(mono_ns(), test_clock)
    }

    pub(crate) fn starting_at(start_mono: u64, test_clock: TestClock) -> NodeClock {
        NodeClock {
            start_mono,
            offset_ns: test_clock.offset_ms.saturating_mul(1_000_000),
            rate: test_clock.rate,
        }
    }

    fn is_exact(&self) -> bool {
        self.offset_ns == 0 && self.rate == 1.0
    }

    /// The node's clock at true time `mono`.
    pub(crate) fn local_at(&self, mono: u64) -> u64 {
        if self.is_exact() {
            return mono;
        }
        let elapsed = mono.saturating_sub(self.start_mono) as f64 * self.rate;
        let local = self.start_mono as i128 + self.offset_ns as i128 + elapsed as i128;
        local.clamp(0, u64::MAX as i128) as u64
    }

    /// The true time at which the node's clock reads `local` (the inverse of
    /// [`NodeClock::local_at`]). Used for lease ends in the event log.
    pub(crate) fn mono_of_local(&self, local: u64) -> u64 {
        if self.is_exact() {
            return local;
        }
        let elapsed_local = local as i128 - self.start_mono as i128 - self.offset_ns as i128;
        let elapsed_mono = (elapsed_local as f64 / self.rate) as i128;
        (self.start_mono as i128 + elapsed_mono).clamp(0, u64::MAX as i128) as u64
    }

    pub(crate) fn now(&self) -> Stamp {
        let mono = mono_ns();
        Stamp {
            mono_ns: mono,
            local_ns: self.local_at(mono),
        }
    }

    /// How much real time passes while the node's clock advances `local`.
    pub(crate) fn real_duration(&self, local: Duration) -> Duration {
        if self.rate == 1.0 {
            local
        } else {
            local.div_f64(self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_advances() {
        let first = mono_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(mono_ns() >= first + 2_000_000);
    }

    #[test]
    fn exact_clock_is_identity() {
        let clock = NodeClock::starting_at(1_000, TestClock::default());
        assert_eq!(clock.local_at(123_456), 123_456);
        assert_eq!(clock.mono_of_local(123_456), 123_456);
    }

    #[test]
    fn offset_and_rate_round_trip() {
        let start = 50_000_000_000;
        let clock = NodeClock::starting_at(
            start,
            TestClock {
                offset_ms: -10_000,
                rate: 0.5,
            },
        );
        // At start the clock reads start - 10 s.
        assert_eq!(clock.local_at(start), start - 10_000_000_000);
        // Two true seconds later it has advanced one second.
        assert_eq!(clock.local_at(start + 2_000_000_000), start - 9_000_000_000);
        let local = clock.local_at(start + 3_000_000_000);
        assert_eq!(clock.mono_of_local(local), start + 3_000_000_000);
        assert_eq!(
            clock.real_duration(Duration::from_millis(10)),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn large_negative_offset_clamps_at_zero() {
        let clock = NodeClock::starting_at(
            1_000,
            TestClock {
                offset_ms: -1_000,
                rate: 1.0,
            },
        );
        assert_eq!(clock.local_at(2_000), 0);
    }
}
