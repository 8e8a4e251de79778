//! The `fuzz` binary's contract: exit codes, the reproduce line, the single
//! summary line, and byte-identical `--trace` files for the same seed.
use std::path::PathBuf;
use std::process::{Command, Output};

fn fuzz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fuzz"))
        .args(args)
        .output()
        .expect("the fuzz binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-fuzz-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn same_seed_twice_writes_identical_traces() {
    let (a, b) = (scratch("a.txt"), scratch("b.txt"));
    for path in [&a, &b] {
        let output = fuzz(&[
            "--seed",
            "42",
            "--nodes",
            "5",
            "--trace",
            path.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stdout(&output));
    }
    let (first, second) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(first.len() > 10_000, "trace is suspiciously small");
    assert!(first == second, "same seed, different traces");
    let _ = std::fs::remove_dir_all(a.parent().unwrap());
}

#[test]
fn clean_run_exits_zero_with_one_summary_line_last() {
    let output = fuzz(&["--seeds", "2", "--seed", "5", "--nodes", "3"]);
    assert!(output.status.success());
    let text = stdout(&output);
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("seeds=2 violations=0 "), "{text}");
    assert!(last.contains("seeds_per_minute="), "{last}");
    assert_eq!(text.lines().filter(|l| l.starts_with("seeds=")).count(), 1);
}

#[test]
fn violation_exits_one_and_prints_how_to_reproduce() {
    let output = fuzz(&[
        "--seeds",
        "20",
        "--mode",
        "timeout-failover",
        "--nodes",
        "3",
        "--max-failures",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    let reproduce = text
        .lines()
        .find(|l| l.starts_with("REPRODUCE WITH: cargo run --release -p sim --bin fuzz -- --seed "))
        .unwrap_or_else(|| panic!("no reproduce line in:\n{text}"));
    assert!(
        reproduce.contains("--mode timeout-failover --nodes 3"),
        "{reproduce}"
    );
    assert!(text.contains(" is INVALID:"), "no evidence in:\n{text}");
    assert!(text.lines().last().unwrap().starts_with("seeds="), "{text}");
}

#[test]
fn bad_arguments_exit_two() {
    for args in [
        &["--mode", "nope"][..],
        &["--nodes", "0"],
        &["--seeds", "0"],
    ] {
        let output = fuzz(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn stats_count_fault_kinds_that_fired_not_those_planned() {
    // Seed 73 plans a crash-after-write that is called off before the node
    // writes: not covered, listed as planned but not fired.
    let output = fuzz(&["--seed", "73", "--nodes", "3,5,7", "--stats"]);
    assert!(output.status.success(), "{}", stdout(&output));
    let text = stdout(&output);
    let stats = text
        .lines()
        .find(|line| line.starts_with("stats "))
        .unwrap_or_else(|| panic!("no stats line in {text}"));
    let field = |name: &str| {
        stats
            .split(' ')
            .find_map(|part| part.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
            .to_string()
    };
    let kinds = field("kinds=");
    assert!(
        kinds.contains("LinkFaults:1") && kinds.contains("Pause:1"),
        "{stats}"
    );
    assert!(!kinds.contains("CrashAfterWrite"), "{stats}");
    assert_eq!(field("planned_not_fired="), "CrashAfterWrite:1", "{stats}");
}
