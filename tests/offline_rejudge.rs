//! Cross-crate contract behind `splitlab check <run-dir>`: a run's history and
//! node events survive the trip through the on-disk JSONL format unchanged,
//! and the checker reaches the same verdict, check by check, on what it reads
//! back as on what the run produced in memory. Histories come from the
//! simulator because it makes both valid and split-brain runs on demand.
use checker::{CheckInput, History, check_all, load_events, save_events};
use sim::{Mode, SimOptions, check_config, judge, run};

fn verdicts(report: &checker::Report) -> Vec<(String, checker::Verdict)> {
    report
        .results
        .iter()
        .map(|r| (r.name.clone(), r.verdict))
        .collect()
}

#[test]
fn jsonl_round_trip_keeps_every_verdict() {
    let dir = std::env::temp_dir().join(format!("sl-rejudge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut saw_invalid = false;
    for (seed, mode, nodes) in [
        (1, Mode::Safe, 3),
        (2, Mode::Safe, 5),
        (1, Mode::TimeoutFailover, 5),
        (1, Mode::NoFencing, 5),
    ] {
        let output = run(seed, SimOptions::new(mode, nodes));
        let in_memory = judge(&output).report;

        let history_path = dir.join(format!("{seed}-{mode:?}-history.jsonl"));
        let events_path = dir.join(format!("{seed}-{mode:?}-events.jsonl"));
        output.history.save(&history_path).expect("save history");
        save_events(&events_path, &output.events).expect("save events");
        let history = History::load(&history_path).expect("load history");
        let events = load_events(&events_path).expect("load events");
        assert_eq!(
            history, output.history,
            "seed {seed} {mode:?}: history changed on disk"
        );
        assert_eq!(
            events, output.events,
            "seed {seed} {mode:?}: events changed on disk"
        );

        let from_disk = check_all(&CheckInput {
            history: &history,
            events: &events,
            config: &check_config(&output, false),
        });
        assert_eq!(
            verdicts(&in_memory),
            verdicts(&from_disk),
            "seed {seed} {mode:?}"
        );
        assert_eq!(in_memory.verdict, from_disk.verdict, "seed {seed} {mode:?}");
        if mode == Mode::Safe {
            assert_eq!(
                from_disk.verdict,
                checker::Verdict::Valid,
                "seed {seed}: safe run judged {:?}: {:?}",
                from_disk.verdict,
                from_disk.invalid_checks()
            );
        }
        saw_invalid |= from_disk.verdict == checker::Verdict::Invalid;
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        saw_invalid,
        "no incorrect-mode run was judged invalid: the round trip was never tested on a split brain"
    );
}
