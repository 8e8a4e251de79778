//! splitlab's fault vocabulary: which packets a partition drops, as pure data.
//!
//! A [`Grudge`] (Jepsen's term) is a set of *directed* cuts: the cut
//! `from → to` means packets sent by `from` never reach `to`. The simulator
//! (numeric node ids) and netlab (node names) both build their partitions with
//! the constructors here — [`isolate`], [`halves`], [`complete`], [`bridge`],
//! [`majorities_ring`], [`majorities_ring_symmetric`], [`one_way`],
//! [`cut_link`] — and apply them in their own way (an in-memory link table, or
//! nftables rules). Nothing here does I/O or draws randomness: a random shape is
//! a constructor applied to a shuffled node order ([`shuffled`] for a seed).
#![warn(missing_docs, unreachable_pub)]

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug, Display};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Directed cuts: `from → to` drops every packet `from` sends to `to`.
///
/// A node never drops its own packets: [`block`](Grudge::block) ignores
/// `from == to`. Iteration ([`cut_links`](Grudge::cut_links),
/// [`describe`](Grudge::describe)) is ordered by `(from, to)`.
///
/// Serialized (serde) as Jepsen's grudge map, keyed the other way round:
/// receiver → the senders whose packets it drops (see
/// [`by_receiver`](Grudge::by_receiver)), e.g. `{"n3": ["n1", "n2"]}` means
/// n3 drops everything from n1 and n2.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Grudge<N> {
    /// sender → receivers that drop its packets; never holds an empty set.
    cuts: BTreeMap<N, BTreeSet<N>>,
}

impl<N> Default for Grudge<N> {
    fn default() -> Grudge<N> {
        Grudge {
            cuts: BTreeMap::new(),
        }
    }
}

impl<N: Debug> Debug for Grudge<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.cuts
                    .iter()
                    .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to))),
            )
            .finish()
    }
}

impl<N: Ord + Clone> Grudge<N> {
    /// A grudge that drops nothing (the healed network).
    pub fn new() -> Grudge<N> {
        Grudge::default()
    }

    /// Cuts one direction: packets from `from` no longer reach `to`.
    /// `from == to` is ignored (a node always hears itself).
    pub fn block(&mut self, from: N, to: N) {
        if from != to {
            self.cuts.entry(from).or_default().insert(to);
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn block_both(&mut self, a: N, b: N) {
        self.block(a.clone(), b.clone());
        self.block(b, a);
    }

    /// True when packets sent by `from` are dropped before reaching `to`.
    pub fn drops<Q>(&self, from: &Q, to: &Q) -> bool
    where
        N: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.cuts.get(from).is_some_and(|tos| tos.contains(to))
    }

    /// True when nothing is dropped.
    pub fn is_empty(&self) -> bool {
        self.cuts.is_empty()
    }

    /// How many directed cuts there are.
    pub fn len(&self) -> usize {
        self.cuts.values().map(BTreeSet::len).sum()
    }

    /// Every directed cut as `(from, to)`, ordered by `from` then `to`.
    pub fn cut_links(&self) -> impl Iterator<Item = (&N, &N)> + '_ {
        self.cuts
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
    }

    /// Adds every cut of `other` (set union, in place): the links a stack of
    /// overlapping partitions blocks.
    pub fn union(&mut self, other: &Grudge<N>) {
        for (from, tos) in &other.cuts {
            self.cuts
                .entry(from.clone())
                .or_default()
                .extend(tos.iter().cloned());
        }
    }

    /// Keeps only the cuts for which `keep(from, to)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&N, &N) -> bool) {
        for (from, tos) in self.cuts.iter_mut() {
            tos.retain(|to| keep(from, to));
        }
        self.cuts.retain(|_, tos| !tos.is_empty());
    }

    /// Jepsen's grudge map: receiver → the senders whose packets it drops.
    /// Receivers that drop nothing have no entry.
    pub fn by_receiver(&self) -> BTreeMap<N, BTreeSet<N>> {
        let mut view: BTreeMap<N, BTreeSet<N>> = BTreeMap::new();
        for (from, to) in self.cut_links() {
            view.entry(to.clone()).or_default().insert(from.clone());
        }
        view
    }

    /// Every node that sends or drops on some cut.
    pub fn nodes(&self) -> BTreeSet<N> {
        self.cut_links()
            .flat_map(|(from, to)| [from.clone(), to.clone()])
            .collect()
    }
}

impl<N: Display> Grudge<N> {
    /// Compact text for traces and logs: `from->to` pairs in `(from, to)`
    /// order, space-separated (`1->2 1->3`); empty when nothing is cut.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (from, tos) in &self.cuts {
            for to in tos {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&format!("{from}->{to}"));
            }
        }
        out
    }
}

impl<N: Ord + Clone> FromIterator<(N, N)> for Grudge<N> {
    /// Collects `(from, to)` cuts (self-pairs ignored, as in `block`).
    fn from_iter<I: IntoIterator<Item = (N, N)>>(cuts: I) -> Grudge<N> {
        let mut grudge = Grudge::new();
        grudge.extend(cuts);
        grudge
    }
}

impl<N: Ord + Clone> Extend<(N, N)> for Grudge<N> {
    fn extend<I: IntoIterator<Item = (N, N)>>(&mut self, cuts: I) {
        for (from, to) in cuts {
            self.block(from, to);
        }
    }
}

impl<N: Ord + Clone + Serialize> Serialize for Grudge<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_receiver().serialize(serializer)
    }
}

impl<'de, N: Ord + Clone + Debug + Deserialize<'de>> Deserialize<'de> for Grudge<N> {
    /// Reads Jepsen's receiver → senders map; a node listed as dropping its
    /// own packets is an error rather than silently ignored.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Grudge<N>, D::Error> {
        let by_receiver = BTreeMap::<N, BTreeSet<N>>::deserialize(deserializer)?;
        let mut grudge = Grudge::new();
        for (to, froms) in by_receiver {
            for from in froms {
                if from == to {
                    return Err(D::Error::custom(format!(
                        "grudge makes {to:?} drop its own packets"
                    )));
                }
                grudge.block(from, to.clone());
            }
        }
        Ok(grudge)
    }
}

/// Splits `nodes` in two, the first half the smaller one (`⌊n/2⌋` nodes;
/// Jepsen `bisect`).
pub fn bisect<N: Clone>(nodes: &[N]) -> (Vec<N>, Vec<N>) {
    let half = nodes.len() / 2;
    (nodes[..half].to_vec(), nodes[half..].to_vec())
}

/// No traffic between different components, in either direction; traffic
/// inside a component is untouched (Jepsen `complete-grudge`).
pub fn complete<N: Ord + Clone>(components: &[Vec<N>]) -> Grudge<N> {
    let mut grudge = Grudge::new();
    for (i, left) in components.iter().enumerate() {
        for right in &components[i + 1..] {
            for a in left {
                for b in right {
                    grudge.block_both(a.clone(), b.clone());
                }
            }
        }
    }
    grudge
}

/// [`bisect`] `nodes` in the order given and cut the halves apart (Jepsen
/// `partition-halves`; shuffle first for `partition-random-halves`).
pub fn halves<N: Ord + Clone>(nodes: &[N]) -> Grudge<N> {
    let (small, large) = bisect(nodes);
    complete(&[small, large])
}

/// Cuts `node` off from every other node of `nodes`, both directions (Jepsen
/// `isolate-one`).
pub fn isolate<N: Ord + Clone>(node: N, nodes: &[N]) -> Grudge<N> {
    let rest: Vec<N> = nodes.iter().filter(|n| **n != node).cloned().collect();
    complete(&[vec![node], rest])
}

/// Jepsen `bridge`: [`bisect`], then the first node of the larger half keeps
/// full connectivity to both sides.
/// `bridge([1,2,3,4,5])` drops, by receiver, `{1:{4,5}, 2:{4,5}, 4:{1,2}, 5:{1,2}}`.
pub fn bridge<N: Ord + Clone>(nodes: &[N]) -> Grudge<N> {
    let (small, large) = bisect(nodes);
    let Some(bridge_node) = large.first().cloned() else {
        return Grudge::new();
    };
    let mut grudge = complete(&[small, large]);
    grudge.retain(|from, to| *from != bridge_node && *to != bridge_node);
    grudge
}

/// Jepsen `majorities-ring-perfect`: every node sees a majority, and no two see
/// the same one. `ring` is the ring order (shuffle it for a random ring). For
/// each window of `⌊n/2⌋+1` consecutive ring nodes, the window's middle node
/// (index `⌊m/2⌋`) drops everyone outside the window, so the cuts are one-way
/// in general. Fewer than three nodes: no cuts.
pub fn majorities_ring<N: Ord + Clone>(ring: &[N]) -> Grudge<N> {
    let n = ring.len();
    let mut grudge = Grudge::new();
    if n < 3 {
        return grudge;
    }
    let majority = n / 2 + 1;
    for start in 0..n {
        let window: Vec<&N> = (0..majority).map(|k| &ring[(start + k) % n]).collect();
        let center = window[majority / 2];
        for other in ring {
            if !window.contains(&other) {
                grudge.block(other.clone(), center.clone());
            }
        }
    }
    grudge
}

/// The symmetric majorities ring: every node keeps both directions to the ring
/// neighbours within `⌈⌊n/2⌋/2⌉` hops and loses both directions to everyone
/// farther. Each node then sees a majority and, from four nodes on, no two see
/// the same one (with three or fewer nothing is cut).
pub fn majorities_ring_symmetric<N: Ord + Clone>(ring: &[N]) -> Grudge<N> {
    let n = ring.len();
    // A majority is ⌊n/2⌋+1 nodes, so each node needs ⌈⌊n/2⌋/2⌉ neighbours per side.
    let radius = (n / 2).div_ceil(2);
    let mut grudge = Grudge::new();
    for i in 0..n {
        for j in 0..n {
            let distance = i.abs_diff(j).min(n - i.abs_diff(j));
            if distance > radius {
                grudge.block(ring[i].clone(), ring[j].clone());
            }
        }
    }
    grudge
}

/// One-way partition: every node of `receivers` drops the packets of every
/// node of `senders`; the reverse direction keeps working. `one_way(&[x], all)`
/// silences `x`'s sends; `one_way(all, &[x])` makes `x` deaf.
pub fn one_way<N: Ord + Clone>(senders: &[N], receivers: &[N]) -> Grudge<N> {
    let mut grudge = Grudge::new();
    for from in senders {
        for to in receivers {
            grudge.block(from.clone(), to.clone());
        }
    }
    grudge
}

/// A single link cut both ways (the "Nifty" partial partition when the other
/// nodes still reach both ends).
pub fn cut_link<N: Ord + Clone>(a: N, b: N) -> Grudge<N> {
    let mut grudge = Grudge::new();
    grudge.block_both(a, b);
    grudge
}

/// `nodes` in a seed-determined order ([`seeded::SplitMix64`] Fisher–Yates),
/// so a scenario seed fixes a ring or a random split.
pub fn shuffled<N: Clone>(nodes: &[N], seed: u64) -> Vec<N> {
    let mut out = nodes.to_vec();
    seeded::SplitMix64::new(seed).shuffle(&mut out);
    out
}

#[cfg(test)]
mod tests;
