//! Loading a scenario from disk: parse, resolve its topology through
//! netlab's parser, validate names against it. Nothing here touches the
//! kernel.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use netlab::topology::Topology;

use super::scenario::{self, LoadedScenario, NodeCatalog, TopologySource, format_problems};

/// A scenario that could not be loaded; the message lists every problem,
/// one `file:line:column: message` per line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Where `topology = "name"` is looked up: `lab/topologies/<name>.toml` in
/// the scenario's directory or any ancestor (so `lab/scenarios/museum/`
/// works too), or a path when the value ends in `.toml`.
pub fn find_topology(scenario_path: &Path, name: &str) -> Result<PathBuf, String> {
    let base = scenario_path.parent().unwrap_or(Path::new("."));
    if name.ends_with(".toml") {
        let path = base.join(name);
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!("topology file {} does not exist", path.display()))
        };
    }
    let absolute = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let mut searched = Vec::new();
    for dir in absolute.ancestors() {
        for candidate in [
            dir.join("topologies").join(format!("{name}.toml")),
            dir.join("lab/topologies").join(format!("{name}.toml")),
        ] {
            if candidate.exists() {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    let available = searched
        .iter()
        .filter_map(|path| path.parent())
        .find(|dir| dir.is_dir())
        .map(|dir| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let path = entry.path();
                    if path.extension()? != "toml" {
                        return None;
                    }
                    Some(path.file_stem()?.to_string_lossy().into_owned())
                })
                .collect();
            names.sort();
            names.join(", ")
        })
        .unwrap_or_default();
    Err(format!(
        "no topology named {name:?} in lab/topologies (available: {available})"
    ))
}

/// The catalog of a netlab topology: names in order, region → nodes.
pub fn catalog_of(topology: &Topology) -> NodeCatalog {
    let mut regions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in &topology.nodes {
        if let Some(region) = &node.region {
            regions
                .entry(region.clone())
                .or_default()
                .push(node.name.clone());
            let lower = region.to_ascii_lowercase();
            if lower != *region {
                regions.entry(lower).or_default().push(node.name.clone());
            }
        }
    }
    NodeCatalog {
        nodes: topology.node_names(),
        regions,
    }
}

/// Resolves the scenario's topology (named file or inline table).
pub fn resolve_topology(
    source: &TopologySource,
    scenario_path: &Path,
    scenario_name: &str,
) -> Result<Topology, LoadError> {
    match source {
        TopologySource::Named(name) => {
            let path = find_topology(scenario_path, name)
                .map_err(|message| LoadError(format!("{}: {message}", scenario_path.display())))?;
            Topology::load(&path).map_err(|error| LoadError(error.to_string()))
        }
        TopologySource::Inline(table) => {
            let text = toml::to_string(table).map_err(|error| {
                LoadError(format!("{}: [topology]: {error}", scenario_path.display()))
            })?;
            let origin = format!("{} [topology]", scenario_path.display());
            Topology::from_toml_str(&text, &origin, scenario_name).map_err(|error| {
                // Positions refer to the re-rendered table, so keep only the message.
                LoadError(format!("{origin}: {}", error.message))
            })
        }
    }
}

/// Reads, parses, resolves and validates a scenario file.
pub fn load_scenario(path: &Path) -> Result<(LoadedScenario, Topology), LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| LoadError(format!("{}: cannot read: {error}", path.display())))?;
    let parsed =
        scenario::parse(&text, path).map_err(|problems| LoadError(format_problems(&problems)))?;
    let topology = resolve_topology(&parsed.topology, path, &parsed.name)?;
    let catalog = catalog_of(&topology);
    scenario::validate(&parsed, &catalog, &text, path)
        .map_err(|problems| LoadError(format_problems(&problems)))?;
    Ok((
        LoadedScenario {
            path: path.to_path_buf(),
            text,
            scenario: parsed,
            catalog,
        },
        topology,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::scenario::{ExpectedVerdict, Mode};

    fn scenarios_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios")
    }

    fn toml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_library_scenario_loads_and_expects_valid() {
        let files = toml_files(&scenarios_dir());
        assert!(
            files.len() >= 20,
            "library has only {} scenarios",
            files.len()
        );
        for path in files {
            let (loaded, _) = load_scenario(&path).unwrap_or_else(|e| panic!("{e}"));
            let expect = loaded.scenario.expectation().unwrap_or_else(|| {
                panic!(
                    "{}: library scenarios state their expectation",
                    path.display()
                )
            });
            assert_eq!(expect.verdict, ExpectedVerdict::Valid, "{}", path.display());
            assert_eq!(loaded.scenario.nodes.mode, Mode::Safe, "{}", path.display());
        }
    }

    #[test]
    fn default_scenario_is_the_seed_story() {
        let (loaded, topology) =
            load_scenario(&scenarios_dir().join("us-east-isolated.toml")).unwrap();
        assert_eq!(topology.name, "wan-3dc");
        assert_eq!(loaded.catalog.nodes, vec!["us-east", "us-west", "eu"]);
        assert!(
            !topology.shapes.is_empty(),
            "WAN delays are part of the story"
        );
    }

    #[test]
    fn every_museum_piece_expects_invalid_and_has_a_safe_twin() {
        let museum = scenarios_dir().join("museum");
        let files = toml_files(&museum);
        let mut modes = Vec::new();
        for path in files {
            let (loaded, _) = load_scenario(&path).unwrap_or_else(|e| panic!("{e}"));
            let scenario = &loaded.scenario;
            let expect = scenario
                .expectation()
                .expect("museum pieces state expectations");
            assert_eq!(
                expect.verdict,
                ExpectedVerdict::Invalid,
                "{}",
                path.display()
            );
            assert!(
                !expect.broken.is_empty(),
                "{}: name the broken check",
                path.display()
            );
            for check in &expect.broken {
                assert!(
                    checker_names().contains(&check.as_str()),
                    "{}: unknown check {check:?}",
                    path.display()
                );
            }
            assert_ne!(scenario.nodes.mode, Mode::Safe, "{}", path.display());
            modes.push(scenario.nodes.mode);
            let twin_path = museum.join(expect.safe_twin.as_ref().expect("safe twin"));
            let (twin, _) = load_scenario(&twin_path).unwrap_or_else(|e| panic!("{e}"));
            let twin = &twin.scenario;
            assert_eq!(twin.nodes.mode, Mode::Safe);
            let describe = |s: &scenario::Scenario| -> Vec<String> {
                s.timeline
                    .iter()
                    .map(|step| step.get_ref().describe())
                    .collect()
            };
            assert_eq!(describe(twin), describe(scenario), "{}", path.display());
            assert_eq!(twin.seed, scenario.seed, "{}", path.display());
            assert_eq!(twin.duration, scenario.duration, "{}", path.display());
        }
        modes.sort_by_key(|mode| mode.name());
        assert_eq!(
            modes,
            vec![
                Mode::NoFencing,
                Mode::OneWayQuorum,
                Mode::TimeoutFailover,
                Mode::UnenforcedQuorum
            ]
        );
    }

    fn checker_names() -> Vec<&'static str> {
        super::super::judge::CHECK_NAMES.to_vec()
    }

    #[test]
    fn unknown_topology_lists_the_available_ones() {
        let error = find_topology(&scenarios_dir().join("x.toml"), "mesh-9").unwrap_err();
        assert!(error.contains("mesh-3"), "{error}");
    }

    #[test]
    fn inline_topology_errors_are_reported() {
        let dir = std::env::temp_dir().join(format!("sl-scenario-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "duration = \"5s\"\n[topology]\nnode = [{ name = \"n1\" }, { name = \"n1\" }]\n[workload]\nclients = 1\n",
        )
        .unwrap();
        let error = load_scenario(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(error.contains("duplicate node name"), "{error}");
    }
}
