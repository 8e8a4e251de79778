//! The naive primary-backup engine behind the four incorrect strategies.
//! Its flaws are the point: acknowledged means "on the primary's disk",
//! replicas apply on receipt, and divergent suffixes are overwritten even
//! when they were acknowledged to clients.
mod replication;
mod roles;

use std::collections::{BTreeMap, BTreeSet};

use wire::{Index, Message, NodeId, Term};

use super::policy::{OnSilence, Policy, View};
use crate::action::Transport;
use crate::event::{Event, StepDownReason};
use crate::input::{ClientRequest, IoSeq, RequestId, Restored};
use crate::replica::Strategy;
use crate::replica_core::Core;
use crate::status::{PeerStatus, Role, Status};
use crate::{Config, ConfigError};

pub(crate) struct NaiveReplica {
    policy: Policy,
    core: Core,
    silence_deadline: u64,
    next_heartbeat_at: u64,
    heartbeat_seq: u64,
    /// Last heartbeat received from each peer.
    heard: BTreeMap<NodeId, u64>,
    peer_up: BTreeSet<NodeId>,
    quorum_lost: bool,
    votes: BTreeSet<NodeId>,
    /// Primary only: next index to send and highest acknowledged, per peer.
    progress: BTreeMap<NodeId, (Index, Index)>,
    /// Primary only: writes waiting for their entry to reach the local disk.
    pending: BTreeMap<Index, Vec<RequestId>>,
}

impl NaiveReplica {
    pub(crate) fn new(
        policy: Policy,
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Self, ConfigError> {
        let mut core = Core::restore(config, restored, seed, now)?;
        // Naive: everything on disk counts as applied.
        for index in core.log.first_index()..=core.log.last_index() {
            if let Some(entry) = core.log.get(index) {
                core.kv.apply(entry);
            }
        }
        let mut replica = NaiveReplica {
            policy,
            core,
            silence_deadline: 0,
            next_heartbeat_at: now,
            heartbeat_seq: 0,
            heard: BTreeMap::new(),
            peer_up: BTreeSet::new(),
            quorum_lost: false,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            pending: BTreeMap::new(),
        };
        replica.reset_silence_timer();
        Ok(replica)
    }

    fn view(&self) -> View {
        let window = self.core.config.election_timeout_min_ns;
        let heard = self
            .heard
            .values()
            .filter(|at| self.core.now < at.saturating_add(window))
            .count();
        View {
            quorum: self.core.config.quorum(),
            heard: heard + 1,
        }
    }

    fn reset_silence_timer(&mut self) {
        self.silence_deadline = self.core.election_deadline();
    }

    fn track_liveness(&mut self) {
        let window = self.core.config.election_timeout_min_ns;
        let mut events = Vec::new();
        for peer in &self.core.peers {
            let up = self
                .heard
                .get(peer)
                .is_some_and(|at| self.core.now < at.saturating_add(window));
            if up && self.peer_up.insert(*peer) {
                events.push(Event::PeerUp { peer: *peer });
            } else if !up && self.peer_up.remove(peer) {
                events.push(Event::PeerDown {
                    peer: *peer,
                    inbound: true,
                });
            }
        }
        if self.policy.logs_quorum() {
            let lost = !self.view().heard_quorum();
            if lost != self.quorum_lost {
                self.quorum_lost = lost;
                events.push(if lost {
                    Event::QuorumLost {
                        term: self.core.term,
                    }
                } else {
                    Event::QuorumRegained {
                        term: self.core.term,
                    }
                });
            }
        }
        for event in events {
            self.core.emit(event);
        }
    }
}

impl Strategy for NaiveReplica {
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn on_tick(&mut self) {
        self.track_liveness();
        if self.core.now >= self.next_heartbeat_at {
            // Everyone broadcasts heartbeats; some policies count them.
            self.next_heartbeat_at = self
                .core
                .now
                .saturating_add(self.core.config.heartbeat_interval_ns);
            self.heartbeat_seq += 1;
            let message = Message::Heartbeat {
                seq: self.heartbeat_seq,
                commit: self.core.kv.applied_index(),
            };
            self.core.broadcast(message, Transport::Datagram, None);
            if self.core.role == Role::Leader {
                self.replicate_all(true);
            }
        }
        if self.core.role == Role::Leader {
            if !self.policy.keeps_leading(self.view()) {
                self.step_down(StepDownReason::QuorumLost);
            }
            return;
        }
        if self.core.now < self.silence_deadline {
            return;
        }
        self.reset_silence_timer();
        match self.policy.on_silence(self.view()) {
            OnSilence::Promote => {
                self.core.start_term();
                self.become_leader();
            }
            OnSilence::Campaign => self.campaign(),
            OnSilence::Wait => {}
        }
    }

    fn on_message(&mut self, from: NodeId, term: Term, message: Message) {
        if !self.core.peers.contains(&from) {
            return;
        }
        match message {
            Message::Heartbeat { .. } => {
                self.heard.insert(from, self.core.now);
                self.track_liveness();
            }
            Message::Append {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } => self.on_append(from, term, prev_log_index, prev_log_term, entries),
            Message::AppendResponse { answer } => self.on_append_answer(from, answer),
            Message::Vote { .. } => self.on_vote(from, term),
            Message::VoteResponse { granted: true }
                if self.core.role == Role::Candidate && term == self.core.term =>
            {
                self.votes.insert(from);
                if self.votes.len() >= self.core.config.quorum() {
                    self.become_leader();
                }
            }
            Message::StaleTerm if term > self.core.term => {
                if self.core.role != Role::Leader {
                    self.core.adopt_term(term);
                } else if self.policy.yields_to_newer_term() {
                    self.core.adopt_term(term);
                    self.step_down(StepDownReason::HigherTerm);
                }
            }
            // The naive engine never sends these.
            _ => {}
        }
    }

    fn on_client(&mut self, id: RequestId, request: ClientRequest) {
        match request {
            ClientRequest::Write { client, seq, op } => self.on_write(id, client, seq, op),
            ClientRequest::Read { key, mode } => self.on_read(id, &key, mode),
        }
    }

    fn on_persisted(&mut self, upto: IoSeq) {
        self.core.io.persisted(upto);
        if self.core.role == Role::Leader {
            // The flaw: on our own disk means acknowledged.
            self.apply_up_to(self.core.io.durable_index());
        }
    }

    fn status(&self) -> Status {
        let view = self.view();
        let peers = self
            .core
            .peers
            .iter()
            .map(|peer| PeerStatus {
                id: *peer,
                inbound_alive: self.peer_up.contains(peer),
                outbound_alive: false,
                match_index: self.progress.get(peer).map_or(0, |(_, matched)| *matched),
            })
            .collect();
        let applied = self.core.kv.applied_index();
        self.core.status(peers, applied, 0, view.heard_quorum())
    }
}
