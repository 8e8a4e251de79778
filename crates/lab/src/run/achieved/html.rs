//! report.html's "achieved vs asked" section: per fault, its window and a
//! from→to matrix of what the live probes measured on each directed link.
use std::collections::BTreeSet;
use std::fmt::Write as _;

use figures::svg::escape;

use super::{FaultAchieved, LinkMeasure, ProbeCost};
use crate::run::judge::FaultRecord;

fn cell_text(cells: &[&LinkMeasure]) -> String {
    cells
        .iter()
        .map(|c| {
            let mut text = format!("{} {:.0}%", &c.plane[..1], c.delivered_pct());
            if let Some(p50) = c.delay_p50_ms {
                let _ = write!(text, " {p50:.1}ms");
            }
            if c.duplicates > 0 {
                let _ = write!(text, " dup {}", c.duplicates);
            }
            if let Some(kbit) = c.throughput_kbit {
                let _ = write!(text, " {kbit:.0}kbit/s");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn matrix(achieved: &FaultAchieved, nodes: &[String]) -> String {
    let used: BTreeSet<&str> = achieved
        .links
        .iter()
        .flat_map(|c| [c.from.as_str(), c.to.as_str()])
        .collect();
    let nodes: Vec<&String> = nodes.iter().filter(|n| used.contains(n.as_str())).collect();
    let mut html = String::from("<table class=matrix><tr><th>from ＼ to</th>");
    for to in &nodes {
        let _ = write!(html, "<th>{}</th>", escape(to));
    }
    html.push_str("</tr>");
    for from in &nodes {
        let _ = write!(html, "<tr><th>{}</th>", escape(from));
        for to in &nodes {
            let cells: Vec<&LinkMeasure> = achieved
                .links
                .iter()
                .filter(|c| &&c.from == from && &&c.to == to)
                .collect();
            let style = if cells.iter().any(|c| c.miss.is_some()) {
                " style=\"background:#fdd\""
            } else if cells.is_empty() {
                ""
            } else {
                " style=\"background:#e7f6ea\""
            };
            let title: Vec<String> = cells
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} of {} delivered, {} dup, {} reordered, {} corrupted{}",
                        c.plane,
                        c.delivered,
                        c.sent,
                        c.duplicates,
                        c.reordered,
                        c.corrupted,
                        c.miss
                            .as_ref()
                            .or(c.not_judged.as_ref())
                            .map_or(String::new(), |why| format!(" — {why}"))
                    )
                })
                .collect();
            let _ = write!(
                html,
                "<td{style} title=\"{}\">{}</td>",
                escape(&title.join("\n")),
                cell_text(&cells)
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// Which kernel mechanism served the fault, so a reader can tell a netem
/// figure from an nft/NFQUEUE fallback one (empty: recorded before backends
/// were recorded).
fn backend_note(backend: &str) -> String {
    if backend.is_empty() {
        String::new()
    } else {
        format!(" <span class=muted>[served by {}]</span>", escape(backend))
    }
}

/// The section: one block per measured fault, then the probes' cost.
pub fn section(
    faults: &[FaultRecord],
    nodes: &[String],
    workload_start_ns: u64,
    cost: Option<&ProbeCost>,
) -> String {
    let measured: Vec<(&FaultRecord, &FaultAchieved)> = faults
        .iter()
        .filter_map(|f| Some((f, f.achieved.as_ref()?)))
        .collect();
    if measured.is_empty() {
        return String::new();
    }
    let secs = |ns: u64| ns.saturating_sub(workload_start_ns) as f64 / 1e9;
    let mut html = String::from(
        "<h2>Faults: achieved vs asked</h2><p class=muted>Measured by the live probes \
         (50 probes/s per directed link on each plane: h = heartbeat UDP, r = replication TCP, \
         c = client TCP). Each cell: delivered % of the probes sent in the fault window \
         (after a 100 ms settle), one-way delay p50. Red: outside the fault kind's tolerance \
         (hover for details).</p>",
    );
    for (fault, achieved) in measured {
        let _ = write!(
            html,
            "<h3>#{} {} <span class=muted>(+{:.1} s … +{})</span></h3><p><b>{}</b>{}: {}</p>",
            fault.step + 1,
            escape(&fault.description),
            secs(fault.start_ns),
            fault
                .end_ns
                .map_or("end".to_string(), |end| format!("{:.1} s", secs(end))),
            if achieved.ok {
                "achieved"
            } else {
                "NOT ACHIEVED"
            },
            backend_note(&achieved.backend),
            escape(&achieved.summary)
        );
        for miss in &achieved.misses {
            let _ = write!(html, "<p class=details>{}</p>", escape(miss));
        }
        html.push_str(&matrix(achieved, nodes));
    }
    if let Some(cost) = cost {
        let _ = write!(
            html,
            "<p class=muted>Live probes: {} processes, {:.2} s CPU over {:.0} s ({:.1} % of one core).</p>",
            cost.processes,
            cost.cpu_s,
            cost.wall_s,
            cost.cpu_pct_of_one_core()
        );
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::scenario::FaultKind;

    fn record(achieved: FaultAchieved) -> FaultRecord {
        FaultRecord {
            step: 1,
            kind: FaultKind::Partition,
            description: "isolate <leader>".into(),
            targets: vec!["n1".into()],
            grudge: None,
            all_planes: true,
            start_ns: 2_000_000_000,
            end_ns: Some(7_000_000_000),
            leader_before: None,
            achieved: Some(achieved),
        }
    }

    #[test]
    fn each_fault_names_its_backend_and_verdict() {
        let achieved = FaultAchieved {
            ok: false,
            summary: "1/2 directed links cut".into(),
            misses: vec!["n1→n2 replication delivered 41 %, asked 0 %".into()],
            backend: "nft drop at the receiver".into(),
            ..FaultAchieved::default()
        };
        let html = section(
            &[record(achieved)],
            &["n1".into(), "n2".into()],
            1_000_000_000,
            None,
        );
        assert!(html.contains("<h3>#2 isolate &lt;leader&gt;"), "{html}");
        assert!(html.contains("(+1.0 s … +6.0 s)"), "{html}");
        assert!(html.contains("<b>NOT ACHIEVED</b> <span class=muted>[served by nft drop at the receiver]</span>: 1/2 directed links cut"), "{html}");
        assert!(html.contains("n1→n2 replication delivered 41 %"), "{html}");
    }

    #[test]
    fn no_backend_recorded_shows_none_and_unmeasured_faults_no_section() {
        let achieved = FaultAchieved {
            ok: true,
            summary: "2/2 directed links cut".into(),
            ..FaultAchieved::default()
        };
        let html = section(&[record(achieved)], &[], 0, None);
        assert!(html.contains("<b>achieved</b>: 2/2"), "{html}");
        assert!(!html.contains("served by"), "{html}");
        let mut unmeasured = record(FaultAchieved::default());
        unmeasured.achieved = None;
        assert_eq!(section(&[unmeasured], &[], 0, None), "");
    }
}
