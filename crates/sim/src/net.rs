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
//! [`Grudge`] and a link is blocked while any of them blocks it.
use std::collections::{BTreeMap, BTreeSet};

use consensus::Transport;
use wire::NodeId;

use crate::rng::SimRng;
use faults::Grudge;

/// Ordered stand-in for [`Transport`] (which is not `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Datagram,
    Stream,
}

impl Channel {
    pub fn of(transport: Transport) -> Channel {
        match transport {
            Transport::Datagram => Channel::Datagram,
            Transport::Stream => Channel::Stream,
        }
    }

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
    pub drop_ppm: u32,
    pub duplicate_ppm: u32,
    pub reorder_ppm: u32,
    pub delay_min_ns: u64,
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
    Partitioned,
    Dropped,
    /// The stream connection it travelled on was reset.
    ConnectionReset,
}

impl Loss {
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
    pub deliver_at: u64,
    /// Stream connection generation (0 for datagrams).
    pub generation: u64,
    pub copy: CopyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    Original,
    Duplicate,
    Reordered,
}

impl CopyKind {
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
    Lost(Loss),
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

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.drops(&from, &to)
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

    fn delay(rng: &mut SimRng, faults: &LinkFaults) -> u64 {
        rng.range(
            faults.delay_min_ns,
            faults.delay_max_ns.max(faults.delay_min_ns + 1),
        )
    }

    /// Decides the fate of a message sent at `now`.
    pub fn send(
        &mut self,
        rng: &mut SimRng,
        now: u64,
        from: NodeId,
        to: NodeId,
        channel: Channel,
    ) -> SendOutcome {
        let faults = self.faults(from, to, channel);
        if self.is_blocked(from, to) {
            if channel == Channel::Stream {
                self.reset_connection(from, to);
            }
            return SendOutcome::Lost(Loss::Partitioned);
        }
        match channel {
            Channel::Datagram => self.send_datagram(rng, now, &faults),
            Channel::Stream => self.send_stream(rng, now, from, to, &faults),
        }
    }

    fn send_datagram(&mut self, rng: &mut SimRng, now: u64, faults: &LinkFaults) -> SendOutcome {
        if rng.chance_ppm(faults.drop_ppm) {
            return SendOutcome::Lost(Loss::Dropped);
        }
        let mut flights = Vec::with_capacity(1);
        let mut original = Flight {
            deliver_at: now + Self::delay(rng, faults),
            generation: 0,
            copy: CopyKind::Original,
        };
        if rng.chance_ppm(faults.reorder_ppm) {
            original.deliver_at += rng.range(0, faults.reorder_extra_ns.max(1));
            original.copy = CopyKind::Reordered;
        }
        flights.push(original);
        if rng.chance_ppm(faults.duplicate_ppm) {
            flights.push(Flight {
                deliver_at: now
                    + Self::delay(rng, faults)
                    + rng.range(0, faults.reorder_extra_ns.max(1)),
                generation: 0,
                copy: CopyKind::Duplicate,
            });
        }
        SendOutcome::InFlight(flights)
    }

    fn send_stream(
        &mut self,
        rng: &mut SimRng,
        now: u64,
        from: NodeId,
        to: NodeId,
        faults: &LinkFaults,
    ) -> SendOutcome {
        if rng.chance_ppm(faults.drop_ppm) {
            self.reset_connection(from, to);
            return SendOutcome::Lost(Loss::Dropped);
        }
        let reorder = rng.chance_ppm(faults.reorder_ppm);
        let duplicate = rng.chance_ppm(faults.duplicate_ppm);
        let delay = Self::delay(rng, faults);
        let connection = self.connections.entry((from, to)).or_default();
        let mut copy = CopyKind::Original;
        if reorder {
            // Reconnect: the new connection's bytes may overtake the old
            // socket's, which still drains.
            connection.generation += 1;
            connection.fifo_tail = 0;
            copy = CopyKind::Reordered;
        }
        let deliver_at = (now + delay).max(connection.fifo_tail);
        connection.fifo_tail = deliver_at;
        let mut flights = vec![Flight {
            deliver_at,
            generation: connection.generation,
            copy,
        }];
        if duplicate {
            // A replay of a retransmitted segment after the original got
            // through. It does not hold up later messages (they may overtake
            // it), and a reset of the connection still loses it.
            let replay_at = deliver_at + 1 + rng.range(0, faults.reorder_extra_ns.max(1));
            flights.push(Flight {
                deliver_at: replay_at,
                generation: connection.generation,
                copy: CopyKind::Duplicate,
            });
        }
        SendOutcome::InFlight(flights)
    }

    /// Decides at arrival time whether a message still gets through: a
    /// partition that started while it was in flight, or a reset of its
    /// stream connection, loses it.
    pub fn admit(
        &mut self,
        from: NodeId,
        to: NodeId,
        channel: Channel,
        generation: u64,
    ) -> Result<(), Loss> {
        if self.is_blocked(from, to) {
            if channel == Channel::Stream {
                self.reset_connection(from, to);
            }
            return Err(Loss::Partitioned);
        }
        if channel == Channel::Stream {
            let connection = self.connections.entry((from, to)).or_default();
            if generation < connection.lost_below {
                return Err(Loss::ConnectionReset);
            }
        }
        Ok(())
    }

    /// Resets the stream from `from` to `to`: everything in flight is lost
    /// and later messages use a new connection.
    pub fn reset_connection(&mut self, from: NodeId, to: NodeId) {
        let connection = self.connections.entry((from, to)).or_default();
        connection.generation += 1;
        connection.lost_below = connection.generation;
        connection.fifo_tail = 0;
    }

    /// A process crashed: every stream to or from it is reset.
    pub fn reset_node(&mut self, node: NodeId) {
        let peers: Vec<NodeId> = self.nodes.iter().copied().filter(|n| *n != node).collect();
        for peer in peers {
            self.reset_connection(node, peer);
            self.reset_connection(peer, node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network::new(vec![1, 2, 3], LinkFaults::CLEAN)
    }

    fn flights(outcome: SendOutcome) -> Vec<Flight> {
        match outcome {
            SendOutcome::InFlight(flights) => flights,
            SendOutcome::Lost(loss) => panic!("lost: {loss:?}"),
        }
    }

    fn all_links() -> BTreeSet<(NodeId, NodeId)> {
        [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)]
            .into_iter()
            .collect()
    }

    fn both() -> BTreeSet<Channel> {
        [Channel::Datagram, Channel::Stream].into_iter().collect()
    }

    #[test]
    fn clean_link_delivers_once_within_delay_bounds() {
        let mut net = net();
        let mut rng = SimRng::stream(1, "net");
        for channel in [Channel::Datagram, Channel::Stream] {
            for _ in 0..100 {
                let got = flights(net.send(&mut rng, 1_000, 1, 2, channel));
                assert_eq!(got.len(), 1);
                assert!(got[0].deliver_at >= 1_000 + LinkFaults::CLEAN.delay_min_ns);
                assert_eq!(net.admit(1, 2, channel, got[0].generation), Ok(()));
            }
        }
    }

    #[test]
    fn partition_blocks_only_its_directions_and_heals() {
        let mut net = net();
        let mut rng = SimRng::stream(2, "net");
        net.partition(7, faults::one_way(&[1], &[1, 2, 3]));
        assert_eq!(
            net.send(&mut rng, 0, 1, 2, Channel::Datagram),
            SendOutcome::Lost(Loss::Partitioned)
        );
        assert_eq!(
            flights(net.send(&mut rng, 0, 2, 1, Channel::Datagram)).len(),
            1
        );
        net.heal(7);
        assert_eq!(
            flights(net.send(&mut rng, 0, 1, 2, Channel::Datagram)).len(),
            1
        );
    }

    #[test]
    fn overlapping_partitions_heal_independently() {
        let mut net = net();
        net.partition(1, faults::isolate(1, &[1, 2, 3]));
        net.partition(2, faults::cut_link(2, 3));
        net.heal(1);
        assert!(!net.is_blocked(1, 2));
        assert!(net.is_blocked(2, 3) && net.is_blocked(3, 2));
        net.heal_all();
        assert!(!net.is_blocked(2, 3));
    }

    #[test]
    fn partition_starting_mid_flight_loses_the_message() {
        let mut net = net();
        let mut rng = SimRng::stream(3, "net");
        let flight = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
        net.partition(1, faults::cut_link(1, 2));
        assert_eq!(
            net.admit(1, 2, Channel::Stream, flight.generation),
            Err(Loss::Partitioned)
        );
        net.heal(1);
        // The connection was reset by the partition, so the old flight stays lost.
        assert_eq!(
            net.admit(1, 2, Channel::Stream, flight.generation),
            Err(Loss::ConnectionReset)
        );
    }

    #[test]
    fn stream_is_fifo_despite_jitter() {
        let mut net = net();
        let mut rng = SimRng::stream(4, "net");
        let mut wide = LinkFaults::CLEAN;
        wide.delay_min_ns = 0;
        wide.delay_max_ns = 50_000_000;
        net.add_faults(1, all_links(), both(), wide);
        let mut last = 0;
        for i in 0..200 {
            let flight = flights(net.send(&mut rng, i * 1_000, 1, 2, Channel::Stream))[0];
            assert!(
                flight.deliver_at >= last,
                "stream reordered without a reconnect"
            );
            last = flight.deliver_at;
        }
    }

    #[test]
    fn datagrams_reorder_under_jitter() {
        let mut net = net();
        let mut rng = SimRng::stream(5, "net");
        let mut wide = LinkFaults::CLEAN;
        wide.delay_min_ns = 0;
        wide.delay_max_ns = 50_000_000;
        net.add_faults(1, all_links(), both(), wide);
        let times: Vec<u64> = (0..100)
            .map(|i| flights(net.send(&mut rng, i * 1_000, 1, 2, Channel::Datagram))[0].deliver_at)
            .collect();
        assert!(times.windows(2).any(|w| w[1] < w[0]));
    }

    #[test]
    fn stream_drop_resets_connection_and_loses_in_flight() {
        let mut net = net();
        let mut rng = SimRng::stream(6, "net");
        let before = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
        let mut lossy = LinkFaults::CLEAN;
        lossy.drop_ppm = 1_000_000;
        net.add_faults(
            1,
            all_links(),
            [Channel::Stream].into_iter().collect(),
            lossy,
        );
        assert_eq!(
            net.send(&mut rng, 1, 1, 2, Channel::Stream),
            SendOutcome::Lost(Loss::Dropped)
        );
        assert_eq!(
            net.admit(1, 2, Channel::Stream, before.generation),
            Err(Loss::ConnectionReset)
        );
        // Datagrams were not covered by the stream-only layer.
        assert_eq!(
            flights(net.send(&mut rng, 1, 1, 2, Channel::Datagram)).len(),
            1
        );
        net.clear_faults(1);
        let after = flights(net.send(&mut rng, 2, 1, 2, Channel::Stream))[0];
        assert_eq!(net.admit(1, 2, Channel::Stream, after.generation), Ok(()));
    }

    #[test]
    fn stream_reorder_lets_new_connection_overtake_old() {
        let mut net = net();
        let mut rng = SimRng::stream(7, "net");
        let mut slow = LinkFaults::CLEAN;
        slow.delay_min_ns = 10_000_000;
        slow.delay_max_ns = 10_000_001;
        net.add_faults(1, all_links(), both(), slow);
        let old = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
        let mut reconnect = LinkFaults::CLEAN;
        reconnect.reorder_ppm = 1_000_000;
        net.clear_faults(1);
        net.add_faults(2, all_links(), both(), reconnect);
        let new = flights(net.send(&mut rng, 1, 1, 2, Channel::Stream))[0];
        assert_eq!(new.copy, CopyKind::Reordered);
        assert!(new.deliver_at < old.deliver_at);
        assert_eq!(net.admit(1, 2, Channel::Stream, old.generation), Ok(()));
        assert_eq!(net.admit(1, 2, Channel::Stream, new.generation), Ok(()));
    }

    #[test]
    fn duplicates_arrive_twice() {
        let mut net = net();
        let mut rng = SimRng::stream(8, "net");
        let mut dup = LinkFaults::CLEAN;
        dup.duplicate_ppm = 1_000_000;
        net.add_faults(1, all_links(), both(), dup);
        for channel in [Channel::Datagram, Channel::Stream] {
            let got = flights(net.send(&mut rng, 0, 3, 1, channel));
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].copy, CopyKind::Duplicate);
            for flight in got {
                assert_eq!(net.admit(3, 1, channel, flight.generation), Ok(()));
            }
        }
    }

    #[test]
    fn stream_duplicates_do_not_hold_up_later_messages() {
        let mut net = net();
        let mut rng = SimRng::stream(11, "net");
        let mut dup = LinkFaults::CLEAN;
        dup.duplicate_ppm = 1_000_000;
        dup.reorder_extra_ns = 500_000_000;
        net.add_faults(1, all_links(), both(), dup);
        for i in 0..1_000 {
            let got = flights(net.send(&mut rng, i * 1_000_000, 1, 2, Channel::Stream));
            // The original always arrives within the link delay.
            assert!(got[0].deliver_at <= i * 1_000_000 + LinkFaults::CLEAN.delay_max_ns);
        }
    }

    #[test]
    fn lossy_datagrams_drop_about_the_configured_share() {
        let mut net = net();
        let mut rng = SimRng::stream(9, "net");
        let mut lossy = LinkFaults::CLEAN;
        lossy.drop_ppm = 300_000;
        net.add_faults(
            1,
            all_links(),
            [Channel::Datagram].into_iter().collect(),
            lossy,
        );
        let lost = (0..10_000)
            .filter(|_| {
                matches!(
                    net.send(&mut rng, 0, 1, 2, Channel::Datagram),
                    SendOutcome::Lost(_)
                )
            })
            .count();
        assert!((2_500..3_500).contains(&lost), "lost {lost} of 10000");
    }

    #[test]
    fn layers_combine_to_the_worst() {
        let mut net = net();
        let mut a = LinkFaults::CLEAN;
        a.drop_ppm = 10;
        let mut b = LinkFaults::CLEAN;
        b.delay_max_ns = 9_000_000;
        net.add_faults(1, all_links(), both(), a);
        net.add_faults(2, [(1, 2)].into_iter().collect(), both(), b);
        let f = net.faults(1, 2, Channel::Stream);
        assert_eq!((f.drop_ppm, f.delay_max_ns), (10, 9_000_000));
        let g = net.faults(2, 1, Channel::Stream);
        assert_eq!(
            (g.drop_ppm, g.delay_max_ns),
            (10, LinkFaults::CLEAN.delay_max_ns)
        );
    }

    #[test]
    fn crash_resets_streams_in_both_directions() {
        let mut net = net();
        let mut rng = SimRng::stream(10, "net");
        let out = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
        let inc = flights(net.send(&mut rng, 0, 3, 1, Channel::Stream))[0];
        let other = flights(net.send(&mut rng, 0, 2, 3, Channel::Stream))[0];
        net.reset_node(1);
        assert_eq!(
            net.admit(1, 2, Channel::Stream, out.generation),
            Err(Loss::ConnectionReset)
        );
        assert_eq!(
            net.admit(3, 1, Channel::Stream, inc.generation),
            Err(Loss::ConnectionReset)
        );
        assert_eq!(net.admit(2, 3, Channel::Stream, other.generation), Ok(()));
    }
}
