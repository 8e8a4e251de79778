//! Latency summaries (pure): nearest-rank percentiles over recorded samples.

use std::time::Duration;

/// Percentiles and counts of a set of latency samples, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50_ns: u64,
    /// 99th percentile (nearest rank).
    pub p99_ns: u64,
    /// Arithmetic mean.
    pub mean_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

/// Nearest-rank percentile of ascending `sorted` samples; `q` in `0.0..=1.0`.
/// Returns 0 for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarises `samples` (any order).
    pub fn of(samples: &[u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: u128 = sorted.iter().map(|&s| u128::from(s)).sum();
        Summary {
            count: sorted.len(),
            p50_ns: percentile(&sorted, 0.50),
            p99_ns: percentile(&sorted, 0.99),
            mean_ns: (total / sorted.len() as u128) as u64,
            max_ns: sorted[sorted.len() - 1],
        }
    }

    /// Summarises durations.
    pub fn of_durations(samples: &[Duration]) -> Summary {
        let nanos: Vec<u64> = samples.iter().map(|d| d.as_nanos() as u64).collect();
        Summary::of(&nanos)
    }
}

/// Nanoseconds as milliseconds (for tables).
pub fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ns, 50);
        assert_eq!(s.p99_ns, 99);
        assert_eq!(s.max_ns, 100);
        assert_eq!(s.mean_ns, 50);
    }

    #[test]
    fn small_and_empty_sets() {
        assert_eq!(Summary::of(&[]), Summary::default());
        let one = Summary::of(&[7]);
        assert_eq!((one.p50_ns, one.p99_ns, one.max_ns), (7, 7, 7));
        let three = Summary::of(&[30, 10, 20]);
        assert_eq!((three.p50_ns, three.p99_ns), (20, 30));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.0), 1);
    }
}
