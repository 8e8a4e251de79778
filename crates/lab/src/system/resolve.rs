//! Resolving the system a scenario asks for (with its `[nodes.options]`)
//! into a [`System`], and what only the lab knows about a member: its
//! client address in a lab and its process spec.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use client::system::{Launcher, MemberContext, System, find_system, parse_description};
use netlab::{Lab, ProcessSpec};

use crate::run::load::LoadError;
use crate::run::scenario::{LoadedScenario, Mode, line_column};

// Every check name, so `[not_applicable]` cannot name one that does not
// exist (a typo would silently judge it).
use crate::run::judge::CHECK_NAMES;

fn at(file: &str, text: &str, offset: usize, message: impl std::fmt::Display) -> String {
    let (line, column) = line_column(text, offset);
    format!("{file}:{line}:{column}: {message}")
}

/// A node's client API address for `system`.
pub fn client_addr(system: &System, lab: &Lab, node: &str) -> Option<SocketAddr> {
    match system.client_port() {
        Some(port) if !system.is_splitnode() => lab
            .node_addr(node)
            .map(|addr| SocketAddr::from((addr, port))),
        _ => lab.client_addr(node),
    }
}

/// The process spec of one member (template launcher), logging into
/// `log_dir`. Writes the member's `[[files]]` into its data directory
/// first.
///
/// # Errors
/// No binary found, a template that does not render, or a file that could
/// not be written.
pub fn member_spec(
    system: &System,
    member: &MemberContext,
    log_dir: &Path,
) -> anyhow::Result<ProcessSpec> {
    for (path, text) in system.member_files(member).map_err(anyhow::Error::msg)? {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    }
    let binary = system.binary().map_err(anyhow::Error::msg)?;
    let args = system.member_args(member).map_err(anyhow::Error::msg)?;
    let mut spec = ProcessSpec::new(binary, args);
    let log = log_dir.join(system.log_name());
    spec.stdout = Some(log.clone());
    spec.stderr = Some(log);
    Ok(spec)
}

/// The process specs of a member's companions (`[[companion]]`), logging
/// into `log_dir`; start them after [`member_spec`] wrote the files.
///
/// # Errors
/// No binary found, or a template that does not render.
pub fn companion_specs(
    system: &System,
    member: &MemberContext,
    log_dir: &Path,
) -> anyhow::Result<Vec<ProcessSpec>> {
    let companions = system.companions(member).map_err(anyhow::Error::msg)?;
    Ok(companions
        .into_iter()
        .map(|companion| {
            let mut spec = ProcessSpec::new(companion.binary, companion.args);
            let log = log_dir.join(&companion.log);
            spec.stdout = Some(log.clone());
            spec.stderr = Some(log);
            spec
        })
        .collect())
}

/// Resolves the system a loaded scenario runs on: `chosen` (`--system`)
/// overrides `[nodes] system`; absent both, splitnode. Options come from
/// `[nodes.options]`.
///
/// # Errors
/// `file:line:column` errors for an unknown system, an unknown option or
/// value, splitnode-only settings on another system, or a broken
/// description.
pub fn resolve(loaded: &LoadedScenario, chosen: Option<&str>) -> Result<System, LoadError> {
    let file = loaded.path.display().to_string();
    let text = &loaded.text;
    let nodes = &loaded.scenario.nodes;
    let base = loaded.path.parent().unwrap_or(Path::new("."));
    let (name, located) = match (chosen, &nodes.system) {
        (Some(name), _) => (name.to_string(), None),
        (None, Some(name)) => (name.get_ref().clone(), Some(name.span().start)),
        (None, None) => ("splitnode".to_string(), None),
    };
    let where_ = |offset: Option<usize>, message: String| match offset {
        Some(offset) => at(&file, text, offset, message),
        None => format!("--system {name}: {message}"),
    };
    let search_base = if chosen.is_some() {
        Path::new(".")
    } else {
        base
    };
    let (system_file, system_text) =
        find_system(search_base, &name).map_err(|e| LoadError(where_(located, e)))?;
    let description = parse_description(&system_text, &system_file).map_err(LoadError)?;
    let mut problems = Vec::new();
    for name in description.not_applicable.keys() {
        if !CHECK_NAMES.contains(&name.get_ref().as_str()) {
            problems.push(at(
                &system_file,
                &system_text,
                name.span().start,
                format!(
                    "unknown check \"{}\" (checks: {})",
                    name.get_ref(),
                    CHECK_NAMES.join(", ")
                ),
            ));
        }
    }
    let mut options: BTreeMap<String, String> = (description.options.iter())
        .map(|(name, spec)| (name.clone(), spec.default.get_ref().clone()))
        .collect();
    for (key, value) in &nodes.options {
        let value_text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match description.options.get(key.get_ref()) {
            None => {
                let known: Vec<&str> = description.options.keys().map(String::as_str).collect();
                problems.push(at(
                    &file,
                    text,
                    key.span().start,
                    format!(
                        "system {} has no option \"{}\" (options: {})",
                        description.name,
                        key.get_ref(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            Some(spec) if !spec.values.is_empty() && !spec.values.contains(&value_text) => {
                problems.push(at(
                    &file,
                    text,
                    value.span().start,
                    format!(
                        "option {} = \"{value_text}\": expected one of {}",
                        key.get_ref(),
                        spec.values.join(", ")
                    ),
                ));
            }
            Some(_) => {
                options.insert(key.get_ref().clone(), value_text);
            }
        }
    }
    if description.launcher != Launcher::Splitnode
        && (nodes.mode != Mode::Safe || !nodes.overrides.is_empty())
    {
        problems.push(where_(
            located,
            format!(
                "[nodes] mode and overrides are splitnode settings; system {} takes options \
                 in [nodes.options]",
                description.name
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(LoadError(problems.join("\n")));
    }
    Ok(System {
        description,
        file: system_file,
        text: system_text,
        options,
    })
}
