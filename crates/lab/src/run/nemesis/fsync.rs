//! The fsync faults: `fsync-error` and `disk-slow` switch the fsync mode
//! of the targets' FUSE data disks (`netlab::fusedisk`, mounted by the
//! runner before the nodes start) and switch it back when the fault ends;
//! what each disk counted in between is the fault's achieved measure, and
//! a node that fail-stopped is restarted then, as after `disk-full`.
use std::collections::BTreeMap;
use std::time::Duration;

use netlab::fusedisk::{self, FsyncMode};
use netlab::{Lab, NetlabError};

use crate::run::achieved::FaultAchieved;
use crate::run::achieved::node_faults::{DiskMeasure, disk_measure_of};
use crate::run::judge::FaultRecord;
use crate::run::scenario::FaultKind;

/// The fsync mode a step asks for.
pub(super) fn mode_of(kind: FaultKind, delay: Option<Duration>) -> Option<FsyncMode> {
    match kind {
        FaultKind::FsyncError => Some(FsyncMode::Error),
        FaultKind::DiskSlow => delay.map(FsyncMode::Slow),
        _ => None,
    }
}

/// Active fsync faults, by step.
#[derive(Default)]
pub(super) struct FsyncFaults {
    active: BTreeMap<usize, Vec<String>>,
}

impl FsyncFaults {
    /// Puts the targets' data disks in `mode`; the record's achieved
    /// measure is started.
    pub(super) fn start(
        &mut self,
        lab: &mut Lab,
        index: usize,
        mode: FsyncMode,
        targets: &[String],
        record: &mut FaultRecord,
    ) -> Result<(), NetlabError> {
        self.active.insert(index, targets.to_vec());
        let mut disk = BTreeMap::new();
        for node in targets {
            fusedisk::set_fsync_mode(lab, node, mode)?;
            disk.insert(node.clone(), DiskMeasure::default());
        }
        let effect = match mode {
            FsyncMode::Slow(delay) => format!("fsync held back {} ms", delay.as_millis()),
            _ => "fsync fails with EIO".into(),
        };
        record.achieved = Some(FaultAchieved {
            backend: format!("FUSE passthrough data disk ({effect})"),
            disk,
            ..FaultAchieved::default()
        });
        Ok(())
    }

    /// Puts the disks of step `index` back in pass mode, records what they
    /// counted and how each node had ended, and restarts the nodes that
    /// exited.
    pub(super) fn end(
        &mut self,
        lab: &mut Lab,
        index: usize,
        mut record: Option<&mut FaultRecord>,
    ) -> Result<(), NetlabError> {
        for node in self.active.remove(&index).unwrap_or_default() {
            let stats = fusedisk::set_fsync_mode(lab, &node, FsyncMode::Pass)?;
            let status = lab.try_wait(&node)?;
            if status.is_some() {
                lab.restart(&node)?;
            }
            if let Some(measure) = disk_measure_of(record.as_deref_mut(), &node) {
                measure.record_ending(status);
                measure.fsync = Some(stats);
            }
        }
        Ok(())
    }

    /// The final heal: every disk back in pass mode.
    pub(super) fn heal(&mut self, lab: &mut Lab) -> Result<(), NetlabError> {
        let steps: Vec<usize> = self.active.keys().copied().collect();
        steps
            .into_iter()
            .try_for_each(|index| self.end(lab, index, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fsync_fault_asks_its_mode() {
        assert_eq!(mode_of(FaultKind::FsyncError, None), Some(FsyncMode::Error));
        let delay = Duration::from_millis(50);
        assert_eq!(
            mode_of(FaultKind::DiskSlow, Some(delay)),
            Some(FsyncMode::Slow(delay))
        );
        assert_eq!(mode_of(FaultKind::DiskFull, None), None);
    }
}
