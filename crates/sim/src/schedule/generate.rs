//! Drawing a fault schedule from the seed: episodes of each kind with their
//! start, duration and targets, initial clock offsets and rates, heal time.
use std::collections::{BTreeMap, BTreeSet};

use super::{
    EpisodeKind, Fault, LinkScope, PartitionShape, Schedule, ScheduleOptions, Scheduled, Target,
    Timing,
};
use crate::clock::max_deviation_ppm;
use crate::net::{Channel, LinkFaults};
use crate::rng::SimRng;

const MS: u64 = 1_000_000;

struct Builder<'a> {
    rng: &'a mut SimRng,
    timing: Timing,
    nodes: usize,
    next_episode: u64,
    faults: Vec<Scheduled>,
    kinds: BTreeSet<EpisodeKind>,
    episode_kinds: BTreeMap<u64, EpisodeKind>,
    max_ppm: i64,
    window_end: u64,
}

impl Builder<'_> {
    fn episode(&mut self) -> u64 {
        self.next_episode += 1;
        self.next_episode
    }

    fn at(&mut self, at: u64, fault: Fault) {
        self.faults.push(Scheduled {
            at: at.min(self.window_end),
            fault,
        });
    }

    fn target(&mut self) -> Target {
        *self.rng.pick(&[
            Target::Leader,
            Target::Leader,
            Target::Any,
            Target::Follower,
        ])
    }

    /// A duration, in multiples of the election timeout, drawn from a menu
    /// that straddles the interesting thresholds (lease, ET, several ET).
    fn duration(&mut self) -> u64 {
        let t = self.timing;
        let menu = [
            t.heartbeat_ns * 2,
            t.lease_ns / 2,
            t.lease_ns * 3,
            t.election_max_ns * 2,
            t.election_max_ns * 5,
            t.election_max_ns * 10,
        ];
        let base = *self.rng.pick(&menu);
        base + self.rng.range(0, base / 2 + 1)
    }

    fn shape(&mut self) -> PartitionShape {
        let shapes = [
            PartitionShape::RandomHalves,
            PartitionShape::LeaderInMajority,
            PartitionShape::LeaderInMinority,
            PartitionShape::Isolate(Target::Leader),
            PartitionShape::Isolate(Target::Follower),
            PartitionShape::Bridge,
            PartitionShape::MajoritiesRing,
            PartitionShape::OneWayIn(Target::Leader),
            PartitionShape::OneWayOut(Target::Leader),
            PartitionShape::OneWayIn(Target::Follower),
            PartitionShape::OneWayOut(Target::Follower),
            PartitionShape::CutLink,
        ];
        *self.rng.pick(&shapes)
    }

    fn add(&mut self, kind: EpisodeKind, start: u64) {
        self.kinds.insert(kind);
        let first = self.next_episode + 1;
        self.add_faults(kind, start);
        for episode in first..=self.next_episode {
            self.episode_kinds.insert(episode, kind);
        }
    }

    fn add_faults(&mut self, kind: EpisodeKind, start: u64) {
        let t = self.timing;
        match kind {
            EpisodeKind::Partition => {
                let episode = self.episode();
                let shape = self.shape();
                let end = start + self.duration();
                self.at(start, Fault::Partition { episode, shape });
                self.at(end, Fault::Heal { episode });
            }
            EpisodeKind::Flapping => {
                let episode = self.episode();
                let shape = *self.rng.pick(&[
                    PartitionShape::Isolate(Target::Follower),
                    PartitionShape::Isolate(Target::Leader),
                    PartitionShape::CutLink,
                    PartitionShape::OneWayIn(Target::Any),
                ]);
                let period = *self.rng.pick(&[
                    t.election_min_ns / 2,
                    t.election_min_ns,
                    t.election_max_ns * 2,
                ]);
                let toggles = self.rng.range(3, 9);
                self.at(start, Fault::Partition { episode, shape });
                let mut now = start;
                for toggle in 0..toggles {
                    now += period / 2 + self.rng.range(0, period / 4 + 1);
                    if toggle % 2 == 0 {
                        self.at(now, Fault::Heal { episode });
                    } else {
                        self.at(now, Fault::Reapply { episode });
                    }
                }
                self.at(now + period, Fault::Heal { episode });
            }
            EpisodeKind::Cascading => {
                // Isolate the leader, wait for a successor, isolate that one
                // while the first heals, then cut the leader into a minority.
                let steps = self.rng.range(2, 5);
                let mut now = start;
                let mut previous = None;
                for step in 0..steps {
                    let episode = self.episode();
                    let shape = if step + 1 == steps {
                        PartitionShape::LeaderInMinority
                    } else {
                        PartitionShape::Isolate(Target::Leader)
                    };
                    self.at(now, Fault::Partition { episode, shape });
                    if let Some(previous) = previous {
                        self.at(now, Fault::Heal { episode: previous });
                    }
                    previous = Some(episode);
                    now += t.election_max_ns * 2 + self.rng.range(0, t.election_max_ns * 2);
                }
                if let Some(previous) = previous {
                    self.at(now, Fault::Heal { episode: previous });
                }
            }
            EpisodeKind::LinkFaults => {
                let episode = self.episode();
                let scope = match self.rng.below(3) {
                    0 => LinkScope::All,
                    1 => LinkScope::Node(self.target()),
                    _ => LinkScope::OneLink(self.target()),
                };
                let channels: BTreeSet<Channel> = match self.rng.below(3) {
                    0 => [Channel::Datagram].into_iter().collect(),
                    1 => [Channel::Stream].into_iter().collect(),
                    _ => [Channel::Datagram, Channel::Stream].into_iter().collect(),
                };
                let mut faults = LinkFaults::CLEAN;
                faults.drop_ppm = *self.rng.pick(&[0, 50_000, 200_000, 500_000, 1_000_000]);
                faults.duplicate_ppm = *self.rng.pick(&[0, 0, 100_000, 300_000]);
                faults.reorder_ppm = *self.rng.pick(&[0, 0, 100_000, 300_000]);
                let (min, max) = *self.rng.pick(&[
                    (
                        LinkFaults::CLEAN.delay_min_ns,
                        LinkFaults::CLEAN.delay_max_ns,
                    ),
                    (5 * MS, 30 * MS),
                    (25 * MS, 125 * MS),
                    (t.election_max_ns, t.election_max_ns * 2),
                ]);
                faults.delay_min_ns = min;
                faults.delay_max_ns = max;
                faults.reorder_extra_ns = *self.rng.pick(&[5 * MS, 50 * MS, t.election_max_ns]);
                let end = start + self.duration();
                self.at(
                    start,
                    Fault::LinkFaults {
                        episode,
                        scope,
                        channels,
                        faults,
                    },
                );
                self.at(end, Fault::ClearLinkFaults { episode });
            }
            EpisodeKind::Crash => {
                // Sometimes several nodes at once, up to all of them.
                let count = if self.rng.chance(1, 4) {
                    self.rng.range(2, self.nodes as u64 + 1)
                } else {
                    1
                };
                for _ in 0..count {
                    let episode = self.episode();
                    let target = self.target();
                    let down = *self
                        .rng
                        .pick(&[MS, 50 * MS, t.lease_ns, t.election_max_ns * 3]);
                    let at = start + self.rng.range(0, t.election_max_ns);
                    self.at(at, Fault::Crash { episode, target });
                    let up = at + down + self.rng.range(0, down + 1);
                    self.at(up, Fault::Restart { episode });
                }
            }
            EpisodeKind::CrashAfterWrite => {
                // A short storm of kills at the worst moment, each followed
                // by a quick or a slow restart.
                // Half the time the leader is cut off first, so the kills
                // land on the votes and acks of the election that follows.
                let count = self.rng.range(1, 5);
                let mut at = start;
                if self.rng.chance(1, 2) {
                    let episode = self.episode();
                    let end = start + t.election_max_ns * 3;
                    self.at(
                        start,
                        Fault::Partition {
                            episode,
                            shape: PartitionShape::Isolate(Target::Leader),
                        },
                    );
                    self.at(end, Fault::Heal { episode });
                    at += t.election_min_ns;
                }
                for _ in 0..count {
                    let episode = self.episode();
                    let target = *self
                        .rng
                        .pick(&[Target::Follower, Target::Any, Target::Leader]);
                    let down =
                        *self
                            .rng
                            .pick(&[MS, MS, 20 * MS, t.lease_ns, t.election_max_ns * 3]);
                    self.at(at, Fault::CrashAfterWrite { episode, target });
                    self.at(at + down, Fault::Restart { episode });
                    at += down + self.rng.range(MS, t.election_max_ns);
                }
            }
            EpisodeKind::Pause => {
                let episode = self.episode();
                let target = self.target();
                let length =
                    *self
                        .rng
                        .pick(&[t.heartbeat_ns * 3, t.lease_ns * 3, t.election_max_ns * 5]);
                self.at(start, Fault::Pause { episode, target });
                self.at(start + length, Fault::Resume { episode });
            }
            EpisodeKind::ClockDrift => {
                let rate_ppm = self.rng.range(0, 2 * self.max_ppm as u64 + 1) as i64 - self.max_ppm;
                let target = self.target();
                let episode = self.episode();
                self.at(
                    start,
                    Fault::ClockRate {
                        episode,
                        target,
                        rate_ppm,
                    },
                );
            }
            EpisodeKind::DiskStall => {
                let episode = self.episode();
                let target = self.target();
                let factor = *self.rng.pick(&[10, 100, 1_000]);
                let end = start + self.duration();
                self.at(
                    start,
                    Fault::DiskStall {
                        episode,
                        target,
                        factor,
                    },
                );
                self.at(end, Fault::DiskRecover { episode });
            }
            EpisodeKind::DriftBeyondBound => {
                // The leader's clock suddenly runs at 30–60 % speed, so its
                // lease outlives the followers' election timeouts; then the
                // leader is cut off and the others elect a successor.
                let rate_ppm = -(self.rng.range(400_000, 700_001) as i64);
                let episode = self.episode();
                self.at(
                    start,
                    Fault::ClockRate {
                        episode,
                        target: Target::Leader,
                        rate_ppm,
                    },
                );
                let episode = self.episode();
                let cut = start + self.rng.range(t.heartbeat_ns, t.lease_ns);
                self.at(
                    cut,
                    Fault::Partition {
                        episode,
                        shape: PartitionShape::Isolate(Target::Leader),
                    },
                );
                self.at(cut + t.election_max_ns * 4, Fault::Heal { episode });
            }
        }
    }
}

/// Draws a schedule for `nodes` nodes.
pub fn generate(
    rng: &mut SimRng,
    nodes: usize,
    timing: Timing,
    options: ScheduleOptions,
) -> Schedule {
    let max_ppm = max_deviation_ppm(options.rho);
    let clock_rates_ppm = (0..nodes)
        .map(|_| rng.range(0, 2 * max_ppm as u64 + 1) as i64 - max_ppm)
        .collect();
    let clock_offsets_ns = (0..nodes).map(|_| rng.range(0, 3_600_000 * MS)).collect();
    let window_start = 500 * MS;
    let heal_at = rng.range(6_000 * MS, 12_000 * MS);
    let mut builder = Builder {
        rng,
        timing,
        nodes,
        next_episode: 0,
        faults: Vec::new(),
        kinds: BTreeSet::new(),
        episode_kinds: BTreeMap::new(),
        max_ppm,
        window_end: heal_at,
    };
    if options.faults {
        let kinds = [
            (EpisodeKind::Partition, 30),
            (EpisodeKind::Flapping, 8),
            (EpisodeKind::Cascading, 8),
            (EpisodeKind::LinkFaults, 16),
            (EpisodeKind::Crash, 10),
            (EpisodeKind::CrashAfterWrite, 10),
            (EpisodeKind::Pause, 10),
            (EpisodeKind::ClockDrift, 6),
            (EpisodeKind::DiskStall, 8),
        ];
        let weights: Vec<u64> = kinds.iter().map(|(_, w)| *w).collect();
        let episodes = builder.rng.range(2, 7);
        for _ in 0..episodes {
            let kind = kinds[builder.rng.weighted(&weights)].0;
            let start = builder
                .rng
                .range(window_start, heal_at.saturating_sub(500 * MS));
            builder.add(kind, start);
        }
        if options.drift_beyond_bound {
            let count = builder.rng.range(1, 4);
            for _ in 0..count {
                let start = builder
                    .rng
                    .range(window_start + 500 * MS, heal_at.saturating_sub(2_500 * MS));
                builder.add(EpisodeKind::DriftBeyondBound, start);
            }
        }
    }
    let kinds = builder.kinds;
    let episode_kinds = builder.episode_kinds;
    let mut faults = builder.faults;
    // Stable: faults at the same instant keep their generation order.
    faults.sort_by_key(|scheduled| scheduled.at);
    Schedule {
        faults,
        kinds,
        episode_kinds,
        heal_at,
        clock_rates_ppm,
        clock_offsets_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            heartbeat_ns: 50 * MS,
            election_min_ns: 250 * MS,
            election_max_ns: 500 * MS,
            lease_ns: 237 * MS,
        }
    }

    fn options() -> ScheduleOptions {
        ScheduleOptions {
            faults: true,
            drift_beyond_bound: false,
            rho: 1.01,
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = generate(&mut SimRng::stream(5, "schedule"), 5, timing(), options());
        let b = generate(&mut SimRng::stream(5, "schedule"), 5, timing(), options());
        assert_eq!(a, b);
        let c = generate(&mut SimRng::stream(6, "schedule"), 5, timing(), options());
        assert_ne!(a, c);
    }

    #[test]
    fn faults_are_sorted_and_end_by_heal() {
        for seed in 0..200 {
            let s = generate(
                &mut SimRng::stream(seed, "schedule"),
                7,
                timing(),
                options(),
            );
            assert!(s.faults.windows(2).all(|w| w[0].at <= w[1].at));
            assert!(s.faults.iter().all(|f| f.at <= s.heal_at));
            assert!(!s.faults.is_empty());
        }
    }

    #[test]
    fn every_episode_kind_appears_across_seeds() {
        let mut seen = BTreeSet::new();
        for seed in 0..300 {
            let mut opts = options();
            opts.drift_beyond_bound = seed % 10 == 0;
            seen.extend(generate(&mut SimRng::stream(seed, "schedule"), 5, timing(), opts).kinds);
        }
        assert_eq!(seen.len(), 10, "{seen:?}");
    }

    #[test]
    fn in_bound_rates_respect_rho() {
        let max = max_deviation_ppm(1.01);
        for seed in 0..100 {
            let s = generate(
                &mut SimRng::stream(seed, "schedule"),
                7,
                timing(),
                options(),
            );
            assert!(s.clock_rates_ppm.iter().all(|r| r.abs() <= max));
            for f in &s.faults {
                if let Fault::ClockRate { rate_ppm, .. } = f.fault {
                    assert!(rate_ppm.abs() <= max);
                }
            }
        }
    }

    #[test]
    fn drift_beyond_bound_slows_a_leader_far_past_rho() {
        let mut opts = options();
        opts.drift_beyond_bound = true;
        let s = generate(&mut SimRng::stream(1, "schedule"), 3, timing(), opts);
        assert!(s.kinds.contains(&EpisodeKind::DriftBeyondBound));
        assert!(s.faults.iter().any(|f| matches!(
            f.fault,
            Fault::ClockRate { target: Target::Leader, rate_ppm, .. } if rate_ppm <= -400_000
        )));
    }

    #[test]
    fn quiet_schedule_has_no_faults() {
        let mut opts = options();
        opts.faults = false;
        let s = generate(&mut SimRng::stream(1, "schedule"), 3, timing(), opts);
        assert!(s.faults.is_empty() && s.kinds.is_empty());
    }
}
