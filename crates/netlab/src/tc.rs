//! Pure rendering of `tc` argument lists (run as `tc -n <netns> ...`).

use crate::render::Qdisc;
use crate::shaping::LinkShaping;

/// Arguments that install (or replace) the root qdisc.
pub fn qdisc_replace_args(netns: &str, qdisc: &Qdisc) -> Vec<String> {
    let mut args: Vec<String> = [
        "-n",
        netns,
        "qdisc",
        "replace",
        "dev",
        qdisc.ifname(),
        "root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match qdisc {
        Qdisc::Tbf { rate_kbit, .. } => {
            args.extend(tbf_args(*rate_kbit));
        }
        Qdisc::Netem { shape, .. } => {
            args.push("netem".into());
            args.extend(netem_args(shape));
        }
    }
    args
}

/// Arguments that remove the root qdisc (errors "no qdisc" mean already clean).
pub fn qdisc_delete_args(netns: &str, ifname: &str) -> Vec<String> {
    ["-n", netns, "qdisc", "del", "dev", ifname, "root"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// tbf with a burst of at least 20 ms of traffic (and 16 000 bytes, enough for
/// a few full-size packets at low rates) and 200 ms of queue.
pub fn tbf_args(rate_kbit: u64) -> Vec<String> {
    let burst = (rate_kbit * 1000 / 8 / 50).max(16_000);
    vec![
        "tbf".into(),
        "rate".into(),
        format!("{rate_kbit}kbit"),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "200ms".into(),
    ]
}

/// netem options for a shape (cf. Jepsen `behaviors->netem`).
pub fn netem_args(shape: &LinkShaping) -> Vec<String> {
    let mut args = Vec::new();
    let delay = shape.delay_ms.unwrap_or(0.0);
    if delay > 0.0 {
        args.push("delay".into());
        args.push(format!("{delay}ms"));
        if let Some(j) = shape.jitter_ms.filter(|j| *j > 0.0) {
            args.push(format!("{j}ms"));
        }
    }
    for (name, v) in shape.percentages() {
        args.push(name.into());
        args.push(format!("{v}%"));
    }
    if let Some(rate) = shape.rate_kbit {
        args.push("rate".into());
        args.push(format!("{rate}kbit"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_snapshot() {
        let shape = LinkShaping {
            delay_ms: Some(50.0),
            jitter_ms: Some(5.0),
            loss_pct: Some(30.0),
            duplicate_pct: Some(1.0),
            corrupt_pct: Some(0.5),
            reorder_pct: Some(25.0),
            rate_kbit: Some(1000),
        };
        let q = Qdisc::Netem {
            ifname: "sl3f9an1e2".into(),
            shape,
        };
        assert_eq!(
            qdisc_replace_args("sl-3f9a-n1", &q).join(" "),
            "-n sl-3f9a-n1 qdisc replace dev sl3f9an1e2 root netem delay 50ms 5ms loss 30% \
             duplicate 1% corrupt 0.5% reorder 25% rate 1000kbit"
        );
    }

    #[test]
    fn tbf_snapshot() {
        let q = Qdisc::Tbf {
            ifname: "sl3f9an1e2".into(),
            rate_kbit: 100_000,
        };
        assert_eq!(
            qdisc_replace_args("sl-3f9a-n1", &q).join(" "),
            "-n sl-3f9a-n1 qdisc replace dev sl3f9an1e2 root tbf rate 100000kbit burst 250000 latency 200ms"
        );
        assert_eq!(tbf_args(1000)[4], "16000");
    }
}
