//! I10 Convergence after heal: all live nodes report the same
//! `(term, commit_index, state_hash)` in their `final_state`.
//!
//! The driver logs `final_state` once per live node after the last fault
//! healed and the cluster quiesced. With `expected_live_nodes`, a live node
//! without a final state makes the verdict unknown (no evidence either way).
//!
//! Invariant I10 (see crates/checker/README.md).
use std::collections::BTreeMap;

use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "convergence";

/// `(term, commit_index, state_hash)`: what converged nodes agree on.
type Agreement = (u64, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FinalState {
    term: u64,
    commit_index: u64,
    applied_index: u64,
    state_hash: u64,
}

/// Compares the nodes' latest `final_state`; `expected_live_nodes` names
/// the nodes that must have one.
pub fn check(events: &[NodeEvent], expected_live_nodes: Option<&[String]>) -> CheckResult {
    let mut evidence = Evidence::default();
    // node -> its latest final state
    let mut finals: BTreeMap<&str, (u64, FinalState)> = BTreeMap::new();
    for event in events {
        if let EventKind::FinalState {
            commit_index,
            applied_index,
            state_hash,
        } = event.kind
        {
            let state = FinalState {
                term: event.term,
                commit_index,
                applied_index,
                state_hash,
            };
            let slot = finals.entry(&event.node).or_insert((event.mono_ns, state));
            if event.mono_ns >= slot.0 {
                *slot = (event.mono_ns, state);
            }
        }
    }
    if let Some(expected) = expected_live_nodes {
        for node in expected {
            if !finals.contains_key(node.as_str()) {
                evidence.unknown(format!("live node {node} reported no final_state"));
            }
        }
    }
    if finals.is_empty() {
        evidence.unknown("no node reported a final_state".to_string());
        return evidence.finish(NAME);
    }
    let mut groups: BTreeMap<Agreement, Vec<(&str, u64)>> = BTreeMap::new();
    for (node, (_, state)) in &finals {
        groups
            .entry((state.term, state.commit_index, state.state_hash))
            .or_default()
            .push((node, state.applied_index));
    }
    let describe = |(term, commit, hash): &Agreement, nodes: &[(&str, u64)]| {
        let names: Vec<String> = nodes
            .iter()
            .map(|(node, applied)| format!("{node} (applied {applied})"))
            .collect();
        format!(
            "term {term} commit {commit} hash {hash:#018x}: {}",
            names.join(", ")
        )
    };
    if groups.len() > 1 {
        let list: Vec<String> = groups
            .iter()
            .map(|(state, nodes)| describe(state, nodes))
            .collect();
        evidence.violation(format!(
            "nodes did not converge after heal: {}",
            list.join(" | ")
        ));
    } else if let Some((state, nodes)) = groups.iter().next() {
        evidence.note(format!("converged: {}", describe(state, nodes)));
    }
    evidence.finish(NAME)
}
