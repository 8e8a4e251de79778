//! Partitions in the simulator: turning a [`PartitionShape`] into a
//! [`Grudge`] (the shapes themselves come from the `faults` crate; the choices
//! that need the cluster, such as which side the leader lands on, live here)
//! and link-fault scopes. The windows the checker derives from them are
//! `windows`' business.
use std::collections::BTreeSet;

use consensus::NodeId;
use faults::Grudge;

use super::Cluster;
use crate::rng::SimRng;
use crate::schedule::{LinkScope, PartitionShape, Target};

impl Cluster {
    /// The grudge `shape` stands for right now (leader and followers as the
    /// cluster sees them, random choices from the nemesis stream).
    pub(super) fn resolve_shape(&mut self, shape: PartitionShape) -> Grudge<NodeId> {
        let ids = self.ids.clone();
        match shape {
            PartitionShape::RandomHalves => faults::halves(&shuffled(&ids, &mut self.nemesis_rng)),
            PartitionShape::LeaderInMajority => {
                let leader = self.resolve_id(Target::Leader);
                leader_in_majority(leader, &ids, &mut self.nemesis_rng)
            }
            PartitionShape::LeaderInMinority => {
                let leader = self.resolve_id(Target::Leader);
                leader_in_minority(leader, &ids, &mut self.nemesis_rng)
            }
            PartitionShape::Isolate(target) => faults::isolate(self.resolve_id(target), &ids),
            PartitionShape::Bridge => faults::bridge(&shuffled(&ids, &mut self.nemesis_rng)),
            PartitionShape::MajoritiesRing => majorities_ring(&ids, &mut self.nemesis_rng),
            PartitionShape::OneWayIn(target) => faults::one_way(&ids, &[self.resolve_id(target)]),
            PartitionShape::OneWayOut(target) => faults::one_way(&[self.resolve_id(target)], &ids),
            PartitionShape::CutLink => {
                if ids.len() < 2 {
                    return Grudge::new();
                }
                let order = shuffled(&ids, &mut self.nemesis_rng);
                faults::cut_link(order[0], order[1])
            }
        }
    }

    pub(super) fn resolve_scope(&mut self, scope: LinkScope) -> BTreeSet<(NodeId, NodeId)> {
        let ids = self.ids.clone();
        let all_pairs = || {
            ids.iter()
                .flat_map(|a| ids.iter().map(move |b| (*a, *b)))
                .filter(|(a, b)| a != b)
        };
        match scope {
            LinkScope::All => all_pairs().collect(),
            LinkScope::Node(target) => {
                let node = self.resolve_id(target);
                all_pairs()
                    .filter(|(a, b)| *a == node || *b == node)
                    .collect()
            }
            LinkScope::OneLink(target) => {
                let node = self.resolve_id(target);
                let peers: Vec<NodeId> = ids.iter().copied().filter(|n| *n != node).collect();
                if peers.is_empty() {
                    return BTreeSet::new();
                }
                let peer = *self.nemesis_rng.pick(&peers);
                [(node, peer)].into_iter().collect()
            }
        }
    }
}

fn shuffled(ids: &[NodeId], rng: &mut SimRng) -> Vec<NodeId> {
    let mut order = ids.to_vec();
    rng.shuffle(&mut order);
    order
}

/// A majorities ring on a shuffled ring ([`faults::majorities_ring_symmetric`]).
/// It needs at least five nodes to differ from "everybody sees everybody", so
/// with fewer the Nifty shape (one cut link between two ring neighbours)
/// stands in.
fn majorities_ring(ids: &[NodeId], rng: &mut SimRng) -> Grudge<NodeId> {
    let ring = shuffled(ids, rng);
    match ring.len() {
        0 | 1 => Grudge::new(),
        2..5 => faults::cut_link(ring[0], ring[1]),
        _ => faults::majorities_ring_symmetric(&ring),
    }
}

/// The leader plus enough random others to make a minority, cut from the
/// majority.
fn leader_in_minority(leader: NodeId, ids: &[NodeId], rng: &mut SimRng) -> Grudge<NodeId> {
    let mut others: Vec<NodeId> = ids.iter().copied().filter(|n| *n != leader).collect();
    rng.shuffle(&mut others);
    let minority_size = ids.len().saturating_sub(ids.len() / 2 + 1).max(1);
    let mut minority = vec![leader];
    minority.extend(others.drain(..minority_size - 1));
    faults::complete(&[minority, others])
}

/// Random halves with the leader on the majority side.
fn leader_in_majority(leader: NodeId, ids: &[NodeId], rng: &mut SimRng) -> Grudge<NodeId> {
    let mut others: Vec<NodeId> = ids.iter().copied().filter(|n| *n != leader).collect();
    rng.shuffle(&mut others);
    let (minority, mut majority) = faults::bisect(&others);
    let minority = if minority.len() == ids.len() / 2 {
        minority
    } else {
        let mut all = minority;
        all.extend(majority.drain(..ids.len() / 2 - all.len()));
        all
    };
    majority.push(leader);
    faults::complete(&[minority, majority])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which nodes `node` hears from (excluding itself).
    fn hears(grudge: &Grudge<NodeId>, node: NodeId, ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter()
            .copied()
            .filter(|n| *n != node && !grudge.drops(n, &node))
            .collect()
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in [5usize, 7, 9] {
            let ids: Vec<NodeId> = (1..=n as u64).collect();
            let mut rng = SimRng::stream(n as u64, "ring");
            let grudge = majorities_ring(&ids, &mut rng);
            let mut views = BTreeSet::new();
            for node in &ids {
                let mut view = hears(&grudge, *node, &ids);
                view.insert(*node);
                assert!(view.len() > n / 2, "n={n}: {node} sees only {view:?}");
                assert!(view.len() < n, "n={n}: {node} sees everybody");
                views.insert(view);
            }
            assert_eq!(views.len(), n, "n={n}: two nodes share a majority");
        }
    }

    #[test]
    fn majorities_ring_on_three_nodes_cuts_one_link() {
        let mut rng = SimRng::stream(1, "ring");
        let grudge = majorities_ring(&[1, 2, 3], &mut rng);
        assert_eq!(grudge.cut_links().count(), 2);
    }

    #[test]
    fn leader_minority_and_majority_sides() {
        for n in [3u64, 5, 7] {
            let ids: Vec<NodeId> = (1..=n).collect();
            let mut rng = SimRng::stream(n, "sides");
            let minority = leader_in_minority(1, &ids, &mut rng);
            let side = hears(&minority, 1, &ids).len() + 1;
            assert!(side <= (n as usize) / 2, "n={n}: leader side {side}");
            let majority = leader_in_majority(1, &ids, &mut rng);
            let side = hears(&majority, 1, &ids).len() + 1;
            assert!(side > (n as usize) / 2, "n={n}: leader side {side}");
            assert!(!majority.is_empty());
        }
    }

    #[test]
    fn random_halves_leave_a_majority() {
        let ids: Vec<NodeId> = (1..=5).collect();
        let mut rng = SimRng::stream(9, "halves");
        let grudge = faults::halves(&shuffled(&ids, &mut rng));
        let sizes: BTreeSet<usize> = ids
            .iter()
            .map(|n| hears(&grudge, *n, &ids).len() + 1)
            .collect();
        assert_eq!(sizes, [2, 3].into_iter().collect());
    }
}
