//! Topology files (`lab/topologies/*.toml`): parsed, then validated as a whole
//! before anything touches the kernel. Every error carries `file:line:column`
//! and, for bad node references, the list of valid names.
//!
//! ```toml
//! name = "wan-3dc"                 # optional, defaults to the file stem
//! [ports]                          # optional: peer 7100, client 7000
//! peer = 7100
//! client = 7000
//! [[node]]
//! name = "us-east"                 # [a-z0-9-], 1..=32 bytes, unique
//! region = "US-East"               # optional label
//! [[link]]                         # optional: without any, a full mesh
//! a = "us-east"
//! b = "eu"
//! [[shape]]                        # base shaping of one directed link
//! from = "us-east"
//! to = "eu"
//! both_ways = true                 # also to → from
//! delay_ms = 40
//! jitter_ms = 2
//! loss_pct = 0.1
//! rate_kbit = 100000
//! ```
mod parse;

use crate::naming::MAX_NODES;
use crate::shaping::{LinkShaping, Ports};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// One node of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique name, used in namespace names and by faults.
    pub name: String,
    /// Optional region label (for reports and role-aware targets).
    pub region: Option<String>,
}

/// Base shaping of one directed link, applied at bring-up and kept under faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseShaping {
    /// Sender node name.
    pub from: String,
    /// Receiver node name.
    pub to: String,
    /// The conditions.
    pub shape: LinkShaping,
}

/// A validated topology. Build it with [`Topology::load`],
/// [`Topology::from_toml_str`] or [`Topology::full_mesh`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// Display name.
    pub name: String,
    /// Plane ports.
    pub ports: Ports,
    /// Nodes in file order; node *i* (1-based) gets address `10.77.0.i`.
    pub nodes: Vec<NodeSpec>,
    /// Undirected links as 0-based node index pairs `(a, b)` with `a < b`, sorted.
    pub links: Vec<(usize, usize)>,
    /// Base shaping per directed link.
    pub shapes: Vec<BaseShaping>,
}

/// A topology error located in its source text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TopologyError {
    /// File name (or `<inline>`).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}
impl Topology {
    /// Reads and validates a topology file.
    ///
    /// # Errors
    /// I/O failures and every validation failure, located at file:line:column.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "topology".into());
        Topology::from_toml_str(&text, &file, &stem)
    }

    /// Parses and validates TOML text; `file` is used in error locations and
    /// `default_name` when the text has no `name`.
    ///
    /// # Errors
    /// Syntax, type, unknown-field and semantic errors with line:column.
    pub fn from_toml_str(
        text: &str,
        file: &str,
        default_name: &str,
    ) -> Result<Topology, TopologyError> {
        parse::parse(text, file, default_name)
    }

    /// A full mesh of `count` nodes named `n1..nN` with no shaping.
    ///
    /// # Panics
    /// If `count` is 0 or above [`MAX_NODES`].
    pub fn full_mesh(count: usize) -> Topology {
        assert!((1..=MAX_NODES).contains(&count), "bad node count {count}");
        let nodes = (1..=count)
            .map(|i| NodeSpec {
                name: format!("n{i}"),
                region: None,
            })
            .collect();
        Topology {
            name: format!("mesh-{count}"),
            ports: Ports::default(),
            nodes,
            links: all_pairs(count),
            shapes: Vec::new(),
        }
    }

    /// Checks a topology built in code (files are checked while parsing).
    ///
    /// # Errors
    /// The first problem found, naming the valid node names where relevant.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let as_toml = self.to_toml();
        Topology::from_toml_str(&as_toml, "<topology>", &self.name).map(|_| ())
    }

    /// 0-based index of a node by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Node names in order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// True when nodes `a` and `b` (0-based) share a link.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        let key = (a.min(b), a.max(b));
        self.links.binary_search(&key).is_ok()
    }

    /// Renders back to the file format (used for validation of built topologies).
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "name = {:?}\n[ports]\npeer = {}\nclient = {}\n",
            self.name, self.ports.peer, self.ports.client
        );
        for node in &self.nodes {
            out.push_str(&format!("[[node]]\nname = {:?}\n", node.name));
            if let Some(region) = &node.region {
                out.push_str(&format!("region = {region:?}\n"));
            }
        }
        for &(a, b) in &self.links {
            let name = |i: usize| self.nodes.get(i).map_or("?", |n| n.name.as_str());
            out.push_str(&format!("[[link]]\na = {:?}\nb = {:?}\n", name(a), name(b)));
        }
        for base in &self.shapes {
            out.push_str(&format!(
                "[[shape]]\nfrom = {:?}\nto = {:?}\n",
                base.from, base.to
            ));
            let s = &base.shape;
            for (key, value) in [
                ("delay_ms", s.delay_ms),
                ("jitter_ms", s.jitter_ms),
                ("loss_pct", s.loss_pct),
                ("duplicate_pct", s.duplicate_pct),
                ("corrupt_pct", s.corrupt_pct),
                ("reorder_pct", s.reorder_pct),
            ] {
                if let Some(v) = value {
                    out.push_str(&format!("{key} = {v:?}\n"));
                }
            }
            if let Some(rate) = s.rate_kbit {
                out.push_str(&format!("rate_kbit = {rate}\n"));
            }
        }
        out
    }
}

fn all_pairs(count: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for a in 0..count {
        for b in a + 1..count {
            pairs.push((a, b));
        }
    }
    pairs
}
