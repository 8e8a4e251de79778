//! The physical floor under a write on this machine, measured in the same run
//! as the figures it bounds: one fdatasync on the nodes' disk (of a small
//! append into preallocated space, the cheapest durable write), two at once
//! (nodes sharing one disk), a UDP round trip between lab namespaces, and
//! durable round trips (requests answered only after an fdatasync, alone or
//! through a quorum of two). [`measure`] takes the samples; this module
//! summarises them and says what each bounds.

pub mod measure;

pub use measure::{
    QuorumSockets, durable_round_trips, fsync_latency, fsync_pair_latency, quorum_round_trips,
    udp_round_trips,
};

use crate::table::Goal;
use figures::{Summary, ms};

/// How many samples of each kind one floor takes (see
/// [`crate::cluster::BenchLab::floor_samples`] and [`FloorSamples::per_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorSamples {
    /// Single append + fdatasync.
    pub fsync: usize,
    /// Two concurrent append + fdatasync.
    pub fsync_pair: usize,
    /// UDP round trips between two lab namespaces.
    pub rtt: usize,
    /// Durable round trips: request, append + fdatasync, answer.
    pub durable_rtt: usize,
    /// Quorum durable round trips (labs of two nodes and more).
    pub quorum_rtt: usize,
}

impl Default for FloorSamples {
    /// Well under a second on a virtio disk, and enough for a stable median.
    fn default() -> Self {
        FloorSamples {
            fsync: 200,
            fsync_pair: 100,
            rtt: 500,
            durable_rtt: 300,
            quorum_rtt: 300,
        }
    }
}

impl FloorSamples {
    /// Each count divided over `turns` measurements (rounded up), for a
    /// floor taken in turns with the writes it bounds.
    pub fn per_turn(self, turns: usize) -> FloorSamples {
        let share = |n: usize| n.div_ceil(turns.max(1));
        FloorSamples {
            fsync: share(self.fsync),
            fsync_pair: share(self.fsync_pair),
            rtt: share(self.rtt),
            durable_rtt: share(self.durable_rtt),
            quorum_rtt: share(self.quorum_rtt),
        }
    }
}

/// The floor's raw samples (nanoseconds), pooled over the turns in which
/// they were taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorRaw {
    /// See [`Floor::fsync`].
    pub fsync: Vec<u64>,
    /// See [`Floor::fsync_pair`].
    pub fsync_pair: Vec<u64>,
    /// See [`Floor::rtt`].
    pub rtt: Vec<u64>,
    /// See [`Floor::durable_rtt`].
    pub durable_rtt: Vec<u64>,
    /// See [`Floor::quorum_rtt`]; `None` in a 1-node lab.
    pub quorum_rtt: Option<Vec<u64>>,
}

impl FloorRaw {
    /// Adds the samples of a later turn.
    pub fn extend(&mut self, later: FloorRaw) {
        self.fsync.extend(later.fsync);
        self.fsync_pair.extend(later.fsync_pair);
        self.rtt.extend(later.rtt);
        self.durable_rtt.extend(later.durable_rtt);
        if let Some(quorum) = later.quorum_rtt {
            self.quorum_rtt.get_or_insert_with(Vec::new).extend(quorum);
        }
    }
}

/// What the machine itself costs a write, as latency summaries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Floor {
    /// Append a small record into preallocated space, then fdatasync, on
    /// the nodes' disk.
    pub fsync: Summary,
    /// Two such appends to two files at once, until both are durable: what a
    /// leader and a follower sharing one disk pay together.
    pub fsync_pair: Summary,
    /// UDP round trip between two lab namespaces.
    pub rtt: Summary,
    /// From the client's namespace to a node's and back, the answer sent
    /// only after an append + fdatasync there: what the simplest durable
    /// server costs a sequential client, with the idle time between
    /// requests (on a VM, an idle vCPU wakes slower from the disk's
    /// interrupt than one that syncs back to back).
    pub durable_rtt: Summary,
    /// The simplest quorum write, in labs of two nodes and more: from the
    /// client's namespace to a "leader" echo in the first node's, which
    /// forwards the request to a "follower" echo in every other node's and
    /// then appends + fdatasyncs; each follower appends + fdatasyncs and
    /// answers; the leader answers once it and a majority of the cluster
    /// are durable. Every file is on the one disk, as the nodes' are, so
    /// this counts what all of a cluster's syncs cost each other.
    pub quorum_rtt: Option<Summary>,
}

impl Floor {
    /// Summarises raw samples.
    pub fn of(raw: &FloorRaw) -> Floor {
        Floor {
            fsync: Summary::of(&raw.fsync),
            fsync_pair: Summary::of(&raw.fsync_pair),
            rtt: Summary::of(&raw.rtt),
            durable_rtt: Summary::of(&raw.durable_rtt),
            quorum_rtt: raw.quorum_rtt.as_deref().map(Summary::of),
        }
    }

    /// The least a write acknowledged by a cluster of `size` can take if the
    /// nodes had disks of their own: one fsync, plus one round trip to a
    /// follower once there is one.
    pub fn write_floor_ns(&self, size: usize) -> u64 {
        if size <= 1 {
            self.fsync.p50_ns
        } else {
            self.fsync.p50_ns + self.rtt.p50_ns
        }
    }

    /// The write floor when every node shares this one disk (3 nodes and
    /// more): the quorum's fsyncs contend, so two at once plus a round trip.
    pub fn shared_disk_floor_ns(&self, size: usize) -> Option<u64> {
        (size >= 3).then_some(self.fsync_pair.p50_ns + self.rtt.p50_ns)
    }

    /// `latency_ns` as a multiple of [`Floor::write_floor_ns`]; `None` when
    /// the floor measured zero.
    pub fn ratio_to_write_floor(&self, size: usize, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.write_floor_ns(size))
    }

    /// `latency_ns` as a multiple of [`Floor::shared_disk_floor_ns`].
    pub fn ratio_to_shared_disk_floor(&self, size: usize, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.shared_disk_floor_ns(size)?)
    }

    /// `latency_ns` as a multiple of the durable round trip p50 (a 1-node
    /// write's floor as a request/response loop meets it).
    pub fn ratio_to_durable_rtt(&self, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.durable_rtt.p50_ns)
    }

    /// `latency_ns` as a multiple of the quorum durable round trip p50.
    pub fn ratio_to_quorum_rtt(&self, latency_ns: u64) -> Option<f64> {
        ratio(latency_ns, self.quorum_rtt?.p50_ns)
    }

    /// One line for logs and table headings.
    pub fn describe(&self) -> String {
        format!(
            "floor: fsync p50 {:.3} ms, 2 fsyncs at once p50 {:.3} ms, namespace RTT p50 {:.3} ms, durable round trip p50 {:.3} ms",
            ms(self.fsync.p50_ns),
            ms(self.fsync_pair.p50_ns),
            ms(self.rtt.p50_ns),
            ms(self.durable_rtt.p50_ns)
        )
    }

    /// [`Floor::describe`] plus the floors that apply to a cluster of `size`.
    pub fn describe_for(&self, size: usize) -> String {
        let mut text = self.describe();
        if let Some(quorum) = self.quorum_rtt {
            text.push_str(&format!(
                ", quorum durable round trip p50 {:.3} ms",
                ms(quorum.p50_ns)
            ));
        }
        text.push_str(&format!(
            "; write floor {:.3} ms",
            ms(self.write_floor_ns(size))
        ));
        if let Some(shared) = self.shared_disk_floor_ns(size) {
            text.push_str(&format!(", shared-disk floor {:.3} ms", ms(shared)));
        }
        text
    }
}

fn ratio(latency_ns: u64, floor_ns: u64) -> Option<f64> {
    (floor_ns > 0).then(|| latency_ns as f64 / floor_ns as f64)
}

/// The target for a write p50 over [`Floor::write_floor_ns`]: 1.5x
/// alone, 2x with a quorum of 3 or more. A 2-node cluster has none.
pub fn write_floor_goal(size: usize) -> Option<Goal> {
    match size {
        0 | 1 => Some(Goal::AtMost(1.5)),
        2 => None,
        _ => Some(Goal::AtMost(2.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor() -> Floor {
        Floor::of(&FloorRaw {
            fsync: vec![171_000],
            fsync_pair: vec![262_000],
            rtt: vec![15_000],
            durable_rtt: vec![250_000],
            quorum_rtt: Some(vec![400_000]),
        })
    }

    #[test]
    fn write_floors_by_cluster_size() {
        let floor = floor();
        assert_eq!(floor.write_floor_ns(1), 171_000);
        assert_eq!(floor.write_floor_ns(2), 186_000);
        assert_eq!(floor.write_floor_ns(5), 186_000);
        assert_eq!(floor.shared_disk_floor_ns(2), None);
        assert_eq!(floor.shared_disk_floor_ns(3), Some(277_000));
        assert_eq!(floor.ratio_to_write_floor(1, 342_000), Some(2.0));
        assert_eq!(floor.ratio_to_shared_disk_floor(3, 554_000), Some(2.0));
        assert_eq!(floor.ratio_to_shared_disk_floor(1, 554_000), None);
        assert_eq!(Floor::default().ratio_to_write_floor(1, 5), None);
        assert_eq!(floor.ratio_to_durable_rtt(375_000), Some(1.5));
        assert_eq!(floor.ratio_to_quorum_rtt(600_000), Some(1.5));
    }

    #[test]
    fn turns_pool_their_samples() {
        let samples = FloorSamples::default().per_turn(4);
        assert_eq!(
            (samples.fsync, samples.rtt, samples.quorum_rtt),
            (50, 125, 75)
        );
        let turn = |ns: u64, quorum: bool| FloorRaw {
            fsync: vec![ns],
            fsync_pair: vec![ns],
            rtt: vec![ns],
            durable_rtt: vec![ns],
            quorum_rtt: quorum.then(|| vec![ns]),
        };
        let mut raw = turn(1, false);
        raw.extend(turn(2, true));
        raw.extend(turn(3, true));
        assert_eq!(raw.fsync, vec![1, 2, 3]);
        assert_eq!(raw.quorum_rtt, Some(vec![2, 3]));
        assert_eq!(Floor::of(&raw).durable_rtt.count, 3);
    }

    #[test]
    fn goals_over_the_floor_by_cluster_size() {
        assert_eq!(write_floor_goal(1), Some(Goal::AtMost(1.5)));
        assert_eq!(write_floor_goal(2), None);
        assert_eq!(write_floor_goal(3), Some(Goal::AtMost(2.0)));
        assert_eq!(write_floor_goal(7), Some(Goal::AtMost(2.0)));
    }

    #[test]
    fn descriptions_name_every_figure() {
        let floor = floor();
        assert_eq!(
            floor.describe(),
            "floor: fsync p50 0.171 ms, 2 fsyncs at once p50 0.262 ms, namespace RTT p50 0.015 ms, durable round trip p50 0.250 ms"
        );
        assert!(floor.describe_for(1).ends_with("; write floor 0.171 ms"));
        assert!(
            floor
                .describe_for(3)
                .ends_with("; write floor 0.186 ms, shared-disk floor 0.277 ms")
        );
    }
}
