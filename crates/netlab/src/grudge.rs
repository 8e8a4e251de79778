//! Partitions as data (Jepsen vocabulary): a grudge maps each node to the set
//! of nodes whose packets it drops. Pure constructors, unit-tested.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// node → nodes it drops traffic FROM. Nodes without an entry drop nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

impl Grudge {
    /// True when the grudge drops nothing.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// Does `to` drop packets from `from`?
    pub fn drops(&self, from: &str, to: &str) -> bool {
        self.0.get(to).is_some_and(|set| set.contains(from))
    }

    /// Adds `to` dropping from `from`.
    pub fn add(&mut self, from: &str, to: &str) {
        self.0
            .entry(to.to_string())
            .or_default()
            .insert(from.to_string());
    }

    /// Every directed `(from, to)` pair that is cut.
    pub fn cut_links(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (to, froms) in &self.0 {
            for from in froms {
                out.push((from.clone(), to.clone()));
            }
        }
        out.sort();
        out
    }

    /// Every node named anywhere in the grudge.
    pub fn nodes(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.0.keys().cloned().collect();
        for set in self.0.values() {
            all.extend(set.iter().cloned());
        }
        all
    }
}

/// Splits nodes into two halves, the first one smaller (Jepsen `bisect`).
pub fn bisect(nodes: &[String]) -> (Vec<String>, Vec<String>) {
    let cut = nodes.len() / 2;
    (nodes[..cut].to_vec(), nodes[cut..].to_vec())
}

/// Symmetric partition into components: every node drops every node of the
/// other components (Jepsen `complete-grudge`).
pub fn complete(components: &[Vec<String>]) -> Grudge {
    let mut grudge = Grudge::default();
    for (i, component) in components.iter().enumerate() {
        for (j, other) in components.iter().enumerate() {
            if i == j {
                continue;
            }
            for to in component {
                for from in other {
                    grudge.add(from, to);
                }
            }
        }
    }
    grudge
}

/// One-way partition: every node of `receivers` drops packets from every node
/// of `senders`; the reverse direction keeps working.
pub fn one_way(senders: &[String], receivers: &[String]) -> Grudge {
    let mut grudge = Grudge::default();
    for to in receivers {
        for from in senders {
            if from != to {
                grudge.add(from, to);
            }
        }
    }
    grudge
}

/// Cuts one node off from all others, both ways (Jepsen `isolate-one`).
pub fn isolate_one(node: &str, nodes: &[String]) -> Grudge {
    let others: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    complete(&[vec![node.to_string()], others])
}

/// Two halves connected only through a bridge node: the first node of the
/// larger half keeps full connectivity (Jepsen `bridge`).
pub fn bridge(nodes: &[String]) -> Grudge {
    let (small, large) = bisect(nodes);
    let Some(bridge) = large.first().cloned() else {
        return Grudge::default();
    };
    let mut grudge = complete(&[small, large]);
    grudge.0.remove(&bridge);
    for set in grudge.0.values_mut() {
        set.remove(&bridge);
    }
    grudge.0.retain(|_, set| !set.is_empty());
    grudge
}

/// Every node sees a majority, but no two nodes see the same majority (Jepsen
/// `majorities-ring-perfect`). `nodes` is the ring order: shuffle it first for
/// a random ring (see [`shuffled`]). For each window of `⌊n/2⌋+1` consecutive
/// ring nodes, the window's middle node drops everyone outside the window.
pub fn majorities_ring(nodes: &[String]) -> Grudge {
    let n = nodes.len();
    let mut grudge = Grudge::default();
    if n < 3 {
        return grudge;
    }
    let majority = n / 2 + 1;
    for start in 0..n {
        let window: Vec<&String> = (0..majority).map(|k| &nodes[(start + k) % n]).collect();
        let center = window[majority / 2];
        for other in nodes {
            if !window.contains(&other) {
                grudge.add(other, center);
            }
        }
    }
    grudge
}

/// A deterministic shuffle (splitmix64 + Fisher–Yates), so a scenario seed
/// fixes the ring.
pub fn shuffled(nodes: &[String], seed: u64) -> Vec<String> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = nodes.to_vec();
    for i in (1..out.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn grudge(pairs: &[(&str, &[&str])]) -> Grudge {
        let mut g = Grudge::default();
        for (to, froms) in pairs {
            for from in *froms {
                g.add(from, to);
            }
        }
        g
    }

    #[test]
    fn complete_partition_two_three() {
        let g = complete(&[names(2), names(5)[2..].to_vec()]);
        assert!(g.drops("n1", "n3") && g.drops("n3", "n1"));
        assert!(!g.drops("n1", "n2") && !g.drops("n3", "n4"));
        assert_eq!(g.cut_links().len(), 12);
    }

    #[test]
    fn bridge_matches_jepsen() {
        let expected = grudge(&[
            ("n1", &["n4", "n5"]),
            ("n2", &["n4", "n5"]),
            ("n4", &["n1", "n2"]),
            ("n5", &["n1", "n2"]),
        ]);
        assert_eq!(bridge(&names(5)), expected);
    }

    #[test]
    fn one_way_cuts_a_single_direction() {
        let g = one_way(&["n1".to_string()], &names(3));
        assert!(g.drops("n1", "n2") && g.drops("n1", "n3"));
        assert!(!g.drops("n2", "n1"));
    }

    #[test]
    fn isolate_one_is_symmetric() {
        let g = isolate_one("n3", &names(3));
        assert_eq!(
            g.cut_links(),
            vec![
                ("n1".into(), "n3".into()),
                ("n2".into(), "n3".into()),
                ("n3".into(), "n1".into()),
                ("n3".into(), "n2".into())
            ]
        );
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in [3, 5, 7] {
            let nodes = names(n);
            let g = majorities_ring(&nodes);
            let mut views = BTreeSet::new();
            for node in &nodes {
                let dropped = g.0.get(node).cloned().unwrap_or_default();
                let sees = n - dropped.len();
                assert!(sees > n / 2, "{node} sees {sees} of {n}");
                assert!(views.insert(dropped), "two nodes share a majority");
            }
        }
        let five = majorities_ring(&names(5));
        assert_eq!(
            five.0["n3"],
            ["n1", "n5"].iter().map(|s| s.to_string()).collect()
        );
    }

    #[test]
    fn shuffle_is_deterministic_permutation() {
        let a = shuffled(&names(7), 42);
        assert_eq!(a, shuffled(&names(7), 42));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, names(7));
    }
}
