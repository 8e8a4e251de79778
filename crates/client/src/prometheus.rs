//! Reading samples out of Prometheus text exposition (`/metrics`), for the
//! benches' fsync counts and the node tests' counters.

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

#[cfg(test)]
mod tests {
    use super::*;

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
