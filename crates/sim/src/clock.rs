//! Per-node clocks: `local = offset + rate × true time`, piecewise.
//!
//! Every replica reads only its own clock (the `now` passed to `step`). The
//! simulator keeps the whole history of rate changes, so any local instant
//! (for example a lease's `until`) can be mapped back onto the true clock
//! exactly, even if the rate changed after the lease was granted.
//!
//! Rates are integers in parts per million (`rate_ppm = +5000` means the
//! clock runs 0.5 % fast) so the arithmetic is exact and reproducible.
/// Parts per million: the unit of clock rates.
pub const PPM: i64 = 1_000_000;

/// The largest rate deviation (ppm) such that any two clocks within
/// `±deviation` have a rate ratio of at most `rho`:
/// `(1 + d) / (1 - d) <= rho`, rounded down, minus one ppm of slack.
pub fn max_deviation_ppm(rho: f64) -> i64 {
    if rho.is_nan() || rho <= 1.0 {
        return 0;
    }
    let deviation = (rho - 1.0) / (rho + 1.0);
    ((deviation * PPM as f64).floor() as i64 - 1).max(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    true_start: u64,
    local_start: u64,
    rate_ppm: i64,
}

impl Segment {
    fn local(&self, true_ns: u64) -> u64 {
        let elapsed = i128::from(true_ns - self.true_start);
        let advanced = elapsed * i128::from(PPM + self.rate_ppm) / i128::from(PPM);
        self.local_start + advanced as u64
    }

    /// The first true instant at which this segment's clock reads `local`.
    fn true_at(&self, local: u64) -> u64 {
        let ahead = i128::from(local - self.local_start) * i128::from(PPM);
        let speed = i128::from(PPM + self.rate_ppm);
        self.true_start + ((ahead + speed - 1) / speed) as u64
    }
}

/// One node's clock over the whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeClock {
    segments: Vec<Segment>,
}

impl NodeClock {
    /// A clock that reads `offset_ns` at true time 0 and runs at
    /// `1 + rate_ppm / 1e6` times true speed.
    pub fn new(offset_ns: u64, rate_ppm: i64) -> NodeClock {
        assert!(
            rate_ppm > -PPM,
            "a clock must move forward (rate_ppm {rate_ppm})"
        );
        NodeClock {
            segments: vec![Segment {
                true_start: 0,
                local_start: offset_ns,
                rate_ppm,
            }],
        }
    }

    fn segment_at_true(&self, true_ns: u64) -> &Segment {
        self.segments
            .iter()
            .rev()
            .find(|segment| segment.true_start <= true_ns)
            .unwrap_or(&self.segments[0])
    }

    /// The local reading at true time `true_ns`.
    pub fn local(&self, true_ns: u64) -> u64 {
        let segment = self.segment_at_true(true_ns);
        segment.local(true_ns.max(segment.true_start))
    }

    /// The current rate deviation at true time `true_ns`.
    pub fn rate_ppm_at(&self, true_ns: u64) -> i64 {
        self.segment_at_true(true_ns).rate_ppm
    }

    /// From true time `true_ns` on, run at `rate_ppm`. Rate changes must be
    /// applied in time order.
    pub fn set_rate(&mut self, true_ns: u64, rate_ppm: i64) {
        assert!(
            rate_ppm > -PPM,
            "a clock must move forward (rate_ppm {rate_ppm})"
        );
        let last = *self.segments.last().expect("a clock has a segment");
        assert!(
            true_ns >= last.true_start,
            "clock rate changes must be in time order"
        );
        let local_start = last.local(true_ns);
        if true_ns == last.true_start {
            self.segments.pop();
        }
        self.segments.push(Segment {
            true_start: true_ns,
            local_start,
            rate_ppm,
        });
    }

    /// The first true instant at which the clock reads at least `local`
    /// (0 if it already did at the start).
    pub fn to_true(&self, local: u64) -> u64 {
        let first = self.segments[0];
        if local <= first.local_start {
            return 0;
        }
        let segment = self
            .segments
            .iter()
            .rev()
            .find(|segment| segment.local_start <= local)
            .unwrap_or(&first);
        segment.true_at(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_rate() {
        let clock = NodeClock::new(1_000, 10_000); // 1 % fast
        assert_eq!(clock.local(0), 1_000);
        assert_eq!(clock.local(1_000_000), 1_000 + 1_010_000);
    }

    #[test]
    fn to_true_inverts_local_even_across_rate_changes() {
        let mut clock = NodeClock::new(5_000_000, -3_000);
        clock.set_rate(2_000_000_000, 500_000);
        clock.set_rate(3_000_000_000, -600_000);
        for true_ns in [0, 1, 999_999, 2_000_000_000, 2_500_000_001, 7_000_000_003] {
            let local = clock.local(true_ns);
            let back = clock.to_true(local);
            assert!(back <= true_ns, "{back} > {true_ns}");
            assert_eq!(clock.local(back), local);
            if back > 0 {
                assert!(clock.local(back - 1) < local);
            }
        }
    }

    #[test]
    fn slow_clock_stretches_durations() {
        let mut clock = NodeClock::new(0, 0);
        clock.set_rate(1_000, -500_000); // half speed
        let start = clock.local(1_000);
        assert_eq!(clock.to_true(start + 100), 1_200);
    }

    #[test]
    fn deviation_bound_matches_rho() {
        let d = max_deviation_ppm(1.01);
        let (fast, slow) = ((PPM + d) as f64, (PPM - d) as f64);
        assert!(fast / slow <= 1.01);
        assert!(d > 4_900);
        assert_eq!(max_deviation_ppm(1.0), 0);
        assert_eq!(max_deviation_ppm(f64::NAN), 0);
    }
}
