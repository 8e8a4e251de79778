//! From the live probes' records to the from→to matrix of each fault: which
//! probe ticks fell in the evaluated part of the fault window, which arrived
//! in time, how late, how often twice or out of order. Pure except [`load`].
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use netlab::Planes;
use netlab::liveprobe::record::{self, Arrival, SentTick, plane_code};

use super::{Expect, LinkAsk, LinkMeasure, probe_planes};
use crate::run::judge::FaultRecord;
use crate::run::scenario::FaultKind;

/// Probes sent this soon after a fault is in force are not evaluated (the
/// rules are in, but a probe may be in flight).
pub const SETTLE_NS: u64 = 100_000_000;
/// Probes sent this close to the window's end (plus the asked delay) are
/// not evaluated: they could not arrive before it ends.
pub const TAIL_NS: u64 = 50_000_000;
/// A healed link must deliver again within this (datagram plane).
pub const RESUME_NS: u64 = 1_000_000_000;

/// Every node's ticks and every arrival, keyed by (from, to, plane code).
#[derive(Debug, Default)]
pub struct ProbeData {
    ticks: Vec<Vec<SentTick>>,
    arrivals: BTreeMap<(u8, u8, u8), Vec<Arrival>>,
}

/// Reads `<dir>/<node>.sent` and `.recv` of every node; `None` when the run
/// has no probe records.
///
/// # Errors
/// A record file that exists but cannot be read.
pub fn load(dir: &Path, nodes: &[String]) -> std::io::Result<Option<ProbeData>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut data = ProbeData::default();
    for (to, node) in nodes.iter().enumerate() {
        let sent = dir.join(format!("{node}.sent"));
        let recv = dir.join(format!("{node}.recv"));
        data.ticks.push(if sent.exists() {
            record::read_sent(&sent)?
        } else {
            Vec::new()
        });
        if recv.exists() {
            for arrival in record::read_arrivals(&recv)? {
                data.arrivals
                    .entry((arrival.from, to as u8, plane_code(arrival.plane)))
                    .or_default()
                    .push(arrival);
            }
        }
    }
    for list in data.arrivals.values_mut() {
        list.sort_by_key(|a| a.recv_ns);
    }
    Ok(Some(data))
}

/// When a fault stopped acting: its own end, or an earlier heal step.
pub fn effective_end(fault: &FaultRecord, faults: &[FaultRecord], healed_ns: u64) -> u64 {
    let own = fault.end_ns.unwrap_or(healed_ns);
    faults
        .iter()
        .filter(|other| other.kind == FaultKind::Heal && other.start_ns > fault.start_ns)
        .map(|other| other.start_ns)
        .fold(own, u64::min)
}

fn touches(fault: &FaultRecord, from: &str, to: &str) -> bool {
    fault.achieved.as_ref().is_some_and(|achieved| {
        achieved
            .asked
            .iter()
            .any(|ask| ask.from == from && ask.to == to)
    })
}

/// Subtracts `holes` from `[start, end)`.
fn subtract(start: u64, end: u64, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut spans = vec![(start, end)];
    for &(hs, he) in holes {
        spans = spans
            .into_iter()
            .flat_map(|(s, e)| {
                let mut out = Vec::new();
                if hs > s {
                    out.push((s, e.min(hs)));
                }
                if he < e {
                    out.push((s.max(he), e));
                }
                out.into_iter().filter(|(a, b)| a < b).collect::<Vec<_>>()
            })
            .collect();
    }
    spans
}

fn delay_allowance_ns(expect: &Expect) -> u64 {
    match expect {
        Expect::Shape { shape } => {
            ((shape.delay_ms.unwrap_or(0.0) + shape.jitter_ms.unwrap_or(0.0)) * 1e6) as u64
        }
        _ => 0,
    }
}

/// Fills `achieved.links` of every measured fault from the probe records.
pub fn measure_faults(
    faults: &mut [FaultRecord],
    data: &ProbeData,
    nodes: &[String],
    healed_ns: u64,
) {
    let snapshot: Vec<FaultRecord> = faults.to_vec();
    let index_of = |name: &str| nodes.iter().position(|n| n == name);
    for (i, fault) in faults.iter_mut().enumerate() {
        let end = effective_end(fault, &snapshot, healed_ns);
        let Some(achieved) = fault.achieved.as_mut() else {
            continue;
        };
        let mut cells = Vec::new();
        for ask in &achieved.asked {
            let (Some(fi), Some(ti)) = (index_of(&ask.from), index_of(&ask.to)) else {
                continue;
            };
            let others: Vec<&FaultRecord> = snapshot
                .iter()
                .enumerate()
                .filter(|(j, other)| *j != i && touches(other, &ask.from, &ask.to))
                .map(|(_, other)| other)
                .collect();
            let holes: Vec<(u64, u64)> = others
                .iter()
                .map(|other| {
                    let other_end = effective_end(other, &snapshot, healed_ns);
                    (
                        other.start_ns.saturating_sub(SETTLE_NS),
                        other_end + SETTLE_NS,
                    )
                })
                .collect();
            let tail = TAIL_NS + delay_allowance_ns(&ask.expect);
            let spans = subtract(fault.start_ns + SETTLE_NS, end.saturating_sub(tail), &holes);
            let next_on_link = others
                .iter()
                .map(|other| other.start_ns)
                .filter(|start| *start >= end)
                .min();
            for plane in probe_planes(ask.planes) {
                let mut cell = measure_link(data, (fi as u8, ti as u8), plane, &spans, end, ask);
                cell.from = ask.from.clone();
                cell.to = ask.to.clone();
                cell.resume_masked = next_on_link.is_some_and(|next| next < end + RESUME_NS);
                cell.throughput_kbit = achieved
                    .throughput_kbit
                    .get(&format!("{}->{}", ask.from, ask.to))
                    .copied();
                cells.push(cell);
            }
        }
        achieved.links = cells;
    }
}

/// Loads the probe records of a run directory and fills every fault's
/// matrix; a run without records (or with unreadable ones) keeps its asked
/// links only, which the judge reports as not measured.
pub fn measure_run(faults: &mut [FaultRecord], probe_dir: &Path, nodes: &[String], healed_ns: u64) {
    match load(probe_dir, nodes) {
        Ok(Some(data)) => measure_faults(faults, &data, nodes, healed_ns),
        Ok(None) => {}
        Err(error) => eprintln!(
            "splitlab: cannot read the probe records in {}: {error}",
            probe_dir.display()
        ),
    }
}

fn measure_link(
    data: &ProbeData,
    (from, to): (u8, u8),
    plane: Planes,
    spans: &[(u64, u64)],
    end_ns: u64,
    ask: &LinkAsk,
) -> LinkMeasure {
    let in_spans = |at: u64| spans.iter().any(|&(s, e)| s <= at && at < e);
    let ticks: BTreeSet<u64> = data
        .ticks
        .get(from as usize)
        .map(|list| {
            list.iter()
                .filter(|tick| in_spans(tick.at_ns))
                .map(|tick| tick.seq)
                .collect()
        })
        .unwrap_or_default();
    let empty = Vec::new();
    let arrivals = data
        .arrivals
        .get(&(from, to, plane_code(plane)))
        .unwrap_or(&empty);
    let undelayed_below_ns = match &ask.expect {
        Expect::Shape { shape } if shape.delay_ms.unwrap_or(0.0) > 0.0 => {
            let low = shape.delay_ms.unwrap_or(0.0) - shape.jitter_ms.unwrap_or(0.0);
            Some((low.max(0.0) * 1e6 / 2.0) as u64)
        }
        _ => None,
    };
    let mut seen = BTreeSet::new();
    let mut cell = LinkMeasure {
        plane: plane.label().to_string(),
        sent: ticks.len() as u64,
        evaluated_ms: spans.iter().map(|(s, e)| (e - s) as f64 / 1e6).sum(),
        ..LinkMeasure::default()
    };
    let mut delays = Vec::new();
    let mut max_seq = None;
    for arrival in arrivals
        .iter()
        .filter(|a| a.recv_ns < end_ns && ticks.contains(&a.seq))
    {
        if arrival.corrupted {
            cell.corrupted += 1;
        }
        if !seen.insert(arrival.seq) {
            cell.duplicates += 1;
            continue;
        }
        cell.delivered += 1;
        if max_seq.is_some_and(|max| arrival.seq < max) {
            cell.reordered += 1;
        }
        max_seq = max_seq.max(Some(arrival.seq));
        let delay = arrival.recv_ns.saturating_sub(arrival.sent_ns);
        if undelayed_below_ns.is_some_and(|low| delay < low) {
            cell.undelayed += 1;
        }
        delays.push(delay);
    }
    delays.sort_unstable();
    let ms = |ns: Option<u64>| ns.map(|ns| ns as f64 / 1e6);
    cell.delay_p50_ms = ms(figures::percentile(&delays, 0.50));
    if let Some(low) = undelayed_below_ns {
        let delayed: Vec<u64> = delays.iter().copied().filter(|d| *d >= low).collect();
        cell.delayed_p50_ms = ms(figures::percentile(&delayed, 0.50));
    }
    cell.delay_p99_ms = ms(figures::percentile(&delays, 0.99));
    cell.resumed_ms = arrivals
        .iter()
        .find(|a| a.recv_ns >= end_ns)
        .map(|a| (a.recv_ns - end_ns) as f64 / 1e6);
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_split_the_evaluated_span() {
        assert_eq!(subtract(0, 100, &[(20, 30)]), vec![(0, 20), (30, 100)]);
        assert_eq!(subtract(0, 100, &[(0, 200)]), Vec::<(u64, u64)>::new());
        assert_eq!(subtract(10, 100, &[(200, 300)]), vec![(10, 100)]);
    }
}
