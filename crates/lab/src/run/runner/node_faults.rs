//! The runner's side of node faults: data disks mounted under each node's
//! data directory when the scenario has a disk fault (with a FUSE
//! passthrough over them for the fsync faults), and the members'
//! `/metrics` read from the control namespace before and after a `forge`
//! step (its achieved measure).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netlab::Lab;

use super::RunSetup;
use super::observer::Observer;
use crate::run::achieved::node_faults::{FORGED_TERM, ForgeMeasure};
use crate::run::scenario::{FaultKind, Scenario, Targets};

/// Size of each node's data disk: far above what a run's log takes, small
/// enough that filling it is quick and costs little memory.
pub(super) const DATA_DISK_BYTES: u64 = 64 << 20;

/// Whether the scenario has a disk fault (every node then keeps its
/// durable state on a data disk: role targets are resolved only later).
pub(super) fn needs_data_disks(scenario: &Scenario) -> bool {
    (scenario.timeline.iter()).any(|step| needs_data_disks_kind(step.get_ref().kind()))
}

/// Why a scenario's node faults cannot run against this system: disk
/// faults judge splitnode's fail-stop exit code and data layout, and the
/// forge rogue speaks splitnode's wire protocol.
pub(super) fn unsupported_for_system(setup: &RunSetup<'_>) -> Option<String> {
    if setup.system.is_splitnode() {
        return None;
    }
    let step = (setup
        .loaded
        .scenario
        .timeline
        .iter()
        .map(|step| step.get_ref()))
    .find(|step| needs_data_disks_kind(step.kind()) || step.kind() == FaultKind::Forge)?;
    Some(format!(
        "step \"{}\": {} faults are built for splitnode (its fail-stop exit code and wire \
         protocol), not for this system",
        step.describe(),
        step.kind().name()
    ))
}

fn needs_data_disks_kind(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::DiskFull | FaultKind::FsyncError | FaultKind::DiskSlow
    )
}

/// Whether `node` may be the target of an fsync fault (`fsync-error`,
/// `disk-slow`) of the scenario: named in one, or any node when a step
/// names a role (resolved only when it fires). Only those nodes get the
/// FUSE data disk, which adds a round trip to each of their file calls.
pub(super) fn needs_fuse_disk(scenario: &Scenario, node: &str) -> bool {
    (scenario.timeline.iter().map(|step| step.get_ref()))
        .filter(|step| matches!(step.kind(), FaultKind::FsyncError | FaultKind::DiskSlow))
        .filter_map(|step| step.targets())
        .any(|targets| match targets.get_ref() {
            Targets::Nodes(names) => names.iter().any(|name| name == node),
            Targets::Role(_) => true,
        })
}

/// Mounts `node`'s data disk at `<node dir>/data` and returns that path,
/// the node's `--data-dir`; when an fsync fault may hit the node, a FUSE
/// passthrough (`netlab::fusedisk`) goes over it before the node starts.
/// The event log stays on the run's own disk (`<node dir>/events.jsonl`,
/// through a symlink), so a full or failing data disk never tears the
/// evidence the checker reads.
pub(super) fn mount_data_disk(
    lab: &mut Lab,
    scenario: &Scenario,
    node: &str,
    node_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let data = node_dir.join("data");
    lab.mount_data_disk(node, &data, DATA_DISK_BYTES)?;
    let events = data.join("events.jsonl");
    if !events.exists() {
        std::os::unix::fs::symlink("../events.jsonl", &events)?;
    }
    if needs_fuse_disk(scenario, node) {
        netlab::fusedisk::mount_fuse_disk(lab, node, &data)?;
    }
    Ok(data)
}

/// One reading of the targets' `/metrics`: frames rejected (every reason
/// and transport summed) and the current term, per node that answered.
fn read_metrics(observer: &Observer, targets: &[String]) -> BTreeMap<String, (u64, u64)> {
    let addrs: Vec<(String, std::net::SocketAddr)> = (observer.nodes.iter())
        .filter(|(node, _)| targets.contains(node))
        .cloned()
        .collect();
    let read = move || {
        let mut out = BTreeMap::new();
        for (node, addr) in addrs {
            // Two tries of a second each: a loaded machine may be slow to
            // answer, and a missing reading weakens the measure.
            let fetch = || {
                let deadline = Instant::now() + Duration::from_secs(1);
                client::request(addr, "GET", "/metrics", &[], "", deadline)
                    .ok()
                    .filter(|response| response.status == 200)
            };
            let Some(response) = fetch().or_else(fetch) else {
                continue;
            };
            let rejected = client::sample_sum(&response.body, "splitnode_frames_rejected_total")
                .unwrap_or(0.0);
            let term = client::sample(&response.body, "splitnode_term").unwrap_or(0.0);
            out.insert(node, (rejected as u64, term as u64));
        }
        out
    };
    observer.control.run(read).unwrap_or_default()
}

/// The counters when a forge step starts.
pub(super) fn forge_started(observer: &Observer, targets: &[String]) -> ForgeMeasure {
    ForgeMeasure {
        forged_term: FORGED_TERM,
        rejected_before: (read_metrics(observer, targets).into_iter())
            .map(|(node, (rejected, _))| (node, rejected))
            .collect(),
        ..ForgeMeasure::default()
    }
}

/// The counters and terms when it ends.
pub(super) fn forge_ended(observer: &Observer, targets: &[String], measure: &mut ForgeMeasure) {
    for (node, (rejected, term)) in read_metrics(observer, targets) {
        measure.rejected_after.insert(node.clone(), rejected);
        measure.term_after.insert(node, term);
    }
}
