//! Parsing and validation of the node faults: `disk-full`, `fsync-error`,
//! `disk-slow` and `forge` (what they take, what they need, where errors
//! point).
use super::tests::{first_says, load};
use super::*;
use crate::run::duration::Dur;

fn step(fields: &str) -> Result<Scenario, Vec<ScenarioError>> {
    load(&format!("[[timeline]]\nat = \"2s\"\n{fields}"))
}

#[test]
fn disk_and_forge_steps_parse_into_their_variants() {
    let scenario = step("for = \"3s\"\nfault = \"disk-full\"\ntargets = \"leader\"\n").unwrap();
    let parsed = scenario.timeline[0].get_ref();
    assert!(matches!(
        &parsed.fault,
        StepFault::Disk { kind: FaultKind::DiskFull, duration, .. } if *duration == Dur::from_millis(3000)
    ));
    assert_eq!(parsed.describe(), "disk-full leader for 3s");
    for kind in ["fsync-error", "disk-slow"] {
        let scenario = step(&format!(
            "for = \"1s\"\nfault = \"{kind}\"\ntargets = [\"n2\"]\n"
        ))
        .unwrap();
        assert_eq!(scenario.timeline[0].get_ref().kind().name(), kind);
    }
    let scenario = step("for = \"5s\"\nfault = \"forge\"\ntargets = \"all\"\n").unwrap();
    assert!(matches!(
        scenario.timeline[0].get_ref().fault,
        StepFault::Forge { .. }
    ));
}

#[test]
fn node_faults_need_for_and_targets_with_line_and_column() {
    let error = step("fault = \"disk-full\"\n").unwrap_err();
    assert_eq!(error.len(), 2, "{error:?}");
    assert!(
        error.iter().all(|e| (e.line, e.column) == (6, 1)),
        "{error:?}"
    );
    first_says(&error, "needs `targets`");
    assert!(error[1].message.contains("needs `for`"), "{}", error[1]);
    let error = step("fault = \"forge\"\ntargets = \"all\"\n").unwrap_err();
    first_says(&error, "\"forge\" needs `for`");
}

#[test]
fn network_fields_do_not_apply_to_node_faults() {
    let error = step("for = \"1s\"\nfault = \"forge\"\ntargets = \"all\"\nplane = \"heartbeat\"\n")
        .unwrap_err();
    first_says(&error, "`plane` does not apply");
    let error = step("for = \"1s\"\nfault = \"disk-full\"\ntargets = \"n1\"\npeers = \"n2\"\n")
        .unwrap_err();
    first_says(&error, "`peers` does not apply");
}

#[test]
fn a_node_fault_must_end_inside_the_workload() {
    let error =
        load("[[timeline]]\nat = \"15s\"\nfor = \"6s\"\nfault = \"disk-full\"\ntargets = \"n1\"\n")
            .unwrap_err();
    assert_eq!(error.len(), 1, "{error:?}");
    assert_eq!((error[0].line, error[0].column), (6, 1), "{}", error[0]);
    first_says(&error, "must end before the workload does");
}

#[test]
fn unknown_disk_targets_are_located() {
    let error = step("for = \"1s\"\nfault = \"disk-full\"\ntargets = [\"n7\"]\n").unwrap_err();
    assert_eq!((error[0].line, error[0].column), (10, 11), "{}", error[0]);
    first_says(&error, "valid nodes: n1, n2, n3");
}

#[test]
fn disk_slow_takes_a_delay_with_a_default() {
    let scenario =
        step("for = \"2s\"\nfault = \"disk-slow\"\ntargets = \"follower\"\ndelay = \"20ms\"\n")
            .unwrap();
    let parsed = scenario.timeline[0].get_ref();
    assert!(matches!(
        parsed.fault,
        StepFault::Disk { kind: FaultKind::DiskSlow, delay: Some(delay), .. } if delay == Dur::from_millis(20)
    ));
    assert_eq!(parsed.describe(), "disk-slow follower 20ms for 2s");
    let scenario = step("for = \"2s\"\nfault = \"disk-slow\"\ntargets = \"n1\"\n").unwrap();
    assert!(matches!(
        scenario.timeline[0].get_ref().fault,
        StepFault::Disk { delay: Some(delay), .. } if delay == Dur::from_millis(50)
    ));
    let scenario = step("for = \"2s\"\nfault = \"fsync-error\"\ntargets = \"n1\"\n").unwrap();
    assert!(matches!(
        scenario.timeline[0].get_ref().fault,
        StepFault::Disk { delay: None, .. }
    ));
}

#[test]
fn a_disk_slow_delay_out_of_range_or_on_another_disk_fault_is_located() {
    for (fields, message) in [
        (
            "for = \"2s\"\nfault = \"disk-slow\"\ntargets = \"n1\"\ndelay = \"0ms\"\n",
            "must be above 0",
        ),
        (
            "for = \"2s\"\nfault = \"disk-slow\"\ntargets = \"n1\"\ndelay = \"6s\"\n",
            "at most 5s",
        ),
        (
            "for = \"2s\"\nfault = \"fsync-error\"\ntargets = \"n1\"\ndelay = \"5ms\"\n",
            "`delay` does not apply to fault \"fsync-error\"",
        ),
        (
            "for = \"2s\"\nfault = \"disk-slow\"\ntargets = \"n1\"\njitter = \"5ms\"\n",
            "`jitter` does not apply",
        ),
    ] {
        let error = step(fields).unwrap_err();
        assert_eq!(error.len(), 1, "{error:?}");
        assert_eq!((error[0].line, error[0].column), (6, 1), "{}", error[0]);
        first_says(&error, message);
        assert!(error[0].to_string().contains(":6:1"), "{}", error[0]);
    }
}
