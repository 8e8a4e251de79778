//! Negative controls for `scripts/fuzz-gate.sh`, the gate `scripts/test.sh`
//! puts on every fuzz run: a safe run with undecided seeds fails, an
//! incorrect mode is caught only when `broke=` names a checker invariant, and
//! a harness panic is never a catch.
use std::path::PathBuf;
use std::process::Command;

fn gate(kind: &str, code: i32, summary: &str) -> bool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let log = std::env::temp_dir().join(format!(
        "fuzz-gate-{}-{kind}-{code}-{}.log",
        std::process::id(),
        summary.len()
    ));
    std::fs::write(&log, format!("some seed line\n{summary}\n")).unwrap();
    let status = Command::new("bash")
        .arg(root.join("scripts/fuzz-gate.sh"))
        .args([kind, &code.to_string()])
        .arg(&log)
        .status()
        .expect("bash runs the gate");
    std::fs::remove_file(&log).ok();
    status.success()
}

const CLEAN: &str = "seeds=300 violations=0 mode=safe nodes=3,5,7 first_failure=none broke=none undecided=0 undecided_checks=none harness_panics=0 not_converged=0";

#[test]
fn a_clean_safe_run_passes() {
    assert!(gate("safe", 0, CLEAN));
}

#[test]
fn a_safe_run_with_undecided_seeds_fails() {
    let undecided = CLEAN.replace(
        "undecided=0 undecided_checks=none",
        "undecided=3 undecided_checks=progress:3",
    );
    assert!(!gate("safe", 0, &undecided));
}

#[test]
fn only_a_bounded_share_of_unjudgeable_minority_windows_passes() {
    // The two minority checks on at most the binomial 99 % upper end of
    // the measured 3.13 % (17 of 300 seeds): a flapping
    // link's one-flap window with every minority client still waiting, a
    // partition that barely outlasts the fail-fast bound.
    let few = CLEAN.replace(
        "undecided=0 undecided_checks=none",
        "undecided=17 undecided_checks=minority_never_acknowledges:17",
    );
    assert!(gate("safe", 0, &few));
    let many = CLEAN.replace(
        "undecided=0 undecided_checks=none",
        "undecided=18 undecided_checks=minority_never_acknowledges:18",
    );
    assert!(!gate("safe", 0, &many));
    let other = CLEAN.replace(
        "undecided=0 undecided_checks=none",
        "undecided=2 undecided_checks=minority_never_acknowledges:1,progress:1",
    );
    assert!(!gate("safe", 0, &other));
    // The fail-fast check's unjudgeable windows share the same bound; no
    // other check may be undecided.
    for (checks, passes) in [
        ("undecided=12 undecided_checks=minority_fails_fast:12", true),
        (
            "undecided=12 undecided_checks=minority_fails_fast:5,minority_never_acknowledges:8",
            true,
        ),
        (
            "undecided=18 undecided_checks=minority_fails_fast:10,minority_never_acknowledges:9",
            false,
        ),
        ("undecided=2 undecided_checks=bounded_elections:2", false),
        (
            "undecided=2 undecided_checks=minority_fails_fast:1,progress:1",
            false,
        ),
    ] {
        let summary = CLEAN.replace("undecided=0 undecided_checks=none", checks);
        assert_eq!(gate("safe", 0, &summary), passes, "{checks}");
    }
}

#[test]
fn a_safe_run_with_a_violation_or_a_harness_panic_fails() {
    assert!(!gate("safe", 1, CLEAN));
    assert!(!gate("safe", 3, CLEAN));
}

#[test]
fn an_incorrect_mode_is_caught_only_by_a_named_invariant() {
    let caught = "seeds=1000 violations=40 mode=no-fencing nodes=3,5 first_failure=2 broke=convergence:12,log_agreement:30 undecided=0";
    assert!(gate("incorrect", 1, caught));
    // Exit 1 but nothing named: not a catch.
    let unnamed = caught.replace("broke=convergence:12,log_agreement:30", "broke=none");
    assert!(!gate("incorrect", 1, &unnamed));
    let panic_only = caught.replace("broke=convergence:12,log_agreement:30", "broke=panic:40");
    assert!(!gate("incorrect", 1, &panic_only));
    // The harness panicked: a failure of the harness, never a catch.
    assert!(!gate("incorrect", 3, caught));
    // Survived every seed.
    assert!(!gate("incorrect", 0, caught));
}
