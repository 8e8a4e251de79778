//! The one SVG writer: the document frame, text escaping, and the line plot
//! of the bench sweep. The run report's timeline draws on the same [`Svg`].
//!
//! Pages embed these SVGs inline in HTML and put labels into attributes, so
//! [`escape`] covers quotes as well as `&`, `<` and `>`.

use std::fmt::{self, Write};

/// Escapes text for SVG/HTML content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document being written: `write!` elements into it, then
/// [`Svg::finish`] closes it.
#[derive(Debug, Clone)]
pub struct Svg {
    out: String,
}

impl Svg {
    /// Opens a `width` × `height` document (user units = pixels) whose root
    /// element also carries `attributes` (e.g. `font-family="sans-serif"`).
    pub fn new(width: f64, height: f64, attributes: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {attributes}>"#
        );
        out.push('\n');
        Svg { out }
    }

    /// A `<text>` element at (`x`, `y`) with extra `attributes`; `content`
    /// is escaped here.
    pub fn text(&mut self, x: f64, y: f64, attributes: &str, content: &str) {
        let _ = writeln!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" {attributes}>{}</text>"#,
            escape(content)
        );
    }

    /// Closes the document and returns its text.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

impl Write for Svg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.push_str(s);
        Ok(())
    }
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

/// One plotted series of a [`Panel`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Stroke colour (any SVG colour).
    pub colour: String,
    /// Dashed (e.g. p99) or solid (p50 / median).
    pub dashed: bool,
    /// (x category, value): x is one of the plot's categories.
    pub points: Vec<(usize, f64)>,
}

/// A panel of a [`plot`]: a title and its series.
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

fn panel(svg: &mut Svg, x0: f64, panel: &Panel, xs: &[usize], x_label: &str) {
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
    let x_of = |x: usize| {
        let i = xs.iter().position(|&s| s == x).unwrap_or(0) as f64;
        let slots = (xs.len().max(2) - 1) as f64;
        left + plot_w * i / slots
    };
    let y_of = |value: f64| top + plot_h * (1.0 - value / y_max);
    svg.text(
        left + plot_w / 2.0,
        22.0,
        r#"font-size="14" text-anchor="middle""#,
        &panel.title,
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#444"/>"##
    );
    for tick in 0..=4 {
        let value = y_max * f64::from(tick) / 4.0;
        let y = y_of(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            left + plot_w,
        );
        let label = value.to_string();
        svg.text(
            left - 6.0,
            y + 4.0,
            r#"font-size="11" text-anchor="end""#,
            &label,
        );
    }
    for &x in xs {
        let label = x.to_string();
        let attributes = r#"font-size="11" text-anchor="middle""#;
        svg.text(x_of(x), top + plot_h + 16.0, attributes, &label);
    }
    svg.text(
        left + plot_w / 2.0,
        top + plot_h + 34.0,
        r#"font-size="12" text-anchor="middle""#,
        x_label,
    );
    for (i, series) in panel.series.iter().enumerate() {
        let stroke = escape(&series.colour);
        let dash = if series.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let points: Vec<String> = series
            .points
            .iter()
            .map(|&(x, value)| format!("{:.1},{:.1}", x_of(x), y_of(value)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{stroke}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
        for &(x, value) in &series.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{stroke}"><title>{} {x} {}: {value:.2}</title></circle>"#,
                x_of(x),
                y_of(value),
                escape(&series.label),
                escape(x_label),
            );
        }
        let ly = top + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{stroke}" stroke-width="2"{dash}/>"#,
            left + 8.0,
            left + 32.0,
        );
        svg.text(left + 38.0, ly + 4.0, r#"font-size="11""#, &series.label);
    }
}

/// Renders panels side by side over the same categorical x axis (`xs`,
/// named `x_label`), with `title` as a footer.
pub fn plot(title: &str, panels: &[Panel], xs: &[usize], x_label: &str) -> String {
    let width = PANEL_W * panels.len().max(1) as f64;
    let height = PANEL_H + 30.0;
    let mut svg = Svg::new(width, height, r#"font-family="sans-serif""#);
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let footer = r##"font-size="12" text-anchor="middle" fill="#555""##;
    svg.text(width / 2.0, height - 6.0, footer, title);
    for (i, p) in panels.iter().enumerate() {
        panel(&mut svg, PANEL_W * i as f64, p, xs, x_label);
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a & \"b\" 'c'>"),
            "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;"
        );
    }

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(0.9), 1.0);
    }

    #[test]
    fn documents_open_and_close() {
        let mut svg = Svg::new(100.0, 20.5, r#"font-size="11""#);
        svg.text(1.0, 2.0, "", "a<b");
        let text = svg.finish();
        assert!(
            text.starts_with(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20.5""#
            )
        );
        assert!(text.contains("a&lt;b"));
        assert!(text.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn plot_has_a_line_per_series_and_escapes_labels() {
        let panels = [Panel {
            title: "write latency <ms>".into(),
            series: vec![
                Series {
                    label: "splitnode p50".into(),
                    colour: "#1f77b4".into(),
                    dashed: false,
                    points: vec![(1, 0.5), (3, 1.0), (5, 1.2)],
                },
                Series {
                    label: "etcd \"p99\"".into(),
                    colour: "#d62728".into(),
                    dashed: true,
                    points: vec![(3, 4.0), (5, 4.5)],
                },
            ],
        }];
        let svg = plot("sweep", &panels, &[1, 3, 5], "nodes");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("write latency &lt;ms&gt;"));
        assert!(svg.contains("etcd &quot;p99&quot;"));
        assert!(svg.contains("stroke-dasharray"));
    }
}
