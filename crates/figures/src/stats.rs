//! The workspace's one percentile definition and the latency summary built
//! on it.
//!
//! Definition (nearest rank, as in NIST's and Hyndman–Fan's type 1): the
//! q-quantile of n ascending samples is the sample of rank `ceil(q·n)`
//! (1-based, at least 1). It is always an observed value, never an
//! interpolation, so "p99 = 12 ms" means one request really took 12 ms.

use std::time::Duration;

/// Nearest-rank percentile of ascending `sorted` samples; `q` is a fraction
/// in `0.0..=1.0` (clamped), so p99 is `percentile(&s, 0.99)`. `None` for no
/// samples.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

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

impl Summary {
    /// Summarises `samples` (any order); all zero for no samples.
    pub fn of(samples: &[u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: u128 = sorted.iter().map(|&s| u128::from(s)).sum();
        let pick = |q| percentile(&sorted, q).unwrap_or(0);
        Summary {
            count: sorted.len(),
            p50_ns: pick(0.50),
            p99_ns: pick(0.99),
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

/// Nanoseconds as milliseconds (for tables and reports).
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
        assert_eq!(percentile(&[1, 2, 3, 4], 0.0), Some(1));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn works_for_any_copy_sample() {
        let sorted = [0.5, 1.5, 2.5, 3.5];
        assert_eq!(percentile(&sorted, 0.5), Some(1.5));
        assert_eq!(percentile(&sorted, 1.0), Some(3.5));
        let durations = [Duration::from_millis(1), Duration::from_millis(9)];
        assert_eq!(percentile(&durations, 0.99), Some(Duration::from_millis(9)));
    }
}
