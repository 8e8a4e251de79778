//! The named scenario matrix rows (sim/src/scenarios.rs) in the safe mode:
//! no invariant may break, and elections must happen exactly where the
//! matrix says they must.
use sim::scenarios::{self, Election};

#[test]
fn scenario_matrix_rows_behave_as_specified() {
    let mut failures = Vec::new();
    for scenario in scenarios::all() {
        for seed in 1..=3 {
            let output = scenario.run(seed);
            let judgement = sim::judge(&output);
            if judgement.violated() {
                failures.push(format!(
                    "{} (row {}) seed {seed} broke {:?}:\n{}",
                    scenario.name,
                    scenario.row,
                    judgement.broken(),
                    judgement.describe(8)
                ));
                continue;
            }
            if !output.stats.converged {
                failures.push(format!(
                    "{} seed {seed}: no convergence after heal",
                    scenario.name
                ));
            }
            let elected = scenario.leaders_elected_during_fault(&output);
            match scenario.election {
                Election::Required if elected.is_empty() => failures.push(format!(
                    "{} seed {seed}: nobody was elected while the fault lasted ({})",
                    scenario.name, scenario.description
                )),
                Election::Forbidden if !elected.is_empty() => failures.push(format!(
                    "{} seed {seed}: {elected:?} elected while the fault lasted ({})",
                    scenario.name, scenario.description
                )),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scenario_runs_are_deterministic() {
    let scenario = scenarios::all()
        .into_iter()
        .find(|s| s.name == "bridge")
        .expect("bridge exists");
    let mut a = sim::SimOptions::new(sim::Mode::Safe, scenario.nodes);
    a.trace = true;
    let timing = sim::cluster::timing();
    let first = sim::Cluster::scripted(9, a, scenario.script(&timing)).run();
    let second = sim::Cluster::scripted(9, a, scenario.script(&timing)).run();
    assert!(first.trace == second.trace);
    assert!(first.trace.contains("partition#1 Bridge"));
}
