//! The checker must flag what is known to be broken. Clock drift beyond the
//! configured bound lets an old leader's lease outlive the election of its
//! successor (scenario row #24, `crates/checker/README.md`):
//! `lease_exclusivity` must catch it. The only other invariant it may break is
//! linearizability (a stale lease read served under the overlapping lease; 1
//! of 1,000 seeds).
use sim::{Mode, SimOptions, judge, run};

#[test]
fn drift_beyond_bound_is_flagged_as_lease_overlap() {
    let mut flagged = Vec::new();
    for seed in 1..=30 {
        let mut options = SimOptions::new(Mode::Safe, sim::nodes_for_seed(seed, &[3, 5, 7]));
        options.drift_beyond_bound = true;
        let output = run(seed, options);
        let judgement = judge(&output);
        let broken = judgement.broken();
        // An overlapping lease may also let the deposed leader serve a
        // stale lease read (a linearizability violation); nothing else may
        // break, and the overlap itself must always be flagged.
        for name in &broken {
            assert!(
                name == "lease_exclusivity" || name == "linearizability",
                "seed {seed}: drift beyond the bound broke {name}, which it must not:\n{}",
                judgement.describe(10)
            );
        }
        if judgement.violated() {
            assert!(
                broken.iter().any(|name| name == "lease_exclusivity"),
                "seed {seed}: a violation without the lease overlap being flagged:\n{}",
                judgement.describe(10)
            );
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
