//! Side-by-side tables: splitnode next to etcd, their ratio, and the issue's
//! target for the figure (pure text rendering).

use std::fmt::Write;

use crate::system::System;

/// What a figure should achieve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// splitnode / etcd at most this.
    RatioAtMost(f64),
    /// splitnode / etcd at least this.
    RatioAtLeast(f64),
    /// splitnode's own figure at most this (same unit as the row).
    AtMost(f64),
}

impl Goal {
    /// The target for a sequential write p50 against etcd's at
    /// `size` nodes: 0.4x at 3 nodes, the size it singles out; 0.5x elsewhere.
    pub fn write_p50_vs_etcd(size: usize) -> Goal {
        Goal::RatioAtMost(if size == 3 { 0.4 } else { 0.5 })
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Goal::RatioAtMost(r) => format!("ratio <= {r}"),
            Goal::RatioAtLeast(r) => format!("ratio >= {r}"),
            Goal::AtMost(v) => format!("<= {v} {unit}"),
        }
    }

    /// `Some(true)` met, `Some(false)` missed, `None` not decidable (a
    /// figure is missing).
    pub fn met(self, splitnode: Option<f64>, etcd: Option<f64>) -> Option<bool> {
        match self {
            Goal::RatioAtMost(r) => ratio(splitnode?, etcd?).map(|x| x <= r),
            Goal::RatioAtLeast(r) => ratio(splitnode?, etcd?).map(|x| x >= r),
            Goal::AtMost(v) => Some(splitnode? <= v),
        }
    }
}

fn ratio(splitnode: f64, etcd: f64) -> Option<f64> {
    (etcd > 0.0).then(|| splitnode / etcd)
}

/// One figure of a comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured (e.g. "sequential write p50, 3 nodes").
    pub figure: String,
    /// Unit of both values.
    pub unit: &'static str,
    /// splitnode's figure.
    pub splitnode: Option<f64>,
    /// etcd's figure, when etcd ran.
    pub etcd: Option<f64>,
    /// The target, if it sets one for this figure.
    pub goal: Option<Goal>,
}

impl Row {
    /// A row without a target.
    pub fn new(
        figure: impl Into<String>,
        unit: &'static str,
        splitnode: Option<f64>,
        etcd: Option<f64>,
    ) -> Row {
        Row {
            figure: figure.into(),
            unit,
            splitnode,
            etcd,
            goal: None,
        }
    }

    /// The same row with a target.
    pub fn goal(mut self, goal: Goal) -> Row {
        self.goal = Some(goal);
        self
    }

    /// How much a p50 grows from 3 to 7 nodes, per system, against the
    /// issue's target (at most 1.2x). `p50` gives one system's figure at one
    /// size, in any unit.
    pub fn p50_growth_3_to_7(figure: &str, p50: impl Fn(System, usize) -> Option<f64>) -> Row {
        let growth = |system| {
            p50(system, 7)
                .zip(p50(system, 3))
                .map(|(seven, three)| seven / three)
        };
        Row::new(
            format!("{figure} growth 3 -> 7 nodes"),
            "x",
            growth(System::Splitnode),
            growth(System::Etcd),
        )
        .goal(Goal::AtMost(1.2))
    }
}

fn cell(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// Renders a fixed-width table with a title line.
pub fn render(title: &str, rows: &[Row]) -> String {
    render_noted(title, &[], rows)
}

/// [`render`] with `notes` as lines between the title and the table: what
/// the figures were measured against.
pub fn render_noted(title: &str, notes: &[String], rows: &[Row]) -> String {
    let header = [
        "figure".to_string(),
        "unit".into(),
        "splitnode".into(),
        "etcd".into(),
        "sn/etcd".into(),
        "target".into(),
        "verdict".into(),
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            let ratio = row.splitnode.zip(row.etcd).and_then(|(s, e)| ratio(s, e));
            let verdict = match row.goal.map(|g| g.met(row.splitnode, row.etcd)) {
                None => String::new(),
                Some(None) => "n/a".into(),
                Some(Some(true)) => "met".into(),
                Some(Some(false)) => "MISSED".into(),
            };
            [
                row.figure.clone(),
                row.unit.to_string(),
                cell(row.splitnode),
                cell(row.etcd),
                ratio
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                row.goal.map(|g| g.describe(row.unit)).unwrap_or_default(),
                verdict,
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n== {title} ==");
    for note in notes {
        let _ = writeln!(out, "{note}");
    }
    let mut line = |cells: &[String; 7]| {
        let mut text = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 || i == 1 || i >= 5 {
                let _ = write!(text, "{c:<w$}  ");
            } else {
                let _ = write!(text, "{c:>w$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&header);
    line(&widths.map(|w| "-".repeat(w)));
    for cells in &body {
        line(cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_decide_on_ratios_and_absolute_values() {
        assert_eq!(Goal::RatioAtMost(0.5).met(Some(1.0), Some(4.0)), Some(true));
        assert_eq!(
            Goal::RatioAtMost(0.5).met(Some(3.0), Some(4.0)),
            Some(false)
        );
        assert_eq!(
            Goal::RatioAtLeast(3.0).met(Some(9.0), Some(3.0)),
            Some(true)
        );
        assert_eq!(Goal::RatioAtLeast(3.0).met(Some(9.0), None), None);
        assert_eq!(Goal::AtMost(500.0).met(Some(501.0), None), Some(false));
        assert_eq!(Goal::RatioAtMost(1.0).met(Some(1.0), Some(0.0)), None);
        assert_eq!(Goal::write_p50_vs_etcd(3), Goal::RatioAtMost(0.4));
        assert_eq!(Goal::write_p50_vs_etcd(5), Goal::RatioAtMost(0.5));
    }

    #[test]
    fn table_shows_ratio_target_and_verdict() {
        let rows = [
            Row::new("seq p50, 3 nodes", "ms", Some(1.0), Some(4.0)).goal(Goal::RatioAtMost(0.5)),
            Row::new("seq p50, 7 nodes", "ms", Some(2.0), None),
        ];
        let text = render_noted("quorum_write", &["floor: 1 ms".into()], &rows);
        assert!(
            text.contains("== quorum_write ==\nfloor: 1 ms\nfigure"),
            "{text}"
        );
        let first = text.lines().find(|l| l.starts_with("seq p50, 3")).unwrap();
        assert!(
            first.contains("0.25x") && first.contains("ratio <= 0.5") && first.ends_with("met"),
            "{first}"
        );
        let second = text.lines().find(|l| l.starts_with("seq p50, 7")).unwrap();
        assert!(
            second.contains("2.000") && second.contains(" - "),
            "{second}"
        );
    }
}
