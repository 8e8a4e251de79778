//! Node configuration: a TOML file (`--config FILE`) and/or command-line
//! flags (`raw`), merged (flags win) and validated (`merge`) into a
//! [`NodeConfig`] (`model`).
//!
//! Every error names the offending field; errors found in a TOML file also
//! carry `line:column` (`error`). Node and cluster names become numeric ids
//! through 64-bit FNV-1a ([`name_to_id`]); two names that hash to the same id
//! are rejected at load time.
use std::path::{Path, PathBuf};

mod error;
mod merge;
mod model;
mod raw;
mod secrets;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use model::{
    ClientToken, Limits, NodeConfig, PeerConfig, Profile, StartMode, TestClock, Timing,
};
pub use raw::{FileConfig, FileLimits, FileTestClock, FileTiming, Flags, parse_file};

/// 64-bit FNV-1a of a name ([`seeded::fnv1a`]). Used for node ids and the
/// cluster id, so every process (and the lab) derives the same id from the
/// same name.
pub fn name_to_id(name: &str) -> u64 {
    seeded::fnv1a(name.as_bytes())
}

/// Reads the file named by `--config` (if any), merges the flags over it
/// and validates the result.
pub fn load(flags: &Flags) -> Result<NodeConfig, ConfigError> {
    match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                file: path.display().to_string(),
                message: error.to_string(),
            })?;
            let file_name = path.display().to_string();
            let file = parse_file(&file_name, &text)?;
            merge::merge(Some((&file_name, &text)), file, flags)
        }
        None => merge::merge(None, FileConfig::default(), flags),
    }
}

/// Like [`load`], but for a TOML text already in memory (tests).
pub fn load_str(file_name: &str, text: &str, flags: &Flags) -> Result<NodeConfig, ConfigError> {
    let file = parse_file(file_name, text)?;
    merge::merge(Some((file_name, text)), file, flags)
}

/// `path` relative to the data directory.
pub fn data_path(config: &NodeConfig, name: &str) -> PathBuf {
    Path::new(&config.data_dir).join(name)
}
