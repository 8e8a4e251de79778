//! The nemesis: applies timeline steps to the lab and undoes them. It owns
//! every piece of fault state a run accumulates (active network faults,
//! paused and killed processes, flapping links, the seeded choices), so the
//! runner hands it one timeline entry at a time and nothing else.
//!
//! `active` is the pure composition of overlapping network faults;
//! `node_faults` fills data disks and runs the `forge` rogue; `fsync`
//! fails or delays fsync on the FUSE data disks.
mod active;
mod fsync;
mod node_faults;

use std::collections::BTreeMap;

use netlab::{Fault, Lab, NetlabError};

pub use self::active::{ActiveFaults, ActiveNet, links, pairs, planes, shape_of};
pub use self::node_faults::ForgeSetup;
use self::node_faults::{NodeFaults, block_fault_refusal};
use super::judge::FaultRecord;
use super::scenario::{FaultKind, LoadedScenario, PartitionKind, Step, StepFault};
use super::targets::{self, ClusterView, SeededRng, TargetError};

/// A step's role targets resolved against the cluster as it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The nodes the step acts on (empty for heal and self-grouping
    /// partitions).
    pub targets: Vec<String>,
    /// The other ends of link faults, when the step names them.
    pub peers: Option<Vec<String>>,
}

/// Applies and lifts faults; see the module docs.
pub struct Nemesis {
    /// Every node, in topology order.
    nodes: Vec<String>,
    /// Role choices and the majorities ring, seeded by the scenario.
    rng: SeededRng,
    active: ActiveFaults,
    /// Step index → nodes stopped by a pause step.
    paused: BTreeMap<usize, Vec<String>>,
    /// Step index → nodes killed by a kill step.
    killed: BTreeMap<usize, Vec<String>>,
    /// Step index → the node pairs a flap step toggles.
    flapping: BTreeMap<usize, Vec<(String, String)>>,
    /// Filled data disks and forge rogues.
    node_faults: NodeFaults,
    /// Data disks whose fsync fails or waits.
    fsync: fsync::FsyncFaults,
}

impl Nemesis {
    /// A nemesis for a cluster of `nodes`, its choices seeded by `seed`.
    pub fn new(nodes: Vec<String>, seed: u64) -> Nemesis {
        Nemesis {
            nodes,
            rng: SeededRng::new(seed ^ 0x5EED_7157),
            active: ActiveFaults::default(),
            paused: BTreeMap::new(),
            killed: BTreeMap::new(),
            flapping: BTreeMap::new(),
            node_faults: NodeFaults::default(),
            fsync: fsync::FsyncFaults::default(),
        }
    }

    /// What `forge` steps need to start their rogue sender.
    pub fn set_forge(&mut self, setup: ForgeSetup) {
        self.node_faults.forge = Some(setup);
    }

    /// Resolves the step's role targets and peers against `view`.
    pub fn resolve(&mut self, step: &Step, view: &ClusterView) -> Result<Resolved, TargetError> {
        let targets = step
            .targets()
            .map(|t| targets::resolve(t.get_ref(), view, &mut self.rng))
            .transpose()?
            .unwrap_or_default();
        let peers = step
            .peers()
            .map(|t| targets::resolve(t.get_ref(), view, &mut self.rng))
            .transpose()?;
        Ok(Resolved { targets, peers })
    }

    /// Starts step `index`. A partition's grudge goes into `record` before
    /// it is applied, so the record is complete even if applying fails.
    pub fn start(
        &mut self,
        lab: &mut Lab,
        index: usize,
        step: &Step,
        resolved: &Resolved,
        record: &mut FaultRecord,
    ) -> Result<(), NetlabError> {
        let nodes = &self.nodes;
        let targets = resolved.targets.as_slice();
        let peers = resolved.peers.as_deref();
        let faults = match &step.fault {
            StepFault::Partition {
                kind,
                components,
                plane,
                ..
            } => {
                let components = components.as_ref().map(|c| c.get_ref().as_slice());
                let kind = kind.unwrap_or(PartitionKind::Isolate);
                let grudge = targets::partition_grudge(
                    kind,
                    nodes,
                    targets,
                    peers,
                    components,
                    &mut self.rng,
                );
                record.grudge = Some(grudge.clone());
                let planes = planes(*plane);
                self.active.start(
                    index,
                    ActiveNet::Partition {
                        grudge,
                        planes,
                        data_only: kind.is_data_only(),
                    },
                )
            }
            StepFault::Heal => {
                self.active.clear();
                return lab.heal_all();
            }
            StepFault::Shape {
                links: on, effect, ..
            } => self.active.start(
                index,
                ActiveNet::Shape {
                    links: links(nodes, targets, peers),
                    planes: planes(on.plane),
                    shape: shape_of(effect),
                },
            ),
            StepFault::LinkDown { .. } => {
                let pairs = pairs(&links(nodes, targets, peers));
                self.active.start(index, ActiveNet::LinkDown { pairs })
            }
            StepFault::Flap { .. } => {
                let pairs = pairs(&links(nodes, targets, peers));
                self.flapping.insert(index, pairs.clone());
                self.active.start(index, ActiveNet::LinkDown { pairs })
            }
            StepFault::Kill { .. } => {
                for node in targets {
                    lab.apply(&Fault::Kill { node: node.clone() })?;
                }
                self.killed.insert(index, targets.to_vec());
                return Ok(());
            }
            StepFault::Pause { .. } => {
                for node in targets {
                    lab.apply(&Fault::Stop { node: node.clone() })?;
                }
                self.paused.insert(index, targets.to_vec());
                return Ok(());
            }
            StepFault::Restart { .. } => targets
                .iter()
                .map(|node| Fault::Restart { node: node.clone() })
                .collect(),
            StepFault::Disk {
                kind: FaultKind::DiskFull,
                ..
            } => return self.node_faults.fill(lab, index, targets, record),
            StepFault::Disk { kind, delay, .. } => {
                let Some(mode) = fsync::mode_of(*kind, delay.map(|d| d.as_std())) else {
                    return Err(block_fault_refusal(*kind, targets));
                };
                if netlab::disk::block_faults_unavailable().is_some() {
                    return Err(block_fault_refusal(*kind, targets));
                }
                return self.fsync.start(lab, index, mode, targets, record);
            }
            StepFault::Forge { .. } => {
                return self.node_faults.start_rogue(lab, index, nodes, targets);
            }
        };
        faults.iter().try_for_each(|fault| lab.apply(fault))
    }

    /// Lifts step `index` when its `for` runs out, leaving every other
    /// active fault in force. A disk fault's measurement (how each node
    /// had ended) goes into `record`.
    pub fn end(
        &mut self,
        lab: &mut Lab,
        index: usize,
        step: &Step,
        record: Option<&mut FaultRecord>,
    ) -> Result<(), NetlabError> {
        match step.kind() {
            FaultKind::DiskFull => self.node_faults.empty(lab, index, record),
            FaultKind::FsyncError | FaultKind::DiskSlow => self.fsync.end(lab, index, record),
            FaultKind::Forge => {
                self.node_faults.stop_rogues(Some(index));
                Ok(())
            }
            FaultKind::Kill => self
                .killed
                .remove(&index)
                .unwrap_or_default()
                .into_iter()
                .try_for_each(|node| lab.apply(&Fault::Restart { node })),
            FaultKind::Pause => self
                .paused
                .remove(&index)
                .unwrap_or_default()
                .into_iter()
                .try_for_each(|node| lab.apply(&Fault::Cont { node })),
            FaultKind::Flap => {
                // The last toggle may have left links down or up; bring all up.
                let pairs = self.flapping.remove(&index).unwrap_or_default();
                self.active.end(index);
                pairs
                    .into_iter()
                    .try_for_each(|(a, b)| lab.apply(&Fault::LinkUp { a, b }))
            }
            _ => self
                .active
                .end(index)
                .iter()
                .try_for_each(|fault| lab.apply(fault)),
        }
    }

    /// One toggle of flap step `index`: its links down (`down`) or up.
    pub fn flap(&mut self, lab: &mut Lab, index: usize, down: bool) -> Result<(), NetlabError> {
        let pairs = self.flapping.get(&index).cloned().unwrap_or_default();
        pairs.into_iter().try_for_each(|(a, b)| {
            lab.apply(&if down {
                Fault::LinkDown { a, b }
            } else {
                Fault::LinkUp { a, b }
            })
        })
    }

    /// The final heal: every network fault, then SIGCONT for paused nodes
    /// and a restart for killed ones, in step order.
    pub fn heal_everything(&mut self, lab: &mut Lab) -> Result<(), NetlabError> {
        lab.heal_all()?;
        self.active.clear();
        self.node_faults.heal(lab)?;
        self.fsync.heal(lab)?;
        for node in std::mem::take(&mut self.paused).into_values().flatten() {
            lab.apply(&Fault::Cont { node })?;
        }
        for node in std::mem::take(&mut self.killed).into_values().flatten() {
            lab.apply(&Fault::Restart { node })?;
        }
        Ok(())
    }
}

/// A representative netlab fault per network step (role targets are not
/// known yet, but backends depend on the kind of effect, not on who gets it).
fn representative_faults(loaded: &LoadedScenario, nodes: &[String]) -> Vec<(String, Fault)> {
    let mut out = Vec::new();
    let all_links = links(nodes, nodes, None);
    for spanned in &loaded.scenario.timeline {
        let step = spanned.get_ref();
        let planes = planes(step.plane());
        let fault = match &step.fault {
            StepFault::Partition { kind, .. } if nodes.len() >= 2 => {
                let grudge = netlab::grudge::isolate_one(&nodes[0], nodes);
                if kind.is_some_and(PartitionKind::is_data_only) {
                    Fault::DataPartition { grudge, planes }
                } else {
                    Fault::Partition { grudge, planes }
                }
            }
            StepFault::Shape { effect, .. } => Fault::Shape {
                links: all_links.clone(),
                planes,
                shape: shape_of(effect),
            },
            StepFault::LinkDown { .. } | StepFault::Flap { .. } if nodes.len() >= 2 => {
                Fault::LinkDown {
                    a: nodes[0].clone(),
                    b: nodes[1].clone(),
                }
            }
            _ => continue,
        };
        out.push((step.describe(), fault));
    }
    out
}

/// Preflight: the first timeline step this machine has no backend for,
/// with the reason, so the run is skipped before anything starts.
pub fn unsupported_step(lab: &Lab, loaded: &LoadedScenario, nodes: &[String]) -> Option<String> {
    let block_fault = (loaded.scenario.timeline.iter().map(|step| step.get_ref()))
        .find(|step| matches!(step.kind(), FaultKind::FsyncError | FaultKind::DiskSlow))
        .filter(|_| netlab::disk::block_faults_unavailable().is_some());
    if let Some(step) = block_fault {
        let targets = step.targets().map(|t| t.get_ref().to_string());
        let refusal = block_fault_refusal(step.kind(), &Vec::from_iter(targets));
        return Some(format!("step \"{}\": {refusal}", step.describe()));
    }
    representative_faults(loaded, nodes)
        .into_iter()
        .find_map(|(description, fault)| match lab.check_supported(&[fault]) {
            Err(error @ NetlabError::Unsupported(_)) => {
                Some(format!("step \"{description}\": {error}"))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn preflight_checks_one_representative_fault_per_network_step() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/packet-chaos.toml");
        let (loaded, topology) = crate::run::load::load_scenario(&path).unwrap();
        let faults = representative_faults(&loaded, &topology.node_names());
        assert_eq!(faults.len(), 3);
        assert!(
            faults
                .iter()
                .all(|(_, f)| matches!(f, Fault::Shape { links, .. } if links.len() == 6))
        );
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/kill-restart.toml");
        let (loaded, topology) = crate::run::load::load_scenario(&path).unwrap();
        assert!(representative_faults(&loaded, &topology.node_names()).is_empty());
    }
}
