//! Moving replica messages over the simulated network: sends scheduled as
//! deliveries (or lost), deliveries admitted, queued for a paused receiver, or
//! stepped into the replica.
use consensus::{Input, Message, NodeId, Outbound, Term};

use super::{BACKLOG_LIMIT, Cluster, Ev};
use crate::net::{Channel, CopyKind, SendOutcome};
use crate::trace::describe;

/// One copy of a message in flight, due at the receiver.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Delivery {
    from: NodeId,
    to: NodeId,
    channel: Channel,
    /// The connection generation it was sent on (a reset stream drops it).
    generation: u64,
    term: Term,
    message: Message,
    copy: CopyKind,
}

impl Cluster {
    pub(super) fn transmit(&mut self, index: usize, send: Outbound) {
        let Outbound {
            to,
            term,
            message,
            transport,
            ..
        } = send;
        let channel = Channel::of(transport);
        let from = self.nodes[index].id;
        self.stats.sent += 1;
        if !self.ids.contains(&to) || to == from {
            let text = format!(
                "{}: send to unknown or own node id {to}",
                self.nodes[index].name
            );
            self.violation(text);
            return;
        }
        match self
            .net
            .send(&mut self.net_rng, self.now, from, to, channel)
        {
            SendOutcome::Lost(loss) => {
                self.stats.lost += 1;
                if self.trace.enabled() {
                    self.trace.line(
                        self.now,
                        format_args!(
                            "n{from} -> n{to} {} t{term} LOST({}) {}",
                            channel.name(),
                            loss.name(),
                            describe(&message)
                        ),
                    );
                }
            }
            SendOutcome::InFlight(flights) => {
                for flight in flights {
                    if self.trace.enabled() {
                        self.trace.line(
                            self.now,
                            format_args!(
                                "n{from} -> n{to} {} t{term} gen{} eta {}{} {}",
                                channel.name(),
                                flight.generation,
                                flight.deliver_at,
                                flight.copy.name(),
                                describe(&message)
                            ),
                        );
                    }
                    self.schedule(
                        flight.deliver_at,
                        Ev::Deliver(Delivery {
                            from,
                            to,
                            channel,
                            generation: flight.generation,
                            term,
                            message: message.clone(),
                            copy: flight.copy,
                        }),
                    );
                }
            }
        }
    }

    pub(super) fn deliver(&mut self, delivery: Delivery) {
        let Delivery {
            from,
            to,
            channel,
            generation,
            term,
            message,
            copy,
        } = delivery;
        let index = (to - 1) as usize;
        if self.nodes[index].replica.is_none() {
            self.stats.lost += 1;
            if channel == Channel::Stream {
                self.net.reset_connection(from, to);
            }
            self.trace.line(
                self.now,
                format_args!("n{from} -> n{to} {} LOST(receiver down)", channel.name()),
            );
            return;
        }
        if let Err(loss) = self.net.admit(from, to, channel, generation) {
            self.stats.lost += 1;
            self.trace.line(
                self.now,
                format_args!(
                    "n{from} -> n{to} {} gen{generation} LOST({})",
                    channel.name(),
                    loss.name()
                ),
            );
            return;
        }
        self.stats.delivered += 1;
        let input = Input::Message {
            from,
            term,
            message,
        };
        let node = &mut self.nodes[index];
        if node.paused {
            if node.backlog.len() < BACKLOG_LIMIT {
                node.backlog.push_back(input);
                self.trace.line(
                    self.now,
                    format_args!(
                        "n{from} -> n{to} {}{} queued (paused)",
                        channel.name(),
                        copy.name()
                    ),
                );
            }
            return;
        }
        self.step_node(index, input);
    }
}
