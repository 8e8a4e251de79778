//! The run trace: one text line per delivery, step, fault and client event.
//!
//! Two runs with the same seed must produce byte-identical traces; CI diffs
//! them to catch hidden entropy (openraft found six sources that way). When
//! tracing is off, nothing is formatted at all.
use std::fmt::{self, Write};

use wire::Message;

/// The run's text trace: one line per step, send and fault, stamped with true time.
#[derive(Debug, Default)]
pub struct Trace {
    enabled: bool,
    text: String,
    lines: u64,
}

impl Trace {
    /// A trace that records only when `enabled`.
    pub fn new(enabled: bool) -> Trace {
        Trace {
            enabled,
            text: String::new(),
            lines: 0,
        }
    }

    /// Whether lines are being recorded (skip formatting when not).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Appends `"<true time> <text>"`; free when tracing is off.
    pub fn line(&mut self, now: u64, args: fmt::Arguments<'_>) {
        if !self.enabled {
            return;
        }
        self.lines += 1;
        let _ = writeln!(
            self.text,
            "{:>6}.{:09} {args}",
            now / 1_000_000_000,
            now % 1_000_000_000
        );
    }

    /// How many lines were recorded.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The recorded text.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// A compact, stable rendering of a peer message for traces.
pub fn describe(message: &Message) -> String {
    match message {
        Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            let range = match (entries.first(), entries.last()) {
                (Some(first), Some(last)) => {
                    format!(" [{}..={}]@{}", first.index, last.index, last.term)
                }
                _ => String::new(),
            };
            format!("Append prev={prev_log_index}@{prev_log_term} commit={leader_commit}{range}")
        }
        Message::InstallSnapshot { chunk } => format!(
            "InstallSnapshot {}@{} bytes {}..{} of {}{}",
            chunk.last_index,
            chunk.last_term,
            chunk.offset,
            chunk.end(),
            chunk.total_len,
            if chunk.done { " done" } else { "" }
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_trace_stays_empty() {
        let mut trace = Trace::new(false);
        trace.line(5, format_args!("x"));
        assert_eq!(trace.lines(), 0);
        assert!(trace.into_text().is_empty());
    }

    #[test]
    fn lines_carry_the_true_time() {
        let mut trace = Trace::new(true);
        trace.line(1_500_000_000, format_args!("n1 tick"));
        assert_eq!(trace.into_text(), "     1.500000000 n1 tick\n");
    }

    #[test]
    fn append_is_summarised() {
        let message = Message::Append {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![],
            leader_commit: 3,
        };
        assert_eq!(describe(&message), "Append prev=4@2 commit=3");
    }
}
