//! Snapshots: compacting the local log once enough entries are applied,
//! and bringing a follower that fell behind the log start up to date with
//! InstallSnapshot.
use wire::{Index, Message, NodeId, Snapshot};

use super::SafeReplica;
use crate::action::{Action, Transport};
use crate::event::Event;
use crate::kv::Kv;

impl SafeReplica {
    pub(super) fn on_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        if self.leader.is_some() {
            return;
        }
        self.accept_leader(from);
        let last_index = snapshot.last_index;
        if last_index > self.commit {
            let Ok(kv) = Kv::restore(&snapshot) else {
                return; // corrupt snapshot: no ack, the leader will resend
            };
            let old_last = self.log.last_index();
            let discarded = self.log.install_snapshot(snapshot.clone());
            let truncate = (discarded && old_last > last_index).then_some(last_index);
            let seq = self.io.issue_log(
                Some(last_index).filter(|_| discarded),
                self.log.last_index(),
            );
            self.out.push(Action::InstallSnapshot { snapshot, seq });
            if let Some(after) = truncate {
                let write = self.io.append(&mut self.log, Some(after), Vec::new());
                self.out.push(write);
                self.emit(Event::Truncated { after });
            }
            self.kv = kv;
            self.commit = last_index;
            self.emit(Event::Applied {
                index: last_index,
                term: self.kv.applied_term(),
                state_hash: self.kv.state_hash(),
            });
        }
        self.follower_matched = self.follower_matched.max(last_index);
        let after = self.io.after_all();
        self.send(
            from,
            Message::InstallSnapshotResponse { last_index },
            Transport::Stream,
            after,
        );
    }

    pub(super) fn on_install_snapshot_response(&mut self, from: NodeId, last_index: Index) {
        let base_retransmit = self.base_retransmit();
        let now = self.now;
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        progress.match_index = progress.match_index.max(last_index);
        progress.next_index = progress.next_index.max(progress.match_index + 1);
        progress.retransmit_after = base_retransmit;
        let in_flight = progress.next_index > progress.match_index + 1;
        progress.awaiting_since = in_flight.then_some(now);
        self.advance_commit();
        self.replicate_to(from, false);
    }

    pub(super) fn maybe_snapshot(&mut self) {
        let applied = self.kv.applied_index();
        if applied.saturating_sub(self.log.snapshot_index()) < self.config.snapshot_threshold.max(1)
        {
            return;
        }
        let snapshot = self.kv.snapshot();
        self.log.compact_to(snapshot.clone());
        self.out.push(Action::CompactLog { snapshot });
    }
}
