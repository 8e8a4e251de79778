//! Large generated histories: valid by construction, then corrupted.
mod support;

use checker::checks::linearizability;
use checker::synthetic::{Workload, register_history};
use checker::{LinearizabilityBudget, OpFn, OpKind, Verdict};
use support::assert_check;

fn workload() -> Workload {
    Workload {
        seed: 7,
        operations: 20_000,
        keys: 20,
        clients: 16,
        ..Workload::default()
    }
}

#[test]
fn a_generated_linearizable_history_is_valid() {
    let history = register_history(&workload());
    let result = linearizability::check(&history, &LinearizabilityBudget::default());
    assert_check(&result, Verdict::Valid, &["20 keys, 20000 operations"]);
}

#[test]
fn one_corrupted_read_in_a_large_history_is_found() {
    let mut history = register_history(&workload());
    let position = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.kind == OpKind::Ok && op.f == OpFn::Read)
        .map(|(i, _)| i)
        .nth(5_000)
        .expect("the workload has reads");
    history.ops[position].value = Some("phantom".to_string());
    let key = history.ops[position].key.clone();
    let result = linearizability::check(&history, &LinearizabilityBudget::default());
    assert_check(&result, Verdict::Invalid, &[]);
    assert_eq!(result.details.len(), 2, "only one key fails: {result:?}");
    assert!(
        result.details[0].contains(&format!(
            "culprit: p{} read({key})→phantom",
            history.ops[position].process
        )),
        "{result:?}"
    );
}
