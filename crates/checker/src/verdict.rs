//! Three-valued verdicts (jepsen `checker.clj`): `Invalid` beats `Unknown`
//! beats `Valid` when results are merged; `NotApplicable` (the check cannot
//! apply to this system or run) is listed by name and never counts.
use serde::{Deserialize, Serialize};

/// What a check concluded about its property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The property holds on this run, judged on evidence.
    Valid,
    /// Could not decide: budget exhausted, evidence missing, input malformed
    /// or the check crashed.
    Unknown,
    /// The property was violated; the details name the evidence.
    Invalid,
    /// The check cannot apply to the mode or run (e.g. lease exclusivity of
    /// a system that takes no leases); the details say why. Does not count
    /// toward a merged verdict.
    NotApplicable,
}

impl Verdict {
    fn priority(self) -> u8 {
        match self {
            Verdict::NotApplicable => 0,
            Verdict::Valid => 1,
            Verdict::Unknown => 2,
            Verdict::Invalid => 3,
        }
    }

    /// The worse of the two: `Invalid` > `Unknown` > `Valid` >
    /// `NotApplicable` (which therefore never changes a merged verdict).
    pub fn merge(self, other: Verdict) -> Verdict {
        if other.priority() > self.priority() {
            other
        } else {
            self
        }
    }

    /// The snake_case name used in results.json and reports.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unknown => "unknown",
            Verdict::Invalid => "invalid",
            Verdict::NotApplicable => "not_applicable",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of one check: a verdict plus human-readable evidence (nodes,
/// terms, times, keys, operations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's `NAME` (e.g. `election_safety`).
    pub name: String,
    /// Its conclusion.
    pub verdict: Verdict,
    /// Evidence and notes, one line each, at most [`MAX_EVIDENCE_LINES`]
    /// violations plus summaries.
    pub details: Vec<String>,
}

/// At most this many violation lines are kept per check; the rest are
/// summarised in one line so results.json stays readable.
pub const MAX_EVIDENCE_LINES: usize = 25;

impl CheckResult {
    /// A result from its parts (checks build theirs through an evidence
    /// collector that caps the lines).
    pub fn new(name: &str, verdict: Verdict, details: Vec<String>) -> Self {
        CheckResult {
            name: name.to_string(),
            verdict,
            details,
        }
    }

    /// The verdict is [`Verdict::Valid`].
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// The verdict is [`Verdict::Invalid`].
    pub fn is_invalid(&self) -> bool {
        self.verdict == Verdict::Invalid
    }

    /// The verdict is [`Verdict::Unknown`].
    pub fn is_unknown(&self) -> bool {
        self.verdict == Verdict::Unknown
    }

    /// The verdict is [`Verdict::NotApplicable`].
    pub fn is_not_applicable(&self) -> bool {
        self.verdict == Verdict::NotApplicable
    }

    /// A check that cannot apply to this system or run, with the reason.
    pub fn not_applicable(name: &str, reason: impl Into<String>) -> CheckResult {
        CheckResult::new(name, Verdict::NotApplicable, vec![reason.into()])
    }

    /// A check that had nothing to judge: `unknown`, with the reason.
    pub fn no_evidence(name: &str, reason: impl Into<String>) -> CheckResult {
        CheckResult::new(name, Verdict::Unknown, vec![reason.into()])
    }

    /// The `unknown` result of a history check whose history could not be
    /// paired into operations.
    pub(crate) fn malformed_history(name: &str, error: impl std::fmt::Display) -> CheckResult {
        CheckResult::new(
            name,
            Verdict::Unknown,
            vec![format!("malformed history: {error}")],
        )
    }
}

/// Collects violations and notes for one check and caps the evidence.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    violations: Vec<String>,
    violation_count: usize,
    unknowns: Vec<String>,
    unknown_count: usize,
    notes: Vec<String>,
}

impl Evidence {
    pub(crate) fn violation(&mut self, line: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_EVIDENCE_LINES {
            self.violations.push(line);
        }
    }

    pub(crate) fn unknown(&mut self, line: String) {
        self.unknown_count += 1;
        if self.unknowns.len() < MAX_EVIDENCE_LINES {
            self.unknowns.push(line);
        }
    }

    pub(crate) fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    pub(crate) fn finish(self, name: &str) -> CheckResult {
        let verdict = if self.violation_count > 0 {
            Verdict::Invalid
        } else if self.unknown_count > 0 {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        let mut details = Vec::new();
        let dropped_violations = self.violation_count - self.violations.len();
        details.extend(self.violations);
        if dropped_violations > 0 {
            details.push(format!("... and {dropped_violations} more violations"));
        }
        let dropped_unknowns = self.unknown_count - self.unknowns.len();
        details.extend(self.unknowns);
        if dropped_unknowns > 0 {
            details.push(format!("... and {dropped_unknowns} more undecided items"));
        }
        details.extend(self.notes);
        CheckResult::new(name, verdict, details)
    }
}

/// Formats a reference-clock time as seconds with microsecond precision.
pub fn fmt_ns(ns: u64) -> String {
    format!(
        "{}.{:06}s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1_000
    )
}

/// Formats a duration in the most readable unit.
pub fn fmt_duration(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.3}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.3}ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.3}us", ns as f64 / 1e3)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_prefers_invalid_then_unknown() {
        use Verdict::*;
        assert_eq!(Valid.merge(Valid), Valid);
        assert_eq!(Valid.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(Valid), Unknown);
        assert_eq!(Unknown.merge(Invalid), Invalid);
        assert_eq!(Invalid.merge(Unknown), Invalid);
        assert_eq!(NotApplicable.merge(Valid), Valid);
        assert_eq!(Valid.merge(NotApplicable), Valid);
        assert_eq!(NotApplicable.merge(NotApplicable), NotApplicable);
        assert_eq!(NotApplicable.name(), "not_applicable");
    }

    #[test]
    fn evidence_is_capped_but_counted() {
        let mut evidence = Evidence::default();
        for i in 0..(MAX_EVIDENCE_LINES + 5) {
            evidence.violation(format!("v{i}"));
        }
        let result = evidence.finish("x");
        assert_eq!(result.verdict, Verdict::Invalid);
        assert_eq!(result.details.len(), MAX_EVIDENCE_LINES + 1);
        assert!(result.details.last().unwrap().contains("5 more"));
    }

    #[test]
    fn times_format_readably() {
        assert_eq!(fmt_ns(1_234_567_890), "1.234567s");
        assert_eq!(fmt_duration(1_500_000), "1.500ms");
        assert_eq!(fmt_duration(2_000_000_000), "2.000s");
    }
}
