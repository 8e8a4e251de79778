//! The simulator's only source of randomness: named ChaCha8 streams derived
//! from the run seed.
//!
//! Each concern (network, disk, clients, nemesis, schedule) draws from its own
//! stream, so adding a draw in one place (say, a new client operation) does
//! not reshuffle every later network decision. All helpers use integer
//! arithmetic so a run is reproducible on every platform.
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use seeded::{fnv1a, mix64};

/// A seeded random stream.
#[derive(Debug, Clone)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream called `name` of the run seeded with `seed`: ChaCha8 keyed by
    /// [`seeded::mix64`] of the seed xor the [`seeded::fnv1a`] of the name.
    pub fn stream(seed: u64, name: &str) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(mix64(
            seed ^ fnv1a(name.as_bytes()),
        )))
    }

    /// The next 64 random bits of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SimRng::below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi`; returns `lo` when the range is empty.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo)
        }
    }

    /// True with probability `ppm / 1_000_000`.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(1_000_000) < u64::from(ppm)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// A uniformly chosen element (`items` must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks an index with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut roll = self.below(total.max(1));
        for (index, weight) in weights.iter().enumerate() {
            if roll < *weight {
                return index;
            }
            roll -= weight;
        }
        weights.len() - 1
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let mut a = SimRng::stream(7, "net");
        let mut b = SimRng::stream(7, "net");
        let mut c = SimRng::stream(7, "disk");
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut rng = SimRng::stream(1, "t");
        for n in 1..50 {
            assert!(rng.below(n) < n);
            let v = rng.range(n, n + 3);
            assert!((n..n + 3).contains(&v));
        }
        assert_eq!(rng.range(5, 5), 5);
    }

    #[test]
    fn chance_extremes() {
        let mut rng = SimRng::stream(2, "t");
        assert!((0..100).all(|_| !rng.chance_ppm(0)));
        assert!((0..100).all(|_| rng.chance_ppm(1_000_000)));
    }

    #[test]
    fn weighted_never_picks_zero_weight() {
        let mut rng = SimRng::stream(3, "t");
        for _ in 0..200 {
            assert_ne!(rng.weighted(&[5, 0, 5]), 1);
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = SimRng::stream(4, "t");
        let mut items: Vec<u32> = (0..20).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }
}
