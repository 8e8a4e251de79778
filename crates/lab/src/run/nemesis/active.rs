//! Timeline steps → netlab faults, and the set of faults currently active.
//! Pure: [`super::Nemesis`] resolves role targets, asks this module what to
//! apply, and hands the resulting [`Fault`]s to `netlab::Lab::apply`.
//!
//! netlab keeps one partition and one set of fault shapes as *desired state*
//! (each `Partition` replaces the previous one, `Unshape` clears all shapes),
//! so overlapping steps are composed here: the partition applied is the union
//! of every active partition step, and removing one shape step re-applies the
//! others.
use std::collections::BTreeMap;

use netlab::{Fault, Grudge, LinkShaping, Planes};

use crate::run::scenario::{Effect, Plane};

/// The link plane netlab should act on.
pub fn planes(plane: Plane) -> Planes {
    match plane {
        Plane::All => Planes::All,
        Plane::Heartbeat => Planes::Heartbeat,
        Plane::Replication => Planes::Replication,
        Plane::Client => Planes::Client,
    }
}

/// Directed links between `targets` and `peers` (both directions). With
/// `peers = None`, every other node; when the targets are every node, every
/// link among them.
pub fn links(
    nodes: &[String],
    targets: &[String],
    peers: Option<&[String]>,
) -> Vec<(String, String)> {
    let others: Vec<String> = match peers {
        Some(peers) => peers.to_vec(),
        None if targets.len() == nodes.len() => nodes.to_vec(),
        None => nodes
            .iter()
            .filter(|n| !targets.contains(n))
            .cloned()
            .collect(),
    };
    let mut out = Vec::new();
    for a in targets {
        for b in &others {
            if a != b {
                out.push((a.clone(), b.clone()));
                out.push((b.clone(), a.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Undirected pairs (a < b) of a directed link list.
pub fn pairs(links: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = links
        .iter()
        .map(|(a, b)| {
            if a < b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The netem/tbf shape a shaping step's effect asks for.
pub fn shape_of(effect: &Effect) -> LinkShaping {
    let ms = |d: Option<crate::run::duration::Dur>| d.map(|d| d.as_millis_f64());
    let mut shape = LinkShaping::default();
    match effect {
        Effect::Loss { percent } => shape.loss_pct = Some(*percent),
        Effect::Duplicate { percent } => shape.duplicate_pct = Some(*percent),
        Effect::Corrupt { percent } => shape.corrupt_pct = Some(*percent),
        Effect::Reorder {
            percent,
            delay,
            jitter,
        } => {
            shape.reorder_pct = Some(*percent);
            shape.delay_ms = ms(*delay);
            shape.jitter_ms = ms(*jitter);
        }
        Effect::Delay { delay, jitter } => {
            shape.delay_ms = ms(Some(*delay));
            shape.jitter_ms = ms(*jitter);
        }
        Effect::Rate { bits_per_sec, .. } => {
            shape.rate_kbit = Some((bits_per_sec / 1000).max(1));
        }
    }
    shape
}

/// One active network fault, keyed by its timeline step.
#[derive(Debug, Clone, PartialEq)]
pub enum ActiveNet {
    /// A partition step's cuts.
    Partition {
        /// Who drops whose packets.
        grudge: Grudge,
        /// Which traffic.
        planes: Planes,
        /// Payload only (pure ACKs and control packets pass).
        data_only: bool,
    },
    /// A shaping step's netem/tbf settings.
    Shape {
        /// Directed links the shaping applies to.
        links: Vec<(String, String)>,
        /// Which traffic.
        planes: Planes,
        /// Loss, delay, rate and the rest.
        shape: LinkShaping,
    },
    /// A link-down or flap step's links.
    LinkDown {
        /// Undirected node pairs whose link is down.
        pairs: Vec<(String, String)>,
    },
}

impl ActiveNet {
    /// What netlab applies to put a shaping step in force (`None`: not a
    /// shaping step).
    fn shape_fault(&self) -> Option<Fault> {
        match self {
            ActiveNet::Shape {
                links,
                planes,
                shape,
            } => Some(Fault::Shape {
                links: links.clone(),
                planes: *planes,
                shape: *shape,
            }),
            _ => None,
        }
    }
}

/// Network faults currently in force.
#[derive(Debug, Clone, Default)]
pub struct ActiveFaults {
    net: BTreeMap<usize, ActiveNet>,
    /// (data-only, planes) keys that currently carry a non-empty partition.
    partitioned_planes: Vec<(bool, Planes)>,
}

impl ActiveFaults {
    /// The union of all active partitions per plane (full and data-only
    /// cuts apart), replacing the previous partition in one step per key
    /// (a heal when none is left).
    fn partition_fault(&mut self) -> Vec<Fault> {
        let mut by_plane: BTreeMap<(bool, Planes), Grudge> = BTreeMap::new();
        for key in &self.partitioned_planes {
            by_plane.insert(*key, Grudge::default());
        }
        for active in self.net.values() {
            if let ActiveNet::Partition {
                grudge,
                planes,
                data_only,
            } = active
            {
                let union = by_plane.entry((*data_only, *planes)).or_default();
                union.union(grudge);
            }
        }
        if by_plane.values().all(Grudge::is_empty) {
            self.partitioned_planes.clear();
            return vec![Fault::Heal];
        }
        self.partitioned_planes = by_plane
            .iter()
            .filter(|(_, grudge)| !grudge.is_empty())
            .map(|(plane, _)| *plane)
            .collect();
        by_plane
            .into_iter()
            .map(|((data_only, planes), grudge)| {
                if data_only {
                    Fault::DataPartition { grudge, planes }
                } else {
                    Fault::Partition { grudge, planes }
                }
            })
            .collect()
    }

    /// Every shape off, then the active shaping steps again.
    fn shape_faults(&self) -> Vec<Fault> {
        let again = self.net.values().filter_map(ActiveNet::shape_fault);
        std::iter::once(Fault::Unshape).chain(again).collect()
    }

    /// Starts a network fault; returns what netlab must apply.
    pub fn start(&mut self, step: usize, active: ActiveNet) -> Vec<Fault> {
        let faults = match &active {
            ActiveNet::Partition { .. } => None,
            ActiveNet::Shape { .. } => Some(active.shape_fault().into_iter().collect()),
            ActiveNet::LinkDown { pairs } => Some(
                pairs
                    .iter()
                    .map(|(a, b)| Fault::LinkDown {
                        a: a.clone(),
                        b: b.clone(),
                    })
                    .collect(),
            ),
        };
        let is_partition = matches!(active, ActiveNet::Partition { .. });
        self.net.insert(step, active);
        if is_partition {
            self.partition_fault()
        } else {
            faults.unwrap_or_default()
        }
    }

    /// Ends a network fault; returns what netlab must apply so that exactly
    /// the remaining faults stay in force.
    pub fn end(&mut self, step: usize) -> Vec<Fault> {
        match self.net.remove(&step) {
            Some(ActiveNet::Partition { .. }) => self.partition_fault(),
            Some(ActiveNet::Shape { .. }) => self.shape_faults(),
            Some(ActiveNet::LinkDown { pairs }) => {
                // A link stays down while another active step holds it down.
                let still_down: Vec<(String, String)> = self
                    .net
                    .values()
                    .filter_map(|active| match active {
                        ActiveNet::LinkDown { pairs } => Some(pairs.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                pairs
                    .into_iter()
                    .filter(|pair| !still_down.contains(pair))
                    .map(|(a, b)| Fault::LinkUp { a, b })
                    .collect()
            }
            None => Vec::new(),
        }
    }

    /// Forgets everything (after `heal_all`).
    pub fn clear(&mut self) {
        self.net.clear();
        self.partitioned_planes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::duration::Dur;
    use netlab::grudge;

    /// A partition of every plane by `grudge`.
    fn partition(grudge: Grudge, data_only: bool) -> ActiveNet {
        ActiveNet::Partition {
            grudge,
            planes: Planes::All,
            data_only,
        }
    }

    /// `shape` on every plane of the link `from` → `to`.
    fn shape_of_link(from: &str, to: &str, shape: LinkShaping) -> ActiveNet {
        ActiveNet::Shape {
            links: vec![(from.into(), to.into())],
            planes: Planes::All,
            shape,
        }
    }

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn links_of_one_node_go_both_ways_to_the_others() {
        let links = links(&names(3), &["n1".into()], None);
        assert_eq!(links.len(), 4);
        assert!(links.contains(&("n2".into(), "n1".into())));
        assert!(links.contains(&("n1".into(), "n3".into())));
        assert_eq!(pairs(&links).len(), 2);
    }

    #[test]
    fn all_targets_means_every_link() {
        let nodes = names(3);
        assert_eq!(links(&nodes, &nodes, None).len(), 6);
    }

    #[test]
    fn overlapping_partitions_are_applied_as_their_union() {
        let nodes = names(5);
        let mut active = ActiveFaults::default();
        let first = active.start(0, partition(grudge::isolate_one("n1", &nodes), false));
        assert_eq!(first.len(), 1);
        let second = active.start(1, partition(grudge::isolate_one("n2", &nodes), false));
        let Fault::Partition { grudge: union, .. } = &second[0] else {
            panic!("{second:?}")
        };
        assert!(union.drops("n1", "n3") && union.drops("n2", "n3"));
        let after = active.end(0);
        let Fault::Partition { grudge: left, .. } = &after[0] else {
            panic!("{after:?}")
        };
        assert!(!left.drops("n1", "n3") && left.drops("n2", "n3"));
        assert_eq!(active.end(1), vec![Fault::Heal]);
    }

    #[test]
    fn data_only_and_full_cuts_are_applied_apart() {
        let mut active = ActiveFaults::default();
        let one_way = || grudge::one_way(&["n1".into()], &["n2".into()]);
        let data = active.start(0, partition(one_way(), true));
        assert!(
            matches!(&data[..], [Fault::DataPartition { .. }]),
            "{data:?}"
        );
        let both = active.start(1, partition(one_way(), false));
        assert!(
            matches!(
                &both[..],
                [Fault::Partition { .. }, Fault::DataPartition { .. }]
            ),
            "{both:?}"
        );
        // Ending the data-only step empties its key (an empty grudge
        // removes it) and keeps the full cut.
        let after = active.end(0);
        assert!(
            matches!(&after[..], [Fault::Partition { grudge, .. }, Fault::DataPartition { grudge: empty, .. }]
                if !grudge.is_empty() && empty.is_empty()),
            "{after:?}"
        );
        assert_eq!(active.end(1), vec![Fault::Heal]);
    }

    #[test]
    fn ending_a_shape_reapplies_the_others() {
        let mut active = ActiveFaults::default();
        let loss = LinkShaping {
            loss_pct: Some(20.0),
            ..LinkShaping::default()
        };
        active.start(0, shape_of_link("n1", "n2", loss));
        active.start(1, shape_of_link("n2", "n3", loss));
        let faults = active.end(0);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0], Fault::Unshape);
    }

    #[test]
    fn effects_carry_their_parameters() {
        let shape = shape_of(&Effect::Delay {
            delay: Dur::from_millis(75),
            jitter: Some(Dur::from_millis(50)),
        });
        assert_eq!((shape.delay_ms, shape.jitter_ms), (Some(75.0), Some(50.0)));
        let rate = Effect::Rate {
            text: "1mbit".into(),
            bits_per_sec: 1_000_000,
        };
        assert_eq!(shape_of(&rate).rate_kbit, Some(1000));
    }
}
