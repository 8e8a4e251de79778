//! Translating replica events into the checker's node events: names for ids,
//! the checker's own enums, and lease ends fixed up to true time at the end.
use checker::{EventKind, NodeEvent};
use consensus::{Event, Term};

use super::{Cluster, name_of};

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
        let mut lease_until = None;
        let kind = event.checker_kind(&name_of, |until| {
            // Mapped to true time once the run is over (`lease_fixups`).
            lease_until = Some(until);
            0
        });
        match event {
            Event::BecameLeader { .. } => self.stats.leaders_elected += 1,
            Event::ElectionStarted { .. } => self.stats.elections_started += 1,
            _ => {}
        }
        // A committed write is stamped with the current term, not its token's.
        let term = match event {
            Event::WriteCommitted { .. } => None,
            _ => event.term(),
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
