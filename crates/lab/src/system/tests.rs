//! Descriptions parse, bad ones point at file:line:column, a renamed copy
//! of etcd's works without Rust changes, and templates render.
use std::net::IpAddr;

use super::*;
use crate::run::scenario;

const ETCD: &str = include_str!("../../../../lab/systems/etcd.toml");

fn member() -> MemberContext {
    let addr = |n: u8| -> IpAddr { format!("10.0.0.{n}").parse().unwrap() };
    MemberContext {
        name: "n2".into(),
        cluster: "demo".into(),
        data_dir: "/tmp/n2".into(),
        heartbeat_ms: 50,
        election_timeout_ms: (250, 500),
        members: vec![("n1".into(), addr(1)), ("n2".into(), addr(2))],
    }
}

/// Edits `description` once per case (`from` → `to`) and checks that the
/// edited text is refused with an error starting with `start` and
/// containing `fragment`.
pub(super) fn assert_refused(description: &str, file: &str, cases: &[(&str, &str, &str, &str)]) {
    for &(from, to, start, fragment) in cases {
        assert!(description.contains(from), "{from:?} is not in {file}");
        let edited = description.replace(from, to);
        let error = parse_description(&edited, file).unwrap_err();
        assert!(
            error.starts_with(start) && error.contains(fragment),
            "{from:?} -> {to:?}: {error}"
        );
    }
}

fn loaded(dir: &std::path::Path, text: &str) -> scenario::LoadedScenario {
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    let parsed = scenario::parse(text, &path).unwrap();
    scenario::LoadedScenario {
        path,
        text: text.into(),
        scenario: parsed,
        catalog: scenario::NodeCatalog::new(vec!["n1".into(), "n2".into(), "n3".into()]),
    }
}

#[test]
fn builtin_descriptions_parse() {
    for file in BUILTIN_SYSTEMS {
        let description = parse_description(file.text, file.name).unwrap();
        assert_eq!(description.name, file.name);
    }
}

#[test]
fn etcd_command_renders_members_peers_and_options() {
    let description = parse_description(ETCD, "etcd.toml").unwrap();
    let system = System {
        options: [
            ("pre-vote", "true"),
            ("log-level", "warn"),
            ("reads", "linearizable"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        description,
        file: "etcd.toml".into(),
        text: ETCD.into(),
    };
    let args = system.member_args(&member()).unwrap();
    assert!(args.contains(&"--name=n2".to_string()), "{args:?}");
    assert!(args.contains(&"--listen-client-urls=http://10.0.0.2:2379".to_string()));
    assert!(args.contains(
        &"--initial-cluster=n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380".to_string()
    ));
    assert!(args.contains(&"--election-timeout=250".to_string()));
    assert!(args.contains(&"--pre-vote=true".to_string()));
    assert_eq!(system.protocol().name(), "etcd-v3-json");
    assert!(system.observed());
    assert!(system.not_applicable().contains_key("lease_exclusivity"));
}

#[test]
fn unknown_fields_protocols_and_placeholders_point_at_the_file() {
    assert_refused(
        ETCD,
        "x.toml",
        &[
            ("leadership = ", "leadershp = ", "x.toml:", "leadershp"),
            (
                "\"etcd-v3-json\"",
                "\"grpc\"",
                "x.toml:7:12: unknown protocol",
                "",
            ),
            (
                "{data_dir}",
                "{datadir}",
                "",
                "unknown placeholder {datadir}",
            ),
        ],
    );
    // Check names are the lab's: a typo is caught when a scenario resolves it.
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("systems")).unwrap();
    let typo = ETCD.replace("log_agreement =", "log_agreemnt =");
    std::fs::write(dir.join("systems/typo.toml"), typo).unwrap();
    let text = "topology = \"mesh-3\"\nduration = \"5s\"\n[nodes]\nsystem = \"typo\"\n\
                [workload]\nclients = 1\n";
    let error = resolve(&loaded(dir, text), None).unwrap_err().0;
    assert!(
        error.contains("typo.toml:") && error.contains("unknown check \"log_agreemnt\""),
        "{error}"
    );
}

#[test]
fn a_renamed_copy_of_etcd_is_a_new_system_without_rust_changes() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let systems = dir.join("systems");
    std::fs::create_dir_all(&systems).unwrap();
    std::fs::write(
        systems.join("my-raft-store.toml"),
        ETCD.replace("name = \"etcd\"", "name = \"my-raft-store\""),
    )
    .unwrap();
    let text = "topology = \"mesh-3\"\nduration = \"5s\"\n[nodes]\nsystem = \"my-raft-store\"\n\
                [nodes.options]\npre-vote = true\n[workload]\nclients = 1\n";
    let system = resolve(&loaded(dir, text), None).unwrap();
    assert_eq!(system.name(), "my-raft-store");
    assert_eq!(system.options["pre-vote"], "true");
    assert!(system.file.ends_with("my-raft-store.toml"));
    assert_eq!(system.protocol().name(), "etcd-v3-json");
}

#[test]
fn unknown_systems_and_options_are_errors_with_positions() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let unknown = "topology = \"mesh-3\"\nduration = \"5s\"\n[nodes]\nsystem = \"zookeepr\"\n\
                   [workload]\nclients = 1\n";
    let error = resolve(&loaded(dir, unknown), None).unwrap_err().0;
    assert!(
        error.contains("s.toml:4:10: unknown system \"zookeepr\""),
        "{error}"
    );
    let option = "topology = \"mesh-3\"\nduration = \"5s\"\n[nodes]\nsystem = \"etcd\"\n\
                  [nodes.options]\nprevote = true\n[workload]\nclients = 1\n";
    let error = resolve(&loaded(dir, option), None).unwrap_err().0;
    assert!(
        error.contains("s.toml:6:1: system etcd has no option \"prevote\""),
        "{error}"
    );
    let value = option.replace("prevote = true", "pre-vote = \"maybe\"");
    let error = resolve(&loaded(dir, &value), None).unwrap_err().0;
    assert!(
        error.contains("s.toml:6:12: option pre-vote = \"maybe\""),
        "{error}"
    );
    let mode = unknown.replace("zookeepr\"", "etcd\"\nmode = \"no-fencing\"");
    let error = resolve(&loaded(dir, &mode), None).unwrap_err().0;
    assert!(
        error.contains("mode and overrides are splitnode settings"),
        "{error}"
    );
    let default = "topology = \"mesh-3\"\nduration = \"5s\"\n[workload]\nclients = 1\n";
    assert!(resolve(&loaded(dir, default), None).unwrap().is_splitnode());
    let cli = resolve(&loaded(dir, default), Some("nope")).unwrap_err().0;
    assert!(cli.starts_with("--system nope: unknown system"), "{cli}");
}

/// Loads every scenario in `lab/scenarios/<folder>`, checks each resolves
/// to `system` and states its expectation; returns how many there were.
pub(super) fn every_scenario_resolves_to(folder: &str, system: &str) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../lab/scenarios")
        .join(folder);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let (loaded, _) = crate::run::load::load_scenario_with(&path, None)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let resolved = resolve(&loaded, None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(resolved.name(), system, "{}", path.display());
            assert!(
                loaded.scenario.expectation().is_some(),
                "{}",
                path.display()
            );
            seen += 1;
        }
    }
    seen
}

#[test]
fn every_etcd_scenario_loads_and_resolves_its_system() {
    let seen = every_scenario_resolves_to("etcd", "etcd");
    assert!(seen >= 4, "only {seen} etcd scenarios");
}
