//! The checker must flag what is known to be broken. Clock drift beyond the
//! configured bound lets an old leader's lease outlive the election of its
//! successor (SCENARIOS.md #24): `lease_exclusivity` must catch it, and
//! nothing else in the safe mode may break.
use sim::{Mode, SimOptions, judge, run};

#[test]
fn drift_beyond_bound_is_flagged_as_lease_overlap() {
    let mut flagged = Vec::new();
    for seed in 1..=30 {
        let mut options = SimOptions::new(Mode::Safe, sim::nodes_for_seed(seed, &[3, 5, 7]));
        options.drift_beyond_bound = true;
        let output = run(seed, options);
        let judgement = judge(&output);
        for broken in judgement.broken() {
            assert_eq!(
                broken,
                "lease_exclusivity",
                "seed {seed}: drift beyond the bound broke {broken}, which it must not:\n{}",
                judgement.describe(10)
            );
        }
        if judgement.violated() {
            flagged.push(seed);
        }
    }
    assert!(
        flagged.len() >= 5,
        "lease overlap flagged in only {} of 30 seeds: {flagged:?}",
        flagged.len()
    );
}

#[test]
fn drift_within_bound_keeps_leases_exclusive() {
    for seed in 1..=30 {
        let output = run(
            seed,
            SimOptions::new(Mode::Safe, sim::nodes_for_seed(seed, &[3, 5, 7])),
        );
        let judgement = judge(&output);
        assert!(
            !judgement.violated(),
            "seed {seed}:\n{}",
            judgement.describe(10)
        );
    }
}
