//! The command line read as a timeline step: same vocabulary, same
//! validation.
use super::*;

fn mesh3() -> Topology {
    let text = crate::builtin::topology("mesh-3").unwrap().text;
    Topology::from_toml_str(text, "mesh-3", "mesh-3").unwrap()
}

fn args(kind: &str) -> FaultArgs {
    FaultArgs {
        kind: kind.into(),
        ..FaultArgs::default()
    }
}

#[test]
fn the_command_line_reads_as_a_timeline_step() {
    let step = step_of(
        &FaultArgs {
            grudge: Some("isolate".into()),
            targets: Some("leader".into()),
            ..args("partition")
        },
        &mesh3(),
    )
    .unwrap();
    assert_eq!(step.describe(), "partition isolate leader");
    let step = step_of(
        &FaultArgs {
            value: Some("30%".into()),
            targets: Some("n1".into()),
            ..args("loss")
        },
        &mesh3(),
    )
    .unwrap();
    assert_eq!(step.describe(), "loss [n1] 30%");
    let step = step_of(
        &FaultArgs {
            value: Some("50ms".into()),
            jitter: Some("5ms".into()),
            targets: Some("n1,n2".into()),
            duration: Some("2s".into()),
            ..args("delay")
        },
        &mesh3(),
    )
    .unwrap();
    assert_eq!(step.describe(), "delay [n1, n2] 50ms±5ms for 2s");
    assert_eq!(
        step_of(&args("heal"), &mesh3()).unwrap().kind(),
        FaultKind::Heal
    );
}

#[test]
fn the_command_line_gets_the_scenario_validation() {
    let unknown_node = step_of(
        &FaultArgs {
            value: Some("30%".into()),
            targets: Some("n9".into()),
            ..args("loss")
        },
        &mesh3(),
    )
    .unwrap_err();
    assert!(unknown_node.contains("n9"), "{unknown_node}");
    let no_targets = step_of(
        &FaultArgs {
            value: Some("30%".into()),
            ..args("loss")
        },
        &mesh3(),
    )
    .unwrap_err();
    assert!(no_targets.contains("needs `targets`"), "{no_targets}");
    let bad_kind = step_of(&args("explode"), &mesh3()).unwrap_err();
    assert!(bad_kind.contains("partition"), "{bad_kind}");
    let bad_percent = step_of(
        &FaultArgs {
            value: Some("lots".into()),
            targets: Some("n1".into()),
            ..args("loss")
        },
        &mesh3(),
    )
    .unwrap_err();
    assert!(bad_percent.contains("percentage"), "{bad_percent}");
    let pause_forever = step_of(
        &FaultArgs {
            targets: Some("n1".into()),
            ..args("pause")
        },
        &mesh3(),
    )
    .unwrap_err();
    assert!(pause_forever.contains("needs `for`"), "{pause_forever}");
}
