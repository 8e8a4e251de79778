//! Pure: topology + run id → the ordered list of kernel changes that build the
//! lab. `splitlab plan` prints it; `Lab::up` executes it step by step.

use crate::naming::{CONTROL_ADDR, RunId, node_addr};
use crate::shaping::Ports;
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// One kernel change. Every name is created inside a lab namespace; nothing
/// touches the host's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Create a named network namespace (`/run/netns/<name>`).
    CreateNetns {
        /// Namespace name.
        netns: String,
    },
    /// Create a veth pair whose ends are born in two namespaces.
    CreateVeth {
        /// Namespace of the first end.
        netns_a: String,
        /// First end.
        ifname_a: String,
        /// Namespace of the second end.
        netns_b: String,
        /// Second end.
        ifname_b: String,
    },
    /// Add an address (`/32`) to an interface.
    AddAddress {
        /// Namespace.
        netns: String,
        /// Interface.
        ifname: String,
        /// Address.
        addr: Ipv4Addr,
    },
    /// Set an interface up.
    LinkUp {
        /// Namespace.
        netns: String,
        /// Interface.
        ifname: String,
    },
    /// Add a host route `dest/32 dev ifname src src`.
    AddRoute {
        /// Namespace.
        netns: String,
        /// Destination host.
        dest: Ipv4Addr,
        /// Outgoing interface.
        ifname: String,
        /// Preferred source address.
        src: Ipv4Addr,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateNetns { netns } => write!(f, "netns add {netns}"),
            Step::CreateVeth {
                netns_a,
                ifname_a,
                netns_b,
                ifname_b,
            } => write!(f, "veth {netns_a}/{ifname_a} <-> {netns_b}/{ifname_b}"),
            Step::AddAddress {
                netns,
                ifname,
                addr,
            } => write!(f, "addr add {addr}/32 dev {ifname} netns {netns}"),
            Step::LinkUp { netns, ifname } => write!(f, "link set {ifname} up netns {netns}"),
            Step::AddRoute {
                netns,
                dest,
                ifname,
                src,
            } => write!(
                f,
                "route add {dest}/32 dev {ifname} src {src} netns {netns}"
            ),
        }
    }
}

/// One node as realised by the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedNode {
    /// Node name.
    pub name: String,
    /// 1-based index.
    pub index: usize,
    /// Region label.
    pub region: Option<String>,
    /// Namespace.
    pub netns: String,
    /// Address (on `lo`).
    pub addr: Ipv4Addr,
}

/// The full plan of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Run id.
    pub run: RunId,
    /// Topology name.
    pub topology: String,
    /// Plane ports.
    pub ports: Ports,
    /// Nodes in topology order.
    pub nodes: Vec<PlannedNode>,
    /// Control namespace (linked to every node, never faulted).
    pub control_netns: String,
    /// Control namespace address.
    pub control_addr: Ipv4Addr,
    /// Every namespace the plan creates (node namespaces, then control).
    pub namespaces: Vec<String>,
    /// Ordered steps.
    pub steps: Vec<Step>,
}

/// Builds the plan. Pure and deterministic: same inputs, same plan.
pub fn plan(run: &RunId, topology: &Topology) -> Plan {
    let control = run.control_netns();
    let nodes: Vec<PlannedNode> = topology
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| PlannedNode {
            name: n.name.clone(),
            index: i + 1,
            region: n.region.clone(),
            netns: run.node_netns(&n.name),
            addr: node_addr(i + 1),
        })
        .collect();
    let mut namespaces: Vec<String> = nodes.iter().map(|n| n.netns.clone()).collect();
    namespaces.push(control.clone());

    let mut steps = Vec::new();
    for netns in &namespaces {
        steps.push(Step::CreateNetns {
            netns: netns.clone(),
        });
    }
    for node in &nodes {
        steps.push(Step::LinkUp {
            netns: node.netns.clone(),
            ifname: "lo".into(),
        });
        steps.push(Step::AddAddress {
            netns: node.netns.clone(),
            ifname: "lo".into(),
            addr: node.addr,
        });
    }
    steps.push(Step::LinkUp {
        netns: control.clone(),
        ifname: "lo".into(),
    });
    steps.push(Step::AddAddress {
        netns: control.clone(),
        ifname: "lo".into(),
        addr: CONTROL_ADDR,
    });
    for &(a, b) in &topology.links {
        let (na, nb) = (&nodes[a], &nodes[b]);
        let if_a = run.mesh_ifname(na.index, nb.index);
        let if_b = run.mesh_ifname(nb.index, na.index);
        steps.push(Step::CreateVeth {
            netns_a: na.netns.clone(),
            ifname_a: if_a.clone(),
            netns_b: nb.netns.clone(),
            ifname_b: if_b.clone(),
        });
        for (node, ifname, peer) in [(na, &if_a, nb), (nb, &if_b, na)] {
            steps.push(Step::LinkUp {
                netns: node.netns.clone(),
                ifname: ifname.clone(),
            });
            steps.push(Step::AddRoute {
                netns: node.netns.clone(),
                dest: peer.addr,
                ifname: ifname.clone(),
                src: node.addr,
            });
        }
    }
    for node in &nodes {
        let node_if = run.node_control_ifname(node.index);
        let control_if = run.control_ifname(node.index);
        steps.push(Step::CreateVeth {
            netns_a: node.netns.clone(),
            ifname_a: node_if.clone(),
            netns_b: control.clone(),
            ifname_b: control_if.clone(),
        });
        steps.push(Step::LinkUp {
            netns: node.netns.clone(),
            ifname: node_if.clone(),
        });
        steps.push(Step::AddRoute {
            netns: node.netns.clone(),
            dest: CONTROL_ADDR,
            ifname: node_if,
            src: node.addr,
        });
        steps.push(Step::LinkUp {
            netns: control.clone(),
            ifname: control_if.clone(),
        });
        steps.push(Step::AddRoute {
            netns: control.clone(),
            dest: node.addr,
            ifname: control_if,
            src: CONTROL_ADDR,
        });
    }
    Plan {
        run: run.clone(),
        topology: topology.name.clone(),
        ports: topology.ports,
        nodes,
        control_netns: control,
        control_addr: CONTROL_ADDR,
        namespaces,
        steps,
    }
}

impl Plan {
    /// Node by name.
    pub fn node(&self, name: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Routes that carry traffic between `a` and `b` (re-added after link-up).
    pub fn link_steps(&self, a: &str, b: &str) -> Vec<Step> {
        let (Some(na), Some(nb)) = (self.node(a), self.node(b)) else {
            return Vec::new();
        };
        let if_a = self.run.mesh_ifname(na.index, nb.index);
        let if_b = self.run.mesh_ifname(nb.index, na.index);
        self.steps
            .iter()
            .filter(|s| match s {
                Step::LinkUp { ifname, .. } | Step::AddRoute { ifname, .. } => {
                    *ifname == if_a || *ifname == if_b
                }
                _ => false,
            })
            .cloned()
            .collect()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# run {} topology {} (peer port {} udp+tcp, client port {} tcp)",
            self.run, self.topology, self.ports.peer, self.ports.client
        )?;
        for node in &self.nodes {
            let region = node
                .region
                .as_deref()
                .map(|r| format!(" region {r}"))
                .unwrap_or_default();
            writeln!(
                f,
                "# node {} = {} in {}{region}",
                node.name, node.addr, node.netns
            )?;
        }
        writeln!(
            f,
            "# control = {} in {}",
            self.control_addr, self.control_netns
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_two_nodes() {
        let run: RunId = "3f9a".parse().unwrap();
        let text = plan(&run, &Topology::full_mesh(2)).to_string();
        let expected = "\
# run 3f9a topology mesh-2 (peer port 7100 udp+tcp, client port 7000 tcp)
# node n1 = 10.77.0.1 in sl-3f9a-n1
# node n2 = 10.77.0.2 in sl-3f9a-n2
# control = 10.77.1.254 in sl-3f9a-ctl
  1. netns add sl-3f9a-n1
  2. netns add sl-3f9a-n2
  3. netns add sl-3f9a-ctl
  4. link set lo up netns sl-3f9a-n1
  5. addr add 10.77.0.1/32 dev lo netns sl-3f9a-n1
  6. link set lo up netns sl-3f9a-n2
  7. addr add 10.77.0.2/32 dev lo netns sl-3f9a-n2
  8. link set lo up netns sl-3f9a-ctl
  9. addr add 10.77.1.254/32 dev lo netns sl-3f9a-ctl
 10. veth sl-3f9a-n1/sl3f9an1e2 <-> sl-3f9a-n2/sl3f9an2e1
 11. link set sl3f9an1e2 up netns sl-3f9a-n1
 12. route add 10.77.0.2/32 dev sl3f9an1e2 src 10.77.0.1 netns sl-3f9a-n1
 13. link set sl3f9an2e1 up netns sl-3f9a-n2
 14. route add 10.77.0.1/32 dev sl3f9an2e1 src 10.77.0.2 netns sl-3f9a-n2
 15. veth sl-3f9a-n1/sl3f9an1c <-> sl-3f9a-ctl/sl3f9ac1
 16. link set sl3f9an1c up netns sl-3f9a-n1
 17. route add 10.77.1.254/32 dev sl3f9an1c src 10.77.0.1 netns sl-3f9a-n1
 18. link set sl3f9ac1 up netns sl-3f9a-ctl
 19. route add 10.77.0.1/32 dev sl3f9ac1 src 10.77.1.254 netns sl-3f9a-ctl
 20. veth sl-3f9a-n2/sl3f9an2c <-> sl-3f9a-ctl/sl3f9ac2
 21. link set sl3f9an2c up netns sl-3f9a-n2
 22. route add 10.77.1.254/32 dev sl3f9an2c src 10.77.0.2 netns sl-3f9a-n2
 23. link set sl3f9ac2 up netns sl-3f9a-ctl
 24. route add 10.77.0.2/32 dev sl3f9ac2 src 10.77.1.254 netns sl-3f9a-ctl
";
        assert_eq!(text, expected);
    }

    #[test]
    fn sizes_and_names() {
        let run: RunId = "00aa".parse().unwrap();
        let p = plan(&run, &Topology::full_mesh(5));
        assert_eq!(p.namespaces.len(), 6);
        let veths = p
            .steps
            .iter()
            .filter(|s| matches!(s, Step::CreateVeth { .. }))
            .count();
        assert_eq!(veths, 10 + 5);
        for step in &p.steps {
            if let Step::CreateVeth {
                ifname_a, ifname_b, ..
            } = step
            {
                assert!(ifname_a.len() <= 15 && ifname_b.len() <= 15);
            }
        }
        assert_eq!(p.link_steps("n1", "n2").len(), 4);
    }
}
