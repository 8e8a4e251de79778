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

/// `splitlab fault KIND [VALUE] --KEY VALUE...` (keys: grudge, targets,
/// jitter, for) read as a step of mesh-3.
fn fault(kind: &str, value: Option<&str>, keys: &[(&str, &str)]) -> Result<Step, String> {
    let mut args = FaultArgs {
        value: value.map(String::from),
        ..args(kind)
    };
    for (key, text) in keys {
        let field = match *key {
            "grudge" => &mut args.grudge,
            "targets" => &mut args.targets,
            "jitter" => &mut args.jitter,
            "for" => &mut args.duration,
            other => panic!("no flag --{other} in these tests"),
        };
        *field = Some(text.to_string());
    }
    step_of(&args, &mesh3())
}

#[test]
fn the_command_line_reads_as_a_timeline_step() {
    let isolate = [("grudge", "isolate"), ("targets", "leader")];
    let delay = [("jitter", "5ms"), ("targets", "n1,n2"), ("for", "2s")];
    for (kind, value, keys, described) in [
        ("partition", None, &isolate[..], "partition isolate leader"),
        ("loss", Some("30%"), &[("targets", "n1")], "loss [n1] 30%"),
        (
            "delay",
            Some("50ms"),
            &delay,
            "delay [n1, n2] 50ms±5ms for 2s",
        ),
    ] {
        assert_eq!(fault(kind, value, keys).unwrap().describe(), described);
    }
    assert_eq!(
        step_of(&args("heal"), &mesh3()).unwrap().kind(),
        FaultKind::Heal
    );
}

#[test]
fn the_command_line_gets_the_scenario_validation() {
    let on = |node| [("targets", node)];
    for (kind, value, keys, says) in [
        ("loss", Some("30%"), &on("n9")[..], "n9"),
        ("loss", Some("30%"), &[], "needs `targets`"),
        ("explode", None, &[], "partition"),
        ("loss", Some("lots"), &on("n1"), "percentage"),
        ("pause", None, &on("n1"), "needs `for`"),
    ] {
        let error = fault(kind, value, keys).unwrap_err();
        assert!(error.contains(says), "{kind} {value:?} {keys:?}: {error}");
    }
}
