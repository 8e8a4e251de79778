//! The description file's model: what `lab/systems/*.toml` may say. Unknown
//! fields are errors (serde `deny_unknown_fields`), reported with
//! `file:line:column` by the parser in `resolve`.
use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One system description file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDescription {
    /// The name scenarios use (`system = "etcd"`).
    pub name: String,
    /// One line for reports.
    #[serde(default)]
    pub description: String,
    /// The client protocol (`client::Protocol::NAMES`).
    pub protocol: Spanned<String>,
    /// Where leadership comes from.
    #[serde(default)]
    pub leadership: Leadership,
    /// How a member is started.
    #[serde(default)]
    pub launcher: Launcher,
    /// The member's stdout/stderr file name in its node directory.
    #[serde(default)]
    pub log: Option<String>,
    /// Where the binary is (template launcher).
    #[serde(default)]
    pub binary: Option<BinarySearch>,
    /// The member's ports (template launcher).
    #[serde(default)]
    pub ports: Option<Ports>,
    /// The command template (template launcher).
    #[serde(default)]
    pub command: Option<CommandTemplate>,
    /// Files written into the member's data directory before it starts
    /// (`[[files]]`: configuration the system reads rather than flags).
    #[serde(default)]
    pub files: Vec<FileTemplate>,
    /// Processes started beside the member's main process, in its
    /// namespace (`[[companion]]`, e.g. a failure detector). Process faults
    /// act on the main process only.
    #[serde(default, rename = "companion")]
    pub companions: Vec<Companion>,
    /// Options a scenario may set in `[nodes.options]`.
    #[serde(default)]
    pub options: BTreeMap<String, OptionSpec>,
    /// Checks that need internals this system does not expose, with why.
    #[serde(default)]
    pub not_applicable: BTreeMap<Spanned<String>, String>,
}

/// Where a system's leadership view comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leadership {
    /// The node writes `events.jsonl` itself (splitnode).
    #[default]
    Native,
    /// The lab polls each member's status and records `observed.jsonl`.
    Observed,
}

/// How members are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launcher {
    /// From `[command]`, `[binary]` and `[ports]` in the file.
    #[default]
    Template,
    /// splitnode's typed command line (modes, profiles, clock hooks).
    Splitnode,
}

/// The binary: `$env` if set, else the first of `search` that exists (a
/// bare name is looked up on `$PATH`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinarySearch {
    /// Environment variable that overrides the search.
    #[serde(default)]
    pub env: Option<String>,
    /// Candidates, in order.
    pub search: Vec<String>,
}

/// A member's listening ports (on its node address).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// Client API port.
    pub client: u16,
    /// Peer (replication) port.
    pub peer: u16,
    /// Where clients ask which member to send writes to (a discovery
    /// service beside each member, e.g. Redis Sentinel); `{discovery_port}`.
    #[serde(default)]
    pub discovery: Option<u16>,
}

/// The command line of one member, with `{placeholders}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandTemplate {
    /// Arguments, each a template.
    pub args: Vec<Spanned<String>>,
    /// One entry of `{peers}`: `{peer_name}`, `{peer_addr}`, `{peer_port}`,
    /// `{peer_client_port}`.
    #[serde(default)]
    pub peer: Option<Spanned<String>>,
    /// Between `{peers}` entries.
    #[serde(default = "default_separator")]
    pub peer_separator: String,
    /// Appended for the seed member only (the first in topology order).
    #[serde(default)]
    pub seed_args: Vec<Spanned<String>>,
    /// Appended for every member but the seed (they join it).
    #[serde(default)]
    pub join_args: Vec<Spanned<String>>,
}

/// A file written into the member's data directory before it starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTemplate {
    /// Its path relative to the data directory (no `..`, not absolute).
    pub path: Spanned<String>,
    /// Its text, a template (member placeholders and `{option:<name>}`).
    pub text: Spanned<String>,
}

/// A process started beside each member's main process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Companion {
    /// What it is (for logs and reports).
    pub name: String,
    /// Where its binary is.
    pub binary: BinarySearch,
    /// Its arguments, each a template.
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    /// Its stdout/stderr file name in the node directory
    /// (default `<name>.log`).
    #[serde(default)]
    pub log: Option<String>,
}

fn default_separator() -> String {
    ",".into()
}

/// One option a scenario may set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// What it changes.
    #[serde(default)]
    pub description: String,
    /// The allowed values (empty: any).
    #[serde(default)]
    pub values: Vec<String>,
    /// The value when the scenario does not set it.
    pub default: Spanned<String>,
    /// Arguments appended to the command (`{value}` substituted).
    #[serde(default)]
    pub args: Vec<String>,
    /// A client-side setting instead (`reads`: linearizable/serializable).
    #[serde(default)]
    pub client: Option<Spanned<String>>,
}
