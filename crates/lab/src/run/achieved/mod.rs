//! Achieved versus asked: every network fault of a run is measured by the
//! live probes while it is in force, per directed link and plane, and judged
//! against a stated tolerance ([`tolerance`]). A fault that was not achieved
//! makes the run's verdict unknown. Pure except [`measure::load`].
pub mod html;
pub mod live;
pub mod measure;
pub mod node_faults;
pub mod tolerance;

use std::collections::BTreeMap;

use netlab::counters::NsCounters;
use netlab::{Grudge, LinkShaping, NetState, Planes};
use serde::{Deserialize, Serialize};

/// What one directed link and plane was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "kebab-case")]
pub enum Expect {
    /// Deliver nothing (partition, link down).
    Cut,
    /// Deliver with these conditions (the effective shape: base + fault).
    Shape {
        /// The conditions.
        shape: LinkShaping,
    },
    /// Toggled down and up (flap): measured, not judged.
    Flap,
}

/// One asked directed link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkAsk {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Which traffic.
    pub planes: Planes,
    /// What it should do.
    #[serde(flatten)]
    pub expect: Expect,
}

/// What the probes saw on one directed link and probe plane during the
/// fault (ticks sent in the evaluated part of the window).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkMeasure {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// The probe plane (`heartbeat` UDP, `replication` / `client` TCP).
    pub plane: String,
    /// Probe ticks in the evaluated part of the window.
    pub sent: u64,
    /// Of those, delivered before the window ended.
    pub delivered: u64,
    /// Delivered copies beyond the first.
    pub duplicates: u64,
    /// Deliveries that arrived after a later-sent probe.
    pub reordered: u64,
    /// Deliveries that arrived much faster than the asked delay (netem's
    /// "sent without the delay", which is how reordering is asked).
    pub undelayed: u64,
    /// Deliveries whose payload arrived mangled.
    pub corrupted: u64,
    /// One-way delay p50 of first deliveries, ms.
    pub delay_p50_ms: Option<f64>,
    /// One-way delay p50 of the deliveries that were delayed (those released
    /// at once for a reorder left out), ms; judged against the asked delay.
    pub delayed_p50_ms: Option<f64>,
    /// One-way delay p99 of first deliveries, ms.
    pub delay_p99_ms: Option<f64>,
    /// After the fault ended: time until this link delivered again, ms.
    pub resumed_ms: Option<f64>,
    /// Whether the heal was followed by another fault on this link within
    /// a second (then the resume is not judged).
    #[serde(default)]
    pub resume_masked: bool,
    /// Bulk-transfer throughput for rate limits, kbit/s.
    pub throughput_kbit: Option<f64>,
    /// Evaluated duration (ms) after leaving out the settle time and the
    /// overlap with other faults on this link.
    pub evaluated_ms: f64,
    /// Why this cell is outside its tolerance (`None`: within it, or not judged).
    pub miss: Option<String>,
    /// Why this cell is not judged (`None`: judged).
    pub not_judged: Option<String>,
}

impl LinkMeasure {
    /// Delivered percentage of sent probes.
    pub fn delivered_pct(&self) -> f64 {
        pct(self.delivered, self.sent)
    }
}

/// Percentage `part / whole` (0 for no whole).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// A fault's asked links, its measurements and the judgement
/// (`results.json` `faults[].achieved`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultAchieved {
    /// What each directed link was asked to do.
    pub asked: Vec<LinkAsk>,
    /// The from→to matrix: one cell per asked link and probe plane.
    #[serde(default)]
    pub links: Vec<LinkMeasure>,
    /// Rule counters and qdisc statistics per node, read at the fault's end.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, NsCounters>,
    /// Bulk throughput per `from->to` link (rate limits), kbit/s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throughput_kbit: BTreeMap<String, f64>,
    /// True when every judged cell is within its tolerance.
    #[serde(default)]
    pub ok: bool,
    /// The one console line ("12/12 directed links cut, 0 probes leaked").
    #[serde(default)]
    pub summary: String,
    /// One line per cell outside its tolerance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<String>,
    /// The kernel backend that served the fault on this machine
    /// (`netlab::backend::backend_of`: "netem", "nft drop at the receiver", ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend: String,
    /// Delay workers that had exited or stalled when the fault ended (their
    /// links dropped everything, fail-closed): the fault was not achieved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_problems: Vec<String>,
    /// Pause faults, measured like a network fault: per stopped node, ms
    /// from SIGSTOP until its `/status` stopped answering (`None`: it still
    /// answered [`PAUSE_WITHIN_MS`] later, so the pause was not achieved).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paused: BTreeMap<String, Option<f64>>,
    /// Disk faults: per node, the filled disk and how the node ended.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disk: BTreeMap<String, node_faults::DiskMeasure>,
    /// Forge faults: the members' rejected-frame counters and terms.
    pub forge: Option<node_faults::ForgeMeasure>,
}

/// How long a paused node may keep answering `/status` (a SIGSTOP lands at
/// once; an answer already in flight, or one poll's 300 ms timeout, fits).
pub const PAUSE_WITHIN_MS: f64 = 1000.0;

/// The asked links of a partition: every cut link of the grudge.
pub fn asked_partition(grudge: &Grudge, planes: Planes) -> Vec<LinkAsk> {
    let mut out: Vec<LinkAsk> = grudge
        .cut_links()
        .map(|(from, to)| LinkAsk {
            from: from.clone(),
            to: to.clone(),
            planes,
            expect: Expect::Cut,
        })
        .collect();
    out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    out
}

/// The asked links of a shape step: the effective shape of each link and
/// plane in the state netlab applied.
pub fn asked_shape(links: &[(String, String)], planes: Planes, state: &NetState) -> Vec<LinkAsk> {
    links
        .iter()
        .filter_map(|(from, to)| {
            let shape = state
                .effective(from, to)
                .into_iter()
                .find(|(p, _)| *p == planes)
                .map(|(_, shape)| shape)?;
            Some(LinkAsk {
                from: from.clone(),
                to: to.clone(),
                planes,
                expect: Expect::Shape { shape },
            })
        })
        .collect()
}

/// The asked links of a link-down (or flap) step: both directions, all planes.
pub fn asked_link_down(pairs: &[(String, String)], flap: bool) -> Vec<LinkAsk> {
    let expect = if flap { Expect::Flap } else { Expect::Cut };
    pairs
        .iter()
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .map(|(from, to)| LinkAsk {
            from: from.clone(),
            to: to.clone(),
            planes: Planes::All,
            expect: expect.clone(),
        })
        .collect()
}

/// The probe planes that stand for `planes`.
pub fn probe_planes(planes: Planes) -> Vec<Planes> {
    match planes {
        Planes::All => Planes::EACH.to_vec(),
        one => vec![one],
    }
}

/// The live probes' own cost over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeCost {
    /// Probe processes (one per node).
    pub processes: usize,
    /// CPU used by all of them, seconds (user + system).
    pub cpu_s: f64,
    /// Wall time they ran, seconds.
    pub wall_s: f64,
    /// Nodes whose probe exited early (their links measured nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exited: Vec<String>,
}

impl ProbeCost {
    /// CPU used as a percentage of one core.
    pub fn cpu_pct_of_one_core(&self) -> f64 {
        if self.wall_s > 0.0 {
            100.0 * self.cpu_s / self.wall_s
        } else {
            0.0
        }
    }
}

/// Judges every measured fault against its tolerance and returns one reason
/// per fault that was not achieved ("fault #2 not achieved: n1→n3
/// replication delivered 41 %, asked 0 %"). A probe that died means no
/// network fault of the run was measured.
pub fn judge_run(
    faults: &mut [crate::run::judge::FaultRecord],
    cost: Option<&ProbeCost>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let measured = faults.iter().any(|f| f.achieved.is_some());
    if let Some(cost) = cost
        && measured
        && !cost.exited.is_empty()
    {
        reasons.push(format!(
            "live probe exited on {}: faults were not measured",
            cost.exited.join(", ")
        ));
    }
    for fault in faults.iter_mut() {
        let Some(achieved) = fault.achieved.as_mut() else {
            continue;
        };
        tolerance::judge(achieved);
        if !achieved.disk.is_empty() || achieved.forge.is_some() {
            for problem in node_faults::judge(achieved) {
                reasons.push(format!("fault #{} not achieved: {problem}", fault.step + 1));
            }
            continue;
        }
        for problem in &achieved.worker_problems {
            reasons.push(format!("fault #{} not achieved: {problem}", fault.step + 1));
        }
        if !achieved.worker_problems.is_empty() {
            achieved.ok = false;
        }
        if !achieved.paused.is_empty() {
            let mut parts = Vec::new();
            for (node, ms) in &achieved.paused {
                match ms {
                    Some(ms) => parts.push(format!("{node} silent after {ms:.0} ms")),
                    None => {
                        achieved.ok = false;
                        parts.push(format!("{node} still answering"));
                        reasons.push(format!(
                            "fault #{} not achieved: {node} still answered /status {PAUSE_WITHIN_MS:.0} ms after SIGSTOP",
                            fault.step + 1
                        ));
                    }
                }
            }
            achieved.summary = format!("/status: {}", parts.join(", "));
        }
        if let Some(first) = achieved.misses.first() {
            let more = achieved.misses.len() - 1;
            reasons.push(format!(
                "fault #{} not achieved: {first}{}",
                fault.step + 1,
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            ));
        }
    }
    reasons
}

/// One console line per measured fault.
pub fn console_lines(faults: &[crate::run::judge::FaultRecord]) -> Vec<String> {
    faults
        .iter()
        .filter_map(|fault| {
            let achieved = fault.achieved.as_ref()?;
            let head = if achieved.ok {
                "achieved"
            } else {
                "NOT ACHIEVED"
            };
            let backend = if achieved.backend.is_empty() {
                String::new()
            } else {
                format!(" [{}]", achieved.backend)
            };
            Some(format!(
                "  #{} {}: {head}{backend}: {}",
                fault.step + 1,
                fault.description,
                achieved.summary
            ))
        })
        .collect()
}
