//! The naive primary-backup engine behind the four incorrect strategies.
//! Its flaws are the point: acknowledged means "on the primary's disk",
//! replicas apply on receipt, and divergent suffixes are overwritten even
//! when they were acknowledged to clients.
use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use wire::{Entry, Index, KvOp, Message, NodeId, Payload, Term, Token};

use super::{OnSilence, Policy, View};
use crate::action::{Action, ClientReply, ClientResponse, Rejection, Transport};
use crate::config::ReadMode;
use crate::event::{Event, StepDownReason};
use crate::input::{ClientRequest, Input, IoSeq, RequestId, Restored};
use crate::io::IoTracker;
use crate::kv::Kv;
use crate::log::Log;
use crate::replica::Strategy;
use crate::safe::random_timeout;
use crate::status::{PeerStatus, Role, Status};
use crate::{Config, ConfigError};

pub(crate) struct NaiveReplica<P: Policy> {
    policy: P,
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

impl<P: Policy> NaiveReplica<P> {
    pub(crate) fn new(
        policy: P,
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Self, ConfigError> {
        let mut kv = match &restored.snapshot {
            Some(snapshot) => Kv::restore(snapshot).map_err(|error| ConfigError::Invalid {
                field: "restored.snapshot",
                reason: error.0.to_owned(),
            })?,
            None => Kv::new(),
        };
        let log = Log::restore(restored.snapshot, restored.entries);
        // Naive: everything on disk counts as applied.
        for index in log.first_index()..=log.last_index() {
            if let Some(entry) = log.get(index) {
                kv.apply(entry);
            }
        }
        let peers = config
            .members
            .iter()
            .copied()
            .filter(|id| *id != config.id)
            .collect();
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

    fn campaign(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.votes = BTreeSet::from([self.config.id]);
        let seq = self.persist_meta();
        self.emit(Event::ElectionStarted { term: self.term });
        if self.votes.len() >= self.config.quorum() {
            self.become_leader();
            return;
        }
        let message = Message::Vote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.peers.clone() {
            self.send(peer, message.clone(), Transport::Stream, Some(seq));
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader_id = Some(self.config.id);
        let next = self.log.last_index() + 1;
        self.progress = self.peers.iter().map(|peer| (*peer, (next, 0))).collect();
        self.emit(Event::BecameLeader { term: self.term });
        self.append_local(Payload::Noop);
        self.replicate_all(false);
    }

    fn step_down(&mut self, reason: StepDownReason) {
        if self.role == Role::Leader {
            self.emit(Event::SteppedDown {
                term: self.term,
                reason,
            });
            for (_, waiters) in std::mem::take(&mut self.pending) {
                for id in waiters {
                    let reply = ClientReply::Unknown {
                        reason: "stepped down before the write reached disk".to_owned(),
                    };
                    self.out.push(Action::Reply { id, reply });
                }
            }
        }
        self.role = Role::Follower;
        self.progress.clear();
        self.reset_silence_timer();
    }

    fn append_local(&mut self, payload: Payload) -> Index {
        let entry = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            payload,
        };
        let index = entry.index;
        self.log.append(entry.clone());
        let seq = self.io.issue_log(None, index);
        self.out.push(Action::AppendLog {
            truncate_after: None,
            entries: vec![entry],
            seq,
        });
        index
    }

    fn replicate_all(&mut self, resend: bool) {
        for peer in self.peers.clone() {
            self.replicate_to(peer, resend);
        }
    }

    fn replicate_to(&mut self, peer: NodeId, resend: bool) {
        let last = self.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&peer) else {
            return;
        };
        if resend {
            *next = *matched + 1;
        } else if *next > last {
            return;
        }
        let prev_log_index = *next - 1;
        let prev_log_term = self.log.term_at(prev_log_index).unwrap_or(0);
        let entries = self
            .log
            .slice(*next, last, self.config.max_append_entries.max(1));
        *next = prev_log_index + entries.len() as Index + 1;
        let message = Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.kv.applied_index(),
        };
        self.send(peer, message, Transport::Stream, None);
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

    fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
    ) {
        if self.role == Role::Leader {
            if !(term > self.term && self.policy.yields_to_newer_term()) {
                return; // a primary listens to nobody
            }
            self.step_down(StepDownReason::HigherTerm);
        }
        if !self.policy.accepts_append(self.term, term) {
            self.emit(Event::StaleTermRejected {
                from,
                their_term: term,
                our_term: self.term,
            });
            self.send(from, Message::StaleTerm, Transport::Stream, None);
            return;
        }
        self.adopt_term(term);
        self.role = Role::Follower;
        self.leader_id = Some(from);
        self.reset_silence_timer();
        if prev_index > self.log.last_index() {
            self.reject_append(from, self.log.last_index() + 1);
            return;
        }
        if prev_index >= self.log.first_index() && self.log.term_at(prev_index) != Some(prev_term) {
            let hint = self.log.first_index_of_term_at(prev_index, 1);
            self.reject_append(from, hint);
            return;
        }
        let match_index = prev_index + entries.len() as Index;
        let mut truncate_after = None;
        let mut fresh = Vec::new();
        for entry in entries {
            if !fresh.is_empty() || entry.index > self.log.last_index() {
                fresh.push(entry);
            } else if self.log.term_at(entry.index) != Some(entry.term) {
                // No commit index to protect: acknowledged writes go too.
                truncate_after = Some(entry.index - 1);
                self.log.truncate_after(entry.index - 1);
                fresh.push(entry);
            }
        }
        if let Some(after) = truncate_after {
            self.emit(Event::Truncated { after });
            if after < self.kv.applied_index() {
                self.rebuild_state(after);
            }
        }
        if !fresh.is_empty() {
            for entry in &fresh {
                self.log.append(entry.clone());
            }
            let seq = self.io.issue_log(truncate_after, self.log.last_index());
            self.out.push(Action::AppendLog {
                truncate_after,
                entries: fresh,
                seq,
            });
        }
        self.apply_up_to(self.log.last_index());
        let after = self.io.after_all();
        let message = Message::AppendResponse {
            success: true,
            match_index,
            conflict_index: 0,
        };
        self.send(from, message, Transport::Stream, after);
    }

    fn reject_append(&mut self, from: NodeId, conflict_index: Index) {
        let message = Message::AppendResponse {
            success: false,
            match_index: 0,
            conflict_index: conflict_index.max(1),
        };
        self.send(from, message, Transport::Stream, None);
    }

    /// Replays the log up to `upto` from scratch after a truncation below the
    /// applied index (there is no snapshot in the naive engine's own writes).
    fn rebuild_state(&mut self, upto: Index) {
        let mut kv = match self.log.snapshot() {
            Some(snapshot) => Kv::restore(snapshot).unwrap_or_else(|_| Kv::new()),
            None => Kv::new(),
        };
        for index in self.log.first_index()..=upto {
            if let Some(entry) = self.log.get(index) {
                kv.apply(entry);
            }
        }
        self.kv = kv;
    }

    fn on_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        conflict_index: Index,
    ) {
        let last = self.log.last_index();
        let Some((next, matched)) = self.progress.get_mut(&from) else {
            return;
        };
        if success {
            *matched = (*matched).max(match_index.min(last));
            *next = (*next).max(*matched + 1);
        } else {
            *next = conflict_index.clamp(1, last + 1);
        }
        self.replicate_to(from, false);
    }

    fn on_vote(&mut self, from: NodeId, term: Term) {
        if self.role == Role::Leader && !self.policy.yields_to_newer_term() {
            return;
        }
        if term > self.term {
            if self.role == Role::Leader {
                self.step_down(StepDownReason::HigherTerm);
            }
            self.adopt_term(term);
            self.role = Role::Follower;
        }
        let granted = term == self.term && self.voted_for.is_none_or(|voted| voted == from);
        if !granted {
            self.send(
                from,
                Message::VoteResponse { granted: false },
                Transport::Stream,
                None,
            );
            return;
        }
        self.voted_for = Some(from);
        let seq = self.persist_meta();
        self.reset_silence_timer();
        self.send(
            from,
            Message::VoteResponse { granted: true },
            Transport::Stream,
            Some(seq),
        );
    }

    fn on_persisted(&mut self, upto: IoSeq) {
        self.io.persisted(upto);
        if self.role == Role::Leader {
            // The flaw: on our own disk means acknowledged.
            self.apply_up_to(self.io.durable_index());
        }
    }

    fn apply_up_to(&mut self, upto: Index) {
        while self.kv.applied_index() < upto {
            let Some(entry) = self.log.get(self.kv.applied_index() + 1).cloned() else {
                break;
            };
            let result = self.kv.apply(&entry);
            let leading = self.role == Role::Leader;
            if leading && matches!(entry.payload, Payload::Command { .. }) {
                let token = Token {
                    term: entry.term,
                    index: entry.index,
                };
                self.emit(Event::WriteCommitted { token });
            }
            self.emit(Event::Applied {
                index: entry.index,
                term: entry.term,
                state_hash: self.kv.state_hash(),
            });
            for id in self.pending.remove(&entry.index).unwrap_or_default() {
                let reply = match result {
                    Some(result) => ClientReply::Ok(ClientResponse::Written {
                        token: result.token,
                        applied: result.applied,
                    }),
                    None => ClientReply::Unknown {
                        reason: "entry replaced".to_owned(),
                    },
                };
                self.out.push(Action::Reply { id, reply });
            }
        }
    }

    fn on_client(&mut self, id: RequestId, request: ClientRequest) {
        match request {
            ClientRequest::Write { client, seq, op } => self.on_write(id, client, seq, op),
            ClientRequest::Read { key, mode } => {
                // A primary trusts its own copy; anyone may serve stale reads.
                let reply = if mode == ReadMode::Stale || self.role == Role::Leader {
                    ClientReply::Ok(ClientResponse::Value {
                        value: self.kv.get(&key),
                        index: self.kv.applied_index(),
                    })
                } else {
                    ClientReply::Rejected(Rejection::NotLeader {
                        leader: self.leader_id,
                    })
                };
                self.out.push(Action::Reply { id, reply });
            }
        }
    }

    fn on_write(&mut self, id: RequestId, client: u64, seq: u64, op: KvOp) {
        if self.role != Role::Leader {
            let reply = ClientReply::Rejected(Rejection::NotLeader {
                leader: self.leader_id,
            });
            self.out.push(Action::Reply { id, reply });
            return;
        }
        if let Some(Ok(result)) = self.kv.session_result(client, seq) {
            let reply = ClientReply::Ok(ClientResponse::Written {
                token: result.token,
                applied: result.applied,
            });
            self.out.push(Action::Reply { id, reply });
            return;
        }
        if let Err(rejection) = self.policy.admit_write(self.view()) {
            self.out.push(Action::Reply {
                id,
                reply: ClientReply::Rejected(rejection),
            });
            return;
        }
        let index = self.append_local(Payload::Command { client, seq, op });
        self.pending.entry(index).or_default().push(id);
        self.emit(Event::WriteAccepted {
            term: self.term,
            index,
        });
        self.replicate_all(false);
    }
}

impl<P: Policy> Strategy for NaiveReplica<P> {
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
