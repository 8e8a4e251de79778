//! The fault timeline while the workload runs: the scenario's steps become
//! time-ordered [`TimelineEntry`]s, each handed to the [`Nemesis`] when due,
//! and every step leaves a [`FaultRecord`] (its window) for the judge.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use client::{NodeStatus, mono_ns};
use netlab::NetlabError;

use super::RunSetup;
use super::endgame::LabGuard;
use super::node_faults;
use super::observer::{Observer, term_of};
use crate::run::achieved::live::LiveMeasure;
use crate::run::judge::FaultRecord;
use crate::run::nemesis::{Nemesis, Resolved};
use crate::run::progress::Progress;
use crate::run::scenario::{LoadedScenario, Step, StepFault, Timing};
use crate::run::targets::{ClusterView, TargetError};
use crate::run::workload::Counters;

/// One thing the timeline does at one instant, for step `index`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TimelineEntry {
    /// Apply the step.
    Start(usize),
    /// Lift it (its `for` ran out).
    End(usize),
    /// Flap: take the links down (`true`) or up.
    Flap(usize, bool),
}

impl TimelineEntry {
    fn step(self) -> usize {
        match self {
            TimelineEntry::Start(index)
            | TimelineEntry::End(index)
            | TimelineEntry::Flap(index, _) => index,
        }
    }
}

/// Every entry with its offset from the workload start (ns), in time order.
pub(super) fn schedule(loaded: &LoadedScenario) -> Vec<(u64, TimelineEntry)> {
    let mut entries = Vec::new();
    for (index, step) in loaded.scenario.timeline.iter().enumerate() {
        let step = step.get_ref();
        let start = step.at.as_nanos();
        entries.push((start, TimelineEntry::Start(index)));
        if let Some(duration) = step.duration() {
            let end = start + duration.as_nanos();
            if let StepFault::Flap { period, .. } = step.fault {
                let half = (period.as_nanos() / 2).max(1);
                let mut at = start + half;
                let mut down = false;
                while at < end {
                    entries.push((at, TimelineEntry::Flap(index, down)));
                    down = !down;
                    at += half;
                }
            }
            entries.push((end, TimelineEntry::End(index)));
        }
    }
    // Ends before starts at the same instant, so "isolate L2 while L1 heals"
    // never briefly applies both.
    entries.sort_by_key(|(at, entry)| (*at, !matches!(entry, TimelineEntry::End(_))));
    entries
}

/// What the timeline leaves behind: the fault windows, the reason the run
/// was cut short by a fault this machine cannot apply (if it was), and the
/// nemesis with whatever is still in force, for the final heal.
pub(super) struct TimelineOutcome {
    pub(super) records: Vec<FaultRecord>,
    pub(super) skipped: Option<String>,
    pub(super) nemesis: Nemesis,
}

/// The workload's time span, in monotonic ns.
pub(super) struct Window {
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
}

/// Resolves `step`'s targets against the cluster as seen now. A role that
/// needs a leader, asked while none answers as leader (mid-election, or a
/// leader too busy to answer its 300 ms status poll on a loaded machine),
/// is asked again for up to two maximum election timeouts plus a second
/// before the step fails: the fault fires late rather than not at all, and
/// its record carries the real start time. No seeded draw happens before a
/// leader is known, so the retries do not change which followers are picked.
fn resolve_when_led(
    observer: &Observer,
    nemesis: &mut Nemesis,
    step: &Step,
    timing: &Timing,
) -> Result<(ClusterView, Vec<NodeStatus>, Resolved), TargetError> {
    let patience = 2 * timing.election_timeout_max.as_nanos() + 1_000_000_000;
    let deadline = mono_ns() + patience;
    loop {
        let (view, statuses) = observer.view();
        match nemesis.resolve(step, &view) {
            Ok(resolved) => return Ok((view, statuses, resolved)),
            Err(TargetError::NoLeader(_)) if mono_ns() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Runs the timeline until the workload ends, updating the progress line.
pub(super) fn run_timeline(
    setup: &RunSetup<'_>,
    guard: &mut LabGuard,
    observer: &Observer,
    window: &Window,
    counters: &Counters,
    progress: &Progress,
    live: &mut LiveMeasure,
) -> anyhow::Result<TimelineOutcome> {
    let scenario = &setup.loaded.scenario;
    let mut nemesis = Nemesis::new(setup.topology.node_names(), setup.seed);
    nemesis.set_forge(crate::run::nemesis::ForgeSetup {
        splitnode: setup.splitnode.to_path_buf(),
        cluster: scenario.name.clone(),
        log_dir: setup.run_dir.to_path_buf(),
    });
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut record_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut leader_label = String::from("?");
    let mut last_poll = 0u64;
    let entries = schedule(setup.loaded);
    let mut next = 0;
    let since_start = |now: u64| (now - window.start_ns) as f64 / 1e9;
    loop {
        if setup.cancel.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted (Ctrl-C)");
        }
        let now = mono_ns();
        if now >= window.end_ns {
            break;
        }
        if now - last_poll >= 1_000_000_000 {
            leader_label = observer.leader_label();
            last_poll = mono_ns();
        }
        let active_steps: Vec<String> = records
            .iter()
            .filter(|record| record.end_ns.is_none())
            .map(|record| record.description.clone())
            .collect();
        progress.update(
            now - window.start_ns,
            counters.snapshot(),
            &leader_label,
            &active_steps,
        );
        let Some(&(offset, entry)) = entries.get(next) else {
            std::thread::sleep(
                Duration::from_millis(100).min(Duration::from_nanos(window.end_ns - now)),
            );
            continue;
        };
        let due = window.start_ns + offset;
        if now < due {
            std::thread::sleep(Duration::from_nanos((due - now).min(100_000_000)));
            continue;
        }
        next += 1;
        let index = entry.step();
        let step = scenario.timeline[index].get_ref();
        let lab = guard.lab();
        let applied: Result<(), NetlabError> = match entry {
            TimelineEntry::Start(_) => {
                let (view, statuses, resolved) =
                    resolve_when_led(observer, &mut nemesis, step, &scenario.nodes.timing())
                        .map_err(|error| {
                            anyhow::anyhow!(
                                "timeline step {} ({}): {error}",
                                index + 1,
                                step.describe()
                            )
                        })?;
                let leader_before = view
                    .leader
                    .as_ref()
                    .map(|leader| (leader.clone(), term_of(&statuses, leader)));
                let description = describe_resolved(step, &resolved);
                let mut record = FaultRecord {
                    step: index,
                    kind: step.kind(),
                    description: description.clone(),
                    targets: resolved.targets.clone(),
                    grudge: None,
                    all_planes: step.plane() == crate::run::scenario::Plane::All,
                    start_ns: mono_ns(),
                    end_ns: None,
                    leader_before,
                    achieved: None,
                };
                progress.event(&format!("+{:.1}s {description}", since_start(mono_ns())));
                if matches!(step.fault, StepFault::Heal) {
                    // A heal step ends every open fault: read their counters first.
                    for open in records.iter_mut().filter(|r| r.end_ns.is_none()) {
                        live.on_end(lab, open.step, open);
                    }
                }
                // A forge step is measured by the members' rejected-frame
                // counters: read them before the rogue starts.
                let forge_before = matches!(step.fault, StepFault::Forge { .. })
                    .then(|| node_faults::forge_started(observer, &resolved.targets));
                let result = nemesis.start(lab, index, step, &resolved, &mut record);
                if let (Ok(()), Some(forge)) = (&result, forge_before) {
                    record.achieved = Some(crate::run::achieved::FaultAchieved {
                        backend: "splitnode forge in the control namespace".into(),
                        forge: Some(forge),
                        ..Default::default()
                    });
                }
                if result.is_ok() {
                    live.on_start(lab, index, step, &resolved, &mut record);
                }
                // The fault is in force once netlab has applied it in every
                // namespace: writes a minority acknowledged before that were
                // legitimate, so the window starts here.
                record.start_ns = mono_ns();
                if result.is_ok()
                    && let StepFault::Pause { .. } = step.fault
                {
                    // Measured like a network fault: the node must stop
                    // answering its status.
                    record.achieved = Some(crate::run::achieved::FaultAchieved {
                        backend: "SIGSTOP (checked: process state T)".into(),
                        paused: observer.stopped_answering(
                            &resolved.targets,
                            crate::run::achieved::PAUSE_WITHIN_MS,
                        ),
                        ..Default::default()
                    });
                }
                if matches!(step.fault, StepFault::Restart { .. } | StepFault::Heal) {
                    record.end_ns = Some(record.start_ns);
                }
                record_of.insert(index, records.len());
                records.push(record);
                result
            }
            TimelineEntry::End(_) => {
                // The fault starts lifting as soon as the first namespace is
                // healed, so its window ends before the removal is applied.
                // Counters first: the rules are still in force while they are read.
                if let Some(record) = record_of.get(&index).map(|&i| &mut records[i]) {
                    live.on_end(lab, index, record);
                }
                if let Some(record) = record_of.get(&index).map(|&i| &mut records[i])
                    && let Some(forge) = record.achieved.as_mut().and_then(|a| a.forge.as_mut())
                {
                    node_faults::forge_ended(observer, &record.targets, forge);
                }
                let lifting_ns = mono_ns();
                let record = record_of.get(&index).map(|&i| &mut records[i]);
                let result = nemesis.end(lab, index, step, record);
                if let Some(record) = record_of.get(&index).map(|&i| &mut records[i]) {
                    record.end_ns = Some(lifting_ns);
                    progress.event(&format!(
                        "+{:.1}s end: {}",
                        since_start(mono_ns()),
                        record.description
                    ));
                }
                result
            }
            TimelineEntry::Flap(_, down) => nemesis.flap(lab, index, down),
        };
        match applied {
            Ok(()) => {}
            Err(error @ NetlabError::Unsupported(_)) => {
                return Ok(TimelineOutcome {
                    records,
                    skipped: Some(error.to_string()),
                    nemesis,
                });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(TimelineOutcome {
        records,
        skipped: None,
        nemesis,
    })
}

/// "partition isolate leader" → "partition isolate leader → [n2]".
fn describe_resolved(step: &Step, resolved: &Resolved) -> String {
    let mut text = step.describe();
    if !resolved.targets.is_empty() {
        text.push_str(&format!(" → [{}]", resolved.targets.join(", ")));
    }
    if let Some(peers) = &resolved.peers {
        text.push_str(&format!(" ↔ [{}]", peers.join(", ")));
    }
    if !step.label.is_empty() {
        text = format!("{} ({text})", step.label);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::run::scenario;

    #[test]
    fn flaps_toggle_between_start_and_end_and_ends_sort_first() {
        let text = r#"
topology = "mesh-3"
duration = "20s"
[workload]
clients = 1
[[timeline]]
at = "1s"
for = "2s"
fault = "flap"
targets = "follower"
period = "1s"
[[timeline]]
at = "3s"
for = "1s"
fault = "partition"
targets = "leader"
"#;
        let parsed = scenario::parse(text, Path::new("f.toml")).unwrap();
        let loaded = LoadedScenario {
            path: "f.toml".into(),
            text: text.into(),
            scenario: parsed,
            catalog: scenario::NodeCatalog::new(vec!["n1".into(), "n2".into(), "n3".into()]),
        };
        let entries = schedule(&loaded);
        let s = 1_000_000_000u64;
        assert_eq!(
            entries,
            vec![
                (s, TimelineEntry::Start(0)),
                (s + s / 2, TimelineEntry::Flap(0, false)),
                (2 * s, TimelineEntry::Flap(0, true)),
                (2 * s + s / 2, TimelineEntry::Flap(0, false)),
                (3 * s, TimelineEntry::End(0)),
                (3 * s, TimelineEntry::Start(1)),
                (4 * s, TimelineEntry::End(1)),
            ]
        );
    }
}
