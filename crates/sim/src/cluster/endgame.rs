//! The end of a run: heal everything, let the clients run on while the
//! cluster recovers, stop them, let a leader settle, run the final
//! linearizable reads, wait for convergence and log every node's final state.
use checker::EventKind;
use consensus::{Replica, Role};

use super::{Cluster, Ev, MS, Phase};

impl Cluster {
    /// How long the clients keep running after the heal: the progress
    /// grace (a leader must be serving by then) plus two client timeouts of
    /// judged time, so the stretch always makes a quorum window (see
    /// `windows`) and every run judges recovery.
    pub(super) fn recovery_ns(&self) -> u64 {
        crate::election_timing().progress_grace_ns() + 2 * self.workload.op_timeout_ns()
    }

    pub(super) fn heal_all(&mut self) {
        self.trace.line(self.now, format_args!("nemesis HEAL ALL"));
        self.phase = Phase::Recovering;
        self.workload.recover();
        self.net.heal_all();
        for index in 0..self.nodes.len() {
            self.nodes[index].disk_slowdown = 1;
            self.nodes[index].crash_armed = None;
            if self.nodes[index].paused {
                self.resume(index);
            }
            if !self.live(index) {
                self.start_node(index);
            }
        }
        self.episode_nodes.clear();
        self.faults_changed();
        self.schedule(self.now + self.recovery_ns(), Ev::StopClients);
    }

    pub(super) fn stop_clients(&mut self) {
        self.trace
            .line(self.now, format_args!("clients stop after recovery"));
        self.phase = Phase::Settling { since: self.now };
        self.workload.stop();
        self.workload_end_ns = self.now;
        self.schedule(self.now + 50 * MS, Ev::Poll);
    }

    /// One leader at the highest term, every node live and applied up to
    /// the same commit index with the same state.
    fn converged(&self) -> bool {
        let statuses: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().map(Replica::status))
            .collect();
        if statuses.len() != self.nodes.len() {
            return false;
        }
        let leaders = statuses.iter().filter(|s| s.role == Role::Leader).count();
        let first = &statuses[0];
        leaders == 1
            && statuses.iter().all(|s| {
                s.term == first.term
                    && s.commit_index == first.commit_index
                    && s.applied_index == s.commit_index
                    && s.state_hash == first.state_hash
            })
    }

    pub(super) fn poll(&mut self) {
        let settle_limit = 10 * self.timing.election_max_ns;
        match self.phase {
            Phase::Settling { since } => {
                let leader = self.leader();
                let clients_done = !self.workload.busy();
                if (clients_done && leader.is_some()) || self.now >= since + settle_limit {
                    self.phase = Phase::FinalReads { since: self.now };
                    self.final_reads_from_ns = self.now;
                    let guess = self.ids[leader.unwrap_or(0)];
                    self.trace.line(
                        self.now,
                        format_args!("final reads begin (leader guess n{guess})"),
                    );
                    self.drive_workload(|w, _| w.final_reads(guess));
                }
            }
            Phase::FinalReads { since } => {
                if self.workload.final_reads_done() || self.now >= since + settle_limit {
                    self.stats.final_reads_done = self.workload.final_reads_done();
                    self.phase = Phase::Converging { since: self.now };
                }
            }
            Phase::Converging { since } => {
                let converged = self.converged();
                if converged || self.now >= since + settle_limit {
                    self.stats.converged = converged;
                    self.finish();
                    return;
                }
            }
            Phase::Faults | Phase::Recovering | Phase::Done => return,
        }
        self.schedule(self.now + 50 * MS, Ev::Poll);
    }

    /// Logs every live node's final state.
    pub(super) fn finish(&mut self) {
        self.phase = Phase::Done;
        for index in 0..self.nodes.len() {
            let Some(status) = self.nodes[index].replica.as_ref().map(Replica::status) else {
                continue;
            };
            let local = self.local_now(index);
            self.trace.line(
                self.now,
                format_args!(
                    "{} final role={} term={} commit={} applied={} hash={:#x}",
                    self.nodes[index].name,
                    status.role.name(),
                    status.term,
                    status.commit_index,
                    status.applied_index,
                    status.state_hash
                ),
            );
            self.push_event(
                index,
                local,
                status.term,
                EventKind::FinalState {
                    commit_index: status.commit_index,
                    applied_index: status.applied_index,
                    state_hash: status.state_hash,
                },
            );
        }
    }
}
