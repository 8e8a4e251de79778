//! Applying the nemesis schedule: resolving targets (leader, follower, any),
//! then partitions, link faults, crashes, pauses, clock and disk faults.
use consensus::{Input, NodeId, Role, Term};

use super::{Cluster, Phase};
use crate::schedule::{Fault, Target};
use crate::workload::Outcome;

impl Cluster {
    pub(super) fn live(&self, index: usize) -> bool {
        self.nodes[index].replica.is_some()
    }

    /// The live node that leads the highest term, if any.
    pub(super) fn leader(&self) -> Option<usize> {
        let mut best: Option<(Term, usize)> = None;
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some(replica) = &node.replica {
                let status = replica.status();
                if status.role == Role::Leader && best.is_none_or(|(term, _)| status.term > term) {
                    best = Some((status.term, index));
                }
            }
        }
        best.map(|(_, index)| index)
    }

    fn resolve(&mut self, target: Target) -> usize {
        let leader = self.leader();
        match (target, leader) {
            (Target::Leader, Some(leader)) => leader,
            (Target::Follower, Some(leader)) if self.nodes.len() > 1 => {
                let others: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != leader).collect();
                *self.nemesis_rng.pick(&others)
            }
            _ => self.nemesis_rng.below(self.nodes.len() as u64) as usize,
        }
    }

    pub(super) fn resolve_id(&mut self, target: Target) -> NodeId {
        let index = self.resolve(target);
        self.ids[index]
    }

    /// Counts `episode`'s kind as covered: one of its faults took effect
    /// before the heal (a fault at the heal's instant is undone at once).
    pub(super) fn fired(&mut self, episode: u64) {
        if self.now < self.heal_at
            && let Some(kind) = self.episode_kinds.get(&episode)
        {
            self.fired.insert(*kind);
        }
    }

    pub(super) fn apply_fault(&mut self, fault: Fault) {
        if self.phase != Phase::Faults {
            return;
        }
        if self.trace.enabled() {
            self.trace
                .line(self.now, format_args!("nemesis {}", fault.describe()));
        }
        self.apply(fault);
        self.faults_changed();
    }

    fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Partition { episode, shape } => {
                let grudge = self.resolve_shape(shape);
                self.trace.line(
                    self.now,
                    format_args!("nemesis partition#{episode} blocks {}", grudge.describe()),
                );
                if !grudge.is_empty() {
                    self.fired(episode);
                }
                self.episode_grudges.insert(episode, grudge.clone());
                self.net.partition(episode, grudge);
            }
            Fault::Reapply { episode } => {
                if let Some(grudge) = self.episode_grudges.get(&episode) {
                    self.net.partition(episode, grudge.clone());
                }
            }
            Fault::Heal { episode } => self.net.heal(episode),
            Fault::LinkFaults {
                episode,
                scope,
                channels,
                faults,
            } => {
                let links = self.resolve_scope(scope);
                if self.trace.enabled() {
                    self.trace.line(
                        self.now,
                        format_args!("nemesis link-faults#{episode} on {links:?}"),
                    );
                }
                if !links.is_empty() && !channels.is_empty() {
                    self.fired(episode);
                }
                self.net.add_faults(episode, links, channels, faults);
            }
            Fault::ClearLinkFaults { episode } => self.net.clear_faults(episode),
            Fault::Crash { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) {
                    self.episode_nodes.insert(episode, index);
                    self.fired(episode);
                    self.crash(index);
                }
            }
            Fault::CrashAfterWrite { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) {
                    self.episode_nodes.insert(episode, index);
                    self.nodes[index].crash_armed = Some(episode);
                }
            }
            Fault::Restart { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    // An armed crash that never fired is called off.
                    self.nodes[index].crash_armed = None;
                    if !self.live(index) {
                        self.start_node(index);
                    }
                }
            }
            Fault::Pause { episode, target } => {
                let index = self.resolve(target);
                if self.live(index) && !self.nodes[index].paused {
                    self.episode_nodes.insert(episode, index);
                    self.fired(episode);
                    self.pause(index);
                }
            }
            Fault::Resume { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    self.resume(index);
                }
            }
            Fault::ClockRate {
                episode,
                target,
                rate_ppm,
            } => {
                let index = self.resolve(target);
                self.fired(episode);
                self.nodes[index].clock.set_rate(self.now, rate_ppm);
                self.trace.line(
                    self.now,
                    format_args!("{} clock rate now {rate_ppm}ppm", self.nodes[index].name),
                );
            }
            Fault::DiskStall {
                episode,
                target,
                factor,
            } => {
                let index = self.resolve(target);
                if self.live(index) {
                    self.fired(episode);
                }
                self.episode_nodes.insert(episode, index);
                self.nodes[index].disk_slowdown = factor;
            }
            Fault::DiskRecover { episode } => {
                if let Some(index) = self.episode_nodes.remove(&episode) {
                    self.nodes[index].disk_slowdown = 1;
                }
            }
        }
    }

    pub(super) fn crash(&mut self, index: usize) {
        let pending = self.nodes[index].disk.pending_len();
        let survivors = if self.options.torn_writes && self.disk_rng.chance(1, 2) {
            self.disk_rng.range(0, pending as u64 + 1) as usize
        } else {
            0
        };
        let node = &mut self.nodes[index];
        let result = node.disk.crash(survivors);
        node.replica = None;
        node.incarnation += 1;
        node.tick_epoch += 1;
        node.held.clear();
        node.backlog.clear();
        node.paused = false;
        node.disk_slowdown = 1;
        node.crash_armed = None;
        let id = node.id;
        self.stats.crashes += 1;
        self.trace.line(
            self.now,
            format_args!("n{id} CRASH ({survivors} of {pending} unsynced writes survive)"),
        );
        if let Err(error) = result {
            self.violation(format!("n{id}: storage contract (on crash): {error}"));
        }
        self.net.reset_node(id);
        let lost: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, node)| **node == id)
            .map(|(attempt, _)| *attempt)
            .collect();
        for attempt in lost {
            self.in_flight.remove(&attempt);
            self.return_outcome(attempt, id, Outcome::Reset);
        }
        // Also reached from an armed crash, outside `apply_fault`.
        self.faults_changed();
    }

    fn pause(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.paused = true;
        node.tick_epoch += 1;
        self.stats.pauses += 1;
        self.trace
            .line(self.now, format_args!("{} PAUSE", self.nodes[index].name));
    }

    pub(super) fn resume(&mut self, index: usize) {
        if !self.nodes[index].paused {
            return;
        }
        self.nodes[index].paused = false;
        let backlog = std::mem::take(&mut self.nodes[index].backlog);
        self.trace.line(
            self.now,
            format_args!(
                "{} RESUME with {} queued inputs",
                self.nodes[index].name,
                backlog.len()
            ),
        );
        // The runtime wakes up with both overdue timers and readable
        // sockets; which it looks at first is up to the scheduler.
        let timers_first = self.nemesis_rng.chance(1, 2);
        if timers_first {
            self.step_node(index, Input::Tick);
        }
        for input in backlog {
            if !self.live(index) {
                break;
            }
            match input {
                Input::Persisted { upto } => self.persisted(index, upto),
                other => self.step_node(index, other),
            }
        }
        if !timers_first {
            self.step_node(index, Input::Tick);
        }
        self.maybe_fsync(index);
        self.schedule_tick(index);
    }
}
