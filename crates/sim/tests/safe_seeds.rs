//! A fixed set of seeds in the safe mode, across 3, 5 and 7 nodes and every
//! fault kind, must break nothing, and each must judge recovery after the
//! heal (`progress`, `bounded_elections`). (The big sweeps run through the
//! release `fuzz` binary; this set keeps `cargo test` honest and quick.)
use std::collections::BTreeSet;

use sim::{Mode, SimOptions, judge, run};

#[test]
fn safe_mode_survives_a_fixed_seed_set() {
    let mut kinds = BTreeSet::new();
    let mut sizes = BTreeSet::new();
    for seed in 1..=150 {
        let nodes = sim::nodes_for_seed(seed, &[3, 5, 7]);
        let output = run(seed, SimOptions::new(Mode::Safe, nodes));
        let judgement = judge(&output);
        assert!(
            !judgement.violated(),
            "seed {seed} ({nodes} nodes) broke {:?}:\n{}\nREPRODUCE WITH: {}",
            judgement.broken(),
            judgement.describe(10),
            sim::reproduce_command(seed, &output.options)
        );
        // The clients run on after the heal, so whatever the schedule every
        // run judges recovery: a write succeeds, elections settle.
        for name in ["progress", "bounded_elections"] {
            let result = judgement.report.result(name).expect("every check runs");
            assert!(
                result.is_valid(),
                "seed {seed}: {name} is {:?}: {:?}",
                result.verdict,
                result.details
            );
        }
        assert!(
            output.stats.converged,
            "seed {seed}: the cluster did not converge after heal"
        );
        assert!(
            output.stats.final_reads_done,
            "seed {seed}: final reads did not complete"
        );
        assert!(
            output.stats.workload.ok > 50,
            "seed {seed}: hardly any operation succeeded"
        );
        kinds.extend(output.kinds.iter().copied());
        sizes.insert(nodes);
    }
    assert_eq!(
        sizes.len(),
        3,
        "not every cluster size was exercised: {sizes:?}"
    );
    assert!(kinds.len() >= 8, "too few fault kinds exercised: {kinds:?}");
}
