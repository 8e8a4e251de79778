//! Systems as data: a description file (`lab/systems/<name>.toml`) says how
//! to start one member of a system (a command template), which client
//! protocol it speaks and where its leadership comes from. The lab and the
//! benches start every system through these descriptions (one launcher).
mod command;
mod member;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::etcd::ReadConsistency;
use crate::protocol::Protocol;

pub use command::{MEMBER_PLACEHOLDERS, MemberContext, PEER_PLACEHOLDERS};
pub use member::CompanionCommand;
pub use model::{
    BinarySearch, CommandTemplate, Companion, FileTemplate, Launcher, Leadership, OptionSpec,
    Ports, SystemDescription,
};

/// A description compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinSystem {
    /// The name scenarios use.
    pub name: &'static str,
    /// The file's text, as in `lab/systems/`.
    pub text: &'static str,
}

/// The descriptions in `lab/systems/`, compiled in.
pub const BUILTIN_SYSTEMS: [BuiltinSystem; 3] = [
    BuiltinSystem {
        name: "splitnode",
        text: include_str!("../../../../lab/systems/splitnode.toml"),
    },
    BuiltinSystem {
        name: "etcd",
        text: include_str!("../../../../lab/systems/etcd.toml"),
    },
    BuiltinSystem {
        name: "redis",
        text: include_str!("../../../../lab/systems/redis.toml"),
    },
];

/// Client-side option kinds (`client = "..."` in an option).
const CLIENT_SETTINGS: [&str; 1] = ["reads"];

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

pub(crate) fn at(file: &str, text: &str, offset: usize, message: impl std::fmt::Display) -> String {
    let (line, column) = line_column(text, offset);
    format!("{file}:{line}:{column}: {message}")
}

/// Parses and checks a description; errors are `file:line:column: message`.
///
/// # Errors
/// TOML or schema errors, an unknown protocol, placeholder, check name or
/// client setting, a default outside its values, a template launcher
/// without `[binary]`, `[ports]` or `[command]`.
pub fn parse_description(text: &str, file: &str) -> Result<SystemDescription, String> {
    let description: SystemDescription = toml::from_str(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        at(file, text, offset, error.message())
    })?;
    let mut problems = Vec::new();
    let protocol = &description.protocol;
    if Protocol::from_name(protocol.get_ref()).is_none() {
        problems.push(at(
            file,
            text,
            protocol.span().start,
            format!(
                "unknown protocol \"{}\" (supported: {})",
                protocol.get_ref(),
                Protocol::NAMES.join(", ")
            ),
        ));
    }
    let mut members = command::sample_values(&MEMBER_PLACEHOLDERS);
    for name in description.options.keys() {
        members.insert(command::option_placeholder(name), "x".into());
    }
    for (name, option) in &description.options {
        let default = &option.default;
        if !option.values.is_empty() && !option.values.contains(default.get_ref()) {
            problems.push(at(
                file,
                text,
                default.span().start,
                format!(
                    "option {name}: default \"{}\" is not one of its values",
                    default.get_ref()
                ),
            ));
        }
        if let Some(client) = &option.client
            && !CLIENT_SETTINGS.contains(&client.get_ref().as_str())
        {
            problems.push(at(
                file,
                text,
                client.span().start,
                format!(
                    "unknown client setting \"{}\" (known: reads)",
                    client.get_ref()
                ),
            ));
        }
        let mut with_value = members.clone();
        with_value.insert("value".into(), "x".into());
        for arg in &option.args {
            if let Err(error) = command::render(arg, &with_value) {
                problems.push(format!("{file}: option {name}: {error}"));
            }
        }
    }
    if description.launcher == Launcher::Template {
        match &description.command {
            None => problems.push(format!(
                "{file}: a template launcher needs a [command] table"
            )),
            Some(template) => {
                let args = (template.args.iter())
                    .chain(&template.seed_args)
                    .chain(&template.join_args);
                for arg in args {
                    if let Err(error) = command::render(arg.get_ref(), &members) {
                        problems.push(at(file, text, arg.span().start, error));
                    }
                }
                if let Some(peer) = &template.peer
                    && let Err(error) =
                        command::render(peer.get_ref(), &command::sample_values(&PEER_PLACEHOLDERS))
                {
                    problems.push(at(file, text, peer.span().start, error));
                }
            }
        }
        if description.binary.is_none() {
            problems.push(format!(
                "{file}: a template launcher needs a [binary] table"
            ));
        }
        if description.ports.is_none() {
            problems.push(format!("{file}: a template launcher needs a [ports] table"));
        }
    }
    problems.extend(member::check(&description, file, text, &members));
    if let Some(protocol) = Protocol::from_name(protocol.get_ref())
        && protocol.discovers_primary()
        && description
            .ports
            .and_then(|ports| ports.discovery)
            .is_none()
    {
        problems.push(at(
            file,
            text,
            description.protocol.span().start,
            format!(
                "protocol {} asks a discovery service for the primary: [ports] needs discovery",
                protocol.name()
            ),
        ));
    }
    if problems.is_empty() {
        Ok(description)
    } else {
        Err(problems.join("\n"))
    }
}

/// Where `system = "name"` is looked up, in order: `systems/<name>.toml` or
/// `lab/systems/<name>.toml` beside `base` or in any ancestor, then the
/// descriptions built into the binary. A name ending in `.toml` is a path
/// relative to `base`. Returns `(file label, text)`.
///
/// # Errors
/// Nothing found; the message lists where it looked and the known names.
pub fn find_system(base: &Path, name: &str) -> Result<(String, String), String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|error| format!("{}: {error}", path.display()))
    };
    if name.ends_with(".toml") {
        return read(&base.join(name));
    }
    let absolute = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    for dir in absolute.ancestors() {
        for candidate in [dir.join("systems"), dir.join("lab/systems")] {
            let path = candidate.join(format!("{name}.toml"));
            if path.is_file() {
                return read(&path);
            }
        }
    }
    BUILTIN_SYSTEMS
        .iter()
        .find(|file| file.name == name)
        .map(|file| (format!("(built-in system {name})"), file.text.to_string()))
        .ok_or_else(|| {
            let known: Vec<&str> = BUILTIN_SYSTEMS.iter().map(|file| file.name).collect();
            format!(
                "unknown system \"{name}\": no systems/{name}.toml or lab/systems/{name}.toml \
                 beside {} or above it, and none built in (built in: {})",
                absolute.display(),
                known.join(", ")
            )
        })
}

/// A description with the scenario's option values in force: what the
/// runner starts and how it talks to the members.
#[derive(Debug, Clone)]
pub struct System {
    /// The parsed description.
    pub description: SystemDescription,
    /// Where it came from (path or "(built-in system x)").
    pub file: String,
    /// The file's text (copied into the run directory).
    pub text: String,
    /// Every option's value (the scenario's, else the default).
    pub options: BTreeMap<String, String>,
}

impl System {
    /// The system's name.
    pub fn name(&self) -> &str {
        &self.description.name
    }

    /// A description with every option at its default.
    ///
    /// # Errors
    /// See [`parse_description`].
    pub fn with_defaults(text: &str, file: &str) -> Result<System, String> {
        let description = parse_description(text, file)?;
        let options = (description.options.iter())
            .map(|(name, spec)| (name.clone(), spec.default.get_ref().clone()))
            .collect();
        Ok(System {
            description,
            file: file.to_string(),
            text: text.to_string(),
            options,
        })
    }

    /// The built-in description called `name`, every option at its default.
    pub fn builtin(name: &str) -> Option<System> {
        let file = BUILTIN_SYSTEMS.iter().find(|file| file.name == name)?;
        System::with_defaults(file.text, &format!("(built-in system {name})")).ok()
    }

    /// Sets an option, checked against its values.
    ///
    /// # Errors
    /// An unknown option or a value outside its values.
    pub fn set_option(&mut self, name: &str, value: &str) -> Result<(), String> {
        let spec = (self.description.options.get(name))
            .ok_or_else(|| format!("system {} has no option \"{name}\"", self.name()))?;
        if !spec.values.is_empty() && !spec.values.iter().any(|v| v == value) {
            return Err(format!(
                "option {name} = \"{value}\": expected one of {}",
                spec.values.join(", ")
            ));
        }
        self.options.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// The client port (template launcher).
    pub fn client_port(&self) -> Option<u16> {
        self.description.ports.map(|ports| ports.client)
    }

    /// The client protocol, with client-side options applied.
    pub fn protocol(&self) -> Protocol {
        let protocol = Protocol::from_name(self.description.protocol.get_ref())
            .expect("checked when the description was parsed");
        match protocol {
            Protocol::RedisSentinel { .. } => Protocol::RedisSentinel {
                discovery_port: (self.description.ports)
                    .and_then(|ports| ports.discovery)
                    .expect("checked when the description was parsed"),
            },
            Protocol::EtcdV3 { .. } => Protocol::EtcdV3 {
                reads: if self.client_setting("reads") == Some("serializable") {
                    ReadConsistency::Serializable
                } else {
                    ReadConsistency::Linearizable
                },
            },
            other => other,
        }
    }

    fn client_setting(&self, setting: &str) -> Option<&str> {
        self.description
            .options
            .iter()
            .find(|(_, spec)| spec.client.as_ref().map(|c| c.get_ref().as_str()) == Some(setting))
            .and_then(|(name, _)| self.options.get(name))
            .map(String::as_str)
    }

    /// Whether the lab observes leadership (else the nodes log it).
    pub fn observed(&self) -> bool {
        self.description.leadership == Leadership::Observed
    }

    /// Whether members start through splitnode's typed command line.
    pub fn is_splitnode(&self) -> bool {
        self.description.launcher == Launcher::Splitnode
    }

    /// Checks this system cannot be judged on, with why.
    pub fn not_applicable(&self) -> BTreeMap<String, String> {
        (self.description.not_applicable.iter())
            .map(|(name, why)| (name.get_ref().clone(), format!("{}: {why}", self.name())))
            .collect()
    }

    /// The member's stdout/stderr file name.
    pub fn log_name(&self) -> String {
        self.description
            .log
            .clone()
            .unwrap_or_else(|| format!("{}.log", self.name()))
    }

    /// The binary: `$env`, else the first candidate that exists.
    ///
    /// # Errors
    /// None found (the message names what was tried).
    pub fn binary(&self) -> Result<PathBuf, String> {
        let search = (self.description.binary.as_ref())
            .ok_or_else(|| format!("{}: no [binary] table", self.file))?;
        member::find_binary(search, self.name())
    }

    /// The argv of one member (template launcher).
    ///
    /// # Errors
    /// No template, or a placeholder without a value.
    pub fn member_args(&self, member: &MemberContext) -> Result<Vec<String>, String> {
        let (Some(template), Some(ports)) = (&self.description.command, self.description.ports)
        else {
            return Err(format!("{}: not a template launcher", self.file));
        };
        let options: Vec<(String, String, Vec<String>)> = (self.option_values().into_iter())
            .zip(self.description.options.values())
            .map(|((name, value), spec)| (name, value, spec.args.clone()))
            .collect();
        command::member_args(template, ports, member, &options)
            .map_err(|error| format!("{}: {error}", self.file))
    }
}

impl System {
    /// Every option with its value in force, in the description's order.
    fn option_values(&self) -> Vec<(String, String)> {
        (self.description.options.iter())
            .map(|(name, spec)| {
                let value = (self.options.get(name)).unwrap_or_else(|| spec.default.get_ref());
                (name.clone(), value.clone())
            })
            .collect()
    }
}
