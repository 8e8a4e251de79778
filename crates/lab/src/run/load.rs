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

/// Where a scenario's topology was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyFile {
    /// A file on disk.
    Path(PathBuf),
    /// One compiled into `splitlab` ([`crate::builtin::TOPOLOGIES`]).
    Builtin(crate::builtin::BuiltinFile),
}

impl TopologyFile {
    /// Reads and parses the topology.
    pub fn load(&self) -> Result<Topology, netlab::topology::TopologyError> {
        match self {
            TopologyFile::Path(path) => Topology::load(path),
            TopologyFile::Builtin(file) => Topology::from_toml_str(
                file.text,
                &format!("(built-in topology {})", file.name),
                file.name,
            ),
        }
    }
}

/// Where `topology = "name"` is looked up, in order: `topologies/<name>.toml`
/// or `lab/topologies/<name>.toml` in the scenario's directory or any
/// ancestor (so `lab/scenarios/museum/` works too), then `<name>.toml` in
/// `extra_dir` (`--topologies DIR`), then the topologies built into the
/// binary. A value ending in `.toml` is a path relative to the scenario.
/// The error lists every place it looked.
pub fn find_topology(
    scenario_path: &Path,
    name: &str,
    extra_dir: Option<&Path>,
) -> Result<TopologyFile, String> {
    let base = scenario_path.parent().unwrap_or(Path::new("."));
    if name.ends_with(".toml") {
        let path = base.join(name);
        return if path.exists() {
            Ok(TopologyFile::Path(path))
        } else {
            Err(format!("topology file {} does not exist", path.display()))
        };
    }
    let absolute = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let mut searched = Vec::new();
    let beside = absolute.ancestors().flat_map(|dir| {
        [
            dir.join("topologies").join(format!("{name}.toml")),
            dir.join("lab/topologies").join(format!("{name}.toml")),
        ]
    });
    let given = extra_dir.map(|dir| dir.join(format!("{name}.toml")));
    for candidate in beside.chain(given) {
        if candidate.exists() {
            return Ok(TopologyFile::Path(candidate));
        }
        searched.push(candidate);
    }
    if let Some(file) = crate::builtin::topology(name) {
        return Ok(TopologyFile::Builtin(file));
    }
    let looked: Vec<String> = searched
        .iter()
        .map(|path| format!("  {}", path.display()))
        .collect();
    Err(format!(
        "no topology named {name:?}; looked in:\n{}\n  --topologies DIR: {}\n  built into splitlab: {}",
        looked.join("\n"),
        extra_dir.map_or_else(
            || "(not given)".to_string(),
            |dir| dir.display().to_string()
        ),
        crate::builtin::topology_names(),
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
    topologies: Option<&Path>,
) -> Result<Topology, LoadError> {
    match source {
        TopologySource::Named(name) => {
            let file = find_topology(scenario_path, name, topologies)
                .map_err(|message| LoadError(format!("{}: {message}", scenario_path.display())))?;
            file.load().map_err(|error| LoadError(error.to_string()))
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

/// Reads, parses, resolves and validates a scenario file (topologies
/// found beside it or built in).
pub fn load_scenario(path: &Path) -> Result<(LoadedScenario, Topology), LoadError> {
    load_scenario_with(path, None)
}

/// [`load_scenario`], also looking for named topologies in `topologies`
/// (`--topologies DIR`) before the built-in ones.
pub fn load_scenario_with(
    path: &Path,
    topologies: Option<&Path>,
) -> Result<(LoadedScenario, Topology), LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| LoadError(format!("{}: cannot read: {error}", path.display())))?;
    load_scenario_text(path, text, topologies)
}

/// Parses, resolves and validates scenario `text` that was read from `path`
/// (or, for the built-in default scenario, stands for it).
pub fn load_scenario_text(
    path: &Path,
    text: String,
    topologies: Option<&Path>,
) -> Result<(LoadedScenario, Topology), LoadError> {
    let parsed =
        scenario::parse(&text, path).map_err(|problems| LoadError(format_problems(&problems)))?;
    let topology = resolve_topology(&parsed.topology, path, &parsed.name, topologies)?;
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
            // An incorrect mode, or the safe mode with its peer
            // authentication turned off (the forge piece).
            if scenario.nodes.mode == Mode::Safe {
                assert!(!scenario.nodes.cluster_key, "{}", path.display());
            } else {
                modes.push(scenario.nodes.mode);
            }
            let twin_path = museum.join(expect.safe_twin.as_ref().expect("safe twin"));
            let (twin, _) = load_scenario(&twin_path).unwrap_or_else(|e| panic!("{e}"));
            let twin = &twin.scenario;
            assert_eq!(twin.nodes.mode, Mode::Safe);
            assert!(twin.nodes.cluster_key, "{}", twin_path.display());
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
        let error = find_topology(&scenarios_dir().join("x.toml"), "mesh-9", None).unwrap_err();
        assert!(error.contains("mesh-3"), "{error}");
        assert!(error.contains("lab/topologies/mesh-9.toml"), "{error}");
        assert!(error.contains("built into splitlab"), "{error}");
    }

    #[test]
    fn a_scenario_outside_the_repository_finds_the_built_in_topologies() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let text = std::fs::read_to_string(scenarios_dir().join("cluster-5.toml")).unwrap();
        assert!(
            text.contains("topology = \"mesh-5\""),
            "cluster-5 uses mesh-5"
        );
        let path = dir.join("copied.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = load_scenario(&path);
        let own = dir.join("topologies");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(
            own.join("mesh-5.toml"),
            "name = \"mesh-5\"\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n",
        )
        .unwrap();
        let beside = find_topology(&path, "mesh-5", None);
        let (_, topology) = loaded.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(topology.name, "mesh-5");
        assert_eq!(topology.nodes.len(), 5);
        assert_eq!(
            beside.unwrap(),
            TopologyFile::Path(own.join("mesh-5.toml")),
            "a topology next to the scenario wins over the built-in one"
        );
    }

    #[test]
    fn the_topologies_directory_comes_before_the_built_in_ones() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        std::fs::write(dir.join("mesh-3.toml"), "name = \"mesh-3\"\n").unwrap();
        let found = find_topology(Path::new("/nonexistent/s.toml"), "mesh-3", Some(dir));
        assert_eq!(found.unwrap(), TopologyFile::Path(dir.join("mesh-3.toml")));
    }

    #[test]
    fn inline_topology_errors_are_reported() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "duration = \"5s\"\n[topology]\nnode = [{ name = \"n1\" }, { name = \"n1\" }]\n[workload]\nclients = 1\n",
        )
        .unwrap();
        let error = load_scenario(&path).unwrap_err().to_string();
        assert!(error.contains("duplicate node name"), "{error}");
    }
}
