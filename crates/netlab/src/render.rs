//! Pure: desired [`NetState`] → per-namespace kernel configuration, choosing a
//! backend for each effect from the probed [`Capabilities`]:
//!
//! | effect | netem kernel (whole-link shapes) | otherwise |
//! |---|---|---|
//! | partition | nft drop at the receiver (kernels without nft for `ip`: whole-link cuts as netem `loss 100%` at the sender) | same |
//! | data-only partition | nft drop of UDP and TCP-with-payload at the receiver | same |
//! | loss | netem | nft `numgen` drop at the receiver's input |
//! | delay, jitter, reorder | netem | iptables NFQUEUE at the receiver's PREROUTING (before the partition rules) + consumer process |
//! | duplicate, corrupt | netem | nft `dup` / `@ih` mangle at the sender's output |
//! | rate | netem `rate` | tbf on the sender's veth |
//!
//! Plane-specific shapes always use the nft/NFQUEUE path (netem cannot tell
//! planes apart without classifiers this kernel lacks).

use crate::caps::{Capabilities, Unsupported};
use crate::fault::NetState;
use crate::iptables;
use crate::naming::{RunId, node_addr};
use crate::nft::{self, InputRule, OutputRule};
use crate::shaping::{LinkShaping, Planes};
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// First queue number of the first range; the second range starts at
/// [`SECOND_QUEUE`] (a namespace has at most 249 senders × 4 plane keys).
pub const FIRST_QUEUE: u16 = 1;
/// First queue number of the second range.
pub const SECOND_QUEUE: u16 = 1001;

/// One NFQUEUE consumed by the delay worker of a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayQueue {
    /// Queue number (per namespace).
    pub num: u16,
    /// Sender node (for reports).
    pub from: String,
    /// Traffic selection.
    pub planes: Planes,
    /// Mean added delay, microseconds.
    pub delay_us: u64,
    /// Uniform jitter, ± microseconds.
    pub jitter_us: u64,
    /// Percentage of packets released at once (reordering them ahead).
    pub reorder_pct: f64,
}

/// A root qdisc on one interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Qdisc {
    /// Token bucket rate limit.
    Tbf {
        /// Interface (in the namespace).
        ifname: String,
        /// Rate, kbit/s.
        rate_kbit: u64,
    },
    /// netem with every field of the shape.
    Netem {
        /// Interface (in the namespace).
        ifname: String,
        /// The conditions.
        shape: LinkShaping,
    },
}

impl Qdisc {
    /// The interface the qdisc sits on.
    pub fn ifname(&self) -> &str {
        match self {
            Qdisc::Tbf { ifname, .. } | Qdisc::Netem { ifname, .. } => ifname,
        }
    }
}

/// Kernel configuration of one node namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NsConfig {
    /// The `nft -f` script replacing the run's table.
    pub nft: String,
    /// True when the nft table has rules (otherwise the script deletes it).
    pub nft_active: bool,
    /// NFQUEUE delay queues (empty: no worker needed).
    pub delay_queues: Vec<DelayQueue>,
    /// `iptables-restore` script for the filter table.
    pub iptables: String,
    /// Root qdiscs, one per shaped interface.
    pub qdiscs: Vec<Qdisc>,
}

/// Renders every node namespace's configuration, keyed by node name.
/// Queue numbers of a namespace start at its entry in `queue_bases` (default
/// [`FIRST_QUEUE`]) (see `Lab`'s make-before-break swap).
///
/// # Errors
/// [`Unsupported`] when an effect needs a feature no backend has here.
pub fn render(
    run: &RunId,
    topology: &Topology,
    state: &NetState,
    caps: &Capabilities,
    queue_bases: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, NsConfig>, Unsupported> {
    let queue_base = |node: &str| queue_bases.get(node).copied().unwrap_or(FIRST_QUEUE);
    let table = run.nft_table();
    let mut inputs: BTreeMap<usize, Vec<InputRule>> = BTreeMap::new();
    let mut outputs: BTreeMap<usize, Vec<OutputRule>> = BTreeMap::new();
    let mut queues: BTreeMap<usize, Vec<(iptables::QueueRule, Option<DelayQueue>)>> =
        BTreeMap::new();
    let mut qdiscs: BTreeMap<usize, Vec<Qdisc>> = BTreeMap::new();
    // Directed links (node indices) cut by netem instead of nft.
    let mut netem_cuts: Vec<(usize, usize)> = Vec::new();

    // Partitions first: drops are order-independent, and rendering them before
    // shaping rules means a cut link never reaches the loss/exemption chains.
    for (planes, grudge) in &state.partitions {
        for (from, to) in grudge.cut_links() {
            let (Some(fi), Some(ti)) = (topology.index_of(from), topology.index_of(to)) else {
                continue;
            };
            if !caps.nft {
                // e.g. Debian's User-Mode Linux kernel: no nf_tables `ip`
                // family. netem can still drop a whole directed link.
                if *planes == Planes::All && caps.netem {
                    netem_cuts.push((fi, ti));
                    continue;
                }
                return Err(Unsupported {
                    what: format!("partition on {from}->{to} ({planes})"),
                    missing: "nftables for the ip family (nft binary, CONFIG_NF_TABLES_IPV4); \
                              a cut of all planes can also use tc netem"
                        .into(),
                });
            }
            inputs.entry(ti).or_default().push(InputRule::Drop {
                from: node_addr(fi + 1),
                name: from.clone(),
                planes: *planes,
            });
        }
    }
    // Data-only partitions next, for the same reason (their chains return
    // the pure ACKs they let pass to the shaping rules below).
    for (planes, grudge) in &state.data_partitions {
        for (from, to) in grudge.cut_links() {
            let (Some(fi), Some(ti)) = (topology.index_of(from), topology.index_of(to)) else {
                continue;
            };
            if !caps.nft {
                return Err(Unsupported {
                    what: format!("data-only partition on {from}->{to} ({planes})"),
                    missing: "nftables for the ip family (nft binary, CONFIG_NF_TABLES_IPV4): \
                              only nft tells payload from pure ACKs"
                        .into(),
                });
            }
            inputs.entry(ti).or_default().push(InputRule::DropData {
                from: node_addr(fi + 1),
                name: from.clone(),
                planes: *planes,
            });
        }
    }

    for &(a, b) in &topology.links {
        for (fi, ti) in [(a, b), (b, a)] {
            let from = &topology.nodes[fi].name;
            let to = &topology.nodes[ti].name;
            if netem_cuts.contains(&(fi, ti)) {
                // The cut wins over any shaping of the link while it lasts.
                qdiscs.entry(fi).or_default().push(Qdisc::Netem {
                    ifname: run.mesh_ifname(fi + 1, ti + 1),
                    shape: LinkShaping {
                        loss_pct: Some(100.0),
                        ..LinkShaping::default()
                    },
                });
                continue;
            }
            let effective = state.effective(from, to);
            if effective.is_empty() {
                continue;
            }
            let link = format!("{from}->{to}");
            let whole_link_only = effective.iter().all(|(p, _)| *p == Planes::All);
            if caps.netem && whole_link_only {
                let shape = effective[0].1;
                qdiscs.entry(fi).or_default().push(Qdisc::Netem {
                    ifname: run.mesh_ifname(fi + 1, ti + 1),
                    shape,
                });
                continue;
            }
            let all = effective
                .iter()
                .find(|(p, _)| *p == Planes::All)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            for (planes, shape) in &effective {
                let what = |effect: &str| format!("{effect} on {link} ({planes})");
                // Receiver input: loss (plane entries always render, to exempt
                // their packets from the sender's `all` chain).
                if shape.needs_nft_input() || (*planes != Planes::All && all.needs_nft_input()) {
                    if !caps.nft {
                        return Err(Unsupported {
                            what: what("loss"),
                            missing: "nftables with numgen (nft binary, CONFIG_NFT_NUMGEN) or \
                                      tc netem (CONFIG_NET_SCH_NETEM)"
                                .into(),
                        });
                    }
                    inputs.entry(ti).or_default().push(InputRule::Loss {
                        from: node_addr(fi + 1),
                        name: from.clone(),
                        planes: *planes,
                        loss_pct: shape.loss_pct.unwrap_or(0.0),
                    });
                }
                if shape.needs_nft_output() || (*planes != Planes::All && all.needs_nft_output()) {
                    let dup = shape.duplicate_pct.unwrap_or(0.0);
                    let corrupt = shape.corrupt_pct.unwrap_or(0.0);
                    if dup > 0.0 && !caps.nft_dup {
                        return Err(Unsupported {
                            what: what("duplicate"),
                            missing:
                                "nft dup (CONFIG_NFT_DUP_IPV4) or tc netem (CONFIG_NET_SCH_NETEM)"
                                    .into(),
                        });
                    }
                    if corrupt > 0.0 && !caps.nft_mangle {
                        return Err(Unsupported {
                            what: what("corrupt"),
                            missing: "nft payload mangling (CONFIG_NFT_PAYLOAD) or tc netem \
                                      (CONFIG_NET_SCH_NETEM)"
                                .into(),
                        });
                    }
                    outputs.entry(fi).or_default().push(OutputRule {
                        to: node_addr(ti + 1),
                        name: to.clone(),
                        planes: *planes,
                        duplicate_pct: dup,
                        corrupt_pct: corrupt,
                    });
                }
                if shape.needs_delay() || (*planes != Planes::All && all.needs_delay()) {
                    if shape.needs_delay() && !caps.nfqueue {
                        return Err(Unsupported {
                            what: what("delay/jitter/reorder"),
                            missing: "tc netem (CONFIG_NET_SCH_NETEM) or iptables NFQUEUE \
                                      (iptables + CONFIG_NETFILTER_XT_TARGET_NFQUEUE)"
                                .into(),
                        });
                    }
                    let list = queues.entry(ti).or_default();
                    let rule = iptables::QueueRule {
                        from: node_addr(fi + 1),
                        planes: *planes,
                        queue: None,
                    };
                    if shape.needs_delay() {
                        let num = queue_base(to) + list.len() as u16;
                        list.push((
                            iptables::QueueRule {
                                queue: Some(num),
                                ..rule
                            },
                            Some(DelayQueue {
                                num,
                                from: from.clone(),
                                planes: *planes,
                                delay_us: (shape.delay_ms.unwrap_or(0.0) * 1000.0).round() as u64,
                                jitter_us: (shape.jitter_ms.unwrap_or(0.0) * 1000.0).round() as u64,
                                reorder_pct: shape.reorder_pct.unwrap_or(0.0),
                            }),
                        ));
                    } else {
                        list.push((rule, None));
                    }
                }
                if let Some(rate) = shape.rate_kbit {
                    if *planes != Planes::All {
                        return Err(Unsupported {
                            what: what("rate limit"),
                            missing: "per-plane rate limits (htb + u32 classifiers are not wired \
                                      up); rate-limit the whole link"
                                .into(),
                        });
                    }
                    if !caps.tbf {
                        return Err(Unsupported {
                            what: what("rate limit"),
                            missing: "tc tbf (CONFIG_NET_SCH_TBF)".into(),
                        });
                    }
                    qdiscs.entry(fi).or_default().push(Qdisc::Tbf {
                        ifname: run.mesh_ifname(fi + 1, ti + 1),
                        rate_kbit: rate,
                    });
                }
            }
        }
    }

    let mut configs = BTreeMap::new();
    for (i, node) in topology.nodes.iter().enumerate() {
        let input = inputs.remove(&i).unwrap_or_default();
        let output = outputs.remove(&i).unwrap_or_default();
        let node_queues = queues.remove(&i).unwrap_or_default();
        let rules: Vec<iptables::QueueRule> = node_queues.iter().map(|(r, _)| r.clone()).collect();
        let delay_queues: Vec<DelayQueue> =
            node_queues.into_iter().filter_map(|(_, q)| q).collect();
        let config = NsConfig {
            nft_active: !input.is_empty() || !output.is_empty(),
            nft: nft::render_table(&table, topology.ports, &input, &output),
            iptables: if delay_queues.is_empty() {
                iptables::render_restore(topology.ports, &[])
            } else {
                iptables::render_restore(topology.ports, &rules)
            },
            delay_queues,
            qdiscs: qdiscs.remove(&i).unwrap_or_default(),
        };
        configs.insert(node.name.clone(), config);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Fault;
    use crate::grudge;

    fn run() -> RunId {
        "3f9a".parse().unwrap()
    }

    /// The configs of `topo` in `state` on `caps` (run 3f9a, every queue
    /// numbered from the default base).
    fn render_mesh(
        topo: &Topology,
        state: &NetState,
        caps: &Capabilities,
    ) -> Result<BTreeMap<String, NsConfig>, Unsupported> {
        render(&run(), topo, state, caps, &BTreeMap::new())
    }

    /// `shape` on the link n1 → n2, on `planes`.
    fn shape_n1_n2(planes: Planes, shape: LinkShaping) -> Fault {
        Fault::Shape {
            links: vec![("n1".into(), "n2".into())],
            planes,
            shape,
        }
    }

    /// The one-way cut n1 -/-> n2 on `planes`.
    fn cut_n1_n2(planes: Planes) -> Fault {
        Fault::Partition {
            grudge: grudge::one_way(&["n1".into()], &["n2".into()]),
            planes,
        }
    }

    /// An added delay of `ms` and nothing else.
    fn delay(ms: f64) -> LinkShaping {
        LinkShaping {
            delay_ms: Some(ms),
            ..LinkShaping::default()
        }
    }

    #[test]
    fn nothing_active_renders_empty_configs() {
        let topo = Topology::full_mesh(3);
        let configs =
            render_mesh(&topo, &NetState::default(), &Capabilities::without_netem()).unwrap();
        assert_eq!(configs.len(), 3);
        for config in configs.values() {
            assert!(!config.nft_active);
            assert!(config.delay_queues.is_empty() && config.qdiscs.is_empty());
        }
    }

    #[test]
    fn partition_two_three_drops_at_each_receiver() {
        let topo = Topology::full_mesh(5);
        let mut state = NetState::default();
        let names = topo.node_names();
        state.apply(&Fault::Partition {
            grudge: grudge::complete(&[names[..2].to_vec(), names[2..].to_vec()]),
            planes: Planes::All,
        });
        let configs = render_mesh(&topo, &state, &Capabilities::without_netem()).unwrap();
        let n1 = &configs["n1"].nft;
        assert!(n1.contains("ip saddr 10.77.0.3 counter drop"), "{n1}");
        assert!(n1.contains("ip saddr 10.77.0.5 counter drop"), "{n1}");
        assert!(!n1.contains("10.77.0.2"), "{n1}");
        let n4 = &configs["n4"].nft;
        assert!(
            n4.contains("ip saddr 10.77.0.1") && !n4.contains("10.77.0.3"),
            "{n4}"
        );
    }

    #[test]
    fn delay_goes_to_nfqueue_at_the_receiver_without_netem() {
        let topo = Topology::full_mesh(2);
        let mut state = NetState::default();
        state.apply(&shape_n1_n2(
            Planes::All,
            LinkShaping {
                jitter_ms: Some(5.0),
                rate_kbit: Some(1000),
                ..delay(50.0)
            },
        ));
        let configs = render(
            &run(),
            &topo,
            &state,
            &Capabilities::without_netem(),
            &BTreeMap::from([("n2".to_string(), 101)]),
        )
        .unwrap();
        let n2 = &configs["n2"];
        assert_eq!(
            n2.delay_queues,
            vec![DelayQueue {
                num: 101,
                from: "n1".into(),
                planes: Planes::All,
                delay_us: 50_000,
                jitter_us: 5_000,
                reorder_pct: 0.0
            }]
        );
        assert!(
            n2.iptables
                .contains("-A PREROUTING -s 10.77.0.1/32 -j NFQUEUE --queue-num 101")
        );
        assert_eq!(
            configs["n1"].qdiscs,
            vec![Qdisc::Tbf {
                ifname: "sl3f9an1e2".into(),
                rate_kbit: 1000
            }]
        );
        assert!(configs["n1"].delay_queues.is_empty());
    }

    #[test]
    fn netem_kernels_get_one_qdisc_for_whole_link_shapes() {
        let topo = Topology::full_mesh(2);
        let mut state = NetState::default();
        let shape = LinkShaping {
            delay_ms: Some(50.0),
            loss_pct: Some(30.0),
            ..LinkShaping::default()
        };
        state.apply(&shape_n1_n2(Planes::All, shape));
        let configs = render_mesh(&topo, &state, &Capabilities::all()).unwrap();
        assert_eq!(
            configs["n1"].qdiscs,
            vec![Qdisc::Netem {
                ifname: "sl3f9an1e2".into(),
                shape
            }]
        );
        assert!(!configs["n2"].nft_active && configs["n2"].delay_queues.is_empty());
    }

    #[test]
    fn plane_entries_exempt_their_packets_from_the_all_queue() {
        let topo = Topology::full_mesh(2);
        let mut state = NetState::default();
        state.apply(&shape_n1_n2(Planes::All, delay(20.0)));
        state.apply(&shape_n1_n2(Planes::Client, delay(0.0)));
        let configs = render_mesh(&topo, &state, &Capabilities::without_netem()).unwrap();
        let ipt = &configs["n2"].iptables;
        let client = ipt.find("--dport 7000 -j ACCEPT").expect(ipt);
        let all = ipt.find("-s 10.77.0.1/32 -j NFQUEUE").expect(ipt);
        assert!(client < all, "{ipt}");
    }

    #[test]
    fn without_nft_whole_link_cuts_use_netem_and_plane_cuts_are_unsupported() {
        let topo = Topology::full_mesh(2);
        let caps = Capabilities {
            nft: false,
            ..Capabilities::all()
        };
        let mut state = NetState::default();
        state.apply(&shape_n1_n2(Planes::All, delay(50.0)));
        state.apply(&cut_n1_n2(Planes::All));
        let configs = render_mesh(&topo, &state, &caps).unwrap();
        assert_eq!(
            configs["n1"].qdiscs,
            vec![Qdisc::Netem {
                ifname: "sl3f9an1e2".into(),
                shape: LinkShaping {
                    loss_pct: Some(100.0),
                    ..LinkShaping::default()
                }
            }]
        );
        assert!(!configs["n2"].nft_active);
        state.apply(&cut_n1_n2(Planes::Heartbeat));
        let err = render_mesh(&topo, &state, &caps).unwrap_err();
        assert!(err.to_string().contains("CONFIG_NF_TABLES_IPV4"), "{err}");
    }

    #[test]
    fn missing_backends_are_named() {
        let topo = Topology::full_mesh(2);
        let mut state = NetState::default();
        state.apply(&shape_n1_n2(Planes::All, delay(50.0)));
        let caps = Capabilities {
            nfqueue: false,
            ..Capabilities::without_netem()
        };
        let err = render_mesh(&topo, &state, &caps).unwrap_err();
        assert!(err.to_string().contains("CONFIG_NET_SCH_NETEM"), "{err}");
        assert!(err.to_string().contains("NFQUEUE"), "{err}");
    }
}
