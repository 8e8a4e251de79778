//! What both engines hold and do the same way: the `safe` engine and the
//! naive one behind the four incorrect strategies. Identity and peers, the
//! clock, the persistent term and vote, role and known leader, the log
//! mirror, the KV state, durable-write bookkeeping and the actions queued
//! for the driver, with the steps that build those actions.
//!
//! Only plumbing lives here: every protocol decision (whom to vote for,
//! which appends to accept, when an entry counts as committed) stays with
//! its engine, so nothing of the incorrect strategies reaches `safe`.
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use wire::{Entry, Index, Message, NodeId, Payload, Term, Token};

use crate::action::{Action, ClientReply, ClientResponse, Outbound, Rejection, Transport, Write};
use crate::event::Event;
use crate::input::{IoSeq, RequestId, Restored};
use crate::io::IoTracker;
use crate::kv::{CommandResult, Kv};
use crate::log::{Log, append_accepted, append_rejected};
use crate::status::{PeerStatus, Role, Status};
use crate::{Config, ConfigError};

pub(crate) struct Core {
    pub(crate) config: Config,
    /// Every other member.
    pub(crate) peers: Vec<NodeId>,
    /// Draws election timeouts, nothing else.
    rng: ChaCha8Rng,
    /// The replica's clock as of its last step.
    pub(crate) now: u64,
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) log: Log,
    pub(crate) kv: Kv,
    pub(crate) io: IoTracker,
    out: Vec<Action>,
}

impl Core {
    /// The state recovered from `restored`, as a follower of no known leader.
    /// Fails if the restored snapshot cannot be decoded.
    pub(crate) fn restore(
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Core, ConfigError> {
        let kv = Kv::recover(restored.snapshot.as_ref(), config.max_sessions)?;
        let log = Log::restore(restored.snapshot, restored.entries);
        Ok(Core {
            peers: config.peers(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            term: restored.term,
            voted_for: restored.voted_for,
            role: Role::Follower,
            leader_id: None,
            io: IoTracker::new(log.last_index()),
            log,
            kv,
            out: Vec::new(),
            config,
        })
    }

    /// Moves the clock to `now`. A driver's clock never runs backwards; if
    /// one does, time holds still.
    pub(crate) fn advance_clock(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Now plus a fresh election timeout, drawn uniformly from
    /// `[ET_min, ET_max)` (just `ET_min` if that range is empty).
    pub(crate) fn election_deadline(&mut self) -> u64 {
        let (min, max) = (
            self.config.election_timeout_min_ns,
            self.config.election_timeout_max_ns,
        );
        let timeout = if max <= min {
            min
        } else {
            min + self.rng.next_u64() % (max - min)
        };
        self.now.saturating_add(timeout)
    }

    /// A uniform draw from `[0, bound)`; 0 when `bound` is 0.
    pub(crate) fn draw_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    /// The actions produced since the last call, in order.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn push(&mut self, action: Action) {
        self.out.push(action);
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.push(Action::Event(event));
    }

    /// Sends `message` at our current term.
    pub(crate) fn send(
        &mut self,
        to: NodeId,
        message: Message,
        transport: Transport,
        after: Option<IoSeq>,
    ) {
        self.send_with_term(to, self.term, message, transport, after);
    }

    pub(crate) fn send_with_term(
        &mut self,
        to: NodeId,
        term: Term,
        message: Message,
        transport: Transport,
        after: Option<IoSeq>,
    ) {
        self.push(Action::Send(Outbound {
            to,
            term,
            message,
            transport,
            after,
        }));
    }

    /// Sends `message` to every peer at our current term.
    pub(crate) fn broadcast(
        &mut self,
        message: Message,
        transport: Transport,
        after: Option<IoSeq>,
    ) {
        self.broadcast_with_term(self.term, message, transport, after);
    }

    pub(crate) fn broadcast_with_term(
        &mut self,
        term: Term,
        message: Message,
        transport: Transport,
        after: Option<IoSeq>,
    ) {
        for peer in self.peers.clone() {
            self.send_with_term(peer, term, message.clone(), transport, after);
        }
    }

    pub(crate) fn reply(&mut self, id: RequestId, reply: ClientReply) {
        self.push(Action::Reply { id, reply });
    }

    pub(crate) fn reject(&mut self, id: RequestId, rejection: Rejection) {
        self.reply(id, ClientReply::Rejected(rejection));
    }

    /// The refusal of a leader-only request by a replica that does not lead,
    /// naming the leader it knows of.
    pub(crate) fn not_leader(&self) -> Rejection {
        Rejection::NotLeader {
            leader: self.leader_id,
        }
    }

    /// Our applied value of `key`, however stale.
    pub(crate) fn local_read(&self, key: &str) -> ClientReply {
        ClientReply::Ok(ClientResponse::Value {
            value: self.kv.get(key),
            index: self.kv.applied_index(),
        })
    }

    /// Writes the term and vote; the returned seq orders what must wait for it.
    pub(crate) fn persist_meta(&mut self) -> IoSeq {
        let seq = self.io.issue();
        self.push(Action::Write(Write::Meta {
            term: self.term,
            voted_for: self.voted_for,
            seq,
        }));
        seq
    }

    /// Moves to the next term, voting for ourselves, and persists that; the
    /// seq of that write.
    pub(crate) fn start_term(&mut self) -> IoSeq {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.persist_meta()
    }

    /// Adopts `term` if it is newer, with no vote cast in it yet, and
    /// persists that. True if the term changed.
    pub(crate) fn adopt_term(&mut self, term: Term) -> bool {
        if term <= self.term {
            return false;
        }
        self.term = term;
        self.voted_for = None;
        self.persist_meta();
        true
    }

    /// Appends `entries` to the log (after truncating it to
    /// `truncate_after`, which the caller has done in memory already) and
    /// asks the driver to make both durable.
    pub(crate) fn write_log(&mut self, truncate_after: Option<Index>, entries: Vec<Entry>) {
        let write = self.io.append(&mut self.log, truncate_after, entries);
        self.push(write);
    }

    /// Appends an entry of our own term after the last one; its index.
    pub(crate) fn append_own(&mut self, payload: Payload) -> Index {
        let index = self.log.last_index() + 1;
        let entry = Entry {
            term: self.term,
            index,
            payload,
        };
        self.write_log(None, vec![entry]);
        index
    }

    /// Refuses `candidate` our vote at once: a refusal promises nothing.
    pub(crate) fn refuse_vote(&mut self, candidate: NodeId) {
        let refusal = Message::VoteResponse { granted: false };
        self.send(candidate, refusal, Transport::Stream, None);
    }

    /// Votes for `candidate` in our term. Persist-before-send: the grant
    /// leaves only once the vote is durable (invariant I1 across restarts,
    /// see crates/checker/README.md).
    pub(crate) fn grant_vote(&mut self, candidate: NodeId) {
        self.voted_for = Some(candidate);
        let seq = self.persist_meta();
        let grant = Message::VoteResponse { granted: true };
        self.send(candidate, grant, Transport::Stream, Some(seq));
    }

    /// Tells `leader` our log matches its own up to `match_index`.
    /// Persist-before-send: the answer claims those entries are durable here.
    pub(crate) fn accept_append(&mut self, leader: NodeId, match_index: Index) {
        let after = self.io.after_all();
        self.send(
            leader,
            append_accepted(match_index),
            Transport::Stream,
            after,
        );
    }

    /// Refuses an append, hinting where `leader` should resume.
    pub(crate) fn reject_append(&mut self, leader: NodeId, conflict_index: Index) {
        let refusal = append_rejected(conflict_index);
        self.send(leader, refusal, Transport::Stream, None);
    }

    /// Applies the entry after the applied index, if it is at most `upto`
    /// and in the log; the entry and its command's result.
    pub(crate) fn apply_next(&mut self, upto: Index) -> Option<(Entry, Option<CommandResult>)> {
        let next = self.kv.applied_index() + 1;
        if next > upto {
            return None;
        }
        let entry = self.log.get(next)?.clone();
        let result = self.kv.apply(&entry);
        Some((entry, result))
    }

    /// Records that `entry` is applied, with the state it left.
    pub(crate) fn emit_applied(&mut self, entry: &Entry) {
        self.emit(Event::Applied {
            index: entry.index,
            term: entry.term,
            state_hash: self.kv.state_hash(),
        });
    }

    /// The replica's status; what only the engine knows comes as arguments.
    pub(crate) fn status(
        &self,
        peers: Vec<PeerStatus>,
        commit_index: Index,
        lease_remaining_ns: u64,
        quorum_reachable: bool,
    ) -> Status {
        Status {
            id: self.config.id,
            mode: self.config.mode,
            role: self.role,
            term: self.term,
            voted_for: self.voted_for,
            leader: self.leader_id,
            lease_remaining_ns,
            quorum_reachable,
            peers,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            commit_index,
            applied_index: self.kv.applied_index(),
            state_hash: self.kv.state_hash(),
        }
    }
}

/// The event that records a client write as committed at `entry`'s
/// position (none for a no-op).
pub(crate) fn write_committed(entry: &Entry) -> Option<Event> {
    matches!(entry.payload, Payload::Command { .. }).then_some(Event::WriteCommitted {
        token: Token {
            term: entry.term,
            index: entry.index,
        },
    })
}

/// The answer to a write applied with `result`.
pub(crate) fn written(result: CommandResult) -> ClientReply {
    ClientReply::Ok(ClientResponse::Written {
        token: result.token,
        applied: result.applied,
    })
}
