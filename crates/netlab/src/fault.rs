//! Faults as data, and the network state they build up. Pure: `NetState::apply`
//! folds a fault into the desired state; `render` turns the state into
//! per-namespace kernel configuration; only `lab` touches the kernel.

use crate::grudge::Grudge;
use crate::shaping::{LinkShaping, Planes};
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One fault (or its removal). Network faults are per directed link and per
/// plane; process faults act on the node's main process (see `Lab::spawn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Replaces the partition of `planes` with `grudge` (directed cuts `from → to`).
    Partition {
        /// Who drops whom.
        grudge: Grudge,
        /// Which traffic is cut (default: all).
        #[serde(default = "all_planes")]
        planes: Planes,
    },
    /// Replaces the data-only partition of `planes` with `grudge`: on each
    /// cut `from → to` only payload-carrying packets are dropped (TCP
    /// segments with data, every UDP datagram), while TCP's pure ACKs and
    /// control packets (SYN, FIN, RST without data) still pass. A TCP stream
    /// `to → from` therefore keeps flowing (its ACKs travel `from → to`),
    /// unlike under [`Fault::Partition`], which drops every packet (a dead
    /// fibre: both directions of a TCP connection stall). Independent of the
    /// full partitions; [`Fault::Heal`] removes both.
    DataPartition {
        /// Who drops whose payload.
        grudge: Grudge,
        /// Which traffic is cut (default: all).
        #[serde(default = "all_planes")]
        planes: Planes,
    },
    /// Removes every partition (full and data-only).
    Heal,
    /// Sets shaping on directed links `(from, to)` for `planes`. It replaces
    /// an earlier fault shape of the same links and planes; fields left unset
    /// keep the topology's base shaping.
    Shape {
        /// Directed links `[from, to]`.
        links: Vec<(String, String)>,
        /// Which traffic (default: all). Rate limits need `all`.
        #[serde(default = "all_planes")]
        planes: Planes,
        /// The conditions.
        shape: LinkShaping,
    },
    /// Removes every fault shaping; the topology's base shaping stays.
    Unshape,
    /// Takes the link between `a` and `b` down (both ends): senders get ENETUNREACH.
    LinkDown {
        /// One end.
        a: String,
        /// Other end.
        b: String,
    },
    /// Brings a downed link back and restores its routes.
    LinkUp {
        /// One end.
        a: String,
        /// Other end.
        b: String,
    },
    /// SIGKILL the node's main process.
    Kill {
        /// Node name.
        node: String,
    },
    /// SIGSTOP the node's main process.
    Stop {
        /// Node name.
        node: String,
    },
    /// SIGCONT the node's main process.
    Cont {
        /// Node name.
        node: String,
    },
    /// Kill (if running) and start the node's main process again with the same spec.
    Restart {
        /// Node name.
        node: String,
    },
}

fn all_planes() -> Planes {
    Planes::All
}

impl Fault {
    /// True for faults that act on processes rather than the network.
    pub fn is_process_fault(&self) -> bool {
        matches!(
            self,
            Fault::Kill { .. } | Fault::Stop { .. } | Fault::Cont { .. } | Fault::Restart { .. }
        )
    }

    /// One-line description for logs and histories.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { grudge, planes } => {
                format!("partition[{planes}] {}", grudge.describe())
            }
            Fault::DataPartition { grudge, planes } => {
                format!("data-partition[{planes}] {}", grudge.describe())
            }
            Fault::Heal => "heal".into(),
            Fault::Shape {
                links,
                planes,
                shape,
            } => {
                let links: Vec<String> = links.iter().map(|(f, t)| format!("{f}->{t}")).collect();
                format!("shape[{planes}] {} {}", links.join(" "), shape.describe())
            }
            Fault::Unshape => "unshape".into(),
            Fault::LinkDown { a, b } => format!("link-down {a}--{b}"),
            Fault::LinkUp { a, b } => format!("link-up {a}--{b}"),
            Fault::Kill { node } => format!("kill {node}"),
            Fault::Stop { node } => format!("stop {node}"),
            Fault::Cont { node } => format!("cont {node}"),
            Fault::Restart { node } => format!("restart {node}"),
        }
    }

    /// Checks every reference against the topology and every value.
    ///
    /// # Errors
    /// A message naming the bad reference and listing the valid names.
    pub fn validate(&self, topology: &Topology) -> Result<(), String> {
        let names = topology.node_names();
        let known = |name: &str| {
            if topology.index_of(name).is_some() {
                Ok(())
            } else {
                Err(format!(
                    "unknown node {name:?} in fault `{}`; valid names: {}",
                    self.describe(),
                    names.join(", ")
                ))
            }
        };
        let linked = |a: &str, b: &str| {
            known(a)?;
            known(b)?;
            if a == b {
                return Err(format!("self-link {a:?} in fault `{}`", self.describe()));
            }
            let (ia, ib) = (topology.index_of(a).unwrap(), topology.index_of(b).unwrap());
            if topology.linked(ia, ib) {
                Ok(())
            } else {
                Err(format!("no link between {a:?} and {b:?} in the topology"))
            }
        };
        match self {
            Fault::Partition { grudge, .. } | Fault::DataPartition { grudge, .. } => {
                // A self-cut cannot be built or deserialized (`faults::Grudge`
                // refuses it), so names are all that is left to check.
                for node in grudge.nodes() {
                    known(&node)?;
                }
                Ok(())
            }
            Fault::Shape {
                links,
                planes,
                shape,
            } => {
                if links.is_empty() {
                    return Err("shape fault names no links".into());
                }
                for (from, to) in links {
                    linked(from, to)?;
                }
                shape.validate().map_err(|e| e.to_string())?;
                if shape.rate_kbit.is_some() && *planes != Planes::All {
                    return Err(format!(
                        "rate_kbit: rate limits shape a whole directed link (tbf on the \
                         sender's veth); use planes = all, not {planes}"
                    ));
                }
                Ok(())
            }
            Fault::LinkDown { a, b } | Fault::LinkUp { a, b } => linked(a, b),
            Fault::Kill { node }
            | Fault::Stop { node }
            | Fault::Cont { node }
            | Fault::Restart { node } => known(node),
            Fault::Heal | Fault::Unshape => Ok(()),
        }
    }
}

/// Shaping of one directed link for one plane selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeEntry {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Traffic selection.
    pub planes: Planes,
    /// Conditions.
    pub shape: LinkShaping,
}

/// The desired network conditions of a lab: base shaping plus active faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetState {
    /// Active partitions per plane selection (every packet dropped).
    pub partitions: BTreeMap<Planes, Grudge>,
    /// Active data-only partitions per plane selection (payload dropped,
    /// pure ACKs and control packets pass); see [`Fault::DataPartition`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data_partitions: BTreeMap<Planes, Grudge>,
    /// Shaping from the topology (never removed by `Unshape`).
    pub base: Vec<ShapeEntry>,
    /// Shaping from faults.
    pub shapes: Vec<ShapeEntry>,
    /// Links that are down, as sorted `(a, b)` name pairs.
    pub down: BTreeSet<(String, String)>,
}

impl NetState {
    /// The state right after bring-up: the topology's base shaping only.
    pub fn from_topology(topology: &Topology) -> NetState {
        NetState {
            base: topology
                .shapes
                .iter()
                .map(|b| ShapeEntry {
                    from: b.from.clone(),
                    to: b.to.clone(),
                    planes: Planes::All,
                    shape: b.shape,
                })
                .collect(),
            ..NetState::default()
        }
    }

    /// Folds a network fault into the state (process faults leave it as is).
    pub fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::Partition { grudge, planes } => {
                if grudge.is_empty() {
                    self.partitions.remove(planes);
                } else {
                    self.partitions.insert(*planes, grudge.clone());
                }
            }
            Fault::DataPartition { grudge, planes } => {
                if grudge.is_empty() {
                    self.data_partitions.remove(planes);
                } else {
                    self.data_partitions.insert(*planes, grudge.clone());
                }
            }
            Fault::Heal => {
                self.partitions.clear();
                self.data_partitions.clear();
            }
            Fault::Shape {
                links,
                planes,
                shape,
            } => {
                for (from, to) in links {
                    self.shapes
                        .retain(|e| !(e.from == *from && e.to == *to && e.planes == *planes));
                    self.shapes.push(ShapeEntry {
                        from: from.clone(),
                        to: to.clone(),
                        planes: *planes,
                        shape: *shape,
                    });
                }
            }
            Fault::Unshape => self.shapes.clear(),
            Fault::LinkDown { a, b } => {
                self.down.insert(sorted_pair(a, b));
            }
            Fault::LinkUp { a, b } => {
                self.down.remove(&sorted_pair(a, b));
            }
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Cont { .. }
            | Fault::Restart { .. } => {}
        }
    }

    /// Is the directed link cut for `plane` (by a partition of that plane or of all)?
    pub fn cut(&self, from: &str, to: &str, plane: Planes) -> bool {
        let by = |p: Planes| self.partitions.get(&p).is_some_and(|g| g.drops(from, to));
        by(Planes::All) || (plane != Planes::All && by(plane))
    }

    /// Is the payload of directed link `from → to` cut for `plane` by a
    /// data-only partition (pure ACKs and control packets still pass)?
    pub fn data_cut(&self, from: &str, to: &str, plane: Planes) -> bool {
        let by = |p: Planes| {
            self.data_partitions
                .get(&p)
                .is_some_and(|g| g.drops(from, to))
        };
        by(Planes::All) || (plane != Planes::All && by(plane))
    }

    /// Is the undirected link between `a` and `b` down?
    pub fn is_down(&self, a: &str, b: &str) -> bool {
        self.down.contains(&sorted_pair(a, b))
    }

    /// Effective shapes of directed link `from → to`: plane-specific entries
    /// first (each already merged over the `all` shape), then `all` if it does
    /// anything. A plane key is present when some base or fault entry names it.
    pub fn effective(&self, from: &str, to: &str) -> Vec<(Planes, LinkShaping)> {
        let find = |list: &[ShapeEntry], planes: Planes| {
            list.iter()
                .find(|e| e.from == from && e.to == to && e.planes == planes)
                .map(|e| e.shape)
        };
        let all = find(&self.base, Planes::All)
            .unwrap_or_default()
            .overlay(&find(&self.shapes, Planes::All).unwrap_or_default());
        let mut out = Vec::new();
        for plane in Planes::EACH {
            let base = find(&self.base, plane);
            let fault = find(&self.shapes, plane);
            if base.is_none() && fault.is_none() {
                continue;
            }
            let merged = all
                .overlay(&base.unwrap_or_default())
                .overlay(&fault.unwrap_or_default());
            out.push((plane, merged));
        }
        if !all.is_noop() {
            out.push((Planes::All, all));
        }
        out
    }

    /// The shape a packet of `plane` on `from → to` experiences.
    pub fn shape_for(&self, from: &str, to: &str, plane: Planes) -> LinkShaping {
        let effective = self.effective(from, to);
        effective
            .iter()
            .find(|(p, _)| *p == plane)
            .or_else(|| effective.iter().find(|(p, _)| *p == Planes::All))
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }
}

fn sorted_pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn partitions_replace_per_plane_and_heal_clears() {
        let mut state = NetState::default();
        state.apply(&Fault::Partition {
            grudge: grudge::complete(&[names(2), names(5)[2..].to_vec()]),
            planes: Planes::All,
        });
        state.apply(&Fault::Partition {
            grudge: grudge::one_way(&["n1".into()], &["n2".into()]),
            planes: Planes::Heartbeat,
        });
        assert!(state.cut("n1", "n3", Planes::Client));
        assert!(state.cut("n1", "n2", Planes::Heartbeat));
        assert!(!state.cut("n1", "n2", Planes::Replication));
        assert!(!state.cut("n2", "n1", Planes::Heartbeat));
        state.apply(&Fault::Heal);
        assert!(!state.cut("n1", "n3", Planes::All));
    }

    #[test]
    fn data_partitions_are_separate_from_full_ones_and_heal_clears_both() {
        let mut state = NetState::default();
        state.apply(&Fault::DataPartition {
            grudge: grudge::one_way(&["n1".into()], &["n2".into()]),
            planes: Planes::All,
        });
        assert!(state.data_cut("n1", "n2", Planes::Replication));
        assert!(!state.data_cut("n2", "n1", Planes::Replication));
        assert!(!state.cut("n1", "n2", Planes::All));
        state.apply(&Fault::Partition {
            grudge: grudge::one_way(&["n3".into()], &["n2".into()]),
            planes: Planes::All,
        });
        assert!(
            state.data_cut("n1", "n2", Planes::All),
            "a full partition leaves it"
        );
        state.apply(&Fault::Heal);
        assert!(state.data_partitions.is_empty() && state.partitions.is_empty());
        let text = serde_json::to_string(&NetState::default()).unwrap();
        assert!(
            !text.contains("data_partitions"),
            "old journals stay as they were: {text}"
        );
    }

    #[test]
    fn effective_shapes_merge_base_and_fault() {
        let mut topo = Topology::full_mesh(2);
        topo.shapes.push(crate::topology::BaseShaping {
            from: "n1".into(),
            to: "n2".into(),
            shape: LinkShaping {
                delay_ms: Some(30.0),
                ..LinkShaping::default()
            },
        });
        let mut state = NetState::from_topology(&topo);
        state.apply(&Fault::Shape {
            links: vec![("n1".into(), "n2".into())],
            planes: Planes::Heartbeat,
            shape: LinkShaping {
                loss_pct: Some(30.0),
                ..LinkShaping::default()
            },
        });
        let eff = state.effective("n1", "n2");
        assert_eq!(eff.len(), 2);
        assert_eq!(eff[0].0, Planes::Heartbeat);
        assert_eq!(eff[0].1.delay_ms, Some(30.0));
        assert_eq!(eff[0].1.loss_pct, Some(30.0));
        assert_eq!(eff[1].0, Planes::All);
        assert_eq!(eff[1].1.loss_pct, None);
        assert_eq!(
            state.shape_for("n1", "n2", Planes::Client).delay_ms,
            Some(30.0)
        );
        assert!(state.effective("n2", "n1").is_empty());
        state.apply(&Fault::Unshape);
        assert_eq!(state.effective("n1", "n2").len(), 1);
    }

    #[test]
    fn validation_names_valid_nodes_and_rejects_plane_rates() {
        let topo = Topology::full_mesh(3);
        let err = Fault::Kill { node: "n9".into() }
            .validate(&topo)
            .unwrap_err();
        assert!(err.contains("valid names: n1, n2, n3"), "{err}");
        let err = Fault::Shape {
            links: vec![("n1".into(), "n2".into())],
            planes: Planes::Client,
            shape: LinkShaping {
                rate_kbit: Some(100),
                ..LinkShaping::default()
            },
        }
        .validate(&topo)
        .unwrap_err();
        assert!(err.contains("rate_kbit"), "{err}");
        let err = Fault::LinkDown {
            a: "n1".into(),
            b: "n1".into(),
        }
        .validate(&topo)
        .unwrap_err();
        assert!(err.contains("self-link"), "{err}");
    }

    #[test]
    fn faults_round_trip_through_json() {
        let fault = Fault::Partition {
            grudge: grudge::bridge(&names(5)),
            planes: Planes::Replication,
        };
        let text = serde_json::to_string(&fault).unwrap();
        assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), fault);
        let link_down: Fault =
            serde_json::from_str(r#"{"fault":"link-down","a":"n1","b":"n2"}"#).unwrap();
        assert_eq!(link_down.describe(), "link-down n1--n2");
    }
}
