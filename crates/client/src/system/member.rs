//! What one member consists of besides its main command line: the files
//! written into its data directory (`[[files]]`) and the processes started
//! beside it (`[[companion]]`), and where binaries are found.
use std::path::{Component, Path, PathBuf};

use super::command::{self, Values};
use super::model::{BinarySearch, SystemDescription};
use super::{MemberContext, System, at};

/// A companion process of one member, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionCommand {
    /// What it is (`[[companion]] name`).
    pub name: String,
    /// Its binary.
    pub binary: PathBuf,
    /// Its argv.
    pub args: Vec<String>,
    /// Its stdout/stderr file name in the node directory.
    pub log: String,
}

/// Problems with `[[files]]` and `[[companion]]` templates (`members`: the
/// sample placeholder values, options included).
pub(super) fn check(
    description: &SystemDescription,
    file: &str,
    text: &str,
    members: &Values,
) -> Vec<String> {
    let mut problems = Vec::new();
    for template in &description.files {
        let path = Path::new(template.path.get_ref());
        let escapes = path.is_absolute()
            || (path.components()).any(|part| !matches!(part, Component::Normal(_)));
        if escapes || template.path.get_ref().is_empty() {
            problems.push(at(
                file,
                text,
                template.path.span().start,
                "a file's path must be relative to the data directory, without '..'",
            ));
        }
        if let Err(error) = command::render(template.text.get_ref(), members) {
            problems.push(at(file, text, template.text.span().start, error));
        }
    }
    for companion in &description.companions {
        for arg in &companion.args {
            if let Err(error) = command::render(arg.get_ref(), members) {
                problems.push(at(file, text, arg.span().start, error));
            }
        }
    }
    if !(description.files.is_empty() && description.companions.is_empty())
        && description.ports.is_none()
    {
        problems.push(format!(
            "{file}: [[files]] and [[companion]] need a [ports] table"
        ));
    }
    problems
}

/// `$env` if set, else the first candidate that exists (a bare name is
/// looked up on `$PATH`).
///
/// # Errors
/// None found (the message names what was tried).
pub(super) fn find_binary(search: &BinarySearch, system: &str) -> Result<PathBuf, String> {
    if let Some(var) = &search.env
        && let Some(path) = std::env::var_os(var)
    {
        return Ok(PathBuf::from(path));
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    search
        .search
        .iter()
        .find_map(|candidate| {
            if candidate.contains('/') {
                Some(PathBuf::from(candidate)).filter(|p| p.is_file())
            } else {
                on_path(candidate)
            }
        })
        .ok_or_else(|| {
            format!(
                "{system}: binary not found (tried {}{})",
                search
                    .env
                    .as_ref()
                    .map(|v| format!("${v}, "))
                    .unwrap_or_default(),
                search.search.join(", ")
            )
        })
}

impl System {
    /// The placeholder values of one member.
    fn values(&self, member: &MemberContext) -> Result<Values, String> {
        let ports =
            (self.description.ports).ok_or_else(|| format!("{}: no [ports] table", self.file))?;
        command::member_values(
            self.description.command.as_ref(),
            ports,
            member,
            &self.option_values(),
        )
        .map_err(|error| format!("{}: {error}", self.file))
    }

    /// The member's files (`[[files]]`), rendered: absolute path (inside
    /// its data directory) and text. Write them before starting it.
    ///
    /// # Errors
    /// A template that does not render.
    pub fn member_files(&self, member: &MemberContext) -> Result<Vec<(PathBuf, String)>, String> {
        if self.description.files.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.values(member)?;
        (self.description.files.iter())
            .map(|file| {
                let text = command::render(file.text.get_ref(), &values)
                    .map_err(|error| format!("{}: {error}", self.file))?;
                Ok((member.data_dir.join(file.path.get_ref()), text))
            })
            .collect()
    }

    /// The member's companion processes (`[[companion]]`), rendered.
    ///
    /// # Errors
    /// A binary not found or a template that does not render.
    pub fn companions(&self, member: &MemberContext) -> Result<Vec<CompanionCommand>, String> {
        if self.description.companions.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.values(member)?;
        (self.description.companions.iter())
            .map(|companion| {
                let args = (companion.args.iter())
                    .map(|arg| command::render(arg.get_ref(), &values))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| format!("{}: {error}", self.file))?;
                Ok(CompanionCommand {
                    name: companion.name.clone(),
                    binary: find_binary(&companion.binary, self.name())?,
                    args,
                    log: (companion.log.clone())
                        .unwrap_or_else(|| format!("{}.log", companion.name)),
                })
            })
            .collect()
    }

    /// Where clients ask for the primary (`[ports] discovery`), if any.
    pub fn discovery_port(&self) -> Option<u16> {
        self.description.ports.and_then(|ports| ports.discovery)
    }
}
