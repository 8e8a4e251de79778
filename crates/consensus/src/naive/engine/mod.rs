//! The naive primary-backup engine behind the four incorrect strategies.
//! Its flaws are the point: acknowledged means "on the primary's disk",
//! replicas apply on receipt, and divergent suffixes are overwritten even
//! when they were acknowledged to clients.
mod replication;
mod roles;

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use wire::{Index, Message, NodeId, Term};

use super::policy::{OnSilence, Policy, View};
use crate::action::{Action, Transport};
use crate::event::{Event, StepDownReason};
use crate::input::{Input, IoSeq, RequestId, Restored};
use crate::io::IoTracker;
use crate::kv::Kv;
use crate::log::Log;
use crate::replica::Strategy;
use crate::safe::random_timeout;
use crate::status::{PeerStatus, Role, Status};
use crate::{Config, ConfigError};

pub(crate) struct NaiveReplica {
    policy: Policy,
    config: Config,
    peers: Vec<NodeId>,
    rng: ChaCha8Rng,
    now: u64,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    leader_id: Option<NodeId>,
    log: Log,
    kv: Kv,
    io: IoTracker,
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
    out: Vec<Action>,
}

impl NaiveReplica {
    pub(crate) fn new(
        policy: Policy,
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Self, ConfigError> {
        let mut kv = Kv::recover(restored.snapshot.as_ref(), config.max_sessions)?;
        let log = Log::restore(restored.snapshot, restored.entries);
        // Naive: everything on disk counts as applied.
        for index in log.first_index()..=log.last_index() {
            if let Some(entry) = log.get(index) {
                kv.apply(entry);
            }
        }
        let peers = config.peers();
        let mut replica = NaiveReplica {
            policy,
            peers,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            term: restored.term,
            voted_for: restored.voted_for,
            role: Role::Follower,
            leader_id: None,
            io: IoTracker::new(log.last_index()),
            log,
            kv,
            silence_deadline: 0,
            next_heartbeat_at: now,
            heartbeat_seq: 0,
            heard: BTreeMap::new(),
            peer_up: BTreeSet::new(),
            quorum_lost: false,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            pending: BTreeMap::new(),
            out: Vec::new(),
            config,
        };
        replica.reset_silence_timer();
        Ok(replica)
    }

    fn view(&self) -> View {
        let window = self.config.election_timeout_min_ns;
        let heard = self
            .heard
            .values()
            .filter(|at| self.now < at.saturating_add(window))
            .count();
        View {
            quorum: self.config.quorum(),
            heard: heard + 1,
        }
    }

    fn reset_silence_timer(&mut self) {
        let timeout = random_timeout(
            &mut self.rng,
            self.config.election_timeout_min_ns,
            self.config.election_timeout_max_ns,
        );
        self.silence_deadline = self.now.saturating_add(timeout);
    }

    fn send(&mut self, to: NodeId, message: Message, transport: Transport, after: Option<IoSeq>) {
        let term = self.term;
        self.out.push(Action::Send {
            to,
            term,
            message,
            transport,
            after,
        });
    }

    fn emit(&mut self, event: Event) {
        self.out.push(Action::Event(event));
    }

    fn persist_meta(&mut self) -> IoSeq {
        let seq = self.io.issue();
        let (term, voted_for) = (self.term, self.voted_for);
        self.out.push(Action::PersistMeta {
            term,
            voted_for,
            seq,
        });
        seq
    }

    fn adopt_term(&mut self, term: Term) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_meta();
        }
    }

    fn tick(&mut self) {
        self.track_liveness();
        if self.now >= self.next_heartbeat_at {
            // Everyone broadcasts heartbeats; some policies count them.
            self.next_heartbeat_at = self.now.saturating_add(self.config.heartbeat_interval_ns);
            self.heartbeat_seq += 1;
            let message = Message::Heartbeat {
                seq: self.heartbeat_seq,
                commit: self.kv.applied_index(),
            };
            for peer in self.peers.clone() {
                self.send(peer, message.clone(), Transport::Datagram, None);
            }
            if self.role == Role::Leader {
                self.replicate_all(true);
            }
        }
        if self.role == Role::Leader {
            if !self.policy.keeps_leading(self.view()) {
                self.step_down(StepDownReason::QuorumLost);
            }
            return;
        }
        if self.now < self.silence_deadline {
            return;
        }
        self.reset_silence_timer();
        match self.policy.on_silence(self.view()) {
            OnSilence::Promote => {
                self.term += 1;
                self.voted_for = Some(self.config.id);
                self.persist_meta();
                self.become_leader();
            }
            OnSilence::Campaign => self.campaign(),
            OnSilence::Wait => {}
        }
    }

    fn track_liveness(&mut self) {
        let window = self.config.election_timeout_min_ns;
        let mut events = Vec::new();
        for peer in &self.peers {
            let up = self
                .heard
                .get(peer)
                .is_some_and(|at| self.now < at.saturating_add(window));
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
                    Event::QuorumLost { term: self.term }
                } else {
                    Event::QuorumRegained { term: self.term }
                });
            }
        }
        for event in events {
            self.emit(event);
        }
    }

    fn on_message(&mut self, from: NodeId, term: Term, message: Message) {
        if !self.peers.contains(&from) {
            return;
        }
        match message {
            Message::Heartbeat { .. } => {
                self.heard.insert(from, self.now);
                self.track_liveness();
            }
            Message::Append {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } => self.on_append(from, term, prev_log_index, prev_log_term, entries),
            Message::AppendResponse {
                success,
                match_index,
                conflict_index,
            } => self.on_append_response(from, success, match_index, conflict_index),
            Message::Vote { .. } => self.on_vote(from, term),
            Message::VoteResponse { granted: true }
                if self.role == Role::Candidate && term == self.term =>
            {
                self.votes.insert(from);
                if self.votes.len() >= self.config.quorum() {
                    self.become_leader();
                }
            }
            Message::StaleTerm if term > self.term => {
                if self.role != Role::Leader {
                    self.adopt_term(term);
                } else if self.policy.yields_to_newer_term() {
                    self.adopt_term(term);
                    self.step_down(StepDownReason::HigherTerm);
                }
            }
            // The naive engine never sends these.
            _ => {}
        }
    }
}

impl Strategy for NaiveReplica {
    fn step(&mut self, now: u64, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Tick => self.tick(),
            Input::Message {
                from,
                term,
                message,
            } => self.on_message(from, term, message),
            Input::Client { id, request } => self.on_client(id, request),
            Input::Persisted { upto } => self.on_persisted(upto),
        }
    }

    fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        let view = self.view();
        let peers = self
            .peers
            .iter()
            .map(|peer| PeerStatus {
                id: *peer,
                inbound_alive: self.peer_up.contains(peer),
                outbound_alive: false,
                match_index: self.progress.get(peer).map_or(0, |(_, matched)| *matched),
            })
            .collect();
        Status {
            id: self.config.id,
            mode: self.config.mode,
            role: self.role,
            term: self.term,
            voted_for: self.voted_for,
            leader: self.leader_id,
            lease_remaining_ns: 0,
            quorum_reachable: view.heard_quorum(),
            peers,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            commit_index: self.kv.applied_index(),
            applied_index: self.kv.applied_index(),
            state_hash: self.kv.state_hash(),
        }
    }
}
