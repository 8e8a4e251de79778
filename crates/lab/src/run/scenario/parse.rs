//! Reading scenario text: serde for the file (unknown fields and wrong types
//! are errors with line:column), then each flat `[[timeline]]` table is
//! typed into a [`Step`], where the per-fault field rules are enforced.
//!
//! The steps are read flat first because serde's internally tagged enums
//! buffer their input, which loses the positions `toml::Spanned` needs.
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::model::{Placement, Scenario, ScenarioError, line_column};
use super::step::{
    DEFAULT_FSYNC_DELAY_MS, Effect, FaultKind, Links, MAX_FSYNC_DELAY_MS, PartitionKind, Plane,
    Role, Step, StepFault, Targets,
};
use crate::run::duration::Dur;

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlacementVisitor;
        impl<'de> serde::de::Visitor<'de> for PlacementVisitor {
            type Value = Placement;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "\"spread\" or a table of node/region name = client count"
                )
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Placement, E> {
                Ok(Placement::Named(value.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Placement, A::Error> {
                let mut table = BTreeMap::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let count: u32 = map.next_value()?;
                    table.insert(key, count);
                }
                Ok(Placement::Table(table))
            }
        }
        deserializer.deserialize_any(PlacementVisitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TargetsRaw {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match TargetsRaw::deserialize(deserializer)? {
            TargetsRaw::One(name) => match Role::from_name(&name) {
                Some(role) => Targets::Role(role),
                None => Targets::Nodes(vec![name]),
            },
            TargetsRaw::Many(names) => Targets::Nodes(names),
        })
    }
}

/// One `[[timeline]]` table as written: every field any fault takes.
/// [`type_step`] turns it into a [`Step`] or says which fields do not fit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    at: Dur,
    #[serde(rename = "for")]
    duration: Option<Dur>,
    fault: FaultKind,
    targets: Option<Spanned<Targets>>,
    peers: Option<Spanned<Targets>>,
    grudge: Option<PartitionKind>,
    components: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(default)]
    plane: Plane,
    percent: Option<f64>,
    delay: Option<Dur>,
    jitter: Option<Dur>,
    rate: Option<String>,
    period: Option<Dur>,
    #[serde(default)]
    label: String,
}

/// Parses scenario text. Syntax errors, wrong types and unknown fields are
/// reported with line:column (one, as serde stops at the first); then every
/// step whose fields do not fit its fault kind is reported, at the step.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, Vec<ScenarioError>> {
    let located = |span: Range<usize>, message: String| {
        let (line, column) = line_column(text, span.start);
        ScenarioError {
            file: file.display().to_string(),
            line,
            column,
            message,
        }
    };
    let raw: Scenario<RawStep> = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        vec![located(span, error.message().to_string())]
    })?;
    let mut problems = Vec::new();
    let mut timeline = Vec::new();
    for spanned in raw.timeline {
        let span = spanned.span();
        match type_step(spanned.into_inner()) {
            Ok(step) => timeline.push(Spanned::new(span, step)),
            Err(messages) => problems.extend(
                messages
                    .into_iter()
                    .map(|message| located(span.clone(), message)),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let name = if raw.name.is_empty() {
        file.file_stem().map_or_else(
            || "scenario".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        )
    } else {
        raw.name
    };
    Ok(Scenario {
        name,
        description: raw.description,
        seed: raw.seed,
        topology: raw.topology,
        duration: raw.duration,
        quiesce: raw.quiesce,
        nodes: raw.nodes,
        workload: raw.workload,
        timeline,
        checks: raw.checks,
        expect: raw.expect,
    })
}

/// Types one step: the fields its fault kind takes move into the matching
/// [`StepFault`] variant; every field it does not take, and every field it
/// needs but lacks, is one message.
pub(crate) fn type_step(raw: RawStep) -> Result<Step, Vec<String>> {
    let kind = raw.fault;
    let mut problems = Vec::new();
    let mut disallow = |present: bool, field: &str| {
        if present {
            problems.push(format!(
                "timeline: `{field}` does not apply to fault {:?}",
                kind.name()
            ));
        }
    };
    let is_shape = matches!(
        kind,
        FaultKind::Loss
            | FaultKind::Delay
            | FaultKind::Duplicate
            | FaultKind::Corrupt
            | FaultKind::Reorder
            | FaultKind::Rate
    );
    let takes_percent = matches!(
        kind,
        FaultKind::Loss | FaultKind::Duplicate | FaultKind::Corrupt | FaultKind::Reorder
    );
    let is_disk = matches!(
        kind,
        FaultKind::DiskFull | FaultKind::FsyncError | FaultKind::DiskSlow
    );
    let is_process = is_disk
        || matches!(
            kind,
            FaultKind::Kill | FaultKind::Pause | FaultKind::Restart | FaultKind::Forge
        );
    disallow(
        kind != FaultKind::Partition && raw.grudge.is_some(),
        "grudge",
    );
    disallow(
        raw.components.is_some() && raw.grudge != Some(PartitionKind::Components),
        "components (needs grudge = \"components\")",
    );
    disallow(!takes_percent && raw.percent.is_some(), "percent");
    let takes_delay = matches!(kind, FaultKind::Delay | FaultKind::Reorder);
    disallow(
        !takes_delay && kind != FaultKind::DiskSlow && raw.delay.is_some(),
        "delay",
    );
    disallow(!takes_delay && raw.jitter.is_some(), "jitter");
    disallow(kind != FaultKind::Rate && raw.rate.is_some(), "rate");
    disallow(kind != FaultKind::Flap && raw.period.is_some(), "period");
    let network_only = is_process || kind == FaultKind::Heal;
    disallow(network_only && raw.plane != Plane::All, "plane");
    disallow(network_only && raw.peers.is_some(), "peers");
    disallow(
        kind == FaultKind::Heal && (raw.targets.is_some() || raw.duration.is_some()),
        "targets/for",
    );

    let fsync_delay = if kind == FaultKind::DiskSlow {
        let delay = raw
            .delay
            .unwrap_or(Dur::from_millis(DEFAULT_FSYNC_DELAY_MS));
        if delay == Dur::ZERO || delay > Dur::from_millis(MAX_FSYNC_DELAY_MS) {
            problems.push(format!(
                "timeline: disk-slow `delay` must be above 0 and at most {}, got {delay}",
                Dur::from_millis(MAX_FSYNC_DELAY_MS)
            ));
        }
        Some(delay)
    } else {
        None
    };
    let needs_targets = match kind {
        FaultKind::Heal => false,
        FaultKind::Partition => !raw.grudge.unwrap_or_default().targets_optional(),
        _ => true,
    };
    if needs_targets && raw.targets.is_none() {
        problems.push(format!("timeline: fault {:?} needs `targets`", kind.name()));
    }
    let percent = if takes_percent {
        match raw.percent {
            Some(percent) if percent > 0.0 && percent <= 100.0 => Some(percent),
            Some(percent) => {
                problems.push(format!(
                    "timeline: percent must be in (0, 100], got {percent}"
                ));
                None
            }
            None => {
                problems.push(format!("timeline: fault {:?} needs `percent`", kind.name()));
                None
            }
        }
    } else {
        None
    };
    if kind == FaultKind::Delay && raw.delay.is_none() {
        problems.push("timeline: fault \"delay\" needs `delay`".into());
    }
    let rate_bits = match (kind, &raw.rate) {
        (FaultKind::Rate, Some(rate)) => {
            let bits = parse_rate_bits(rate);
            if bits.is_none() {
                problems.push(format!(
                    "timeline: rate {rate:?} is not like \"1mbit\", \"500kbit\" or \"2gbit\""
                ));
            }
            bits
        }
        (FaultKind::Rate, None) => {
            problems.push("timeline: fault \"rate\" needs `rate`".into());
            None
        }
        _ => None,
    };
    let period = raw.period.filter(|period| *period != Dur::ZERO);
    if kind == FaultKind::Flap {
        if period.is_none() {
            problems.push("timeline: fault \"flap\" needs `period` > 0".into());
        }
        if raw.duration.is_none() {
            problems.push("timeline: fault \"flap\" needs `for`".into());
        }
    }
    if kind == FaultKind::Pause && raw.duration.is_none() {
        problems.push("timeline: fault \"pause\" needs `for` (when to SIGCONT)".into());
    }
    if is_disk && raw.duration.is_none() {
        problems.push(format!(
            "timeline: fault {:?} needs `for` (when the disk is healthy again and a node that \
             fail-stopped is restarted)",
            kind.name()
        ));
    }
    if kind == FaultKind::Forge && raw.duration.is_none() {
        problems.push("timeline: fault \"forge\" needs `for` (how long the rogue sends)".into());
    }
    if kind == FaultKind::Restart && raw.duration.is_some() {
        problems.push(
            "timeline: \"restart\" is immediate; use fault = \"kill\" with `for` to restart later"
                .into(),
        );
    }
    if is_shape
        && let Some(Targets::Role(Role::BridgeAroundLeader)) =
            raw.targets.as_ref().map(|t| t.get_ref())
    {
        problems.push("timeline: bridge-around-leader only applies to partitions".into());
    }
    if kind == FaultKind::Partition {
        let partition = raw.grudge.unwrap_or_default();
        if partition == PartitionKind::Components
            && raw
                .components
                .as_ref()
                .is_none_or(|components| components.get_ref().len() < 2)
        {
            problems
                .push("timeline: grudge \"components\" needs `components` with >= 2 groups".into());
        }
        if partition == PartitionKind::Links && raw.peers.is_none() {
            problems.push("timeline: grudge \"links\" needs `peers`".into());
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Every rule above holds, so each kind finds the fields it needs.
    let need = |value, field| required(value, kind, field);
    let RawStep {
        at,
        duration,
        targets,
        peers,
        grudge,
        components,
        plane,
        delay,
        jitter,
        rate,
        label,
        ..
    } = raw;
    let fault = match kind {
        FaultKind::Partition => StepFault::Partition {
            kind: grudge,
            targets,
            peers,
            components,
            plane,
            duration,
        },
        FaultKind::Heal => StepFault::Heal,
        FaultKind::LinkDown => StepFault::LinkDown {
            links: Links {
                targets: need(targets, "targets")?,
                peers,
                plane,
            },
            duration,
        },
        FaultKind::Flap => StepFault::Flap {
            links: Links {
                targets: need(targets, "targets")?,
                peers,
                plane,
            },
            period: required(period, kind, "period")?,
            duration: required(duration, kind, "for")?,
        },
        FaultKind::Kill => StepFault::Kill {
            targets: need(targets, "targets")?,
            duration,
        },
        FaultKind::Pause => StepFault::Pause {
            targets: need(targets, "targets")?,
            duration: required(duration, kind, "for")?,
        },
        FaultKind::Restart => StepFault::Restart {
            targets: need(targets, "targets")?,
        },
        FaultKind::DiskFull | FaultKind::FsyncError | FaultKind::DiskSlow => StepFault::Disk {
            kind,
            targets: need(targets, "targets")?,
            duration: required(duration, kind, "for")?,
            delay: fsync_delay,
        },
        FaultKind::Forge => StepFault::Forge {
            targets: need(targets, "targets")?,
            duration: required(duration, kind, "for")?,
        },
        FaultKind::Loss
        | FaultKind::Duplicate
        | FaultKind::Corrupt
        | FaultKind::Reorder
        | FaultKind::Delay
        | FaultKind::Rate => {
            let effect = match kind {
                FaultKind::Loss => Effect::Loss {
                    percent: required(percent, kind, "percent")?,
                },
                FaultKind::Duplicate => Effect::Duplicate {
                    percent: required(percent, kind, "percent")?,
                },
                FaultKind::Corrupt => Effect::Corrupt {
                    percent: required(percent, kind, "percent")?,
                },
                FaultKind::Reorder => Effect::Reorder {
                    percent: required(percent, kind, "percent")?,
                    delay,
                    jitter,
                },
                FaultKind::Delay => Effect::Delay {
                    delay: required(delay, kind, "delay")?,
                    jitter,
                },
                _ => Effect::Rate {
                    text: required(rate, kind, "rate")?,
                    bits_per_sec: required(rate_bits, kind, "rate")?,
                },
            };
            StepFault::Shape {
                links: Links {
                    targets: need(targets, "targets")?,
                    peers,
                    plane,
                },
                effect,
                duration,
            }
        }
    };
    Ok(Step { at, fault, label })
}

/// A field the checks above guarantee; its absence would be a bug in them,
/// reported like any missing field rather than panicking.
fn required<T>(value: Option<T>, kind: FaultKind, field: &str) -> Result<T, Vec<String>> {
    value.ok_or_else(|| vec![format!("timeline: fault {:?} needs `{field}`", kind.name())])
}

/// Parses `"1mbit"`, `"500kbit"`, `"2gbit"`, `"800bit"` into bits per second.
pub fn parse_rate_bits(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return None,
    };
    let bits = value * scale;
    (bits.is_finite() && bits >= 1.0).then_some(bits as u64)
}
