//! A hand-written SVG plot of the sweep (pure): write latency and failover
//! time against cluster size, one colour per system, solid p50/median and
//! dashed p99.

use super::cluster::System;
use std::fmt::Write;

/// One plotted series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Which system (colour).
    pub system: System,
    /// Dashed (p99) or solid (p50 / median).
    pub dashed: bool,
    /// (cluster size, milliseconds).
    pub points: Vec<(usize, f64)>,
}

/// A panel: a title and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Panel title (with unit).
    pub title: String,
    /// Lines.
    pub series: Vec<Series>,
}

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 320.0;
const MARGIN_L: f64 = 60.0;
const MARGIN_B: f64 = 40.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_R: f64 = 20.0;

fn colour(system: System) -> &'static str {
    match system {
        System::Splitnode => "#1f77b4",
        System::Etcd => "#d62728",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `max`.
pub fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|&v| v >= max)
        .unwrap_or(10.0 * magnitude)
}

fn panel(out: &mut String, x0: f64, panel: &Panel, sizes: &[usize]) {
    let plot_w = PANEL_W - MARGIN_L - MARGIN_R;
    let plot_h = PANEL_H - MARGIN_T - MARGIN_B;
    let (left, top) = (x0 + MARGIN_L, MARGIN_T);
    let y_max = nice_ceiling(
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x_of = |size: usize| {
        let i = sizes.iter().position(|&s| s == size).unwrap_or(0) as f64;
        let slots = (sizes.len().max(2) - 1) as f64;
        left + plot_w * i / slots
    };
    let y_of = |ms: f64| top + plot_h * (1.0 - ms / y_max);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="22" font-size="14" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#444"/>"##
    );
    for tick in 0..=4 {
        let value = y_max * f64::from(tick) / 4.0;
        let y = y_of(value);
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{value}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0
        );
    }
    for &size in sizes {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{size}</text>"#,
            x_of(size),
            top + plot_h + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">cluster size (nodes)</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 34.0
    );
    for (i, series) in panel.series.iter().enumerate() {
        let stroke = colour(series.system);
        let dash = if series.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let points: Vec<String> = series
            .points
            .iter()
            .map(|&(size, ms)| format!("{:.1},{:.1}", x_of(size), y_of(ms)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{stroke}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
        for &(size, ms) in &series.points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{stroke}"><title>{} {size} nodes: {ms:.2} ms</title></circle>"#,
                x_of(size),
                y_of(ms),
                escape(&series.label)
            );
        }
        let ly = top + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{stroke}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            left + 8.0,
            left + 32.0,
            left + 38.0,
            ly + 4.0,
            escape(&series.label)
        );
    }
}

/// Renders panels side by side over the same x axis (`sizes`).
pub fn plot(title: &str, panels: &[Panel], sizes: &[usize]) -> String {
    let width = PANEL_W * panels.len().max(1) as f64;
    let height = PANEL_H + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#555">{}</text>"##,
        width / 2.0,
        height - 6.0,
        escape(title)
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, PANEL_W * i as f64, p, sizes);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(0.9), 1.0);
    }

    #[test]
    fn plot_has_a_line_per_series_and_escapes_labels() {
        let panels = [Panel {
            title: "write latency <ms>".into(),
            series: vec![
                Series {
                    label: "splitnode p50".into(),
                    system: System::Splitnode,
                    dashed: false,
                    points: vec![(1, 0.5), (3, 1.0), (5, 1.2)],
                },
                Series {
                    label: "etcd p99".into(),
                    system: System::Etcd,
                    dashed: true,
                    points: vec![(3, 4.0), (5, 4.5)],
                },
            ],
        }];
        let svg = plot("sweep", &panels, &[1, 3, 5]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("write latency &lt;ms&gt;"));
        assert!(svg.contains("stroke-dasharray"));
    }
}
