//! Partition shapes as pure data (Jepsen's grudges).
//!
//! A [`Grudge`] is the set of *directed* links that drop everything: the
//! pair `(from, to)` means traffic from `from` never reaches `to`. Symmetric
//! partitions block both directions; the one-way shapes block only one.
//! The constructors are pure functions of the node list (and an RNG where
//! Jepsen's are random), so they are unit-tested in isolation.
use std::collections::{BTreeMap, BTreeSet};

use wire::NodeId;

use crate::rng::SimRng;

/// Directed links that drop all traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grudge {
    blocked: BTreeSet<(NodeId, NodeId)>,
}

impl Grudge {
    pub fn new() -> Grudge {
        Grudge::default()
    }

    pub fn block(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.blocked.insert((from, to));
        }
    }

    pub fn block_both(&mut self, a: NodeId, b: NodeId) {
        self.block(a, b);
        self.block(b, a);
    }

    pub fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty()
    }

    pub fn links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.blocked.iter().copied()
    }

    /// Jepsen's view: node → the nodes it drops traffic *from*.
    pub fn drops_from(&self) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
        let mut view: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (from, to) in &self.blocked {
            view.entry(*to).or_default().insert(*from);
        }
        view
    }

    pub fn union(&mut self, other: &Grudge) {
        self.blocked.extend(other.blocked.iter().copied());
    }

    /// Compact text for traces: `1->2 1->3 ...`.
    pub fn describe(&self) -> String {
        let links: Vec<String> = self
            .blocked
            .iter()
            .map(|(a, b)| format!("{a}->{b}"))
            .collect();
        links.join(" ")
    }
}

/// No traffic between different components, in either direction.
pub fn complete(components: &[Vec<NodeId>]) -> Grudge {
    let mut grudge = Grudge::new();
    for (i, left) in components.iter().enumerate() {
        for right in &components[i + 1..] {
            for a in left {
                for b in right {
                    grudge.block_both(*a, *b);
                }
            }
        }
    }
    grudge
}

/// Splits `nodes` in two: the first half is the smaller one (`⌊n/2⌋`).
pub fn bisect(nodes: &[NodeId]) -> (Vec<NodeId>, Vec<NodeId>) {
    let half = nodes.len() / 2;
    (nodes[..half].to_vec(), nodes[half..].to_vec())
}

/// Cuts `node` off from everybody, both directions.
pub fn isolate(node: NodeId, nodes: &[NodeId]) -> Grudge {
    let rest: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != node).collect();
    complete(&[vec![node], rest])
}

/// Jepsen `bridge`: bisect, then let the first node of the larger half keep
/// full connectivity to both sides.
/// `bridge([1,2,3,4,5]) = {1:{4,5}, 2:{4,5}, 4:{1,2}, 5:{1,2}}`.
pub fn bridge(nodes: &[NodeId]) -> Grudge {
    let (small, large) = bisect(nodes);
    let Some((bridge_node, rest)) = large.split_first() else {
        return Grudge::new();
    };
    let mut grudge = complete(&[small.clone(), large.clone()]);
    grudge
        .blocked
        .retain(|(a, b)| a != bridge_node && b != bridge_node);
    debug_assert!(
        rest.iter()
            .all(|n| small.iter().all(|s| grudge.blocks(*n, *s)))
    );
    grudge
}

/// Jepsen `majorities-ring`: nodes on a shuffled ring each see a majority
/// (themselves and their nearest neighbours), and no two see the same one.
/// Needs at least five nodes; with fewer, every node would see everybody, so
/// the Nifty shape (one cut link, see [`cut_link`]) stands in.
pub fn majorities_ring(nodes: &[NodeId], rng: &mut SimRng) -> Grudge {
    let n = nodes.len();
    let mut ring = nodes.to_vec();
    rng.shuffle(&mut ring);
    if n < 5 {
        return if n >= 2 {
            cut_link(ring[0], ring[1])
        } else {
            Grudge::new()
        };
    }
    // A majority is ⌊n/2⌋+1 nodes, so each node needs ⌈⌊n/2⌋/2⌉ neighbours per side.
    let radius = (n / 2).div_ceil(2);
    let mut grudge = Grudge::new();
    for i in 0..n {
        for j in 0..n {
            let distance = i.abs_diff(j).min(n - i.abs_diff(j));
            if distance > radius {
                grudge.block(ring[i], ring[j]);
            }
        }
    }
    grudge
}

/// `node` can send but receives nothing.
pub fn one_way_in(node: NodeId, nodes: &[NodeId]) -> Grudge {
    let mut grudge = Grudge::new();
    for other in nodes {
        grudge.block(*other, node);
    }
    grudge
}

/// `node` receives but nothing it sends arrives.
pub fn one_way_out(node: NodeId, nodes: &[NodeId]) -> Grudge {
    let mut grudge = Grudge::new();
    for other in nodes {
        grudge.block(node, *other);
    }
    grudge
}

/// A single cut between two nodes (the Nifty partial partition when the
/// others still reach both).
pub fn cut_link(a: NodeId, b: NodeId) -> Grudge {
    let mut grudge = Grudge::new();
    grudge.block_both(a, b);
    grudge
}

/// Leader plus enough others to make a minority, cut from the majority.
pub fn leader_in_minority(leader: NodeId, nodes: &[NodeId], rng: &mut SimRng) -> Grudge {
    let mut others: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != leader).collect();
    rng.shuffle(&mut others);
    let minority_size = nodes.len().saturating_sub(nodes.len() / 2 + 1).max(1);
    let mut minority = vec![leader];
    minority.extend(others.drain(..minority_size - 1));
    complete(&[minority, others])
}

/// Random halves with the leader on the majority side.
pub fn leader_in_majority(leader: NodeId, nodes: &[NodeId], rng: &mut SimRng) -> Grudge {
    let mut others: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != leader).collect();
    rng.shuffle(&mut others);
    let (minority, mut majority) = bisect(&others);
    let minority = if minority.len() == nodes.len() / 2 {
        minority
    } else {
        let mut all = minority;
        all.extend(majority.drain(..nodes.len() / 2 - all.len()));
        all
    };
    majority.push(leader);
    complete(&[minority, majority])
}

/// Random halves (Jepsen `partition-random-halves`).
pub fn random_halves(nodes: &[NodeId], rng: &mut SimRng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    let (a, b) = bisect(&shuffled);
    complete(&[a, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[NodeId]) -> BTreeSet<NodeId> {
        items.iter().copied().collect()
    }

    /// Which nodes `node` can hear from (excluding itself).
    fn hears(grudge: &Grudge, node: NodeId, nodes: &[NodeId]) -> BTreeSet<NodeId> {
        nodes
            .iter()
            .copied()
            .filter(|n| *n != node && !grudge.blocks(*n, node))
            .collect()
    }

    #[test]
    fn bridge_matches_jepsen() {
        let grudge = bridge(&[1, 2, 3, 4, 5]);
        let expected: BTreeMap<NodeId, BTreeSet<NodeId>> = [
            (1, set(&[4, 5])),
            (2, set(&[4, 5])),
            (4, set(&[1, 2])),
            (5, set(&[1, 2])),
        ]
        .into_iter()
        .collect();
        assert_eq!(grudge.drops_from(), expected);
    }

    #[test]
    fn complete_is_symmetric_and_keeps_components_whole() {
        let grudge = complete(&[vec![1, 2], vec![3], vec![4, 5]]);
        assert!(!grudge.blocks(1, 2) && !grudge.blocks(4, 5));
        for (a, b) in grudge.links() {
            assert!(grudge.blocks(b, a));
        }
        assert!(grudge.blocks(1, 3) && grudge.blocks(3, 5) && grudge.blocks(2, 4));
    }

    #[test]
    fn isolate_cuts_one_node_both_ways() {
        let nodes = [1, 2, 3];
        let grudge = isolate(2, &nodes);
        assert_eq!(hears(&grudge, 2, &nodes), set(&[]));
        assert_eq!(hears(&grudge, 1, &nodes), set(&[3]));
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in [5usize, 7, 9] {
            let nodes: Vec<NodeId> = (1..=n as u64).collect();
            let mut rng = SimRng::stream(n as u64, "ring");
            let grudge = majorities_ring(&nodes, &mut rng);
            let mut views = BTreeSet::new();
            for node in &nodes {
                let mut view = hears(&grudge, *node, &nodes);
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
        assert_eq!(grudge.links().count(), 2);
    }

    #[test]
    fn one_way_shapes_block_one_direction_only() {
        let nodes = [1, 2, 3];
        let inbound = one_way_in(1, &nodes);
        assert!(inbound.blocks(2, 1) && !inbound.blocks(1, 2));
        let outbound = one_way_out(1, &nodes);
        assert!(outbound.blocks(1, 2) && !outbound.blocks(2, 1));
    }

    #[test]
    fn leader_minority_and_majority_sides() {
        for n in [3u64, 5, 7] {
            let nodes: Vec<NodeId> = (1..=n).collect();
            let mut rng = SimRng::stream(n, "sides");
            let minority = leader_in_minority(1, &nodes, &mut rng);
            let side = hears(&minority, 1, &nodes).len() + 1;
            assert!(side <= (n as usize) / 2, "n={n}: leader side {side}");
            let majority = leader_in_majority(1, &nodes, &mut rng);
            let side = hears(&majority, 1, &nodes).len() + 1;
            assert!(side > (n as usize) / 2, "n={n}: leader side {side}");
            assert!(!majority.is_empty());
        }
    }

    #[test]
    fn random_halves_leave_a_majority() {
        let nodes: Vec<NodeId> = (1..=5).collect();
        let mut rng = SimRng::stream(9, "halves");
        let grudge = random_halves(&nodes, &mut rng);
        let sizes: BTreeSet<usize> = nodes
            .iter()
            .map(|n| hears(&grudge, *n, &nodes).len() + 1)
            .collect();
        assert_eq!(
            sizes,
            set(&[2, 3]).into_iter().map(|s| s as usize).collect()
        );
    }
}
