//! The data disks of a live lab (see [`crate::disk`]): mounted before a
//! node starts, filled and emptied by disk faults, unmounted at teardown
//! with their files kept.
use std::path::Path;

use super::Lab;
use crate::disk::{self, DiskRecord, FillReport};
use crate::error::NetlabError;

impl Lab {
    /// Mounts a tmpfs of `size_bytes` at `path` as `node`'s data disk
    /// (journaled first, so `splitlab clean` finds it after a crash).
    ///
    /// # Errors
    /// Journal or mount failures.
    pub fn mount_data_disk(
        &mut self,
        node: &str,
        path: &Path,
        size_bytes: u64,
    ) -> Result<(), NetlabError> {
        let record = DiskRecord {
            node: node.to_string(),
            path: path.to_path_buf(),
            source: format!("{}disk-{node}", self.journal.run.netns_prefix()),
            size_bytes,
        };
        self.journal.disks.push(record.clone());
        self.save()?;
        disk::mount(&record).map_err(|e| NetlabError::io(format!("data disk of {node}"), e))
    }

    fn data_disk(&self, node: &str) -> Result<&DiskRecord, NetlabError> {
        (self.journal.disks.iter().rev())
            .find(|record| record.node == node)
            .ok_or_else(|| NetlabError::InvalidFault(format!("node {node} has no data disk")))
    }

    /// Whether `node`'s data directory is on a lab disk.
    pub fn has_data_disk(&self, node: &str) -> bool {
        self.data_disk(node).is_ok()
    }

    /// Fills `node`'s data disk until the filesystem reports ENOSPC.
    ///
    /// # Errors
    /// No disk for the node, or a write failure other than ENOSPC.
    pub fn fill_data_disk(&mut self, node: &str) -> Result<FillReport, NetlabError> {
        let record = self.data_disk(node)?;
        disk::fill(&record.path)
            .map_err(|e| NetlabError::io(format!("fill data disk of {node}"), e))
    }

    /// Removes the filler from `node`'s data disk; returns the bytes free.
    ///
    /// # Errors
    /// No disk for the node, or unlink/statvfs failures.
    pub fn unfill_data_disk(&mut self, node: &str) -> Result<u64, NetlabError> {
        let record = self.data_disk(node)?;
        disk::unfill(&record.path)
            .map_err(|e| NetlabError::io(format!("empty data disk of {node}"), e))
    }

    /// Unmounts every data disk, keeping its files (processes must be gone).
    pub(super) fn unmount_data_disks(&mut self) -> Result<(), NetlabError> {
        let mut failure = None;
        for record in std::mem::take(&mut self.journal.disks) {
            if let Err(e) = disk::unmount_keeping_files(&record.path, &record.source) {
                failure = Some(NetlabError::io(
                    format!("unmount data disk {}", record.path.display()),
                    e,
                ));
                self.journal.disks.push(record);
            }
        }
        let _ = self.journal.save(&self.state_dir);
        failure.map_or(Ok(()), Err)
    }
}
