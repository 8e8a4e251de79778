//! `splitlab run <files or directories>...`: many scenarios in sequence,
//! each judged against its own `expect`, then one summary table, an
//! aggregate exit status and, on request, a JUnit file and a JSON summary.
//! A run is judged only from the `results.json` it wrote.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::exit::ExitStatus;
use crate::run::results::Results;
use crate::run::scenario::ExpectedVerdict;
use crate::run::{RunOptions, run_scenario_outcome};

/// Options of a batch `splitlab run`.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Scenario files and directories (a directory stands for its `*.toml`
    /// files, sorted, not descending into subdirectories).
    pub paths: Vec<PathBuf>,
    /// What every scenario run shares (its `scenario` is ignored).
    pub run: RunOptions,
    /// Write a JUnit XML report here.
    pub junit: Option<PathBuf>,
    /// Write a JSON summary here.
    pub json: Option<PathBuf>,
    /// A skipped scenario (a fault this machine cannot apply) fails the batch.
    pub strict: bool,
}

/// How one scenario of a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its expectation held (or, without `expect`, it was judged valid).
    Passed,
    /// It was judged, and not as expected.
    Failed,
    /// A fault it needs cannot be applied on this machine.
    Skipped,
    /// It produced no results (bad file, lab failure before the run).
    Error,
}

/// One row of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    /// The scenario's name.
    pub scenario: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// What the scenario expects (`valid`, `invalid (no_lost_writes)`, or
    /// `-` when it states nothing).
    pub expected: String,
    /// The verdict (`valid`, `invalid`, `unknown`, `skipped`, or `-` when
    /// there were no results).
    pub verdict: String,
    /// Whether the expectation held (absent when nothing was judged).
    pub met: Option<bool>,
    /// The row's outcome.
    pub outcome: Outcome,
    /// Wall-clock seconds the run took.
    pub duration_s: f64,
    /// The run directory, when one was made.
    pub run_dir: Option<PathBuf>,
    /// Checks judged invalid, each with its first evidence line.
    pub broken_checks: Vec<String>,
    /// Why it failed, was skipped or broke (empty when it passed).
    pub detail: String,
}

impl ScenarioSummary {
    /// The report of the run, when there is one.
    pub fn report(&self) -> Option<PathBuf> {
        self.run_dir.as_ref().map(|dir| dir.join("report.html"))
    }
}

/// The whole batch (the `--json` file).
#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    /// One row per scenario, in the order they ran.
    pub scenarios: Vec<ScenarioSummary>,
    /// Rows that passed.
    pub passed: usize,
    /// Rows that failed or broke.
    pub failed: usize,
    /// Rows skipped for a missing kernel feature.
    pub skipped: usize,
    /// Whether skipped rows fail the batch.
    pub strict: bool,
    /// The exit code of the batch.
    pub exit_code: i32,
}

/// The scenario files a list of files and directories stands for.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .flatten()
                .map(|entry| entry.path())
                .filter(|file| file.is_file() && file.extension().is_some_and(|e| e == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                anyhow::bail!("{}: no *.toml scenario files", path.display());
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such scenario file or directory", path.display());
        }
    }
    Ok(files)
}

/// Runs every scenario, prints the table, writes the requested files;
/// returns 0 when every expectation held, 1 otherwise (and, under
/// `strict`, when any scenario was skipped).
pub fn run_batch(options: &BatchOptions) -> anyhow::Result<ExitStatus> {
    let files = expand(&options.paths)?;
    let mut rows = Vec::new();
    for (index, file) in files.iter().enumerate() {
        println!("==> [{}/{}] {}", index + 1, files.len(), file.display());
        let run = RunOptions {
            scenario: file.clone(),
            ..options.run.clone()
        };
        let started = Instant::now();
        let outcome = run_scenario_outcome(&run);
        rows.push(summarize(file, outcome, started.elapsed().as_secs_f64()));
    }
    let summary = aggregate(rows, options.strict);
    print!("{}", table(&summary));
    if let Some(path) = &options.junit {
        write_file(path, &crate::junit::render(&summary)?)?;
        println!("junit: {}", path.display());
    }
    if let Some(path) = &options.json {
        write_file(path, &(serde_json::to_string_pretty(&summary)? + "\n"))?;
        println!("json: {}", path.display());
    }
    Ok(if summary.exit_code == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn expected_of(results: &Results) -> String {
    let Some(expect) = &results.expect else {
        return "-".into();
    };
    let verdict = match expect.verdict {
        ExpectedVerdict::Valid => "valid",
        ExpectedVerdict::Invalid => "invalid",
    };
    if expect.broken.is_empty() {
        verdict.into()
    } else {
        format!("{verdict} ({})", expect.broken.join(", "))
    }
}

/// One row from what a run returned and the `results.json` it wrote.
pub fn summarize(
    file: &Path,
    outcome: anyhow::Result<(ExitStatus, PathBuf)>,
    duration_s: f64,
) -> ScenarioSummary {
    let stem = file
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut row = ScenarioSummary {
        scenario: stem,
        file: file.to_path_buf(),
        expected: "-".into(),
        verdict: "-".into(),
        met: None,
        outcome: Outcome::Error,
        duration_s,
        run_dir: None,
        broken_checks: Vec::new(),
        detail: String::new(),
    };
    let (status, run_dir) = match outcome {
        Ok(done) => done,
        Err(error) => {
            row.detail = format!("{error:#}");
            return row;
        }
    };
    let results_path = run_dir.join("results.json");
    row.run_dir = Some(run_dir);
    let results: Results = match std::fs::read_to_string(&results_path)
        .map_err(anyhow::Error::from)
        .and_then(|text| Ok(serde_json::from_str(&text)?))
    {
        Ok(results) => results,
        Err(error) => {
            row.detail = format!("no results ({}: {error})", results_path.display());
            return row;
        }
    };
    row.scenario = results.scenario.clone();
    row.expected = expected_of(&results);
    row.verdict = results.verdict.clone();
    row.met = results.expectation_met;
    row.broken_checks = results
        .checks
        .iter()
        .filter(|check| check.verdict == checker::Verdict::Invalid)
        .map(|check| match check.details.first() {
            Some(first) => format!("{}: {first}", check.name),
            None => check.name.clone(),
        })
        .collect();
    (row.outcome, row.detail) = if results.verdict == "skipped" {
        let reason = results.skipped_reason.clone().unwrap_or_default();
        (Outcome::Skipped, reason)
    } else if let Some(error) = &results.error {
        (Outcome::Error, error.clone())
    } else if results.expect.is_some() {
        match results.expectation_met {
            Some(true) => (Outcome::Passed, String::new()),
            _ => (
                Outcome::Failed,
                results
                    .expectation_detail
                    .clone()
                    .unwrap_or_else(|| format!("verdict {}", results.verdict)),
            ),
        }
    } else if status == ExitStatus::Success {
        (Outcome::Passed, String::new())
    } else {
        (
            Outcome::Failed,
            format!("verdict {} (no expectation stated)", results.verdict),
        )
    };
    row
}

/// Counts the rows and decides the exit code.
pub fn aggregate(scenarios: Vec<ScenarioSummary>, strict: bool) -> BatchSummary {
    let count = |wanted: &[Outcome]| {
        scenarios
            .iter()
            .filter(|row| wanted.contains(&row.outcome))
            .count()
    };
    let passed = count(&[Outcome::Passed]);
    let failed = count(&[Outcome::Failed, Outcome::Error]);
    let skipped = count(&[Outcome::Skipped]);
    let exit_code = if failed > 0 || (strict && skipped > 0) {
        ExitStatus::Invalid.code()
    } else {
        ExitStatus::Success.code()
    };
    BatchSummary {
        scenarios,
        passed,
        failed,
        skipped,
        strict,
        exit_code,
    }
}

/// The summary table, then one line per failed or skipped row, then the
/// totals.
pub fn table(summary: &BatchSummary) -> String {
    // A column as wide as its header and its widest cell.
    let column_width = |header: &str, cell: fn(&ScenarioSummary) -> &str| {
        summary
            .scenarios
            .iter()
            .map(|row| cell(row).len())
            .fold(header.len(), usize::max)
    };
    let width = column_width("scenario", |row| &row.scenario);
    let expected_width = column_width("expected", |row| &row.expected);
    let mut out = format!(
        "\n{:<width$}  {:<expected_width$}  {:<8}  {:<4}  {:>8}\n",
        "scenario", "expected", "verdict", "met", "duration"
    );
    for row in &summary.scenarios {
        let met = match (row.outcome, row.met) {
            (Outcome::Skipped, _) => "skip",
            (Outcome::Error, _) => "ERR",
            (_, Some(true)) | (Outcome::Passed, None) => "yes",
            _ => "NO",
        };
        out += &format!(
            "{:<width$}  {:<expected_width$}  {:<8}  {:<4}  {:>7.1}s\n",
            row.scenario, row.expected, row.verdict, met, row.duration_s
        );
    }
    for row in &summary.scenarios {
        let label = match row.outcome {
            Outcome::Passed => continue,
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "SKIPPED",
            Outcome::Error => "ERROR",
        };
        out += &format!("{label} {}: {}\n", row.scenario, row.detail);
        for check in &row.broken_checks {
            out += &format!("    broken {check}\n");
        }
        if let Some(report) = row.report() {
            out += &format!("    report {}\n", report.display());
        }
    }
    out += &format!(
        "scenarios: {} as expected, {} failed, {} skipped{}\n",
        summary.passed,
        summary.failed,
        summary.skipped,
        if summary.strict && summary.skipped > 0 {
            " (--strict: skipped counts as failed)"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A row as `summarize` would make it.
    pub(crate) fn row(name: &str, outcome: Outcome, met: Option<bool>) -> ScenarioSummary {
        ScenarioSummary {
            scenario: name.into(),
            file: PathBuf::from(format!("lab/scenarios/{name}.toml")),
            expected: "valid".into(),
            verdict: if outcome == Outcome::Skipped {
                "skipped".into()
            } else {
                "valid".into()
            },
            met,
            outcome,
            duration_s: 1.5,
            run_dir: Some(PathBuf::from(format!("runs/x-{name}"))),
            broken_checks: Vec::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn exit_code_fails_on_a_failure_and_on_a_skip_only_when_strict() {
        let rows = || {
            vec![
                row("a", Outcome::Passed, Some(true)),
                row("b", Outcome::Skipped, None),
            ]
        };
        assert_eq!(aggregate(rows(), false).exit_code, 0);
        assert_eq!(aggregate(rows(), true).exit_code, 1);
        let mut failing = rows();
        failing.push(row("c", Outcome::Error, None));
        let summary = aggregate(failing, false);
        assert_eq!((summary.passed, summary.failed, summary.skipped), (1, 1, 1));
        assert_eq!(summary.exit_code, 1);
    }

    #[test]
    fn table_lists_every_scenario_and_explains_the_failures() {
        let mut failed = row("museum-piece", Outcome::Failed, Some(false));
        failed.detail = "expected invalid, got valid".into();
        failed.broken_checks = vec!["no_lost_writes: key k lost".into()];
        let text = table(&aggregate(
            vec![row("ok-one", Outcome::Passed, Some(true)), failed],
            false,
        ));
        assert!(text.contains("scenario"), "{text}");
        assert!(text.contains("ok-one"), "{text}");
        assert!(
            text.contains("FAILED museum-piece: expected invalid, got valid"),
            "{text}"
        );
        assert!(
            text.contains("report runs/x-museum-piece/report.html"),
            "{text}"
        );
        assert!(
            text.contains("1 as expected, 1 failed, 0 skipped"),
            "{text}"
        );
    }

    #[test]
    fn a_run_without_results_is_an_error_row() {
        let row = summarize(
            Path::new("x.toml"),
            Err(anyhow::anyhow!("x.toml:1:1: bad")),
            0.1,
        );
        assert_eq!(row.outcome, Outcome::Error);
        assert!(row.detail.contains("bad"));
    }

    #[test]
    fn directories_expand_to_their_sorted_toml_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/museum");
        let files = expand(&[dir]).unwrap();
        assert!(files.len() >= 4);
        assert!(files.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(expand(&[PathBuf::from("/nonexistent/dir")]).is_err());
    }
}
