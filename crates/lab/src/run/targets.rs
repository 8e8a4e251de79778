//! Role-aware targets and grudges, resolved against a cluster snapshot. Pure.
//!
//! A step says `targets = "minority-with-leader"`; only when the step fires
//! does the runner know who leads. It asks every node's `/status`, builds a
//! [`ClusterView`], and this module turns the step into concrete node sets
//! and, for a partition of some [`PartitionKind`], a netlab [`Grudge`] (who
//! drops whose packets), Jepsen style.
use std::collections::BTreeSet;

use netlab::grudge::{self as grudges, Grudge};

use super::scenario::{PartitionKind, Role, Targets};

/// What the runner learned from `/status` just before a step fired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// All nodes, in topology order.
    pub nodes: Vec<String>,
    /// The leader with the highest term, if any node claims leadership.
    pub leader: Option<String>,
}

/// The workspace's seeded generator ([`seeded::SplitMix64`]), so role
/// choices and rings depend only on the scenario seed. The seed is offset by
/// the SplitMix64 increment, as the lab's own copy of the generator did, so
/// a scenario seed still picks the same followers and rings.
#[derive(Debug, Clone)]
pub struct SeededRng(seeded::SplitMix64);

impl SeededRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seeded::SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.unit_f64()
    }

    /// Fisher-Yates shuffle, deterministic for the seed.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        self.0.shuffle(items)
    }
}

/// Why a target could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("role {0:?} needs a leader, but no node reports itself leader")]
    /// The role needs a leader and no node claims leadership.
    NoLeader(&'static str),
    #[error("role {role:?} is empty in a cluster of {size}")]
    /// The role resolved to no nodes in a cluster of `size`.
    Empty {
        /// The role's name.
        role: &'static str,
        /// How many nodes the cluster has.
        size: usize,
    },
}

fn quorum(size: usize) -> usize {
    size / 2 + 1
}

/// Concrete nodes for `targets`, given the view. `rng` picks among
/// followers when a role takes only some of them.
pub fn resolve(
    targets: &Targets,
    view: &ClusterView,
    rng: &mut SeededRng,
) -> Result<Vec<String>, TargetError> {
    let role = match targets {
        Targets::Nodes(nodes) => return Ok(nodes.clone()),
        Targets::Role(role) => *role,
    };
    let size = view.nodes.len();
    if role == Role::All {
        return Ok(view.nodes.clone());
    }
    let leader = view
        .leader
        .clone()
        .ok_or(TargetError::NoLeader(role.name()))?;
    let mut followers: Vec<String> = view
        .nodes
        .iter()
        .filter(|node| **node != leader)
        .cloned()
        .collect();
    rng.shuffle(&mut followers);
    let minority = size - quorum(size);
    let chosen = match role {
        Role::Leader => vec![leader],
        Role::Followers => followers,
        Role::Follower => followers.into_iter().take(1).collect(),
        Role::MinorityWithLeader => std::iter::once(leader)
            .chain(followers.into_iter().take(minority.saturating_sub(1)))
            .collect(),
        Role::MajorityWithLeader => std::iter::once(leader)
            .chain(followers.into_iter().take(quorum(size) - 1))
            .collect(),
        Role::MinorityWithoutLeader => followers.into_iter().take(minority).collect(),
        Role::MajorityWithoutLeader => followers.into_iter().take(quorum(size)).collect(),
        Role::BridgeAroundLeader => vec![leader],
        Role::All => unreachable!("handled above"),
    };
    if chosen.is_empty() {
        return Err(TargetError::Empty {
            role: role.name(),
            size,
        });
    }
    // Report in topology order so figures and reports read naturally.
    let mut ordered: Vec<String> = view
        .nodes
        .iter()
        .filter(|node| chosen.contains(node))
        .cloned()
        .collect();
    ordered.dedup();
    Ok(ordered)
}

fn others(nodes: &[String], excluded: &[String]) -> Vec<String> {
    nodes
        .iter()
        .filter(|node| !excluded.contains(node))
        .cloned()
        .collect()
}

/// The grudge a partition step asks for, given resolved targets and peers.
pub fn partition_grudge(
    kind: PartitionKind,
    nodes: &[String],
    targets: &[String],
    peers: Option<&[String]>,
    components: Option<&[Vec<String>]>,
    rng: &mut SeededRng,
) -> Grudge {
    let rest = peers.map_or_else(|| others(nodes, targets), <[String]>::to_vec);
    match kind {
        PartitionKind::Isolate | PartitionKind::Links => {
            grudges::complete(&[targets.to_vec(), rest])
        }
        // The targets drop what the others send them (all of it, or its
        // payload only: the nemesis applies data-only kinds as such).
        PartitionKind::OneWayIn | PartitionKind::OneWayDataIn => grudges::one_way(&rest, targets),
        // The others drop what the targets send them.
        PartitionKind::OneWayOut | PartitionKind::OneWayDataOut => grudges::one_way(targets, &rest),
        PartitionKind::Components => {
            let mut groups = components.map(<[Vec<String>]>::to_vec).unwrap_or_default();
            // Nodes not named in any component form one more group.
            let named: Vec<String> = groups.iter().flatten().cloned().collect();
            let leftover = others(nodes, &named);
            if !leftover.is_empty() {
                groups.push(leftover);
            }
            grudges::complete(&groups)
        }
        PartitionKind::Bridge => {
            // netlab's `bridge` keeps the node at index n/2 (the first of the
            // larger half) connected to both halves: put the chosen one there.
            let mut order = match targets.first() {
                Some(middle) => others(nodes, std::slice::from_ref(middle)),
                None => nodes.to_vec(),
            };
            if let Some(middle) = targets.first() {
                order.insert(nodes.len() / 2, middle.clone());
            }
            grudges::bridge(&order)
        }
        PartitionKind::MajoritiesRing => {
            grudges::majorities_ring(&grudges::shuffled(nodes, rng.next_u64()))
        }
    }
}

/// Who can still reach whom (both directions) under a grudge: the connected
/// components of the undirected "both directions work" graph.
pub fn connected_groups(nodes: &[String], grudge: &Grudge) -> Vec<Vec<String>> {
    // Both directions must work for two nodes to count as connected.
    let drops = |a: &str, b: &str| grudge.drops(a, b);
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for start in nodes {
        if !seen.insert(start.clone()) {
            continue;
        }
        let mut group = vec![start.clone()];
        let mut index = 0;
        while index < group.len() {
            let current = group[index].clone();
            for other in nodes {
                if !seen.contains(other) && !drops(&current, other) && !drops(other, &current) {
                    seen.insert(other.clone());
                    group.push(other.clone());
                }
            }
            index += 1;
        }
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn view(n: usize, leader: &str) -> ClusterView {
        ClusterView {
            nodes: names(n),
            leader: Some(leader.into()),
        }
    }

    /// The `kind` partition of n1..n`n` aimed at `targets` (and `peers`),
    /// seed 1.
    fn grudge(kind: PartitionKind, n: usize, targets: &[&str], peers: Option<&[&str]>) -> Grudge {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let peers = peers.map(strings);
        let (targets, mut rng) = (strings(targets), SeededRng::new(1));
        partition_grudge(kind, &names(n), &targets, peers.as_deref(), None, &mut rng)
    }

    /// The nodes `role` stands for in `view`, seed 1.
    fn resolve_role(role: Role, view: &ClusterView) -> Result<Vec<String>, TargetError> {
        resolve(&Targets::Role(role), view, &mut SeededRng::new(1))
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roles_resolve_to_the_right_sizes() {
        let mut rng = SeededRng::new(7);
        let v = view(5, "n3");
        let size = |role| resolve(&Targets::Role(role), &v, &mut rng.clone()).unwrap();
        assert_eq!(size(Role::Leader), vec!["n3"]);
        assert_eq!(size(Role::Followers).len(), 4);
        assert!(!size(Role::Followers).contains(&"n3".to_string()));
        let minority = size(Role::MinorityWithLeader);
        assert_eq!(minority.len(), 2);
        assert!(minority.contains(&"n3".to_string()));
        let majority = size(Role::MajorityWithoutLeader);
        assert_eq!(majority.len(), 3);
        assert!(!majority.contains(&"n3".to_string()));
        assert_eq!(size(Role::MinorityWithoutLeader).len(), 2);
        assert_eq!(size(Role::MajorityWithLeader).len(), 3);
        assert_eq!(size(Role::Follower).len(), 1);
        let _ = rng.next_u64();
    }

    #[test]
    fn three_node_minority_with_leader_is_the_leader_alone() {
        let resolved = resolve_role(Role::MinorityWithLeader, &view(3, "n1"));
        assert_eq!(resolved, Ok(vec!["n1".to_string()]));
    }

    #[test]
    fn roles_without_a_leader_are_an_error() {
        let v = ClusterView {
            nodes: names(3),
            leader: None,
        };
        let error = resolve_role(Role::Leader, &v);
        assert_eq!(error, Err(TargetError::NoLeader("leader")));
        assert!(resolve_role(Role::All, &v).is_ok());
    }

    #[test]
    fn single_node_cluster_has_no_followers() {
        let error = resolve_role(Role::Followers, &view(1, "n1"));
        assert!(matches!(error, Err(TargetError::Empty { .. })));
    }

    #[test]
    fn isolating_the_leader_cuts_both_directions() {
        let grudge = grudge(PartitionKind::Isolate, 3, &["n1"], None);
        assert_eq!(grudge.by_receiver()["n1"], set(&["n2", "n3"]));
        assert_eq!(grudge.by_receiver()["n2"], set(&["n1"]));
        assert_eq!(grudge.by_receiver()["n3"], set(&["n1"]));
        assert_eq!(
            connected_groups(&names(3), &grudge),
            vec![
                vec!["n1".to_string()],
                vec!["n2".to_string(), "n3".to_string()]
            ]
        );
    }

    #[test]
    fn one_way_grudges_drop_only_one_direction() {
        let cannot_receive = grudge(PartitionKind::OneWayIn, 3, &["n1"], None);
        assert_eq!(cannot_receive.by_receiver().len(), 1);
        assert_eq!(cannot_receive.by_receiver()["n1"], set(&["n2", "n3"]));
        let cannot_send = grudge(PartitionKind::OneWayOut, 3, &["n1"], None);
        assert_eq!(cannot_send.by_receiver().len(), 2);
        assert_eq!(cannot_send.by_receiver()["n2"], set(&["n1"]));
    }

    #[test]
    fn bridge_matches_jepsen() {
        // bridge([1..5]) == {1:{4,5},2:{4,5},4:{1,2},5:{1,2}}
        let grudge = grudge(PartitionKind::Bridge, 5, &["n3"], None);
        assert_eq!(grudge.by_receiver().len(), 4);
        assert_eq!(grudge.by_receiver()["n1"], set(&["n4", "n5"]));
        assert_eq!(grudge.by_receiver()["n2"], set(&["n4", "n5"]));
        assert_eq!(grudge.by_receiver()["n4"], set(&["n1", "n2"]));
        assert_eq!(grudge.by_receiver()["n5"], set(&["n1", "n2"]));
        assert!(!grudge.by_receiver().contains_key("n3"));
    }

    #[test]
    fn partial_partition_cuts_one_link() {
        let grudge = grudge(PartitionKind::Links, 3, &["n1"], Some(&["n2"]));
        assert_eq!(grudge.by_receiver()["n1"], set(&["n2"]));
        assert_eq!(grudge.by_receiver()["n2"], set(&["n1"]));
        assert!(!grudge.by_receiver().contains_key("n3"));
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in [3usize, 5, 7] {
            let nodes = names(n);
            let grudge = partition_grudge(
                PartitionKind::MajoritiesRing,
                &nodes,
                &[],
                None,
                None,
                &mut SeededRng::new(n as u64),
            );
            let mut views = BTreeSet::new();
            for node in &nodes {
                let dropped = grudge.by_receiver().get(node).cloned().unwrap_or_default();
                let visible: BTreeSet<String> = nodes
                    .iter()
                    .filter(|o| !dropped.contains(*o))
                    .cloned()
                    .collect();
                assert!(visible.len() > n / 2, "n={n} {node} sees {visible:?}");
                views.insert(visible);
            }
            if n >= 5 {
                assert_eq!(views.len(), n, "n={n}: majorities must differ");
            }
        }
    }

    #[test]
    fn explicit_components_gather_leftovers() {
        let grudge = partition_grudge(
            PartitionKind::Components,
            &names(4),
            &[],
            None,
            Some(&[vec!["n1".into(), "n2".into()]]),
            &mut SeededRng::new(1),
        );
        assert_eq!(grudge.by_receiver()["n1"], set(&["n3", "n4"]));
        assert_eq!(grudge.by_receiver()["n4"], set(&["n1", "n2"]));
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        let mut a = SeededRng::new(42);
        let mut b = SeededRng::new(42);
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert!((0..100).all(|_| a.unit() < 1.0));
        // The stream the lab's own SplitMix64 copy drew for seed 42, so a
        // scenario seed still chooses the same nodes.
        let mut rng = SeededRng::new(42);
        assert_eq!(
            [rng.next_u64(), rng.next_u64(), rng.next_u64()],
            [
                0x28ef_e333_b266_f103,
                0x4752_6757_130f_9f52,
                0x581c_e1ff_0e4a_e394
            ]
        );
    }
}
