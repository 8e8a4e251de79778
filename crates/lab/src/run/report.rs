//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! no external assets) that tells a person what happened. Pure.
//!
//! The timeline has one lane per node (leader bands coloured by term, lease
//! windows under them, election starts, restarts), fault windows shaded
//! across all lanes, one row of ticks per client (ok / fail / info) and a
//! latency-over-time chart.
use std::collections::BTreeMap;
use std::fmt::Write;

use ::figures::svg::{Svg, escape};
use checker::{EventKind, NodeEvent, Op, OpKind, Verdict};

use super::figures::show_ms;
use super::results::{Results, latencies};
use super::runner::FINAL_READ_PROCESS;

const WIDTH: f64 = 1180.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 34.0;
const CLIENT_ROW: f64 = 12.0;
const CHART: f64 = 160.0;

/// Maps reference-clock nanoseconds to x pixels.
struct Scale {
    origin: u64,
    span: u64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.origin, self.origin + self.span);
        LEFT + (t - self.origin) as f64 / self.span as f64 * (WIDTH - LEFT - RIGHT)
    }

    fn seconds(&self, t: u64) -> f64 {
        (t.saturating_sub(self.origin)) as f64 / 1e9
    }
}

fn term_colour(term: u64) -> String {
    let hue = (term * 67 + 200) % 360;
    format!("hsl({hue},65%,55%)")
}

/// [start, end) leader intervals per node with their term.
fn leader_bands(events: &[NodeEvent], end: u64) -> BTreeMap<String, Vec<(u64, u64, u64)>> {
    let mut bands: BTreeMap<String, Vec<(u64, u64, u64)>> = BTreeMap::new();
    let mut open: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for event in events {
        let closes = matches!(
            event.kind,
            EventKind::SteppedDown { .. } | EventKind::Started | EventKind::BecameLeader
        );
        if closes && let Some((start, term)) = open.remove(&event.node) {
            bands
                .entry(event.node.clone())
                .or_default()
                .push((start, event.mono_ns, term));
        }
        if matches!(event.kind, EventKind::BecameLeader) {
            open.insert(event.node.clone(), (event.mono_ns, event.term));
        }
    }
    for (node, (start, term)) in open {
        bands.entry(node).or_default().push((start, end, term));
    }
    bands
}

/// Merged lease windows per node (reference clock).
fn lease_windows(events: &[NodeEvent]) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut windows: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for event in events {
        match event.kind {
            EventKind::LeaseExtended { until_mono_ns } => {
                let list = windows.entry(event.node.clone()).or_default();
                match list.last_mut() {
                    Some(last) if event.mono_ns <= last.1 => last.1 = last.1.max(until_mono_ns),
                    _ => list.push((event.mono_ns, until_mono_ns)),
                }
            }
            EventKind::LeaseLost | EventKind::SteppedDown { .. } | EventKind::Started => {
                if let Some(last) = windows.get_mut(&event.node).and_then(|l| l.last_mut())
                    && last.1 > event.mono_ns
                {
                    last.1 = event.mono_ns.max(last.0);
                }
            }
            _ => {}
        }
    }
    windows
}

fn kind_colour(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Ok => "#2e9e44",
        OpKind::Fail => "#d33",
        OpKind::Info => "#e8a317",
        OpKind::Invoke => "#888",
    }
}

/// The inline SVG timeline.
pub fn timeline_svg(results: &Results, history: &[Op], events: &[NodeEvent]) -> String {
    let frame = results.frame;
    let first_event = events.iter().map(|e| e.mono_ns).min();
    let origin = frame
        .map(|f| f.workload_start_ns.saturating_sub(1_000_000_000))
        .or(first_event)
        .unwrap_or(0);
    let last = history
        .iter()
        .map(|op| op.time_ns)
        .chain(events.iter().map(|e| e.mono_ns))
        .max()
        .unwrap_or(origin + 1);
    let scale = Scale {
        origin,
        span: last.saturating_sub(origin).max(1),
    };
    let nodes = &results.nodes;
    let clients: Vec<u64> = {
        let mut ids: Vec<u64> = history
            .iter()
            .filter(|op| op.process < FINAL_READ_PROCESS)
            .map(|op| op.process)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let lanes_top = 30.0;
    let clients_top = lanes_top + nodes.len() as f64 * LANE + 18.0;
    let chart_top = clients_top + clients.len() as f64 * CLIENT_ROW + 30.0;
    let height = chart_top + CHART + 40.0;
    let mut svg = Svg::new(
        WIDTH,
        height,
        r#"font-family="system-ui, sans-serif" font-size="11""#,
    );
    // Time grid.
    let seconds = scale.span as f64 / 1e9;
    let step = if seconds > 60.0 {
        10.0
    } else if seconds > 20.0 {
        5.0
    } else {
        1.0
    };
    let mut s = 0.0;
    while s <= seconds {
        let x = scale.x(origin + (s * 1e9) as u64);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{lanes_top}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#777">{s:.0}s</text>"##,
            chart_top + CHART,
            chart_top + CHART + 14.0
        );
        s += step;
    }
    // Phase markers: workload start/end, final heal, final reads.
    if let Some(frame) = frame {
        // The last phases often fall within a few pixels of each other and
        // of the right edge: a label that would overlap the previous one
        // drops a line, and one that would run off the edge ends at its line.
        const CHAR_WIDTH: f64 = 5.0;
        let mut previous_label_end = f64::NEG_INFINITY;
        let mut row = 0.0;
        for (at, label) in [
            (frame.workload_start_ns, "workload"),
            (frame.workload_end_ns, "end"),
            (frame.healed_ns, "healed"),
            (frame.final_reads_ns, "final reads"),
        ] {
            let x = scale.x(at);
            let width = CHAR_WIDTH * label.len() as f64;
            let (label_x, anchor, label_start) = if x + 2.0 + width > WIDTH {
                (x - 2.0, "end", x - 2.0 - width)
            } else {
                (x + 2.0, "start", x + 2.0)
            };
            row = if label_start < previous_label_end {
                row + 10.0
            } else {
                0.0
            };
            previous_label_end = label_start + width;
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#555" stroke-dasharray="2 3"/><text x="{label_x:.1}" y="{}" text-anchor="{anchor}" fill="#555" font-size="9">{label}</text>"##,
                lanes_top - 4.0,
                chart_top + CHART,
                chart_top - 4.0 + row
            );
        }
    }
    // Fault windows.
    for fault in &results.faults {
        let x1 = scale.x(fault.start_ns);
        let x2 = scale.x(fault.end_ns.unwrap_or(last)).max(x1 + 2.0);
        let _ = write!(
            svg,
            r##"<rect x="{x1:.1}" y="{}" width="{:.1}" height="{}" fill="#f4433622" stroke="#f44336" stroke-dasharray="3 2"><title>{}</title></rect><text x="{:.1}" y="{}" fill="#c62828">#{} {}</text>"##,
            lanes_top - 4.0,
            x2 - x1,
            chart_top + CHART - lanes_top + 4.0,
            escape(&fault.description),
            x1 + 2.0,
            lanes_top - 8.0 - (fault.step % 2) as f64 * 11.0,
            fault.step + 1,
            escape(&fault.description.chars().take(60).collect::<String>())
        );
    }
    // Node lanes.
    let bands = leader_bands(events, last);
    let leases = lease_windows(events);
    for (i, node) in nodes.iter().enumerate() {
        let y = lanes_top + i as f64 * LANE;
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{y}" width="{}" height="{}" fill="#f5f5f5"/><text x="{}" y="{}" text-anchor="end" font-weight="600">{}</text>"##,
            WIDTH - LEFT - RIGHT,
            LANE - 8.0,
            LEFT - 8.0,
            y + 16.0,
            escape(node)
        );
        for (start, end, term) in bands.get(node).into_iter().flatten() {
            let x1 = scale.x(*start);
            let x2 = scale.x(*end).max(x1 + 1.5);
            let _ = write!(
                svg,
                r#"<rect x="{x1:.1}" y="{y}" width="{:.1}" height="{}" fill="{}"><title>{node} leader of term {term}: {:.3}s – {:.3}s</title></rect>"#,
                x2 - x1,
                LANE - 16.0,
                term_colour(*term),
                scale.seconds(*start),
                scale.seconds(*end)
            );
            if x2 - x1 > 24.0 {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{}" fill="#fff" font-weight="600">leader t{term}</text>"##,
                    x1 + 3.0,
                    y + 12.0
                );
            }
        }
        for (start, end) in leases.get(node).into_iter().flatten() {
            let x1 = scale.x(*start);
            let x2 = scale.x(*end).max(x1 + 1.0);
            let _ = write!(
                svg,
                r##"<rect x="{x1:.1}" y="{}" width="{:.1}" height="5" fill="#3949ab"><title>{node} lease {:.3}s – {:.3}s</title></rect>"##,
                y + LANE - 14.0,
                x2 - x1,
                scale.seconds(*start),
                scale.seconds(*end)
            );
        }
        for event in events.iter().filter(|e| e.node == *node) {
            let x = scale.x(event.mono_ns);
            match &event.kind {
                EventKind::ElectionStarted => {
                    let _ = write!(
                        svg,
                        r##"<path d="M{x:.1} {} l3 5 l-6 0 z" fill="#333"><title>{node} election for term {}</title></path>"##,
                        y - 1.0,
                        event.term
                    );
                }
                EventKind::Started => {
                    let _ = write!(
                        svg,
                        r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#000" stroke-width="2"><title>{node} (re)started</title></line>"##,
                        y + LANE - 8.0
                    );
                }
                EventKind::SteppedDown { reason } => {
                    let _ = write!(
                        svg,
                        r##"<circle cx="{x:.1}" cy="{}" r="3" fill="#fff" stroke="#000"><title>{node} stepped down ({reason:?}) in term {}</title></circle>"##,
                        y + (LANE - 16.0) / 2.0,
                        event.term
                    );
                }
                _ => {}
            }
        }
    }
    // Client rows: one tick per completed operation.
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="end" fill="#555">clients</text>"##,
        LEFT - 8.0,
        clients_top - 4.0
    );
    let row_of: BTreeMap<u64, usize> = clients.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    for op in history.iter().filter(|op| op.kind != OpKind::Invoke) {
        let Some(row) = row_of.get(&op.process) else {
            continue;
        };
        let x = scale.x(op.time_ns);
        let y = clients_top + *row as f64 * CLIENT_ROW;
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{y:.1}" width="1.6" height="{}" fill="{}"/>"#,
            x - 0.8,
            CLIENT_ROW - 3.0,
            kind_colour(op.kind)
        );
    }
    for (i, process) in clients.iter().enumerate() {
        let home = history
            .iter()
            .find(|op| op.process == *process)
            .and_then(|op| op.node.clone())
            .unwrap_or_default();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#777" font-size="9">c{process} {}</text>"##,
            LEFT - 8.0,
            clients_top + i as f64 * CLIENT_ROW + 8.0,
            escape(&home)
        );
    }
    // Latency over time.
    let points = latencies(history);
    let max_latency = points.iter().map(|(_, l, _)| *l).max().unwrap_or(1).max(1);
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{chart_top}" width="{}" height="{CHART}" fill="none" stroke="#ccc"/><text x="{}" y="{}" text-anchor="end" fill="#555">latency</text><text x="{}" y="{}" text-anchor="end" fill="#777">{:.0} ms</text><text x="{}" y="{}" text-anchor="end" fill="#777">0</text>"##,
        WIDTH - LEFT - RIGHT,
        LEFT - 8.0,
        chart_top + CHART / 2.0,
        LEFT - 8.0,
        chart_top + 10.0,
        max_latency as f64 / 1e6,
        LEFT - 8.0,
        chart_top + CHART
    );
    for (time, latency, kind) in points {
        let x = scale.x(time);
        let y = chart_top + CHART - latency as f64 / max_latency as f64 * (CHART - 4.0);
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.6" fill="{}" fill-opacity="0.7"/>"#,
            kind_colour(kind)
        );
    }
    svg.finish()
}

/// The whole page.
pub fn render(results: &Results, history: &[Op], events: &[NodeEvent]) -> String {
    let verdict_colour = match results.verdict.as_str() {
        "valid" => "#2e7d32",
        "invalid" => "#c62828",
        _ => "#ef6c00",
    };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>splitlab: {name}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1240px; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ font-size: 16px; margin-top: 28px; }} h3 {{ font-size: 14px; margin: 16px 0 4px; }}
.verdict {{ display: inline-block; padding: 4px 12px; border-radius: 4px; color: #fff; font-weight: 700; background: {verdict_colour}; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: left; vertical-align: top; }}
th {{ background: #fafafa; }} .valid {{ color: #2e7d32; font-weight: 600; }} .invalid {{ color: #c62828; font-weight: 600; }} .unknown {{ color: #ef6c00; font-weight: 600; }}
.details {{ font-family: ui-monospace, monospace; font-size: 11px; color: #444; white-space: pre-wrap; }}
.legend span {{ display: inline-block; margin-right: 14px; font-size: 12px; }} .sw {{ display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }}
.muted {{ color: #666; font-size: 13px; }}
</style></head><body>
<h1>{name}</h1><div class="muted">{description}</div>
<p><span class="verdict">{verdict}</span> &nbsp; exit code {exit} &nbsp; · mode <b>{mode}</b> · topology <b>{topology}</b> ({nodes}) · seed {seed} · started {started}</p>"#,
        name = escape(&results.scenario),
        description = escape(&results.description),
        verdict = results.verdict.to_uppercase(),
        exit = results.exit_code,
        mode = escape(&results.mode),
        topology = escape(&results.topology),
        nodes = escape(&results.nodes.join(", ")),
        seed = results.seed,
        started = escape(&results.started_at),
    );
    if let Some(reason) = &results.skipped_reason {
        let _ = write!(html, "<p><b>SKIPPED:</b> {}</p>", escape(reason));
    }
    if let Some(error) = &results.error {
        let _ = write!(html, "<p><b>ERROR:</b> {}</p>", escape(error));
    }
    for failure in &results.premise_failures {
        let _ = write!(
            html,
            "<p><b class=unknown>Premise not met:</b> {}</p>",
            escape(failure)
        );
    }
    for failure in &results.client_failures {
        let _ = write!(
            html,
            "<p><b class=unknown>Client failed:</b> {}</p>",
            escape(failure)
        );
    }
    if let (Some(met), Some(detail)) = (results.expectation_met, &results.expectation_detail) {
        let _ = write!(
            html,
            "<p>Expectation {}: {}</p>",
            if met {
                "<span class=valid>met</span>"
            } else {
                "<span class=invalid>NOT met</span>"
            },
            escape(detail)
        );
    }
    let c = &results.counts;
    let _ = write!(
        html,
        "<p>{} operations invoked: <span class=valid>{} ok</span>, <span class=invalid>{} fail</span>, <span class=unknown>{} info</span> (timeouts: may or may not have happened); {} final reads. Latency of ok operations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.</p>",
        c.invoked,
        c.ok,
        c.fail,
        c.info,
        c.final_reads_ok,
        results.latency.p50_ms,
        results.latency.p99_ms,
        results.latency.max_ms
    );
    html.push_str("<h2>Timeline</h2><div class=legend><span><i class=sw style=\"background:hsl(267,65%,55%)\"></i>leader (colour = term)</span><span><i class=sw style=\"background:#3949ab\"></i>lease held</span><span>▼ election started</span><span>○ stepped down</span><span>| (re)started</span><span><i class=sw style=\"background:#f4433622;border:1px dashed #f44336\"></i>fault window</span><span><i class=sw style=\"background:#2e9e44\"></i>ok</span><span><i class=sw style=\"background:#d33\"></i>fail</span><span><i class=sw style=\"background:#e8a317\"></i>info</span></div>");
    html.push_str(&timeline_svg(results, history, events));

    html.push_str("<h2>Checks</h2><table><tr><th>check</th><th>verdict</th><th>evidence</th></tr>");
    for check in &results.checks {
        let class = match check.verdict {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::NotApplicable => "muted",
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td class={class}>{}</td><td class=details>{}</td></tr>",
            escape(&check.name),
            check.verdict.name().replace('_', " "),
            escape(&check.details.join("\n"))
        );
    }
    for skipped in &results.skipped_checks {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>skipped</td><td class=details>left out by the scenario</td></tr>",
            escape(skipped)
        );
    }
    html.push_str("</table>");

    html.push_str("<h2>Failover figures</h2><table><tr><th>#</th><th>fault</th><th>leader before</th><th>detection</th><th>new leader</th><th>first ack'd write</th><th>client unavailability</th><th>old leader stepped down</th><th>lease ended</th><th>leaders elected</th></tr>");
    for f in &results.failover {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.step + 1,
            escape(&f.description),
            escape(&f.leader_before.as_ref().map_or("none".into(), |l| format!(
                "{l} (t{})",
                f.term_before.unwrap_or(0)
            ))),
            show_ms(f.detection_ms),
            f.detected_by.as_ref().map_or(String::new(), |by| format!(
                "<br><span class=muted>{}</span>",
                escape(by)
            )),
            show_ms(f.new_leader_ms),
            f.new_leader.as_ref().map_or(String::new(), |l| format!(
                "<br><span class=muted>{} t{}</span>",
                escape(l),
                f.new_term.unwrap_or(0)
            )),
            show_ms(f.first_ack_write_ms),
            escape(&f.unavailability()),
            show_ms(f.old_leader_stepped_down_ms),
            show_ms(f.old_leader_lease_ended_ms),
            f.leaders_elected
        );
    }
    html.push_str("</table><p class=muted>Times are milliseconds after the fault started, on the host's CLOCK_MONOTONIC that every namespace and node shares; each fault's figures use only what happened before its end, the next fault or the end of the workload.</p>");
    html.push_str(&super::achieved::html::section(
        &results.faults,
        &results.nodes,
        results.frame.map_or(0, |frame| frame.workload_start_ns),
        results.probe_cost.as_ref(),
    ));

    html.push_str(
        "<h2>Operations</h2><table><tr><th>function</th><th>ok</th><th>fail</th><th>info</th></tr>",
    );
    for (f, kinds) in &c.by_fn {
        let get = |k: &str| kinds.get(k).copied().unwrap_or(0);
        let _ = write!(
            html,
            "<tr><td>{f}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            get("ok"),
            get("fail"),
            get("info")
        );
    }
    let _ = write!(
        html,
        "</table><h2>How to read this</h2><p class=muted>Each node has a lane: a coloured band means the node believed it was leader of that term; the blue bar under it is the lease it held (on the shared clock). Two bands of different colours overlapping in time are two leaders at once; two blue bars overlapping are two lease holders at once — split brain. Shaded red windows are faults. Each client row shows every completed operation. <b>fail</b> means the operation certainly did not happen (for example a 503 not_leader); <b>info</b> means the client gave up waiting, so it may or may not have happened. Files: history.jsonl (client history), nodes/*/events.jsonl (node events), results.json (everything here). Re-judge offline with <code>splitlab check &lt;run-dir&gt;</code>. Lab bring-up {:.0} ms, teardown {:.0} ms.</p></body></html>",
        results.lab_up_ms, results.lab_down_ms
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::StepDownReason;

    #[test]
    fn leader_bands_close_on_step_down_and_restart() {
        let events = vec![
            NodeEvent::new("n1", 10, 10, 1, EventKind::BecameLeader),
            NodeEvent::new(
                "n1",
                20,
                20,
                1,
                EventKind::SteppedDown {
                    reason: StepDownReason::QuorumLost,
                },
            ),
            NodeEvent::new("n2", 30, 30, 2, EventKind::BecameLeader),
            NodeEvent::new("n2", 35, 35, 2, EventKind::Started),
            NodeEvent::new("n3", 40, 40, 3, EventKind::BecameLeader),
        ];
        let bands = leader_bands(&events, 100);
        assert_eq!(bands["n1"], vec![(10, 20, 1)]);
        assert_eq!(bands["n2"], vec![(30, 35, 2)]);
        assert_eq!(bands["n3"], vec![(40, 100, 3)]);
    }

    #[test]
    fn lease_extensions_merge_and_loss_cuts() {
        let events = vec![
            NodeEvent::new(
                "n1",
                10,
                10,
                1,
                EventKind::LeaseExtended { until_mono_ns: 50 },
            ),
            NodeEvent::new(
                "n1",
                40,
                40,
                1,
                EventKind::LeaseExtended { until_mono_ns: 90 },
            ),
            NodeEvent::new("n1", 60, 60, 1, EventKind::LeaseLost),
            NodeEvent::new(
                "n1",
                200,
                200,
                2,
                EventKind::LeaseExtended { until_mono_ns: 250 },
            ),
        ];
        assert_eq!(lease_windows(&events)["n1"], vec![(10, 60), (200, 250)]);
    }
}
