//! The fate of each message: delays, loss, duplication and reordering drawn
//! at send time, datagrams independent and streams FIFO per connection
//! generation; admission at arrival time; connection resets.
use consensus::NodeId;

use super::{Channel, CopyKind, Flight, LinkFaults, Loss, Network, SendOutcome};
use crate::rng::SimRng;

impl Network {
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
