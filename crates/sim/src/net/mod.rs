//! The simulated network: directed links with partitions, loss, delay,
//! duplication and reordering, separately for datagrams (UDP heartbeats) and
//! streams (TCP replication and votes).
//!
//! Pure model: the network never touches the event queue. [`Network::send`]
//! decides, from its own RNG, when (and how many times) a message arrives;
//! [`Network::admit`] decides at arrival time whether it still gets through.
//!
//! Datagrams are independent: each copy gets its own delay, so jitter alone
//! reorders them. Streams model one TCP connection per directed link: delivery
//! is FIFO per connection generation. A *drop* on a stream breaks the
//! connection and loses everything in flight on it (reset); a *reorder*
//! opens a new connection while the old one still drains (a reconnect whose
//! new bytes overtake the old socket's); a *duplicate* delivers the message
//! a second time after the original arrived (a retransmit across a
//! reconnect), without holding up the messages sent after it — the FIFO
//! tail only ever waits for originals, so head-of-line blocking is bounded
//! by the link delay. Partitions are layered: each active episode contributes a
//! [`Grudge`] and a link is blocked while any of them blocks it.//!
//! This module holds the vocabulary and the network's state (partitions and
//! fault layers); `delivery` decides each message's fate.
use std::collections::{BTreeMap, BTreeSet};

use consensus::Transport;
use wire::NodeId;

use faults::Grudge;

mod delivery;
#[cfg(test)]
mod tests;

/// Ordered stand-in for [`Transport`] (which is not `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// UDP-like: independent copies, each with its own delay.
    Datagram,
    /// TCP-like: FIFO per connection generation, resets lose what is in flight.
    Stream,
}

impl Channel {
    /// The channel a replica's `Transport` travels on.
    pub fn of(transport: Transport) -> Channel {
        match transport {
            Transport::Datagram => Channel::Datagram,
            Transport::Stream => Channel::Stream,
        }
    }

    /// Short name for traces (`udp`, `tcp`).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Datagram => "udp",
            Channel::Stream => "tcp",
        }
    }
}

/// Fault parameters of one directed link and channel. Probabilities are in
/// parts per million; delays in nanoseconds of true time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFaults {
    /// Chance a message is lost (ppm).
    pub drop_ppm: u32,
    /// Chance a message is delivered twice (ppm).
    pub duplicate_ppm: u32,
    /// Chance a message is reordered (ppm).
    pub reorder_ppm: u32,
    /// Shortest one-way delay.
    pub delay_min_ns: u64,
    /// Longest one-way delay.
    pub delay_max_ns: u64,
    /// Extra delay given to a reordered datagram (or a replayed stream
    /// message), drawn from `0..reorder_extra_ns`.
    pub reorder_extra_ns: u64,
}

impl LinkFaults {
    /// A healthy LAN link: 0.2–1 ms, nothing lost.
    pub const CLEAN: LinkFaults = LinkFaults {
        drop_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        delay_min_ns: 200_000,
        delay_max_ns: 1_000_000,
        reorder_extra_ns: 5_000_000,
    };

    /// The worst of two fault layers, field by field.
    pub fn worst(self, other: LinkFaults) -> LinkFaults {
        LinkFaults {
            drop_ppm: self.drop_ppm.max(other.drop_ppm),
            duplicate_ppm: self.duplicate_ppm.max(other.duplicate_ppm),
            reorder_ppm: self.reorder_ppm.max(other.reorder_ppm),
            delay_min_ns: self.delay_min_ns.max(other.delay_min_ns),
            delay_max_ns: self.delay_max_ns.max(other.delay_max_ns),
            reorder_extra_ns: self.reorder_extra_ns.max(other.reorder_extra_ns),
        }
    }
}

/// Why a message did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// A partition blocked the link at send or arrival time.
    Partitioned,
    /// Lost to the link's drop probability.
    Dropped,
    /// The stream connection it travelled on was reset.
    ConnectionReset,
}

impl Loss {
    /// Short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Partitioned => "partitioned",
            Loss::Dropped => "dropped",
            Loss::ConnectionReset => "connection-reset",
        }
    }
}

/// One copy of a message on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flight {
    /// True time at which this copy arrives.
    pub deliver_at: u64,
    /// Stream connection generation (0 for datagrams).
    pub generation: u64,
    /// Whether this copy is the original, a duplicate or a reordered one.
    pub copy: CopyKind,
}

/// Which copy of a message a flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// The message as sent.
    Original,
    /// A second delivery (a retransmit).
    Duplicate,
    /// Delivered late, after messages sent behind it.
    Reordered,
}

impl CopyKind {
    /// Suffix for traces (empty for the original).
    pub fn name(self) -> &'static str {
        match self {
            CopyKind::Original => "",
            CopyKind::Duplicate => " dup",
            CopyKind::Reordered => " reordered",
        }
    }
}

/// What [`Network::send`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message never arrives.
    Lost(Loss),
    /// The copies on their way (one, or two with a duplicate).
    InFlight(Vec<Flight>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Connection {
    generation: u64,
    /// Messages on generations below this were lost with a reset.
    lost_below: u64,
    /// Latest delivery time scheduled on the current generation (FIFO).
    fifo_tail: u64,
}

/// A fault layer over a set of directed links and channels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FaultLayer {
    links: BTreeSet<(NodeId, NodeId)>,
    channels: BTreeSet<Channel>,
    faults: LinkFaults,
}

/// The simulated network between the nodes: layered partitions, fault
/// layers and stream connections.
#[derive(Debug, Clone)]
pub struct Network {
    nodes: Vec<NodeId>,
    partitions: BTreeMap<u64, Grudge<NodeId>>,
    blocked: Grudge<NodeId>,
    layers: BTreeMap<u64, FaultLayer>,
    connections: BTreeMap<(NodeId, NodeId), Connection>,
    base: LinkFaults,
}

impl Network {
    /// A network over `nodes` whose every link has the `base` faults.
    pub fn new(nodes: Vec<NodeId>, base: LinkFaults) -> Network {
        Network {
            nodes,
            partitions: BTreeMap::new(),
            blocked: Grudge::new(),
            layers: BTreeMap::new(),
            connections: BTreeMap::new(),
            base,
        }
    }

    /// The nodes it connects.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Adds (or replaces) the partition of episode `id`.
    pub fn partition(&mut self, id: u64, grudge: Grudge<NodeId>) {
        self.partitions.insert(id, grudge);
        self.rebuild_blocked();
    }

    /// Removes the partition of episode `id`.
    pub fn heal(&mut self, id: u64) {
        self.partitions.remove(&id);
        self.rebuild_blocked();
    }

    /// Removes every partition and fault layer.
    pub fn heal_all(&mut self) {
        self.partitions.clear();
        self.layers.clear();
        self.rebuild_blocked();
    }

    fn rebuild_blocked(&mut self) {
        let mut blocked = Grudge::new();
        for grudge in self.partitions.values() {
            blocked.union(grudge);
        }
        self.blocked = blocked;
    }

    /// Whether some active partition cuts `from → to`.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.drops(&from, &to)
    }

    /// Whether some fault layer degrades at least one link.
    pub fn has_link_faults(&self) -> bool {
        self.layers
            .values()
            .any(|layer| !layer.links.is_empty() && !layer.channels.is_empty())
    }

    /// Adds (or replaces) fault layer `id` on `links` for `channels`.
    pub fn add_faults(
        &mut self,
        id: u64,
        links: BTreeSet<(NodeId, NodeId)>,
        channels: BTreeSet<Channel>,
        faults: LinkFaults,
    ) {
        self.layers.insert(
            id,
            FaultLayer {
                links,
                channels,
                faults,
            },
        );
    }

    /// Removes fault layer `id`.
    pub fn clear_faults(&mut self, id: u64) {
        self.layers.remove(&id);
    }

    /// The effective faults of a link: the worst of the base and every
    /// layer that covers it.
    pub fn faults(&self, from: NodeId, to: NodeId, channel: Channel) -> LinkFaults {
        self.layers
            .values()
            .filter(|layer| layer.channels.contains(&channel) && layer.links.contains(&(from, to)))
            .fold(self.base, |acc, layer| acc.worst(layer.faults))
    }
}
