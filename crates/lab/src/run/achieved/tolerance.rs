//! The tolerance of each fault kind, and the judgement of a fault's matrix
//! against it. Pure. The tolerances (also in lab/scenarios/README.md):
//!
//! | asked | judged on | within tolerance when |
//! |---|---|---|
//! | cut (partition, link down) | every probe plane | 0 probes delivered that were sent ≥ 100 ms after the rules were in |
//! | loss / corrupt p % | datagram (heartbeat) plane | lost + mangled within the binomial 99 % interval of p for the probes sent |
//! | delay d (± jitter) | datagram plane | one-way p50 (of the delayed probes) within ±10 % of d or ±2 ms |
//! | duplicate p % | datagram plane | extra copies / delivered within the binomial 99 % interval |
//! | reorder p % | datagram plane | probes released without the delay within the binomial 99 % interval |
//! | rate r | bulk transfer | throughput between 0.6 r and 1.25 r; the datagram plane's loss only from below (a full rate-limit queue drops on its own) |
//! | heal | datagram plane | the link delivers again within 1 s (unless the next fault on it starts sooner) |
//!
//! TCP planes are judged for cuts only: TCP retransmits, orders and queues,
//! so their loss, duplicates and delays are recorded, not judged.
use super::measure::RESUME_NS;
use super::{Expect, FaultAchieved, LinkMeasure, pct};
use netlab::{LinkShaping, Planes};

/// z of the two-sided 99 % normal interval.
const Z99: f64 = 2.576;

/// Whether `hits` of `n` trials is inside the binomial 99 % interval of
/// probability `p` (normal approximation, with one trial of slack for
/// continuity; `p = 0` allows 1 + 0.5 % of `n` for probes the host itself
/// dropped).
pub fn binomial_ok(hits: u64, n: u64, p: f64) -> bool {
    let n_f = n as f64;
    let expected = n_f * p;
    let slack = if p <= 0.0 {
        1.0 + 0.005 * n_f
    } else {
        Z99 * (n_f * p * (1.0 - p)).sqrt() + 1.0
    };
    (hits as f64 - expected).abs() <= slack
}

/// Whether a measured one-way p50 matches the asked delay.
pub fn delay_ok(p50_ms: f64, asked_ms: f64) -> bool {
    (p50_ms - asked_ms).abs() <= (0.1 * asked_ms).max(2.0)
}

/// Whether a bulk throughput matches an asked rate.
pub fn rate_ok(kbit: f64, asked_kbit: u64) -> bool {
    let asked = asked_kbit as f64;
    kbit >= 0.6 * asked && kbit <= 1.25 * asked
}

fn link_name(cell: &LinkMeasure) -> String {
    format!("{}→{} {}", cell.from, cell.to, cell.plane)
}

/// Judges one cell; returns why it is outside its tolerance.
fn judge_cell(cell: &mut LinkMeasure, expect: &Expect) -> Option<String> {
    let name = link_name(cell);
    let datagram = cell.plane == Planes::Heartbeat.label();
    if !datagram && !matches!(expect, Expect::Cut) {
        cell.not_judged = Some("TCP plane: recorded, judged on the datagram plane".into());
        return None;
    }
    if matches!(expect, Expect::Flap) {
        cell.not_judged = Some("flap: toggled links are recorded, not judged".into());
        return None;
    }
    if cell.sent == 0 {
        cell.not_judged =
            Some("no probes in the evaluated window (overlap with another fault)".into());
        return None;
    }
    let mut misses = Vec::new();
    match expect {
        Expect::Cut => {
            if cell.delivered > 0 {
                misses.push(format!(
                    "{name} delivered {:.0} % ({} of {} probes leaked), asked 0 %",
                    cell.delivered_pct(),
                    cell.delivered,
                    cell.sent
                ));
            }
        }
        Expect::Shape { shape } => misses.extend(judge_shape(cell, shape, &name)),
        Expect::Flap => {}
    }
    if datagram
        && !cell.resume_masked
        && cell.resumed_ms.is_none_or(|ms| ms > RESUME_NS as f64 / 1e6)
    {
        misses.push(match cell.resumed_ms {
            Some(ms) => format!(
                "{name} delivered again {:.0} ms after the heal, asked ≤ 1000 ms",
                ms
            ),
            None => format!("{name} never delivered again after the heal"),
        });
    }
    (!misses.is_empty()).then(|| misses.join("; "))
}

fn judge_shape(cell: &LinkMeasure, shape: &LinkShaping, name: &str) -> Vec<String> {
    let mut misses = Vec::new();
    let loss = shape.loss_pct.unwrap_or(0.0) / 100.0;
    let corrupt = shape.corrupt_pct.unwrap_or(0.0) / 100.0;
    let affected_p = 1.0 - (1.0 - loss) * (1.0 - corrupt);
    let affected = cell.sent - cell.delivered + cell.corrupted;
    // A rate limit's queue overflows while the link is saturated (the bulk
    // measurement does that on purpose) and drops probes at its tail: loss
    // above the asked share is the limit working, so only too little counts.
    let queue_drops_allowed =
        shape.rate_kbit.is_some() && affected as f64 > affected_p * cell.sent as f64;
    if !queue_drops_allowed && !binomial_ok(affected, cell.sent, affected_p) {
        misses.push(format!(
            "{name} lost or mangled {:.1} % of {} probes, asked {:.1} %",
            pct(affected, cell.sent),
            cell.sent,
            affected_p * 100.0
        ));
    }
    if let Some(asked) = shape.delay_ms.filter(|d| *d > 0.0) {
        let reorder = shape.reorder_pct.unwrap_or(0.0);
        // Probes released at once (reorder) are left out of the median.
        match cell.delayed_p50_ms.or(cell.delay_p50_ms) {
            Some(p50) if !delay_ok(p50, asked) => misses.push(format!(
                "{name} one-way delay p50 {p50:.1} ms, asked {asked:.1} ms"
            )),
            None => misses.push(format!(
                "{name} delivered nothing, asked a delay of {asked:.1} ms"
            )),
            _ => {}
        }
        if reorder > 0.0 && !binomial_ok(cell.undelayed, cell.delivered, reorder / 100.0) {
            misses.push(format!(
                "{name} released {:.1} % without the delay, asked {reorder:.1} %",
                pct(cell.undelayed, cell.delivered)
            ));
        }
    }
    let dup = shape.duplicate_pct.unwrap_or(0.0);
    if dup > 0.0 && !binomial_ok(cell.duplicates, cell.delivered, dup / 100.0) {
        misses.push(format!(
            "{name} duplicated {:.1} %, asked {dup:.1} %",
            pct(cell.duplicates, cell.delivered)
        ));
    }
    if let (Some(rate), Some(kbit)) = (shape.rate_kbit, cell.throughput_kbit)
        && !rate_ok(kbit, rate)
    {
        misses.push(format!(
            "{name} bulk throughput {kbit:.0} kbit/s, asked {rate} kbit/s"
        ));
    }
    misses
}

/// Judges every cell of a fault and writes its summary line, misses and `ok`.
pub fn judge(achieved: &mut FaultAchieved) {
    achieved.misses.clear();
    let asks = achieved.asked.clone();
    for cell in &mut achieved.links {
        cell.miss = None;
        cell.not_judged = None;
        let Some(ask) = asks
            .iter()
            .find(|ask| ask.from == cell.from && ask.to == cell.to)
        else {
            continue;
        };
        cell.miss = judge_cell(cell, &ask.expect);
        if let Some(miss) = &cell.miss {
            achieved.misses.push(miss.clone());
        }
    }
    achieved.ok = achieved.misses.is_empty();
    achieved.summary = summary(achieved);
}

fn summary(achieved: &FaultAchieved) -> String {
    let judged: Vec<&LinkMeasure> = achieved
        .links
        .iter()
        .filter(|cell| cell.not_judged.is_none())
        .collect();
    if achieved.links.is_empty() || judged.is_empty() {
        return "not measured (no probes in the evaluated window)".into();
    }
    let mut parts = Vec::new();
    let cut: Vec<&LinkMeasure> = achieved
        .links
        .iter()
        .filter(|cell| {
            achieved
                .asked
                .iter()
                .any(|a| a.from == cell.from && a.to == cell.to && a.expect == Expect::Cut)
        })
        .collect();
    if !cut.is_empty() {
        let mut links: Vec<(&str, &str)> = cut
            .iter()
            .map(|c| (c.from.as_str(), c.to.as_str()))
            .collect();
        links.dedup();
        let held = links
            .iter()
            .filter(|(f, t)| {
                cut.iter()
                    .filter(|c| c.from == *f && c.to == *t)
                    .all(|c| c.delivered == 0)
            })
            .count();
        let leaked: u64 = cut.iter().map(|c| c.delivered).sum();
        parts.push(format!(
            "{held}/{} directed links cut, {leaked} probes leaked",
            links.len()
        ));
    }
    let shape = achieved.asked.iter().find_map(|a| match &a.expect {
        Expect::Shape { shape } => Some(*shape),
        _ => None,
    });
    if let Some(shape) = shape {
        let udp: Vec<&&LinkMeasure> = judged
            .iter()
            .filter(|c| c.plane == Planes::Heartbeat.label())
            .collect();
        let sum = |f: fn(&LinkMeasure) -> u64| udp.iter().map(|c| f(c)).sum::<u64>();
        let (sent, delivered) = (sum(|c| c.sent), sum(|c| c.delivered));
        if let Some(loss) = shape.loss_pct.filter(|p| *p > 0.0) {
            parts.push(format!(
                "loss {:.1} % (asked {loss} %)",
                pct(sent - delivered, sent)
            ));
        }
        if let Some(corrupt) = shape.corrupt_pct.filter(|p| *p > 0.0) {
            parts.push(format!(
                "corrupt {:.1} % lost + {:.1} % mangled (asked {corrupt} %)",
                pct(sent - delivered, sent),
                pct(sum(|c| c.corrupted), delivered)
            ));
        }
        if let Some(delay) = shape.delay_ms.filter(|d| *d > 0.0) {
            let mut p50s: Vec<f64> = udp
                .iter()
                .filter_map(|c| c.delayed_p50_ms.or(c.delay_p50_ms))
                .collect();
            p50s.sort_by(f64::total_cmp);
            let p99 = udp
                .iter()
                .filter_map(|c| c.delay_p99_ms)
                .fold(0.0, f64::max);
            if let Some(p50) = figures::percentile(&p50s, 0.5) {
                parts.push(format!(
                    "delay p50 {p50:.1} ms, p99 {p99:.1} ms (asked {delay} ms ± {} ms)",
                    shape.jitter_ms.unwrap_or(0.0)
                ));
            }
        }
        if let Some(dup) = shape.duplicate_pct.filter(|p| *p > 0.0) {
            parts.push(format!(
                "duplicate {:.1} % (asked {dup} %)",
                pct(sum(|c| c.duplicates), delivered)
            ));
        }
        if let Some(reorder) = shape.reorder_pct.filter(|p| *p > 0.0) {
            parts.push(format!(
                "reorder {:.1} % released at once, {:.1} % out of order (asked {reorder} %)",
                pct(sum(|c| c.undelayed), delivered),
                pct(sum(|c| c.reordered), delivered)
            ));
        }
        if let Some(rate) = shape.rate_kbit {
            let rates: Vec<String> = achieved
                .throughput_kbit
                .values()
                .map(|k| format!("{k:.0}"))
                .collect();
            parts.push(if rates.is_empty() {
                format!("rate not measured (asked {rate} kbit/s)")
            } else {
                format!("rate {} kbit/s (asked {rate} kbit/s)", rates.join("/"))
            });
        }
    }
    let resumed: Vec<f64> = judged
        .iter()
        .filter(|c| c.plane == Planes::Heartbeat.label() && !c.resume_masked)
        .filter_map(|c| c.resumed_ms)
        .collect();
    if let Some(max) = resumed.iter().copied().reduce(f64::max) {
        parts.push(format!("delivering again {max:.0} ms after the end"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::achieved::LinkAsk;

    #[test]
    fn binomial_interval_accepts_near_and_rejects_far() {
        assert!(binomial_ok(60, 300, 0.2));
        assert!(!binomial_ok(120, 300, 0.2));
        assert!(binomial_ok(1, 300, 0.0));
        assert!(!binomial_ok(20, 300, 0.0));
    }

    #[test]
    fn delay_and_rate_tolerances() {
        assert!(delay_ok(54.0, 50.0) && !delay_ok(56.0, 50.0));
        assert!(delay_ok(11.9, 10.0) && !delay_ok(12.5, 10.0));
        assert!(rate_ok(900.0, 1000) && !rate_ok(1400.0, 1000) && !rate_ok(500.0, 1000));
    }

    fn cell(plane: &str, sent: u64, delivered: u64) -> LinkMeasure {
        LinkMeasure {
            from: "n1".into(),
            to: "n3".into(),
            plane: plane.into(),
            sent,
            delivered,
            resumed_ms: Some(30.0),
            ..LinkMeasure::default()
        }
    }

    #[test]
    fn a_leaking_cut_is_not_achieved_and_names_the_link() {
        let mut achieved = FaultAchieved {
            asked: vec![LinkAsk {
                from: "n1".into(),
                to: "n3".into(),
                planes: Planes::All,
                expect: Expect::Cut,
            }],
            links: vec![cell("heartbeat", 100, 0), cell("replication", 100, 41)],
            ..FaultAchieved::default()
        };
        judge(&mut achieved);
        assert!(!achieved.ok);
        assert_eq!(
            achieved.misses,
            vec!["n1→n3 replication delivered 41 % (41 of 100 probes leaked), asked 0 %"]
        );
        assert_eq!(
            achieved.summary,
            "0/1 directed links cut, 41 probes leaked, delivering again 30 ms after the end"
        );
        achieved.links[1].delivered = 0;
        judge(&mut achieved);
        assert!(achieved.ok, "{:?}", achieved.misses);
    }

    /// A fault that shaped n1→n3 on every plane, measured as `links`.
    fn shaped_n1_n3(shape: LinkShaping, links: Vec<LinkMeasure>) -> FaultAchieved {
        FaultAchieved {
            asked: vec![LinkAsk {
                from: "n1".into(),
                to: "n3".into(),
                planes: Planes::All,
                expect: Expect::Shape { shape },
            }],
            links,
            ..FaultAchieved::default()
        }
    }

    #[test]
    fn loss_is_judged_on_the_datagram_plane() {
        let shape = LinkShaping {
            loss_pct: Some(20.0),
            ..LinkShaping::default()
        };
        let mut achieved = shaped_n1_n3(
            shape,
            vec![cell("heartbeat", 300, 241), cell("client", 300, 300)],
        );
        judge(&mut achieved);
        assert!(achieved.ok, "{:?}", achieved.misses);
        assert!(
            achieved.summary.starts_with("loss 19.7 % (asked 20 %)"),
            "{}",
            achieved.summary
        );
        achieved.links[0].delivered = 290;
        judge(&mut achieved);
        assert!(!achieved.ok);
    }

    #[test]
    fn a_rate_limit_may_drop_probes_at_its_queue_but_must_limit() {
        let shape = LinkShaping {
            rate_kbit: Some(1000),
            ..LinkShaping::default()
        };
        // The library run's figures: 4 of 494 heartbeat probes dropped.
        let heartbeat = LinkMeasure {
            throughput_kbit: Some(960.0),
            ..cell("heartbeat", 494, 490)
        };
        let mut achieved = shaped_n1_n3(shape, vec![heartbeat]);
        judge(&mut achieved);
        assert!(achieved.ok, "{:?}", achieved.misses);
        achieved.links[0].throughput_kbit = Some(20_000.0);
        judge(&mut achieved);
        assert!(!achieved.ok, "an unlimited link is not a rate limit");
        // With loss asked as well, too little loss is still a miss.
        let lossy = LinkShaping {
            rate_kbit: Some(1000),
            loss_pct: Some(30.0),
            ..LinkShaping::default()
        };
        achieved.asked[0].expect = Expect::Shape { shape: lossy };
        achieved.links[0].throughput_kbit = Some(700.0);
        judge(&mut achieved);
        assert!(!achieved.ok, "4 of 494 lost is not 30 %");
    }
}
