//! The workspace's one seeded random generator and one non-cryptographic hash.
//!
//! [`SplitMix64`] is the small generator every crate uses where a seed must fix
//! a choice (workload shapes, partition rings, jitter); [`mix64`] is its
//! finaliser on its own, for turning nearby seeds into unrelated ones.
//! [`Fnv1a`] / [`fnv1a`] is 64-bit FNV-1a, used for name-derived ids, stream
//! names and state fingerprints. Both are integer-only, so outputs are the same
//! on every platform; the reference-vector tests pin them.
#![warn(missing_docs, unreachable_pub)]

/// The SplitMix64 increment (2^64 / golden ratio).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a constant
/// and scrambled on the way out. Fast and well-spread; not cryptographic.
///
/// The derived helpers ([`below`](Self::below), [`range`](Self::range),
/// [`chance`](Self::chance), [`shuffle`](Self::shuffle)) reduce with `%`, so
/// their outputs stay exactly what the hand-written copies this replaced
/// produced for the same seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `mix64(seed)`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        scramble(self.state)
    }

    /// Uniform-ish in `0..bound` by `next % bound` (`bound > 0`; the modulo
    /// bias is negligible for the small bounds used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SplitMix64::below(0)");
        self.next_u64() % bound
    }

    /// In `low..high` (`high > low`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(high > low, "SplitMix64::range: empty range {low}..{high}");
        low + self.below(high - low)
    }

    /// True with probability `num / den` (`den > 0`).
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates shuffle, drawing `below(i + 1)` for `i` from the top down.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The SplitMix64 output function applied to `z + gamma`: spreads nearby seeds
/// over the whole 64-bit space. Equal to `SplitMix64::new(z).next_u64()`.
pub fn mix64(z: u64) -> u64 {
    scramble(z.wrapping_add(GOLDEN_GAMMA))
}

fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 64-bit FNV offset basis (the hash of no bytes).
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// The 64-bit FNV prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental 64-bit FNV-1a: feed bytes with [`write`](Self::write), read the
/// hash with [`finish`](Self::finish). Writing `a` then `b` equals writing
/// their concatenation. `Default` is the offset basis (the empty hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fnv1a {
    hash: u64,
}

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a::new()
    }
}

impl Fnv1a {
    /// A hasher that has seen no bytes.
    pub const fn new() -> Fnv1a {
        Fnv1a {
            hash: FNV_OFFSET_BASIS,
        }
    }

    /// Resumes from a hash value returned earlier by [`finish`](Self::finish)
    /// (for example one restored from a snapshot).
    pub const fn resume(hash: u64) -> Fnv1a {
        Fnv1a { hash }
    }

    /// Mixes `bytes` into the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.hash ^= u64::from(*byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash of everything written so far.
    pub const fn finish(&self) -> u64 {
        self.hash
    }
}

/// 64-bit FNV-1a of `bytes` in one call.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a::new();
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fnv1a_incremental_equals_one_shot() {
        let mut hasher = Fnv1a::new();
        hasher.write(b"foo");
        let mut resumed = Fnv1a::resume(hasher.finish());
        resumed.write(b"bar");
        assert_eq!(resumed.finish(), fnv1a(b"foobar"));
        assert_eq!(Fnv1a::default().finish(), FNV_OFFSET_BASIS);
    }

    #[test]
    fn splitmix64_reference_vectors() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
        // Vigna's reference splitmix64.c, seeded with 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn mix64_is_the_first_output() {
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(mix64(seed), SplitMix64::new(seed).next_u64());
        }
    }

    #[test]
    fn helpers_stay_in_bounds_and_shuffle_permutes() {
        let mut rng = SplitMix64::new(9);
        for n in 1..50 {
            assert!(rng.below(n) < n);
            assert!((n..n + 3).contains(&rng.range(n, n + 3)));
            let x = rng.unit_f64();
            assert!((0.0..1.0).contains(&x));
        }
        assert!((0..100).all(|_| !rng.chance(0, 1000)));
        assert!((0..100).all(|_| rng.chance(1000, 1000)));
        let mut items: Vec<u32> = (0..20).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }
}
