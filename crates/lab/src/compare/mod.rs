//! `splitlab compare <scenario> --systems splitnode,etcd`: the same
//! scenario run on each system in turn, and one side-by-side table of what
//! each run concluded (verdict per check, failover decomposition, client
//! unavailability, old-leader overlap, latency).
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::exit::ExitStatus;
use crate::run::results::Results;
use crate::run::{RunOptions, run_scenario_outcome};

/// Options of `splitlab compare`.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The scenario and the common run options (`system` is set per run).
    pub run: RunOptions,
    /// The systems, in column order.
    pub systems: Vec<String>,
    /// Where the table goes (default: `<runs>/compare-<scenario>.md`).
    pub out: Option<PathBuf>,
}

/// Runs the scenario on every system, prints the table and writes it.
/// Exit status: ok when every run reached a verdict, else failed.
///
/// # Errors
/// A scenario or system that does not load, or an unwritable table.
pub fn compare(options: &CompareOptions) -> anyhow::Result<ExitStatus> {
    let mut columns = Vec::new();
    let mut status = ExitStatus::Success;
    for system in &options.systems {
        let run = RunOptions {
            system: Some(system.clone()),
            ..options.run.clone()
        };
        let (run_status, run_dir) = run_scenario_outcome(&run)?;
        if matches!(run_status, ExitStatus::Failed) {
            status = ExitStatus::Failed;
        }
        let text = std::fs::read_to_string(run_dir.join("results.json"))?;
        let results: Results = serde_json::from_str(&text)?;
        columns.push((run_dir.display().to_string(), results));
    }
    let table = table(&columns);
    print!("{table}");
    let name = columns
        .first()
        .map_or_else(|| "scenario".to_string(), |(_, r)| r.scenario.clone());
    let out = options.out.clone().unwrap_or_else(|| {
        let runs = options
            .run
            .runs_dir
            .clone()
            .unwrap_or_else(|| "runs".into());
        runs.join(format!("compare-{name}.md"))
    });
    std::fs::write(&out, &table)?;
    eprintln!("splitlab compare: table written to {}", out.display());
    Ok(status)
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

/// What `no_lost_writes` found: "none" when valid, its "N of M
/// acknowledged appends missing" summary, else how many register writes it
/// names lost; its verdict when it has no such line, "–" when not run.
fn lost_writes(results: &Results) -> String {
    let Some(check) =
        (results.checks.iter()).find(|c| c.name == checker::checks::no_lost_writes::NAME)
    else {
        return "–".into();
    };
    if check.verdict == checker::Verdict::Valid {
        return "none".into();
    }
    let appends = (check.details.iter())
        .find_map(|line| line.strip_suffix(" missing after heal"))
        .map(str::to_string);
    let registers = (check.details.iter())
        .filter(|line| line.contains(" is lost: "))
        .count();
    match (appends, registers) {
        (Some(appends), 0) => appends,
        (Some(appends), n) => format!("{appends}; {n} register writes"),
        (None, n) if n > 0 => format!("{n} register writes"),
        _ => check.verdict.name().to_string(),
    }
}

/// The side-by-side table (Markdown), one column per run.
pub fn table(columns: &[(String, Results)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&Results) -> String| {
        rows.push((
            label.to_string(),
            columns.iter().map(|(_, r)| cell(r)).collect(),
        ));
    };
    row("verdict", &|r| r.verdict.clone());
    let mut checks: Vec<String> = Vec::new();
    for (_, results) in columns {
        for check in &results.checks {
            if !checks.contains(&check.name) {
                checks.push(check.name.clone());
            }
        }
    }
    for name in &checks {
        row(name, &|r| {
            r.checks
                .iter()
                .find(|c| &c.name == name)
                .map_or_else(|| "skipped".into(), |c| c.verdict.name().to_string())
        });
    }
    let faults = columns
        .iter()
        .map(|(_, r)| r.failover.len())
        .max()
        .unwrap_or(0);
    for index in 0..faults {
        let fault = move |r: &Results| r.failover.get(index).cloned();
        let label = columns
            .iter()
            .find_map(|(_, r)| r.failover.get(index).map(|f| f.description.clone()))
            .unwrap_or_default();
        row(
            &format!(
                "fault {}: {label}: detect / new leader / first write (ms)",
                index + 1
            ),
            &|r| {
                fault(r).map_or_else(
                    || "–".into(),
                    |f| {
                        format!(
                            "{} / {} / {}",
                            ms(f.detection_ms),
                            ms(f.new_leader_ms),
                            ms(f.first_ack_write_ms)
                        )
                    },
                )
            },
        );
        row(
            &format!("fault {}: longest write gap (ms)", index + 1),
            &|r| {
                fault(r).map_or_else(
                    || "–".into(),
                    |f| {
                        let open = if f.unavailable_open { "≥ " } else { "" };
                        format!("{open}{}", ms(f.unavailable_ms))
                    },
                )
            },
        );
        row(
            &format!("fault {}: old leader stepped down (ms)", index + 1),
            &|r| fault(r).map_or_else(|| "–".into(), |f| ms(f.old_leader_stepped_down_ms)),
        );
    }
    row(
        "old leader still claimed after successor elected (ms, each)",
        &|r| {
            if r.leader_overlaps.is_empty() {
                return "none".into();
            }
            let each: Vec<String> = (r.leader_overlaps.iter())
                .map(|o| match o.overlap_ms() {
                    Some(v) => format!("{v:.0} ({}→{})", o.old, o.new),
                    None => format!("not seen to stop ({}→{})", o.old, o.new),
                })
                .collect();
            each.join(", ")
        },
    );
    row("acknowledged writes lost (no_lost_writes)", &lost_writes);
    row("ops ok / fail / info", &|r| {
        format!("{} / {} / {}", r.counts.ok, r.counts.fail, r.counts.info)
    });
    row("latency p50 / p99 (ms)", &|r| {
        format!("{:.1} / {:.1}", r.latency.p50_ms, r.latency.p99_ms)
    });
    let mut out = String::new();
    let title = columns.first().map_or("", |(_, r)| r.scenario.as_str());
    let _ = writeln!(out, "## {title}\n");
    let _ = write!(out, "| |");
    for (_, results) in columns {
        let _ = write!(out, " {} |", results.system);
    }
    let _ = write!(out, "\n|---|");
    for _ in columns {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    for (label, cells) in rows {
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
    for (dir, results) in columns {
        let _ = writeln!(out, "- {}: {dir}", results.system);
    }
    out
}

#[cfg(test)]
mod tests;
