//! The faults that act on a node instead of a link: its data disk filled
//! (then emptied, and the node restarted if it fail-stopped), block-level
//! disk faults (refused where the kernel cannot do them), and the `forge`
//! rogue sender (a `splitnode forge` process in the control namespace).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;

use netlab::caps::Unsupported;
use netlab::{Lab, NetlabError, ProcessSpec, Target};

use crate::run::achieved::FaultAchieved;
use crate::run::achieved::node_faults::{DiskMeasure, FORGED_TERM, disk_measure_of};
use crate::run::judge::FaultRecord;
use crate::run::scenario::FaultKind;

/// What a forge step needs to start its rogue.
#[derive(Debug, Clone)]
pub struct ForgeSetup {
    /// The `splitnode` binary (it has the `forge` subcommand).
    pub splitnode: PathBuf,
    /// The cluster name the members were started with.
    pub cluster: String,
    /// Where the rogue's output goes (`forge-<step>.log` inside).
    pub log_dir: PathBuf,
}

/// Node-fault state of a run: filled disks and running rogues, by step.
#[derive(Default)]
pub(super) struct NodeFaults {
    pub(super) forge: Option<ForgeSetup>,
    filled: BTreeMap<usize, Vec<String>>,
    rogues: BTreeMap<usize, Child>,
}

/// Why a block-level disk fault cannot run here.
pub(super) fn block_fault_refusal(kind: FaultKind, targets: &[String]) -> NetlabError {
    NetlabError::Unsupported(Unsupported {
        what: format!("{} on [{}]", kind.name(), targets.join(", ")),
        missing: netlab::disk::block_faults_unavailable().unwrap_or_default(),
    })
}

impl NodeFaults {
    /// Fills each target's data disk; the fill is measured into `record`.
    pub(super) fn fill(
        &mut self,
        lab: &mut Lab,
        index: usize,
        targets: &[String],
        record: &mut FaultRecord,
    ) -> Result<(), NetlabError> {
        let mut disk = BTreeMap::new();
        self.filled.insert(index, targets.to_vec());
        for node in targets {
            let fill = lab.fill_data_disk(node)?;
            disk.insert(
                node.clone(),
                DiskMeasure {
                    filler_bytes: fill.filler_bytes,
                    free_after_fill: fill.free_bytes,
                    ..DiskMeasure::default()
                },
            );
        }
        record.achieved = Some(FaultAchieved {
            backend: "tmpfs data disk filled to ENOSPC".into(),
            disk,
            ..FaultAchieved::default()
        });
        Ok(())
    }

    /// Empties the disks of step `index` and restarts the nodes that
    /// exited; how each node had ended goes into `record`.
    pub(super) fn empty(
        &mut self,
        lab: &mut Lab,
        index: usize,
        mut record: Option<&mut FaultRecord>,
    ) -> Result<(), NetlabError> {
        for node in self.filled.remove(&index).unwrap_or_default() {
            let status = lab.try_wait(&node)?;
            let free = lab.unfill_data_disk(&node)?;
            if status.is_some() {
                lab.restart(&node)?;
            }
            if let Some(measure) = disk_measure_of(record.as_deref_mut(), &node) {
                measure.record_ending(status);
                measure.free_after_heal = free;
            }
        }
        Ok(())
    }

    /// Starts the rogue sender of step `index`, aimed at `targets`.
    pub(super) fn start_rogue(
        &mut self,
        lab: &mut Lab,
        index: usize,
        nodes: &[String],
        targets: &[String],
    ) -> Result<(), NetlabError> {
        let setup = self.forge.clone().ok_or_else(|| {
            NetlabError::InvalidFault("forge needs the splitnode binary (splitlab run)".into())
        })?;
        let mut args = vec!["forge".to_string(), "--cluster".into(), setup.cluster];
        args.extend(["--term".into(), FORGED_TERM.to_string()]);
        for node in nodes {
            let addr = lab.peer_addr(node).ok_or_else(|| {
                NetlabError::InvalidFault(format!("netlab has no peer address for {node}"))
            })?;
            args.extend(["--member".into(), format!("{node}={addr}")]);
        }
        for target in targets {
            args.extend(["--target".into(), target.clone()]);
        }
        let mut spec = ProcessSpec::new(&setup.splitnode, args);
        let log = setup.log_dir.join(format!("forge-{}.log", index + 1));
        spec.stdout = Some(log.clone());
        spec.stderr = Some(log);
        let child = lab.spawn_aux(&Target::Control, &spec)?;
        self.rogues.insert(index, child);
        Ok(())
    }

    /// Stops the rogue of step `index` (every rogue with `None`).
    pub(super) fn stop_rogues(&mut self, index: Option<usize>) {
        let stopping: Vec<usize> = match index {
            Some(index) => vec![index],
            None => self.rogues.keys().copied().collect(),
        };
        for index in stopping {
            if let Some(mut child) = self.rogues.remove(&index) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// The final heal: every rogue stopped, every disk emptied.
    pub(super) fn heal(&mut self, lab: &mut Lab) -> Result<(), NetlabError> {
        self.stop_rogues(None);
        let steps: Vec<usize> = self.filled.keys().copied().collect();
        steps
            .into_iter()
            .try_for_each(|index| self.empty(lab, index, None))
    }
}
