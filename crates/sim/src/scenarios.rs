//! Named scenario rows (`#N`, defined in `crates/checker/README.md`) as fixed
//! fault scripts, each with the behaviour the safe mode must show besides
//! breaking no invariant.
//!
//! The random schedules of the fuzzer cover far more ground; these pin the
//! matrix rows whose *expected behaviour* (not only safety) can be stated
//! precisely: who must (or must not) be elected while a fault lasts. A
//! regression found by the fuzzer in the safe mode is pinned here the same
//! way, with its seed and the event sequence that broke it (none so far:
//! 10,000+ random schedules found no safe-mode violation).
use checker::EventKind;
use consensus::Mode;

use crate::cluster::{Cluster, RunOutput, Script, SimOptions};
use crate::schedule::{Fault, PartitionShape, Scheduled, Target, Timing};

const MS: u64 = 1_000_000;
/// Faults start once the first leader has long been elected.
const FAULT_AT: u64 = 2_000 * MS;

/// Whether a new leader must appear while the fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The majority must elect a new leader during the fault.
    Required,
    /// Nobody may be elected during the fault (PreVote, follower leases).
    Forbidden,
    /// Either is fine; only safety is judged.
    Any,
}

/// One row of the scenario matrix.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Short identifier (used on the command line and in test names).
    pub name: &'static str,
    /// Scenario row number (`#N` in `crates/checker/README.md`).
    pub row: u32,
    /// Cluster size the scenario runs with.
    pub nodes: usize,
    /// What the scenario does and why, in one line.
    pub description: &'static str,
    /// What the election outcome must be.
    pub election: Election,
    faults: fn(&Timing) -> Vec<(u64, Fault)>,
    /// Fault duration in election timeouts (max), from `FAULT_AT`.
    length_in_et: u64,
}

impl Scenario {
    /// The fault script for the given timing.
    pub fn script(&self, timing: &Timing) -> Script {
        let fault_end = FAULT_AT + self.length_in_et * timing.election_max_ns;
        let mut faults: Vec<Scheduled> = (self.faults)(timing)
            .into_iter()
            .map(|(offset, fault)| Scheduled {
                at: FAULT_AT + offset,
                fault,
            })
            .collect();
        // Every episode ends at fault_end; heal-all follows a little later.
        faults.push(Scheduled {
            at: fault_end,
            fault: Fault::Heal { episode: 1 },
        });
        faults.push(Scheduled {
            at: fault_end,
            fault: Fault::Resume { episode: 1 },
        });
        faults.push(Scheduled {
            at: fault_end,
            fault: Fault::Restart { episode: 1 },
        });
        Script {
            faults,
            heal_at: fault_end + 2 * timing.election_max_ns,
        }
    }

    /// The window in which the fault is active (true time).
    pub fn fault_window(&self, timing: &Timing) -> (u64, u64) {
        (
            FAULT_AT,
            FAULT_AT + self.length_in_et * timing.election_max_ns,
        )
    }

    /// Runs the scenario with `seed` (jitter, clocks and workload).
    pub fn run(&self, seed: u64) -> RunOutput {
        let options = SimOptions::new(Mode::Safe, self.nodes);
        Cluster::scripted(seed, options, self.script(&crate::cluster::timing())).run()
    }

    /// Nodes that logged `became_leader` inside the fault window.
    pub fn leaders_elected_during_fault(&self, output: &RunOutput) -> Vec<(String, u64)> {
        let (start, end) = self.fault_window(&crate::cluster::timing());
        output
            .events
            .iter()
            .filter(|e| e.kind == EventKind::BecameLeader && e.mono_ns >= start && e.mono_ns < end)
            .map(|e| (e.node.clone(), e.term))
            .collect()
    }
}

fn partition(shape: PartitionShape) -> Vec<(u64, Fault)> {
    vec![(0, Fault::Partition { episode: 1, shape })]
}

/// The scenario matrix rows the simulator can express.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "leader_in_majority",
            row: 1,
            nodes: 5,
            description: "clean split, leader on the majority side: it keeps leading, the minority elects nobody",
            election: Election::Forbidden,
            faults: |_| partition(PartitionShape::LeaderInMajority),
            length_in_et: 8,
        },
        Scenario {
            name: "leader_in_minority",
            row: 2,
            nodes: 5,
            description: "clean split, leader with one follower on the minority side: the majority elects a new leader",
            election: Election::Required,
            faults: |_| partition(PartitionShape::LeaderInMinority),
            length_in_et: 8,
        },
        Scenario {
            name: "isolate_follower",
            row: 3,
            nodes: 3,
            description: "one follower cut off for 10 ET: PreVote keeps its term, the leader is not deposed",
            election: Election::Forbidden,
            faults: |_| partition(PartitionShape::Isolate(Target::Follower)),
            length_in_et: 10,
        },
        Scenario {
            name: "isolate_leader",
            row: 4,
            nodes: 7,
            description: "leader cut off both ways: the majority elects a successor",
            election: Election::Required,
            faults: |_| partition(PartitionShape::Isolate(Target::Leader)),
            length_in_et: 6,
        },
        Scenario {
            name: "leader_cannot_receive",
            row: 6,
            nodes: 3,
            description: "ingress to the leader dropped: CheckQuorum steps it down and it stops heartbeating, so a new leader appears",
            election: Election::Required,
            faults: |_| partition(PartitionShape::OneWayIn(Target::Leader)),
            length_in_et: 10,
        },
        Scenario {
            name: "leader_cannot_send",
            row: 7,
            nodes: 3,
            description: "egress from the leader dropped: the followers elect a successor",
            election: Election::Required,
            faults: |_| partition(PartitionShape::OneWayOut(Target::Leader)),
            length_in_et: 6,
        },
        Scenario {
            name: "follower_cannot_send",
            row: 8,
            nodes: 3,
            description: "a follower hears heartbeats but cannot send: it must not campaign, epochs do not churn",
            election: Election::Forbidden,
            faults: |_| partition(PartitionShape::OneWayOut(Target::Follower)),
            length_in_et: 10,
        },
        Scenario {
            name: "bridge",
            row: 10,
            nodes: 5,
            description: "{1,2} | 3 | {4,5} with 3 bridging: at most one leader per term, acked writes survive",
            election: Election::Any,
            faults: |_| partition(PartitionShape::Bridge),
            length_in_et: 10,
        },
        Scenario {
            name: "majorities_ring",
            row: 13,
            nodes: 5,
            description: "every node sees a majority, no two the same one: safety holds",
            election: Election::Any,
            faults: |_| partition(PartitionShape::MajoritiesRing),
            length_in_et: 10,
        },
        Scenario {
            name: "leader_pause_beyond_lease",
            row: 21,
            nodes: 3,
            description: "leader paused for 3 leases: the others elect a successor; on resume the old leader serves nothing stale",
            election: Election::Required,
            faults: |t| {
                vec![(
                    0,
                    Fault::Pause {
                        episode: 1,
                        target: Target::Leader,
                    },
                )]
                .into_iter()
                .chain([(
                    3 * t.lease_ns.max(t.election_max_ns),
                    Fault::Resume { episode: 1 },
                )])
                .collect()
            },
            length_in_et: 6,
        },
        Scenario {
            name: "follower_pause",
            row: 22,
            nodes: 3,
            description: "a follower paused for 5 ET: on resume it does not disrupt the leader",
            election: Election::Forbidden,
            faults: |_| {
                vec![(
                    0,
                    Fault::Pause {
                        episode: 1,
                        target: Target::Follower,
                    },
                )]
            },
            length_in_et: 5,
        },
        Scenario {
            name: "leader_killed_after_write",
            row: 26,
            nodes: 5,
            description: "the leader is SIGKILLed right after a write left it unsynced: a successor is elected, no acked write is lost",
            election: Election::Required,
            faults: |_| {
                vec![(
                    0,
                    Fault::CrashAfterWrite {
                        episode: 1,
                        target: Target::Leader,
                    },
                )]
            },
            length_in_et: 6,
        },
    ]
}
