//! Deterministic names and addresses. Crash cleanup depends on this scheme, so
//! it is written down here and nowhere else.
//!
//! | thing | name | example |
//! |---|---|---|
//! | run id | 4 lowercase hex digits | `3f9a` |
//! | node namespace | `sl-<run>-<node>` | `sl-3f9a-n1` |
//! | control namespace | `sl-<run>-ctl` | `sl-3f9a-ctl` |
//! | veth end in node *i* towards node *j* | `sl<run>n<i>e<j>` | `sl3f9an1e2` |
//! | veth end in node *i* towards control | `sl<run>n<i>c` | `sl3f9an1c` |
//! | veth end in control towards node *i* | `sl<run>c<i>` | `sl3f9ac1` |
//! | nft table (in every lab namespace) | `ip sl_<run>` | `sl_3f9a` |
//! | journal | `<state dir>/<run>/journal.json` | `/run/splitlab/3f9a/journal.json` |
//!
//! Node *i* is the 1-based position of the node in the topology file. Its
//! address is `10.77.0.<i>/32` on `lo`; the control namespace is
//! `10.77.1.254/32`. Routes are host routes over the veth (`10.77.0.<j>/32 dev
//! sl<run>n<i>e<j> src 10.77.0.<i>`), so every node has one address whatever
//! link a packet uses, and receivers can match a sender by `ip saddr` alone.
//! Namespaces do not forward, so traffic never transits another node or the
//! control namespace. Interface names are at most 14 bytes (IFNAMSIZ is 16
//! with the NUL) for up to 999 nodes; the topology allows at most 250.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Every lab namespace starts with this; `splitlab clean` only touches such names.
pub const NETNS_PREFIX: &str = "sl-";
/// Maximum number of nodes (addresses `10.77.0.1..=250`).
pub const MAX_NODES: usize = 250;
/// Address of the control namespace.
pub const CONTROL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 254);

/// A run identifier: 4 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A fresh id from the kernel's random source (falls back to time ⊕ pid).
    pub fn random() -> Self {
        let mut bytes = [0u8; 2];
        let from_urandom = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !from_urandom {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let mixed = nanos ^ std::process::id().rotate_left(16);
            bytes = [(mixed >> 8) as u8, mixed as u8];
        }
        RunId(format!("{:02x}{:02x}", bytes[0], bytes[1]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Namespace of a node.
    pub fn node_netns(&self, node: &str) -> String {
        format!("{NETNS_PREFIX}{}-{node}", self.0)
    }

    /// The control namespace.
    pub fn control_netns(&self) -> String {
        format!("{NETNS_PREFIX}{}-ctl", self.0)
    }

    /// Prefix shared by all of this run's namespaces.
    pub fn netns_prefix(&self) -> String {
        format!("{NETNS_PREFIX}{}-", self.0)
    }

    /// veth end inside node `from` (1-based index) that leads to node `to`.
    pub fn mesh_ifname(&self, from: usize, to: usize) -> String {
        format!("sl{}n{from}e{to}", self.0)
    }

    /// veth end inside node `index` that leads to the control namespace.
    pub fn node_control_ifname(&self, index: usize) -> String {
        format!("sl{}n{index}c", self.0)
    }

    /// veth end inside the control namespace that leads to node `index`.
    pub fn control_ifname(&self, index: usize) -> String {
        format!("sl{}c{index}", self.0)
    }

    /// The nft table this run owns in each of its namespaces (family `ip`: nft `dup` is not available in `inet`).
    pub fn nft_table(&self) -> String {
        format!("sl_{}", self.0)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a run id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run id {0:?} must be exactly 4 lowercase hex digits, e.g. 3f9a")]
pub struct BadRunId(pub String);

impl FromStr for RunId {
    type Err = BadRunId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.len() == 4
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(RunId(text.to_string()))
        } else {
            Err(BadRunId(text.to_string()))
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = BadRunId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RunId> for String {
    fn from(run: RunId) -> String {
        run.0
    }
}

/// Address of node `index` (1-based).
pub fn node_addr(index: usize) -> Ipv4Addr {
    assert!(
        (1..=MAX_NODES).contains(&index),
        "node index {index} out of range"
    );
    Ipv4Addr::new(10, 77, 0, index as u8)
}

/// The run id encoded in a lab namespace name, if the name is one of ours.
pub fn run_of_netns(name: &str) -> Option<RunId> {
    let rest = name.strip_prefix(NETNS_PREFIX)?;
    let (run, node) = rest.split_once('-')?;
    if node.is_empty() {
        return None;
    }
    run.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_for_the_largest_index() {
        let run: RunId = "ffff".parse().unwrap();
        for name in [
            run.mesh_ifname(MAX_NODES, MAX_NODES - 1),
            run.node_control_ifname(MAX_NODES),
            run.control_ifname(MAX_NODES),
        ] {
            assert!(name.len() <= 15, "{name} is {} bytes", name.len());
        }
        assert_eq!(run.mesh_ifname(1, 2), "slffffn1e2");
        assert_eq!(run.node_netns("us-east"), "sl-ffff-us-east");
    }

    #[test]
    fn run_ids_are_validated() {
        assert!("3f9a".parse::<RunId>().is_ok());
        assert!("3F9A".parse::<RunId>().is_err());
        assert!("3f9".parse::<RunId>().is_err());
        assert!("3f9ag".parse::<RunId>().is_err());
        let fresh = RunId::random();
        assert!(fresh.as_str().parse::<RunId>().is_ok());
    }

    #[test]
    fn netns_names_map_back_to_runs() {
        assert_eq!(run_of_netns("sl-3f9a-n1"), Some("3f9a".parse().unwrap()));
        assert_eq!(run_of_netns("sl-3f9a-ctl"), Some("3f9a".parse().unwrap()));
        assert_eq!(run_of_netns("sl-3f9a-"), None);
        assert_eq!(run_of_netns("other-3f9a-n1"), None);
        assert_eq!(run_of_netns("sl-zzzz-n1"), None);
    }
}
