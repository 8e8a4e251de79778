//! Reading samples out of Prometheus text exposition (`/metrics`), for the
//! benches' fsync counts and durations and the node tests' counters.

/// The value of `series` in Prometheus text: a bare metric name
/// (`splitnode_fsyncs_total`, which does not match labelled samples of that
/// name) or a name with its labels exactly as exposed
/// (`frames_rejected_total{transport="tcp",reason="magic"}`). `None` when
/// absent or not a number.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            rest.split_whitespace().next()?.parse().ok()
        })
}

/// The sum of every sample of the metric family `name` (the bare sample
/// and each labelled one, e.g. every `reason` and `transport` of
/// `splitnode_frames_rejected_total`); `None` when the family has none.
pub fn sample_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = (text.lines())
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => &labelled[labelled.find('}')? + 1..],
                None => rest,
            };
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// One histogram family read at one instant: cumulative bucket counts by
/// upper bound (seconds, `+Inf` left out), the sum and the count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// `(le, cumulative count)` in the order exposed (ascending bounds).
    pub buckets: Vec<(f64, f64)>,
    /// Sum of the observations (seconds).
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
}

impl Histogram {
    /// The family `name` (its `_bucket`, `_sum` and `_count` samples);
    /// `None` when the sum or count is missing.
    pub fn read(text: &str, name: &str) -> Option<Histogram> {
        let bucket_prefix = format!("{name}_bucket{{le=\"");
        let buckets = (text.lines())
            .filter_map(|line| {
                let rest = line.strip_prefix(&bucket_prefix)?;
                let (le, rest) = rest.split_once("\"}")?;
                let le: f64 = le.parse().ok().filter(|le: &f64| le.is_finite())?;
                Some((le, rest.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        Some(Histogram {
            buckets,
            sum: sample(text, &format!("{name}_sum"))?,
            count: sample(text, &format!("{name}_count"))?,
        })
    }

    /// What was observed after `earlier` (a reading of the same family):
    /// every figure minus the earlier one.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = (self.buckets.iter())
            .map(|&(le, count)| {
                let before = (earlier.buckets.iter())
                    .find(|(earlier_le, _)| *earlier_le == le)
                    .map_or(0.0, |(_, c)| *c);
                (le, count - before)
            })
            .collect();
        Histogram {
            buckets,
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// Mean observation (seconds); `None` without observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q` quantile (seconds), interpolated linearly inside its bucket
    /// as Prometheus' `histogram_quantile` does; `None` without
    /// observations, or when it falls in the first bucket (from zero to the
    /// first bound nothing locates it: etcd's first fsync bucket holds
    /// everything under 1 ms) or above the last finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        let mut lower = None;
        for &(le, cumulative) in &self.buckets {
            if cumulative >= rank {
                let (lower_le, lower_count) = lower?;
                let inside = cumulative - lower_count;
                let fraction = if inside > 0.0 {
                    (rank - lower_count) / inside
                } else {
                    1.0
                };
                return Some(lower_le + (le - lower_le) * fraction);
            }
            lower = Some((le, cumulative));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_subtract_and_interpolate() {
        let text = |b1: u32, b2: u32, b3: u32, sum: f64| {
            format!(
                "# TYPE h histogram\nh_bucket{{le=\"0.0001\"}} {b1}\nh_bucket{{le=\"0.0002\"}} {b2}\n\
                 h_bucket{{le=\"0.0004\"}} {b3}\nh_bucket{{le=\"+Inf\"}} {b3}\nh_sum {sum}\nh_count {b3}\n"
            )
        };
        let before = Histogram::read(&text(1, 1, 2, 0.0004), "h").unwrap();
        let after = Histogram::read(&text(1, 11, 22, 0.0054), "h").unwrap();
        let delta = after.since(&before);
        assert_eq!(delta.count, 20.0);
        assert_eq!(
            delta.buckets,
            vec![(0.0001, 0.0), (0.0002, 10.0), (0.0004, 20.0)]
        );
        assert!((delta.mean().unwrap() - 0.00025).abs() < 1e-12);
        // Rank 10 of 20 is the top of the (0.1, 0.2] ms bucket.
        assert!((delta.quantile(0.5).unwrap() - 0.0002).abs() < 1e-12);
        // Rank 15: halfway through (0.2, 0.4] ms.
        assert!((delta.quantile(0.75).unwrap() - 0.0003).abs() < 1e-12);
        // Rank 1 of 2 lies in the first bucket: somewhere under 0.1 ms.
        let first = Histogram::read(&text(1, 1, 2, 0.0004), "h").unwrap();
        assert_eq!(first.quantile(0.5), None);
        assert_eq!(Histogram::read("h_count 1\n", "h"), None);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn sums_a_family_over_its_labels() {
        let text = "# TYPE f counter\nf{reason=\"mac\",transport=\"udp\"} 3\n\
                    f{reason=\"source\",transport=\"tcp\"} 4 1700000000\nf_other 100\nf 1\n";
        assert_eq!(sample_sum(text, "f"), Some(8.0));
        assert_eq!(sample_sum(text, "f_other"), Some(100.0));
        assert_eq!(sample_sum(text, "g"), None);
    }

    #[test]
    fn samples_by_exact_series() {
        let text = "# HELP x\nsplitnode_fsyncs_total 42\nsplitnode_fsyncs_total_x 1\n\
                    etcd_disk_wal_fsync_duration_seconds_count 7 1700000000\n\
                    labelled{a=\"b\"} 3\nbroken NaNa\n";
        assert_eq!(sample(text, "splitnode_fsyncs_total"), Some(42.0));
        assert_eq!(
            sample(text, "etcd_disk_wal_fsync_duration_seconds_count"),
            Some(7.0)
        );
        assert_eq!(sample(text, "labelled"), None);
        assert_eq!(sample(text, "labelled{a=\"b\"}"), Some(3.0));
        assert_eq!(sample(text, "missing"), None);
        assert_eq!(sample(text, "broken"), None);
    }
}
