//! I8 State-machine safety: if two nodes applied an entry at index `i`, it
//! is the same entry.
//!
//! Evidence compared per index:
//! - `applied { index, state_hash }` events and the `final_state`
//!   `(applied_index, state_hash)`: every node must report the same state
//!   hash at the same applied index;
//! - fencing tokens: `write_committed` events and acknowledged writes in
//!   the history name the entry `(term, index)`; one index committed under
//!   two terms means two different entries were committed there, and one
//!   token acknowledged to two different client operations means two
//!   writes claim the same entry.
//!
//! Invariant I8 (see crates/checker/README.md); compare etcd robustness
//! `kvhash`.
use std::collections::BTreeMap;

use crate::event::{EventKind, NodeEvent};
use crate::history::{History, Token};
use crate::operation::{Operation, pair_operations};
use crate::verdict::{CheckResult, Evidence, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "log_agreement";

struct Sighting<'a> {
    node: &'a str,
    at: u64,
    value: u64,
}

/// Keeps the first sighting of each distinct value at an index.
fn record<'a>(table: &mut BTreeMap<u64, Vec<Sighting<'a>>>, index: u64, sighting: Sighting<'a>) {
    let seen = table.entry(index).or_default();
    if !seen.iter().any(|s| s.value == sighting.value) {
        seen.push(sighting);
    }
}

/// Compares state hashes per applied index across nodes, and fencing
/// tokens across `write_committed` events and acknowledged writes.
pub fn check(events: &[NodeEvent], history: &History) -> CheckResult {
    let mut evidence = Evidence::default();

    // index -> first sighting of each distinct state hash
    let mut hashes: BTreeMap<u64, Vec<Sighting>> = BTreeMap::new();
    // index -> first sighting of each distinct committed term
    let mut committed: BTreeMap<u64, Vec<Sighting>> = BTreeMap::new();
    for event in events {
        let (index, hash) = match event.kind {
            EventKind::Applied { index, state_hash } => (index, state_hash),
            EventKind::FinalState {
                applied_index,
                state_hash,
                ..
            } => (applied_index, state_hash),
            EventKind::WriteCommitted { token } => {
                let sighting = Sighting {
                    node: &event.node,
                    at: event.mono_ns,
                    value: token.term,
                };
                record(&mut committed, token.index, sighting);
                continue;
            }
            _ => continue,
        };
        let sighting = Sighting {
            node: &event.node,
            at: event.mono_ns,
            value: hash,
        };
        record(&mut hashes, index, sighting);
    }
    // Divergence usually spans a run of consecutive indexes (a whole
    // divergent suffix); report each run once, with its first index.
    let diverged: Vec<(&u64, &Vec<Sighting>)> =
        hashes.iter().filter(|(_, seen)| seen.len() > 1).collect();
    let mut run_start = 0;
    while run_start < diverged.len() {
        let mut run_end = run_start + 1;
        while run_end < diverged.len() && *diverged[run_end].0 == *diverged[run_end - 1].0 + 1 {
            run_end += 1;
        }
        let (first, seen) = diverged[run_start];
        let last = *diverged[run_end - 1].0;
        let list: Vec<String> = seen
            .iter()
            .map(|s| {
                format!(
                    "{} has hash {:#018x} (at {})",
                    s.node,
                    s.value,
                    fmt_ns(s.at)
                )
            })
            .collect();
        let span = if last > *first {
            format!(
                "applied indexes {first}..={last} ({} indexes)",
                last - first + 1
            )
        } else {
            format!("applied index {first}")
        };
        evidence.violation(format!(
            "state diverged at {span}; at {first}: {}",
            list.join("; ")
        ));
        run_start = run_end;
    }
    for (index, seen) in &committed {
        if seen.len() > 1 {
            let list: Vec<String> = seen
                .iter()
                .map(|s| {
                    format!(
                        "{} committed term {} (at {})",
                        s.node,
                        s.value,
                        fmt_ns(s.at)
                    )
                })
                .collect();
            evidence.violation(format!(
                "two different entries committed at index {index}: {}",
                list.join("; ")
            ));
        }
    }

    match pair_operations(history) {
        Ok(operations) => check_acknowledged_tokens(&operations, &mut evidence),
        Err(error) => evidence.unknown(format!(
            "history tokens not checked, malformed history: {error}"
        )),
    }
    if hashes.is_empty() && committed.is_empty() {
        evidence.unknown(
            "no node reported an applied or committed entry: nothing to compare".to_string(),
        );
    }
    evidence.note(format!(
        "{} applied indexes and {} committed indexes compared",
        hashes.len(),
        committed.len()
    ));
    evidence.finish(NAME)
}

fn check_acknowledged_tokens(operations: &[Operation], evidence: &mut Evidence) {
    let mut by_index: BTreeMap<u64, Vec<(Token, &Operation)>> = BTreeMap::new();
    for op in operations.iter().filter(|op| op.is_ok_mutation()) {
        if let Some(token) = op.token {
            by_index.entry(token.index).or_default().push((token, op));
        }
    }
    for (index, acked) in &by_index {
        let (first_token, first_op) = acked[0];
        for (token, op) in &acked[1..] {
            if token.term != first_token.term {
                evidence.violation(format!(
                    "index {index} acknowledged under two terms: {first_op} and {op}"
                ));
            } else {
                evidence.violation(format!(
                    "token {}/{} acknowledged to two operations: {first_op} and {op}",
                    token.term, token.index
                ));
            }
        }
    }
}
