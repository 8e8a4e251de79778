//! The fault windows the checker judges, derived as the nemesis runs: after
//! every change of the faults in force the cluster takes a [`Snapshot`] (who
//! is cut off into a minority, which nodes could commit writes, whether
//! nothing is wrong at all); at the end of the run [`windows`] turns the
//! snapshots into partition (I6), quorum (I12) and election (I11) windows.
//! Minority sides and connected quorums come from `checker::windows`, as in
//! the lab. Invariant ids refer to crates/checker/README.md.
use std::collections::{BTreeMap, BTreeSet};

use checker::windows::{connected_quorum, minority};
use checker::{ElectionWindow, PartitionWindow, QuorumWindow};
use consensus::NodeId;

use super::Cluster;

/// The faults in force between two changes, as the checker sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    /// Minority sides (I6): groups of nodes, linked among themselves, that
    /// cannot reach a quorum directly, whatever their health.
    minorities: BTreeSet<Vec<String>>,
    /// Nodes whose process runs (alive, not paused): a client reaches these
    /// (I6 b does not count a crashed or frozen node's silence as a hang).
    running: Vec<String>,
    /// If some quorum of healthy nodes is pairwise connected and no node is
    /// degraded (I12): every live node that is not cut off from a quorum of
    /// live nodes, i.e. every node that might lead and commit writes (a
    /// leader across a bridge commits writes just as well). Degraded means
    /// a fault layer on any link or a stalled disk anywhere: a leader whose
    /// replication stream is lossy or dead while its heartbeats still
    /// arrive keeps its followers loyal and commits nothing (a gray failure
    /// Raft's CheckQuorum does not see), so no progress can be demanded
    /// then, as the lab demands none during link faults.
    able: Option<Vec<String>>,
    /// No fault of any kind is in force: every node runs, no link is cut or
    /// degraded (I11).
    calm: bool,
}

/// The checker's windows for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultWindows {
    /// Minority sides of partitions (I6), by start time.
    pub partitions: Vec<PartitionWindow>,
    /// Stretches with a connected quorum while the clients ran (I12).
    pub quorums: Vec<QuorumWindow>,
    /// Calm stretches after the settling time, one election at most (I11).
    pub elections: Vec<ElectionWindow>,
    /// Which nodes were running, piecewise over the run: every client
    /// reaches exactly these (I6 b, `CheckConfig::client_reach`).
    pub running: Vec<Running>,
}

/// The nodes whose process ran during `[start_ns, end_ns)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Start of the stretch (true time, ns).
    pub start_ns: u64,
    /// End of the stretch (exclusive).
    pub end_ns: u64,
    /// Alive and not paused.
    pub nodes: Vec<String>,
}

impl Cluster {
    /// Whether `index` runs normally: alive, not paused, its disk at normal
    /// speed and no crash armed.
    fn healthy(&self, index: usize) -> bool {
        let node = &self.nodes[index];
        node.replica.is_some()
            && !node.paused
            && node.disk_slowdown == 1
            && node.crash_armed.is_none()
    }

    fn id_of(&self, name: &str) -> NodeId {
        let index = self.nodes.iter().position(|n| n.name == name);
        self.ids[index.expect("a node of this cluster")]
    }

    fn snapshot(&self) -> Snapshot {
        let size = self.nodes.len();
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let linked = |a: &str, b: &str| {
            let (a, b) = (self.id_of(a), self.id_of(b));
            !self.net.is_blocked(a, b) && !self.net.is_blocked(b, a)
        };
        let healthy: Vec<String> = (0..size)
            .filter(|i| self.healthy(*i))
            .map(|i| names[i].clone())
            .collect();
        let minorities = components(&minority(&names, size, linked), &linked);
        let running = (0..size)
            .filter(|i| self.live(*i) && !self.nodes[*i].paused)
            .map(|i| names[i].clone())
            .collect();
        let live: Vec<String> = (0..size)
            .filter(|i| self.live(*i))
            .map(|i| names[i].clone())
            .collect();
        let degraded = self.net.has_link_faults() || self.nodes.iter().any(|n| n.disk_slowdown > 1);
        let quorum = if degraded {
            None
        } else {
            connected_quorum(&healthy, size, linked)
        };
        let able = quorum.map(|_| {
            let cut_off = minority(&live, size, linked);
            live.iter()
                .filter(|node| !cut_off.contains(node))
                .cloned()
                .collect()
        });
        let calm = !degraded
            && healthy.len() == size
            && names
                .iter()
                .all(|a| names.iter().all(|b| a == b || linked(a, b)));
        Snapshot {
            minorities,
            running,
            able,
            calm,
        }
    }

    /// Records the faults in force from now on; call after every change a
    /// fault makes (links, processes, disks). Two changes at the same instant
    /// leave one snapshot: the state between them never lasted.
    pub(super) fn faults_changed(&mut self) {
        let snapshot = self.snapshot();
        let now = self.now;
        match self.stretches.last_mut() {
            Some((start, last)) if *start == now => {
                *last = snapshot;
                let len = self.stretches.len();
                if len >= 2 && self.stretches[len - 2].1 == self.stretches[len - 1].1 {
                    self.stretches.pop();
                }
            }
            Some((_, last)) if *last == snapshot => {}
            _ => self.stretches.push((now, snapshot)),
        }
    }
}

/// Splits `nodes` into groups linked among themselves (both directions).
fn components(nodes: &[String], linked: &impl Fn(&str, &str) -> bool) -> BTreeSet<Vec<String>> {
    let mut seen: BTreeSet<&String> = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for start in nodes {
        if !seen.insert(start) {
            continue;
        }
        let mut group = vec![start.clone()];
        let mut cursor = 0;
        while cursor < group.len() {
            let a = group[cursor].clone();
            cursor += 1;
            for b in nodes {
                if !seen.contains(b) && linked(&a, b) {
                    seen.insert(b);
                    group.push(b.clone());
                }
            }
        }
        group.sort();
        groups.insert(group);
    }
    groups
}

/// How long the windows must last, and when they start being judged.
#[derive(Debug, Clone, Copy)]
pub(super) struct WindowBounds {
    /// Election windows begin this long into a calm stretch, once the
    /// previous fault's consequences (a stale leader's lease, a restarted
    /// node's first timeout) have run out (`2·ET_max`).
    pub(super) settle_ns: u64,
    /// Quorum windows shorter than this are left out: the progress grace
    /// plus one client timeout. A few milliseconds left after the grace say
    /// nothing (a healthy cluster may simply have acknowledged no write in
    /// them, while pinned clients' writes to followers are refused); a
    /// client timeout is enough for every client to have moved on from a
    /// node that cannot answer.
    pub(super) min_quorum_ns: u64,
}

/// Turns the snapshots (each in force from its start until the next one's,
/// the last until `end_ns`) into the checker's windows. Quorum windows end
/// when the clients stopped (`workload_end_ns`): later there is no write to
/// judge.
pub(super) fn windows(
    stretches: &[(u64, Snapshot)],
    end_ns: u64,
    workload_end_ns: u64,
    bounds: WindowBounds,
) -> FaultWindows {
    let spans: Vec<(u64, u64, &Snapshot)> = stretches
        .iter()
        .enumerate()
        .map(|(i, (start, snapshot))| {
            let end = stretches.get(i + 1).map_or(end_ns, |next| next.0);
            (*start, end.max(*start), snapshot)
        })
        .filter(|(start, end, _)| end > start)
        .collect();
    let mut out = FaultWindows::default();

    let mut open: BTreeMap<&Vec<String>, u64> = BTreeMap::new();
    for (start, _, snapshot) in &spans {
        let closed: Vec<&Vec<String>> = open
            .keys()
            .copied()
            .filter(|m| !snapshot.minorities.contains(*m))
            .collect();
        for minority in closed {
            let since = open.remove(minority).expect("listed");
            out.partitions.push(partition(since, *start, minority));
        }
        for minority in &snapshot.minorities {
            open.entry(minority).or_insert(*start);
        }
    }
    for (minority, since) in open {
        out.partitions.push(partition(since, end_ns, minority));
    }
    out.partitions
        .sort_by(|a, b| (a.start_ns, &a.minority).cmp(&(b.start_ns, &b.minority)));

    for run in runs(&spans, |s| s.able.clone()) {
        let (start, end, able) = run;
        let end = end.min(workload_end_ns);
        let long_enough = end.saturating_sub(start) >= bounds.min_quorum_ns;
        if let (Some(nodes), true) = (able, long_enough) {
            out.quorums.push(QuorumWindow {
                start_ns: start,
                end_ns: end,
                nodes,
            });
        }
    }
    for (start_ns, end_ns, nodes) in runs(&spans, |s| s.running.clone()) {
        out.running.push(Running {
            start_ns,
            end_ns,
            nodes,
        });
    }
    for (start, end, calm) in runs(&spans, |s| s.calm) {
        let from = start.saturating_add(bounds.settle_ns);
        if calm && from < end {
            out.elections.push(ElectionWindow {
                start_ns: from,
                end_ns: end,
                max_per_minute: 1,
            });
        }
    }
    out
}

fn partition(start_ns: u64, end_ns: u64, minority: &[String]) -> PartitionWindow {
    PartitionWindow {
        start_ns,
        end_ns,
        minority: minority.to_vec(),
    }
}

/// Maximal runs of consecutive spans with the same `key`.
fn runs<K: PartialEq>(
    spans: &[(u64, u64, &Snapshot)],
    key: impl Fn(&Snapshot) -> K,
) -> Vec<(u64, u64, K)> {
    let mut out: Vec<(u64, u64, K)> = Vec::new();
    for (start, end, snapshot) in spans {
        let k = key(snapshot);
        match out.last_mut() {
            Some((_, last_end, last)) if *last == k && *last_end == *start => *last_end = *end,
            _ => out.push((*start, *end, k)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn snap(minorities: &[&[&str]], able: Option<&[&str]>, calm: bool) -> Snapshot {
        Snapshot {
            minorities: minorities.iter().map(|m| names(m)).collect(),
            running: names(ALL),
            able: able.map(names),
            calm,
        }
    }

    const ALL: &[&str] = &["n1", "n2", "n3"];

    fn bounds(settle_ns: u64, min_quorum_ns: u64) -> WindowBounds {
        WindowBounds {
            settle_ns,
            min_quorum_ns,
        }
    }

    #[test]
    fn a_partition_gives_a_minority_window_and_a_quorum_window_on_the_other_side() {
        let stretches = vec![
            (0, snap(&[], Some(ALL), true)),
            (2_000, snap(&[&["n1"]], Some(&["n2", "n3"]), false)),
            (5_000, snap(&[], Some(ALL), true)),
        ];
        let w = windows(&stretches, 9_000, 8_000, bounds(1_000, 0));
        assert_eq!(w.partitions, vec![partition(2_000, 5_000, &names(&["n1"]))]);
        let quorums: Vec<(u64, u64, usize)> = w
            .quorums
            .iter()
            .map(|q| (q.start_ns, q.end_ns, q.nodes.len()))
            .collect();
        assert_eq!(
            quorums,
            vec![(0, 2_000, 3), (2_000, 5_000, 2), (5_000, 8_000, 3)]
        );
        let elections: Vec<(u64, u64)> =
            w.elections.iter().map(|e| (e.start_ns, e.end_ns)).collect();
        assert_eq!(elections, vec![(1_000, 2_000), (6_000, 9_000)]);
    }

    #[test]
    fn a_minority_that_outlives_other_changes_keeps_one_window() {
        // n1 cut off throughout; n2 crashes and restarts meanwhile.
        let stretches = vec![
            (1_000, snap(&[&["n1"]], Some(&["n2", "n3"]), false)),
            (2_000, snap(&[&["n1"]], None, false)),
            (3_000, snap(&[&["n1"]], Some(&["n2", "n3"]), false)),
            (4_000, snap(&[], Some(ALL), true)),
        ];
        let w = windows(&stretches, 6_000, 6_000, bounds(500, 0));
        assert_eq!(w.partitions, vec![partition(1_000, 4_000, &names(&["n1"]))]);
        let starts: Vec<u64> = w.quorums.iter().map(|q| q.start_ns).collect();
        assert_eq!(starts, vec![1_000, 3_000, 4_000]);
        // Nothing is calm for long enough before 4_000 + 500.
        assert_eq!(w.elections.len(), 1);
        assert_eq!(w.elections[0].start_ns, 4_500);
    }

    #[test]
    fn quorum_windows_stop_with_the_clients_and_short_calm_stretches_give_no_election_window() {
        let stretches = vec![
            (0, snap(&[], Some(ALL), true)),
            (300, snap(&[], None, false)),
            (400, snap(&[], Some(ALL), true)),
        ];
        let w = windows(&stretches, 2_000, 1_000, bounds(500, 0));
        let quorums: Vec<(u64, u64)> = w.quorums.iter().map(|q| (q.start_ns, q.end_ns)).collect();
        assert_eq!(quorums, vec![(0, 300), (400, 1_000)]);
        // Too short to judge (grace plus a client timeout): left out.
        let w = windows(&stretches, 2_000, 1_000, bounds(500, 400));
        let quorums: Vec<(u64, u64)> = w.quorums.iter().map(|q| (q.start_ns, q.end_ns)).collect();
        assert_eq!(quorums, vec![(400, 1_000)]);
        let elections: Vec<(u64, u64)> =
            w.elections.iter().map(|e| (e.start_ns, e.end_ns)).collect();
        assert_eq!(elections, vec![(900, 2_000)]);
    }

    #[test]
    fn components_split_a_minority_into_its_sides() {
        let nodes = names(&["n1", "n2", "n3", "n4", "n5"]);
        // 2 | 2 | 1: n1–n2 and n3–n4 linked, n5 alone.
        let linked = |a: &str, b: &str| {
            let pair = |x: &str, y: &str| (a == x && b == y) || (a == y && b == x);
            pair("n1", "n2") || pair("n3", "n4")
        };
        let groups = components(&nodes, &linked);
        let expected: BTreeSet<Vec<String>> =
            [names(&["n1", "n2"]), names(&["n3", "n4"]), names(&["n5"])]
                .into_iter()
                .collect();
        assert_eq!(groups, expected);
    }
}
