//! Checking a parsed scenario against its topology: every node and region
//! name exists, settings are in range, every step starts inside the workload
//! and partitions have enough nodes. Every problem is reported, located.
use std::collections::BTreeSet;
use std::path::Path;

use toml::Spanned;

use super::model::{
    ExpectedVerdict, NodeCatalog, Placement, Scenario, ScenarioError, Workload, line_column,
};
use super::step::{PartitionKind, Role, Step, StepFault, Targets};
use crate::run::duration::Dur;

/// Collects every validation problem instead of stopping at the first.
struct Problems<'a> {
    text: &'a str,
    file: String,
    list: Vec<ScenarioError>,
}

impl Problems<'_> {
    fn at(&mut self, span: std::ops::Range<usize>, message: String) {
        let (line, column) = line_column(self.text, span.start);
        self.list.push(ScenarioError {
            file: self.file.clone(),
            line,
            column,
            message,
        });
    }
}

/// Checks names and per-fault fields against the topology's node catalog.
/// Returns every problem found.
pub fn validate(
    scenario: &Scenario,
    catalog: &NodeCatalog,
    text: &str,
    file: &Path,
) -> Result<(), Vec<ScenarioError>> {
    let mut problems = Problems {
        text,
        file: file.display().to_string(),
        list: Vec::new(),
    };
    let whole = 0..0;
    let cluster_size = catalog.nodes.len();
    if cluster_size == 0 {
        problems.at(whole.clone(), "the topology has no nodes".into());
    }

    for name in scenario.nodes.overrides.keys() {
        if !catalog.contains(name.get_ref()) {
            problems.at(
                name.span(),
                format!(
                    "nodes.overrides: unknown node {:?}; valid nodes: {}",
                    name.get_ref(),
                    catalog.nodes.join(", ")
                ),
            );
        }
    }
    if let Some(preferred) = &scenario.nodes.prefer_leader
        && !catalog.contains(preferred.get_ref())
    {
        problems.at(
            preferred.span(),
            format!(
                "nodes.prefer_leader: unknown node {:?}; valid nodes: {}",
                preferred.get_ref(),
                catalog.nodes.join(", ")
            ),
        );
    }
    for (name, settings) in &scenario.nodes.overrides {
        if let Some(rate) = settings.clock_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.at(
                name.span(),
                format!("nodes.overrides.{}: clock_rate must be > 0", name.get_ref()),
            );
        }
    }
    let timing = scenario.nodes.timing();
    if timing.election_timeout_min >= timing.election_timeout_max
        || timing.heartbeat >= timing.election_timeout_min
    {
        problems.at(
            whole.clone(),
            format!(
                "nodes: need heartbeat < election_timeout_min < election_timeout_max (got {}, {}, {})",
                timing.heartbeat, timing.election_timeout_min, timing.election_timeout_max
            ),
        );
    }

    validate_workload(&scenario.workload, catalog, &mut problems);
    if scenario.duration == Dur::ZERO {
        problems.at(whole.clone(), "duration must be > 0".into());
    }

    for step in &scenario.timeline {
        validate_step(step, scenario, catalog, &mut problems);
    }
    validate_check_names(scenario, &mut problems);

    if problems.list.is_empty() {
        Ok(())
    } else {
        Err(problems.list)
    }
}

/// `checks.skip` and `expect.broken` name real checks; an invalid
/// expectation names the checks it expects broken, a valid one none.
fn validate_check_names(scenario: &Scenario, problems: &mut Problems<'_>) {
    let known = crate::run::judge::CHECK_NAMES;
    let unknown = |name: &str| format!("unknown check {name:?}; checks: {}", known.join(", "));
    for name in &scenario.checks.skip {
        if !known.contains(&name.get_ref().as_str()) {
            problems.at(
                name.span(),
                format!("checks.skip: {}", unknown(name.get_ref())),
            );
        }
    }
    let Some(spanned) = &scenario.expect else {
        return;
    };
    let expect = spanned.get_ref();
    for name in &expect.broken {
        if !known.contains(&name.as_str()) {
            problems.at(spanned.span(), format!("expect.broken: {}", unknown(name)));
        }
        if scenario.checks.skip.iter().any(|s| s.get_ref() == name) {
            problems.at(
                spanned.span(),
                format!("expect.broken: {name:?} is also in checks.skip, so it can never fail"),
            );
        }
    }
    match expect.verdict {
        ExpectedVerdict::Valid if !expect.broken.is_empty() => problems.at(
            spanned.span(),
            "expect: `broken` only makes sense with verdict = \"invalid\"".into(),
        ),
        ExpectedVerdict::Invalid if expect.broken.is_empty() => problems.at(
            spanned.span(),
            format!(
                "expect: verdict = \"invalid\" must name the checks it expects broken, e.g. broken = [\"{}\"]",
                checker::checks::minority_never_acknowledges::NAME
            ),
        ),
        _ => {}
    }
}

fn validate_workload(workload: &Workload, catalog: &NodeCatalog, problems: &mut Problems<'_>) {
    let whole = 0..0;
    if workload.keys == 0 {
        problems.at(whole.clone(), "workload.keys must be >= 1".into());
    }
    let mix = workload.mix;
    if mix.write + mix.read + mix.cas + mix.append == 0 {
        problems.at(whole.clone(), "workload.mix: all weights are zero".into());
    }
    if let Some(rate) = workload.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        problems.at(whole.clone(), "workload.rate must be > 0 ops/s".into());
    }
    if workload.timeout == Dur::ZERO {
        problems.at(whole.clone(), "workload.timeout must be > 0".into());
    }
    match &workload.placement {
        Placement::Spread => {}
        Placement::Named(name) => {
            if name != "spread" {
                problems.at(
                    whole,
                    format!("workload.placement: {name:?} is not \"spread\" or a table of node/region = count"),
                );
            }
        }
        Placement::Table(table) => {
            let placed: u32 = table.values().sum();
            for name in table.keys() {
                if catalog.resolve_place(name.get_ref()).is_none() {
                    problems.at(
                        name.span(),
                        format!(
                            "workload.placement: unknown node or region {:?}; valid names: {}",
                            name.get_ref(),
                            catalog.valid_names()
                        ),
                    );
                }
            }
            if placed != workload.clients {
                problems.at(
                    whole,
                    format!(
                        "workload.placement places {placed} clients but workload.clients = {}",
                        workload.clients
                    ),
                );
            }
        }
    }
}

fn check_nodes(
    targets: &Spanned<Targets>,
    field: &str,
    catalog: &NodeCatalog,
    problems: &mut Problems<'_>,
) {
    if let Targets::Nodes(names) = targets.get_ref() {
        if names.is_empty() {
            problems.at(targets.span(), format!("{field}: empty node list"));
        }
        let unknown: Vec<&String> = names.iter().filter(|n| !catalog.contains(n)).collect();
        if !unknown.is_empty() {
            let roles: Vec<&str> = Role::ALL.iter().map(|role| role.name()).collect();
            problems.at(
                targets.span(),
                format!(
                    "{field}: unknown node(s) {unknown:?}; valid nodes: {}; roles: {}",
                    catalog.nodes.join(", "),
                    roles.join(", ")
                ),
            );
        }
    }
}

fn validate_step(
    spanned: &Spanned<Step>,
    scenario: &Scenario,
    catalog: &NodeCatalog,
    problems: &mut Problems<'_>,
) {
    let step = spanned.get_ref();
    let span = spanned.span();
    if step.at >= scenario.duration {
        problems.at(
            span.clone(),
            format!(
                "timeline: step at {} starts after the workload ends (duration {})",
                step.at, scenario.duration
            ),
        );
    }
    if let StepFault::Disk { duration, .. } | StepFault::Forge { duration, .. } = &step.fault
        && step.at.as_nanos() + duration.as_nanos() > scenario.duration.as_nanos()
    {
        problems.at(
            span.clone(),
            format!(
                "timeline: a {:?} step must end before the workload does (at {} + for {} > \
                 duration {}): its node is restarted and measured at the end",
                step.kind().name(),
                step.at,
                duration,
                scenario.duration
            ),
        );
    }
    if let Some(targets) = step.targets() {
        check_nodes(targets, "targets", catalog, problems);
    }
    if let Some(peers) = step.peers() {
        check_nodes(peers, "peers", catalog, problems);
    }
    let StepFault::Partition {
        kind, components, ..
    } = &step.fault
    else {
        return;
    };
    if let Some(components) = components {
        let mut seen = BTreeSet::new();
        for name in components.get_ref().iter().flatten() {
            if !catalog.contains(name) {
                problems.at(
                    components.span(),
                    format!(
                        "components: unknown node {name:?}; valid nodes: {}",
                        catalog.nodes.join(", ")
                    ),
                );
            } else if !seen.insert(name.clone()) {
                problems.at(
                    components.span(),
                    format!("components: node {name:?} is in two components"),
                );
            }
        }
    }
    let kind = kind.unwrap_or_default();
    if matches!(kind, PartitionKind::Bridge | PartitionKind::MajoritiesRing)
        && catalog.nodes.len() < 3
    {
        problems.at(
            span,
            format!("timeline: grudge {:?} needs >= 3 nodes", kind.name()),
        );
    }
}
