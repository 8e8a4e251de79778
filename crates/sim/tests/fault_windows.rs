//! The simulator's fault catalogue runs every check: from the nemesis as it
//! executes it derives partition, quorum and election windows and the
//! fail-fast bound, so `bounded_elections`, `progress` and
//! `minority_fails_fast` judge simulated runs on evidence; a run in which no
//! election can finish is caught by them; coverage counts the faults that
//! fired, not the faults a schedule planned.
use checker::{CheckResult, Verdict};
use sim::schedule::{EpisodeKind, Fault, PartitionShape, Scheduled};
use sim::{Cluster, DriverBug, Judgement, Mode, Script, SimOptions, judge, run};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

fn result<'a>(judgement: &'a Judgement, name: &str) -> &'a CheckResult {
    judgement
        .report
        .result(name)
        .unwrap_or_else(|| panic!("{name} did not run"))
}

fn assert_verdict(judgement: &Judgement, name: &str, verdict: Verdict, needles: &[&str]) {
    let result = result(judgement, name);
    assert_eq!(result.verdict, verdict, "{name}: {:#?}", result.details);
    let text = result.details.join("\n");
    for needle in needles {
        assert!(text.contains(needle), "{name}: no {needle:?} in\n{text}");
    }
}

/// The leader and one follower of five cut off from 2 s to 8 s.
fn leader_in_minority() -> Script {
    Script {
        faults: vec![
            Scheduled {
                at: 2 * SEC,
                fault: Fault::Partition {
                    episode: 1,
                    shape: PartitionShape::LeaderInMinority,
                },
            },
            Scheduled {
                at: 8 * SEC,
                fault: Fault::Heal { episode: 1 },
            },
        ],
        heal_at: 9 * SEC,
    }
}

#[test]
fn a_partition_run_judges_elections_progress_and_fail_fast_on_evidence() {
    for seed in 1..=3 {
        let output =
            Cluster::scripted(seed, SimOptions::new(Mode::Safe, 5), leader_in_minority()).run();
        let windows = &output.windows;
        let minority: Vec<_> = windows
            .partitions
            .iter()
            .filter(|w| (w.start_ns, w.end_ns) == (2 * SEC, 8 * SEC))
            .collect();
        assert_eq!(minority.len(), 1, "seed {seed}: {:?}", windows.partitions);
        assert_eq!(minority[0].minority.len(), 2);
        // The majority side is a connected quorum for the whole partition,
        // the whole cluster after the heal; calm stretches bound elections.
        assert!(
            windows
                .quorums
                .iter()
                .any(|q| (q.start_ns, q.end_ns, q.nodes.len()) == (2 * SEC, 8 * SEC, 3)),
            "seed {seed}: {:?}",
            windows.quorums
        );
        assert!(windows.quorums.iter().any(|q| q.start_ns == 8 * SEC));
        assert!(!windows.elections.is_empty());

        let judgement = judge(&output);
        assert!(
            !judgement.violated(),
            "seed {seed}:\n{}",
            judgement.describe(8)
        );
        assert_verdict(
            &judgement,
            "minority_fails_fast",
            Verdict::Valid,
            &["writes reached the minority after the bound 1.100s"],
        );
        assert_verdict(
            &judgement,
            "progress",
            Verdict::Valid,
            &[
                "connected [2.000000s .. 8.000000s), judged from 5.300000s",
                "writes succeeded",
            ],
        );
        assert_verdict(
            &judgement,
            "bounded_elections",
            Verdict::Valid,
            &["bound 1/min: at most"],
        );
    }
}

#[test]
fn a_run_in_which_no_election_finishes_breaks_bounded_elections_and_progress() {
    let mut options = SimOptions::new(Mode::Safe, 3);
    options.faults = false;
    // The control: the same quiet run elects once and serves writes.
    let judgement = judge(&run(7, options));
    assert_verdict(&judgement, "bounded_elections", Verdict::Valid, &[]);
    assert_verdict(
        &judgement,
        "progress",
        Verdict::Valid,
        &["writes succeeded"],
    );
    assert_eq!(
        result(&judgement, "minority_fails_fast").verdict,
        Verdict::NotApplicable
    );

    options.driver_bug = Some(DriverBug::LoseVoteReplies);
    let judgement = judge(&run(7, options));
    assert_verdict(
        &judgement,
        "bounded_elections",
        Verdict::Invalid,
        &["elections within one minute"],
    );
    assert_verdict(
        &judgement,
        "progress",
        Verdict::Invalid,
        &["no write succeeded"],
    );
}

#[test]
fn a_planned_fault_that_never_fired_is_not_covered() {
    // A crash-after-write armed and then called off (by a restart, or by
    // the run ending) before the node wrote anything: planned, not fired.
    // Which seed does this depends on the replica's timing, so search,
    // starting at the first seed that does it today (73).
    let output = (73..=373)
        .find_map(|seed| {
            let mut options = SimOptions::new(Mode::Safe, sim::nodes_for_seed(seed, &[3, 5, 7]));
            options.trace = true;
            let output = run(seed, options);
            (output.kinds.contains(&EpisodeKind::CrashAfterWrite)
                && !output.fired.contains(&EpisodeKind::CrashAfterWrite))
            .then_some(output)
        })
        .expect("some seed plans a crash-after-write that never fires");
    assert!(output.trace.contains("crash-after-write#"));
    assert!(!output.trace.contains("armed crash fires"));
    // What did fire is covered, and nothing that was not planned.
    assert!(!output.fired.is_empty(), "{:?}", output.kinds);
    assert!(output.fired.is_subset(&output.kinds));

    // An armed crash that does fire is covered.
    let fired = (1..=100).find_map(|seed| {
        let mut options = SimOptions::new(Mode::Safe, 3);
        options.trace = true;
        let output = run(seed, options);
        output.trace.contains("armed crash fires").then_some(output)
    });
    let output = fired.expect("some seed fires an armed crash");
    assert!(output.fired.contains(&EpisodeKind::CrashAfterWrite));
}
