//! The terminal display while a run goes: one progress line on stderr,
//! redrawn in place when stderr is a terminal, plus one line per fault event.
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use super::duration::Dur;

/// The live progress line and event log of a run, on stderr.
pub struct Progress {
    duration: Dur,
    terminal: bool,
    /// Whether a progress line is on screen (so notes first clear it), and
    /// when the last non-terminal line was printed.
    state: Mutex<(bool, u64)>,
}

impl Progress {
    /// Progress for a workload of `duration`.
    pub fn new(duration: Dur) -> Progress {
        Progress {
            duration,
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((false, 0)),
        }
    }

    fn clear(&self, on_screen: &mut bool) {
        if *on_screen {
            eprint!("\r\x1b[2K");
            *on_screen = false;
        }
    }

    /// A phase message ("building lab ...").
    pub fn note(&self, text: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.clear(&mut state.0);
        eprintln!("  {text}");
    }

    /// A timeline event, kept on screen.
    pub fn event(&self, text: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.clear(&mut state.0);
        eprintln!("  ⚡ {text}");
    }

    /// The live line: elapsed/total, operation counts, leader, active faults.
    pub fn update(
        &self,
        elapsed_ns: u64,
        (ok, fail, info): (u64, u64, u64),
        leader: &str,
        active: &[String],
    ) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let faults = if active.is_empty() {
            "no fault".to_string()
        } else {
            active.join("; ")
        };
        let line = format!(
            "[{:>5.1}s / {:.0}s] ops ok {ok} fail {fail} info {info} | leader {leader} | {faults}",
            elapsed_ns as f64 / 1e9,
            self.duration.as_secs_f64()
        );
        if self.terminal {
            let width = 160;
            let shown: String = line.chars().take(width).collect();
            eprint!("\r\x1b[2K{shown}");
            let _ = std::io::stderr().flush();
            state.0 = true;
        } else if elapsed_ns >= state.1 + 5_000_000_000 {
            // Logs and CI: one line every 5 s instead of a redraw.
            eprintln!("  {line}");
            state.1 = elapsed_ns;
        }
    }

    /// Ends the live line with a final message.
    pub fn finish(&self, text: &str) {
        self.note(text);
    }
}
