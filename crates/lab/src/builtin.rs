//! The topologies and the default scenario compiled into `splitlab`, so a
//! scenario written anywhere (or an installed binary with no repository
//! beside it) can still say `topology = "mesh-5"`.

/// A file compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinFile {
    /// The name a scenario or command line uses (`"mesh-5"`).
    pub name: &'static str,
    /// The file's text, as in `lab/topologies/` or `lab/scenarios/`.
    pub text: &'static str,
}

/// The topology `lab/topologies/NAME.toml`, under its name.
macro_rules! topology_file {
    ($name:literal) => {
        BuiltinFile {
            name: $name,
            text: include_str!(concat!("../../../lab/topologies/", $name, ".toml")),
        }
    };
}

/// Every topology in `lab/topologies/`, by name.
pub const TOPOLOGIES: [BuiltinFile; 4] = [
    topology_file!("mesh-3"),
    topology_file!("mesh-5"),
    topology_file!("mesh-7"),
    topology_file!("wan-3dc"),
];

/// The scenario `splitlab run` runs when given none: the motivating story.
pub const DEFAULT_SCENARIO: BuiltinFile = BuiltinFile {
    name: "us-east-isolated",
    text: include_str!("../../../lab/scenarios/us-east-isolated.toml"),
};

/// The built-in topology called `name`, if there is one.
pub fn topology(name: &str) -> Option<BuiltinFile> {
    TOPOLOGIES.into_iter().find(|file| file.name == name)
}

/// The names of the built-in topologies, comma-separated.
pub fn topology_names() -> String {
    TOPOLOGIES.map(|file| file.name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topology_file_is_built_in_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/topologies");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                (path.extension()? == "toml")
                    .then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = TOPOLOGIES.iter().map(|file| file.name).collect();
        assert_eq!(on_disk, built_in, "add new topology files to TOPOLOGIES");
        for file in TOPOLOGIES {
            let topology = netlab::Topology::from_toml_str(file.text, file.name, file.name)
                .unwrap_or_else(|e| panic!("{}: {e}", file.name));
            assert_eq!(topology.name, file.name);
        }
    }
}
