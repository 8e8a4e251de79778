//! Parsing and validation together, as `load` uses them: what each kind of
//! malformed input reports, and that every shipped scenario still parses.
use std::path::{Path, PathBuf};

use super::*;
use crate::run::duration::Dur;

fn catalog3() -> NodeCatalog {
    let mut catalog = NodeCatalog::new(vec!["n1".into(), "n2".into(), "n3".into()]);
    catalog.regions.insert("east".into(), vec!["n1".into()]);
    catalog
}

const BASE: &str = r#"
topology = "mesh-3"
duration = "20s"
[workload]
clients = 2
"#;

pub(super) fn load(extra: &str) -> Result<Scenario, Vec<ScenarioError>> {
    let text = format!("{BASE}{extra}");
    let scenario = parse(&text, Path::new("t.toml"))?;
    validate(&scenario, &catalog3(), &text, Path::new("t.toml"))?;
    Ok(scenario)
}

/// Asserts that the first of `errors` says `text`.
pub(super) fn first_says(errors: &[ScenarioError], text: &str) {
    assert!(errors[0].message.contains(text), "{}", errors[0]);
}

#[test]
fn minimal_scenario_gets_defaults() {
    let scenario = load("").unwrap();
    assert_eq!(scenario.name, "t");
    assert_eq!(scenario.nodes.mode, Mode::Safe);
    assert_eq!(scenario.workload.keys, 5);
    assert_eq!(
        scenario.nodes.timing().minority_reject_bound(),
        Dur::from_millis(1100)
    );
}

#[test]
fn unknown_field_is_reported_with_line_and_column() {
    let error = load("colour = \"red\"\n").unwrap_err();
    assert_eq!(error.len(), 1);
    assert_eq!((error[0].line, error[0].column), (6, 1), "{}", error[0]);
    first_says(&error, "unknown field `colour`");
}

#[test]
fn unknown_field_inside_a_step_is_located() {
    let error =
        load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"leader\"\n").unwrap_err();
    assert_eq!(error[0].line, 9, "{}", error[0]);
    first_says(&error, "unknown field `target`");
}

#[test]
fn unknown_target_names_list_the_valid_ones() {
    let error = load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = [\"n1\", \"n9\"]\n")
        .unwrap_err();
    assert_eq!(error.len(), 1);
    assert_eq!((error[0].line, error[0].column), (9, 11), "{}", error[0]);
    first_says(&error, "\"n9\"");
    first_says(&error, "valid nodes: n1, n2, n3");
    first_says(&error, "minority-with-leader");
}

#[test]
fn a_single_unknown_name_is_not_mistaken_for_a_role() {
    let error =
        load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = \"leadr\"\n").unwrap_err();
    first_says(&error, "\"leadr\"");
}

#[test]
fn role_targets_parse() {
    let scenario =
        load("[[timeline]]\nat = \"1s\"\nfor = \"2s\"\nfault = \"partition\"\ntargets = \"minority-with-leader\"\n")
            .unwrap();
    let step = scenario.timeline[0].get_ref();
    assert_eq!(
        step.targets().unwrap().get_ref(),
        &Targets::Role(Role::MinorityWithLeader)
    );
}

#[test]
fn fields_that_do_not_apply_to_the_fault_are_rejected() {
    let error =
        load("[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = \"leader\"\npercent = 20.0\n")
            .unwrap_err();
    first_says(&error, "`percent` does not apply");
    assert_eq!(error[0].line, 6);
}

#[test]
fn missing_fault_parameters_are_reported() {
    let cases = [
        ("fault = \"loss\"\ntargets = \"all\"\n", "needs `percent`"),
        ("fault = \"delay\"\ntargets = \"all\"\n", "needs `delay`"),
        (
            "fault = \"rate\"\ntargets = \"all\"\nrate = \"fast\"\n",
            "is not like",
        ),
        ("fault = \"flap\"\ntargets = \"leader\"\n", "needs `period`"),
        ("fault = \"pause\"\ntargets = \"leader\"\n", "needs `for`"),
        (
            "fault = \"partition\"\ngrudge = \"components\"\n",
            "needs `components`",
        ),
        (
            "fault = \"partition\"\ngrudge = \"links\"\ntargets = \"leader\"\n",
            "needs `peers`",
        ),
        ("fault = \"kill\"\n", "needs `targets`"),
    ];
    for (step, expected) in cases {
        let error = load(&format!("[[timeline]]\nat = \"1s\"\n{step}")).unwrap_err();
        assert!(
            error.iter().any(|e| e.message.contains(expected)),
            "{step}: {error:?}"
        );
    }
}

#[test]
fn placement_must_name_nodes_or_regions_and_add_up() {
    let text = "topology = \"mesh-3\"\nduration = \"5s\"\n[workload]\nclients = 3\nplacement = { east = 1, n2 = 1, mars = 1 }\n";
    let scenario = parse(text, Path::new("p.toml")).unwrap();
    let error = validate(&scenario, &catalog3(), text, Path::new("p.toml")).unwrap_err();
    assert_eq!(error.len(), 1, "{error:?}");
    first_says(&error, "\"mars\"");
    first_says(&error, "east");
}

#[test]
fn step_after_the_end_is_rejected() {
    let error = load("[[timeline]]\nat = \"30s\"\nfault = \"heal\"\n").unwrap_err();
    first_says(&error, "after the workload ends");
}

#[test]
fn rates_parse() {
    assert_eq!(parse_rate_bits("1mbit"), Some(1_000_000));
    assert_eq!(parse_rate_bits("500kbit"), Some(500_000));
    assert_eq!(parse_rate_bits("1.5gbit"), Some(1_500_000_000));
    assert_eq!(parse_rate_bits("1mb"), None);
}

#[test]
fn line_column_counts_from_one() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
}

/// Every `.toml` under `lab/scenarios`, museum included.
fn shipped_scenarios() -> Vec<PathBuf> {
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios")];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_parses_into_typed_steps() {
    let files = shipped_scenarios();
    assert!(files.len() >= 24, "only {} scenario files", files.len());
    let mut kinds = std::collections::BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let scenario = parse(&text, &path)
            .unwrap_or_else(|errors| panic!("{}: {}", path.display(), format_problems(&errors)));
        for step in &scenario.timeline {
            kinds.insert(step.get_ref().kind().name());
        }
    }
    // The library exercises every kind but heal and link-down; a kind that
    // stopped typing would fail above, one that vanished shows up here.
    for kind in [
        "partition",
        "loss",
        "delay",
        "duplicate",
        "corrupt",
        "reorder",
        "rate",
        "flap",
        "kill",
        "pause",
        "restart",
    ] {
        assert!(
            kinds.contains(kind),
            "no shipped scenario uses {kind}: {kinds:?}"
        );
    }
}

#[test]
fn steps_are_typed_per_fault_kind() {
    let scenario = load(
        "[[timeline]]\nat = \"1s\"\nfor = \"3s\"\nfault = \"flap\"\ntargets = \"follower\"\nperiod = \"1s\"\n\
         [[timeline]]\nat = \"2s\"\nfault = \"rate\"\ntargets = \"all\"\nrate = \"1mbit\"\nplane = \"client\"\n\
         [[timeline]]\nat = \"3s\"\nfault = \"restart\"\ntargets = [\"n1\"]\n",
    )
    .unwrap();
    let steps: Vec<&Step> = scenario.timeline.iter().map(|s| s.get_ref()).collect();
    assert!(matches!(
        &steps[0].fault,
        StepFault::Flap { period, duration, .. } if *period == Dur::from_secs(1) && *duration == Dur::from_secs(3)
    ));
    assert!(matches!(
        &steps[1].fault,
        StepFault::Shape { effect: Effect::Rate { bits_per_sec: 1_000_000, .. }, links, .. } if links.plane == Plane::Client
    ));
    assert_eq!(steps[2].kind(), FaultKind::Restart);
    assert_eq!(steps[2].duration(), None);
}

#[test]
fn descriptions_read_as_before() {
    let scenario = load(
        "[[timeline]]\nat = \"1s\"\nfor = \"2s\"\nfault = \"partition\"\ngrudge = \"isolate\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"partition\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"reorder\"\ntargets = \"all\"\npercent = 25.0\ndelay = \"10ms\"\njitter = \"5ms\"\nplane = \"heartbeat\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"partition\"\ngrudge = \"links\"\ntargets = [\"n1\"]\npeers = [\"n2\"]\n\
         [[timeline]]\nat = \"1s\"\nfault = \"heal\"\n",
    )
    .unwrap();
    let described: Vec<String> = scenario
        .timeline
        .iter()
        .map(|s| s.get_ref().describe())
        .collect();
    assert_eq!(
        described,
        vec![
            "partition isolate leader for 2s",
            "partition leader",
            "reorder all 25% 10ms±5ms (heartbeat plane)",
            "partition links [n1] ↔ [n2]",
            "heal",
        ]
    );
}

#[test]
fn every_misfit_step_is_reported_at_its_own_table() {
    let error = load(
        "[[timeline]]\nat = \"1s\"\nfault = \"kill\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"2s\"\nfault = \"heal\"\nplane = \"client\"\n\
         [[timeline]]\nat = \"3s\"\nfault = \"loss\"\ntargets = \"all\"\npercent = 120.0\n",
    )
    .unwrap_err();
    let located: Vec<(usize, bool)> = error
        .iter()
        .map(|e| {
            (
                e.line,
                e.message.contains("plane") || e.message.contains("percent"),
            )
        })
        .collect();
    assert_eq!(located, vec![(10, true), (14, true)], "{error:?}");
}

#[test]
fn skipped_checks_must_be_real_checks_and_are_located() {
    let error = load("[checks]\nskip = [\"progress\", \"progres\"]\n").unwrap_err();
    assert_eq!(error.len(), 1, "{error:?}");
    // Line 7 of BASE + extra, at the misspelled name.
    assert_eq!((error[0].line, error[0].column), (7, 21), "{}", error[0]);
    first_says(&error, "unknown check \"progres\"");
    assert!(load("[checks]\nskip = [\"progress\"]\n").is_ok());
}

#[test]
fn an_invalid_expectation_names_real_broken_checks() {
    let with = |expect: &str| {
        let text = format!("expect = {expect}\n{BASE}");
        let scenario = parse(&text, Path::new("t.toml")).unwrap();
        validate(&scenario, &catalog3(), &text, Path::new("t.toml"))
    };
    let error = with("{ verdict = \"invalid\" }").unwrap_err();
    assert_eq!((error[0].line, error[0].column), (1, 10), "{}", error[0]);
    first_says(&error, "must name the checks");
    let error =
        with("{ verdict = \"invalid\", broken = [\"minority_rejects_writes\"] }").unwrap_err();
    first_says(&error, "unknown check");
    assert!(with("{ verdict = \"invalid\", broken = [\"minority_never_acknowledges\"] }").is_ok());
    let error = with("{ verdict = \"valid\", broken = [\"progress\"] }").unwrap_err();
    first_says(&error, "only makes sense");
}

#[test]
fn one_way_kinds_say_what_tcp_does_and_old_names_still_read() {
    let scenario = load(
        "[[timeline]]\nat = \"1s\"\nfault = \"partition\"\ngrudge = \"one-way-in\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"partition\"\ngrudge = \"one-way-all-out\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"partition\"\ngrudge = \"one-way-data-out\"\ntargets = \"leader\"\n\
         [[timeline]]\nat = \"1s\"\nfault = \"partition\"\ngrudge = \"one-way-data-in\"\ntargets = \"leader\"\n",
    )
    .unwrap();
    let kinds: Vec<(String, bool)> = scenario
        .timeline
        .iter()
        .map(|s| match &s.get_ref().fault {
            StepFault::Partition {
                kind: Some(kind), ..
            } => (kind.name().to_string(), kind.is_data_only()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("one-way-all-in".to_string(), false),
            ("one-way-all-out".to_string(), false),
            ("one-way-data-out".to_string(), true),
            ("one-way-data-in".to_string(), true),
        ]
    );
}
