//! Translating replica events into the checker's node events: names for ids,
//! the checker's own enums, and lease ends fixed up to true time at the end.
use checker::{EventKind, LinkDirection, NodeEvent};
use consensus::{Event, NodeId, StepDownReason, Term};

use super::{Cluster, name_of};

fn step_down_reason(reason: StepDownReason) -> checker::StepDownReason {
    match reason {
        StepDownReason::HigherTerm => checker::StepDownReason::HigherTerm,
        StepDownReason::QuorumLost => checker::StepDownReason::QuorumLost,
        StepDownReason::LeaseExpired => checker::StepDownReason::LeaseExpired,
    }
}

impl Cluster {
    pub(super) fn push_event(&mut self, index: usize, local: u64, term: Term, kind: EventKind) {
        let node = &self.nodes[index];
        self.events.push(NodeEvent::new(
            node.name.clone(),
            self.now,
            local,
            term,
            kind,
        ));
    }

    pub(super) fn record(&mut self, index: usize, event: Event) {
        let local = self.local_now(index);
        let name = |id: NodeId| name_of(id);
        let mut lease_until = None;
        let (term, kind) = match event.clone() {
            Event::ElectionStarted { term } => (Some(term), EventKind::ElectionStarted),
            Event::PreVoteRejected { term, by } => {
                (Some(term), EventKind::PreVoteRejected { by: name(by) })
            }
            Event::BecameLeader { term } => {
                self.stats.leaders_elected += 1;
                (Some(term), EventKind::BecameLeader)
            }
            Event::SteppedDown { term, reason } => (
                Some(term),
                EventKind::SteppedDown {
                    reason: step_down_reason(reason),
                },
            ),
            Event::LeaseExtended { term, until } => {
                lease_until = Some(until);
                (Some(term), EventKind::LeaseExtended { until_mono_ns: 0 })
            }
            Event::LeaseLost { term } => (Some(term), EventKind::LeaseLost),
            Event::QuorumLost { term } => (Some(term), EventKind::QuorumLost),
            Event::QuorumRegained { term } => (Some(term), EventKind::QuorumRegained),
            Event::PeerUp { peer } => (None, EventKind::PeerUp { peer: name(peer) }),
            Event::PeerDown { peer, inbound } => (
                None,
                EventKind::PeerDown {
                    peer: name(peer),
                    direction: if inbound {
                        LinkDirection::Inbound
                    } else {
                        LinkDirection::Outbound
                    },
                },
            ),
            Event::WriteCommitted { token } => (
                None,
                EventKind::WriteCommitted {
                    token: checker::Token {
                        term: token.term,
                        index: token.index,
                    },
                },
            ),
            Event::StaleTermRejected {
                from,
                their_term,
                our_term,
            } => (
                Some(our_term),
                EventKind::StaleTermRejected {
                    from: name(from),
                    their_term,
                },
            ),
            Event::WriteAccepted { term, index } => {
                (Some(term), EventKind::WriteAccepted { index })
            }
            Event::Applied {
                index, state_hash, ..
            } => (None, EventKind::Applied { index, state_hash }),
            Event::Truncated { after } => (None, EventKind::Truncated { after }),
        };
        let term = term.unwrap_or_else(|| {
            self.nodes[index]
                .replica
                .as_ref()
                .map_or(0, |replica| replica.status().term)
        });
        self.stats.max_term = self.stats.max_term.max(term);
        if self.trace.enabled() {
            let node_name = &self.nodes[index].name;
            self.trace.line(
                self.now,
                format_args!("{node_name} event t{term} {event:?}"),
            );
        }
        if let Some(until) = lease_until {
            self.lease_fixups.push((self.events.len(), index, until));
        }
        self.push_event(index, local, term, kind);
    }
}
